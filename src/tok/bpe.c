// bpe.c — byte-level BPE (GPT-2 style), as llama.cpp's llm_tokenizer_bpe_session does it.
//
// For each word the pre-tokenizer produced: write every byte of its UTF-8 as the GPT-2 code point
// for that byte ("byte encoding"), split the result into UTF-8 characters, then repeatedly merge
// the adjacent pair with the lowest merge rank (ties: leftmost) using a binary heap of candidate
// pairs; a popped pair whose sides changed since it was pushed is stale and skipped. Each final
// symbol is looked up as a token; a symbol that is not a token is emitted byte by byte (each single
// byte looked up as a token text, skipped when absent — llama.cpp's behaviour). With
// ignore_merges (llama3, tekken) a word that is itself a token is emitted directly.
//
// Invariants: reads only the immutable vocab; all scratch is per call.
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "base/heap.h"
#include "base/num.h"
#include "tok/vocab.h"

uint32_t cg_bpe_byte_cp(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) return b;
    // Bytes without a printable Latin-1 form get 256, 257, … in byte order.
    if (b <= 0x20) return 256u + b;                 // 0x00..0x20 → 256..288
    if (b <= 0xA0) return 256u + 33u + (b - 0x7Fu); // 0x7F..0xA0 → 289..322
    return 323;                                     // 0xAD
}

int cg_bpe_cp_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp >= 256 && cp <= 288) return (int)(cp - 256);
    if (cp >= 289 && cp <= 322) return (int)(cp - 289 + 0x7F);
    if (cp == 323) return 0xAD;
    return -1;
}

typedef struct sym {
    int32_t prev, next;
    uint32_t off, n;   // into the encoded word
    int32_t id;        // the token whose text this symbol is, or CG_TOKEN_NULL
} sym;

typedef struct bigram {
    int32_t left, right;
    int32_t rank;
    uint32_t size;
    int32_t result;    // id of the merged text (CG_TOKEN_NULL: not a token, or not known yet)
} bigram;

typedef struct bpe_scratch {
    char *enc;
    size_t cap_enc;
    sym *syms;
    size_t cap_syms;
    cg_heap heap;   // of bigram
} bpe_scratch;

// Heap order: lower rank first, then lower left index.
static bool before(const void *pa, const void *pb) {
    const bigram *a = pa, *b = pb;
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}


// Candidate merge of two adjacent symbols. Both sides are usually tokens, and then the id-pair
// table answers; otherwise the merge is looked up by text (same rank, slower).
static bool add_bigram(const cg_vocab *v, bpe_scratch *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    const sym *a = &s->syms[left], *b = &s->syms[right];
    int32_t rank, result = CG_TOKEN_NULL;
    if (a->id >= 0 && b->id >= 0) {
        if (!cg_vocab_pair(v, a->id, b->id, &rank, &result)) return true;
    } else {
        rank = cg_vocab_merge_rank(v, s->enc + a->off, a->n, s->enc + b->off, b->n);
        if (rank < 0) return true;
        result = cg_vocab_lookup(v, s->enc + a->off, (size_t)a->n + b->n);
    }
    bigram bg = {left, right, rank, a->n + b->n, result};
    return cg_heap_push(&s->heap, &bg, before);
}

static bool emit_symbol(const cg_vocab *v, const char *p, size_t n, cg_tokens *out) {
    int32_t id = cg_vocab_lookup(v, p, n);
    if (id >= 0) return cg_tokens_push(out, id);
    for (size_t j = 0; j < n; j++) {
        int32_t b = cg_vocab_lookup(v, p + j, 1);
        if (b >= 0 && !cg_tokens_push(out, b)) return false;
    }
    return true;
}

static bool bpe_word(const cg_vocab *v, bpe_scratch *s, const char *word, size_t wn, cg_tokens *out) {
    // byte-encode
    size_t need;
    if (!cg_mul_size(wn, 2, &need)) return false;
    if (!cg_grow((void **)&s->enc, &s->cap_enc, need + 1, 1)) return false;
    size_t en = 0;
    for (size_t i = 0; i < wn; i++) {
        uint32_t cp = cg_bpe_byte_cp((uint8_t)word[i]);
        if (cp < 0x80) {
            s->enc[en++] = (char)cp;
        } else {   // all mapped code points are < 0x800: two bytes
            s->enc[en++] = (char)(0xC0 | (cp >> 6));
            s->enc[en++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    if (v->ignore_merges) {
        int32_t id = cg_vocab_lookup(v, s->enc, en);
        if (id >= 0) return cg_tokens_push(out, id);
    }
    // symbols: one per UTF-8 character of the encoded word
    // one symbol per byte of the word = per character of the encoded word
    if (!cg_grow((void **)&s->syms, &s->cap_syms, wn + 1, sizeof(sym))) return false;
    int32_t ns = 0;
    for (size_t off = 0, i = 0; off < en; i++) {
        unsigned char c = (unsigned char)s->enc[off];
        size_t l = c < 0x80 ? 1 : 2;
        s->syms[ns] = (sym){ns - 1, -1, (uint32_t)off, (uint32_t)l, v->byte_tok[(unsigned char)word[i]]};
        if (ns > 0) s->syms[ns - 1].next = ns;
        ns++;
        off += l;
    }
    s->heap.n = 0;
    for (int32_t i = 1; i < ns; i++)
        if (!add_bigram(v, s, i - 1, i)) return false;
    while (s->heap.n) {
        bigram bg;
        cg_heap_pop(&s->heap, &bg, before);
        sym *l = &s->syms[bg.left], *r = &s->syms[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size || l->next != bg.right) continue;
        l->n += r->n;
        l->id = bg.result;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->syms[r->next].prev = bg.left;
        if (!add_bigram(v, s, l->prev, bg.left)) return false;
        if (!add_bigram(v, s, bg.left, l->next)) return false;
    }
    for (int32_t i = 0; i >= 0 && ns > 0; i = s->syms[i].next) {
        const sym *y = &s->syms[i];
        if (!y->n) continue;
        if (y->id >= 0) {
            if (!cg_tokens_push(out, y->id)) return false;
        } else if (!emit_symbol(v, s->enc + y->off, y->n, out)) {
            return false;
        }
    }
    return true;
}

// ---- word cache ----------------------------------------------------------------------------------
// Natural text repeats words, so each call remembers the ids of the words it has already merged
// (up to CACHE_MAX words of at most CACHE_WORD_MAX bytes). Purely an optimisation: a word's ids do
// not depend on its context.

#define CACHE_MAX (1u << 16)
#define CACHE_WORD_MAX 64
#define CACHE_MIN_TEXT 4096   // short texts are not worth the table

typedef struct centry {
    uint32_t word_off, word_n, ids_off, ids_n;
} centry;

typedef struct wcache {
    uint32_t *slots;   // entry index + 1; 0 = empty
    uint32_t mask;
    centry *e;
    uint32_t n;
    char *words;
    size_t n_words, cap_words;
    int32_t *ids;
    size_t n_ids, cap_ids;
} wcache;

void cg_bpe_cache_free(void *cache) {
    wcache *c = cache;
    if (!c) return;
    free(c->slots);
    free(c->e);
    free(c->words);
    free(c->ids);
    free(c);
}

static wcache *cache_get(cg_pretok_scratch *ps) {
    if (!ps->word_cache) {
        wcache *c = calloc(1, sizeof *c);
        if (!c) return NULL;
        c->mask = 2 * CACHE_MAX - 1;
        c->slots = calloc(2 * CACHE_MAX, sizeof *c->slots);
        c->e = malloc(CACHE_MAX * sizeof *c->e);
        if (!c->slots || !c->e) {
            cg_bpe_cache_free(c);
            return NULL;
        }
        ps->word_cache = c;
    }
    return ps->word_cache;
}

// Returns the slot for the word (an empty one when absent).
static uint32_t *cache_slot(wcache *c, const char *w, size_t n) {
    uint32_t i = (uint32_t)cg_tok_hash_bytes(w, n) & c->mask;
    for (;;) {
        uint32_t k = c->slots[i];
        if (!k) return &c->slots[i];
        const centry *e = &c->e[k - 1];
        if (e->word_n == n && !memcmp(c->words + e->word_off, w, n)) return &c->slots[i];
        i = (i + 1) & c->mask;
    }
}

static void cache_put(wcache *c, uint32_t *slot, const char *w, size_t n, const int32_t *ids, size_t n_ids) {
    if (c->n >= CACHE_MAX) return;
    if (!cg_grow((void **)&c->words, &c->cap_words, c->n_words + n, 1)) return;
    if (!cg_grow((void **)&c->ids, &c->cap_ids, c->n_ids + n_ids, sizeof(int32_t))) return;
    memcpy(c->words + c->n_words, w, n);
    if (n_ids) memcpy(c->ids + c->n_ids, ids, n_ids * sizeof(int32_t));
    c->e[c->n] = (centry){(uint32_t)c->n_words, (uint32_t)n, (uint32_t)c->n_ids, (uint32_t)n_ids};
    c->n_words += n;
    c->n_ids += n_ids;
    *slot = ++c->n;
}

cg_status cg_bpe_tokenize(const cg_vocab *v, const char *text, size_t n, cg_pretok_scratch *ps, cg_tokens *out,
                          cg_err *err) {
    cg_status st = cg_pretok_split(v->pretok, text, n, ps, err);
    if (st) return st;
    bpe_scratch s = {.heap = {.elem = sizeof(bigram)}};
    size_t cp = 0;
    for (size_t i = 0; i < ps->n_pieces; i++) {
        size_t len = ps->pieces[i];
        if (len == 0) continue;
        size_t b0 = ps->cp_off[cp], b1 = ps->cp_off[cp + len];
        cp += len;
        const char *w = text + b0;
        size_t wn = b1 - b0;
        wcache *c = (n >= CACHE_MIN_TEXT && wn <= CACHE_WORD_MAX) ? cache_get(ps) : NULL;
        uint32_t *slot = c ? cache_slot(c, w, wn) : NULL;
        if (slot && *slot) {
            const centry *e = &c->e[*slot - 1];
            for (uint32_t k = 0; k < e->ids_n; k++)
                if (!cg_tokens_push(out, c->ids[e->ids_off + k])) goto nomem;
            continue;
        }
        size_t n0 = out->n;
        if (!bpe_word(v, &s, w, wn, out)) goto nomem;
        // a word may give no ids (bytes this vocabulary lacks); out->ids may then still be NULL
        if (slot) cache_put(c, slot, w, wn, out->n > n0 ? out->ids + n0 : NULL, out->n - n0);
    }
    goto done;
nomem:
    st = cg_err_set(err, CG_ERR_NOMEM, "bpe: out of memory");
done:
    free(s.enc);
    free(s.syms);
    cg_heap_free(&s.heap);
    return st;
}
