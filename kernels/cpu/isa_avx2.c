/* The AVX2/FMA/F16C instantiation of the kernel templates (built with -mavx2 -mfma -mf16c; only
 * called after isa.c has checked that the CPU has them). */
#include <math.h>
#include "common.h"
#if defined(__x86_64__) && defined(__AVX2__)
#include "vec_avx2.h"
#include "gemm_tmpl.h"
#include "nn_tmpl.h"
#else
const moe_cpu_ops moe_ops_avx2 = {NULL, NULL, NULL, NULL, NULL};
#endif
