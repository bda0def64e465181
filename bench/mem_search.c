// mem_search.c — search latency of the memory store (src/mem) with many memories per user.
//
// Fills a store with N synthetic memories per user (Korean/English sentences built from fixed
// word lists by a fixed-seed generator), then runs Q searches of one or two words against one
// user and prints p50/p95/p99 latency. Prints figures only, never pass/fail.
//
//   mem_search [--db PATH|URL] [--n N] [--users U] [--queries Q] [--embd D] [--reuse] [--optimize]
//              [--ab] [--cache-mb M] [--breakdown] [--mixed]
//
// The first search after opening the store is reported on its own (it fills the vector page
// cache, cg_store_opts.vec_cache_bytes; --cache-mb M sets its size, -1 disables it), then the
// steady-state distribution. --breakdown also times the vector half alone
// (cg_store_vec_ranked) and the text half alone (a second store on the same database without
// an embedder), and prints the cache counters (candidates re-ranked per search). --mixed runs
// the queries again with one write between searches (an add, every 4th a supersede, every 8th
// a delete) through a second store handle on the same database (what the CLI does while the
// server runs): each search then revalidates the cache and re-reads the changed pages.
//
// --embd D > 0 stores the hashed-token stand-in embedding (vec.h) of dimension D, so the
// vector stage is measured too. --ab runs every query twice, back to back in alternating order:
// with the packed vector pages (schema v4) and with the scan of every embedding blob
// (cg_search_opts.vec_scan), prints both latency distributions (wall and CPU time of this
// process) and checks that both return the same ids in the same order.
// Not built by CMake's default targets; build it against libchingu, e.g.:
//   cc -O2 -Iinclude -Isrc -D_DEFAULT_SOURCE bench/mem_search.c build/release/libchingu.a \
//      $(pkg-config --libs sqlite3 libpq libsodium libutf8proc) -lpthread -lm -o mem_search
#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "base/time.h"
#include "mem/store.h"
#include "mem/vec.h"

static const char *const KO[] = {"서울", "부산", "커피", "김치", "회사", "친구", "가족", "여행",
                                 "운동", "음악", "영화", "고양이", "강아지", "학교", "병원",
                                 "생일", "주말", "아침", "저녁", "공원", "바다", "도서관",
                                 "회의", "프로젝트"};
static const char *const KO_TAIL[] = {"에", "를", "은", "이", "에서", "으로", "와", "도", ""};
static const char *const EN[] = {"meeting", "coffee", "dentist", "birthday", "running", "guitar",
                                 "python", "garden", "sister", "brother", "project", "deadline",
                                 "travel", "Tokyo", "Jeju", "kimchi", "movie", "book", "piano",
                                 "yoga", "budget", "report", "flight", "hotel"};
static const char *const VERBS[] = {"좋아해요", "갔어요", "있어요", "싫어해요", "예약했어요",
                                    "likes", "planned", "remembers", "booked", "visited"};

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
#define PICK(a) a[next_rand() % (sizeof a / sizeof *a)]

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void report(const char *what, double *v, long n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    printf("%s: p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n", what, v[n / 2], v[n * 95 / 100],
           v[n * 99 / 100], v[n - 1]);
}

int main(int argc, char **argv) {
    const char *db = "/tmp/chingu_bench_mem.db";
    long n = 100000, users = 1, queries = 300;
    int embd = 0;
    bool reuse = false, optimize = false, ab = false, breakdown = false, mixed = false;
    long cache_mb = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--users") && i + 1 < argc) users = atol(argv[++i]);
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc) queries = atol(argv[++i]);
        else if (!strcmp(argv[i], "--embd") && i + 1 < argc) embd = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reuse")) reuse = true;
        else if (!strcmp(argv[i], "--optimize")) optimize = true;
        else if (!strcmp(argv[i], "--ab")) ab = true;
        else if (!strcmp(argv[i], "--breakdown")) breakdown = true;
        else if (!strcmp(argv[i], "--mixed")) mixed = true;
        else if (!strcmp(argv[i], "--cache-mb") && i + 1 < argc) cache_mb = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: mem_search [--db PATH|URL] [--n N] [--users U] [--queries Q] "
                            "[--embd D] [--reuse] [--optimize] [--ab] [--cache-mb M] [--breakdown] "
                            "[--mixed]\n");
            return 2;
        }
    }
    cg_err err = {0};
    cg_store *s = NULL;
    cg_store_opts o = {.relaxed_durability = true,
                       .vec_cache_bytes = cache_mb < 0 ? -1 : (int64_t)cache_mb << 20};
    if (embd > 0) {
        o.embed = cg_vec_embed_hashed;
        o.n_embd = embd;
    }
    if (cg_store_open(db, &o, &s, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    int64_t target = 0;
    uint64_t t0 = cg_time_ns();
    for (long u = 0; u < users; u++) {
        char name[32];
        snprintf(name, sizeof name, "bench%ld", u);
        int64_t uid = 0;
        if (reuse && cg_store_user_find(s, name, &uid, &err) == CG_OK) {
            if (u == 0) target = uid;
            continue;
        }
        if (cg_store_user_add(s, name, &uid, &err)) {
            fprintf(stderr, "user: %s\n", err.msg);
            return 1;
        }
        if (u == 0) target = uid;
        for (long i = 0; i < n; i++) {
            char text[256];
            snprintf(text, sizeof text, "%s%s %s %s%s %s (%ld)", PICK(KO), PICK(KO_TAIL), PICK(EN),
                     PICK(KO), PICK(KO_TAIL), PICK(VERBS), i);
            cg_mem_new m = {.text = text, .importance = (double)(next_rand() % 100) / 100.0,
                            .created_ms = 1700000000000 + i * 1000};
            if (cg_store_memory_add(s, uid, &m, NULL, &err)) {
                fprintf(stderr, "add: %s\n", err.msg);
                return 1;
            }
        }
    }
    double fill_s = (double)(cg_time_ns() - t0) / 1e9;
    if (optimize && strcmp(cg_store_backend(s), "sqlite") == 0) {
        // Merge the FTS5 index into one segment (what a periodic maintenance task would do).
        uint64_t t1 = cg_time_ns();
        if (cg_store_exec_raw(s, "INSERT INTO mem_fts(mem_fts) VALUES ('optimize')", &err)) {
            fprintf(stderr, "optimize: %s\n", err.msg);
            return 1;
        }
        printf("fts optimize: %.1f s\n", (double)(cg_time_ns() - t1) / 1e9);
    }
    {
        // The first search after open: reads (and caches) every vector page of the user.
        cg_search_opts so = {.k = 10, .now_ms = 1800000000000};
        cg_memory *r = NULL;
        size_t nr = 0;
        uint64_t a = cg_time_ns();
        double c0 = cpu_ms();
        if (cg_store_memory_search(s, target, "커피 coffee", &so, &r, &nr, &err)) {
            fprintf(stderr, "search: %s\n", err.msg);
            return 1;
        }
        printf("first search after open: wall %.2f ms, cpu %.2f ms\n",
               (double)(cg_time_ns() - a) / 1e6, cpu_ms() - c0);
        cg_memory_list_free(r, nr);
    }
    cg_vec_cache_stats cs0;
    cg_store_vec_cache_stats(s, &cs0);
    double *lat = calloc((size_t)queries, sizeof *lat);
    double *cpu[2] = {calloc((size_t)queries, sizeof(double)), calloc((size_t)queries, sizeof(double))};
    double *wall_b = calloc((size_t)queries, sizeof(double));
    long n_differ = 0;
    size_t total_hits = 0;
    for (long q = 0; q < queries; q++) {
        char query[128];
        if (q % 3 == 0) snprintf(query, sizeof query, "%s", PICK(KO));
        else if (q % 3 == 1) snprintf(query, sizeof query, "%s %s", PICK(EN), PICK(KO));
        else snprintf(query, sizeof query, "%s", PICK(EN));
        cg_memory *r[2] = {NULL, NULL};
        size_t nr[2] = {0, 0};
        for (int pass = 0; pass < (ab ? 2 : 1); pass++) {
            int mode = ab ? (pass ^ (int)(q & 1)) : 0;  // 0 packed, 1 blob scan; alternating
            cg_search_opts so = {.k = 10, .now_ms = 1800000000000, .vec_scan = mode == 1};
            uint64_t a = cg_time_ns();
            double c0 = cpu_ms();
            if (cg_store_memory_search(s, target, query, &so, &r[mode], &nr[mode], &err)) {
                fprintf(stderr, "search: %s\n", err.msg);
                return 1;
            }
            cpu[mode][q] = cpu_ms() - c0;
            (mode ? wall_b : lat)[q] = (double)(cg_time_ns() - a) / 1e6;
        }
        total_hits += nr[0];
        if (ab) {
            bool same = nr[0] == nr[1];
            for (size_t k = 0; same && k < nr[0]; k++) same = r[0][k].id == r[1][k].id;
            n_differ += !same;
        }
        cg_memory_list_free(r[0], nr[0]);
        cg_memory_list_free(r[1], nr[1]);
    }
    printf("backend %s, %ld user(s) x %ld memories (fill %.1f s), embd %d (%s), %ld queries, "
           "k=10, %.1f results/query\n", cg_store_backend(s), users, n, fill_s, embd,
           cg_vec_simd() ? "avx2" : "scalar", queries, (double)total_hits / (double)queries);
    report(ab ? "packed     wall ms" : "search latency ms", lat, queries);
    report(ab ? "packed     cpu ms " : "search cpu ms    ", cpu[0], queries);
    if (ab) {
        report("blob scan  wall ms", wall_b, queries);
        report("blob scan  cpu ms ", cpu[1], queries);
        printf("packed vs blob scan: %ld of %ld searches return different ids\n", n_differ,
               queries);
    }
    cg_vec_cache_stats cs;
    cg_store_vec_cache_stats(s, &cs);
    printf("vector cache: limit %.0f MiB, holds %.1f MiB (%zu user(s)); over the %ld searches: "
           "%llu validated hits, %llu loads (%llu pages read), %llu direct; per search %.0f of %ld "
           "entries past the int8 pass, %.1f candidates re-ranked from blobs\n", (double)cs.limit / 1048576.0, (double)cs.bytes / 1048576.0,
           cs.users, queries, (unsigned long long)(cs.hits - cs0.hits),
           (unsigned long long)(cs.loads - cs0.loads),
           (unsigned long long)(cs.pages_read - cs0.pages_read),
           (unsigned long long)(cs.bypass - cs0.bypass),
           (double)(cs.rescored - cs0.rescored) / (double)(queries * (ab ? 2 : 1)), n,
           (double)(cs.reranked - cs0.reranked) / (double)(queries * (ab ? 2 : 1)));
    if (breakdown && embd > 0) {
        // The vector half alone (embedding, packed stage, re-rank), then the text half alone
        // (FTS, ranking reads, fetching the k rows) on a second store without an embedder.
        cg_store_opts to = {.relaxed_durability = true};
        cg_store *t = NULL;
        if (cg_store_open(db, &to, &t, &err)) {
            fprintf(stderr, "open: %s\n", err.msg);
            return 1;
        }
        rng = 12345;
        for (long q = 0; q < queries; q++) {
            char query[128];
            if (q % 3 == 0) snprintf(query, sizeof query, "%s", PICK(KO));
            else if (q % 3 == 1) snprintf(query, sizeof query, "%s %s", PICK(EN), PICK(KO));
            else snprintf(query, sizeof query, "%s", PICK(EN));
            cg_search_opts so = {.k = 10, .now_ms = 1800000000000};
            int64_t *ids = NULL;
            float *cos = NULL;
            size_t nv = 0;
            double c0 = cpu_ms();
            if (cg_store_vec_ranked(s, target, query, &so, &ids, &cos, &nv, &err)) {
                fprintf(stderr, "vec: %s\n", err.msg);
                return 1;
            }
            cpu[0][q] = cpu_ms() - c0;
            free(ids);
            free(cos);
            cg_memory *r = NULL;
            size_t nr = 0;
            c0 = cpu_ms();
            if (cg_store_memory_search(t, target, query, &so, &r, &nr, &err)) {
                fprintf(stderr, "search: %s\n", err.msg);
                return 1;
            }
            cpu[1][q] = cpu_ms() - c0;
            cg_memory_list_free(r, nr);
        }
        report("vector half alone cpu ms", cpu[0], queries);
        report("text half alone   cpu ms", cpu[1], queries);
        cg_store_close(t);
    }
    if (mixed && embd > 0) {
        // One write through another handle between searches: validation sees it every time.
        cg_store *w = NULL;
        if (cg_store_open(db, &o, &w, &err)) {
            fprintf(stderr, "open: %s\n", err.msg);
            return 1;
        }
        cg_vec_cache_stats m0;
        cg_store_vec_cache_stats(s, &m0);
        int64_t last = 0;
        double *wcpu = calloc((size_t)queries, sizeof(double));
        for (long q = 0; q < queries; q++) {
            char text[256];
            snprintf(text, sizeof text, "%s%s %s %s (mixed %ld)", PICK(KO), PICK(KO_TAIL),
                     PICK(EN), PICK(VERBS), q);
            cg_mem_new m = {.text = text, .importance = 0.5, .created_ms = 1790000000000 + q,
                            .supersedes = (q % 4 == 3) ? last : 0};
            double w0 = cpu_ms();
            if (q % 8 == 7) {
                if (cg_store_memory_delete(w, target, last, &err)) {
                    fprintf(stderr, "delete: %s\n", err.msg);
                    return 1;
                }
            } else if (cg_store_memory_add(w, target, &m, &last, &err)) {
                fprintf(stderr, "add: %s\n", err.msg);
                return 1;
            }
            wcpu[q] = cpu_ms() - w0;
            char query[128];
            if (q % 2) snprintf(query, sizeof query, "%s", PICK(KO));
            else snprintf(query, sizeof query, "%s %s", PICK(EN), PICK(KO));
            cg_search_opts so = {.k = 10, .now_ms = 1800000000000};
            cg_memory *r = NULL;
            size_t nr = 0;
            uint64_t a = cg_time_ns();
            double c0 = cpu_ms();
            if (cg_store_memory_search(s, target, query, &so, &r, &nr, &err)) {
                fprintf(stderr, "search: %s\n", err.msg);
                return 1;
            }
            cpu[0][q] = cpu_ms() - c0;
            lat[q] = (double)(cg_time_ns() - a) / 1e6;
            cg_memory_list_free(r, nr);
        }
        cg_vec_cache_stats m1;
        cg_store_vec_cache_stats(s, &m1);
        printf("mixed: one write (another handle) before each of %ld searches: %llu loads, %llu "
               "pages read, %llu hits\n", queries, (unsigned long long)(m1.loads - m0.loads),
               (unsigned long long)(m1.pages_read - m0.pages_read),
               (unsigned long long)(m1.hits - m0.hits));
        report("mixed search wall ms", lat, queries);
        report("mixed search cpu ms ", cpu[0], queries);
        report("mixed write  cpu ms ", wcpu, queries);
        free(wcpu);
        cg_store_close(w);
    }
    free(lat);
    free(wall_b);
    free(cpu[0]);
    free(cpu[1]);
    cg_store_close(s);
    return 0;
}
