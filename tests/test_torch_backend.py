"""The PyTorch backend on the CPU: operator, agreement with the compiled
backend and CLARABEL for every loss and penalty in both dtypes, statuses,
callback, warm start, device validation."""

import numpy as np
import pytest
from conftest import LOSSES, REGULARIZERS, make_data

torch = pytest.importorskip("torch")

import cvxnn  # noqa: E402
from cvxnn.core import operator  # noqa: E402
from cvxnn.core.errors import ConvergenceWarning  # noqa: E402
from cvxnn.core.status import OPTIMAL, OPTIMAL_INACCURATE, USER_LIMIT  # noqa: E402
from cvxnn_fast import fast_solve  # noqa: E402
from cvxnn_fast.pytorch import operator as device_operator  # noqa: E402
from cvxnn_fast.pytorch.operator import DeviceData  # noqa: E402

TOL = {np.float64: 1e-7, np.float32: 1e-4}
# Objectives of two solvers agree within the certified gap plus this (relative):
SLACK = {np.float64: 1e-6, np.float32: 2e-4}
# Without a penalty there is no gap, only the KKT residual: a looser bound.
NO_GAP_SLACK = {np.float64: 2e-5, np.float32: 3e-3}


def build(loss, reg, dtype=np.float64, lam=1e-2, n_samples=60, n_gates=10, seed=0):
    n_outputs = 3 if loss == "cross_entropy" else 2
    X, y = make_data(loss, n_samples, 4, n_outputs, seed=seed, dtype=dtype)
    return cvxnn.build_problem(X, y, loss=loss, regularizer=reg, lam=lam,
                               n_gates=n_gates, bias=True, random_state=seed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_device_operator_matches_numpy(dtype, monkeypatch):
    monkeypatch.setattr(device_operator, "BLOCK_ENTRIES", 50)  # several row blocks
    problem = build("squared", "group_l1", dtype, n_samples=37)
    c, P, d = problem.weight_shape
    data = DeviceData.from_arrays(problem.X, problem.patterns, problem.y, "cpu", dtype)
    assert data.block < problem.n_samples
    rng = np.random.default_rng(1)
    U = rng.standard_normal((c, P, d)).astype(dtype)
    S = rng.standard_normal((problem.n_samples, c)).astype(dtype)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    Yhat = data.forward(torch.from_numpy(U.reshape(c * P, d))).numpy()
    np.testing.assert_allclose(Yhat, operator.predict(problem.X, problem.patterns, U),
                               rtol=rtol, atol=rtol)
    G = data.adjoint(torch.from_numpy(S)).numpy().reshape(c, P, d)
    A = operator.design_matrix(problem.X.astype(np.float64), problem.patterns)
    np.testing.assert_allclose(G, (A.T @ S.astype(np.float64)).T.reshape(c, P, d),
                               rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reg", REGULARIZERS)
@pytest.mark.parametrize("loss", LOSSES)
def test_agrees_with_compiled_and_clarabel(loss, reg, dtype):
    problem = build(loss, reg, dtype)
    sol = fast_solve(problem, tol=TOL[dtype], device="cpu")
    assert sol.status == OPTIMAL and sol.solver == "fast"
    assert sol.info["device"] == "cpu" and sol.info["dtype"] == np.dtype(dtype).name
    assert sol.U.dtype == dtype
    # the device certificate: the same formulas as the Solution's
    dev = sol.info["device_certificate"]
    scale = max(1.0, abs(sol.objective))
    assert abs(dev["objective"] - sol.objective) <= 10 * SLACK[dtype] * scale
    assert sol.certificate.optimality <= 2 * TOL[dtype] + SLACK[dtype]
    gap = sol.certificate.duality_gap or 0.0
    slack = (SLACK if sol.certificate.duality_gap is not None else NO_GAP_SLACK)[dtype]
    for other in (fast_solve(problem, tol=TOL[dtype]),
                  build(loss, reg, np.float64).solve("CLARABEL")):
        assert sol.objective - other.objective <= gap + slack * scale
        other_gap = (other.certificate.duality_gap or 0.0) if other.solver == "fast" \
            else 0.0
        assert other.objective - sol.objective <= other_gap + slack * scale


@pytest.mark.parametrize("loss, tol", [("squared", 1e-6), ("squared", 1e-7),
                                       ("logistic", 1e-7), ("cross_entropy", 1e-7)])
def test_float32_loop_stops_where_the_weights_certify(loss, tol):
    """The loop judges its convergence on y's own products: the combined ones
    (rounded in float32) passed 1e-7 where y's certificate read 2.4e-7, and
    the solve ended optimal_inaccurate where the compiled loop certifies."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    t = np.tanh(X @ rng.standard_normal(4)) + 0.1 * rng.standard_normal(200)
    y = {"squared": t - t.mean(), "logistic": np.sign(t),
         "cross_entropy": np.digitize(t, [-0.3, 0.3])}[loss]
    problem = cvxnn.build_problem(X.astype(np.float32), y, loss=loss,
                                  regularizer="l2", lam=1e-3, n_gates=16, bias=True)
    sol = fast_solve(problem, tol=tol, device="cpu")
    assert sol.status == OPTIMAL and sol.certificate.optimality <= tol
    assert sol.info["dtype"] == "float32"


@pytest.mark.parametrize("data, working, advice", [
    (np.float32, None, "a problem built from float64 data certifies tighter"),
    (np.float64, "float32", "a float64 working dtype (dtype='float64') certifies")])
def test_short_of_tol_advice_fits_the_dtypes(data, working, advice):
    """A device solve whose loop reached tol but whose weights miss it: on a
    float32 problem the advice is float64 data (a float64 working dtype on
    float32 data certifies no tighter); on float64 data worked in float32,
    a float64 working dtype."""
    from cvxnn_fast.common.run import settle_status

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4)).astype(data)
    problem = cvxnn.build_problem(X, X @ np.ones(4, data), lam=1e-3, n_gates=16,
                                  bias=True)
    sol = fast_solve(problem, tol=1e-2, device="cpu", dtype=working)
    assert sol.status == OPTIMAL and sol.certificate.optimality > 1e-12
    settle_status(sol, 1e-12, working="device")
    assert sol.status == OPTIMAL_INACCURATE and advice in sol.message


def test_a_limit_stop_returns_the_best_certified_iterate_on_the_device_too():
    """As the compiled driver: the device returned its last iterate at
    3.1e-1 where its history had reached 4.4e-2 (correlated features: the
    residual's dual oscillates)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 20)) @ (rng.standard_normal((20, 20))
                                          * np.logspace(0, -2, 20))
    problem = cvxnn.build_problem(X, np.maximum(X @ rng.standard_normal((20, 3)), 0),
                                  lam=1e-3, n_gates=20, bias=True, random_state=0)
    with pytest.warns(ConvergenceWarning, match="best-certified iterate it saw"):
        sol = fast_solve(problem, method="fista", tol=1e-9, max_iter=568,
                         device="cpu")
    seen = np.minimum.accumulate(sol.history["optimality"])
    assert sol.history["optimality"][-1] > 4 * seen[-1]
    assert sol.certificate.optimality < 1.5 * seen[-1]


def test_dtype_follows_problem_on_cpu_and_can_be_chosen():
    problem = build("squared", "group_l1", np.float64)
    a = fast_solve(problem, tol=1e-4, device="cpu", dtype="float32")
    b = fast_solve(problem, tol=1e-4, device=torch.device("cpu"))
    assert a.info["dtype"] == "float32" and b.info["dtype"] == "float64"
    assert abs(a.objective - b.objective) <= 1e-3 * abs(b.objective)
    # the dtype objects users have at hand name the same working dtypes
    for given, name in ((np.float32, "float32"), (np.dtype("float64"), "float64"),
                        (torch.float32, "float32")):
        sol = fast_solve(problem, tol=1e-4, device="cpu", dtype=given)
        assert sol.info["dtype"] == name


def test_lam_above_lam_max_gives_zeros():
    problem = build("squared", "group_l1")
    problem.lam = 1.01 * cvxnn.core.certificates.lam_max(problem)
    sol = fast_solve(problem, device="cpu")
    assert sol.status == OPTIMAL and not np.any(sol.U)


def test_problem_from_torch_tensors():
    X, y = make_data("squared", 40, 3, 1, seed=2)
    from_numpy = cvxnn.build_problem(X, y, n_gates=8)
    from_torch = cvxnn.build_problem(torch.from_numpy(X), torch.from_numpy(y),
                                     n_gates=8)
    np.testing.assert_array_equal(from_numpy.patterns, from_torch.patterns)
    a = fast_solve(from_torch, device="cpu")
    b = fast_solve(from_numpy, device="cpu")
    assert a.objective == b.objective
    # bfloat16 (no NumPy type): read exactly, as float64 like other narrow input
    Xb = torch.from_numpy(X).to(torch.bfloat16)
    half = cvxnn.build_problem(Xb, torch.from_numpy(y), n_gates=8)
    assert half.X.dtype == np.float64
    np.testing.assert_array_equal(half.X, Xb.double().numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias, standardize", [(False, False), (True, False),
                                               (True, True)])
def test_patterns_formed_where_the_tensor_lives(dtype, bias, standardize,
                                                monkeypatch):
    from cvxnn.core import patterns

    monkeypatch.setattr(patterns, "_BLOCK_ENTRIES", 64)  # several row blocks
    rng = np.random.default_rng(3)
    X = (rng.standard_normal((300, 5)) * [1, 2, 5, 0.1, 3]).astype(dtype)
    X[:, 2] += 4  # off-centre, so standardize and the bias matter
    y = rng.standard_normal(300)
    kw = dict(n_gates=30, bias=bias, standardize=standardize, random_state=4)
    from_numpy = cvxnn.build_problem(X, y, **kw)
    raw = patterns.raw_patterns
    monkeypatch.setattr(patterns, "raw_patterns",
                        lambda *a: pytest.fail("patterns formed on the host"))
    from_torch = cvxnn.build_problem(torch.from_numpy(X), torch.from_numpy(y), **kw)
    np.testing.assert_array_equal(from_numpy.patterns, from_torch.patterns)
    np.testing.assert_array_equal(from_numpy.gates, from_torch.gates)
    assert from_torch.X.dtype == dtype
    # the same boolean matrix as X @ G > 0 on the data as the problem uses it
    np.testing.assert_array_equal(
        raw(from_torch.X, from_torch.gates), from_torch.patterns)
    ints = torch.from_numpy(rng.integers(-3, 4, (200, 3)))  # integer tensor
    p = cvxnn.build_problem(ints, torch.ones(200), n_gates=10, bias=True)
    assert p.X.dtype == np.float64
    np.testing.assert_array_equal(raw(p.X, p.gates), p.patterns)


def test_max_iter_time_limit_and_callback():
    problem = build("logistic", "group_l1", lam=1e-4, n_samples=120, n_gates=30)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        sol = fast_solve(problem, tol=1e-12, max_iter=5, device="cpu")
    assert sol.status == OPTIMAL_INACCURATE and sol.n_iter == 5
    assert len(sol.history["objective"]) == 6
    with pytest.warns(ConvergenceWarning, match="time limit"):
        sol = fast_solve(problem, tol=1e-15, max_iter=10**7, time_limit=0.3,
                         device="cpu")
    assert sol.status == USER_LIMIT
    seen = []

    def callback(info):
        seen.append(info)
        return True

    with pytest.warns(ConvergenceWarning, match="callback"):
        sol = fast_solve(problem, tol=1e-15, device="cpu", callback=callback)
    assert sol.status == USER_LIMIT and seen
    assert {"iteration", "time", "objective", "optimality", "weights"} <= set(seen[0])
    assert seen[0]["weights"]()["U"].shape == problem.weight_shape


def test_keyboard_interrupt_returns_the_iterate():
    problem = build("squared", "group_l1", lam=1e-4, n_samples=120, n_gates=30)

    def interrupt(info):
        raise KeyboardInterrupt

    with pytest.warns(ConvergenceWarning, match="KeyboardInterrupt"):
        sol = fast_solve(problem, tol=1e-15, max_iter=10**6, callback=interrupt,
                         device="cpu")
    assert sol.status == USER_LIMIT and np.isfinite(sol.objective)


@pytest.mark.parametrize("loss,method", [("squared", "fista"),
                                         ("logistic", "newton")])
def test_keyboard_interrupt_in_the_last_report_returns_the_iterate(loss, method):
    """A solve that ends before its first in-loop report (as Newton-CG's
    first phase does) meets the Ctrl-C in its last report: it escaped."""
    problem = build(loss, "group_l1", lam=1e-2)

    def interrupt(info):
        raise KeyboardInterrupt

    with pytest.warns(ConvergenceWarning, match="KeyboardInterrupt"):
        sol = fast_solve(problem, tol=1e-3, method=method, callback=interrupt,
                         device="cpu")
    assert sol.status == USER_LIMIT and np.isfinite(sol.objective)


def test_reported_numbers_are_those_of_the_reported_weights(monkeypatch):
    """The objective of a report is that of its weights(): the device loop
    reported the point before its step with the weights after it."""
    from cvxnn_fast.pytorch import fista

    monkeypatch.setattr(fista, "CHUNK_SECONDS", 0.0)  # report every iteration
    problem = build("squared", "group_l1", lam=1e-3, n_samples=200, n_gates=20)
    pairs = []

    def record(info):
        pairs.append((info["objective"], problem.objective(info["weights"]()["U"])))

    with pytest.warns(ConvergenceWarning, match="max_iter"):
        fast_solve(problem, tol=1e-12, max_iter=40, method="fista", device="cpu",
                   dtype="float64", callback=record)
    assert len(pairs) >= 30
    reported, recomputed = np.array(pairs).T
    np.testing.assert_allclose(reported, recomputed, rtol=1e-10)


def test_warm_start_from_a_solution():
    problem = build("cross_entropy", "group_l1")
    first = fast_solve(problem, tol=1e-8, device="cpu")
    again = fast_solve(problem, tol=1e-6, device="cpu", warm_start=first)
    assert again.status == OPTIMAL and again.n_iter <= 2


@pytest.mark.parametrize("device, error, match", [
    ("gpu", ValueError, "device: 'gpu'"),
    ("cuda:x", ValueError, "device: 'cuda:x'"),
    ("meta", ValueError, "'cpu' and 'cuda'"),
    (3, TypeError, "device: expected"),
])
def test_bad_devices_are_rejected(device, error, match):
    with pytest.raises(error, match=match):
        fast_solve(build("squared", "l2"), device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(ValueError, match="sees none"):
        fast_solve(build("squared", "l2"), device="cuda:1")


def test_unsupported_combinations_say_so():
    X, y = make_data("squared", 30, 3, 1)
    relu = cvxnn.build_problem(X, y, formulation="relu", n_gates=5)
    with pytest.raises(ValueError, match="gated_relu"):
        fast_solve(relu, device="cpu")
    with pytest.raises(ValueError, match="method"):
        fast_solve(build("squared", "l2"), device="cpu", method="interior_point")
    with pytest.raises(ValueError, match="dtype"):
        fast_solve(build("squared", "l2"), dtype="float16")
    with pytest.raises(ValueError, match="dtype"):
        fast_solve(build("squared", "l2"), device="cpu", dtype="float16")


def test_estimator_and_cli_take_the_device(tmp_path):
    from cvxnn.cli import main
    from cvxnn.estimators import ConvexReLUClassifier

    X, y = make_data("cross_entropy", 60, 3, 3, seed=4)
    clf = ConvexReLUClassifier(lam=1e-2, n_gates=10, device="cpu").fit(X, y)
    assert clf.solution_.info["device"] == "cpu"
    reference = ConvexReLUClassifier(lam=1e-2, n_gates=10).fit(X, y)
    assert clf.score(X, y) == pytest.approx(reference.score(X, y), abs=0.05)
    with pytest.raises(ValueError, match="device"):
        ConvexReLUClassifier(solver="CLARABEL", device="cpu").fit(X, y)
    data = tmp_path / "data.npz"
    np.savez(data, X=X, y=y)
    main(["fit", str(data), "--task", "classification", "--lam", "1e-2",
          "--n-gates", "10", "--device", "cpu", "--out", str(tmp_path / "m.npz")])
    assert (tmp_path / "m.npz").exists()


def test_a_warm_start_that_overflows_the_loss_is_named():
    from cvxnn.core.errors import NumericalBreakdown

    problem = build("logistic", "group_l1", lam=1e-3)
    start = np.full(problem.weight_shape, 1e306)
    with np.errstate(all="ignore"), pytest.raises(NumericalBreakdown) as info:
        fast_solve(problem, warm_start=start, method="fista", device="cpu")
    assert "NaN/inf at the starting point (a warm start with huge weights" in \
        str(info.value)
