/* What the int8 draft kernels share: q8.c (quantization, the int8 GEMV and its per-ISA row
 * functions) and q8_experts.c (grouped SwiGLU experts on the same row functions). The helpers
 * are hidden: CPU-library internals, not exported symbols. */
#ifndef MOE_CPU_Q8_H
#define MOE_CPU_Q8_H
#include "common.h"

#define Q8_HIDDEN __attribute__((visibility("hidden")))
/* moe_scratch slot of the q8 kernels. The six slots all have owners (0-3 the other kernels,
 * 5 the portable matmul), but slots are per thread and only alive during a call: every q8
 * entry point is a leaf (it calls no other kernel, and its pool items take no scratch), so one
 * q8 call never overlaps another's use of the slot, nor another kernel's. */
#define Q8_SLOT 4
/* |dot| <= K * 127 * 127 must fit int32. (The VNNI sums of (x + 128) * w may wrap; subtracting
 * 128 * rowsum in the same wrapping arithmetic lands on the true sum whenever it fits.) */
#define Q8_MAX_K 131072

/* out[t * N + n] = sx[t] * scale[n] * dot(xq[t], q[n]) for t < T, rows n of a claim. */
typedef struct lin_job lin_job;
typedef void (*rows_fn)(const lin_job *j, int64_t n0, int64_t n1);
struct lin_job {
  float *out; const int8_t *xq; const float *sx; /* xq rows padded with zeros to Kp */
  const int8_t *q; const float *scale; const int32_t *rowsum;
  int64_t T, N, K, Kp;
  rows_fn rows;
};

/* Quantizes a row (symmetric absmax, see q8.c); returns its scale. */
typedef float (*quant_fn)(int8_t *q, const float *v, int64_t K);

/* The path moe_cpu_isa() allows: its row function and activation quantizer; u8 when the row
 * function takes activations as x + 128 (VNNI). All paths give bit-identical outputs. */
typedef struct { rows_fn rows; quant_fn quant; int u8; } q8_path;
Q8_HIDDEN q8_path q8_pick_path(void);

/* One activation row as the row functions take it: xq[0, K) quantized, zeros to Kp (a multiple
 * of 64), all + 128 under u8. Returns the row's scale (NaN for an Inf/NaN row). */
Q8_HIDDEN float q8_quant_act(const q8_path *p, int8_t *xq, const float *x, int64_t K, int64_t Kp);

#endif
