// traits.c — the cg_qtype_traits table: one row per ggml type id. Geometry rows exist for every id
// a GGUF file may carry; reference kernels (quant/ref.h) are attached where chingu implements the
// format, and the row-level entry points below dispatch through the table after checking their
// arguments. The table is const; nothing here has state.
#include <strings.h>

#include "base/num.h"
#include "quant/quant.h"
#include "quant/ref.h"

#define GEOM(id_, name_, blck_, size_, q_) \
    [id_] = {.name = name_, .blck_size = blck_, .type_size = size_, .is_quantized = q_, .vec_dot_type = id_}

// A row with kernels: to_f32, from_f32 (NULL allowed), vec_dot partner and vec_dot (NULL allowed).
#define IMPL(id_, name_, blck_, size_, q_, to_, from_, vdt_, dot_)                                       \
    [id_] = {.name = name_, .blck_size = blck_, .type_size = size_, .is_quantized = q_, .vec_dot_type = vdt_, \
             .to_f32 = to_, .from_f32 = from_, .vec_dot = dot_}

// An activation format: also the activation quantizer; it has no dot product of its own.
#define ACT(id_, name_, blck_, size_, to_, from_, act_)                                                   \
    [id_] = {.name = name_, .blck_size = blck_, .type_size = size_, .is_quantized = true,                 \
             .is_activation_only = true, .vec_dot_type = id_, .to_f32 = to_, .from_f32 = from_, .from_f32_act = act_}

static const cg_qtype_traits TRAITS[CG_QTYPE_COUNT] = {
    [CG_QTYPE_F32] = {.name = "f32", .blck_size = 1, .type_size = 4, .vec_dot_type = CG_QTYPE_F32,
                      .to_f32 = cg_f32_copy_to_f32, .from_f32 = cg_f32_copy_from_f32,
                      .from_f32_act = cg_f32_copy_from_f32, .vec_dot = cg_f32_vec_dot},
    [CG_QTYPE_F16] = {.name = "f16", .blck_size = 1, .type_size = 2, .vec_dot_type = CG_QTYPE_F16,
                      .to_f32 = cg_f16_row_to_f32, .from_f32 = cg_f32_row_to_f16,
                      .from_f32_act = cg_f32_row_to_f16, .vec_dot = cg_f16_vec_dot},
    [CG_QTYPE_BF16] = {.name = "bf16", .blck_size = 1, .type_size = 2, .vec_dot_type = CG_QTYPE_BF16,
                       .to_f32 = cg_bf16_row_to_f32, .from_f32 = cg_f32_row_to_bf16,
                       .from_f32_act = cg_f32_row_to_bf16, .vec_dot = cg_bf16_vec_dot},
    IMPL(CG_QTYPE_Q4_0, "q4_0", 32, 18, true, cg_q4_0_to_f32, cg_q4_0_from_f32, CG_QTYPE_Q8_0, cg_q4_0_vec_dot),
    IMPL(CG_QTYPE_Q4_1, "q4_1", 32, 20, true, cg_q4_1_to_f32, cg_q4_1_from_f32, CG_QTYPE_Q8_1, cg_q4_1_vec_dot),
    IMPL(CG_QTYPE_Q5_0, "q5_0", 32, 22, true, cg_q5_0_to_f32, cg_q5_0_from_f32, CG_QTYPE_Q8_0, cg_q5_0_vec_dot),
    IMPL(CG_QTYPE_Q5_1, "q5_1", 32, 24, true, cg_q5_1_to_f32, cg_q5_1_from_f32, CG_QTYPE_Q8_1, cg_q5_1_vec_dot),
    // Q8_0 is both a weight format and the activation partner of Q4_0/Q5_0/Q8_0/IQ4_NL.
    [CG_QTYPE_Q8_0] = {.name = "q8_0", .blck_size = 32, .type_size = 34, .is_quantized = true,
                       .vec_dot_type = CG_QTYPE_Q8_0, .to_f32 = cg_q8_0_to_f32, .from_f32 = cg_q8_0_from_f32,
                       .from_f32_act = cg_q8_0_from_f32_act, .vec_dot = cg_q8_0_vec_dot},
    ACT(CG_QTYPE_Q8_1, "q8_1", 32, 36, cg_q8_1_to_f32, cg_q8_1_from_f32, cg_q8_1_from_f32_act),
    IMPL(CG_QTYPE_Q2_K, "q2_K", 256, 84, true, cg_q2_K_to_f32, cg_q2_K_from_f32, CG_QTYPE_Q8_K, cg_q2_K_vec_dot),
    IMPL(CG_QTYPE_Q3_K, "q3_K", 256, 110, true, cg_q3_K_to_f32, cg_q3_K_from_f32, CG_QTYPE_Q8_K, cg_q3_K_vec_dot),
    IMPL(CG_QTYPE_Q4_K, "q4_K", 256, 144, true, cg_q4_K_to_f32, cg_q4_K_from_f32, CG_QTYPE_Q8_K, cg_q4_K_vec_dot),
    IMPL(CG_QTYPE_Q5_K, "q5_K", 256, 176, true, cg_q5_K_to_f32, cg_q5_K_from_f32, CG_QTYPE_Q8_K, cg_q5_K_vec_dot),
    IMPL(CG_QTYPE_Q6_K, "q6_K", 256, 210, true, cg_q6_K_to_f32, cg_q6_K_from_f32, CG_QTYPE_Q8_K, cg_q6_K_vec_dot),
    ACT(CG_QTYPE_Q8_K, "q8_K", 256, 292, cg_q8_K_to_f32, cg_q8_K_from_f32, cg_q8_K_from_f32),
    GEOM(CG_QTYPE_IQ2_XXS, "iq2_xxs", 256, 66, true),
    GEOM(CG_QTYPE_IQ2_XS, "iq2_xs", 256, 74, true),
    GEOM(CG_QTYPE_IQ3_XXS, "iq3_xxs", 256, 98, true),
    GEOM(CG_QTYPE_IQ1_S, "iq1_s", 256, 50, true),
    // IQ4_NL / IQ4_XS: dequantization and dot products only (their quantizers are not built).
    IMPL(CG_QTYPE_IQ4_NL, "iq4_nl", 32, 18, true, cg_iq4_nl_to_f32, NULL, CG_QTYPE_Q8_0, cg_iq4_nl_vec_dot),
    GEOM(CG_QTYPE_IQ3_S, "iq3_s", 256, 110, true),
    GEOM(CG_QTYPE_IQ2_S, "iq2_s", 256, 82, true),
    IMPL(CG_QTYPE_IQ4_XS, "iq4_xs", 256, 136, true, cg_iq4_xs_to_f32, NULL, CG_QTYPE_Q8_K, cg_iq4_xs_vec_dot),
    GEOM(CG_QTYPE_I8, "i8", 1, 1, false),
    GEOM(CG_QTYPE_I16, "i16", 1, 2, false),
    GEOM(CG_QTYPE_I32, "i32", 1, 4, false),
    GEOM(CG_QTYPE_I64, "i64", 1, 8, false),
    GEOM(CG_QTYPE_F64, "f64", 1, 8, false),
    GEOM(CG_QTYPE_IQ1_M, "iq1_m", 256, 56, true),
    GEOM(CG_QTYPE_TQ1_0, "tq1_0", 256, 54, true),
    GEOM(CG_QTYPE_TQ2_0, "tq2_0", 256, 66, true),
    GEOM(CG_QTYPE_MXFP4, "mxfp4", 32, 17, true),
};

const cg_qtype_traits *cg_qtype_get(uint32_t t) {
    if (t >= CG_QTYPE_COUNT || !TRAITS[t].name) return NULL;
    return &TRAITS[t];
}

const char *cg_qtype_name(uint32_t t) {
    const cg_qtype_traits *tr = cg_qtype_get(t);
    return tr ? tr->name : "unknown";
}

bool cg_qtype_from_name(const char *name, cg_qtype *out) {
    for (uint32_t t = 0; t < CG_QTYPE_COUNT; t++)
        if (TRAITS[t].name && strcasecmp(TRAITS[t].name, name) == 0) {
            *out = (cg_qtype)t;
            return true;
        }
    return false;
}

cg_status cg_qtype_row_size(uint32_t t, uint64_t n_elems, uint64_t *out, cg_err *err) {
    const cg_qtype_traits *tr = cg_qtype_get(t);
    if (!tr) return cg_err_set(err, CG_ERR_UNSUPPORTED, "unknown tensor type %u", t);
    if (n_elems % (uint64_t)tr->blck_size)
        return cg_err_set(err, CG_ERR_FORMAT, "row of %llu elements is not a multiple of %s's block size %lld",
                          (unsigned long long)n_elems, tr->name, (long long)tr->blck_size);
    if (!cg_mul_u64(n_elems / (uint64_t)tr->blck_size, tr->type_size, out))
        return cg_err_set(err, CG_ERR_LIMIT, "row of %llu %s elements overflows", (unsigned long long)n_elems, tr->name);
    return CG_OK;
}

// Checks shared by the row entry points; on success *tr is the row of t.
static cg_status check_row(uint32_t t, int64_t n, const void *a, const void *b, const char *what,
                           const cg_qtype_traits **tr, cg_err *err) {
    *tr = cg_qtype_get(t);
    if (!*tr) return cg_err_set(err, CG_ERR_UNSUPPORTED, "%s: unknown tensor type %u", what, t);
    if (!a || !b) return cg_err_set(err, CG_ERR_INVALID, "%s: NULL buffer for %s row", what, (*tr)->name);
    if (n < 0 || n % (*tr)->blck_size)
        return cg_err_set(err, CG_ERR_INVALID, "%s: row of %lld elements is not a non-negative multiple of %s's block size %lld",
                          what, (long long)n, (*tr)->name, (long long)(*tr)->blck_size);
    return CG_OK;
}

cg_status cg_quant_row(uint32_t t, const float *src, void *dst, int64_t n, cg_err *err) {
    const cg_qtype_traits *tr;
    cg_status st = check_row(t, n, src, dst, "quantize", &tr, err);
    if (st) return st;
    if (!tr->from_f32) return cg_err_set(err, CG_ERR_UNSUPPORTED, "quantize: no quantizer for type %s", tr->name);
    tr->from_f32(src, dst, n);
    return CG_OK;
}

cg_status cg_quant_row_act(uint32_t t, const float *src, void *dst, int64_t n, cg_err *err) {
    const cg_qtype_traits *tr;
    cg_status st = check_row(t, n, src, dst, "quantize activations", &tr, err);
    if (st) return st;
    if (!tr->from_f32_act)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "quantize activations: %s is not an activation format", tr->name);
    tr->from_f32_act(src, dst, n);
    return CG_OK;
}

cg_status cg_dequant_row(uint32_t t, const void *src, float *dst, int64_t n, cg_err *err) {
    const cg_qtype_traits *tr;
    cg_status st = check_row(t, n, src, dst, "dequantize", &tr, err);
    if (st) return st;
    if (!tr->to_f32) return cg_err_set(err, CG_ERR_UNSUPPORTED, "dequantize: no dequantizer for type %s", tr->name);
    tr->to_f32(src, dst, n);
    return CG_OK;
}

cg_status cg_vec_dot_row(uint32_t t, int64_t n, const void *x, const void *y, float *out, cg_err *err) {
    const cg_qtype_traits *tr;
    cg_status st = check_row(t, n, x, y, "vec_dot", &tr, err);
    if (st) return st;
    if (!out) return cg_err_set(err, CG_ERR_INVALID, "vec_dot: NULL result pointer for %s row", tr->name);
    if (!tr->vec_dot) return cg_err_set(err, CG_ERR_UNSUPPORTED, "vec_dot: no dot product for type %s", tr->name);
    tr->vec_dot(n, out, x, y);
    return CG_OK;
}
