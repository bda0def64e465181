// quant.h — GGUF/ggml tensor element formats as one traits table.
//
// cg_qtype values are ggml's type ids, exactly as stored in GGUF tensor infos. Every id GGUF can
// carry has a row with its block geometry (so any file can be listed and bounds-checked); rows of
// formats chingu computes with also carry the scalar reference functions (NULL where a format is
// known but not implemented — callers must check and report CG_ERR_UNSUPPORTED).
// The table is immutable; everything here is thread-safe.
#ifndef CG_QUANT_H
#define CG_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum cg_qtype {
    CG_QTYPE_F32 = 0,
    CG_QTYPE_F16 = 1,
    CG_QTYPE_Q4_0 = 2,
    CG_QTYPE_Q4_1 = 3,
    CG_QTYPE_Q5_0 = 6,
    CG_QTYPE_Q5_1 = 7,
    CG_QTYPE_Q8_0 = 8,
    CG_QTYPE_Q8_1 = 9,
    CG_QTYPE_Q2_K = 10,
    CG_QTYPE_Q3_K = 11,
    CG_QTYPE_Q4_K = 12,
    CG_QTYPE_Q5_K = 13,
    CG_QTYPE_Q6_K = 14,
    CG_QTYPE_Q8_K = 15,
    CG_QTYPE_IQ2_XXS = 16,
    CG_QTYPE_IQ2_XS = 17,
    CG_QTYPE_IQ3_XXS = 18,
    CG_QTYPE_IQ1_S = 19,
    CG_QTYPE_IQ4_NL = 20,
    CG_QTYPE_IQ3_S = 21,
    CG_QTYPE_IQ2_S = 22,
    CG_QTYPE_IQ4_XS = 23,
    CG_QTYPE_I8 = 24,
    CG_QTYPE_I16 = 25,
    CG_QTYPE_I32 = 26,
    CG_QTYPE_I64 = 27,
    CG_QTYPE_F64 = 28,
    CG_QTYPE_IQ1_M = 29,
    CG_QTYPE_BF16 = 30,
    CG_QTYPE_TQ1_0 = 34,
    CG_QTYPE_TQ2_0 = 35,
    CG_QTYPE_MXFP4 = 39,
    CG_QTYPE_COUNT = 40,   // one past the largest id; ids without a row are unknown
} cg_qtype;

#define CG_QK_K 256

// Reference (scalar) kernels, declared per format in quant/ref.h. n is a multiple of the block
// size; pointers are not aliased and are aligned for the block struct (quant/blocks.h).
// to_f32:       src (n/blck blocks) -> dst (n floats)
// from_f32:     src (n floats) -> dst (n/blck blocks); the reference (weight) quantizer
// from_f32_act: src (n floats) -> dst; what the CPU backend applies to activations before a dot
//               product (set on the rows that are some format's vec_dot_type)
// vec_dot:      *s = dot(x (n elems of this type), y (n elems of vec_dot_type))
typedef void (*cg_to_f32_fn)(const void *src, float *dst, int64_t n);
typedef void (*cg_from_f32_fn)(const float *src, void *dst, int64_t n);
typedef void (*cg_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

typedef struct cg_qtype_traits {
    const char *name;         // ggml's name: "f32", "q4_0", "q4_K", …
    int64_t blck_size;        // elements per block (1 for plain types)
    size_t type_size;         // bytes per block
    bool is_quantized;
    bool is_activation_only;  // Q8_1, Q8_K: partners for dot products, not weight formats
    cg_qtype vec_dot_type;    // format the activations are converted to for vec_dot
    cg_to_f32_fn to_f32;      // NULL: not implemented
    cg_from_f32_fn from_f32;  // NULL: not implemented
    cg_from_f32_fn from_f32_act;  // NULL: not an activation format
    cg_vec_dot_fn vec_dot;    // NULL: not implemented
} cg_qtype_traits;

// The row for a type id, or NULL when `t` is not a known ggml type (including removed ids 4, 5,
// 31–33, 36–38). Borrowed static data.
const cg_qtype_traits *cg_qtype_get(uint32_t t);

// The type's name, or "unknown" for ids without a row.
const char *cg_qtype_name(uint32_t t);

// Looks a type up by its name, case-insensitive ("Q4_K", "q4_k", "bf16"). Returns false if unknown.
bool cg_qtype_from_name(const char *name, cg_qtype *out);

// Bytes of a row of n_elems elements: CG_ERR_FORMAT when n_elems is not a multiple of the block
// size, CG_ERR_LIMIT on overflow, CG_ERR_UNSUPPORTED for an unknown type.
cg_status cg_qtype_row_size(uint32_t t, uint64_t n_elems, uint64_t *out, cg_err *err);

// Row-level entry points. Each checks the type (CG_ERR_UNSUPPORTED for an unknown type or one
// without that kernel; the message names the type), n (CG_ERR_INVALID when negative or not a
// multiple of the block size) and NULL pointers (CG_ERR_INVALID). Buffers are borrowed for the
// call: src holds n elements of its format, dst has room for n elements of its format (row size
// from cg_qtype_row_size). Pure; thread-safe.

// Quantizes n floats into type t with the reference (weight) quantizer.
cg_status cg_quant_row(uint32_t t, const float *src, void *dst, int64_t n, cg_err *err);
// Converts an activation row of n floats into type t (a vec_dot_type: f32, f16, bf16, q8_0, q8_1,
// q8_K) the way the CPU backend does before a dot product.
cg_status cg_quant_row_act(uint32_t t, const float *src, void *dst, int64_t n, cg_err *err);
// Dequantizes n elements of type t into floats.
cg_status cg_dequant_row(uint32_t t, const void *src, float *dst, int64_t n, cg_err *err);
// *out = Σ x[i]·y[i] over n elements: x in type t, y already in t's vec_dot_type.
cg_status cg_vec_dot_row(uint32_t t, int64_t n, const void *x, const void *y, float *out, cg_err *err);

#endif
