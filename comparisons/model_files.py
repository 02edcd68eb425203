"""What checking a model file on load costs, on a large solution.

Times, side by side in one run (medians of --repeat), for a gated ReLU
solution with random weights:

* ``read``: reading every array of the archive with ``numpy.load`` (what
  loading cost before the checks; decompression dominates);
* ``structure``: dtypes, shapes, metadata and finiteness checks;
* ``checksum``: SHA-256 of every array and of the header;
* ``objective``: the objective recomputed from the stored weights and data;
* ``load``: the whole ``cvxnn.io.load`` (read + checks + building the solution).

Run: ``python comparisons/model_files.py --n-samples 50000 --d 200 --gates 200``
"""

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import cvxnn
from cvxnn import io
from cvxnn.core.solution import Solution
from cvxnn.io import archive as io_archive
from cvxnn.io import checks as io_checks


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=50_000)
    parser.add_argument("--d", type=int, default=200)
    parser.add_argument("--gates", type=int, default=200)
    parser.add_argument("--outputs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n_samples, args.d))
    y = rng.standard_normal((args.n_samples, args.outputs))
    problem = cvxnn.build_problem(X, y, n_gates=args.gates, lam=1e-3)
    U = rng.standard_normal(problem.weight_shape) * 1e-2
    sol = Solution.from_weights(problem, status="optimal", solver="none",
                                solve_time=0.0, U=U)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.npz")
        save_time = _median_time(lambda: io.save(path, sol), 1)
        header, arrays = io_archive.read_archive(path, "solution", lambda h, a: None)
        blocks = {"U": arrays["U"]}
        rows = {
            "read": lambda: io_archive.read_archive(path, "solution",
                                                    lambda h, a: None, verify=False),
            "structure": lambda: io_checks.check_solution(header["solution"], arrays),
            "checksum": lambda: io_archive.verify_checksum(header, arrays),
            "objective": lambda: io_checks.check_objective(
                problem, blocks, header["solution"]["objective"]),
            "load": lambda: io.load(path),
        }
        times = {name: _median_time(fn, args.repeat) for name, fn in rows.items()}
        size = os.path.getsize(path)
    raw = sum(a.nbytes for a in arrays.values())
    print(f"n_samples={args.n_samples} d={args.d} P={problem.n_patterns} "
          f"n_outputs={args.outputs}: arrays {raw / 1e6:.0f} MB, file "
          f"{size / 1e6:.0f} MB, save {save_time:.2f} s")
    print(f"{'step':<10} {'median s':>9} {'x read':>7}")
    for name, t in times.items():
        print(f"{name:<10} {t:>9.3f} {t / times['read']:>7.2f}")


if __name__ == "__main__":
    main()
