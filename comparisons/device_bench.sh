#!/usr/bin/env bash
# The prepared GPU run of bench_torch.py (issue 17), for a machine with one
# CUDA GPU, PyTorch and a C compiler but no package registry.
#
# Expects, in the repository root:
#   .whl/     cp312 wheels of what the machine lacks (cvxpy 1.9.3, clarabel, qdldl,
#             osqp, highspy, pyscnn, linalg_backends), made with
#             `pip download --no-deps --only-binary=:all: --python-version 3.12 ...`
#   .fmnist/  the four Fashion-MNIST IDX files (the Debian package's .gz files)
# Writes the log and every solve's records under $OUT (default /tmp/out).
# BUDGET (seconds, default 380) bounds the benchmark itself; sections that
# would not fit are skipped. Extra arguments go to bench_torch.py.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
start=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem \
    --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 setup.py -q build_ext --inplace -j 3 >"$OUT/build.log" 2>&1 ||
    { tail -30 "$OUT/build.log"; exit 1; }
echo "install + build: $(( $(date +%s) - start )) s"
python3 comparisons/bench_torch.py --device cuda --data .fmnist \
    --sections check,iteration,gap,pyscnn,distributed \
    --gates 1000,2000 --iteration-gates 1000 --time-limit 40 \
    --pyscnn-time-limit 40 --budget "${BUDGET:-380}" \
    --distributed-n 6000 --distributed-gates 50 --distributed-iter 100 \
    --save "$OUT/records.npz" "$@" 2>&1 | tee "$OUT/bench.log"
