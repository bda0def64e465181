// test_sched.c — the continuous-batching scheduler against independent references:
//   - greedy tokens of requests served together (chunked prefill interleaved with decode, n = 2
//     forks) equal llama.cpp's `generated` tokens in testdata/gen (up to the first near-tie) and a
//     single-sequence cg_session run of the same prompt (exactly, with an F32 cache);
//   - a repeated prompt is served from the prefix cache (cached tokens > 0) with identical tokens;
//   - cancel frees every block; a full queue answers CG_ERR_STATE; a prompt that cannot fit is
//     CG_ERR_LIMIT with both numbers in the message.
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/time.h"
#include "engine/sched.h"
#include "engine/session.h"
#include "model/model.h"
#include "testutil.h"

#define MAX_GEN 64
#define NEAR_TIE 1e-3

typedef struct collector {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t n_choices;
    int32_t toks[4][MAX_GEN];
    uint32_t n_toks[4];
    bool done;
    cg_sched_end end;
    uint32_t n_cached;
    // test hooks
    cg_sched *s;
    uint64_t id;
    bool cancel_after_first;
    bool gate;                 // next() waits until gate is false
} collector;

static int32_t argmax(const float *x, int64_t n) {
    int32_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = (int32_t)i;
    return best;
}

static int32_t col_next(void *user, uint32_t i_choice, uint32_t i_step, const float *logits, int64_t n_vocab,
                        bool is_last) {
    collector *c = user;
    pthread_mutex_lock(&c->mu);
    while (c->gate) pthread_cond_wait(&c->cv, &c->mu);
    int32_t t = argmax(logits, n_vocab);
    if (i_choice < 4 && c->n_toks[i_choice] < MAX_GEN) c->toks[i_choice][c->n_toks[i_choice]++] = t;
    bool cancel = c->cancel_after_first;
    pthread_mutex_unlock(&c->mu);
    (void)i_step, (void)is_last;
    if (cancel) cg_sched_cancel(c->s, c->id);
    return t;
}

static void col_done(void *user, cg_sched_end end, uint32_t n_prompt, uint32_t n_cached, cg_status st,
                     const char *message) {
    collector *c = user;
    (void)n_prompt, (void)st, (void)message;
    pthread_mutex_lock(&c->mu);
    c->done = true;
    c->end = end;
    c->n_cached = n_cached;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static const cg_sched_ops OPS = {.next = col_next, .done = col_done};

static void col_init(collector *c, cg_sched *s) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->s = s;
}

static void col_wait(collector *c) {
    pthread_mutex_lock(&c->mu);
    while (!c->done) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static void col_open_gate(collector *c) {
    pthread_mutex_lock(&c->mu);
    c->gate = false;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void col_destroy(collector *c) {
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static cg_status submit(cg_sched *s, collector *c, const int32_t *prompt, size_t n, uint32_t n_choices,
                        int64_t max_new, cg_err *err) {
    cg_sched_req r = {.prompt = prompt, .n_prompt = n, .n_choices = n_choices, .max_new = max_new};
    c->n_choices = n_choices;
    pthread_mutex_lock(&c->mu);   // next() may run before submit returns and read c->id
    cg_status st = cg_sched_submit(s, &r, &OPS, c, &c->id, err);
    pthread_mutex_unlock(&c->mu);
    return st;
}

// Waits (≤ 2 s) until the queue is empty and something runs: the engine admitted what was sent.
static void wait_running(cg_sched *s) {
    cg_sched_stats ss;
    for (int i = 0; i < 2000; i++) {
        cg_sched_stats_get(s, &ss);
        if (ss.running >= 1 && ss.queue_depth == 0) return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("the scheduler did not admit the request");
}

static char *model_path(const char *rel) {
    const char *dir = cg_test_models_dir();
    if (!dir) return NULL;
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, rel);
    FILE *f = fopen(p, "rb");
    if (!f) {
        free(p);
        return NULL;
    }
    fclose(f);
    return p;
}

// Greedy continuation of a prompt through the single-sequence session (an independent path).
static void session_greedy(const char *path, const int32_t *prompt, size_t n, int n_gen, int32_t *out) {
    cg_err err = {0};
    cg_session *ss = NULL;
    cg_session_params sp = {.n_ctx = 256, .kv_type = CG_KV_F32, .n_threads = 1};
    CG_ASSERT_OK(cg_session_open(path, &sp, &ss, &err), &err);
    const float *logits = NULL;
    CG_ASSERT_OK(cg_session_feed(ss, prompt, n, &logits, &err), &err);
    int64_t n_vocab = cg_model_hparams(cg_session_model(ss))->n_vocab;
    for (int i = 0; i < n_gen; i++) {
        uint64_t rng = 0;
        out[i] = cg_sample_token(logits, n_vocab, 0.0f, &rng);
        if (i + 1 < n_gen) CG_ASSERT_OK(cg_session_feed(ss, &out[i], 1, &logits, &err), &err);
    }
    cg_session_free(ss);
}

static void test_batched_greedy_matches_references(void **state) {
    (void)state;
    const char *name = "rand-llama-spm-F32";
    char rel[128];
    snprintf(rel, sizeof rel, "random/%s.gguf", name);
    char *path = model_path(rel);
    char refrel[128];
    snprintf(refrel, sizeof refrel, "gen/%s/ref.json", name);
    size_t n_json = 0;
    char *js = (char *)cg_test_read(refrel, &n_json);
    if (!path || !js) {
        free(path), free(js);
        skip();
        return;
    }
    json_error_t jerr;
    json_t *ref = json_loadb(js, n_json, 0, &jerr);
    assert_non_null(ref);
    json_t *prompts = json_object_get(ref, "prompts");
    size_t n_p = json_array_size(prompts);
    assert_true(n_p >= 3);
    n_p = 3;

    cg_err err = {0};
    cg_model *m = NULL;
    CG_ASSERT_OK(cg_model_load(path, &m, &err), &err);
    // chunk 3: every prompt prefills over several steps while the others already decode.
    cg_sched_params sp = {.n_ctx = 256, .n_parallel = 6, .chunk = 3, .n_cache = -1, .n_threads = 1,
                          .kv_type = CG_KV_F32, .block_size = 4};
    cg_sched *s = NULL;
    CG_ASSERT_OK(cg_sched_new(m, &sp, &s, &err), &err);

    int32_t prompt[3][256];
    size_t n_prompt[3];
    int n_gen[3];
    collector col[4];
    for (size_t i = 0; i < n_p; i++) {
        json_t *p = json_array_get(prompts, i);
        json_t *pt = json_object_get(p, "prompt_tokens");
        n_prompt[i] = json_array_size(pt);
        assert_true(n_prompt[i] <= 256);
        for (size_t k = 0; k < n_prompt[i]; k++) prompt[i][k] = (int32_t)json_integer_value(json_array_get(pt, k));
        n_gen[i] = (int)json_array_size(json_object_get(p, "generated"));
        if (n_gen[i] > MAX_GEN) n_gen[i] = MAX_GEN;
        col_init(&col[i], s);
    }
    col_init(&col[3], s);
    // Hold the first request at its first token until all are queued, so they share batches.
    col[0].gate = true;
    for (size_t i = 0; i < n_p; i++) CG_ASSERT_OK(submit(s, &col[i], prompt[i], n_prompt[i], 1, n_gen[i], &err), &err);
    CG_ASSERT_OK(submit(s, &col[3], prompt[1], n_prompt[1], 2, n_gen[1], &err), &err);
    col_open_gate(&col[0]);
    for (int i = 0; i < 4; i++) col_wait(&col[i]);

    for (size_t i = 0; i < n_p; i++) {
        assert_int_equal(col[i].end, CG_SCHED_END_OK);
        assert_int_equal(col[i].n_toks[0], n_gen[i]);
        json_t *p = json_array_get(prompts, i);
        json_t *gen = json_object_get(p, "generated"), *top2 = json_object_get(p, "gen_top2");
        int n_cmp = 0;
        for (int k = 0; k < n_gen[i]; k++) {
            json_t *t2 = json_array_get(top2, (size_t)k);
            double margin = json_real_value(json_array_get(t2, 1)) - json_real_value(json_array_get(t2, 3));
            if (margin < NEAR_TIE) break;
            assert_int_equal(col[i].toks[0][k], (int32_t)json_integer_value(json_array_get(gen, (size_t)k)));
            n_cmp++;
        }
        int32_t want[MAX_GEN];
        session_greedy(path, prompt[i], n_prompt[i], n_gen[i], want);
        assert_memory_equal(col[i].toks[0], want, (size_t)n_gen[i] * sizeof(int32_t));
        print_message("prompt %zu: %d tokens equal llama.cpp's (of %d, near-tie cut), all %d equal cg_session's\n", i,
                      n_cmp, n_gen[i], n_gen[i]);
    }
    // n = 2 forks of prompt 1: both choices equal the single request.
    assert_int_equal(col[3].end, CG_SCHED_END_OK);
    for (int c = 0; c < 2; c++) {
        assert_int_equal(col[3].n_toks[c], n_gen[1]);
        assert_memory_equal(col[3].toks[c], col[1].toks[0], (size_t)n_gen[1] * sizeof(int32_t));
    }
    cg_sched_stats st;
    cg_sched_stats_get(s, &st);
    assert_int_equal(st.kv_blocks_free, st.kv_blocks_total);
    print_message("%llu steps for 5 sequences of %d..%d tokens\n", (unsigned long long)st.steps_total, n_gen[0],
                  n_gen[2]);
    for (int i = 0; i < 4; i++) col_destroy(&col[i]);
    cg_sched_free(s);
    cg_model_free(m);
    json_decref(ref);
    free(js);
    free(path);
}

static cg_model *load_stories(char **path_out) {
    char *path = model_path("real/stories260K.gguf");
    if (!path) return NULL;
    cg_err err = {0};
    cg_model *m = NULL;
    CG_ASSERT_OK(cg_model_load(path, &m, &err), &err);
    *path_out = path;
    return m;
}

static void test_prefix_reuse(void **state) {
    (void)state;
    char *path = NULL;
    cg_model *m = load_stories(&path);
    if (!m) {
        skip();
        return;
    }
    cg_err err = {0};
    cg_sched_params sp = {.n_ctx = 256, .n_parallel = 2, .n_threads = 1, .kv_type = CG_KV_F32, .block_size = 16};
    cg_sched *s = NULL;
    CG_ASSERT_OK(cg_sched_new(m, &sp, &s, &err), &err);
    int32_t prompt[70];
    for (int i = 0; i < 70; i++) prompt[i] = i == 0 ? 1 : 300 + (i * 7) % 200;
    collector a, b, c;
    col_init(&a, s), col_init(&b, s), col_init(&c, s);
    CG_ASSERT_OK(submit(s, &a, prompt, 70, 1, 12, &err), &err);
    col_wait(&a);
    CG_ASSERT_OK(submit(s, &b, prompt, 70, 1, 12, &err), &err);
    col_wait(&b);
    // A prompt sharing only the first 40 tokens reuses two blocks (32 tokens).
    int32_t other[50];
    memcpy(other, prompt, 40 * sizeof *other);
    for (int i = 40; i < 50; i++) other[i] = 5 + i;
    CG_ASSERT_OK(submit(s, &c, other, 50, 1, 8, &err), &err);
    col_wait(&c);
    assert_int_equal(a.n_cached, 0);
    assert_int_equal(b.n_cached, 64);   // 70 tokens: 4 whole blocks, below the last prompt token
    assert_int_equal(c.n_cached, 32);
    assert_memory_equal(a.toks[0], b.toks[0], 12 * sizeof(int32_t));
    int32_t want[12];
    session_greedy(path, other, 50, 8, want);
    assert_memory_equal(c.toks[0], want, 8 * sizeof(int32_t));
    cg_sched_stats st;
    cg_sched_stats_get(s, &st);
    print_message("cached tokens: %u, %u, %u; hit ratio %llu/%llu\n", a.n_cached, b.n_cached, c.n_cached,
                  (unsigned long long)st.prefix_hit_tokens, (unsigned long long)st.prefix_lookup_tokens);
    assert_int_equal(st.prefix_hit_tokens, 96);
    col_destroy(&a), col_destroy(&b), col_destroy(&c);
    cg_sched_free(s);
    cg_model_free(m);
    free(path);
}

static void test_cancel_frees_blocks_and_queue_limits(void **state) {
    (void)state;
    char *path = NULL;
    cg_model *m = load_stories(&path);
    if (!m) {
        skip();
        return;
    }
    cg_err err = {0};
    cg_sched_params sp = {.n_ctx = 128, .n_parallel = 1, .max_queue = 1, .n_cache = -1, .n_threads = 1};
    cg_sched *s = NULL;
    CG_ASSERT_OK(cg_sched_new(m, &sp, &s, &err), &err);
    int32_t prompt[20];
    for (int i = 0; i < 20; i++) prompt[i] = i == 0 ? 1 : 100 + i;
    collector a, b, c;
    col_init(&a, s), col_init(&b, s), col_init(&c, s);
    a.gate = true;   // a holds the only slot until the gate opens
    a.cancel_after_first = true;
    CG_ASSERT_OK(submit(s, &a, prompt, 20, 1, -1, &err), &err);
    wait_running(s);
    CG_ASSERT_OK(submit(s, &b, prompt, 20, 1, 4, &err), &err);
    cg_status st = submit(s, &c, prompt, 20, 1, 4, &err);
    assert_int_equal(st, CG_ERR_STATE);
    print_message("queue full: %s\n", err.msg);
    // Too long for the context: both numbers in the message.
    int32_t big[200];
    for (int i = 0; i < 200; i++) big[i] = 5;
    st = submit(s, &c, big, 200, 1, 4, &err);
    assert_int_equal(st, CG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "200"));
    assert_non_null(strstr(err.msg, "128"));
    print_message("too long: %s\n", err.msg);
    st = submit(s, &c, prompt, 20, 1, 120, &err);
    assert_int_equal(st, CG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "140"));
    assert_non_null(strstr(err.msg, "128"));
    col_open_gate(&a);
    col_wait(&a);
    col_wait(&b);
    assert_int_equal(a.end, CG_SCHED_END_CANCELLED);
    assert_true(a.n_toks[0] >= 1 && a.n_toks[0] < 10);
    assert_int_equal(b.end, CG_SCHED_END_OK);
    assert_int_equal(b.n_toks[0], 4);
    cg_sched_stats ss;
    cg_sched_stats_get(s, &ss);
    assert_int_equal(ss.kv_blocks_free, ss.kv_blocks_total);
    assert_int_equal(ss.cancelled_total, 1);
    assert_int_equal(ss.running, 0);
    assert_int_equal(ss.queue_depth, 0);
    // Cancel while waiting, and shutdown with a request in flight: both still get done().
    collector d, e;
    col_init(&d, s), col_init(&e, s);
    d.gate = true;
    CG_ASSERT_OK(submit(s, &d, prompt, 20, 1, -1, &err), &err);
    wait_running(s);
    CG_ASSERT_OK(submit(s, &e, prompt, 20, 1, 4, &err), &err);
    cg_sched_cancel(s, e.id);
    col_open_gate(&d);
    col_wait(&e);
    assert_int_equal(e.end, CG_SCHED_END_CANCELLED);
    cg_sched_free(s);
    col_wait(&d);
    assert_true(d.end == CG_SCHED_END_CANCELLED || d.end == CG_SCHED_END_OK);
    col_destroy(&a), col_destroy(&b), col_destroy(&c), col_destroy(&d), col_destroy(&e);
    cg_model_free(m);
    free(path);
}

static void make_prompt(int32_t *p, int n, int salt) {
    for (int i = 0; i < n; i++) p[i] = i == 0 ? 1 : 3 + (i * 13 + salt * 101) % 500;
}

// LRU: with 2 cache entries and a 12-block pool, a request needing 10 blocks evicts the least
// recently used entry only; what stays cached is still reused.
static void test_prefix_lru_eviction(void **state) {
    (void)state;
    char *path = NULL;
    cg_model *m = load_stories(&path);
    if (!m) {
        skip();
        return;
    }
    cg_err err = {0};
    cg_sched_params sp = {.n_ctx = 128, .n_parallel = 1, .n_blocks = 12, .block_size = 16, .n_threads = 1};
    cg_sched *s = NULL;
    CG_ASSERT_OK(cg_sched_new(m, &sp, &s, &err), &err);
    int32_t p[5][40], big[100];
    collector c;
    cg_sched_stats st;
    for (int k = 0; k < 5; k++) {
        make_prompt(p[k], 40, k + 1);
        col_init(&c, s);
        CG_ASSERT_OK(submit(s, &c, p[k], 40, 1, 8, &err), &err);
        col_wait(&c);
        assert_int_equal(c.end, CG_SCHED_END_OK);
        assert_int_equal(c.n_cached, 0);
        col_destroy(&c);
        cg_sched_stats_get(s, &st);
        // Each request reserves 3 + (1 + 1) = 5 blocks; admission keeps cached + reserved ≤ 12.
        assert_true(st.cache_blocks <= 12);
    }
    // 40 prompt + 7 decoded tokens leave 2 whole blocks per request. Requests 0..3 cache 8 blocks;
    // admitting request 4 (5 blocks) evicts one leaf — the second block of p[0] — so 9 blocks
    // remain, in 5 prefixes (p[0]'s first block is a leaf now), and only the cache holds KV.
    assert_int_equal(st.cache_blocks, 9);
    assert_int_equal(st.cache_entries, 5);
    assert_int_equal(st.kv_blocks_used, 9);
    make_prompt(big, 100, 9);
    col_init(&c, s);
    CG_ASSERT_OK(submit(s, &c, big, 100, 1, 28, &err), &err);   // reserves 7 + (2 + 1) = 10 blocks
    col_wait(&c);
    assert_int_equal(c.end, CG_SCHED_END_OK);
    col_destroy(&c);
    // The big request (10 blocks) evicts leaves LRU first down to 2 blocks: p[0..3] go, p[4] stays;
    // it then caches its own 7 whole blocks. Admitting p[4] again (5 blocks) must evict the big
    // prefix's leaves, not the p[4] path it is about to reuse.
    uint32_t cached[2];
    for (int k = 4; k >= 3; k--) {
        col_init(&c, s);
        CG_ASSERT_OK(submit(s, &c, p[k], 40, 1, 4, &err), &err);
        col_wait(&c);
        cached[k - 3] = c.n_cached;
        col_destroy(&c);
    }
    print_message("after LRU eviction: cached tokens %u (evicted entry), %u (kept entry)\n", cached[0], cached[1]);
    assert_int_equal(cached[0], 0);
    assert_int_equal(cached[1], 32);
    cg_sched_free(s);
    cg_model_free(m);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_greedy_matches_references),
        cmocka_unit_test(test_prefix_reuse),
        cmocka_unit_test(test_cancel_frees_blocks_and_queue_limits),
        cmocka_unit_test(test_prefix_lru_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
