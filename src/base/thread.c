// thread.c — persistent pool: a generation counter announces work; workers spin ~a few µs on it,
// then wait on a condition variable. The caller works as thread 0 and waits for a done counter.
// Invariant: n_done counts workers that finished the current generation.
#define _GNU_SOURCE
#include "base/thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct cg_pool {
    int n_thread;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    atomic_uint gen;        // incremented per run
    atomic_int n_done;
    atomic_bool stop;
    cg_pool_fn fn;
    void *ctx;
};

typedef struct worker_arg {
    cg_pool *p;
    int i;
} worker_arg;

enum { SPIN_ITERS = 20000 };

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    cg_pool *p = wa.p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop) && spins < SPIN_ITERS)
            spins++;
        if (g == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv_work, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        p->fn(p->ctx, wa.i, p->n_thread);
        if (atomic_fetch_add_explicit(&p->n_done, 1, memory_order_acq_rel) + 1 == p->n_thread - 1) {
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
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->n_done, 0);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n_thread);
    int spins = 0;
    while (atomic_load_explicit(&p->n_done, memory_order_acquire) < p->n_thread - 1 && spins < SPIN_ITERS)
        spins++;
    if (atomic_load(&p->n_done) < p->n_thread - 1) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->n_done) < p->n_thread - 1) pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void cg_pool_split(int64_t n, int i, int n_thread, int64_t *begin, int64_t *end) {
    int64_t per = n / n_thread, rem = n % n_thread;
    *begin = i * per + (i < rem ? i : rem);
    *end = *begin + per + (i < rem ? 1 : 0);
}
