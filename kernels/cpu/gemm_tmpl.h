/* NT matmul templates (nn_tmpl.h has the rest), instantiated once per ISA (isa_avx512.c,
 * isa_avx2.c) over the vector vocabulary of vec_*.h. Weights are decoded in registers, never
 * into an f32 buffer. Prefill tiles hold 4 weight rows x TT tokens of accumulators, so each
 * decoded weight vector feeds TT FMAs, and tokens are blocked so the block's activations stay
 * in L2 while the rows stream; decode (<= 8 tokens) uses 4-row tiles (nt_small). */
#define AI static inline __attribute__((always_inline))
#define ES(DT) ((DT) == MOE_F32 ? 4 : (DT) == MOE_BF16 ? 2 : 1)
/* Decoded F8 values are w * 2^-120: 2^60 goes into each block scale, 2^60 onto the output. */
#define F8_SCALE 0x1p60f
#define F8_OUT(DT) ((DT) == MOE_F8E4M3 ? 0x1p60f : 1.0f)

AI V FN(dec)(const int DT, const uint8_t *p) {
  return DT == MOE_F32 ? VLD((const float *)p) : DT == MOE_BF16 ? dec_bf16(p) : dec_f8(p);
}
AI V FN(decn)(const int DT, const uint8_t *p, int n) {
  return DT == MOE_F32 ? VLDN((const float *)p, n) : DT == MOE_BF16 ? dec_bf16n(p, n) : dec_f8n(p, n);
}

/* out[t..t+TT) x rows [n, n+RR), with KU independent accumulators along k (latency hiding for
 * GEMV). F8 block scales are applied per 128-column block: after the block's partial sums when
 * the tile is small (GEMV: saves a multiply per weight vector), else on the decoded weights
 * (keeps the accumulator count at KU*RR*TT). Arrays are fixed-size (an [RR][TT] array would be
 * a VLA in memory); unrolled with constant RR/TT/KU they live in registers. */
AI void FN(tile_nt)(const moe_gemm_nt *g, int64_t n, int64_t t, const int RR, const int TT, const int KU, const int DT) {
  const int64_t K = g->K, nb = (g->ldw + 127) / 128;
  const int sh = g->row_scales ? 0 : 7; /* rows per F8 scale row: 1 (KV cache) or 128 (weights) */
  const int AFTER = DT == MOE_F8E4M3 && KU * RR * TT <= 8;
  const uint8_t *wr[4];
  const float *sr[4], *xr[8];
  V acc[4][4][8], bacc[4][4][8], sv[4];
#pragma GCC unroll 8
  for (int r = 0; r < RR; r++) {
    int64_t row = g->row0 + n + r;
    wr[r] = (const uint8_t *)g->w + row * g->ldw * ES(DT);
    sr[r] = DT == MOE_F8E4M3 ? g->scale + (row >> sh) * nb : NULL;
  }
#pragma GCC unroll 8
  for (int j = 0; j < TT; j++) xr[j] = g->x + (g->xrows ? g->xrows[t + j] : t + j) * g->ldx;
#pragma GCC unroll 4
  for (int u = 0; u < KU; u++)
#pragma GCC unroll 4
    for (int r = 0; r < RR; r++)
#pragma GCC unroll 8
      for (int j = 0; j < TT; j++) acc[u][r][j] = VZERO();
  /* RR rows read side by side are RR short streams the hardware prefetcher follows poorly
   * (half the bandwidth here): prefetch ahead as one linear walk instead, at least
   * moe_pf_dist bytes ahead (one tile is too close for short rows: 8 KiB measured best), past
   * the end of this call's rows too (the next rows, or the next expert matrix, follow). */
  const int64_t tile = RR * g->ldw * ES(DT), pf = tile > moe_pf_dist ? tile : moe_pf_dist;
  const int64_t KB = DT == MOE_F8E4M3 ? 128 : K;
#define NT_STEP(U, KK, LOADW, LOADX)                                                   \
  {                                                                                    \
    const int64_t kk = (KK);                                                           \
    V wv[4];                                                                           \
    _Pragma("GCC unroll 4") for (int r = 0; r < RR; r++) {                             \
      if (RR > 1 && ((kk * ES(DT)) & 63) == 0) /* once per cache line of each row */      \
        _mm_prefetch((const char *)wr[0] + pf + (kk * RR + r * 64 / ES(DT)) * ES(DT), _MM_HINT_T0); \
      wv[r] = LOADW;                                                                   \
      if (DT == MOE_F8E4M3 && !AFTER) wv[r] = VMUL(wv[r], sv[r]);                      \
    }                                                                                  \
    _Pragma("GCC unroll 8") for (int j = 0; j < TT; j++) {                             \
      V xv = LOADX;                                                                    \
      _Pragma("GCC unroll 4") for (int r = 0; r < RR; r++) {                           \
        if (AFTER) bacc[U][r][j] = VFMA(wv[r], xv, bacc[U][r][j]);                     \
        else acc[U][r][j] = VFMA(wv[r], xv, acc[U][r][j]);                             \
      }                                                                                \
    }                                                                                  \
  }
  for (int64_t kb = 0; kb < K; kb += KB) {
    const int64_t ke = kb + KB < K ? kb + KB : K;
#pragma GCC unroll 4
    for (int r = 0; r < RR; r++) {
      if (DT == MOE_F8E4M3) sv[r] = VSET1(sr[r][kb / 128] * F8_SCALE);
#pragma GCC unroll 4
      for (int u = 0; u < KU; u++)
#pragma GCC unroll 8
        for (int j = 0; j < TT; j++) bacc[u][r][j] = VZERO();
    }
    int64_t k = kb;
    for (; k + KU * VL <= ke; k += KU * VL)
#pragma GCC unroll 4
      for (int u = 0; u < KU; u++) NT_STEP(u, k + u * VL, FN(dec)(DT, wr[r] + kk * ES(DT)), VLD(xr[j] + kk))
    for (; k + VL <= ke; k += VL) NT_STEP(0, k, FN(dec)(DT, wr[r] + kk * ES(DT)), VLD(xr[j] + kk))
    if (k < ke) {
      const int rem = (int)(ke - k);
      NT_STEP(0, k, FN(decn)(DT, wr[r] + kk * ES(DT), rem), VLDN(xr[j] + kk, rem))
    }
    if (AFTER)
#pragma GCC unroll 4
      for (int u = 0; u < KU; u++)
#pragma GCC unroll 4
        for (int r = 0; r < RR; r++)
#pragma GCC unroll 8
          for (int j = 0; j < TT; j++) acc[u][r][j] = VFMA(bacc[u][r][j], sv[r], acc[u][r][j]);
  }
#pragma GCC unroll 4
  for (int u = 1; u < KU; u++)
#pragma GCC unroll 4
    for (int r = 0; r < RR; r++)
#pragma GCC unroll 8
      for (int j = 0; j < TT; j++) acc[0][r][j] = VADD(acc[0][r][j], acc[u][r][j]);
#pragma GCC unroll 8
  for (int j = 0; j < TT; j++) {
    float *o = g->out + (t + j) * g->ldo + n;
    if (RR == 4) {
      __m128 s = _mm_mul_ps(vhsum4(acc[0][0][j], acc[0][1][j], acc[0][2][j], acc[0][3][j]), _mm_set1_ps(F8_OUT(DT)));
      if (g->accum) s = _mm_add_ps(s, _mm_loadu_ps(o));
      _mm_storeu_ps(o, s);
    } else {
#pragma GCC unroll 4
      for (int r = 0; r < RR; r++) o[r] = (g->accum ? o[r] : 0.0f) + VHSUM(acc[0][r][j]) * F8_OUT(DT);
    }
  }
}

#define NT_TT(DT, RR, tt)                                                       \
  switch (tt) {                                                                 \
    case 1: FN(tile_nt)(g, n, t, RR, 1, 1, DT); break;                           \
    case 2: FN(tile_nt)(g, n, t, RR, 2, 1, DT); break;                           \
    case 3: FN(tile_nt)(g, n, t, RR, 3, 1, DT); break;                           \
    TT_MORE(DT, RR)                                                             \
  }
#if TT_MAX > 3
#define TT_MORE(DT, RR)                                                         \
  case 4: FN(tile_nt)(g, n, t, RR, 4, 1, DT); break;                             \
  case 5: FN(tile_nt)(g, n, t, RR, 5, 1, DT); break;                             \
  default: FN(tile_nt)(g, n, t, RR, 6, 1, DT); break;
#else
#define TT_MORE(DT, RR)
#endif

/* Few tokens (decode, small batches): tiles of 4 rows (1 for the last rows) x up to TT_MAX
 * tokens, KU accumulators deep. The rows share each activation load (one row alone is
 * compute-bound on FP8 decode), and the software prefetch walks ahead linearly, so the DRAM
 * stream stays sequential. */
#define SMALL_T 8
AI void FN(nt_small)(const moe_gemm_nt *g, int64_t t0, int64_t t1, int64_t n0, int64_t n1, const int DT, const int RR) {
  const int TC = RR == 4 ? TT_MAX : 8; /* tokens per tile: 4 x TT_MAX accumulators fit the registers */
  /* The tiles prefetch moe_pf_dist bytes ahead of themselves; the first ones' bytes are asked
   * for here, all at once, so a claim's stream starts at full rate instead of by demand misses. */
  const uint8_t *w0 = (const uint8_t *)g->w + (g->row0 + n0) * g->ldw * ES(DT);
  const int64_t tile = RR * g->ldw * ES(DT), head = (n1 - n0) * g->ldw * ES(DT);
  const int64_t pf = tile > moe_pf_dist ? tile : moe_pf_dist;
  for (int64_t off = 0; off < pf && off < head; off += 64) _mm_prefetch((const char *)w0 + off, _MM_HINT_T0);
  for (int64_t n = n0; n + RR <= n1; n += RR)
    for (int64_t t = t0; t < t1; t += TC) {
      switch (t1 - t < TC ? t1 - t : TC) {
        case 1: FN(tile_nt)(g, n, t, RR, 1, RR >= 4 ? 1 : 4 / RR, DT); break;
        case 2: FN(tile_nt)(g, n, t, RR, 2, RR >= 2 ? 1 : 2, DT); break;
        case 3: FN(tile_nt)(g, n, t, RR, 3, 1, DT); break;
        case 4: FN(tile_nt)(g, n, t, RR, 4, 1, DT); break;
        case 5: FN(tile_nt)(g, n, t, RR, 5, 1, DT); break;
        case 6: FN(tile_nt)(g, n, t, RR, 6, 1, DT); break;
        case 7: FN(tile_nt)(g, n, t, RR, 7, 1, DT); break;
        default: FN(tile_nt)(g, n, t, RR, 8, 1, DT); break;
      }
    }
}

AI void FN(nt_dtype)(const moe_gemm_nt *g, int64_t t0, int64_t t1, int64_t n0, int64_t n1, const int DT) {
  if (t1 - t0 <= SMALL_T) {
    /* 4 rows share each activation load and one 4-way reduction. Cache-resident weights (a
     * small model, the F32 attention over cached latents) are compute-bound, and 4 rows beat
     * 2 there by ~20% (BF16 [4096 x 256]: 23 us against 28 at T=1, 32 against 41 at T=2);
     * streamed from DRAM, 4 and 2 rows measure the same since the prefetch walks ahead. */
    const int64_t tiles = n0 + (n1 - n0) / 4 * 4;
    FN(nt_small)(g, t0, t1, n0, tiles, DT, 4);
    FN(nt_small)(g, t0, t1, tiles, n1, DT, 1);
    return;
  }
  /* Token block: its activations (TB x K floats) stay within ~256 KiB of L2. */
  int64_t TB = (65536 / (g->K > 0 ? g->K : 1)) / TT_MAX * TT_MAX;
  if (TB < TT_MAX) TB = TT_MAX;
  for (int64_t tb = t0; tb < t1; tb += TB) {
    const int64_t te = tb + TB < t1 ? tb + TB : t1;
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4)
      for (int64_t t = tb; t < te; t += TT_MAX) {
        const int64_t tt = te - t < TT_MAX ? te - t : TT_MAX;
        NT_TT(DT, 4, tt)
      }
    for (; n < n1; n++)
      for (int64_t t = tb; t < te; t += TT_MAX) {
        const int64_t tt = te - t < TT_MAX ? te - t : TT_MAX;
        NT_TT(DT, 1, tt)
      }
  }
}

static void FN(gemm_nt)(const moe_gemm_nt *g, int64_t t0, int64_t t1, int64_t n0, int64_t n1) {
  if (g->dtype == MOE_F8E4M3) FN(nt_dtype)(g, t0, t1, n0, n1, MOE_F8E4M3);
  else if (g->dtype == MOE_BF16) FN(nt_dtype)(g, t0, t1, n0, n1, MOE_BF16);
  else FN(nt_dtype)(g, t0, t1, n0, n1, MOE_F32);
}
