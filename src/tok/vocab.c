// vocab.c — loading a tokenizer vocabulary from GGUF metadata, special-token handling,
// tokenize / detokenize entry points and the streaming detokenizer.
//
// Loading follows llama.cpp's llama_vocab::impl::load step by step, because several of its
// quirks change the ids: per-model defaults, pre-tokenizer flags, out-of-range special ids that
// silently keep the default, end-of-generation tokens recognised by text and forced to CONTROL
// (which makes them parse as specials and render as "" without unparse_special), the harmony
// "<|end|>" and gemma4 "</s>" exceptions, and phi-3's RSTRIP on special tokens.
//
// Tokenizing: the text is first made valid UTF-8 (each byte of an invalid sequence becomes
// U+FFFD), then split on special-token texts (llama.cpp's tokenizer_st_partition: tokens tried
// longest text first, each one splitting every remaining text fragment; CONTROL/UNKNOWN only when
// parse_special), then each text fragment goes through SPM or BPE.
//
// Invariants: after cg_vocab_load a cg_vocab is never written again; every array indexed by a
// token id has n_tokens entries; text_off / piece_off / merge_off have one more.
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/num.h"
#include "base/utf8.h"
#include "tok/vocab.h"

// ---- small helpers ---------------------------------------------------------------------------

uint64_t cg_tok_hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_continue(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

bool cg_tokens_push(cg_tokens *t, int32_t id) {
    if (t->n == t->cap) {
        size_t c = t->cap ? t->cap * 2 : 64;
        int32_t *p = realloc(t->ids, c * sizeof *p);
        if (!p) return false;
        t->ids = p;
        t->cap = c;
    }
    t->ids[t->n++] = id;
    return true;
}

void cg_tokens_free(cg_tokens *t) {
    if (!t) return;
    free(t->ids);
    memset(t, 0, sizeof *t);
}

static bool hash_init(cg_strhash *h, uint64_t n) {
    uint64_t cap = 16;
    while (cap < n * 2) cap *= 2;
    h->slots = calloc(cap, sizeof *h->slots);
    h->mask = cap - 1;
    return h->slots != NULL;
}

int32_t cg_vocab_lookup(const cg_vocab *v, const char *s, size_t n) {
    uint64_t i = cg_tok_hash_bytes(s, n) & v->tok_map.mask;
    for (;;) {
        uint32_t e = v->tok_map.slots[i];
        if (!e) return CG_TOKEN_NULL;
        int32_t id = (int32_t)(e - 1);
        size_t tn;
        const char *t = cg_vocab_text_at(v, id, &tn);
        if (tn == n && !memcmp(t, s, n)) return id;
        i = (i + 1) & v->tok_map.mask;
    }
}

int32_t cg_vocab_merge_rank(const cg_vocab *v, const char *a, size_t na, const char *b, size_t nb) {
    if (!v->n_merges) return -1;
    uint64_t h = hash_continue(hash_continue(hash_continue(1469598103934665603ull, a, na), " ", 1), b, nb);
    uint64_t i = h & v->merge_map.mask;
    size_t n = na + 1 + nb;
    for (;;) {
        uint32_t e = v->merge_map.slots[i];
        if (!e) return -1;
        uint32_t r = e - 1;
        const char *m = v->merges + v->merge_off[r];
        size_t mn = (size_t)(v->merge_off[r + 1] - v->merge_off[r]);
        if (mn == n && !memcmp(m, a, na) && m[na] == ' ' && !memcmp(m + na + 1, b, nb)) return (int32_t)r;
        i = (i + 1) & v->merge_map.mask;
    }
}

// ---- loading -----------------------------------------------------------------------------------

static bool text_is(const cg_vocab *v, int32_t id, const char *s) {
    size_t n;
    const char *t = cg_vocab_text_at(v, id, &n);
    return n == strlen(s) && !memcmp(t, s, n);
}

static char *dup_str(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (s) {
        if (n) memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

// Optional bool key: absent → unchanged; wrong type → error.
static cg_status opt_bool(const cg_gguf *g, const char *key, bool *dst, cg_err *err) {
    if (!cg_gguf_find(g, key)) return CG_OK;
    return cg_gguf_get_bool(g, key, dst, err);
}

typedef struct special_key {
    const char *key;
    cg_special which;
} special_key;

static const special_key SPECIAL_KEYS[] = {
    {"tokenizer.ggml.bos_token_id", CG_SPECIAL_BOS},
    {"tokenizer.ggml.eos_token_id", CG_SPECIAL_EOS},
    {"tokenizer.ggml.eot_token_id", CG_SPECIAL_EOT},
    {"tokenizer.ggml.eom_token_id", CG_SPECIAL_EOM},
    {"tokenizer.ggml.unknown_token_id", CG_SPECIAL_UNK},
    {"tokenizer.ggml.seperator_token_id", CG_SPECIAL_SEP},
    {"tokenizer.ggml.padding_token_id", CG_SPECIAL_PAD},
    {"tokenizer.ggml.mask_token_id", CG_SPECIAL_MASK},
    {"tokenizer.ggml.fim_pre_token_id", CG_SPECIAL_FIM_PRE},
    {"tokenizer.ggml.fim_suf_token_id", CG_SPECIAL_FIM_SUF},
    {"tokenizer.ggml.fim_mid_token_id", CG_SPECIAL_FIM_MID},
    {"tokenizer.ggml.fim_pad_token_id", CG_SPECIAL_FIM_PAD},
    {"tokenizer.ggml.fim_rep_token_id", CG_SPECIAL_FIM_REP},
    {"tokenizer.ggml.fim_sep_token_id", CG_SPECIAL_FIM_SEP},
    {"tokenizer.ggml.prefix_token_id", CG_SPECIAL_FIM_PRE},   // deprecated names
    {"tokenizer.ggml.suffix_token_id", CG_SPECIAL_FIM_SUF},
    {"tokenizer.ggml.middle_token_id", CG_SPECIAL_FIM_MID},
};

// Texts llama.cpp uses to find roles the file did not name (first match by id wins here; llama.cpp
// walks a hash map, so with several candidates its choice is unspecified).
static const char *const EOT_TEXTS[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                        "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                                        "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                        "<end_of_utterance>", NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
                                            "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const FIM_SUF_TEXTS[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>",
                                            "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const FIM_MID_TEXTS[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
                                            "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
                                            NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", NULL};
static const char *const EOG_TEXTS[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
                                        "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>",
                                        "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
                                        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                                        "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                        "[e~[", NULL};

static int32_t find_text(const cg_vocab *v, const char *s) { return cg_vocab_lookup(v, s, strlen(s)); }

// Lowest id whose text is in `list` (CG_TOKEN_NULL when none).
static int32_t first_in(const cg_vocab *v, const char *const *list) {
    int32_t best = CG_TOKEN_NULL;
    for (; *list; list++) {
        int32_t id = find_text(v, *list);
        if (id >= 0 && (best < 0 || id < best)) best = id;
    }
    return best;
}

static void find_by_text(cg_vocab *v, cg_special which, const char *const *list) {
    if (v->special[which] != CG_TOKEN_NULL) return;
    int32_t id = first_in(v, list);
    if (id >= 0) {
        v->special[which] = id;
        v->attr[id] |= CG_TOK_ATTR_CONTROL;
    }
}


static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Byte of a BYTE token "<0xHH>" (llama.cpp: strtol of text[3..5), 0 when that is not hex).
static uint8_t token_byte(const char *t, size_t n) {
    int r = 0;
    for (size_t i = 3; i < 5 && i < n; i++) {
        int h = hexval(t[i]);
        if (h < 0) break;
        r = r * 16 + h;
    }
    return (uint8_t)r;
}

// Renders token `id` as llama_token_to_piece(special=true) does and appends it to out.
static void render_piece(const cg_vocab *v, int32_t id, cg_buf *out) {
    uint32_t a = v->attr[id];
    size_t n;
    const char *t = cg_vocab_text_at(v, id, &n);
    if (a & (CG_TOK_ATTR_UNKNOWN | CG_TOK_ATTR_CONTROL | CG_TOK_ATTR_USER_DEFINED)) {
        cg_buf_append(out, t, n);
        return;
    }
    if (a & CG_TOK_ATTR_NORMAL) {
        if (v->type != CG_VOCAB_BPE || v->escape_whitespaces) {   // "▁" → " "
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && !memcmp(t + i, "\xe2\x96\x81", 3)) {
                    cg_buf_putc(out, ' ');
                    i += 3;
                } else {
                    cg_buf_putc(out, t[i++]);
                }
            }
            return;
        }
        // byte-level BPE: every code point is one byte
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int l = cg_utf8_decode(t + i, n - i, &cp);
            if (l <= 0) {
                cp = 0xFFFD;
                l = 1;
            }
            int b = cg_bpe_cp_byte(cp);
            if (b >= 0) {
                cg_buf_putc(out, (char)b);
            } else {   // llama.cpp's marker for a code point no byte maps to
                cg_buf_puts(out, "[UNK_BYTE_0x");
                char u[4];
                int ul = cg_utf8_encode(cp, u);
                for (int k = 0; k < ul; k++) cg_buf_printf(out, "%02x", (unsigned char)u[k]);
                cg_buf_append(out, t, n);
                cg_buf_putc(out, ']');
            }
            i += (size_t)l;
        }
        return;
    }
    if (a & CG_TOK_ATTR_BYTE) {
        cg_buf_putc(out, (char)token_byte(t, n));
        return;
    }
    // UNUSED / UNDEFINED tokens render as nothing
}

// Stable merge sort of ids by text length, longest first (ties keep id order).
static void sort_special(const cg_vocab *v, int32_t *ids, int32_t *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_special(v, ids, tmp, h);
    sort_special(v, ids + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        uint64_t li = v->text_off[ids[i] + 1] - v->text_off[ids[i]];
        uint64_t lj = v->text_off[ids[j] + 1] - v->text_off[ids[j]];
        tmp[k++] = (lj > li) ? ids[j++] : ids[i++];
    }
    while (i < h) tmp[k++] = ids[i++];
    while (j < n) tmp[k++] = ids[j++];
    memcpy(ids, tmp, n * sizeof *ids);
}

static cg_status load_tokens(cg_vocab *v, const cg_gguf *g, cg_err *err) {
    const cg_gguf_kv *tk;
    cg_status st = cg_gguf_get_arr(g, "tokenizer.ggml.tokens", CG_GGUF_TYPE_STRING, &tk, err);
    if (st) return st;
    if (tk->n > (uint64_t)INT32_MAX - 1)
        return cg_err_set(err, CG_ERR_LIMIT, "tokenizer: %" PRIu64 " tokens (at most %d)", tk->n, INT32_MAX - 1);
    uint32_t n = (uint32_t)tk->n;
    v->n_tokens = n;

    const cg_gguf_kv *sc = cg_gguf_find(g, "tokenizer.ggml.scores");
    if (sc) {
        if (sc->type != CG_GGUF_TYPE_ARRAY ||
            (sc->elem_type != CG_GGUF_TYPE_FLOAT32 && sc->elem_type != CG_GGUF_TYPE_INT32))
            return cg_err_set(err, CG_ERR_TYPE, "tokenizer: tokenizer.ggml.scores must be a FLOAT32 or INT32 array");
        if (sc->n < n)
            return cg_err_set(err, CG_ERR_FORMAT, "tokenizer: %" PRIu64 " scores for %u tokens", sc->n, n);
    }
    const cg_gguf_kv *tt = cg_gguf_find(g, "tokenizer.ggml.token_type");
    if (tt) {
        if (tt->type != CG_GGUF_TYPE_ARRAY || tt->elem_type != CG_GGUF_TYPE_INT32)
            return cg_err_set(err, CG_ERR_TYPE, "tokenizer: tokenizer.ggml.token_type must be an INT32 array");
        if (tt->n < n)
            return cg_err_set(err, CG_ERR_FORMAT, "tokenizer: %" PRIu64 " token types for %u tokens", tt->n, n);
    }

    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        cg_gguf_str s;
        if ((st = cg_gguf_arr_str(tk, i, &s, err))) return st;
        total += s.n ? s.n : 32;
    }
    v->text = malloc(total + 1);
    v->text_off = malloc(((size_t)n + 1) * sizeof *v->text_off);
    v->scores = calloc((size_t)n + 1, sizeof *v->scores);
    v->attr = calloc((size_t)n + 1, sizeof *v->attr);
    if (!v->text || !v->text_off || !v->scores || !v->attr || !hash_init(&v->tok_map, n))
        return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory for %u tokens", n);
    const unsigned char *sraw = sc ? cg_gguf_arr_data(sc) : NULL;
    const unsigned char *traw = tt ? cg_gguf_arr_data(tt) : NULL;
    uint64_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        cg_gguf_str s;
        if ((st = cg_gguf_arr_str(tk, i, &s, err))) return st;
        v->text_off[i] = off;
        if (s.n == 0) {   // llama.cpp renames empty tokens
            int k = snprintf(v->text + off, 32, "[EMPTY_%u]", i);
            off += (uint64_t)k;
        } else {
            memcpy(v->text + off, s.p, s.n);
            off += s.n;
        }
        if (sraw) {
            if (sc->elem_type == CG_GGUF_TYPE_FLOAT32) v->scores[i] = cg_lef32(sraw + 4 * (size_t)i);
            else v->scores[i] = (float)(int32_t)cg_le32(sraw + 4 * (size_t)i);
        }
        uint32_t a = CG_TOK_ATTR_NORMAL;
        if (traw) {
            switch ((int32_t)cg_le32(traw + 4 * (size_t)i)) {
            case 1: a = CG_TOK_ATTR_NORMAL; break;
            case 2: a = CG_TOK_ATTR_UNKNOWN; break;
            case 3: a = CG_TOK_ATTR_CONTROL; break;
            case 4: a = CG_TOK_ATTR_USER_DEFINED; break;
            case 5: a = CG_TOK_ATTR_UNUSED; break;
            case 6: a = CG_TOK_ATTR_BYTE; break;
            default: a = CG_TOK_ATTR_UNDEFINED; break;
            }
        }
        v->attr[i] = a;
    }
    v->text_off[n] = off;
    // text → id map; duplicates are an error (as in llama.cpp)
    for (uint32_t i = 0; i < n; i++) {
        size_t tn;
        const char *t = cg_vocab_text_at(v, (int32_t)i, &tn);
        if (v->type == CG_VOCAB_BPE) {
            size_t bad;
            if (!cg_utf8_valid(t, tn, &bad))
                return cg_err_set(err, CG_ERR_FORMAT,
                                  "tokenizer: token %u is not valid UTF-8 (byte %zu of its text); byte-level BPE "
                                  "tokens must be", i, bad);
        }
        uint64_t k = cg_tok_hash_bytes(t, tn) & v->tok_map.mask;
        for (;;) {
            uint32_t e = v->tok_map.slots[k];
            if (!e) {
                v->tok_map.slots[k] = i + 1;
                break;
            }
            size_t on;
            const char *o = cg_vocab_text_at(v, (int32_t)(e - 1), &on);
            if (on == tn && !memcmp(o, t, tn))
                return cg_err_set(err, CG_ERR_FORMAT, "tokenizer: duplicate token '%.*s' has ids %u and %u",
                                  (int)(tn > 64 ? 64 : tn), t, e - 1, i);
            k = (k + 1) & v->tok_map.mask;
        }
    }
    return CG_OK;
}

static cg_status load_merges(cg_vocab *v, const cg_gguf *g, cg_err *err) {
    const cg_gguf_kv *mk;
    char *cat = NULL;
    cg_status st = cg_gguf_get_arr(g, "tokenizer.ggml.merges", CG_GGUF_TYPE_STRING, &mk, err);
    if (st) return cg_err_wrap(err, "tokenizer: byte-level BPE needs merges");
    if (mk->n > UINT32_MAX - 2) return cg_err_set(err, CG_ERR_LIMIT, "tokenizer: too many merges");
    uint32_t n = (uint32_t)mk->n;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        cg_gguf_str s;
        if ((st = cg_gguf_arr_str(mk, i, &s, err))) return st;
        total += s.n;
    }
    v->merges = malloc(total + 1);
    v->merge_off = malloc(((size_t)n + 1) * sizeof *v->merge_off);
    uint64_t pcap = 16;
    while (pcap < (uint64_t)n * 2) pcap *= 2;
    v->pair_mask = pcap - 1;
    v->pair_keys = malloc(pcap * sizeof *v->pair_keys);
    v->pair_rank = malloc(pcap * sizeof *v->pair_rank);
    v->pair_result = malloc(pcap * sizeof *v->pair_result);
    cat = malloc(total + 1);
    if (!v->merges || !v->merge_off || !hash_init(&v->merge_map, n) || !v->pair_keys || !v->pair_rank ||
        !v->pair_result || !cat) {
        st = cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory for %u merges", n);
        goto done;
    }
    memset(v->pair_keys, 0xFF, pcap * sizeof *v->pair_keys);
    uint64_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        cg_gguf_str s;
        if ((st = cg_gguf_arr_str(mk, i, &s, err))) goto done;
        // llama.cpp splits at the first space after the first byte
        const char *sp = s.n > 1 ? memchr(s.p + 1, ' ', s.n - 1) : NULL;
        if (!sp) {
            st = cg_err_set(err, CG_ERR_FORMAT, "tokenizer: merge %u '%.*s' has no space between its two tokens", i,
                            (int)(s.n > 64 ? 64 : s.n), s.p);
            goto done;
        }
        size_t na = (size_t)(sp - s.p), nb = s.n - na - 1;
        int32_t ida = cg_vocab_lookup(v, s.p, na), idb = cg_vocab_lookup(v, sp + 1, nb);
        if (ida < 0 || idb < 0) {
            st = cg_err_set(err, CG_ERR_FORMAT, "tokenizer: merge %u '%.*s' names a token that is not in the vocabulary",
                            i, (int)(s.n > 64 ? 64 : s.n), s.p);
            goto done;
        }
        memcpy(cat, s.p, na);
        memcpy(cat + na, sp + 1, nb);
        uint64_t key = (uint64_t)(uint32_t)ida << 32 | (uint32_t)idb;
        for (uint64_t k = (key * 0x9E3779B97F4A7C15ull) >> 20 & v->pair_mask;; k = (k + 1) & v->pair_mask) {
            if (v->pair_keys[k] == key) break;   // duplicate: the first (lowest) rank wins
            if (v->pair_keys[k] == UINT64_MAX) {
                v->pair_keys[k] = key;
                v->pair_rank[k] = (int32_t)i;
                v->pair_result[k] = cg_vocab_lookup(v, cat, na + nb);
                break;
            }
        }
        v->merge_off[i] = off;
        memcpy(v->merges + off, s.p, s.n);
        off += s.n;
        v->merge_off[i + 1] = off;
        uint64_t k = cg_tok_hash_bytes(s.p, s.n) & v->merge_map.mask;
        for (;;) {
            uint32_t e = v->merge_map.slots[k];
            if (!e) {
                v->merge_map.slots[k] = i + 1;
                break;
            }
            uint32_t r = e - 1;
            if (v->merge_off[r + 1] - v->merge_off[r] == s.n && !memcmp(v->merges + v->merge_off[r], s.p, s.n))
                break;   // duplicate: the first (lowest) rank wins
            k = (k + 1) & v->merge_map.mask;
        }
        v->n_merges = i + 1;
    }
done:
    free(cat);
    return st;
}

static cg_status finish_specials(cg_vocab *v, const cg_gguf *g, cg_err *err) {
    cg_status st;
    for (size_t i = 0; i < sizeof SPECIAL_KEYS / sizeof SPECIAL_KEYS[0]; i++) {
        int32_t *id = &v->special[SPECIAL_KEYS[i].which];
        if (*id >= 0 && (uint32_t)*id >= v->n_tokens) *id = CG_TOKEN_NULL;   // default out of range
        if (!cg_gguf_find(g, SPECIAL_KEYS[i].key)) continue;
        uint64_t nv;
        if ((st = cg_gguf_get_uint(g, SPECIAL_KEYS[i].key, &nv, err))) return st;
        if (nv >= v->n_tokens)
            CG_DEBUG("tokenizer: %s = %" PRIu64 " is out of range (%u tokens); keeping %d", SPECIAL_KEYS[i].key, nv,
                     v->n_tokens, *id);
        else
            *id = (int32_t)nv;
    }
    if ((st = opt_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos, err))) return st;
    if ((st = opt_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos, err))) return st;
    if ((st = opt_bool(g, "tokenizer.ggml.add_sep_token", &v->add_sep, err))) return st;
    if (v->add_bos && v->special[CG_SPECIAL_BOS] < 0)
        return cg_err_set(err, CG_ERR_FORMAT, "tokenizer: add_bos_token is true but there is no bos_token_id");
    if (v->add_eos && v->special[CG_SPECIAL_EOS] < 0)
        return cg_err_set(err, CG_ERR_FORMAT, "tokenizer: add_eos_token is true but there is no eos_token_id");
    if (v->add_sep && v->special[CG_SPECIAL_SEP] < 0)
        return cg_err_set(err, CG_ERR_FORMAT, "tokenizer: add_sep_token is true but there is no seperator_token_id");

    find_by_text(v, CG_SPECIAL_EOT, EOT_TEXTS);
    find_by_text(v, CG_SPECIAL_EOM, EOM_TEXTS);
    find_by_text(v, CG_SPECIAL_FIM_PRE, FIM_PRE_TEXTS);
    find_by_text(v, CG_SPECIAL_FIM_SUF, FIM_SUF_TEXTS);
    find_by_text(v, CG_SPECIAL_FIM_MID, FIM_MID_TEXTS);
    find_by_text(v, CG_SPECIAL_FIM_PAD, FIM_PAD_TEXTS);
    find_by_text(v, CG_SPECIAL_FIM_REP, FIM_REP_TEXTS);
    find_by_text(v, CG_SPECIAL_FIM_SEP, FIM_SEP_TEXTS);

    for (uint32_t id = 0; id < v->n_tokens; id++) {   // control tokens named "unused…"
        size_t tn;
        const char *t = cg_vocab_text_at(v, (int32_t)id, &tn);
        if ((v->attr[id] & CG_TOK_ATTR_CONTROL) && tn >= 6) {
            for (size_t k = 0; k + 6 <= tn; k++)
                if (!memcmp(t + k, "unused", 6)) {
                    v->attr[id] |= CG_TOK_ATTR_UNUSED;
                    break;
                }
        }
    }

    v->is_eog = calloc((size_t)v->n_tokens + 1, 1);
    if (!v->is_eog) return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
    const cg_special fims[] = {CG_SPECIAL_FIM_PAD, CG_SPECIAL_FIM_REP, CG_SPECIAL_FIM_SEP};
    for (size_t i = 0; i < 3; i++)
        if (v->special[fims[i]] >= 0) v->is_eog[v->special[fims[i]]] = 1;
    for (const char *const *t = EOG_TEXTS; *t; t++) {
        int32_t id = find_text(v, *t);
        if (id >= 0) {
            v->is_eog[id] = 1;
            v->attr[id] |= CG_TOK_ATTR_CONTROL;   // "control-looking token … will be overridden"
        }
    }
    const char *const gpt_oss[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>", NULL};
    for (const char *const *t = gpt_oss; *t; t++) {
        int32_t id = find_text(v, *t);
        if (id >= 0) v->attr[id] = CG_TOK_ATTR_USER_DEFINED;
    }
    const cg_special eogs[] = {CG_SPECIAL_EOS, CG_SPECIAL_EOT, CG_SPECIAL_EOM};
    for (size_t i = 0; i < 3; i++)
        if (v->special[eogs[i]] >= 0) v->is_eog[v->special[eogs[i]]] = 1;
    // harmony / solar-open: "<|end|>" is not end-of-generation there
    {
        bool has_return = false, has_call = false, has_flush = false;
        int32_t end_id = CG_TOKEN_NULL;
        for (uint32_t id = 0; id < v->n_tokens; id++) {
            if (!v->is_eog[id]) continue;
            if (text_is(v, (int32_t)id, "<|return|>")) has_return = true;
            else if (text_is(v, (int32_t)id, "<|call|>") || text_is(v, (int32_t)id, "<|calls|>")) has_call = true;
            else if (text_is(v, (int32_t)id, "<|flush|>")) has_flush = true;
            else if (text_is(v, (int32_t)id, "<|end|>")) end_id = (int32_t)id;
        }
        if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
            v->is_eog[end_id] = 0;
            v->attr[end_id] = CG_TOK_ATTR_USER_DEFINED;
        }
    }
    // gemma4 / paddleocr: "</s>" is not end-of-generation when "<|tool_response>" is
    {
        int32_t s_id = CG_TOKEN_NULL;
        bool has_tr = false;
        for (uint32_t id = 0; id < v->n_tokens; id++) {
            if (!v->is_eog[id]) continue;
            if (text_is(v, (int32_t)id, "<|tool_response>")) has_tr = true;
            else if (text_is(v, (int32_t)id, "</s>")) s_id = (int32_t)id;
        }
        if (has_tr && s_id >= 0) {
            v->is_eog[s_id] = 0;
            v->attr[s_id] = CG_TOK_ATTR_NORMAL;
        }
    }
    return CG_OK;
}

static cg_status build_caches(cg_vocab *v, const cg_gguf *g, cg_err *err) {
    uint32_t n = v->n_tokens;
    uint32_t ns = 0;
    for (uint32_t id = 0; id < n; id++)
        if (v->attr[id] & (CG_TOK_ATTR_CONTROL | CG_TOK_ATTR_USER_DEFINED | CG_TOK_ATTR_UNKNOWN)) ns++;
    v->special_cache = malloc(((size_t)ns + 1) * sizeof(int32_t));
    int32_t *tmp = malloc(((size_t)ns + 1) * sizeof(int32_t));
    if (!v->special_cache || !tmp) {
        free(tmp);
        return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
    }
    ns = 0;
    for (uint32_t id = 0; id < n; id++)
        if (v->attr[id] & (CG_TOK_ATTR_CONTROL | CG_TOK_ATTR_USER_DEFINED | CG_TOK_ATTR_UNKNOWN))
            v->special_cache[ns++] = (int32_t)id;
    sort_special(v, v->special_cache, tmp, ns);
    free(tmp);
    v->n_special_cache = ns;

    cg_buf pieces;
    cg_buf_init(&pieces);
    v->piece_off = malloc(((size_t)n + 1) * sizeof *v->piece_off);
    if (!v->piece_off) return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
    for (uint32_t id = 0; id < n; id++) {
        v->piece_off[id] = pieces.len;
        render_piece(v, (int32_t)id, &pieces);
    }
    v->piece_off[n] = pieces.len;
    cg_buf_putc(&pieces, 0);
    if (!cg_buf_ok(&pieces)) {
        cg_buf_free(&pieces);
        return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
    }
    v->piece = pieces.data;

    // per-model token attributes (llama.cpp sets these by model name)
    cg_gguf_str name = {0};
    const cg_gguf_kv *nk = cg_gguf_find(g, "general.name");
    if (nk && nk->type == CG_GGUF_TYPE_STRING) name = cg_gguf_kv_str(nk);
    char lname[256];
    size_t ln = name.n < sizeof lname - 1 ? name.n : sizeof lname - 1;
    for (size_t i = 0; i < ln; i++) lname[i] = (char)tolower((unsigned char)name.p[i]);
    lname[ln] = 0;
    if (strstr(v->pre_name, "jina-v2-de") || strstr(v->pre_name, "jina-v2-es") || strstr(v->pre_name, "jina-v2-code")) {
        int32_t m = find_text(v, "<mask>");
        if (m >= 0) v->attr[m] |= CG_TOK_ATTR_LSTRIP;
    } else if (strstr(lname, "phi-3") || strstr(lname, "phi3")) {
        for (uint32_t i = 0; i < v->n_special_cache; i++) v->attr[v->special_cache[i]] |= CG_TOK_ATTR_RSTRIP;
        int32_t t = find_text(v, "</s>");
        if (t >= 0) v->attr[t] |= CG_TOK_ATTR_RSTRIP;
        const char *const off_list[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t i = 0; i < 3; i++) {
            t = find_text(v, off_list[i]);
            if (t >= 0) v->attr[t] &= ~(uint32_t)CG_TOK_ATTR_RSTRIP;
        }
    } else if (strstr(lname, "modern-bert")) {
        int32_t m = find_text(v, "[MASK]");
        if (m >= 0) v->attr[m] |= CG_TOK_ATTR_LSTRIP;
    }
    return CG_OK;
}

cg_status cg_vocab_load(const cg_gguf *g, cg_vocab **out, cg_err *err) {
    cg_status st;
    cg_vocab *v = calloc(1, sizeof *v);
    if (!v) return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
    for (int i = 0; i < CG_SPECIAL_COUNT_; i++) v->special[i] = CG_TOKEN_NULL;
    for (int i = 0; i < 256; i++) v->byte_tok[i] = CG_TOKEN_NULL;

    cg_gguf_str model, pre = {"", 0};
    if ((st = cg_gguf_get_str(g, "tokenizer.ggml.model", &model, err))) goto fail;
    if (cg_gguf_find(g, "tokenizer.ggml.pre") && (st = cg_gguf_get_str(g, "tokenizer.ggml.pre", &pre, err))) goto fail;
    v->model_name = dup_str(model.p, model.n);
    v->pre_name = dup_str(pre.p, pre.n);
    if (!v->model_name || !v->pre_name) {
        st = cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    int32_t *sp = v->special;
    if (!strcmp(v->model_name, "llama")) {
        v->type = CG_VOCAB_SPM;
        sp[CG_SPECIAL_BOS] = 1, sp[CG_SPECIAL_EOS] = 2, sp[CG_SPECIAL_UNK] = 0;
        v->add_space_prefix = true, v->add_bos = true;
        v->escape_whitespaces = true;
    } else if (!strcmp(v->model_name, "bert")) {
        v->type = CG_VOCAB_WPM;
        sp[CG_SPECIAL_BOS] = 101, sp[CG_SPECIAL_UNK] = 100, sp[CG_SPECIAL_SEP] = 102, sp[CG_SPECIAL_PAD] = 0;
        sp[CG_SPECIAL_MASK] = 103;
        v->add_sep = true, v->add_bos = true, v->clean_spaces = true;
    } else if (!strcmp(v->model_name, "gpt2")) {
        v->type = CG_VOCAB_BPE;
        sp[CG_SPECIAL_BOS] = 11, sp[CG_SPECIAL_EOS] = 11;
        v->clean_spaces = true;
        const char *pn = v->pre_name[0] ? v->pre_name : "default";
        if (!v->pre_name[0]) CG_WARN("tokenizer: no tokenizer.ggml.pre in the file; using the 'default' pre-tokenizer");
        cg_pretok_flags fl = {0};
        if ((st = cg_pretok_new(pn, &v->pretok, &fl, err))) goto fail;
        v->clean_spaces = fl.clean_spaces;
        v->ignore_merges = fl.ignore_merges;
        if (fl.add_bos >= 0) v->add_bos = fl.add_bos != 0;
        if (fl.no_bos_id) sp[CG_SPECIAL_BOS] = CG_TOKEN_NULL;
    } else if (!strcmp(v->model_name, "t5")) {
        v->type = CG_VOCAB_UGM;
        sp[CG_SPECIAL_EOS] = 1, sp[CG_SPECIAL_UNK] = 2, sp[CG_SPECIAL_PAD] = 0;
        v->add_eos = true, v->escape_whitespaces = true;
    } else {
        st = cg_err_set(err, CG_ERR_UNSUPPORTED, "tokenizer: unsupported tokenizer model '%s' (tokenizer.ggml.model)",
                        v->model_name);
        goto fail;
    }
    if ((st = opt_bool(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, err))) goto fail;
    if ((st = opt_bool(g, "tokenizer.ggml.remove_extra_whitespaces", &v->remove_extra_ws, err))) goto fail;

    if ((st = load_tokens(v, g, err))) goto fail;
    if (v->type == CG_VOCAB_BPE && (st = load_merges(v, g, err))) goto fail;

    // byte → token tables
    for (int b = 0; b < 256; b++) {
        if (v->type == CG_VOCAB_BPE) {
            char u[4];
            int l = cg_utf8_encode(cg_bpe_byte_cp((uint8_t)b), u);
            v->byte_tok[b] = cg_vocab_lookup(v, u, (size_t)l);
        } else {
            char hx[8];
            snprintf(hx, sizeof hx, "<0x%02X>", b);
            v->byte_tok[b] = find_text(v, hx);
            if (v->byte_tok[b] < 0) {
                char c = (char)b;
                v->byte_tok[b] = cg_vocab_lookup(v, &c, 1);
            }
        }
    }

    if ((st = finish_specials(v, g, err))) goto fail;
    if ((st = build_caches(v, g, err))) goto fail;

    // newline token (computed like llama.cpp, before specials could interfere)
    if (v->type == CG_VOCAB_SPM) {
        v->special[CG_SPECIAL_NL] = v->byte_tok['\n'] >= 0 ? v->byte_tok['\n'] : v->special[CG_SPECIAL_PAD];
    } else if (v->type == CG_VOCAB_BPE) {
        cg_tokens t = {0};
        cg_pretok_scratch ps = {0};
        st = cg_bpe_tokenize(v, "\n", 1, &ps, &t, err);
        cg_pretok_scratch_free(&ps);
        if (st) {
            cg_tokens_free(&t);
            goto fail;
        }
        v->special[CG_SPECIAL_NL] = t.n ? t.ids[0] : v->special[CG_SPECIAL_PAD];
        cg_tokens_free(&t);
    } else {
        v->special[CG_SPECIAL_NL] = v->special[CG_SPECIAL_PAD];
    }
    *out = v;
    return CG_OK;
fail:
    cg_vocab_free(v);
    return st;
}

void cg_vocab_free(cg_vocab *v) {
    if (!v) return;
    free(v->model_name);
    free(v->pre_name);
    free(v->text);
    free(v->text_off);
    free(v->scores);
    free(v->attr);
    free(v->tok_map.slots);
    free(v->merges);
    free(v->merge_off);
    free(v->merge_map.slots);
    free(v->pair_keys);
    free(v->pair_rank);
    free(v->pair_result);
    free(v->is_eog);
    free(v->special_cache);
    free(v->piece);
    free(v->piece_off);
    cg_pretok_free(v->pretok);
    free(v);
}

// ---- facts -------------------------------------------------------------------------------------

cg_vocab_type cg_vocab_get_type(const cg_vocab *v) { return v->type; }
uint32_t cg_vocab_n_tokens(const cg_vocab *v) { return v->n_tokens; }
const char *cg_vocab_pre_name(const cg_vocab *v) { return v->pre_name; }
int32_t cg_vocab_special(const cg_vocab *v, cg_special which) {
    return (which >= 0 && which < CG_SPECIAL_COUNT_) ? v->special[which] : CG_TOKEN_NULL;
}
bool cg_vocab_add_bos(const cg_vocab *v) { return v->add_bos; }
bool cg_vocab_add_eos(const cg_vocab *v) { return v->add_eos; }
bool cg_vocab_add_sep(const cg_vocab *v) { return v->add_sep; }
bool cg_vocab_add_space_prefix(const cg_vocab *v) { return v->add_space_prefix; }
bool cg_vocab_is_eog(const cg_vocab *v, int32_t id) {
    return id >= 0 && (uint32_t)id < v->n_tokens && v->is_eog[id];
}
uint32_t cg_vocab_token_attr(const cg_vocab *v, int32_t id) {
    return (id >= 0 && (uint32_t)id < v->n_tokens) ? v->attr[id] : 0;
}
const char *cg_vocab_token_text(const cg_vocab *v, int32_t id, size_t *n) {
    if (id < 0 || (uint32_t)id >= v->n_tokens) return NULL;
    return cg_vocab_text_at(v, id, n);
}
float cg_vocab_token_score(const cg_vocab *v, int32_t id) {
    return (id >= 0 && (uint32_t)id < v->n_tokens) ? v->scores[id] : 0.0f;
}
int32_t cg_vocab_find(const cg_vocab *v, const char *text, size_t n) { return cg_vocab_lookup(v, text, n); }
