#!/usr/bin/env bash
# Side by side on one machine: moe-actors (scripts/bench.ts) against llama.cpp on the same bench-m
# weights (GGUF: Q8_0 of the FP8 model, BF16 of the BF16 one), alternating one pass of ours with one
# of llama.cpp's (this machine's single runs vary up to 2x), best of each, and the ratio.
#   scripts/bench-llama.sh --fp8 DIR --bf16 DIR [--q8-gguf F] [--bf16-gguf F] [--threads 2] [--passes 3]
#        [--mla split|merged]
# llama.cpp, the first of:
#   - $LLAMA_BENCH (or llama-bench on PATH): a native CPU build's llama-bench -p 512 -n 128 -r 1.
#     The issue's reference is commit c392e50 (20 Feb 2025); node-llama-cpp 3.6.0's npm package
#     carries release b4753 (a day later) as a git bundle that builds here:
#       npm pack node-llama-cpp@3.6.0 && tar xzf node-llama-cpp-3.6.0.tgz
#       git clone package/llama/gitRelease.bundle llama.cpp && cd llama.cpp
#       cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release
#       cmake --build build --target llama-bench -j
#     llama.cpp before April 2025 reads MLA's kv_b as one matrix: pass --mla merged (converted GGUFs);
#   - node-llama-cpp's prebuilt CPU llama.cpp under $LLAMA_NODE_DIR (default /tmp/llama), through
#     scripts/bench-llama-node.mjs (needs node; install: mkdir -p /tmp/llama && cd /tmp/llama &&
#     npm init -y && npm i -E node-llama-cpp@3.21.1);
#   - neither: the issue's measured figures (commit c392e50) are printed as the bar.
# A GGUF not given is converted once with scripts/to-gguf.ts into $GGUF_DIR (default /tmp/moe-gguf).
# Ours: decode_tok_s (batch 1 after a 128-token prompt, best 32-step window) and prefill512_tok_s.
# llama.cpp: tg128 (128 decode steps from an empty context) and pp512, as llama-bench reports them.
set -euo pipefail
cd "$(dirname "$0")/.."
FP8="" BF16="" Q8="" GBF16="" THREADS=2 PASSES=3 MLA=split
while [ $# -gt 0 ]; do
  case "$1" in
    --fp8) FP8=$2; shift 2 ;; --bf16) BF16=$2; shift 2 ;;
    --q8-gguf) Q8=$2; shift 2 ;; --bf16-gguf) GBF16=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;; --passes) PASSES=$2; shift 2 ;; --mla) MLA=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-llama.sh: unknown argument $1" >&2; sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
export PATH="$PWD/node_modules/.bin:$PATH"
LLAMA_BENCH=${LLAMA_BENCH:-$(command -v llama-bench || true)}
LLAMA_NODE_DIR=${LLAMA_NODE_DIR:-/tmp/llama}
GGUF_DIR=${GGUF_DIR:-/tmp/moe-gguf}
if [ -n "$LLAMA_BENCH" ]; then MODE=llama-bench
elif [ -f "$LLAMA_NODE_DIR/node_modules/node-llama-cpp/package.json" ] && command -v node >/dev/null; then MODE=node
else MODE=none; fi

field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; } # JSON number field of stdin
best() { sort -g | tail -1; }                                # highest of the numbers on stdin

ours() { # model-dir -> "decode prefill512" of one pass
  local out
  out=$(bun scripts/bench.ts --model "$1" --threads "$THREADS" --reps 1 --no-depth --json)
  echo "$(field decode_tok_s <<<"$out") $(field prefill512_tok_s <<<"$out")"
}
llama() { # gguf -> "tg128 pp512" of one pass
  local out
  if [ "$MODE" = node ]; then
    out=$(LLAMA_NODE_DIR=$LLAMA_NODE_DIR node scripts/bench-llama-node.mjs --gguf "$1" --threads "$THREADS" --passes 1 2>/dev/null)
    echo "$(field tg128_tok_s <<<"$out") $(field pp512_tok_s <<<"$out")"
  else # llama-bench reports avg_ts per test
    out=$("$LLAMA_BENCH" -m "$1" -t "$THREADS" -p 512 -n 128 -r 1 -o json 2>/dev/null | tr -d ' \n')
    local tg pp
    tg=$(grep -o '"n_prompt":0,"n_gen":128[^}]*"avg_ts":[0-9.]*' <<<"$out" | field avg_ts)
    pp=$(grep -o '"n_prompt":512,"n_gen":0[^}]*"avg_ts":[0-9.]*' <<<"$out" | field avg_ts)
    echo "$tg $pp"
  fi
}
gguf_for() { # model-dir type given-gguf -> a GGUF path (converted once when none was given)
  if [ -n "$3" ]; then echo "$3"; return; fi
  local f
  f="$GGUF_DIR/$(basename "$1")-$2-$MLA.gguf"
  if [ ! -s "$f" ]; then
    mkdir -p "$GGUF_DIR"
    bun scripts/to-gguf.ts --model "$1" --out "$f.part" --type "$2" --mla "$MLA" >&2 && mv "$f.part" "$f"
  fi
  echo "$f"
}

case $MODE in
  llama-bench) echo "llama.cpp: $LLAMA_BENCH" ;;
  node) echo "llama.cpp: node-llama-cpp $(grep -o '"version": *"[^"]*"' "$LLAMA_NODE_DIR/node_modules/node-llama-cpp/package.json" | cut -d'"' -f4) (prebuilt CPU build) from $LLAMA_NODE_DIR" ;;
  none) echo "llama.cpp: not found (set LLAMA_BENCH or install node-llama-cpp under LLAMA_NODE_DIR): the issue's figures stand in" ;;
esac
echo "threads $THREADS, best of $PASSES alternating passes"
rows=()
for pair in "fp8:$FP8:q8_0:$Q8:93:400" "bf16:$BF16:bf16:$GBF16:69:440"; do
  IFS=: read -r name dir type gguf ref_tg ref_pp <<<"$pair"
  [ -n "$dir" ] || continue
  [ "$MODE" = none ] || gguf=$(gguf_for "$dir" "$type" "$gguf")
  tgs=() pps=() ltgs=() lpps=()
  for p in $(seq "$PASSES"); do
    read -r tg pp <<<"$(ours "$dir")"; tgs+=("$tg"); pps+=("$pp")
    if [ "$MODE" != none ]; then read -r ltg lpp <<<"$(llama "$gguf")"; ltgs+=("$ltg"); lpps+=("$lpp"); fi
    printf '  %s pass %s: moe-actors decode %.1f prefill512 %.1f | llama.cpp tg128 %s pp512 %s\n' \
      "$name" "$p" "$tg" "$pp" "${ltg:--}" "${lpp:--}" >&2
  done
  tg=$(printf '%s\n' "${tgs[@]}" | best) pp=$(printf '%s\n' "${pps[@]}" | best)
  if [ "$MODE" = none ]; then ltg=$ref_tg lpp=$ref_pp lname="$type(issue)"
  else ltg=$(printf '%s\n' "${ltgs[@]}" | best) lpp=$(printf '%s\n' "${lpps[@]}" | best) lname=$type; fi
  rows+=("$name $lname decode $tg $ltg" "$name $lname prefill512 $pp $lpp")
done
printf '%-6s %-12s %-11s %12s %12s %7s\n' model llama.cpp metric moe-actors llama.cpp ratio
for r in "${rows[@]}"; do
  read -r name lname metric a b <<<"$r"
  printf '%-6s %-12s %-11s %12.1f %12.1f %6.2fx\n' "$name" "$lname" "$metric" "$a" "$b" "$(awk "BEGIN { print $a / $b }")"
done
