"""Newton-CG with its data products on a PyTorch device (the CPU here): against
CLARABEL and the NumPy path for every loss and penalty, both dtypes, the
subsample paths, statuses, callback, time limit, Ctrl-C, warm start.

Iteration counts: squared loss takes the NumPy path's steps exactly (float64;
the products agree to rounding and the loop is the same host code). The
other losses start with R-FISTA, which on a device is the PyTorch loop
(rounded differently from the compiled one): its iterate, and so the Newton
steps after it, may differ slightly; float32 products round differently
from the compiled kernels, so the counts there are only close.
"""

import warnings

import numpy as np
import pytest
from conftest import LOSSES
from test_fast_solver import build, clarabel

torch = pytest.importorskip("torch")

from cvxnn.core.errors import ConvergenceWarning  # noqa: E402
from cvxnn.core.status import OPTIMAL, USER_LIMIT  # noqa: E402
from cvxnn_fast import fast_solve  # noqa: E402
from cvxnn_fast.newton import solver  # noqa: E402
from cvxnn_fast.pytorch import newton as torch_newton  # noqa: E402
from cvxnn_fast.pytorch.solver import check_method  # noqa: E402

# Objectives agree within the certified gaps plus this (relative).
SLACK = {np.float64: 1e-9, np.float32: 2e-4}
TOL = {np.float64: 1e-8, np.float32: 1e-4}


def newton(problem, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fast_solve(problem, method="newton", max_iter=500, **kw)


def small(loss, reg, dtype=np.float64, **kw):
    args = dict(bias=True, n_outputs=2, n_samples=200, n_gates=10, lam=1e-3,
                dtype=dtype)
    return build(loss, reg, **{**args, **kw})


def within_gaps(a, b, dtype):
    gaps = (a.certificate.duality_gap or 0.0) + (b.certificate.duality_gap or 0.0)
    return abs(a.objective - b.objective) <= gaps + SLACK[dtype] * abs(b.objective)


@pytest.mark.parametrize("reg", ["group_l1", "l1", "l2", "feature_group_l1"])
@pytest.mark.parametrize("loss", LOSSES)
def test_matches_clarabel_and_the_numpy_path(loss, reg):
    problem = small(loss, reg)
    sol = newton(problem, tol=1e-8, device="cpu")
    assert sol.status == OPTIMAL, sol.message
    assert sol.info["method"] == "newton" and sol.info["device"] == "cpu"
    assert sol.certificate.relative_gap <= 1e-8
    dev = sol.info["device_certificate"]  # from the device's products
    assert dev["objective"] == pytest.approx(sol.objective, rel=1e-12)
    assert dev["relative_gap"] <= 1e-8
    host = newton(problem, tol=1e-8)
    assert within_gaps(sol, host, np.float64)
    ref = clarabel(problem)  # feasible: F_ref >= F* >= F - gap
    assert sol.objective - ref.objective <= sol.certificate.duality_gap + 1e-12
    assert ref.objective - sol.objective <= 1e-6 * abs(ref.objective)
    if loss == "squared":
        # The same steps to rounding: the first ones agree to 1e-9 (later,
        # rounding moves a step across tol, or l1's active set, by one
        # product: whole counts are not comparable across BLAS builds).
        k = min(5, sol.n_iter, host.n_iter) + 1
        np.testing.assert_allclose(sol.history["objective"][:k],
                                   host.history["objective"][:k], rtol=1e-9)
        np.testing.assert_array_equal(sol.history["cg_iterations"][:k],
                                      host.history["cg_iterations"][:k])
    else:
        assert abs(sol.n_iter - host.n_iter) <= 2


@pytest.mark.parametrize("loss", LOSSES)
def test_float32(loss):
    problem = small(loss, "group_l1", np.float32)
    sol = newton(problem, tol=1e-4, device="cpu")
    assert sol.status == OPTIMAL, sol.message
    assert sol.U.dtype == np.float32 and sol.info["dtype"] == "float32"
    host = newton(problem, tol=1e-4)
    assert within_gaps(sol, host, np.float32)
    assert abs(sol.n_iter - host.n_iter) <= 3
    # a float64 problem solved in float32 on the device: the host side is cast
    cast = newton(small(loss, "group_l1"), tol=1e-4, device="cpu", dtype="float32")
    assert cast.status == OPTIMAL and cast.info["dtype"] == "float32"
    assert within_gaps(cast, host, np.float32)


@pytest.mark.parametrize("loss", LOSSES)
def test_subsample_paths_run_on_the_device(loss, monkeypatch):
    """Warm start on a row subsample and subsampled Hessian (thresholds
    lowered): row subsets of the device data, answers as the NumPy path's."""
    monkeypatch.setattr(solver, "SAMPLE_MIN_N", 500)
    monkeypatch.setattr(solver, "HESSIAN_ROWS_PER_WEIGHT", 1)
    subsets = []
    rows = torch_newton.DeviceProducts.rows

    def counted(self, idx, sub):
        subsets.append(len(idx))
        return rows(self, idx, sub)

    monkeypatch.setattr(torch_newton.DeviceProducts, "rows", counted)
    problem = build(loss, "group_l1", bias=True, n_outputs=2, n_samples=2000,
                    n_gates=10, lam=1e-3)
    sol = newton(problem, tol=1e-6, device="cpu")
    assert sol.status == OPTIMAL, sol.message
    assert sol.certificate.relative_gap <= 1e-6
    assert subsets == [200, 200]  # the warm start's rows, the Hessian's
    host = newton(problem, tol=1e-6)
    assert within_gaps(sol, host, np.float64)
    assert abs(sol.n_iter - host.n_iter) <= max(2, 0.1 * host.n_iter)


def test_warm_start_callback_time_limit_and_interrupt(monkeypatch):
    problem = small("logistic", "group_l1")
    sol = newton(problem, tol=1e-8, device="cpu")
    again = newton(problem, tol=1e-8, device="cpu", warm_start=sol)
    assert again.status == OPTIMAL and again.n_iter == 0
    seen = []

    def stop(info):
        seen.append(info["weights"]()["U"].shape)
        return True

    cold = small("squared", "group_l1", lam=1e-4)
    stopped = newton(cold, tol=1e-12, callback=stop, device="cpu")
    assert stopped.status == USER_LIMIT and seen == [cold.weight_shape]
    assert "callback" in stopped.message
    limited = newton(cold, tol=1e-14, time_limit=1e-9, device="cpu")
    assert limited.status == USER_LIMIT and "time limit" in limited.message

    def interrupt(info):
        if info["iteration"] >= 2:
            raise KeyboardInterrupt

    with pytest.warns(ConvergenceWarning, match="KeyboardInterrupt"):
        broken = fast_solve(cold, tol=1e-14, method="newton", callback=interrupt,
                            device="cpu")
    assert broken.status == USER_LIMIT and broken.n_iter == 2
    monkeypatch.setattr(solver, "SAMPLE_MIN_N", 100)
    early = newton(cold, tol=1e-14, time_limit=1e-9, device="cpu")
    assert early.status == USER_LIMIT and early.U.shape == cold.weight_shape


@pytest.mark.parametrize("device", [None, "cpu"])
def test_a_stop_at_the_end_of_the_first_order_phase_ends_the_solve(device):
    """Logistic Newton-CG starts with R-FISTA to a loose tol; a stop asked
    in that phase's last report was dropped and the Newton steps began."""
    problem = small("logistic", "l2", lam=1e-2)
    calls = []

    def stop(info):
        calls.append(info["iteration"])
        return True

    with pytest.warns(ConvergenceWarning, match="callback"):
        sol = fast_solve(problem, tol=1e-10, method="newton", callback=stop,
                         device=device)
    assert sol.status == USER_LIMIT and len(calls) == 1
    assert sol.info["cg_iterations"] == 0
    assert sol.info["first_order_iterations"] == sol.n_iter == calls[0]


def test_methods_on_devices(monkeypatch):
    relu = build("squared", "group_l1", formulation="relu")
    with pytest.raises(ValueError, match="device: .*gated_relu"):
        fast_solve(relu, method="newton", device="cpu")
    gated = small("squared", "group_l1")
    with pytest.raises(ValueError, match="method: .*'fista', 'newton'"):
        fast_solve(gated, method="interior_point", device="cpu")
    assert check_method(gated, "auto") == "fista"
    assert check_method(gated, "newton") == "newton"
    monkeypatch.setattr(solver, "SAMPLE_MIN_N", 100)
    monkeypatch.setattr(solver, "HESSIAN_ROWS_PER_WEIGHT", 1)
    assert check_method(gated, "auto") == "newton"  # as newton.preferred says
    assert check_method(small("logistic", "group_l1"), "auto") == "fista"


def test_auto_on_a_device_goes_on_with_fista_where_newton_stalls(monkeypatch):
    # As fast_solve on the host (test_fast_newton): forced by an unreachable
    # stall factor; an explicit method="newton" never hands over.
    monkeypatch.setattr(solver, "SAMPLE_MIN_N", 500)
    monkeypatch.setattr(solver, "HESSIAN_ROWS_PER_WEIGHT", 1)
    monkeypatch.setattr(solver, "STALL_STEPS", 2)
    monkeypatch.setattr(solver, "STALL_FACTOR", 1e-30)
    problem = build("squared", "group_l1", bias=True, n_samples=2000, n_gates=10,
                    lam=1e-3)
    assert check_method(problem, "auto") == "newton"
    sol = fast_solve(problem, tol=1e-8, device="cpu")
    assert sol.info["method"] == "fista" and sol.info["fallback_from"] == "newton"
    assert sol.status == OPTIMAL and sol.certificate.relative_gap <= 1e-8
    assert within_gaps(sol, clarabel(problem), np.float64)
    assert newton(problem, tol=1e-8, device="cpu").info["method"] == "newton"
