// test_mem_layout.c — schema v6 (the physical order of a user's rows) on both backends.
//
// v6 records, on PostgreSQL, the clustering index of memories, mem_vpack and mem_terms (the
// user's range of each), so a plain CLUSTER rewrites those tables user by user; on SQLite it
// is a no-op. Checked here: a v4 database with interleaved users migrates to v6 and every
// search returns the same ids with bit-identical scores; on PostgreSQL the three marks exist,
// the rows are interleaved before CLUSTER (one user change per row, measured by ctid) and in
// two runs after it, searches are still the same and still equal the blob-scan reference, and
// writes work afterwards.
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem/vec.h"
#include "mem_backends.h"

static const char *const WORDS[] = {"coffee", "tea", "Seoul", "Busan", "sister", "piano", "yoga",
                                    "서울에", "커피를", "친구와", "회사", "여행을", "budget", "flight"};
enum { N_WORDS = sizeof WORDS / sizeof *WORDS, N_MEM = 360, N_Q = 6 };

static void text_of(char *out, size_t cap, long i) {
    // Deterministic: words picked by a small LCG of i, plus i itself.
    unsigned x = (unsigned)i * 2654435761u + 12345u;
    size_t len = 0;
    for (int w = 0; w < 3; w++) {
        x = x * 1103515245u + 12345u;
        len += (size_t)snprintf(out + len, cap - len, "%s ", WORDS[(x >> 16) % N_WORDS]);
    }
    snprintf(out + len, cap - len, "(%ld)", i);
}

static const char *const QUERIES[N_Q] = {"coffee", "서울 coffee", "커피", "sister piano",
                                         "flight budget 여행", "yoga"};

typedef struct result { size_t n; int64_t id[10]; double score[10]; } result;

static result search(cg_store *s, int64_t user, const char *q, bool scan) {
    cg_err err = {0};
    cg_memory *r = NULL;
    size_t n = 0;
    cg_search_opts o = {.k = 10, .now_ms = 1800000000000, .vec_scan = scan};
    CG_ASSERT_OK(cg_store_memory_search(s, user, q, &o, &r, &n, &err), &err);
    result out = {.n = n};
    assert_true(n <= 10);
    for (size_t i = 0; i < n; i++) {
        out.id[i] = r[i].id;
        out.score[i] = r[i].score;
    }
    cg_memory_list_free(r, n);
    return out;
}

static void same(const result *a, const result *b, const char *what, const char *q) {
    if (a->n != b->n) fail_msg("%s, query '%s': %zu results, want %zu", what, q, a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        if (a->id[i] != b->id[i] || !(a->score[i] == b->score[i]))
            fail_msg("%s, query '%s', rank %zu: id %lld score %.17g, want id %lld score %.17g", what,
                     q, i, (long long)a->id[i], a->score[i], (long long)b->id[i], b->score[i]);
}

// Number of places where the user changes between physically adjacent memories rows.
static int64_t user_runs(cg_store *s) {
    return qint(s, "SELECT count(*) FROM (SELECT user_id, lag(user_id) OVER (ORDER BY ctid) AS prev"
                   " FROM memories) x WHERE user_id <> prev");
}

static void pg_run(const char *url, const char *sql) {
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) fail_msg("postgres: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("postgres: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void test_migration_v6(void **state) {
    backend *b = *state;
    FRESH(b, url);
    cg_err err = {0};
    cg_store_opts o4 = {.embed = cg_vec_embed_hashed, .n_embd = 32, .target_version = 4,
                        .relaxed_durability = true};
    cg_store *s = open_ok(url, &o4);
    assert_int_equal(cg_store_schema_version(s), 4);
    int64_t u[2] = {new_user(s, "a"), new_user(s, "b")};
    int64_t prev[2] = {0, 0};
    for (long i = 0; i < N_MEM; i++) {  // users interleaved, as real traffic writes them
        char text[128];
        text_of(text, sizeof text, i);
        int w = (int)(i % 2);
        cg_mem_new m = {.text = text, .importance = (double)(i % 10) / 10.0,
                        .created_ms = 1700000000000 + i * 60000,
                        .supersedes = i % 9 == 0 ? prev[w] : 0};
        CG_ASSERT_OK(cg_store_memory_add(s, u[w], &m, &prev[w], &err), &err);
    }
    result before[2][N_Q];
    size_t n_hits = 0;
    for (int w = 0; w < 2; w++)
        for (int q = 0; q < N_Q; q++) {
            before[w][q] = search(s, u[w], QUERIES[q], false);
            n_hits += before[w][q].n;
        }
    assert_true(n_hits >= 2 * N_Q * 5);  // the queries find things (else the comparison is empty)
    int64_t runs_before = b->is_pg ? user_runs(s) : 0;
    cg_store_close(s);

    cg_store_opts o5 = {.embed = cg_vec_embed_hashed, .n_embd = 32, .relaxed_durability = true};
    s = open_ok(url, &o5);  // migrates 4 -> 5
    assert_int_equal(cg_store_schema_version(s), CG_STORE_SCHEMA_VERSION);
    assert_true(CG_STORE_SCHEMA_VERSION >= 6);
    for (int w = 0; w < 2; w++)
        for (int q = 0; q < N_Q; q++) {
            result now = search(s, u[w], QUERIES[q], false);
            same(&now, &before[w][q], "after migrating to v6", QUERIES[q]);
        }
    if (b->is_pg) {
        assert_int_equal(qint(s, "SELECT count(*) FROM pg_index WHERE indisclustered AND indexrelid IN"
                                 " ('memories_user_id'::regclass, 'mem_vpack_pkey'::regclass,"
                                 " 'mem_terms_pkey'::regclass)"),
                         3);
        // Interleaved inserts: nearly every physical neighbour belongs to the other user.
        assert_true(runs_before > N_MEM / 2);
        pg_run(url, "CLUSTER");  // every marked table, in its mark's order
        int64_t runs_after = user_runs(s);
        assert_int_equal(runs_after, 1);
        printf("postgres: %d memories of 2 users: %lld user changes between neighbouring rows"
               " before CLUSTER, %lld after; %zu search results unchanged\n",
               N_MEM, (long long)runs_before, (long long)runs_after, n_hits);
        for (int w = 0; w < 2; w++)
            for (int q = 0; q < N_Q; q++) {
                result now = search(s, u[w], QUERIES[q], false);
                same(&now, &before[w][q], "after CLUSTER", QUERIES[q]);
                result ref = search(s, u[w], QUERIES[q], true);
                same(&now, &ref, "after CLUSTER, packed vs blob scan", QUERIES[q]);
            }
    }
    // Writes after the upgrade (and the rewrite) land in search and in the pages.
    int64_t id = 0;
    cg_mem_new m = {.text = "zebra crossing near the 도서관", .importance = 0.5};
    CG_ASSERT_OK(cg_store_memory_add(s, u[0], &m, &id, &err), &err);
    result r = search(s, u[0], "zebra 도서관", false);
    assert_true(r.n >= 1);
    assert_int_equal(r.id[0], id);
    result ref = search(s, u[0], "zebra 도서관", true);
    same(&r, &ref, "after an add, packed vs blob scan", "zebra 도서관");
    cg_store_close(s);
    free(url);
}

int main(void) {
    const struct CMUnitTest sq[] = {cmocka_unit_test_prestate(test_migration_v6, &SQ)};
    const struct CMUnitTest pg[] = {cmocka_unit_test_prestate(test_migration_v6, &PG)};
    return run_backends("mem_layout", NULL, 0, sq, pg, CG_N(sq));
}
