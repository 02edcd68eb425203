"""Speed and memory of the compiled solvers, measured side by side in one run.

Sections (``--sections``, default all):

* ``gated``: gated ReLU, squared loss, group_l1, lam = 1e-3, n = 2000, d = 50,
  500 gates (P = distinct patterns), to relative duality gap 1e-6: fast
  ("auto", which is the interior-point method here, and R-FISTA) vs
  CLARABEL through cvxnn (CVXPY canonicalization included in its time).
* ``relu``: ReLU, same loss and regularizer, n = 500, d = 20, 100 gates, to
  1e-6 with cone violation below 1e-6: fast ("auto", which is the
  interior-point method here, and the augmented Lagrangian) vs CLARABEL.
* ``iteration``: one R-FISTA iteration against the two GEMMs it needs at
  n = 20000, d = 200, P = 1000 (numpy's GEMM, same shapes, same machine).
* ``metric``: gated R-FISTA in the pattern-mean metric (the default,
  :mod:`cvxnn_fast.fista.preconditioner`) against the same loop in the Euclidean metric
  (beta = 0), iterations and median time to gap 1e-6, on the ``gated``
  problem, diabetes (squared, P = 500) and breast cancer (logistic, P = 100).
* ``memory``: peak memory and time per iteration of a gated solve at the size
  of MNIST (n = 60000, d = 784, P = 1000, 10 outputs), float32 and float64,
  each in a fresh subprocess (peak RSS from getrusage).

Data are a planted two-layer ReLU teacher (10 neurons, Gaussian inputs,
5% noise); ``--data noise`` fits pure noise instead (harder: a dense optimum).
Times are medians over ``--repeats`` runs (default 3); CLARABEL solves of
the gated problem take minutes each (use --clarabel-repeats to limit them).

Usage: python comparisons/bench_fast.py [--sections gated,relu,iteration,metric,memory]
       [--repeats 3] [--clarabel-repeats 3] [--data teacher|noise]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
from _suite import machine_header

import cvxnn
from cvxnn_fast import fast_solve


def teacher_data(n, d, seed=0, kind="teacher"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if kind == "noise":
        return X, rng.standard_normal(n)
    W1 = rng.standard_normal((10, d)) / np.sqrt(d)
    y = np.maximum(X @ W1.T, 0) @ rng.standard_normal(10)
    y = y / y.std()
    return X, y + 0.05 * rng.standard_normal(n)


def timed(fn, repeats):
    """The median run (time and result) of ``repeats`` calls of ``fn``.

    Median of an odd count: an actual run, so quantities derived from its
    result (e.g. CVXPY setup = total - solver time) belong to that run.
    """
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        runs.append((time.perf_counter() - start, result))
    runs.sort(key=lambda run: run[0])
    elapsed, result = runs[(len(runs) - 1) // 2]
    return float(elapsed), result


def compare(problem, repeats, clarabel_repeats, label, methods=("auto",)):
    """fast (each of ``methods``) against one CLARABEL timing; one row each."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast_runs = [timed(lambda m=m: fast_solve(problem, tol=1e-6, max_iter=200_000,
                                                  method=m), repeats)
                     for m in methods]
        t_cvx, ref = timed(lambda: problem.solve("CLARABEL"), clarabel_repeats)
    rows = []
    for t_fast, fast in fast_runs:
        rel = abs(fast.objective - ref.objective) / abs(ref.objective)
        method = fast.info["method"]
        rows.append({
            "problem": label, "method": method, "fast_s": t_fast,
            "clarabel_s": t_cvx, "speedup": t_cvx / t_fast,
            "fast_status": fast.status, "fast_iterations": fast.n_iter,
            "fast_gap": fast.certificate.relative_gap,
            "fast_cone_violation": fast.certificate.cone_violation,
            "clarabel_status": ref.status,
            "clarabel_gap": ref.certificate.relative_gap,
            "clarabel_setup_s": t_cvx - ref.info["solver_time"],
            "objective_rel_diff": rel})
        print(f"{label}: fast/{method} {t_fast:.3f}s ({fast.status}, {fast.n_iter} "
              f"it, gap {fast.certificate.relative_gap:.1e}) | CLARABEL {t_cvx:.2f}s "
              f"({ref.status}, gap {ref.certificate.relative_gap:.1e}) | speedup "
              f"{t_cvx / t_fast:.1f}x | objectives differ by {rel:.1e} (relative)",
              flush=True)
    return rows


def section_gated(args):
    """Both gated methods: the interior point ("auto" here) and R-FISTA."""
    X, y = teacher_data(2000, 50, kind=args.data)
    problem = cvxnn.build_problem(X, y, lam=1e-3, n_gates=500)
    return compare(problem, args.repeats, args.clarabel_repeats,
                   f"gated n=2000 d=50 P={problem.n_patterns}",
                   methods=("auto", "fista"))


def section_relu(args):
    """Both ReLU methods: the interior point ("auto" here) and the augmented
    Lagrangian, against one CLARABEL timing."""
    X, y = teacher_data(500, 20, kind=args.data)
    problem = cvxnn.build_problem(X, y, formulation="relu", lam=1e-3, n_gates=100)
    return compare(problem, args.repeats, args.clarabel_repeats,
                   f"relu n=500 d=20 P={problem.n_patterns}",
                   methods=("auto", "augmented_lagrangian"))


def section_iteration(args):
    X, y = teacher_data(20000, 200, kind=args.data)
    problem = cvxnn.build_problem(X, y, lam=1e-3, n_gates=1000)
    n, d, P = problem.n_samples, problem.n_features, problem.n_patterns
    rng = np.random.default_rng(1)
    U = rng.standard_normal((P, d))
    M = rng.standard_normal((n, P))
    t_fwd, _ = timed(lambda: problem.X @ U.T, 5)
    t_adj, _ = timed(lambda: M.T @ problem.X, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = fast_solve(problem, tol=1e-12, max_iter=args.iterations)
    per_iter = float(np.median(np.diff(sol.history["time"])))
    flops = 2 * 2 * n * d * P
    row = {"problem": f"iteration n={n} d={d} P={P}", "iteration_s": per_iter,
           "two_gemms_s": t_fwd + t_adj, "ratio": per_iter / (t_fwd + t_adj),
           "iteration_gflops": flops / per_iter / 1e9,
           "gemm_gflops": flops / (t_fwd + t_adj) / 1e9}
    print(f"iteration at n={n}, d={d}, P={P}: {per_iter * 1e3:.1f} ms "
          f"({row['iteration_gflops']:.1f} GFLOP/s) vs its two GEMMs "
          f"{(t_fwd + t_adj) * 1e3:.1f} ms ({row['gemm_gflops']:.1f} GFLOP/s): "
          f"ratio {row['ratio']:.2f}", flush=True)
    return row


def section_metric(args):
    from unittest import mock

    from sklearn.datasets import load_breast_cancer, load_diabetes

    from cvxnn_fast.fista import solver as engine

    X, y = teacher_data(2000, 50, kind=args.data)
    Xd, yd = load_diabetes(return_X_y=True)
    Xb, yb = load_breast_cancer(return_X_y=True)
    cases = [
        ("gated n=2000 d=50 P=500", cvxnn.build_problem(X, y, lam=1e-3, n_gates=500)),
        ("diabetes squared P=500", cvxnn.build_problem(
            Xd, (yd - yd.mean()) / yd.std(), lam=1e-3, n_gates=500, standardize=True)),
        ("breast cancer logistic P=100", cvxnn.build_problem(
            Xb, yb, loss="logistic", lam=1e-3, n_gates=100, standardize=True)),
    ]
    def solve(problem, beta_rule):
        # beta = 0 runs the same compiled loop in the Euclidean metric.
        with warnings.catch_warnings(), \
                mock.patch.object(engine, "metric_beta", beta_rule):
            warnings.simplefilter("ignore")
            return timed(lambda: fast_solve(problem, tol=1e-6, max_iter=200_000),
                         args.repeats)

    rows = []
    for label, problem in cases:
        row = {"problem": f"metric: {label}"}
        for name, rule in (("metric", engine.metric_beta),
                           ("euclidean", lambda problem: 0.0)):
            t, sol = solve(problem, rule)
            row.update({f"{name}_s": t, f"{name}_iterations": sol.n_iter,
                        f"{name}_beta": sol.info["metric_beta"],
                        f"{name}_status": sol.status,
                        f"{name}_objective": sol.objective})
        row["speedup"] = row["euclidean_s"] / row["metric_s"]
        print(f"{label}: metric (beta {row['metric_beta']:g}) {row['metric_s']:.2f}s "
              f"({row['metric_iterations']} it, "
              f"{row['metric_status']}) | Euclidean {row['euclidean_s']:.2f}s "
              f"({row['euclidean_iterations']} it, {row['euclidean_status']}) | "
              f"{row['speedup']:.2f}x", flush=True)
        rows.append(row)
    return rows


MEMORY_CHILD = """
import json, resource, sys, time, warnings
import numpy as np
import cvxnn
from cvxnn_fast import fast_solve
dtype = np.dtype(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.random((60000, 784), dtype=np.float32).astype(dtype)
Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 60000)]
start = time.perf_counter()
problem = cvxnn.build_problem(X, Y, loss="squared", lam=1e-4, n_gates=1000)
built = time.perf_counter() - start
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    sol = fast_solve(problem, tol=1e-12, max_iter=int(sys.argv[2]))
per_iter = float(np.median(np.diff(sol.history["time"])))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"dtype": dtype.name, "P": problem.n_patterns, "build_s": built,
                  "iteration_s": per_iter, "peak_gb": peak}))
"""


def section_memory(args):
    rows = []
    for dtype in ("float32", "float64"):
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, dtype,
                              str(args.memory_iterations)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["problem"] = f"MNIST-size {dtype}"
        print(f"MNIST-size (60000 x 784, P={row['P']}, 10 outputs) {dtype}: "
              f"peak memory {row['peak_gb']:.2f} GB, {row['iteration_s']:.1f} s per "
              f"iteration, build {row['build_s']:.1f} s", flush=True)
        rows.append(row)
    return rows


SECTIONS = {"gated": section_gated, "relu": section_relu,
            "iteration": section_iteration, "metric": section_metric,
            "memory": section_memory}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clarabel-repeats", type=int, default=3)
    parser.add_argument("--data", choices=["teacher", "noise"], default="teacher")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--memory-iterations", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args(argv)
    print(f"{machine_header()}, {resource.getpagesize()}-byte pages", flush=True)
    rows = []
    for name in args.sections.split(","):
        result = SECTIONS[name](args)
        rows.extend(result if isinstance(result, list) else [result])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
