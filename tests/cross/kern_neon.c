// kern_neon.c — the NEON kernel table against the scalar reference, as a plain program (no
// cmocka: it is cross-compiled for aarch64 with only the kernel and quant sources, and run under
// qemu by tests/integ/kern_neon.sh). Checks, for every entry the NEON table has:
//   * activation quantizers: bytes identical with the reference (random rows, tie rows);
//   * dot products: |neon − ref| ≤ 1e-5·Σ|w·y| on random rows of several lengths (summation order);
//   * the NEON compute-op table is what cg_kern_get() picks, and its pooled matmul agrees with the
//     reference table's within the same bound (NEON formats and one falling back to the reference).
// Prints one line per format; exit status 0 only when everything agrees.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/thread.h"
#include "kern/cpu.h"
#include "kern/kern.h"
#include "kern/qops.h"
#include "quant/quant.h"

static uint64_t g = 99;
static float frand(void) {
    g = g * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(g >> 40) * 0x1p-24f * 2.0f - 1.0f;
}

static size_t row_bytes(uint32_t t, int64_t n) {
    const cg_qtype_traits *tr = cg_qtype_get(t);
    return (size_t)(n / tr->blck_size) * tr->type_size;
}

int main(void) {
    const cg_qops *ops = cg_qops_get();
    printf("isa %s, table %s\n", cg_isa_name(cg_cpu_isa()), ops->name);
    if (strcmp(ops->name, "neon")) {
        printf("no NEON table on this machine: nothing checked\n");
        return 77;
    }
    int fails = 0;
    enum { NMAX = 4096 };
    float *x = malloc(NMAX * sizeof *x), *w = malloc(NMAX * sizeof *w);
    unsigned char *a = malloc(NMAX * 4), *b = malloc(NMAX * 4), *q = malloc(NMAX * 4);
    float *da = malloc(NMAX * sizeof *da), *db = malloc(NMAX * sizeof *db);
    for (uint32_t t = 0; t < CG_QTYPE_COUNT; t++) {
        if (!ops->quant_act[t]) continue;
        int n_rows = 0;
        for (int kind = 0; kind < 3; kind++)
            for (int64_t n = 256; n <= NMAX; n += 768) {
                for (int64_t i = 0; i < n; i++)
                    x[i] = kind == 2 ? (float)((i * 7) % 254 - 127) * 0.5f : frand() * (kind ? 100.0f : 1.0f);
                if (kind == 2)
                    for (int64_t i = 0; i < n; i += 32) x[i] = 127.0f;
                const size_t nb = row_bytes(t, n);
                memset(a, 0, nb), memset(b, 0, nb);
                cg_qtype_get(t)->from_f32_act(x, a, n);
                ops->quant_act[t](x, b, n);
                if (memcmp(a, b, nb)) {
                    printf("FAIL %s quantizer differs from the reference (n %lld, kind %d)\n", cg_qtype_name(t), (long long)n, kind);
                    fails++;
                }
                n_rows++;
            }
        printf("%-5s activation quantizer: %d rows byte-identical\n", cg_qtype_name(t), n_rows);
    }
    for (uint32_t t = 0; t < CG_QTYPE_COUNT; t++) {
        if (!ops->vec_dot[t]) continue;
        const cg_qtype_traits *tr = cg_qtype_get(t), *vt = cg_qtype_get(tr->vec_dot_type);
        double worst = 0.0;
        int n_rows = 0;
        for (int64_t n = tr->blck_size == 256 ? 256 : 32; n <= NMAX; n = n * 3 - (n % 256 ? 0 : 256)) {
            for (int64_t i = 0; i < n; i++) w[i] = frand(), x[i] = frand() * 3.0f;
            tr->from_f32(w, a, n);
            cg_qops_quant_act(ops, tr->vec_dot_type)(x, q, n);
            float ref, got;
            tr->vec_dot(n, &ref, a, q);
            ops->vec_dot[t](n, &got, a, q);
            tr->to_f32(a, da, n);
            vt->to_f32(q, db, n);
            double terms = 0.0;
            for (int64_t i = 0; i < n; i++) terms += fabs((double)da[i] * db[i]);
            const double d = fabs((double)got - ref);
            if (d > 1e-5 * terms + 1e-30) {
                printf("FAIL %s n %lld: neon %.9g vs reference %.9g\n", tr->name, (long long)n, got, ref);
                fails++;
            }
            if (terms > 0 && d / terms > worst) worst = d / terms;
            n_rows++;
        }
        printf("%-5s vec_dot: %d rows, max |neon-ref|/Σ|terms| %.2e (bound 1e-5)\n", tr->name, n_rows, worst);
    }
    // The compute-op table.
    const cg_kern *k = cg_kern_get();
    if (strcmp(k->name, "neon")) {
        printf("FAIL cg_kern_get() is '%s', not 'neon'\n", k->name);
        fails++;
    }
    static const uint32_t MT[] = {CG_QTYPE_Q4_0, CG_QTYPE_Q8_0, CG_QTYPE_Q4_K, CG_QTYPE_Q6_K, CG_QTYPE_F32, CG_QTYPE_Q5_1};
    enum { NI = 512, NO = 40, NT = 6 };
    cg_pool *pool = NULL;
    cg_err err = {0};
    cg_arena arena;
    cg_arena_init(&arena, 1 << 20);
    if (cg_pool_new(2, &pool, &err)) return 1;
    float *X = malloc(NI * NT * sizeof *X), *Y1 = malloc(NO * NT * sizeof *Y1), *Y2 = malloc(NO * NT * sizeof *Y2);
    float *wf = malloc(NI * NO * sizeof *wf), *wd = malloc(NI * NO * sizeof *wd);
    for (int i = 0; i < NI * NT; i++) X[i] = frand();
    for (int i = 0; i < NI * NO; i++) wf[i] = frand();
    for (size_t m = 0; m < sizeof MT / sizeof MT[0]; m++) {
        const cg_qtype_traits *tr = cg_qtype_get(MT[m]);
        const size_t rb = row_bytes(MT[m], NI);
        unsigned char *W = malloc(rb * NO);
        for (int o = 0; o < NO; o++) tr->from_f32(wf + o * NI, W + rb * (size_t)o, NI);
        tr->to_f32(W, wd, (int64_t)NI * NO);
        cg_tensor T = {.name = "w", .type = MT[m], .ne = {NI, NO, 1, 1}, .row_bytes = rb, .data = W};
        for (int nt = 1; nt <= NT; nt += NT - 1) {
            cg_arena_reset(&arena);
            if (cg_kern_generic()->matmul(&T, X, nt, Y1, &arena, pool, &err) || k->matmul(&T, X, nt, Y2, &arena, pool, &err)) {
                printf("FAIL matmul %s: %s\n", tr->name, err.msg);
                fails++;
                continue;
            }
            for (int t = 0; t < nt; t++)
                for (int o = 0; o < NO; o++) {
                    double terms = 0.0;
                    for (int i = 0; i < NI; i++) terms += fabs((double)wd[o * NI + i] * X[t * NI + i]);
                    if (fabs((double)Y1[t * NO + o] - Y2[t * NO + o]) > 1e-5 * terms + 1e-30) {
                        printf("FAIL matmul %s tokens %d: Y[%d,%d] %.9g vs reference %.9g\n", tr->name, nt, t, o,
                               Y2[t * NO + o], Y1[t * NO + o]);
                        fails++;
                    }
                }
        }
        free(W);
    }
    printf("%s table: pooled matmul agrees with the reference for %zu formats (1 and %d tokens)\n", k->name,
           sizeof MT / sizeof MT[0], NT);
    cg_pool_free(pool);
    cg_arena_free(&arena);
    free(X), free(Y1), free(Y2), free(wf), free(wd);
    free(x), free(w), free(a), free(b), free(q), free(da), free(db);
    if (fails) printf("kern_neon: %d failures\n", fails);
    else printf("kern_neon: all agree\n");
    return fails ? 1 : 0;
}
