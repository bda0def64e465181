// thread.h — a persistent worker pool that runs one parallel function at a time.
//
// cg_pool_run(pool, fn, ctx) calls fn(ctx, i, n) for i in 0..n-1 on n threads (the caller is thread
// 0) and returns when all are done. Idle workers spin (up to ~1 ms), then sleep on a condition
// variable, so back-to-back runs (a decode step) pay no wake-up.
// A pool is driven by one thread at a time (the owner); cg_pool_run is not re-entrant.
#ifndef CG_BASE_THREAD_H
#define CG_BASE_THREAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

typedef struct cg_pool cg_pool;
typedef void (*cg_pool_fn)(void *ctx, int i_thread, int n_thread);

// Creates a pool of n_thread threads in all (n_thread-1 workers plus the caller); n_thread ≤ 0 means
// the number of online CPUs. Errors: CG_ERR_NOMEM, CG_ERR_INVALID (n_thread > 1024).
cg_status cg_pool_new(int n_thread, cg_pool **out, cg_err *err);
void cg_pool_free(cg_pool *p);   // accepts NULL; joins workers
int cg_pool_size(const cg_pool *p);

// Runs fn on every thread of the pool and waits. `ctx` is borrowed for the duration of the call.
void cg_pool_run(cg_pool *p, cg_pool_fn fn, void *ctx);

// Guided self-scheduling of [0, total) among n_thread threads through the shared counter *next
// (start it at 0): takes the next piece [*lo, *hi) — half a thread's fair share of what is left, at
// least min_piece, all of it for one thread — so a thread that started late or lost its core leaves
// its share to the others, and the first pieces are long runs. False when nothing is left.
bool cg_pool_take(atomic_uint_fast64_t *next, uint64_t total, int n_thread, uint64_t min_piece, uint64_t *lo,
                  uint64_t *hi);

// The half-open range [*begin, *end) of n items that thread i of n should take (contiguous split).
void cg_pool_split(int64_t n, int i_thread, int n_thread, int64_t *begin, int64_t *end);

int cg_cpu_count(void);

#endif
