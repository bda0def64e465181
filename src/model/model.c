// model.c — loading: hyper-parameters from `{arch}.*` keys and tensors bound by name.
//
// Every tensor view points into the gguf mapping owned by the model (m->file). The loader checks
// each bound tensor's shape against the hyper-parameters and that a reference kernel exists for its
// type, so the forward pass never meets a tensor it cannot handle. Then, on AVX2, the eligible Q4_0,
// Q5_0, Q8_0, Q4_K and Q6_K matmul weights are repacked into one owned allocation (m->repacked;
// kern/repack.h) and their views point there (tok_embd never: rows are gathered from it; a tied
// output costs a second copy of its bytes, see repack_weights). Defaults follow llama.cpp (rope base
// 10000, head_dim = n_embd / n_head, n_head_kv = n_head, n_rot = head_dim, …).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/mmap.h"
#include "base/num.h"
#include "kern/cpu.h"
#include "kern/repack.h"
#include "model/model_impl.h"
#include "quant/quant.h"

// ---- keys ---------------------------------------------------------------------------------------

static const char *key(cg_model *m, const char *suffix) {
    snprintf(m->keybuf, sizeof m->keybuf, "%s.%s", m->arch->name, suffix);
    return m->keybuf;
}

// Reads an integer key into *out; absent keys keep *out (the default) unless required.
static cg_status get_int(cg_model *m, const char *suffix, bool required, int64_t lo, int64_t hi, int64_t *out,
                         cg_err *err) {
    const char *k = key(m, suffix);
    const cg_gguf_kv *kv = cg_gguf_find(m->file, k);
    if (!kv) {
        if (required) return cg_err_set(err, CG_ERR_NOT_FOUND, "model: required key '%s' is missing", k);
        return CG_OK;
    }
    if (kv->type == CG_GGUF_TYPE_ARRAY)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "model: key '%s' is a per-layer array; only scalars are supported",
                          k);
    int64_t v;
    cg_status st = cg_gguf_get_int(m->file, k, &v, err);
    if (st) return st;
    if (v < lo || v > hi)
        return cg_err_set(err, CG_ERR_FORMAT, "model: key '%s' = %lld is out of range %lld..%lld", k, (long long)v,
                          (long long)lo, (long long)hi);
    *out = v;
    return CG_OK;
}

static cg_status get_float(cg_model *m, const char *suffix, bool required, float *out, cg_err *err) {
    const char *k = key(m, suffix);
    if (!cg_gguf_find(m->file, k)) {
        if (required) return cg_err_set(err, CG_ERR_NOT_FOUND, "model: required key '%s' is missing", k);
        return CG_OK;
    }
    double v;
    cg_status st = cg_gguf_get_real(m->file, k, &v, err);
    if (st) return st;
    if (!isfinite(v)) return cg_err_set(err, CG_ERR_FORMAT, "model: key '%s' is not a finite number", k);
    *out = (float)v;
    return CG_OK;
}

static cg_status bind_hparams(cg_model *m, cg_err *err) {
    cg_status st;
    cg_hparams *h = &m->hp;
    const int64_t BIG = (int64_t)1 << 30;
    if ((st = get_int(m, "block_count", true, 1, CG_MODEL_MAX_LAYERS, &h->n_layer, err))) return st;
    if ((st = get_int(m, "embedding_length", true, 1, 1 << 20, &h->n_embd, err))) return st;
    if ((st = get_int(m, "feed_forward_length", true, 1, 1 << 22, &h->n_ff, err))) return st;
    if ((st = get_int(m, "attention.head_count", true, 1, 1 << 16, &h->n_head, err))) return st;
    h->n_head_kv = h->n_head;
    if ((st = get_int(m, "attention.head_count_kv", false, 1, h->n_head, &h->n_head_kv, err))) return st;
    if (h->n_head % h->n_head_kv)
        return cg_err_set(err, CG_ERR_FORMAT, "model: head_count %lld is not a multiple of head_count_kv %lld",
                          (long long)h->n_head, (long long)h->n_head_kv);
    h->n_ctx_train = 2048;
    if ((st = get_int(m, "context_length", false, 1, BIG, &h->n_ctx_train, err))) return st;
    h->head_dim = h->n_embd / h->n_head;
    if ((st = get_int(m, "attention.key_length", false, 1, 1024, &h->head_dim, err))) return st;
    h->head_dim_v = h->head_dim;
    if ((st = get_int(m, "attention.value_length", false, 1, 1024, &h->head_dim_v, err))) return st;
    if (h->head_dim < 1 || h->head_dim > 1024)
        return cg_err_set(err, CG_ERR_FORMAT, "model: head dimension %lld out of range 1..1024", (long long)h->head_dim);
    int64_t n_rot = h->head_dim;
    if ((st = get_int(m, "rope.dimension_count", false, 0, h->head_dim, &n_rot, err))) return st;
    if (n_rot % 2) return cg_err_set(err, CG_ERR_FORMAT, "model: %s = %lld is odd", key(m, "rope.dimension_count"),
                                     (long long)n_rot);
    h->n_rot = (int)n_rot;
    h->norm_eps = 1e-5f;
    if ((st = get_float(m, "attention.layer_norm_rms_epsilon", true, &h->norm_eps, err))) return st;
    h->rope_base = 10000.0f;
    if ((st = get_float(m, "rope.freq_base", false, &h->rope_base, err))) return st;
    h->rope_base_swa = h->rope_base;
    if ((st = get_float(m, "rope.freq_base_swa", false, &h->rope_base_swa, err))) return st;
    if (!(h->rope_base > 0) || !(h->rope_base_swa > 0))
        return cg_err_set(err, CG_ERR_FORMAT, "model: rope base %g / %g must be positive", h->rope_base, h->rope_base_swa);

    // Rope scaling: `rope.scaling.type` (none / linear / yarn), factor, or the older `rope.scale_linear`.
    h->rope_freq_scale = 1.0f;
    h->rope_scaling = CG_ROPE_SCALING_NONE;
    float factor = 0.0f;
    if ((st = get_float(m, "rope.scale_linear", false, &factor, err))) return st;
    if ((st = get_float(m, "rope.scaling.factor", false, &factor, err))) return st;
    const cg_gguf_kv *stype = cg_gguf_find(m->file, key(m, "rope.scaling.type"));
    if (stype) {
        cg_gguf_str s = cg_gguf_kv_str(stype);
        if (s.n == 4 && !memcmp(s.p, "none", 4)) h->rope_scaling = CG_ROPE_SCALING_NONE;
        else if (s.n == 6 && !memcmp(s.p, "linear", 6)) h->rope_scaling = CG_ROPE_SCALING_LINEAR;
        else if (s.n == 4 && !memcmp(s.p, "yarn", 4)) h->rope_scaling = CG_ROPE_SCALING_YARN;
        else
            return cg_err_set(err, CG_ERR_UNSUPPORTED, "model: %s = '%.*s' is not supported (none, linear, yarn)",
                              key(m, "rope.scaling.type"), (int)(s.n > 64 ? 64 : s.n), s.p ? s.p : "");
    } else if (factor != 0.0f && factor != 1.0f) {
        h->rope_scaling = CG_ROPE_SCALING_LINEAR;
    }
    if (h->rope_scaling != CG_ROPE_SCALING_NONE && factor > 0.0f) h->rope_freq_scale = 1.0f / factor;
    h->n_ctx_orig = h->n_ctx_train;
    if ((st = get_int(m, "rope.scaling.original_context_length", false, 1, BIG, &h->n_ctx_orig, err))) return st;
    h->yarn_ext_factor = h->rope_scaling == CG_ROPE_SCALING_YARN ? 1.0f : 0.0f;
    h->yarn_attn_factor = 1.0f;
    h->yarn_beta_fast = 32.0f;
    h->yarn_beta_slow = 1.0f;
    if ((st = get_float(m, "rope.scaling.yarn_beta_fast", false, &h->yarn_beta_fast, err))) return st;
    if ((st = get_float(m, "rope.scaling.yarn_beta_slow", false, &h->yarn_beta_slow, err))) return st;

    // Sliding window, soft-capping, multipliers.
    h->n_swa = 0;
    h->swa_pattern = m->arch->swa_pattern;
    if (m->arch->swa == CG_SWA_PATTERN) {
        int64_t v = 0, pat = h->swa_pattern;
        if ((st = get_int(m, "attention.sliding_window", false, 0, BIG, &v, err))) return st;
        if ((st = get_int(m, "attention.sliding_window_pattern", false, 0, CG_MODEL_MAX_LAYERS, &pat, err))) return st;
        h->n_swa = (int32_t)v;
        h->swa_pattern = (int)pat;
    }
    h->attn_softcap = m->arch->attn_softcap;
    h->final_softcap = m->arch->final_softcap;
    if ((st = get_float(m, "attn_logit_softcapping", false, &h->attn_softcap, err))) return st;
    if ((st = get_float(m, "final_logit_softcapping", false, &h->final_softcap, err))) return st;
    h->embd_scale = 1.0f;
    if (m->arch->embd_scale == CG_EMBD_SCALE_SQRT_D) h->embd_scale = sqrtf((float)h->n_embd);
    h->residual_scale = 1.0f;
    h->logit_scale = 1.0f;
    h->attn_scale = 1.0f / sqrtf((float)h->head_dim);
    if (m->arch->multipliers) {
        if ((st = get_float(m, "embedding_scale", false, &h->embd_scale, err))) return st;
        if ((st = get_float(m, "residual_scale", false, &h->residual_scale, err))) return st;
        if ((st = get_float(m, "logit_scale", false, &h->logit_scale, err))) return st;
        if (h->logit_scale == 0.0f) return cg_err_set(err, CG_ERR_FORMAT, "model: %s is 0", key(m, "logit_scale"));
    }
    int64_t pooling = CG_POOLING_MEAN;   // decoder models have no key; llama.cpp's --pooling mean
    if ((st = get_int(m, "pooling_type", false, CG_POOLING_NONE, CG_POOLING_RANK, &pooling, err))) return st;
    h->pooling = (cg_pooling)pooling;
    if (m->arch->qscale == CG_QSCALE_KEY) {
        float s = 0.0f;
        if ((st = get_float(m, "attention.scale", false, &s, err))) return st;
        if (s != 0.0f) h->attn_scale = s;
    }
    return CG_OK;
}

// ---- tensors ------------------------------------------------------------------------------------

// Binds `name` with the expected dims (ne0, ne1; ne1 = 0 for a vector). Absent + !required: view
// stays zeroed. Vectors (norms, biases, rope factors) must be F32.
static cg_status bind(cg_model *m, const char *name, int64_t ne0, int64_t ne1, bool required, cg_tensor *out,
                      cg_err *err) {
    memset(out, 0, sizeof *out);
    const cg_gguf_tensor *t = cg_gguf_find_tensor(m->file, name);
    if (!t) {
        if (!required) return CG_OK;
        return cg_err_set(err, CG_ERR_NOT_FOUND, "model: %s: required tensor '%s' is missing", m->arch->name, name);
    }
    int64_t want1 = ne1 ? ne1 : 1;
    if (t->ne[0] != ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1)
        return cg_err_set(err, CG_ERR_FORMAT,
                          "model: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                          (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                          (long long)ne0, (long long)want1);
    const cg_qtype_traits *tr = cg_qtype_get(t->type);
    if (!tr) return cg_err_set(err, CG_ERR_UNSUPPORTED, "model: tensor '%s' has unknown type %u", name, t->type);
    if (!ne1 && t->type != CG_QTYPE_F32)
        return cg_err_set(err, CG_ERR_FORMAT, "model: tensor '%s' is %s; norm weights and biases must be f32", name,
                          tr->name);
    if (ne1) {
        const cg_qtype_traits *vt = cg_qtype_get(tr->vec_dot_type);
        if (!tr->vec_dot || !tr->to_f32 || !vt || !vt->from_f32_act)
            return cg_err_set(err, CG_ERR_UNSUPPORTED, "model: tensor '%s' has type %s, which has no reference kernel",
                              name, tr->name);
    }
    uint64_t rb;
    cg_status st = cg_qtype_row_size(t->type, (uint64_t)t->ne[0], &rb, err);
    if (st) return cg_err_wrap(err, "model: tensor '%s'", name);
    out->name = t->name;
    out->type = t->type;
    memcpy(out->ne, t->ne, sizeof out->ne);
    out->row_bytes = rb;
    out->data = t->data;
    return CG_OK;
}

static cg_status bind_vec(cg_model *m, const char *name, int64_t n, bool required, const float **out, cg_err *err) {
    cg_tensor t;
    cg_status st = bind(m, name, n, 0, required, &t, err);
    *out = t.data;
    return st;
}

static void fill_rope(const cg_model *m, bool is_swa, cg_rope_params *rp) {
    const cg_hparams *h = &m->hp;
    memset(rp, 0, sizeof *rp);
    rp->kind = m->arch->rope;
    if (m->arch->rope_swa_only && h->n_swa > 0 && !is_swa) rp->kind = CG_ROPE_NONE;
    rp->n_rot = h->n_rot;
    rp->freq_base = is_swa ? h->rope_base_swa : h->rope_base;
    rp->freq_scale = h->rope_freq_scale;
    rp->ext_factor = h->yarn_ext_factor;
    rp->attn_factor = h->yarn_attn_factor;
    rp->freq_factors = m->rope_freqs;
    // ggml_rope_yarn_corr_dims
    if (rp->n_rot > 0) {
        float dims[2];
        float betas[2] = {h->yarn_beta_fast, h->yarn_beta_slow};
        for (int i = 0; i < 2; i++)
            dims[i] = (float)rp->n_rot * logf((float)h->n_ctx_orig / (betas[i] * 2.0f * 3.14159265358979323846f)) /
                      (2.0f * logf(rp->freq_base));
        rp->corr_dims[0] = fmaxf(0.0f, floorf(dims[0]));
        rp->corr_dims[1] = fminf((float)(rp->n_rot - 1), ceilf(dims[1]));
    }
}

static cg_status bind_tensors(cg_model *m, cg_err *err) {
    cg_status st;
    cg_hparams *h = &m->hp;
    char name[96];
    const cg_gguf_tensor *te = cg_gguf_find_tensor(m->file, "token_embd.weight");
    if (!te) return cg_err_set(err, CG_ERR_NOT_FOUND, "model: required tensor 'token_embd.weight' is missing");
    h->n_vocab = te->ne[1];
    int64_t kv_vocab = h->n_vocab;
    if ((st = get_int(m, "vocab_size", false, 1, (int64_t)1 << 31, &kv_vocab, err))) return st;
    if (kv_vocab != h->n_vocab)
        return cg_err_set(err, CG_ERR_FORMAT, "model: %s = %lld but token_embd.weight has %lld rows",
                          key(m, "vocab_size"), (long long)kv_vocab, (long long)h->n_vocab);
    if ((st = bind(m, "token_embd.weight", h->n_embd, h->n_vocab, true, &m->tok_embd, err))) return st;
    if ((st = bind_vec(m, "output_norm.weight", h->n_embd, true, &m->out_norm, err))) return st;
    if ((st = bind(m, "output.weight", h->n_embd, h->n_vocab, false, &m->output, err))) return st;
    if (!m->output.data) m->output = m->tok_embd;   // tied embeddings
    if ((st = bind_vec(m, "rope_freqs.weight", h->n_rot / 2, false, &m->rope_freqs, err))) return st;

    int64_t q_dim = h->n_head * h->head_dim, k_dim = h->n_head_kv * h->head_dim, v_dim = h->n_head_kv * h->head_dim_v;
    const cg_arch_desc *a = m->arch;
    for (int il = 0; il < h->n_layer; il++) {
        cg_layer *L = &m->layers[il];
#define NM(fmt) (snprintf(name, sizeof name, "blk.%d." fmt, il), name)
        if (a->pre_norm) {
            if ((st = bind_vec(m, NM("attn_norm.weight"), h->n_embd, true, &L->attn_norm, err))) return st;
            if ((st = bind_vec(m, NM("ffn_norm.weight"), h->n_embd, true, &L->ffn_norm, err))) return st;
        }
        if (a->post_norms) {
            if ((st = bind_vec(m, NM("post_attention_norm.weight"), h->n_embd, true, &L->attn_post_norm, err))) return st;
            if ((st = bind_vec(m, NM("post_ffw_norm.weight"), h->n_embd, true, &L->ffn_post_norm, err))) return st;
        }
        bool fused = a->fused_qkv && cg_gguf_find_tensor(m->file, NM("attn_qkv.weight"));
        if (fused) {
            if ((st = bind(m, NM("attn_qkv.weight"), h->n_embd, q_dim + k_dim + v_dim, true, &L->wqkv, err))) return st;
        } else {
            if ((st = bind(m, NM("attn_q.weight"), h->n_embd, q_dim, true, &L->wq, err))) return st;
            if ((st = bind(m, NM("attn_k.weight"), h->n_embd, k_dim, true, &L->wk, err))) return st;
            if ((st = bind(m, NM("attn_v.weight"), h->n_embd, v_dim, true, &L->wv, err))) return st;
        }
        if ((st = bind(m, NM("attn_output.weight"), q_dim / h->head_dim * h->head_dim_v, h->n_embd, true, &L->wo, err)))
            return st;
        // Biases: required where the arch has them, accepted (optional) everywhere else.
        if ((st = bind_vec(m, NM("attn_q.bias"), q_dim, a->qkv_bias, &L->bq, err))) return st;
        if ((st = bind_vec(m, NM("attn_k.bias"), k_dim, a->qkv_bias, &L->bk, err))) return st;
        if ((st = bind_vec(m, NM("attn_v.bias"), v_dim, a->qkv_bias, &L->bv, err))) return st;
        if ((st = bind_vec(m, NM("attn_output.bias"), h->n_embd, false, &L->bo, err))) return st;
        if (a->qk_norm) {
            if ((st = bind_vec(m, NM("attn_q_norm.weight"), h->head_dim, true, &L->q_norm, err))) return st;
            if ((st = bind_vec(m, NM("attn_k_norm.weight"), h->head_dim, true, &L->k_norm, err))) return st;
        }
        if (a->fused_gate_up && !cg_gguf_find_tensor(m->file, NM("ffn_gate.weight"))) {
            if ((st = bind(m, NM("ffn_up.weight"), h->n_embd, 2 * h->n_ff, true, &L->ffn_up, err))) return st;
        } else {
            if ((st = bind(m, NM("ffn_gate.weight"), h->n_embd, h->n_ff, true, &L->ffn_gate, err))) return st;
            if ((st = bind(m, NM("ffn_up.weight"), h->n_embd, h->n_ff, true, &L->ffn_up, err))) return st;
        }
        if ((st = bind(m, NM("ffn_down.weight"), h->n_ff, h->n_embd, true, &L->ffn_down, err))) return st;
#undef NM
        int p = h->swa_pattern;
        L->is_swa = h->n_swa > 0 && (p == 0 || il % p < p - 1);
        fill_rope(m, L->is_swa, &L->rope);
    }
    return CG_OK;
}

// ---- repacking --------------------------------------------------------------------------------------

// The matmul weights of the model (the views the forward pass hands to kern matmul), at most cap of
// them into out; returns how many. tok_embd is not among them (rows are gathered from it); a tied output is a separate view of the
// same bytes and is repacked as its own copy, like llama.cpp does.
static void add_weight(cg_tensor *t, cg_tensor **out, int *n, int cap) {
    if (t->data && *n < cap) out[(*n)++] = t;
}

static int matmul_weights(cg_model *m, cg_tensor **out, int cap) {
    int n = 0;
    for (int64_t il = 0; il < m->hp.n_layer; il++) {
        cg_layer *L = &m->layers[il];
        cg_tensor *ts[] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->ffn_gate, &L->ffn_up, &L->ffn_down};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) add_weight(ts[i], out, &n, cap);
    }
    add_weight(&m->output, out, &n, cap);
    return n;
}

// The stored bytes of a repacked tensor are not read again: let the kernel drop their pages from
// the process (the whole pages inside [p, p+n)). The model's file is mapped read-only and private
// (cg_gguf_open), so a page touched later is read back from the file — never lost.
static void drop_pages(const void *p, size_t n) {
    const long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0) return;
    const uintptr_t a = (uintptr_t)p, page = (uintptr_t)ps;
    const uintptr_t lo = (a + page - 1) / page * page, hi = (a + n) / page * page;
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

// Which repacked layout weight t gets: Q4_0 x8 / Q4_K x8 / Q6_K x8 for every eligible Q4_0 / Q4_K /
// Q6_K matmul weight (llama.cpp repacks Q4_0 and Q4_K on AVX2, and its Q4_K order is the q4_K_8x8
// one; the gen/ references follow the per-row order for Q6_K as well, and the one exception found,
// gemma3 layer 0 on a 96-token batch, is no per-tensor rule: kern/repack.h). Q5_0 x8 and Q8_0 x8
// for every eligible Q5_0 / Q8_0 matmul weight: their kernels keep the stored kernels' float order
// (llama.cpp does not repack these on AVX2), so they change no result, only the speed.
// CG_LAYOUT_STORED: none.
static cg_layout repack_kind(const cg_tensor *t) {
    if (cg_repack_q4_0_eligible(t)) return CG_LAYOUT_Q4_0_X8;
    if (cg_repack_q5_0_eligible(t)) return CG_LAYOUT_Q5_0_X8;
    if (cg_repack_q4_K_eligible(t)) return CG_LAYOUT_Q4_K_X8;
    if (cg_repack_q6_K_eligible(t)) return CG_LAYOUT_Q6_K_X8;
    if (cg_repack_q8_0_eligible(t)) return CG_LAYOUT_Q8_0_X8;
    return CG_LAYOUT_STORED;
}

static cg_status repack_size(const cg_tensor *t, cg_layout kind, size_t *sz, cg_err *err) {
    switch (kind) {
    case CG_LAYOUT_Q8_0_X8: return cg_repack_q8_0_size(t, sz, err);
    case CG_LAYOUT_Q4_K_X8: return cg_repack_q4_K_size(t, sz, err);
    case CG_LAYOUT_Q6_K_X8: return cg_repack_q6_K_size(t, sz, err);
    case CG_LAYOUT_Q5_0_X8: return cg_repack_q5_0_size(t, sz, err);
    default: return cg_repack_q4_0_size(t, sz, err);
    }
}

// Repacks every eligible weight (kern/repack.h) into one owned allocation, when the kernel set is
// AVX2 and CHINGU_REPACK is not "0". Stored-layout views stay as they are. Memory: an untied output
// costs nothing extra (its stored pages are dropped); a tied one (the view shares tok_embd's bytes)
// keeps tok_embd in the mapping for the row lookups, whose pages then stay mostly unread, and adds
// the repacked copy (n_vocab · n_embd · 34/32 bytes in Q8_0: 145 MB for qwen2.5-0.5b, 279 MB for
// llama-3.2-1b) as anonymous memory.
static cg_status repack_weights(cg_model *m, cg_err *err) {
    const char *env = getenv("CHINGU_REPACK");
    if ((env && !strcmp(env, "0")) || cg_cpu_isa() != CG_ISA_AVX2) return CG_OK;
    const int cap = (int)m->hp.n_layer * 8 + 1;
    cg_tensor **w = malloc((size_t)cap * sizeof *w);
    if (!w) return cg_err_set(err, CG_ERR_NOMEM, "model: out of memory for the repack list");
    cg_status st = CG_OK;
    const int n = matmul_weights(m, w, cap);
    size_t total = 0, sz;
    for (int i = 0; i < n; i++) {
        const cg_layout kind = repack_kind(w[i]);
        if (kind == CG_LAYOUT_STORED) continue;
        if ((st = repack_size(w[i], kind, &sz, err))) goto done;
        if (!cg_add_size(total, (sz + 63) & ~(size_t)63, &total)) {
            st = cg_err_set(err, CG_ERR_LIMIT, "model: repacked weights overflow at '%s'", w[i]->name);
            goto done;
        }
    }
    if (total == 0) goto done;
    // Whole 2 MiB pages (base/mmap.h): decode streams every byte once per token, and with 4 KiB
    // pages that is one TLB miss (a page walk) per 4 KiB.
    size_t alloc;
    m->repacked = cg_alloc_huge(total, &alloc);
    if (!m->repacked) {
        st = cg_err_set(err, CG_ERR_NOMEM, "model: out of memory for %zu bytes of repacked weights", total);
        goto done;
    }
    m->repacked_bytes = total;   // the bytes in use (the allocation rounds up to < 2 MiB more)
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const cg_layout kind = repack_kind(w[i]);
        if (kind == CG_LAYOUT_STORED) continue;
        if ((st = repack_size(w[i], kind, &sz, err))) goto done;
        cg_tensor view;
        unsigned char *dst = (unsigned char *)m->repacked + off;
        switch (kind) {
        case CG_LAYOUT_Q8_0_X8: st = cg_repack_q8_0(w[i], dst, total - off, &view, err); break;
        case CG_LAYOUT_Q4_K_X8: st = cg_repack_q4_K(w[i], dst, total - off, &view, err); break;
        case CG_LAYOUT_Q6_K_X8: st = cg_repack_q6_K(w[i], dst, total - off, &view, err); break;
        case CG_LAYOUT_Q5_0_X8: st = cg_repack_q5_0(w[i], dst, total - off, &view, err); break;
        default: st = cg_repack_q4_0(w[i], dst, total - off, &view, err); break;
        }
        if (st) goto done;
        if (w[i]->data != m->tok_embd.data) drop_pages(w[i]->data, sz);
        *w[i] = view;
        off += (sz + 63) & ~(size_t)63;
    }
done:
    free(w);
    return st;
}

size_t cg_model_repacked_bytes(const cg_model *m) { return m->repacked_bytes; }

void cg_model_free(cg_model *m) {
    if (!m) return;
    free(m->repacked);
    free(m->layers);
    cg_gguf_close(m->file);
    free(m);
}

cg_status cg_model_load(const char *path, cg_model **out, cg_err *err) {
    cg_status st;
    *out = NULL;
    cg_model *m = calloc(1, sizeof *m);
    if (!m) return cg_err_set(err, CG_ERR_NOMEM, "model: out of memory");
    if ((st = cg_gguf_open(path, &m->file, err))) goto fail;
    cg_gguf_str an;
    if ((st = cg_gguf_get_str(m->file, "general.architecture", &an, err))) {
        cg_err_wrap(err, "model: %s", path);
        goto fail;
    }
    m->arch = cg_arch_find(an.p, an.n);
    if (!m->arch) {
        st = cg_err_set(err, CG_ERR_UNSUPPORTED, "model: %s: architecture '%.*s' is not supported (supported: %s)", path,
                        (int)(an.n > 64 ? 64 : an.n), an.p, cg_arch_list());
        goto fail;
    }
    if ((st = bind_hparams(m, err))) goto fail;
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) {
        st = cg_err_set(err, CG_ERR_NOMEM, "model: out of memory for %lld layers", (long long)m->hp.n_layer);
        goto fail;
    }
    if ((st = bind_tensors(m, err))) goto fail;
    if ((st = repack_weights(m, err))) goto fail;
    *out = m;
    return CG_OK;
fail:
    cg_model_free(m);
    return st;
}

const cg_hparams *cg_model_hparams(const cg_model *m) { return &m->hp; }
const cg_arch_desc *cg_model_arch(const cg_model *m) { return m->arch; }
const cg_gguf *cg_model_gguf(const cg_model *m) { return m->file; }
const cg_layer *cg_model_layer(const cg_model *m, int il) {
    return il >= 0 && il < m->hp.n_layer ? &m->layers[il] : NULL;
}

cg_kv_params cg_model_kv_params(const cg_model *m, cg_kv_dtype type, int block_size, int n_blocks, int max_seqs) {
    cg_kv_params p = {
        .n_layer = (int)m->hp.n_layer,
        .n_embd_k = m->hp.n_head_kv * m->hp.head_dim,
        .n_embd_v = m->hp.n_head_kv * m->hp.head_dim_v,
        .block_size = block_size,
        .n_blocks = n_blocks,
        .max_seqs = max_seqs,
        .type = type,
    };
    return p;
}
