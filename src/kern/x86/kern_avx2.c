// kern_avx2.c — the AVX2 compute-op table ("avx2"), selected by cg_kern_get() on CPUs with
// AVX2+FMA+F16C. Same contracts as the reference table (kern.h); only float summation order differs.
//
// * matmul: the activations are quantized once per call into the weight type's vec_dot type with
//   the AVX2 quantizers (byte-identical with the reference), split by tokens across the pool; then
//   the weight rows are split across the pool's threads: one token runs matvec (prefetching rows),
//   several run the row-tiled kernel that unpacks each weight block once for up to four tokens.
// * attention: one query over the paged cache, vectorised over head_dim. With an F16 cache and
//   F16 accumulation (the reference's small-batch mode) it keeps the reference's per-key update,
//   whose F16 roundings it reproduces exactly (F16C conversions round like cg_f32_to_f16); only the
//   q·k dot is summed in float lanes instead of double. With F32 accumulation it is flash-style:
//   scores for a tile of keys, one rescale of the accumulator per tile, a vector exp.
// * rmsnorm, rope, glu: the reference (negligible time next to the matrix products).
// No state; the table is static and immutable.
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "base/num.h"
#include "kern/kern.h"
#include "kern/x86/avx2.h"
#include "quant/f16.h"
#include "quant/quant.h"

// ---- matmul -------------------------------------------------------------------------------------

typedef struct mm_job {
    const cg_tensor *W;
    uint32_t t;
    const cg_qops *ops;
    cg_from_f32_fn quant;
    const float *X;
    unsigned char *xq;
    size_t xq_row;
    int64_t n_tok;
    float *Y;
} mm_job;

static void quant_worker(void *ctx, int i_thread, int n_thread) {
    const mm_job *j = ctx;
    int64_t b, e;
    cg_pool_split(j->n_tok, i_thread, n_thread, &b, &e);
    for (int64_t k = b; k < e; k++) j->quant(j->X + k * j->W->ne[0], j->xq + (size_t)k * j->xq_row, j->W->ne[0]);
}

static void mm_worker(void *ctx, int i_thread, int n_thread) {
    const mm_job *j = ctx;
    const cg_tensor *W = j->W;
    // Split rows in multiples of 16 so each thread's tiles stay whole.
    int64_t b, e, n_tiles = (W->ne[1] + 15) / 16;
    cg_pool_split(n_tiles, i_thread, n_thread, &b, &e);
    b *= 16;
    e = e * 16 < W->ne[1] ? e * 16 : W->ne[1];
    if (b >= e) return;
    if (j->n_tok == 1)
        cg_qops_matvec(j->ops, j->t, W->data, W->row_bytes, W->ne[0], j->xq, j->Y + b, b, e);
    else
        cg_qops_matmul(j->ops, j->t, W->data, W->row_bytes, W->ne[0], j->xq, j->xq_row, j->n_tok, j->Y, W->ne[1], b, e);
}

static cg_status avx2_matmul(const cg_tensor *W, const float *X, int64_t n_tok, float *Y, cg_arena *arena,
                             cg_pool *pool, cg_err *err) {
    const cg_qtype_traits *tr = cg_qtype_get(W->type);
    if (!tr) return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: tensor '%s' has unknown type %u", W->name, W->type);
    const cg_qops *ops = cg_qops_avx2();
    const cg_qtype_traits *vt = cg_qtype_get(tr->vec_dot_type);
    mm_job j = {.W = W, .t = W->type, .ops = ops, .X = X, .n_tok = n_tok, .Y = Y};
    j.quant = vt ? cg_qops_quant_act(ops, tr->vec_dot_type) : NULL;
    if (!cg_qops_vec_dot(ops, W->type) || !j.quant)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "matmul: no dot product for tensor '%s' of type %s", W->name,
                          tr->name);
    const int64_t n_in = W->ne[0];
    if (n_in % vt->blck_size || n_in % tr->blck_size)
        return cg_err_set(err, CG_ERR_FORMAT, "matmul: '%s' row of %lld is not a multiple of %s blocks", W->name,
                          (long long)n_in, vt->name);
    if (n_tok <= 0) return CG_OK;
    j.xq_row = (size_t)(n_in / vt->blck_size) * vt->type_size;
    const bool threaded = pool && cg_pool_size(pool) > 1 && W->ne[1] * n_tok * n_in >= 4096;
    if (tr->vec_dot_type == CG_QTYPE_F32) {
        j.xq = (unsigned char *)(uintptr_t)X;   // already the partner type; read-only below
    } else {
        size_t n_bytes;
        if (!cg_mul_size(j.xq_row, (size_t)n_tok, &n_bytes))
            return cg_err_set(err, CG_ERR_LIMIT, "matmul: '%s' activation size overflows", W->name);
        j.xq = cg_arena_alloc(arena, n_bytes, 64);
        if (!j.xq) return cg_err_set(err, CG_ERR_NOMEM, "matmul: out of memory for '%s' activations", W->name);
        if (threaded && n_tok >= 4)
            cg_pool_run(pool, quant_worker, &j);
        else
            quant_worker(&j, 0, 1);
    }
    if (threaded)
        cg_pool_run(pool, mm_worker, &j);
    else
        mm_worker(&j, 0, 1);
    return CG_OK;
}

// ---- attention --------------------------------------------------------------------------------------

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// e^x for x ≤ 0 (scores minus their max), relative error ≈ 2e-7: 2^(x·log2 e) split into an
// integer power built in the exponent bits and a degree-6 polynomial on the fraction.
static inline __m256 exp_neg_ps(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f));
    const __m256 fl = _mm256_floor_ps(t);
    const __m256 f = _mm256_sub_ps(t, fl);   // [0, 1)
    // 2^f on [0, 1): minimax-style coefficients of the Taylor series of e^(f ln 2).
    __m256 p = _mm256_set1_ps(1.5403530393381609954e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3333558146428443423e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291076284771620e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504108664821579953e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022650695910071233e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718055994530942e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fl), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline __m256 load_kv(const void *base, int64_t off, bool f16) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + off)));
    return _mm256_loadu_ps((const float *)base + off);
}

static inline float kv_elem(const void *base, int64_t off, bool f16) {
    return f16 ? _cvtsh_ss(((const uint16_t *)base)[off]) : ((const float *)base)[off];
}

// q · k over n elements (k in the cache type).
static inline float dot_qk(const float *q, const void *kbase, int64_t off, int n, bool f16) {
    __m256 acc = _mm256_setzero_ps();
    int d = 0;
    for (; d + 8 <= n; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), load_kv(kbase, off + d, f16), acc);
    float s = hsum_ps(acc);
    for (; d < n; d++) s += q[d] * kv_elem(kbase, off + d, f16);
    return s;
}

enum { ATT_TILE = 32 };

static void avx2_attention(const cg_attn_args *a) {
    const int group = a->n_head / a->n_head_kv;
    const int64_t kv_row = (int64_t)a->n_head_kv * a->head_dim, kv_row_v = (int64_t)a->n_head_kv * a->head_dim_v;
    const bool f16 = a->kv_type == CG_KV_F16, hacc = f16 && !a->f32_acc;
    const int hd = a->head_dim, hdv = a->head_dim_v;
    float *acc = a->scratch, *qv = a->scratch + hdv;
    uint16_t accq[1024];
    int32_t first = 0;
    if (a->n_swa > 0 && a->pos - a->n_swa + 1 > 0) first = a->pos - a->n_swa + 1;
    float scale = a->scale;
    if (a->softcap != 0.0f) scale /= a->softcap;
    for (int h = 0; h < a->n_head; h++) {
        const int kvh = h / group;
        const float *q = a->q + (int64_t)h * hd;
        if (hacc) {
            int d = 0;
            for (; d + 8 <= hd; d += 8)
                _mm256_storeu_ps(qv + d, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(q + d), _MM_FROUND_TO_NEAREST_INT)));
            for (; d < hd; d++) qv[d] = cg_f16_to_f32(cg_f32_to_f16(q[d]));
        } else {
            memcpy(qv, q, (size_t)hd * sizeof *qv);
        }
        memset(acc, 0, (size_t)hdv * sizeof *acc);
        memset(accq, 0, (size_t)hdv * sizeof *accq);
        float M = -INFINITY, S = 0.0f;
        if (hacc) {
            // The reference's per-key update with F16 rounding of the accumulator after each step.
            for (int32_t p = first; p <= a->pos; p++) {
                const int b = p / a->block_size, r = p % a->block_size;
                float s = dot_qk(qv, a->k_blocks[b], r * kv_row + (int64_t)kvh * hd, hd, true) * scale;
                if (a->softcap != 0.0f) s = a->softcap * tanhf(s);
                float ms = 1.0f, vs = 1.0f;
                if (s > M) {
                    const float m_old = M;
                    M = s;
                    ms = expf(m_old - M);
                } else {
                    vs = expf(s - M);
                }
                const uint16_t *v = (const uint16_t *)a->v_blocks[b] + r * kv_row_v + (int64_t)kvh * hdv;
                const __m256 vms = _mm256_set1_ps(ms), vvs = _mm256_set1_ps(vs);
                int d = 0;
                for (; d + 8 <= hdv; d += 8) {
                    __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(accq + d)));
                    if (ms != 1.0f)
                        x = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(x, vms), _MM_FROUND_TO_NEAREST_INT));
                    const __m256 vv = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + d))), vvs);
                    _mm_storeu_si128((__m128i *)(accq + d), _mm256_cvtps_ph(_mm256_add_ps(x, vv), _MM_FROUND_TO_NEAREST_INT));
                }
                for (; d < hdv; d++) {
                    float x = cg_f16_to_f32(accq[d]);
                    if (ms != 1.0f) x = cg_f16_to_f32(cg_f32_to_f16(x * ms));
                    accq[d] = cg_f32_to_f16(x + cg_f16_to_f32(v[d]) * vs);
                }
                S = S * ms + vs;
            }
            for (int d = 0; d < hdv; d++) acc[d] = cg_f16_to_f32(accq[d]);
        } else {
            // Flash-style: a tile of scores, one rescale per tile.
            float sc[ATT_TILE];
            for (int32_t p0 = first; p0 <= a->pos; p0 += ATT_TILE) {
                const int n = a->pos - p0 + 1 < ATT_TILE ? a->pos - p0 + 1 : ATT_TILE;
                float tmax = -INFINITY;
                for (int i = 0; i < n; i++) {
                    const int32_t p = p0 + i;
                    const int b = p / a->block_size, r = p % a->block_size;
                    float s = dot_qk(qv, a->k_blocks[b], r * kv_row + (int64_t)kvh * hd, hd, f16) * scale;
                    if (a->softcap != 0.0f) s = a->softcap * tanhf(s);
                    sc[i] = s;
                    if (s > tmax) tmax = s;
                }
                if (tmax > M) {
                    const float ms = M == -INFINITY ? 0.0f : expf(M - tmax);
                    const __m256 vms = _mm256_set1_ps(ms);
                    int d = 0;
                    for (; d + 8 <= hdv; d += 8) _mm256_storeu_ps(acc + d, _mm256_mul_ps(_mm256_loadu_ps(acc + d), vms));
                    for (; d < hdv; d++) acc[d] *= ms;
                    S *= ms;
                    M = tmax;
                }
                int i = 0;
                for (; i + 8 <= n; i += 8)
                    _mm256_storeu_ps(sc + i, exp_neg_ps(_mm256_sub_ps(_mm256_loadu_ps(sc + i), _mm256_set1_ps(M))));
                for (; i < n; i++) sc[i] = expf(sc[i] - M);
                for (i = 0; i < n; i++) {
                    const int32_t p = p0 + i;
                    const int b = p / a->block_size, r = p % a->block_size;
                    const int64_t off = r * kv_row_v + (int64_t)kvh * hdv;
                    const __m256 vs = _mm256_set1_ps(sc[i]);
                    int d = 0;
                    for (; d + 8 <= hdv; d += 8)
                        _mm256_storeu_ps(acc + d, _mm256_fmadd_ps(load_kv(a->v_blocks[b], off + d, f16), vs,
                                                                  _mm256_loadu_ps(acc + d)));
                    for (; d < hdv; d++) acc[d] += kv_elem(a->v_blocks[b], off + d, f16) * sc[i];
                    S += sc[i];
                }
            }
        }
        const float inv = S == 0.0f ? 0.0f : 1.0f / S;
        float *out = a->out + (int64_t)h * hdv;
        for (int d = 0; d < hdv; d++) out[d] = acc[d] * inv;
    }
}

// ---- the rest: the reference ---------------------------------------------------------------------

static void avx2_rmsnorm(const float *x, const float *w, int64_t n, float eps, float *y) {
    cg_kern_generic()->rmsnorm(x, w, n, eps, y);
}

static void avx2_rope(float *x, int n_head, int head_dim, int32_t pos, const cg_rope_params *rp) {
    cg_kern_generic()->rope(x, n_head, head_dim, pos, rp);
}

static void avx2_glu(cg_act_kind kind, const float *gate, const float *up, float *out, int64_t n) {
    cg_kern_generic()->glu(kind, gate, up, out, n);
}

static const cg_kern AVX2 = {
    .name = "avx2",
    .matmul = avx2_matmul,
    .rmsnorm = avx2_rmsnorm,
    .rope = avx2_rope,
    .attention = avx2_attention,
    .glu = avx2_glu,
};

const cg_kern *cg_kern_avx2(void) { return &AVX2; }
