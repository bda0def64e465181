// arch.c — the architecture table. Each row says how one GGUF architecture differs from the
// Llama block; forward.c reads only these flags. Defaults mirror llama.cpp at the reference commit.
#include <string.h>

#include "model/arch.h"

static const cg_arch_desc ARCHS[] = {
    {.name = "llama", .rope = CG_ROPE_NORM, .ffn = CG_ACT_SWIGLU, .pre_norm = true},
    {.name = "mistral", .rope = CG_ROPE_NORM, .ffn = CG_ACT_SWIGLU, .pre_norm = true},
    {.name = "qwen2", .rope = CG_ROPE_NEOX, .ffn = CG_ACT_SWIGLU, .pre_norm = true, .qkv_bias = true},
    {.name = "qwen3", .rope = CG_ROPE_NEOX, .ffn = CG_ACT_SWIGLU, .pre_norm = true, .qk_norm = true},
    {.name = "gemma2", .rope = CG_ROPE_NEOX, .ffn = CG_ACT_GEGLU, .pre_norm = true, .post_norms = true,
     .embd_scale = CG_EMBD_SCALE_SQRT_D, .attn_softcap = 50.0f, .final_softcap = 30.0f, .swa = CG_SWA_PATTERN,
     .swa_pattern = 2},
    {.name = "gemma3", .rope = CG_ROPE_NEOX, .ffn = CG_ACT_GEGLU, .pre_norm = true, .post_norms = true,
     .qk_norm = true, .embd_scale = CG_EMBD_SCALE_SQRT_D, .swa = CG_SWA_PATTERN, .swa_pattern = 6},
    {.name = "phi3", .rope = CG_ROPE_NEOX, .ffn = CG_ACT_SWIGLU, .pre_norm = true, .fused_qkv = true,
     .fused_gate_up = true},   // llama.cpp disables phi3's SWA
    {.name = "exaone", .rope = CG_ROPE_NORM, .ffn = CG_ACT_SWIGLU, .pre_norm = true},
    {.name = "exaone4", .rope = CG_ROPE_NEOX, .ffn = CG_ACT_SWIGLU, .pre_norm = false, .post_norms = true,
     .qk_norm = true, .swa = CG_SWA_PATTERN, .swa_pattern = 4, .rope_swa_only = true},
    {.name = "granite", .rope = CG_ROPE_NORM, .ffn = CG_ACT_SWIGLU, .pre_norm = true, .qscale = CG_QSCALE_KEY,
     .multipliers = true, .embd_scale = CG_EMBD_SCALE_KEY},
};

const cg_arch_desc *cg_arch_find(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++)
        if (strlen(ARCHS[i].name) == len && memcmp(ARCHS[i].name, name, len) == 0) return &ARCHS[i];
    return NULL;
}

const char *cg_arch_list(void) { return "llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3, exaone, exaone4, granite"; }
