// test_heap.c — base/heap.h against a sort: popping every pushed element gives them in the order
// `before` defines (a total order here, via a tie-break on the insertion index), for random
// sequences with many equal keys, interleaved pushes and pops, and element sizes other than a word.
#include <stdlib.h>

#include "testutil.h"

#include "base/heap.h"

typedef struct item {
    int key;
    unsigned seq;       // insertion order: the tie-break
    char pad[5];        // odd element size (sizeof is 12 or 16)
} item;

static bool item_before(const void *pa, const void *pb) {
    const item *a = pa, *b = pb;
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static int item_cmp(const void *pa, const void *pb) {
    return item_before(pa, pb) ? -1 : item_before(pb, pa) ? 1 : 0;
}

static uint32_t rng_next(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_sorted_out(void **state) {
    (void)state;
    uint32_t r = 12345;
    for (int round = 0; round < 50; round++) {
        int n = (int)(rng_next(&r) % 700);
        int key_range = 1 + (int)(rng_next(&r) % 40);   // many ties
        item *want = malloc((size_t)(n + 1) * sizeof *want);
        assert_non_null(want);
        cg_heap h = {.elem = sizeof(item)};
        for (int i = 0; i < n; i++) {
            want[i] = (item){(int)(rng_next(&r) % (uint32_t)key_range) - key_range / 2, (unsigned)i, {0}};
            assert_true(cg_heap_push(&h, &want[i], item_before));
        }
        assert_int_equal(h.n, (size_t)n);
        qsort(want, (size_t)n, sizeof *want, item_cmp);
        for (int i = 0; i < n; i++) {
            item got;
            cg_heap_pop(&h, &got, item_before);
            assert_int_equal(got.key, want[i].key);
            assert_int_equal(got.seq, want[i].seq);
        }
        assert_int_equal(h.n, 0);
        cg_heap_free(&h);
        free(want);
    }
}

// Interleaved pushes and pops against a brute-force minimum over a plain array.
static void test_interleaved(void **state) {
    (void)state;
    uint32_t r = 777;
    cg_heap h = {.elem = sizeof(item)};
    item live[512];
    size_t n_live = 0;
    unsigned seq = 0;
    for (int step = 0; step < 20000; step++) {
        bool push = n_live == 0 || (n_live < 512 && rng_next(&r) % 3 != 0);
        if (push) {
            item x = {(int)(rng_next(&r) % 16), seq++, {0}};
            assert_true(cg_heap_push(&h, &x, item_before));
            live[n_live++] = x;
        } else {
            size_t best = 0;
            for (size_t i = 1; i < n_live; i++)
                if (item_before(&live[i], &live[best])) best = i;
            item got;
            cg_heap_pop(&h, &got, item_before);
            assert_int_equal(got.key, live[best].key);
            assert_int_equal(got.seq, live[best].seq);
            live[best] = live[--n_live];
        }
        assert_int_equal(h.n, n_live);
    }
    cg_heap_free(&h);
    assert_null(h.v);
    assert_int_equal(h.cap, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_out),
        cmocka_unit_test(test_interleaved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
