// setup.c — constrained-sampling setup shared by the engine backend and the CLI (see setup.h).
//
// Invariants: a cg_sample_vocab's pieces/eog arrays have n_vocab entries (eog: n_eog used); a
// cg_sample_seq has a matcher exactly when it has a mask. Every init function leaves its struct
// zeroed on failure, so callers free unconditionally.
#include "sample/setup.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "sample/schema.h"

cg_status cg_sample_vocab_init(cg_sample_vocab *sv, const cg_vocab *v, int32_t n_vocab, bool with_grammar,
                               cg_err *err) {
    cg_status st = CG_OK;
    uint8_t *flags = NULL;
    memset(sv, 0, sizeof *sv);
    if (n_vocab <= 0 || (int64_t)cg_vocab_n_tokens(v) < n_vocab)
        return cg_err_set(err, CG_ERR_FORMAT, "sample: the vocabulary has %u tokens, the model's output %d",
                          cg_vocab_n_tokens(v), n_vocab);
    sv->n_vocab = n_vocab;
    sv->pieces = calloc((size_t)n_vocab, sizeof *sv->pieces);
    sv->eog = calloc((size_t)n_vocab, sizeof *sv->eog);
    flags = with_grammar ? calloc((size_t)n_vocab, 1) : NULL;
    if (!sv->pieces || !sv->eog || (with_grammar && !flags)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "sample: out of memory for a vocabulary of %d tokens", n_vocab);
        goto fail;
    }
    for (int32_t i = 0; i < n_vocab; i++) {
        const char *pc = NULL;
        size_t n = 0;
        // special = true: control tokens keep their text, so logprobs can name them; the grammar
        // never allows them anyway (CG_GTOK_CONTROL).
        if (cg_token_to_piece(v, i, 0, true, &pc, &n, NULL) == CG_OK) sv->pieces[i] = (cg_token_text){pc, n};
        uint32_t attr = cg_vocab_token_attr(v, i);
        bool is_control = attr & (CG_TOK_ATTR_CONTROL | CG_TOK_ATTR_UNKNOWN | CG_TOK_ATTR_UNUSED);
        if (cg_vocab_is_eog(v, i)) {
            sv->eog[sv->n_eog++] = i;
            if (flags) flags[i] = CG_GTOK_EOG;
        } else if (is_control && flags) {
            flags[i] = CG_GTOK_CONTROL;
        }
    }
    if (with_grammar && (st = cg_grammar_vocab_new(sv->pieces, flags, n_vocab, &sv->gvocab, err))) goto fail;
    free(flags);
    return CG_OK;
fail:
    free(flags);
    cg_sample_vocab_free(sv);
    return st;
}

void cg_sample_vocab_free(cg_sample_vocab *sv) {
    if (!sv) return;
    cg_grammar_vocab_free(sv->gvocab);
    free(sv->pieces);
    free(sv->eog);
    memset(sv, 0, sizeof *sv);
}

cg_status cg_sample_grammar_build(cg_sample_grammar_kind kind, const char *src, size_t n, cg_grammar **out,
                                  cg_err *err) {
    cg_status st = CG_OK;
    cg_buf g;
    cg_buf_init(&g);
    *out = NULL;
    switch (kind) {
    case CG_SAMPLE_GRAMMAR_GBNF: return cg_grammar_parse(src, n, NULL, out, err);
    case CG_SAMPLE_GRAMMAR_JSON_SCHEMA: st = cg_schema_to_gbnf(src, n, &g, err); break;
    case CG_SAMPLE_GRAMMAR_JSON_OBJECT: cg_schema_any_object_gbnf(&g); break;
    default: return cg_err_set(err, CG_ERR_INVALID, "sample: unknown grammar kind %d", (int)kind);
    }
    if (st) goto out;
    if (!cg_buf_ok(&g)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "sample: out of memory");
        goto out;
    }
    st = cg_grammar_parse(g.data, g.len, NULL, out, err);
out:
    cg_buf_free(&g);
    return st;
}

cg_status cg_sample_seq_init(cg_sample_seq *q, const cg_sampler_params *p, const cg_grammar *g,
                             const cg_sample_vocab *sv, cg_err *err) {
    cg_status st;
    memset(q, 0, sizeof *q);
    q->sv = sv;
    if (g && !sv->gvocab)
        return cg_err_set(err, CG_ERR_INVALID, "sample: a grammar needs a vocabulary prepared with_grammar");
    if ((st = cg_sampler_new(p, sv->n_vocab, &q->smp, err))) goto fail;
    if (g) {
        if ((st = cg_grammar_matcher_new(g, &q->gm, err))) goto fail;
        if (!(q->allowed = malloc((size_t)sv->n_vocab))) {
            st = cg_err_set(err, CG_ERR_NOMEM, "sample: out of memory for a mask of %d tokens", sv->n_vocab);
            goto fail;
        }
    }
    return CG_OK;
fail:
    cg_sample_seq_free(q);
    return st;
}

void cg_sample_seq_free(cg_sample_seq *q) {
    if (!q) return;
    cg_sampler_free(q->smp);
    cg_grammar_matcher_free(q->gm);
    free(q->allowed);
    memset(q, 0, sizeof *q);
}

void cg_sample_seq_set_budget(cg_sample_seq *q, int64_t max_tokens, uint32_t margin) {
    q->budget = max_tokens > 0 ? max_tokens : 0;
    q->margin = margin;
}

// Whether closing mode holds with `left` tokens to go at distance d.
static bool closing_at(const cg_sample_seq *q, int64_t left, uint32_t d) {
    return left <= (int64_t)d + (int64_t)q->margin;
}

cg_status cg_sample_seq_next(cg_sample_seq *q, const float *logits, int32_t *out_token, cg_err *err) {
    cg_status st;
    int32_t tok = -1;
    if (q->gm && q->budget) {
        int64_t left = q->budget - q->n_gen;
        if (left < 1) left = 1;   // called past the budget: behave as on the last step
        uint32_t d = cg_grammar_matcher_distance(q->gm);
        bool closing = closing_at(q, left, d);
        int64_t max_dist = closing ? (int64_t)d - 1 : left - 1;
        bool cut = false;
        if ((st = cg_grammar_matcher_mask_budget(q->gm, q->sv->gvocab, q->allowed, max_dist, &cut, err))) return st;
        q->closing |= closing;
        q->n_cut += cut;
    } else if (q->gm && (st = cg_grammar_matcher_mask(q->gm, q->sv->gvocab, q->allowed, err))) {
        return st;
    }
    if ((st = cg_sampler_sample(q->smp, logits, q->allowed, &tok, err))) return st;
    if ((st = cg_sampler_accept(q->smp, tok, err))) return st;
    // The mask allowed tok, so the matcher accepts it; a refusal would be a matcher bug, reported
    // as the end of what the grammar allows rather than a crash.
    if (q->gm && (st = cg_grammar_matcher_accept_token(q->gm, q->sv->gvocab, tok, err))) return st;
    q->n_gen++;
    *out_token = tok;
    return CG_OK;
}

bool cg_sample_seq_must_end(const cg_sample_seq *q) {
    if (!q->gm) return false;
    if (cg_grammar_matcher_must_end(q->gm)) return true;
    return q->budget && cg_grammar_matcher_can_end(q->gm) && closing_at(q, q->budget - q->n_gen, 0);
}
