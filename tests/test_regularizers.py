"""Regularizers: value, prox, dual norm, subgradient residual, CVXPY expression."""

import cvxpy as cp
import numpy as np
import pytest
from reference import penalty

from cvxnn.core.regularizers import REGULARIZERS

NAMES = tuple(REGULARIZERS)
NORMS = ("group_l1", "feature_group_l1", "l1")


@pytest.fixture
def U(rng):
    """Weights (n_outputs=2, P=4, d=3) with one exactly-zero neuron."""
    U = rng.standard_normal((2, 4, 3))
    U[1, 2] = 0.0
    return U


def as_columns(U):
    """The (d, n_outputs * P) layout the CVXPY expressions take: neurons as columns."""
    return U.reshape(-1, U.shape[2]).T


@pytest.mark.parametrize("name", NAMES)
def test_value_and_cvxpy_expression(name, U):
    reg = REGULARIZERS[name]
    assert reg.value(U) == pytest.approx(penalty(U, name), rel=1e-12)
    expr = reg.cvxpy(cp.Constant(as_columns(U)))
    assert float(expr.value) == pytest.approx(penalty(U, name), rel=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_prox_against_cvxpy(name, U):
    """prox_{tR}(U) = argmin_X 0.5 ||X - U||^2 + t R(X)."""
    reg, t = REGULARIZERS[name], 0.8
    Xc = cp.Variable(as_columns(U).shape)
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(Xc - as_columns(U))
                           + t * reg.cvxpy(Xc))).solve(solver="CLARABEL")
    expected = Xc.value.T.reshape(U.shape)
    np.testing.assert_allclose(reg.prox(U, t), expected, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_residual_vanishes_at_prox_points(name, U):
    """U+ = prox_{tR}(U) satisfies 0 in U+ - U + t dR(U+)."""
    reg, t = REGULARIZERS[name], 0.8
    Up = reg.prox(U, t)
    np.testing.assert_allclose(reg.subgradient_residual(Up - U, Up, t), 0.0,
                               atol=1e-12)


@pytest.mark.parametrize("name", NORMS)
def test_dual_norm(name, U, rng):
    """Hölder: <Z, V> <= R°(Z) R(V) for random V, with equality at some V."""
    reg = REGULARIZERS[name]
    Z = rng.standard_normal(U.shape)
    for _ in range(20):
        V = rng.standard_normal(U.shape)
        assert np.sum(Z * V) <= reg.dual_norm(Z) * reg.value(V) + 1e-12
    best = cp.Variable(as_columns(Z).shape)
    sup = cp.Problem(cp.Maximize(cp.sum(cp.multiply(as_columns(Z), best))),
                     [reg.cvxpy(best) <= 1])
    sup.solve(solver="CLARABEL")
    assert reg.dual_norm(Z) == pytest.approx(sup.value, rel=1e-6)


def test_l2_dual_value(rng):
    """inf_U <Z, U> + lam/2 ||U||^2 is attained at U = -Z / lam."""
    reg, lam = REGULARIZERS["l2"], 0.3
    Z = rng.standard_normal((2, 3, 4))
    Umin = -Z / lam
    assert reg.dual_value(Z, lam) == pytest.approx(
        np.sum(Z * Umin) + lam * reg.value(Umin), rel=1e-12)


@pytest.mark.parametrize("name", NORMS)
def test_norm_dual_value_is_an_indicator(name, rng):
    reg = REGULARIZERS[name]
    Z = rng.standard_normal((2, 3, 4))
    assert reg.dual_value(Z, reg.dual_norm(Z)) == 0.0
    assert reg.dual_value(Z, 0.5 * reg.dual_norm(Z)) == -np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_prox_keeps_dtype(name, dtype, U):
    assert REGULARIZERS[name].prox(U.astype(dtype), 0.1).dtype == dtype
