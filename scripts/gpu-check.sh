#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (a few minutes): builds the kernel libraries,
# checks their exported symbols, runs the GPU test suite ON THE DEVICE (per-kernel checks
# against the CPU library and the golden checks end to end; a skipped device is a failure here),
# then benchmarks bench-m decode and prefill tokens/s and the memory bandwidth decode reaches
# against the device's peak. Prints a summary at the end.
#   scripts/gpu-check.sh            env: MODEL_DIR (default /tmp/bench-m), PROMPT, DECODE,
#                                        GPU (device index, default 0), SKIP_TESTS=1, SKIP_BENCH=1
# TARGET=emu runs the same steps on the CPU emulator build (no GPU, tiny sizes): a dry run of
# this script itself, e.g. TARGET=emu PRESET=bench-s PROMPT=40 DECODE=4 scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/node_modules/.bin:$PATH"
TARGET=${TARGET:-cuda}
PRESET=${PRESET:-bench-m}
MODEL_DIR=${MODEL_DIR:-/tmp/$PRESET}
PROMPT=${PROMPT:-512}
DECODE=${DECODE:-128}
GPU=${GPU:-0}
LOG=$(mktemp -d /tmp/gpu-check.XXXXXX)
SUMMARY=()

run() { echo "+ $*" >&2; "$@"; }
step() { echo; echo "=== $* ==="; }
note() { SUMMARY+=("$*"); }

step "1/5 toolchain and device"
command -v bun >/dev/null || { echo "gpu-check: bun not found (npm ci installs it into node_modules/.bin)" >&2; exit 1; }
command -v nvcc >/dev/null || { echo "gpu-check: nvcc not found: install the CUDA toolkit" >&2; exit 1; }
run nvcc --version | tail -1
echo "bun $(bun --version)"
PEAK=""
DEVICE_DESC="the CPU emulator (TARGET=emu)"
LIB_ARGS=()
if [ "$TARGET" = "emu" ]; then
  LIB_ARGS=(--lib "$ROOT/kernels/build/libmoe_emu.so")
else
  run nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader

  # Peak memory bandwidth from the device attributes: 2 (DDR) x memory clock x bus width.
  cat > "$LOG/peak.cu" <<'EOF'
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
int main(int argc, char **argv) {
  int d = argc > 1 ? atoi(argv[1]) : 0, khz = 0, bits = 0;
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, d) != cudaSuccess) return 1;
  cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, d);
  cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, d);
  printf("%.1f %s (sm_%d%d, %d SMs, %.0f GiB)\n", 2.0 * khz * 1e3 * (bits / 8) / 1e9, p.name, p.major, p.minor,
         p.multiProcessorCount, p.totalGlobalMem / 1073741824.0);
  return 0;
}
EOF
  run nvcc -O2 -o "$LOG/peak" "$LOG/peak.cu"
  read -r PEAK DEVICE_DESC < <("$LOG/peak" "$GPU") || { echo "gpu-check: cannot query device $GPU" >&2; exit 1; }
fi
echo "device $GPU: $DEVICE_DESC, peak memory bandwidth ${PEAK:-?} GB/s"
note "device: $DEVICE_DESC; peak memory bandwidth ${PEAK:-unknown} GB/s (2 x memory clock x bus width)"

step "2/5 build the kernel libraries"
start=$SECONDS
run bash scripts/build-kernels.sh
note "build: $((SECONDS - start)) s (incremental)"
run bash scripts/check-symbols.sh | tee "$LOG/symbols.txt"
note "symbols: $(grep -c 'exports the' "$LOG/symbols.txt") device libraries export exactly the CPU ABI"

if [ "${SKIP_TESTS:-}" != "1" ]; then
  step "3/5 GPU tests on $TARGET:$GPU (per kernel vs the CPU library, golden checks end to end)"
  export CUDA_VISIBLE_DEVICES=$GPU
  start=$SECONDS
  set +e
  MOE_GPU_TARGETS=$TARGET MOE_GPU_REQUIRE=$TARGET run bun test test/gpu 2>&1 | tee "$LOG/tests.txt"
  rc=${PIPESTATUS[0]}
  set -e
  counts=$(grep -E '^ *[0-9]+ (pass|fail|skip)' "$LOG/tests.txt" | tr -s ' \n' ' ')
  note "GPU tests: rc=$rc,${counts} ($((SECONDS - start)) s)"
  if [ "$rc" -ne 0 ]; then
    printf '%s\n' "" "=== SUMMARY (FAILED) ===" "${SUMMARY[@]}"
    exit "$rc"
  fi
  unset CUDA_VISIBLE_DEVICES
fi

if [ "${SKIP_BENCH:-}" != "1" ]; then
  step "4/5 $PRESET checkpoint"
  if [ ! -f "$MODEL_DIR/config.json" ]; then
    run bun src/cli.ts make-model --preset "$PRESET" --format fp8 --out "$MODEL_DIR"
  else
    echo "using $MODEL_DIR"
  fi
  step "5/5 benchmark: prefill $PROMPT tokens, decode $DECODE tokens"
  run bun scripts/bench-gpu.ts --model "$MODEL_DIR" --device "$GPU" --prompt "$PROMPT" --decode "$DECODE" \
    --peak-gbs "$PEAK" ${LIB_ARGS[@]+"${LIB_ARGS[@]}"} | tee "$LOG/bench.txt"
  while IFS= read -r line; do note "bench:$line"; done < <(grep -E '^  (prefill|decode)' "$LOG/bench.txt")
fi

printf '%s\n' "" "=== SUMMARY (logs in $LOG) ===" "${SUMMARY[@]}"
