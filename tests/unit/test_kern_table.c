// test_kern_table.c — the machine's compute-op table (cg_kern_get(): AVX2 here) against the scalar
// reference table (cg_kern_generic()).
//
// * attention (F16 cache with F16 or F32 accumulation, F32 cache; GQA, soft-cap, sliding window,
//   several positions and block sizes) and SwiGLU (including |x| > 87, where exp leaves the normal
//   range, and lengths that are not multiples of 8): bit-identical — both follow ggml's AVX2 order.
// * rope (table + rotation; NORM, NEOX, YaRN, freq_factors, tails): bit-identical.
// * matmul for every weight format, 1 token (matvec) and 9 tokens (tiled), with and without a
//   thread pool: |fast − ref| ≤ 1e-5·Σ|w·x| per output (float summation order only; see
//   test_kern_qops.c for the bound).
// * matmul_multi (four weights of mixed formats and row counts sharing one input, so three
//   distinct activation types): every output bit-identical with a separate matmul of the same
//   table, for both tables, 1 and 9 tokens, with and without a pool; bad calls are error values.
// Skipped when cg_kern_get() is the reference itself (no SIMD table on this machine/build).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/thread.h"
#include "kern/kern.h"
#include "quant/f16.h"
#include "quant/quant.h"
#include "testutil.h"

static uint64_t g_rng = 12345;
static float frand(void) {
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(g_rng >> 40) * 0x1p-24f * 2.0f - 1.0f;
}

static const cg_kern *fast_or_skip(void) {
    const cg_kern *k = cg_kern_get();
    if (k == cg_kern_generic()) {
        print_message("cg_kern_get() is the reference table here: nothing to compare\n");
        return NULL;
    }
    return k;
}

// ---- attention ----------------------------------------------------------------------------------

typedef struct attn_case {
    int n_head, n_head_kv, head_dim, block_size;
    int32_t pos, n_swa;
    float softcap;
    cg_kv_dtype kv;
    bool f32_acc;   // F16 cache: F32 accumulation; F32 cache: taken as pv_gemm (the value sums' lane order)
} attn_case;

static void run_attn(const cg_kern *fast, const attn_case *c) {
    const int n_blocks = c->pos / c->block_size + 1;
    const int64_t row = (int64_t)c->n_head_kv * c->head_dim;
    const size_t esz = c->kv == CG_KV_F16 ? 2 : 4;
    void **kb = calloc((size_t)n_blocks, sizeof *kb), **vb = calloc((size_t)n_blocks, sizeof *vb);
    for (int b = 0; b < n_blocks; b++) {
        kb[b] = malloc((size_t)(c->block_size * row) * esz);
        vb[b] = malloc((size_t)(c->block_size * row) * esz);
        for (int64_t i = 0; i < c->block_size * row; i++) {
            const float kvals = frand() * 2.0f, vvals = frand();
            if (c->kv == CG_KV_F16) {
                ((uint16_t *)kb[b])[i] = cg_f32_to_f16(kvals);
                ((uint16_t *)vb[b])[i] = cg_f32_to_f16(vvals);
            } else {
                ((float *)kb[b])[i] = kvals;
                ((float *)vb[b])[i] = vvals;
            }
        }
    }
    const int64_t nq = (int64_t)c->n_head * c->head_dim;
    float *q = malloc((size_t)nq * sizeof *q), *o1 = calloc((size_t)nq, sizeof *o1), *o2 = calloc((size_t)nq, sizeof *o2);
    for (int64_t i = 0; i < nq; i++) q[i] = frand() * 1.5f;
    cg_attn_args a = {.q = q, .n_head = c->n_head, .n_head_kv = c->n_head_kv, .head_dim = c->head_dim,
                      .head_dim_v = c->head_dim, .pos = c->pos, .n_swa = c->n_swa,
                      .scale = 1.0f / sqrtf((float)c->head_dim), .softcap = c->softcap, .kv_type = c->kv,
                      .f32_acc = c->f32_acc, .pv_gemm = c->f32_acc,
                      .block_size = c->block_size, .k_blocks = (const void *const *)kb,
                      .v_blocks = (const void *const *)vb};
    const size_t n_scratch = (size_t)cg_attn_multi_scratch(&a, 1);
    float *s1 = calloc(n_scratch, sizeof *s1), *s2 = calloc(n_scratch, sizeof *s2);
    a.out = o1;
    a.scratch = s1;
    cg_kern_generic()->attention(&a);
    a.out = o2;
    a.scratch = s2;
    fast->attention(&a);
    for (int64_t i = 0; i < nq; i++)
        if (memcmp(&o1[i], &o2[i], sizeof(float)))
            fail_msg("attention (heads %d/%d, dim %d, pos %d, swa %d, softcap %g, kv %s, f32_acc %d): out[%lld] %.9g vs "
                     "reference %.9g",
                     c->n_head, c->n_head_kv, c->head_dim, c->pos, c->n_swa, c->softcap,
                     c->kv == CG_KV_F16 ? "f16" : "f32", c->f32_acc, (long long)i, o2[i], o1[i]);
    // Head ranges (forward.c splits one token's heads across threads along kv-head groups; the
    // contract allows any cut, also inside a group): each range writes exactly its heads, equal to
    // the all-heads result bit for bit, in both tables; others stay untouched.
    const int per = 1, hdv = c->head_dim;
    for (int tab = 0; tab < 2; tab++) {
        const cg_kern *kt = tab ? fast : cg_kern_generic();
        for (int cut = 0; cut <= c->n_head; cut++) {
            for (int64_t i = 0; i < nq; i++) o2[i] = -12345.0f;
            a.out = o2;
            a.head_lo = 0;
            a.head_hi = cut * per;
            if (a.head_hi > 0) kt->attention(&a);
            for (int64_t i = 0; i < nq; i++)
                if (i < (int64_t)cut * per * hdv ? memcmp(&o1[i], &o2[i], sizeof(float)) != 0 : o2[i] != -12345.0f)
                    fail_msg("%s attention heads [0, %d) of %d: out[%lld] %.9g, all-heads result %.9g", kt->name,
                             cut * per, c->n_head, (long long)i, o2[i], o1[i]);
            for (int64_t i = 0; i < nq; i++) o2[i] = -12345.0f;
            a.head_lo = cut * per;
            a.head_hi = c->n_head;
            if (a.head_lo < a.head_hi) kt->attention(&a);
            for (int64_t i = 0; i < nq; i++)
                if (i >= (int64_t)cut * per * hdv ? memcmp(&o1[i], &o2[i], sizeof(float)) != 0 : o2[i] != -12345.0f)
                    fail_msg("%s attention heads [%d, %d): out[%lld] %.9g, all-heads result %.9g", kt->name,
                             cut * per, c->n_head, (long long)i, o2[i], o1[i]);
        }
    }
    a.head_lo = a.head_hi = 0;
    for (int b = 0; b < n_blocks; b++) free(kb[b]), free(vb[b]);
    free(kb), free(vb), free(q), free(o1), free(o2), free(s1), free(s2);
}

static void test_attention_identical(void **state) {
    (void)state;
    const cg_kern *fast = fast_or_skip();
    if (!fast) { skip(); return; }
    static const cg_kv_dtype KV[] = {CG_KV_F16, CG_KV_F32};
    static const int32_t POS[] = {0, 1, 7, 16, 100, 333};
    static const int DIM[] = {64, 128, 40, 8};
    int n = 0;
    for (size_t k = 0; k < 2; k++)
        for (int acc = 0; acc < 2; acc++)
            for (size_t p = 0; p < sizeof POS / sizeof POS[0]; p++)
                for (size_t d = 0; d < sizeof DIM / sizeof DIM[0]; d++) {
                    attn_case c = {.n_head = 8, .n_head_kv = 2, .head_dim = DIM[d], .block_size = p % 2 ? 16 : 32,
                                   .pos = POS[p], .kv = KV[k], .f32_acc = acc};
                    run_attn(fast, &c);
                    c.softcap = 50.0f;
                    c.n_swa = 8;
                    run_attn(fast, &c);
                    n += 2;
                }
    // More query heads per kv head than scratch slabs (20 of 1: the shared-scores path takes them
    // 8, 8, 4) and the other chunked head sizes (32, 96).
    static const int DIM2[] = {32, 96};
    for (size_t k = 0; k < 2; k++)
        for (size_t p = 2; p < sizeof POS / sizeof POS[0]; p += 2)
            for (size_t d = 0; d < 2; d++) {
                attn_case c = {.n_head = 20, .n_head_kv = 1, .head_dim = DIM2[d], .block_size = 16, .pos = POS[p],
                               .kv = KV[k]};
                run_attn(fast, &c);
                n++;
            }
    print_message("%s attention bit-identical with the reference in %d cases\n", fast->name, n);
}

static void test_glu_identical(void **state) {
    (void)state;
    const cg_kern *fast = fast_or_skip();
    if (!fast) { skip(); return; }
    enum { N = 1003 };
    float g[N], u[N], o1[N], o2[N];
    for (int i = 0; i < N; i++) {
        g[i] = frand() * (i % 7 == 0 ? 120.0f : 8.0f);   // some beyond ±87: exp's out-of-range repair
        u[i] = frand();
    }
    static const int LENS[] = {N, 8, 13, 1, 256};
    for (size_t l = 0; l < sizeof LENS / sizeof LENS[0]; l++)
        for (int kind = 0; kind < 2; kind++) {
            cg_kern_generic()->glu((cg_act_kind)kind, g, u, o1, LENS[l]);
            fast->glu((cg_act_kind)kind, g, u, o2, LENS[l]);
            for (int i = 0; i < LENS[l]; i++)
                if (memcmp(&o1[i], &o2[i], sizeof(float)))
                    fail_msg("glu kind %d n %d: out[%d] %.9g vs reference %.9g (gate %g)", kind, LENS[l], i, o2[i], o1[i],
                             g[i]);
        }
    print_message("%s SwiGLU/GeGLU bit-identical with the reference\n", fast->name);
}

// Rope: each table's rope_table + rope_apply (its own table layout) against the reference's, bit
// for bit — NORM and NEOX, n_rot 64 / 128 (whole vectors), 40 and 2 (scalar tails), 10 (a head
// wider than its rotated part), plain, YaRN (ext_factor, attn_factor), linear scaling, freq_factors,
// positions 0..5000, a NONE kind (no change).
static void test_rope_identical(void **state) {
    (void)state;
    const cg_kern *fast = fast_or_skip();
    if (!fast) { skip(); return; }
    enum { MAX_HD = 128, N_HEAD = 5 };
    static const int ROT[] = {64, 128, 40, 2, 10};
    static const int HD[] = {64, 128, 40, 8, 64};
    static const int32_t POS[] = {0, 1, 7, 511, 5000};
    float ff[MAX_HD / 2];
    for (int i = 0; i < MAX_HD / 2; i++) ff[i] = 1.0f + (float)i * 0.37f;
    int n = 0;
    for (int kind = CG_ROPE_NONE; kind <= CG_ROPE_NEOX; kind++)
        for (size_t r = 0; r < sizeof ROT / sizeof ROT[0]; r++)
            for (int var = 0; var < 3; var++)
                for (size_t p = 0; p < sizeof POS / sizeof POS[0]; p++) {
                    cg_rope_params rp = {.kind = (cg_rope_kind)kind, .n_rot = ROT[r], .freq_base = 10000.0f,
                                         .freq_scale = 1.0f, .attn_factor = 1.0f};
                    if (var == 1) {   // YaRN
                        rp.freq_base = 1000000.0f, rp.freq_scale = 0.25f, rp.ext_factor = 1.0f, rp.attn_factor = 1.1f;
                        rp.corr_dims[0] = 3.0f, rp.corr_dims[1] = (float)ROT[r] / 2 - 2;
                    } else if (var == 2) {   // linear scaling and per-pair factors
                        rp.freq_scale = 0.5f, rp.freq_factors = ff;
                    }
                    float x[N_HEAD * MAX_HD], y[N_HEAD * MAX_HD], t_ref[2 * MAX_HD], t_fast[2 * MAX_HD];
                    for (int i = 0; i < N_HEAD * HD[r]; i++) x[i] = y[i] = frand() * 4.0f;
                    cg_kern_generic()->rope_table(POS[p], &rp, t_ref);
                    cg_kern_generic()->rope_apply(x, N_HEAD, HD[r], &rp, t_ref);
                    fast->rope_table(POS[p], &rp, t_fast);
                    fast->rope_apply(y, N_HEAD, HD[r], &rp, t_fast);
                    for (int i = 0; i < N_HEAD * HD[r]; i++)
                        if (memcmp(&x[i], &y[i], sizeof(float)))
                            fail_msg("rope kind %d n_rot %d head_dim %d variant %d pos %d: x[%d] %.9g vs reference %.9g",
                                     kind, ROT[r], HD[r], var, POS[p], i, y[i], x[i]);
                    n++;
                }
    print_message("%s rope bit-identical with the reference in %d cases\n", fast->name, n);
}

// ---- matmul ---------------------------------------------------------------------------------------

static void test_matmul_close(void **state) {
    (void)state;
    const cg_kern *fast = fast_or_skip();
    if (!fast) { skip(); return; }
    static const uint32_t TYPES[] = {CG_QTYPE_F32,  CG_QTYPE_F16,  CG_QTYPE_BF16, CG_QTYPE_Q4_0, CG_QTYPE_Q4_1,
                                     CG_QTYPE_Q5_0, CG_QTYPE_Q5_1, CG_QTYPE_Q8_0, CG_QTYPE_Q2_K, CG_QTYPE_Q3_K,
                                     CG_QTYPE_Q4_K, CG_QTYPE_Q5_K, CG_QTYPE_Q6_K};
    enum { N_IN = 512, N_OUT = 50, N_TOK = 9 };
    cg_err err = {0};
    cg_pool *pool = NULL;
    CG_ASSERT_OK(cg_pool_new(2, &pool, &err), &err);
    cg_arena arena;
    cg_arena_init(&arena, 1 << 20);
    float *wf = malloc(N_IN * N_OUT * sizeof *wf), *X = malloc(N_IN * N_TOK * sizeof *X);
    float *Y1 = malloc(N_OUT * N_TOK * sizeof *Y1), *Y2 = malloc(N_OUT * N_TOK * sizeof *Y2);
    float *wd = malloc(N_IN * N_OUT * sizeof *wd);
    for (int i = 0; i < N_IN * N_OUT; i++) wf[i] = frand();
    for (int i = 0; i < N_IN * N_TOK; i++) X[i] = frand() * 2.0f;
    double worst = 0.0;
    for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++) {
        const cg_qtype_traits *tr = cg_qtype_get(TYPES[k]);
        const size_t rb = (size_t)(N_IN / tr->blck_size) * tr->type_size;
        unsigned char *w = malloc(rb * N_OUT);
        for (int o = 0; o < N_OUT; o++) tr->from_f32(wf + o * N_IN, w + rb * (size_t)o, N_IN);
        tr->to_f32(w, wd, (int64_t)N_IN * N_OUT);
        cg_tensor W = {.name = "w", .type = TYPES[k], .ne = {N_IN, N_OUT, 1, 1}, .row_bytes = rb, .data = w};
        static const int NT[] = {1, N_TOK};
        for (int pass = 0; pass < 4; pass++) {
            const int n_tok = NT[pass % 2];
            cg_pool *p = pass < 2 ? pool : NULL;
            cg_arena_reset(&arena);
            CG_ASSERT_OK(cg_kern_generic()->matmul(&W, X, n_tok, Y1, &arena, p, &err), &err);
            CG_ASSERT_OK(fast->matmul(&W, X, n_tok, Y2, &arena, p, &err), &err);
            for (int t = 0; t < n_tok; t++)
                for (int o = 0; o < N_OUT; o++) {
                    double terms = 0.0;
                    for (int i = 0; i < N_IN; i++) terms += fabs((double)wd[o * N_IN + i] * X[t * N_IN + i]);
                    const double d = fabs((double)Y1[t * N_OUT + o] - Y2[t * N_OUT + o]);
                    // 1e-5 for summation order; activation rounding is identical in both (same
                    // quantized bytes), so Σ|w·x| of the f32 inputs bounds the products too.
                    if (d > 1e-5 * terms + 1e-30)
                        fail_msg("matmul %s tokens %d pool %d: Y[%d,%d] %.9g vs reference %.9g", tr->name, n_tok, p != NULL,
                                 t, o, Y2[t * N_OUT + o], Y1[t * N_OUT + o]);
                    if (terms > 0 && d / terms > worst) worst = d / terms;
                }
        }
        free(w);
    }
    print_message("%s matmul agrees with the reference for 13 formats (1 and %d tokens, with and without a pool); "
                  "max |Δ|/Σ|w·x| = %.2e (bound 1e-5)\n", fast->name, N_TOK, worst);
    // A type without kernels is an error value, not a crash.
    cg_tensor bad = {.name = "bad", .type = CG_QTYPE_IQ2_XXS, .ne = {256, 4, 1, 1}, .row_bytes = 66, .data = wf};
    assert_int_equal(fast->matmul(&bad, X, 1, Y2, &arena, pool, &err), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "bad"));
    free(wf), free(X), free(Y1), free(Y2), free(wd);
    cg_arena_free(&arena);
    cg_pool_free(pool);
}

// ---- matmul_multi ---------------------------------------------------------------------------------

static void check_multi(const cg_kern *kt, cg_tensor *const *W, int n_w, const float *X, cg_pool *pool,
                        cg_arena *arena) {
    enum { N_TOK = 9 };
    cg_err err = {0};
    static const int NT[] = {1, 3, N_TOK};
    for (int pass = 0; pass < 6; pass++) {
        const int n_tok = NT[pass % 3];
        cg_pool *p = pass < 3 ? pool : NULL;
        float *Ym[CG_KERN_MAX_MULTI], *Ys[CG_KERN_MAX_MULTI];
        const cg_tensor *Wc[CG_KERN_MAX_MULTI];
        cg_arena_reset(arena);
        for (int w = 0; w < n_w; w++) {
            Wc[w] = W[w];
            Ym[w] = calloc((size_t)(W[w]->ne[1] * n_tok), sizeof(float));
            Ys[w] = calloc((size_t)(W[w]->ne[1] * n_tok), sizeof(float));
            CG_ASSERT_OK(kt->matmul(W[w], X, n_tok, Ys[w], arena, p, &err), &err);
        }
        CG_ASSERT_OK(kt->matmul_multi(Wc, n_w, X, n_tok, Ym, arena, p, &err), &err);
        for (int w = 0; w < n_w; w++) {
            for (int64_t i = 0; i < W[w]->ne[1] * n_tok; i++)
                if (memcmp(&Ym[w][i], &Ys[w][i], sizeof(float)))
                    fail_msg("%s matmul_multi weight %d (%s) tokens %d pool %d: Y[%lld] %.9g vs matmul %.9g", kt->name,
                             w, W[w]->name, n_tok, p != NULL, (long long)i, Ym[w][i], Ys[w][i]);
            free(Ym[w]);
            free(Ys[w]);
        }
    }
}

static void test_matmul_multi_identical(void **state) {
    (void)state;
    enum { N_IN = 512, N_W = 4 };
    static const uint32_t TYPES[N_W] = {CG_QTYPE_Q4_K, CG_QTYPE_Q6_K, CG_QTYPE_Q8_0, CG_QTYPE_F16};
    static const int N_OUT[N_W] = {50, 301, 21, 33};
    static const char *NAMES[N_W] = {"wq", "wk", "wv", "wx"};
    cg_err err = {0};
    cg_pool *pool = NULL;
    CG_ASSERT_OK(cg_pool_new(2, &pool, &err), &err);
    cg_arena arena;
    cg_arena_init(&arena, 1 << 20);
    float *X = malloc(N_IN * 9 * sizeof *X), *wf = malloc(N_IN * 301 * sizeof *wf);
    for (int i = 0; i < N_IN * 9; i++) X[i] = frand() * 2.0f;
    cg_tensor T[N_W];
    cg_tensor *W[N_W];
    unsigned char *data[N_W];
    for (int w = 0; w < N_W; w++) {
        const cg_qtype_traits *tr = cg_qtype_get(TYPES[w]);
        const size_t rb = (size_t)(N_IN / tr->blck_size) * tr->type_size;
        data[w] = malloc(rb * (size_t)N_OUT[w]);
        for (int i = 0; i < N_IN * N_OUT[w]; i++) wf[i] = frand();
        for (int o = 0; o < N_OUT[w]; o++) tr->from_f32(wf + o * N_IN, data[w] + rb * (size_t)o, N_IN);
        T[w] = (cg_tensor){.name = NAMES[w], .type = TYPES[w], .ne = {N_IN, N_OUT[w], 1, 1}, .row_bytes = rb,
                           .data = data[w]};
        W[w] = &T[w];
    }
    const cg_kern *tables[2] = {cg_kern_generic(), cg_kern_get()};
    for (int k = 0; k < 2; k++) {
        check_multi(tables[k], W, N_W, X, pool, &arena);   // Q8_K, Q8_0 and F16 activations
        check_multi(tables[k], W, 2, X, pool, &arena);     // gate/up-like: one activation type
        // Bad calls: error values that say what is wrong.
        const cg_tensor *Wc[5] = {W[0], W[1], W[2], W[3], W[0]};
        float *Y[5] = {wf, wf, wf, wf, wf};
        assert_int_equal(tables[k]->matmul_multi(Wc, 0, X, 1, Y, &arena, pool, &err), CG_ERR_INVALID);
        assert_int_equal(tables[k]->matmul_multi(Wc, 5, X, 1, Y, &arena, pool, &err), CG_ERR_INVALID);
        cg_tensor narrow = T[1];
        narrow.name = "narrow";
        narrow.ne[0] = 256;
        const cg_tensor *Wn[2] = {W[0], &narrow};
        assert_int_equal(tables[k]->matmul_multi(Wn, 2, X, 1, Y, &arena, pool, &err), CG_ERR_INVALID);
        assert_non_null(strstr(err.msg, "narrow"));
        cg_tensor bad = {.name = "bad", .type = CG_QTYPE_IQ2_XXS, .ne = {N_IN, 4, 1, 1}, .row_bytes = 132, .data = wf};
        const cg_tensor *Wb[2] = {W[0], &bad};
        assert_int_equal(tables[k]->matmul_multi(Wb, 2, X, 1, Y, &arena, pool, &err), CG_ERR_UNSUPPORTED);
        assert_non_null(strstr(err.msg, "bad"));
    }
    print_message("%s and generic matmul_multi bit-identical with separate matmuls (4 weights, 3 activation types; "
                  "1/3/9 tokens; with and without a pool)\n", cg_kern_get()->name);
    for (int w = 0; w < N_W; w++) free(data[w]);
    free(X), free(wf);
    cg_arena_free(&arena);
    cg_pool_free(pool);
}

// Matrices of several hundred KiB: the pool's threads take many pieces of the rows (qmatmul.c takes
// them from a shared counter, at least 64 KiB each), and every output must equal the one-thread
// result bit for bit whatever thread computed it (1 and 3 tokens, 2 and 3 threads).
static void test_matmul_pieces_identical(void **state) {
    (void)state;
    enum { N_IN = 512, N_W = 3 };
    static const uint32_t TYPES[N_W] = {CG_QTYPE_Q8_0, CG_QTYPE_Q6_K, CG_QTYPE_Q5_0};
    static const int N_OUT[N_W] = {1500, 701, 1203};
    cg_err err = {0};
    cg_arena arena;
    cg_arena_init(&arena, 1 << 20);
    float *X = malloc(N_IN * 3 * sizeof *X), *row = malloc(N_IN * sizeof *row);
    for (int i = 0; i < N_IN * 3; i++) X[i] = frand() * 2.0f;
    cg_tensor T[N_W];
    const cg_tensor *W[N_W];
    unsigned char *data[N_W];
    float *Y1[N_W], *Yp[N_W];
    size_t bytes = 0;
    for (int w = 0; w < N_W; w++) {
        const cg_qtype_traits *tr = cg_qtype_get(TYPES[w]);
        const size_t rb = (size_t)(N_IN / tr->blck_size) * tr->type_size;
        data[w] = malloc(rb * (size_t)N_OUT[w]);
        for (int o = 0; o < N_OUT[w]; o++) {
            for (int i = 0; i < N_IN; i++) row[i] = frand();
            tr->from_f32(row, data[w] + rb * (size_t)o, N_IN);
        }
        T[w] = (cg_tensor){.name = tr->name, .type = TYPES[w], .ne = {N_IN, N_OUT[w], 1, 1}, .row_bytes = rb,
                           .data = data[w]};
        W[w] = &T[w];
        Y1[w] = malloc((size_t)N_OUT[w] * 3 * sizeof(float));
        Yp[w] = malloc((size_t)N_OUT[w] * 3 * sizeof(float));
        bytes += rb * (size_t)N_OUT[w];
    }
    const cg_kern *kt = cg_kern_get();
    for (int nt = 2; nt <= 3; nt++) {
        cg_pool *pool = NULL;
        CG_ASSERT_OK(cg_pool_new(nt, &pool, &err), &err);
        for (int n_tok = 1; n_tok <= 3; n_tok += 2) {
            cg_arena_reset(&arena);
            CG_ASSERT_OK(kt->matmul_multi(W, N_W, X, n_tok, Y1, &arena, NULL, &err), &err);
            for (int rep = 0; rep < 3; rep++) {
                for (int w = 0; w < N_W; w++) memset(Yp[w], 0xFF, (size_t)N_OUT[w] * 3 * sizeof(float));
                CG_ASSERT_OK(kt->matmul_multi(W, N_W, X, n_tok, Yp, &arena, pool, &err), &err);
                for (int w = 0; w < N_W; w++)
                    if (memcmp(Y1[w], Yp[w], (size_t)N_OUT[w] * n_tok * sizeof(float)))
                        fail_msg("%s matmul_multi %s, %d tokens, %d threads: differs from one thread", kt->name,
                                 T[w].name, n_tok, nt);
            }
        }
        cg_pool_free(pool);
    }
    print_message("%s matmul_multi over %.0f KiB of Q8_0/Q6_K/Q5_0 rows: 2 and 3 threads equal one thread bit for bit\n",
                  kt->name, (double)bytes / 1024.0);
    for (int w = 0; w < N_W; w++) free(data[w]), free(Y1[w]), free(Yp[w]);
    free(X), free(row);
    cg_arena_free(&arena);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_identical),
        cmocka_unit_test(test_glu_identical),
        cmocka_unit_test(test_rope_identical),
        cmocka_unit_test(test_matmul_close),
        cmocka_unit_test(test_matmul_multi_identical),
        cmocka_unit_test(test_matmul_pieces_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
