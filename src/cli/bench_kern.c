// bench_kern.c — `chingu bench --kernels [-t N] [--mib M]`: kernel microbenchmarks printed as a
// table, never pass/fail.
//
// For every weight format: a matrix of about M MiB (default 256, ≫ the last-level cache) of random
// rows (64 distinct rows quantized with the reference quantizer, repeated; speed does not depend on
// the values), activations quantized once; then
//   * matvec (decode): GB/s of weight bytes streamed, for the generic (scalar reference) and the
//     machine's SIMD kernels, rows split across the pool — and the fraction of the read bandwidth
//     from the stream probe (the roofline);
//   * matmul over 64 tokens (prefill): GOP/s (2·n_in·n_out·n_tok / s) of the SIMD row-tiled
//     kernel and, for comparison, dequantize-to-f32 + F32 FMA dot products (the alternative the
//     issue asks to measure); the faster of the two is what a prefill kernel should use;
//   * Q4_0, Q5_0, Q4_K and Q6_K stored layout vs repacked at load (kern/repack.h), one thread, CPU time, for
//     1, 8 and 64 tokens: the kernels the model's matmul uses for each (matvec / row-tiled matmul vs
//     the 8-row interleaved kernel), on a 32 MiB matrix.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/thread.h"
#include "base/time.h"
#include "cli/cli.h"
#include "kern/cpu.h"
#include "kern/qops.h"
#include "kern/repack.h"
#include "kern/stream.h"
#include "quant/quant.h"

enum { N_IN = 4096, N_TOK = 64, N_DISTINCT = 64, N_REPS = 3 };

typedef struct kjob {
    const cg_qops *ops;
    uint32_t t;
    const unsigned char *W;
    size_t row_bytes;
    int64_t n_rows;
    const void *xq;
    size_t xq_row;
    int64_t n_tok;
    float *Y;
    const float *xf;   // f32 activations (dequantized path)
    float *scratch;    // per thread N_IN * 16 floats
} kjob;

static void matvec_worker(void *ctx, int i, int n) {
    const kjob *j = ctx;
    int64_t b, e;
    cg_pool_split(j->n_rows, i, n, &b, &e);
    cg_qops_matvec(j->ops, j->t, j->W, j->row_bytes, N_IN, j->xq, j->Y + b, b, e);
}

static void matmul_worker(void *ctx, int i, int n) {
    const kjob *j = ctx;
    int64_t b, e;
    cg_pool_split(j->n_rows, i, n, &b, &e);
    cg_qops_matmul(j->ops, j->t, j->W, j->row_bytes, N_IN, j->xq, j->xq_row, j->n_tok, j->Y, j->n_rows, b, e);
}

// Dequantize 16 rows at a time to f32, then F32 dot products (SIMD F32 kernel) with every token.
static void deq_worker(void *ctx, int i, int n) {
    const kjob *j = ctx;
    int64_t b, e;
    cg_pool_split(j->n_rows, i, n, &b, &e);
    const cg_qtype_traits *tr = cg_qtype_get(j->t);
    const cg_vec_dot_fn dot = cg_qops_vec_dot(j->ops, CG_QTYPE_F32);
    float *w = j->scratch + (size_t)i * N_IN * 16;
    for (int64_t r0 = b; r0 < e; r0 += 16) {
        const int64_t nr = e - r0 < 16 ? e - r0 : 16;
        for (int64_t r = 0; r < nr; r++) tr->to_f32(j->W + (size_t)(r0 + r) * j->row_bytes, w + r * N_IN, N_IN);
        for (int64_t k = 0; k < j->n_tok; k++)
            for (int64_t r = 0; r < nr; r++) dot(N_IN, &j->Y[k * j->n_rows + r0 + r], w + r * N_IN, j->xf + k * N_IN);
    }
}

static double best_time(cg_pool *pool, cg_pool_fn fn, kjob *j) {
    double best = 1e30;
    for (int r = 0; r < N_REPS; r++) {
        const uint64_t t0 = cg_time_ns();
        cg_pool_run(pool, fn, j);
        const double dt = (double)(cg_time_ns() - t0) * 1e-9;
        if (dt < best) best = dt;
    }
    return best;
}

// CPU seconds of this thread (the repack comparison runs on the calling thread only).
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Stored vs repacked (Q4_0, Q5_0, Q4_K or Q6_K): best of N_REPS single-thread CPU times per token count.
static void bench_repack(uint32_t t, const float *wf, const float *xf) {
    const cg_qops *ops = cg_qops_get();
    const bool is_k = t == CG_QTYPE_Q4_K, is_6k = t == CG_QTYPE_Q6_K, is_5 = t == CG_QTYPE_Q5_0;
    const cg_qtype_traits *tr = cg_qtype_get(t), *vt = cg_qtype_get(tr->vec_dot_type);
    const size_t rb = (size_t)(N_IN / tr->blck_size) * tr->type_size;
    const size_t xrb = (size_t)(N_IN / vt->blck_size) * vt->type_size;
    const int64_t n_rows = ((int64_t)32 << 20) / (int64_t)rb / 8 * 8;
    const size_t n_bytes = rb * (size_t)n_rows;
    unsigned char *W = malloc(rb * (size_t)n_rows), *R = aligned_alloc(64, rb * (size_t)n_rows);
    unsigned char *xq = malloc(xrb * N_TOK);
    cg_q8_0_aux *aux = malloc((size_t)(N_IN / 32) * N_TOK * sizeof *aux);
    float *Y = malloc((size_t)n_rows * N_TOK * sizeof *Y);
    cg_err err = {0};
    cg_tensor T = {.name = "bench", .type = t, .ne = {N_IN, n_rows, 1, 1}, .row_bytes = rb, .data = W}, V;
    if (!W || !R || !xq || !aux || !Y) {
        printf("\n%s repack comparison: out of memory\n", tr->name);
        goto done;
    }
    for (int r = 0; r < N_DISTINCT; r++) tr->from_f32(wf + (size_t)r * N_IN, W + rb * (size_t)r, N_IN);
    for (int64_t r = N_DISTINCT; r < n_rows; r++) memcpy(W + rb * (size_t)r, W + rb * (size_t)(r % N_DISTINCT), rb);
    const cg_status rst = is_6k  ? cg_repack_q6_K(&T, R, n_bytes, &V, &err)
                          : is_k ? cg_repack_q4_K(&T, R, n_bytes, &V, &err)
                          : is_5 ? cg_repack_q5_0(&T, R, n_bytes, &V, &err)
                                 : cg_repack_q4_0(&T, R, n_bytes, &V, &err);
    if (rst) {
        printf("\n%s repack comparison: %s\n", tr->name, err.msg);
        goto done;
    }
    for (int tk = 0; tk < N_TOK; tk++) {
        cg_qops_quant_act(ops, tr->vec_dot_type)(xf + tk * N_IN, xq + xrb * (size_t)tk, N_IN);
        if (!is_k && !is_6k && !is_5) cg_repack_q8_0_aux(xq + xrb * (size_t)tk, N_IN, aux + (size_t)tk * (N_IN / 32));
    }
    printf("\n%s stored layout vs repacked at load (%s, 1 thread, CPU time, %.0f MiB matrix, n_in %d):\n\n", tr->name,
           ops->name, (double)(rb * (size_t)n_rows) / (1 << 20), N_IN);
    printf("| tokens | stored GOP/s | repacked GOP/s | repacked/stored | stored weight GB/s | repacked weight GB/s |\n"
           "| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    static const int TOKS[] = {1, 8, 64};
    for (size_t i = 0; i < sizeof TOKS / sizeof TOKS[0]; i++) {
        const int nt = TOKS[i];
        double best[2] = {1e30, 1e30};
        for (int rep = 0; rep < N_REPS; rep++)
            for (int layout = 0; layout < 2; layout++) {
                const double t0 = cpu_s();
                if (layout == 0 && nt == 1)
                    cg_qops_matvec(ops, t, W, rb, N_IN, xq, Y, 0, n_rows);
                else if (layout == 0)
                    cg_qops_matmul(ops, t, W, rb, N_IN, xq, xrb, nt, Y, n_rows, 0, n_rows);
                else if (is_6k && ops->q6_Kx8_matmul)
                    ops->q6_Kx8_matmul(R, N_IN, xq, xrb, nt, Y, n_rows, 0, n_rows);
                else if (is_6k)
                    cg_repack_q6_Kx8_matmul_ref(R, N_IN, xq, xrb, nt, Y, n_rows, 0, n_rows);
                else if (is_5 && ops->q5_0x8_matmul)
                    ops->q5_0x8_matmul(R, N_IN, xq, xrb, nt, Y, n_rows, 0, n_rows);
                else if (is_5)
                    cg_repack_q5_0x8_matmul_ref(R, N_IN, xq, xrb, nt, Y, n_rows, 0, n_rows);
                else if (is_k && ops->q4_Kx8_matmul)
                    ops->q4_Kx8_matmul(R, N_IN, xq, xrb, nt, Y, n_rows, 0, n_rows);
                else if (is_k)
                    cg_repack_q4_Kx8_matmul_ref(R, N_IN, xq, xrb, nt, Y, n_rows, 0, n_rows);
                else if (ops->q4_0x8_matmul)
                    ops->q4_0x8_matmul(R, N_IN, xq, xrb, aux, NULL, nt, Y, n_rows, 0, n_rows);
                else
                    cg_repack_q4_0x8_matmul_ref(R, N_IN, xq, xrb, nt, Y, n_rows, 0, n_rows);
                const double dt = cpu_s() - t0;
                if (dt < best[layout]) best[layout] = dt;
            }
        const double ops_n = 2.0 * N_IN * (double)n_rows * nt;
        const double wb = (double)n_bytes;   // weight bytes read once per call (1 thread)
        printf("| %d | %.1f | %.1f | %.2fx | %.1f | %.1f |\n", nt, ops_n / best[0] / 1e9, ops_n / best[1] / 1e9,
               best[0] / best[1], wb / best[0] / 1e9, wb / best[1] / 1e9);
        fflush(stdout);
    }
done:
    free(W), free(R), free(xq), free(aux), free(Y);
}

int cg_cli_bench_kernels(int n_thread, int mib) {
    static const uint32_t TYPES[] = {CG_QTYPE_Q4_0, CG_QTYPE_Q4_1, CG_QTYPE_Q5_0, CG_QTYPE_Q5_1, CG_QTYPE_Q8_0,
                                     CG_QTYPE_Q2_K, CG_QTYPE_Q3_K, CG_QTYPE_Q4_K, CG_QTYPE_Q5_K, CG_QTYPE_Q6_K,
                                     CG_QTYPE_F16,  CG_QTYPE_BF16, CG_QTYPE_F32};
    cg_err err = {0};
    cg_pool *pool = NULL;
    if (cg_pool_new(n_thread, &pool, &err)) return cg_cli_fail("bench: %s", err.msg);
    double gbps = 0.0;
    if (cg_stream_read_gbps(pool, (size_t)1 << 30, 5, &gbps, &err)) {
        cg_pool_free(pool);
        return cg_cli_fail("bench: %s", err.msg);
    }
    const cg_qops *gen = cg_qops_for(CG_ISA_GENERIC), *simd = cg_qops_get();
    printf("kernel microbenchmarks: %d threads, %d MiB per matrix, n_in %d; read bandwidth %.2f GB/s (stream probe)\n\n",
           n_thread, mib, N_IN, gbps);
    printf("| format | matvec generic GB/s | matvec %s GB/s | %s/generic | roofline | matmul%d %s GOP/s | "
           "dequant+f32 GOP/s | prefill winner |\n",
           simd->name, simd->name, N_TOK, simd->name);
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
    float *wf = malloc((size_t)N_IN * N_DISTINCT * sizeof *wf), *xf = malloc((size_t)N_IN * N_TOK * sizeof *xf);
    float *scratch = malloc((size_t)N_IN * 16 * (size_t)cg_pool_size(pool) * sizeof *scratch);
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < N_IN * N_DISTINCT; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        wf[i] = (float)(s >> 40) * 0x1p-24f - 0.5f;
    }
    for (int i = 0; i < N_IN * N_TOK; i++) xf[i] = wf[i % (N_IN * N_DISTINCT)] * 3.0f;
    for (size_t k = 0; k < sizeof TYPES / sizeof TYPES[0] && wf && xf && scratch; k++) {
        const uint32_t t = TYPES[k];
        const cg_qtype_traits *tr = cg_qtype_get(t), *vt = cg_qtype_get(tr->vec_dot_type);
        const size_t rb = (size_t)(N_IN / tr->blck_size) * tr->type_size;
        const size_t xrb = (size_t)(N_IN / vt->blck_size) * vt->type_size;
        const int64_t n_rows = ((int64_t)mib << 20) / (int64_t)rb;
        unsigned char *W = malloc(rb * (size_t)n_rows), *xq = malloc(xrb * N_TOK);
        float *Y = malloc((size_t)n_rows * N_TOK * sizeof *Y);
        if (!W || !xq || !Y) {
            free(W), free(xq), free(Y);
            printf("| %s | out of memory |\n", tr->name);
            continue;
        }
        for (int r = 0; r < N_DISTINCT; r++) tr->from_f32(wf + (size_t)r * N_IN, W + rb * (size_t)r, N_IN);
        for (int64_t r = N_DISTINCT; r < n_rows; r++) memcpy(W + rb * (size_t)r, W + rb * (size_t)(r % N_DISTINCT), rb);
        for (int tk = 0; tk < N_TOK; tk++) cg_qops_quant_act(simd, tr->vec_dot_type)(xf + tk * N_IN, xq + xrb * (size_t)tk, N_IN);
        kjob j = {.t = t, .W = W, .row_bytes = rb, .n_rows = n_rows, .xq = xq, .xq_row = xrb, .n_tok = N_TOK, .Y = Y,
                  .xf = xf, .scratch = scratch};
        const double bytes = (double)rb * (double)n_rows;
        j.ops = gen;
        const double t_gen = best_time(pool, matvec_worker, &j);
        j.ops = simd;
        const double t_simd = best_time(pool, matvec_worker, &j);
        const double ops = 2.0 * N_IN * (double)n_rows * N_TOK;
        const double t_mm = best_time(pool, matmul_worker, &j);
        const double t_deq = best_time(pool, deq_worker, &j);
        printf("| %s | %.2f | %.2f | %.1fx | %.0f %% | %.1f | %.1f | %s |\n", tr->name, bytes / t_gen / 1e9,
               bytes / t_simd / 1e9, t_gen / t_simd, 100.0 * bytes / t_simd / 1e9 / gbps, ops / t_mm / 1e9,
               ops / t_deq / 1e9, t_mm <= t_deq ? "int8 dot" : "dequant+f32");
        fflush(stdout);
        free(W), free(xq), free(Y);
    }
    if (wf && xf) {
        bench_repack(CG_QTYPE_Q4_0, wf, xf);
        bench_repack(CG_QTYPE_Q5_0, wf, xf);
        bench_repack(CG_QTYPE_Q4_K, wf, xf);
        bench_repack(CG_QTYPE_Q6_K, wf, xf);
    }
    free(wf), free(xf), free(scratch);
    cg_pool_free(pool);
    return 0;
}
