// repack.h — Q4_0 weights (and a Q8_0 LM head) repacked at load into an 8-row interleaved layout,
// and the scalar references of the kernels over them.
//
// Why: llama.cpp's CPU backend on AVX2 repacks every Q4_0 matmul weight whose row count is a
// multiple of 8 (ggml's block_q4_0x8, "q4_0_8x8_q8_0") and computes each output element as a
// sequential float accumulation over the row's blocks,
//     acc = fma((float)isum_b, d_w,b · d_a,b, acc)        (acc starts at 0, b = 0, 1, …)
// where isum_b is the exact integer dot product of block b and d_w·d_a is one rounded float
// product. The stored-layout kernels add per-block terms in SIMD lanes and sum the lanes at the end
// — a different float order. Using this layout (with the same order) makes our logits follow
// llama.cpp's bit for bit in the matmuls, and it is the fast layout too: one activation block is
// reused for 8 rows whose integer sums land in the 8 lanes of one register.
//
// Layout (cg_block_q4_0x8): rows 8g..8g+7 ("row group" g) of a Q4_0 matrix with nb = n_in/32
// blocks per row become nb consecutive cg_block_q4_0x8, group after group: group g's block b is
// element g·nb + b. Within one: d[j] = row j's block scale (f16 bits), and for k < 4, j < 8, e < 4
//     qs[32k + 4j + e] = (q_j[4k + e]) | (q_j[16 + 4k + e] << 4)
// with q_j[i] ∈ 0..15 the stored nibble of element i of row j's block (value = (q − 8)·d). So a
// 32-byte load of qs[32k..32k+31] holds, in 32-bit lane j, row j's elements 4k..4k+3 (low nibbles)
// and 16+4k..16+4k+3 (high nibbles). The size equals the stored size (144 = 8 × 18 bytes).
//
// The tensor view (kern.h cg_tensor) marks a repacked weight with layout = CG_LAYOUT_Q4_0_X8 and
// points `data` at the repacked copy; row_bytes keeps the stored row size (18·nb, the same bytes per
// row). Ownership: the repacked copy belongs to whoever called cg_repack_q4_0 (the model owns its
// copies; see model_impl.h); every pointer here is borrowed for the call. All functions are pure
// and thread-safe.
#ifndef CG_KERN_REPACK_H
#define CG_KERN_REPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "kern/kern.h"
#include "quant/f16.h"

typedef struct cg_block_q4_0x8 {
    cg_f16 d[8];        // block scale of rows 0..7 of the group
    uint8_t qs[128];    // see the layout above
} cg_block_q4_0x8;

_Static_assert(sizeof(cg_block_q4_0x8) == 144, "q4_0x8 block is 8 Q4_0 blocks");

// Per Q8_0 activation block, what the repacked kernels need besides the quants: the scale as a
// float and −8·Σ qs (the kernels multiply the unsigned nibbles 0..15 and add this back, which gives
// exactly Σ (q − 8)·qs).
typedef struct cg_q8_0_aux {
    float d;
    int32_t bias;
} cg_q8_0_aux;

// True when `W` is a stored-layout Q4_0 matrix this layout can hold: ne[1] a positive multiple of
// 8, ne[0] a positive multiple of 32, a 2-D tensor.
bool cg_repack_q4_0_eligible(const cg_tensor *W);

// Bytes of the repacked copy of W (= ne[1] · row_bytes). Errors: CG_ERR_INVALID (not eligible,
// the message names the tensor and its shape/type), CG_ERR_LIMIT (size overflows size_t).
cg_status cg_repack_q4_0_size(const cg_tensor *W, size_t *out, cg_err *err);

// Writes the repacked copy of W's stored data into dst (cg_repack_q4_0_size bytes, any alignment;
// 32-byte alignment is best) and returns a view of it in *out (W's name, type, shape and row_bytes;
// layout CG_LAYOUT_Q4_0_X8; data = dst). Errors: those of cg_repack_q4_0_size.
cg_status cg_repack_q4_0(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err);

// The inverse: n_rows (multiple of 8) rows of n_in elements in the repacked layout at src back to
// stored Q4_0 rows at dst (n_rows · n_in/32 blocks). For tests and tools.
void cg_unpack_q4_0x8(const void *src, int64_t n_in, int64_t n_rows, void *dst);

// aux[b] for the nb = n_in/32 Q8_0 blocks of one activation row xq.
void cg_repack_q8_0_aux(const void *xq, int64_t n_in, cg_q8_0_aux *aux);

// The scalar reference of the repacked kernels, in llama.cpp's order (see above):
// Y[k·ldy + r] = W row r · X_k for r in [r0, r1) and k < n_tok, where W is the repacked data of a
// matrix with rows of n_in elements, X_k = xq + k·xq_row bytes is one Q8_0 activation row.
// Preconditions: r0, r1 multiples of 8; n_in a multiple of 32.
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_repack_q4_0x8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1);

// ---- Q8_0, 8 rows interleaved (the LM head only) ------------------------------------------------
//
// Layout (cg_block_q8_0x8): as for Q4_0, group g's block b is element g·nb + b; d[j] = row j's
// block scale and, for k < 8, j < 8, e < 4, qs[32k + 4j + e] = q_j[4k + e] (q_j the int8 quants of
// row j's block): a 32-byte load of qs[32k..32k+31] holds in 32-bit lane j row j's elements
// 4k..4k+3. Size = stored size (272 = 8 × 34 bytes). Layout tag CG_LAYOUT_Q8_0_X8. The row count
// need not be a multiple of 8 (vocabularies often are not): the n8 = 8·⌊ne[1]/8⌋ rows form the
// groups, and the tail rows n8..ne[1]−1 follow them in the stored layout, so row r ≥ n8 is at
// data + r·row_bytes as in the file; matmuls compute the tail with the stored Q8_0 kernels.
//
// The kernels compute every output element as acc = fma((float)isum_b, d_w,b · d_a,b, acc) over
// the blocks b in order (the same order as the Q4_0 layout above) — NOT the float order of the
// stored-layout Q8_0 kernels (llama.cpp's, which sums per-block terms in SIMD lanes). The model
// therefore repacks only the output matrix (the LM head) this way: its results are final logits,
// never requantized, so the order difference stays at float rounding (~1e-6 relative). Every other
// Q8_0 matrix keeps the stored layout and its kernels.

typedef struct cg_block_q8_0x8 {
    cg_f16 d[8];        // block scale of rows 0..7 of the group
    int8_t qs[256];     // see the layout above
} cg_block_q8_0x8;

_Static_assert(sizeof(cg_block_q8_0x8) == 272, "q8_0x8 block is 8 Q8_0 blocks");

// True when `W` is a stored-layout Q8_0 2-D matrix with rows of a positive multiple of 32 and at
// least 8 rows.
bool cg_repack_q8_0_eligible(const cg_tensor *W);

// Bytes of the repacked copy (= ne[1] · row_bytes). Errors: CG_ERR_INVALID (not eligible, the
// message names the tensor, its type and shape), CG_ERR_LIMIT (overflow).
cg_status cg_repack_q8_0_size(const cg_tensor *W, size_t *out, cg_err *err);

// Writes the repacked copy of W into dst (dst_size ≥ cg_repack_q8_0_size bytes) and returns its
// view in *out (layout CG_LAYOUT_Q8_0_X8, data = dst). Errors: those of cg_repack_q8_0_size, and
// CG_ERR_INVALID when dst_size is too small.
cg_status cg_repack_q8_0(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err);

// The inverse (any n_rows, the tail copied as it is) back to stored Q8_0 rows. For tests and tools.
void cg_unpack_q8_0x8(const void *src, int64_t n_in, int64_t n_rows, void *dst);

// The scalar reference: same contract as cg_repack_q4_0x8_matmul_ref (r0, r1 multiples of 8: the
// groups only; the tail rows are the stored kernels' business), for W in the Q8_0x8 layout.
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_repack_q8_0x8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1);

#endif
