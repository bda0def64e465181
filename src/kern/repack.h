// repack.h — Q4_0, Q5_0, Q8_0, Q4_K and Q6_K weights repacked at load into 8-row interleaved
// layouts, and the scalar references of the kernels over them.
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

// Chunk-packed Q8_0 activations: the Q4_0 / Q8_0 x8 kernels' input for a prefill, made once per
// matmul (kern/qmatmul.c) so the threads' tiles read it in place instead of each repacking it per
// row block. Tokens in chunks of CG_PACK_TOK; chunk c (tokens 8c..8c+7) is nb = n_in/32 records of
// CG_PACK_BLK bytes, one per block b: the chunk's quants of block b (32 bytes per token, the tokens
// side by side), then their side data (CG_PACK_TOK cg_q8_0_aux). Slots past the last token of a
// short last chunk are neither written nor read.
enum { CG_PACK_TOK = 8, CG_PACK_BLK = CG_PACK_TOK * 32 + CG_PACK_TOK * (int)sizeof(cg_q8_0_aux) };

// Bytes of the packed form of n_tok rows of n_in elements (false on overflow).
bool cg_q8_0_pack_size(int64_t n_in, int64_t n_tok, size_t *out);

// Writes tokens [t0, t1) of the Q8_0 rows xq (xq + k·xq_row) and their side data (aux + k·n_in/32)
// into their slots of the packed buffer (cg_q8_0_pack_size(n_in, ≥ t1) bytes). Disjoint token
// ranges may be packed concurrently.
void cg_q8_0_pack(const void *xq, size_t xq_row, const cg_q8_0_aux *aux, int64_t n_in, int64_t t0, int64_t t1,
                  void *packed);

// The scalar reference of the repacked kernels, in llama.cpp's order (see above):
// Y[k·ldy + r] = W row r · X_k for r in [r0, r1) and k < n_tok, where W is the repacked data of a
// matrix with rows of n_in elements, X_k = xq + k·xq_row bytes is one Q8_0 activation row.
// Preconditions: r0, r1 multiples of 8; n_in a multiple of 32.
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_repack_q4_0x8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1);

// ---- Q8_0, 8 rows interleaved -------------------------------------------------------------------
//
// Layout (cg_block_q8_0x8): as for Q4_0, group g's block b is element g·nb + b; d[j] = row j's
// block scale and, for k < 8, j < 8, e < 4, qs[32k + 4j + e] = q_j[4k + e] (q_j the int8 quants of
// row j's block): a 32-byte load of qs[32k..32k+31] holds in 32-bit lane j row j's elements
// 4k..4k+3. Size = stored size (272 = 8 × 34 bytes). Layout tag CG_LAYOUT_Q8_0_X8. The row count
// need not be a multiple of 8 (vocabularies often are not): the n8 = 8·⌊ne[1]/8⌋ rows form the
// groups, and the tail rows n8..ne[1]−1 follow them in the stored layout, so row r ≥ n8 is at
// data + r·row_bytes as in the file; matmuls compute the tail with the stored Q8_0 kernels.
//
// The kernels compute every output element in the stored-layout Q8_0 kernels' float order
// (llama.cpp's ggml_vec_dot_q8_0_q8_0 on AVX2, and tinyBLAS for batches): per row eight float lanes,
// lane l holding the exact integer sum isum_l of elements 4l..4l+3 times the activations, each
// accumulated over the blocks in order as acc_l = fma(d_w·d_a, (float)isum_l, acc_l), then
// y = ((acc_0 + acc_4) + (acc_2 + acc_6)) + ((acc_1 + acc_5) + (acc_3 + acc_7)) — bit-identical with
// the stored kernels, so every Q8_0 matmul weight is repacked. (The first version summed the block's
// 32 products in integers and did one FMA per block, the Q4_0 x8 order: harmless for the LM head,
// but on every layer it moved rand-qwen3-Q8_0's logits by 0.027 and stories260K-Q5_K_M's by 0.14.)

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

// ---- Q4_K, 8 rows interleaved (llama.cpp's q4_K_8x8_q8_K on AVX2; our own arrangement) ----------
//
// Why: llama.cpp's CPU backend on AVX2 repacks every Q4_K matmul weight whose row count is a
// multiple of 8 (ggml's block_q4_Kx8) and computes each output element over the row's super-blocks
// b = 0, 1, … (activations in Q8_K) as two float accumulations and one difference:
//     acc  = fma((float)isum_b, d_w,b · d_a,b,    acc)     isum_b = Σ_j sc_j · (q · a over sub-block j)
//     accm = fma((float)imin_b, dmin_w,b · d_a,b, accm)    imin_b = Σ_j mn_j · (Σ a over sub-block j)
//     y    = acc − accm                                    (acc, accm start at 0)
// with isum_b, imin_b exact integers (converted to float once, rounding to nearest) and each scale a
// single rounded float product. The stored-layout Q4_K kernels instead add the per-super-block
// terms in SIMD lanes (and the min terms apart) and sum at the end: a different float order.
// Measured on the gen/ references (test_model): with this order rand-phi3-Q4_K_M, rand-gemma3-Q4_K_M,
// rand-llama3-bpe-Q3_K_M and rand-phi3-Q3_K_M go from max |Δlogit| 0.04 / 0.006 / 0.03 / 0.046 to
// ≤ 1e-6 (the references were made with this order); rand-gemma3-Q2_K (its only Q4_K tensors are
// attn_v) goes the other way, 2e-7 → 0.008 — see "The gemma3 exception" below.
// Q6_K is repacked too (the Q6_K x8 section below).
//
// Layout (cg_block_q4_Kx8, 1152 bytes = 8 stored Q4_K blocks): rows 8g..8g+7 of a matrix with
// nb = n_in/256 super-blocks per row become nb consecutive blocks, group after group (group g's
// super-block b is element g·nb + b). Within one, for row j < 8:
//   d[j], dmin[j]     row j's super-block scale and min scale (f16 bits, as stored);
//   qs[32m + 4j + e]  = row j's stored qs[4m + e] (m < 32, e < 4): a 32-byte load of qs[32m..] holds
//                     in 32-bit lane j row j's bytes 4m..4m+3 — with m = 8c + k, the low nibbles are
//                     elements 64c + 4k..+3 (sub-block 2c), the high nibbles 64c + 32 + 4k..+3
//                     (sub-block 2c + 1);
//   scales[96]        the 64 six-bit sub-block scales and 64 mins, transposed so that one SIMD
//                     unpack yields them ready to use. With v[8s + j] = sc_j,s (sub-block s of row j;
//                     v[0..63]) and v[64 + 16p + 2j + e] = mn_j,2p+e (v[64..127]):
//                       scales[i]      = (v[i] & 15) | (v[64 + i] & 15) << 4              (i < 64)
//                       scales[64 + i] = v[i] >> 4 | (v[32+i] >> 4) << 2 | (v[64+i] >> 4) << 4
//                                        | (v[96+i] >> 4) << 6                              (i < 32)
// Same size as the stored rows; layout tag CG_LAYOUT_Q4_K_X8; row_bytes keeps the stored row size.

typedef struct cg_block_q4_Kx8 {
    cg_f16 d[8];           // super-block scales of rows 0..7
    cg_f16 dmin[8];        // super-block min scales of rows 0..7
    uint8_t scales[96];    // see above
    uint8_t qs[1024];      // see above
} cg_block_q4_Kx8;

_Static_assert(sizeof(cg_block_q4_Kx8) == 1152, "q4_Kx8 block is 8 Q4_K blocks");

// True when `W` is a stored-layout Q4_K 2-D matrix: ne[0] a positive multiple of 256, ne[1] a
// positive multiple of 8 (llama.cpp's condition).
bool cg_repack_q4_K_eligible(const cg_tensor *W);

// Bytes of the repacked copy (= ne[1] · row_bytes). Errors: CG_ERR_INVALID (not eligible, the
// message names the tensor, its type and shape), CG_ERR_LIMIT (overflow).
cg_status cg_repack_q4_K_size(const cg_tensor *W, size_t *out, cg_err *err);

// Writes the repacked copy of W into dst (dst_size ≥ cg_repack_q4_K_size bytes) and returns its
// view in *out (layout CG_LAYOUT_Q4_K_X8, data = dst). Errors: those of cg_repack_q4_K_size, and
// CG_ERR_INVALID when dst_size is too small.
cg_status cg_repack_q4_K(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err);

// The inverse: n_rows (multiple of 8) rows of n_in elements back to stored Q4_K rows. For tests.
void cg_unpack_q4_Kx8(const void *src, int64_t n_in, int64_t n_rows, void *dst);

// The 128 unpacked six-bit values v[] (see the layout) of one repacked block.
void cg_repack_q4_Kx8_scales(const cg_block_q4_Kx8 *blk, uint8_t v[128]);

// The scalar reference in llama.cpp's order (above): Y[k·ldy + r] = W row r · X_k for r in [r0, r1)
// (multiples of 8) and k < n_tok, X_k = xq + k·xq_row bytes one Q8_K activation row (its bsums
// are used for the mins). Preconditions: n_in a multiple of 256.
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_repack_q4_Kx8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1);

// ---- Q6_K, 8 rows interleaved (our own arrangement; the per-row order of the references) ---------
//
// Why: Q4_K_M files keep Q6_K for the LM head and some attn_v / ffn_down matrices. The stored-layout
// Q6_K kernel sums per-super-block terms in SIMD lanes (ggml's vec_dot_q6_K order) and reads one
// row at a time; the gen/ references of rand-llama3-bpe-Q6_K and rand-qwen3-Q6_K follow instead the
// per-row order, over the super-blocks b = 0, 1, … of a row (activations in Q8_K):
//     acc = fma((float)isum_b, d_w,b · d_a,b, acc)     isum_b = Σ_s sc_s · Σ_{i in s} (q_i − 32) · a_i
// (16 sub-blocks s of 16 elements, sc_s the signed eight-bit sub-block scale, q_i ∈ 0..63 the six-bit
// quant; isum_b exact, |isum_b| < 2^31; d_w·d_a one rounded float product). The kernels compute it
// as Σ_s sc_s · (Σ q·a) − 32 · Σ_s sc_s · bsum_s (bsum_s = the Q8_K block's sum over sub-block s):
// the same integer. Which tensors take this layout: repack_kind in model/model.c. Measured with
// test_model: rand-llama3-bpe-Q6_K 0.038 → 7e-7, rand-qwen3-Q6_K 0.037 → 7e-7 (max |Δlogit|).
//
// The gemma3 exception (found by bisection with per-tensor switches, not explained). A 1-ulp
// difference in a matmul output shows in the logits only where it flips the rounding of a later
// Q8_K/Q8_0 activation quant (then ~0.005..0.04 here), i.e. mostly on the 96-token prompt 1, so
// each test below tells which order the reference used only for the tensors that prompt is
// sensitive to. Findings (max |Δlogit| of the sensitive prompt):
//   * rand-llama3-bpe-Q6_K / rand-qwen3-Q6_K, prompt 1: attn_q/k/v/output need the per-row order
//     (any of them in the stored order: 0.035..0.038); the ffn matrices are insensitive.
//   * rand-gemma3-Q6_K, prompt 1: layer 0's attn_k and attn_v (64 rows: n_head_kv 1) AND its ffn
//     matrices need the stored order (all of them stored: 1e-7; ffn only: 0.004; none: 0.008);
//     attn_q/output are insensitive.
//   * rand-gemma3-Q2_K, prompt 1: its Q4_K blk.0.attn_v (64 rows) needs the stored order.
//   * rand-gemma3-Q3_K_M, prompt 2: its Q4_K blk.0.ffn_down (256 rows) needs the repacked order
//     (stored: 0.006); rand-gemma3-Q4_K_M, prompt 0: layer 0's Q4_K matrices need the repacked order.
// So no rule on type, shape or op alone fits (gemma3's ffn_up [256, 256] Q6_K wants the stored order
// where llama3-bpe's attn_q [256, 256] Q6_K wants the per-row one). ggml-cpu's repack choice as
// read (repack.cpp ggml_repack_get_optimal_repack_type: Q4_0/Q4_K/IQ4_NL need ne[1] % 8 == 0 on
// AVX2, Q6_K is repacked on NEON only; extra_buffer_type::supports_op: MUL_MAT with a 2-D weight in
// the repack buffer and F32 src1; llama-model.cpp select_weight_buft / weight_buft_supported try
// each weight's op, built with 512 F32 columns, against the buffer types in order) depends only on
// type, shape and op. A version near the reference commit could not be read, and the other
// residual mismatches of long prompts (rand-qwen2-Q6_K 0.028, rand-qwen3-Q5_K_M 0.049) do not
// depend on the repacked layouts at all. We keep one rule — repack every eligible matrix — which
// fixes the two non-gemma3 Q6_K files and costs gemma3 Q6_K/Q2_K 0.008 (0.35-0.42 of tolerance).
//
// Layout (cg_block_q6_Kx8, 1680 bytes = 8 stored Q6_K blocks): rows 8g..8g+7 of a matrix with
// nb = n_in/256 super-blocks per row become nb consecutive blocks, group after group (group g's
// super-block b is element g·nb + b). Within one, for row j < 8:
//   d[j]                   row j's super-block scale (f16 bits, as stored);
//   scales[16t + 2j + e]   = row j's scales[2t + e] (t < 8, e < 2): 16 bytes widened to int16 hold
//                          in 32-bit lane j the pair (sc_j,2t, sc_j,2t+1);
//   ql[32m + 4j + e]       = row j's stored ql[4m + e] (m < 32, e < 4);
//   qh[32m + 4j + e]       = row j's stored qh[4m + e] (m < 16, e < 4).
// With the stored packing (element 128h + 32c + l, h < 2, c < 4, l < 32: low nibble c>>1 of
// ql[64h + 32(c&1) + l], high bits 2c..2c+1 of qh[32h + l]) a 32-byte load of ql[32(16h + 8(c&1)
// + k)..] and of qh[32(8h + k)..] hold in lane j what row j's elements 128h + 32c + 4k..+3 need.
// Same size as the stored rows; layout tag CG_LAYOUT_Q6_K_X8; row_bytes keeps the stored row size.

typedef struct cg_block_q6_Kx8 {
    cg_f16 d[8];         // super-block scales of rows 0..7
    int8_t scales[128];  // see above
    uint8_t ql[1024];    // see above
    uint8_t qh[512];     // see above
} cg_block_q6_Kx8;

_Static_assert(sizeof(cg_block_q6_Kx8) == 1680, "q6_Kx8 block is 8 Q6_K blocks");

// True when `W` is a stored-layout Q6_K 2-D matrix: ne[0] a positive multiple of 256, ne[1] a
// positive multiple of 8.
bool cg_repack_q6_K_eligible(const cg_tensor *W);

// Bytes of the repacked copy (= ne[1] · row_bytes). Errors: CG_ERR_INVALID (not eligible, the
// message names the tensor, its type and shape), CG_ERR_LIMIT (overflow).
cg_status cg_repack_q6_K_size(const cg_tensor *W, size_t *out, cg_err *err);

// Writes the repacked copy of W into dst (dst_size ≥ cg_repack_q6_K_size bytes) and returns its
// view in *out (layout CG_LAYOUT_Q6_K_X8, data = dst). Errors: those of cg_repack_q6_K_size, and
// CG_ERR_INVALID when dst_size is too small.
cg_status cg_repack_q6_K(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err);

// The inverse: n_rows (multiple of 8) rows of n_in elements back to stored Q6_K rows. For tests.
void cg_unpack_q6_Kx8(const void *src, int64_t n_in, int64_t n_rows, void *dst);

// The scalar reference in the per-row order above: Y[k·ldy + r] = W row r · X_k for r in [r0, r1)
// (multiples of 8) and k < n_tok, X_k = xq + k·xq_row bytes one Q8_K activation row. Preconditions:
// n_in a multiple of 256.
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_repack_q6_Kx8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1);

// ---- Q5_0, 8 rows interleaved (our own arrangement; the stored kernel's float order) ------------
//
// Why: Q4_K_M/Q5_K_M files whose n_embd is not a multiple of 256 (qwen2.5-0.5b: 896) keep the
// matrices that read the embedding (attn_q/k/output, ffn_gate/up) in Q5_0 — 44 % of that model's
// bytes per token. The stored Q5_0 row dot is compute-bound below the memory rate; this layout
// shares one activation block across 8 rows and needs no per-row horizontal sum.
//
// Float order: NOT llama.cpp's repacked order (llama.cpp does not repack Q5_0) but that of the
// stored kernels cg_avx2_vec_dot_q5_0 / _x2_q5_0 (= ggml_vec_dot_q5_0_q8_0 on AVX2), bit for bit.
// Per row, eight float lanes l < 8, lane l accumulating over the blocks b = 0, 1, … of the row
//     acc_l = fma((float)isum_l,b, d_w,b · d_a,b, acc_l)    (acc_l starts at 0)
// where isum_l,b = Σ_{e<4} (q[4l + e] − 16) · a[4l + e] is the exact integer sum of elements
// 4l..4l+3 of block b (q ∈ 0..31 the five-bit quant, a the Q8_0 activation quant) and d_w·d_a is one
// rounded float product; then y = ((acc_0 + acc_4) + (acc_2 + acc_6)) + ((acc_1 + acc_5) + (acc_3 +
// acc_7)) (hsum_ps's order in avx2_dot.c). Switching a matrix between the layouts therefore changes
// no result.
//
// Layout (cg_block_q5_0x8, 176 bytes = 8 stored Q5_0 blocks): rows 8g..8g+7 of a matrix with
// nb = n_in/32 blocks per row become nb consecutive blocks, group after group (group g's block b is
// element g·nb + b). Within one, for row j < 8 (q_j[i] ∈ 0..31 the quant of element i of row j's
// block):
//   d[j]               row j's block scale (f16 bits, as stored);
//   qs[32k + 4j + e]   = (q_j[4k + e] & 15) | (q_j[16 + 4k + e] & 15) << 4   (k < 4, e < 4) — the
//                      Q4_0 x8 arrangement of the low four bits: a 32-byte load of qs[32k..] holds in
//                      32-bit lane j the low nibbles of elements 4k..4k+3 and (high nibbles)
//                      16+4k..16+4k+3, i.e. "register" i = k and i = k + 4;
//   qh[4j + e]         bit i (i < 8) = bit 4 of q_j[4i + e]: one 32-byte load holds every register's
//                      fifth bit, register i's in bit i of each byte (one shift and one mask put it at
//                      bit 4).
// So register i (i < 8) holds in lane j row j's elements 4i..4i+3 — exactly lane l = i of the order
// above, for 8 rows at once. Same size as the stored rows; layout tag CG_LAYOUT_Q5_0_X8; row_bytes
// keeps the stored row size.

typedef struct cg_block_q5_0x8 {
    cg_f16 d[8];        // block scale of rows 0..7 of the group
    uint8_t qs[128];    // low four bits, see above
    uint8_t qh[32];     // fifth bits, see above
} cg_block_q5_0x8;

_Static_assert(sizeof(cg_block_q5_0x8) == 176, "q5_0x8 block is 8 Q5_0 blocks");

// True when `W` is a stored-layout Q5_0 2-D matrix: ne[0] a positive multiple of 32, ne[1] a
// positive multiple of 8.
bool cg_repack_q5_0_eligible(const cg_tensor *W);

// Bytes of the repacked copy (= ne[1] · row_bytes). Errors: CG_ERR_INVALID (not eligible, the
// message names the tensor, its type and shape), CG_ERR_LIMIT (overflow).
cg_status cg_repack_q5_0_size(const cg_tensor *W, size_t *out, cg_err *err);

// Writes the repacked copy of W into dst (dst_size ≥ cg_repack_q5_0_size bytes) and returns its
// view in *out (layout CG_LAYOUT_Q5_0_X8, data = dst). Errors: those of cg_repack_q5_0_size, and
// CG_ERR_INVALID when dst_size is too small.
cg_status cg_repack_q5_0(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err);

// The inverse: n_rows (multiple of 8) rows of n_in elements back to stored Q5_0 rows. For tests.
void cg_unpack_q5_0x8(const void *src, int64_t n_in, int64_t n_rows, void *dst);

// The scalar reference in the stored kernels' order (above): Y[k·ldy + r] = W row r · X_k for r in
// [r0, r1) (multiples of 8) and k < n_tok, X_k = xq + k·xq_row bytes one Q8_0 activation row.
// Preconditions: n_in a multiple of 32.
// Y (n_tok, ldy)[:, r0:r1] = X (n_tok, n_in) @ W[r0:r1]^T
void cg_repack_q5_0x8_matmul_ref(const void *W, int64_t n_in, const void *xq, size_t xq_row, int64_t n_tok, float *Y,
                                 int64_t ldy, int64_t r0, int64_t r1);

#endif
