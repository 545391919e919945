#!/usr/bin/env bash
# Builds the kernel libraries incrementally: the CPU library always, the CUDA library when nvcc
# is present, the HIP library when hipcc is present. Safe to run before every start and test.
# A fresh build takes minutes, so it shows a line per compiled file on stderr ("[3/16] CC
# cpu/gate.c -> build/cpu/gate.o"); an up-to-date build prints nothing. Compiler warnings and
# errors pass through as they are.
#   bash scripts/build-kernels.sh [--help]      (env: MOE_SKIP_CUDA=1 skips the CUDA library)
set -euo pipefail
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
[ $# -eq 0 ] || { echo "build-kernels.sh: unknown argument $1 (it takes none; --help)" >&2; exit 2; }
cd "$(dirname "$0")/../kernels"

# build NAME MAKE_ARGS...: runs make, turning each compile or link command into one short line.
build() {
  local name=$1; shift
  # make -n prints the commands a build would run (recursing too): their count is the total.
  local total
  total=$(make -n --no-print-directory "$@" 2>/dev/null | grep -cE ' -c | -shared ' || true)
  [ "$total" -gt 0 ] || return 0
  echo "kernels: building $name ($total steps; minutes on a fresh machine)" >&2
  make --no-print-directory "$@" 2>&1 | awk -v total="$total" '
    / -c / || / -shared / {
      n++; src = ""; out = ""
      for (i = 1; i < NF; i++) {
        if ($i == "-c" && src == "") src = $(i + 1)
        if ($i == "-o" && out == "") out = $(i + 1)
      }
      if (/ -shared /) printf "[%d/%d] LD %s\n", n, total, out
      else printf "[%d/%d] CC %s -> %s\n", n, total, src, out
      fflush(); next
    }
    /Nothing to be done|is up to date|^mkdir / { next }
    { print; fflush() }' >&2
}

build "the CPU library (kernels/build/libmoe_cpu.so)" -j"$(nproc)" all
if [ -f Makefile.cuda ] && command -v nvcc >/dev/null 2>&1 && [ "${MOE_SKIP_CUDA:-}" != "1" ]; then
  build "the CUDA library" -f Makefile.cuda
fi
if [ -f Makefile.hip ] && command -v hipcc >/dev/null 2>&1; then
  build "the HIP library" -f Makefile.hip
fi
