"""Certificates: weak duality, zero gap at the optimum, lam_max, cone violation."""
import warnings

import numpy as np
import pytest
import reference
from conftest import LOSSES

import cvxnn
from cvxnn.core.certificates import Certificate, certificate, has_duality_gap, lam_max

WITH_GAP = ("group_l1", "feature_group_l1", "l1", "l2")
# Tighter than CLARABEL's defaults (1e-8), loose enough that it still says "optimal".
TIGHT = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}


def build(data, formulation, loss, regularizer, lam=0.05, seed=4, **kw):
    X, y = data(loss, n_samples=30, n_features=3, n_outputs=2, seed=seed)
    return cvxnn.build_problem(X, y, formulation=formulation, loss=loss,
                               regularizer=regularizer, lam=lam, n_gates=8,
                               bias=True, **kw)


def random_blocks(problem, rng, scale=1.0):
    shape = problem.weight_shape
    names = problem.formulation.block_names
    return {k: scale * rng.standard_normal(shape) for k in names}


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("regularizer", WITH_GAP)
@pytest.mark.parametrize("loss", LOSSES)
def test_weak_duality_at_random_points(data, rng, formulation, loss, regularizer):
    problem = build(data, formulation, loss, regularizer)
    for _ in range(5):
        blocks = random_blocks(problem, rng, scale=rng.choice([0.01, 1.0]))
        multipliers = None
        if formulation == "relu":
            c, P, _ = problem.weight_shape
            multipliers = tuple(rng.random((30, c, P)) for _ in range(2))
        cert = certificate(problem, **blocks, multipliers=multipliers)
        assert cert.dual_objective <= cert.objective + 1e-12
        assert cert.duality_gap >= -1e-12
        assert cert.objective == pytest.approx(problem.objective(**blocks))


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("regularizer", WITH_GAP)
@pytest.mark.parametrize("loss", LOSSES)
def test_gap_vanishes_at_the_optimum(data, formulation, loss, regularizer):
    """The dual value at the rescaled residual equals CVXPY's optimal value."""
    problem = build(data, formulation, loss, regularizer)
    sol = problem.solve("CLARABEL", **TIGHT)
    assert sol.status == "optimal"
    cert = sol.certificate
    assert cert.dual_objective == pytest.approx(sol.info["cvxpy_objective"], rel=1e-5)
    assert abs(cert.relative_gap) < 1e-5
    assert cert.satisfied(1e-5)
    if formulation == "relu":
        assert cert.cone_violation < 1e-8


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("regularizer", [None, "l2"])
def test_kkt_residual_at_the_optimum_of_smooth_problems(data, loss, regularizer):
    problem = build(data, "gated_relu", loss, regularizer, lam=0.5)
    sol = problem.solve("CLARABEL", **TIGHT)
    assert sol.certificate.relative_kkt_residual < 1e-5


def gated_lam_max_by_hand(problem):
    """max over (k, i) of ||(1/n) sum_j D_ji g_jk x_j|| with g the gradient at 0."""
    X, D, Y = problem.X, problem.patterns, problem.y
    grad = {"squared": -Y, "logistic": -Y / 2,
            "cross_entropy": np.full_like(Y, 1 / Y.shape[1]) - Y}[problem.loss.name]
    return max(np.linalg.norm((D[:, i] * grad[:, k]) @ X) / X.shape[0]
               for k in range(Y.shape[1]) for i in range(D.shape[1]))


@pytest.mark.parametrize("loss", LOSSES)
def test_relu_lam_max_is_below_gated_and_gives_zero_weights(data, loss):
    """The cones can only help the zero solution: lam_max(relu) <= lam_max(gated)."""
    problem = build(data, "relu", loss, "group_l1")
    top = lam_max(problem)
    assert 0 < top <= gated_lam_max_by_hand(problem) * (1 + 1e-12)
    sol = build(data, "relu", loss, "group_l1", lam=1.01 * top).solve(
        "CLARABEL", **TIGHT)
    assert np.abs(sol.U).max() < 1e-6


@pytest.mark.parametrize("formulation", ["gated_relu", "relu"])
@pytest.mark.parametrize("loss", LOSSES)
def test_lam_max_gives_zero_weights(data, formulation, loss):
    problem = build(data, formulation, loss, "group_l1")
    top = gated_lam_max_by_hand(problem)
    if formulation == "gated_relu":
        assert lam_max(problem) == pytest.approx(top, rel=1e-12)
    above = build(data, formulation, loss, "group_l1", lam=1.01 * top)
    sol = above.solve("CLARABEL", **TIGHT)
    assert np.abs(sol.U).max() < 1e-6
    zeros = {k: np.zeros(above.weight_shape) for k in above.formulation.block_names}
    mult = None
    if formulation == "relu":
        c, P, _ = above.weight_shape
        mult = (np.zeros((30, c, P)), np.zeros((30, c, P)))
    cert = certificate(above, **zeros, multipliers=mult)
    assert cert.duality_gap == pytest.approx(0.0, abs=1e-14)
    assert cert.kkt_residual == pytest.approx(0.0, abs=1e-14)
    below = build(data, formulation, loss, "group_l1", lam=0.5 * top)
    assert certificate(below, **zeros, multipliers=mult).duality_gap > 1e-6


def test_lam_max_needs_a_norm(data):
    problem = build(data, "gated_relu", "squared", "l2")
    with pytest.raises(ValueError, match="^regularizer:"):
        lam_max(problem)


def test_cone_violation_against_numpy(data, rng):
    problem = build(data, "relu", "squared", "group_l1")
    blocks = random_blocks(problem, rng)
    cert = certificate(problem, **blocks)
    expected = max(reference.cone_violation(problem.X, problem.patterns, B)
                   for B in blocks.values())
    assert cert.cone_violation == pytest.approx(expected, rel=1e-12)
    assert cert.duality_gap is None and cert.kkt_residual is None  # no multipliers
    # nonnegative multiples of each neuron's gate satisfy its cone constraints
    gates = np.broadcast_to(problem.gates.T, problem.weight_shape)
    assert certificate(problem, V=2 * gates, W=gates).cone_violation == 0.0


@pytest.mark.parametrize("regularizer, lam", [(None, 0.1), ("group_l1", 0.0)])
def test_no_gap_without_regularization(data, regularizer, lam):
    problem = build(data, "gated_relu", "squared", regularizer, lam=lam)
    assert not has_duality_gap(problem)
    cert = certificate(problem, np.zeros(problem.weight_shape))
    assert cert.duality_gap is None and cert.optimality == cert.relative_kkt_residual


def test_bad_arguments_are_named(data):
    problem = build(data, "relu", "squared", "group_l1")
    blocks = random_blocks(problem, np.random.default_rng(0))
    n, c, P = problem.n_samples, problem.n_outputs, problem.n_patterns
    for call in (lambda: certificate(None, blocks["V"]), lambda: lam_max(None)):
        with pytest.raises(TypeError, match="^problem"):
            call()
    good = np.ones((n, c, P))
    pair = "^multipliers: expected a pair"
    for bad, match in (((good,), pair), (good, pair), ((good, good, good), pair),
                       ((good, np.ones((3, c, P))), r"^multipliers\[1\]: expected"),
                       ((good, np.full((n, c, P), np.nan)), r"^multipliers\[1\]"),
                       ((good, "a"), r"^multipliers\[1\]")):
        with pytest.raises((TypeError, ValueError), match=match):
            certificate(problem, **blocks, multipliers=bad)
    gated = build(data, "gated_relu", "squared", "group_l1")
    with pytest.raises(ValueError, match="^multipliers: the gated_relu"):
        certificate(gated, random_blocks(gated, np.random.default_rng(0))["U"],
                    multipliers=(good, good))


def test_certificate_satisfied_logic():
    cert = Certificate(1.0, 0.9, 0.1, 0.1, 0.5, 1e-9, cone_violation=1e-3)
    assert cert.optimality == 0.1
    assert cert.satisfied(0.2) and not cert.satisfied(0.05)
    assert not cert.satisfied(0.2, cone_tol=1e-4)
    kkt_only = Certificate(1.0, None, None, None, 0.5, 1e-9)
    assert kkt_only.optimality == 1e-9 and kkt_only.satisfied(1e-8)
    assert "relative_gap" not in kkt_only.summary()
    # A gap below zero (cones violated: objective under the dual bound) counts
    # by its magnitude.
    below = Certificate(1.0, 1.01, -0.01, -0.01, 0.5, 1e-9, cone_violation=1e-3)
    assert below.optimality == 0.01
    assert below.satisfied(0.02, cone_tol=1e-2) and not below.satisfied(1e-3, 1e-2)
    assert below.satisfied(np.inf, np.inf)
    for bad, error in (("a", TypeError), (None, TypeError), (-1.0, ValueError),
                       (0.0, ValueError), (float("nan"), ValueError)):
        with pytest.raises(error, match="^tol"):
            below.satisfied(bad)
        with pytest.raises(error, match="^cone_tol"):
            below.satisfied(0.1, bad) if bad is not None else below.satisfied(0.1, "b")


@pytest.mark.parametrize("seed", [1, 2])
def test_loose_cone_tol_does_not_accept_a_negative_gap_beyond_tol(seed):
    """With cone_tol above tol, the augmented Lagrangian stopped where the
    cone violation bought an objective 8e-3 (relative) below its dual bound
    and called it optimal at tol 1e-4."""
    from cvxnn_fast import fast_solve

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((60, 3))
    y = np.maximum(X @ rng.standard_normal(3), 0) + 0.1 * rng.standard_normal(60)
    problem = cvxnn.build_problem(X, y, formulation="relu", lam=1e-2, n_gates=8,
                                  random_state=0)
    sol = fast_solve(problem, tol=1e-4, cone_tol=1e-1,
                     method="augmented_lagrangian")
    assert sol.status == "optimal"
    cert = certificate(problem, **sol.blocks, multipliers=sol.multipliers)
    assert abs(cert.relative_gap) <= 1e-4 and cert.cone_violation <= 1e-1


@pytest.mark.parametrize("kwargs", [
    {}, {"method": "fista"}, {"method": "interior_point"}, {"device": "cpu"}])
def test_the_relative_gap_is_scale_free(kwargs):
    """Targets times 1e-8 (and lam with them) are the same problem, objective
    times 1e-16. The relative gap's floor was 1e-12 absolute, so the zero
    model (F ~ 1e-16, several times the optimum) certified at once and the
    CV regressor returned it (R^2 0); the floor now follows f(0)."""
    from cvxnn_fast import fast_solve

    if "device" in kwargs:
        pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    y = np.maximum(X @ rng.standard_normal(4), 0) - X[:, 1]
    unit = cvxnn.build_problem(X, y, lam=1e-2, n_gates=10, random_state=0)
    tiny = cvxnn.build_problem(X, 1e-8 * y, lam=1e-10, n_gates=10, random_state=0)
    zero = cvxnn.certificate(tiny, np.zeros(tiny.weight_shape))
    assert zero.relative_gap == pytest.approx(
        cvxnn.certificate(unit, np.zeros(unit.weight_shape)).relative_gap, rel=1e-6)
    assert zero.relative_gap > 0.1
    ref = fast_solve(unit, tol=1e-7, **kwargs)
    sol = fast_solve(tiny, tol=1e-7, **kwargs)
    assert sol.status == ref.status == "optimal"
    assert sol.objective * 1e16 == pytest.approx(ref.objective, rel=1e-6)


@pytest.mark.parametrize("formulation, regularizer, method", [
    ("relu", "l2", "auto"), ("relu", "group_l1", "interior_point"),
    ("gated_relu", "group_l1", "interior_point"), ("gated_relu", "l2", "auto")])
def test_zero_targets_are_solved_at_once(formulation, regularizer, method):
    """f(0) = 0 (zero targets; a regressor's constant ones, centred): U = 0 is
    optimal. The scale-free floor first fell to the smallest float there,
    the interior point's estimate overflowed and ReLU ended
    optimal_inaccurate at optimality 1 (gated: a NaN breakdown); where f(0)
    is 0 the floor is 1e-12, as before."""
    from cvxnn_fast import fast_solve

    X = np.random.default_rng(1).standard_normal((50, 4))
    problem = cvxnn.build_problem(X, np.zeros(50), formulation=formulation,
                                  regularizer=regularizer, lam=1e-3, n_gates=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = fast_solve(problem, tol=1e-6, method=method)
    assert sol.status == "optimal" and sol.objective <= 1e-12
