/* NN matmul (out = A x W: W rows decoded in registers and broadcast-multiplied), softmax and
 * SwiGLU templates, and the ISA's primitive table; included after gemm_tmpl.h by isa_*.c. */
/* NN tile: TT tokens x NV vectors of columns [c, c + NV*VL) (the last may be partial: cn
 * columns in all). Each k decodes NV weight vectors of row row0+k and broadcasts a[t, k]. */
AI void FN(tile_nn)(const moe_gemm_nn *g, int64_t t, int64_t c, int cn, const int TT, const int NV, const int DT,
                   const int PF) {
  const int64_t nb = (g->ldw + 127) / 128, rowb = g->ldw * ES(DT);
  const int sh = g->row_scales ? 0 : 7; /* rows per F8 scale row: 1 (KV cache) or 128 (weights) */
  /* Decode (PF): the tile's slice of the row at least moe_pf_dist bytes ahead is prefetched. */
  const int64_t ahead = PF ? (moe_pf_dist + rowb - 1) / rowb * rowb : 0;
  V acc[TT_MAX][8];
#pragma GCC unroll 8
  for (int j = 0; j < TT; j++)
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[j][v] = VZERO();
  for (int64_t k = 0; k < g->K; k++) {
    const int64_t row = g->row0 + k;
    const uint8_t *wp = (const uint8_t *)g->w + (row * g->ldw + c) * ES(DT);
    if (PF)
      for (int l = 0; l < NV * VL * ES(DT); l += 64) _mm_prefetch((const char *)wp + ahead + l, _MM_HINT_T0);
    /* The tile's columns [c, c + NV*VL) lie in one 128-column block (c is a multiple of the
     * tile width, which divides 128), so the F8 block scale multiplies the broadcast
     * activation, not each weight vector. */
    const float s = DT == MOE_F8E4M3 ? g->scale[(row >> sh) * nb + c / 128] * F8_SCALE : 1.0f;
    V wv[8];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      const int rem = cn - v * VL;
      wv[v] = rem >= VL ? FN(dec)(DT, wp + v * VL * ES(DT)) : FN(decn)(DT, wp + v * VL * ES(DT), rem);
    }
#pragma GCC unroll 8
    for (int j = 0; j < TT; j++) {
      V a = VSET1(DT == MOE_F8E4M3 ? g->a[(t + j) * g->lda + k] * s : g->a[(t + j) * g->lda + k]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[j][v] = VFMA(wv[v], a, acc[j][v]);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < TT; j++)
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      float *o = g->out + (t + j) * g->ldo + c + v * VL;
      const int rem = cn - v * VL;
      if (DT == MOE_F8E4M3) acc[j][v] = VMUL(acc[j][v], VSET1(F8_OUT(DT)));
      if (rem >= VL) VST(o, g->accum ? VADD(VLD(o), acc[j][v]) : acc[j][v]);
      else VSTN(o, g->accum ? VADD(VLDN(o, rem), acc[j][v]) : acc[j][v], rem);
    }
}

/* NV = ceil(cn / VL): every vector of the tile holds at least one column. */
#define NN_TILE(TT, DT)                                                                    \
  (cn > 3 * VL ? FN(tile_nn)(g, t, c, cn, TT, 4, DT, 0) : cn > 2 * VL ? FN(tile_nn)(g, t, c, cn, TT, 3, DT, 0) \
   : cn > VL ? FN(tile_nn)(g, t, c, cn, TT, 2, DT, 0) : FN(tile_nn)(g, t, c, cn, TT, 1, DT, 0))

/* One or two rows (decode): 8-vector tiles, so each weight row is read in 128-column runs
 * (the weight slices here come from DRAM once; short strided runs are latency-bound). */
AI void FN(nn_wide)(const moe_gemm_nn *g, int64_t t0, int64_t t1, const int DT) {
  for (int64_t c = 0; c < g->N; c += 8 * VL) {
    const int cn = (int)(g->N - c < 8 * VL ? g->N - c : 8 * VL);
    for (int64_t t = t0; t < t1; t++) {
      switch ((cn + VL - 1) / VL) {
        case 1: FN(tile_nn)(g, t, c, cn, 1, 1, DT, 1); break;
        case 2: FN(tile_nn)(g, t, c, cn, 1, 2, DT, 1); break;
        case 3: FN(tile_nn)(g, t, c, cn, 1, 3, DT, 1); break;
        case 4: FN(tile_nn)(g, t, c, cn, 1, 4, DT, 1); break;
        case 5: FN(tile_nn)(g, t, c, cn, 1, 5, DT, 1); break;
        case 6: FN(tile_nn)(g, t, c, cn, 1, 6, DT, 1); break;
        case 7: FN(tile_nn)(g, t, c, cn, 1, 7, DT, 1); break;
        default: FN(tile_nn)(g, t, c, cn, 1, 8, DT, 1); break;
      }
    }
  }
}

AI void FN(nn_dtype)(const moe_gemm_nn *g, int64_t t0, int64_t t1, const int DT) {
  if (t1 - t0 <= 2) { FN(nn_wide)(g, t0, t1, DT); return; }
  for (int64_t c = 0; c < g->N; c += 4 * VL) {
    const int cn = (int)(g->N - c < 4 * VL ? g->N - c : 4 * VL);
    for (int64_t t = t0; t < t1; t += TT_MAX) {
      switch (t1 - t < TT_MAX ? t1 - t : TT_MAX) {
        case 1: NN_TILE(1, DT); break;
        case 2: NN_TILE(2, DT); break;
#if TT_MAX > 3
        case 3: NN_TILE(3, DT); break;
        case 4: NN_TILE(4, DT); break;
        case 5: NN_TILE(5, DT); break;
#endif
        default: NN_TILE(TT_MAX, DT); break;
      }
    }
  }
}

static void FN(gemm_nn)(const moe_gemm_nn *g, int64_t t0, int64_t t1) {
  if (g->dtype == MOE_F8E4M3) FN(nn_dtype)(g, t0, t1, MOE_F8E4M3);
  else if (g->dtype == MOE_BF16) FN(nn_dtype)(g, t0, t1, MOE_BF16);
  else FN(nn_dtype)(g, t0, t1, MOE_F32);
}

/* p = softmax(p * scale) in place. */
static void FN(softmax)(float *p, int64_t n, float scale) {
  V m = VSET1(-INFINITY), sc = VSET1(scale), z = VZERO();
  int64_t i = 0;
  for (; i + VL <= n; i += VL) m = VMAX(m, VMUL(VLD(p + i), sc));
  float mx = VHMAX(m);
  for (; i < n; i++) mx = p[i] * scale > mx ? p[i] * scale : mx;
  V mv = VSET1(mx);
  for (i = 0; i + VL <= n; i += VL) {
    V e = vexp(VSUB(VMUL(VLD(p + i), sc), mv));
    VST(p + i, e);
    z = VADD(z, e);
  }
  float tail = 0;
  if (i < n) {
    VSTN(p + i, vexp(VSUB(VMUL(VLDN(p + i, (int)(n - i)), sc), mv)), (int)(n - i));
    for (int64_t j = i; j < n; j++) tail += p[j];
  }
  V inv = VSET1(1.0f / (VHSUM(z) + tail));
  for (i = 0; i + VL <= n; i += VL) VST(p + i, VMUL(VLD(p + i), inv));
  if (i < n) VSTN(p + i, VMUL(VLDN(p + i, (int)(n - i)), inv), (int)(n - i));
}

/* out = silu(g) * u, as model.py: g / (1 + exp(-g)) * u. */
static void FN(silu_mul)(float *out, const float *g, const float *u, int64_t n) {
  int64_t i = 0;
  for (; i + VL <= n; i += VL) {
    V a = VLD(g + i);
    VST(out + i, VMUL(VDIV(a, VADD(VSET1(1.0f), vexp(VSUB(VZERO(), a)))), VLD(u + i)));
  }
  if (i < n) {
    int r = (int)(n - i);
    V a = VLDN(g + i, r);
    VSTN(out + i, VMUL(VDIV(a, VADD(VSET1(1.0f), vexp(VSUB(VZERO(), a)))), VLDN(u + i, r)), r);
  }
}

const moe_cpu_ops FN(moe_ops) = {ISA_NAME, FN(gemm_nt), FN(gemm_nn), FN(softmax), FN(silu_mul)};
