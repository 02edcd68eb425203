"""The PyTorch backend: one iteration against its two GEMMs, time to relative
gap 1e-3 on Fashion-MNIST, and two Gloo processes against one.

Sections (``--sections``, comma-separated):

* ``iteration``: median R-FISTA iteration (from ``sol.history``) against the
  time of its two GEMMs (``X_b U^T`` and ``M_b^T X_b`` over the same row
  blocks, no masking, no loss) on the same device; target within 1.5x.
* ``gap``: time to relative duality gap 1e-3 (``tol=1e-3``; setup = copy to
  the device + power iterations, included) for 1000 and 2000 Gaussian gates,
  squared (one-hot) and cross-entropy losses, lam ``--lam``.
* ``pyscnn``: the paper's reference code (``pip install pyscnn``) on the
  same squared problems and device (same data, gates and patterns; its
  objective is checked equal to cvxnn's first): its time to the objective
  that cvxnn's solve certified, against cvxnn's time to it.
* ``check``: correctness on the device before timing anything: small
  problems of every loss (group_l1, l1) solved on the device and by the
  compiled CPU backend, objectives within the two certified gaps; float64
  and float32; and a one-process sharded solve (NCCL on a GPU, Gloo on the
  CPU) against the one-process device solve, R-FISTA and Newton-CG.
* ``distributed``: the same solve by two Gloo processes on this machine
  (``torch.multiprocessing.spawn``, each loading its half of the rows) and by
  one process; times and the largest difference of the solutions.

``--budget`` seconds (from the start) bounds the whole run: a section that
would not fit in what is left is skipped and says so.

GPU (see comparisons/README.md; comparisons/device_bench.sh is the prepared
device run):
    PYTHONPATH=. python comparisons/bench_torch.py --device cuda
CPU, reduced for a 2-core machine:
    PYTHONPATH=. python comparisons/bench_torch.py --device cpu --n-train 5000 \
        --gates 200,400 --iteration-gates 200 --max-iter 300
"""

import argparse
import os
import socket
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _idx import DEFAULT_DIR, load_fashion_mnist  # noqa: E402
from _suite import load_average, machine_header  # noqa: E402

import cvxnn  # noqa: E402
from cvxnn_fast import fast_solve  # noqa: E402
from cvxnn_fast.pytorch.operator import DeviceData  # noqa: E402


def fashion(args, n_rows=None):
    X, y, _, _ = load_fashion_mnist(args.data)
    rows = np.random.default_rng(0).permutation(len(X))[: n_rows or args.n_train]
    return np.ascontiguousarray(X[np.sort(rows)]), y[np.sort(rows)]


def problem_for(X, y, loss, n_gates, lam, device="cpu"):
    """The problem; from a tensor on ``device`` (patterns formed there) on a GPU."""
    target = np.eye(10, dtype=X.dtype)[y] if loss == "squared" else y
    data = torch.from_numpy(X).to(device) if torch.device(device).type != "cpu" \
        else X
    return cvxnn.build_problem(data, target, loss=loss, lam=lam, n_gates=n_gates,
                               bias=True, random_state=0)


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def gemm_time(problem, device, dtype, repeats=5):
    """Median time of the two GEMMs of one iteration, over the same row blocks."""
    data = DeviceData.from_arrays(problem.X, problem.patterns, problem.y, device,
                                  dtype)
    U = torch.randn(data.weight_rows, data.n_features, device=data.device,
                    dtype=data.dtype)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for s in range(0, data.X.shape[0], data.block):
            Xb = data.X[s:s + data.block]
            Z = Xb @ U.T
            _ = Z.T @ Xb
        synchronize(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def section_iteration(X, y, args):
    print("\n## one iteration against its two GEMMs")
    print("| loss | P | n | iteration (median) | two GEMMs | ratio |")
    print("|---|---|---|---|---|---|")
    for loss in ("squared", "cross_entropy"):
        problem = problem_for(X, y, loss, args.iteration_gates, args.lam)
        sol = fast_solve(problem, tol=1e-12, max_iter=args.iterations,
                         device=args.device, dtype=args.dtype)
        per_iter = float(np.median(np.diff(sol.history["time"])[1:]))
        gemms = gemm_time(problem, args.device, sol.info["dtype"])
        print(f"| {loss} | {problem.n_patterns} | {problem.n_samples} | "
              f"{per_iter * 1e3:.1f} ms | {gemms * 1e3:.1f} ms | "
              f"{per_iter / gemms:.2f}x |", flush=True)


def section_gap(X, y, args, solved, n_gates):
    """Fills ``solved[(loss, n_gates)] = (problem, solution)`` for ``pyscnn``."""
    print(f"\n## time to relative gap 1e-3 (lam {args.lam:g}, n {len(X)}, "
          f"time limit {args.time_limit:g} s)")
    print("| loss | gates | P | build_problem | setup | solve | iterations | status "
          "| gap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for loss in ("squared", "cross_entropy"):
        if not args.clock.fits(args.time_limit + 20, f"gap {loss} {n_gates}"):
            continue
        start = time.perf_counter()
        problem = problem_for(X, y, loss, n_gates, args.lam, args.device)
        built = time.perf_counter() - start
        start = time.perf_counter()
        sol = fast_solve(problem, tol=1e-3, max_iter=args.max_iter,
                         device=args.device, dtype=args.dtype,
                         time_limit=args.time_limit)
        wall = time.perf_counter() - start
        hist = sol.history
        setup = wall - hist["time"][-1] if len(hist["time"]) else wall
        solved[(loss, n_gates)] = (problem, sol)
        save(args, f"cvxnn_{loss}_{n_gates}", time=hist["time"],
             objective=hist["objective"], optimality=hist["optimality"])
        print(f"| {loss} | {n_gates} | {problem.n_patterns} | {built:.2f} s | "
              f"{setup:.2f} s | "
              f"{hist['time'][-1]:.2f} s | {sol.n_iter} | {sol.status} | "
              f"{sol.certificate.optimality:.2e} |", flush=True)


def time_to(history, target):
    """First recorded time at which the objective is <= target (None if never)."""
    hit = np.flatnonzero(np.asarray(history["objective"]) <= target)
    return float(history["time"][hit[0]]) if len(hit) else None


def section_pyscnn(args, solved, n_gates):
    """pyscnn's R-FISTA on the squared problems that ``gap`` solved."""
    import _reference

    print(f"\n## pyscnn on the same problems (squared one-hot, lam {args.lam:g}, "
          f"time limit {args.pyscnn_time_limit:g} s)")
    if not _reference.available():
        print("pyscnn is not installed (pip install pyscnn): skipped.")
        return
    their_device = "cuda" if torch.device(args.device).type == "cuda" else "cpu"
    print("target = the objective cvxnn certified (relative gap <= 1e-3 when it "
          "got there); times exclude setup on both sides.")
    print("| gates | cvxnn gap | cvxnn to target | pyscnn to target | pyscnn "
          "iterations | pyscnn final objective - target (rel.) | ratio |")
    print("|---|---|---|---|---|---|---|")
    if ("squared", n_gates) not in solved or \
            not args.clock.fits(args.pyscnn_time_limit + 30, f"pyscnn {n_gates}"):
        return
    problem, sol = solved[("squared", n_gates)]
    target = float(sol.history["objective"][-1])
    ours = time_to(sol.history, target)
    hist, _, _ = _reference.solve(
        problem, max_iter=10**6, tol=1e-12, time_limit=args.pyscnn_time_limit,
        device=their_device, objective_every=args.pyscnn_every)
    save(args, f"pyscnn_squared_{n_gates}", time=hist["time"],
         objective=hist["objective"])
    theirs = time_to(hist, target * (1 + 1e-7))
    rel = (hist["objective"][-1] - target) / abs(target)
    shown = f"{theirs:.2f} s" if theirs is not None else \
        f"> {hist['time'][-1]:.1f} s"
    ratio = f"{theirs / ours:.1f}x" if theirs is not None else \
        f"> {hist['time'][-1] / ours:.1f}x"
    print(f"| {n_gates} | {sol.certificate.optimality:.1e} | {ours:.2f} s | "
          f"{shown} | {hist['iterations']} | {rel:+.1e} | {ratio} |", flush=True)


def section_check(args):
    """Device solves against the compiled CPU backend on small problems."""
    print("\n## check: device against the compiled backend (n 1500, d 12, P 20); "
          "allowed = the two certified gaps + 100 eps of the dtype, relative")
    print("| loss | penalty | dtype | device objective | CPU objective | "
          "difference / allowed |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1500, 12))
    labels = (X[:, :3] @ rng.standard_normal((3, 3))).argmax(1)
    worst = 0.0
    for dtype, tol in (("float64", 1e-8), ("float32", 1e-5)):
        Xd = X.astype(dtype)
        for loss, target in (("squared", np.eye(3, dtype=dtype)[labels]),
                             ("logistic", (labels == 0).astype(dtype)),
                             ("cross_entropy", labels)):
            for reg in ("group_l1", "l1"):
                problem = cvxnn.build_problem(Xd, target, loss=loss, regularizer=reg,
                                              lam=1e-3, n_gates=20, bias=True,
                                              random_state=0)
                dev = fast_solve(problem, tol=tol, max_iter=20000,
                                 device=args.device, dtype=dtype)
                cpu = fast_solve(problem, tol=tol, max_iter=20000)
                # the two certified gaps, plus the rounding of objectives
                # evaluated in the working dtype (~1e-5 relative in float32)
                rounding = 100 * np.finfo(dtype).eps
                allowed = (dev.certificate.optimality + cpu.certificate.optimality
                           + rounding) * abs(cpu.objective)
                ratio = abs(dev.objective - cpu.objective) / allowed
                worst = max(worst, ratio)
                print(f"| {loss} | {reg} | {dtype} | {dev.objective:.10g} | "
                      f"{cpu.objective:.10g} | {ratio:.2f} |", flush=True)
    print(f"worst difference / allowed: {worst:.2f} "
          f"({'PASS' if worst <= 1 else 'FAIL'})")
    sharded_check(X, labels, args.device)


def sharded_check(X, labels, device):
    """A one-process sharded solve (NCCL on a GPU, Gloo on the CPU) equals the
    one-process device solve, for R-FISTA and Newton-CG."""
    import torch.distributed as dist

    from cvxnn_fast.pytorch.distributed import build_sharded_problem, solve_sharded

    backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}",
                            rank=0, world_size=1)
    methods = {"fista": 1e-8, "newton": 1e-12}  # Newton-CG converges to rounding
    try:
        sharded = build_sharded_problem(lambda rank, world: (X, labels),
                                        loss="cross_entropy", lam=1e-3, n_gates=20,
                                        bias=True, random_state=0, device=device,
                                        dtype="float64")
        two = {m: solve_sharded(sharded, tol=tol, max_iter=20000, method=m)
               for m, tol in methods.items()}
    finally:
        dist.destroy_process_group()
    problem = cvxnn.build_problem(X, labels, loss="cross_entropy", lam=1e-3,
                                  n_gates=20, bias=True, random_state=0)
    for method, tol in methods.items():
        one = fast_solve(problem, tol=tol, max_iter=20000, device=device,
                         dtype="float64", method=method)
        diff = np.abs(two[method].U - one.U).max() / np.abs(one.U).max()
        print(f"{backend.upper()} sharded {method} (1 process) against one-process "
              f"{device}: largest weight difference {diff:.1e} relative, objectives "
              f"{two[method].objective:.12g} / {one.objective:.12g} "
              f"({'PASS' if diff <= 1e-8 else 'FAIL'})")


def save(args, name, **arrays):
    """Adds ``name_key`` arrays to ``--save``'s one .npz (rewritten each time)."""
    if not args.save:
        return
    args.records.update({f"{name}_{k}": np.asarray(v) for k, v in arrays.items()})
    np.savez(args.save, **args.records)


class Clock:
    """What is left of ``--budget`` seconds; sections ask before they start."""

    def __init__(self, budget):
        self.start, self.budget = time.perf_counter(), budget

    def fits(self, seconds, what):
        left = self.budget - (time.perf_counter() - self.start)
        if seconds <= left:
            return True
        print(f"(skipped {what}: needs ~{seconds:.0f} s, {left:.0f} s of the "
              "budget left)", flush=True)
        return False


def _worker(rank, world_size, port, args, out):
    import torch.distributed as dist

    from cvxnn_fast.pytorch.distributed import build_sharded_problem, solve_sharded

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world_size)

    def load_shard(rank, world_size):  # each process reads only its rows
        X, y = fashion(args, args.distributed_n)
        if args.distributed_loss == "squared":
            y = np.eye(10, dtype=X.dtype)[y]  # one-hot, as problem_for
        cut = np.linspace(0, len(X), world_size + 1).astype(int)
        return X[cut[rank]:cut[rank + 1]], y[cut[rank]:cut[rank + 1]]

    start = time.perf_counter()
    problem = build_sharded_problem(load_shard, loss=args.distributed_loss,
                                    lam=args.lam, n_gates=args.distributed_gates,
                                    bias=True, random_state=0, device="cpu")
    sol = solve_sharded(problem, tol=1e-3, max_iter=args.distributed_iter,
                        method=args.distributed_method)
    if rank == 0:
        np.savez(out, U=sol.U, time=sol.history["time"][-1],
                 wall=time.perf_counter() - start, n_iter=sol.n_iter,
                 products=sol.info.get("hessian_products", 0))
    dist.destroy_process_group()


def section_distributed(args):
    X, y = fashion(args, args.distributed_n)
    method, loss = args.distributed_method, args.distributed_loss
    print(f"\n## two Gloo processes against one (CPU, {method}, {loss}, "
          f"tol 1e-3, n {len(X)}, {args.distributed_gates} gates)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = f"/tmp/bench_torch_{os.getpid()}.npz"
    torch.multiprocessing.spawn(_worker, args=(2, port, args, out), nprocs=2)
    two = np.load(out)
    problem = problem_for(X, y, loss, args.distributed_gates, args.lam)
    torch.set_num_threads(1)
    one = fast_solve(problem, tol=1e-3, max_iter=args.distributed_iter, device="cpu",
                     method=method)
    torch.set_num_threads(2)
    one2 = fast_solve(problem, tol=1e-3, max_iter=args.distributed_iter,
                      device="cpu", method=method)
    diff = np.abs(two["U"] - one.U).max() / np.abs(one.U).max()
    print("| run | iterations | Hessian products (Newton) | solve time |")
    print("|---|---|---|---|")
    for name, n_iter, products, seconds in [
            ("1 process, 1 thread", one.n_iter, one.info.get("hessian_products", 0),
             one.history["time"][-1]),
            ("1 process, 2 threads", one2.n_iter,
             one2.info.get("hessian_products", 0), one2.history["time"][-1]),
            ("2 processes (Gloo), 1 thread each", int(two["n_iter"]),
             int(two["products"]), float(two["time"]))]:
        print(f"| {name} | {n_iter} | {products} | {seconds:.2f} s |")
    print(f"largest difference of the solutions, relative: {diff:.1e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default=None, help="float32 (GPU default) or float64")
    p.add_argument("--data", default=DEFAULT_DIR)
    p.add_argument("--n-train", type=int, default=60000)
    p.add_argument("--gates", default="1000,2000")
    p.add_argument("--iteration-gates", type=int, default=1000)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--lam", type=float, default=1e-4)
    p.add_argument("--max-iter", type=int, default=20000)
    p.add_argument("--time-limit", type=float, default=60.0,
                   help="seconds for each cvxnn solve in the gap section")
    p.add_argument("--pyscnn-time-limit", type=float, default=60.0)
    p.add_argument("--pyscnn-every", type=int, default=5,
                   help="pyscnn's objective is evaluated every k iterations")
    p.add_argument("--budget", type=float, default=float("inf"),
                   help="seconds for the whole run; sections that do not fit "
                        "are skipped")
    p.add_argument("--distributed-n", type=int, default=None,
                   help="rows for the distributed section (default --n-train)")
    p.add_argument("--distributed-gates", type=int, default=None,
                   help="gates for the distributed section (default "
                        "--iteration-gates)")
    p.add_argument("--distributed-iter", type=int, default=200)
    p.add_argument("--distributed-loss", default="cross_entropy",
                   choices=("squared", "cross_entropy"))
    p.add_argument("--distributed-method", default="fista",
                   choices=("fista", "newton"),
                   help="the method of the distributed section")
    p.add_argument("--save", default=None,
                   help=".npz file for every solve's time/objective/gap records")
    p.add_argument("--sections", default="iteration,gap,pyscnn,distributed")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (CPU; default torch's)")
    args = p.parse_args(argv)
    args.gates = [int(g) for g in args.gates.split(",")]
    args.distributed_gates = args.distributed_gates or args.iteration_gates
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_header())
    print(f"torch {torch.__version__}, device {args.device}, load {load_average()}")
    args.clock, args.records = Clock(args.budget), {}
    sections = args.sections.split(",")
    unknown = set(sections) - {"check", "iteration", "gap", "pyscnn", "distributed"}
    if unknown:
        p.error(f"--sections: unknown {sorted(unknown)}")
    if "check" in sections:
        section_check(args)
    X, y = fashion(args)
    if "iteration" in sections:
        section_iteration(X, y, args)
    solved = {}
    for n_gates in args.gates:  # per gate count: cvxnn's solves, then pyscnn's
        if "gap" in sections or "pyscnn" in sections:
            section_gap(X, y, args, solved, n_gates)
        if "pyscnn" in sections:
            section_pyscnn(args, solved, n_gates)
    if "distributed" in sections and args.clock.fits(90, "distributed"):
        section_distributed(args)


if __name__ == "__main__":
    main()
