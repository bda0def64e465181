// test_mem_vec.c — the vector half of memory search (src/mem/vec.c, vpack.c) on both backends.
//
// The packed pages (schema v4) must give exactly the ranking of a scan of every embedding blob
// with the reference cosine: same ids, same order, bit-identical cosines — on randomized data
// with supersede, delete and edit mixed in, after a rebuild, and after a migration from v3.
// Every write path must keep memories.vpage and the pages in step; a broken page is an error
// naming user and page. binary16 conversion is checked against hand-derived bit patterns and
// an exhaustive round trip; the AVX2 dots (f16, int8) and the int8 requantiser against their
// scalar references and double-precision sums. The page cache (schema v5): a second store handle
// changes the user's memories every way there is and the cached list must still equal the blob
// scan and show the change (a cache without per-search validation fails this); a small byte
// bound evicts and stays exact; a bound below one user reads directly.
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem/vec.h"
#include "mem_backends.h"

// ---- binary16 and the dot product (backend independent) --------------------------------------

static void test_f16(void **state) {
    // IEEE 754 binary16 bit patterns, derived by hand: sign | 5-bit exponent (bias 15) | 10 bits.
    assert_int_equal(cg_vec_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(cg_vec_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(cg_vec_f32_to_f16(65504.0f), 0x7bff);          // largest finite
    assert_int_equal(cg_vec_f32_to_f16(65536.0f), 0x7c00);          // overflows to inf
    assert_int_equal(cg_vec_f32_to_f16(0x1p-24f), 0x0001);          // smallest subnormal
    assert_int_equal(cg_vec_f32_to_f16(0x1p-26f), 0x0000);          // below half of it
    assert_int_equal(cg_vec_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);   // tie: to even (down)
    assert_int_equal(cg_vec_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);  // tie: to even (up)
    assert_int_equal(cg_vec_f32_to_f16(0.1f), 0x2e66);              // 0.0999755859375
    assert_true(cg_vec_f16_to_f32(0x2e66) == 0.0999755859375f);
    assert_true(cg_vec_f16_to_f32(0x0001) == 0x1p-24f);
    // Every finite half survives f16 -> f32 -> f16 unchanged.
    int n_bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;  // inf / NaN
        if (cg_vec_f32_to_f16(cg_vec_f16_to_f32((uint16_t)h)) != h) n_bad++;
    }
    assert_int_equal(n_bad, 0);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float rnd_f(void) { return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

static void test_dot_f16(void **state) {
    // Odd lengths exercise the kernel's 16-, 8- and 1-wide tails; h is deliberately unaligned
    // by one half (the page layout keeps it aligned, the kernel must not depend on it).
    const size_t lens[] = {1, 7, 8, 15, 16, 17, 33, 256, 1000, 4096};
    float q[4096];
    uint16_t hbuf[4097];
    double worst = 0.0;
    for (size_t t = 0; t < sizeof lens / sizeof *lens; t++) {
        size_t n = lens[t];
        uint16_t *h = hbuf + 1;
        double exact = 0.0, mag = 0.0;
        for (size_t i = 0; i < n; i++) {
            q[i] = rnd_f();
            h[i] = cg_vec_f32_to_f16(rnd_f());
            exact += (double)q[i] * cg_vec_f16_to_f32(h[i]);
            mag += fabs((double)q[i] * cg_vec_f16_to_f32(h[i]));
        }
        float ref = cg_vec_dot_f16_ref(q, h, n), fast = cg_vec_dot_f16(q, h, n);
        double bound = (double)n * 0x1p-23 * mag + 1e-30;
        double err = fabs((double)fast - exact) / bound;
        if (err > worst) worst = err;
        assert_true(fabs((double)ref - exact) <= bound);
        assert_true(fabs((double)fast - exact) <= bound);
    }
    printf("dot f32 x f16 (%s): worst |kernel - exact| = %.3f of the n*2^-23*sum|q h| bound\n",
           cg_vec_simd() ? "avx2" : "scalar", worst);
}

static void test_dot_i8(void **state) {
    // The page cache's first pass: f32 x int8, all int8 values incl. -128..127 extremes.
    const size_t lens[] = {1, 7, 15, 16, 17, 33, 256, 1000, 4096};
    float q[4096];
    int8_t xbuf[4097];
    double worst = 0.0;
    for (size_t t = 0; t < sizeof lens / sizeof *lens; t++) {
        size_t n = lens[t];
        int8_t *x = xbuf + 1;  // unaligned on purpose
        double exact = 0.0, mag = 0.0;
        for (size_t i = 0; i < n; i++) {
            q[i] = rnd_f();
            x[i] = (int8_t)(int)(rnd() % 256 - 128);
            exact += (double)q[i] * x[i];
            mag += fabs((double)q[i] * x[i]);
        }
        float ref = cg_vec_dot_i8_ref(q, x, n), fast = cg_vec_dot_i8(q, x, n);
        double bound = (double)n * 0x1p-23 * mag + 1e-30;
        double e = fabs((double)fast - exact) / bound;
        if (e > worst) worst = e;
        assert_true(fabs((double)ref - exact) <= bound);
        assert_true(fabs((double)fast - exact) <= bound);
    }
    // Requantisation to int8: the twins agree exactly, x8 is the nearest grid point of
    // y = scale*h (|y - s8*x8| <= s8/2 per component), and r2 is that residual.
    for (size_t t = 0; t < 4; t++) {
        size_t n = (size_t)16 << (2 * t);  // 16 .. 1024
        uint16_t hh[1024];
        int8_t xa[1024], xb[1024];
        float scale = 0.37f * (float)(t + 1);
        for (size_t i = 0; i < n; i++) hh[i] = cg_vec_f32_to_f16(rnd_f());
        double ra = 0.0, rb = 0.0, r_exact = 0.0;
        float sa = cg_vec_quant8_ref(hh, scale, n, xa, &ra), sb = cg_vec_quant8(hh, scale, n, xb, &rb);
        assert_true(sa > 0.0f && sa == sb);
        assert_memory_equal(xa, xb, n);
        for (size_t i = 0; i < n; i++) {
            double y = (double)scale * cg_vec_f16_to_f32(hh[i]), e = y - (double)sa * xa[i];
            assert_true(fabs(e) <= (double)sa * 0.5000001);
            r_exact += e * e;
        }
        assert_true(fabs(ra - r_exact) <= 1e-12 * r_exact + 1e-300);
        assert_true(fabs(rb - r_exact) <= 1e-12 * r_exact + 1e-300);
        hh[n / 2] = 0x7e00;  // a NaN half: no grid
        assert_true(isnan(cg_vec_quant8(hh, scale, n, xb, &rb)));
        assert_true(isnan(cg_vec_quant8_ref(hh, scale, n, xa, &ra)));
    }
    // f16 -> f32 in bulk equals the scalar conversion for every binary16 value.
    static uint16_t all[65536];
    static float got[65536];
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    cg_vec_f16_to_f32_n(all, got, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        float want = cg_vec_f16_to_f32((uint16_t)i);
        if (isnan(want)) assert_true(isnan(got[i]));  // F16C quiets signalling NaNs
        else assert_memory_equal(&got[i], &want, 4);
    }
    printf("dot f32 x int8 (%s): worst |kernel - exact| = %.3f of the n*2^-23*sum|q x| bound; "
           "bulk f16->f32 == scalar for all 65536 halves (NaN as NaN)\n", cg_vec_simd() ? "avx2" : "scalar",
           worst);
}

// ---- the packed stage against the blob scan ---------------------------------------------------

static const char *const WORDS[] = {"서울", "부산", "커피", "김치", "회사", "친구", "가족",
                                    "여행", "coffee", "meeting", "sister", "python", "garden",
                                    "yoga", "budget", "flight"};
#define N_WORDS (sizeof WORDS / sizeof *WORDS)

// A short text of 2-4 words from a small vocabulary: many memories share words, so their
// cosines with a query are close or equal — the hard case for a bounded approximate stage.
static void rand_text(char *out, size_t cap, long i) {
    int n = 2 + (int)(rnd() % 3);
    size_t len = 0;
    for (int w = 0; w < n; w++)
        len += (size_t)snprintf(out + len, cap - len, "%s ", WORDS[rnd() % N_WORDS]);
    if (i % 3) snprintf(out + len, cap - len, "%ld", i % 50);  // some exact duplicates
}

// Compares the packed and the scanned vector lists of n_q queries; returns the number compared
// with a non-empty list. Every difference fails the test.
static int compare_lists(cg_store *s, int64_t user, int n_q, bool history) {
    cg_err err = {0};
    int n_nonempty = 0;
    for (int qi = 0; qi < n_q; qi++) {
        char query[128];
        rand_text(query, sizeof query, 1);
        cg_search_opts a = {.k = 10 + qi % 20, .include_history = history};
        cg_search_opts b = a;
        b.vec_scan = true;
        int64_t *ia = NULL, *ib = NULL;
        float *ca = NULL, *cb = NULL;
        size_t na = 0, nb = 0;
        CG_ASSERT_OK(cg_store_vec_ranked(s, user, query, &a, &ia, &ca, &na, &err), &err);
        CG_ASSERT_OK(cg_store_vec_ranked(s, user, query, &b, &ib, &cb, &nb, &err), &err);
        if (na != nb) fail_msg("query '%s': packed %zu hits, scan %zu", query, na, nb);
        for (size_t i = 0; i < na; i++)
            if (ia[i] != ib[i] || ca[i] != cb[i])
                fail_msg("query '%s' rank %zu: packed id %lld cos %.9g, scan id %lld cos %.9g",
                         query, i, (long long)ia[i], ca[i], (long long)ib[i], cb[i]);
        n_nonempty += na > 0;
        free(ia);
        free(ib);
        free(ca);
        free(cb);
    }
    return n_nonempty;
}

// The invariant of vpack.c, checked through SQL: a memory has a page iff it is current and has
// an embedding, every page it names exists, and the pages hold exactly that many entries
// (a page of n vectors of d dimensions is 16 + n * (20 + 2d) bytes).
static void check_vpage_d(cg_store *s, int64_t user, int d) {
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT (SELECT count(*) FROM memories WHERE user_id = %lld AND vpage IS NOT NULL) -"
             " (SELECT coalesce(sum((length(data) - 16) / (20 + 2 * %d)), 0) FROM mem_vpack"
             " WHERE user_id = %lld)", (long long)user, d, (long long)user);
    assert_int_equal(qint(s, sql), 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM memories WHERE user_id = %lld AND ((vpage IS NOT NULL) <>"
             " (superseded_by IS NULL AND valid_to_ms IS NULL AND embedding IS NOT NULL))",
             (long long)user);
    assert_int_equal(qint(s, sql), 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM memories m WHERE m.user_id = %lld AND m.vpage IS NOT NULL AND"
             " NOT EXISTS (SELECT 1 FROM mem_vpack p WHERE p.user_id = m.user_id AND"
             " p.page = m.vpage)", (long long)user);
    assert_int_equal(qint(s, sql), 0);
}

static void test_pack_equals_scan(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_err err = {0};
    cg_store_opts o = {.embed = cg_vec_embed_hashed, .n_embd = 64, .relaxed_durability = true};
    cg_store *s = open_ok(url, &o);
    assert_int_equal(cg_store_schema_version(s), CG_STORE_SCHEMA_VERSION);
    int64_t u = new_user(s, "vec"), other = new_user(s, "other");
    enum { N = 2000 };
    int64_t *ids = calloc(N, sizeof *ids);
    bool *live = calloc(N, sizeof *live);
    assert_non_null(ids);
    assert_non_null(live);
    int n_sup = 0, n_del = 0, n_edit = 0;
    for (long i = 0; i < N; i++) {
        char text[160];
        rand_text(text, sizeof text, i);
        cg_mem_new m = {.text = text, .importance = 0.5};
        int r = (int)(rnd() % 10);
        long j = i ? (long)(rnd() % (uint64_t)i) : 0;
        if (r == 0 && i && live[j]) {  // supersede an earlier current memory
            m.supersedes = ids[j];
            live[j] = false;
            n_sup++;
        }
        CG_ASSERT_OK(cg_store_memory_add(s, u, &m, &ids[i], &err), &err);
        live[i] = true;
        if (r == 1 && i && live[j]) {
            CG_ASSERT_OK(cg_store_memory_delete(s, u, ids[j], &err), &err);
            live[j] = false;
            n_del++;
        } else if (r == 2 && i) {  // edit, current or not
            rand_text(text, sizeof text, i + 7);
            if (cg_store_memory_edit(s, u, ids[j], text, -1.0, &err) == CG_OK) n_edit++;
        }
        if (i % 100 == 0) add_mem(s, other, text, 0.5);  // another user's pages interleave
    }
    check_vpage_d(s, u, 64);
    int n_cmp = compare_lists(s, u, 60, false);
    int64_t n_pages = 0;
    {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM mem_vpack WHERE user_id = %lld",
                 (long long)u);
        n_pages = qint(s, sql);
    }
    cg_vec_cache_stats cs;
    cg_store_vec_cache_stats(s, &cs);
    int64_t n_cur = 0;
    {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM memories WHERE user_id = %lld AND vpage"
                 " IS NOT NULL", (long long)u);
        n_cur = qint(s, sql);
    }
    printf("%s: %d memories (%d superseded, %d deleted, %d edited), %lld pages; 60 queries: "
           "packed == scan (%d with hits); cached, %.0f of %lld entries per query past the int8 "
           "pass\n", b->name, N, n_sup, n_del, n_edit, (long long)n_pages, n_cmp,
           (double)cs.rescored / 60.0, (long long)n_cur);
    assert_true(cs.hits + cs.loads >= 60 && cs.bypass == 0);
    assert_true(cs.rescored < (uint64_t)(60 * n_cur) / 2);  // the int8 pass does prune
    assert_true(n_cmp >= 50);
    compare_lists(s, u, 10, true);  // history searches scan the blobs: trivially the same
    // A rebuild from the blobs gives the same answers (and compacts the pages).
    CG_ASSERT_OK(cg_store_vec_rebuild(s, u, &err), &err);
    check_vpage_d(s, u, 64);
    compare_lists(s, u, 30, false);
    CG_ASSERT_OK(cg_store_vec_rebuild(s, 0, &err), &err);
    check_vpage_d(s, other, 64);
    compare_lists(s, other, 10, false);
    free(ids);
    free(live);
    cg_store_close(s);
    free(url);
}

static int64_t user_pages(cg_store *s, int64_t u) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM mem_vpack WHERE user_id = %lld", (long long)u);
    return qint(s, sql);
}

static int64_t vpage_of(cg_store *s, int64_t id) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT coalesce(vpage, -1) FROM memories WHERE id = %lld",
             (long long)id);
    return qint(s, sql);
}

// Each write path, one at a time, with the state it must leave.
static void test_write_paths(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_err err = {0};
    cg_store_opts o = {.embed = cg_vec_embed_hashed, .n_embd = 32};
    cg_store *s = open_ok(url, &o);
    int64_t u = new_user(s, "w"), v = new_user(s, "v");
    int64_t a = add_mem(s, u, "I live in Seoul", 0.5);
    int64_t c = add_mem(s, u, "coffee every morning", 0.5);
    add_mem(s, v, "coffee in Busan", 0.5);
    assert_int_equal(vpage_of(s, a), 0);
    assert_int_equal(vpage_of(s, c), 0);
    assert_int_equal(user_pages(s, u), 1);
    // Supersede: the old fact leaves the pack, the new one enters.
    cg_mem_new nm = {.text = "I moved to Busan", .supersedes = a};
    int64_t d = 0;
    CG_ASSERT_OK(cg_store_memory_add(s, u, &nm, &d, &err), &err);
    assert_int_equal(vpage_of(s, a), -1);
    assert_int_equal(vpage_of(s, d), 0);
    int64_t *ids = NULL;
    float *cos = NULL;
    size_t n = 0;
    cg_search_opts so = {.min_cosine = 0.01};
    CG_ASSERT_OK(cg_store_vec_ranked(s, u, "Seoul", &so, &ids, &cos, &n, &err), &err);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] != a);
    free(ids);
    free(cos);
    // Edit: the new text's vector is what the pack ranks.
    CG_ASSERT_OK(cg_store_memory_edit(s, u, c, "tea every evening", -1.0, &err), &err);
    CG_ASSERT_OK(cg_store_vec_ranked(s, u, "tea every evening", &so, &ids, &cos, &n, &err), &err);
    assert_true(n >= 1 && ids[0] == c && fabsf(cos[0] - 1.0f) < 1e-6f);
    free(ids);
    free(cos);
    // Editing the superseded memory keeps it out of the pack.
    CG_ASSERT_OK(cg_store_memory_edit(s, u, a, "I lived in Seoul", -1.0, &err), &err);
    assert_int_equal(vpage_of(s, a), -1);
    // Delete: gone from the page; the last entry of a page takes its page row with it.
    CG_ASSERT_OK(cg_store_memory_delete(s, u, c, &err), &err);
    CG_ASSERT_OK(cg_store_memory_delete(s, u, d, &err), &err);
    assert_int_equal(user_pages(s, u), 0);
    check_vpage_d(s, u, 32);
    // A store opened without an embedder writes NULL embeddings: such memories stay out.
    cg_store_close(s);
    s = open_ok(url, NULL);
    int64_t e = add_mem(s, u, "no vector here", 0.5);
    assert_int_equal(vpage_of(s, e), -1);
    cg_store_close(s);
    s = open_ok(url, &o);
    CG_ASSERT_OK(cg_store_memory_edit(s, u, e, "now with a vector", -1.0, &err), &err);
    assert_int_equal(vpage_of(s, e), 0);
    // Forget-all empties the user's pages, not another user's.
    int64_t n_del = 0;
    CG_ASSERT_OK(cg_store_memory_forget_all(s, u, &n_del, &err), &err);
    assert_int_equal(user_pages(s, u), 0);
    assert_int_equal(user_pages(s, v), 1);
    // Many adds fill pages in order: page p holds the user's memories p*cap .. p*cap+cap-1
    // (32 dims: 32768 / (20 + 64) = 390 a page).
    for (int i = 0; i < 400; i++) {
        char t[64];
        snprintf(t, sizeof t, "memory number %d", i);
        int64_t id = add_mem(s, u, t, 0.5);
        assert_int_equal(vpage_of(s, id), i < 390 ? 0 : 1);
    }
    assert_int_equal(user_pages(s, u), 2);
    check_vpage_d(s, u, 32);
    // User delete: no page of theirs remains (the every-table scan is in test_mem.c).
    CG_ASSERT_OK(cg_store_user_delete(s, u, &err), &err);
    assert_int_equal(user_pages(s, u), 0);
    assert_int_equal(user_pages(s, v), 1);
    cg_store_close(s);
    free(url);
}

// A broken page is CG_ERR_FORMAT naming the user and the page, never a crash or a wrong list;
// cg_store_vec_rebuild repairs it from the blobs.
static void test_corrupt_page(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_err err = {0};
    cg_store_opts o = {.embed = cg_vec_embed_hashed, .n_embd = 32};
    cg_store *s = open_ok(url, &o);
    int64_t u = new_user(s, "c");
    for (int i = 0; i < 20; i++) add_mem(s, u, i % 2 ? "coffee in Seoul" : "tea in Busan", 0.5);
    int64_t *ids = NULL;
    float *cos = NULL;
    size_t n = 0;
    cg_memory *r = NULL;
    size_t nr = 0;
    char want[64], sql[256];
    snprintf(want, sizeof want, "mem_vpack user=%lld page=0", (long long)u);
    const char *breaks[5];
    char b0[160], b1[160], b2[200], b3[200], b4[160];
    // Truncated, wrong magic, a count that does not match the length, and a NaN scale.
    snprintf(b0, sizeof b0, "UPDATE mem_vpack SET data = %s WHERE user_id = %lld",
             b->is_pg ? "substr(data, 1, 100)" : "substr(data, 1, 100)", (long long)u);
    snprintf(b1, sizeof b1, "UPDATE mem_vpack SET data = %s WHERE user_id = %lld",
             b->is_pg ? "overlay(data placing '\\x00'::bytea from 1 for 1)"
                      : "CAST(X'00' || substr(data, 2) AS BLOB)", (long long)u);
    snprintf(b2, sizeof b2, "UPDATE mem_vpack SET data = %s WHERE user_id = %lld",
             b->is_pg ? "overlay(data placing '\\x05'::bytea from 9 for 1)"
                      : "CAST(substr(data, 1, 8) || X'05' || substr(data, 10) AS BLOB)", (long long)u);
    snprintf(b3, sizeof b3, "UPDATE mem_vpack SET data = %s WHERE user_id = %lld",
             b->is_pg ? "overlay(data placing '\\x0000c07f'::bytea from 25 for 4)"
                      : "CAST(substr(data, 1, 24) || X'0000c07f' || substr(data, 29) AS BLOB)", (long long)u);
    // And (SQLite) a page stored as text instead of a blob.
    snprintf(b4, sizeof b4, "UPDATE mem_vpack SET data = %s WHERE user_id = %lld",
             b->is_pg ? "'\\x00'::bytea" : "'not a page'", (long long)u);
    breaks[0] = b0, breaks[1] = b1, breaks[2] = b2, breaks[3] = b3, breaks[4] = b4;
    for (int k = 0; k < 5; k++) {
        CG_ASSERT_OK(cg_store_exec_raw(s, breaks[k], &err), &err);
        cg_status st = cg_store_vec_ranked(s, u, "coffee", NULL, &ids, &cos, &n, &err);
        printf("%s: broken page %d: %s\n", b->name, k, err.msg);
        assert_int_equal(st, CG_ERR_FORMAT);
        assert_non_null(strstr(err.msg, want));
        assert_int_equal(cg_store_memory_search(s, u, "coffee", NULL, &r, &nr, &err), CG_ERR_FORMAT);
        assert_non_null(strstr(err.msg, want));
        CG_ASSERT_OK(cg_store_vec_rebuild(s, u, &err), &err);
        CG_ASSERT_OK(cg_store_vec_ranked(s, u, "coffee", NULL, &ids, &cos, &n, &err), &err);
        assert_int_equal(n, 10);
        free(ids);
        free(cos);
    }
    // memories.vpage naming a page that is not there: the write path says so.
    snprintf(sql, sizeof sql, "UPDATE memories SET vpage = 7 WHERE user_id = %lld", (long long)u);
    CG_ASSERT_OK(cg_store_exec_raw(s, sql, &err), &err);
    int64_t first = 0;
    cg_memory *list = NULL;
    size_t nl = 0;
    CG_ASSERT_OK(cg_store_memory_list(s, u, true, &list, &nl, &err), &err);
    first = list[0].id;
    cg_memory_list_free(list, nl);
    assert_int_equal(cg_store_memory_delete(s, u, first, &err), CG_ERR_FORMAT);
    printf("%s: dangling vpage: %s\n", b->name, err.msg);
    snprintf(want, sizeof want, "mem_vpack user=%lld page=7", (long long)u);
    assert_non_null(strstr(err.msg, want));
    CG_ASSERT_OK(cg_store_vec_rebuild(s, 0, &err), &err);
    CG_ASSERT_OK(cg_store_memory_delete(s, u, first, &err), &err);
    check_vpage_d(s, u, 32);
    cg_store_close(s);
    // Pages of another dimension than the store's embedder: an error naming the page.
    cg_store_opts o16 = {.embed = cg_vec_embed_hashed, .n_embd = 16};
    s = open_ok(url, &o16);
    assert_int_equal(cg_store_vec_ranked(s, u, "coffee", NULL, &ids, &cos, &n, &err), CG_ERR_FORMAT);
    printf("%s: other dimension: %s\n", b->name, err.msg);
    assert_non_null(strstr(err.msg, "dimensions, the store embeds 16"));
    cg_store_close(s);
    free(url);
}

// Two connections (processes) adding and deleting memories of one user at the same time: no
// page change may be lost. A lost append leaves a memory whose vpage names a page without it
// (deleting it reports CG_ERR_FORMAT — so every memory is deleted at the end); a lost removal
// leaves an entry of a deleted memory (the entry count of check_vpage).
static void test_concurrent_adds(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_err err = {0};
    cg_store_opts o = {.embed = cg_vec_embed_hashed, .n_embd = 16, .relaxed_durability = true};
    cg_store *s = open_ok(url, &o);
    int64_t u = new_user(s, "both");
    cg_store_close(s);
    enum { PER = 150 };
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cg_store *c = NULL;
        cg_err e = {0};
        if (cg_store_open(url, &o, &c, &e)) _exit(2);
        for (int i = 0; i < PER; i++) {
            char t[64];
            snprintf(t, sizeof t, "child memory %d", i);
            cg_mem_new m = {.text = t};
            int64_t id = 0;
            if (cg_store_memory_add(c, u, &m, &id, &e)) _exit(3);
            if (i % 2 && cg_store_memory_delete(c, u, id, &e)) _exit(4);
        }
        cg_store_close(c);
        _exit(0);
    }
    s = open_ok(url, &o);
    for (int i = 0; i < PER; i++) {
        char t[64];
        snprintf(t, sizeof t, "parent memory %d", i);
        int64_t id = add_mem(s, u, t, 0.5);
        if (i % 2) CG_ASSERT_OK(cg_store_memory_delete(s, u, id, &err), &err);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    check_vpage_d(s, u, 16);
    cg_memory *list = NULL;
    size_t n = 0;
    CG_ASSERT_OK(cg_store_memory_list(s, u, false, &list, &n, &err), &err);
    assert_int_equal(n, PER);
    for (size_t i = 0; i < n; i++) CG_ASSERT_OK(cg_store_memory_delete(s, u, list[i].id, &err), &err);
    cg_memory_list_free(list, n);
    assert_int_equal(user_pages(s, u), 0);
    printf("%s: 2 x %d concurrent adds, half deleted: pages consistent\n", b->name, PER);
    cg_store_close(s);
    free(url);
}

// Migration 3 -> 4 builds the pages from the existing blobs.
static void test_migration_v4(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_err err = {0};
    cg_store_opts o3 = {.embed = cg_vec_embed_hashed, .n_embd = 48, .target_version = 3};
    cg_store *s = open_ok(url, &o3);
    int64_t u = new_user(s, "m");
    int64_t prev = 0;
    for (long i = 0; i < 300; i++) {
        char text[160];
        rand_text(text, sizeof text, i);
        cg_mem_new m = {.text = text, .supersedes = (i % 7 == 0) ? prev : 0};
        CG_ASSERT_OK(cg_store_memory_add(s, u, &m, &prev, &err), &err);
    }
    cg_store_close(s);
    cg_store_opts o4 = {.embed = cg_vec_embed_hashed, .n_embd = 48};
    s = open_ok(url, &o4);
    assert_int_equal(cg_store_schema_version(s), CG_STORE_SCHEMA_VERSION);
    check_vpage_d(s, u, 48);
    assert_true(user_pages(s, u) >= 1);
    int n_cmp = compare_lists(s, u, 30, false);
    printf("%s: migrated 300 memories to v4: %lld pages, 30 queries packed == scan (%d with hits)\n",
           b->name, (long long)user_pages(s, u), n_cmp);
    cg_store_close(s);
    free(url);
}

// ---- the page cache (vpack.c, schema v5) -----------------------------------------------------

// The top hit of the vector half for `query` on store s (0 when none), with its cosine.
static int64_t top_hit(cg_store *s, int64_t user, const char *query, float *cos_out) {
    cg_err err = {0};
    int64_t *ids = NULL;
    float *cos = NULL;
    size_t n = 0;
    cg_search_opts so = {.min_cosine = 0.01};
    CG_ASSERT_OK(cg_store_vec_ranked(s, user, query, &so, &ids, &cos, &n, &err), &err);
    int64_t top = n ? ids[0] : 0;
    if (cos_out) *cos_out = n ? cos[0] : 0.0f;
    free(ids);
    free(cos);
    return top;
}

// Store A searches with its cache while store B (another handle on the same database: the CLI
// while the server runs; another replica on PostgreSQL) changes the user's memories in every
// way there is. After each change A's cached ranking must equal a scan of the blobs (read
// fresh), and the change itself must show: a memory B just added with a unique text is A's top
// hit with cosine 1, one B removed is not in A's list. Without the per-search validation A
// would answer from the pages it cached before the change and fail both.
static void test_cache_other_handle(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_err err = {0};
    cg_store_opts o = {.embed = cg_vec_embed_hashed, .n_embd = 64, .relaxed_durability = true};
    cg_store *a = open_ok(url, &o), *w = open_ok(url, &o);
    int64_t u = new_user(w, "cache");
    for (long i = 0; i < 900; i++) {  // 900 x 64 dims: 3 pages
        char text[160];
        rand_text(text, sizeof text, i);
        add_mem(w, u, text, 0.5);
    }
    cg_vec_cache_stats st0, st1;
    compare_lists(a, u, 5, false);
    cg_store_vec_cache_stats(a, &st0);
    assert_true(st0.loads >= 1 && st0.hits >= 1 && st0.users == 1);
    assert_int_equal(st0.bypass, 0);
    int n_steps = 0;
    char text[160];
    // Each step: one change through w, then A must see it.
#define STEP(what)                                                                                   do {                                                                                                 compare_lists(a, u, 4, false);                                                                   n_steps++;                                                                                       cg_store_vec_cache_stats(a, &st1);                                                               if (st1.loads <= st0.loads) fail_msg("%s: no refresh after '%s'", b->name, what);                st0 = st1;                                                                                   } while (0)
    // add
    int64_t x = add_mem(w, u, "zebra quokka 우산 unique", 0.5);
    float c = 0.0f;
    assert_int_equal(top_hit(a, u, "zebra quokka 우산 unique", &c), x);
    assert_true(fabsf(c - 1.0f) < 1e-6f);
    STEP("add");
    // supersede: the old one leaves the pack, the new one enters
    cg_mem_new nm = {.text = "narwhal okapi 파도 unique", .supersedes = x};
    int64_t y = 0;
    CG_ASSERT_OK(cg_store_memory_add(w, u, &nm, &y, &err), &err);
    assert_true(top_hit(a, u, "zebra quokka 우산 unique", NULL) != x);
    assert_int_equal(top_hit(a, u, "narwhal okapi 파도 unique", NULL), y);
    STEP("supersede");
    // edit: the new text's vector ranks
    CG_ASSERT_OK(cg_store_memory_edit(w, u, y, "ibis tapir 구름 unique", -1.0, &err), &err);
    assert_int_equal(top_hit(a, u, "ibis tapir 구름 unique", &c), y);
    assert_true(fabsf(c - 1.0f) < 1e-6f);
    assert_true(top_hit(a, u, "narwhal okapi 파도 unique", NULL) != y);
    STEP("edit");
    // delete
    CG_ASSERT_OK(cg_store_memory_delete(w, u, y, &err), &err);
    assert_true(top_hit(a, u, "ibis tapir 구름 unique", NULL) != y);
    STEP("delete");
    // import: client ids, one superseding another by client id
    cg_mem_new i1 = {.text = "heron lemur 바람 unique", .client_id = "c-1"};
    int64_t z1 = 0, z2 = 0;
    CG_ASSERT_OK(cg_store_memory_add(w, u, &i1, &z1, &err), &err);
    int64_t sup = 0;
    CG_ASSERT_OK(cg_store_memory_find_client(w, u, "c-1", &sup, &err), &err);
    cg_mem_new i2 = {.text = "egret civet 햇살 unique", .client_id = "c-2", .supersedes = sup};
    CG_ASSERT_OK(cg_store_memory_add(w, u, &i2, &z2, &err), &err);
    assert_true(top_hit(a, u, "heron lemur 바람 unique", NULL) != z1);
    assert_int_equal(top_hit(a, u, "egret civet 햇살 unique", NULL), z2);
    STEP("import");
    // rebuild (compacts the pages: every page's bytes change)
    CG_ASSERT_OK(cg_store_vec_rebuild(w, u, &err), &err);
    assert_int_equal(top_hit(a, u, "egret civet 햇살 unique", NULL), z2);
    STEP("rebuild");
    // a page changed by raw SQL (no store code involved): the triggers still bump it; a broken
    // page written by another handle is the error a direct read gives
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE mem_vpack SET data = substr(data, 1, 100) WHERE user_id = %lld"
             " AND page = 0", (long long)u);
    CG_ASSERT_OK(cg_store_exec_raw(w, sql, &err), &err);
    int64_t *ids = NULL;
    float *cos = NULL;
    size_t n = 0;
    assert_int_equal(cg_store_vec_ranked(a, u, "coffee", NULL, &ids, &cos, &n, &err), CG_ERR_FORMAT);
    char want[64];
    snprintf(want, sizeof want, "mem_vpack user=%lld page=0", (long long)u);
    assert_non_null(strstr(err.msg, want));
    CG_ASSERT_OK(cg_store_vec_rebuild(w, u, &err), &err);
    cg_store_vec_cache_stats(a, &st0);
    // forget-all: nothing left
    int64_t n_del = 0;
    CG_ASSERT_OK(cg_store_memory_forget_all(w, u, &n_del, &err), &err);
    assert_int_equal(top_hit(a, u, "egret civet 햇살 unique", NULL), 0);
    compare_lists(a, u, 3, false);
    n_steps++;
    // refill a little, cache it, then delete the user and make a new one (SQLite hands the
    // same id out again when it was the highest): nothing of the old user may come back
    int64_t v = new_user(w, "second");
    int64_t old = add_mem(w, v, "walrus ermine 별빛 unique", 0.5);
    for (int i = 0; i < 50; i++) {
        rand_text(text, sizeof text, i);
        add_mem(w, v, text, 0.5);
    }
    assert_int_equal(top_hit(a, v, "walrus ermine 별빛 unique", NULL), old);
    CG_ASSERT_OK(cg_store_user_delete(w, v, &err), &err);
    assert_int_equal(top_hit(a, v, "walrus ermine 별빛 unique", NULL), 0);
    int64_t v2 = new_user(w, "third");
    for (int i = 0; i < 51; i++) {
        rand_text(text, sizeof text, i + 1000);
        add_mem(w, v2, text, 0.5);
    }
    assert_true(top_hit(a, v2, "walrus ermine 별빛 unique", NULL) != old);
    compare_lists(a, v2, 5, false);
    n_steps++;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM mem_vgen WHERE user_id = %lld", (long long)v);
    if (v != v2) assert_int_equal(qint(w, sql), 0);  // the deleted user's generations went too
    printf("%s: %d kinds of change through a second handle (user id %s): cached == scan after "
           "each\n", b->name, n_steps, v == v2 ? "reused" : "not reused");
#undef STEP
    cg_store_close(a);
    cg_store_close(w);
    free(url);
}

// A cache smaller than two users' pages evicts (least recently searched first) and stays under
// its bound; a cache smaller than one user's pages reads them directly. Both stay exact.
static void test_cache_bound(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store_opts o = {.embed = cg_vec_embed_hashed, .n_embd = 64, .relaxed_durability = true};
    cg_store *w = open_ok(url, &o);
    int64_t u1 = new_user(w, "one"), u2 = new_user(w, "two");
    for (long i = 0; i < 700; i++) {  // 2 pages each (244 vectors of 64 a page)
        char text[160];
        rand_text(text, sizeof text, i);
        add_mem(w, u1, text, 0.5);
        rand_text(text, sizeof text, i + 1);
        add_mem(w, u2, text, 0.5);
    }
    // ~155 KiB of decoded pages per user (halves and int8 copies): 240 KiB holds one, not two.
    cg_store_opts small = o;
    small.vec_cache_bytes = 240 << 10;
    cg_store *a = open_ok(url, &small);
    cg_vec_cache_stats st;
    for (int r = 0; r < 4; r++) {
        compare_lists(a, r % 2 ? u2 : u1, 3, false);
        cg_store_vec_cache_stats(a, &st);
        assert_true(st.bytes <= st.limit);
        assert_int_equal(st.users, 1);
    }
    printf("%s: 240 KiB cache, two users alternating: %llu loads, %llu evictions, %llu hits, "
           "holds %zu bytes\n", b->name, (unsigned long long)st.loads,
           (unsigned long long)st.evictions, (unsigned long long)st.hits, st.bytes);
    assert_true(st.evictions >= 3);
    assert_true(st.hits >= 4);
    assert_int_equal(st.bypass, 0);
    cg_store_close(a);
    // Smaller than one user: direct reads, nothing held.
    small.vec_cache_bytes = 40 << 10;
    a = open_ok(url, &small);
    compare_lists(a, u1, 3, false);
    cg_store_vec_cache_stats(a, &st);
    assert_int_equal(st.users, 0);
    assert_int_equal(st.bytes, 0);
    assert_true(st.bypass >= 3);
    cg_store_close(a);
    // Disabled: no counters move.
    small.vec_cache_bytes = -1;
    a = open_ok(url, &small);
    compare_lists(a, u1, 2, false);
    cg_store_vec_cache_stats(a, &st);
    assert_int_equal(st.limit, 0);
    cg_store_close(a);
    cg_store_close(w);
    free(url);
}

#define STORE_TESTS(B)                                                                       \
    cmocka_unit_test_prestate(test_pack_equals_scan, &B),                                    \
        cmocka_unit_test_prestate(test_write_paths, &B),                                     \
        cmocka_unit_test_prestate(test_corrupt_page, &B),                                    \
        cmocka_unit_test_prestate(test_concurrent_adds, &B),                                 \
        cmocka_unit_test_prestate(test_migration_v4, &B),                                   \
        cmocka_unit_test_prestate(test_cache_other_handle, &B),                              \
        cmocka_unit_test_prestate(test_cache_bound, &B)

int main(void) {
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_dot_f16),
        cmocka_unit_test(test_dot_i8),
    };
    const struct CMUnitTest sq[] = {STORE_TESTS(SQ)};
    const struct CMUnitTest pg[] = {STORE_TESTS(PG)};
    return run_backends("mem_vec", common, CG_N(common), sq, pg, CG_N(sq));
}
