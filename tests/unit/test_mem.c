// test_mem.c — the memory store (src/mem) against both backends.
//
// Every store test runs twice, through the same function: once on a fresh SQLite file and once
// on a fresh database of a throwaway PostgreSQL cluster that this test starts itself with
// tests/pg.sh (or on $CG_TEST_PG when set). The PostgreSQL run is skipped, visibly, only when
// no PostgreSQL server binaries exist. Expectations are hand-derived from the tokenizer rules,
// the bi-temporal model and the fusion formula in docs/memory.md.
#include "testutil.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "mem/fts_cjk.h"
#include "mem/store.h"
#include "mem/vec.h"

#include "mem_backends.h"

// Ids of the search results, in order; returns the count.
static size_t search_ids(cg_store *s, int64_t user, const char *q, bool history, int64_t *ids,
                         size_t cap) {
    cg_err err = {0};
    cg_memory *r = NULL;
    size_t n = 0;
    cg_search_opts o = {.k = (int)cap, .include_history = history};
    CG_ASSERT_OK(cg_store_memory_search(s, user, q, &o, &r, &n, &err), &err);
    for (size_t i = 0; i < n; i++) ids[i] = r[i].id;
    cg_memory_list_free(r, n);
    return n;
}

static bool contains(const int64_t *ids, size_t n, int64_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}


// ---- tokenizer (backend independent) --------------------------------------------------------

static void expect_terms(const char *in, size_t n, const char *want) {
    cg_buf b;
    cg_buf_init(&b);
    cg_err err = {0};
    CG_ASSERT_OK(cg_cjk_terms(in, n, &b, &err), &err);
    if (strcmp(b.data, want) != 0) fail_msg("terms of '%s': got '%s', want '%s'", in, b.data, want);
    cg_buf_free(&b);
}

static void test_tokenizer(void **state) {
    const char *s = "저는 부산으로 이사했어요";
    expect_terms(s, strlen(s), "저는 부산 산으 으로 이사 사했 했어 어요");
    s = "I like Kimchi, KIMCHI! Straße 2024";
    expect_terms(s, strlen(s), "i like kimchi kimchi strasse 2024");
    expect_terms("집", strlen("집"), "집");
    s = "東京タワーに行く";
    expect_terms(s, strlen(s), "東京 京タ タワ ワー ーに に行 行く");
    s = "kimchi를 먹어요";
    expect_terms(s, strlen(s), "kimchi 를 먹어 어요");
    expect_terms("a\xff" "b", 3, "a b");           // invalid byte separates
    expect_terms("ＡＢＣ", strlen("ＡＢＣ"), "abc");  // NFKC folds full-width Latin
    expect_terms("", 0, "");
}

static void test_vec(void **state) {
    float a[3] = {1, 0, 0}, b[3] = {0, 2, 0}, c[3] = {3, 4, 0};
    assert_true(fabsf(cg_vec_cosine(a, b, 3)) < 1e-6f);
    assert_true(fabsf(cg_vec_cosine(a, c, 3) - 0.6f) < 1e-6f);  // 3 / 5
    float z[3] = {0};
    assert_true(cg_vec_cosine(a, z, 3) == 0.0f);
    float e1[256], e2[256];
    cg_err err = {0};
    CG_ASSERT_OK(cg_vec_embed_hashed(NULL, "서울", strlen("서울"), e1, 256, &err), &err);
    CG_ASSERT_OK(cg_vec_embed_hashed(NULL, "서울", strlen("서울"), e2, 256, &err), &err);
    assert_true(fabsf(cg_vec_cosine(e1, e2, 256) - 1.0f) < 1e-6f);
    // "서울에 살아요" has 4 tokens (서울 울에 살아 아요), one shared with "서울": cos = 1/2.
    CG_ASSERT_OK(cg_vec_embed_hashed(NULL, "서울에 살아요", strlen("서울에 살아요"), e2, 256, &err), &err);
    printf("cos(서울, 서울에 살아요) = %.4f (1/sqrt(4) = 0.5 without hash collisions)\n",
           cg_vec_cosine(e1, e2, 256));
    assert_true(fabsf(cg_vec_cosine(e1, e2, 256) - 0.5f) < 1e-6f);
}

static void test_default_dir(void **state) {
    cg_err err = {0};
    char *p = NULL;
    CG_ASSERT_OK(cg_store_default_dir("/x/y", &p, &err), &err);
    assert_string_equal(p, "/x/y");
    free(p);
    setenv("CHINGU_HOME", "/home/ch", 1);
    CG_ASSERT_OK(cg_store_default_dir(NULL, &p, &err), &err);
    assert_string_equal(p, "/home/ch");
    free(p);
    unsetenv("CHINGU_HOME");
    setenv("HOME", "/home/u", 1);
    CG_ASSERT_OK(cg_store_default_dir("", &p, &err), &err);
    assert_string_equal(p, "/home/u/.local/share/chingu");
    free(p);
    char *dir = cg_test_tmpdir();
    char sub[512];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    CG_ASSERT_OK(cg_store_default_path(sub, &p, &err), &err);
    char want[600];
    snprintf(want, sizeof want, "%s/a/b/chingu.db", dir);
    assert_string_equal(p, want);
    struct stat stt;
    assert_int_equal(stat(sub, &stt), 0);
    assert_int_equal(stt.st_mode & 0777, 0700);
    free(p);
    free(dir);
}

// ---- store tests (each runs on both backends) ------------------------------------------------

static void test_users_keys(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    assert_string_equal(cg_store_backend(s), b->name);
    assert_int_equal(cg_store_schema_version(s), CG_STORE_SCHEMA_VERSION);
    cg_err err = {0};
    int64_t alice = new_user(s, "alice"), bob = new_user(s, "민수");
    int64_t dup = 0;
    assert_int_equal(cg_store_user_add(s, "alice", &dup, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "alice"));
    assert_int_equal(cg_store_user_add(s, "bad\x01", &dup, &err), CG_ERR_INVALID);
    int64_t found = 0;
    CG_ASSERT_OK(cg_store_user_find(s, "민수", &found, &err), &err);
    assert_int_equal(found, bob);
    assert_int_equal(cg_store_user_find(s, "carol", &found, &err), CG_ERR_NOT_FOUND);

    char key[CG_KEY_STR_LEN], key2[CG_KEY_STR_LEN];
    int64_t kid = 0, kid2 = 0, uid = 0;
    cg_key_scope scope;
    CG_ASSERT_OK(cg_store_key_create(s, alice, CG_KEY_ADMIN, key, &kid, &err), &err);
    CG_ASSERT_OK(cg_store_key_create(s, bob, CG_KEY_USER, key2, &kid2, &err), &err);
    assert_int_equal(strlen(key), CG_KEY_STR_LEN - 1);
    assert_memory_equal(key, "cg-", 3);
    for (const char *p = key + 3; *p; p++)
        assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
    assert_string_not_equal(key, key2);
    // Only a 32-byte keyed hash is stored, never the key.
    assert_int_equal(qint(s, b->is_pg ? "SELECT count(*) FROM api_keys WHERE length(hash) = 32"
                                      : "SELECT count(*) FROM api_keys WHERE length(hash) = 32"),
                     2);
    assert_int_equal(qint(s, "SELECT count(*) FROM api_keys WHERE last_used_ms IS NULL"), 2);
    CG_ASSERT_OK(cg_store_key_verify(s, key, &uid, &scope, &err), &err);
    assert_int_equal(uid, alice);
    assert_int_equal(scope, CG_KEY_ADMIN);
    assert_int_equal(qint(s, "SELECT count(*) FROM api_keys WHERE last_used_ms IS NULL"), 1);
    CG_ASSERT_OK(cg_store_key_verify(s, key2, &uid, &scope, &err), &err);
    assert_int_equal(uid, bob);
    assert_int_equal(scope, CG_KEY_USER);
    char wrong[CG_KEY_STR_LEN];
    memcpy(wrong, key, sizeof wrong);
    wrong[10] = wrong[10] == 'A' ? 'B' : 'A';
    assert_int_equal(cg_store_key_verify(s, wrong, &uid, &scope, &err), CG_ERR_NOT_FOUND);
    assert_int_equal(cg_store_key_verify(s, "sk-nope", &uid, &scope, &err), CG_ERR_NOT_FOUND);
    // Bob cannot revoke Alice's key; Alice can, and then it no longer verifies.
    assert_int_equal(cg_store_key_revoke(s, bob, kid, &err), CG_ERR_NOT_FOUND);
    CG_ASSERT_OK(cg_store_key_revoke(s, alice, kid, &err), &err);
    assert_int_equal(cg_store_key_verify(s, key, &uid, &scope, &err), CG_ERR_NOT_FOUND);
    assert_int_equal(cg_store_key_revoke(s, alice, kid, &err), CG_ERR_NOT_FOUND);

    // The hash key persists: a key made before reopening still verifies after.
    cg_store_close(s);
    s = open_ok(url, NULL);
    CG_ASSERT_OK(cg_store_key_verify(s, key2, &uid, &scope, &err), &err);
    cg_user *users = NULL;
    size_t n_users = 0;
    CG_ASSERT_OK(cg_store_user_list(s, &users, &n_users, &err), &err);
    assert_int_equal(n_users, 2);
    assert_string_equal(users[1].name, "민수");
    cg_user_list_free(users, n_users);
    cg_store_close(s);
    free(url);
}

static void test_korean_search(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    int64_t u = new_user(s, "u"), other = new_user(s, "other");
    int64_t m1 = add_mem(s, u, "저는 부산으로 이사했어요", 0.5);
    int64_t m2 = add_mem(s, u, "서울에 살아요", 0.5);
    int64_t m3 = add_mem(s, u, "I like kimchi", 0.5);
    int64_t m4 = add_mem(s, u, "아침마다 커피를 마셔요", 0.5);
    int64_t m5 = add_mem(s, u, "My sister Jiyoung lives in 서울 too", 0.5);
    add_mem(s, other, "부산 kimchi 서울 커피", 1.0);  // never visible to u
    int64_t ids[16];
    size_t n;
    n = search_ids(s, u, "부산", false, ids, 16);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], m1);
    n = search_ids(s, u, "이사", false, ids, 16);  // two syllables inside a longer run
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], m1);
    n = search_ids(s, u, "Kimchi", false, ids, 16);  // case-folded
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], m3);
    n = search_ids(s, u, "커피", false, ids, 16);  // particle attached: 커피를
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], m4);
    n = search_ids(s, u, "서울", false, ids, 16);  // 서울에 and a mixed-script text
    assert_int_equal(n, 2);
    assert_true(contains(ids, n, m2) && contains(ids, n, m5));
    n = search_ids(s, u, "jiyoung 서울", false, ids, 16);  // mixed query: m5 matches both terms
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], m5);
    n = search_ids(s, u, "kimchi 부산", false, ids, 16);
    assert_int_equal(n, 2);
    assert_true(contains(ids, n, m1) && contains(ids, n, m3));
    assert_int_equal(search_ids(s, u, "도쿄", false, ids, 16), 0);
    assert_int_equal(search_ids(s, u, "", false, ids, 16), 0);
    assert_int_equal(search_ids(s, u, "\"부산\" OR NEAR(", false, ids, 16), 1);  // no query syntax
    // The other user's memory is never returned to u, and u's never to other.
    n = search_ids(s, other, "이사", false, ids, 16);
    assert_int_equal(n, 0);
    cg_store_close(s);
    free(url);
}

// The candidate cut: with max_candidates = 3, only the user's 3 newest matches are ranked, on
// both backends alike; other users' matches do not count against the cut.
static void test_candidate_cut(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    cg_err err = {0};
    int64_t u = new_user(s, "u"), other = new_user(s, "other");
    int64_t ids_u[6];
    for (int i = 0; i < 6; i++) {
        ids_u[i] = add_mem(s, u, i % 2 ? "부산 여행 계획" : "부산", 0.5);
        add_mem(s, other, "부산 부산", 0.5);
    }
    cg_memory *r = NULL;
    size_t n = 0;
    cg_search_opts o = {.k = 10, .max_candidates = 3};
    CG_ASSERT_OK(cg_store_memory_search(s, u, "부산", &o, &r, &n, &err), &err);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_true(r[i].id == ids_u[3] || r[i].id == ids_u[4] || r[i].id == ids_u[5]);
    // Among the three, the shortest texts rank first (BM25 length normalisation): 4 before 3, 5.
    assert_int_equal(r[0].id, ids_u[4]);
    cg_memory_list_free(r, n);
    o.max_candidates = 0;
    CG_ASSERT_OK(cg_store_memory_search(s, u, "부산", &o, &r, &n, &err), &err);
    assert_int_equal(n, 6);
    cg_memory_list_free(r, n);
    o.max_candidates = -1;
    assert_int_equal(cg_store_memory_search(s, u, "부산", &o, &r, &n, &err), CG_ERR_INVALID);
    cg_store_close(s);
    free(url);
}

static void test_bitemporal(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    cg_err err = {0};
    int64_t u = new_user(s, "u");
    cg_mem_new old_m = {.text = "lives in Seoul (서울에 살아요)", .created_ms = 1000000};
    int64_t old_id = 0, new_id = 0;
    CG_ASSERT_OK(cg_store_memory_add(s, u, &old_m, &old_id, &err), &err);
    cg_mem_new new_m = {.text = "moved to Busan (부산으로 이사했어요)", .created_ms = 2000000,
                        .supersedes = old_id, .importance = 0.8};
    CG_ASSERT_OK(cg_store_memory_add(s, u, &new_m, &new_id, &err), &err);
    cg_memory o = {0}, nw = {0};
    CG_ASSERT_OK(cg_store_memory_get(s, u, old_id, &o, &err), &err);
    CG_ASSERT_OK(cg_store_memory_get(s, u, new_id, &nw, &err), &err);
    assert_int_equal(o.superseded_by, new_id);
    assert_int_equal(o.valid_to_ms, 2000000);
    assert_int_equal(o.valid_from_ms, 1000000);
    assert_int_equal(nw.valid_from_ms, 2000000);
    assert_int_equal(nw.valid_to_ms, 0);
    assert_int_equal(nw.superseded_by, 0);
    cg_memory_clear(&o);
    cg_memory_clear(&nw);
    int64_t ids[8];
    assert_int_equal(search_ids(s, u, "Seoul", false, ids, 8), 0);  // not current
    assert_int_equal(search_ids(s, u, "Seoul", true, ids, 8), 1);   // history keeps it
    assert_int_equal(ids[0], old_id);
    assert_int_equal(search_ids(s, u, "서울", false, ids, 8), 0);
    assert_int_equal(search_ids(s, u, "Busan", false, ids, 8), 1);
    assert_int_equal(ids[0], new_id);
    cg_memory *list = NULL;
    size_t n = 0;
    CG_ASSERT_OK(cg_store_memory_list(s, u, true, &list, &n, &err), &err);
    assert_int_equal(n, 1);
    cg_memory_list_free(list, n);
    CG_ASSERT_OK(cg_store_memory_list(s, u, false, &list, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, new_id);  // newest first
    cg_memory_list_free(list, n);
    // A superseded fact cannot be superseded twice.
    cg_mem_new again = {.text = "moved to Daegu", .supersedes = old_id};
    int64_t x = 0;
    assert_int_equal(cg_store_memory_add(s, u, &again, &x, &err), CG_ERR_STATE);
    int64_t audits = 0;
    CG_ASSERT_OK(cg_store_audit_count(s, u, &audits, &err), &err);
    assert_int_equal(audits, 3);  // add, add, supersede
    cg_store_close(s);
    free(url);
}

static void test_ranking(void **state) {
    backend *b = *state;
    FRESH(b, url);
    // Hybrid store: the documented hashed-token stand-in embedding.
    cg_store_opts o = {.embed = cg_vec_embed_hashed, .n_embd = 256};
    cg_store *s = open_ok(url, &o);
    cg_err err = {0};
    int64_t u = new_user(s, "u");
    int64_t now = 100LL * 86400000;
    cg_mem_new a = {.text = "coffee with oat milk", .importance = 0.0, .created_ms = now};
    cg_mem_new c = {.text = "coffee with oat milk", .importance = 1.0, .created_ms = now};
    cg_mem_new d = {.text = "coffee with oat milk", .importance = 1.0, .created_ms = now - 90LL * 86400000};
    cg_mem_new e = {.text = "tea", .importance = 1.0, .created_ms = now};
    int64_t ia = 0, ic = 0, id = 0, ie = 0;
    CG_ASSERT_OK(cg_store_memory_add(s, u, &a, &ia, &err), &err);
    CG_ASSERT_OK(cg_store_memory_add(s, u, &c, &ic, &err), &err);
    CG_ASSERT_OK(cg_store_memory_add(s, u, &d, &id, &err), &err);
    CG_ASSERT_OK(cg_store_memory_add(s, u, &e, &ie, &err), &err);
    cg_memory *r = NULL;
    size_t n = 0;
    cg_search_opts so = {.k = 10, .now_ms = now};
    CG_ASSERT_OK(cg_store_memory_search(s, u, "oat coffee", &so, &r, &n, &err), &err);
    // Equal BM25 and cosine for a, c, d: the boosts decide. c (importance 1, new) first; then
    // d (importance 1, 90 days old: recency 1 + 0.25/8) vs a (importance 0, new: 1.25):
    // 1.5 * 1.03125 = 1.547 > 1.25, so d before a. "tea" matches nothing.
    assert_int_equal(n, 3);
    printf("%s: scores c=%.6f d=%.6f a=%.6f\n", b->name, r[0].score, r[1].score, r[2].score);
    assert_int_equal(r[0].id, ic);
    assert_int_equal(r[1].id, id);
    assert_int_equal(r[2].id, ia);
    // Hand-computed fused score of c: rrf over both lists (ranks are shared by ties, in id
    // order: c has text rank and vector rank 2 of the tie a<c<d) = 2/(60+2); boosts 1.5 * 1.25.
    double want = 2.0 / 62.0 * 1.5 * 1.25;
    printf("%s: score(c) = %.6f, hand-computed %.6f\n", b->name, r[0].score, want);
    assert_true(fabs(r[0].score - want) < 1e-9);
    cg_memory_list_free(r, n);
    cg_store_close(s);
    free(url);
}

static void test_controls(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    cg_err err = {0};
    int64_t u = new_user(s, "u"), v = new_user(s, "v");
    int64_t m1 = add_mem(s, u, "likes jazz", 0.3);
    int64_t m2 = add_mem(s, u, "allergic to peanuts", 0.9);
    int64_t mv = add_mem(s, v, "likes rock", 0.3);
    cg_memory m = {0};
    // Another user's id is NOT_FOUND for every operation.
    assert_int_equal(cg_store_memory_get(s, u, mv, &m, &err), CG_ERR_NOT_FOUND);
    assert_int_equal(cg_store_memory_edit(s, u, mv, "hacked", -1, &err), CG_ERR_NOT_FOUND);
    assert_int_equal(cg_store_memory_delete(s, u, mv, &err), CG_ERR_NOT_FOUND);
    CG_ASSERT_OK(cg_store_memory_get(s, v, mv, &m, &err), &err);
    assert_string_equal(m.text, "likes rock");
    cg_memory_clear(&m);
    // Edit: new text is searchable, old is not.
    CG_ASSERT_OK(cg_store_memory_edit(s, u, m1, "likes classical music", 0.7, &err), &err);
    CG_ASSERT_OK(cg_store_memory_get(s, u, m1, &m, &err), &err);
    assert_string_equal(m.text, "likes classical music");
    assert_true(fabs(m.importance - 0.7) < 1e-12);
    cg_memory_clear(&m);
    int64_t ids[8];
    assert_int_equal(search_ids(s, u, "jazz", false, ids, 8), 0);
    assert_int_equal(search_ids(s, u, "classical", false, ids, 8), 1);
    // Invalid input.
    assert_int_equal(cg_store_memory_edit(s, u, m1, "", -1, &err), CG_ERR_INVALID);
    assert_int_equal(cg_store_memory_edit(s, u, m1, "bad \xc3\x28", -1, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "byte 4"));
    cg_mem_new bad = {.text = "x", .importance = 1.5};
    int64_t x = 0;
    assert_int_equal(cg_store_memory_add(s, u, &bad, &x, &err), CG_ERR_INVALID);
    // Delete one.
    CG_ASSERT_OK(cg_store_memory_delete(s, u, m2, &err), &err);
    assert_int_equal(cg_store_memory_get(s, u, m2, &m, &err), CG_ERR_NOT_FOUND);
    assert_int_equal(search_ids(s, u, "peanuts", false, ids, 8), 0);
    // Temporary conversations keep messages but never write memory.
    int64_t tc = 0, pc = 0, msg = 0;
    CG_ASSERT_OK(cg_store_conv_add(s, u, "private", true, &tc, &err), &err);
    CG_ASSERT_OK(cg_store_conv_add(s, u, "normal", false, &pc, &err), &err);
    CG_ASSERT_OK(cg_store_msg_add(s, u, tc, "user", "I'm pregnant", 4, &msg, &err), &err);
    cg_mem_new fromtmp = {.text = "is pregnant", .source = CG_SRC_MESSAGE, .conv_id = tc};
    assert_int_equal(cg_store_memory_add(s, u, &fromtmp, &x, &err), CG_ERR_STATE);
    assert_non_null(strstr(err.msg, "temporary"));
    fromtmp.conv_id = pc;
    CG_ASSERT_OK(cg_store_memory_add(s, u, &fromtmp, &x, &err), &err);
    fromtmp.conv_id = 999999;
    assert_int_equal(cg_store_memory_add(s, u, &fromtmp, &x, &err), CG_ERR_NOT_FOUND);
    assert_int_equal(cg_store_msg_add(s, v, tc, "user", "hi", 1, &msg, &err), CG_ERR_NOT_FOUND);
    assert_int_equal(cg_store_msg_add(s, u, tc, "robot", "hi", 1, &msg, &err), CG_ERR_INVALID);
    cg_message *msgs = NULL;
    size_t n_msgs = 0;
    CG_ASSERT_OK(cg_store_msg_list(s, u, tc, &msgs, &n_msgs, &err), &err);
    assert_int_equal(n_msgs, 1);
    assert_string_equal(msgs[0].text, "I'm pregnant");
    assert_int_equal(msgs[0].n_tokens, 4);
    cg_message_list_free(msgs, n_msgs);
    assert_int_equal(cg_store_msg_list(s, v, tc, &msgs, &n_msgs, &err), CG_ERR_NOT_FOUND);
    // Forget all: u's memories go, v's stay.
    int64_t n_del = 0;
    CG_ASSERT_OK(cg_store_memory_forget_all(s, u, &n_del, &err), &err);
    assert_int_equal(n_del, 2);
    cg_memory *list = NULL;
    size_t n = 0;
    CG_ASSERT_OK(cg_store_memory_list(s, u, false, &list, &n, &err), &err);
    assert_int_equal(n, 0);
    cg_memory_list_free(list, n);
    assert_int_equal(search_ids(s, u, "classical", false, ids, 8), 0);
    assert_int_equal(search_ids(s, v, "rock", false, ids, 8), 1);
    int64_t audits = 0;
    CG_ASSERT_OK(cg_store_audit_count(s, u, &audits, &err), &err);
    assert_int_equal(audits, 6);  // add, add, edit, delete, add, forget_all
    cg_store_close(s);
    free(url);
}

// Isolation matrix: every operation that takes an object id, called by another user with that
// id, is NOT_FOUND and changes nothing.
static void test_isolation(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    cg_err err = {0};
    int64_t owner = new_user(s, "owner"), eve = new_user(s, "eve");
    cg_mem_new m = {.text = "owner's task", .kind = CG_MEM_TASK, .due_ms = 5000,
                    .client_id = "c1"};
    int64_t mem = 0, conv = 0, msg = 0, kid = 0, x = 0;
    CG_ASSERT_OK(cg_store_memory_add(s, owner, &m, &mem, &err), &err);
    CG_ASSERT_OK(cg_store_conv_add(s, owner, "t", false, &conv, &err), &err);
    CG_ASSERT_OK(cg_store_msg_add(s, owner, conv, "user", "hello", 1, &msg, &err), &err);
    char key[CG_KEY_STR_LEN];
    CG_ASSERT_OK(cg_store_key_create(s, owner, CG_KEY_USER, key, &kid, &err), &err);
    cg_memory got = {0};
    cg_memory *list = NULL;
    cg_message *msgs = NULL;
    size_t n = 0;
    int checked = 0;
#define EXPECT_404(call)                                                    \
    do {                                                                    \
        cg_status st_ = (call);                                             \
        if (st_ != CG_ERR_NOT_FOUND) fail_msg("%s: status %d", #call, st_); \
        checked++;                                                          \
    } while (0)
    EXPECT_404(cg_store_memory_get(s, eve, mem, &got, &err));
    EXPECT_404(cg_store_memory_edit(s, eve, mem, "x", -1, &err));
    EXPECT_404(cg_store_memory_delete(s, eve, mem, &err));
    EXPECT_404(cg_store_memory_find_client(s, eve, "c1", &x, &err));
    cg_mem_new sup = {.text = "x", .supersedes = mem};
    EXPECT_404(cg_store_memory_add(s, eve, &sup, &x, &err));
    cg_mem_new inconv = {.text = "x", .conv_id = conv};
    EXPECT_404(cg_store_memory_add(s, eve, &inconv, &x, &err));
    EXPECT_404(cg_store_msg_add(s, eve, conv, "user", "x", 1, &x, &err));
    EXPECT_404(cg_store_msg_list(s, eve, conv, &msgs, &n, &err));
    EXPECT_404(cg_store_conv_delete(s, eve, conv, &err));
    EXPECT_404(cg_store_key_revoke(s, eve, kid, &err));
#undef EXPECT_404
    // Listing, search and reminders show eve nothing of the owner's.
    CG_ASSERT_OK(cg_store_memory_list(s, eve, false, &list, &n, &err), &err);
    assert_int_equal(n, 0);
    cg_memory_list_free(list, n);
    CG_ASSERT_OK(cg_store_memory_due(s, eve, 10000, &list, &n, &err), &err);
    assert_int_equal(n, 0);
    cg_memory_list_free(list, n);
    int64_t ids[4];
    assert_int_equal(search_ids(s, eve, "task", false, ids, 4), 0);
    // Everything of the owner is intact.
    CG_ASSERT_OK(cg_store_memory_get(s, owner, mem, &got, &err), &err);
    assert_string_equal(got.text, "owner's task");
    cg_memory_clear(&got);
    CG_ASSERT_OK(cg_store_msg_list(s, owner, conv, &msgs, &n, &err), &err);
    assert_int_equal(n, 1);
    cg_message_list_free(msgs, n);
    CG_ASSERT_OK(cg_store_memory_due(s, owner, 4999, &list, &n, &err), &err);
    assert_int_equal(n, 0);  // due at 5000
    cg_memory_list_free(list, n);
    CG_ASSERT_OK(cg_store_memory_due(s, owner, 5000, &list, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].due_ms, 5000);
    cg_memory_list_free(list, n);
    int64_t uid = 0;
    cg_key_scope scope;
    CG_ASSERT_OK(cg_store_key_verify(s, key, &uid, &scope, &err), &err);
    assert_int_equal(uid, owner);
    printf("%s: %d cross-user calls, all NOT_FOUND\n", b->name, checked);
    cg_store_close(s);
    free(url);
}

static void test_export(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    cg_err err = {0};
    int64_t u = new_user(s, "지민"), v = new_user(s, "v");
    add_mem(s, u, "says \"hi\"\n\tand \\ backslash", 0.5);
    add_mem(s, v, "v's secret", 0.5);
    int64_t conv = 0, msg = 0, doc = 0, n_chunks = 0;
    char key[CG_KEY_STR_LEN];
    int64_t kid = 0;
    CG_ASSERT_OK(cg_store_key_create(s, u, CG_KEY_USER, key, &kid, &err), &err);
    CG_ASSERT_OK(cg_store_conv_add(s, u, "첫 대화", false, &conv, &err), &err);
    CG_ASSERT_OK(cg_store_msg_add(s, u, conv, "user", "안녕\x01", 2, &msg, &err), &err);
    char text[200];
    for (int i = 0; i < 199; i++) text[i] = "abcde fghij "[i % 12];
    text[199] = '\0';
    CG_ASSERT_OK(cg_store_doc_add(s, u, "notes", text, 32, &doc, &n_chunks, &err), &err);
    assert_true(n_chunks >= 7);  // 199 bytes in chunks of at most 32
    cg_buf out;
    cg_buf_init(&out);
    CG_ASSERT_OK(cg_store_export_json(s, u, &out, &err), &err);
    json_error_t je;
    json_t *j = json_loads(out.data, JSON_REJECT_DUPLICATES, &je);
    if (!j) fail_msg("export is not JSON: %s at %d: %s", je.text, je.position, out.data);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "user"), "name")), "지민");
    json_t *mems = json_object_get(j, "memories");
    assert_int_equal(json_array_size(mems), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(mems, 0), "text")),
                        "says \"hi\"\n\tand \\ backslash");
    json_t *convs = json_object_get(j, "conversations");
    assert_int_equal(json_array_size(convs), 1);
    json_t *m0 = json_array_get(json_object_get(json_array_get(convs, 0), "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(m0, "text")), "안녕\x01");
    json_t *d0 = json_array_get(json_object_get(j, "documents"), 0);
    assert_string_equal(json_string_value(json_object_get(d0, "title")), "notes");
    json_t *chunks = json_object_get(d0, "chunks");
    assert_int_equal((int64_t)json_array_size(chunks), n_chunks);
    char joined[256] = "";
    for (size_t i = 0; i < json_array_size(chunks); i++) {
        const char *c = json_string_value(json_array_get(chunks, i));
        assert_true(strlen(c) <= 32);
        strcat(joined, c);
    }
    assert_string_equal(joined, text);
    assert_int_equal(json_array_size(json_object_get(j, "keys")), 1);
    assert_null(strstr(out.data, key));
    assert_null(strstr(out.data, "secret"));
    assert_int_equal(json_array_size(json_object_get(j, "audit")), 1);
    json_decref(j);
    cg_buf_free(&out);
    cg_buf_init(&out);
    assert_int_equal(cg_store_export_json(s, 12345, &out, &err), CG_ERR_NOT_FOUND);
    cg_buf_free(&out);
    cg_store_close(s);
    free(url);
}

// Counts rows mentioning `user_id` in any user_id column, and rows whose text or blob columns
// contain `marker`, over every table of the database (read from the catalog, not a fixed list).
static void scan_all_tables(backend *b, const char *url, int64_t user_id, const char *marker,
                            int64_t *n_user_rows, int64_t *n_marker_rows, int *n_tables) {
    *n_user_rows = *n_marker_rows = 0;
    *n_tables = 0;
    if (!b->is_pg) {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(url, &db), SQLITE_OK);
        sqlite3_stmt *t = NULL;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT name FROM sqlite_master WHERE type = 'table'"
                                            " AND name != 'mem_fts'",
                                            -1, &t, NULL),
                         SQLITE_OK);
        while (sqlite3_step(t) == SQLITE_ROW) {
            char table[128];
            snprintf(table, sizeof table, "%s", (const char *)sqlite3_column_text(t, 0));
            (*n_tables)++;
            char sql[512];
            snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s')", table);
            sqlite3_stmt *c = NULL;
            assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &c, NULL), SQLITE_OK);
            while (sqlite3_step(c) == SQLITE_ROW) {
                const char *col = (const char *)sqlite3_column_text(c, 0);
                sqlite3_stmt *q = NULL;
                if (strcmp(col, "user_id") == 0)
                    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE user_id = %lld",
                             table, (long long)user_id);
                else
                    snprintf(sql, sizeof sql,
                             "SELECT count(*) FROM \"%s\" WHERE instr(CAST(\"%s\" AS BLOB),"
                             " CAST('%s' AS BLOB)) > 0", table, col, marker);
                assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
                assert_int_equal(sqlite3_step(q), SQLITE_ROW);
                int64_t k = sqlite3_column_int64(q, 0);
                if (strcmp(col, "user_id") == 0) *n_user_rows += k;
                else *n_marker_rows += k;
                sqlite3_finalize(q);
            }
            sqlite3_finalize(c);
        }
        sqlite3_finalize(t);
        // The FTS5 shadow tables (mem_fts_data holds the index's terms) were scanned above.
        sqlite3_close(db);
        return;
    }
    PGconn *c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *cols = PQexec(c,
                            "SELECT table_name, column_name, data_type FROM information_schema.columns"
                            " WHERE table_schema = 'public' ORDER BY table_name");
    assert_int_equal(PQresultStatus(cols), PGRES_TUPLES_OK);
    char last[128] = "";
    for (int i = 0; i < PQntuples(cols); i++) {
        const char *table = PQgetvalue(cols, i, 0), *col = PQgetvalue(cols, i, 1),
                   *type = PQgetvalue(cols, i, 2);
        if (strcmp(table, last) != 0) {
            (*n_tables)++;
            snprintf(last, sizeof last, "%s", table);
        }
        char sql[512];
        bool is_user = strcmp(col, "user_id") == 0;
        if (is_user)
            snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\" WHERE user_id = %lld", table,
                     (long long)user_id);
        else if (strcmp(type, "bytea") == 0)
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM \"%s\" WHERE position(convert_to('%s', 'UTF8') in \"%s\") > 0",
                     table, marker, col);
        else
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM \"%s\" WHERE position('%s' in \"%s\"::text) > 0", table,
                     marker, col);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
        int64_t k = atoll(PQgetvalue(r, 0, 0));
        if (is_user) *n_user_rows += k;
        else *n_marker_rows += k;
        PQclear(r);
    }
    PQclear(cols);
    PQfinish(c);
}

static void test_delete_user(void **state) {
    backend *b = *state;
    FRESH(b, url);
    // With embeddings, so the packed vector pages (mem_vpack) hold rows of the user too.
    cg_store_opts eo = {.embed = cg_vec_embed_hashed, .n_embd = 16};
    cg_store *s = open_ok(url, &eo);
    cg_err err = {0};
    int64_t u = new_user(s, "zyxmarker"), v = new_user(s, "keep");
    // Fill every table for both users; u's texts carry the marker.
    for (int i = 0; i < 2; i++) {
        int64_t who = i ? v : u;
        const char *tag = i ? "keepword" : "zyxmarker";
        char text[128];
        snprintf(text, sizeof text, "%s 기억 memory", tag);
        int64_t m = add_mem(s, who, text, 0.5);
        cg_mem_new sup = {.text = text, .supersedes = m};
        int64_t m2 = 0, conv = 0, msg = 0, doc = 0, kid = 0;
        CG_ASSERT_OK(cg_store_memory_add(s, who, &sup, &m2, &err), &err);
        CG_ASSERT_OK(cg_store_memory_edit(s, who, m2, text, 0.9, &err), &err);
        char key[CG_KEY_STR_LEN];
        CG_ASSERT_OK(cg_store_key_create(s, who, CG_KEY_USER, key, &kid, &err), &err);
        CG_ASSERT_OK(cg_store_conv_add(s, who, tag, false, &conv, &err), &err);
        CG_ASSERT_OK(cg_store_msg_add(s, who, conv, "user", text, 3, &msg, &err), &err);
        cg_mem_new fm = {.text = text, .conv_id = conv, .source = CG_SRC_MESSAGE};
        CG_ASSERT_OK(cg_store_memory_add(s, who, &fm, &m2, &err), &err);
        CG_ASSERT_OK(cg_store_doc_add(s, who, tag, text, 0, &doc, NULL, &err), &err);
    }
    int64_t nu = 0, nm = 0;
    int n_tables = 0;
    scan_all_tables(b, url, u, "zyxmarker", &nu, &nm, &n_tables);
    assert_true(nu > 10 && nm > 5);  // the scan does see u's data before deletion
    char vq[96];
    snprintf(vq, sizeof vq, "SELECT count(*) FROM mem_vpack WHERE user_id = %lld", (long long)u);
    assert_true(qint(s, vq) >= 1);
    CG_ASSERT_OK(cg_store_user_delete(s, u, &err), &err);
    assert_int_equal(cg_store_user_delete(s, u, &err), CG_ERR_NOT_FOUND);
    scan_all_tables(b, url, u, "zyxmarker", &nu, &nm, &n_tables);
    printf("%s: after deleting the user: %lld rows with its user_id, %lld rows with its marker, "
           "%d tables scanned\n", b->name, (long long)nu, (long long)nm, n_tables);
    assert_int_equal(nu, 0);
    assert_int_equal(nm, 0);
    assert_true(n_tables >= 9);
    int64_t nv = 0;
    scan_all_tables(b, url, v, "keepword", &nv, &nm, &n_tables);
    assert_true(nv > 10 && nm > 5);  // v untouched
    int64_t ids[8];
    assert_int_equal(search_ids(s, v, "keepword", false, ids, 8), 2);
    cg_store_close(s);
    free(url);
}

typedef struct ranked_ids { size_t n; int64_t id[8]; double score[8]; } ranked_ids;

static ranked_ids search_ranked(cg_store *s, int64_t user, const char *q, bool history) {
    cg_err err = {0};
    cg_memory *r = NULL;
    ranked_ids out = {0};
    cg_search_opts o = {.k = 8, .include_history = history, .now_ms = 1800000000000};
    CG_ASSERT_OK(cg_store_memory_search(s, user, q, &o, &r, &out.n, &err), &err);
    for (size_t i = 0; i < out.n; i++) out.id[i] = r[i].id, out.score[i] = r[i].score;
    cg_memory_list_free(r, out.n);
    return out;
}

// Version 3 changes PostgreSQL's text-index layout (postings carry their memory's term count,
// covering indexes): the same rows must rank exactly as before the upgrade, and the index must
// keep working for writes and deletes after it.
static void test_migration_v3(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_err err = {0};
    cg_store_opts v2 = {.target_version = 2};
    cg_store *s = open_ok(url, &v2);
    assert_int_equal(cg_store_schema_version(s), 2);
    int64_t u = new_user(s, "mig"), other = new_user(s, "other");
    int64_t a = add_mem(s, u, "coffee coffee with my sister in Seoul", 0.2);
    int64_t c = add_mem(s, u, "coffee", 0.9);
    int64_t k = add_mem(s, u, "서울에서 커피를 마셨어요 coffee", 0.5);
    add_mem(s, other, "coffee coffee coffee", 1.0);
    cg_mem_new nm = {.text = "coffee is now tea", .supersedes = c};
    int64_t d = 0;
    CG_ASSERT_OK(cg_store_memory_add(s, u, &nm, &d, &err), &err);
    const char *queries[] = {"coffee", "서울 coffee", "tea sister"};
    ranked_ids before[3][2];
    for (int q = 0; q < 3; q++)
        for (int h = 0; h < 2; h++) before[q][h] = search_ranked(s, u, queries[q], h);
    assert_int_equal(before[0][0].n, 3);  // a, k, d: c is superseded
    assert_int_equal(before[0][1].n, 4);
    cg_store_close(s);

    cg_store_opts v3 = {.target_version = 3};
    s = open_ok(url, &v3);  // migrates 2 -> 3
    assert_int_equal(cg_store_schema_version(s), 3);
    for (int q = 0; q < 3; q++)
        for (int h = 0; h < 2; h++) {
            ranked_ids now = search_ranked(s, u, queries[q], h);
            assert_int_equal(now.n, before[q][h].n);
            for (size_t i = 0; i < now.n; i++) {
                assert_int_equal(now.id[i], before[q][h].id[i]);
                assert_true(now.score[i] == before[q][h].score[i]);
            }
        }
    if (b->is_pg) {
        // "coffee coffee with my sister in seoul": 7 terms, on each of its postings.
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT min(n_terms) * 100 + max(n_terms) FROM mem_terms"
                                  " WHERE memory_id = %lld", (long long)a);
        assert_int_equal(qint(s, sql), 707);
    }
    // Writes and deletes after the upgrade.
    int64_t e = add_mem(s, u, "tea with coffee", 0.5);
    int64_t ids[8];
    size_t n = search_ids(s, u, "tea", false, ids, 8);
    assert_int_equal(n, 2);
    assert_true(contains(ids, n, d) && contains(ids, n, e));
    CG_ASSERT_OK(cg_store_memory_delete(s, u, k, &err), &err);
    n = search_ids(s, u, "커피", false, ids, 8);
    assert_int_equal(n, 0);
    cg_store_close(s);
    free(url);
}

static void test_migration(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_err err = {0};
    cg_store_opts v1 = {.target_version = 1};
    cg_store *s = open_ok(url, &v1);
    assert_int_equal(cg_store_schema_version(s), 1);
    int64_t u = new_user(s, "old");
    // Version 1 has no client_id column.
    cg_mem_new m = {.text = "imported", .client_id = "ext-1"};
    int64_t id = 0;
    assert_int_equal(cg_store_memory_add(s, u, &m, &id, &err), CG_ERR_IO);
    cg_store_close(s);
    s = open_ok(url, NULL);  // migrates 1 -> 2 -> 3
    assert_int_equal(cg_store_schema_version(s), CG_STORE_SCHEMA_VERSION);
    assert_int_equal(qint(s, "SELECT version FROM schema_version"), CG_STORE_SCHEMA_VERSION);
    int64_t found = 0;
    CG_ASSERT_OK(cg_store_user_find(s, "old", &found, &err), &err);
    assert_int_equal(found, u);
    CG_ASSERT_OK(cg_store_memory_add(s, u, &m, &id, &err), &err);
    cg_memory got = {0};
    CG_ASSERT_OK(cg_store_memory_get(s, u, id, &got, &err), &err);
    assert_string_equal(got.client_id, "ext-1");
    cg_memory_clear(&got);
    int64_t by_client = 0;
    CG_ASSERT_OK(cg_store_memory_find_client(s, u, "ext-1", &by_client, &err), &err);
    assert_int_equal(by_client, id);
    assert_int_equal(cg_store_memory_find_client(s, u, "ext-2", &by_client, &err), CG_ERR_NOT_FOUND);
    assert_int_equal(cg_store_memory_add(s, u, &m, &id, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "ext-1"));
    // A database from a newer build is refused, not misread.
    CG_ASSERT_OK(cg_store_exec_raw(s, "UPDATE schema_version SET version = 99", &err), &err);
    cg_store_close(s);
    assert_int_equal(cg_store_open(url, NULL, &s, &err), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "99"));
    free(url);
}

static void test_broken_rows(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    cg_err err = {0};
    int64_t u = new_user(s, "u");
    int64_t m = add_mem(s, u, "fine text", 0.5);
    char sql[256], want[64];
    cg_memory got = {0};
    snprintf(want, sizeof want, "memories id=%lld column body", (long long)m);
    snprintf(sql, sizeof sql, b->is_pg ? "UPDATE memories SET body = '\\x41ff42'::bytea WHERE id = %lld"
                                       : "UPDATE memories SET body = X'41FF42' WHERE id = %lld",
             (long long)m);
    CG_ASSERT_OK(cg_store_exec_raw(s, sql, &err), &err);
    assert_int_equal(cg_store_memory_get(s, u, m, &got, &err), CG_ERR_FORMAT);
    printf("%s: %s\n", b->name, err.msg);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "UTF-8 at byte 1"));
    cg_memory *list = NULL;
    size_t n = 0;
    assert_int_equal(cg_store_memory_list(s, u, false, &list, &n, &err), CG_ERR_FORMAT);
    cg_memory_list_free(list, n);
    // Out-of-range kind.
    m = add_mem(s, u, "another", 0.5);
    snprintf(sql, sizeof sql, "UPDATE memories SET kind = 42 WHERE id = %lld", (long long)m);
    CG_ASSERT_OK(cg_store_exec_raw(s, sql, &err), &err);
    assert_int_equal(cg_store_memory_get(s, u, m, &got, &err), CG_ERR_FORMAT);
    snprintf(want, sizeof want, "memories id=%lld column kind", (long long)m);
    assert_non_null(strstr(err.msg, want));
    // Wrong type (SQLite stores what it is given) / out-of-range number (PostgreSQL is typed).
    m = add_mem(s, u, "third", 0.5);
    snprintf(sql, sizeof sql, b->is_pg ? "UPDATE memories SET importance = 7 WHERE id = %lld"
                                       : "UPDATE memories SET importance = 'high' WHERE id = %lld",
             (long long)m);
    CG_ASSERT_OK(cg_store_exec_raw(s, sql, &err), &err);
    assert_int_equal(cg_store_memory_get(s, u, m, &got, &err), CG_ERR_FORMAT);
    printf("%s: %s\n", b->name, err.msg);
    snprintf(want, sizeof want, "memories id=%lld column importance", (long long)m);
    assert_non_null(strstr(err.msg, want));
    if (!b->is_pg) {  // NULL where required (SQLite lets a raw ALTER-free write do it via 0-length)
        m = add_mem(s, u, "fourth", 0.5);
        snprintf(sql, sizeof sql, "UPDATE memories SET created_ms = 'yesterday' WHERE id = %lld",
                 (long long)m);
        CG_ASSERT_OK(cg_store_exec_raw(s, sql, &err), &err);
        assert_int_equal(cg_store_memory_get(s, u, m, &got, &err), CG_ERR_FORMAT);
        assert_non_null(strstr(err.msg, "column created_ms: expected integer, found text"));
    }
    cg_store_close(s);
    free(url);
}

static char *write_key_file(const char *hex) {
    return cg_test_tmpfile(hex, strlen(hex));
}

static void test_encryption(void **state) {
    backend *b = *state;
    FRESH(b, url);
    char *kf = write_key_file("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    char *kf2 = write_key_file("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    cg_store_opts o = {.master_key_path = kf};
    cg_store *s = open_ok(url, &o);
    cg_err err = {0};
    int64_t u = new_user(s, "u");
    int64_t m = add_mem(s, u, "비밀번호는 sesame 입니다", 0.5);
    int64_t conv = 0, msg = 0;
    CG_ASSERT_OK(cg_store_conv_add(s, u, NULL, false, &conv, &err), &err);
    CG_ASSERT_OK(cg_store_msg_add(s, u, conv, "user", "my sesame secret", 3, &msg, &err), &err);
    // The ciphertext does not contain the plaintext; the search index still works.
    const char *probe = b->is_pg
        ? "SELECT count(*) FROM memories WHERE position(convert_to('sesame','UTF8') in body) > 0"
        : "SELECT count(*) FROM memories WHERE instr(body, CAST('sesame' AS BLOB)) > 0";
    assert_int_equal(qint(s, probe), 0);
    probe = b->is_pg
        ? "SELECT count(*) FROM messages WHERE position(convert_to('sesame','UTF8') in body) > 0"
        : "SELECT count(*) FROM messages WHERE instr(body, CAST('sesame' AS BLOB)) > 0";
    assert_int_equal(qint(s, probe), 0);
    assert_int_equal(qint(s, "SELECT count(*) FROM memories WHERE enc = 1"), 1);
    int64_t ids[4];
    assert_int_equal(search_ids(s, u, "비밀번호", false, ids, 4), 1);
    assert_int_equal(search_ids(s, u, "SESAME", false, ids, 4), 1);
    cg_memory got = {0};
    CG_ASSERT_OK(cg_store_memory_get(s, u, m, &got, &err), &err);
    assert_string_equal(got.text, "비밀번호는 sesame 입니다");
    cg_memory_clear(&got);
    cg_store_close(s);
    // Wrong key: an error naming the row, never garbage.
    o.master_key_path = kf2;
    s = open_ok(url, &o);
    assert_int_equal(cg_store_memory_get(s, u, m, &got, &err), CG_ERR_FORMAT);
    printf("%s: %s\n", b->name, err.msg);
    char want[64];
    snprintf(want, sizeof want, "memories id=%lld column body: decryption failed", (long long)m);
    assert_non_null(strstr(err.msg, want));
    cg_message *msgs = NULL;
    size_t n = 0;
    assert_int_equal(cg_store_msg_list(s, u, conv, &msgs, &n, &err), CG_ERR_FORMAT);
    cg_message_list_free(msgs, n);
    cg_store_close(s);
    // No key at all.
    s = open_ok(url, NULL);
    assert_int_equal(cg_store_memory_get(s, u, m, &got, &err), CG_ERR_STATE);
    assert_non_null(strstr(err.msg, "no master key"));
    // Tampered ciphertext.
    char sql[256];
    snprintf(sql, sizeof sql,
             b->is_pg ? "UPDATE memories SET body = set_byte(body, 30, get_byte(body, 30) # 1) WHERE id = %lld"
                      : "UPDATE memories SET body = CAST(substr(body, 1, 30) || "
                        "CASE WHEN substr(body, 31, 1) = X'00' THEN X'01' ELSE X'00' END || substr(body, 32) AS BLOB) "
                        "WHERE id = %lld",
             (long long)m);
    CG_ASSERT_OK(cg_store_exec_raw(s, sql, &err), &err);
    cg_store_close(s);
    o.master_key_path = kf;
    s = open_ok(url, &o);
    assert_int_equal(cg_store_memory_get(s, u, m, &got, &err), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, want));
    CG_ASSERT_OK(cg_store_msg_list(s, u, conv, &msgs, &n, &err), &err);  // untouched row fine
    assert_string_equal(msgs[0].text, "my sesame secret");
    cg_message_list_free(msgs, n);
    // A bad key file.
    char *kf3 = write_key_file("short");
    o.master_key_path = kf3;
    cg_store *s3 = NULL;
    assert_int_equal(cg_store_open(url, &o, &s3, &err), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "5 bytes"));
    cg_store_close(s);
    unlink(kf);
    unlink(kf2);
    unlink(kf3);
    free(kf);
    free(kf2);
    free(kf3);
    free(url);
}

static void test_read_only(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    cg_err err = {0};
    int64_t u = new_user(s, "u");
    add_mem(s, u, "kept", 0.5);
    cg_store_close(s);
    cg_store_opts ro = {.read_only = true};
    s = open_ok(url, &ro);
    cg_mem_new m = {.text = "lost?"};
    int64_t id = 0;
    assert_int_equal(cg_store_memory_add(s, u, &m, &id, &err), CG_ERR_IO);
    printf("%s: %s\n", b->name, err.msg);
    assert_int_equal(cg_store_memory_forget_all(s, u, NULL, &err), CG_ERR_IO);
    cg_memory *list = NULL;
    size_t n = 0;
    CG_ASSERT_OK(cg_store_memory_list(s, u, false, &list, &n, &err), &err);
    assert_int_equal(n, 1);
    cg_memory_list_free(list, n);
    cg_store_close(s);
    s = open_ok(url, NULL);
    CG_ASSERT_OK(cg_store_memory_list(s, u, false, &list, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].text, "kept");
    cg_memory_list_free(list, n);
    cg_store_close(s);
    free(url);
}

// A full disk: SQLite's max_page_count caps the file at its current size, so the next write
// fails the way ENOSPC does. The write is an error, the transaction rolls back, nothing is lost,
// and the store keeps working once there is room again.
static void test_disk_full(void **state) {
    backend *b = *state;
    if (b->is_pg) {  // no portable way to fill a PostgreSQL tablespace from a test
        skip();
        return;
    }
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    cg_err err = {0};
    int64_t u = new_user(s, "u");
    for (int i = 0; i < 20; i++) add_mem(s, u, "a small memory before the disk fills", 0.5);
    int64_t pages = qint(s, "PRAGMA page_count");
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)pages);
    CG_ASSERT_OK(cg_store_exec_raw(s, sql, &err), &err);
    char *big = malloc(60001);
    assert_non_null(big);
    const char *unit = "가나다라 abc ";
    size_t ul = strlen(unit), len = 0;
    while (len + ul <= 60000) {
        memcpy(big + len, unit, ul);
        len += ul;
    }
    big[len] = '\0';
    cg_mem_new m = {.text = "x"};
    m.text = big;
    int64_t id = 0;
    int fails = 0;
    for (int i = 0; i < 5; i++)
        if (cg_store_memory_add(s, u, &m, &id, &err) == CG_ERR_IO) fails++;
    printf("sqlite: disk full: %d of 5 large writes refused: %s\n", fails, err.msg);
    assert_true(fails >= 1);
    assert_non_null(strstr(err.msg, "full"));
    cg_memory *list = NULL;
    size_t n = 0;
    CG_ASSERT_OK(cg_store_memory_list(s, u, false, &list, &n, &err), &err);
    assert_int_equal(n, (size_t)(20 + 5 - fails));
    cg_memory_list_free(list, n);
    CG_ASSERT_OK(cg_store_exec_raw(s, "PRAGMA max_page_count = 1073741823", &err), &err);
    CG_ASSERT_OK(cg_store_memory_add(s, u, &m, &id, &err), &err);
    cg_store_close(s);
    free(big);
    free(url);
}

static void test_open_errors(void **state) {
    backend *b = *state;
    cg_err err = {0};
    cg_store *s = NULL;
    if (b->is_pg) {
        if (!b->pg_base) { skip(); return; }
        assert_int_equal(cg_store_open("host=/nonexistent port=1 dbname=x", NULL, &s, &err), CG_ERR_IO);
        assert_non_null(strstr(err.msg, "postgres: cannot connect"));
    } else {
        assert_int_equal(cg_store_open("/nonexistent/dir/x.db", NULL, &s, &err), CG_ERR_IO);
        assert_non_null(strstr(err.msg, "/nonexistent/dir/x.db"));
        char *junk = cg_test_tmpfile("this is not a database, just text......................"
                                     "..........................................................",
                                     110);
        assert_int_equal(cg_store_open(junk, NULL, &s, &err), CG_ERR_IO);
        unlink(junk);
        free(junk);
    }
    assert_int_equal(cg_store_open("", NULL, &s, &err), CG_ERR_INVALID);
}

// Crash safety: a child process writes memories and reports each acknowledged id through a pipe;
// the parent SIGKILLs it after a random delay, several times, 1,000 writes in all. After every
// kill the store must reopen, hold every acknowledged write, and (SQLite) pass integrity_check.
static void test_crash_kill(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_store *s = open_ok(url, NULL);
    int64_t u = new_user(s, "crash");
    cg_store_close(s);
    enum { TOTAL = 1000 };
    int64_t *acked = calloc(TOTAL, sizeof *acked);
    assert_non_null(acked);
    size_t n_acked = 0;
    int rounds = 0, kills = 0;
    unsigned seed = 12345;
    // Each round writes until killed (or until TOTAL writes are acknowledged in all).
    unsigned delay_max_us = 150000;
    while (n_acked < TOTAL && rounds < 2000) {
        int per_round = (int)(TOTAL - n_acked), attempted = (int)n_acked;
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            cg_store *cs = NULL;
            cg_err cerr = {0};
            if (cg_store_open(url, NULL, &cs, &cerr)) _exit(3);
            for (int i = 0; i < per_round; i++) {
                char text[96];
                snprintf(text, sizeof text, "기록 %d-%d write number %d", rounds, i, attempted + i);
                cg_mem_new m = {.text = text, .importance = 0.5};
                int64_t id = 0;
                if (cg_store_memory_add(cs, u, &m, &id, &cerr)) _exit(4);
                if (write(fds[1], &id, sizeof id) != (ssize_t)sizeof id) _exit(5);
            }
            cg_store_close(cs);
            _exit(0);
        }
        close(fds[1]);
        seed = seed * 1103515245u + 12345u;
        useconds_t delay = 10000 + (seed >> 8) % delay_max_us;  // 10 ms .. 10 ms + max
        usleep(delay);
        if (kill(pid, SIGKILL) == 0) kills++;
        int wst = 0;
        waitpid(pid, &wst, 0);
        if (WIFEXITED(wst) && WEXITSTATUS(wst) != 0)
            fail_msg("writer exited with %d", WEXITSTATUS(wst));
        int64_t id;
        size_t first_new = n_acked;
        while (read(fds[0], &id, sizeof id) == (ssize_t)sizeof id && n_acked < TOTAL)
            acked[n_acked++] = id;
        close(fds[0]);
        // On a slow (loaded, sanitized) machine give the writer more time per round.
        if (n_acked - first_new < 5 && delay_max_us < 2000000) delay_max_us *= 2;
        rounds++;
        // Reopen after every kill: recovery must work each time and keep this round's writes
        // (all rounds' writes are checked again at the end).
        s = open_ok(url, NULL);
        cg_err err = {0};
        for (size_t i = first_new; i < n_acked; i++) {
            cg_memory m = {0};
            CG_ASSERT_OK(cg_store_memory_get(s, u, acked[i], &m, &err), &err);
            cg_memory_clear(&m);
        }
        cg_store_close(s);
    }
    if (!b->is_pg) {
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;
        assert_int_equal(sqlite3_open(url, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    s = open_ok(url, NULL);
    cg_err err = {0};
    for (size_t i = 0; i < n_acked; i++) {
        cg_memory m = {0};
        CG_ASSERT_OK(cg_store_memory_get(s, u, acked[i], &m, &err), &err);
        cg_memory_clear(&m);
    }
    int64_t ids[4];
    size_t hits = search_ids(s, u, "기록", false, ids, 4);
    assert_true(n_acked == 0 || hits > 0);  // the text index survived too
    int64_t rows = qint(s, "SELECT count(*) FROM memories");
    assert_int_equal(n_acked, TOTAL);
    printf("%s: %d rounds, %d kills, %zu acknowledged writes, %lld rows present, all acknowledged "
           "found%s\n", b->name, rounds, kills, n_acked, (long long)rows,
           b->is_pg ? "" : ", integrity_check ok");
    assert_true(rows >= (int64_t)n_acked);
    cg_store_close(s);
    free(acked);
    free(url);
}

#define STORE_TESTS(B)                                                                       \
    cmocka_unit_test_prestate(test_users_keys, &B),                                          \
        cmocka_unit_test_prestate(test_korean_search, &B),                                   \
        cmocka_unit_test_prestate(test_candidate_cut, &B),                                   \
        cmocka_unit_test_prestate(test_bitemporal, &B),                                      \
        cmocka_unit_test_prestate(test_ranking, &B),                                         \
        cmocka_unit_test_prestate(test_controls, &B),                                        \
        cmocka_unit_test_prestate(test_export, &B),                                          \
        cmocka_unit_test_prestate(test_isolation, &B),                                          \
        cmocka_unit_test_prestate(test_delete_user, &B),                                     \
        cmocka_unit_test_prestate(test_migration, &B),                                       \
        cmocka_unit_test_prestate(test_migration_v3, &B),                                    \
        cmocka_unit_test_prestate(test_broken_rows, &B),                                     \
        cmocka_unit_test_prestate(test_encryption, &B),                                      \
        cmocka_unit_test_prestate(test_read_only, &B),                                       \
        cmocka_unit_test_prestate(test_open_errors, &B),                                     \
        cmocka_unit_test_prestate(test_crash_kill, &B),                                      \
        cmocka_unit_test_prestate(test_disk_full, &B)

int main(void) {
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_vec),
        cmocka_unit_test(test_default_dir),
    };
    const struct CMUnitTest sq[] = {STORE_TESTS(SQ)};
    const struct CMUnitTest pg[] = {STORE_TESTS(PG)};
    return run_backends("mem", common, CG_N(common), sq, pg, CG_N(sq));
}
