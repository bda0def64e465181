// arch.h — architectures as data: one row of flags per GGUF `general.architecture` value.
//
// The generic block (forward.c) reads these flags; a Llama-like architecture is a new row, not new
// code. Rows are static and immutable (thread-safe).
#ifndef CG_MODEL_ARCH_H
#define CG_MODEL_ARCH_H

#include <stdbool.h>

#include "kern/kern.h"

typedef enum cg_embd_scale {
    CG_EMBD_SCALE_NONE = 0,
    CG_EMBD_SCALE_SQRT_D,   // gemma: × sqrt(n_embd)
    CG_EMBD_SCALE_KEY,      // granite: × `{arch}.embedding_scale`
} cg_embd_scale;

typedef enum cg_swa_kind {
    CG_SWA_NONE = 0,
    CG_SWA_PATTERN,   // `{arch}.attention.sliding_window` + `sliding_window_pattern` (il % p < p-1)
} cg_swa_kind;

typedef enum cg_qscale_kind {
    CG_QSCALE_HEAD_DIM = 0,   // 1/sqrt(head_dim) on q·k
    CG_QSCALE_KEY,            // `{arch}.attention.scale` when present, else 1/sqrt(head_dim) (granite)
} cg_qscale_kind;

typedef enum cg_rope_scaling { CG_ROPE_SCALING_NONE = 0, CG_ROPE_SCALING_LINEAR, CG_ROPE_SCALING_YARN } cg_rope_scaling;

typedef struct cg_arch_desc {
    const char *name;           // `general.architecture`
    cg_rope_kind rope;
    cg_act_kind ffn;
    bool qkv_bias;              // attn_{q,k,v}.bias required
    bool qk_norm;               // attn_{q,k}_norm (RMS over each head) required
    bool fused_qkv;             // attn_qkv.weight may replace attn_q/k/v
    bool fused_gate_up;         // ffn_up holds gate then up (2*n_ff rows), no ffn_gate
    bool pre_norm;              // attn_norm/ffn_norm before the branches (all but exaone4)
    bool post_norms;            // post_attention_norm / post_ffw_norm after the branches
    cg_embd_scale embd_scale;
    float attn_softcap;         // default attention soft-cap (0: none; key overrides)
    float final_softcap;        // default final-logit soft-cap (0: none; key overrides)
    cg_swa_kind swa;
    int swa_pattern;            // default pattern when the key is absent
    bool rope_swa_only;         // exaone4: with SWA, only sliding-window layers use rope
    cg_qscale_kind qscale;
    bool multipliers;           // granite: embedding/residual/attention/logit scales from keys
} cg_arch_desc;

// The row for an architecture name, or NULL when unsupported. Borrowed static data.
const cg_arch_desc *cg_arch_find(const char *name, size_t len);
// Comma-separated list of supported names (for error messages). Static.
const char *cg_arch_list(void);

#endif
