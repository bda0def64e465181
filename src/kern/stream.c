// stream.c — read-only bandwidth probe: each thread sums 64-bit words of its slice with eight
// independent accumulators (enough loads in flight to saturate memory, not the core); the sums
// are kept so the reads cannot be optimised away. The buffer is the only state.
#include "kern/stream.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mmap.h"
#include "base/time.h"

struct cg_stream {
    uint64_t *buf;
    size_t n_words;
    uint64_t sums[1024];   // one per thread (pools have ≤ 1024 threads)
};

uint64_t cg_stream_sum(const void *p, size_t n_lines) {
    const uint64_t *q = p;
    uint64_t s[8] = {0};
    for (size_t i = 0; i < n_lines; i++, q += 8)
        for (int k = 0; k < 8; k++) s[k] += q[k];
    return s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7];
}

static void stream_worker(void *ctx, int i_thread, int n_thread) {
    cg_stream *j = ctx;
    int64_t b, e;
    cg_pool_split((int64_t)(j->n_words / 8), i_thread, n_thread, &b, &e);
    j->sums[i_thread] = cg_stream_sum(j->buf + 8 * b, (size_t)(e - b));
}

cg_status cg_stream_new(size_t bytes, cg_stream **out, cg_err *err) {
    *out = NULL;
    if (bytes == 0) bytes = (size_t)1 << 30;
    bytes &= ~(size_t)63;
    if (bytes < 64) bytes = 64;
    cg_stream *s = calloc(1, sizeof *s);
    if (!s) return cg_err_set(err, CG_ERR_NOMEM, "stream: out of memory");
    size_t alloc;
    s->buf = cg_alloc_huge(bytes, &alloc);
    if (!s->buf) {
        free(s);
        return cg_err_set(err, CG_ERR_NOMEM, "stream: cannot allocate %zu bytes for the bandwidth probe", bytes);
    }
    memset(s->buf, 1, bytes);   // fault every page in before timing
    s->n_words = bytes / 8;
    *out = s;
    return CG_OK;
}

void cg_stream_free(cg_stream *s) {
    if (!s) return;
    free(s->buf);
    free(s);
}

cg_status cg_stream_read(cg_stream *s, cg_pool *pool, int reps, double *gbps, cg_err *err) {
    if (reps < 1) return cg_err_set(err, CG_ERR_INVALID, "stream: %d repetitions (at least 1)", reps);
    const double bytes = (double)s->n_words * 8;
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        const uint64_t t0 = cg_time_ns();
        if (pool) cg_pool_run(pool, stream_worker, s);
        else stream_worker(s, 0, 1);
        const double dt = (double)(cg_time_ns() - t0) * 1e-9;
        if (dt > 0 && bytes / dt / 1e9 > best) best = bytes / dt / 1e9;
    }
    *gbps = best;
    return CG_OK;
}

cg_status cg_stream_read_gbps(cg_pool *pool, size_t bytes, int reps, double *gbps, cg_err *err) {
    if (reps < 1) return cg_err_set(err, CG_ERR_INVALID, "stream: %d repetitions (at least 1)", reps);
    cg_stream *s;
    cg_status st = cg_stream_new(bytes, &s, err);
    if (!st) st = cg_stream_read(s, pool, reps, gbps, err);
    cg_stream_free(s);
    return st;
}
