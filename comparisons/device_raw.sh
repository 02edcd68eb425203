#!/usr/bin/env bash
# The prepared GPU run of issue 16's raw-pixel targets (comparisons/README.md,
# bench_large): full Fashion-MNIST, raw standardized pixels and PCA-100
# features, P = 100, lam 1e-3, squared one-hot and cross-entropy, R-FISTA on
# the device (float32, feature metric). Not yet run: no GPU was lent to the
# sessions that wrote it. Expects, in the repository root, .fmnist/ with the
# four Fashion-MNIST IDX files (the Debian package's .gz files) and, where
# the machine lacks cvxpy and friends, .whl/ as for device_bench.sh. About 5
# minutes: four problems, one device solve each of at most 60 s, plus each
# problem's build on the host.
source comparisons/device_setup.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
cd comparisons && timeout 540 python3 bench_large.py --data ../.fmnist \
    --problems fmnist-raw-sq,fmnist-raw-ce,fmnist-pca-sq,fmnist-pca-ce \
    --methods fista@cuda --tol 1e-4 --time-limit 60 2>&1 |
    tee "$OUT/bench_raw.log"
