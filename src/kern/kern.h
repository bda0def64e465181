// kern.h — the compute-op backend table.
//
// Model code never calls a kernel directly: it asks cg_kern_get() for a table of function pointers
// (matmul, rmsnorm, rope, attention, gated activation) and calls through it, so SIMD or GPU
// backends slot in as new tables without touching model code. Tables today: the scalar reference
// ("generic", the oracle), AVX2 (src/kern/x86/kern_avx2.c) and NEON (src/kern/arm/), chosen once at
// run time by cg_kern_get() (CHINGU_ISA overrides). All reproduce ggml's CPU numerics (README section 4
// of the testdata): activations are converted to the weight format's vec_dot partner type before a
// dot product; the SIMD tables differ from the reference only in float summation order.
//
// Shapes use the project's letters: n_tok rows of activations, n_in / n_out matrix sides,
// head_dim, n_head, n_head_kv. Matrices are row-major; a weight W has n_out rows of n_in elements
// stored in W->type (ggml layout: ne[0] = n_in is contiguous).
//
// Ownership: every pointer argument is borrowed for the duration of the call. Weights are views
// into the model's mmap, or into its repacked copies (cg_tensor.layout != CG_LAYOUT_STORED; every
// table's matmul accepts both). Thread-safety: tables are immutable; functions are re-entrant; matmul and
// attention may use the cg_pool they are given (driven by the calling thread only).
#ifndef CG_KERN_H
#define CG_KERN_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/thread.h"

// How a weight's bytes are arranged: as stored in the file (ggml's row-major blocks), or repacked
// at load into an interleaved layout (kern/repack.h).
typedef enum cg_layout {
    CG_LAYOUT_STORED = 0,
    CG_LAYOUT_Q4_0_X8,     // Q4_0, 8 rows interleaved per block column (kern/repack.h)
    CG_LAYOUT_Q8_0_X8,     // Q8_0, the same (kern/repack.h)
    CG_LAYOUT_Q4_K_X8,     // Q4_K, 8 rows interleaved per super-block column (kern/repack.h)
    CG_LAYOUT_Q6_K_X8,     // Q6_K, the same (kern/repack.h)
    CG_LAYOUT_Q5_0_X8,     // Q5_0, 8 rows interleaved per block column (kern/repack.h)
} cg_layout;

// A read-only view of a weight tensor.
typedef struct cg_tensor {
    const char *name;      // borrowed from the GGUF reader
    uint32_t type;         // ggml type id
    int64_t ne[4];         // ne[0] innermost (elements per row)
    uint64_t row_bytes;    // bytes of one row of ne[0] elements (stored layout; repacked: the same)
    const void *data;      // into the mmap (stored layout) or the model's repacked copy
    uint32_t layout;       // cg_layout; 0 (stored) for a zero-initialised view
} cg_tensor;

typedef enum cg_rope_kind {
    CG_ROPE_NONE = 0,
    CG_ROPE_NORM,   // rotate adjacent pairs (2i, 2i+1)
    CG_ROPE_NEOX,   // rotate pairs (i, i + n_rot/2)
} cg_rope_kind;

enum { CG_ROPE_MAX_ROT = 2048 };   // rotated dims per head that rope handles (the rest pass through)

// Everything rope needs for one layer, precomputed by the model loader.
typedef struct cg_rope_params {
    cg_rope_kind kind;
    int n_rot;               // rotated dims per head (even, ≤ head_dim)
    float freq_base;
    float freq_scale;        // 1 / linear factor
    float ext_factor;        // YaRN mix (0: off)
    float attn_factor;       // YaRN magnitude scale
    float corr_dims[2];      // YaRN correction range
    const float *freq_factors;   // NULL or n_rot/2 divisors (rope_freqs.weight); borrowed
} cg_rope_params;

// The dims rope rotates for rp: 0 for CG_ROPE_NONE (or n_rot ≤ 0), else min(n_rot, CG_ROPE_MAX_ROT).
static inline int cg_rope_rot(const cg_rope_params *rp) {
    if (rp->kind == CG_ROPE_NONE || rp->n_rot <= 0) return 0;
    return rp->n_rot < CG_ROPE_MAX_ROT ? rp->n_rot : CG_ROPE_MAX_ROT;
}

// One rotated pair (x0, x1) by (c, s) as llama.cpp's x86 build evaluates it (GCC contracts
// x0·c − x1·s and x0·s + x1·c into one FMA each, the x1 product rounded first): with the plain
// expression the F32 files' prompt logits differ from llama.cpp's by ~1e-6, with this (and ggml's
// F32 matmul order) by 0. Every table's rope_apply rotates each element exactly so.
static inline void cg_rope_pair(float *x0, float *x1, float c, float s) {
    const float a = *x0, b = *x1;
    *x0 = fmaf(a, c, -(b * s));
    *x1 = fmaf(a, s, b * c);
}

typedef enum cg_act_kind {
    CG_ACT_SWIGLU = 0,   // silu(gate) * up
    CG_ACT_GEGLU,        // gelu_tanh(gate) * up, through F16 like ggml's table
} cg_act_kind;

typedef enum cg_kv_dtype {
    CG_KV_F16 = 0,
    CG_KV_F32,
} cg_kv_dtype;

// One query row's attention over a sequence's cached keys/values, read through its block table.
// The keys of block b (table entry) live at k_blocks[b] as block_size rows of n_head_kv*head_dim
// elements in kv_type; likewise v_blocks. Keys 0..n_kv-1 (by position) are visible when
// (n_swa == 0 || pos - key_pos < n_swa) and key_pos <= pos.
typedef struct cg_attn_args {
    const float *q;              // (n_head, head_dim) for one token
    float *out;                  // (n_head, head_dim_v)
    int n_head, n_head_kv, head_dim, head_dim_v;
    int32_t pos;                 // the query's position
    int32_t n_swa;               // 0: full causal attention
    float scale;                 // applied to q·k (after softcap when softcap == 0)
    float softcap;               // 0: none; else logits = softcap * tanh(logits*scale / softcap)
    cg_kv_dtype kv_type;
    bool f32_acc;                // F16 cache: keep q and the value accumulator in F32 (ggml's tiled
                                 // kernel for batches of ≥ 64 rows) instead of rounding them to F16
    bool pv_gemm;                // F32 two-pass path: the batch has >= 2 tokens, so Σ w·v follows
                                 // llamafile's gemm (one 8-lane FMA accumulator over keys, lane =
                                 // key position mod 8); else ggml_vec_dot_f32 (four, mod 32)
    int block_size;
    const void *const *k_blocks; // per table entry: base of that block's keys for this layer
    const void *const *v_blocks;
    float *scratch;              // caller's: attention() needs cg_attn_multi_scratch(a, 1) floats (a
                                 // slab per query head of one kv head, CG_ATTN_SLABS at most)
    int head_lo, head_hi;        // attention() only: the query heads it computes, [head_lo, head_hi)
                                 // (0 ≤ head_lo ≤ head_hi ≤ n_head); head_hi == 0: all of them. A
                                 // head's output does not depend on the range (threads split heads)
} cg_attn_args;

// attention_multi: n_q (1..CG_ATTN_MAX_Q) consecutive query positions pos, pos+1, …, pos+n_q-1 of ONE
// sequence. q holds n_q rows of n_head*head_dim floats, out n_q rows of n_head*head_dim_v; the
// block table covers position pos+n_q-1; each query's causal / sliding window is its own. scratch
// must hold cg_attn_multi_scratch(a, n_q) floats.
#define CG_ATTN_MAX_Q 16
// Query heads handled together over one pass of the keys/values (scratch slabs).
#define CG_ATTN_SLABS 8

// Floats of scratch attention_multi needs for n_q queries starting at a->pos (n_q = 1: attention()).
static inline int64_t cg_attn_multi_scratch(const cg_attn_args *a, int n_q) {
    return (int64_t)CG_ATTN_SLABS * ((int64_t)a->head_dim + a->head_dim_v + a->pos + n_q);
}

// The most weights one matmul_multi call takes (q, k, v).
#define CG_KERN_MAX_MULTI 4

typedef struct cg_kern {
    const char *name;

    // Y (n_tok, n_out) = X (n_tok, n_in) @ W^T, W (n_out, n_in) in W->type. Activations are first
    // converted to the type's vec_dot type (Q8_0/Q8_1/Q8_K, F16, BF16) into scratch from `arena`.
    // Rows of W are split across the pool's threads. Errors: CG_ERR_UNSUPPORTED (no reference
    // dot product for W's type), CG_ERR_NOMEM.
    cg_status (*matmul)(const cg_tensor *W, const float *X, int64_t n_tok, float *Y, cg_arena *arena,
                        cg_pool *pool, cg_err *err);

    // Several products of one input: Y[w] (n_tok, W[w]->ne[1]) = X (n_tok, n_in) @ W[w]^T for
    // w < n_w (1..CG_KERN_MAX_MULTI), every W[w] with the same n_in = W[w]->ne[0]. Each Y[w] is
    // bit-identical with what matmul(W[w], X, …) writes; the gain is that activations are converted
    // once per vec_dot type (q/k/v, gate/up share theirs) and the rows of all weights are split
    // across the pool in one hand-off. Errors: those of matmul, naming the offending tensor;
    // CG_ERR_INVALID (n_w out of range, or the weights' n_in differ).
    cg_status (*matmul_multi)(const cg_tensor *const *W, int n_w, const float *X, int64_t n_tok, float *const *Y,
                              cg_arena *arena, cg_pool *pool, cg_err *err);

    // y (n,) = x (n,) / sqrt(mean(x²) + eps) * w (n,); w may be NULL (no weight). y may equal x.
    void (*rmsnorm)(const float *x, const float *w, int64_t n, float eps, float *y);

    // Rope in two steps, so one position's table serves every head of q and k and every layer with
    // the same parameters: rope_table writes the table of position pos (the cos and sin of each
    // rotated pair, scaled as YaRN says; at most 2·min(n_rot, CG_ROPE_MAX_ROT) floats, nothing for
    // CG_ROPE_NONE) in this kernel table's own layout; rope_apply rotates the first n_rot dims of each
    // head of x (n_head, head_dim) in place with a table from the same kernel table.
    void (*rope_table)(int32_t pos, const cg_rope_params *rp, float *cs);
    void (*rope_apply)(float *x, int n_head, int head_dim, const cg_rope_params *rp, const float *cs);

    // One token's multi-head attention (see cg_attn_args). GQA: head h uses kv head h/(n_head/n_head_kv).
    void (*attention)(const cg_attn_args *a);

    // n_q consecutive queries of one sequence (see CG_ATTN_MAX_Q above): every query's output is
    // bit-identical with what attention() writes for it alone (its own q row, out row, pos, and a
    // scratch of the single-query size); the gain is that each key/value row is read once for all
    // the query heads and positions that see it (GQA heads of one kv head included).
    // n_q outside 1..CG_ATTN_MAX_Q is a caller bug (the call does nothing).
    void (*attention_multi)(const cg_attn_args *a, int n_q);

    // out (n,) = act(gate (n,)) * up (n,); out may alias gate.
    void (*glu)(cg_act_kind kind, const float *gate, const float *up, float *out, int64_t n);
} cg_kern;

// The best table for this machine (today: the scalar reference). Borrowed static data.
const cg_kern *cg_kern_get(void);
// The scalar reference table (the oracle every other backend must agree with).
const cg_kern *cg_kern_generic(void);

#endif
