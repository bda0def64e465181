// thread.c — persistent pool: a generation counter announces work; idle workers spin on it for up
// to SPIN_NS (first with the CPU's pause hint, then yielding the core each round), then sleep on a
// condition variable. The caller works as thread 0 and waits for a done counter the same way.
//
// Why a time budget rather than an iteration count: a decode step hands the pool ~100 matmuls
// separated by tens of microseconds of work on the caller (norms, rope, attention). With the former
// 20000-iteration spin (~20 µs) the worker fell asleep in 80 of the 97 hand-offs of a qwen2.5-0.5b
// token and woke on average 132 µs after each hand-off (measured on this 2-core VM, busy), longer
// than the gap itself (at load ~3: 49 sleeps, 21 µs wake-up, the caller waiting 2.4 ms of a 28 ms
// step at the joins). Spinning ~1 ms covers every gap inside a step and between the steps of a
// generation, and an idle pool still goes to sleep within a millisecond. The gain on an idle
// machine is the expectation from those figures; it was not measured (the machine never was idle).
//
// Invariants: n_done counts workers that finished the current generation; n_sleep counts workers
// inside (or about to enter) the wait on cv_work, caller_sleeps is true while the caller waits on
// cv_done — both are changed and tested under `mu` by the sleeper, and read without it by the
// waker (sequentially consistent atomics on both sides, so at least one of the two sees the
// other's write: the sleeper re-checks its condition, or the waker locks `mu` and signals).
#define _GNU_SOURCE
#include "base/thread.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/time.h"

struct cg_pool {
    int n_thread;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    atomic_uint gen;   // incremented per run
    atomic_int n_done;
    atomic_int n_sleep;
    atomic_bool caller_sleeps;
    atomic_bool stop;
    atomic_uint_fast64_t busy_until;   // cg_time_ns() before which spins use the short budget
    cg_pool_fn fn;
    void *ctx;
};

typedef struct worker_arg {
    cg_pool *p;
    int i;
} worker_arg;

// Spin budget before sleeping; past YIELD_NS of it each round also yields the core (a shared or
// oversubscribed machine then runs other threads instead of our spinning); the clock is read every
// SPIN_CHECK rounds, and two reads more than PREEMPT_NS apart while pausing (a few µs expected) mean
// the thread lost its core meanwhile: the machine is busy. A busy machine — a preempted spin, or a
// join that waited longer than BUSY_WAIT_NS (a worker that lost its core mid-run) — makes the pool's
// spins yield from their first round and sleep after BUSY_SPIN_NS instead of SPIN_NS, for
// BUSY_HOLD_NS.
//
// Why not sleep sooner when busy: waking a sleeping worker costs far more than the gaps it would
// save. On this 2-core VM a worker woken through the condition variable started its share 80–100 µs
// after the hand-off (the idle vCPU is woken through the hypervisor), while the gaps inside a decode
// step — the end of a matmul where one thread finishes its pieces first, norms, rope, attention on
// the caller — are 1–100 µs. The former busy budget of 20 µs (meant for load averages of 5–9, where
// a full-budget pause spin cost ~15 % of decode) made the worker sleep at the end of most matmuls
// whenever the host had preempted a thread in the last 100 ms: measured on qwen2.5-0.5b Q4_0's
// decode matmuls, 54 sleeps in 3 tokens, the 896×896 output projection taking 140–150 µs instead of
// ~40 µs. A yielding spin gives the core to any other runnable thread at once, and one that finds
// none costs only the system call.
enum {
    SPIN_NS = 1000 * 1000,
    BUSY_SPIN_NS = 200 * 1000,
    YIELD_NS = 50 * 1000,
    PREEMPT_NS = 50 * 1000,
    BUSY_WAIT_NS = 500 * 1000,
    BUSY_HOLD_NS = 100 * 1000 * 1000,
    SPIN_CHECK = 64
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// State of one bounded spin.
typedef struct spin {
    uint64_t t0, last;   // first and latest clock reads (0: none yet)
    bool yield;
} spin;

static void mark_busy(cg_pool *p, uint64_t now) {
    atomic_store_explicit(&p->busy_until, now + BUSY_HOLD_NS, memory_order_relaxed);
}

// One round of a bounded spin; false once it should stop (budget spent).
static bool spin_round(cg_pool *p, unsigned i, spin *s) {
    if (i % SPIN_CHECK == 0) {
        const uint64_t now = cg_time_ns();
        const bool busy = now < atomic_load_explicit(&p->busy_until, memory_order_relaxed);
        if (!s->t0) {
            s->t0 = now;
        } else if (now - s->t0 > (busy ? (uint64_t)BUSY_SPIN_NS : (uint64_t)SPIN_NS)) {
            return false;
        } else if (!s->yield && now - s->last > PREEMPT_NS) {   // lost the core while pausing
            mark_busy(p, now);
            s->yield = true;
        } else if (now - s->t0 > YIELD_NS) {
            s->yield = true;
        }
        if (busy) s->yield = true;
        s->last = now;
    }
    if (s->yield) sched_yield();
    else cpu_relax();
    return true;
}

// Spins until *gen != seen or stop is set, for at most SPIN_NS; returns the last generation read.
static unsigned spin_gen(cg_pool *p, unsigned seen) {
    spin s = {0};
    for (unsigned i = 1;; i++) {
        const unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) return g;
        if (!spin_round(p, i, &s)) return g;
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    cg_pool *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        unsigned g = spin_gen(p, seen);
        if (g == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleep, 1);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv_work, &p->mu);
            atomic_fetch_sub(&p->n_sleep, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        p->fn(p->ctx, wa.i, p->n_thread);
        if (atomic_fetch_add(&p->n_done, 1) + 1 == p->n_thread - 1 && atomic_load(&p->caller_sleeps)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

int cg_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

cg_status cg_pool_new(int n_thread, cg_pool **out, cg_err *err) {
    *out = NULL;
    if (n_thread <= 0) n_thread = cg_cpu_count();
    if (n_thread > 1024) return cg_err_set(err, CG_ERR_INVALID, "thread pool: %d threads (max 1024)", n_thread);
    cg_pool *p = calloc(1, sizeof *p);
    if (!p) return cg_err_set(err, CG_ERR_NOMEM, "thread pool: out of memory");
    p->n_thread = n_thread;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->threads = calloc((size_t)n_thread, sizeof *p->threads);
    if (!p->threads) goto nomem;
    for (int i = 1; i < n_thread; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) goto nomem;
        wa->p = p;
        wa->i = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n_thread = i;   // only join what was started
            cg_pool_free(p);
            return cg_err_set(err, CG_ERR_NOMEM, "thread pool: cannot start thread %d", i);
        }
    }
    *out = p;
    return CG_OK;
nomem:
    p->n_thread = 1;
    cg_pool_free(p);
    return cg_err_set(err, CG_ERR_NOMEM, "thread pool: out of memory");
}

void cg_pool_free(cg_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_thread; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p->threads);
    free(p);
}

int cg_pool_size(const cg_pool *p) { return p ? p->n_thread : 1; }

void cg_pool_run(cg_pool *p, cg_pool_fn fn, void *ctx) {
    if (!p || p->n_thread == 1) {
        fn(ctx, 0, 1);
        return;
    }
    const int n_workers = p->n_thread - 1;
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->n_done, 0);
    atomic_fetch_add(&p->gen, 1);   // publishes fn, ctx and n_done (seq_cst)
    if (atomic_load(&p->n_sleep) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, p->n_thread);
    spin s = {0};
    for (unsigned i = 1; atomic_load_explicit(&p->n_done, memory_order_acquire) < n_workers; i++)
        if (!spin_round(p, i, &s)) break;
    if (atomic_load(&p->n_done) < n_workers) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_sleeps, true);
        while (atomic_load(&p->n_done) < n_workers) pthread_cond_wait(&p->cv_done, &p->mu);
        atomic_store(&p->caller_sleeps, false);
        pthread_mutex_unlock(&p->mu);
        if (s.t0) {
            const uint64_t now = cg_time_ns();
            if (now - s.t0 > BUSY_WAIT_NS) mark_busy(p, now);
        }
    }
}

bool cg_pool_take(atomic_uint_fast64_t *next, uint64_t total, int n_thread, uint64_t min_piece, uint64_t *lo,
                  uint64_t *hi) {
    uint_fast64_t c = atomic_load_explicit(next, memory_order_relaxed);
    for (;;) {
        if (c >= total) return false;
        const uint64_t left = total - c;
        uint64_t piece = left / (2 * (uint64_t)n_thread);
        if (piece < min_piece) piece = min_piece;
        if (piece > left || n_thread == 1) piece = left;
        if (atomic_compare_exchange_weak_explicit(next, &c, c + piece, memory_order_relaxed, memory_order_relaxed)) {
            *lo = c;
            *hi = c + piece;
            return true;
        }
    }
}

void cg_pool_split(int64_t n, int i, int n_thread, int64_t *begin, int64_t *end) {
    int64_t per = n / n_thread, rem = n % n_thread;
    *begin = i * per + (i < rem ? i : rem);
    *end = *begin + per + (i < rem ? 1 : 0);
}
