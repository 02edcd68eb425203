"""The equivalence of gated ReLU and ReLU programs, on real data (sklearn's diabetes).

At lam = 0 the two programs have the same optimal value and the cone
decomposition of the gated optimum is a ReLU optimum. At lam > 0 the gated
program is a relaxation (gated* <= relu*) and the decomposed gated optimum is
a feasible ReLU point (relu* <= its objective); both gaps close at lam = 0
and at lam >= lam_max. Measured on this fixture (n = 80, P = 6, CLARABEL):
gated* = relu* = 0.0745246 at lam = 0; relu*/gated* - 1 = 0.435 at
lam = 0.1 lam_max (examples/equivalence.py reports larger problems).
"""


import numpy as np
import pytest

import cvxnn


@pytest.fixture(scope="module")
def diabetes():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_diabetes(return_X_y=True)
    X, y = X[:80], y[:80]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (y - y.mean()) / y.std()
    gated = cvxnn.build_problem(X, y, lam=0.0, n_gates=6, bias=True, random_state=0)
    assert gated.n_patterns * gated.n_features < gated.n_samples  # loss > 0
    return gated


def training_loss(problem, network):
    X = problem.X[:, :-1]
    return problem.data_fit(network.predict(X))


@pytest.mark.parametrize("method", ["fast", "cvxpy"])
def test_lam_zero_decomposed_gated_optimum_is_relu_optimal(diabetes, method):
    gated = diabetes.solve("CLARABEL")
    relu = cvxnn.relu_twin(diabetes).solve("CLARABEL")
    decomposed = cvxnn.decompose(diabetes, gated, method=method)
    assert gated.objective > 0.05  # a real fit, not interpolation
    assert decomposed.status == "optimal"
    assert decomposed.objective == pytest.approx(gated.objective, rel=1e-9)
    assert relu.objective == pytest.approx(gated.objective, rel=1e-6)
    # The ReLU network itself (max(Xv, 0) neurons) reaches the optimal loss.
    assert decomposed.network.activation == "relu"
    assert training_loss(diabetes, decomposed.network) == pytest.approx(
        relu.objective, rel=1e-6)


def test_lam_positive_sandwich(diabetes):
    lam = 0.1 * cvxnn.lam_max(diabetes)
    problem = cvxnn.with_lam(diabetes, lam)
    gated = problem.solve("CLARABEL")
    relu = cvxnn.relu_twin(problem).solve("CLARABEL")
    bound = cvxnn.decompose(problem, gated, method="cvxpy")
    assert gated.objective <= relu.objective * (1 + 1e-7)
    assert relu.objective <= bound.objective * (1 + 1e-7)
    gap = relu.objective / gated.objective - 1
    assert 0 < gap < 1.0  # measured 0.435
    # The bound is what the decomposition says it is.
    report = bound.info["decomposition"]
    assert bound.objective == pytest.approx(
        gated.objective + lam * (report.relu_norm - report.gated_norm), rel=1e-6)


def test_gap_closes_at_lam_max(diabetes):
    lam = 1.01 * cvxnn.lam_max(diabetes)  # >= the ReLU lam_max as well
    problem = cvxnn.with_lam(diabetes, lam)
    gated = problem.solve("CLARABEL")
    relu = cvxnn.relu_twin(problem).solve("CLARABEL")
    zero = problem.data_fit(np.zeros_like(problem.y))
    assert gated.objective == pytest.approx(zero, rel=1e-6)
    assert relu.objective == pytest.approx(zero, rel=1e-6)


def test_fast_backend_equivalence(diabetes):
    gated = diabetes.solve("fast", tol=1e-9, max_iter=100000)
    relu = cvxnn.relu_twin(diabetes).solve("CLARABEL")
    decomposed = cvxnn.decompose(diabetes, gated)
    assert decomposed.objective == pytest.approx(relu.objective, rel=1e-5)
