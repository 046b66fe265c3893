#!/usr/bin/env bash
# The GPU tables of docs/performance.md, in one command on a lent GPU machine (the device
# tool: `run` with carry [".whl"] after benchmarks/device/fetch_wheels.sh here). Phases run in
# the order of what the performance issue asks first; each writes its output to $OUT as it
# ends, so a run cut short still returns what finished.
#   1. the training step at the paper's setting in mixed precision, with the compiled step's
#      model FLOPs utilisation (MFU): JAX compiled, torch eager, the PyTorch reference;
#   2. the same in float32;
#   3. dense extraction at 256x128.
# TensorFlow is not on the machine's image (its wheel is over what travels), so the Keras
# rows are JAX and torch. PEAK_MIXED / PEAK_FP32: the GPU's dense fp16 / TF32 tensor-core
# TFLOP/s (H100 and H200 SXM: 989 and 495; the data sheet's figures with sparsity are twice
# these). SKIP_INSTALL=1 and PRESET / SIZE / BATCH / SEQ / STEPS let it run elsewhere (the
# test runs it on a CPU at a tiny size).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_tables}
mkdir -p "$OUT"
PRESET=${PRESET:-asanet_b}
SIZE=${SIZE:-"256 128"}
BATCH=${BATCH:-"8 4"}
SEQ=${SEQ:-6}
STEPS=${STEPS:-10}
TIMEOUT=${TIMEOUT:-240}
PEAK_MIXED=${PEAK_MIXED:-989}
PEAK_FP32=${PEAK_FP32:-495}
PY=${PY:-python3}

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  "$PY" -m pip install --quiet --no-deps --no-index .whl/*.whl
  "$PY" -m pip install --quiet --no-deps --no-build-isolation -e .
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null \
    || echo "no nvidia-smi"
  "$PY" -c "import keras, jax, torch; print('keras', keras.__version__, 'jax', jax.__version__, \
jax.devices(), 'torch', torch.__version__, torch.cuda.is_available())"
} > "$OUT/machine.txt" 2>&1

train() {  # name, extra flags...
  local name=$1; shift
  for spec in "jax True" "torch False"; do
    # shellcheck disable=SC2086
    "$PY" scripts/benchmark.py train --preset "$PRESET" --image-size $SIZE --seq-len "$SEQ" \
      --batch $BATCH --steps "$STEPS" --timeout "$TIMEOUT" --backends ${spec% *} \
      --modes ${spec#* } "$@" >> "$OUT/$name.txt" 2>> "$OUT/$name.log"
  done
}
train train_mixed --mixed-precision --peak-tflops "$PEAK_MIXED"
train train_fp32 --peak-tflops "$PEAK_FP32"
# shellcheck disable=SC2086
"$PY" scripts/benchmark.py infer --preset "$PRESET" --image-size $SIZE --backends jax torch \
  --timeout "$TIMEOUT" > "$OUT/infer.txt" 2> "$OUT/infer.log"
# The printed tables (each JSON line stays in its .txt), in the order of the phases.
for name in train_mixed train_fp32 infer; do
  printf '### %s\n\n' "$name"
  grep -v '^{' "$OUT/$name.txt"
  echo
done > "$OUT/tables.md"
echo "done: $(ls "$OUT" | tr '\n' ' ')"
