#!/usr/bin/env bash
# One-shot GPU verification for a machine with a CUDA GPU and no network:
#   1. build in place (pip --no-build-isolation -e .; falls back to setup.py build_ext --inplace),
#   2. pytest -m gpu --require-gpu,
#   3. the GPU benchmarks (prox; HOG, LBP, GLCM and Gabor features; the solver),
# writing logs and JSON to $OUT (or benchmarks/results/ when OUT is unset).
# Meant to stay inside 8 minutes on an H100/H200 (not yet timed since GLCM and Gabor were
# added; GPU_CHECK_DESCRIPTORS="HOG LBP" skips their benchmarks): only sm_90 is compiled
# unless MTLCLASSIC_CUDA_ARCHS says otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
DEST="${OUT:-benchmarks/results}"
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1 MTLCLASSIC_CUDA=1
export MTLCLASSIC_CUDA_ARCHS="${MTLCLASSIC_CUDA_ARCHS:-90}"
export MTLCLASSIC_RESULTS="$DEST"
PY="${PYTHON:-python3}"
LOG="$DEST/gpu_check.log"
: > "$LOG"
say() { echo "== $*" | tee -a "$LOG"; }

say "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$LOG"
"$PY" -c "import sys, numpy, cupy; print(sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__)" 2>&1 | tee -a "$LOG"

say "build (archs $MTLCLASSIC_CUDA_ARCHS)"
t0=$(date +%s)
if ! "$PY" -m pip install --no-build-isolation --no-deps -e . >> "$LOG" 2>&1; then
    say "pip editable install failed; building in place with setup.py"
    "$PY" setup.py build_ext --inplace >> "$LOG" 2>&1 || { tail -40 "$LOG"; exit 1; }
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
say "build took $(( $(date +%s) - t0 )) s"
"$PY" -m mtlclassic info --json > "$DEST/gpu_info.json" 2>> "$LOG"
"$PY" -m mtlclassic info 2>&1 | tee -a "$LOG"

# the GLCM and Gabor kernels (the newest, not yet run on a GPU) first, then the rest
say "pytest -m gpu --require-gpu -k 'glcm or gabor'"
"$PY" -m pytest -m gpu --require-gpu -q -p no:cacheprovider -o addopts="--import-mode=importlib -ra" \
    -k "glcm or gabor" 2>&1 | tee "$DEST/gpu_pytest_glcm_gabor.log"
rc_new=${PIPESTATUS[0]}
say "pytest -m gpu --require-gpu -k 'not (glcm or gabor)'"
"$PY" -m pytest -m gpu --require-gpu -q -p no:cacheprovider -o addopts="--import-mode=importlib -ra" \
    -k "not (glcm or gabor)" 2>&1 | tee "$DEST/gpu_pytest.log"
rc=${PIPESTATUS[0]}
[ "$rc_new" -ne 0 ] && rc=$rc_new

say "benchmarks"
for b in benchmarks/prox.py benchmarks/gpu.py; do
    [ -f "$b" ] || continue
    say "$b"
    if [ "$b" = benchmarks/prox.py ]; then
        args=(--rows 1000000 --gpu-rows 4000000); limit=300
    else
        # shellcheck disable=SC2206  # word splitting of the descriptor list is intended
        args=(--descriptors ${GPU_CHECK_DESCRIPTORS:-HOG LBP GLCM Gabor}); limit=420
    fi
    timeout "$limit" "$PY" "$b" "${args[@]}" 2>&1 | tee -a "$LOG" || rc=1
done
say "done (pytest exit $rc)"
exit "$rc"
