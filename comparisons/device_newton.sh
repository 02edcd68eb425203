#!/usr/bin/env bash
# The prepared GPU check of Newton-CG on a device (docs/design/newton.md, "On
# devices"), for a machine with one CUDA GPU, PyTorch and a C compiler; not
# yet run. Same expectations as device_bench.sh (.whl/ in the repository
# root where the machine lacks cvxpy and friends). About 3 minutes:
#  1. correctness: small problems, every loss, newton on cuda (float64)
#     against the compiled path: objective within the gaps, steps;
#  2. synthetic n = 1e6 (bench_large): newton@cuda, fista@cuda, newton.
source comparisons/device_setup.sh
python3 - <<'EOF' 2>&1 | tee "$OUT/newton_check.log"
import sys, warnings
sys.path.insert(0, "tests")
from test_fast_solver import build
from cvxnn_fast import fast_solve
warnings.simplefilter("ignore")
for loss in ("squared", "logistic", "cross_entropy"):
    for reg in ("group_l1", "l1", "l2"):
        p = build(loss, reg, bias=True, n_outputs=2, n_samples=200, n_gates=10,
                  lam=1e-3)
        a = fast_solve(p, method="newton", tol=1e-8, device="cuda", dtype="float64")
        b = fast_solve(p, method="newton", tol=1e-8)
        gaps = a.certificate.duality_gap + b.certificate.duality_gap
        ok = abs(a.objective - b.objective) <= gaps + 1e-9 * abs(b.objective)
        print(f"{loss:14s} {reg:9s} {'OK ' if ok else 'BAD'} {a.status} "
              f"steps {a.n_iter}/{b.n_iter} dF {a.objective - b.objective:.1e} "
              f"gap {a.certificate.relative_gap:.1e}")
EOF
cd comparisons && timeout 400 python3 bench_large.py --problems synthetic-1m \
    --methods newton@cuda,fista@cuda,newton --time-limit 60 2>&1 |
    tee "$OUT/bench_large.log"
