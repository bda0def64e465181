// stop.c — stop strings across token boundaries, EOG ids, max tokens.
//
// Invariant: `held` never contains a complete stop string, and is the longest suffix of the text
// seen so far that is a proper prefix of some stop string (everything before it has been emitted).
// Feeding appends the new bytes to `held`, then scans it for the earliest stop string; if none,
// everything except the longest suffix that is a prefix of a stop string is emitted.
#include "sample/stop.h"

#include <stdlib.h>
#include <string.h>

struct cg_stop {
    char **stops;          // owned strings
    size_t *lens;
    size_t n_stops;
    int32_t *eog;          // owned
    size_t n_eog;
    uint32_t max_tokens, n_tokens;
    cg_buf held;           // owned
    cg_stop_reason done;
};

void cg_stop_free(cg_stop *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_stops; i++) free(s->stops[i]);
    free(s->stops);
    free(s->lens);
    free(s->eog);
    cg_buf_free(&s->held);
    free(s);
}

cg_status cg_stop_new(const char *const *stops, const size_t *lens, size_t n_stops, const int32_t *eog,
                      size_t n_eog, uint32_t max_tokens, cg_stop **out, cg_err *err) {
    cg_status st = CG_OK;
    if (n_stops > CG_STOP_MAX_STRINGS)
        return cg_err_set(err, CG_ERR_INVALID, "stop: %zu stop strings (at most %d)", n_stops, CG_STOP_MAX_STRINGS);
    for (size_t i = 0; i < n_stops; i++)
        if (lens[i] == 0 || lens[i] > CG_STOP_MAX_LEN)
            return cg_err_set(err, CG_ERR_INVALID, "stop: stop string %zu has %zu bytes (1..%d allowed)", i, lens[i],
                              CG_STOP_MAX_LEN);
    cg_stop *s = calloc(1, sizeof *s);
    if (!s) return cg_err_set(err, CG_ERR_NOMEM, "stop: out of memory");
    cg_buf_init(&s->held);
    s->max_tokens = max_tokens;
    if (n_stops) {
        s->stops = calloc(n_stops, sizeof *s->stops);
        s->lens = calloc(n_stops, sizeof *s->lens);
        if (!s->stops || !s->lens) goto nomem;
        for (size_t i = 0; i < n_stops; i++) {
            s->stops[i] = malloc(lens[i]);
            if (!s->stops[i]) goto nomem;
            memcpy(s->stops[i], stops[i], lens[i]);
            s->lens[i] = lens[i];
            s->n_stops++;
        }
    }
    if (n_eog) {
        s->eog = malloc(n_eog * sizeof *s->eog);
        if (!s->eog) goto nomem;
        memcpy(s->eog, eog, n_eog * sizeof *eog);
        s->n_eog = n_eog;
    }
    *out = s;
    return CG_OK;
nomem:
    st = cg_err_set(err, CG_ERR_NOMEM, "stop: out of memory");
    cg_stop_free(s);
    return st;
}

size_t cg_stop_held(const cg_stop *s) { return s->held.len; }

void cg_stop_flush(cg_stop *s, cg_buf *emit) {
    if (s->held.len) cg_buf_append(emit, s->held.data, s->held.len);
    cg_buf_reset(&s->held);
}

cg_stop_reason cg_stop_feed_text(cg_stop *s, const char *text, size_t n, cg_buf *emit) {
    if (s->done) return s->done;
    if (s->n_stops == 0) {
        cg_buf_append(emit, text, n);
        return CG_STOP_NONE;
    }
    cg_buf_append(&s->held, text, n);
    const char *h = s->held.data;
    size_t len = s->held.len;
    // earliest complete stop string (the held prefix had none, so only new positions can start one
    // that ends in the new bytes; scanning all of `held` is still bounded by CG_STOP_MAX_LEN + n)
    size_t best = len;
    for (size_t i = 0; i < s->n_stops; i++) {
        size_t L = s->lens[i];
        for (size_t at = 0; at + L <= len && at < best; at++)
            if (memcmp(h + at, s->stops[i], L) == 0) { best = at; break; }
    }
    if (best < len) {
        cg_buf_append(emit, h, best);
        cg_buf_reset(&s->held);
        s->done = CG_STOP_STRING;
        return s->done;
    }
    // longest suffix that is a proper prefix of some stop string
    size_t keep = 0;
    for (size_t i = 0; i < s->n_stops; i++) {
        size_t L = s->lens[i];
        size_t max = L - 1 < len ? L - 1 : len;
        for (size_t k = max; k > keep; k--)
            if (memcmp(h + len - k, s->stops[i], k) == 0) { keep = k; break; }
    }
    cg_buf_append(emit, h, len - keep);
    memmove(s->held.data, h + len - keep, keep);
    s->held.len = keep;
    return CG_STOP_NONE;
}

cg_stop_reason cg_stop_feed_token(cg_stop *s, int32_t token, const char *text, size_t n, cg_buf *emit) {
    if (s->done) return s->done;
    for (size_t i = 0; i < s->n_eog; i++)
        if (s->eog[i] == token) {
            cg_stop_flush(s, emit);
            return s->done = CG_STOP_EOG;
        }
    s->n_tokens++;
    cg_stop_reason r = cg_stop_feed_text(s, text, n, emit);
    if (r) return r;
    if (s->max_tokens && s->n_tokens >= s->max_tokens) {
        cg_stop_flush(s, emit);
        return s->done = CG_STOP_LENGTH;
    }
    return CG_STOP_NONE;
}
