// tokenize.c — text → ids (special-token partition, then SPM or BPE per fragment), ids → text,
// and the streaming detokenizer.
//
// Everything here reads an immutable cg_vocab and allocates only per-call memory, so any number
// of threads may tokenize with the same vocab at once. A cg_detok_stream belongs to one caller.
#define _GNU_SOURCE   // memmem
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "base/utf8.h"
#include "tok/vocab.h"

typedef struct frag {
    int32_t id;      // >= 0: a special token; -1: text
    size_t off, n;   // text fragments: bytes of the (sanitised) text
} frag;

typedef struct frags {
    frag *a;
    size_t n, cap;
} frags;

static bool frag_push(frags *f, frag x) {
    if (f->n == f->cap) {
        size_t c = f->cap ? f->cap * 2 : 16;
        frag *p = realloc(f->a, c * sizeof *p);
        if (!p) return false;
        f->a = p;
        f->cap = c;
    }
    f->a[f->n++] = x;
    return true;
}

static bool is_cspace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// llama.cpp's tokenizer_st_partition: for each special token (longest text first), split every
// text fragment at each of its occurrences. LSTRIP/RSTRIP drop whitespace next to the token.
static bool partition(const cg_vocab *v, const char *text, bool parse_special, frags *cur, frags *nxt) {
    for (uint32_t k = 0; k < v->n_special_cache; k++) {
        int32_t id = v->special_cache[k];
        uint32_t a = v->attr[id];
        if (!parse_special && (a & (CG_TOK_ATTR_CONTROL | CG_TOK_ATTR_UNKNOWN))) continue;
        size_t sn;
        const char *s = cg_vocab_text_at(v, id, &sn);
        nxt->n = 0;
        bool changed = false;
        for (size_t i = 0; i < cur->n; i++) {
            frag f = cur->a[i];
            if (f.id >= 0 || f.n < sn) {
                if (!frag_push(nxt, f)) return false;
                continue;
            }
            size_t base = f.off, len = f.n;
            for (;;) {
                const char *m = len >= sn ? memmem(text + base, len, s, sn) : NULL;
                if (!m) {
                    if (len && !frag_push(nxt, (frag){-1, base, len})) return false;
                    break;
                }
                changed = true;
                size_t mo = (size_t)(m - text);
                size_t left = mo - base;
                if (a & CG_TOK_ATTR_LSTRIP)
                    while (left > 0 && is_cspace(text[base + left - 1])) left--;
                if (left && !frag_push(nxt, (frag){-1, base, left})) return false;
                if (!frag_push(nxt, (frag){id, 0, 0})) return false;
                size_t roff = mo + sn, rlen = base + len - roff;
                if (a & CG_TOK_ATTR_RSTRIP)
                    while (rlen > 0 && is_cspace(text[roff])) roff++, rlen--;
                base = roff;
                len = rlen;
                if (!len) break;
            }
        }
        if (changed) {
            frags t = *cur;
            *cur = *nxt;
            *nxt = t;
        }
    }
    return true;
}

// Copies text, replacing every byte that does not start a valid UTF-8 sequence with U+FFFD.
static char *sanitise(const char *text, size_t len, size_t *out_len) {
    size_t cap;
    if (!cg_mul_size(len, 3, &cap) || !cg_add_size(cap, 1, &cap)) return NULL;
    char *o = malloc(cap);
    if (!o) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int l = cg_utf8_decode(text + i, len - i, &cp);
        if (l <= 0) {
            memcpy(o + w, "\xef\xbf\xbd", 3);
            w += 3;
            i++;
        } else {
            memcpy(o + w, text + i, (size_t)l);
            w += (size_t)l;
            i += (size_t)l;
        }
    }
    *out_len = w;
    return o;
}

static cg_status tokenize_into(const cg_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                               cg_tokens *out, cg_err *err) {
    if (v->type != CG_VOCAB_SPM && v->type != CG_VOCAB_BPE)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "tokenizer: tokenizing with a '%s' vocabulary is not implemented",
                          v->model_name);
    cg_status st = CG_OK;
    char *clean = NULL, *tmp = NULL;
    frags cur = {0}, nxt = {0};
    cg_pretok_scratch ps = {0};
    if (!cg_utf8_valid(text, len, NULL)) {
        clean = sanitise(text, len, &len);
        if (!clean) goto nomem;
        text = clean;
    }
    if (len && !frag_push(&cur, (frag){-1, 0, len})) goto nomem;
    if (!partition(v, text, parse_special, &cur, &nxt)) goto nomem;

    if (add_special && v->add_bos && !cg_tokens_push(out, v->special[CG_SPECIAL_BOS])) goto nomem;
    if (v->type == CG_VOCAB_SPM) {
        bool prev_special = true;   // the first fragment gets the space prefix too
        size_t cap_tmp = 0;
        for (size_t i = 0; i < cur.n; i++) {
            frag f = cur.a[i];
            if (f.id >= 0) {
                if (!cg_tokens_push(out, f.id)) goto nomem;
                prev_special = true;
                continue;
            }
            // prefix + escape spaces as "▁" (3 bytes)
            size_t need;
            if (!cg_mul_size(f.n + 1, 3, &need)) goto nomem;
            if (need > cap_tmp) {
                char *p = realloc(tmp, need);
                if (!p) goto nomem;
                tmp = p;
                cap_tmp = need;
            }
            size_t w = 0;
            if (v->add_space_prefix && prev_special) {
                memcpy(tmp, "\xe2\x96\x81", 3);
                w = 3;
            }
            for (size_t j = 0; j < f.n; j++) {
                char c = text[f.off + j];
                if (c == ' ') {
                    memcpy(tmp + w, "\xe2\x96\x81", 3);
                    w += 3;
                } else {
                    tmp[w++] = c;
                }
            }
            if ((st = cg_spm_tokenize(v, tmp, w, out, err))) goto done;
            prev_special = false;
        }
    } else {
        for (size_t i = 0; i < cur.n; i++) {
            frag f = cur.a[i];
            if (f.id >= 0) {
                if (!cg_tokens_push(out, f.id)) goto nomem;
                continue;
            }
            if ((st = cg_bpe_tokenize(v, text + f.off, f.n, &ps, out, err))) goto done;
        }
    }
    if (add_special && v->add_eos && !cg_tokens_push(out, v->special[CG_SPECIAL_EOS])) goto nomem;
    goto done;
nomem:
    st = cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
done:
    free(clean);
    free(tmp);
    free(cur.a);
    free(nxt.a);
    cg_pretok_scratch_free(&ps);
    return st;
}

cg_status cg_tokenize(const cg_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                      cg_tokens *out, cg_err *err) {
    size_t n0 = out->n;
    cg_status st = tokenize_into(v, text, len, add_special, parse_special, out, err);
    if (st) out->n = n0;
    return st;
}

cg_status cg_tokenize_buf(const cg_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                          int32_t *ids, size_t cap, size_t *n_needed, cg_err *err) {
    cg_tokens t = {0};
    cg_status st = tokenize_into(v, text, len, add_special, parse_special, &t, err);
    if (st) goto done;
    *n_needed = t.n;
    if (t.n > cap) {
        st = cg_err_set(err, CG_ERR_LIMIT, "tokenizer: %zu tokens do not fit in a buffer of %zu", t.n, cap);
        goto done;
    }
    if (t.n) memcpy(ids, t.ids, t.n * sizeof *ids);
done:
    cg_tokens_free(&t);
    return st;
}

// ---- detokenizing --------------------------------------------------------------------------------

static const char *piece_of(const cg_vocab *v, int32_t id, int lstrip, bool special, size_t *n) {
    if (!special && (v->attr[id] & (CG_TOK_ATTR_UNKNOWN | CG_TOK_ATTR_CONTROL))) {
        *n = 0;
        return v->piece;
    }
    const char *p = v->piece + v->piece_off[id];
    size_t len = (size_t)(v->piece_off[id + 1] - v->piece_off[id]);
    for (int i = 0; i < lstrip && len && *p == ' '; i++) p++, len--;
    *n = len;
    return p;
}

cg_status cg_token_to_piece(const cg_vocab *v, int32_t id, int lstrip, bool special, const char **p, size_t *n,
                            cg_err *err) {
    if (id < 0 || (uint32_t)id >= v->n_tokens)
        return cg_err_set(err, CG_ERR_INVALID, "tokenizer: token id %d out of range (%u tokens)", id, v->n_tokens);
    *p = piece_of(v, id, lstrip, special, n);
    return CG_OK;
}

// llama.cpp's clean_up_tokenization_spaces, three passes over the detokenized bytes.
static size_t clean_spaces(char *t, size_t total) {
    size_t n1 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < n1; i++) {   // " ?", " !", " .", " ,"
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
        t[total++] = x;
    }
    size_t n2 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < n2; i++) {   // " ' " → "'"
        char x = t[i];
        if (x == '\'' && i + 1 < n2 && t[i - 1] == ' ' && t[i + 1] == ' ') {
            total--;
            t[++i] = '\0';
        }
        t[total++] = x;
    }
    size_t n3 = total;
    total = total ? 1 : 0;
    for (size_t i = 1; i < n3; i++) {   // " 's", " 'm", " 're", " 've"
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
            char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm') total--;
            else if (i + 2 < n3 && ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e'))) total--;
        }
        t[total++] = x;
    }
    return total;
}

cg_status cg_detokenize(const cg_vocab *v, const int32_t *ids, size_t n, bool remove_special, bool unparse_special,
                        cg_buf *out, cg_err *err) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= v->n_tokens)
            return cg_err_set(err, CG_ERR_INVALID, "tokenizer: token %zu of %zu has id %d, out of range (%u tokens)", i,
                              n, ids[i], v->n_tokens);
    bool remove_space = v->add_space_prefix;
    if (remove_special && v->add_bos && n > 0 && ids[0] == v->special[CG_SPECIAL_BOS]) {
        remove_space = false;
        ids++;
        n--;
    }
    if (remove_special && v->add_eos && n > 0 && ids[n - 1] == v->special[CG_SPECIAL_EOS]) n--;
    size_t start = out->len;
    for (size_t i = 0; i < n; i++) {
        size_t pn;
        const char *p = piece_of(v, ids[i], remove_space ? 1 : 0, unparse_special, &pn);
        remove_space = false;
        cg_buf_append(out, p, pn);
    }
    if (!cg_buf_ok(out)) return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
    if (v->clean_spaces && out->len > start) {
        size_t nl = clean_spaces(out->data + start, out->len - start);
        out->len = start + nl;
        out->data[out->len] = 0;
    }
    return CG_OK;
}

// ---- streaming detokenizer ---------------------------------------------------------------------

struct cg_detok_stream {
    const cg_vocab *v;
    bool unparse_special;
    bool first;         // the next piece is the first (SPM drops its leading space)
    unsigned char hold[4];
    size_t n_hold;
};

cg_status cg_detok_stream_new(const cg_vocab *v, bool unparse_special, cg_detok_stream **out, cg_err *err) {
    cg_detok_stream *s = calloc(1, sizeof *s);
    if (!s) return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
    s->v = v;
    s->unparse_special = unparse_special;
    s->first = true;
    *out = s;
    return CG_OK;
}

void cg_detok_stream_free(cg_detok_stream *s) { free(s); }

// Length of the valid prefix of an incomplete sequence at p[0..n) (n < needed), or 0 when the
// bytes can already be seen to be invalid. Follows the well-formed byte table (Unicode §3.9).
static size_t partial_ok(const unsigned char *p, size_t n) {
    int need = cg_utf8_seq_len(p[0]);
    if (need <= 1 || (size_t)need <= n) return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char lo = 0x80, hi = 0xBF;
        if (i == 1) {
            if (p[0] == 0xE0) lo = 0xA0;
            else if (p[0] == 0xED) hi = 0x9F;
            else if (p[0] == 0xF0) lo = 0x90;
            else if (p[0] == 0xF4) hi = 0x8F;
        }
        if (p[i] < lo || p[i] > hi) return 0;
    }
    return n;
}

// Emits the valid UTF-8 of hold+src, replacing each maximal invalid subpart with U+FFFD; keeps a
// trailing incomplete (but so far valid) sequence in the hold buffer unless `final`.
static bool stream_bytes(cg_detok_stream *s, const char *src, size_t n, bool final, cg_buf *out) {
    const unsigned char *w = (const unsigned char *)src;
    unsigned char *tmp = NULL;
    size_t wn = n;
    if (s->n_hold) {
        tmp = malloc(s->n_hold + n + 1);
        if (!tmp) return false;
        memcpy(tmp, s->hold, s->n_hold);
        if (n) memcpy(tmp + s->n_hold, src, n);
        w = tmp;
        wn = s->n_hold + n;
        s->n_hold = 0;
    }
    size_t i = 0;
    while (i < wn) {
        uint32_t cp;
        int l = cg_utf8_decode((const char *)w + i, wn - i, &cp);
        if (l > 0) {
            cg_buf_append(out, w + i, (size_t)l);
            i += (size_t)l;
            continue;
        }
        size_t pl = partial_ok(w + i, wn - i);
        if (pl && pl == wn - i && !final) {   // an incomplete tail: wait for more bytes
            memcpy(s->hold, w + i, pl);
            s->n_hold = pl;
            break;
        }
        // maximal subpart: the lead byte plus the continuation bytes that were still valid
        size_t sub = 1;
        int need = cg_utf8_seq_len(w[i]);
        while (need > 1 && (int)sub < need && i + sub < wn && partial_ok(w + i, sub + 1) == sub + 1) sub++;
        cg_buf_append(out, "\xef\xbf\xbd", 3);
        i += sub;
    }
    free(tmp);
    return true;
}

cg_status cg_detok_stream_feed(cg_detok_stream *s, int32_t id, cg_buf *out, cg_err *err) {
    const cg_vocab *v = s->v;
    if (id < 0 || (uint32_t)id >= v->n_tokens)
        return cg_err_set(err, CG_ERR_INVALID, "tokenizer: token id %d out of range (%u tokens)", id, v->n_tokens);
    size_t n;
    const char *p = piece_of(v, id, (s->first && v->add_space_prefix) ? 1 : 0, s->unparse_special, &n);
    s->first = false;
    if (!stream_bytes(s, p, n, false, out) || !cg_buf_ok(out)) return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
    return CG_OK;
}

cg_status cg_detok_stream_flush(cg_detok_stream *s, cg_buf *out, cg_err *err) {
    bool ok = stream_bytes(s, NULL, 0, true, out);
    s->first = true;
    s->n_hold = 0;
    if (!ok || !cg_buf_ok(out)) return cg_err_set(err, CG_ERR_NOMEM, "tokenizer: out of memory");
    return CG_OK;
}
