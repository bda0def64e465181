// synth.c — `chingu synth`: writes a random-weight model with a real model's shapes and metadata,
// for benchmarks (speed does not depend on the weight values) and for loading tests.
//
//   chingu synth [--arch A] (--preset NAME | --n-embd N --n-ff N --n-layer N --n-head N
//                [--n-head-kv N] --n-vocab N) [--tied] --type MIX -o FILE [--seed S]
//
// Shapes: the preset's real hyper-parameters (see PRESETS), or the given dims (a preset's values
// may be overridden one by one). Tensor types: the same mix rules as `chingu quantize`
// (quant/mix.h: cg_mix_choose over the tensors in llama.cpp's order), so a Q4_K_M synth file has the
// types a real Q4_K_M file of that shape has. Weights are random blocks: the quant bytes come from
// a xorshift generator and each block's scale fields are set to small finite values, so every
// value is finite and of a plausible magnitude; norms are ≈ 1, biases small. The vocabulary is a
// minimal SentencePiece-style one (<unk>, <s>, </s>, 256 byte tokens, the rest unused pieces) with
// exactly n_vocab entries. Tensors are produced while the file is written (cg_gguf writer
// callbacks), a row block at a time, so even an 8B model never sits in memory.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "cli/cli.h"
#include "gguf/gguf.h"
#include "quant/f16.h"
#include "quant/mix.h"
#include "quant/quant.h"

static const char USAGE[] =
    "usage: chingu synth [--arch A] (--preset NAME | --n-embd N --n-ff N --n-layer N --n-head N [--n-head-kv N] "
    "--n-vocab N) [--tied] --type MIX -o FILE [--seed S]\n"
    "presets: llama-3.2-1b, qwen2.5-0.5b, qwen2.5-1.5b, llama-3.1-8b; archs: llama, mistral, qwen2, qwen3";

typedef struct synth_cfg {
    const char *name;   // preset name (general.name)
    const char *arch;
    int64_t n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
    float rope_base, eps;
    bool tied;
    float llama3_factor;   // > 0: write rope_freqs.weight with Llama 3's frequency scaling
} synth_cfg;

// The models' published configurations (config.json of each Hugging Face repository).
static const synth_cfg PRESETS[] = {
    {"llama-3.2-1b", "llama", 2048, 8192, 16, 32, 8, 128256, 131072, 500000.0f, 1e-5f, true, 32.0f},
    {"qwen2.5-0.5b", "qwen2", 896, 4864, 24, 14, 2, 151936, 32768, 1000000.0f, 1e-6f, true, 0.0f},
    {"qwen2.5-1.5b", "qwen2", 1536, 8960, 28, 12, 2, 151936, 32768, 1000000.0f, 1e-6f, true, 0.0f},
    {"llama-3.1-8b", "llama", 4096, 14336, 32, 32, 8, 128256, 131072, 500000.0f, 1e-5f, false, 8.0f},
};

// ---- the tensor list ------------------------------------------------------------------------------

typedef enum fill_kind { FILL_MATRIX, FILL_NORM, FILL_BIAS, FILL_ROPE } fill_kind;

typedef struct synth_tensor {
    char name[64];
    uint32_t n_dims;
    int64_t ne[4];
    uint32_t type;
    fill_kind fill;
} synth_tensor;

typedef struct synth {
    synth_cfg c;
    int64_t head_dim;
    synth_tensor *t;
    size_t n, cap;
    uint64_t rng;
    unsigned char *buf;   // one chunk of rows
    size_t buf_size;
} synth;

static int add(synth *s, fill_kind fill, int64_t ne0, int64_t ne1, const char *fmt, int il) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        synth_tensor *t = realloc(s->t, cap * sizeof *t);
        if (!t) return -1;
        s->t = t;
        s->cap = cap;
    }
    synth_tensor *t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, fmt, il);
    t->n_dims = ne1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 ? ne1 : 1;
    t->ne[2] = t->ne[3] = 1;
    t->type = CG_QTYPE_F32;
    t->fill = fill;
    return 0;
}

static int build_tensors(synth *s) {
    const synth_cfg *c = &s->c;
    const int64_t hd = s->head_dim, q_dim = c->n_head * hd, kv_dim = c->n_head_kv * hd;
    const bool bias = !strcmp(c->arch, "qwen2"), qk_norm = !strcmp(c->arch, "qwen3");
    int r = 0;
    r |= add(s, FILL_MATRIX, c->n_embd, c->n_vocab, "token_embd.weight", 0);
    r |= add(s, FILL_NORM, c->n_embd, 0, "output_norm.weight", 0);
    if (!c->tied) r |= add(s, FILL_MATRIX, c->n_embd, c->n_vocab, "output.weight", 0);
    if (c->llama3_factor > 0) r |= add(s, FILL_ROPE, hd / 2, 0, "rope_freqs.weight", 0);
    for (int il = 0; il < c->n_layer && !r; il++) {
        r |= add(s, FILL_NORM, c->n_embd, 0, "blk.%d.attn_norm.weight", il);
        r |= add(s, FILL_MATRIX, c->n_embd, q_dim, "blk.%d.attn_q.weight", il);
        r |= add(s, FILL_MATRIX, c->n_embd, kv_dim, "blk.%d.attn_k.weight", il);
        r |= add(s, FILL_MATRIX, c->n_embd, kv_dim, "blk.%d.attn_v.weight", il);
        if (bias) {
            r |= add(s, FILL_BIAS, q_dim, 0, "blk.%d.attn_q.bias", il);
            r |= add(s, FILL_BIAS, kv_dim, 0, "blk.%d.attn_k.bias", il);
            r |= add(s, FILL_BIAS, kv_dim, 0, "blk.%d.attn_v.bias", il);
        }
        if (qk_norm) {
            r |= add(s, FILL_NORM, hd, 0, "blk.%d.attn_q_norm.weight", il);
            r |= add(s, FILL_NORM, hd, 0, "blk.%d.attn_k_norm.weight", il);
        }
        r |= add(s, FILL_MATRIX, q_dim, c->n_embd, "blk.%d.attn_output.weight", il);
        r |= add(s, FILL_NORM, c->n_embd, 0, "blk.%d.ffn_norm.weight", il);
        r |= add(s, FILL_MATRIX, c->n_embd, c->n_ff, "blk.%d.ffn_gate.weight", il);
        r |= add(s, FILL_MATRIX, c->n_embd, c->n_ff, "blk.%d.ffn_up.weight", il);
        r |= add(s, FILL_MATRIX, c->n_ff, c->n_embd, "blk.%d.ffn_down.weight", il);
    }
    return r;
}

static int cmp_tensor(const void *a, const void *b) {
    return cg_mix_name_cmp(((const synth_tensor *)a)->name, ((const synth_tensor *)b)->name);
}

// ---- random data ----------------------------------------------------------------------------------

static inline uint64_t next(uint64_t *x) {   // xorshift64*
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1DULL;
}

static void fill_bytes(uint64_t *x, unsigned char *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = next(x);
        memcpy(p + i, &v, 8);
    }
    if (i < n) {
        uint64_t v = next(x);
        memcpy(p + i, &v, n - i);
    }
}

// A half with a random sign/mantissa and exponent e (value ≈ ±2^(e−15)).
static inline cg_f16 rand_f16(uint64_t r, int e) { return (cg_f16)((r & 0x83FFu) | (uint16_t)(e << 10)); }

static inline void put16(unsigned char *p, cg_f16 v) { memcpy(p, &v, 2); }

// Where a block keeps its half-precision scale fields (offsets), and the exponent for them: the
// dequantized weights end up around 1e-2.
typedef struct scale_fields {
    int off[2], n;
    int exp[2];
} scale_fields;

static bool block_scales(uint32_t t, scale_fields *f) {
    memset(f, 0, sizeof *f);
    switch (t) {
    case CG_QTYPE_Q4_0: case CG_QTYPE_Q5_0: case CG_QTYPE_IQ4_NL: *f = (scale_fields){{0}, 1, {7}}; return true;
    case CG_QTYPE_Q8_0: *f = (scale_fields){{0}, 1, {3}}; return true;
    case CG_QTYPE_Q4_1: case CG_QTYPE_Q5_1: *f = (scale_fields){{0, 2}, 2, {7, 9}}; return true;
    case CG_QTYPE_Q2_K: *f = (scale_fields){{80, 82}, 2, {5, 5}}; return true;
    case CG_QTYPE_Q3_K: *f = (scale_fields){{108}, 1, {3}}; return true;
    case CG_QTYPE_Q4_K: case CG_QTYPE_Q5_K: *f = (scale_fields){{0, 2}, 2, {2, 2}}; return true;
    case CG_QTYPE_Q6_K: *f = (scale_fields){{208}, 1, {1}}; return true;
    case CG_QTYPE_IQ4_XS: *f = (scale_fields){{0}, 1, {3}}; return true;
    default: return false;
    }
}

// Fills n_rows rows of tensor t's type into p.
static void fill_rows(synth *s, const synth_tensor *t, unsigned char *p, size_t row_bytes, int64_t n_rows) {
    const size_t n = row_bytes * (size_t)n_rows;
    const int64_t n_elem = t->ne[0] * n_rows;
    if (t->type == CG_QTYPE_F32) {
        float *f = (float *)p;
        for (int64_t i = 0; i < n_elem; i++) f[i] = (float)((int64_t)(next(&s->rng) >> 40) - (1 << 23)) * 0x1p-29f;
        return;
    }
    fill_bytes(&s->rng, p, n);
    if (t->type == CG_QTYPE_F16) {
        cg_f16 *h = (cg_f16 *)p;
        for (int64_t i = 0; i < n_elem; i++) h[i] = rand_f16(h[i], 9);
        return;
    }
    if (t->type == CG_QTYPE_BF16) {
        cg_bf16 *h = (cg_bf16 *)p;
        for (int64_t i = 0; i < n_elem; i++) h[i] = (cg_bf16)((h[i] & 0x807Fu) | (121u << 7));
        return;
    }
    scale_fields f;
    block_scales(t->type, &f);
    const size_t bs = cg_qtype_get(t->type)->type_size;
    for (size_t b = 0; b + bs <= n; b += bs)
        for (int k = 0; k < f.n; k++) {
            cg_f16 cur;
            memcpy(&cur, p + b + f.off[k], 2);
            // Q4_1/Q5_1 minimum: negative, so the block is centred near zero.
            cg_f16 v = rand_f16(cur, f.exp[k]);
            if (k == 1 && (t->type == CG_QTYPE_Q4_1 || t->type == CG_QTYPE_Q5_1)) v |= 0x8000u;
            put16(p + b + f.off[k], v);
        }
}

// Llama 3's rope frequency factors (the divisors llama.cpp's converter writes to rope_freqs.weight):
// high frequencies kept, low ones divided by `factor`, a smooth ramp between (low 1, high 4,
// original context 8192).
static void llama3_rope_factors(float *out, int64_t n, int64_t head_dim, float base, float factor) {
    const double lo = 1.0, hi = 4.0, orig = 8192.0;
    const double lo_wavelen = orig / lo, hi_wavelen = orig / hi;
    for (int64_t i = 0; i < n; i++) {
        const double freq = 1.0 / pow((double)base, (double)(2 * i) / (double)head_dim);
        const double wavelen = 2.0 * M_PI / freq;
        double f;
        if (wavelen < hi_wavelen) f = 1.0;
        else if (wavelen > lo_wavelen) f = factor;
        else {
            const double smooth = (orig / wavelen - lo) / (hi - lo);
            f = 1.0 / ((1.0 - smooth) / factor + smooth);
        }
        out[i] = (float)f;
    }
}

static cg_status produce(void *user, size_t i, uint64_t n_bytes, cg_gguf_sink *sink, cg_err *err) {
    synth *s = user;
    const synth_tensor *t = &s->t[i];
    cg_status st;
    if (t->fill != FILL_MATRIX) {
        float *v = (float *)s->buf;   // vectors are ≤ n_ff floats, far below the chunk size
        const int64_t n = t->ne[0];
        if (t->fill == FILL_ROPE) {
            llama3_rope_factors(v, n, s->head_dim, s->c.rope_base, s->c.llama3_factor);
        } else {
            for (int64_t k = 0; k < n; k++) {
                const float r = (float)(next(&s->rng) >> 40) * 0x1p-24f - 0.5f;   // [-0.5, 0.5)
                v[k] = t->fill == FILL_NORM ? 1.0f + 0.2f * r : 0.1f * r;
            }
        }
        return cg_gguf_sink_write(sink, v, (size_t)n * sizeof(float), err);
    }
    uint64_t row_bytes;
    if ((st = cg_qtype_row_size(t->type, (uint64_t)t->ne[0], &row_bytes, err))) return st;
    const int64_t rows_per_chunk = (int64_t)(s->buf_size / row_bytes);
    for (int64_t r = 0; r < t->ne[1]; r += rows_per_chunk) {
        const int64_t nr = t->ne[1] - r < rows_per_chunk ? t->ne[1] - r : rows_per_chunk;
        fill_rows(s, t, s->buf, (size_t)row_bytes, nr);
        if ((st = cg_gguf_sink_write(sink, s->buf, (size_t)row_bytes * (size_t)nr, err))) return st;
    }
    (void)n_bytes;
    return CG_OK;
}

// ---- metadata -------------------------------------------------------------------------------------

#define TRY(x)                    \
    do {                          \
        if ((st = (x))) goto done; \
    } while (0)

static cg_status write_vocab(cg_gguf_writer *w, int64_t n_vocab, cg_err *err) {
    cg_status st = CG_OK;
    char *text = NULL;
    const char **strs = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    // "<unused_N>" with a 32-bit N is at most 19 bytes + NUL.
    enum { STRIDE = 24 };
    text = malloc((size_t)n_vocab * STRIDE);
    strs = malloc((size_t)n_vocab * sizeof *strs);
    scores = calloc((size_t)n_vocab, sizeof *scores);
    types = malloc((size_t)n_vocab * sizeof *types);
    if (!text || !strs || !scores || !types) {
        st = cg_err_set(err, CG_ERR_NOMEM, "synth: out of memory for a vocabulary of %" PRId64 " tokens", n_vocab);
        goto done;
    }
    for (int64_t i = 0; i < n_vocab; i++) {
        char *p = text + STRIDE * i;
        if (i == 0) { strcpy(p, "<unk>"); types[i] = 2; }
        else if (i == 1) { strcpy(p, "<s>"); types[i] = 3; }
        else if (i == 2) { strcpy(p, "</s>"); types[i] = 3; }
        else if (i < 259) { snprintf(p, STRIDE, "<0x%02X>", (unsigned)(i - 3)); types[i] = 6; }
        else { snprintf(p, STRIDE, "<unused_%u>", (unsigned)(i - 259)); types[i] = 5; }
        strs[i] = p;
    }
    TRY(cg_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", err));
    TRY(cg_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, NULL, (uint64_t)n_vocab, err));
    TRY(cg_gguf_writer_set_arr(w, "tokenizer.ggml.scores", CG_GGUF_TYPE_FLOAT32, scores, (uint64_t)n_vocab, err));
    TRY(cg_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", CG_GGUF_TYPE_INT32, types, (uint64_t)n_vocab, err));
    TRY(cg_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1, err));
    TRY(cg_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2, err));
    TRY(cg_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0, err));
    TRY(cg_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true, err));
done:
    free(text);
    free(strs);
    free(scores);
    free(types);
    return st;
}

static cg_status write_metadata(cg_gguf_writer *w, const synth *s, const cg_ftype_info *fi, cg_err *err) {
    cg_status st = CG_OK;
    const synth_cfg *c = &s->c;
    char key[128], desc[160];
#define K(suffix) (snprintf(key, sizeof key, "%s.%s", c->arch, suffix), key)
    snprintf(desc, sizeof desc, "random-weight model written by chingu synth (%s shapes, %s); not trained",
             c->name ? c->name : "custom", fi->name);
    TRY(cg_gguf_writer_set_str(w, "general.architecture", c->arch, err));
    TRY(cg_gguf_writer_set_str(w, "general.name", c->name ? c->name : "synth", err));
    TRY(cg_gguf_writer_set_str(w, "general.description", desc, err));
    TRY(cg_gguf_writer_set_u32(w, K("block_count"), (uint32_t)c->n_layer, err));
    TRY(cg_gguf_writer_set_u32(w, K("context_length"), (uint32_t)c->n_ctx, err));
    TRY(cg_gguf_writer_set_u32(w, K("embedding_length"), (uint32_t)c->n_embd, err));
    TRY(cg_gguf_writer_set_u32(w, K("feed_forward_length"), (uint32_t)c->n_ff, err));
    TRY(cg_gguf_writer_set_u32(w, K("attention.head_count"), (uint32_t)c->n_head, err));
    TRY(cg_gguf_writer_set_u32(w, K("attention.head_count_kv"), (uint32_t)c->n_head_kv, err));
    TRY(cg_gguf_writer_set_f32(w, K("rope.freq_base"), c->rope_base, err));
    TRY(cg_gguf_writer_set_f32(w, K("attention.layer_norm_rms_epsilon"), c->eps, err));
    TRY(cg_gguf_writer_set_u32(w, K("rope.dimension_count"), (uint32_t)s->head_dim, err));
    TRY(cg_gguf_writer_set_u32(w, K("vocab_size"), (uint32_t)c->n_vocab, err));
    TRY(cg_gguf_writer_set_u32(w, "general.file_type", (uint32_t)fi->ftype, err));
    if (fi->ftype != CG_FTYPE_ALL_F32 && fi->ftype != CG_FTYPE_MOSTLY_F16 && fi->ftype != CG_FTYPE_MOSTLY_BF16)
        TRY(cg_gguf_writer_set_u32(w, "general.quantization_version", 2, err));
    TRY(write_vocab(w, c->n_vocab, err));
#undef K
done:
    return st;
}

// ---- the command ------------------------------------------------------------------------------------

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static int run(synth *s, const cg_ftype_info *fi, const char *out) {
    cg_err err = {0};
    cg_status st = CG_OK;
    cg_gguf_writer *w = NULL;
    cg_mix_tensor *mt = NULL;
    uint32_t *types = NULL;
    if (build_tensors(s)) { st = cg_err_set(&err, CG_ERR_NOMEM, "synth: out of memory"); goto done; }
    qsort(s->t, s->n, sizeof *s->t, cmp_tensor);
    mt = calloc(s->n, sizeof *mt);
    types = calloc(s->n, sizeof *types);
    if (!mt || !types) { st = cg_err_set(&err, CG_ERR_NOMEM, "synth: out of memory"); goto done; }
    for (size_t i = 0; i < s->n; i++)
        mt[i] = (cg_mix_tensor){.name = s->t[i].name, .n_dims = s->t[i].n_dims, .type = CG_QTYPE_F32,
                                .ne = {s->t[i].ne[0], s->t[i].ne[1], 1, 1}};
    const cg_mix_hparams hp = {.arch = s->c.arch, .n_layer = (uint32_t)s->c.n_layer, .n_head = (uint32_t)s->c.n_head,
                               .n_head_kv = (uint32_t)s->c.n_head_kv};
    if ((st = cg_mix_choose(&hp, fi->ftype, false, mt, s->n, types, &err))) goto done;
    uint64_t total = 0, max_row = 0;
    for (size_t i = 0; i < s->n; i++) {
        s->t[i].type = types[i];
        uint64_t rb;
        if ((st = cg_qtype_row_size(types[i], (uint64_t)s->t[i].ne[0], &rb, &err))) goto done;
        scale_fields f;
        if (s->t[i].fill == FILL_MATRIX && types[i] != CG_QTYPE_F32 && types[i] != CG_QTYPE_F16 &&
            types[i] != CG_QTYPE_BF16 && !block_scales(types[i], &f)) {
            st = cg_err_set(&err, CG_ERR_UNSUPPORTED, "synth: tensor '%s' would be %s, which synth cannot fill",
                            s->t[i].name, cg_qtype_name(types[i]));
            goto done;
        }
        if (rb > max_row) max_row = rb;
        total += rb * (uint64_t)s->t[i].ne[1];
    }
    s->buf_size = max_row > ((size_t)1 << 20) ? (size_t)max_row : (size_t)1 << 20;
    if (!(s->buf = malloc(s->buf_size))) { st = cg_err_set(&err, CG_ERR_NOMEM, "synth: out of memory"); goto done; }
    if ((st = cg_gguf_writer_new(&w, &err))) goto done;
    if ((st = write_metadata(w, s, fi, &err))) goto done;
    for (size_t i = 0; i < s->n; i++)
        if ((st = cg_gguf_writer_add_tensor_cb(w, s->t[i].name, s->t[i].type, s->t[i].n_dims, s->t[i].ne, produce, s,
                                               &err)))
            goto done;
    if ((st = cg_gguf_writer_write_file(w, out, &err))) goto done;
    int64_t n_params = 0;
    for (size_t i = 0; i < s->n; i++) n_params += s->t[i].ne[0] * s->t[i].ne[1];
    printf("wrote %s: %s %s, %zu tensors, %.2f B parameters, %.1f MiB of tensor data\n", out,
           s->c.name ? s->c.name : s->c.arch, fi->name, s->n, (double)n_params / 1e9, (double)total / (1024.0 * 1024.0));
done:
    cg_gguf_writer_free(w);
    free(mt);
    free(types);
    free(s->t);
    free(s->buf);
    if (st) return cg_cli_fail("%s", err.msg);
    return 0;
}

int cg_cli_synth(int argc, char **argv) {
    synth s = {.rng = 0x9E3779B97F4A7C15ULL};
    synth_cfg *c = &s.c;
    c->n_ctx = 4096;
    c->rope_base = 10000.0f;
    c->eps = 1e-5f;
    c->n_head_kv = -1;
    const char *arch = NULL, *type = NULL, *out = NULL, *preset = NULL;
    int64_t dims[6] = {-1, -1, -1, -1, -1, -1};   // n_embd n_ff n_layer n_head n_head_kv n_vocab
    static const char *DIM_OPT[6] = {"--n-embd", "--n-ff", "--n-layer", "--n-head", "--n-head-kv", "--n-vocab"};
    static const int64_t DIM_MAX[6] = {1 << 16, 1 << 20, 512, 1024, 1024, 1 << 22};
    bool tied = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n", USAGE);
            return 0;
        }
        if (!strcmp(a, "--tied")) { tied = true; continue; }
        if (i + 1 >= argc) { cg_cli_fail("synth: %s needs a value\n%s", a, USAGE); return 2; }
        const char *v = argv[++i];
        int d = -1;
        for (int k = 0; k < 6; k++)
            if (!strcmp(a, DIM_OPT[k])) d = k;
        if (d >= 0) {
            if (!parse_i64(v, 1, DIM_MAX[d], &dims[d])) {
                cg_cli_fail("synth: %s '%s' is not a number in 1..%lld", a, v, (long long)DIM_MAX[d]);
                return 2;
            }
        } else if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--preset")) preset = v;
        else if (!strcmp(a, "--type")) type = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--seed")) {
            int64_t seed;
            if (!parse_i64(v, 0, INT64_MAX, &seed)) { cg_cli_fail("synth: --seed '%s' is not a number", v); return 2; }
            s.rng ^= (uint64_t)seed * 0xD1B54A32D192ED03ULL;
            if (!s.rng) s.rng = 1;
        } else {
            cg_cli_fail("synth: unknown option '%s'\n%s", a, USAGE);
            return 2;
        }
    }
    if (!type || !out) { cg_cli_fail("synth: --type and -o are required\n%s", USAGE); return 2; }
    const cg_ftype_info *fi = cg_ftype_find(type);
    if (!fi) {
        char list[512];
        cg_ftype_list(list, sizeof list);
        cg_cli_fail("synth: unknown type '%s' (valid: %s)", type, list);
        return 2;
    }
    if (preset) {
        const synth_cfg *p = NULL;
        for (size_t k = 0; k < sizeof PRESETS / sizeof PRESETS[0]; k++)
            if (!strcmp(PRESETS[k].name, preset)) p = &PRESETS[k];
        if (!p) { cg_cli_fail("synth: unknown preset '%s'\n%s", preset, USAGE); return 2; }
        *c = *p;
        if (arch && strcmp(arch, p->arch)) {
            cg_cli_fail("synth: preset %s is a '%s' model, not '%s'", preset, p->arch, arch);
            return 2;
        }
    } else {
        if (!arch) { cg_cli_fail("synth: give --preset or --arch with the dimensions\n%s", USAGE); return 2; }
        c->arch = arch;
        c->tied = tied;
        if (!strcmp(arch, "qwen2") || !strcmp(arch, "qwen3")) c->rope_base = 1000000.0f, c->eps = 1e-6f;
    }
    if (tied) c->tied = true;
    int64_t *field[6] = {&c->n_embd, &c->n_ff, &c->n_layer, &c->n_head, &c->n_head_kv, &c->n_vocab};
    for (int k = 0; k < 6; k++)
        if (dims[k] > 0) *field[k] = dims[k];
    if (c->n_head_kv < 0) c->n_head_kv = c->n_head;
    for (int k = 0; k < 6; k++)
        if (*field[k] <= 0) { cg_cli_fail("synth: %s is required without a preset\n%s", DIM_OPT[k], USAGE); return 2; }
    if (strcmp(c->arch, "llama") && strcmp(c->arch, "mistral") && strcmp(c->arch, "qwen2") && strcmp(c->arch, "qwen3"))
        return cg_cli_fail("synth: architecture '%s' is not supported (llama, mistral, qwen2, qwen3)", c->arch);
    if (c->n_embd % c->n_head || c->n_head % c->n_head_kv)
        return cg_cli_fail("synth: n_embd %lld must be a multiple of n_head %lld, and n_head of n_head_kv %lld",
                           (long long)c->n_embd, (long long)c->n_head, (long long)c->n_head_kv);
    s.head_dim = c->n_embd / c->n_head;
    if (s.head_dim % 2 || s.head_dim > 1024)
        return cg_cli_fail("synth: head dimension %lld must be even and at most 1024", (long long)s.head_dim);
    if (c->n_vocab < 259) return cg_cli_fail("synth: --n-vocab %lld is below 259 (3 specials + 256 bytes)", (long long)c->n_vocab);
    return run(&s, fi, out);
}
