"""The implicit operator against the explicit design matrix and NumPy one-liners."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import explicit_design, tol

from cvxnn.core import _operator, operator

DTYPES = (np.float64, np.float32)


def random_operands(seed, n, d, P, n_outputs, dtype):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    D = rng.random((n, P)) < 0.5
    U = rng.standard_normal((n_outputs, P, d)).astype(dtype)
    S = rng.standard_normal((n, n_outputs)).astype(dtype)
    return X, D, U, S


def explicit_predict(X, D, U):
    A = explicit_design(X.astype(float), D)
    return np.stack([A @ U[k].astype(float).ravel() for k in range(U.shape[0])], 1)


def explicit_adjoint(X, D, S):
    A = explicit_design(X.astype(float), D)
    P, d = D.shape[1], X.shape[1]
    return np.stack([(A.T @ S[:, k].astype(float)).reshape(P, d)
                     for k in range(S.shape[1])])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_predict_and_adjoint_equal_explicit_matrix(dtype, n_outputs):
    X, D, U, S = random_operands(0, 37, 4, 9, n_outputs, dtype)
    yhat = operator.predict(X, D, U)
    assert yhat.dtype == dtype and yhat.shape == (37, n_outputs)
    np.testing.assert_allclose(yhat, explicit_predict(X, D, U), **tol(dtype))
    G = operator.adjoint(X, D, S)
    assert G.dtype == dtype and G.shape == (n_outputs, 9, 4)
    np.testing.assert_allclose(G, explicit_adjoint(X, D, S), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_design_matrix_is_the_explicit_one(dtype):
    X, D, U, _ = random_operands(1, 11, 3, 5, 2, dtype)
    A = operator.design_matrix(X, D)
    np.testing.assert_allclose(A.toarray(), explicit_design(X, D), **tol(dtype))
    np.testing.assert_allclose(A @ U[1].ravel(), operator.predict(X, D, U)[:, 1],
                               **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cone_matrix_and_cone_adjoint(dtype, rng):
    X, D, U, _ = random_operands(2, 13, 3, 4, 2, dtype)
    C = operator.cone_matrix(X, D).toarray()
    for k in range(2):
        for i in range(4):
            rows = C[i * 13:(i + 1) * 13]
            np.testing.assert_allclose(rows @ U[k].ravel(),
                                       (2.0 * D[:, i] - 1) * (X @ U[k, i]),
                                       **tol(dtype))
    Lam = rng.random((13, 2, 4)).astype(dtype)
    expected = np.stack([(C.T @ Lam[:, k, :].T.ravel()).reshape(4, 3)
                         for k in range(2)])
    np.testing.assert_allclose(operator.cone_adjoint(X, D, Lam), expected,
                               **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block", [1, 4, 7, 29, 64])
def test_kernels_against_numpy_one_liners(dtype, block):
    """Blocks of 4 and 7 rows do not divide n = 29; 64 is larger than n."""
    n, d, P, c = 29, 5, 6, 2
    X, D, U, S = random_operands(3, n, d, P, c, dtype)
    U_flat = U.reshape(c * P, d)
    work = np.empty((block, c * P), dtype)
    out = np.empty((n, c), dtype)
    _operator.masked_forward(X, D.view(np.uint8), U_flat, work, out)
    expected = np.einsum("ji,jki->jk", D, (X @ U_flat.T).reshape(n, c, P))
    np.testing.assert_allclose(out, expected, **tol(dtype))
    G = np.empty((c * P, d), dtype)
    _operator.masked_adjoint(X, D.view(np.uint8), S, work, G)
    expected = np.einsum("ji,jk,ja->kia", D, S, X).reshape(c * P, d)
    np.testing.assert_allclose(G, expected, **tol(dtype))


def test_forward_and_adjoint_are_transposes(rng):
    X, D, U, S = random_operands(4, 40, 3, 8, 2, np.float64)
    lhs = np.sum(operator.predict(X, D, U) * S)
    rhs = np.sum(U * operator.adjoint(X, D, S))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_small_work_budget_gives_same_result(monkeypatch):
    X, D, U, S = random_operands(5, 50, 3, 10, 2, np.float64)
    full = operator.predict(X, D, U), operator.adjoint(X, D, S)
    monkeypatch.setattr(operator, "WORK_BYTES", 3 * 20 * 8)  # 3 rows per block
    assert operator.block_rows(50, 20, 8) == 3
    np.testing.assert_allclose(operator.predict(X, D, U), full[0], rtol=1e-12)
    np.testing.assert_allclose(operator.adjoint(X, D, S), full[1], rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 20), d=st.integers(1, 5), P=st.integers(1, 6),
       n_outputs=st.integers(1, 3), seed=st.integers(0, 2**16),
       dtype=st.sampled_from(DTYPES))
def test_operator_property(n, d, P, n_outputs, seed, dtype):
    X, D, U, S = random_operands(seed, n, d, P, n_outputs, dtype)
    np.testing.assert_allclose(operator.predict(X, D, U), explicit_predict(X, D, U),
                               **tol(dtype))
    np.testing.assert_allclose(operator.adjoint(X, D, S), explicit_adjoint(X, D, S),
                               **tol(dtype))
