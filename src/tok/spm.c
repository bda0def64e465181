// spm.c — SentencePiece-style BPE by scores, as llama.cpp's llm_tokenizer_spm_session does it.
//
// The caller passes a fragment whose spaces are already "▁" (and which carries the leading "▁"
// when add_space_prefix applies). The text is split into UTF-8 characters (by lead byte, so a
// stray continuation byte is a 1-byte symbol); every adjacent pair whose concatenation is a token
// becomes a candidate with that token's score; the best candidate (highest score, ties: leftmost)
// is merged, and the pairs around it become new candidates; stale candidates (a side changed) are
// skipped. Each final symbol is emitted as its token, or — when it is not a token — byte by byte
// through the <0xXX> byte tokens (unk when even those are missing).
//
// Invariants: reads only the immutable vocab; all scratch is per call.
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "base/heap.h"
#include "base/num.h"
#include "tok/vocab.h"

typedef struct sym {
    int32_t prev, next;
    uint32_t off, n;
} sym;

typedef struct bigram {
    int32_t left, right;
    float score;
    uint32_t size;
} bigram;

typedef struct spm_scratch {
    sym *syms;
    size_t cap_syms;
    cg_heap heap;   // of bigram
} spm_scratch;

// Heap order: higher score first, then lower left index.
static bool before(const void *pa, const void *pb) {
    const bigram *a = pa, *b = pb;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}


static bool try_bigram(const cg_vocab *v, spm_scratch *s, const char *text, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    const sym *a = &s->syms[left], *b = &s->syms[right];
    int32_t id = cg_vocab_lookup(v, text + a->off, (size_t)a->n + b->n);
    if (id < 0) return true;
    bigram bg = {left, right, v->scores[id], a->n + b->n};
    return cg_heap_push(&s->heap, &bg, before);
}

static size_t utf8_len_lead(unsigned char c) {
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

cg_status cg_spm_tokenize(const cg_vocab *v, const char *text, size_t n, cg_tokens *out, cg_err *err) {
    cg_status st = CG_OK;
    spm_scratch s = {.heap = {.elem = sizeof(bigram)}};
    if (n == 0) return CG_OK;
    if (n > INT32_MAX) return cg_err_set(err, CG_ERR_LIMIT, "spm: text of %zu bytes is too long", n);
    if (!cg_grow((void **)&s.syms, &s.cap_syms, n, sizeof(sym))) goto nomem;
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        size_t l = utf8_len_lead((unsigned char)text[off]);
        if (l > n - off) l = n - off;
        s.syms[ns] = (sym){ns - 1, -1, (uint32_t)off, (uint32_t)l};
        if (ns > 0) s.syms[ns - 1].next = ns;
        ns++;
        off += l;
    }
    for (int32_t i = 1; i < ns; i++)
        if (!try_bigram(v, &s, text, i - 1, i)) goto nomem;
    while (s.heap.n) {
        bigram bg;
        cg_heap_pop(&s.heap, &bg, before);
        sym *l = &s.syms[bg.left], *r = &s.syms[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s.syms[r->next].prev = bg.left;
        if (!try_bigram(v, &s, text, l->prev, bg.left)) goto nomem;
        if (!try_bigram(v, &s, text, bg.left, l->next)) goto nomem;
    }
    for (int32_t i = 0; i >= 0; i = s.syms[i].next) {
        const sym *y = &s.syms[i];
        int32_t id = cg_vocab_lookup(v, text + y->off, y->n);
        if (id >= 0) {
            if (!cg_tokens_push(out, id)) goto nomem;
            continue;
        }
        for (uint32_t j = 0; j < y->n; j++) {
            int32_t b = v->byte_tok[(unsigned char)text[y->off + j]];
            if (b < 0) b = v->special[CG_SPECIAL_UNK];
            if (b >= 0 && !cg_tokens_push(out, b)) goto nomem;
        }
    }
    goto done;
nomem:
    st = cg_err_set(err, CG_ERR_NOMEM, "spm: out of memory");
done:
    free(s.syms);
    cg_heap_free(&s.heap);
    return st;
}
