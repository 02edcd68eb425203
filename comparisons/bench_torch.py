"""The PyTorch backend: one iteration against its two GEMMs, time to relative
gap 1e-3 on Fashion-MNIST, and two Gloo processes against one.

Sections (``--sections``, comma-separated):

* ``iteration``: median R-FISTA iteration (from ``sol.history``) against the
  time of its two GEMMs (``X_b U^T`` and ``M_b^T X_b`` over the same row
  blocks, no masking, no loss) on the same device; target within 1.5x.
* ``gap``: time to relative duality gap 1e-3 (``tol=1e-3``; setup = copy to
  the device + power iterations, included) for 1000 and 2000 Gaussian gates,
  squared (one-hot) and cross-entropy losses, lam ``--lam``.
* ``distributed``: the same solve by two Gloo processes on this machine
  (``torch.multiprocessing.spawn``, each loading its half of the rows) and by
  one process; times and the largest difference of the solutions.

GPU (see comparisons/README.md):
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


def fashion(args):
    X, y, _, _ = load_fashion_mnist(args.data)
    rows = np.random.default_rng(0).permutation(len(X))[: args.n_train]
    return np.ascontiguousarray(X[np.sort(rows)]), y[np.sort(rows)]


def problem_for(X, y, loss, n_gates, lam):
    target = np.eye(10, dtype=X.dtype)[y] if loss == "squared" else y
    return cvxnn.build_problem(X, target, loss=loss, lam=lam, n_gates=n_gates,
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


def section_gap(X, y, args):
    print(f"\n## time to relative gap 1e-3 (lam {args.lam:g}, n {len(X)})")
    print("| loss | gates | P | setup | to gap 1e-3 | iterations | status | gap |")
    print("|---|---|---|---|---|---|---|---|")
    for loss in ("squared", "cross_entropy"):
        for n_gates in args.gates:
            problem = problem_for(X, y, loss, n_gates, args.lam)
            start = time.perf_counter()
            sol = fast_solve(problem, tol=1e-3, max_iter=args.max_iter,
                             device=args.device, dtype=args.dtype)
            wall = time.perf_counter() - start
            hist = sol.history
            setup = wall - hist["time"][-1] if len(hist["time"]) else wall
            print(f"| {loss} | {n_gates} | {problem.n_patterns} | {setup:.2f} s | "
                  f"{hist['time'][-1]:.2f} s | {sol.n_iter} | {sol.status} | "
                  f"{sol.certificate.optimality:.2e} |", flush=True)


def _worker(rank, world_size, port, args, out):
    import torch.distributed as dist

    from cvxnn_fast.pytorch.distributed import build_sharded_problem, solve_sharded

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                            rank=rank, world_size=world_size)

    def load_shard(rank, world_size):  # each process reads only its rows
        X, y = fashion(args)
        cut = np.linspace(0, len(X), world_size + 1).astype(int)
        return X[cut[rank]:cut[rank + 1]], y[cut[rank]:cut[rank + 1]]

    start = time.perf_counter()
    problem = build_sharded_problem(load_shard, loss="cross_entropy", lam=args.lam,
                                    n_gates=args.iteration_gates, bias=True,
                                    random_state=0, device="cpu")
    sol = solve_sharded(problem, tol=1e-3, max_iter=args.max_iter)
    if rank == 0:
        np.savez(out, U=sol.U, time=sol.history["time"][-1],
                 wall=time.perf_counter() - start, n_iter=sol.n_iter)
    dist.destroy_process_group()


def section_distributed(X, y, args):
    print("\n## two Gloo processes against one (CPU, cross-entropy, tol 1e-3)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = f"/tmp/bench_torch_{os.getpid()}.npz"
    torch.multiprocessing.spawn(_worker, args=(2, port, args, out), nprocs=2)
    two = np.load(out)
    problem = problem_for(X, y, "cross_entropy", args.iteration_gates, args.lam)
    torch.set_num_threads(1)
    one = fast_solve(problem, tol=1e-3, max_iter=args.max_iter, device="cpu")
    torch.set_num_threads(2)
    one2 = fast_solve(problem, tol=1e-3, max_iter=args.max_iter, device="cpu")
    diff = np.abs(two["U"] - one.U).max() / np.abs(one.U).max()
    print("| run | iterations | solve time |")
    print("|---|---|---|")
    print(f"| 1 process, 1 thread | {one.n_iter} | {one.history['time'][-1]:.2f} s |")
    print(f"| 1 process, 2 threads | {one2.n_iter} | "
          f"{one2.history['time'][-1]:.2f} s |")
    print(f"| 2 processes (Gloo), 1 thread each | {int(two['n_iter'])} | "
          f"{float(two['time']):.2f} s |")
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
    p.add_argument("--max-iter", type=int, default=2000)
    p.add_argument("--sections", default="iteration,gap,distributed")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (CPU; default torch's)")
    args = p.parse_args(argv)
    args.gates = [int(g) for g in args.gates.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_header())
    print(f"torch {torch.__version__}, device {args.device}, load {load_average()}")
    X, y = fashion(args)
    sections = args.sections.split(",")
    if "iteration" in sections:
        section_iteration(X, y, args)
    if "gap" in sections:
        section_gap(X, y, args)
    if "distributed" in sections:
        section_distributed(X, y, args)
    print("\npyscnn: not compared in this script (see comparisons/README.md).")


if __name__ == "__main__":
    main()
