/* MLA attention, both forms, as small matmuls on the pool:
 * - absorbed (decode): per query and group of heads, scores = q_lat . latent + q_pe . pe page by
 *   run of consecutive pages (NT: 4 positions x heads per register tile, C-long dots), softmax, then
 *   o_lat = P x latent (NN: each cached latent row is loaded once for all heads of the group);
 * - naive (prefill): per head and block of queries, the same over the expanded k_nope / v.
 * Scores live in per-thread scratch; parallel over (query, head group) or (head, query block).
 * A compact cache (bf16, or fp8 with per-row tile scales) is read by the same matmuls, which
 * decode its rows in registers as they do stored weights: no f32 copy of the cache is made. */
#include "common.h"
#include "../include/moe_kvcache.h"

#define HEAD_GROUP 8 /* heads per absorbed item: 8 share each cached row load; 2 items per token at H=16 */
#define QUERY_BLOCK 8

typedef struct {
  float *o_lat; const float *q_lat, *q; const uint8_t *kv, *pe; const float *kv_scale;
  const int32_t *bt, *cu_q, *ctx_len, *seq_of;
  int64_t max_blocks, H, C, dn, dr, ps, groups; float scale; int32_t dt;
} absorbed_job;

/* Positions [p0, p0 + n) of a block table that lie in consecutive physical pages (p0 starts a
 * page): one matmul covers the whole run (pages are usually handed out in order). */
static int64_t run_len(const int32_t *bt, int64_t p0, int64_t L, int64_t ps) {
  int64_t b = p0 / ps, e = b + 1, last = (L - 1) / ps;
  while (e <= last && bt[e] == bt[b] + (e - b)) e++;
  return (e * ps < L ? e * ps : L) - p0;
}

static void absorbed_items(void *p, int64_t i0, int64_t i1) {
  const absorbed_job *j = p;
  for (int64_t i = i0; i < i1; i++) {
    int64_t t = i / j->groups, h0 = (i % j->groups) * HEAD_GROUP;
    int64_t hn = j->H - h0 < HEAD_GROUP ? j->H - h0 : HEAD_GROUP, s = j->seq_of[t];
    int64_t L = j->ctx_len[s] - (j->cu_q[s + 1] - j->cu_q[s]) + (t - j->cu_q[s]) + 1; /* causal */
    const int32_t *bt = j->bt + s * j->max_blocks;
    float *sc = moe_scratch(1, hn * L);
    if (!sc) return;
    /* Row r of a run: latent at kv + r*C elements of the cache dtype, its fp8 tile scales at
     * kv_scale + r*nb (row_scales), its rope key at pe + r*dr elements of pe's dtype. */
    const int64_t es = moe_kv_elem_bytes(j->dt), pes = moe_kv_pe_bytes(j->dt), nb = moe_kv_tiles(j->C);
    const int32_t pdt = j->dt == MOE_F32 ? MOE_F32 : MOE_BF16;
    for (int64_t p0 = 0, m; p0 < L; p0 += m) {
      int64_t r0 = bt[p0 / j->ps] * j->ps;
      m = run_len(bt, p0, L, j->ps);
      const float *rs = j->kv_scale ? j->kv_scale + r0 * nb : NULL;
      moe_gemm_nt a = {sc + p0, L, j->q_lat + (t * j->H + h0) * j->C, j->C, NULL,
                       j->kv + r0 * j->C * es, j->C, rs, j->dt, 0, j->C, 0, 1};
      moe_ops->gemm_nt(&a, 0, hn, 0, m);
      if (j->dr > 0) {
        moe_gemm_nt b = {sc + p0, L, j->q + (t * j->H + h0) * (j->dn + j->dr) + j->dn, j->dn + j->dr, NULL,
                         j->pe + r0 * j->dr * pes, j->dr, NULL, pdt, 0, j->dr, 1, 0};
        moe_ops->gemm_nt(&b, 0, hn, 0, m);
      }
    }
    for (int64_t h = 0; h < hn; h++) moe_ops->softmax(sc + h * L, L, j->scale);
    for (int64_t p0 = 0, m; p0 < L; p0 += m) {
      int64_t r0 = bt[p0 / j->ps] * j->ps;
      m = run_len(bt, p0, L, j->ps);
      const float *rs = j->kv_scale ? j->kv_scale + r0 * nb : NULL;
      moe_gemm_nn o = {j->o_lat + (t * j->H + h0) * j->C, j->C, sc + p0, L,
                       j->kv + r0 * j->C * es, j->C, rs, j->dt, 0, m, j->C, p0 > 0, 1};
      moe_ops->gemm_nn(&o, 0, hn);
    }
  }
}

int moe_mla_attend(float *o_lat, const float *q_lat, const float *q, const void *kv_cache,
                   const void *pe_cache, const float *kv_scale, int32_t kv_dtype,
                   const int32_t *block_tables, int64_t max_blocks,
                   const int32_t *cu_q, const int32_t *ctx_len, int64_t S, int64_t H, int64_t C,
                   int64_t dn, int64_t dr, int64_t page_size, int64_t n_slots,
                   float softmax_scale, void *stream) {
  (void)stream;
  CHECK_PTR(o_lat); CHECK_PTR(q_lat); CHECK_PTR(q); CHECK_PTR(kv_cache); CHECK_PTR(pe_cache);
  CHECK_PTR(block_tables); CHECK_PTR(cu_q); CHECK_PTR(ctx_len); CHECK_POS(page_size);
  CHECK_NONNEG(S); CHECK_POS(H); CHECK_POS(C); CHECK_NONNEG(dn); CHECK_NONNEG(dr); CHECK_NONNEG(n_slots);
  int st = moe_check_kv(kv_dtype, kv_scale, __func__);
  if (st) return st;
  CHECK(cu_q[0] == 0, "moe_mla_attend: cu_q[0] must be 0");
  for (int64_t s = 0; s < S; s++) {
    int64_t n = cu_q[s + 1] - cu_q[s];
    CHECK(n >= 0 && n <= ctx_len[s], "moe_mla_attend: sequence %lld has %lld queries but %d cached positions", (long long)s, (long long)n, ctx_len[s]);
    CHECK(ctx_len[s] <= max_blocks * page_size, "moe_mla_attend: sequence %lld overflows its block table", (long long)s);
    /* The pages its queries read: every cached position up to the last query's. */
    for (int64_t b = 0; n > 0 && b * page_size < ctx_len[s]; b++) {
      int64_t page = block_tables[s * max_blocks + b];
      CHECK(moe_page_ok(page, page_size, n_slots), MOE_MSG_KV_PAGE, __func__, (long long)page, (long long)(n_slots / page_size));
    }
  }
  int64_t T = cu_q[S];
  if (T == 0) return MOE_OK;
  int32_t *seq_of = (int32_t *)moe_scratch(0, T);
  if (!seq_of) return moe_fail(MOE_ENOMEM, "moe_mla_attend: out of memory");
  for (int64_t s = 0; s < S; s++)
    for (int64_t t = cu_q[s]; t < cu_q[s + 1]; t++) seq_of[t] = (int32_t)s;
  absorbed_job j = {o_lat, q_lat, q, (const uint8_t *)kv_cache, (const uint8_t *)pe_cache,
                    kv_dtype == MOE_F8E4M3 ? kv_scale : NULL, block_tables, cu_q, ctx_len, seq_of,
                    max_blocks, H, C, dn, dr, page_size, (H + HEAD_GROUP - 1) / HEAD_GROUP, softmax_scale, kv_dtype};
  moe_parallel_for(T * j.groups, 1, absorbed_items, &j);
  return MOE_OK;
}

typedef struct {
  float *out; const float *q, *kv, *k_pe;
  int64_t T, L, q_pos0, H, dn, dr, dv, blocks; float scale;
} naive_job;

static void naive_items(void *p, int64_t i0, int64_t i1) {
  const naive_job *j = p;
  const int64_t ldq = j->H * (j->dn + j->dr), ldkv = j->H * (j->dn + j->dv);
  for (int64_t i = i0; i < i1; i++) {
    int64_t h = i / j->blocks, t0 = (i % j->blocks) * QUERY_BLOCK;
    int64_t nq = j->T - t0 < QUERY_BLOCK ? j->T - t0 : QUERY_BLOCK;
    int64_t Lq = j->q_pos0 + t0 + nq; /* keys the block's last query sees */
    float *sc = moe_scratch(1, nq * Lq);
    if (!sc) return;
    const float *qh = j->q + t0 * ldq + h * (j->dn + j->dr);
    if (j->dn > 0) {
      moe_gemm_nt a = {sc, Lq, qh, ldq, NULL, j->kv + h * (j->dn + j->dv), ldkv, NULL, MOE_F32, 0, j->dn, 0};
      moe_ops->gemm_nt(&a, 0, nq, 0, Lq);
    } else memset(sc, 0, (size_t)(nq * Lq) * 4);
    if (j->dr > 0) {
      moe_gemm_nt b = {sc, Lq, qh + j->dn, ldq, NULL, j->k_pe, j->dr, NULL, MOE_F32, 0, j->dr, 1};
      moe_ops->gemm_nt(&b, 0, nq, 0, Lq);
    }
    for (int64_t q = 0; q < nq; q++) {
      int64_t valid = j->q_pos0 + t0 + q + 1;
      moe_ops->softmax(sc + q * Lq, valid, j->scale);
      memset(sc + q * Lq + valid, 0, (size_t)(Lq - valid) * 4);
    }
    moe_gemm_nn o = {j->out + t0 * j->H * j->dv + h * j->dv, j->H * j->dv, sc, Lq,
                     j->kv + h * (j->dn + j->dv) + j->dn, ldkv, NULL, MOE_F32, 0, Lq, j->dv, 0};
    moe_ops->gemm_nn(&o, 0, nq);
  }
}

int moe_mla_attend_naive(float *out, const float *q, const float *kv, const float *k_pe,
                         int64_t T, int64_t L, int64_t q_pos0, int64_t H, int64_t dn, int64_t dr,
                         int64_t dv, float softmax_scale, void *stream) {
  (void)stream;
  CHECK_PTR(out); CHECK_PTR(q); CHECK_PTR(kv); CHECK_PTR(k_pe); CHECK_POS(H); CHECK_POS(dv);
  CHECK_NONNEG(T); CHECK_NONNEG(q_pos0); CHECK_NONNEG(dn); CHECK_NONNEG(dr);
  CHECK(q_pos0 + T <= L, "moe_mla_attend_naive: queries reach position %lld beyond %lld keys", (long long)(q_pos0 + T), (long long)L);
  if (T == 0) return MOE_OK;
  naive_job j = {out, q, kv, k_pe, T, L, q_pos0, H, dn, dr, dv, (T + QUERY_BLOCK - 1) / QUERY_BLOCK, softmax_scale};
  moe_parallel_for(H * j.blocks, 1, naive_items, &j);
  return MOE_OK;
}
