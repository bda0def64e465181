// test_sample.c — sampler stages, the chain, logprobs and stop strings, against hand-computed values.
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sample/sampler.h"
#include "sample/stop.h"

#define TOL 1e-5

// Fills d with ids 0..n-1 and the given logits; returns a view.
static cg_candidates cands(cg_token_data *d, const float *logits, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = (cg_token_data){(int32_t)i, logits[i], 0};
    return (cg_candidates){d, n, false};
}

static float p_of(const cg_candidates *c, int32_t id) {
    for (size_t i = 0; i < c->n; i++)
        if (c->data[i].id == id) return c->data[i].p;
    return -1;   // not a candidate any more
}

// logits = ln p, so softmax gives back p exactly (up to rounding)
static void lnp(float *out, const double *p, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)log(p[i]);
}

static void test_top_k(void **state) {
    (void)state;
    cg_token_data d[6];
    float l[6] = {1, 4, 2, 3, -1, 0};
    cg_candidates c = cands(d, l, 6);
    cg_sample_top_k(&c, 2, 1);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.data[0].id, 1);
    assert_int_equal(c.data[1].id, 3);
    cg_candidates_softmax(&c);
    // e^4 / (e^4 + e^3) = 1 / (1 + e^-1)
    assert_float_equal(p_of(&c, 1), 1.0 / (1.0 + exp(-1.0)), TOL);
    assert_float_equal(p_of(&c, 3), 1.0 / (1.0 + exp(1.0)), TOL);
    // min_keep wins over k
    c = cands(d, l, 6);
    cg_sample_top_k(&c, 1, 3);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.data[2].id, 2);
    // a large random array: the selection agrees with a full sort
    enum { N = 5000 };
    cg_token_data *big = malloc(N * sizeof *big);
    cg_rng r;
    cg_rng_seed(&r, 7);
    float mx[5] = {-1e9, -1e9, -1e9, -1e9, -1e9};
    for (int i = 0; i < N; i++) {
        big[i] = (cg_token_data){i, (float)(cg_rng_uniform(&r) * 100), 0};
        float v = big[i].logit;
        for (int j = 0; j < 5; j++)
            if (v > mx[j]) { float t = mx[j]; mx[j] = v; v = t; }
    }
    cg_candidates cb = {big, N, false};
    cg_sample_top_k(&cb, 5, 1);
    for (int j = 0; j < 5; j++) assert_float_equal(cb.data[j].logit, mx[j], 0);
    free(big);
}

static void test_top_p_min_p(void **state) {
    (void)state;
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    float l[4];
    lnp(l, p, 4);
    cg_token_data d[4];
    cg_candidates c = cands(d, l, 4);
    cg_sample_top_p(&c, 0.7f, 1);   // 0.5 < 0.7 <= 0.8: two tokens
    assert_int_equal(c.n, 2);
    cg_candidates_softmax(&c);
    assert_float_equal(p_of(&c, 0), 0.5 / 0.8, TOL);
    assert_float_equal(p_of(&c, 1), 0.3 / 0.8, TOL);
    c = cands(d, l, 4);
    cg_sample_top_p(&c, 0.9f, 1);   // 0.8 < 0.9 <= 0.95: three
    assert_int_equal(c.n, 3);
    c = cands(d, l, 4);
    cg_sample_min_p(&c, 0.35f, 1);   // threshold 0.175: 0.5 and 0.3
    assert_int_equal(c.n, 2);
    c = cands(d, l, 4);
    cg_sample_min_p(&c, 0.25f, 1);   // threshold 0.125: three
    assert_int_equal(c.n, 3);
    cg_candidates_softmax(&c);
    assert_float_equal(p_of(&c, 2), 0.15 / 0.95, TOL);
    c = cands(d, l, 4);
    cg_sample_min_p(&c, 0.99f, 2);   // min_keep
    assert_int_equal(c.n, 2);
}

static void test_typical(void **state) {
    (void)state;
    const double p[4] = {0.5, 0.3, 0.15, 0.05};
    double H = 0;
    for (int i = 0; i < 4; i++) H -= p[i] * log(p[i]);
    // |-ln p - H|: 0.5 -> 0.449, 0.3 -> 0.062, 0.15 -> 0.755, 0.05 -> 1.854; typical order 1,0,2,3
    assert_true(fabs(-log(0.3) - H) < fabs(-log(0.5) - H));
    float l[4];
    lnp(l, p, 4);
    cg_token_data d[4];
    cg_candidates c = cands(d, l, 4);
    cg_sample_typical(&c, 0.2f, 1);   // 0.3 >= 0.2: only token 1
    assert_int_equal(c.n, 1);
    assert_int_equal(c.data[0].id, 1);
    c = cands(d, l, 4);
    cg_sample_typical(&c, 0.5f, 1);   // 0.3 + 0.5: tokens 1 and 0
    assert_int_equal(c.n, 2);
    cg_candidates_softmax(&c);
    assert_float_equal(p_of(&c, 0), 0.625, TOL);
    assert_float_equal(p_of(&c, 1), 0.375, TOL);
    c = cands(d, l, 4);
    cg_sample_typical(&c, 0.9f, 1);   // 0.3 + 0.5 + 0.15 = 0.95: three, 0.05 dropped
    assert_int_equal(c.n, 3);
    assert_float_equal(p_of(&c, 3), -1, 0);
}

static void test_temperature_xtc(void **state) {
    (void)state;
    float l[2] = {1, 2};
    cg_token_data d[4];
    cg_candidates c = cands(d, l, 2);
    cg_sample_temperature(&c, 0.5f);
    cg_candidates_softmax(&c);
    assert_float_equal(p_of(&c, 1), 1.0 / (1.0 + exp(-2.0)), TOL);
    // XTC: 0.4 and 0.3 are above 0.25; the more probable one goes
    const double p[4] = {0.4, 0.3, 0.2, 0.1};
    float l4[4];
    lnp(l4, p, 4);
    cg_rng r;
    cg_rng_seed(&r, 1);
    c = cands(d, l4, 4);
    cg_sample_xtc(&c, 1.0f, 0.25f, 1, &r);
    assert_int_equal(c.n, 3);
    cg_candidates_softmax(&c);
    assert_float_equal(p_of(&c, 0), -1, 0);
    assert_float_equal(p_of(&c, 1), 0.5, TOL);
    assert_float_equal(p_of(&c, 2), 0.2 / 0.6, TOL);
    // only one above the threshold: untouched
    c = cands(d, l4, 4);
    cg_sample_xtc(&c, 1.0f, 0.35f, 1, &r);
    assert_int_equal(c.n, 4);
}

static void test_penalties_dry(void **state) {
    (void)state;
    cg_err err = {0};
    float l[3] = {2, -2, 1};
    cg_token_data d[8];
    cg_candidates c = cands(d, l, 3);
    const int32_t hist[3] = {0, 1, 0};
    CG_ASSERT_OK(cg_sample_penalties(&c, hist, 3, 2.0f, 0.5f, 0.25f, &err), &err);
    // token 0: 2/2 - (2*0.5 + 0.25); token 1: -2*2 - (0.5 + 0.25); token 2 unseen
    for (size_t i = 0; i < 3; i++) {
        if (c.data[i].id == 0) assert_float_equal(c.data[i].logit, -0.25, TOL);
        if (c.data[i].id == 1) assert_float_equal(c.data[i].logit, -4.75, TOL);
        if (c.data[i].id == 2) assert_float_equal(c.data[i].logit, 1.0, TOL);
    }
    // DRY: history 1 2 3 4 1 2 3 — continuing with 4 would repeat "1 2 3 4": L = 3, allowed 2,
    // penalty 1.0 * 2^(3-2) = 2 on token 4; "3" alone (L=1 after "... 3 4 1 2"?) gives nothing else.
    float z[8] = {0};
    c = cands(d, z, 8);
    const int32_t h2[7] = {1, 2, 3, 4, 1, 2, 3};
    CG_ASSERT_OK(cg_sample_dry(&c, h2, 7, 1.0f, 2.0f, 2, NULL, 0, &err), &err);
    for (size_t i = 0; i < 8; i++) assert_float_equal(c.data[i].logit, c.data[i].id == 4 ? -2.0 : 0.0, TOL);
    // a breaker (9) inside the repeat stops it: history 1 2 9 1 2 -> next would be 9 (a breaker)
    c = cands(d, z, 8);
    const int32_t h3[6] = {5, 1, 2, 5, 1, 2};   // "5 1 2" repeats: token 5 penalised with L=3 -> 2
    CG_ASSERT_OK(cg_sample_dry(&c, h3, 6, 1.0f, 2.0f, 2, NULL, 0, &err), &err);
    for (size_t i = 0; i < 8; i++) assert_float_equal(c.data[i].logit, c.data[i].id == 5 ? -2.0 : 0.0, TOL);
    c = cands(d, z, 8);
    const int32_t brk = 1;   // with 1 as a breaker the repeat is "2" only: L=1 < 2, no penalty
    CG_ASSERT_OK(cg_sample_dry(&c, h3, 6, 1.0f, 2.0f, 2, &brk, 1, &err), &err);
    for (size_t i = 0; i < 8; i++) assert_float_equal(c.data[i].logit, 0.0, 0);
}

static void test_chain(void **state) {
    (void)state;
    cg_err err = {0};
    cg_sampler_params p;
    cg_sampler_params_default(&p);
    p.seed = 42;
    p.top_k = 0;
    p.top_p = 0.7f;
    p.min_p = 0;
    p.temperature = 1.0f;
    const double pr[4] = {0.5, 0.3, 0.15, 0.05};
    float l[4];
    lnp(l, pr, 4);
    cg_sampler *s;
    CG_ASSERT_OK(cg_sampler_new(&p, 4, &s, &err), &err);
    int counts[4] = {0};
    enum { DRAWS = 20000 };
    int32_t first[16];
    for (int i = 0; i < DRAWS; i++) {
        int32_t t;
        CG_ASSERT_OK(cg_sampler_sample(s, l, NULL, &t, &err), &err);
        if (i < 16) first[i] = t;
        counts[t]++;
    }
    // after top-p 0.7 the distribution is {0: 0.625, 1: 0.375}
    const cg_candidates *last = cg_sampler_last(s);
    assert_int_equal(last->n, 2);
    assert_float_equal(p_of(last, 0), 0.625, TOL);
    double f0 = (double)counts[0] / DRAWS;
    print_message("chain top_p=0.7: token 0 drawn %.4f of %d (expected 0.625), tokens 2,3 drawn %d times\n", f0,
                  DRAWS, counts[2] + counts[3]);
    assert_true(fabs(f0 - 0.625) < 0.015);
    assert_int_equal(counts[2] + counts[3], 0);
    // same seed -> same sequence, whatever else ran in between
    cg_sampler_reset(s, 42);
    for (int i = 0; i < 16; i++) {
        int32_t t;
        CG_ASSERT_OK(cg_sampler_sample(s, l, NULL, &t, &err), &err);
        assert_int_equal(t, first[i]);
    }
    // mask and bias
    uint8_t allow[4] = {0, 0, 1, 1};
    int32_t t;
    CG_ASSERT_OK(cg_sampler_sample(s, l, allow, &t, &err), &err);
    assert_true(t == 2 || t == 3);
    uint8_t none[4] = {0};
    assert_int_equal(cg_sampler_sample(s, l, none, &t, &err), CG_ERR_STATE);
    cg_sampler_free(s);

    // greedy with a logit bias that bans the argmax
    cg_logit_bias b = {0, -INFINITY};
    p.temperature = 0;
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    CG_ASSERT_OK(cg_sampler_new(&p, 4, &s, &err), &err);
    CG_ASSERT_OK(cg_sampler_sample(s, l, NULL, &t, &err), &err);
    assert_int_equal(t, 1);
    cg_sampler_free(s);

    // mirostat v2, tau 1 (mu starts at 2): surprises -log2 p = 1, 1.74, 2.74, 4.32: keeps 0 and 1
    cg_sampler_params_default(&p);
    p.mirostat = 2;
    p.mirostat_tau = 1.0f;
    p.temperature = 1.0f;
    CG_ASSERT_OK(cg_sampler_new(&p, 4, &s, &err), &err);
    CG_ASSERT_OK(cg_sampler_sample(s, l, NULL, &t, &err), &err);
    last = cg_sampler_last(s);
    assert_int_equal(last->n, 2);
    assert_float_equal(p_of(last, 1), 0.375, TOL);
    cg_sampler_free(s);

    // validation errors name the field
    cg_sampler_params_default(&p);
    p.top_p = 1.5f;
    assert_int_equal(cg_sampler_new(&p, 4, &s, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "top_p"));
    cg_sampler_params_default(&p);
    b.id = 9;
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    assert_int_equal(cg_sampler_new(&p, 4, &s, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "token id 9"));
    cg_sampler_params_default(&p);
    p.mirostat = 1;
    assert_int_equal(cg_sampler_new(&p, 4, &s, &err), CG_ERR_UNSUPPORTED);
}

static void test_logprobs(void **state) {
    (void)state;
    cg_err err = {0};
    // logits ln1, ln2, ln3 (+ a constant): probabilities 1/6, 2/6, 3/6
    float l[3] = {(float)log(1.0) + 5, (float)log(2.0) + 5, (float)log(3.0) + 5};
    cg_token_text vocab[3] = {{"a", 1}, {"bb", 2}, {"\xe2\x82", 2}};
    cg_logprobs lp;
    CG_ASSERT_OK(cg_logprobs_compute(l, 3, 0, 2, vocab, &lp, &err), &err);
    assert_float_equal(lp.chosen.logprob, log(1.0 / 6), TOL);
    assert_int_equal(lp.n_top, 2);
    assert_int_equal(lp.top[0].id, 2);
    assert_float_equal(lp.top[0].logprob, log(0.5), TOL);
    assert_int_equal(lp.top[1].id, 1);
    assert_float_equal(lp.top[1].logprob, log(2.0 / 6), TOL);
    assert_int_equal(lp.top[0].bytes.n, 2);   // raw bytes, even when not valid UTF-8 alone
    assert_int_equal(cg_logprobs_compute(l, 3, 3, 2, NULL, &lp, &err), CG_ERR_INVALID);
    assert_int_equal(cg_logprobs_compute(l, 3, 0, 21, NULL, &lp, &err), CG_ERR_INVALID);
}

static void test_stop(void **state) {
    (void)state;
    cg_err err = {0};
    const char *stops[2] = {"END", "\n\nUser:"};
    size_t lens[2] = {3, 7};
    int32_t eog = 99;
    cg_stop *s;
    CG_ASSERT_OK(cg_stop_new(stops, lens, 2, &eog, 1, 0, &s, &err), &err);
    cg_buf out;
    cg_buf_init(&out);
    assert_int_equal(cg_stop_feed_token(s, 1, "abc E", 5, &out), CG_STOP_NONE);
    assert_int_equal(out.len, 4);   // "E" held back
    assert_int_equal(cg_stop_held(s), 1);
    assert_int_equal(cg_stop_feed_token(s, 2, "N", 1, &out), CG_STOP_NONE);
    assert_int_equal(cg_stop_feed_token(s, 3, "Dxyz", 4, &out), CG_STOP_STRING);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "abc ", 4);
    cg_stop_free(s);

    // every split of the text gives the same output
    const char *text = "hello EN\n\nUse END! more";
    size_t n = strlen(text);
    for (size_t cut1 = 0; cut1 <= n; cut1++)
        for (size_t cut2 = cut1; cut2 <= n; cut2++) {
            CG_ASSERT_OK(cg_stop_new(stops, lens, 2, &eog, 1, 0, &s, &err), &err);
            cg_buf_reset(&out);
            cg_stop_reason r = cg_stop_feed_text(s, text, cut1, &out);
            if (!r) r = cg_stop_feed_text(s, text + cut1, cut2 - cut1, &out);
            if (!r) r = cg_stop_feed_text(s, text + cut2, n - cut2, &out);
            assert_int_equal(r, CG_STOP_STRING);
            assert_int_equal(out.len, strlen("hello EN\n\nUse "));
            assert_memory_equal(out.data, "hello EN\n\nUse ", out.len);
            cg_stop_free(s);
        }
    // EOG flushes the held part; max_tokens stops with LENGTH
    CG_ASSERT_OK(cg_stop_new(stops, lens, 2, &eog, 1, 2, &s, &err), &err);
    cg_buf_reset(&out);
    assert_int_equal(cg_stop_feed_token(s, 1, "x\n\n", 3, &out), CG_STOP_NONE);
    assert_int_equal(out.len, 1);
    assert_int_equal(cg_stop_feed_token(s, 99, "", 0, &out), CG_STOP_EOG);
    assert_int_equal(out.len, 3);
    cg_stop_free(s);
    CG_ASSERT_OK(cg_stop_new(NULL, NULL, 0, NULL, 0, 2, &s, &err), &err);
    assert_int_equal(cg_stop_feed_token(s, 1, "a", 1, &out), CG_STOP_NONE);
    assert_int_equal(cg_stop_feed_token(s, 1, "b", 1, &out), CG_STOP_LENGTH);
    cg_stop_free(s);
    size_t zero = 0;
    assert_int_equal(cg_stop_new(stops, &zero, 1, NULL, 0, 0, &s, &err), CG_ERR_INVALID);
    cg_buf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_k),       cmocka_unit_test(test_top_p_min_p),   cmocka_unit_test(test_typical),
        cmocka_unit_test(test_temperature_xtc), cmocka_unit_test(test_penalties_dry), cmocka_unit_test(test_chain),
        cmocka_unit_test(test_logprobs),    cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
