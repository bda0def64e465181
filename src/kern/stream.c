// stream.c — read-only bandwidth probe: the threads sum 64-bit words with eight independent
// accumulators (enough loads in flight to saturate memory, not the core); the sums are kept so the
// reads cannot be optimised away. The threads take pieces from a shared counter, as the matmuls
// do (cg_pool_take, base/thread.h: half a thread's fair share of what is left, at least 64 KiB):
// with fixed halves, a thread that lost its core for a while held up the whole read, so the probe
// measured the host's scheduling as well as its memory, and lower than a decode step on the same
// threads gets. The buffer and the counter of one read are the only state.
#include "kern/stream.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mmap.h"
#include "base/time.h"

struct cg_stream {
    uint64_t *buf;
    size_t n_words;
    atomic_uint_fast64_t next;   // the first line not yet taken in the current read (cg_pool_take)
    uint64_t sums[1024];   // one per thread (pools have ≤ 1024 threads)
    size_t lines[1024];    // lines each thread read in the current read (checked: all, once)
};

enum { MIN_PIECE_LINES = 1024 };   // 64 KiB

uint64_t cg_stream_sum(const void *p, size_t n_lines) {
    const uint64_t *q = p;
    uint64_t s[8] = {0};
    for (size_t i = 0; i < n_lines; i++, q += 8)
        for (int k = 0; k < 8; k++) s[k] += q[k];
    return s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7];
}

static void stream_worker(void *ctx, int i_thread, int n_thread) {
    cg_stream *j = ctx;
    uint64_t sum = 0, lo, hi;
    size_t done = 0;
    while (cg_pool_take(&j->next, j->n_words / 8, n_thread, MIN_PIECE_LINES, &lo, &hi)) {
        sum ^= cg_stream_sum(j->buf + 8 * lo, (size_t)(hi - lo));
        done += (size_t)(hi - lo);
    }
    j->sums[i_thread] = sum;
    j->lines[i_thread] = done;
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
    atomic_init(&s->next, 0);
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
        atomic_store_explicit(&s->next, 0, memory_order_relaxed);   // published by the pool's hand-off
        const uint64_t t0 = cg_time_ns();
        if (pool) cg_pool_run(pool, stream_worker, s);
        else stream_worker(s, 0, 1);
        const double dt = (double)(cg_time_ns() - t0) * 1e-9;
        size_t lines = 0;
        for (int i = 0; i < cg_pool_size(pool); i++) lines += s->lines[i];
        if (lines != s->n_words / 8)
            return cg_err_set(err, CG_ERR_INTERNAL, "stream: the threads read %zu lines of %zu", lines, s->n_words / 8);
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
