// test_base.c — err, arena, buf, utf8, checked arithmetic, thread pool.
#include "testutil.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/mmap.h"
#include "base/num.h"
#include "base/thread.h"
#include "base/utf8.h"
#include "kern/stream.h"

static void test_err_set_and_wrap(void **state) {
    (void)state;
    cg_err err = {0};
    assert_int_equal(cg_err_set(&err, CG_ERR_FORMAT, "field '%s' at offset %d", "n_kv", 16), CG_ERR_FORMAT);
    assert_string_equal(err.msg, "field 'n_kv' at offset 16");
    cg_err_wrap(&err, "gguf '%s'", "a.gguf");
    assert_string_equal(err.msg, "gguf 'a.gguf': field 'n_kv' at offset 16");
    assert_int_equal(err.code, CG_ERR_FORMAT);
    assert_int_equal(cg_err_set(NULL, CG_ERR_IO, "x"), CG_ERR_IO);
    assert_string_equal(cg_status_name(CG_ERR_NOMEM), "out of memory");
    assert_string_equal(cg_status_name((cg_status)999), "unknown status");
    // A message longer than the buffer is truncated, not overflowed.
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cg_err_set(&err, CG_ERR_INVALID, "%s", big);
    assert_int_equal(strlen(err.msg), CG_ERR_MSG_MAX - 1);
}

static void test_checked_arith(void **state) {
    (void)state;
    uint64_t r;
    assert_true(cg_mul_u64(1u << 31, 1u << 31, &r));
    assert_false(cg_mul_u64(UINT64_MAX / 2 + 1, 2, &r));
    assert_false(cg_add_u64(UINT64_MAX, 1, &r));
    assert_true(cg_align_up_u64(33, 32, &r));
    assert_int_equal(r, 64);
    assert_false(cg_align_up_u64(UINT64_MAX - 3, 32, &r));
}

static void test_arena(void **state) {
    (void)state;
    cg_arena a;
    cg_arena_init(&a, 128);
    char *p = cg_arena_alloc(&a, 100, 16);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 1, 100);
    char *q = cg_arena_alloc(&a, 1000, 64);   // larger than a chunk
    assert_non_null(q);
    assert_int_equal((uintptr_t)q % 64, 0);
    memset(q, 2, 1000);
    assert_null(cg_arena_calloc(&a, SIZE_MAX, 2, 8));
    assert_null(cg_arena_alloc(&a, 8, 3));   // not a power of two
    assert_string_equal(cg_arena_strndup(&a, "hello", 4), "hell");
    cg_arena_reset(&a);
    assert_non_null(cg_arena_alloc(&a, 8, 8));
    cg_arena_free(&a);
    cg_arena_free(&a);
}

static void test_buf(void **state) {
    (void)state;
    cg_buf b;
    cg_buf_init(&b);
    for (int i = 0; i < 1000; i++) cg_buf_printf(&b, "%d,", i);
    assert_true(cg_buf_ok(&b));
    assert_memory_equal(b.data, "0,1,2,", 6);
    assert_int_equal(b.data[b.len], 0);
    char long_s[600];
    memset(long_s, 'a', sizeof long_s - 1);
    long_s[sizeof long_s - 1] = 0;
    cg_buf_reset(&b);
    cg_buf_printf(&b, "[%s]", long_s);
    assert_int_equal(b.len, 601);
    assert_false(cg_buf_reserve(&b, SIZE_MAX));
    assert_false(cg_buf_ok(&b));   // sticky
    cg_buf_free(&b);
}

static void test_utf8(void **state) {
    (void)state;
    size_t bad;
    assert_true(cg_utf8_valid("한국어 text", strlen("한국어 text"), NULL));
    assert_false(cg_utf8_valid("ab\xC0\xAF", 4, &bad));   // overlong '/'
    assert_int_equal(bad, 2);
    assert_false(cg_utf8_valid("\xED\xA0\x80", 3, &bad));   // surrogate
    assert_false(cg_utf8_valid("\xF4\x90\x80\x80", 4, &bad));   // > U+10FFFF
    assert_false(cg_utf8_valid("\xEA\xB0", 2, &bad));   // truncated
    assert_false(cg_utf8_valid("\xFF", 1, &bad));
    uint32_t cp;
    assert_int_equal(cg_utf8_decode("\xEA\xB0\x80", 3, &cp), 3);
    assert_int_equal(cp, 0xAC00);   // 가
    char out[4];
    assert_int_equal(cg_utf8_encode(0x1F600, out), 4);
    assert_memory_equal(out, "\xF0\x9F\x98\x80", 4);
    assert_int_equal(cg_utf8_encode(0xD800, out), 0);
    assert_int_equal(cg_utf8_encode(0x110000, out), 0);
}

typedef struct pool_ctx {
    atomic_long sum;
    long *slots;
} pool_ctx;

static void pool_fn(void *ctx, int i, int n) {
    pool_ctx *c = ctx;
    int64_t b, e;
    cg_pool_split(1000, i, n, &b, &e);
    long s = 0;
    for (int64_t k = b; k < e; k++) s += k;
    c->slots[i] = s;
    atomic_fetch_add(&c->sum, s);
}

static void test_pool(void **state) {
    (void)state;
    cg_err err = {0};
    for (int nt = 1; nt <= 4; nt++) {
        cg_pool *p;
        CG_ASSERT_OK(cg_pool_new(nt, &p, &err), &err);
        assert_int_equal(cg_pool_size(p), nt);
        long slots[4] = {0};
        for (int rep = 0; rep < 200; rep++) {
            pool_ctx c = {.slots = slots};
            atomic_init(&c.sum, 0);
            cg_pool_run(p, pool_fn, &c);
            assert_int_equal(atomic_load(&c.sum), 999 * 1000 / 2);
        }
        cg_pool_free(p);
    }
    cg_pool *p;
    assert_int_equal(cg_pool_new(5000, &p, &err), CG_ERR_INVALID);
    cg_pool_free(NULL);
    int64_t b, e, total = 0;
    for (int i = 0; i < 3; i++) {
        cg_pool_split(10, i, 3, &b, &e);
        total += e - b;
    }
    assert_int_equal(total, 10);
}

// cg_pool_take: pieces are contiguous and cover [0, total) once; the first is half a thread's fair
// share (1000 / (2·2) = 250 for two threads), then half of the rest's share (750 / 4 = 187), never
// below min_piece except the last; one thread takes everything at once; threads of a pool taking
// pieces from one counter sum to the whole range.
typedef struct take_ctx {
    atomic_uint_fast64_t next;
    atomic_uint_fast64_t covered;
} take_ctx;

static void take_fn(void *ctx, int i, int n) {
    take_ctx *c = ctx;
    (void)i;
    uint64_t lo, hi;
    while (cg_pool_take(&c->next, 100000, n, 64, &lo, &hi)) atomic_fetch_add(&c->covered, hi - lo);
}

static void test_pool_take(void **state) {
    (void)state;
    atomic_uint_fast64_t next;
    atomic_init(&next, 0);
    uint64_t lo, hi, at = 0, n = 0;
    while (cg_pool_take(&next, 1000, 2, 40, &lo, &hi)) {
        assert_int_equal(lo, at);
        if (n == 0) assert_int_equal(hi - lo, 250);
        if (n == 1) assert_int_equal(hi - lo, 187);
        if (hi < 1000) assert_true(hi - lo >= 40);
        at = hi;
        n++;
    }
    assert_int_equal(at, 1000);
    assert_false(cg_pool_take(&next, 1000, 2, 40, &lo, &hi));
    atomic_store(&next, 0);
    assert_true(cg_pool_take(&next, 1000, 1, 40, &lo, &hi));
    assert_true(lo == 0 && hi == 1000);
    cg_err err = {0};
    cg_pool *p;
    CG_ASSERT_OK(cg_pool_new(3, &p, &err), &err);
    for (int rep = 0; rep < 50; rep++) {
        take_ctx c;
        atomic_init(&c.next, 0);
        atomic_init(&c.covered, 0);
        cg_pool_run(p, take_fn, &c);
        assert_int_equal(atomic_load(&c.covered), 100000);
    }
    cg_pool_free(p);
}

// Hand-offs after the workers went to sleep (gaps past the ~1 ms spin) and back-to-back ones (the
// workers still spinning) must both run every thread exactly once per call.
static void test_pool_sleep_wake(void **state) {
    (void)state;
    cg_err err = {0};
    for (int nt = 2; nt <= 3; nt++) {
        cg_pool *p;
        CG_ASSERT_OK(cg_pool_new(nt, &p, &err), &err);
        long slots[4] = {0};
        for (int rep = 0; rep < 12; rep++) {
            if (rep % 3 == 0) {
                struct timespec ts = {0, 3 * 1000 * 1000};   // 3 ms: every worker sleeps
                nanosleep(&ts, NULL);
            }
            pool_ctx c = {.slots = slots};
            atomic_init(&c.sum, 0);
            cg_pool_run(p, pool_fn, &c);
            assert_int_equal(atomic_load(&c.sum), 999 * 1000 / 2);
        }
        cg_pool_free(p);
    }
}

static void test_mmap(void **state) {
    (void)state;
    cg_err err = {0};
    cg_mmap m;
    assert_int_equal(cg_mmap_open("/nonexistent/x.gguf", &m, &err), CG_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.gguf"));
    assert_int_equal(cg_mmap_open("/tmp", &m, &err), CG_ERR_IO);
    char *path = cg_test_tmpfile("abc", 3);
    CG_ASSERT_OK(cg_mmap_open(path, &m, &err), &err);
    assert_int_equal(m.size, 3);
    assert_memory_equal(m.data, "abc", 3);
    cg_mmap_close(&m);
    cg_mmap_close(&m);
    unlink(path);
    free(path);
}

// Huge-page buffers: whole 2 MiB pages, aligned, writable; sizes that cannot be rounded are refused.
static void test_alloc_huge(void **state) {
    (void)state;
    const size_t huge = (size_t)2 << 20;
    size_t alloc = 1;
    unsigned char *p = cg_alloc_huge(1, &alloc);
    assert_non_null(p);
    assert_int_equal(alloc, huge);
    assert_int_equal((uintptr_t)p % huge, 0);
    p[0] = 1, p[huge - 1] = 2;
    free(p);
    p = cg_alloc_huge(huge + 1, &alloc);
    assert_non_null(p);
    assert_int_equal(alloc, 2 * huge);
    free(p);
    assert_null(cg_alloc_huge(0, &alloc));
    assert_int_equal(alloc, 0);
    alloc = 1;
    assert_null(cg_alloc_huge(SIZE_MAX - 10, &alloc));   // the rounding overflows
    assert_int_equal(alloc, 0);
}

// The bandwidth probe (kern/stream.h): one buffer read several times, with and without a pool; its
// errors name what was wrong.
static void test_stream_probe(void **state) {
    (void)state;
    cg_err err = {0};
    cg_stream *s = NULL;
    CG_ASSERT_OK(cg_stream_new((size_t)8 << 20, &s, &err), &err);
    cg_pool *pool = NULL;
    CG_ASSERT_OK(cg_pool_new(2, &pool, &err), &err);
    double g1 = 0, g2 = 0, g3 = 0;
    CG_ASSERT_OK(cg_stream_read(s, NULL, 2, &g1, &err), &err);
    CG_ASSERT_OK(cg_stream_read(s, pool, 3, &g2, &err), &err);
    CG_ASSERT_OK(cg_stream_read_gbps(pool, (size_t)4 << 20, 2, &g3, &err), &err);
    assert_true(g1 > 0 && g2 > 0 && g3 > 0);
    assert_int_equal(cg_stream_read(s, pool, 0, &g1, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "0 repetitions"));
    assert_int_equal(cg_stream_read_gbps(pool, (size_t)4 << 20, -1, &g1, &err), CG_ERR_INVALID);
    cg_stream_free(s);
    cg_stream_free(NULL);
    // cg_stream_sum: eight lane sums of 64-bit words, XOR-folded; 0 lines give 0.
    uint64_t words[3 * 8], lane[8] = {0};
    for (int i = 0; i < 3 * 8; i++) {
        words[i] = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        lane[i % 8] += words[i];
    }
    uint64_t want = 0;
    for (int k = 0; k < 8; k++) want ^= lane[k];
    assert_true(cg_stream_sum(words, 3) == want);
    assert_true(cg_stream_sum(words, 0) == 0);
    s = (cg_stream *)&err;   // overwritten with NULL on failure
    assert_int_equal(cg_stream_new(SIZE_MAX - 100, &s, &err), CG_ERR_NOMEM);
    assert_null(s);
    assert_non_null(strstr(err.msg, "bandwidth probe"));
    cg_pool_free(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_set_and_wrap), cmocka_unit_test(test_checked_arith),
        cmocka_unit_test(test_arena),           cmocka_unit_test(test_buf),
        cmocka_unit_test(test_utf8),            cmocka_unit_test(test_pool),
        cmocka_unit_test(test_pool_sleep_wake), cmocka_unit_test(test_pool_take),
        cmocka_unit_test(test_mmap),
        cmocka_unit_test(test_alloc_huge),
        cmocka_unit_test(test_stream_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
