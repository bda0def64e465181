// grammar_int.h — compiled grammar representation shared by grammar_parse.c and grammar_match.c.
// Internal to src/sample.
//
// A rule is a run of elements: alternatives separated by GE_ALT, the last one closed by GE_END.
// A character set is a GE_CHAR / GE_CHAR_NOT element followed by GE_CHAR_ALT (one more code point)
// and GE_CHAR_RNG_UPPER (makes the previous element a range lo..upper) items. GE_CHAR_ANY is `.`.
#ifndef CG_SAMPLE_GRAMMAR_INT_H
#define CG_SAMPLE_GRAMMAR_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "sample/grammar.h"

enum {
    GE_END = 0,
    GE_ALT,
    GE_RULE_REF,
    GE_CHAR,
    GE_CHAR_NOT,
    GE_CHAR_RNG_UPPER,
    GE_CHAR_ALT,
    GE_CHAR_ANY,
};

typedef struct gelem {
    uint32_t type;
    uint32_t value;   // code point, or rule id for GE_RULE_REF
} gelem;

struct cg_grammar {
    gelem *el;           // owned: all rules, concatenated
    uint32_t n_el;
    uint32_t *rule_off;  // owned: first element of each rule
    uint32_t n_rules;
    uint32_t root;
    uint32_t *rem;       // owned [n_el]: bytes that complete the alternative from each head (grammar_dist.c)
};

// Fills g->rem (g->el, rule_off, n_rules and n_el set). False when out of memory.
bool cg_grammar_compute_dist(cg_grammar *g);

static inline int gelem_is_char(uint32_t t) { return t == GE_CHAR || t == GE_CHAR_NOT || t == GE_CHAR_ANY; }

#endif
