// test_prefix.c — the prefix cache's radix tree over KV blocks, checked against hand-computed
// expectations on a real paged KV cache (block size 4): matches cut to whole blocks below the
// prompt's length, shared ancestors stored once, leaf-only LRU eviction, block reference counts
// with running (forked) sequences, capacity, and many prefixes.
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "base/time.h"
#include "engine/kv.h"
#include "engine/prefix.h"

enum { BS = 4 };

static cg_kv *mk_kv(int n_blocks, int max_seqs) {
    cg_err err = {0};
    cg_kv_params p = {.n_layer = 1, .n_embd_k = 4, .n_embd_v = 4, .block_size = BS, .n_blocks = n_blocks,
                      .max_seqs = max_seqs, .type = CG_KV_F32};
    cg_kv *kv = NULL;
    CG_ASSERT_OK(cg_kv_new(&p, &kv, &err), &err);
    return kv;
}

static cg_prefix *mk_prefix(cg_kv *kv, int max_blocks) {
    cg_err err = {0};
    cg_prefix *p = NULL;
    CG_ASSERT_OK(cg_prefix_new(kv, max_blocks, &p, &err), &err);
    return p;
}

// Fills seq with n positions (as a forward pass would) and offers it to the cache; clears it after.
static int feed(cg_kv *kv, cg_prefix *p, int seq, const int32_t *toks, int n) {
    cg_err err = {0};
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, seq, 0, n, &err), &err);
    int added = cg_prefix_insert(p, seq, toks, (size_t)n);
    cg_kv_seq_clear(kv, seq);
    return added;
}

static void test_insert_match_partial(void **state) {
    (void)state;
    cg_kv *kv = mk_kv(32, 4);
    cg_prefix *p = mk_prefix(kv, 32);
    int32_t a[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    // 10 tokens: 2 whole blocks cached, the partial third is not.
    assert_int_equal(feed(kv, p, 0, a, 10), 2);
    assert_int_equal(cg_prefix_n_blocks(p), 2);
    assert_int_equal(cg_prefix_n_leaves(p), 1);
    assert_int_equal(cg_kv_n_free_blocks(kv), 30);   // only the cache holds the two blocks
    // Same prompt: 8 (two blocks, < 10). Exactly 8 tokens: 4 (the last token must run).
    assert_int_equal(cg_prefix_match(p, a, 10), 8);
    assert_int_equal(cg_prefix_match(p, a, 8), 4);
    assert_int_equal(cg_prefix_match(p, a, 9), 8);
    assert_int_equal(cg_prefix_match(p, a, 1), 0);
    // Diverging at token 6 (inside block 1): only block 0.
    int32_t b[10] = {1, 2, 3, 4, 5, 99, 7, 8, 9, 10};
    assert_int_equal(cg_prefix_match(p, b, 10), 4);
    // Diverging in block 0: nothing.
    int32_t c[10] = {0, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_int_equal(cg_prefix_match(p, c, 10), 0);
    // Re-offering the same tokens adds nothing.
    assert_int_equal(feed(kv, p, 0, a, 10), 0);
    assert_int_equal(cg_prefix_n_blocks(p), 2);
    // Attach: seq 1 holds the cached blocks themselves (refcount 2), length 8.
    assert_int_equal(cg_prefix_attach(p, a, 10, 1), 8);
    assert_int_equal(cg_kv_seq_len(kv, 1), 8);
    int b0 = cg_kv_seq_block(kv, 1, 0), b1 = cg_kv_seq_block(kv, 1, 1);
    assert_int_equal(cg_kv_block_refcount(kv, b0), 2);
    assert_int_equal(cg_kv_block_refcount(kv, b1), 2);
    // Writing past the match allocates a fresh block; writing into a cached block copies it.
    cg_err err = {0};
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 1, 8, 10, &err), &err);
    assert_int_equal(cg_kv_block_refcount(kv, b1), 2);
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 1, 6, 10, &err), &err);
    assert_int_equal(cg_kv_block_refcount(kv, b1), 1);   // seq 1 got its own copy of block 1
    assert_int_not_equal(cg_kv_seq_block(kv, 1, 1), b1);
    // No match: attach leaves the sequence empty.
    assert_int_equal(cg_prefix_attach(p, c, 10, 1), 0);
    assert_int_equal(cg_kv_seq_len(kv, 1), 0);
    assert_int_equal(cg_kv_n_free_blocks(kv), 30);
    cg_prefix_free(p);
    assert_int_equal(cg_kv_n_free_blocks(kv), 32);   // free releases the cache's references
    cg_kv_free(kv);
}

static void test_shared_ancestors_once(void **state) {
    (void)state;
    cg_kv *kv = mk_kv(32, 4);
    cg_prefix *p = mk_prefix(kv, 32);
    // A "system prompt" block followed by two different conversations of two blocks each.
    int32_t x[12] = {7, 7, 7, 7, 1, 1, 1, 1, 2, 2, 2, 2};
    int32_t y[12] = {7, 7, 7, 7, 3, 3, 3, 3, 4, 4, 4, 4};
    assert_int_equal(feed(kv, p, 0, x, 12), 3);
    // y reuses the first block (as the scheduler would: attach, then compute the rest).
    cg_err err = {0};
    assert_int_equal(cg_prefix_attach(p, y, 12, 1), 4);
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 1, 4, 12, &err), &err);
    assert_int_equal(cg_prefix_insert(p, 1, y, 12), 2);
    cg_kv_seq_clear(kv, 1);
    // 5 nodes (not 6), 5 KV blocks, 2 prefixes.
    assert_int_equal(cg_prefix_n_blocks(p), 5);
    assert_int_equal(cg_prefix_n_leaves(p), 2);
    assert_int_equal(cg_kv_n_free_blocks(kv), 27);
    int32_t xq[13], yq[13];
    memcpy(xq, x, sizeof x), memcpy(yq, y, sizeof y);
    xq[12] = yq[12] = 5;
    assert_int_equal(cg_prefix_match(p, xq, 13), 12);
    assert_int_equal(cg_prefix_match(p, yq, 13), 12);
    cg_prefix_free(p);
    assert_int_equal(cg_kv_n_free_blocks(kv), 32);
    cg_kv_free(kv);
}

static void test_evict_leaves_lru(void **state) {
    (void)state;
    cg_kv *kv = mk_kv(32, 4);
    cg_prefix *p = mk_prefix(kv, 32);
    int32_t x[8] = {7, 7, 7, 7, 1, 1, 1, 1};
    int32_t y[8] = {7, 7, 7, 7, 3, 3, 3, 3};
    int32_t z[8] = {9, 9, 9, 9, 5, 5, 5, 5};
    feed(kv, p, 0, x, 8), feed(kv, p, 0, y, 8), feed(kv, p, 0, z, 8);
    assert_int_equal(cg_prefix_n_blocks(p), 5);   // 7-block shared by x and y
    // Use order now: x (oldest), y, z. Use x again: y becomes the least recently used.
    int32_t xq[9] = {7, 7, 7, 7, 1, 1, 1, 1, 0};
    int32_t yq[9] = {7, 7, 7, 7, 3, 3, 3, 3, 0};
    int32_t zq[9] = {9, 9, 9, 9, 5, 5, 5, 5, 0};
    assert_int_equal(cg_prefix_match(p, xq, 9), 8);
    // First eviction: y's leaf, not the shared 7-block (an inner node) and not z.
    assert_true(cg_prefix_evict_leaf(p));
    assert_int_equal(cg_prefix_match(p, yq, 9), 4);
    assert_int_equal(cg_prefix_match(p, xq, 9), 8);
    assert_int_equal(cg_prefix_match(p, zq, 9), 8);
    // The last uses were y (7-block only), x, z: x's second block is the LRU leaf.
    assert_true(cg_prefix_evict_leaf(p));
    assert_int_equal(cg_prefix_match(p, xq, 9), 4);
    assert_int_equal(cg_prefix_n_blocks(p), 3);
    assert_int_equal(cg_prefix_n_leaves(p), 2);   // the 7-block is a leaf now, and z's second block
    // Left: the 7-block (just used by x) and z's two blocks; three more evictions empty the cache.
    assert_true(cg_prefix_evict_leaf(p));
    assert_int_equal(cg_prefix_match(p, zq, 9), 4);
    assert_true(cg_prefix_evict_leaf(p));
    assert_true(cg_prefix_evict_leaf(p));
    assert_false(cg_prefix_evict_leaf(p));
    assert_int_equal(cg_prefix_n_blocks(p), 0);
    assert_int_equal(cg_kv_n_free_blocks(kv), 32);
    cg_prefix_free(p);
    cg_kv_free(kv);
}

static void test_refcounts_with_forks(void **state) {
    (void)state;
    cg_err err = {0};
    cg_kv *kv = mk_kv(16, 4);
    cg_prefix *p = mk_prefix(kv, 16);
    int32_t a[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    feed(kv, p, 0, a, 9);   // 2 blocks cached
    // A request reuses them, then forks into two choices (n = 2): each block has 3 holders.
    assert_int_equal(cg_prefix_attach(p, a, 9, 1), 8);
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 1, 8, 9, &err), &err);   // the last prompt token
    CG_ASSERT_OK(cg_kv_seq_fork(kv, 1, 2, &err), &err);
    int b0 = cg_kv_seq_block(kv, 1, 0);
    assert_int_equal(cg_kv_block_refcount(kv, b0), 3);
    // Evicting the whole cache while they run keeps the blocks alive (the choices hold them).
    while (cg_prefix_evict_leaf(p)) {}
    assert_int_equal(cg_kv_block_refcount(kv, b0), 2);
    assert_int_equal(cg_kv_n_free_blocks(kv), 16 - 3);   // 2 shared prompt blocks + 1 shared partial block
    cg_kv_seq_clear(kv, 1);
    cg_kv_seq_clear(kv, 2);
    assert_int_equal(cg_kv_block_refcount(kv, b0), 0);
    assert_int_equal(cg_kv_n_free_blocks(kv), 16);
    cg_prefix_free(p);
    cg_kv_free(kv);
}

static void test_capacity_and_many_prefixes(void **state) {
    (void)state;
    enum { N = 300 };
    cg_kv *kv = mk_kv(2 * N + 8, 2);
    cg_prefix *p = mk_prefix(kv, 2 * N);
    // 300 prefixes of 2 blocks under one shared first block: 301 nodes.
    int32_t t[N][9];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 4; j++) t[i][j] = 42;
        for (int j = 4; j < 8; j++) t[i][j] = 1000 + i * 4 + j;
        t[i][8] = 0;
        feed(kv, p, 0, t[i], 8);
    }
    assert_int_equal(cg_prefix_n_blocks(p), N + 1);
    assert_int_equal(cg_prefix_n_leaves(p), N);
    uint64_t t0 = cg_time_ns();
    for (int i = 0; i < N; i++) assert_int_equal(cg_prefix_match(p, t[i], 9), 8);
    uint64_t t_many = cg_time_ns() - t0;
    cg_prefix_free(p);
    // The same lookups against a cache holding one prefix (figures only: time is not asserted).
    p = mk_prefix(kv, 2 * N);
    feed(kv, p, 0, t[0], 8);
    t0 = cg_time_ns();
    for (int i = 0; i < N; i++) assert_int_equal(cg_prefix_match(p, t[i], 9), i == 0 ? 8 : 4);
    uint64_t t_one = cg_time_ns() - t0;
    print_message("lookup: %.0f ns with %d cached prefixes, %.0f ns with 1\n", (double)t_many / N, N,
                  (double)t_one / N);
    cg_prefix_free(p);
    assert_int_equal(cg_kv_n_free_blocks(kv), 2 * N + 8);
    // A cache of 3 blocks: a 5-block sequence keeps its first 3; then another prefix evicts leaves
    // of the first, deepest first, but never its own path.
    p = mk_prefix(kv, 3);
    int32_t l[20], m[8];
    for (int i = 0; i < 20; i++) l[i] = i;
    for (int i = 0; i < 8; i++) m[i] = 100 + i;
    assert_int_equal(feed(kv, p, 0, l, 20), 3);
    assert_int_equal(feed(kv, p, 0, m, 8), 2);
    assert_int_equal(cg_prefix_n_blocks(p), 3);
    int32_t lq[21], mq[9];
    memcpy(lq, l, sizeof l), memcpy(mq, m, sizeof m);
    lq[20] = mq[8] = 0;
    assert_int_equal(cg_prefix_match(p, lq, 21), 4);
    assert_int_equal(cg_prefix_match(p, mq, 9), 8);
    cg_prefix_free(p);
    assert_int_equal(cg_kv_n_free_blocks(kv), 2 * N + 8);
    cg_kv_free(kv);
}

static void test_bad_params(void **state) {
    (void)state;
    cg_err err = {0};
    cg_kv *kv = mk_kv(4, 1);
    cg_prefix *p = NULL;
    assert_int_equal(cg_prefix_new(kv, 0, &p, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "max_blocks 0"));
    // Assigning a free block to a sequence is refused, naming the block.
    int blocks[1] = {3};
    assert_int_equal(cg_kv_seq_assign(kv, 0, blocks, 1, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "block 3"));
    cg_kv_free(kv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_match_partial),   cmocka_unit_test(test_shared_ancestors_once),
        cmocka_unit_test(test_evict_leaves_lru),       cmocka_unit_test(test_refcounts_with_forks),
        cmocka_unit_test(test_capacity_and_many_prefixes), cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
