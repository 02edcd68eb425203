"""Gate families: support structure, seeding, bias row, use in build_problem."""

import numpy as np
import pytest

import cvxnn
from cvxnn.core.gates import (
    conv_gates,
    gaussian_gates,
    image_index,
    sparse_gates,
    spectral_gates,
)


@pytest.fixture
def X():
    return np.random.default_rng(3).standard_normal((40, 6))


def test_gaussian_gates_are_build_problems_default(X):
    y = X[:, 0]
    for bias in (False, True):
        default = cvxnn.build_problem(X, y, n_gates=25, bias=bias, random_state=7)
        G = gaussian_gates(6, 25, bias=bias, random_state=7)
        given = cvxnn.build_problem(X, y, gates=G, bias=bias)
        assert G.shape == (6 + bias, 25)
        np.testing.assert_array_equal(default.gates, given.gates)
        np.testing.assert_array_equal(default.patterns, given.patterns)


@pytest.mark.parametrize("family", ["gaussian", "sparse", "conv"])
def test_seeding(family):
    make = {
        "gaussian": lambda s, dt=np.float64: gaussian_gates(12, 30, random_state=s,
                                                            dtype=dt),
        "sparse": lambda s, dt=np.float64: sparse_gates(12, 30, 3, random_state=s,
                                                        dtype=dt),
        "conv": lambda s, dt=np.float64: conv_gates(3, 4, 1, 30, 2, random_state=s,
                                                    dtype=dt),
    }[family]
    np.testing.assert_array_equal(make(5), make(5))
    assert not np.array_equal(make(5), make(6))
    np.testing.assert_array_equal(make(5, np.float32), make(5).astype(np.float32))
    assert make(5, np.float32).dtype == np.float32
    rng = np.random.default_rng(5)
    assert not np.array_equal(make(rng), make(rng))  # a Generator advances


def test_sparse_gates_support():
    G = sparse_gates(10, 500, 3, random_state=0)
    nonzero = G != 0
    np.testing.assert_array_equal(nonzero.sum(axis=0), np.full(500, 3))
    assert nonzero.any(axis=1).all()  # every feature is used by some gate
    supports = {tuple(np.flatnonzero(col)) for col in nonzero.T}
    assert len(supports) > 50  # C(10, 3) = 120 possible supports
    # Uniform supports: each feature in about 3/10 of the gates.
    np.testing.assert_allclose(nonzero.mean(axis=1), 0.3, atol=0.08)


def test_sparse_gates_bias_row_and_patterns(X):
    G = sparse_gates(6, 40, 2, bias=True, random_state=1)
    assert G.shape == (7, 40)
    assert np.all(G[-1] != 0)
    np.testing.assert_array_equal((G[:-1] != 0).sum(axis=0), np.full(40, 2))
    problem = cvxnn.build_problem(X, X[:, 1], gates=G, bias=True)
    # Each kept pattern is decided by the gate's two features and its offset.
    for i in range(problem.n_patterns):
        g = problem.gates[:, i]
        support = np.flatnonzero(g[:-1])
        expected = X[:, support] @ g[support] + g[-1] > 0
        np.testing.assert_array_equal(problem.patterns[:, i], expected)


def test_order_one_gates_threshold_one_feature(X):
    G = sparse_gates(6, 30, 1, random_state=2)
    problem = cvxnn.build_problem(X, X[:, 0], gates=G)
    for i in range(problem.n_patterns):
        (f,) = np.flatnonzero(problem.gates[:, i])
        np.testing.assert_array_equal(problem.patterns[:, i],
                                      X[:, f] * problem.gates[f, i] > 0)


@pytest.mark.parametrize("layout,shape,to_hwc", [
    ("channels_last", (5, 4, 3), lambda a: a),
    ("channels_first", (3, 5, 4), lambda a: a.transpose(1, 2, 0)),
])
def test_image_index_matches_numpy_flattening(layout, shape, to_hwc):
    image = np.random.default_rng(0).standard_normal(shape)
    index = image_index(5, 4, 3, layout)
    np.testing.assert_array_equal(image.ravel()[index], to_hwc(image))


@pytest.mark.parametrize("layout", ["channels_last", "channels_first"])
def test_conv_gates_are_patches(layout):
    h, w, c, k = 6, 5, 2, 3
    G = conv_gates(h, w, c, 200, k, layout=layout, random_state=4)
    assert G.shape == (h * w * c, 200)
    index = image_index(h, w, c, layout)
    # position[f] = (row, col, channel) of flat feature f
    position = np.array(np.unravel_index(np.argsort(index.ravel()), (h, w, c))).T
    corners = set()
    for col in G.T:
        rows, cols, chans = position[np.flatnonzero(col)].T
        assert len(rows) == k * k * c
        assert rows.max() - rows.min() == k - 1 and cols.max() - cols.min() == k - 1
        np.testing.assert_array_equal(np.bincount(chans, minlength=c), k * k)
        corners.add((rows.min(), cols.min()))
    assert corners == {(r, q) for r in range(h - k + 1) for q in range(w - k + 1)}


def test_conv_gates_act_like_a_filter():
    """x @ g equals the filter applied to the patch of the (h, w, c) image."""
    h, w, c, k = 4, 4, 3, 2
    G = conv_gates(h, w, c, 10, k, bias=True, random_state=0)
    images = np.random.default_rng(1).standard_normal((7, h, w, c))
    flat = images.reshape(7, -1)
    for g in G.T:
        support = np.flatnonzero(g[:-1])
        (r0, q0, _) = np.unravel_index(support[0], (h, w, c))
        filt = g[:-1].reshape(h, w, c)[r0:r0 + k, q0:q0 + k]
        direct = np.einsum("nijc,ijc->n", images[:, r0:r0 + k, q0:q0 + k], filt)
        np.testing.assert_allclose(flat @ g[:-1] + g[-1], direct + g[-1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="order"):
        sparse_gates(4, 10, 5)
    with pytest.raises(ValueError, match="n_gates"):
        gaussian_gates(4, 0)
    with pytest.raises(TypeError, match="order"):
        sparse_gates(4, 10, 1.5)
    with pytest.raises(TypeError, match="bias"):
        gaussian_gates(4, 10, bias="yes")
    with pytest.raises(TypeError, match="dtype"):
        gaussian_gates(4, 10, dtype=np.int64)
    with pytest.raises(ValueError, match="kernel_size"):
        conv_gates(3, 5, 1, 10, 4)
    with pytest.raises(ValueError, match="layout"):
        conv_gates(3, 5, 1, 10, 2, layout="nhwc")
    with pytest.raises(ValueError, match="height"):
        conv_gates(0, 5, 1, 10, 1)
    with pytest.raises(TypeError, match="random_state"):
        sparse_gates(4, 10, 2, random_state="seed")
    with pytest.raises(TypeError, match="^dtype"):
        gaussian_gates(4, 10, dtype="foo")


def test_spectral_gates_bad_arguments(X):
    for X_bad, match in ((np.where(X > 1, np.nan, X), "^X: contains NaN"),
                         (X[:, :0], "^X: needs at least 1 feature"),
                         (X[:1], "^X: needs at least 2")):
        with pytest.raises(ValueError, match=match):
            spectral_gates(X_bad, 5)
    for kwargs, error, match in (({"exponent": "a"}, TypeError, "^exponent"),
                                 ({"exponent": True}, TypeError, "^exponent"),
                                 ({"exponent": -1.0}, ValueError, "^exponent"),
                                 ({"orthogonal": "no"}, TypeError, "^orthogonal"),
                                 ({"rtol": -1.0}, ValueError, "^rtol"),
                                 ({"rtol": 2.0}, ValueError, "^rtol"),
                                 ({"rtol": "a"}, TypeError, "^rtol")):
        with pytest.raises(error, match=match):
            spectral_gates(X, 5, **kwargs)


def test_bias_row_must_match_problem(X):
    with pytest.raises(ValueError, match="gates"):
        cvxnn.build_problem(X, X[:, 0], gates=sparse_gates(6, 10, 2, bias=True))


@pytest.fixture
def anisotropic():
    rng = np.random.default_rng(4)
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    scales = np.array([4.0, 2.0, 1.0, 0.5, 0.25])
    return (rng.standard_normal((2000, 5)) * scales) @ rotation.T + 3.0


def _whitened_directions(X, G):
    """Gates in the principal coordinates of X, scaled to the whitened space."""
    values, axes = np.linalg.eigh(np.cov(X, rowvar=False, bias=True))
    order = np.argsort(values)[::-1]
    values, axes = values[order], axes[:, order]
    return np.sqrt(values)[:, None] * (axes.T @ G[:5]), values


@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0])
def test_spectral_gates_distribution(anisotropic, exponent):
    X = anisotropic
    G = spectral_gates(X, 5 * 4000, exponent=exponent, bias=True, random_state=0)
    W, values = _whitened_directions(X, G)
    # marginal variance of component j: (lambda_j / lambda_1)^exponent
    np.testing.assert_allclose(W.var(axis=1), (values / values[0]) ** exponent,
                               rtol=0.06)
    # within a frame of 5 gates the unscaled directions are orthogonal
    frame = W[:, :5] / ((values / values[0]) ** (exponent / 2))[:, None]
    gram = frame.T @ frame
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-9)
    # with the bias row every hyperplane passes through the mean of X
    np.testing.assert_allclose(np.append(X.mean(axis=0), 1.0) @ G, 0, atol=1e-9)


def test_spectral_gates_seeding_and_independent_draws(anisotropic):
    make = lambda s, **kw: spectral_gates(anisotropic, 12, random_state=s, **kw)  # noqa: E731
    np.testing.assert_array_equal(make(5), make(5))
    assert not np.array_equal(make(5), make(6))
    assert make(5, dtype=np.float32).dtype == np.float32
    assert make(5, bias=True).shape == (6, 12) and make(5).shape == (5, 12)
    iid = make(5, orthogonal=False)
    W, _ = _whitened_directions(anisotropic, iid)
    assert abs(W[:, 0] @ W[:, 1]) > 1e-6  # independent draws are not orthogonal
    with pytest.raises(ValueError, match="exponent"):
        make(5, exponent=-1)
