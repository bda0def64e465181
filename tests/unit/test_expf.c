// test_expf.c — cg_expf and its AVX2 lanes (kern/expf.h), the exp of the F16 attention softmax.
//
// * glibc's bits: on glibc ≥ 2.28 (the algorithm kern/expf.h writes out), cg_expf equals libm's
//   expf for every 251st float bit pattern from 0 (17.1 M inputs: both signs, every exponent,
//   subnormals, ±inf, NaNs) and for the boundaries of the special cases; elsewhere that part is
//   reported skipped. (All 2^32 inputs were compared once, on glibc 2.36: 0 differ.)
// * special cases by value on every platform: e^0 = 1, e^−inf = 0, e^inf = inf, NaN stays NaN,
//   overflow past 88.7228 to inf, underflow to 2^−149 and then 0, e^1 within 1 ulp of M_E.
// * the AVX2 lanes (cg_avx2_expf, when the CPU has AVX2) equal cg_expf bit for bit over the same
//   sample, in chunks of 8 that mix special lanes (±inf, NaN, |x| ≥ 88) with ordinary ones, and
//   over the tail lengths 0..7.
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern/cpu.h"
#include "kern/expf.h"
#if defined(__x86_64__) || defined(__i386__)
#include "kern/x86/avx2.h"
#endif

enum { STEP = 251 };

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

// Inputs right at and next to every threshold of the special cases.
static const float EDGES[] = {88.0f, 0x1.62e42ep6f, 0x1.62e430p6f, -88.0f, -0x1.9d1d9ep6f, -0x1.9d1da0p6f,
                              -0x1.9d1d9cp6f, -0x1.9fe368p6f, -0x1.9fe36ap6f, -0x1.9fe366p6f, 0x1p-149f,
                              -0x1p-149f, 0x1.fffffep127f, -0x1.fffffep127f, 87.99999f, -87.99999f};

static void test_glibc_bits(void **state) {
    (void)state;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 28))
    uint64_t n = 0, bad = 0;
    for (uint64_t b = 0; b < 0x100000000ull; b += STEP, n++) {
        const float x = from_bits((uint32_t)b);
        if (bits(cg_expf(x)) != bits(expf(x))) {
            if (bad++ < 5) fprintf(stderr, "expf(%a): libm %a, cg_expf %a\n", x, expf(x), cg_expf(x));
        }
    }
    for (size_t i = 0; i < sizeof EDGES / sizeof *EDGES; i++, n++)
        if (bits(cg_expf(EDGES[i])) != bits(expf(EDGES[i]))) {
            if (bad++ < 10) fprintf(stderr, "expf(%a): libm %a, cg_expf %a\n", EDGES[i], expf(EDGES[i]), cg_expf(EDGES[i]));
        }
    assert_int_equal(bad, 0);
    printf("cg_expf equals glibc's expf bit for bit on %llu inputs\n", (unsigned long long)n);
#else
    printf("SKIP: not glibc >= 2.28; cg_expf not compared with libm's expf\n");
#endif
}

static void test_values(void **state) {
    (void)state;
    assert_true(cg_expf(0.0f) == 1.0f && cg_expf(-0.0f) == 1.0f);
    assert_true(cg_expf(-INFINITY) == 0.0f && !signbit(cg_expf(-INFINITY)));
    assert_true(isinf(cg_expf(INFINITY)) && cg_expf(INFINITY) > 0);
    assert_true(isnan(cg_expf(NAN)));
    assert_true(isinf(cg_expf(0x1.62e430p6f)));        // just past log(FLT_MAX·(1+2^-24))
    assert_true(isfinite(cg_expf(0x1.62e42ep6f)));      // the last input below the overflow bound
    assert_true(cg_expf(-0x1.9d1da0p6f) == 0x1p-149f);   // between the two underflow bounds
    assert_true(cg_expf(-0x1.9fe36ap6f) == 0.0f);
    assert_true(cg_expf(-1000.0f) == 0.0f);
    assert_true(fabs(cg_expf(1.0f) - M_E) <= 0x1p-22);           // within an ulp (2^-22 at e)
    assert_true(fabs(cg_expf(-1.0f) - 1.0 / M_E) <= 0x1p-25);    // (2^-25 at 1/e)
    assert_true(fabs(cg_expf(-10.0f) / exp(-10.0) - 1.0) <= 0x1p-23);
}

static void test_avx2_lanes(void **state) {
    (void)state;
#if defined(__x86_64__) || defined(__i386__)
    if (!cg_cpu_isa_available(CG_ISA_AVX2)) {
        printf("SKIP: no AVX2\n");
        return;
    }
    enum { CHUNK = 4096 };
    float *x = malloc(CHUNK * sizeof *x), *y = malloc(CHUNK * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    const float special[] = {INFINITY, -INFINITY, NAN, -NAN, 100.0f, -100.0f, -103.5f, -200.0f};
    uint64_t n = 0, bad = 0;
    uint64_t b = 0;
    while (b < 0x100000000ull) {
        int m = 0;
        for (; m < CHUNK && b < 0x100000000ull; m++, b += STEP) x[m] = from_bits((uint32_t)b);
        for (int k = 0; k + 8 <= m; k += 64) x[k + (k / 64) % 8] = special[(k / 64) % 8];   // mixed chunks
        cg_avx2_expf(x, y, m);
        for (int k = 0; k < m; k++, n++)
            if (bits(y[k]) != bits(cg_expf(x[k])) && bad++ < 5)
                fprintf(stderr, "lanes: expf(%a) = %a, cg_expf %a\n", x[k], y[k], cg_expf(x[k]));
    }
    memcpy(x, EDGES, sizeof EDGES);
    for (int len = 0; len <= 16; len++) {   // every tail length over the edges
        cg_avx2_expf(x, y, len);
        for (int k = 0; k < len; k++, n++)
            if (bits(y[k]) != bits(cg_expf(x[k])) && bad++ < 10)
                fprintf(stderr, "lanes (len %d): expf(%a) = %a, cg_expf %a\n", len, x[k], y[k], cg_expf(x[k]));
    }
    free(x);
    free(y);
    assert_int_equal(bad, 0);
    printf("AVX2 lanes equal cg_expf bit for bit on %llu inputs\n", (unsigned long long)n);
#else
    printf("SKIP: not x86\n");
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glibc_bits),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_avx2_lanes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
