#!/usr/bin/env bash
# Checks that each device library (libmoe_cuda.so, libmoe_hip.so, and libmoe_emu.so, the CPU
# emulator build of the same sources) exports exactly the CPU library's kernel ABI: the moe_*
# functions of kernels/include/moe_kernels.h. Prints every difference and fails on any.
# (The CPU library also leaks a few internal moe_* helpers; those are listed, not required.)
set -euo pipefail
cd "$(dirname "$0")/.."
B=kernels/build
HDR=kernels/include/moe_kernels.h

exports() { nm -D --defined-only "$1" | awk '$3 ~ /^moe_/ { print $3 }' | sort -u; }
others() { nm -D --defined-only "$1" | awk '$2 ~ /^[TDBRW]$/ && $3 !~ /^moe_/ && $3 !~ /^_(init|fini)$/ { print $3 }' | sort -u; }

if [ ! -f "$B/libmoe_cpu.so" ]; then
  echo "check-symbols: $B/libmoe_cpu.so is missing; run npm run build:kernels" >&2
  exit 1
fi
abi=$(sed -n 's/^[a-z].*[ *]\(moe_[a-z0-9_]*\)(.*/\1/p' "$HDR" | sort -u)
cpu=$(exports "$B/libmoe_cpu.so")
want=$(comm -12 <(echo "$abi") <(echo "$cpu"))
status=0

missing=$(comm -23 <(echo "$abi") <(echo "$cpu"))
if [ -n "$missing" ]; then
  echo "libmoe_cpu.so lacks ABI symbols declared in $HDR:"; echo "$missing" | sed 's/^/  - /'
  status=1
fi
internal=$(comm -13 <(echo "$abi") <(echo "$cpu"))
[ -n "$internal" ] && echo "note: libmoe_cpu.so also exports internal helpers (not part of the ABI): $(echo $internal)"

checked=0
for lib in cuda hip emu; do
  f="$B/libmoe_$lib.so"
  [ -f "$f" ] || continue
  checked=$((checked + 1))
  got=$(exports "$f")
  lacks=$(comm -23 <(echo "$want") <(echo "$got"))
  extra=$(comm -13 <(echo "$want") <(echo "$got"))
  other=$(others "$f")
  if [ -z "$lacks" ] && [ -z "$extra" ]; then
    echo "libmoe_$lib.so: exports the $(echo "$want" | wc -l) ABI symbols of libmoe_cpu.so"
  else
    echo "libmoe_$lib.so differs from libmoe_cpu.so's ABI:"
    [ -n "$lacks" ] && echo "$lacks" | sed 's/^/  - missing: /'
    [ -n "$extra" ] && echo "$extra" | sed 's/^/  + extra:   /'
    status=1
  fi
  if [ -n "$other" ]; then
    echo "libmoe_$lib.so exports non-ABI symbols:"; echo "$other" | sed 's/^/  + /'
    status=1
  fi
done
[ "$checked" -eq 0 ] && echo "check-symbols: no device library built (nvcc/hipcc absent); nothing to compare"
exit $status
