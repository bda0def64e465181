// qops.h — quantized dot products, activation quantizers and matrix-vector kernels per ISA.
//
// A cg_qops table holds, per ggml type id, the fastest vec_dot this build has for the ISA (same
// signature and meaning as the traits' cg_vec_dot_fn: *s = x (n elems of the weight type) ·
// y (n elems of its vec_dot type)) and, per activation type (F32, F16, BF16, Q8_0, Q8_1, Q8_K), the
// activation quantizer (byte-identical with the traits' from_f32_act). Entries a table lacks fall
// back to the scalar reference, so cg_qops_vec_dot/cg_qops_quant_act return a kernel for every
// type the traits table implements, and NULL otherwise.
//
// Every SIMD kernel agrees with the reference: quantizers byte for byte (for finite input), dot
// products up to float summation order (integer block sums are exact; only the order in which the
// per-block float terms are added differs).
//
// Tables are static and immutable; all functions are pure and thread-safe. Pointers passed in are
// borrowed for the call.
#ifndef CG_KERN_QOPS_H
#define CG_KERN_QOPS_H

#include <stddef.h>
#include <stdint.h>

#include "kern/cpu.h"
#include "kern/repack.h"
#include "quant/quant.h"

// s[k] = x (n elems, weight type) · y_k for k < n_y (1..CG_QOPS_MAX_NY), where y_k = y + k·y_stride
// bytes: one weight row against several activation rows, unpacking the weight once.
#define CG_QOPS_MAX_NY 4
typedef void (*cg_vec_dot_n_fn)(int64_t n, float *s, const void *x, const void *y, size_t y_stride, int n_y);
// A 2 × n_y register tile: s[r·CG_QOPS_MAX_NY + k] = x_r · y_k for weight rows x_0, x_1 (each n elems)
// and k < n_y; each activation block is loaded once for both rows.
typedef void (*cg_vec_dot_2n_fn)(int64_t n, float *s, const void *x0, const void *x1, const void *y, size_t y_stride,
                                 int n_y);

// The matmul over the repacked Q4_0 layout (kern/repack.h): Y[k·ldy + r] = W row r · X_k for r in
// [r0, r1) (multiples of 8), k < n_tok; X_k = xq + k·xq_row (Q8_0) with its side data aux + k·n_in/32.
// packed: NULL, or the same activations chunk-packed (cg_q8_0_pack, kern/repack.h), which a kernel may
// read instead (same results). Bit-identical with cg_repack_q4_0x8_matmul_ref.
typedef void (*cg_q4_0x8_matmul_fn)(const void *W, int64_t n_in, const void *xq, size_t xq_row, const cg_q8_0_aux *aux,
                                    const void *packed, int64_t n_tok, float *Y, int64_t ldy, int64_t r0, int64_t r1);
// The matmul over the repacked Q4_K layout (kern/repack.h): same shapes, X_k = xq + k·xq_row in Q8_K
// (no side data: the bsums are in the blocks). Bit-identical with cg_repack_q4_Kx8_matmul_ref.
typedef void (*cg_q4_Kx8_matmul_fn)(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                    int64_t ldy, int64_t r0, int64_t r1);
// Two weight rows against one activation row: s[r] = x_r · y for x_0, x_1 (each n elems), each
// result bit-identical with the table's vec_dot of that row (same per-lane integer sums, same float
// accumulation order); only the work is interleaved, so matvec may pair rows freely.
typedef void (*cg_vec_dot_x2_fn)(int64_t n, float s[2], const void *x0, const void *x1, const void *y);

typedef struct cg_qops {
    const char *name;
    cg_vec_dot_fn vec_dot[CG_QTYPE_COUNT];        // NULL: use the reference
    cg_vec_dot_n_fn vec_dot_n[CG_QTYPE_COUNT];    // NULL: loop over vec_dot
    cg_vec_dot_2n_fn vec_dot_2n[CG_QTYPE_COUNT];  // NULL: vec_dot_n per row
    cg_vec_dot_x2_fn vec_dot_x2[CG_QTYPE_COUNT];  // NULL: matvec calls vec_dot per row
    cg_from_f32_fn quant_act[CG_QTYPE_COUNT];     // NULL: use the reference
    cg_q4_0x8_matmul_fn q4_0x8_matmul;            // NULL: the scalar reference (kern/repack.h)
    // The same signature over the Q8_0 x8 layout (aux only for its scales), bit-identical
    // with cg_repack_q8_0x8_matmul_ref. NULL: that reference.
    cg_q4_0x8_matmul_fn q8_0x8_matmul;
    cg_q4_Kx8_matmul_fn q4_Kx8_matmul;            // NULL: cg_repack_q4_Kx8_matmul_ref
    cg_q4_Kx8_matmul_fn q6_Kx8_matmul;            // Q6_K x8, same shapes; NULL: cg_repack_q6_Kx8_matmul_ref
    // Q5_0 x8 (Q8_0 activations, no side data), bit-identical with cg_repack_q5_0x8_matmul_ref and
    // with the table's stored Q5_0 vec_dot per row. NULL: that reference.
    cg_q4_Kx8_matmul_fn q5_0x8_matmul;
} cg_qops;

// The table of `isa`; the generic table (all NULL: the reference everywhere) when this build has
// no kernels for it or the CPU cannot run them. Borrowed static data.
const cg_qops *cg_qops_for(cg_isa isa);
// The table of cg_cpu_isa().
const cg_qops *cg_qops_get(void);

// Dot product for weight type t (NULL when neither the table nor the reference implements it).
cg_vec_dot_fn cg_qops_vec_dot(const cg_qops *ops, uint32_t t);
// Activation quantizer into activation type t (F32 copy, F16, BF16, Q8_0, Q8_1, Q8_K), or NULL.
cg_from_f32_fn cg_qops_quant_act(const cg_qops *ops, uint32_t t);

// y[r - r0] = W row r · xq for r in [r0, r1), where W holds rows of `row_bytes` bytes of weight
// type t, each of n_in elements, and xq is one activation row already in t's vec_dot type.
// Prefetches the rows ahead; pairs rows through vec_dot_x2 where the table has it (same results).
// Preconditions: t has a vec_dot (cg_qops_vec_dot != NULL), n_in is a
// multiple of both block sizes.
// y (r1-r0,) = W[r0:r1] (r1-r0, n_in) @ xq (n_in,)
void cg_qops_matvec(const cg_qops *ops, uint32_t t, const void *W, size_t row_bytes, int64_t n_in, const void *xq,
                    float *y, int64_t r0, int64_t r1);

// Y[k·ldy + r] = W row r · X_k for r in [r0, r1) and k < n_tok, X_k = xq + k·xq_row bytes: rows in
// tiles of a few dozen (kept in cache) against tokens in groups of up to CG_QOPS_MAX_NY, two rows at
// a time where the table has vec_dot_2n, else one (vec_dot_n).
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_qops_matmul(const cg_qops *ops, uint32_t t, const void *W, size_t row_bytes, int64_t n_in, const void *xq,
                    size_t xq_row, int64_t n_tok, float *Y, int64_t ldy, int64_t r0, int64_t r1);

#endif
