#!/usr/bin/env bash
# Side by side on one machine: moe-actors (scripts/bench.ts) against llama.cpp's llama-bench on
# the same bench-m weights, alternating passes (this machine's single runs vary up to 2x), best
# of each. llama.cpp is not packaged for this image (npm/apt): point LLAMA_BENCH at a CPU build
# (commit c392e50 in issue 5) and pass GGUF conversions (Q8_0 of the FP8 model, BF16 of the BF16
# one, made with llama.cpp's convert_hf_to_gguf.py). Without them the issue's measured llama.cpp
# figures are printed as the bar.
#   scripts/bench-llama.sh --fp8 DIR --bf16 DIR [--q8-gguf F] [--bf16-gguf F] [--threads 2] [--passes 3]
set -euo pipefail
cd "$(dirname "$0")/.."
FP8="" BF16="" Q8="" GBF16="" THREADS=2 PASSES=3
while [ $# -gt 0 ]; do
  case "$1" in
    --fp8) FP8=$2; shift 2 ;; --bf16) BF16=$2; shift 2 ;;
    --q8-gguf) Q8=$2; shift 2 ;; --bf16-gguf) GBF16=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;; --passes) PASSES=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
LLAMA_BENCH=${LLAMA_BENCH:-$(command -v llama-bench || true)}
export PATH="$PWD/node_modules/.bin:$PATH"

best() { sort -g | tail -1; } # highest of the numbers on stdin
ours() { # model-dir field -> best over passes
  for _ in $(seq "$PASSES"); do bun scripts/bench.ts --model "$1" --threads "$THREADS" --reps 1 --no-depth --json; done |
    grep -o "\"$2\":[0-9.]*" | cut -d: -f2 | best
}
llama() { # gguf test(pp512|tg128) -> best tokens/s over passes (llama-bench reports avg_ts per test)
  for _ in $(seq "$PASSES"); do "$LLAMA_BENCH" -m "$1" -t "$THREADS" -p 512 -n 128 -r 1 -o json 2>/dev/null; done |
    tr -d ' \n' | grep -o "\"n_prompt\":[0-9]*,\"n_gen\":[0-9]*[^}]*\"avg_ts\":[0-9.]*" |
    if [ "$2" = pp512 ]; then grep '"n_prompt":512,"n_gen":0'; else grep '"n_prompt":0,"n_gen":128'; fi |
    grep -o '"avg_ts":[0-9.]*' | cut -d: -f2 | best
}

printf '%-10s %-10s %14s %14s\n' model metric moe-actors llama.cpp
for pair in "fp8:$FP8:$Q8:93:400" "bf16:$BF16:$GBF16:69:440"; do
  IFS=: read -r name dir gguf ref_tg ref_pp <<<"$pair"
  [ -n "$dir" ] || continue
  tg=$(ours "$dir" decode_tok_s) pp=$(ours "$dir" prefill512_tok_s)
  if [ -n "$LLAMA_BENCH" ] && [ -n "$gguf" ]; then ltg=$(llama "$gguf" tg128) lpp=$(llama "$gguf" pp512)
  else ltg="~$ref_tg (issue)" lpp="~$ref_pp (issue)"; fi
  printf '%-10s %-10s %14.1f %14s\n' "$name" decode "$tg" "$ltg"
  printf '%-10s %-10s %14.1f %14s\n' "$name" prefill512 "$pp" "$lpp"
done
