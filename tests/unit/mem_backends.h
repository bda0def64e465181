// mem_backends.h — the two-backend harness shared by the store tests (test_mem*.c).
//
// Every store test runs twice, through the same function: once on a fresh SQLite file and once
// on a fresh database of a throwaway PostgreSQL cluster started with tests/pg.sh (or
// $CG_TEST_PG). Each test executable includes this once; its functions are static inline so
// an executable that does not use one does not warn.
#ifndef CG_TEST_MEM_BACKENDS_H
#define CG_TEST_MEM_BACKENDS_H

#include "testutil.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem/store.h"

typedef struct backend {
    const char *name;
    bool is_pg;
    char *pg_base;    // conninfo of the cluster's "postgres" database; NULL: unavailable
    char *pg_dir;     // cluster directory when we started it
    bool pg_broken;   // binaries exist but the cluster did not start: fail, don't skip
    char *tmpdir;
    int counter;
} backend;

static backend SQ = {.name = "sqlite"};
static backend PG = {.name = "postgres", .is_pg = true};

// A fresh, empty database for one test: a new SQLite file or a new PostgreSQL database.
// Returns a malloc'ed path/conninfo, or NULL after calling skip().
static inline char *fresh_db(backend *b) {
    char *url = malloc(1024);
    assert_non_null(url);
    b->counter++;
    if (!b->is_pg) {
        snprintf(url, 1024, "%s/t%d.db", b->tmpdir, b->counter);
        return url;
    }
    if (b->pg_broken) fail_msg("postgres: the throwaway cluster did not start (see stderr)");
    if (!b->pg_base) {
        free(url);
        return NULL;
    }
    PGconn *c = PQconnectdb(b->pg_base);
    if (PQstatus(c) != CONNECTION_OK) fail_msg("postgres: %s", PQerrorMessage(c));
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE cgt_%d_%d", (int)getpid(), b->counter);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("postgres: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    snprintf(url, 1024, "%s dbname=cgt_%d_%d", b->pg_base, (int)getpid(), b->counter);
    return url;
}

#define FRESH(b, url)              \
    char *url = fresh_db(b);       \
    if (!url) {                    \
        skip();                    \
        return;                    \
    }


static inline cg_store *open_ok(const char *url, const cg_store_opts *o) {
    cg_store *s = NULL;
    cg_err err = {0};
    CG_ASSERT_OK(cg_store_open(url, o, &s, &err), &err);
    return s;
}

static inline int64_t add_mem(cg_store *s, int64_t user, const char *text, double importance) {
    cg_err err = {0};
    int64_t id = 0;
    cg_mem_new m = {.text = text, .importance = importance};
    CG_ASSERT_OK(cg_store_memory_add(s, user, &m, &id, &err), &err);
    return id;
}

static inline int64_t new_user(cg_store *s, const char *name) {
    cg_err err = {0};
    int64_t id = 0;
    CG_ASSERT_OK(cg_store_user_add(s, name, &id, &err), &err);
    return id;
}


static inline int64_t qint(cg_store *s, const char *sql) {
    cg_err err = {0};
    int64_t v = -1;
    CG_ASSERT_OK(cg_store_query_int(s, sql, &v, &err), &err);
    return v;
}

// ---- PostgreSQL cluster lifetime -------------------------------------------------------------

static inline void pg_start(void) {
    const char *given = getenv("CG_TEST_PG");
    if (given && *given) {
        PG.pg_base = strdup(given);
        return;
    }
    const char *src = getenv("CHINGU_SRC");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s/tests/pg.sh' start", src ? src : ".");
    FILE *f = popen(cmd, "r");
    char line[1024] = "";
    if (!f || !fgets(line, sizeof line, f)) line[0] = '\0';
    int rc = f ? pclose(f) : -1;
    int code = rc >= 0 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (code == 77) {
        fprintf(stderr, "postgres: no server binaries: the PostgreSQL runs are SKIPPED\n");
        return;
    }
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = '\0';
    if (code != 0 || n == 0) {
        fprintf(stderr, "postgres: tests/pg.sh start failed (exit %d)\n", code);
        PG.pg_broken = true;
        return;
    }
    PG.pg_base = strdup(line);
    const char *h = strstr(line, "host=");
    if (h) {
        PG.pg_dir = strdup(h + 5);
        char *sp = strchr(PG.pg_dir, ' ');
        if (sp) *sp = '\0';
    }
    printf("postgres: throwaway cluster at %s\n", PG.pg_base);
}

static inline void pg_stop(void) {
    if (PG.pg_dir) {
        const char *src = getenv("CHINGU_SRC");
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "bash '%s/tests/pg.sh' stop '%s'", src ? src : ".", PG.pg_dir);
        if (system(cmd) != 0) fprintf(stderr, "postgres: stopping the cluster failed\n");
    }
    free(PG.pg_base);
    free(PG.pg_dir);
}

// ---- the test program ---------------------------------------------------------------------------

// Runs `common` (n_common tests, none for 0), then `sq` on SQLite, then `pg` (n tests each) on a
// throwaway PostgreSQL cluster, as groups "<name>_common", "<name>_sqlite" and "<name>_postgres";
// removes SQLite's temp dir. Returns main's exit status.
static inline int run_backends(const char *name, const struct CMUnitTest *common, size_t n_common,
                               const struct CMUnitTest *sq, const struct CMUnitTest *pg, size_t n) {
    char group[128];
    int fails = 0;
    SQ.tmpdir = cg_test_tmpdir();
    if (n_common) {
        snprintf(group, sizeof group, "%s_common", name);
        fails += _cmocka_run_group_tests(group, common, n_common, NULL, NULL);
    }
    snprintf(group, sizeof group, "%s_sqlite", name);
    fails += _cmocka_run_group_tests(group, sq, n, NULL, NULL);
    pg_start();
    snprintf(group, sizeof group, "%s_postgres", name);
    fails += _cmocka_run_group_tests(group, pg, n, NULL, NULL);
    pg_stop();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", SQ.tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", SQ.tmpdir);
    free(SQ.tmpdir);
    return fails ? 1 : 0;
}

#define CG_N(a) (sizeof(a) / sizeof(a)[0])

#endif
