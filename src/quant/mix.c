// mix.c — per-tensor type choice for the quantization mixes (see mix.h).
//
// Each mix is one row of MIXES: its base type and, per tensor role, a rule that may raise the
// type (e.g. Q4_K_M: attn_v and ffn_down get Q6_K in the layers use_more_bits() picks). Code only
// does what a row cannot say: the order in which llama.cpp applies the rules, the output matrix,
// the GQA / MoE / Falcon / 70B special cases and the block-size fallback.
//
// Invariants: the rules read only their arguments and static tables (pure, thread-safe); the
// per-role counters (i-th attn_v, i-th ffn_down) count tensors in the order given, exactly as
// llama-quantize counts them in its tensor order, so callers pass tensors sorted by
// cg_mix_name_cmp. Behaviour that llama.cpp has only with an importance matrix, IQ formats or
// --tensor-type overrides is not modelled (chingu supports none of them).
#include "quant/mix.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEEP CG_QTYPE_COUNT   // "leave the type as it is" in a rule

typedef enum rule_kind {
    R_NONE = 0,   // no change
    R_SET,        // a
    R_MORE_BITS,  // use_more_bits(i, n) ? a : unchanged
    R_FIRST_N,    // i < k ? a : b
    R_FIRST_FRAC, // i < n/k ? a : b
    R_FRAC_MORE,  // i < n/k ? a : use_more_bits(i, n) ? b : c
} rule_kind;

typedef struct rule {
    rule_kind kind;
    int k;
    cg_qtype a, b, c;   // KEEP: unchanged
} rule;

#define SET(t) {R_SET, 0, t, KEEP, KEEP}
#define MORE_BITS(t) {R_MORE_BITS, 0, t, KEEP, KEEP}
#define FIRST_N(k, t, u) {R_FIRST_N, k, t, u, KEEP}
#define FIRST_FRAC(k, t, u) {R_FIRST_FRAC, k, t, u, KEEP}
#define FRAC_MORE(k, t, u, v) {R_FRAC_MORE, k, t, u, v}

typedef struct mix_row {
    cg_ftype_info info;
    rule attn_v;              // attn_v, attn_qkv, attn_kv_b
    cg_qtype attn_v_gqa4;     // attn_v when n_head / n_head_kv >= 4 (instead of attn_v), or KEEP
    rule ffn_down;
    rule ffn_down_falcon;
    rule attn_output;
    rule attn_output_moe8;    // models with exactly 8 experts (Mixtral-like), not Falcon
    rule attn_output_falcon;
} mix_row;

static const mix_row MIXES[] = {
    {{CG_FTYPE_MOSTLY_Q2_K, "Q2_K", CG_QTYPE_Q2_K},
     .attn_v = SET(CG_QTYPE_Q3_K), .attn_v_gqa4 = CG_QTYPE_Q4_K,
     .ffn_down = SET(CG_QTYPE_Q3_K), .ffn_down_falcon = SET(CG_QTYPE_Q3_K),
     .attn_output = SET(CG_QTYPE_Q3_K), .attn_output_moe8 = SET(CG_QTYPE_Q5_K)},
    {{CG_FTYPE_MOSTLY_Q3_K_S, "Q3_K_S", CG_QTYPE_Q3_K}, .attn_v_gqa4 = KEEP,
     .attn_output_moe8 = SET(CG_QTYPE_Q5_K)},
    {{CG_FTYPE_MOSTLY_Q3_K_M, "Q3_K_M", CG_QTYPE_Q3_K},
     .attn_v = FIRST_N(2, CG_QTYPE_Q5_K, CG_QTYPE_Q4_K), .attn_v_gqa4 = KEEP,
     .ffn_down = FIRST_FRAC(16, CG_QTYPE_Q5_K, CG_QTYPE_Q4_K),
     .ffn_down_falcon = FRAC_MORE(16, CG_QTYPE_Q5_K, CG_QTYPE_Q4_K, CG_QTYPE_Q3_K),
     .attn_output = SET(CG_QTYPE_Q4_K), .attn_output_moe8 = SET(CG_QTYPE_Q5_K)},
    {{CG_FTYPE_MOSTLY_Q3_K_L, "Q3_K_L", CG_QTYPE_Q3_K},
     .attn_v = SET(CG_QTYPE_Q5_K), .attn_v_gqa4 = KEEP,
     .ffn_down = SET(CG_QTYPE_Q5_K), .ffn_down_falcon = SET(CG_QTYPE_Q4_K),
     .attn_output = SET(CG_QTYPE_Q5_K), .attn_output_falcon = SET(CG_QTYPE_Q4_K)},
    {{CG_FTYPE_MOSTLY_Q4_K_S, "Q4_K_S", CG_QTYPE_Q4_K},
     .attn_v = FIRST_N(4, CG_QTYPE_Q5_K, KEEP), .attn_v_gqa4 = KEEP,
     .ffn_down = FIRST_FRAC(8, CG_QTYPE_Q5_K, KEEP),
     .attn_output_moe8 = SET(CG_QTYPE_Q5_K)},
    {{CG_FTYPE_MOSTLY_Q4_K_M, "Q4_K_M", CG_QTYPE_Q4_K},
     .attn_v = MORE_BITS(CG_QTYPE_Q6_K), .attn_v_gqa4 = KEEP,
     .ffn_down = MORE_BITS(CG_QTYPE_Q6_K),
     .ffn_down_falcon = FRAC_MORE(16, CG_QTYPE_Q6_K, CG_QTYPE_Q5_K, CG_QTYPE_Q4_K),
     .attn_output_moe8 = SET(CG_QTYPE_Q5_K)},
    {{CG_FTYPE_MOSTLY_Q5_K_S, "Q5_K_S", CG_QTYPE_Q5_K}, .attn_v_gqa4 = KEEP},
    {{CG_FTYPE_MOSTLY_Q5_K_M, "Q5_K_M", CG_QTYPE_Q5_K},
     .attn_v = MORE_BITS(CG_QTYPE_Q6_K), .attn_v_gqa4 = KEEP,
     .ffn_down = MORE_BITS(CG_QTYPE_Q6_K), .ffn_down_falcon = MORE_BITS(CG_QTYPE_Q6_K)},
    {{CG_FTYPE_MOSTLY_Q6_K, "Q6_K", CG_QTYPE_Q6_K}, .attn_v_gqa4 = KEEP},
    {{CG_FTYPE_MOSTLY_Q8_0, "Q8_0", CG_QTYPE_Q8_0}, .attn_v_gqa4 = KEEP},
    {{CG_FTYPE_MOSTLY_Q4_0, "Q4_0", CG_QTYPE_Q4_0}, .attn_v_gqa4 = KEEP},
    {{CG_FTYPE_MOSTLY_Q4_1, "Q4_1", CG_QTYPE_Q4_1}, .attn_v_gqa4 = KEEP},
    {{CG_FTYPE_MOSTLY_Q5_0, "Q5_0", CG_QTYPE_Q5_0}, .attn_v_gqa4 = KEEP},
    {{CG_FTYPE_MOSTLY_Q5_1, "Q5_1", CG_QTYPE_Q5_1}, .attn_v_gqa4 = KEEP},
    {{CG_FTYPE_MOSTLY_F16, "F16", CG_QTYPE_F16}, .attn_v_gqa4 = KEEP},
    {{CG_FTYPE_MOSTLY_BF16, "BF16", CG_QTYPE_BF16}, .attn_v_gqa4 = KEEP},
    {{CG_FTYPE_ALL_F32, "F32", CG_QTYPE_F32}, .attn_v_gqa4 = KEEP},
};
#define N_MIXES (sizeof MIXES / sizeof MIXES[0])

// Names llama-quantize also accepts for a mix.
static const struct {
    const char *alias;
    cg_ftype ftype;
} ALIASES[] = {
    {"Q3_K", CG_FTYPE_MOSTLY_Q3_K_M},
    {"Q4_K", CG_FTYPE_MOSTLY_Q4_K_M},
    {"Q5_K", CG_FTYPE_MOSTLY_Q5_K_M},
};

// Architectures whose loader labels a model "70B" (which raises attn_v), by layer count.
static const struct {
    const char *arch;
    uint32_t n_layer;
    bool needs_gqa;   // llama: 80 layers without GQA is the 65B model
} ARCH_70B[] = {
    {"llama", 80, true},
    {"qwen2", 80, false},
    {"deci", 80, false},
    {"jais2", 68, false},
};

// Name fragments of tensors llama-quantize never converts (besides norms and non-"weight" names).
static const char *const NEVER_QUANTIZED[] = {
    "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj",
    "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight",
    "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
    "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
    "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
    "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
    "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.", "sam.net_", ".rel_pos",
    ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
};

// ---- mixes by name --------------------------------------------------------------------------

size_t cg_ftype_count(void) { return N_MIXES; }

const cg_ftype_info *cg_ftype_at(size_t i) { return i < N_MIXES ? &MIXES[i].info : NULL; }

static const mix_row *row_of(uint32_t ftype) {
    for (size_t i = 0; i < N_MIXES; i++)
        if ((uint32_t)MIXES[i].info.ftype == ftype) return &MIXES[i];
    return NULL;
}

const cg_ftype_info *cg_ftype_get(uint32_t ftype) {
    const mix_row *r = row_of(ftype);
    return r ? &r->info : NULL;
}

const cg_ftype_info *cg_ftype_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_MIXES; i++)
        if (strcasecmp(MIXES[i].info.name, name) == 0) return &MIXES[i].info;
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
        if (strcasecmp(ALIASES[i].alias, name) == 0) return cg_ftype_get(ALIASES[i].ftype);
    return NULL;
}

void cg_ftype_list(char *buf, size_t n) {
    if (!buf || n == 0) return;
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_MIXES && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", MIXES[i].info.name);
        if (w < 0) break;
        used += (size_t)w;
    }
}

// ---- tensor names ---------------------------------------------------------------------------

// The layer number of "blk.N.…" as llama.cpp's sscanf("blk.%d.") reads it (leading blanks and a
// sign allowed, clamped to int), or -1 when the name has none.
static int layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    const char *p = name + 4;
    while (isspace((unsigned char)*p)) p++;
    const char *d = p + (*p == '+' || *p == '-');
    if (!isdigit((unsigned char)*d)) return -1;
    errno = 0;
    long v = strtol(p, NULL, 10);
    if (v > INT_MAX) return INT_MAX;
    if (v < INT_MIN) return INT_MIN;
    return (int)v;
}

int cg_mix_name_cmp(const char *a, const char *b) {
    int la = layer_of(a), lb = layer_of(b);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(a, b);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool contains(const char *s, const char *frag) { return strstr(s, frag) != NULL; }

// ggml_n_dims: the number of dimensions up to the last one larger than 1.
static int n_dims_used(const cg_mix_tensor *t) {
    for (int i = 3; i >= 1; i--)
        if ((uint32_t)i < t->n_dims && t->ne[i] > 1) return i + 1;
    return 1;
}

bool cg_mix_is_quantizable(const cg_mix_tensor *t) {
    if (!t || !t->name || n_dims_used(t) < 2) return false;
    const char *name = t->name;
    if (!ends_with(name, "weight") || contains(name, "_norm.weight")) return false;
    // llama.cpp compares with the architecture's own names for these two; every architecture
    // that has them uses these spellings.
    if (!strcmp(name, "position_embd.weight") || !strcmp(name, "token_types.weight")) return false;
    for (size_t i = 0; i < sizeof NEVER_QUANTIZED / sizeof NEVER_QUANTIZED[0]; i++)
        if (contains(name, NEVER_QUANTIZED[i])) return false;
    return true;
}

typedef enum role {
    ROLE_TOKEN_EMBD,
    ROLE_ATTN_Q,
    ROLE_ATTN_V,   // attn_v, attn_qkv, attn_kv_b: the "more sensitive" value projections
    ROLE_ATTN_K,
    ROLE_ATTN_OUTPUT,
    ROLE_FFN_UP,
    ROLE_FFN_GATE,
    ROLE_FFN_DOWN,
    ROLE_OUTPUT,
    ROLE_OTHER,
} role;

// llama.cpp's tensor categories, tested in its order (first match wins).
static role role_of(const char *name) {
    if (!strcmp(name, "output.weight")) return ROLE_OUTPUT;
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight")) return ROLE_TOKEN_EMBD;
    if (contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight") || contains(name, "attn_v.weight"))
        return ROLE_ATTN_V;
    if (contains(name, "attn_k.weight")) return ROLE_ATTN_K;
    if (contains(name, "attn_q.weight")) return ROLE_ATTN_Q;
    if (contains(name, "attn_output.weight")) return ROLE_ATTN_OUTPUT;
    if (contains(name, "ffn_up")) return ROLE_FFN_UP;
    if (contains(name, "ffn_gate")) return ROLE_FFN_GATE;
    if (contains(name, "ffn_down")) return ROLE_FFN_DOWN;
    return ROLE_OTHER;
}

// ---- the rules ------------------------------------------------------------------------------

typedef struct mix_state {
    const cg_mix_hparams *hp;
    const mix_row *mix;
    bool is_falcon, is_70b, tied_embd;
    int n_gqa;
    int n_attn_v, i_attn_v;
    int n_ffn_down, i_ffn_down, i_ffn_gate, i_ffn_up;
} mix_state;

static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static cg_qtype pick(cg_qtype t, cg_qtype cur) { return t == KEEP ? cur : t; }

static cg_qtype apply(const rule *r, int i, int n, cg_qtype cur) {
    switch (r->kind) {
    case R_NONE: return cur;
    case R_SET: return pick(r->a, cur);
    case R_MORE_BITS: return use_more_bits(i, n) ? pick(r->a, cur) : cur;
    case R_FIRST_N: return pick(i < r->k ? r->a : r->b, cur);
    case R_FIRST_FRAC: return pick(i < n / r->k ? r->a : r->b, cur);
    case R_FRAC_MORE: return pick(i < n / r->k ? r->a : use_more_bits(i, n) ? r->b : r->c, cur);
    }
    return cur;
}

// The layer a per-layer rule looks at: the running count of the role, or, in MoE models (whose
// expert tensors are not one per layer in order), the number in the tensor's name.
static cg_status layer_info(const mix_state *s, int counter, const char *name, int *i_layer, cg_err *err) {
    *i_layer = counter;
    if (s->hp->n_expert <= 1) return CG_OK;
    int l = layer_of(name);
    if (l < 0 || (uint32_t)l >= s->hp->n_layer)
        return cg_err_set(err, CG_ERR_FORMAT,
                          "quantize: MoE tensor '%s' names no layer in 0..%u (expected \"blk.N.…\")", name,
                          s->hp->n_layer ? s->hp->n_layer - 1 : 0);
    *i_layer = l;
    return CG_OK;
}

// llama_tensor_get_type_impl for one quantizable tensor of a quantized mix.
static cg_status choose_one(mix_state *s, const cg_mix_tensor *t, cg_qtype *type, cg_err *err) {
    const mix_row *m = s->mix;
    const cg_mix_hparams *hp = s->hp;
    cg_qtype cur = m->info.base;
    role r = role_of(t->name);
    cg_status st;
    int i_layer;

    if (r == ROLE_OUTPUT || (s->tied_embd && r == ROLE_TOKEN_EMBD)) {
        const cg_qtype_traits *tr = cg_qtype_get(cur);
        if (s->is_falcon || t->ne[0] % tr->blck_size != 0)
            cur = CG_QTYPE_Q8_0;
        else if (cur != CG_QTYPE_Q8_0)
            cur = CG_QTYPE_Q6_K;
    } else if (r == ROLE_TOKEN_EMBD) {
        // no rule for the mixes chingu offers (only IQ and ternary mixes change it)
    } else if (r == ROLE_ATTN_V) {
        if (m->attn_v_gqa4 != KEEP)
            cur = s->n_gqa >= 4 ? m->attn_v_gqa4 : apply(&m->attn_v, s->i_attn_v, s->n_attn_v, cur);
        else
            cur = apply(&m->attn_v, s->i_attn_v, s->n_attn_v, cur);
        // The 70B models share each attn_v among 8 heads: the tensor is small, more bits are cheap.
        if (s->is_70b && (cur == CG_QTYPE_Q3_K || cur == CG_QTYPE_Q4_K)) cur = CG_QTYPE_Q5_K;
        if (hp->n_expert == 8) cur = CG_QTYPE_Q8_0;
        s->i_attn_v++;
    } else if (r == ROLE_ATTN_K) {
        if (hp->n_expert == 8) cur = CG_QTYPE_Q8_0;
    } else if (r == ROLE_FFN_DOWN) {
        if ((st = layer_info(s, s->i_ffn_down, t->name, &i_layer, err))) return st;
        cur = apply(s->is_falcon ? &m->ffn_down_falcon : &m->ffn_down, i_layer, s->n_ffn_down, cur);
        s->i_ffn_down++;
    } else if (r == ROLE_ATTN_OUTPUT) {
        const rule *ru = s->is_falcon ? &m->attn_output_falcon : hp->n_expert == 8 ? &m->attn_output_moe8 : &m->attn_output;
        cur = apply(ru, 0, 0, cur);
    } else if (r == ROLE_FFN_GATE) {
        // only IQ3_XS has a rule; the layer check (and its error) still happens, as in llama.cpp
        if ((st = layer_info(s, s->i_ffn_gate, t->name, &i_layer, err))) return st;
        s->i_ffn_gate++;
    } else if (r == ROLE_FFN_UP) {
        if ((st = layer_info(s, s->i_ffn_up, t->name, &i_layer, err))) return st;
        s->i_ffn_up++;
    }
    *type = cur;
    return CG_OK;
}

// A type whose block fits rows of ncols elements: `want`, or llama.cpp's fallback for it.
static cg_status fallback(const cg_mix_tensor *t, cg_qtype want, cg_qtype *out, cg_err *err) {
    const cg_qtype_traits *tr = cg_qtype_get(want);
    int64_t ncols = t->ne[0];
    if (ncols % tr->blck_size == 0) {
        *out = want;
        return CG_OK;
    }
    cg_qtype fb;
    switch (want) {
    case CG_QTYPE_IQ1_S: case CG_QTYPE_IQ1_M: case CG_QTYPE_IQ2_XXS: case CG_QTYPE_IQ2_XS:
    case CG_QTYPE_IQ2_S: case CG_QTYPE_IQ3_XXS: case CG_QTYPE_IQ3_S: case CG_QTYPE_IQ4_XS:
        fb = CG_QTYPE_IQ4_NL; break;
    case CG_QTYPE_Q2_K: case CG_QTYPE_Q3_K: case CG_QTYPE_TQ1_0: case CG_QTYPE_TQ2_0:
        fb = CG_QTYPE_Q4_0; break;
    case CG_QTYPE_Q4_K: fb = CG_QTYPE_Q5_0; break;
    case CG_QTYPE_Q5_K: fb = CG_QTYPE_Q5_1; break;
    case CG_QTYPE_Q6_K: fb = CG_QTYPE_Q8_0; break;
    default:
        return cg_err_set(err, CG_ERR_UNSUPPORTED,
                          "quantize: tensor '%s' has rows of %lld elements, not a multiple of %s's block size %lld, "
                          "and %s has no fallback type (choose F16, BF16 or a K mix)",
                          t->name, (long long)ncols, tr->name, (long long)tr->blck_size, tr->name);
    }
    // Still no fit (rows not a multiple of 32): llama.cpp keeps such a tensor in F16.
    *out = ncols % cg_qtype_get(fb)->blck_size == 0 ? fb : CG_QTYPE_F16;
    return CG_OK;
}

static bool is_70b(const cg_mix_hparams *hp) {
    for (size_t i = 0; i < sizeof ARCH_70B / sizeof ARCH_70B[0]; i++)
        if (!strcmp(hp->arch, ARCH_70B[i].arch) && hp->n_layer == ARCH_70B[i].n_layer)
            return !ARCH_70B[i].needs_gqa || hp->n_head != hp->n_head_kv;
    return false;
}

cg_status cg_mix_choose(const cg_mix_hparams *hp, cg_ftype ftype, bool pure, const cg_mix_tensor *t, size_t n,
                        uint32_t *out, cg_err *err) {
    const mix_row *m = row_of((uint32_t)ftype);
    if (!hp || !hp->arch || (n && (!t || !out)))
        return cg_err_set(err, CG_ERR_INVALID, "quantize: missing model parameters or tensor list");
    if (!m) return cg_err_set(err, CG_ERR_INVALID, "quantize: unsupported file type %d", (int)ftype);
    if (n > INT_MAX) return cg_err_set(err, CG_ERR_LIMIT, "quantize: %zu tensors is too many", n);

    mix_state s = {
        .hp = hp, .mix = m, .is_falcon = !strcmp(hp->arch, "falcon"), .is_70b = is_70b(hp), .tied_embd = true,
        .n_gqa = hp->n_head_kv ? (int)(hp->n_head / hp->n_head_kv) : 0,
        .n_ffn_down = hp->n_layer > INT_MAX ? INT_MAX : (int)hp->n_layer,
    };
    for (size_t i = 0; i < n; i++) {
        if (!t[i].name) return cg_err_set(err, CG_ERR_INVALID, "quantize: tensor %zu has no name", i);
        role r = role_of(t[i].name);
        if (r == ROLE_ATTN_V) s.n_attn_v++;
        if (r == ROLE_OUTPUT) s.tied_embd = false;
    }

    const cg_qtype_traits *base = cg_qtype_get(m->info.base);
    for (size_t i = 0; i < n; i++) {
        if (!cg_mix_is_quantizable(&t[i])) {
            out[i] = t[i].type;
            continue;
        }
        cg_qtype ty = m->info.base;
        if (base->is_quantized) {
            cg_status st;
            if (!pure && (st = choose_one(&s, &t[i], &ty, err))) return st;
            if ((st = fallback(&t[i], ty, &ty, err))) return st;
        }
        out[i] = ty;
    }
    return CG_OK;
}
