// sampler.h — the sampler chain: turns one row of logits into one token id.
//
// A cg_sampler is configured per request (cg_sampler_params) and owns its RNG and its token
// history, so the same seed gives the same tokens whatever else runs in the batch (there is no
// global RNG). Default order, as llama.cpp's: penalties → DRY → top-k → typical → top-p → min-p →
// XTC → temperature → draw. temperature <= 0 means greedy (argmax after penalties and bias).
// mirostat = 2 replaces the truncation stages by mirostat v2 (penalties → temperature → mirostat).
//
// The stages also exist as plain functions over a candidate array (cg_candidates) so tests and other
// modules can use one stage alone. They never scan more than needed: top-k is a partial selection
// (O(n) + O(k log k)), the others work on what the previous stage kept.
//
// Logprobs (cg_logprobs_compute) are taken from the model's raw distribution: log-softmax of the raw
// logits, before logit_bias, penalties, temperature or truncation (OpenAI semantics).
//
// Thread-safety: a cg_sampler is used by one thread at a time; different samplers are independent.
// The stage functions are pure apart from the RNG passed to them.
#ifndef CG_SAMPLE_SAMPLER_H
#define CG_SAMPLE_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

// ---- RNG: xoshiro256** seeded through splitmix64 -------------------------------------------------
typedef struct cg_rng { uint64_t s[4]; } cg_rng;
void     cg_rng_seed(cg_rng *r, uint64_t seed);
uint64_t cg_rng_next(cg_rng *r);
double   cg_rng_uniform(cg_rng *r);   // in [0, 1), 53 random bits

// ---- candidates --------------------------------------------------------------------------------
typedef struct cg_token_data {
    int32_t id;
    float logit;
    float p;   // valid after cg_candidates_softmax (or any stage that says it computes p)
} cg_token_data;

typedef struct cg_candidates {
    cg_token_data *data;   // borrowed: the caller owns the array
    size_t n;
    bool sorted;           // data is sorted by logit, descending
} cg_candidates;

// Sorts by logit (descending, if not sorted yet) and fills p with the softmax of the logits.
// Candidates with logit -INFINITY get p = 0. Does nothing for n == 0.
void cg_candidates_softmax(cg_candidates *c);

// The stages. min_keep is the number of candidates a truncating stage always keeps (at least 1).
void cg_sample_top_k(cg_candidates *c, int32_t k, size_t min_keep);       // k <= 0: no-op
void cg_sample_top_p(cg_candidates *c, float p, size_t min_keep);         // p >= 1: no-op
void cg_sample_min_p(cg_candidates *c, float p, size_t min_keep);         // p <= 0: no-op
void cg_sample_typical(cg_candidates *c, float p, size_t min_keep);       // p >= 1: no-op
void cg_sample_temperature(cg_candidates *c, float t);                    // t > 0: logit /= t
// XTC: with probability `probability` (one RNG draw), removes every candidate whose p >= threshold
// except the least probable of them, when at least two are above the threshold.
void cg_sample_xtc(cg_candidates *c, float probability, float threshold, size_t min_keep, cg_rng *rng);
// Repetition (llama.cpp rule: positive logits divided, negative multiplied), frequency and presence
// penalties for the tokens in history[0..n_history). Tokens not in c are untouched.
// Returns CG_ERR_NOMEM only.
cg_status cg_sample_penalties(cg_candidates *c, const int32_t *history, size_t n_history,
                              float repeat, float frequency, float presence, cg_err *err);
// DRY ("don't repeat yourself"): a candidate that would extend a repeat of length L >= allowed_length
// of an earlier part of history gets logit -= multiplier * base^(L - allowed_length). Sequence
// breakers (token ids in breakers[0..n_breakers)) end a repeat. O(n_history) with a Z-array.
// Returns CG_ERR_NOMEM only.
cg_status cg_sample_dry(cg_candidates *c, const int32_t *history, size_t n_history, float multiplier,
                        float base, int32_t allowed_length, const int32_t *breakers, size_t n_breakers,
                        cg_err *err);
// Draws one candidate from softmax(c); returns its index in c->data. c->n must be > 0.
size_t cg_sample_dist(cg_candidates *c, cg_rng *rng);
// Index of the highest logit (first on ties). c->n must be > 0.
size_t cg_sample_greedy(const cg_candidates *c);

// ---- the chain ---------------------------------------------------------------------------------
typedef enum cg_sampler_stage {
    CG_SAMPLER_STAGE_PENALTIES,
    CG_SAMPLER_STAGE_DRY,
    CG_SAMPLER_STAGE_TOP_K,
    CG_SAMPLER_STAGE_TYPICAL,
    CG_SAMPLER_STAGE_TOP_P,
    CG_SAMPLER_STAGE_MIN_P,
    CG_SAMPLER_STAGE_XTC,
    CG_SAMPLER_STAGE_TEMPERATURE,
    CG_SAMPLER_STAGE_COUNT_
} cg_sampler_stage;

typedef struct cg_logit_bias { int32_t id; float bias; } cg_logit_bias;   // bias -INFINITY bans

#define CG_SAMPLER_MAX_BREAKERS 16

typedef struct cg_sampler_params {
    uint64_t seed;
    float temperature;          // <= 0: greedy
    int32_t top_k;              // <= 0: off
    float top_p, min_p, typical_p;
    size_t min_keep;            // 0 is treated as 1
    int32_t penalty_last_n;     // window of history for penalties; -1: the whole context
    float repeat_penalty;       // 1: off
    float frequency_penalty, presence_penalty;   // 0: off
    const cg_logit_bias *logit_bias;   // borrowed for cg_sampler_new only (copied)
    size_t n_logit_bias;
    int mirostat;               // 0 off, 2 mirostat v2 (v1 is not implemented: CG_ERR_UNSUPPORTED)
    float mirostat_tau, mirostat_eta;
    float dry_multiplier;       // 0: off
    float dry_base;
    int32_t dry_allowed_length, dry_last_n;   // dry_last_n -1: the whole context
    int32_t dry_breakers[CG_SAMPLER_MAX_BREAKERS];
    size_t n_dry_breakers;
    float xtc_probability, xtc_threshold;     // probability 0: off
    const cg_sampler_stage *order;   // NULL: default order; borrowed for cg_sampler_new only
    size_t n_order;
} cg_sampler_params;

// llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, typical 1, penalties off
// (repeat 1, last_n 64), mirostat tau 5 eta 0.1, DRY off (base 1.75, allowed 2), XTC off (0.1).
void cg_sampler_params_default(cg_sampler_params *p);

typedef struct cg_sampler cg_sampler;

// Validates p (ranges, ids within n_vocab, order entries) and creates a sampler.
// Errors: CG_ERR_INVALID naming the field and value, CG_ERR_UNSUPPORTED (mirostat 1), CG_ERR_NOMEM.
cg_status cg_sampler_new(const cg_sampler_params *p, int32_t n_vocab, cg_sampler **out, cg_err *err);
void cg_sampler_free(cg_sampler *s);   // accepts NULL

// Adds a token to the history the penalties and DRY look at (prompt tokens too, if wanted).
cg_status cg_sampler_accept(cg_sampler *s, int32_t token, cg_err *err);
// Forgets the history and re-seeds the RNG (for reuse on a new request).
void cg_sampler_reset(cg_sampler *s, uint64_t seed);

// Samples one token from logits[0..n_vocab). allowed (optional, n_vocab bytes; nonzero = allowed)
// masks tokens out before any stage, e.g. from a grammar. Does not add the token to the history.
// Errors: CG_ERR_STATE when no token is allowed (all masked or all -inf), CG_ERR_NOMEM.
cg_status cg_sampler_sample(cg_sampler *s, const float *logits, const uint8_t *allowed,
                            int32_t *out_token, cg_err *err);

// The candidates left after the last cg_sampler_sample, with their final probabilities (borrowed
// until the next call). Tests use it to check distributions.
const cg_candidates *cg_sampler_last(const cg_sampler *s);

// ---- logprobs (OpenAI shape) ----------------------------------------------------------------------
#define CG_LOGPROBS_MAX_TOP 20

typedef struct cg_token_text { const char *p; size_t n; } cg_token_text;   // raw token bytes

typedef struct cg_token_logprob {
    int32_t id;
    float logprob;          // natural log, from the raw logits
    cg_token_text bytes;    // borrowed from the vocab passed to cg_logprobs_compute; {NULL,0} without one
} cg_token_logprob;

typedef struct cg_logprobs {
    cg_token_logprob chosen;
    size_t n_top;           // <= CG_LOGPROBS_MAX_TOP, most probable first (ties: lower id first)
    cg_token_logprob top[CG_LOGPROBS_MAX_TOP];
} cg_logprobs;

// Log-softmax of logits[0..n_vocab) for `chosen` and the n_top most probable tokens. vocab
// (optional, n_vocab entries) supplies the token bytes. O(n_vocab · log n_top).
// Errors: CG_ERR_INVALID (chosen out of range, n_top > CG_LOGPROBS_MAX_TOP, no finite logit).
cg_status cg_logprobs_compute(const float *logits, int32_t n_vocab, int32_t chosen, size_t n_top,
                              const cg_token_text *vocab, cg_logprobs *out, cg_err *err);

#endif
