/* moe-actors kernel ABI: one flat C interface for every backend (CPU, CUDA, HIP).
 *
 * Conventions (every backend implements exactly these symbols):
 * - Every kernel returns an int status (MOE_OK or an error code) and never exits; the message of
 *   the last failure on the calling thread is returned by moe_last_error().
 * - Arguments go: outputs, inputs, weights, sizes, stream. Sizes are explicit element counts
 *   (int64_t); row strides ("ld*") are in elements.
 * - Activations are float32. Weights stay in their stored dtype (MOE_F32, MOE_BF16, MOE_F8E4M3)
 *   and are decoded inside the kernel. An F8 weight [rows, cols] carries an f32 scale_inv
 *   [ceil(rows/128), ceil(cols/128)]: w[i][j] = e4m3(code[i][j]) * scale_inv[i/128][j/128].
 * - Pointers to weights may be unaligned (safetensors does not align tensors).
 * - `stream` is the backend's stream (NULL on CPU). Device kernels return once launched;
 *   moe_sync(stream) waits. On the CPU every call is synchronous.
 */
#ifndef MOE_KERNELS_H
#define MOE_KERNELS_H
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOE_ABI_VERSION 3 /* 2: the KV cache kernels take n_slots; 3: and the cache dtype */

enum moe_status { MOE_OK = 0, MOE_EINVAL = 1, MOE_ENOMEM = 2, MOE_EDEVICE = 3, MOE_ERANGE = 4 };
enum moe_dtype { MOE_F32 = 0, MOE_BF16 = 1, MOE_F8E4M3 = 2 };
enum moe_score_func { MOE_SIGMOID = 0, MOE_SOFTMAX = 1 };

/* ---- library ---------------------------------------------------------------------------- */
const char *moe_last_error(void);
int moe_abi_version(void);
const char *moe_backend(void);              /* "cpu", "cuda" or "hip" */
int moe_set_threads(int32_t n);             /* CPU worker threads (<= 0: all cores) */
int moe_get_threads(void);
int moe_device_count(int32_t *count);
int moe_set_device(int32_t device);

/* ---- memory (device builds own device memory; the CPU build uses the host heap) ----------- */
int moe_alloc(void **out, int64_t bytes);
int moe_free(void *p);
int moe_memcpy_h2d(void *dst, const void *src, int64_t bytes, void *stream);
int moe_memcpy_d2h(void *dst, const void *src, int64_t bytes, void *stream);
int moe_memcpy_d2d(void *dst, const void *src, int64_t bytes, void *stream);
int moe_stream_create(void **out);
int moe_stream_destroy(void *stream);
int moe_sync(void *stream);

/* ---- dense math --------------------------------------------------------------------------- */
/* out[t, n] = sum_k x[t, k] * W[row0 + n, k]   for t < T, n < N, k < K.
 * W is the whole [rows, K] matrix (row0 selects a slice; F8 scales are indexed by the absolute row). */
int moe_linear(float *out, int64_t ldo, const float *x, int64_t ldx,
               const void *w, const float *scale, int32_t w_dtype, int64_t row0,
               int64_t T, int64_t N, int64_t K, void *stream);

/* out[t, :] = x[t, :] * rsqrt(mean(x[t, :]^2) + eps) * w   (out may equal x). */
int moe_rmsnorm(float *out, int64_t ldo, const float *x, int64_t ldx,
                const void *w, int32_t w_dtype, int64_t T, int64_t D, float eps, void *stream);

/* out[t, :] = table[ids[t], :]; an id outside [0, vocab) is MOE_ERANGE. */
int moe_embed(float *out, const int32_t *ids, const void *table, int32_t dtype,
              int64_t T, int64_t D, int64_t vocab, void *stream);

/* In-place rotary embedding on interleaved pairs (x[2i], x[2i+1]) of a rope_dim slice:
 * element base of token t, head h = t*ld_token + h*ld_head + offset;
 * angle = (float)positions[t] * inv_freq[i]  (float32 product, as model.py's torch.outer). */
int moe_rope(float *x, int64_t ld_token, int64_t ld_head, int64_t n_heads, int64_t offset,
             const int32_t *positions, const float *inv_freq, int64_t T, int64_t rope_dim,
             void *stream);

/* out[i] = silu(g[i]) * u[i] for a [T, I] pair with row strides. */
int moe_silu_mul(float *out, int64_t ldo, const float *g, int64_t ldg, const float *u, int64_t ldu,
                 int64_t T, int64_t I, void *stream);

/* y[t, :] += alpha * x[t, :] */
int moe_add(float *y, int64_t ldy, const float *x, int64_t ldx, float alpha,
            int64_t T, int64_t D, void *stream);

/* ---- MoE ---------------------------------------------------------------------------------- */
/* DeepSeek-V3 gate (noaux_tc): scores = score_func(x W^T); biased = scores + bias (bias may be
 * NULL); with n_group > 1 a group's score is the sum of its top-2 biased scores (max when bias is
 * NULL), only the topk_group best groups stay eligible; the top k biased scores are chosen (ids
 * in descending biased order); weights = unbiased scores of the chosen experts, divided by their
 * sum when norm_topk (always for sigmoid in model.py), times route_scale. */
int moe_gate(int32_t *ids, float *weights, const float *x, int64_t ldx,
             const void *w, int32_t w_dtype, const float *bias,
             int64_t T, int64_t D, int64_t E, int64_t n_group, int64_t topk_group, int64_t k,
             int32_t score_func, int32_t norm_topk, float route_scale, void *stream);

/* Grouped SwiGLU experts. Rows are grouped by expert: rows[offsets[e] .. offsets[e+1]) are
 * token indices (into x and out) routed to local expert e, with routing weights rw[] aligned to
 * rows. For each: out[tok, :] += rw * W2_e (silu(W1_e x[tok]) * (W3_e x[tok])).
 * w1/w3 are [I, D], w2 is [D, I]; the pointer tables hold E entries (scales NULL for non-F8);
 * an expert with an empty group may have NULL weights. scratch: NULL (the kernel allocates) or
 * at least max_rows * (2*D + 3*I) floats, max_rows = the largest group. out is accumulated in
 * expert order (as model.py's MoE loop). */
int moe_experts(float *out, int64_t ldo, const float *x, int64_t ldx,
                const int32_t *offsets, const int32_t *rows, const float *rw,
                const void *const *w1, const float *const *s1,
                const void *const *w3, const float *const *s3,
                const void *const *w2, const float *const *s2,
                int32_t w_dtype, int64_t E, int64_t D, int64_t I, float *scratch, void *stream);

/* ---- MLA ---------------------------------------------------------------------------------- */
/* Paged latent cache: kv_cache [n_pages, page_size, C] (kv_norm(latent)), pe_cache
 * [n_pages, page_size, dr] (roped shared key), stored as kv_dtype says (moe_kvcache.h):
 * MOE_F32 (both f32), MOE_BF16 (both bf16) or MOE_F8E4M3 (latent e4m3 codes scaled by kv_scale
 * [n_pages * page_size, ceil(C/128)], one f32 per row and 128-channel tile; rope key bf16).
 * kv_scale is ignored (may be NULL) unless MOE_F8E4M3. Writes round (to nearest even); reads
 * convert back to f32. slots[t] = page * page_size + offset.
 * n_slots = n_pages * page_size, the cache's rows: every slot and every page a block table
 * names must lie inside it (moe_checks.h), else MOE_EINVAL: the CPU writes nothing; a device
 * skips the bad rows and reports it at the next moe_sync. */
int moe_kv_write(void *kv_cache, void *pe_cache, float *kv_scale, int32_t kv_dtype,
                 const float *latent, int64_t ld_latent, const float *pe, int64_t ld_pe,
                 const int32_t *slots, int64_t T, int64_t C, int64_t dr, int64_t n_slots, void *stream);

/* Gather a sequence's first L cached positions into contiguous f32 [L, C] and [L, dr]. */
int moe_kv_gather(float *latent, float *pe, const void *kv_cache, const void *pe_cache,
                  const float *kv_scale, int32_t kv_dtype, const int32_t *block_table, int64_t L,
                  int64_t C, int64_t dr, int64_t page_size, int64_t n_slots, void *stream);

/* Absorb kv_b into the query: q_lat[t, h, c] = sum_d q[t, h, d] * Wkvb[h*(dn+dv) + d, c],
 * d < dn (q rows are [H, dn+dr] with the no-rope part first). Wkvb is [H*(dn+dv), C]. */
int moe_mla_absorb_q(float *q_lat, const float *q, const void *wkv_b, const float *scale,
                     int32_t w_dtype, int64_t T, int64_t H, int64_t dn, int64_t dr, int64_t dv,
                     int64_t C, void *stream);

/* out[t, h*dv + v] = sum_c o_lat[t, h, c] * Wkvb[h*(dn+dv) + dn + v, c]. */
int moe_mla_absorb_out(float *out, const float *o_lat, const void *wkv_b, const float *scale,
                       int32_t w_dtype, int64_t T, int64_t H, int64_t dn, int64_t dv, int64_t C,
                       void *stream);

/* Attention over the paged latent cache for S sequences. Queries of sequence s are rows
 * cu_q[s] .. cu_q[s+1]); the cache already holds ctx_len[s] positions of s, the last
 * (cu_q[s+1]-cu_q[s]) of which are these queries, so query j sits at position
 * ctx_len[s] - n_s + j and attends positions 0..itself (causal).
 * score = (q_lat . kv + q_pe . pe) * softmax_scale; o_lat = softmax(score) . kv.
 * q_lat [T, H, C]; q [T, H, dn+dr] (q_pe = the last dr of each head, already roped);
 * block_tables [S, max_blocks]; the cache (kv_cache, pe_cache, kv_scale, kv_dtype) and n_slots
 * as for moe_kv_write: a compact cache is converted as it is read, never copied to f32. */
int moe_mla_attend(float *o_lat, const float *q_lat, const float *q,
                   const void *kv_cache, const void *pe_cache, const float *kv_scale, int32_t kv_dtype,
                   const int32_t *block_tables, int64_t max_blocks,
                   const int32_t *cu_q, const int32_t *ctx_len, int64_t S,
                   int64_t H, int64_t C, int64_t dn, int64_t dr, int64_t page_size,
                   int64_t n_slots, float softmax_scale, void *stream);

/* Naive (expanded) attention for one sequence: keys/values from kv [L, H, dn+dv] (k_nope then
 * v per head, = kv_b(latent)) and the shared k_pe [L, dr]. Query i sits at position q_pos0 + i
 * and attends 0..q_pos0+i. out [T, H*dv]; q [T, H, dn+dr]. */
int moe_mla_attend_naive(float *out, const float *q, const float *kv, const float *k_pe,
                         int64_t T, int64_t L, int64_t q_pos0, int64_t H, int64_t dn, int64_t dr,
                         int64_t dv, float softmax_scale, void *stream);

/* ---- sampling ----------------------------------------------------------------------------- */
/* ids[t] = argmax_v logits[t, v] (first maximum). */
int moe_argmax(int32_t *ids, const float *logits, int64_t T, int64_t V, void *stream);

/* out[t, :] = log_softmax(logits[t, :]) (out may equal logits). */
int moe_log_softmax(float *out, const float *logits, int64_t T, int64_t V, void *stream);

/* Draw one id from softmax(logits / temperature) restricted by top_k (<= 0: off), top_p
 * (>= 1: off) and min_p (<= 0: off), using the uniform draw u in [0, 1). temperature must be > 0.
 * scratch: at least 2*V floats. Deterministic for the same inputs. */
int moe_sample(int32_t *id, const float *logits, int64_t V, float temperature, int32_t top_k,
               float top_p, float min_p, float u, float *scratch, void *stream);

#ifdef __cplusplus
}
#endif
#endif
