// test_quant.c — tensor formats: F16/BF16 conversion, dequantization, quantization, activation
// quantization and dot products of every implemented format.
//
// Reference data: $CHINGU_TESTDATA/quant (produced by ggml, see its README section 3); tests that
// need it skip when it is absent. The other tests use hand-computed expectations or, for the F16
// conversion, the compiler's own _Float16 conversion where available.
#include "testutil.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/blocks.h"
#include "quant/f16.h"
#include "quant/quant.h"
#include "quant/ref.h"

#define N_ROWS 16
#define N_PER_ROW 256
#define N_ALL (N_ROWS * N_PER_ROW)

// ---- helpers ----------------------------------------------------------------------------------------

typedef struct refdata {
    json_t *root;
    float *x, *y;  // input_x.f32, input_y.f32 (N_ALL each)
} refdata;

// Loads quant_ref.json and the two inputs; returns false (caller skips) when the data is absent.
static bool ref_open(refdata *r) {
    memset(r, 0, sizeof *r);
    size_t n = 0;
    unsigned char *js = cg_test_read("quant/quant_ref.json", &n);
    if (!js) return false;
    json_error_t jerr;
    r->root = json_loadb((const char *)js, n, 0, &jerr);
    free(js);
    if (!r->root) fail_msg("quant_ref.json: %s (line %d)", jerr.text, jerr.line);
    size_t nx = 0, ny = 0;
    r->x = (float *)cg_test_read("quant/input_x.f32", &nx);
    r->y = (float *)cg_test_read("quant/input_y.f32", &ny);
    assert_non_null(r->x);
    assert_non_null(r->y);
    assert_int_equal(nx, N_ALL * sizeof(float));
    assert_int_equal(ny, N_ALL * sizeof(float));
    assert_int_equal(json_integer_value(json_object_get(r->root, "n_rows")), N_ROWS);
    assert_int_equal(json_integer_value(json_object_get(r->root, "n_per_row")), N_PER_ROW);
    return true;
}

static void ref_close(refdata *r) {
    json_decref(r->root);
    free(r->x);
    free(r->y);
}

static unsigned char *read_quant_file(const char *name, size_t *n) {
    char rel[256];
    snprintf(rel, sizeof rel, "quant/%s", name);
    unsigned char *p = cg_test_read(rel, n);
    if (!p) fail_msg("missing reference file %s", rel);
    return p;
}

static cg_qtype type_of(const char *name) {
    cg_qtype t;
    if (!cg_qtype_from_name(name, &t)) fail_msg("unknown type name '%s' in quant_ref.json", name);
    return t;
}

static size_t row_bytes(cg_qtype t, int64_t n) {
    uint64_t sz = 0;
    cg_err err = {0};
    CG_ASSERT_OK(cg_qtype_row_size(t, (uint64_t)n, &sz, &err), &err);
    return (size_t)sz;
}

static double rmse(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

static void quant_rows(cg_qtype t, const float *src, unsigned char *dst, int n_rows, bool act) {
    cg_err err = {0};
    const size_t rb = row_bytes(t, N_PER_ROW);
    for (int r = 0; r < n_rows; r++) {
        cg_status st = act ? cg_quant_row_act(t, src + r * N_PER_ROW, dst + r * rb, N_PER_ROW, &err)
                           : cg_quant_row(t, src + r * N_PER_ROW, dst + r * rb, N_PER_ROW, &err);
        CG_ASSERT_OK(st, &err);
    }
}

static void dequant_rows(cg_qtype t, const unsigned char *src, float *dst, int n_rows) {
    cg_err err = {0};
    const size_t rb = row_bytes(t, N_PER_ROW);
    for (int r = 0; r < n_rows; r++) CG_ASSERT_OK(cg_dequant_row(t, src + r * rb, dst + r * N_PER_ROW, N_PER_ROW, &err), &err);
}

// ---- traits table -------------------------------------------------------------------------------------

static void test_traits_table_consistent(void **state) {
    (void)state;
    static const struct { cg_qtype t; size_t size; int64_t blck; } STRUCTS[] = {
        {CG_QTYPE_Q4_0, sizeof(cg_block_q4_0), CG_QK4_0}, {CG_QTYPE_Q4_1, sizeof(cg_block_q4_1), CG_QK4_1},
        {CG_QTYPE_Q5_0, sizeof(cg_block_q5_0), CG_QK5_0}, {CG_QTYPE_Q5_1, sizeof(cg_block_q5_1), CG_QK5_1},
        {CG_QTYPE_Q8_0, sizeof(cg_block_q8_0), CG_QK8_0}, {CG_QTYPE_Q8_1, sizeof(cg_block_q8_1), CG_QK8_1},
        {CG_QTYPE_Q2_K, sizeof(cg_block_q2_K), CG_QK_K}, {CG_QTYPE_Q3_K, sizeof(cg_block_q3_K), CG_QK_K},
        {CG_QTYPE_Q4_K, sizeof(cg_block_q4_K), CG_QK_K}, {CG_QTYPE_Q5_K, sizeof(cg_block_q5_K), CG_QK_K},
        {CG_QTYPE_Q6_K, sizeof(cg_block_q6_K), CG_QK_K}, {CG_QTYPE_Q8_K, sizeof(cg_block_q8_K), CG_QK_K},
        {CG_QTYPE_IQ4_NL, sizeof(cg_block_iq4_nl), CG_QK4_NL}, {CG_QTYPE_IQ4_XS, sizeof(cg_block_iq4_xs), CG_QK_K},
        {CG_QTYPE_F32, sizeof(float), 1}, {CG_QTYPE_F16, sizeof(cg_f16), 1}, {CG_QTYPE_BF16, sizeof(cg_bf16), 1},
    };
    assert_int_equal(CG_QK_K_, CG_QK_K);
    for (size_t k = 0; k < sizeof STRUCTS / sizeof STRUCTS[0]; k++) {
        const cg_qtype_traits *tr = cg_qtype_get(STRUCTS[k].t);
        assert_non_null(tr);
        if (tr->type_size != STRUCTS[k].size || tr->blck_size != STRUCTS[k].blck)
            fail_msg("%s: table says %zu bytes / %lld elts, struct has %zu / %lld", tr->name, tr->type_size,
                     (long long)tr->blck_size, STRUCTS[k].size, (long long)STRUCTS[k].blck);
        assert_non_null(tr->to_f32);  // every format with a struct dequantizes
    }
    int n_rows = 0, n_dot = 0;
    for (uint32_t t = 0; t < CG_QTYPE_COUNT + 8; t++) {
        const cg_qtype_traits *tr = cg_qtype_get(t);
        if (!tr) continue;
        n_rows++;
        assert_true(t < CG_QTYPE_COUNT);
        assert_true(tr->blck_size >= 1 && tr->type_size >= 1);
        const cg_qtype_traits *vt = cg_qtype_get(tr->vec_dot_type);
        if (!vt) fail_msg("%s: vec_dot_type %u has no row", tr->name, (unsigned)tr->vec_dot_type);
        if (tr->vec_dot) {
            n_dot++;
            // The partner must be an activation format with the same block length and a quantizer.
            if (!vt->from_f32_act || vt->blck_size != tr->blck_size)
                fail_msg("%s: vec_dot partner %s unusable", tr->name, vt->name);
            assert_non_null(tr->to_f32);
        }
        if (tr->is_activation_only) assert_non_null(tr->from_f32_act);
        cg_qtype back;
        assert_true(cg_qtype_from_name(tr->name, &back));
        assert_int_equal(back, t);
    }
    printf("traits: %d rows, %d with a dot product\n", n_rows, n_dot);
    assert_int_equal(n_dot, 15);  // f32 f16 bf16, q4_0 q4_1 q5_0 q5_1 q8_0, 5 K types, iq4_nl, iq4_xs
}

// ---- F16 / BF16 ---------------------------------------------------------------------------------------

static void test_f16_exhaustive(void **state) {
    (void)state;
    int n_checked_mid = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = cg_f16_to_f32((cg_f16)h);
        const bool is_nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF);
        if (is_nan) {
            assert_true(isnan(f));
            assert_int_equal(cg_f32_to_f16(f), (h & 0x8000) | 0x7E00);
            continue;
        }
        if (cg_f32_to_f16(f) != h) fail_msg("f16 0x%04x -> %a -> 0x%04x", h, (double)f, cg_f32_to_f16(f));
#ifdef __FLT16_MAX__
        const _Float16 c = (_Float16)f;  // independent: the compiler's conversion
        uint16_t cb;
        memcpy(&cb, &c, 2);
        assert_int_equal(cb, h);
        if ((float)c != f && !(isnan(f))) fail_msg("f16 0x%04x: compiler %a, ours %a", h, (double)(float)c, (double)f);
#endif
        // Ties between h and its successor go to the even one; one float ulp either side does not tie.
        const uint32_t mag = h & 0x7FFF;
        if (mag < 0x7BFF) {
            const float next = cg_f16_to_f32((cg_f16)(h + 1));
            const float mid = (float)(((double)f + (double)next) / 2);  // exact in float
            const cg_f16 even = (h & 1) ? (cg_f16)(h + 1) : (cg_f16)h;
            assert_int_equal(cg_f32_to_f16(mid), even);
            assert_int_equal(cg_f32_to_f16(nextafterf(mid, f)), h);
            assert_int_equal(cg_f32_to_f16(nextafterf(mid, next)), h + 1);
            n_checked_mid++;
        }
    }
    // Overflow: 65504 is the largest half; 65520 (the midpoint to 65536) ties to even, i.e. Inf.
    assert_int_equal(cg_f32_to_f16(65504.0f), 0x7BFF);
    assert_int_equal(cg_f32_to_f16(nextafterf(65520.0f, 0)), 0x7BFF);
    assert_int_equal(cg_f32_to_f16(65520.0f), 0x7C00);
    assert_int_equal(cg_f32_to_f16(-1e9f), 0xFC00);
    assert_int_equal(cg_f32_to_f16(INFINITY), 0x7C00);
    assert_int_equal(cg_f32_to_f16(-INFINITY), 0xFC00);
    // Subnormals: 2^-24 is the smallest; 2^-25 ties to 0; a hair above it rounds up; 1.5·2^-24 ties to 2.
    assert_int_equal(cg_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(cg_f32_to_f16(0x1p-25f), 0x0000);
    assert_int_equal(cg_f32_to_f16(-0x1p-25f), 0x8000);
    assert_int_equal(cg_f32_to_f16(nextafterf(0x1p-25f, 1)), 0x0001);
    assert_int_equal(cg_f32_to_f16(0x1.8p-24f), 0x0002);
    assert_int_equal(cg_f32_to_f16(0x1p-14f), 0x0400);                     // smallest normal
    assert_int_equal(cg_f32_to_f16(nextafterf(0x1p-14f, 0)), 0x0400);      // rounds up into the normals
    assert_int_equal(cg_f32_to_f16(1e-30f), 0x0000);
    assert_int_equal(cg_f32_to_f16(FLT_TRUE_MIN), 0x0000);
    assert_int_equal(cg_f32_to_f16(-0.0f), 0x8000);
    // NaN: any payload becomes the quiet NaN 0x7E00 with the sign kept.
    assert_int_equal(cg_f32_to_f16(cg_f32_from_bits(0x7F800001u)), 0x7E00);
    assert_int_equal(cg_f32_to_f16(cg_f32_from_bits(0xFFC12345u)), 0xFE00);
    assert_int_equal(cg_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);              // tie, even stays
    assert_int_equal(cg_f32_to_f16(1.0f + 0x1.8p-10f), 0x3C02);            // tie, odd goes up
#ifdef __FLT16_MAX__
    // A sweep over float bit patterns against the compiler's conversion (NaNs excluded).
    int n_sweep = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 4093) {
        const float f = cg_f32_from_bits((uint32_t)u);
        if (isnan(f)) continue;
        const _Float16 c = (_Float16)f;
        uint16_t cb;
        memcpy(&cb, &c, 2);
        if (cb != cg_f32_to_f16(f)) fail_msg("f32 %a (0x%08x): compiler 0x%04x, ours 0x%04x", (double)f, (unsigned)u, cb, cg_f32_to_f16(f));
        n_sweep++;
    }
    printf("f16: 65536 halves round-trip, %d tie pairs, %d float patterns agree with _Float16\n", n_checked_mid, n_sweep);
#else
    printf("f16: 65536 halves round-trip, %d tie pairs (no _Float16 cross-check on this compiler)\n", n_checked_mid);
#endif
}

static void test_bf16_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = cg_bf16_to_f32((cg_bf16)h);
        assert_int_equal(cg_f32_bits(f), h << 16);
        const bool is_nan = (h & 0x7F80) == 0x7F80 && (h & 0x7F);
        assert_int_equal(cg_f32_to_bf16(f), is_nan ? (h | 0x40) : h);
        if ((h & 0x7FFF) < 0x7F7F) {  // ties to even against the successor
            const uint32_t mid = (h << 16) | 0x8000u;
            const cg_bf16 even = (h & 1) ? (cg_bf16)(h + 1) : (cg_bf16)h;
            assert_int_equal(cg_f32_to_bf16(cg_f32_from_bits(mid)), even);
            assert_int_equal(cg_f32_to_bf16(cg_f32_from_bits(mid - 1)), h);
            assert_int_equal(cg_f32_to_bf16(cg_f32_from_bits(mid + 1)), h + 1);
        }
    }
    assert_int_equal(cg_f32_to_bf16(cg_f32_from_bits(0x3F808000u)), 0x3F80);  // tie, even stays
    assert_int_equal(cg_f32_to_bf16(cg_f32_from_bits(0x3F818000u)), 0x3F82);  // tie, odd goes up
    assert_int_equal(cg_f32_to_bf16(FLT_MAX), 0x7F80);                         // overflow to Inf
    assert_int_equal(cg_f32_to_bf16(-FLT_MAX), 0xFF80);
    assert_int_equal(cg_f32_to_bf16(cg_f32_from_bits(0x00018000u)), 0x0002);  // subnormals kept, not flushed
    assert_int_equal(cg_f32_to_bf16(cg_f32_from_bits(0x7F800001u)), 0x7FC0);  // NaN made quiet
    assert_int_equal(cg_f32_to_bf16(cg_f32_from_bits(0xFF812345u)), 0xFFC1);
    assert_int_equal(cg_f32_to_bf16(INFINITY), 0x7F80);
}

// ---- reference data: dequantization, quantization, activations, dot products --------------------------

static void test_dequant_bit_exact(void **state) {
    (void)state;
    refdata r;
    if (!ref_open(&r)) { skip(); return; }
    json_t *types = json_object_get(r.root, "weight_types");
    assert_true(json_array_size(types) >= 13);
    float *got = malloc(N_ALL * sizeof(float));
    size_t i_t;
    json_t *e;
    json_array_foreach(types, i_t, e) {
        const char *name = json_string_value(json_object_get(e, "type"));
        const cg_qtype t = type_of(name);
        const cg_qtype_traits *tr = cg_qtype_get(t);
        // The table agrees with ggml's geometry and pairing.
        assert_int_equal(json_integer_value(json_object_get(e, "ggml_type_id")), t);
        assert_int_equal(json_integer_value(json_object_get(e, "block_size")), tr->blck_size);
        assert_int_equal(json_integer_value(json_object_get(e, "type_size")), tr->type_size);
        assert_int_equal(type_of(json_string_value(json_object_get(e, "vec_dot_type"))), tr->vec_dot_type);
        size_t nq = 0, nd = 0;
        unsigned char *q = read_quant_file(json_string_value(json_object_get(e, "quant_file")), &nq);
        float *want = (float *)read_quant_file(json_string_value(json_object_get(e, "dequant_file")), &nd);
        assert_int_equal(nq, row_bytes(t, N_PER_ROW) * N_ROWS);
        assert_int_equal(nd, N_ALL * sizeof(float));
        dequant_rows(t, q, got, N_ROWS);
        int n_diff = 0, first = -1;
        for (int k = 0; k < N_ALL; k++)
            if (cg_f32_bits(got[k]) != cg_f32_bits(want[k])) {
                if (first < 0) first = k;
                n_diff++;
            }
        printf("dequant %-5s: %d/%d floats differ\n", name, n_diff, N_ALL);
        if (n_diff)
            fail_msg("dequant %s: %d floats differ, first at %d: got %a want %a", name, n_diff, first,
                     (double)got[first], (double)want[first]);
        free(q);
        free(want);
    }
    free(got);
    ref_close(&r);
}

static void test_quantize_matches_reference(void **state) {
    (void)state;
    refdata r;
    if (!ref_open(&r)) { skip(); return; }
    json_t *types = json_object_get(r.root, "weight_types");
    float *deq = malloc(N_ALL * sizeof(float));
    size_t i_t;
    json_t *e;
    json_array_foreach(types, i_t, e) {
        const char *name = json_string_value(json_object_get(e, "type"));
        const cg_qtype t = type_of(name);
        size_t nq = 0;
        unsigned char *want = read_quant_file(json_string_value(json_object_get(e, "quant_file")), &nq);
        unsigned char *got = calloc(1, nq);
        quant_rows(t, r.x, got, N_ROWS, false);
        const size_t rb = nq / N_ROWS;
        int rows_same = 0;
        size_t bytes_diff = 0;
        for (int row = 0; row < N_ROWS; row++) {
            rows_same += memcmp(got + row * rb, want + row * rb, rb) == 0;
            for (size_t k = 0; k < rb; k++) bytes_diff += got[row * rb + k] != want[row * rb + k];
        }
        dequant_rows(t, got, deq, N_ROWS);
        const double ours = rmse(deq, r.x, N_ALL);
        const double ref = json_number_value(json_object_get(e, "rmse"));
        printf("quantize %-5s: %2d/%d rows byte-identical (%zu bytes differ), rmse ours %.9g ref %.9g\n", name,
               rows_same, N_ROWS, bytes_diff, ours, ref);
        // Every format here has a deterministic reference quantizer that we reproduce exactly.
        if (rows_same != N_ROWS) fail_msg("quantize %s: %zu bytes differ from ggml", name, bytes_diff);
        assert_true(ours <= ref * (1 + 1e-6) + 1e-12);
        free(want);
        free(got);
    }
    free(deq);
    ref_close(&r);
}

static void test_activation_quant_matches_reference(void **state) {
    (void)state;
    refdata r;
    if (!ref_open(&r)) { skip(); return; }
    json_t *types = json_object_get(r.root, "activation_types");
    assert_int_equal(json_array_size(types), 5);
    size_t i_t;
    json_t *e;
    json_array_foreach(types, i_t, e) {
        const char *name = json_string_value(json_object_get(e, "type"));
        const cg_qtype t = type_of(name);
        size_t n = 0;
        unsigned char *want = read_quant_file(json_string_value(json_object_get(e, "file")), &n);
        assert_int_equal(n, row_bytes(t, N_PER_ROW) * N_ROWS);
        unsigned char *got = calloc(1, n);
        quant_rows(t, r.x, got, N_ROWS, true);
        size_t diff = 0;
        for (size_t k = 0; k < n; k++) diff += got[k] != want[k];
        printf("activation %-5s: %zu/%zu bytes differ\n", name, diff, n);
        if (diff) fail_msg("activation quantization %s: %zu bytes differ", name, diff);
        free(want);
        free(got);
    }
    ref_close(&r);
}

static void test_vec_dot_matches_reference(void **state) {
    (void)state;
    refdata r;
    if (!ref_open(&r)) { skip(); return; }
    json_t *types = json_object_get(r.root, "weight_types");
    float *wd = malloc(N_PER_ROW * sizeof(float)), *yd = malloc(N_PER_ROW * sizeof(float));
    unsigned char *yq = malloc(N_PER_ROW * 4);
    size_t i_t;
    json_t *e;
    json_array_foreach(types, i_t, e) {
        const char *name = json_string_value(json_object_get(e, "type"));
        const cg_qtype t = type_of(name);
        const cg_qtype vt = cg_qtype_get(t)->vec_dot_type;
        size_t nq = 0;
        unsigned char *w = read_quant_file(json_string_value(json_object_get(e, "quant_file")), &nq);
        const size_t rb = nq / N_ROWS;
        json_t *ggml = json_object_get(e, "vec_dot"), *exact = json_object_get(e, "dot_dequant_w_f32_y_double");
        double max_rel_ggml = 0, max_rel_exact = 0;
        for (int row = 0; row < N_ROWS; row++) {
            cg_err err = {0};
            CG_ASSERT_OK(cg_quant_row_act(vt, r.y + row * N_PER_ROW, yq, N_PER_ROW, &err), &err);
            float got = NAN;
            CG_ASSERT_OK(cg_vec_dot_row(t, N_PER_ROW, w + row * rb, yq, &got, &err), &err);
            // What the integer kernel computes, in double: dequant(w) · dequant(quantized y).
            CG_ASSERT_OK(cg_dequant_row(t, w + row * rb, wd, N_PER_ROW, &err), &err);
            CG_ASSERT_OK(cg_dequant_row(vt, yq, yd, N_PER_ROW, &err), &err);
            double dot_q = 0, mag = 0, act_err = 0;
            for (int k = 0; k < N_PER_ROW; k++) {
                dot_q += (double)wd[k] * yd[k];
                mag += fabs((double)wd[k] * yd[k]);
                act_err += fabs((double)wd[k]) * fabs((double)yd[k] - r.y[row * N_PER_ROW + k]);
            }
            const double tol = 1e-4 * mag + 1e-6;
            // Q8_1 carries s = f16(d·Σq), which the Q4_1/Q5_1 kernels use for the min term: allow
            // for that rounding, |m|·|s − d·Σq| per block, in the dequantized comparison.
            double s_round = 0;
            if (vt == CG_QTYPE_Q8_1) {
                const cg_block_q8_1 *yb = (const cg_block_q8_1 *)yq;
                for (int b = 0; b < N_PER_ROW / 32; b++) {
                    cg_f16 m_bits;  // the min is the second f16 of both Q4_1 and Q5_1 blocks
                    memcpy(&m_bits, w + row * rb + (size_t)b * cg_qtype_get(t)->type_size + 2, 2);
                    int qsum = 0;
                    for (int k = 0; k < 32; k++) qsum += yb[b].qs[k];
                    s_round += fabs(cg_f16_to_f32(m_bits)) *
                               fabs(cg_f16_to_f32(yb[b].s) - (double)cg_f16_to_f32(yb[b].d) * qsum);
                }
            }
            const double want_ggml = json_number_value(json_array_get(ggml, (size_t)row));
            const double want_exact = json_number_value(json_array_get(exact, (size_t)row));
            if (fabs(got - dot_q) > tol + s_round) fail_msg("%s row %d: vec_dot %.9g, dequantized dot %.9g", name, row, got, dot_q);
            if (fabs(got - want_ggml) > tol) fail_msg("%s row %d: vec_dot %.9g, ggml %.9g (tol %.3g)", name, row, got, want_ggml, tol);
            // Against the unquantized activations the only extra error is y's quantization.
            if (fabs(got - want_exact) > act_err + tol)
                fail_msg("%s row %d: vec_dot %.9g, exact %.9g, bound %.3g", name, row, got, want_exact, act_err + tol);
            if (mag > 0) {
                max_rel_ggml = fmax(max_rel_ggml, fabs(got - want_ggml) / mag);
                max_rel_exact = fmax(max_rel_exact, fabs(got - want_exact) / mag);
            }
        }
        printf("vec_dot %-5s (y as %-4s): max |Δ|/Σ|w·y| vs ggml %.2e, vs exact f32·double %.2e\n", name,
               cg_qtype_name(vt), max_rel_ggml, max_rel_exact);
        free(w);
    }
    free(wd);
    free(yd);
    free(yq);
    ref_close(&r);
}

// ---- constructed rows -----------------------------------------------------------------------------------

// Small deterministic generator (independent of the reference LCG).
static float rnd(uint32_t *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 65536.0f * 2.0f - 1.0f;
}

static void test_quantizers_on_constructed_rows(void **state) {
    (void)state;
    enum { N = 512 };
    static const cg_qtype TYPES[] = {CG_QTYPE_Q4_0, CG_QTYPE_Q4_1, CG_QTYPE_Q5_0, CG_QTYPE_Q5_1, CG_QTYPE_Q8_0,
                                     CG_QTYPE_Q2_K, CG_QTYPE_Q3_K, CG_QTYPE_Q4_K, CG_QTYPE_Q5_K, CG_QTYPE_Q6_K,
                                     CG_QTYPE_Q8_K, CG_QTYPE_F16, CG_QTYPE_BF16};
    // Bound on rmse / rms(x) for an ordinary random row (generous; the reference data sits well below).
    static const double REL[] = {0.12, 0.12, 0.06, 0.06, 0.01, 0.45, 0.25, 0.1, 0.05, 0.03, 0.01, 0.001, 0.005};
    const char *case_names[] = {"zero", "outlier", "negative", "tiny", "ramp", "large", "random"};
    float x[N], out[N];
    unsigned char *buf = malloc(N * 4);
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
        const cg_qtype t = TYPES[ti];
        double worst[7] = {0};
        for (int c = 0; c < 7; c++) {
            uint32_t s = 1234567u + (uint32_t)c;
            for (int k = 0; k < N; k++) {
                const float v = rnd(&s);
                switch (c) {
                case 0: x[k] = 0.0f; break;
                case 1: x[k] = k == 77 ? 1000.0f : v; break;
                case 2: x[k] = -fabsf(v) - 0.01f; break;
                case 3: x[k] = v * 1e-3f; break;
                case 4: x[k] = (float)(k % 256) / 16.0f - 8.0f; break;
                case 5: x[k] = v * 3e4f; break;
                default: x[k] = v; break;
                }
            }
            cg_err err = {0};
            CG_ASSERT_OK(cg_quant_row(t, x, buf, N, &err), &err);
            CG_ASSERT_OK(cg_dequant_row(t, buf, out, N, &err), &err);
            double ss = 0, amax = 0, ee = 0, emax = 0;
            for (int k = 0; k < N; k++) {
                if (!isfinite(out[k])) fail_msg("%s/%s: element %d dequantizes to %g", cg_qtype_name(t), case_names[c], k, out[k]);
                ss += (double)x[k] * x[k];
                amax = fmax(amax, fabs(x[k]));
                ee += ((double)x[k] - out[k]) * ((double)x[k] - out[k]);
                emax = fmax(emax, fabs((double)x[k] - out[k]));
            }
            const double rms = sqrt(ss / N), e_rms = sqrt(ee / N);
            if (c == 0) {
                if (e_rms != 0) fail_msg("%s: all-zero row does not come back as zeros", cg_qtype_name(t));
                continue;
            }
            // No element is off by more than the row's largest magnitude (the trivial bound: the
            // sign and scale are right); for the outlier row the outlier itself is kept closely.
            if (emax > amax * 1.0001) fail_msg("%s/%s: max error %g > max |x| %g", cg_qtype_name(t), case_names[c], emax, amax);
            if (c == 1 && fabs(out[77] - 1000.0) > 1000.0 * 0.1)
                fail_msg("%s/outlier: 1000 came back as %g", cg_qtype_name(t), out[77]);
            if (c != 1) {  // the outlier row's small values may legitimately vanish
                const double rel = e_rms / rms;
                worst[c] = rel;
                if (rel > REL[ti]) fail_msg("%s/%s: rmse/rms %.4f above %.4f", cg_qtype_name(t), case_names[c], rel, REL[ti]);
            }
        }
        printf("constructed rows %-5s: rmse/rms negative %.4f tiny %.4f ramp %.4f large %.4f random %.4f\n",
               cg_qtype_name(t), worst[2], worst[3], worst[4], worst[5], worst[6]);
    }
    // NaN and Inf inputs must not trap or hit undefined behaviour (the values are unspecified).
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
        uint32_t s = 99;
        for (int k = 0; k < N; k++) x[k] = rnd(&s);
        x[3] = NAN;
        x[300] = INFINITY;
        x[301] = -INFINITY;
        cg_err err = {0};
        CG_ASSERT_OK(cg_quant_row(TYPES[ti], x, buf, N, &err), &err);
        CG_ASSERT_OK(cg_dequant_row(TYPES[ti], buf, out, N, &err), &err);
    }
    free(buf);
}

// ---- hand-computed cases ----------------------------------------------------------------------------------

static void test_hand_computed_blocks(void **state) {
    (void)state;
    cg_err err = {0};
    // Q4_0: d = 0.5 (0x3800); byte 0x9F holds q[0] = 15 (-> 3.5) and q[16] = 9 (-> 0.5).
    cg_block_q4_0 b4 = {.d = 0x3800};
    memset(b4.qs, 0x88, sizeof b4.qs);
    b4.qs[0] = 0x9F;
    float out[256];
    CG_ASSERT_OK(cg_dequant_row(CG_QTYPE_Q4_0, &b4, out, 32, &err), &err);
    assert_true(out[0] == 3.5f && out[16] == 0.5f && out[1] == 0.0f);

    // Q8_0 on a block with amax 127: the weight path rounds 2.5 away from zero, the activation path
    // to even; both store d = 1.
    float x[32] = {127.0f, 2.5f, -2.5f, 3.5f, 0.4f};
    cg_block_q8_0 w, a;
    CG_ASSERT_OK(cg_quant_row(CG_QTYPE_Q8_0, x, &w, 32, &err), &err);
    CG_ASSERT_OK(cg_quant_row_act(CG_QTYPE_Q8_0, x, &a, 32, &err), &err);
    assert_int_equal(w.d, 0x3C00);
    assert_int_equal(a.d, 0x3C00);
    assert_int_equal(w.qs[1], 3);
    assert_int_equal(w.qs[2], -3);
    assert_int_equal(a.qs[1], 2);
    assert_int_equal(a.qs[2], -2);
    assert_int_equal(a.qs[3], 4);
    assert_int_equal(a.qs[4], 0);

    // Q8_K: the largest magnitude is +2 at element 5, so iscale = -63.5 and d = -2/127 (negative).
    float xk[256] = {0};
    xk[5] = 2.0f;
    xk[6] = -1.0f;
    xk[20] = 0.5f;
    cg_block_q8_K bk;
    CG_ASSERT_OK(cg_quant_row_act(CG_QTYPE_Q8_K, xk, &bk, 256, &err), &err);
    assert_true(bk.d == 1.0f / (-127.0f / 2.0f));
    assert_int_equal(bk.qs[5], -127);
    assert_int_equal(bk.qs[6], 64);   // 63.5 ties to even
    assert_int_equal(bk.qs[20], -32); // -31.75
    assert_int_equal(bk.bsums[0], -127 + 64);
    assert_int_equal(bk.bsums[1], -32);

    // IQ4_NL: d = 2, indices 0 and 15 -> 2·(-127), 2·113; dot with a Q8_0 block of ones (d = 1).
    cg_block_iq4_nl bn = {.d = 0x4000};
    memset(bn.qs, 0x88, sizeof bn.qs);  // index 8 -> table value 1
    bn.qs[0] = 0xF0;
    CG_ASSERT_OK(cg_dequant_row(CG_QTYPE_IQ4_NL, &bn, out, 32, &err), &err);
    assert_true(out[0] == -254.0f && out[16] == 226.0f && out[1] == 2.0f);
    cg_block_q8_0 ones = {.d = 0x3C00};
    memset(ones.qs, 1, sizeof ones.qs);
    float dot = 0;
    CG_ASSERT_OK(cg_vec_dot_row(CG_QTYPE_IQ4_NL, 32, &bn, &ones, &dot, &err), &err);
    assert_true(dot == 2.0f * (-127 + 113 + 30 * 1));

    // IQ4_XS: d = 1, sub-block j scale = (lo | hi << 4) - 32. Sub-block 0: lo 1, hi 2 -> 33 - 32 = 1;
    // sub-block 1: lo 0, hi 0 -> -32; others 32 - 32 = 0 (lo 0, hi 2).
    cg_block_iq4_xs bx = {.d = 0x3C00};
    bx.scales_l[0] = 0x01;
    bx.scales_h = (uint16_t)(2 | 0 << 2 | 2 << 4 | 2 << 6 | 2 << 8 | 2 << 10 | 2 << 12 | 2 << 14);
    memset(bx.qs, 0xF0, sizeof bx.qs);  // low nibble index 0 (-127), high nibble 15 (113)
    CG_ASSERT_OK(cg_dequant_row(CG_QTYPE_IQ4_XS, &bx, out, 256, &err), &err);
    assert_true(out[0] == -127.0f && out[16] == 113.0f && out[32] == 32.0f * 127 && out[48] == -32.0f * 113 && out[64] == 0.0f);
    cg_block_q8_K yk;
    memset(&yk, 0, sizeof yk);
    yk.d = 0.5f;
    memset(yk.qs, 1, sizeof yk.qs);
    CG_ASSERT_OK(cg_vec_dot_row(CG_QTYPE_IQ4_XS, 256, &bx, &yk, &dot, &err), &err);
    // Sub-block 0: 16·(-127) + 16·113 = -224, times 1; sub-block 1: -224 times -32; then · d·d8 = 0.5.
    assert_true(dot == 0.5f * (float)(-224 + 224 * 32));
}

static void test_row_api_errors(void **state) {
    (void)state;
    cg_err err = {0};
    float x[64] = {0}, y[64];
    unsigned char buf[512];
    assert_int_equal(cg_quant_row(4, x, buf, 32, &err), CG_ERR_UNSUPPORTED);  // removed id
    assert_non_null(strstr(err.msg, "4"));
    assert_int_equal(cg_quant_row(200, x, buf, 32, &err), CG_ERR_UNSUPPORTED);
    assert_int_equal(cg_quant_row(CG_QTYPE_IQ2_XXS, x, buf, 256, &err), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "iq2_xxs"));
    assert_int_equal(cg_quant_row(CG_QTYPE_IQ4_NL, x, buf, 32, &err), CG_ERR_UNSUPPORTED);
    assert_int_equal(cg_dequant_row(CG_QTYPE_MXFP4, buf, y, 32, &err), CG_ERR_UNSUPPORTED);
    assert_int_equal(cg_quant_row(CG_QTYPE_Q4_0, x, buf, 33, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "33"));
    assert_non_null(strstr(err.msg, "q4_0"));
    assert_int_equal(cg_quant_row(CG_QTYPE_Q4_K, x, buf, 64, &err), CG_ERR_INVALID);
    assert_int_equal(cg_quant_row(CG_QTYPE_Q4_0, x, buf, -32, &err), CG_ERR_INVALID);
    assert_int_equal(cg_quant_row(CG_QTYPE_Q4_0, NULL, buf, 32, &err), CG_ERR_INVALID);
    assert_int_equal(cg_dequant_row(CG_QTYPE_Q4_0, buf, NULL, 32, &err), CG_ERR_INVALID);
    assert_int_equal(cg_quant_row_act(CG_QTYPE_Q4_0, x, buf, 32, &err), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "q4_0"));
    float s;
    assert_int_equal(cg_vec_dot_row(CG_QTYPE_Q8_1, 32, buf, buf, &s, &err), CG_ERR_UNSUPPORTED);
    assert_int_equal(cg_vec_dot_row(CG_QTYPE_Q8_0, 32, buf, buf, NULL, &err), CG_ERR_INVALID);
    assert_int_equal(cg_quant_row(CG_QTYPE_Q4_0, x, buf, 32, NULL), CG_OK);  // err may be NULL
    assert_int_equal(cg_quant_row(CG_QTYPE_Q4_0, x, buf, 0, &err), CG_OK);   // an empty row is fine
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traits_table_consistent),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_bf16_exhaustive),
        cmocka_unit_test(test_dequant_bit_exact),
        cmocka_unit_test(test_quantize_matches_reference),
        cmocka_unit_test(test_activation_quant_matches_reference),
        cmocka_unit_test(test_vec_dot_matches_reference),
        cmocka_unit_test(test_quantizers_on_constructed_rows),
        cmocka_unit_test(test_hand_computed_blocks),
        cmocka_unit_test(test_row_api_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
