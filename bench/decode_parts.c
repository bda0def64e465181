// decode_parts.c — where one generated token's time goes, against the stream-probe ceiling.
//
// Loads MODEL and, for R rounds, measures in one process and in alternating order:
//   decode   — N real one-token decode steps (cg_model_decode, F16 KV cache, 2 threads by default);
//   sequence — the same token's matmuls alone, in decode order (per layer q+k+v as one call, o,
//              gate+up as one call, down; then the output matrix), N times;
//   by class — the same calls grouped by class (all layers' q+k+v, then all o, …), N/8 times (each
//              time every class once: with fewer layers than the last-level cache a class repeated
//              back to back would be read from the cache);
//   decode read only — the N decode steps again on a kernel table whose matmuls only read their
//              weights (see read_matmul_multi): the ceiling of the step's structure, the most any
//              kernel could reach with everything else as it is;
// each against the ceiling of the higher of the probes (kern/stream.h, the buffer chingu bench
// uses) right before and after the round: bytes per token / probe bandwidth over the measured time.
// The classes are printed as GB/s and fraction of the probe. Decode below sequence is what the
// non-matmul work costs; sequence below by class what the switching between matmuls costs; decode
// below decode read only what the kernels' compute costs. The host's bandwidth moves within
// seconds, so only the means over rounds of alternating order mean anything. Prints figures only,
// never pass/fail.
//
//   decode_parts MODEL [--rounds R] [--tokens N] [--threads T]
//
// Not built by CMake's default targets; build it against libchingu (it reads the output matrix
// through model_impl.h), e.g.:
//   cc -O2 -Iinclude -Isrc -D_DEFAULT_SOURCE bench/decode_parts.c build/release/libchingu.a -lm -lpthread
//      -o /tmp/decode_parts
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/thread.h"
#include "base/time.h"
#include "engine/kv.h"
#include "kern/stream.h"
#include "model/model_impl.h"

enum { N_CLASS = 5 };
static const char *const CLASS[N_CLASS] = {"q+k+v", "o", "gate+up", "down", "output"};

typedef struct parts {
    cg_model *m;
    const cg_kern *K;
    cg_pool *pool;
    cg_arena arena;
    float *x, *y[4];
    size_t bytes[N_CLASS];   // weight bytes of each class per token
    double secs[N_CLASS];    // by-class time, summed over rounds (per token)
} parts;

static double now_s(void) { return (double)cg_time_ns() * 1e-9; }

// One call of class c for layer il (il ignored for the output matrix).
static cg_status run_class(parts *p, int c, int il, cg_err *err) {
    const cg_layer *L = cg_model_layer(p->m, il);
    const cg_tensor *qkv[3] = {&L->wq, &L->wk, &L->wv}, *gu[2] = {&L->ffn_gate, &L->ffn_up};
    cg_status st;
    switch (c) {
    case 0: st = L->wqkv.data ? p->K->matmul(&L->wqkv, p->x, 1, p->y[0], &p->arena, p->pool, err)
                              : p->K->matmul_multi(qkv, 3, p->x, 1, p->y, &p->arena, p->pool, err); break;
    case 1: st = p->K->matmul(&L->wo, p->x, 1, p->y[0], &p->arena, p->pool, err); break;
    case 2: st = L->ffn_gate.data ? p->K->matmul_multi(gu, 2, p->x, 1, p->y, &p->arena, p->pool, err)
                                  : p->K->matmul(&L->ffn_up, p->x, 1, p->y[0], &p->arena, p->pool, err); break;
    case 3: st = p->K->matmul(&L->ffn_down, p->y[0], 1, p->y[2], &p->arena, p->pool, err); break;
    default: st = p->K->matmul(&p->m->output, p->x, 1, p->y[0], &p->arena, p->pool, err); break;
    }
    cg_arena_reset(&p->arena);
    return st;
}

static size_t tensor_bytes(const cg_tensor *t) { return t->data ? t->row_bytes * (size_t)t->ne[1] : 0; }

static cg_status sequence(parts *p, int n, double *secs, cg_err *err) {
    const int64_t n_layer = cg_model_hparams(p->m)->n_layer;
    const double t0 = now_s();
    for (int i = 0; i < n; i++) {
        for (int il = 0; il < n_layer; il++)
            for (int c = 0; c < 4; c++) {
                const cg_status st = run_class(p, c, il, err);
                if (st) return st;
            }
        const cg_status st = run_class(p, 4, 0, err);
        if (st) return st;
    }
    *secs = (now_s() - t0) / n;
    return CG_OK;
}

// Each repetition runs every class once, so no class finds its weights still in the last-level cache.
static cg_status by_class(parts *p, int n, double *secs, cg_err *err) {
    const int64_t n_layer = cg_model_hparams(p->m)->n_layer;
    double total = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < N_CLASS; c++) {
            const double t0 = now_s();
            for (int il = 0; il < (c == 4 ? 1 : n_layer); il++) {
                const cg_status st = run_class(p, c, il, err);
                if (st) return st;
            }
            const double dt = (now_s() - t0) / n;
            p->secs[c] += dt;
            total += dt;
        }
    *secs = total;
    return CG_OK;
}

// "decode, read only": the real decode step on a copy of the kernel table whose matmuls only read
// their weights (cg_model_ctx_set_kern) — norms, rope, attention, hand-offs and joins as they are,
// the kernels at zero cost beyond their memory traffic: the ceiling of the step's structure, which
// no kernel work can pass. The read takes pieces as kern/qmatmul.c's threads do (half a thread's
// share of what is left, at least 64 KiB, from a shared counter; with 64 KiB pieces throughout the
// counter's cross-core round trips cost ~7 %) and sums each piece with the probe's own loop
// (cg_stream_sum, built with the library's flags: a copy here at -O2 stayed scalar and read ~10 %
// slower). Outputs are zeros.
enum { READ_MIN_PIECE = 64 * 1024 };

typedef struct read_job {
    const cg_tensor *const *W;
    int n_w;
    uint64_t total;
    atomic_uint_fast64_t next;   // byte offset over the weights one after another
    uint64_t sums[64];
} read_job;

static void read_worker(void *ctx, int i_thread, int n_thread) {
    read_job *j = ctx;
    uint64_t sum = 0;
    uint_fast64_t c = atomic_load_explicit(&j->next, memory_order_relaxed);
    while (c < j->total) {
        uint64_t piece = (j->total - c) / (2 * (uint64_t)n_thread);
        if (piece < READ_MIN_PIECE) piece = READ_MIN_PIECE;
        piece = (piece + 63) & ~(uint64_t)63;   // whole lines: every part stays 8-byte aligned
        if (piece > j->total - c) piece = j->total - c;
        if (!atomic_compare_exchange_weak_explicit(&j->next, &c, c + piece, memory_order_relaxed, memory_order_relaxed))
            continue;
        for (uint64_t lo = c, hi = c + piece, base = 0; lo < hi;) {   // the piece's parts in each weight
            int w = 0;
            for (base = 0; lo >= base + tensor_bytes(j->W[w]); w++) base += tensor_bytes(j->W[w]);
            const uint64_t end = hi < base + tensor_bytes(j->W[w]) ? hi : base + tensor_bytes(j->W[w]);
            sum ^= cg_stream_sum((const unsigned char *)j->W[w]->data + (lo - base), (end - lo) / 64);
            lo = end;
        }
        c = atomic_load_explicit(&j->next, memory_order_relaxed);
    }
    j->sums[i_thread % 64] = sum;
}

static cg_status read_matmul_multi(const cg_tensor *const *W, int n_w, const float *X, int64_t n_tok,
                                   float *const *Y, cg_arena *arena, cg_pool *pool, cg_err *err) {
    (void)X, (void)arena, (void)err;
    read_job j = {.W = W, .n_w = n_w};
    for (int w = 0; w < n_w; w++) j.total += tensor_bytes(W[w]);
    atomic_init(&j.next, 0);
    cg_pool_run(pool, read_worker, &j);
    for (int w = 0; w < n_w; w++) memset(Y[w], 0, (size_t)(n_tok * W[w]->ne[1]) * sizeof(float));
    return CG_OK;
}

static cg_status read_matmul(const cg_tensor *W, const float *X, int64_t n_tok, float *Y, cg_arena *arena,
                             cg_pool *pool, cg_err *err) {
    return read_matmul_multi(&W, 1, X, n_tok, &Y, arena, pool, err);
}

static cg_status decode(cg_model_ctx *ctx, cg_kv *kv, float *logits, int n, double *secs, cg_err *err) {
    cg_kv_seq_clear(kv, 0);
    const double t0 = now_s();
    for (int32_t i = 0; i < n; i++) {
        const int32_t tok = 10 + (i * 7919) % 1000, pos = i, seq = 0;
        const cg_batch b = {.n = 1, .token = &tok, .pos = &pos, .seq = &seq};
        cg_status st = cg_model_decode(ctx, kv, &b, logits, err);
        if (st) return st;
    }
    *secs = (now_s() - t0) / n;
    return CG_OK;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: decode_parts MODEL [--rounds R] [--tokens N] [--threads T]\n");
        return 2;
    }
    int rounds = 8, n_tok = 64, n_thread = 2;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tokens")) n_tok = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) n_thread = atoi(argv[i + 1]);
        else { fprintf(stderr, "decode_parts: unknown option '%s'\n", argv[i]); return 2; }
    }
    if (rounds < 1 || n_tok < 8 || n_thread < 1) {
        fprintf(stderr, "decode_parts: --rounds ≥ 1, --tokens ≥ 8, --threads ≥ 1\n");
        return 2;
    }
    cg_err err = {0};
    parts p = {.K = cg_kern_get()};
    cg_model_ctx *ctx = NULL;
    cg_kv *kv = NULL;
    cg_stream *probe = NULL;
    float *logits = NULL;
    cg_model_ctx *rctx = NULL;   // the same step on the read-only table
    cg_kern read_table = *p.K;
    read_table.matmul = read_matmul;
    read_table.matmul_multi = read_matmul_multi;
    cg_status st = cg_model_load(argv[1], &p.m, &err);
    if (!st) st = cg_model_ctx_new(p.m, n_thread, &ctx, &err);
    if (!st) st = cg_model_ctx_new(p.m, n_thread, &rctx, &err);
    if (!st) cg_model_ctx_set_kern(rctx, &read_table);
    if (!st) st = cg_pool_new(n_thread, &p.pool, &err);
    if (!st) st = cg_stream_new((size_t)1 << 30, &probe, &err);
    if (st) goto done;
    const cg_hparams *h = cg_model_hparams(p.m);
    cg_kv_params kp = cg_model_kv_params(p.m, CG_KV_F16, 16, n_tok / 16 + 2, 1);
    if ((st = cg_kv_new(&kp, &kv, &err))) goto done;
    cg_arena_init(&p.arena, (size_t)16 << 20);
    const size_t width = (size_t)(h->n_ff > h->n_vocab ? h->n_ff : h->n_vocab) * 2 + (size_t)h->n_embd * 4;
    p.x = malloc(width * sizeof *p.x);
    logits = malloc((size_t)h->n_vocab * sizeof *logits);
    for (int k = 0; k < 4; k++) p.y[k] = malloc(width * sizeof *p.y[k]);
    if (!p.x || !logits || !p.y[0] || !p.y[1] || !p.y[2] || !p.y[3]) { st = cg_err_set(&err, CG_ERR_NOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < width; i++) p.x[i] = p.y[0][i] = (float)((i * 7919) % 97) / 97.0f - 0.5f;
    for (int il = 0; il < h->n_layer; il++) {
        const cg_layer *L = cg_model_layer(p.m, il);
        p.bytes[0] += tensor_bytes(&L->wq) + tensor_bytes(&L->wk) + tensor_bytes(&L->wv) + tensor_bytes(&L->wqkv);
        p.bytes[1] += tensor_bytes(&L->wo);
        p.bytes[2] += tensor_bytes(&L->ffn_gate) + tensor_bytes(&L->ffn_up);
        p.bytes[3] += tensor_bytes(&L->ffn_down);
    }
    p.bytes[4] = tensor_bytes(&p.m->output);
    size_t tok_bytes = 0;
    for (int c = 0; c < N_CLASS; c++) tok_bytes += p.bytes[c];
    printf("decode_parts: %s, %d threads, %d rounds of %d tokens; %.1f MB of matmul weights per token\n", argv[1],
           n_thread, rounds, n_tok, (double)tok_bytes / 1e6);
    double f_dec = 0, f_seq = 0, f_cls = 0, f_rd = 0, gbps_sum = 0, probe_gbps[N_CLASS] = {0};
    for (int r = 0; r < rounds; r++) {
        double g0, g1, t_dec = 0, t_seq = 0, t_cls = 0, t_rd = 0, before[N_CLASS];
        memcpy(before, p.secs, sizeof before);
        if ((st = cg_stream_read(probe, p.pool, 3, &g0, &err))) goto done;
        for (int k = 0; k < 4 && !st; k++) {
            const int which = (k + r) % 4;   // rotate the order round by round
            if (which == 0) st = decode(ctx, kv, logits, n_tok, &t_dec, &err);
            else if (which == 1) st = sequence(&p, n_tok, &t_seq, &err);
            else if (which == 2) st = by_class(&p, n_tok / 8, &t_cls, &err);
            else st = decode(rctx, kv, logits, n_tok, &t_rd, &err);
        }
        if (st || (st = cg_stream_read(probe, p.pool, 3, &g1, &err))) goto done;
        const double g = g0 > g1 ? g0 : g1, ideal = (double)tok_bytes / (g * 1e9);
        printf("round %d: probe %.2f GB/s; decode %.3f, sequence %.3f, by class %.3f, decode read only %.3f of the "
               "ceiling\n",
               r, g, ideal / t_dec, ideal / t_seq, ideal / t_cls, ideal / t_rd);
        f_dec += ideal / t_dec, f_seq += ideal / t_seq, f_cls += ideal / t_cls, f_rd += ideal / t_rd, gbps_sum += g;
        for (int c = 0; c < N_CLASS; c++) probe_gbps[c] += (double)p.bytes[c] / (p.secs[c] - before[c]) / 1e9 / g;
    }
    printf("\nmean over %d rounds (probe %.2f GB/s): decode %.3f, sequence %.3f, by class %.3f, decode read only %.3f "
           "of the ceiling\n",
           rounds, gbps_sum / rounds, f_dec / rounds, f_seq / rounds, f_cls / rounds, f_rd / rounds);
    printf("\n| class | MB per token | GB/s | fraction of the probe |\n| --- | ---: | ---: | ---: |\n");
    for (int c = 0; c < N_CLASS; c++)
        printf("| %s | %.1f | %.2f | %.3f |\n", CLASS[c], (double)p.bytes[c] / 1e6,
               (double)p.bytes[c] * rounds / p.secs[c] / 1e9, probe_gbps[c] / rounds);
done:
    if (st) fprintf(stderr, "decode_parts: %s\n", err.msg);
    for (int k = 0; k < 4; k++) free(p.y[k]);
    free(p.x);
    free(logits);
    cg_arena_free(&p.arena);
    cg_stream_free(probe);
    cg_pool_free(p.pool);
    cg_kv_free(kv);
    cg_model_ctx_free(ctx);
    cg_model_ctx_free(rctx);
    cg_model_free(p.m);
    return st ? 1 : 0;
}
