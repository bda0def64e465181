// fts_cjk.c — CJK-bigram / case-folded-word tokenizer (see fts_cjk.h).
//
// One left-to-right pass over code points. A CJK run is remembered as the byte offsets of its
// code points; each adjacent pair is emitted as a bigram the moment the second one is decoded,
// so memory use is constant. Word runs are folded with utf8proc (NFKC + case fold) into a
// temporary allocation per word. Invariant: every emitted token is valid UTF-8 and non-empty.
#include "mem/fts_cjk.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/utf8.h"

bool cg_cjk_is_bigram_cp(unsigned cp) {
    return (cp >= 0xAC00 && cp <= 0xD7A3) ||   // Hangul syllables
           (cp >= 0x1100 && cp <= 0x11FF) ||   // Hangul jamo
           (cp >= 0x3130 && cp <= 0x318F) ||   // compatibility jamo
           (cp >= 0xA960 && cp <= 0xA97F) || (cp >= 0xD7B0 && cp <= 0xD7FF) ||
           (cp >= 0x3040 && cp <= 0x30FF) ||   // Hiragana, Katakana
           (cp >= 0x31F0 && cp <= 0x31FF) || (cp >= 0xFF66 && cp <= 0xFF9F) ||
           (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||  // Han
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x3134F);
}

static bool is_word_cp(uint32_t cp) {
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        return true;
    default:
        return false;
    }
}

// Cuts n down to at most CG_CJK_MAX_TOKEN bytes without splitting a code point.
static size_t cap_len(const char *s, size_t n) {
    if (n <= CG_CJK_MAX_TOKEN) return n;
    size_t k = CG_CJK_MAX_TOKEN;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    return k;
}

static int emit_word(const char *s, size_t start, size_t end, cg_cjk_token_fn fn, void *user) {
    utf8proc_uint8_t *folded = NULL;
    utf8proc_ssize_t nf = utf8proc_map((const utf8proc_uint8_t *)s + start,
                                       (utf8proc_ssize_t)(end - start), &folded,
                                       UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE |
                                           UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    int rc;
    if (nf < 0) {
        // Cannot happen for validated input; fall back to the raw bytes rather than failing.
        rc = fn(user, s + start, cap_len(s + start, end - start), start, end);
    } else if (nf == 0) {
        rc = 0;
    } else {
        rc = fn(user, (const char *)folded, cap_len((const char *)folded, (size_t)nf), start, end);
    }
    free(folded);
    return rc;
}

int cg_cjk_tokenize(const char *s, size_t n, cg_cjk_token_fn fn, void *user) {
    enum { NONE, WORD, CJK } state = NONE;
    size_t run_start = 0;      // WORD: start of the word
    size_t prev = 0, prev_end = 0;  // CJK: previous code point's span
    size_t run_len = 0;        // CJK: code points in the run so far
    size_t i = 0;
    int rc = 0;
    for (;;) {
        uint32_t cp = 0;
        int len = 0;
        int cls = 0;  // 0 separator, 1 word, 2 cjk
        if (i < n) {
            len = cg_utf8_decode(s + i, n - i, &cp);
            if (len <= 0) len = -1;  // invalid byte: a separator of one byte
            else cls = cg_cjk_is_bigram_cp(cp) ? 2 : is_word_cp(cp) ? 1 : 0;
        }
        // Close the current run when the class changes (or at the end).
        if (state == WORD && (i >= n || cls != 1)) {
            if ((rc = emit_word(s, run_start, i, fn, user))) return rc;
            state = NONE;
        } else if (state == CJK && (i >= n || cls != 2)) {
            if (run_len == 1 && (rc = fn(user, s + prev, prev_end - prev, prev, prev_end)))
                return rc;
            state = NONE;
        }
        if (i >= n) break;
        size_t step = len < 0 ? 1 : (size_t)len;
        if (cls == 1 && state == NONE) {
            state = WORD;
            run_start = i;
        } else if (cls == 2) {
            if (state == CJK) {
                // Bigram of the previous and this code point: contiguous bytes.
                if ((rc = fn(user, s + prev, i + step - prev, prev, i + step))) return rc;
                run_len++;
            } else {
                state = CJK;
                run_len = 1;
            }
            prev = i;
            prev_end = i + step;
        }
        i += step;
    }
    return 0;
}

typedef struct terms_ctx { cg_buf *out; bool first; } terms_ctx;

static int terms_cb(void *user, const char *tok, size_t n, size_t start, size_t end) {
    terms_ctx *c = user;
    if (!c->first) cg_buf_putc(c->out, ' ');
    c->first = false;
    cg_buf_append(c->out, tok, n);
    return cg_buf_ok(c->out) ? 0 : -1;
}

cg_status cg_cjk_terms(const char *s, size_t n, cg_buf *out, cg_err *err) {
    terms_ctx c = {out, true};
    cg_buf_append(out, "", 0);
    if (cg_cjk_tokenize(s, n, terms_cb, &c) != 0 || !cg_buf_ok(out))
        return cg_err_set(err, CG_ERR_NOMEM, "fts_cjk: out of memory building the term list");
    return CG_OK;
}

typedef struct set_ctx { cg_cjk_termset *t; size_t cap; } set_ctx;

static int set_cb(void *user, const char *tok, size_t n, size_t start, size_t end) {
    set_ctx *c = user;
    for (size_t k = 0; k < c->t->n; k++)
        if (strlen(c->t->v[k]) == n && memcmp(c->t->v[k], tok, n) == 0) return 0;
    if (c->t->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        char **v = realloc(c->t->v, cap * sizeof *v);
        if (!v) return -1;
        c->t->v = v;
        c->cap = cap;
    }
    char *d = malloc(n + 1);
    if (!d) return -1;
    memcpy(d, tok, n);
    d[n] = '\0';
    c->t->v[c->t->n++] = d;
    return 0;
}

cg_status cg_cjk_termset_of(const char *s, size_t n, cg_cjk_termset *out, cg_err *err) {
    *out = (cg_cjk_termset){0};
    set_ctx c = {out, 0};
    if (cg_cjk_tokenize(s, n, set_cb, &c) != 0) {
        cg_cjk_termset_free(out);
        return cg_err_set(err, CG_ERR_NOMEM, "fts_cjk: out of memory collecting query terms");
    }
    return CG_OK;
}

void cg_cjk_termset_free(cg_cjk_termset *t) {
    if (!t) return;
    for (size_t k = 0; k < t->n; k++) free(t->v[k]);
    free(t->v);
    *t = (cg_cjk_termset){0};
}
