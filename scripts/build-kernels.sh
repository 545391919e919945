#!/usr/bin/env bash
# Builds the kernel libraries incrementally: the CPU library always, the CUDA library when nvcc
# is present, the HIP library when hipcc is present. Safe to run before every start and test.
set -euo pipefail
cd "$(dirname "$0")/../kernels"
make -s -j"$(nproc)" all
if [ -f Makefile.cuda ] && command -v nvcc >/dev/null 2>&1 && [ "${MOE_SKIP_CUDA:-}" != "1" ]; then
  make -s -f Makefile.cuda
fi
if [ -f Makefile.hip ] && command -v hipcc >/dev/null 2>&1; then
  make -s -f Makefile.hip
fi
