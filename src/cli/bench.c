// bench.c — `chingu bench -m MODEL [-t N] [-p 512] [-n 128] [-r 5] [-d 0] [-o md|json]`: llama-bench's
// two tests on one model file, plus the memory roofline of generation.
//
//   ppN: one batch of N prompt tokens decoded from an empty cache (logits for the last one only);
//   tgN: N tokens decoded one at a time from an empty cache.
//   With -d D (llama-bench's --n-depth), each run first fills the cache with D tokens (untimed, in
//   batches of DEPTH_CHUNK), then times the test at positions D..: "ppN @ dD", "tgN @ dD" — the
//   speed a user sees with D tokens of conversation already in the context.
//   tgN xB (with -b B): B sequences decoded in lock step, like llama.cpp's llama-batched-bench —
//     each sequence first gets its own short prompt (BATCH_PROMPT distinct pseudo-random tokens, all
//     prompts in one untimed batch), then N timed steps of B entries (one per sequence, logits for
//     every entry, as a server's decode step computes them); t/s counts all B·N generated tokens.
//     The md output adds a line with ms and CPU ms per step and the ratio to the 1-sequence tg.
// Each test runs once as warm-up, then r times; t/s is tokens / seconds per run, reported as mean ±
// sample standard deviation (llama-bench's columns: model, size, params, backend, threads, test, t/s).
// Token ids are pseudo-random (speed does not depend on them). The KV cache is F16, like llama.cpp's
// default. The roofline line: read-only bandwidth from the built-in stream probe with the same
// threads over one 1 GiB buffer in huge pages, as the repacked weights are (kern/stream.h; run
// before and after the tests; the higher counts), the bytes one generated token must read (every matrix once — the tied embedding once, as
// the output matrix — plus the K/V cache at the test's mean context), their quotient as the
// ceiling in t/s, and the fraction of it tg reached. This host's bandwidth moves by ±15 % within
// seconds (other tenants), so a second, paired figure probes right before every tg run and after the
// last, and divides each run's t/s by the ceiling from the higher of its two neighbouring probes: the
// mean, min and max of those fractions. Both take the best of several 1 GiB reads, as STREAM does,
// which on a quiet machine is what the hardware gives; here, where reads of the same buffer range
// over ±12 % second to second, a best-of lies above the bandwidth any run of the same length gets
// on average, so a third, interleaved figure samples the decode and the probe the same way: the tg
// test's tokens again, in blocks of INTER_BLOCK, with one read of a 256 MiB buffer before each
// block and after the last, on the context's own threads; the decode's bytes over its time against
// the probe's bytes over its time (ratio of the means). All probes run on the context's pool — no
// second pool whose spinning workers would take a core from the other's first microseconds.
// And the share of the threads' time the
// process actually got (getrusage), since a shared machine lowers every figure, and the CPU time
// per token. Figures, never a pass/fail.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/resource.h>

#include "base/time.h"
#include "cli/cli.h"
#include "engine/kv.h"
#include "kern/cpu.h"
#include "kern/kern.h"
#include "kern/stream.h"
#include "model/model.h"
#include "quant/mix.h"
#include "quant/quant.h"

static const char USAGE[] =
    "usage: chingu bench -m MODEL [-t N] [-p 512] [-n 128] [-r 5] [-d 0] [-b B] [-o md|json]\n"
    "       -d D: each run starts with D tokens already in the cache (filled untimed): pp/tg at depth D\n"
    "       -b B: also decode B sequences in lock step (B entries per step, n steps): total t/s, ms per step\n"
    "       chingu bench --kernels [-t N] [--mib 256]   (matvec/matmul per format vs the roofline)";

enum { BATCH_PROMPT = 16 };   // prompt tokens per sequence before the batched tg steps
enum { DEPTH_CHUNK = 512 };   // tokens per batch when -d fills the cache

typedef struct result {
    char test[32];
    int n_tok;         // tokens per run (batched: B · steps)
    int n_seq;         // sequences in lock step (1 for pp/tg)
    double mean, sd;   // t/s
    double cpu_share;  // process CPU time / (wall time · threads) over the timed runs
    double cpu_ms;     // process CPU time per token (all threads) over the timed runs
    double *tps;       // paired probes only: t/s of each run (reps entries, the caller's)
} result;

// Bandwidth probes paired with the runs of one test: probe k right before run k, probe reps after
// the last (reps + 1 entries, the caller's); NULL pool: none.
typedef struct probes {
    cg_pool *pool;
    cg_stream *buf;
    double *gbps;
} probes;

enum { PAIRED_PROBE_REPS = 3 };   // best of 3 reads of the 1 GiB buffer per paired probe (~0.2 s)
enum { INTER_BLOCK = 16 };        // tokens per decode block of the interleaved roofline
enum { INTER_PROBE_MIB = 256 };   // its probe: one read of this buffer (~15 ms) around every block

// The interleaved roofline's sums (see the top).
typedef struct inter {
    double dec_secs, probe_secs, probe_bytes;   // decode blocks' time; the reads' time and bytes
    double gbps_min, gbps_max;                  // the single reads' spread
    int n_tok;                                  // tokens decoded in the blocks
} inter;

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec + 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

typedef struct bench {
    cg_model *m;
    cg_model_ctx *ctx;
    cg_kv *kv;
    int32_t *tok, *pos, *seq;   // at least max(test length, DEPTH_CHUNK) + 1 entries
    int depth;                  // tokens in the cache before each timed run (-d)
    float *logits;
    bool *want;        // batched: logits flag per entry (all true)
    uint64_t rng;
} bench;

static int32_t rand_tok(bench *b, int64_t n_vocab) {
    b->rng = b->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int32_t)((b->rng >> 33) % (uint64_t)n_vocab);
}

// Empties sequence 0, then fills it with `depth` pseudo-random tokens at positions 0..depth-1, in
// batches of DEPTH_CHUNK (untimed; logits for each batch's last entry only).
static cg_status fill_depth(bench *b, int depth, cg_err *err) {
    const int64_t nv = cg_model_hparams(b->m)->n_vocab;
    cg_kv_seq_clear(b->kv, 0);
    cg_status st = CG_OK;
    for (int p0 = 0; p0 < depth && !st; p0 += DEPTH_CHUNK) {
        const int n = depth - p0 < DEPTH_CHUNK ? depth - p0 : DEPTH_CHUNK;
        for (int i = 0; i < n; i++) {
            b->tok[i] = rand_tok(b, nv);
            b->pos[i] = p0 + i;
            b->seq[i] = 0;
        }
        cg_batch batch = {.n = n, .token = b->tok, .pos = b->pos, .seq = b->seq};
        st = cg_model_decode(b->ctx, b->kv, &batch, b->logits, err);
    }
    return st;
}

// One run of a test after fill_depth(b, d): positions d, d+1, …; *secs gets its duration.
static cg_status run_once(bench *b, bool prompt, int n, int d, double *secs, cg_err *err) {
    const int64_t nv = cg_model_hparams(b->m)->n_vocab;
    for (int i = 0; i < n; i++) {
        b->tok[i] = rand_tok(b, nv);
        b->pos[i] = d + i;
        b->seq[i] = 0;
    }
    const uint64_t t0 = cg_time_ns();
    cg_status st = CG_OK;
    if (prompt) {
        cg_batch batch = {.n = n, .token = b->tok, .pos = b->pos, .seq = b->seq};
        st = cg_model_decode(b->ctx, b->kv, &batch, b->logits, err);
    } else {
        for (int i = 0; i < n && !st; i++) {
            cg_batch batch = {.n = 1, .token = b->tok + i, .pos = b->pos + i, .seq = b->seq + i};
            st = cg_model_decode(b->ctx, b->kv, &batch, b->logits, err);
        }
    }
    *secs = (double)(cg_time_ns() - t0) * 1e-9;
    return st;
}

// One run of the batched test: n_seq prompts (untimed, one batch), then n_steps timed steps of
// n_seq entries; *secs gets the steps' duration, *cpu the process CPU time they took.
static cg_status run_batched_once(bench *b, int n_seq, int n_steps, double *secs, double *cpu, cg_err *err) {
    const int64_t nv = cg_model_hparams(b->m)->n_vocab;
    for (int s = 0; s < n_seq; s++) {
        cg_kv_seq_clear(b->kv, s);
        for (int i = 0; i < BATCH_PROMPT; i++) {
            const int k = s * BATCH_PROMPT + i;
            b->tok[k] = rand_tok(b, nv);
            b->pos[k] = i;
            b->seq[k] = s;
            b->want[k] = i == BATCH_PROMPT - 1;
        }
    }
    cg_batch pb = {.n = n_seq * BATCH_PROMPT, .token = b->tok, .pos = b->pos, .seq = b->seq, .logits = b->want};
    cg_status st = cg_model_decode(b->ctx, b->kv, &pb, b->logits, err);
    for (int s = 0; s < n_seq; s++) {
        b->seq[s] = s;
        b->want[s] = true;
    }
    const double cpu0 = cpu_seconds();
    const uint64_t t0 = cg_time_ns();
    for (int i = 0; i < n_steps && !st; i++) {
        for (int s = 0; s < n_seq; s++) {
            b->tok[s] = rand_tok(b, nv);   // stands for the token sampled from the previous step
            b->pos[s] = BATCH_PROMPT + i;
        }
        cg_batch batch = {.n = n_seq, .token = b->tok, .pos = b->pos, .seq = b->seq, .logits = b->want};
        st = cg_model_decode(b->ctx, b->kv, &batch, b->logits, err);
    }
    *secs = (double)(cg_time_ns() - t0) * 1e-9;
    *cpu = cpu_seconds() - cpu0;
    return st;
}

static cg_status run_test(bench *b, bool prompt, int n, int n_seq, int reps, int n_thread, const probes *pr,
                          result *r, cg_err *err) {
    const int d = n_seq > 0 ? 0 : b->depth;   // the batched test has no depth (rejected with -b)
    if (n_seq > 0) snprintf(r->test, sizeof r->test, "tg%d x%d", n, n_seq);
    else if (d > 0) snprintf(r->test, sizeof r->test, "%s%d @ d%d", prompt ? "pp" : "tg", n, d);
    else snprintf(r->test, sizeof r->test, "%s%d", prompt ? "pp" : "tg", n);
    r->n_seq = n_seq > 0 ? n_seq : 1;
    r->n_tok = n * r->n_seq;
    double secs, sum = 0.0, sum2 = 0.0, run_cpu, cpu = 0.0;
    // The warm-up runs from an empty cache: it only pages the weights in and wakes the threads.
    const int n_warm = prompt ? n : (n < 4 ? n : 4);
    cg_status st = n_seq > 0 ? run_batched_once(b, n_seq, n_warm, &secs, &run_cpu, err) : fill_depth(b, 0, err);
    if (!st && n_seq == 0) st = run_once(b, prompt, n_warm, 0, &secs, err);
    double wall = 0.0;
    for (int k = 0; k < reps && !st; k++) {
        if (n_seq == 0 && (st = fill_depth(b, d, err))) break;   // before the probe: it pairs with the timed part
        if (pr && pr->pool && (st = cg_stream_read(pr->buf, pr->pool, PAIRED_PROBE_REPS, &pr->gbps[k], err)))
            break;
        const double cpu0 = cpu_seconds();
        if (n_seq > 0) st = run_batched_once(b, n_seq, n, &secs, &run_cpu, err);
        else {
            st = run_once(b, prompt, n, d, &secs, err);
            run_cpu = cpu_seconds() - cpu0;
        }
        cpu += run_cpu;
        const double tps = secs > 0 ? r->n_tok / secs : 0.0;
        if (pr && pr->pool) r->tps[k] = tps;
        sum += tps;
        sum2 += tps * tps;
        wall += secs;
    }
    if (!st && pr && pr->pool) st = cg_stream_read(pr->buf, pr->pool, PAIRED_PROBE_REPS, &pr->gbps[reps], err);
    r->cpu_share = wall > 0 ? cpu / (wall * n_thread) : 0.0;
    r->cpu_ms = n > 0 ? 1e3 * cpu / ((double)r->n_tok * reps) : 0.0;
    r->mean = sum / reps;
    r->sd = reps > 1 ? sqrt(fmax(0.0, (sum2 - sum * sum / reps) / (reps - 1))) : 0.0;
    return st;
}

// `reps` runs of n tg tokens (each after fill_depth to b->depth), in blocks of INTER_BLOCK tokens
// with one read of `buf` (buf_bytes) on `pool` before every block and after the last, summed into *it.
static cg_status run_interleaved(bench *b, int n, int reps, cg_pool *pool, cg_stream *buf, size_t buf_bytes, inter *it,
                                 cg_err *err) {
    *it = (inter){0};
    cg_status st = CG_OK;
    for (int k = 0; k < reps && !st; k++) {
        if ((st = fill_depth(b, b->depth, err))) break;
        for (int i = 0; i <= n && !st; i += INTER_BLOCK) {
            double g, secs;
            if ((st = cg_stream_read(buf, pool, 1, &g, err))) break;
            if (g > 0) {   // else a read too fast for the clock (not on a real buffer): not counted
                it->probe_secs += (double)buf_bytes / (g * 1e9);
                it->probe_bytes += (double)buf_bytes;
                if (!it->gbps_max || g < it->gbps_min) it->gbps_min = g;
                if (g > it->gbps_max) it->gbps_max = g;
            }
            if (i == n) break;
            const int nb = n - i < INTER_BLOCK ? n - i : INTER_BLOCK;
            if ((st = run_once(b, false, nb, b->depth + i, &secs, err))) break;
            it->dec_secs += secs;
            it->n_tok += nb;
        }
    }
    return st;
}

static double vmin(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

static double vmax(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

static bool parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

// Bytes of the matrices one token reads, and the K/V bytes per position (all layers, F16).
static void model_bytes(const cg_model *m, uint64_t *weights, uint64_t *kv_per_pos, uint64_t *file_bytes,
                        int64_t *n_params) {
    const cg_hparams *h = cg_model_hparams(m);
    const cg_gguf *g = cg_model_gguf(m);
    *weights = 0;
    *file_bytes = 0;
    *n_params = 0;
    bool tied = !cg_gguf_find_tensor(g, "output.weight");
    for (size_t i = 0;; i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        if (!t) break;
        const int64_t ne = t->n_elems;
        *n_params += ne;
        *file_bytes += t->n_bytes;
        const bool embd = !strcmp(t->name, "token_embd.weight");
        if (embd && !tied) *weights += t->n_bytes / (uint64_t)t->ne[1];   // one row gathered
        else *weights += t->n_bytes;
    }
    *kv_per_pos = (uint64_t)h->n_layer * (uint64_t)(h->n_head_kv * (h->head_dim + h->head_dim_v)) * 2;
}

int cg_cli_bench(int argc, char **argv) {
    const char *path = NULL, *fmt = "md";
    int n_thread = 2, n_prompt = 512, n_gen = 128, reps = 5, mib = 256, n_seq = 0, depth = 0;
    bool kernels = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n", USAGE);
            return 0;
        }
        if (!strcmp(a, "--kernels")) {
            kernels = true;
            continue;
        }
        if (i + 1 >= argc) { cg_cli_fail("bench: %s needs a value\n%s", a, USAGE); return 2; }
        const char *v = argv[++i];
        bool ok = true;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) path = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = parse_int(v, 1, 1024, &n_thread);
        else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) ok = parse_int(v, 0, 65536, &n_prompt);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) ok = parse_int(v, 0, 65536, &n_gen);
        else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) ok = parse_int(v, 1, 1000, &reps);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch-seqs")) ok = parse_int(v, 1, 256, &n_seq);
        else if (!strcmp(a, "-d") || !strcmp(a, "--n-depth")) ok = parse_int(v, 0, 1 << 20, &depth);
        else if (!strcmp(a, "--mib")) ok = parse_int(v, 1, 1 << 16, &mib);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            fmt = v;
            ok = !strcmp(v, "md") || !strcmp(v, "json");
        } else {
            cg_cli_fail("bench: unknown option '%s'\n%s", a, USAGE);
            return 2;
        }
        if (!ok) { cg_cli_fail("bench: bad value '%s' for %s\n%s", v, a, USAGE); return 2; }
    }
    if (kernels) return cg_cli_bench_kernels(n_thread, mib);
    if (!path) { cg_cli_fail("bench: -m MODEL is required\n%s", USAGE); return 2; }
    if (depth > 0 && n_seq > 0) {
        cg_cli_fail("bench: -d (depth) and -b (sequences in lock step) cannot be combined\n%s", USAGE);
        return 2;
    }

    cg_err err = {0};
    cg_status st = CG_OK;
    bench b = {.rng = 12345, .depth = depth};
    result res[3] = {0};
    double *paired_gbps = NULL, *paired_tps = NULL;
    int n_res = 0, i_tg = -1, i_tgb = -1;   // indices in res of the tg and batched tg tests
    double gbps = 0.0;
    cg_pool *probe_pool = NULL;    // the context's (borrowed)
    cg_stream *probe_buf = NULL;   // 1 GiB in huge pages, like the repacked weights (kern/stream.h)
    cg_stream *inter_buf = NULL;   // the interleaved roofline's INTER_PROBE_MIB
    inter itl = {0};
    if ((st = cg_model_load(path, &b.m, &err))) goto done;
    if ((st = cg_model_ctx_new(b.m, n_thread, &b.ctx, &err))) goto done;
    const cg_hparams *h = cg_model_hparams(b.m);
    // Entries per batch: the prompt, the tg steps, or all the batched test's prompts; sequence 0's
    // blocks cover the longest of pp/tg, every other sequence its prompt and steps.
    const int n_bseq = n_seq > 0 && n_gen > 0 ? n_seq : 0;
    int n_max = n_prompt > n_gen ? n_prompt : n_gen;
    if (n_bseq * BATCH_PROMPT > n_max) n_max = n_bseq * BATCH_PROMPT;
    const int block = 16, len_b = BATCH_PROMPT + n_gen, len_0 = depth + (n_max > len_b ? n_max : len_b);
    if (depth > 0 && n_max < DEPTH_CHUNK) n_max = DEPTH_CHUNK;   // the fill's batches use the same arrays
    const int n_blocks = (len_0 + block - 1) / block + 1 + (n_bseq > 1 ? (n_bseq - 1) * ((len_b + block - 1) / block + 1) : 0);
    cg_kv_params kp = cg_model_kv_params(b.m, CG_KV_F16, block, n_blocks, n_bseq > 1 ? n_bseq : 1);
    if ((st = cg_kv_new(&kp, &b.kv, &err))) goto done;
    b.tok = calloc((size_t)n_max + 1, sizeof *b.tok);
    b.pos = calloc((size_t)n_max + 1, sizeof *b.pos);
    b.seq = calloc((size_t)n_max + 1, sizeof *b.seq);
    b.want = calloc((size_t)n_max + 1, sizeof *b.want);
    const int n_logit_rows = n_bseq > 1 ? n_bseq : 1;
    b.logits = malloc((size_t)h->n_vocab * (size_t)n_logit_rows * sizeof *b.logits);
    if (!b.tok || !b.pos || !b.seq || !b.want || !b.logits) { st = cg_err_set(&err, CG_ERR_NOMEM, "bench: out of memory"); goto done; }
    // The bandwidth probe runs right before and right after the tests, and the roofline takes the
    // higher of the two: this host's bandwidth moves between runs, and a probe that happened to run
    // slow would lower the ceiling and flatter the fraction.
    double gbps_before = 0.0, gbps_after = 0.0;
    probe_pool = cg_model_ctx_pool(b.ctx);
    if ((st = cg_stream_new((size_t)1 << 30, &probe_buf, &err))) goto done;
    if ((st = cg_stream_read(probe_buf, probe_pool, 5, &gbps_before, &err))) goto done;
    paired_gbps = calloc((size_t)reps + 1, sizeof *paired_gbps);
    paired_tps = calloc((size_t)reps, sizeof *paired_tps);
    if (!paired_gbps || !paired_tps) { st = cg_err_set(&err, CG_ERR_NOMEM, "bench: out of memory"); goto done; }
    const probes paired = {probe_pool, probe_buf, paired_gbps};
    if (n_prompt > 0 && (st = run_test(&b, true, n_prompt, 0, reps, n_thread, NULL, &res[n_res++], &err))) goto done;
    if (n_gen > 0) {
        res[n_res].tps = paired_tps;
        if ((st = run_test(&b, false, n_gen, 0, reps, n_thread, &paired, &res[i_tg = n_res++], &err))) goto done;
        const size_t ib = (size_t)INTER_PROBE_MIB << 20;
        if ((st = cg_stream_new(ib, &inter_buf, &err))) goto done;
        if ((st = run_interleaved(&b, n_gen, reps, probe_pool, inter_buf, ib, &itl, &err))) goto done;
    }
    if (n_bseq > 0 && (st = run_test(&b, false, n_gen, n_bseq, reps, n_thread, NULL, &res[i_tgb = n_res++], &err))) goto done;
    if ((st = cg_stream_read(probe_buf, probe_pool, 5, &gbps_after, &err))) goto done;
    gbps = gbps_before > gbps_after ? gbps_before : gbps_after;

    uint64_t wbytes, kv_pos, fbytes;
    int64_t n_params;
    model_bytes(b.m, &wbytes, &kv_pos, &fbytes, &n_params);
    const uint64_t tok_bytes = wbytes + kv_pos * (uint64_t)(depth + n_gen / 2);
    const double roof = gbps * 1e9 / (double)tok_bytes;
    const result *tg = i_tg >= 0 ? &res[i_tg] : NULL, *tgb = i_tgb >= 0 ? &res[i_tgb] : NULL;
    // Each tg run against the higher of the probes right before and after it.
    double pf_mean = 0.0, pf_min = 0.0, pf_max = 0.0;
    if (tg) {
        for (int k = 0; k < reps; k++) {
            const double bw = paired_gbps[k] > paired_gbps[k + 1] ? paired_gbps[k] : paired_gbps[k + 1];
            const double f = bw > 0 ? paired_tps[k] * (double)tok_bytes / (bw * 1e9) : 0.0;
            pf_mean += f / reps;
            if (k == 0 || f < pf_min) pf_min = f;
            if (k == 0 || f > pf_max) pf_max = f;
        }
    }

    // Interleaved: the decode blocks' read rate against the probe reads' over the same span.
    const double it_dec = itl.dec_secs > 0 ? (double)itl.n_tok * (double)tok_bytes / itl.dec_secs / 1e9 : 0.0;
    const double it_probe = itl.probe_secs > 0 ? itl.probe_bytes / itl.probe_secs / 1e9 : 0.0;
    const double it_frac = it_probe > 0 ? it_dec / it_probe : 0.0;

    // Model label like llama-bench's: "<arch> <params> <mix>".
    const cg_gguf *g = cg_model_gguf(b.m);
    cg_gguf_str arch = {0};
    cg_gguf_get_str(g, "general.architecture", &arch, NULL);
    uint32_t ft = 0;
    const char *mix = "?";
    if (!cg_gguf_get_u32_any(g, "general.file_type", &ft, NULL) && cg_ftype_get(ft)) mix = cg_ftype_get(ft)->name;
    char model[96], backend[48];
    const double pb = (double)n_params / 1e9;
    snprintf(model, sizeof model, "%.*s %.1fB %s", (int)(arch.n > 32 ? 32 : arch.n), arch.p ? arch.p : "", pb, mix);
    snprintf(backend, sizeof backend, "CPU (%s)", cg_kern_get()->name);
    const double gib = (double)fbytes / (1024.0 * 1024.0 * 1024.0);
    if (!strcmp(fmt, "md")) {
        printf("| model | size | params | backend | threads | test | t/s |\n");
        printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
        for (int k = 0; k < n_res; k++)
            printf("| %s | %.2f GiB | %.2f B | %s | %d | %s | %.2f ± %.2f |\n", model, gib, pb, backend, n_thread,
                   res[k].test, res[k].mean, res[k].sd);
        printf("\nroofline: read bandwidth %.2f GB/s (%d threads, 1 GiB buffer in huge pages; the higher of %.2f before and %.2f "
               "after the tests); %.1f MB read per generated token (weights %.1f MB + KV at mean context %d); "
               "ceiling %.2f t/s",
               gbps, n_thread, gbps_before, gbps_after, (double)tok_bytes / 1e6, (double)wbytes / 1e6,
               depth + n_gen / 2, roof);
        if (tg) {
            printf("; tg reached %.1f %% of it", 100.0 * tg->mean / roof);
            printf("\nroofline, paired: each tg run against the higher of the probes right before and after it "
                   "(best of %d reads of 1 GiB each; %.2f..%.2f GB/s): %.1f %% on average (runs %.1f..%.1f %%)",
                   PAIRED_PROBE_REPS, vmin(paired_gbps, reps + 1), vmax(paired_gbps, reps + 1), 100.0 * pf_mean,
                   100.0 * pf_min, 100.0 * pf_max);
            printf("\nroofline, interleaved: tg%d again %d times in blocks of %d tokens, one read of a %d MiB probe "
                   "before each block and after the last (%.2f..%.2f GB/s): decode read %.2f GB/s, the probe %.2f "
                   "GB/s over the same span: %.1f %%",
                   n_gen, reps, INTER_BLOCK, INTER_PROBE_MIB, itl.gbps_min, itl.gbps_max, it_dec, it_probe,
                   100.0 * it_frac);
        }
        printf("\ncpu: the process ran");
        for (int k = 0; k < n_res; k++) printf("%s %.0f %% of %d threads' time during %s", k ? "," : "", 100.0 * res[k].cpu_share, n_thread, res[k].test);
        printf(" (below 100 %%: the machine is shared, figures are lower than on an idle one)\n");
        if (tgb) {
            const double step_ms = tgb->mean > 0 ? 1e3 * tgb->n_seq / tgb->mean : 0.0;
            printf("batched: %d sequences in lock step (prompts of %d tokens, then %d steps of %d entries): %.2f t/s "
                   "total, %.2f ms per step, CPU %.2f ms per step",
                   tgb->n_seq, BATCH_PROMPT, n_gen, tgb->n_seq, tgb->mean, step_ms, tgb->cpu_ms * tgb->n_seq);
            if (tg && tg->mean > 0)
                printf("; 1-sequence tg %.2f t/s (%.2f ms per token): %.2fx", tg->mean, 1e3 / tg->mean,
                       tgb->mean / tg->mean);
            printf("\n");
        }
        const size_t rp = cg_model_repacked_bytes(b.m);
        if (rp) printf("repacked at load: %.1f MiB (Q4_0, Q5_0, Q8_0, Q4_K and Q6_K matmul weights) in 8-row interleaved blocks (CHINGU_REPACK=0: off)\n",
                       (double)rp / (1024.0 * 1024.0));
        // CPU time per token moves much less than t/s when other processes take the cores (spinning
        // pool workers count too), so it is the figure to compare between builds on a shared machine.
        printf("cpu time per token:");
        for (int k = 0; k < n_res; k++) printf("%s %.2f ms (%s)", k ? "," : "", res[k].cpu_ms, res[k].test);
        printf("\n");
    } else {
        printf("{\"model\": \"%s\", \"file\": \"%s\", \"size_bytes\": %" PRIu64 ", \"params\": %" PRId64
               ", \"backend\": \"%s\", \"threads\": %d, \"tests\": [",
               model, path, fbytes, n_params, backend, n_thread);
        for (int k = 0; k < n_res; k++)
        {
            printf("%s{\"test\": \"%s\", \"n\": %d, \"n_depth\": %d, \"reps\": %d, \"tps_mean\": %.4f, \"tps_sd\": %.4f, "
                   "\"cpu_share\": %.4f, \"cpu_ms_per_token\": %.4f",
                   k ? ", " : "", res[k].test, res[k].n_tok, &res[k] == tgb ? 0 : depth, reps, res[k].mean, res[k].sd,
                   res[k].cpu_share, res[k].cpu_ms);
            if (&res[k] == tgb)
                printf(", \"n_seq\": %d, \"steps\": %d, \"ms_per_step\": %.4f, \"cpu_ms_per_step\": %.4f, \"vs_tg1\": %.4f",
                       tgb->n_seq, n_gen, tgb->mean > 0 ? 1e3 * tgb->n_seq / tgb->mean : 0.0, tgb->cpu_ms * tgb->n_seq,
                       tg && tg->mean > 0 ? tgb->mean / tg->mean : 0.0);
            printf("}");
        }
        printf("], \"roofline\": {\"read_gbps\": %.4f, \"read_gbps_before\": %.4f, \"read_gbps_after\": %.4f, "
               "\"bytes_per_token\": %" PRIu64 ", \"ceiling_tps\": %.4f", gbps, gbps_before, gbps_after, tok_bytes, roof);
        if (tg)
            printf(", \"tg_fraction\": %.4f, \"tg_fraction_paired\": %.4f, \"tg_fraction_paired_min\": %.4f, "
                   "\"tg_fraction_paired_max\": %.4f, \"tg_fraction_interleaved\": %.4f, "
                   "\"interleaved_decode_gbps\": %.4f, \"interleaved_probe_gbps\": %.4f",
                   tg->mean / roof, pf_mean, pf_min, pf_max, it_frac, it_dec, it_probe);
        printf("}, \"repacked_bytes\": %zu}\n", cg_model_repacked_bytes(b.m));
    }
done:
    free(paired_gbps);
    free(paired_tps);
    cg_stream_free(probe_buf);
    cg_stream_free(inter_buf);
    free(b.tok);
    free(b.pos);
    free(b.seq);
    free(b.want);
    free(b.logits);
    cg_kv_free(b.kv);
    cg_model_ctx_free(b.ctx);
    cg_model_free(b.m);
    if (st) return cg_cli_fail("bench: %s", err.msg);
    return 0;
}
