// test_greedy_pick.c — the backend's one-pass greedy pick against the sampler it replaces for plain
// greedy requests (cg_sampler_sample at temperature 0, no penalties), which is the reference:
// random logits over a large vocabulary, ties, NaN, -inf, +inf, biases (duplicates summed, -inf
// bans), and the all-banned case; plus a few hand-computed picks.
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sample/sampler.h"
#include "server/backend_engine.h"

enum { NV = 151936 };

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

// The sampler's pick at temperature 0 with the given biases; -1 when it reports nothing allowed.
static int32_t sampler_pick(const float *logits, int32_t n_vocab, const cg_logit_bias *lb, size_t n_lb) {
    cg_err err = {0};
    cg_sampler_params p;
    cg_sampler_params_default(&p);
    p.temperature = 0;
    p.logit_bias = lb;
    p.n_logit_bias = n_lb;
    cg_sampler *s = NULL;
    CG_ASSERT_OK(cg_sampler_new(&p, n_vocab, &s, &err), &err);
    int32_t tok = -1;
    cg_status st = cg_sampler_sample(s, logits, NULL, &tok, &err);
    cg_sampler_free(s);
    return st ? -1 : tok;
}

// Sorted, merged copy of lb for cg_srv_greedy_pick (what the backend builds per request).
static size_t merge(const cg_logit_bias *lb, size_t n, int32_t *ids, float *b) {
    cg_logit_bias *t = malloc((n ? n : 1) * sizeof *t);
    memcpy(t, lb, n * sizeof *t);
    for (size_t i = 1; i < n; i++)   // insertion sort by id (stable)
        for (size_t k = i; k > 0 && t[k - 1].id > t[k].id; k--) {
            cg_logit_bias x = t[k];
            t[k] = t[k - 1], t[k - 1] = x;
        }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && ids[m - 1] == t[i].id) b[m - 1] += t[i].bias;
        else ids[m] = t[i].id, b[m++] = t[i].bias;
    }
    free(t);
    return m;
}

static void test_hand_computed(void **state) {
    (void)state;
    float l[6] = {1, 3, 3, NAN, -INFINITY, 2};
    assert_int_equal(cg_srv_greedy_pick(l, 6, NULL, NULL, 0), 1);   // tie 1/2: lowest id
    int32_t id[2] = {1, 5};
    float b[2] = {-INFINITY, 1.5f};
    assert_int_equal(cg_srv_greedy_pick(l, 6, id, b, 2), 5);        // 1 banned; 5 → 3.5
    float l2[4] = {1, INFINITY, 0, INFINITY};
    assert_int_equal(cg_srv_greedy_pick(l2, 4, NULL, NULL, 0), 1);  // first +inf
    float l3[3] = {NAN, -INFINITY, 5};
    int32_t id3[1] = {2};
    float b3[1] = {-INFINITY};
    assert_int_equal(cg_srv_greedy_pick(l3, 3, id3, b3, 1), -1);    // nothing allowed
    int32_t id4[1] = {0};
    float b4[1] = {10};
    assert_int_equal(cg_srv_greedy_pick(l2, 4, id4, b4, 1), 1);     // +inf still beats a bias
}

static void test_matches_sampler(void **state) {
    (void)state;
    float *l = malloc(NV * sizeof *l);
    int agree = 0, trials = 40;
    for (int t = 0; t < trials; t++) {
        // Logits on a coarse grid so ties happen; some NaN / -inf / +inf.
        for (int i = 0; i < NV; i++) l[i] = (float)(rnd() % 64) * 0.25f - 8.0f;
        int n_special = (int)(rnd() % 6);
        for (int k = 0; k < n_special; k++) {
            uint32_t i = rnd() % NV, kind = rnd() % 3;
            l[i] = kind == 0 ? NAN : kind == 1 ? -INFINITY : (t % 4 == 0 ? INFINITY : l[i]);
        }
        cg_logit_bias lb[8];
        size_t n_lb = rnd() % 8;
        for (size_t k = 0; k < n_lb; k++) {
            // bias some current maxima (ids of value 7.75) and random ids; a duplicate sometimes
            lb[k].id = k && rnd() % 3 == 0 ? lb[k - 1].id : (int32_t)(rnd() % NV);
            uint32_t kind = rnd() % 4;
            lb[k].bias = kind == 0 ? -INFINITY : kind == 1 ? 20.0f : (float)(rnd() % 9) - 4.0f;
        }
        int32_t ids[8];
        float b[8];
        size_t m = merge(lb, n_lb, ids, b);
        int32_t want = sampler_pick(l, NV, lb, n_lb), got = cg_srv_greedy_pick(l, NV, ids, b, m);
        if (want == got) agree++;
        else print_message("trial %d: sampler %d, greedy_pick %d\n", t, want, got);
    }
    print_message("greedy pick agrees with the sampler in %d of %d trials over %d logits\n", agree, trials, NV);
    assert_int_equal(agree, trials);
    free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_matches_sampler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
