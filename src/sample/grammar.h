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
// Use per step: cg_grammar_matcher_mask → cg_sampler_sample(…, allowed, …) →
// cg_grammar_matcher_accept_token; stop when an EOG token was drawn or cg_grammar_matcher_must_end.
// Cost (qwen3, 151,936 tokens, JSON grammar, release build): a mask that walks the trie takes
// 10–15 ms when most of the vocabulary is allowed (inside a string); a state seen before is served
// from the matcher's mask cache (~1 ms, the copy of the mask); masks where the grammar allows few
// tokens visit only their prefixes. A mask cut by a budget (below) is never cached: in closing mode
// each step walks the trie, about as long as an uncached mask (test_grammar, release, busy machine:
// 18.8 ms against 22.8 ms) — only for the last few tokens of an output that runs into its budget.
//
// Budgets (termination within a token limit). Every compiled grammar carries, for each element
// position, the fewest UTF-8 bytes that complete its alternative (grammar_dist.c: a least fixed
// point over the rules; a character set costs the length of its shortest code point). The distance
// of a stack is the sum over its frames, the distance of the matcher the minimum over its stacks
// (inside a partial code point: the bytes still missing plus the rest). Distance 0 ⇔ can_end.
// cg_grammar_matcher_mask_budget allows only tokens after which the distance is <= max_dist; the
// caller (cg_sample_seq_next, setup.h) picks max_dist = left − 1 normally and dist − 1 in closing
// mode, where left = tokens that may still be generated, including this one.
//
// Why it terminates. Claim: if dist ≤ left before a step, some token is allowed, and after it
// dist' ≤ left − 1, so the invariant holds at the next step; at left = 0 the distance is 0, the
// output is a complete sentence, and the sequence ends without an EOG token (setup.h). Proof of
// "some token is allowed": take a stack of least distance d > 0; its top character set has a
// cheapest code point c of L bytes; its first byte b leads to a state whose distance is d − 1
// (L − 1 bytes missing + the rest: the min-cost alternatives the expansion reaches are among the
// stacks). A token whose text is exactly b is therefore allowed (d − 1 ≤ max_dist in both modes).
// Closing mode only ever allows tokens with dist' < dist, so it ends within dist more tokens.
// What it needs: a single-byte token for every byte along a shortest completion — byte-level BPE
// (all 256 bytes) and SentencePiece with byte fallback (<0x00>..<0xFF>) have them. Without one
// (a vocabulary lacking "}" say) the mask can become empty before the end: the sampler then
// reports CG_ERR_STATE "no token is allowed" and the caller ends the sequence (an incomplete
// output, finish "length"), never a hang. A grammar with no finite completion (distance UINT32_MAX)
// allows nothing under a budget.
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

#define CG_GRAMMAR_MAX_TOKEN_BYTES 1024

// tokens[i] are the raw bytes token i decodes to (borrowed during the call: copied into the trie);
// flags (optional) holds CG_GTOK_* per token. Empty tokens and tokens longer than
// CG_GRAMMAR_MAX_TOKEN_BYTES are never allowed (unless EOG).
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

// As cg_grammar_matcher_mask, but a token is allowed only when the matcher's distance after it is
// <= max_dist (INT64_MAX: no budget; negative: no token at all); EOG tokens are allowed exactly when
// the grammar can end. *cut (optional) is set when the budget removed a token the grammar allows.
// Masks the budget does not cut are cached as before. Errors: CG_ERR_NOMEM.
cg_status cg_grammar_matcher_mask_budget(cg_grammar_matcher *m, const cg_grammar_vocab *v, uint8_t *allowed,
                                         int64_t max_dist, bool *cut, cg_err *err);

// The fewest bytes that complete the input so far (0: complete; UINT32_MAX: no completion exists).
uint32_t cg_grammar_matcher_distance(const cg_grammar_matcher *m);

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
