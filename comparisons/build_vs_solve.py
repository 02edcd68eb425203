"""How long building a CVXPY program takes compared with solving it.

Gated ReLU, squared loss, group_l1, lam = 1e-3 on seeded Gaussian data
(n = 2000, d = 50, 500 gates by default), solved by CLARABEL through cvxnn.
Prints the time of each stage:

* patterns:  build_problem (validation, gate sampling, activation patterns)
* expression: build_cvxpy (explicit sparse design, CVXPY expression tree)
* compile + solve: CVXPY's Problem.solve, split into CLARABEL's own time
             and the rest (CVXPY's canonicalization)

Each stage is printed as soon as it ends (wall seconds and this process's
CPU seconds, since the machine may be shared). ``--time-limit`` is handed to
CLARABEL; a solve stopped by it reports status ``user_limit``.

Usage: python comparisons/build_vs_solve.py [--n 2000] [--d 50] [--gates 500]
       [--time-limit SECONDS] [--verbose]
"""

import argparse
import time

import numpy as np

import cvxnn
from cvxnn.solvers.cvxpy_backend import build_cvxpy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--gates", type=int, default=500)
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.d))
    y = np.tanh(X @ rng.standard_normal(args.d)) + 0.1 * rng.standard_normal(args.n)

    clock = Clock()
    problem = cvxnn.build_problem(X, y, formulation="gated_relu", loss="squared",
                                  regularizer="group_l1", lam=1e-3,
                                  n_gates=args.gates, random_state=0)
    print(problem)
    clock.stage("patterns   (build_problem)")
    model = build_cvxpy(problem)
    clock.stage("expression (build_cvxpy)")
    options = {} if args.time_limit is None else {"time_limit": args.time_limit}
    model.problem.solve(solver="CLARABEL", verbose=args.verbose, **options)
    solver_time = model.problem.solver_stats.solve_time
    total = clock.stage("compile + solve (Problem.solve)")
    print(f"  of which CLARABEL's own time {solver_time:.2f} s, CVXPY compile "
          f"{total - solver_time:.2f} s")
    print(f"status {model.problem.status}, objective {model.problem.value:.10g}, "
          f"iterations {model.problem.solver_stats.num_iters}", flush=True)


class Clock:
    """Prints wall and CPU seconds of each stage as it ends."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stage(self, name):
        wall, cpu = time.perf_counter(), time.process_time()
        elapsed = wall - self.wall
        print(f"{name:34s} {elapsed:9.2f} s wall {cpu - self.cpu:9.2f} s cpu",
              flush=True)
        self.wall, self.cpu = wall, cpu
        return elapsed

if __name__ == "__main__":
    main()
