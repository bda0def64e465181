// ref.c — the scalar reference backend ("generic"): the oracle for every other backend.
//
// Numerics follow ggml's CPU backend so logits match llama.cpp (testdata README section 4):
//   * matmul: activations converted per row to the weight type's vec_dot type with the quant
//     traits' from_f32_act (Q8_0/Q8_1/Q8_K: integer block dots with float block scales; F16/BF16
//     weights: activations rounded to F16/BF16; F32: plain), then the traits' vec_dot (weights
//     repacked at load: kern/repack.h's references, each in its layout's order);
//   * rmsnorm: sum of squares in double, scale = 1/sqrtf(mean + eps), then x*scale*w;
//   * rope: per-position cos/sin cache built like ggml_rope_cache_init (theta *= theta_scale), each
//     rotated value one FMA with the x1 product rounded first (GCC's contraction in ggml's build);
//   * SiLU and softmax use ggml's AVX2 exp polynomial (v_expf) on 8-wide chunks;
//   * attention, two kernels chosen by the caller: an F32 cache (or f32_acc) takes ggml's
//     soft_max + mul_mat steps (scores, max, exp, ggml's chunked sum, normalise, Σ p·v in the
//     accumulator lanes of tinyBLAS or vec_dot_f32); an F16 cache
//     takes ggml's one-chunk flash attention (q rounded to F16, online softmax with running max M
//     and sum S, value accumulator rounded to F16 after every key). q·k is summed in the lane
//     order of ggml's AVX2 vec_dot. Both read K/V through the block table; attention_multi is
//     the single-query kernel once per query;
//   * GeGLU: gelu_tanh through F16 (x rounded to F16, result rounded to F16, |x| ≥ 10 clamps).
// No state: every function works only on its arguments.
#include <math.h>
#include <string.h>

#include "base/num.h"
#include "kern/expf.h"
#include "kern/kern.h"
#include "kern/repack.h"
#include "quant/f16.h"
#include "quant/quant.h"

// ---- matmul -----------------------------------------------------------------------------------

typedef struct mm_job {
    const cg_tensor *W;
    const cg_qtype_traits *tr;
    const void *xq;        // activations in the vec_dot type, n_tok rows of xq_row bytes
    size_t xq_row;
    int64_t n_tok;
    float *Y;
} mm_job;

static void mm_worker(void *ctx, int i_thread, int n_thread) {
    const mm_job *j = ctx;
    const cg_tensor *W = j->W;
    int64_t n_in = W->ne[0], begin, end;
    cg_pool_split(W->ne[1], i_thread, n_thread, &begin, &end);
    const unsigned char *wbase = W->data;
    const unsigned char *xbase = j->xq;
    for (int64_t r = begin; r < end; r++) {
        const void *wrow = wbase + (uint64_t)r * W->row_bytes;
        for (int64_t t = 0; t < j->n_tok; t++) {
            const void *xrow = xbase + (size_t)t * j->xq_row;
            float s;
            j->tr->vec_dot(n_in, &s, wrow, xrow);
            j->Y[t * W->ne[1] + r] = s;
        }
    }
}

static cg_status ref_matmul(const cg_tensor *W, const float *X, int64_t n_tok, float *Y, cg_arena *arena,
                            cg_pool *pool, cg_err *err) {
    const cg_qtype_traits *tr = cg_qtype_get(W->type);
    if (!tr) return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: tensor '%s' has unknown type %u", W->name, W->type);
    int64_t n_in = W->ne[0];
    mm_job j = {.W = W, .tr = tr, .n_tok = n_tok, .Y = Y};
    const cg_qtype_traits *vt = cg_qtype_get(tr->vec_dot_type);
    if (!tr->vec_dot || !vt || !vt->from_f32_act)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: no reference dot product for tensor '%s' of type %s",
                          W->name, tr->name);
    if (n_in % vt->blck_size)
        return cg_err_set(err, CG_ERR_FORMAT, "matmul: '%s' row of %lld is not a multiple of %s blocks", W->name,
                          (long long)n_in, vt->name);
    size_t n_bytes;
    j.xq_row = (size_t)(n_in / vt->blck_size) * vt->type_size;
    if (!cg_mul_size(j.xq_row, (size_t)n_tok, &n_bytes))
        return cg_err_set(err, CG_ERR_LIMIT, "matmul: '%s' activation size overflows", W->name);
    if (tr->vec_dot_type == CG_QTYPE_F32) {
        j.xq = X;   // already in the partner type
    } else {
        unsigned char *xq = cg_arena_alloc(arena, n_bytes ? n_bytes : 1, 64);
        if (!xq) return cg_err_set(err, CG_ERR_NOMEM, "matmul: out of memory for '%s' activations", W->name);
        for (int64_t t = 0; t < n_tok; t++) vt->from_f32_act(X + t * n_in, xq + (size_t)t * j.xq_row, n_in);
        j.xq = xq;
    }
    if (W->layout == CG_LAYOUT_Q4_0_X8 && W->type == CG_QTYPE_Q4_0 && W->ne[1] % 8 == 0) {
        // Repacked at load (kern/repack.h): its own reference, one thread (this is the oracle).
        cg_repack_q4_0x8_matmul_ref(W->data, n_in, j.xq, j.xq_row, n_tok, Y, W->ne[1], 0, W->ne[1]);
        return CG_OK;
    }
    if (W->layout == CG_LAYOUT_Q4_K_X8 && W->type == CG_QTYPE_Q4_K && W->ne[1] % 8 == 0) {
        cg_repack_q4_Kx8_matmul_ref(W->data, n_in, j.xq, j.xq_row, n_tok, Y, W->ne[1], 0, W->ne[1]);
        return CG_OK;
    }
    if (W->layout == CG_LAYOUT_Q6_K_X8 && W->type == CG_QTYPE_Q6_K && W->ne[1] % 8 == 0) {
        cg_repack_q6_Kx8_matmul_ref(W->data, n_in, j.xq, j.xq_row, n_tok, Y, W->ne[1], 0, W->ne[1]);
        return CG_OK;
    }
    if (W->layout == CG_LAYOUT_Q5_0_X8 && W->type == CG_QTYPE_Q5_0 && W->ne[1] % 8 == 0) {
        // The stored AVX2 kernel's float order (kern/repack.h), not the traits' vec_dot.
        cg_repack_q5_0x8_matmul_ref(W->data, n_in, j.xq, j.xq_row, n_tok, Y, W->ne[1], 0, W->ne[1]);
        return CG_OK;
    }
    if (W->layout == CG_LAYOUT_Q8_0_X8 && W->type == CG_QTYPE_Q8_0 && W->ne[1] >= 8) {
        // The groups through their reference, the tail rows (stored layout) through the traits'.
        const int64_t n8 = W->ne[1] / 8 * 8;
        cg_repack_q8_0x8_matmul_ref(W->data, n_in, j.xq, j.xq_row, n_tok, Y, W->ne[1], 0, n8);
        for (int64_t t = 0; t < n_tok; t++)
            for (int64_t r = n8; r < W->ne[1]; r++)
                tr->vec_dot(n_in, &Y[t * W->ne[1] + r], (const unsigned char *)W->data + (size_t)r * W->row_bytes,
                            (const unsigned char *)j.xq + (size_t)t * j.xq_row);
        return CG_OK;
    }
    if (W->layout != CG_LAYOUT_STORED)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: tensor '%s' has layout %u for type %s and %lld rows",
                          W->name, W->layout, tr->name, (long long)W->ne[1]);
    if (pool && cg_pool_size(pool) > 1 && W->ne[1] * n_tok * n_in >= 4096)
        cg_pool_run(pool, mm_worker, &j);
    else
        mm_worker(&j, 0, 1);
    return CG_OK;
}

// The reference has no shared conversion to save: one matmul per weight, in order.
static cg_status ref_matmul_multi(const cg_tensor *const *W, int n_w, const float *X, int64_t n_tok, float *const *Y,
                                  cg_arena *arena, cg_pool *pool, cg_err *err) {
    if (n_w < 1 || n_w > CG_KERN_MAX_MULTI)
        return cg_err_set(err, CG_ERR_INVALID, "matmul: %d weights in one call (1..%d)", n_w, CG_KERN_MAX_MULTI);
    for (int w = 0; w < n_w; w++) {
        if (W[w]->ne[0] != W[0]->ne[0])
            return cg_err_set(err, CG_ERR_INVALID, "matmul: tensor '%s' has rows of %lld, '%s' of %lld (one input)",
                              W[w]->name, (long long)W[w]->ne[0], W[0]->name, (long long)W[0]->ne[0]);
        cg_status st = ref_matmul(W[w], X, n_tok, Y[w], arena, pool, err);
        if (st) return st;
    }
    return CG_OK;
}

// ---- norm, rope, activations ------------------------------------------------------------------

static void ref_rmsnorm(const float *x, const float *w, int64_t n, float eps, float *y) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    float mean = (float)(sum / (double)n);
    float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * scale;
        y[i] = w ? v * w[i] : v;
    }
}

static float yarn_ramp(float low, float high, int i0) {
    float y = ((float)(i0 / 2) - low) / fmaxf(0.001f, high - low);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

// The table of one position, as ggml_rope_cache_init builds it (theta *= theta_scale).
static void ref_rope_table(int32_t pos, const cg_rope_params *rp, float *cs) {
    const int n_rot = cg_rope_rot(rp);
    if (!n_rot) return;
    float theta_scale = powf(rp->freq_base, -2.0f / (float)rp->n_rot);
    float theta = (float)pos;
    for (int i0 = 0; i0 < n_rot; i0 += 2) {
        float ff = rp->freq_factors ? rp->freq_factors[i0 / 2] : 1.0f;
        float extrap = theta / ff;
        float interp = rp->freq_scale * extrap;
        float th = interp, mscale = rp->attn_factor;
        if (rp->ext_factor != 0.0f) {
            float mix = yarn_ramp(rp->corr_dims[0], rp->corr_dims[1], i0) * rp->ext_factor;
            th = interp * (1 - mix) + extrap * mix;
            mscale *= 1.0f + 0.1f * logf(1.0f / rp->freq_scale);
        }
        cs[i0] = cosf(th) * mscale;
        cs[i0 + 1] = sinf(th) * mscale;
        theta *= theta_scale;
    }
}

// x (n_head, head_dim): rotates the first n_rot dims of each head with a position's table, each
// pair by cg_rope_pair (kern.h).
static void ref_rope_apply(float *x, int n_head, int head_dim, const cg_rope_params *rp, const float *cs) {
    const int n_rot = cg_rope_rot(rp), half = n_rot / 2;
    for (int h = 0; h < n_head; h++) {
        float *v = x + (int64_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            if (rp->kind == CG_ROPE_NORM) cg_rope_pair(&v[2 * i], &v[2 * i + 1], cs[2 * i], cs[2 * i + 1]);
            else cg_rope_pair(&v[i], &v[i + half], cs[2 * i], cs[2 * i + 1]);
        }
    }
}

// exp(x) the way ggml's AVX2 ggml_v_expf evaluates it (one lane): x = n·ln2 + b with n rounded by
// the 1.5·2^23 trick, a degree-5 polynomial in b, and explicit handling of |n| > 126. ggml uses it
// for SiLU and softmax on 8-wide chunks; matching it removes ulp-level differences that quantized
// activations could otherwise amplify.
static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float v_expf(float x) {
    const float r = 0x1.8p23f;
    float z = fmaf(x, 0x1.715476p+0f, r);
    float n = z - r;
    float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    uint32_t e = f_bits(z) << 23;
    float k = bits_f(e + f_bits(1.0f));
    float u = b * b;
    float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                   0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126.0f)) return fmaf(j, k, k);
    uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    float s1 = bits_f(g + 0x7f000000u);
    float s2 = bits_f(e - g);
    if (fabsf(n) > 192.0f) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

static float gelu_tanh(float x) {
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f, coef_a = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * (1.0f + coef_a * x * x)));
}

static void ref_glu(cg_act_kind kind, const float *gate, const float *up, float *out, int64_t n) {
    int64_t n8 = n - n % 8;   // ggml's AVX2 SiLU covers 8-wide chunks; the tail uses libm's expf
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], a;
        if (kind == CG_ACT_SWIGLU) {
            a = g / (1.0f + (i < n8 ? v_expf(-g) : expf(-g)));
        } else if (g <= -10.0f) {
            a = 0.0f;
        } else if (g >= 10.0f) {
            a = g;
        } else {
            // ggml looks gelu up in a table indexed by the F16 bits of x and stores F16 results.
            float gh = cg_f16_to_f32(cg_f32_to_f16(g));
            a = cg_f16_to_f32(cg_f32_to_f16(gelu_tanh(gh)));
        }
        out[i] = a * up[i];
    }
}

// ---- attention --------------------------------------------------------------------------------

// Key (or value) row of position p for kv head kvh, as float.
static float kv_at(const cg_attn_args *a, const void *const *blocks, int64_t row, int dim, int32_t p, int kvh,
                   int d) {
    int b = p / a->block_size, r = p % a->block_size;
    int64_t off = r * row + (int64_t)kvh * dim + d;
    if (a->kv_type == CG_KV_F16) return cg_f16_to_f32(((const uint16_t *)blocks[b])[off]);
    return ((const float *)blocks[b])[off];
}

// q·k for one key, summed in the order of ggml's AVX2 ggml_vec_dot_f16/_f32: 4 accumulators of 8
// lanes fed by fused multiply-adds over 32-element steps, then a fixed reduction tree, then the
// tail. With an F16 value accumulator every bit of the score matters (it decides F16 roundings).
static float qk_dot(const cg_attn_args *a, const float *qv, int64_t kv_row, int32_t p, int kvh) {
    float lanes[4][8] = {{0}};
    int n = a->head_dim, np = n & ~31;
    for (int i = 0; i < np; i += 32)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 8; l++) {
                int d = i + 8 * j + l;
                lanes[j][l] = fmaf(qv[d], kv_at(a, a->k_blocks, kv_row, a->head_dim, p, kvh, d), lanes[j][l]);
            }
    float x0[8];
    for (int l = 0; l < 8; l++) x0[l] = (lanes[0][l] + lanes[2][l]) + (lanes[1][l] + lanes[3][l]);
    float t0[4];
    for (int k = 0; k < 4; k++) t0[k] = x0[k] + x0[k + 4];
    if (a->kv_type == CG_KV_F32) {   // ggml_vec_dot_f32: a float tail, one FMA per element (GCC's contraction)
        float sumf = (t0[0] + t0[1]) + (t0[2] + t0[3]);
        for (int d = np; d < n; d++) sumf = fmaf(qv[d], kv_at(a, a->k_blocks, kv_row, a->head_dim, p, kvh, d), sumf);
        return sumf;
    }
    double sum = (double)((t0[0] + t0[1]) + (t0[2] + t0[3]));   // ggml_vec_dot_f16: the tail in double
    for (int d = np; d < n; d++) sum += (double)(qv[d] * kv_at(a, a->k_blocks, kv_row, a->head_dim, p, kvh, d));
    return (float)sum;
}

// The score of one key after scale and soft-cap.
static float score(const cg_attn_args *a, float dot) {
    if (a->softcap == 0.0f) return dot * a->scale;
    return a->softcap * tanhf(dot * (a->scale / a->softcap));
}

// Sum of the weights p[first..last] the way ggml_vec_soft_max_f32 (AVX2) adds them: per 8-key
// chunk aligned on position 0 (the masked keys of a chunk count as 0) a float tree — lanes
// i+4 and i, then (0+2)+(1+3) — and the chunk sums in double.
static double softmax_sum(const float *p, int32_t first, int32_t last) {
    double sum = 0.0;
    for (int32_t c = first & ~7; c <= last; c += 8) {
        float l[8];
        for (int i = 0; i < 8; i++) l[i] = c + i >= first && c + i <= last ? p[c + i] : 0.0f;
        const float u0 = l[4] + l[0], u1 = l[5] + l[1], u2 = l[6] + l[2], u3 = l[7] + l[3];
        sum += (double)((u0 + u2) + (u1 + u3));
    }
    return sum;
}

// Σ w[t]·v[t][d] over the visible keys in ggml's mul_mat order for an F32 cache: FMAs into float
// accumulators chosen by key position mod 8 (pv_gemm: llamafile's tinyBLAS, hsum lanes i+4 and i,
// then (0+2)+(1+3)) or mod 32 (ggml_vec_dot_f32: accumulator j = (t mod 32)/8, reduced
// (0+2)+(1+3), then lanes i and i+4, then (0+1)+(2+3)). Masked keys have weight 0 there (an
// exact no-op FMA), so they are skipped here.
static float pv_sum(const cg_attn_args *a, const float *w, int32_t first, int32_t last, int64_t kv_row_v, int kvh,
                    int d) {
    float acc[32] = {0};
    const int32_t mask = a->pv_gemm ? 7 : 31;
    for (int32_t t = first; t <= last; t++)
        acc[t & mask] = fmaf(kv_at(a, a->v_blocks, kv_row_v, a->head_dim_v, t, kvh, d), w[t], acc[t & mask]);
    if (a->pv_gemm) {
        const float u0 = acc[4] + acc[0], u1 = acc[5] + acc[1], u2 = acc[6] + acc[2], u3 = acc[7] + acc[3];
        return (u0 + u2) + (u1 + u3);
    }
    float x[8];
    for (int i = 0; i < 8; i++) x[i] = (acc[i] + acc[16 + i]) + (acc[8 + i] + acc[24 + i]);
    const float t0 = x[0] + x[4], t1 = x[1] + x[5], t2 = x[2] + x[6], t3 = x[3] + x[7];
    return (t0 + t1) + (t2 + t3);
}

// F32 accumulation: scores, max, exp (ggml_v_expf); F32 cache: softmax_sum, w = p·(1/sum) in
// float, pv_sum — the order of ggml's soft_max + mul_mat; F16 cache with f32_acc (ggml's tiled
// flash attention): sums in double in key order.
static void attend_two_pass(const cg_attn_args *a, int h, int32_t first) {
    int kvh = h / (a->n_head / a->n_head_kv);
    int64_t kv_row = (int64_t)a->n_head_kv * a->head_dim, kv_row_v = (int64_t)a->n_head_kv * a->head_dim_v;
    const float *q = a->q + (int64_t)h * a->head_dim;
    float *p = a->scratch + a->head_dim + a->head_dim_v;   // pos+1 scores
    float M = -INFINITY;
    for (int32_t t = first; t <= a->pos; t++) {
        p[t] = score(a, qk_dot(a, q, kv_row, t, kvh));
        if (p[t] > M) M = p[t];
    }
    for (int32_t t = first; t <= a->pos; t++) p[t] = v_expf(p[t] - M);
    float *out = a->out + (int64_t)h * a->head_dim_v;
    if (a->kv_type == CG_KV_F32) {
        float inv = (float)(1.0 / softmax_sum(p, first, a->pos));
        for (int32_t t = first; t <= a->pos; t++) p[t] *= inv;
        for (int d = 0; d < a->head_dim_v; d++) out[d] = pv_sum(a, p, first, a->pos, kv_row_v, kvh, d);
        return;
    }
    // F16 cache with f32_acc: key-order sums in double.
    double sum = 0.0;
    for (int32_t t = first; t <= a->pos; t++) sum += (double)p[t];
    float inv = (float)(1.0 / sum);
    for (int d = 0; d < a->head_dim_v; d++) {
        double acc = 0.0;
        for (int32_t t = first; t <= a->pos; t++)
            acc += (double)(p[t] * inv * kv_at(a, a->v_blocks, kv_row_v, a->head_dim_v, t, kvh, d));
        out[d] = (float)acc;
    }
}

// F16 cache, small batches: ggml's one-chunk flash attention — q rounded to F16, online softmax
// with libm's expf (cg_expf: glibc's bits on every platform, kern/expf.h), the value accumulator
// rounded to F16 after every key.
static void attend_online_f16(const cg_attn_args *a, int h, int32_t first) {
    int kvh = h / (a->n_head / a->n_head_kv);
    int64_t kv_row = (int64_t)a->n_head_kv * a->head_dim, kv_row_v = (int64_t)a->n_head_kv * a->head_dim_v;
    const float *q = a->q + (int64_t)h * a->head_dim;
    float *qv = a->scratch;                    // head_dim
    uint16_t *acc = (uint16_t *)(a->scratch + a->head_dim);   // head_dim_v halves fit in head_dim_v floats
    for (int d = 0; d < a->head_dim; d++) qv[d] = cg_f16_to_f32(cg_f32_to_f16(q[d]));
    for (int d = 0; d < a->head_dim_v; d++) acc[d] = 0;
    float M = -INFINITY, S = 0.0f;
    for (int32_t t = first; t <= a->pos; t++) {
        float s = score(a, qk_dot(a, qv, kv_row, t, kvh));
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
            float m_old = M;
            M = s;
            ms = cg_expf(m_old - M);
            for (int d = 0; d < a->head_dim_v; d++) acc[d] = cg_f32_to_f16(cg_f16_to_f32(acc[d]) * ms);
        } else {
            vs = cg_expf(s - M);
        }
        for (int d = 0; d < a->head_dim_v; d++)
            acc[d] = cg_f32_to_f16(fmaf(kv_at(a, a->v_blocks, kv_row_v, a->head_dim_v, t, kvh, d), vs,
                                        cg_f16_to_f32(acc[d])));   // one rounding, like ggml's FMA
        S = S * ms + vs;
    }
    float inv = S == 0.0f ? 0.0f : 1.0f / S;
    float *out = a->out + (int64_t)h * a->head_dim_v;
    for (int d = 0; d < a->head_dim_v; d++) out[d] = cg_f16_to_f32(acc[d]) * inv;
}

static void ref_attention(const cg_attn_args *a) {
    int32_t first = 0;
    if (a->n_swa > 0 && a->pos - a->n_swa + 1 > 0) first = a->pos - a->n_swa + 1;
    bool online_f16 = a->kv_type == CG_KV_F16 && !a->f32_acc;
    const int h_end = a->head_hi > 0 ? a->head_hi : a->n_head;
    for (int h = a->head_hi > 0 ? a->head_lo : 0; h < h_end; h++) {
        if (online_f16)
            attend_online_f16(a, h, first);
        else
            attend_two_pass(a, h, first);
    }
}

// The reference multi-query entry: the single-query kernel once per query (one scratch slab of
// head_dim + head_dim_v + pos + n_q floats covers every query's pos + 1 scores).
static void ref_attention_multi(const cg_attn_args *a, int n_q) {
    if (n_q < 1 || n_q > CG_ATTN_MAX_Q) return;
    for (int i = 0; i < n_q; i++) {
        cg_attn_args one = *a;
        one.head_lo = one.head_hi = 0;   // every head
        one.q = a->q + (int64_t)i * a->n_head * a->head_dim;
        one.out = a->out + (int64_t)i * a->n_head * a->head_dim_v;
        one.pos = a->pos + i;
        ref_attention(&one);
    }
}

static const cg_kern GENERIC = {
    .name = "generic",
    .matmul = ref_matmul,
    .matmul_multi = ref_matmul_multi,
    .rmsnorm = ref_rmsnorm,
    .rope_table = ref_rope_table,
    .rope_apply = ref_rope_apply,
    .attention = ref_attention,
    .attention_multi = ref_attention_multi,
    .glu = ref_glu,
};

const cg_kern *cg_kern_generic(void) { return &GENERIC; }
