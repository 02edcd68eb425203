# Sourced by the prepared GPU runs (device_newton.sh, device_raw.sh) from the
# repository root: $OUT for their logs (default /tmp/out), the wheels in
# .whl/ installed where the machine lacks cvxpy and friends (no package
# registry there), and the Cython kernels built in place.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD
python3 setup.py -q build_ext --inplace -j 3 >"$OUT/build.log" 2>&1 ||
    { tail -30 "$OUT/build.log"; exit 1; }
