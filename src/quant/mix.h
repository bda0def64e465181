// mix.h — which tensor type each tensor of a model gets when quantizing to a named mix.
//
// A "mix" (llama.cpp calls it a file type, llama_ftype) names a default tensor format plus rules
// that keep some tensors at higher precision: the output matrix, some attn_v / ffn_down /
// attn_output tensors, GQA and MoE special cases, and a fallback when a row length is not a
// multiple of the format's block size. The rules reproduce llama.cpp's llama-quantize (commit
// 81ff7abe50b95fb81cc70a6cdba1eb1a02a48f62, no imatrix, no per-tensor overrides) for the mixes
// listed in cg_ftype.
//
// Everything here is a pure function of its arguments over static tables: thread-safe, no
// allocation except where stated.
#ifndef CG_QUANT_MIX_H
#define CG_QUANT_MIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "quant/quant.h"

// llama_ftype values, as stored in `general.file_type`.
typedef enum cg_ftype {
    CG_FTYPE_ALL_F32 = 0,
    CG_FTYPE_MOSTLY_F16 = 1,
    CG_FTYPE_MOSTLY_Q4_0 = 2,
    CG_FTYPE_MOSTLY_Q4_1 = 3,
    CG_FTYPE_MOSTLY_Q8_0 = 7,
    CG_FTYPE_MOSTLY_Q5_0 = 8,
    CG_FTYPE_MOSTLY_Q5_1 = 9,
    CG_FTYPE_MOSTLY_Q2_K = 10,
    CG_FTYPE_MOSTLY_Q3_K_S = 11,
    CG_FTYPE_MOSTLY_Q3_K_M = 12,
    CG_FTYPE_MOSTLY_Q3_K_L = 13,
    CG_FTYPE_MOSTLY_Q4_K_S = 14,
    CG_FTYPE_MOSTLY_Q4_K_M = 15,
    CG_FTYPE_MOSTLY_Q5_K_S = 16,
    CG_FTYPE_MOSTLY_Q5_K_M = 17,
    CG_FTYPE_MOSTLY_Q6_K = 18,
    CG_FTYPE_MOSTLY_BF16 = 32,
} cg_ftype;

typedef struct cg_ftype_info {
    cg_ftype ftype;
    const char *name;   // the name users type: "Q4_K_M", "F16", …
    cg_qtype base;      // the default tensor type of the mix
} cg_ftype_info;

// The supported mixes, in a stable order (i < cg_ftype_count()); NULL when out of range.
size_t cg_ftype_count(void);
const cg_ftype_info *cg_ftype_at(size_t i);
// Looks a mix up by name, case-insensitive ("q4_k_m", "BF16"); NULL when unknown.
const cg_ftype_info *cg_ftype_find(const char *name);
// The row of an ftype value; NULL when chingu does not support it.
const cg_ftype_info *cg_ftype_get(uint32_t ftype);
// Writes "Q2_K, Q3_K_S, …, F32" (every supported name) into buf (NUL-terminated, truncated to n).
void cg_ftype_list(char *buf, size_t n);

// The model facts the rules read (from the GGUF metadata).
typedef struct cg_mix_hparams {
    const char *arch;    // general.architecture; borrowed
    uint32_t n_layer;    // {arch}.block_count
    uint32_t n_expert;   // {arch}.expert_count, 0 when absent
    uint32_t n_head;     // {arch}.attention.head_count of layer 0
    uint32_t n_head_kv;  // {arch}.attention.head_count_kv of layer 0 (= n_head when absent)
} cg_mix_hparams;

// One input tensor: its name (borrowed, NUL-terminated), shape and current type.
typedef struct cg_mix_tensor {
    const char *name;
    uint32_t n_dims;     // as stored (1..4); dims ≥ n_dims must be 1
    int64_t ne[4];
    uint32_t type;
} cg_mix_tensor;

// True when the tensor may be converted at all: a matrix (at least two dims > 1, as ggml_n_dims
// counts them) whose name ends in "weight" and is not a norm, an expert router, a positional or
// token-type embedding, or one of the small special tensors llama.cpp leaves alone.
bool cg_mix_is_quantizable(const cg_mix_tensor *t);

// Orders tensor names as llama.cpp's model loader does (and so as llama-quantize writes them):
// tensors outside "blk.N." first, then by layer number N, ties by byte-wise name. strcmp-like.
int cg_mix_name_cmp(const char *a, const char *b);

// Chooses the type of each of the n tensors, which must be given in output order (the
// cg_mix_name_cmp order: the per-layer counters depend on it). out[i] receives tensor i's new
// type (its current type when it is not quantizable). `pure`: every quantizable tensor gets the
// mix's base type, with no output/embedding/layer exceptions; the block-size fallback still applies.
// Errors: CG_ERR_INVALID (bad arguments), CG_ERR_UNSUPPORTED (a row length that fits no
// fallback type, e.g. 100 columns for Q4_0: the message names the tensor, its row length and the
// type), CG_ERR_FORMAT (a MoE expert tensor whose name carries no valid "blk.N." layer).
cg_status cg_mix_choose(const cg_mix_hparams *hp, cg_ftype ftype, bool pure, const cg_mix_tensor *t,
                        size_t n, uint32_t *out, cg_err *err);

#endif
