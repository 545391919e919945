/* The AVX-512 instantiation of the kernel templates (built with -mavx512f/bw/vl/dq -mfma -mf16c;
 * only called after isa.c has checked that the CPU has them). */
#include <math.h>
#include "common.h"
#if defined(__x86_64__) && defined(__AVX512BW__)
#include "vec_avx512.h"
#include "gemm_tmpl.h"
#include "nn_tmpl.h"
#else
const moe_cpu_ops moe_ops_avx512 = {NULL, NULL, NULL, NULL, NULL};
#endif
