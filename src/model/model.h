// model.h — a loaded transformer: hyper-parameters, per-layer weight views, and the forward pass.
//
// cg_model_load maps a GGUF file (through the gguf reader), reads `{arch}.*` hyper-parameters with
// llama.cpp's defaults, and binds tensors by name through the architecture table (arch.c): one
// row of flags per architecture, one generic Llama-style block. Weights are views into the mmap in
// their stored format, except that on AVX2 the Q4_0, Q5_0, Q8_0, Q4_K and Q6_K matmul weights with
// enough rows are repacked at load into an 8-row interleaved copy owned by the model (kern/repack.h:
// Q4_0 and Q4_K as llama.cpp repacks them, in its float order; Q5_0 and Q8_0, which llama.cpp
// leaves stored, in the order of its stored kernels; a tied output gets its own copy, the lookups
// keep reading token_embd in the mapping). The environment variable
// CHINGU_REPACK=0 keeps every weight in its stored layout (to test and measure that path).
//
// cg_model_decode runs one forward step over a batch of (token, position, sequence id) entries,
// possibly from many sequences, reading and writing the paged KV cache (engine/kv.h). For each
// sequence in the batch, its entries must have consecutive positions in batch order, starting at
// most at the sequence's current cache length (a smaller start rewrites from there on).
//
// Ownership: cg_model owns its gguf mapping and its repacked weight copies; tensor views and hparams
// are borrowed until cg_model_free. A cg_model is immutable after load and may be shared by threads. A cg_model_ctx
// (scratch arena + thread pool) belongs to one thread at a time.
#ifndef CG_MODEL_H
#define CG_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "engine/kv.h"
#include "gguf/gguf.h"
#include "kern/kern.h"
#include "model/arch.h"

#define CG_MODEL_MAX_LAYERS 512

// How per-token hidden states become one embedding: llama.cpp's `{arch}.pooling_type` values.
typedef enum cg_pooling {
    CG_POOLING_NONE = 0,   // one vector per token
    CG_POOLING_MEAN = 1,   // mean over the input's tokens (the default when the key is absent)
    CG_POOLING_CLS = 2,    // the first token's state
    CG_POOLING_LAST = 3,   // the last token's state
    CG_POOLING_RANK = 4,   // reranker head: not supported (cg_model_embed refuses it)
} cg_pooling;

typedef struct cg_hparams {
    int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, head_dim_v, n_ff, n_ctx_train;
    int n_rot;
    float norm_eps;
    float rope_base, rope_base_swa;
    float rope_freq_scale;      // 1 / linear factor
    int rope_scaling;           // cg_rope_scaling
    int64_t n_ctx_orig;         // YaRN original context
    float yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow;
    int32_t n_swa;              // sliding window (0: none)
    int swa_pattern;            // layer il is SWA iff il % pattern < pattern - 1 (pattern 0/1: none)
    float attn_softcap, final_softcap;   // 0: none
    float embd_scale;           // multiplies token embeddings (1: none)
    float residual_scale;       // multiplies each block's branch output before the residual add
    float attn_scale;           // q·k scale
    float logit_scale;          // logits are divided by it (1: none)
    cg_pooling pooling;         // `{arch}.pooling_type`; MEAN when absent (llama.cpp's --pooling mean)
} cg_hparams;

typedef struct cg_layer {
    bool is_swa;
    cg_rope_params rope;        // this layer's rope (base differs on SWA layers)
    const float *attn_norm, *attn_norm_b, *attn_post_norm;
    const float *q_norm, *k_norm;
    const float *bq, *bk, *bv, *bo;
    cg_tensor wq, wk, wv, wqkv, wo;   // wqkv.data != NULL: fused q,k,v
    const float *ffn_norm, *ffn_norm_b, *ffn_post_norm;
    cg_tensor ffn_gate, ffn_up, ffn_down;   // ffn_gate.data == NULL: ffn_up holds gate then up
} cg_layer;

typedef struct cg_model cg_model;

// Loads `path`. Errors: those of cg_gguf_open; CG_ERR_UNSUPPORTED (architecture not in the table,
// a tensor type without a reference kernel; the message names it); CG_ERR_NOT_FOUND (a required
// tensor or key is missing, named); CG_ERR_FORMAT (a tensor with the wrong shape or type, naming
// the tensor, the expected and the found dims; a hyper-parameter out of range).
cg_status cg_model_load(const char *path, cg_model **out, cg_err *err);
void cg_model_free(cg_model *m);   // accepts NULL

// Bytes of the repacked weight copies the model owns (0: none; see above).
size_t cg_model_repacked_bytes(const cg_model *m);

// Borrowed until cg_model_free.
const cg_hparams *cg_model_hparams(const cg_model *m);
const cg_arch_desc *cg_model_arch(const cg_model *m);
const cg_gguf *cg_model_gguf(const cg_model *m);
const cg_layer *cg_model_layer(const cg_model *m, int il);

// KV-cache parameters for this model: n_blocks blocks of block_size tokens for max_seqs sequences.
cg_kv_params cg_model_kv_params(const cg_model *m, cg_kv_dtype type, int block_size, int n_blocks, int max_seqs);

// ---- forward ------------------------------------------------------------------------------------

typedef struct cg_batch {
    int32_t n;              // entries
    const int32_t *token;   // [n] token ids (< n_vocab)
    const int32_t *pos;     // [n] positions
    const int32_t *seq;     // [n] sequence ids (< the cache's max_seqs)
    const bool *logits;     // [n] whether to output logits for the entry; NULL: only the last entry
} cg_batch;

typedef struct cg_model_ctx cg_model_ctx;

// A forward-pass context: scratch arena (reset each step) and a pool of n_threads (≤ 0: one per
// CPU). Borrowed model must outlive it. Errors: CG_ERR_NOMEM, those of cg_pool_new.
cg_status cg_model_ctx_new(const cg_model *m, int n_threads, cg_model_ctx **out, cg_err *err);
void cg_model_ctx_free(cg_model_ctx *c);   // accepts NULL
const cg_model *cg_model_ctx_model(const cg_model_ctx *c);   // borrowed: the model it was made for
// The context's thread pool (borrowed; driven by the context's owner between steps only): for other
// parallel work on the same threads, such as chingu bench's bandwidth probes.
cg_pool *cg_model_ctx_pool(cg_model_ctx *c);
// The kernel table the context's steps run on: cg_kern_get() when made; a table set here (borrowed,
// non-NULL, outliving the context's steps) replaces it — e.g. the scalar reference next to the SIMD
// table in one process, to compare whole forward passes (test_model).
const cg_kern *cg_model_ctx_kern(const cg_model_ctx *c);
void cg_model_ctx_set_kern(cg_model_ctx *c, const cg_kern *k);

// One forward step. Numerics follow llama.cpp's CPU backend; like it, with an F16 cache a batch of
// 64 or more entries keeps queries and the attention accumulator in F32 (ggml's tiled kernel) while
// smaller batches round them to F16, so the same tokens fed in different batch sizes can differ by
// ~1e-4 with an F16 cache (an F32 cache gives identical results for any batching).
// Writes n_vocab floats per entry whose logits flag is set, in batch order, into
// `logits` (caller's buffer of n_out * n_vocab floats; may be NULL when no entry asks for logits).
// Errors: CG_ERR_INVALID (token id, position, sequence id out of range or positions not
// consecutive per sequence; the message names the entry), CG_ERR_LIMIT (the cache is full: named
// sequence and numbers), CG_ERR_NOMEM, CG_ERR_UNSUPPORTED (kernel).
cg_status cg_model_decode(cg_model_ctx *c, cg_kv *kv, const cg_batch *b, float *logits, cg_err *err);

// The same step in the hidden-state output mode: for each entry whose logits flag is set, writes
// the final hidden state (after the output norm, before the LM head, which is not computed) as
// n_embd floats, in batch order, into `hidden` (caller's buffer of n_out * n_embd floats). The KV
// cache is written exactly as cg_model_decode writes it. Errors: those of cg_model_decode.
cg_status cg_model_decode_hidden(cg_model_ctx *c, cg_kv *kv, const cg_batch *b, float *hidden, cg_err *err);

// ---- embeddings ---------------------------------------------------------------------------------

// One embedding of tokens[0..n) through sequence `seq` of `kv`: the sequence is cleared first,
// the tokens run from position 0 in batches of at most n_chunk entries (≤ 0: 512) through
// cg_model_decode_hidden, and the hidden states are pooled (`pooling`; MEAN accumulates in double).
// With `normalize`, each output vector is scaled to Euclidean norm 1 (llama.cpp's
// --embd-normalize 2, what llama-server's /v1/embeddings and OpenAI return); a zero vector stays
// zero. `out` receives n_embd floats, or n * n_embd for CG_POOLING_NONE (one row per token). The
// sequence is cleared again on return, success or failure, so it holds no blocks afterwards.
// Errors: CG_ERR_INVALID (n < 1, a bad token or sequence id), CG_ERR_UNSUPPORTED (RANK pooling),
// CG_ERR_LIMIT (the cache cannot hold n tokens), those of cg_model_decode_hidden.
cg_status cg_model_embed(cg_model_ctx *c, cg_kv *kv, int seq, const int32_t *tokens, int32_t n, int32_t n_chunk,
                         cg_pooling pooling, bool normalize, float *out, cg_err *err);

#endif
