// test_kern_qops.c — the SIMD kernel set of this machine (AVX2 on x86-64, NEON on aarch64) against
// the scalar reference (quant/ref.h) and against ggml's own outputs (shared/testdata/quant).
//
// * Activation quantizers (Q8_0, Q8_1, Q8_K, F16): byte-identical with the reference on random
//   rows, rows built to hit rounding ties, zero blocks, and on ggml's act_*.bin files.
// * Dot products, every weight format: |simd − ref| ≤ 1e-5 · Σ|w_i·y_i| (Σ over the dequantized
//   terms). Both sum exact integer block dots scaled in float; they differ only in the order the
//   per-block float terms are added (8 lanes + FMA vs one running sum), whose error is bounded by
//   (terms per lane)·2^-24·Σ|terms| ≈ 1e-5·Σ|terms| for the longest rows here. A wrong scale, nibble
//   or bit is an O(1) relative error, far above that.
// * matvec / matmul loops: each output equal to that row's reference dot within the same bound.
// * matvec's row pairs (vec_dot_x2): bit-identical with vec_dot, odd and even ranges. Q5_0's dot
//   product bit-identical with ggml's AVX2 vec_dot values (same summation order).
// * matmul's two-row tiles (Q4_0, Q8_0): odd row ranges (a lone last row in a tile) and 1..9 tokens
//   (full and partial groups of four), each output against the reference dot, untouched rows left
//   alone.
// Skipped (visibly) when the CPU has no SIMD set this build implements.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kern/cpu.h"
#include "kern/qops.h"
#include "quant/quant.h"
#include "testutil.h"

// ---- helpers ----------------------------------------------------------------------------------

typedef struct rng {
    uint64_t s;
} rng;

static uint32_t rng_u32(rng *r) {
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(r->s >> 33);
}

static float rng_f(rng *r) { return (float)rng_u32(r) / 2147483648.0f * 2.0f - 1.0f; }  // [-1, 1)

// Row of n floats in one of several shapes: uniform, scaled, outliers, one-signed, zeros.
static void fill_row(rng *r, float *x, int64_t n, int kind) {
    const float amp = kind == 1 ? 100.0f : kind == 2 ? 1e-3f : 1.0f;
    for (int64_t i = 0; i < n; i++) x[i] = rng_f(r) * amp;
    if (kind == 3)
        for (int64_t i = 0; i < n; i += 37) x[i] = 40.0f * (i % 2 ? 1 : -1);  // outliers
    if (kind == 4)
        for (int64_t i = 0; i < n; i++) x[i] = fabsf(x[i]);
    if (kind == 5)
        for (int64_t i = 0; i < n / 2; i++) x[i] = 0.0f;  // zero blocks at the start
}

static const cg_qops *simd_or_skip(void) {
    const cg_qops *ops = cg_qops_get();
    if (!strcmp(ops->name, "generic")) {
        print_message("no SIMD kernel set for this CPU/build (isa %s): skipped\n", cg_isa_name(cg_cpu_isa()));
        return NULL;
    }
    return ops;
}

static size_t row_bytes(uint32_t t, int64_t n) {
    const cg_qtype_traits *tr = cg_qtype_get(t);
    return (size_t)(n / tr->blck_size) * tr->type_size;
}

// Σ|w_i·y_i| of the dequantized rows, in double.
static double abs_terms(uint32_t tw, const void *w, uint32_t ty, const void *y, int64_t n) {
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    cg_qtype_get(tw)->to_f32(w, a, n);
    cg_qtype_get(ty)->to_f32(y, b, n);
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] * (double)b[i]);
    free(a);
    free(b);
    return s;
}

static const uint32_t WEIGHT_TYPES[] = {CG_QTYPE_F32,  CG_QTYPE_F16,  CG_QTYPE_BF16, CG_QTYPE_Q4_0, CG_QTYPE_Q4_1,
                                        CG_QTYPE_Q5_0, CG_QTYPE_Q5_1, CG_QTYPE_Q8_0, CG_QTYPE_Q2_K, CG_QTYPE_Q3_K,
                                        CG_QTYPE_Q4_K, CG_QTYPE_Q5_K, CG_QTYPE_Q6_K};
#define N_WEIGHT_TYPES (sizeof WEIGHT_TYPES / sizeof WEIGHT_TYPES[0])

// ---- activation quantizers ----------------------------------------------------------------------

static void check_act_identical(const cg_qops *ops, uint32_t t, const float *x, int64_t n, const char *what) {
    const cg_qtype_traits *tr = cg_qtype_get(t);
    size_t nb = row_bytes(t, n);
    unsigned char *a = calloc(1, nb), *b = calloc(1, nb);
    tr->from_f32_act(x, a, n);
    cg_qops_quant_act(ops, t)(x, b, n);
    for (size_t i = 0; i < nb; i++)
        if (a[i] != b[i]) fail_msg("%s: %s activation quantizer differs from the reference at byte %zu of %zu (%02x vs %02x)",
                                   what, tr->name, i, nb, a[i], b[i]);
    free(a);
    free(b);
}

static void test_act_quant_identical(void **state) {
    (void)state;
    const cg_qops *ops = simd_or_skip();
    if (!ops) { skip(); return; }
    static const uint32_t ACT[] = {CG_QTYPE_Q8_0, CG_QTYPE_Q8_1, CG_QTYPE_Q8_K, CG_QTYPE_F16};
    static const int64_t LENS[] = {256, 768, 2816, 4096};
    rng r = {42};
    float *x = malloc(4096 * sizeof *x);
    int n_checked = 0;
    for (size_t a = 0; a < sizeof ACT / sizeof ACT[0]; a++)
        for (size_t l = 0; l < sizeof LENS / sizeof LENS[0]; l++)
            for (int kind = 0; kind < 6; kind++) {
                fill_row(&r, x, LENS[l], kind);
                check_act_identical(ops, ACT[a], x, LENS[l], "random row");
                n_checked++;
            }
    // Ties: with amax = 127 the scale is exactly 1 (Q8_0/Q8_1) and k + 0.5 must round to even;
    // for Q8_K the max element −127 makes iscale = 1 as well.
    for (int64_t i = 0; i < 4096; i++) x[i] = (float)((i * 7) % 254 - 127) * 0.5f;
    for (int64_t i = 0; i < 4096; i += 32) x[i] = 127.0f;
    for (size_t a = 0; a < 4; a++) check_act_identical(ops, ACT[a], x, 4096, "tie row");
    for (int64_t i = 0; i < 4096; i += 32) x[i] = -127.0f;
    for (size_t a = 0; a < 4; a++) check_act_identical(ops, ACT[a], x, 4096, "tie row (negative max)");
    // The first of two equal-magnitude extremes sets Q8_K's sign.
    for (int64_t i = 0; i < 256; i++) x[i] = rng_f(&r);
    x[10] = 3.0f;
    x[200] = -3.0f;
    check_act_identical(ops, CG_QTYPE_Q8_K, x, 256, "equal extremes");
    print_message("%s: %d random activation rows + tie rows byte-identical with the reference\n", ops->name, n_checked);
    free(x);
}

// ggml's AVX2 quantize_row_* outputs for input_x (shared/testdata/quant/act_*.bin).
static void test_act_quant_matches_ggml(void **state) {
    (void)state;
    const cg_qops *ops = simd_or_skip();
    if (!ops) { skip(); return; }
    size_t nx;
    float *x = (float *)cg_test_read("quant/input_x.f32", &nx);
    if (!x) { skip(); return; }
    static const struct { uint32_t t; const char *file; } ACT[] = {
        {CG_QTYPE_Q8_0, "quant/act_q8_0.bin"}, {CG_QTYPE_Q8_1, "quant/act_q8_1.bin"},
        {CG_QTYPE_Q8_K, "quant/act_q8_K.bin"}, {CG_QTYPE_F16, "quant/act_f16.bin"}};
    const int64_t n = (int64_t)(nx / sizeof(float));
    for (size_t a = 0; a < sizeof ACT / sizeof ACT[0]; a++) {
        size_t nw;
        unsigned char *want = cg_test_read(ACT[a].file, &nw);
        assert_non_null(want);
        assert_int_equal(nw, row_bytes(ACT[a].t, n));
        unsigned char *got = calloc(1, nw);
        // Row by row (256 elements), as ggml quantized them.
        size_t rb = row_bytes(ACT[a].t, 256);
        for (int64_t r = 0; r < n / 256; r++) cg_qops_quant_act(ops, ACT[a].t)(x + 256 * r, got + rb * (size_t)r, 256);
        assert_memory_equal(got, want, nw);
        free(got);
        free(want);
    }
    print_message("%s: Q8_0, Q8_1, Q8_K, F16 activations of input_x identical with ggml's files\n", ops->name);
    free(x);
}

// ---- dot products ----------------------------------------------------------------------------

// Quantizes weights with the reference quantizer and activations with the reference activation
// path, then compares the two dot products.
static double check_dot(const cg_qops *ops, uint32_t t, const float *wf, const float *yf, int64_t n) {
    const cg_qtype_traits *tr = cg_qtype_get(t);
    const cg_qtype_traits *vt = cg_qtype_get(tr->vec_dot_type);
    void *w = calloc(1, row_bytes(t, n)), *y = calloc(1, row_bytes(tr->vec_dot_type, n));
    tr->from_f32(wf, w, n);
    vt->from_f32_act(yf, y, n);
    float ref, got;
    tr->vec_dot(n, &ref, w, y);
    cg_qops_vec_dot(ops, t)(n, &got, w, y);
    const double terms = abs_terms(t, w, tr->vec_dot_type, y, n);
    const double err = fabs((double)got - (double)ref);
    if (err > 1e-5 * terms + 1e-30)
        fail_msg("%s n=%lld: simd %.9g vs reference %.9g (|Δ| %.3g > 1e-5·Σ|terms| = %.3g)", tr->name, (long long)n,
                 got, ref, err, 1e-5 * terms);
    free(w);
    free(y);
    return terms > 0 ? err / terms : 0.0;
}

static void test_vec_dot_matches_reference(void **state) {
    (void)state;
    const cg_qops *ops = simd_or_skip();
    if (!ops) { skip(); return; }
    // Multiples of 256 (K-quants) including non-powers of two; legacy and plain types also get
    // shorter rows of 32-element blocks, odd block counts included.
    static const int64_t LENS_K[] = {256, 768, 2816, 4096};
    static const int64_t LENS_32[] = {32, 96, 224, 800, 2816, 4096};
    static const int64_t LENS_PLAIN[] = {1, 7, 33, 100, 2816, 4096};
    rng r = {7};
    float *wf = malloc(4096 * sizeof *wf), *yf = malloc(4096 * sizeof *yf);
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        const uint32_t t = WEIGHT_TYPES[k];
        const cg_qtype_traits *tr = cg_qtype_get(t);
        const int64_t *lens = tr->blck_size == 256 ? LENS_K : tr->blck_size == 32 ? LENS_32 : LENS_PLAIN;
        const size_t n_lens = tr->blck_size == 256 ? 4 : 6;
        double worst = 0.0;
        int n_cases = 0;
        for (size_t l = 0; l < n_lens; l++)
            for (int kind = 0; kind < 6; kind++) {
                fill_row(&r, wf, lens[l], kind);
                fill_row(&r, yf, lens[l], (kind + 2) % 6);
                const double rel = check_dot(ops, t, wf, yf, lens[l]);
                if (rel > worst) worst = rel;
                n_cases++;
            }
        print_message("%-5s %-4s %2d rows: max |simd-ref|/Σ|terms| = %.2e (bound 1e-5)\n", ops->name, tr->name, n_cases,
                      worst);
    }
    free(wf);
    free(yf);
}

// ggml's AVX2 vec_dot values for the reference weights (w_<type>.bin · input_y in the partner type).
static void test_vec_dot_matches_ggml(void **state) {
    (void)state;
    const cg_qops *ops = simd_or_skip();
    if (!ops) { skip(); return; }
    size_t n, ny;
    unsigned char *js = cg_test_read("quant/quant_ref.json", &n);
    float *yf = (float *)cg_test_read("quant/input_y.f32", &ny);
    if (!js || !yf) { free(js); free(yf); skip(); return; }
    json_error_t jerr;
    json_t *root = json_loadb((const char *)js, n, 0, &jerr);
    free(js);
    assert_non_null(root);
    json_t *types = json_object_get(root, "weight_types"), *e;
    size_t i_t;
    int n_checked = 0, n_exact = 0;
    json_array_foreach(types, i_t, e) {
        cg_qtype t;
        assert_true(cg_qtype_from_name(json_string_value(json_object_get(e, "type")), &t));
        const cg_qtype_traits *tr = cg_qtype_get(t), *vt = cg_qtype_get(tr->vec_dot_type);
        char rel[256];
        snprintf(rel, sizeof rel, "quant/%s", json_string_value(json_object_get(e, "quant_file")));
        size_t nw;
        unsigned char *w = cg_test_read(rel, &nw);
        assert_non_null(w);
        const size_t wrb = row_bytes(t, 256), yrb = row_bytes(tr->vec_dot_type, 256);
        unsigned char *yq = calloc(16, yrb);
        json_t *want = json_object_get(e, "vec_dot");
        for (int row = 0; row < 16; row++) {
            vt->from_f32_act(yf + 256 * row, yq + yrb * (size_t)row, 256);
            float got;
            cg_qops_vec_dot(ops, t)(256, &got, w + wrb * (size_t)row, yq + yrb * (size_t)row);
            const double ref = json_number_value(json_array_get(want, (size_t)row));
            const double terms = abs_terms(t, w + wrb * (size_t)row, tr->vec_dot_type, yq + yrb * (size_t)row, 256);
            if (fabs(got - ref) > 1e-5 * terms + 1e-30)
                fail_msg("%s row %d: simd %.9g vs ggml %.9g (Σ|terms| %.3g)", tr->name, row, got, ref, terms);
            // Formats whose kernel follows ggml's summation order must match its value to the bit
            // (the JSON holds 9 significant digits: a float round-trips).
            if (t == CG_QTYPE_Q5_0 && got != (float)ref)
                fail_msg("%s row %d: %.9g, ggml's order gives %.9g", tr->name, row, got, ref);
            n_exact += got == (float)ref;
            n_checked++;
        }
        print_message("%-5s %-4s bit-identical with ggml's vec_dot in %2d of 16 rows\n", ops->name, tr->name, n_exact);
        n_exact = 0;
        free(yq);
        free(w);
    }
    print_message("%s: %d row dot products agree with ggml's vec_dot values (1e-5·Σ|terms|)\n", ops->name, n_checked);
    json_decref(root);
    free(yf);
}

// ---- matvec / matmul ------------------------------------------------------------------------------

static void test_matvec_matmul(void **state) {
    (void)state;
    const cg_qops *ops = simd_or_skip();
    if (!ops) { skip(); return; }
    enum { N_IN = 768, N_OUT = 37, N_TOK = 7 };
    rng r = {99};
    float *wf = malloc(N_IN * N_OUT * sizeof *wf), *xf = malloc(N_IN * N_TOK * sizeof *xf);
    for (int i = 0; i < N_IN * N_OUT; i++) wf[i] = rng_f(&r);
    for (int i = 0; i < N_IN * N_TOK; i++) xf[i] = rng_f(&r);
    float Y[N_TOK * N_OUT], y[N_OUT];
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        const uint32_t t = WEIGHT_TYPES[k];
        const cg_qtype_traits *tr = cg_qtype_get(t), *vt = cg_qtype_get(tr->vec_dot_type);
        const size_t wrb = row_bytes(t, N_IN), xrb = row_bytes(tr->vec_dot_type, N_IN);
        unsigned char *w = calloc(N_OUT, wrb), *xq = calloc(N_TOK, xrb);
        for (int o = 0; o < N_OUT; o++) tr->from_f32(wf + o * N_IN, w + wrb * (size_t)o, N_IN);
        for (int tk = 0; tk < N_TOK; tk++) cg_qops_quant_act(ops, tr->vec_dot_type)(xf + tk * N_IN, xq + xrb * (size_t)tk, N_IN);
        memset(Y, 0, sizeof Y);
        cg_qops_matmul(ops, t, w, wrb, N_IN, xq, xrb, N_TOK, Y, N_OUT, 3, N_OUT);  // rows 3.. only
        for (int tk = 0; tk < N_TOK; tk++) {
            cg_qops_matvec(ops, t, w, wrb, N_IN, xq + xrb * (size_t)tk, y, 0, N_OUT);
            for (int o = 0; o < N_OUT; o++) {
                float ref;
                tr->vec_dot(N_IN, &ref, w + wrb * (size_t)o, xq + xrb * (size_t)tk);
                const double bound = 1e-5 * abs_terms(t, w + wrb * (size_t)o, vt == tr ? t : tr->vec_dot_type,
                                                      xq + xrb * (size_t)tk, N_IN) + 1e-30;
                if (fabs(y[o] - ref) > bound) fail_msg("%s matvec row %d tok %d: %g vs %g", tr->name, o, tk, y[o], ref);
                const float want = o < 3 ? 0.0f : ref;
                if (fabs(Y[tk * N_OUT + o] - want) > bound)
                    fail_msg("%s matmul row %d tok %d: %g vs %g", tr->name, o, tk, Y[tk * N_OUT + o], want);
            }
        }
        free(w);
        free(xq);
    }
    print_message("%s: matvec and matmul (rows 3..%d of %d, %d tokens) agree with the reference for %zu formats\n",
                  ops->name, N_OUT, N_OUT, N_TOK, N_WEIGHT_TYPES);
    free(wf);
    free(xf);
}

// matvec's row pairs (vec_dot_x2): every output bit-identical with that row's vec_dot of the same
// table, for even and odd ranges (a lone last row), rows outside the range untouched.
static void test_matvec_row_pairs(void **state) {
    (void)state;
    const cg_qops *ops = simd_or_skip();
    if (!ops) { skip(); return; }
    enum { N_IN = 512, N_OUT = 29 };
    static const int RANGES[][2] = {{0, N_OUT}, {1, N_OUT}, {5, 20}, {16, 17}, {3, 3}};
    rng r = {4242};
    float *wf = malloc(N_IN * N_OUT * sizeof *wf), *xf = malloc(N_IN * sizeof *xf);
    float y[N_OUT + 1];
    int n_types = 0;
    for (uint32_t t = 0; t < CG_QTYPE_COUNT; t++) {
        if (!ops->vec_dot_x2[t]) continue;
        n_types++;
        const cg_qtype_traits *tr = cg_qtype_get(t);
        const size_t wrb = row_bytes(t, N_IN), xrb = row_bytes(tr->vec_dot_type, N_IN);
        unsigned char *w = calloc(N_OUT, wrb), *xq = calloc(1, xrb);
        for (int kind = 0; kind < 6; kind++) {
            for (int o = 0; o < N_OUT; o++) {
                fill_row(&r, wf + o * N_IN, N_IN, (kind + o) % 6);
                tr->from_f32(wf + o * N_IN, w + wrb * (size_t)o, N_IN);
            }
            fill_row(&r, xf, N_IN, kind);
            cg_qops_quant_act(ops, tr->vec_dot_type)(xf, xq, N_IN);
            for (size_t g = 0; g < sizeof RANGES / sizeof RANGES[0]; g++) {
                const int r0 = RANGES[g][0], r1 = RANGES[g][1];
                for (int i = 0; i <= N_OUT; i++) y[i] = -777.0f;
                cg_qops_matvec(ops, t, w, wrb, N_IN, xq, y, r0, r1);
                for (int o = r0; o < r1; o++) {
                    float want;
                    cg_qops_vec_dot(ops, t)(N_IN, &want, w + wrb * (size_t)o, xq);
                    if (memcmp(&want, &y[o - r0], sizeof want))
                        fail_msg("%s rows [%d,%d) row %d: %.9g vs vec_dot %.9g", tr->name, r0, r1, o, y[o - r0], want);
                }
                assert_true(y[r1 - r0] == -777.0f);   // nothing written past the range
            }
        }
        free(w);
        free(xq);
    }
    print_message("%s: matvec row pairs bit-identical with vec_dot for %d format(s)\n", ops->name, n_types);
    free(wf);
    free(xf);
}

static void test_matmul_row_pairs(void **state) {
    (void)state;
    const cg_qops *ops = simd_or_skip();
    if (!ops) { skip(); return; }
    enum { N_IN = 256, N_OUT = 41, MAX_TOK = 9 };
    static const uint32_t TYPES[] = {CG_QTYPE_Q4_0, CG_QTYPE_Q8_0};
    static const int RANGES[][2] = {{0, N_OUT}, {5, 40}, {1, 18}, {16, 17}};
    rng r = {7};
    float *wf = malloc(N_IN * N_OUT * sizeof *wf), *xf = malloc(N_IN * MAX_TOK * sizeof *xf);
    float *Y = malloc(MAX_TOK * N_OUT * sizeof *Y);
    for (int i = 0; i < N_IN * N_OUT; i++) wf[i] = rng_f(&r);
    for (int i = 0; i < N_IN * MAX_TOK; i++) xf[i] = rng_f(&r);
    int n_checked = 0;
    for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0]; k++) {
        const uint32_t t = TYPES[k];
        const cg_qtype_traits *tr = cg_qtype_get(t);
        const size_t wrb = row_bytes(t, N_IN), xrb = row_bytes(tr->vec_dot_type, N_IN);
        unsigned char *w = calloc(N_OUT, wrb), *xq = calloc(MAX_TOK, xrb);
        for (int o = 0; o < N_OUT; o++) tr->from_f32(wf + o * N_IN, w + wrb * (size_t)o, N_IN);
        for (int tk = 0; tk < MAX_TOK; tk++) cg_qops_quant_act(ops, tr->vec_dot_type)(xf + tk * N_IN, xq + xrb * (size_t)tk, N_IN);
        for (int n_tok = 2; n_tok <= MAX_TOK; n_tok++)
            for (size_t g = 0; g < sizeof RANGES / sizeof RANGES[0]; g++) {
                const int r0 = RANGES[g][0], r1 = RANGES[g][1];
                for (int i = 0; i < MAX_TOK * N_OUT; i++) Y[i] = -12345.0f;
                cg_qops_matmul(ops, t, w, wrb, N_IN, xq, xrb, n_tok, Y, N_OUT, r0, r1);
                for (int tk = 0; tk < n_tok; tk++)
                    for (int o = 0; o < N_OUT; o++) {
                        const float got = Y[tk * N_OUT + o];
                        if (o < r0 || o >= r1) {
                            if (got != -12345.0f) fail_msg("%s rows %d..%d: row %d tok %d written", tr->name, r0, r1, o, tk);
                            continue;
                        }
                        float ref;
                        tr->vec_dot(N_IN, &ref, w + wrb * (size_t)o, xq + xrb * (size_t)tk);
                        const double bound = 1e-5 * abs_terms(t, w + wrb * (size_t)o, tr->vec_dot_type,
                                                              xq + xrb * (size_t)tk, N_IN) + 1e-30;
                        if (fabs(got - ref) > bound)
                            fail_msg("%s rows %d..%d tokens %d: row %d tok %d %g vs %g", tr->name, r0, r1, n_tok, o, tk, got, ref);
                        n_checked++;
                    }
            }
        free(w);
        free(xq);
    }
    print_message("%s: two-row matmul tiles agree with the reference (Q4_0, Q8_0; 4 row ranges; 2..%d tokens; %d outputs)\n",
                  ops->name, MAX_TOK, n_checked);
    free(wf), free(xf), free(Y);
}

static void test_isa_selection(void **state) {
    (void)state;
    assert_true(cg_cpu_isa_available(CG_ISA_GENERIC));
    assert_string_equal(cg_qops_for(CG_ISA_GENERIC)->name, "generic");
    // An ISA the machine or build lacks yields the reference table, never a faulting one.
#if defined(__x86_64__)
    assert_false(cg_cpu_isa_available(CG_ISA_NEON));
    assert_string_equal(cg_qops_for(CG_ISA_NEON)->name, "generic");
#endif
    // Every implemented weight format gets some kernel through every table.
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        assert_non_null(cg_qops_vec_dot(cg_qops_get(), WEIGHT_TYPES[k]));
        assert_non_null(cg_qops_quant_act(cg_qops_get(), cg_qtype_get(WEIGHT_TYPES[k])->vec_dot_type));
    }
    assert_null(cg_qops_vec_dot(cg_qops_get(), 4));   // removed ggml id
    const cg_cpu_features *f = cg_cpu_get();
    print_message("cpu: avx2 %d fma %d f16c %d neon %d; isa in use: %s\n", f->avx2, f->fma, f->f16c, f->neon,
                  cg_isa_name(cg_cpu_isa()));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_selection),
        cmocka_unit_test(test_act_quant_identical),
        cmocka_unit_test(test_act_quant_matches_ggml),
        cmocka_unit_test(test_vec_dot_matches_reference),
        cmocka_unit_test(test_vec_dot_matches_ggml),
        cmocka_unit_test(test_matvec_matmul),
        cmocka_unit_test(test_matvec_row_pairs),
        cmocka_unit_test(test_matmul_row_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
