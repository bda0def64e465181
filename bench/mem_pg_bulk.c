// mem_pg_bulk.c — PostgreSQL search latency with many users: bulk-loads N memories over U users
// with COPY, then measures cg_store_memory_search for random users. Prints figures, never pass/fail.
//
//   mem_pg_bulk --db CONNINFO [--users U] [--per-user N] [--queries Q] [--reuse] [--seed S]
//               [--embd D] [--vec-scan] [--interleaved] [--compare CONNINFO2]
//
// --embd D: hybrid search with the hashed-token stand-in embedding (vec.h) of dimension D: the
// load also writes every memory's float32 blob (memories.embedding, vpage) and the packed pages
// (mem_vpack, schema v4: page p of a user holds its memories p*cap .. p*cap+cap-1, the layout
// memory_add produces), built with the store's own encoder (st_vp_page). --vec-scan makes the
// searches read every blob instead of the pages (the A/B reference, cg_search_opts.vec_scan).
//
// --text-only opens the store without the embedder (BM25 only, as with --embd 0, on a database
// loaded with vectors); --vec-only times cg_store_vec_ranked, the vector list alone (pages,
// bound, blob re-rank; no text side, no result rows).
//
// --seed picks the query sequence (users and words); a new seed after a server restart gives a
// cold run that does not repeat the users an earlier run already brought into the caches.
//
// The store creates the schema (cg_store_open); the rows are then written with libpq COPY,
// bypassing the store's per-row path (which costs a transaction and several statements per
// memory): memories (ids interleave the users, as real traffic would), mem_terms (with each
// memory's term count, schema v3) and mem_doclen from the same tokenizer the store uses
// (fts_cjk.c), the packed pages, then mem_df and mem_stats as aggregates — exactly what
// memory_add maintains row by row. One pass generates every row once and streams the four
// tables over four connections. Rows are written user by user, the physical order schema v6's
// `CLUSTER` gives a grown database (--interleaved: in id order, the order the store's own
// writes leave without CLUSTER). Secondary indexes are dropped before the load and rebuilt
// after, foreign-key triggers are skipped during COPY (session_replication_role = replica; the
// rows are consistent by construction), then VACUUM (ANALYZE), which also sets the visibility
// map that index-only scans need (autovacuum does the same for rows written by the store).
// Synthetic texts come from the same word lists and generator as bench/mem_search.c.
// --compare CONNINFO2 also fills a second, empty database with the same rows through
// cg_store_memory_add (slow: use a small size) and requires every search to return the same ids
// and scores from both — the check that the bulk path writes what the store would have written.
// Build (not part of the CMake targets), from the repository root:
//   cc -O2 -std=c11 -D_DEFAULT_SOURCE -Iinclude -Isrc bench/mem_pg_bulk.c src/base/[a-z]*.c
//      src/mem/[a-z]*.c $(pkg-config --cflags --libs sqlite3 libpq libsodium libutf8proc)
//      -lpthread -lm -o mem_pg_bulk
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/time.h"
#include "mem/fts_cjk.h"
#include "mem/store.h"
#include "mem/store_int.h"
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

static int sql(PGconn *c, const char *q) {
    PGresult *r = PQexec(c, q);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) fprintf(stderr, "sql: %s: %s", q, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : 1;
}

// One COPY stream: buffered rows flushed in 1 MiB pieces.
typedef struct copy { PGconn *c; cg_buf b; } copy;
static int copy_begin(copy *cp, PGconn *c, const char *q) {
    cp->c = c;
    cg_buf_init(&cp->b);
    PGresult *r = PQexec(c, q);
    int ok = PQresultStatus(r) == PGRES_COPY_IN;
    if (!ok) fprintf(stderr, "copy: %s: %s", q, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : 1;
}
static int copy_flush(copy *cp, bool force) {
    if (!cg_buf_ok(&cp->b)) return fprintf(stderr, "copy: out of memory\n"), 1;
    if (cp->b.len < (1u << 20) && !force) return 0;
    if (cp->b.len && PQputCopyData(cp->c, cp->b.data, (int)cp->b.len) != 1)
        return fprintf(stderr, "copy: %s", PQerrorMessage(cp->c)), 1;
    cg_buf_reset(&cp->b);
    return 0;
}
static int copy_end(copy *cp) {
    int bad = copy_flush(cp, true) || PQputCopyEnd(cp->c, NULL) != 1;
    PGresult *r = PQgetResult(cp->c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) bad = 1;
    if (bad) fprintf(stderr, "copy end: %s", PQerrorMessage(cp->c));
    PQclear(r);
    while ((r = PQgetResult(cp->c))) PQclear(r);
    cg_buf_free(&cp->b);
    return bad;
}

typedef struct terms { char t[32][CG_CJK_MAX_TOKEN + 1]; int tf[32]; int n, total; } terms;
static int on_tok(void *user, const char *tok, size_t n, size_t start, size_t end) {
    (void)start, (void)end;
    terms *t = user;
    t->total++;
    for (int i = 0; i < t->n; i++)
        if (strlen(t->t[i]) == n && !memcmp(t->t[i], tok, n)) { t->tf[i]++; return 0; }
    if (t->n == 32) return 0;   // synthetic texts have < 20 distinct terms
    memcpy(t->t[t->n], tok, n);
    t->t[t->n][n] = '\0';
    t->tf[t->n++] = 1;
    return 0;
}

// The secondary indexes of schema versions 3-5 (db_pg.c MIGRATIONS), dropped and rebuilt as-is.
static const char *const DROP =
    "ALTER TABLE mem_terms DROP CONSTRAINT mem_terms_pkey;"
    "DROP INDEX mem_terms_memory; DROP INDEX memories_user; DROP INDEX memories_user_id;"
    "DROP INDEX memories_superseded; DROP INDEX memories_conv; DROP INDEX memories_client;";
static const char *const CREATE =
    "ALTER TABLE mem_terms ADD CONSTRAINT mem_terms_pkey"
    " PRIMARY KEY (user_id, term, memory_id) INCLUDE (tf, n_terms);"
    "CREATE INDEX mem_terms_memory ON mem_terms(memory_id);"
    "CREATE INDEX memories_user ON memories(user_id, created_ms);"
    "CREATE INDEX memories_user_id ON memories(user_id, id)"
    " INCLUDE (superseded_by, valid_to_ms, importance, created_ms);"
    "CREATE INDEX memories_superseded ON memories(superseded_by);"
    "CREATE INDEX memories_conv ON memories(conv_id);"
    "CREATE UNIQUE INDEX memories_client ON memories(user_id, client_id);"
    "ALTER TABLE memories CLUSTER ON memories_user_id;"  // v6's marks, lost with the dropped indexes
    "ALTER TABLE mem_terms CLUSTER ON mem_terms_pkey;";

static void put_hex(cg_buf *b, const void *p, size_t n) {
    static const char HEX[] = "0123456789abcdef";
    if (!cg_buf_reserve(b, 2 * n + 4)) return;
    char *o = b->data + b->len;
    *o++ = '\\';
    *o++ = '\\';
    *o++ = 'x';
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        *o++ = HEX[c[i] >> 4];
        *o++ = HEX[c[i] & 15];
    }
    b->len = (size_t)(o - b->data);
}

// The generator's state before memory i of user u (slot (u - 1) * per_user + i): the texts
// are drawn in id order (ids interleave users, as real traffic would), then replayed in
// whatever order the rows are written.
static uint64_t *gen_states(long users, long per_user) {
    uint64_t *s = malloc((size_t)users * (size_t)per_user * sizeof *s);
    if (!s) return NULL;
    rng = 88172645463325252ull;
    for (long i = 0; i < per_user; i++)
        for (long u = 1; u <= users; u++) {
            s[(size_t)(u - 1) * (size_t)per_user + (size_t)i] = rng;
            for (int k = 0; k < 7; k++) (void)next_rand();  // 6 picks + importance
        }
    return s;
}

// Memory i of a user from its generator state: text (returns its length) and importance.
static int gen_text(uint64_t state, long i, char *text, size_t size, double *imp) {
    rng = state;
    int n = snprintf(text, size, "%s%s %s %s%s %s (%ld)", PICK(KO), PICK(KO_TAIL), PICK(EN), PICK(KO),
                     PICK(KO_TAIL), PICK(VERBS), i);
    *imp = (double)(next_rand() % 100) / 100.0;
    return n;
}

// Rows are written user by user (--interleaved: in id order, the order of real traffic): each
// user's memories rows, postings and packed pages then lie together in their tables and in
// mem_vpack's TOAST table — the layout `CLUSTER` (schema v6 marks the clustering indexes)
// restores on a grown database. One pass generates every row once; the four tables stream
// over four connections (one COPY each, one transaction each), so the server parses three
// streams while this process generates.
static int load(const char *db, long users, long per_user, int embd, bool interleaved) {
    enum { C_MEM, C_TERMS, C_LEN, C_VP, N_CONN };
    PGconn *c[N_CONN] = {0};
    copy cp[N_CONN] = {0};
    int bad = 0;
    for (int k = 0; k < N_CONN && !bad; k++) {
        c[k] = PQconnectdb(db);
        if (PQstatus(c[k]) != CONNECTION_OK) bad = fprintf(stderr, "connect: %s", PQerrorMessage(c[k])) > 0;
        else bad = sql(c[k], "SET maintenance_work_mem = '512MB'") ||
                   sql(c[k], "SET session_replication_role = replica");
    }
    bad = bad || sql(c[0], DROP);
    uint64_t t0 = cg_time_ns();
    bad = bad || copy_begin(&cp[0], c[0], "COPY users(id, name, created_ms) FROM STDIN");
    for (long u = 1; !bad && u <= users; u++) {
        cg_buf_printf(&cp[0].b, "%ld\tbulk%ld\t1700000000000\n", u, u);
        bad = copy_flush(&cp[0], false);
    }
    bad = bad || copy_end(&cp[0]);
    printf("users: %ld in %.1f s\n", users, (double)(cg_time_ns() - t0) / 1e9);
    fflush(stdout);
    uint64_t tp = cg_time_ns();
    uint64_t *states = gen_states(users, per_user);
    size_t cap = embd > 0 ? st_vp_cap(embd) : 1;
    size_t n_buf = interleaved ? (size_t)users * cap : cap;  // vectors of the pages being filled
    float *x = embd > 0 ? malloc(n_buf * (size_t)embd * sizeof *x) : NULL;
    int64_t *ids = malloc(n_buf * sizeof *ids);
    cg_buf page;
    cg_buf_init(&page);
    cg_err err = {0};
    if (!states || !ids || (embd > 0 && !x)) bad = fprintf(stderr, "load: out of memory\n") > 0;
    bad = bad ||
          copy_begin(&cp[C_MEM], c[C_MEM],
                     embd > 0 ? "COPY memories(id, user_id, kind, source, enc, body, importance, "
                                "created_ms, updated_ms, valid_from_ms, embedding, vpage) FROM STDIN"
                              : "COPY memories(id, user_id, kind, source, enc, body, importance, "
                                "created_ms, updated_ms, valid_from_ms) FROM STDIN") ||
          copy_begin(&cp[C_TERMS], c[C_TERMS], "COPY mem_terms(memory_id, user_id, term, tf, n_terms) FROM STDIN") ||
          copy_begin(&cp[C_LEN], c[C_LEN], "COPY mem_doclen(memory_id, n_terms) FROM STDIN") ||
          (embd > 0 && copy_begin(&cp[C_VP], c[C_VP], "COPY mem_vpack(user_id, page, data) FROM STDIN"));
    int64_t n_rows = 0, n_terms_all = 0, n_pages = 0;
    long outer = interleaved ? per_user : users, inner = interleaved ? users : per_user;
    for (long a = 0; a < outer && !bad; a++)
        for (long b = 0; b < inner && !bad; b++) {
            long i = interleaved ? a : b, u = interleaved ? b + 1 : a + 1;
            char text[256];
            double imp;
            int n = gen_text(states[(size_t)(u - 1) * (size_t)per_user + (size_t)i], i, text, sizeof text, &imp);
            int64_t ms = 1700000000000 + i * 1000, id = (int64_t)i * users + u;
            n_rows++;
            cg_buf *m = &cp[C_MEM].b;
            cg_buf_printf(m, "%" PRId64 "\t%ld\t%ld\t0\t0\t\\\\x", id, u, (long)(id % 6));
            for (int k = 0; k < n; k++) cg_buf_printf(m, "%02x", (unsigned char)text[k]);
            cg_buf_printf(m, "\t%.2f\t%" PRId64 "\t%" PRId64 "\t%" PRId64, imp, ms, ms, ms);
            if (embd > 0) {
                size_t slot = (size_t)i % cap, base = interleaved ? (size_t)(u - 1) * cap : 0;
                float *ev = x + (base + slot) * (size_t)embd;
                ids[base + slot] = id;
                if (cg_vec_embed_hashed(NULL, text, (size_t)n, ev, embd, &err)) {
                    fprintf(stderr, "embed: %s\n", err.msg);
                    bad = 1;
                    break;
                }
                cg_buf_putc(m, '\t');
                put_hex(m, ev, (size_t)embd * sizeof *ev);
                cg_buf_printf(m, "\t%ld", (long)((size_t)i / cap));
                if (slot == cap - 1 || i == per_user - 1) {
                    cg_buf_reset(&page);
                    if (st_vp_page(ids + base, x + base * (size_t)embd, slot + 1, embd, &page, &err)) {
                        fprintf(stderr, "vpack: %s\n", err.msg);
                        bad = 1;
                        break;
                    }
                    cg_buf_printf(&cp[C_VP].b, "%ld\t%ld\t", u, (long)((size_t)i / cap));
                    put_hex(&cp[C_VP].b, page.data, page.len);
                    cg_buf_putc(&cp[C_VP].b, '\n');
                    n_pages++;
                    bad = copy_flush(&cp[C_VP], false);
                }
            }
            cg_buf_putc(m, '\n');
            terms t = {.n = 0};
            cg_cjk_tokenize(text, (size_t)n, on_tok, &t);
            for (int k = 0; k < t.n; k++)
                cg_buf_printf(&cp[C_TERMS].b, "%" PRId64 "\t%ld\t%s\t%d\t%d\n", id, u, t.t[k], t.tf[k], t.total);
            cg_buf_printf(&cp[C_LEN].b, "%" PRId64 "\t%d\n", id, t.total);
            n_terms_all += t.total;
            bad = bad || copy_flush(&cp[C_MEM], false) || copy_flush(&cp[C_TERMS], false) ||
                  copy_flush(&cp[C_LEN], false);
        }
    for (int k = 0; k < N_CONN; k++)
        if (cp[k].c && (k != C_VP || embd > 0) && copy_end(&cp[k])) bad = 1;
    printf("memories, postings, lengths%s: %" PRId64 " rows (%s order), %" PRId64 " pages in %.1f s\n",
           embd > 0 ? ", packed pages" : "", n_rows, interleaved ? "id" : "user", n_pages,
           (double)(cg_time_ns() - tp) / 1e9);
    fflush(stdout);
    cg_buf_free(&page);
    free(x);
    free(ids);
    free(states);
    uint64_t ti = cg_time_ns();
    char q[256];
    snprintf(q, sizeof q, "UPDATE mem_stats SET n_docs = %" PRId64 ", n_terms = %" PRId64 " WHERE id = 1", n_rows,
             n_terms_all);
    bad = bad || sql(c[0], q) ||
          sql(c[0], "INSERT INTO mem_df(term, n) SELECT term, count(*) FROM mem_terms GROUP BY term") ||
          sql(c[0], "SET session_replication_role = origin") || sql(c[0], CREATE) ||
          sql(c[0], "SELECT setval('users_id_seq', (SELECT max(id) FROM users))") ||
          sql(c[0], "SELECT setval('memories_id_seq', (SELECT max(id) FROM memories))") ||
          sql(c[0], "VACUUM (ANALYZE)");
    printf("df + indexes + vacuum analyze: %.1f s; total load %.1f s\n", (double)(cg_time_ns() - ti) / 1e9,
           (double)(cg_time_ns() - t0) / 1e9);
    for (int k = 0; k < N_CONN; k++) PQfinish(c[k]);
    return bad;
}

// The same rows as load(), through the store's own write path.
static int load_via_store(cg_store *s, long users, long per_user) {
    cg_err err = {0};
    rng = 88172645463325252ull;
    for (long u = 1; u <= users; u++) {
        char name[32];
        int64_t uid;
        snprintf(name, sizeof name, "bulk%ld", u);
        if (cg_store_user_add(s, name, &uid, &err) || uid != u) return fprintf(stderr, "user: %s\n", err.msg), 1;
    }
    int64_t id = 0;
    for (long i = 0; i < per_user; i++)
        for (long u = 1; u <= users; u++) {
            char text[256];
            snprintf(text, sizeof text, "%s%s %s %s%s %s (%ld)", PICK(KO), PICK(KO_TAIL), PICK(EN), PICK(KO),
                     PICK(KO_TAIL), PICK(VERBS), i);
            double imp = (double)(next_rand() % 100) / 100.0;
            int64_t got;
            cg_mem_new m = {.text = text, .importance = imp, .kind = (cg_mem_kind)(++id % 6),
                            .created_ms = 1700000000000 + i * 1000};
            if (cg_store_memory_add(s, u, &m, &got, &err) || got != id) return fprintf(stderr, "add: %s\n", err.msg), 1;
        }
    return 0;
}

int main(int argc, char **argv) {
    const char *db = NULL, *db2 = NULL;
    long users = 10000, per_user = 1000, queries = 500;
    bool reuse = false, vec_scan = false, interleaved = false, text_only = false, vec_only = false;
    int embd = 0;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) db = argv[++i];
        else if (!strcmp(argv[i], "--users") && i + 1 < argc) users = atol(argv[++i]);
        else if (!strcmp(argv[i], "--per-user") && i + 1 < argc) per_user = atol(argv[++i]);
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc) queries = atol(argv[++i]);
        else if (!strcmp(argv[i], "--reuse")) reuse = true;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--compare") && i + 1 < argc) db2 = argv[++i];
        else if (!strcmp(argv[i], "--embd") && i + 1 < argc) embd = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vec-scan")) vec_scan = true;
        else if (!strcmp(argv[i], "--interleaved")) interleaved = true;
        else if (!strcmp(argv[i], "--text-only")) text_only = true;
        else if (!strcmp(argv[i], "--vec-only")) vec_only = true;
        else db = NULL, i = argc;
    }
    if (!db || users < 1 || per_user < 1 || queries < 1 || embd < 0 || embd > 4096 || (text_only && vec_only) ||
        (vec_only && embd == 0)) {
        fprintf(stderr, "usage: mem_pg_bulk --db CONNINFO [--users U] [--per-user N] [--queries Q] [--reuse] [--seed S]"
                        " [--embd D] [--vec-scan] [--interleaved] [--text-only | --vec-only] [--compare CONNINFO2]\n");
        return 2;
    }
    cg_err err = {0};
    cg_store *s = NULL;
    cg_store_opts so_open = {.embed = embd > 0 ? cg_vec_embed_hashed : NULL, .n_embd = embd};
    cg_store_opts so_search = so_open;
    if (text_only) so_search.embed = NULL;  // BM25 only
    if (cg_store_open(db, &so_search, &s, &err)) return fprintf(stderr, "open: %s\n", err.msg), 1;
    if (strcmp(cg_store_backend(s), "postgres")) return fprintf(stderr, "--db must be a PostgreSQL conninfo\n"), 2;
    if (!reuse && load(db, users, per_user, embd, interleaved)) return 1;
    cg_store *s2 = NULL;
    if (db2 && (cg_store_open(db2, &so_open, &s2, &err) || load_via_store(s2, users, per_user)))
        return fprintf(stderr, "compare: %s\n", err.msg), 1;
    long mismatches = 0;
    double *lat = calloc((size_t)queries, sizeof *lat);
    size_t hits = 0;
    rng = seed ? seed : 1;
    for (long q = 0; q < queries; q++) {
        char query[128];
        if (q % 3 == 0) snprintf(query, sizeof query, "%s", PICK(KO));
        else if (q % 3 == 1) snprintf(query, sizeof query, "%s %s", PICK(EN), PICK(KO));
        else snprintf(query, sizeof query, "%s", PICK(EN));
        int64_t uid = 1 + (int64_t)(next_rand() % (uint64_t)users);
        cg_memory *r = NULL;
        size_t nr = 0;
        cg_search_opts so = {.k = 10, .vec_scan = vec_scan};
        uint64_t a = cg_time_ns();
        if (vec_only) {  // the vector list alone: pages, bound, re-rank; no text side, no rows
            int64_t *vi = NULL;
            float *vcos = NULL;
            if (cg_store_vec_ranked(s, uid, query, &so, &vi, &vcos, &nr, &err))
                return fprintf(stderr, "search: %s\n", err.msg), 1;
            free(vi);
            free(vcos);
            nr = nr < 10 ? nr : 10;
        } else if (cg_store_memory_search(s, uid, query, &so, &r, &nr, &err))
            return fprintf(stderr, "search: %s\n", err.msg), 1;
        lat[q] = (double)(cg_time_ns() - a) / 1e6;
        hits += nr;
        if (s2) {
            cg_memory *r2 = NULL;
            size_t n2 = 0;
            so.now_ms = 1800000000000;   // same recency boost on both sides
            cg_memory_list_free(r, nr);
            if (cg_store_memory_search(s, uid, query, &so, &r, &nr, &err) ||
                cg_store_memory_search(s2, uid, query, &so, &r2, &n2, &err))
                return fprintf(stderr, "search: %s\n", err.msg), 1;
            bool same = n2 == nr;
            for (size_t k = 0; same && k < nr; k++)
                same = r[k].id == r2[k].id && r[k].score == r2[k].score && !strcmp(r[k].text, r2[k].text);
            if (!same) {
                mismatches++;
                fprintf(stderr, "compare: user %" PRId64 " query '%s': %zu vs %zu results differ\n", uid, query, nr, n2);
            }
            cg_memory_list_free(r2, n2);
        }
        cg_memory_list_free(r, nr);
    }
    qsort(lat, (size_t)queries, sizeof *lat, cmp_d);
    printf("postgres: %ld users x %ld memories = %ld rows; embd %d (%s); %ld queries over random users, k=10, "
           "%.1f results/query\n", users, per_user, users * per_user, embd,
           text_only || !embd ? "text only"
           : vec_scan         ? (vec_only ? "vector list only, blob scan" : "blob scan")
           : vec_only         ? "vector list only, packed"
           : cg_vec_simd()    ? "packed, avx2" : "packed, scalar", queries,
           (double)hits / (double)queries);
    printf("search latency ms: p50 %.2f  p95 %.2f  p99 %.2f  max %.2f\n", lat[queries / 2], lat[queries * 95 / 100],
           lat[queries * 99 / 100], lat[queries - 1]);
    if (s2) printf("compare with the store's own write path: %ld of %ld searches differ\n", mismatches, queries);
    free(lat);
    cg_store_close(s);
    cg_store_close(s2);
    return mismatches ? 1 : 0;
}
