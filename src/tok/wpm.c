// wpm.c — WordPiece (BERT) tokenization, as llama.cpp's llm_tokenizer_wpm_session does it.
//
// Pre-processing (BertNormalizer + BertPreTokenizer): optionally map every code point to the first
// code point of its canonical decomposition and drop accent marks (strip_accents), drop NUL,
// U+FFFD and control characters, lowercase, split on whitespace, and make every punctuation
// character, ASCII symbol and CJK ideograph a word of its own. Each word gets the phantom prefix
// "▁" (GGUF BERT vocabularies store word-initial pieces with it and "##" continuations without)
// and is covered greedily by the longest token from the left; a word that cannot be covered
// completely becomes [UNK].
//
// Invariants: reads only the immutable vocab; all scratch is per call.
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/utf8.h"
#include "tok/vocab.h"

static bool is_ws(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static bool is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

typedef struct word_buf {
    char *p;
    size_t n, cap;
} word_buf;

static bool wb_put(word_buf *w, const char *s, size_t n) {
    if (w->n + n > w->cap) {
        size_t c = w->cap ? w->cap * 2 : 64;
        while (c < w->n + n) c *= 2;
        char *q = realloc(w->p, c);
        if (!q) return false;
        w->p = q;
        w->cap = c;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
    return true;
}

// Greedy longest-match of "▁" + word[0..n) (word already in w->p after the prefix).
static bool cover_word(const cg_vocab *v, const char *w, size_t n, cg_tokens *out) {
    size_t n0 = out->n;
    for (size_t i = 0; i < n; i++) {
        size_t jmax = i + v->max_token_len + 1;
        if (jmax > n) jmax = n;
        bool match = false;
        for (size_t j = jmax; j > i; j--) {
            int32_t id = cg_vocab_lookup(v, w + i, j - i);
            if (id >= 0) {
                if (!cg_tokens_push(out, id)) return false;
                match = true;
                i = j - 1;
                break;
            }
        }
        if (!match) {
            out->n = n0;   // discard the partial cover
            break;
        }
    }
    if (out->n == n0 && !cg_tokens_push(out, v->special[CG_SPECIAL_UNK])) return false;
    return true;
}

cg_status cg_wpm_tokenize(const cg_vocab *v, const char *text, size_t n, cg_tokens *out, cg_err *err) {
    cg_status st = CG_OK;
    word_buf w = {0};
    const char *prefix = "\xe2\x96\x81";
    if (!wb_put(&w, prefix, 3)) goto nomem;
    for (size_t i = 0; i <= n;) {
        uint32_t cp = 0;
        int l = 1;
        bool end = i == n;
        if (!end) {
            l = cg_utf8_decode(text + i, n - i, &cp);
            if (l <= 0) cp = 0xFFFD, l = 1;
            i += (size_t)l;
        } else {
            i++;
        }
        if (end || is_ws(cp)) {   // finish the current word
            if (w.n > 3 && !cover_word(v, w.p, w.n, out)) goto nomem;
            w.n = 3;
            continue;
        }
        if (v->wpm_strip_accents) {
            utf8proc_int32_t dec[8];
            int boundclass = 0;
            utf8proc_ssize_t r = utf8proc_decompose_char((utf8proc_int32_t)cp, dec, 8, UTF8PROC_DECOMPOSE, &boundclass);
            if (r > 0) cp = (uint32_t)dec[0];
        }
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
        if (cp == 0 || cp == 0xFFFD || cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
            cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CS)
            continue;
        if (v->wpm_strip_accents &&
            (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME))
            continue;
        uint32_t oc = v->wpm_lowercase ? (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp) : cp;
        char u[4];
        int ul = cg_utf8_encode(oc, u);
        if (ul <= 0) continue;
        bool punct = cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
        bool sym = cat >= UTF8PROC_CATEGORY_SM && cat <= UTF8PROC_CATEGORY_SO;
        if (punct || (cp < 0x7F && sym) || is_chinese(cp)) {   // a word of its own
            if (w.n > 3 && !cover_word(v, w.p, w.n, out)) goto nomem;
            w.n = 3;
            if (!wb_put(&w, u, (size_t)ul) || !cover_word(v, w.p, w.n, out)) goto nomem;
            w.n = 3;
        } else if (!wb_put(&w, u, (size_t)ul)) {
            goto nomem;
        }
    }
    goto done;
nomem:
    st = cg_err_set(err, CG_ERR_NOMEM, "wpm: out of memory");
done:
    free(w.p);
    return st;
}
