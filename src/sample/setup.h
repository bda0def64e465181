// setup.h — the per-model and per-sequence setup of constrained sampling, shared by the server's
// engine backend and `chingu generate`.
//
// cg_sample_vocab: a model vocabulary prepared once for sampling — the raw bytes of every token
// (for logprobs and the grammar trie), the end-of-generation ids (for cg_stop) and, when asked for,
// the grammar vocabulary (a byte trie: building it visits every token, so callers that never use a
// grammar can skip it).
//
// cg_sample_grammar_build: one grammar from what a user gives — GBNF text, a JSON Schema, or "any
// JSON object".
//
// cg_sample_seq: what one generated sequence needs to pick tokens — a sampler chain and, under a
// grammar, a matcher and the mask buffer. cg_sample_seq_next does mask → sample → accept (sampler
// history and grammar) in one call.
//
// Ownership: a cg_sample_vocab owns its arrays and grammar vocabulary; the token bytes are borrowed
// from the cg_vocab it was made from, which must outlive it. A cg_sample_seq owns its sampler,
// matcher and mask; the cg_grammar and cg_sample_vocab it is given are borrowed and must outlive it.
// Thread-safety: a prepared cg_sample_vocab is immutable and may be shared; a cg_sample_seq is used
// by one thread at a time.
#ifndef CG_SAMPLE_SETUP_H
#define CG_SAMPLE_SETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "sample/grammar.h"
#include "sample/sampler.h"
#include "tok/tok.h"

typedef struct cg_sample_vocab {
    int32_t n_vocab;             // the model's output size (<= the vocabulary's token count)
    cg_token_text *pieces;       // [n_vocab] token bytes (owned array; bytes borrowed from the cg_vocab)
    int32_t *eog;                // end-of-generation token ids (owned)
    size_t n_eog;
    cg_grammar_vocab *gvocab;    // owned; NULL unless prepared with_grammar
} cg_sample_vocab;

// Prepares v's first n_vocab tokens. with_grammar builds the grammar vocabulary too (EOG tokens
// flagged CG_GTOK_EOG; control, unknown and unused tokens CG_GTOK_CONTROL).
// Errors: CG_ERR_FORMAT (the vocabulary has fewer than n_vocab tokens, or n_vocab <= 0), CG_ERR_NOMEM.
cg_status cg_sample_vocab_init(cg_sample_vocab *sv, const cg_vocab *v, int32_t n_vocab, bool with_grammar,
                               cg_err *err);
void cg_sample_vocab_free(cg_sample_vocab *sv);   // accepts NULL and a zeroed struct

typedef enum cg_sample_grammar_kind {
    CG_SAMPLE_GRAMMAR_GBNF,          // src is GBNF text (start rule `root`)
    CG_SAMPLE_GRAMMAR_JSON_SCHEMA,   // src is a JSON Schema document
    CG_SAMPLE_GRAMMAR_JSON_OBJECT,   // any JSON object; src is ignored
} cg_sample_grammar_kind;

// Compiles one grammar from src[0..n). Errors: those of cg_grammar_parse (GBNF: "grammar: line L,
// column C: …") and cg_schema_to_gbnf (schema: "json schema: …" with the JSON pointer, or the byte
// offset of a JSON syntax error), CG_ERR_INVALID (unknown kind), CG_ERR_NOMEM.
cg_status cg_sample_grammar_build(cg_sample_grammar_kind kind, const char *src, size_t n, cg_grammar **out,
                                  cg_err *err);

typedef struct cg_sample_seq {
    cg_sampler *smp;             // owned
    cg_grammar_matcher *gm;      // owned; NULL without a grammar
    uint8_t *allowed;            // owned [n_vocab] mask; NULL without a grammar
    const cg_sample_vocab *sv;   // borrowed
    // token budget (cg_sample_seq_set_budget); budget 0: none
    int64_t budget;              // the most tokens this sequence may generate
    int64_t n_gen;               // tokens picked by cg_sample_seq_next so far
    uint32_t margin;             // closing mode starts when tokens left <= distance + margin
    uint32_t n_cut;              // steps whose mask the budget cut (statistics)
    bool closing;                // closing mode was entered (statistics)
} cg_sample_seq;

#define CG_SAMPLE_BUDGET_MARGIN 8u   // the default margin of closing mode (tokens)

// Creates the sampler for p and, when g is not NULL, a matcher for g (sv must then have been
// prepared with_grammar). Errors: those of cg_sampler_new (CG_ERR_INVALID naming the field),
// CG_ERR_INVALID (a grammar without a grammar vocabulary), CG_ERR_NOMEM. On error *q is left
// zeroed (nothing to free).
cg_status cg_sample_seq_init(cg_sample_seq *q, const cg_sampler_params *p, const cg_grammar *g,
                             const cg_sample_vocab *sv, cg_err *err);
void cg_sample_seq_free(cg_sample_seq *q);   // accepts NULL and a zeroed struct

// Picks the next token from logits[0..n_vocab): masks by the grammar, samples, adds the token to the
// sampler's history and advances the grammar over it.
// Errors: CG_ERR_STATE (no token is allowed: the grammar and the logits exclude everything; the
// sequence should end), CG_ERR_NOMEM.
cg_status cg_sample_seq_next(cg_sample_seq *q, const float *logits, int32_t *out_token, cg_err *err);

// Bounds the sequence to max_tokens generated tokens (<= 0: no bound). Under a grammar every mask
// then keeps the output completable in the tokens left (grammar.h, "Budgets"): a token is allowed
// only if the grammar's distance after it is at most left − 1, and once left <= distance + margin
// (closing mode) only if it strictly lowers the distance. The sequence is complete — must_end — as
// soon as the grammar can end in closing mode, so with a single-byte token for every byte (byte
// BPE, SPM byte fallback) a grammar-constrained output always ends as a complete sentence within
// max_tokens, if max_tokens is at least the grammar's shortest sentence in bytes. Callers report
// that end as a grammar stop ("stop"), not as "length". Without a grammar only n_gen is counted.
void cg_sample_seq_set_budget(cg_sample_seq *q, int64_t max_tokens, uint32_t margin);

// True when a grammar allows nothing but the end (the sequence should stop), or under a budget
// when the grammar can end and closing mode is on; false without a grammar.
bool cg_sample_seq_must_end(const cg_sample_seq *q);

#endif
