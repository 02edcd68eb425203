"""Each inline kernel of cvxnn_fast.fista._fista against a NumPy one-liner."""

import numpy as np
import pytest
from scipy.special import expit, logsumexp, softmax, xlogy

from cvxnn_fast.fista import _fista

TOL = {np.float64: 1e-10, np.float32: 2e-4}
DTYPES = [np.float64, np.float32]
LOSS = {"squared": 0, "logistic": 1, "cross_entropy": 2}
REG = {"group_l1": 0, "feature_group_l1": 1, "l1": 2, "l2": 3, None: 4}


def targets(rng, loss, n, c):
    if loss == "squared":
        return rng.standard_normal((n, c))
    if loss == "logistic":
        return np.sign(rng.standard_normal((n, c)))
    return np.eye(c)[rng.integers(0, c, n)]


def numpy_loss(loss, Z, Y):
    if loss == "squared":
        return 0.5 * np.sum((Z - Y) ** 2), Z - Y
    if loss == "logistic":
        return np.sum(np.logaddexp(0, -Y * Z)), -Y * expit(-Y * Z)
    return np.sum(logsumexp(Z, axis=1) - np.sum(Y * Z, axis=1)), softmax(Z, axis=1) - Y


def numpy_conjugate(loss, S, Y):
    if loss == "squared":
        return 0.5 * np.sum(S**2) + np.sum(S * Y)
    if loss == "logistic":
        p = -Y * S
        return np.sum(xlogy(p, p) + xlogy(1 - p, 1 - p))
    q = S + Y
    return np.sum(xlogy(q, q))


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSS)
def test_loss_gradient_conjugate(rng, dtype, loss):
    n, c = 23, 3
    Z, Y = rng.standard_normal((n, c)), targets(rng, loss, n, c)
    value, grad = numpy_loss(loss, Z, Y)
    S = np.empty((n, c), dtype)
    got = _fista.loss_and_gradient(LOSS[loss], Z.astype(dtype), Y.astype(dtype), S)
    assert got == pytest.approx(value, rel=TOL[dtype])
    np.testing.assert_allclose(S, grad, rtol=TOL[dtype], atol=TOL[dtype])
    for alpha in (1.0, 0.3):
        conj = _fista.loss_conjugate(LOSS[loss], grad.astype(dtype), Y.astype(dtype),
                                     alpha)
        assert conj == pytest.approx(numpy_conjugate(loss, alpha * grad, Y),
                                     rel=10 * TOL[dtype], abs=10 * TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSS)
@pytest.mark.parametrize("scale", [1.0, 1e-3])
def test_bregman_equals_the_value_difference(rng, dtype, loss, scale):
    n, c = 17, 3
    Z, Y = rng.standard_normal((n, c)), targets(rng, loss, n, c)
    Z_new = Z + scale * rng.standard_normal((n, c))
    f, g = numpy_loss(loss, Z, Y)
    expected = numpy_loss(loss, Z_new, Y)[0] - f - np.sum(g * (Z_new - Z))
    got = _fista.loss_bregman(LOSS[loss], Z_new.astype(dtype), Z.astype(dtype),
                              g.astype(dtype), Y.astype(dtype))
    assert got >= -1e-12
    # The value difference itself loses ~1e-16 * f to cancellation.
    assert got == pytest.approx(expected, rel=1e3 * TOL[dtype], abs=1e-13 * n)


def test_bregman_resolves_tiny_steps(rng):
    """Where f(new) - f(y) - <g, d> cancels to noise, the kernel stays exact."""
    n, c = 50, 1
    Z, Y = rng.standard_normal((n, c)), targets(rng, "logistic", n, c)
    d = 1e-9 * rng.standard_normal((n, c))
    g = -Y * expit(-Y * Z)
    curvature = expit(Z * Y) * expit(-Z * Y)
    expected = 0.5 * np.sum(curvature * d**2)  # second-order Taylor, error O(d^3)
    got = _fista.loss_bregman(1, Z + d, Z, g, Y)
    assert got == pytest.approx(expected, rel=1e-5)


def numpy_group_norms(reg, U, halves):
    """Norms of each group of a flat (rows, d) array made of `halves` halves."""
    if reg == "group_l1":
        return np.linalg.norm(U, axis=1)
    if reg == "feature_group_l1":
        return np.concatenate([np.linalg.norm(h, axis=0)
                               for h in np.split(U, halves)])
    return np.abs(U).ravel()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reg", REG)
@pytest.mark.parametrize("halves", [1, 2])
def test_regularizer_kernels(rng, dtype, reg, halves):
    U = rng.standard_normal((6 * halves, 4))
    U[1] = 0
    G = rng.standard_normal(U.shape)
    lam, t = 0.7, 0.9
    tol = TOL[dtype]
    code = REG[reg]
    if reg in ("group_l1", "feature_group_l1", "l1"):
        value = np.sum(numpy_group_norms(reg, U, halves))
        dual = np.max(numpy_group_norms(reg, G, halves))
        assert _fista.regularizer_dual_norm(code, G.astype(dtype), halves) == \
            pytest.approx(dual, rel=tol)
    else:
        value = 0.5 * np.sum(U**2) if reg == "l2" else 0.0
    assert _fista.regularizer_value(code, U.astype(dtype), halves) == \
        pytest.approx(value, rel=tol, abs=tol)
    out = np.empty(U.shape, dtype)
    _fista.regularizer_prox(code, U.astype(dtype), t, halves, out)
    np.testing.assert_allclose(out, numpy_prox(reg, U, t, halves), rtol=tol, atol=tol)
    got = _fista.regularizer_residual(code, G.astype(dtype), U.astype(dtype), lam,
                                      halves)
    assert got == pytest.approx(numpy_residual_sq(reg, G, U, lam, halves),
                                rel=10 * tol)


def numpy_prox(reg, U, t, halves):
    if reg is None:
        return U
    if reg == "l2":
        return U / (1 + t)
    if reg == "l1":
        return np.sign(U) * np.maximum(np.abs(U) - t, 0)
    if reg == "group_l1":
        norms = np.linalg.norm(U, axis=1, keepdims=True)
        return U * np.maximum(1 - t / np.maximum(norms, 1e-300), 0)
    parts = []
    for h in np.split(U, halves):
        norms = np.linalg.norm(h, axis=0, keepdims=True)
        parts.append(h * np.maximum(1 - t / np.maximum(norms, 1e-300), 0))
    return np.vstack(parts)


def numpy_residual_sq(reg, G, U, lam, halves):
    """Squared distance from -G to lam * dR(U), group by group."""
    if reg is None:
        return np.sum(G**2)
    if reg == "l2":
        return np.sum((G + lam * U) ** 2)
    if reg == "l1":
        groups = [(G.ravel()[k:k + 1], U.ravel()[k:k + 1]) for k in range(U.size)]
    elif reg == "group_l1":
        groups = list(zip(G, U, strict=True))
    else:
        groups = [(g[:, f], u[:, f]) for g, u in zip(np.split(G, halves),
                  np.split(U, halves), strict=True) for f in range(U.shape[1])]
    total = 0.0
    for g, u in groups:
        nu = np.linalg.norm(u)
        if nu > 0:
            total += np.sum((g + lam * u / nu) ** 2)
        else:
            total += max(np.linalg.norm(g) - lam, 0) ** 2
    return total


@pytest.fixture
def augmented_case(rng):
    """A small AL state: patterns, targets, multipliers, products of y and x_new."""
    n, c, P = 9, 2, 4
    D = rng.random((n, P)) > 0.5
    Z = rng.standard_normal((n, 2 * c * P))
    return {"D": D, "Z": Z, "Z_new": Z + 0.3 * rng.standard_normal(Z.shape),
            "Z_x": rng.standard_normal(Z.shape),
            "mult": np.maximum(rng.standard_normal(Z.shape), 0), "rho": 0.7,
            "signs": np.tile(2.0 * D - 1.0, (1, 2 * c)), "n": n, "c": c, "P": P}


def numpy_augmented(case, loss, Y, Z):
    """Loss sum, predictions, loss gradient and AL penalty parts at products Z."""
    D, c, P, mult, rho = case["D"], case["c"], case["P"], case["mult"], case["rho"]
    masked = np.tile(D, (1, c)) * (Z[:, : c * P] - Z[:, c * P:])
    Yhat = masked.reshape(-1, c, P).sum(axis=2)
    value, S = numpy_loss(loss, Yhat, Y)
    shifted = np.maximum(mult - rho * case["signs"] * Z, 0)
    base = np.tile(D, (1, c)) * np.repeat(S, P, axis=1) / case["n"]
    M = np.hstack([base, -base]) - case["signs"] * shifted
    return value, Yhat, S, M, np.sum(shifted**2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSS)
@pytest.mark.parametrize("combine", [False, True])
def test_augmented_prepare(rng, augmented_case, dtype, loss, combine):
    case, beta = augmented_case, 0.4
    Y = targets(rng, loss, case["n"], case["c"])
    Z = case["Z_new"] + beta * (case["Z_new"] - case["Z_x"]) if combine else case["Z"]
    value, Yhat, S, M, penalty = numpy_augmented(case, loss, Y, Z)
    n, c = case["n"], case["c"]
    Z_arg = np.zeros_like(Z) if combine else Z
    Z_arg = Z_arg.astype(dtype)
    out = [np.empty((n, c), dtype), np.empty((n, c), dtype), np.empty(Z.shape, dtype)]
    fit, total, violation = _fista.augmented_prepare(
        LOSS[loss], case["D"].view(np.uint8), Y.astype(dtype),
        case["mult"].astype(dtype), Z_arg, case["Z_new"].astype(dtype),
        case["Z_x"].astype(dtype), beta, combine, case["rho"], *out)
    tol = 10 * TOL[dtype]
    np.testing.assert_allclose(Z_arg, Z, rtol=tol, atol=tol)
    assert fit == pytest.approx(value, rel=tol)
    assert total == pytest.approx(penalty, rel=tol)
    assert violation == pytest.approx(max(0.0, -np.min(case["signs"] * Z)), rel=tol)
    for got, expected in zip(out, (Yhat, S, M), strict=True):
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSS)
def test_augmented_candidate_is_the_bregman_divergence(rng, augmented_case, dtype,
                                                       loss):
    case = augmented_case
    Y = targets(rng, loss, case["n"], case["c"])
    mult, rho = case["mult"], case["rho"]
    Z, Z_new = case["Z"], case["Z_new"]

    def smooth(Zs):
        value, Yhat, S, M, penalty = numpy_augmented(case, loss, Y, Zs)
        return value / case["n"] + (penalty - np.sum(mult**2)) / (2 * rho), Yhat, S, M

    f, Yhat, S, M = smooth(Z)
    # M is the gradient of the smooth part with respect to the products Z.
    expected = smooth(Z_new)[0] - f - np.sum(M * (Z_new - Z))
    Yhat_new = np.empty_like(Yhat, dtype=dtype)
    got = _fista.augmented_candidate(
        LOSS[loss], case["D"].view(np.uint8), Y.astype(dtype), mult.astype(dtype),
        Z_new.astype(dtype), Z.astype(dtype), Yhat.astype(dtype), S.astype(dtype), rho,
        Yhat_new)
    assert got >= 0
    assert got == pytest.approx(expected, rel=100 * TOL[dtype], abs=100 * TOL[dtype])
    np.testing.assert_allclose(Yhat_new, smooth(Z_new)[1], rtol=10 * TOL[dtype],
                               atol=10 * TOL[dtype])
