"""Gate sampling and activation patterns against a brute-force computation."""

import numpy as np
import pytest

import cvxnn
from cvxnn.core import patterns


def brute_force(X, G):
    """Distinct non-empty columns of 1[X G > 0], first occurrence kept, in order."""
    seen, cols, kept = set(), [], []
    for i in range(G.shape[1]):
        col = tuple(bool(X[j] @ G[:, i] > 0) for j in range(X.shape[0]))
        if any(col) and col not in seen:
            seen.add(col)
            cols.append(col)
            kept.append(i)
    return np.array(cols, dtype=bool).T, np.array(kept)


@pytest.fixture
def gates_with_repeats(rng):
    """Gates including copies, positive rescalings and an all-zero pattern."""
    G = rng.standard_normal((4, 12))
    G = np.hstack([G, G[:, :3], 2.5 * G[:, 4:6], np.zeros((4, 1))])
    G[:, -1] = [0, 0, 0, -1]  # with a bias column of ones: X g = -1, never active
    return G


def test_patterns_match_brute_force(rng, gates_with_repeats):
    X = np.hstack([rng.standard_normal((25, 3)), np.ones((25, 1))])
    D, kept = patterns.activation_patterns(X, gates_with_repeats)
    D_ref, kept_ref = brute_force(X, gates_with_repeats)
    np.testing.assert_array_equal(D, D_ref)
    np.testing.assert_array_equal(kept, kept_ref)
    assert D.dtype == bool and D.flags.c_contiguous
    assert D.any(axis=0).all()
    assert len({tuple(c) for c in D.T}) == D.shape[1]


def test_row_blocks_do_not_change_patterns(rng, monkeypatch):
    X = rng.standard_normal((23, 3))
    G = rng.standard_normal((3, 7))
    expected = X @ G > 0
    monkeypatch.setattr(patterns, "_BLOCK_ENTRIES", 7 * 4)  # 4 rows per block
    np.testing.assert_array_equal(patterns.raw_patterns(X, G), expected)


def test_problem_keeps_the_gate_of_each_pattern(data):
    X, y = data("squared", n_samples=20, n_features=2)
    problem = cvxnn.build_problem(X, y, n_gates=40, bias=True, random_state=3)
    Xb = np.hstack([X, np.ones((20, 1))])
    np.testing.assert_array_equal(problem.patterns, Xb @ problem.gates > 0)
    G_all = np.random.default_rng(3).standard_normal((3, 40))
    D_ref, kept_ref = brute_force(Xb, G_all)
    np.testing.assert_array_equal(problem.patterns, D_ref)
    np.testing.assert_allclose(problem.gates, G_all[:, kept_ref])


def test_user_gates_are_used(data):
    X, y = data("squared", n_samples=15, n_features=2)
    G = np.array([[1.0, -1.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    problem = cvxnn.build_problem(X, y, gates=G)
    # columns 0 and 2, 3 give the same pattern; column 1 is its complement
    np.testing.assert_array_equal(problem.gates, G[:, :2])
    np.testing.assert_array_equal(problem.patterns[:, 0], X[:, 0] > 0)
    np.testing.assert_array_equal(problem.patterns[:, 1], X[:, 0] < 0)


def test_no_active_gate_is_an_error():
    X = -np.abs(np.random.default_rng(0).standard_normal((10, 2)))
    with pytest.raises(ValueError, match="^gates:"):
        cvxnn.build_problem(X, np.ones(10), gates=np.ones((2, 3)))


# --- determinism (issue 7, item 5) ---------------------------------------------

@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
def test_same_inputs_give_bit_identical_problems_and_solutions(data, formulation):
    X, y = data("squared", n_samples=30, n_features=3, seed=9)
    first, second = (cvxnn.build_problem(X, y, formulation=formulation, n_gates=12,
                                         bias=True, random_state=42)
                     for _ in range(2))
    assert first.patterns.tobytes() == second.patterns.tobytes()
    assert first.gates.tobytes() == second.gates.tobytes()
    assert first.solve().U.tobytes() == second.solve().U.tobytes()


def test_float32_and_float64_problems_share_their_gates(data):
    X, y = data("squared", n_samples=30, n_features=3, seed=9)
    p64 = cvxnn.build_problem(X, y, n_gates=12, random_state=5)
    p32 = cvxnn.build_problem(X.astype(np.float32), y, n_gates=12, random_state=5)
    np.testing.assert_array_equal(p32.patterns, p64.patterns)
    np.testing.assert_array_equal(p32.gates, p64.gates.astype(np.float32))
    G64 = patterns.standard_normal_gates(3, 12, np.random.default_rng(5), np.float64)
    G32 = patterns.standard_normal_gates(3, 12, np.random.default_rng(5), np.float32)
    np.testing.assert_array_equal(G32, G64.astype(np.float32))


def test_gate_stream_is_stable_across_installs():
    """The seeded gates are NumPy's PCG64 + standard_normal stream for that seed.

    Values recorded with NumPy 2.x; a change here means the same seed no longer
    gives the same patterns on another install.
    """
    G = patterns.standard_normal_gates(2, 3, np.random.default_rng(0))
    np.testing.assert_allclose(G, [[0.12573022, -0.13210486, 0.64042265],
                                   [0.10490012, -0.53566937, 0.36159505]],
                               rtol=1e-7)


def test_a_generator_random_state_is_used_as_given(data):
    X, y = data("squared", seed=9)
    by_seed = cvxnn.build_problem(X, y, n_gates=8, random_state=3)
    by_generator = cvxnn.build_problem(X, y, n_gates=8,
                                       random_state=np.random.default_rng(3))
    np.testing.assert_array_equal(by_seed.gates, by_generator.gates)
