// grammar.h — GBNF grammars (llama.cpp's syntax) and a matcher that masks the vocabulary.
//
// Syntax: `name ::= alternatives` rules (a rule ends at a newline unless inside parentheses or right
// after `::=` or `|`), `|` alternation, `( … )` grouping, `*` `+` `?` `{m}` `{m,}` `{m,n}` `{,n}`
// repetition, "literals", [classes] with ranges, `^` negation and escapes (\x.. \u.... \U........
// \t \r \n \\ \" \[ \] \- \^ \/), `.` (any code point), `# comments`. The start rule is `root`.
// Repetitions are rewritten into generated rules. Undefined rules, a missing root and left
// recursion (a rule that can reach itself without consuming input) are errors; every parse error
// names the line and column.
//
// Matching works on Unicode code points; a token may end inside a UTF-8 sequence (the rest comes with
// later tokens). Only valid UTF-8 is accepted: no overlong forms, no surrogates, no bytes C0, C1,
// F5–FF, nothing above U+10FFFF.
//
// Masking walks a byte trie of the vocabulary together with the grammar's stacks, pruning a subtree
// as soon as no stack accepts its prefix, so the cost is proportional to the tokens the grammar
// could allow (plus their prefixes), not to the vocabulary size.
//
// Ownership and threads: cg_grammar and cg_grammar_vocab are immutable after creation and may be
// shared between threads and matchers (they must outlive every matcher using them). A
// cg_grammar_matcher is the per-sequence state: one thread at a time.
#ifndef CG_SAMPLE_GRAMMAR_H
#define CG_SAMPLE_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "sample/sampler.h"   // cg_token_text

typedef struct cg_grammar cg_grammar;

#define CG_GRAMMAR_MAX_SOURCE (16u << 20)   // bytes of GBNF text
#define CG_GRAMMAR_MAX_ELEMENTS (4u << 20)  // compiled elements, repetitions expanded
#define CG_GRAMMAR_MAX_REPEAT 100000        // m and n in {m,n}

// Parses src[0..n) (UTF-8). root: the start rule's name, NULL for "root".
// Errors: CG_ERR_FORMAT "grammar: line L, column C: …" (syntax, undefined rule, left recursion,
// invalid UTF-8), CG_ERR_LIMIT (source or expansion too large), CG_ERR_NOMEM.
cg_status cg_grammar_parse(const char *src, size_t n, const char *root, cg_grammar **out, cg_err *err);
void cg_grammar_free(cg_grammar *g);   // accepts NULL

// Number of rules (generated ones included) — statistics for tests.
size_t cg_grammar_n_rules(const cg_grammar *g);

// ---- vocabulary ---------------------------------------------------------------------------------
enum {
    CG_GTOK_EOG = 1,       // end-of-generation token: allowed exactly when the grammar can end
    CG_GTOK_CONTROL = 2,   // special/control token: never produced under a grammar
};

typedef struct cg_grammar_vocab cg_grammar_vocab;

// tokens[i] are the raw bytes token i decodes to (borrowed during the call: copied into the trie);
// flags (optional) holds CG_GTOK_* per token. Empty tokens are never allowed (unless EOG).
cg_status cg_grammar_vocab_new(const cg_token_text *tokens, const uint8_t *flags, int32_t n_tokens,
                               cg_grammar_vocab **out, cg_err *err);
void cg_grammar_vocab_free(cg_grammar_vocab *v);   // accepts NULL
int32_t cg_grammar_vocab_size(const cg_grammar_vocab *v);
size_t cg_grammar_vocab_n_nodes(const cg_grammar_vocab *v);   // trie nodes (statistics)

// ---- matcher ------------------------------------------------------------------------------------
typedef struct cg_grammar_matcher cg_grammar_matcher;

// g is borrowed and must outlive the matcher.
cg_status cg_grammar_matcher_new(const cg_grammar *g, cg_grammar_matcher **out, cg_err *err);
void cg_grammar_matcher_free(cg_grammar_matcher *m);   // accepts NULL

// Fills allowed[0..n_tokens) with 1 for tokens the grammar accepts next, 0 otherwise.
// Errors: CG_ERR_NOMEM.
cg_status cg_grammar_matcher_mask(cg_grammar_matcher *m, const cg_grammar_vocab *v, uint8_t *allowed,
                                  cg_err *err);

// Advances over token id's bytes (an EOG token: only checks that the grammar can end).
// Errors: CG_ERR_STATE (the grammar does not accept it; the matcher is unchanged), CG_ERR_INVALID.
cg_status cg_grammar_matcher_accept_token(cg_grammar_matcher *m, const cg_grammar_vocab *v, int32_t id,
                                          cg_err *err);
// Advances over raw bytes. Same errors; on error the matcher is unchanged.
cg_status cg_grammar_matcher_accept_bytes(cg_grammar_matcher *m, const char *p, size_t n, cg_err *err);

// True when the input so far is a complete sentence of the grammar (an EOG token is allowed now).
bool cg_grammar_matcher_can_end(const cg_grammar_matcher *m);
// True when nothing but the end can follow (the generation should stop).
bool cg_grammar_matcher_must_end(const cg_grammar_matcher *m);

// Statistics of the last mask: trie nodes visited.
size_t cg_grammar_matcher_last_visits(const cg_grammar_matcher *m);

#endif
