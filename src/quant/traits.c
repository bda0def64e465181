// traits.c — the cg_qtype_traits table: one row per ggml type id. Geometry rows exist for every id
// a GGUF file may carry; reference kernels are attached where chingu implements the format.
#include <strings.h>

#include "base/num.h"
#include "quant/quant.h"

#define GEOM(id_, name_, blck_, size_, q_) \
    [id_] = {.name = name_, .blck_size = blck_, .type_size = size_, .is_quantized = q_, .vec_dot_type = id_}

static const cg_qtype_traits TRAITS[CG_QTYPE_COUNT] = {
    GEOM(CG_QTYPE_F32, "f32", 1, 4, false),
    GEOM(CG_QTYPE_F16, "f16", 1, 2, false),
    GEOM(CG_QTYPE_Q4_0, "q4_0", 32, 18, true),
    GEOM(CG_QTYPE_Q4_1, "q4_1", 32, 20, true),
    GEOM(CG_QTYPE_Q5_0, "q5_0", 32, 22, true),
    GEOM(CG_QTYPE_Q5_1, "q5_1", 32, 24, true),
    GEOM(CG_QTYPE_Q8_0, "q8_0", 32, 34, true),
    GEOM(CG_QTYPE_Q8_1, "q8_1", 32, 36, true),
    GEOM(CG_QTYPE_Q2_K, "q2_K", 256, 84, true),
    GEOM(CG_QTYPE_Q3_K, "q3_K", 256, 110, true),
    GEOM(CG_QTYPE_Q4_K, "q4_K", 256, 144, true),
    GEOM(CG_QTYPE_Q5_K, "q5_K", 256, 176, true),
    GEOM(CG_QTYPE_Q6_K, "q6_K", 256, 210, true),
    GEOM(CG_QTYPE_Q8_K, "q8_K", 256, 292, true),
    GEOM(CG_QTYPE_IQ2_XXS, "iq2_xxs", 256, 66, true),
    GEOM(CG_QTYPE_IQ2_XS, "iq2_xs", 256, 74, true),
    GEOM(CG_QTYPE_IQ3_XXS, "iq3_xxs", 256, 98, true),
    GEOM(CG_QTYPE_IQ1_S, "iq1_s", 256, 50, true),
    GEOM(CG_QTYPE_IQ4_NL, "iq4_nl", 32, 18, true),
    GEOM(CG_QTYPE_IQ3_S, "iq3_s", 256, 110, true),
    GEOM(CG_QTYPE_IQ2_S, "iq2_s", 256, 82, true),
    GEOM(CG_QTYPE_IQ4_XS, "iq4_xs", 256, 136, true),
    GEOM(CG_QTYPE_I8, "i8", 1, 1, false),
    GEOM(CG_QTYPE_I16, "i16", 1, 2, false),
    GEOM(CG_QTYPE_I32, "i32", 1, 4, false),
    GEOM(CG_QTYPE_I64, "i64", 1, 8, false),
    GEOM(CG_QTYPE_F64, "f64", 1, 8, false),
    GEOM(CG_QTYPE_IQ1_M, "iq1_m", 256, 56, true),
    GEOM(CG_QTYPE_BF16, "bf16", 1, 2, false),
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
