// grammar_dist.c — the distance table of a compiled grammar: for every element position, the fewest
// UTF-8 bytes that complete the rest of its alternative (see grammar.h, "Budgets").
//
// A character set costs the UTF-8 length of the smallest code point it matches (1 for every set
// that matches some ASCII character; UINT32_MAX for a set that matches nothing). A rule reference
// costs the rule's minimum length, the minimum over its alternatives of the sum of their elements.
// Minimum lengths are a least fixed point: start every rule at "unreachable" (UINT32_MAX) and
// recompute all rules until nothing changes. Values only decrease, and a rule whose shortest
// derivation tree has height h is final after h passes; a shortest derivation never repeats a rule
// on a root-to-leaf path, so at most n_rules + 1 passes run. Sums saturate at UINT32_MAX, which
// stays "no finite completion" (a rule such as `a ::= "x" a`).
//
// Invariant established: g->rem[p] = cost(p) + g->rem[next(p)] for every character set or rule
// reference head p, g->rem[p] = 0 at GE_END / GE_ALT; items inside a set (GE_CHAR_ALT,
// GE_CHAR_RNG_UPPER) hold 0 and are never read.
#include <stdlib.h>

#include "sample/grammar_int.h"

#define INF UINT32_MAX

static uint32_t sat_add(uint32_t a, uint32_t b) { return a > INF - b ? INF : a + b; }

static uint32_t utf8_len(uint32_t cp) {
    if (cp > 0x10FFFF) return INF;
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

static bool end_type(uint32_t t) { return t == GE_END || t == GE_ALT; }

// Bytes of the shortest code point the set at el matches.
static uint32_t char_cost(const gelem *el) {
    if (el->type == GE_CHAR_ANY) return 1;
    const gelem *start = el;
    if (el->type == GE_CHAR) {
        uint32_t lo = INF;
        do {
            if (el->value < lo) lo = el->value;
            el += el[1].type == GE_CHAR_RNG_UPPER ? 2 : 1;
        } while (el->type == GE_CHAR_ALT);
        return utf8_len(lo);
    }
    // negated: the smallest code point that no item covers
    uint32_t cur = 0;
    for (bool progress = true; progress && cur <= 0x10FFFF;) {
        progress = false;
        el = start;
        do {
            uint32_t a = el->value, b = a;
            if (el[1].type == GE_CHAR_RNG_UPPER) { b = el[1].value; el += 2; }
            else el++;
            if (a <= cur && cur <= b) {
                cur = b >= 0x10FFFF ? 0x110000 : b + 1;
                progress = true;
            }
        } while (el->type == GE_CHAR_ALT);
    }
    return utf8_len(cur);
}

static uint32_t next_pos(const cg_grammar *g, uint32_t p) {
    if (gelem_is_char(g->el[p].type)) {
        p++;
        while (g->el[p].type == GE_CHAR_ALT || g->el[p].type == GE_CHAR_RNG_UPPER) p++;
        return p;
    }
    return p + 1;   // rule reference
}

static uint32_t head_cost(const cg_grammar *g, const uint32_t *minlen, uint32_t p) {
    return g->el[p].type == GE_RULE_REF ? minlen[g->el[p].value] : char_cost(&g->el[p]);
}

bool cg_grammar_compute_dist(cg_grammar *g) {
    uint32_t *minlen = malloc((size_t)(g->n_rules ? g->n_rules : 1) * sizeof *minlen);
    uint32_t *heads = malloc((size_t)(g->n_el ? g->n_el : 1) * sizeof *heads);
    g->rem = calloc((size_t)(g->n_el ? g->n_el : 1), sizeof *g->rem);
    bool ok = minlen && heads && g->rem;
    if (!ok) goto out;
    for (uint32_t r = 0; r < g->n_rules; r++) minlen[r] = INF;
    // Passes alternate between backward and forward: a chain of references settles in one pass in
    // its own direction (generated rules mostly refer to later ones), so typical grammars need two
    // or three passes.
    for (bool changed = true, backward = true; changed; backward = !backward) {
        changed = false;
        for (uint32_t k = 0; k < g->n_rules; k++) {
            uint32_t r = backward ? g->n_rules - 1 - k : k;
            uint32_t best = INF, sum = 0;
            for (uint32_t p = g->rule_off[r];;) {
                if (end_type(g->el[p].type)) {
                    if (sum < best) best = sum;
                    if (g->el[p].type == GE_END) break;
                    sum = 0;
                    p++;
                    continue;
                }
                sum = sat_add(sum, head_cost(g, minlen, p));
                p = next_pos(g, p);
            }
            if (best < minlen[r]) {
                minlen[r] = best;
                changed = true;
            }
        }
    }
    // rem of every head, alternative by alternative, from its end backwards
    for (uint32_t r = 0; r < g->n_rules; r++) {
        uint32_t n = 0;
        for (uint32_t p = g->rule_off[r];;) {
            if (end_type(g->el[p].type)) {
                g->rem[p] = 0;
                uint32_t acc = 0;
                while (n > 0) {
                    uint32_t h = heads[--n];
                    acc = sat_add(acc, head_cost(g, minlen, h));
                    g->rem[h] = acc;
                }
                if (g->el[p].type == GE_END) break;
                p++;
                continue;
            }
            heads[n++] = p;
            p = next_pos(g, p);
        }
    }
out:
    free(minlen);
    free(heads);
    return ok;
}
