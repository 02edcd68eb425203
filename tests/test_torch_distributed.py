"""Data-parallel R-FISTA and Newton-CG: two Gloo processes on localhost give
the single-process solution and certificate (float64, to 1e-10 relative), in
the pattern-mean metric and (correlated features) in the feature metric."""

import contextlib
import io
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cvxnn  # noqa: E402
from cvxnn_fast import fast_solve  # noqa: E402

N_SAMPLES, N_FEATURES, N_GATES, LAM, TOL = 200, 5, 20, 1e-2, 1e-6
# Newton-CG over the shards: the squared loss and cross-entropy (which starts
# with the sharded R-FISTA), to tol 1e-12: its last steps converge
# quadratically, so both runs end at the optimum to rounding even where a CG
# run stopped an iteration apart (at 1e-9 the weights differed by 1e-10).
NEWTON_CASES, NEWTON_TOL = ("squared", "cross_entropy"), 1e-12
# max_iter at which the correlated case's last gap is 3.25x its best
BEST_STOP = 161


# case: (loss, features correlated, so that the feature metric runs)
CASES = {"squared": ("squared", False), "cross_entropy": ("cross_entropy", False),
         "correlated": ("squared", True)}


def _data(case):
    loss, correlated = CASES[case]
    rng = np.random.default_rng(3)
    d = 4 * N_FEATURES if correlated else N_FEATURES
    X = rng.standard_normal((N_SAMPLES, d))
    if correlated:
        X = X @ (rng.standard_normal((d, d)) * np.logspace(0, -2, d)).T
    y = (rng.integers(0, 3, N_SAMPLES) if loss == "cross_entropy"
         else X @ rng.standard_normal((d, 2)))
    gates = np.random.default_rng(4).standard_normal((d + 1, N_GATES))
    return loss, X, y, gates


def _worker(rank, world_size, port, losses, out_path):
    import torch.distributed as dist

    from cvxnn_fast.pytorch.distributed import build_sharded_problem, solve_sharded

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world_size)
    try:
        for case in losses:
            loss, X, y, gates = _data(case)

            def load_shard(rank, world_size, X=X, y=y):  # rows 0-99 and 100-239
                cut = [0, 100, N_SAMPLES][: world_size] + [N_SAMPLES]
                return X[cut[rank]:cut[rank + 1]], y[cut[rank]:cut[rank + 1]]

            problem = build_sharded_problem(load_shard, loss=loss, lam=LAM,
                                            gates=gates, bias=True, device="cpu")
            sol = solve_sharded(problem, tol=TOL)
            cert = sol.certificate
            np.savez(f"{out_path}-{case}-{rank}.npz", U=sol.U, gates=problem.gates,
                     n_iter=sol.n_iter, status=sol.status,
                     network=sol.network.predict(X[:5]),
                     beta=sol.info["metric_beta"], polished=sol.info["polished"],
                     feature_metric=sol.info["feature_metric"],
                     cert=[cert.objective, cert.dual_objective, cert.duality_gap,
                           cert.kkt_residual])
            if case == "correlated":  # stopped where the last gap rose 3x
                stopped = solve_sharded(problem, tol=1e-12, max_iter=BEST_STOP)
                np.savez(f"{out_path}-best-{rank}.npz", U=stopped.U,
                         message=stopped.message)
            if case == "squared":  # a bad method is refused, naming the argument
                try:
                    solve_sharded(problem, method="interior_point")
                except ValueError as exc:
                    np.save(f"{out_path}-refused-{rank}.npy", str(exc))
                _mismatched_shards(X, y, gates, rank, out_path)
                _float32_statuses(X, y[:, 0], gates, out_path, rank)
                _refused_on_every_process(problem, sol, rank, out_path)
            if case in NEWTON_CASES:
                sol = solve_sharded(problem, tol=NEWTON_TOL, method="newton")
                cert = sol.certificate
                np.savez(f"{out_path}-{case}-newton-{rank}.npz", U=sol.U,
                         n_iter=sol.n_iter, status=sol.status,
                         method=sol.info["method"], cg=sol.info["cg_iterations"],
                         first=sol.info["first_order_iterations"],
                         cert=[cert.objective, cert.dual_objective, cert.duality_gap,
                               cert.kkt_residual])
    finally:
        dist.destroy_process_group()


def _mismatched_shards(X, y, gates, rank, out_path):
    """Shards that disagree on the outputs or the dtype: a ValueError naming
    the shard on every process (Gloo aborted the process before)."""
    from cvxnn_fast.pytorch.distributed import build_sharded_problem

    def fails_on_one(r, w):
        if r == 1:
            raise OSError("no such shard file")
        return X[:100], y[:100]

    codes = (y[:, :2] > 0).astype(float)  # logistic columns: {0, 1} / {-1, +1}
    loaders = {
        "outputs": lambda r, w: ((X[:100], y[:100]) if r == 0 else
                                 (X[100:], y[100:, :1])),
        "dtype": lambda r, w: ((X[:100], y[:100]) if r == 0 else
                               (X[100:].astype(np.float32), y[100:])),
        "loader": fails_on_one,
        "length": lambda r, w: (X[:100], y[:100]) if r == 0 else (X[100:], y[101:]),
        "coding": lambda r, w: ((X[:100], codes[:100]) if r == 0 else
                                (X[100:], 2 * codes[100:] - 1)),
    }
    messages = []
    for name, load in loaders.items():
        try:
            build_sharded_problem(load, lam=LAM, gates=gates, bias=True, device="cpu",
                                  loss="logistic" if name == "coding" else "squared")
            messages.append(f"{name}: accepted")
        except (ValueError, OSError, RuntimeError) as exc:
            messages.append(f"{type(exc).__name__}: {exc}")
    np.save(f"{out_path}-mismatch-{rank}.npy", np.array(messages))


def _refused_on_every_process(problem, sol, rank, out_path):
    """A warm start given on one process only, and saving a sharded solution
    (its rows on many processes): refused on every process, by name."""
    messages = []
    for attempt in (lambda: solve_sharded_(problem, sol if rank == 0 else None),
                    lambda: cvxnn.save(f"{out_path}-sol-{rank}.npz", sol)):
        try:
            attempt()
            messages.append("accepted")
        except ValueError as exc:
            messages.append(str(exc))
    np.save(f"{out_path}-refused-both-{rank}.npy", np.array(messages))
    from cvxnn_fast.pytorch.distributed import solve_sharded

    stopped = solve_sharded(problem, tol=1e-12, max_iter=10_000,
                            callback=lambda state: rank == 1 and state["iteration"] > 0)
    np.save(f"{out_path}-stopped-{rank}.npy",
            np.array([stopped.status, stopped.message, str(stopped.n_iter)]))
    bad = []
    for options in ({"verbose": "no"}, {"callback": 3}):
        try:
            solve_sharded(problem, **options)
            bad.append("accepted")
        except TypeError as exc:
            bad.append(str(exc))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        solve_sharded(problem, tol=1e-12, max_iter=3, verbose=True)
    bad.append(printed.getvalue())
    np.save(f"{out_path}-bad-options-{rank}.npy", np.array(bad))


def _float32_statuses(X, y, gates, out_path, rank):
    """(tol, optimal or not, certificate) of float32 sharded solves at tols
    near and below float32's reach."""
    import warnings

    from cvxnn_fast.pytorch.distributed import build_sharded_problem, solve_sharded

    def load_shard(rank, world_size):
        return (X[100 * rank:100 * (rank + 1)].astype(np.float32),
                y[100 * rank:100 * (rank + 1)])

    rows = []
    for regularizer in ("l2", "group_l1"):
        problem = build_sharded_problem(load_shard, regularizer=regularizer, lam=1e-3,
                                        gates=gates, bias=True, device="cpu")
        for tol in (1e-6, 1e-7, 1e-8):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sol = solve_sharded(problem, tol=tol)
            rows.append([tol, sol.status == "optimal", sol.certificate.optimality])
    np.save(f"{out_path}-float32-{rank}.npy", np.array(rows))


def solve_sharded_(problem, warm_start):
    from cvxnn_fast.pytorch.distributed import solve_sharded

    return solve_sharded(problem, tol=TOL, warm_start=warm_start, max_iter=5)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOSSES = tuple(CASES)


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    """Both losses solved by one pair of spawned Gloo processes (one start-up)."""
    out = str(tmp_path_factory.mktemp("gloo") / "shard")
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), LOSSES, out),
                                nprocs=2)
    return out


@pytest.mark.parametrize("loss", LOSSES)
def test_two_gloo_processes_match_one(two_process_runs, loss):
    case, (loss, correlated) = loss, CASES[loss]
    out = f"{two_process_runs}-{case}"
    _, X, y, gates = _data(case)
    problem = cvxnn.build_problem(X, y, loss=loss, lam=LAM, gates=gates, bias=True)
    single = fast_solve(problem, tol=TOL, device="cpu")
    # the metric (pattern-mean or feature) and the polish (over the shards'
    # all-reduced sums) both ran
    assert single.info["feature_metric"] == correlated
    assert single.info["polished"] and (correlated or single.info["metric_beta"] > 0)
    dev_cert = single.info["device_certificate"]
    ranks = [np.load(f"{out}-{r}.npz") for r in range(2)]
    np.testing.assert_array_equal(ranks[0]["U"], ranks[1]["U"])  # replicated
    for part in ranks:
        assert str(part["status"]) == single.status == "optimal"
        np.testing.assert_array_equal(part["gates"], problem.gates)
        assert float(part["beta"]) == single.info["metric_beta"]
        assert bool(part["feature_metric"]) == correlated
        assert bool(part["polished"])
        assert abs(int(part["n_iter"]) - single.n_iter) <= 1
        scale = np.abs(single.U).max()
        np.testing.assert_allclose(part["U"], single.U, rtol=0, atol=1e-10 * scale)
        # the network of a sharded solution (its problem is no Problem)
        np.testing.assert_allclose(part["network"], single.predict(X[:5]),
                                   rtol=1e-8, atol=1e-10)
        objective, dual, gap, kkt = part["cert"]
        for mine, theirs in [(objective, dev_cert["objective"]),
                             (objective, single.certificate.objective),
                             (dual, dev_cert["dual_objective"]),
                             (dual, single.certificate.dual_objective)]:
            assert abs(mine - theirs) <= 1e-10 * abs(theirs)
        assert abs(gap - single.certificate.duality_gap) <= 1e-10 * abs(objective)
        assert abs(kkt - dev_cert["kkt_residual"]) <= 1e-10 * max(1.0, kkt)


@pytest.mark.parametrize("case", NEWTON_CASES)
def test_two_gloo_processes_match_one_with_newton(two_process_runs, case):
    """Newton-CG over two shards (products all-reduced, loss sums and the
    Kronecker factors summed, CG and line search replicated) takes the
    single-process steps: same weights and certificate to 1e-10."""
    loss, _ = CASES[case]
    _, X, y, gates = _data(case)
    problem = cvxnn.build_problem(X, y, loss=loss, lam=LAM, gates=gates, bias=True)
    single = fast_solve(problem, tol=NEWTON_TOL, method="newton", device="cpu")
    ranks = [np.load(f"{two_process_runs}-{case}-newton-{r}.npz") for r in range(2)]
    np.testing.assert_array_equal(ranks[0]["U"], ranks[1]["U"])  # replicated
    scale = np.abs(single.U).max()
    for part in ranks:
        assert str(part["status"]) == single.status == "optimal"
        assert str(part["method"]) == "newton"
        # CG stops on a residual threshold: rounding in the all-reduced sums
        # can move a stop by an iteration here and there, and a moved stop
        # changes the later steps' CG runs (cross-entropy: 578 against 649 CG
        # products over the whole solve), and with them, near the end, whether
        # tol is met a Newton step or two earlier (cross-entropy: 15 against
        # 14 on one BLAS build, two apart with OpenBLAS's AVX-512 kernels); the
        # first phase's iterations and the weights stay those of one process,
        # checked below
        assert abs(int(part["n_iter"]) - single.n_iter) <= 2
        assert abs(int(part["cg"]) - single.info["cg_iterations"]) <= \
            0.25 * single.info["cg_iterations"]
        assert int(part["first"]) == single.info["first_order_iterations"]
        assert (int(part["first"]) > 0) == (loss != "squared")
        np.testing.assert_allclose(part["U"], single.U, rtol=0, atol=1e-10 * scale)
        objective, dual, gap, kkt = part["cert"]
        assert abs(objective - single.certificate.objective) <= 1e-10 * objective
        assert abs(dual - single.certificate.dual_objective) <= 1e-10 * objective
        assert gap <= NEWTON_TOL * objective


def test_sharded_solve_refuses_other_methods(two_process_runs):
    for rank in range(2):
        message = str(np.load(f"{two_process_runs}-refused-{rank}.npy"))
        assert message.startswith("method: the PyTorch backend runs")


def test_shards_that_disagree_are_refused_on_every_process(two_process_runs):
    """Each process raises (none waits in a collective for one that failed):
    its own error, or one naming the process that failed."""
    for rank in range(2):
        outputs, dtype, loader, length, coding = np.load(
            f"{two_process_runs}-mismatch-{rank}.npy")
        assert outputs == "ValueError: y shard: the processes' targets have " \
                          "different numbers of outputs [1, 2]."
        assert dtype.startswith("ValueError: X shard: the processes' shards have "
                                "different dtypes")
        assert loader == ("OSError: no such shard file" if rank == 1 else
                          "RuntimeError: build_sharded_problem: process 1 failed: "
                          "OSError: no such shard file")
        rows = N_SAMPLES - 100  # rank 1's X shard; its y has one row fewer
        expected = f"y shard: has {rows - 1} rows but the X shard has {rows}"
        assert expected in length and (rank == 1) == length.startswith("ValueError")
        # the two codings of logistic columns, as build_problem on the stack
        assert coding.startswith("ValueError: y:") and "-1" in coding


def test_a_stop_asked_by_one_process_reads_the_same_on_all(two_process_runs):
    """Every process returns the same Solution: the others said "stopped by
    another process" where the asking one named its callback."""
    runs = [np.load(f"{two_process_runs}-stopped-{rank}.npy") for rank in range(2)]
    assert runs[0].tolist() == runs[1].tolist()
    assert runs[0][0] == "user_limit" and "callback" in runs[0][1]


def test_sharded_limit_stop_returns_the_best_certified_iterate(two_process_runs):
    """The same choice on every process, and the one process makes."""
    loss, X, y, gates = _data("correlated")
    problem = cvxnn.build_problem(X, y, loss=loss, lam=LAM, gates=gates, bias=True)
    with pytest.warns(cvxnn.ConvergenceWarning):
        single = fast_solve(problem, tol=1e-12, max_iter=BEST_STOP, device="cpu",
                            method="fista")
    assert "best-certified iterate it saw" in single.message
    for rank in range(2):
        part = np.load(f"{two_process_runs}-best-{rank}.npz")
        assert "best-certified iterate it saw" in str(part["message"])
        np.testing.assert_allclose(part["U"], single.U, rtol=0,
                                   atol=1e-10 * np.abs(single.U).max())


def test_sharded_solve_checks_its_options_before_work(two_process_runs):
    for rank in range(2):
        verbose, callback, printed = np.load(
            f"{two_process_runs}-bad-options-{rank}.npy")
        assert verbose == "verbose: expected True or False, got 'no'."
        assert callback == "callback: expected a callable or None, got 3."
        # progress lines on rank 0 only, named after the function
        assert printed.startswith("solve_sharded  iter") == (rank == 0)
        assert "fast_solve" not in printed


def test_sharded_float32_status_is_its_certificates(two_process_runs):
    """"optimal" exactly where the returned weights' certificate meets tol
    (float32 solves used to claim it on the loop's own test, 1e-7 off:
    3.9e-7 at tol 1e-7)."""
    runs = [np.load(f"{two_process_runs}-float32-{rank}.npy") for rank in range(2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    tol, optimal, optimality = runs[0].T
    np.testing.assert_array_equal(optimal == 1, optimality <= tol)
    # l2 at 1e-6 certifies; group_l1 on these exact linear targets stalls near
    # 1e-4 in float32 (as in one process)
    assert optimal[0] and not optimal[3:].any()


def test_one_process_warm_start_and_saving_a_sharded_solution_are_refused(
        two_process_runs):
    for rank in range(2):
        warm, save = np.load(f"{two_process_runs}-refused-both-{rank}.npy")
        assert warm.startswith("warm_start: differs between the processes (given "
                               "on [0] of 2)")
        assert save.startswith("solution: its problem is a ShardedProblem")


# Newton-CG's row subsamples over the shards: n above SAMPLE_MIN_N (lowered
# to 5000 for the test) draws the subsample warm start and the subsampled
# Hessian on every shard.
SAMPLED_N, SAMPLED_MIN_N = 12_000, 5000


def _sampled_data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((SAMPLED_N, N_FEATURES))
    y = X @ rng.standard_normal((N_FEATURES, 2)) + np.maximum(X[:, :2], 0)
    gates = np.random.default_rng(4).standard_normal((N_FEATURES + 1, N_GATES))
    return X, y, gates


def _sampled_worker(rank, world_size, port, out_path):
    import torch.distributed as dist

    from cvxnn_fast.newton import solver as newton
    from cvxnn_fast.pytorch.distributed import build_sharded_problem, solve_sharded

    newton.SAMPLE_MIN_N = SAMPLED_MIN_N
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world_size)
    try:
        X, y, gates = _sampled_data()

        def load_shard(rank, world_size):  # rows 0-4999 and 5000-11999
            cut = [0, 5000, SAMPLED_N]
            return X[cut[rank]:cut[rank + 1]], y[cut[rank]:cut[rank + 1]]

        problem = build_sharded_problem(load_shard, lam=1e-3, gates=gates,
                                        bias=True, device="cpu")
        sol = solve_sharded(problem, tol=NEWTON_TOL, method="auto")
        # A Newton-CG that stalls (forced: an unreachable factor) hands over
        # to the sharded R-FISTA, as in one process.
        newton.STALL_STEPS, newton.STALL_FACTOR = 1, 1e-30
        handed = solve_sharded(problem, tol=1e-8, method="auto")
        np.savez(f"{out_path}-{rank}.npz", U=sol.U, n_iter=sol.n_iter,
                 status=sol.status, method=sol.info["method"],
                 cert=[sol.certificate.objective, sol.certificate.duality_gap],
                 handed_U=handed.U, handed_status=handed.status,
                 handed_method=handed.info["method"],
                 handed_from=handed.info.get("fallback_from", ""),
                 handed_cert=[handed.certificate.objective,
                              handed.certificate.duality_gap])
    finally:
        dist.destroy_process_group()


def test_sharded_newton_samples_rows_on_every_shard(tmp_path, monkeypatch):
    """``auto`` takes Newton-CG at large n when sharded too; each shard draws
    its own rows for the warm start and the Hessian, so the steps differ
    from one process's, but the optimum is the same to 1e-10."""
    from cvxnn_fast.newton import solver as newton

    out = str(tmp_path / "sampled")
    torch.multiprocessing.spawn(_sampled_worker, args=(2, _free_port(), out),
                                nprocs=2)
    monkeypatch.setattr(newton, "SAMPLE_MIN_N", SAMPLED_MIN_N)
    X, y, gates = _sampled_data()
    problem = cvxnn.build_problem(X, y, lam=1e-3, gates=gates, bias=True)
    assert newton.preferred(problem)
    single = fast_solve(problem, tol=NEWTON_TOL, method="newton", device="cpu")
    ranks = [np.load(f"{out}-{r}.npz") for r in range(2)]
    np.testing.assert_array_equal(ranks[0]["U"], ranks[1]["U"])
    scale = np.abs(single.U).max()
    for part in ranks:
        assert str(part["status"]) == single.status == "optimal"
        assert str(part["method"]) == "newton"
        np.testing.assert_allclose(part["U"], single.U, rtol=0, atol=1e-10 * scale)
        objective, gap = part["cert"]
        assert abs(objective - single.certificate.objective) <= 1e-10 * objective
        assert gap <= NEWTON_TOL * objective
        assert str(part["handed_status"]) == "optimal"
        assert (str(part["handed_method"]), str(part["handed_from"])) == (
            "fista", "newton")
        objective, gap = part["handed_cert"]
        assert gap <= 1e-8 * objective
        assert abs(objective - single.certificate.objective) <= gap + 1e-12
    np.testing.assert_array_equal(ranks[0]["handed_U"], ranks[1]["handed_U"])
