// grammar_match.c — the pushdown matcher, the vocabulary trie and masking.
//
// A parse position is a stack of grammar positions, represented as an immutable linked list of
// nodes (pos, parent) that are hash-consed: equal stacks are the same pointer, so a set of stacks
// deduplicates by pointer marks and stacks share their tails. A stack's top always points at a
// character element after expansion (rule references are expanded eagerly, in `expand`); the empty
// stack — the grammar is complete — is the sentinel `done`. Tail calls do not push a continuation,
// so right recursion (x*, lists) does not grow the stack.
//
// Expansion results are memoised on the node. Nodes live in the matcher's arena; when more than
// GC_NODES exist after accepting a token, the live stacks are copied into a fresh arena.
//
// Masking walks the vocabulary trie depth-first with the set of stacks: each edge consumes one
// byte (strict UTF-8 decoding; a partial code point keeps only the stacks whose top can match some
// code point with that prefix), and a subtree is pruned as soon as the set is empty.
//
// Distances (grammar.h, "Budgets"): every stack node carries its distance (g->rem of its position
// plus its parent's, fixed at interning, as the node is immutable), every cached transition state
// the minimum over its stacks; a budgeted mask only compares the state after each token with the
// limit. Masks the limit cut are not cached, so a cached mask is always the grammar's full mask.
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/num.h"
#include "sample/grammar_int.h"

#define GC_NODES (1u << 18)
#define MC_SLOTS 32

// ---- vocabulary trie ------------------------------------------------------------------------------
typedef struct tnode { uint32_t first_edge, n_edges, tok_first, n_tok; } tnode;
typedef struct tedge { uint32_t child; uint8_t byte; } tedge;

struct cg_grammar_vocab {
    int32_t n_tokens;
    tnode *nodes;
    uint32_t n_nodes, cap_nodes;
    tedge *edges;
    uint32_t n_edges, cap_edges;
    int32_t *toks;        // token ids in trie order (node.tok_first indexes here)
    int32_t *eog;
    uint32_t n_eog;
    uint8_t *flags;       // per token
    char *blob;           // all token bytes
    size_t *off;          // n_tokens + 1 offsets into blob
};

typedef struct vitem { const char *p; uint32_t n; int32_t id; } vitem;

static int cmp_vitem(const void *pa, const void *pb) {
    const vitem *a = pa, *b = pb;
    uint32_t m = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->p, b->p, m);
    if (c) return c;
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int64_t trie_build(cg_grammar_vocab *v, const vitem *it, uint32_t lo, uint32_t hi, uint32_t depth) {
    if (v->n_nodes == v->cap_nodes) {
        uint32_t cap = v->cap_nodes ? v->cap_nodes * 2 : 1024;
        tnode *p = realloc(v->nodes, (size_t)cap * sizeof *p);
        if (!p) return -1;
        v->nodes = p;
        v->cap_nodes = cap;
    }
    uint32_t me = v->n_nodes++;
    uint32_t k = lo;
    while (k < hi && it[k].n == depth) k++;
    uint32_t groups = 0;
    for (uint32_t i = k; i < hi; i++)
        if (i == k || it[i].p[depth] != it[i - 1].p[depth]) groups++;
    if (v->n_edges + groups > v->cap_edges) {
        uint32_t cap = v->cap_edges ? v->cap_edges : 1024;
        while (cap < v->n_edges + groups) cap *= 2;
        tedge *p = realloc(v->edges, (size_t)cap * sizeof *p);
        if (!p) return -1;
        v->edges = p;
        v->cap_edges = cap;
    }
    uint32_t first = v->n_edges;
    v->n_edges += groups;
    v->nodes[me] = (tnode){first, groups, lo, k - lo};
    uint32_t g = 0;
    for (uint32_t i = k; i < hi;) {
        uint32_t j = i + 1;
        while (j < hi && it[j].p[depth] == it[i].p[depth]) j++;
        int64_t child = trie_build(v, it, i, j, depth + 1);
        if (child < 0) return -1;
        v->edges[first + g] = (tedge){(uint32_t)child, (uint8_t)it[i].p[depth]};
        g++;
        i = j;
    }
    return me;
}

void cg_grammar_vocab_free(cg_grammar_vocab *v) {
    if (!v) return;
    free(v->nodes);
    free(v->edges);
    free(v->toks);
    free(v->eog);
    free(v->flags);
    free(v->blob);
    free(v->off);
    free(v);
}

int32_t cg_grammar_vocab_size(const cg_grammar_vocab *v) { return v->n_tokens; }
size_t cg_grammar_vocab_n_nodes(const cg_grammar_vocab *v) { return v->n_nodes; }

cg_status cg_grammar_vocab_new(const cg_token_text *tokens, const uint8_t *flags, int32_t n, cg_grammar_vocab **out,
                               cg_err *err) {
    cg_status st = CG_OK;
    vitem *it = NULL;
    if (n <= 0) return cg_err_set(err, CG_ERR_INVALID, "grammar: vocabulary of %d tokens", n);
    cg_grammar_vocab *v = calloc(1, sizeof *v);
    if (!v) return cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory");
    v->n_tokens = n;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (tokens[i].n > UINT32_MAX / 2 || !cg_add_size(total, tokens[i].n, &total)) {
            st = cg_err_set(err, CG_ERR_LIMIT, "grammar: token %d is too long (%zu bytes)", i, tokens[i].n);
            goto fail;
        }
    }
    v->blob = malloc(total ? total : 1);
    v->off = malloc(((size_t)n + 1) * sizeof *v->off);
    v->flags = calloc((size_t)n, 1);
    v->toks = malloc((size_t)n * sizeof *v->toks);
    v->eog = malloc((size_t)n * sizeof *v->eog);
    it = malloc((size_t)n * sizeof *it);
    if (!v->blob || !v->off || !v->flags || !v->toks || !v->eog || !it) goto nomem;
    uint32_t n_it = 0;
    size_t at = 0;
    for (int32_t i = 0; i < n; i++) {
        v->off[i] = at;
        if (tokens[i].n) memcpy(v->blob + at, tokens[i].p, tokens[i].n);
        uint8_t f = flags ? flags[i] : 0;
        v->flags[i] = f;
        if (f & CG_GTOK_EOG) v->eog[v->n_eog++] = i;
        // the trie walk recurses once per byte: overlong tokens stay out (never allowed)
        else if (!(f & CG_GTOK_CONTROL) && tokens[i].n && tokens[i].n <= CG_GRAMMAR_MAX_TOKEN_BYTES)
            it[n_it++] = (vitem){v->blob + at, (uint32_t)tokens[i].n, i};
        at += tokens[i].n;
    }
    v->off[n] = at;
    qsort(it, n_it, sizeof *it, cmp_vitem);
    for (uint32_t i = 0; i < n_it; i++) v->toks[i] = it[i].id;
    if (trie_build(v, it, 0, n_it, 0) < 0) goto nomem;
    free(it);
    *out = v;
    return CG_OK;
nomem:
    st = cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory building the vocabulary trie (%d tokens)", n);
fail:
    free(it);
    cg_grammar_vocab_free(v);
    return st;
}

// ---- stacks -------------------------------------------------------------------------------------------
typedef struct snode {
    uint32_t pos;
    uint32_t vmark, smark;    // epoch marks: expansion visit, set membership
    struct snode *parent;
    struct snode **exp;       // memoised expansion (stacks with a char element on top, or done)
    uint32_t n_exp;
    bool has_exp;
    struct snode *fwd;        // during compaction: the copy in the new arena
    uint32_t dist;            // bytes to complete this stack: rem[pos] + parent's dist (saturating)
} snode;

typedef struct pstate {       // partial UTF-8 sequence
    uint32_t cp, lo, hi;
    uint8_t need, nlo, nhi;
} pstate;

typedef struct svec { snode **p; uint32_t n, cap; } svec;

struct cg_grammar_matcher {
    const cg_grammar *g;
    cg_arena arena;           // snodes and expansion lists
    snode **tab;              // intern table (open addressing)
    size_t tab_cap, n_nodes;
    snode done;               // the empty stack
    uint32_t vepoch, sepoch;
    snode **cur;              // owned: the current set of stacks
    uint32_t n_cur;
    pstate partial;
    bool ended;               // an EOG token was accepted
    svec tmp;                 // expansion scratch
    cg_arena scratch;         // per-mask sets
    size_t visits;
    svec acc;                 // accept_cp scratch
    // transition cache: (set of stacks, partial UTF-8) states and their byte transitions
    struct dstate **ds;       // owned array; states live in darena
    uint32_t n_ds, cap_ds;
    uint32_t *ds_tab;         // intern table of state ids + 1 (0 = empty slot)
    size_t ds_tab_cap;
    cg_arena darena;
    // whole-mask cache by start state: generation inside a long string or list revisits the same
    // state token after token, and then a mask is a copy
    // (only masks the budget did not cut are cached; maxd: the largest distance after an allowed token)
    struct mcache { int32_t state; uint32_t maxd; uint8_t *bits; } mc[MC_SLOTS];
    uint32_t n_mc, next_mc;
    const cg_grammar_vocab *mc_vocab;
};

#define DS_MAX 8192           // cached states before the cache is flushed
#define DS_UNKNOWN (-1)
#define DS_REJECT (-2)

typedef struct dstate {
    snode **set;              // sorted by address (canonical)
    uint32_t n;
    pstate p;                 // need == 0: all other fields zero
    uint32_t dist;            // distance of this state (set_dist)
    uint64_t hash;
    int32_t next[256];
} dstate;

static inline size_t hash_key(uint32_t pos, const snode *parent) {
    uint64_t h = (uint64_t)(uintptr_t)parent * 0x9E3779B97F4A7C15ull ^ ((uint64_t)pos * 0xC2B2AE3D27D4EB4Full);
    return (size_t)(h ^ (h >> 29));
}

static bool tab_grow(cg_grammar_matcher *m) {
    size_t cap = m->tab_cap ? m->tab_cap * 2 : 4096;
    snode **t = calloc(cap, sizeof *t);
    if (!t) return false;
    for (size_t i = 0; i < m->tab_cap; i++) {
        snode *nd = m->tab[i];
        if (!nd) continue;
        size_t h = hash_key(nd->pos, nd->parent) & (cap - 1);
        while (t[h]) h = (h + 1) & (cap - 1);
        t[h] = nd;
    }
    free(m->tab);
    m->tab = t;
    m->tab_cap = cap;
    return true;
}

static snode *intern(cg_grammar_matcher *m, uint32_t pos, snode *parent) {
    if ((m->n_nodes + 1) * 2 > m->tab_cap && !tab_grow(m)) return NULL;
    size_t h = hash_key(pos, parent) & (m->tab_cap - 1);
    for (snode *nd; (nd = m->tab[h]); h = (h + 1) & (m->tab_cap - 1))
        if (nd->pos == pos && nd->parent == parent) return nd;
    snode *nd = cg_arena_calloc(&m->arena, 1, sizeof *nd, 8);
    if (!nd) return NULL;
    nd->pos = pos;
    nd->parent = parent;
    uint32_t pd = parent ? parent->dist : 0, r = m->g->rem[pos];
    nd->dist = r > UINT32_MAX - pd ? UINT32_MAX : r + pd;
    m->tab[h] = nd;
    m->n_nodes++;
    return nd;
}

static bool svec_push(svec *v, snode *nd) {
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 64;
        snode **p = realloc(v->p, (size_t)cap * sizeof *p);
        if (!p) return false;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = nd;
    return true;
}

static inline bool is_end(uint32_t t) { return t == GE_END || t == GE_ALT; }

// Position after the character set starting at pos.
static uint32_t skip_char(const cg_grammar *g, uint32_t pos) {
    pos++;
    while (g->el[pos].type == GE_CHAR_ALT || g->el[pos].type == GE_CHAR_RNG_UPPER) pos++;
    return pos;
}

static bool match_char(const gelem *el, uint32_t cp) {
    if (el->type == GE_CHAR_ANY) return true;
    bool positive = el->type == GE_CHAR, found = false;
    do {
        if (el[1].type == GE_CHAR_RNG_UPPER) {
            found |= el->value <= cp && cp <= el[1].value;
            el += 2;
        } else {
            found |= el->value == cp;
            el++;
        }
    } while (el->type == GE_CHAR_ALT);
    return found == positive;
}

// Can the set at el match some code point in [lo, hi]?
static bool match_range(const gelem *el, uint32_t lo, uint32_t hi) {
    if (el->type == GE_CHAR_ANY) return true;
    bool positive = el->type == GE_CHAR;
    const gelem *start = el;
    if (positive) {
        do {
            uint32_t a = el->value, b = a;
            if (el[1].type == GE_CHAR_RNG_UPPER) { b = el[1].value; el += 2; }
            else el++;
            if (a <= hi && b >= lo) return true;
        } while (el->type == GE_CHAR_ALT);
        return false;
    }
    // negated: true unless the items cover [lo, hi] completely
    uint32_t cur = lo;
    for (bool progress = true; progress;) {
        progress = false;
        el = start;
        do {
            uint32_t a = el->value, b = a;
            if (el[1].type == GE_CHAR_RNG_UPPER) { b = el[1].value; el += 2; }
            else el++;
            if (a <= cur && cur <= b) {
                if (b >= hi) return false;
                cur = b + 1;
                progress = true;
            }
        } while (el->type == GE_CHAR_ALT);
    }
    return true;
}

// Appends to m->tmp the expansion of the stack nd (its top may be a rule reference or an end).
static bool expand_into(cg_grammar_matcher *m, snode *nd) {
    if (nd->vmark == m->vepoch) return true;
    nd->vmark = m->vepoch;
    if (nd == &m->done) return svec_push(&m->tmp, nd);
    const gelem *el = &m->g->el[nd->pos];
    if (is_end(el->type)) return expand_into(m, nd->parent ? nd->parent : &m->done);
    if (el->type != GE_RULE_REF) return svec_push(&m->tmp, nd);
    // tail call: no continuation when the reference ends its alternative
    snode *cont = nd->parent;
    if (!is_end(el[1].type)) {
        cont = intern(m, nd->pos + 1, nd->parent);
        if (!cont) return false;
    }
    uint32_t r = el->value, p = m->g->rule_off[r];
    for (;;) {
        snode *alt = is_end(m->g->el[p].type) ? (cont ? cont : &m->done) : intern(m, p, cont);
        if (!alt || !expand_into(m, alt)) return false;
        while (!is_end(m->g->el[p].type)) p++;
        if (m->g->el[p].type == GE_END) break;
        p++;
    }
    return true;
}

// The memoised expansion of nd.
static bool expansion(cg_grammar_matcher *m, snode *nd, snode ***out, uint32_t *n_out) {
    if (nd == &m->done || !nd->has_exp) {
        m->vepoch++;
        m->tmp.n = 0;
        if (!expand_into(m, nd)) return false;
        if (nd == &m->done) {   // never memoised on the sentinel: it is the same every time
            *out = m->tmp.p;
            *n_out = m->tmp.n;
            return true;
        }
        nd->exp = cg_arena_alloc(&m->arena, (size_t)(m->tmp.n ? m->tmp.n : 1) * sizeof *nd->exp, 8);
        if (!nd->exp) return false;
        memcpy(nd->exp, m->tmp.p, (size_t)m->tmp.n * sizeof *nd->exp);
        nd->n_exp = m->tmp.n;
        nd->has_exp = true;
    }
    *out = nd->exp;
    *n_out = nd->n_exp;
    return true;
}

typedef struct sset { snode **p; uint32_t n; } sset;

// S' = the stacks after consuming code point cp from each stack in s. Memory from `a`.
static bool accept_cp(cg_grammar_matcher *m, sset s, uint32_t cp, cg_arena *a, sset *out) {
    m->sepoch++;
    svec acc = m->acc;
    acc.n = 0;
    bool ok = true;
    for (uint32_t i = 0; i < s.n && ok; i++) {
        snode *nd = s.p[i];
        if (nd == &m->done || !match_char(&m->g->el[nd->pos], cp)) continue;
        uint32_t np = skip_char(m->g, nd->pos);
        snode *next = is_end(m->g->el[np].type) ? (nd->parent ? nd->parent : &m->done) : intern(m, np, nd->parent);
        snode **e;
        uint32_t ne;
        if (!next || !expansion(m, next, &e, &ne)) { ok = false; break; }
        for (uint32_t j = 0; j < ne; j++) {
            if (e[j]->smark == m->sepoch) continue;
            e[j]->smark = m->sepoch;
            if (!svec_push(&acc, e[j])) { ok = false; break; }
        }
    }
    if (ok) {
        out->n = acc.n;
        out->p = acc.n ? cg_arena_alloc(a, (size_t)acc.n * sizeof *out->p, 8) : NULL;
        if (acc.n && !out->p) ok = false;
        else if (acc.n) memcpy(out->p, acc.p, (size_t)acc.n * sizeof *out->p);
    }
    m->acc = acc;
    return ok;
}

static bool filter_range(cg_grammar_matcher *m, sset s, uint32_t lo, uint32_t hi, cg_arena *a, sset *out) {
    uint32_t keep = 0;
    for (uint32_t i = 0; i < s.n; i++)
        keep += s.p[i] != &m->done && match_range(&m->g->el[s.p[i]->pos], lo, hi);
    if (keep == s.n) { *out = s; return true; }
    out->n = 0;
    out->p = keep ? cg_arena_alloc(a, (size_t)keep * sizeof *out->p, 8) : NULL;
    if (keep && !out->p) return false;
    for (uint32_t i = 0; i < s.n; i++)
        if (s.p[i] != &m->done && match_range(&m->g->el[s.p[i]->pos], lo, hi)) out->p[out->n++] = s.p[i];
    return true;
}

// One byte of strict UTF-8. False when the byte cannot continue the sequence.
static bool utf8_step(pstate *p, uint8_t b) {
    if (p->need == 0) {
        p->nlo = 0x80;
        p->nhi = 0xBF;
        if (b < 0x80) { p->cp = b; p->lo = p->hi = b; return true; }
        if (b >= 0xC2 && b <= 0xDF) { p->need = 1; p->cp = b & 0x1F; }
        else if (b >= 0xE0 && b <= 0xEF) {
            p->need = 2;
            p->cp = b & 0x0F;
            if (b == 0xE0) p->nlo = 0xA0;   // overlong
            if (b == 0xED) p->nhi = 0x9F;   // surrogates
        } else if (b >= 0xF0 && b <= 0xF4) {
            p->need = 3;
            p->cp = b & 0x07;
            if (b == 0xF0) p->nlo = 0x90;   // overlong
            if (b == 0xF4) p->nhi = 0x8F;   // above U+10FFFF
        } else {
            return false;   // continuation byte, C0, C1, F5..FF
        }
    } else {
        if (b < p->nlo || b > p->nhi) return false;
        p->cp = (p->cp << 6) | (b & 0x3Fu);
        p->need--;
        p->nlo = 0x80;
        p->nhi = 0xBF;
    }
    // the code points this prefix can still become (exact: the next byte's range is applied too)
    uint32_t shift = 6u * p->need;
    if (p->need) {
        p->lo = (p->cp << shift) | ((uint32_t)(p->nlo & 0x3F) << (shift - 6));
        p->hi = (p->cp << shift) | ((uint32_t)(p->nhi & 0x3F) << (shift - 6)) | ((1u << (shift - 6)) - 1);
    } else {
        p->lo = p->hi = p->cp;
    }
    return true;
}

// Consumes one byte from (s, p). False with out->n == 0 when rejected; false with a NOMEM flag set
// when memory ran out (reported through *nomem).
static bool step_byte(cg_grammar_matcher *m, sset s, pstate *p, uint8_t b, cg_arena *a, sset *out, bool *nomem) {
    if (!utf8_step(p, b)) return false;
    bool ok = p->need ? filter_range(m, s, p->lo, p->hi, a, out) : accept_cp(m, s, p->cp, a, out);
    if (!ok) { *nomem = true; return false; }
    return out->n > 0;
}

static void mc_clear(cg_grammar_matcher *m);

// ---- matcher API -----------------------------------------------------------------------------------------
void cg_grammar_matcher_free(cg_grammar_matcher *m) {
    if (!m) return;
    cg_arena_free(&m->arena);
    cg_arena_free(&m->scratch);
    free(m->tab);
    free(m->cur);
    free(m->tmp.p);
    free(m->acc.p);
    free(m->ds);
    free(m->ds_tab);
    cg_arena_free(&m->darena);
    mc_clear(m);
    free(m);
}

static bool set_cur(cg_grammar_matcher *m, sset s) {
    snode **p = malloc((size_t)(s.n ? s.n : 1) * sizeof *p);
    if (!p) return false;
    memcpy(p, s.p, (size_t)s.n * sizeof *p);
    free(m->cur);
    m->cur = p;
    m->n_cur = s.n;
    return true;
}

cg_status cg_grammar_matcher_new(const cg_grammar *g, cg_grammar_matcher **out, cg_err *err) {
    cg_grammar_matcher *m = calloc(1, sizeof *m);
    if (!m) return cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory");
    m->g = g;
    cg_arena_init(&m->arena, 1 << 20);
    cg_arena_init(&m->scratch, 1 << 20);
    cg_arena_init(&m->darena, 1 << 20);
    m->done.pos = UINT32_MAX;
    // the initial stacks: each alternative of root, expanded
    bool ok = true;
    m->vepoch++;
    m->tmp.n = 0;
    uint32_t p = g->rule_off[g->root];
    for (;;) {
        snode *alt = is_end(g->el[p].type) ? &m->done : intern(m, p, NULL);
        if (!alt || !expand_into(m, alt)) { ok = false; break; }
        while (!is_end(g->el[p].type)) p++;
        if (g->el[p].type == GE_END) break;
        p++;
    }
    if (ok) ok = set_cur(m, (sset){m->tmp.p, m->tmp.n});
    if (!ok) {
        cg_grammar_matcher_free(m);
        return cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory");
    }
    *out = m;
    return CG_OK;
}

bool cg_grammar_matcher_can_end(const cg_grammar_matcher *m) {
    if (m->partial.need) return false;
    for (uint32_t i = 0; i < m->n_cur; i++)
        if (m->cur[i] == &m->done) return true;
    return false;
}

bool cg_grammar_matcher_must_end(const cg_grammar_matcher *m) {
    return m->ended || (m->partial.need == 0 && m->n_cur == 1 && m->cur[0] == &m->done);
}

size_t cg_grammar_matcher_last_visits(const cg_grammar_matcher *m) { return m->visits; }

static snode *copy_node(cg_grammar_matcher *m, snode *nd, bool *ok) {
    if (!nd || nd == &m->done) return nd;
    if (nd->fwd) return nd->fwd;
    snode *parent = copy_node(m, nd->parent, ok);
    if (!*ok) return NULL;
    snode *c = intern(m, nd->pos, parent);
    if (!c) { *ok = false; return NULL; }
    nd->fwd = c;
    return c;
}

// Copies the live stacks into a fresh arena, dropping everything else.
static void mc_clear(cg_grammar_matcher *m) {
    for (uint32_t i = 0; i < m->n_mc; i++) free(m->mc[i].bits);
    m->n_mc = m->next_mc = 0;
}

static void ds_flush(cg_grammar_matcher *m) {
    mc_clear(m);
    m->n_ds = 0;
    if (m->ds_tab) memset(m->ds_tab, 0, m->ds_tab_cap * sizeof *m->ds_tab);
    cg_arena_reset(&m->darena);
}

static bool compact(cg_grammar_matcher *m) {
    ds_flush(m);
    cg_arena old = m->arena;
    snode **old_tab = m->tab;
    cg_arena_init(&m->arena, 1 << 20);
    m->tab = NULL;
    m->tab_cap = 0;
    m->n_nodes = 0;
    bool ok = true;
    for (uint32_t i = 0; i < m->n_cur && ok; i++) m->cur[i] = copy_node(m, m->cur[i], &ok);
    free(old_tab);
    cg_arena_free(&old);
    return ok;
}

cg_status cg_grammar_matcher_accept_bytes(cg_grammar_matcher *m, const char *bytes, size_t n, cg_err *err) {
    if (m->ended) return cg_err_set(err, CG_ERR_STATE, "grammar: input after the end of generation");
    cg_arena_reset(&m->scratch);
    sset s = {m->cur, m->n_cur};
    pstate p = m->partial;
    for (size_t i = 0; i < n; i++) {
        sset next;
        bool nomem = false;
        if (!step_byte(m, s, &p, (uint8_t)bytes[i], &m->scratch, &next, &nomem)) {
            if (nomem) return cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory");
            return cg_err_set(err, CG_ERR_STATE, "grammar: byte 0x%02x at offset %zu of \"%.*s\" is not accepted here",
                              (unsigned char)bytes[i], i, (int)(n < 60 ? n : 60), bytes);
        }
        s = next;
    }
    if (!set_cur(m, s)) return cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory");
    m->partial = p;
    if (m->n_nodes > GC_NODES && !compact(m)) return cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory");
    return CG_OK;
}

cg_status cg_grammar_matcher_accept_token(cg_grammar_matcher *m, const cg_grammar_vocab *v, int32_t id, cg_err *err) {
    if (id < 0 || id >= v->n_tokens)
        return cg_err_set(err, CG_ERR_INVALID, "grammar: token %d is outside the vocabulary (0..%d)", id, v->n_tokens - 1);
    uint8_t f = v->flags[id];
    if (f & CG_GTOK_EOG) {
        if (!cg_grammar_matcher_can_end(m))
            return cg_err_set(err, CG_ERR_STATE, "grammar: end of generation (token %d) before the grammar is complete", id);
        m->ended = true;
        return CG_OK;
    }
    if (f & CG_GTOK_CONTROL)
        return cg_err_set(err, CG_ERR_STATE, "grammar: control token %d is never accepted by a grammar", id);
    size_t len = v->off[id + 1] - v->off[id];
    if (len == 0) return cg_err_set(err, CG_ERR_STATE, "grammar: empty token %d is never accepted", id);
    return cg_grammar_matcher_accept_bytes(m, v->blob + v->off[id], len, err);
}

// ---- transition cache ---------------------------------------------------------------------------
static int cmp_ptr(const void *pa, const void *pb) {
    uintptr_t a = (uintptr_t) * (snode *const *)pa, b = (uintptr_t) * (snode *const *)pb;
    return a < b ? -1 : a > b;
}

static uint64_t ds_hash(sset s, const pstate *p) {
    uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)p->need << 56 | (uint64_t)p->cp << 16 | (uint64_t)p->nlo << 8 | p->nhi);
    for (uint32_t i = 0; i < s.n; i++) h = (h ^ (uint64_t)(uintptr_t)s.p[i]) * 0x100000001b3ull;
    return h ^ (h >> 31);
}

static bool ds_same(const dstate *d, sset s, const pstate *p) {
    return d->n == s.n && d->p.need == p->need && d->p.cp == p->cp && d->p.nlo == p->nlo && d->p.nhi == p->nhi &&
           memcmp(d->set, s.p, (size_t)s.n * sizeof *s.p) == 0;
}

// The distance of the state (s, p): the fewest bytes to a complete sentence (UINT32_MAX: none).
// In a partial code point the top's character costs the bytes still missing instead of its minimum.
static uint32_t set_dist(const cg_grammar_matcher *m, sset s, const pstate *p) {
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < s.n; i++) {
        const snode *nd = s.p[i];
        uint32_t d = nd->dist;
        if (nd != &m->done && p->need && d != UINT32_MAX) {
            uint32_t c = m->g->rem[nd->pos] - m->g->rem[skip_char(m->g, nd->pos)];
            d = d - c + p->need;
        }
        if (d < best) best = d;
    }
    return best;
}

// The id of the state (s sorted, p), creating it. -3 on out of memory.
static int32_t ds_intern(cg_grammar_matcher *m, sset s, pstate p) {
    if (p.need == 0) memset(&p, 0, sizeof p);
    if ((size_t)(m->n_ds + 1) * 2 > m->ds_tab_cap) {
        size_t cap = m->ds_tab_cap ? m->ds_tab_cap * 2 : 1024;
        uint32_t *t = calloc(cap, sizeof *t);
        if (!t) return -3;
        for (uint32_t i = 0; i < m->n_ds; i++) {
            size_t h = m->ds[i]->hash & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = i + 1;
        }
        free(m->ds_tab);
        m->ds_tab = t;
        m->ds_tab_cap = cap;
    }
    uint64_t hash = ds_hash(s, &p);
    size_t h = hash & (m->ds_tab_cap - 1);
    for (; m->ds_tab[h]; h = (h + 1) & (m->ds_tab_cap - 1)) {
        dstate *d = m->ds[m->ds_tab[h] - 1];
        if (d->hash == hash && ds_same(d, s, &p)) return (int32_t)(m->ds_tab[h] - 1);
    }
    if (m->n_ds == m->cap_ds) {
        uint32_t cap = m->cap_ds ? m->cap_ds * 2 : 256;
        dstate **a = realloc(m->ds, (size_t)cap * sizeof *a);
        if (!a) return -3;
        m->ds = a;
        m->cap_ds = cap;
    }
    dstate *d = cg_arena_alloc(&m->darena, sizeof *d, 8);
    snode **set = s.n ? cg_arena_alloc(&m->darena, (size_t)s.n * sizeof *set, 8) : NULL;
    if (!d || (s.n && !set)) return -3;
    if (s.n) memcpy(set, s.p, (size_t)s.n * sizeof *set);
    d->set = set;
    d->n = s.n;
    d->p = p;
    d->dist = set_dist(m, s, &p);
    d->hash = hash;
    for (int i = 0; i < 256; i++) d->next[i] = DS_UNKNOWN;
    m->ds[m->n_ds] = d;
    m->ds_tab[h] = m->n_ds + 1;
    return (int32_t)m->n_ds++;
}

// The state after byte b, DS_REJECT, or -3 on out of memory.
static int32_t ds_next(cg_grammar_matcher *m, int32_t id, uint8_t b) {
    dstate *d = m->ds[id];
    if (d->next[b] != DS_UNKNOWN) return d->next[b];
    pstate p = d->p;
    sset out;
    bool nomem = false;
    if (!step_byte(m, (sset){d->set, d->n}, &p, b, &m->scratch, &out, &nomem)) {
        if (nomem) return -3;
        return d->next[b] = DS_REJECT;
    }
    if (out.n > 1) qsort(out.p, out.n, sizeof *out.p, cmp_ptr);
    int32_t nid = ds_intern(m, out, p);
    if (nid >= 0) m->ds[id]->next[b] = nid;
    return nid;
}

typedef struct walk_ctx {
    cg_grammar_matcher *m;
    const cg_grammar_vocab *v;
    uint8_t *allowed;
    bool nomem;
    int64_t limit;            // a token is allowed when the distance after it is <= limit
    bool cut;                 // the limit removed a token the grammar allows
    uint32_t maxd;            // the largest distance after a token the grammar allows
} walk_ctx;

static void walk(walk_ctx *w, uint32_t node, int32_t state) {
    const tnode *tn = &w->v->nodes[node];
    w->m->visits += tn->n_edges;
    for (uint32_t e = 0; e < tn->n_edges && !w->nomem; e++) {
        const tedge *ed = &w->v->edges[tn->first_edge + e];
        int32_t next = ds_next(w->m, state, ed->byte);
        if (next < 0) {
            if (next == -3) w->nomem = true;
            continue;
        }
        const tnode *child = &w->v->nodes[ed->child];
        if (child->n_tok) {
            uint32_t d = w->m->ds[next]->dist;
            if (d > w->maxd) w->maxd = d;
            if ((int64_t)d <= w->limit) {
                for (uint32_t t = 0; t < child->n_tok; t++) w->allowed[w->v->toks[child->tok_first + t]] = 1;
            } else {
                w->cut = true;
            }
        }
        if (child->n_edges) walk(w, ed->child, next);
    }
}

cg_status cg_grammar_matcher_mask_budget(cg_grammar_matcher *m, const cg_grammar_vocab *v, uint8_t *allowed,
                                         int64_t max_dist, bool *cut, cg_err *err) {
    memset(allowed, 0, (size_t)v->n_tokens);
    m->visits = 0;
    if (cut) *cut = false;
    if (m->ended) return CG_OK;
    cg_arena_reset(&m->scratch);
    if (m->n_ds > DS_MAX) ds_flush(m);
    walk_ctx w = {m, v, allowed, false, max_dist, false, 0};
    snode **sorted = malloc((size_t)(m->n_cur ? m->n_cur : 1) * sizeof *sorted);
    if (!sorted) return cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory while masking");
    memcpy(sorted, m->cur, (size_t)m->n_cur * sizeof *sorted);
    qsort(sorted, m->n_cur, sizeof *sorted, cmp_ptr);
    int32_t start = ds_intern(m, (sset){sorted, m->n_cur}, m->partial);
    free(sorted);
    if (start < 0) return cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory while masking");
    if (m->mc_vocab != v) {
        mc_clear(m);
        m->mc_vocab = v;
    }
    size_t n_bytes = ((size_t)v->n_tokens + 7) / 8;
    for (uint32_t i = 0; i < m->n_mc; i++) {
        if (m->mc[i].state != start) continue;
        if ((int64_t)m->mc[i].maxd > max_dist) break;   // the budget cuts this mask: walk
        const uint8_t *bits = m->mc[i].bits;
        for (int32_t t = 0; t < v->n_tokens; t++) allowed[t] = (bits[t >> 3] >> (t & 7)) & 1;
        goto eog;
    }
    if (v->n_nodes) walk(&w, 0, start);
    if (w.nomem) return cg_err_set(err, CG_ERR_NOMEM, "grammar: out of memory while masking");
    if (cut) *cut = w.cut;
    uint8_t *bits = w.cut ? NULL : calloc(n_bytes, 1);
    if (bits) {   // caching is an optimisation: without memory, just do not cache
        for (int32_t t = 0; t < v->n_tokens; t++) bits[t >> 3] |= (uint8_t)(allowed[t] << (t & 7));
        uint32_t slot;   // (start is not cached: a cached state's mask is cut by a budget or copied above)
        if (m->n_mc < MC_SLOTS) {
            slot = m->n_mc++;
        } else {   // evict round-robin
            slot = m->next_mc++ % MC_SLOTS;
            free(m->mc[slot].bits);
        }
        m->mc[slot] = (struct mcache){start, w.maxd, bits};
    }
eog:
    if (cg_grammar_matcher_can_end(m))
        for (uint32_t i = 0; i < v->n_eog; i++) allowed[v->eog[i]] = 1;
    return CG_OK;
}

cg_status cg_grammar_matcher_mask(cg_grammar_matcher *m, const cg_grammar_vocab *v, uint8_t *allowed, cg_err *err) {
    return cg_grammar_matcher_mask_budget(m, v, allowed, INT64_MAX, NULL, err);
}

uint32_t cg_grammar_matcher_distance(const cg_grammar_matcher *m) {
    if (m->ended) return 0;
    return set_dist(m, (sset){m->cur, m->n_cur}, &m->partial);
}
