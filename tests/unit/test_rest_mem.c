// test_rest_mem.c — the REST personal layer (src/server/rest_mem.c) on SQLite and PostgreSQL.
//
// Requests go straight into cg_rest_mem_handle (no sockets); answers are parsed with jansson and
// checked against hand-written expectations: status codes, OpenAI error shapes, scopes, Korean
// search through the API, supersession, and the isolation matrix — every endpoint called with
// another user's ids/keys answers 404 and changes nothing. The PostgreSQL run starts a throwaway
// cluster with tests/pg.sh (or uses $CG_TEST_PG) and is skipped only when no server binaries exist.
#include "testutil.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem/store.h"
#include "server/rest_mem.h"

typedef struct backend {
    bool is_pg, pg_broken;
    char *pg_base, *pg_dir, *tmpdir;
    int counter;
} backend;
static backend SQ, PG = {.is_pg = true};

static char *fresh_db(backend *b) {
    char *url = malloc(1024);
    assert_non_null(url);
    b->counter++;
    if (!b->is_pg) {
        snprintf(url, 1024, "%s/r%d.db", b->tmpdir, b->counter);
        return url;
    }
    if (b->pg_broken) fail_msg("postgres: the throwaway cluster did not start (see stderr)");
    if (!b->pg_base) { free(url); return NULL; }
    PGconn *c = PQconnectdb(b->pg_base);
    if (PQstatus(c) != CONNECTION_OK) fail_msg("postgres: %s", PQerrorMessage(c));
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE cgr_%d_%d", (int)getpid(), b->counter);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("postgres: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    snprintf(url, 1024, "%s dbname=cgr_%d_%d", b->pg_base, (int)getpid(), b->counter);
    return url;
}

// ---- a tiny client ----------------------------------------------------------------------------

typedef struct qargs { const char *names[4], *values[4]; } qargs;
static const char *lookup(void *ctx, const char *name) {
    qargs *q = ctx;
    for (int i = 0; i < 4 && q->names[i]; i++)
        if (!strcmp(q->names[i], name)) return q->values[i];
    return NULL;
}

typedef struct fixture {
    cg_store *s;
    cg_rest_mem *rm;
    char *url;
    char admin[CG_KEY_STR_LEN + 8];
} fixture;

// Calls the handler; returns the status and the parsed body in *out (caller decrefs).
static int call(cg_rest_mem *rm, const char *key, const char *method, const char *path, const char *body, qargs *q,
                json_t **out) {
    char auth[128];
    if (key) snprintf(auth, sizeof auth, "Bearer %s", key);
    cg_rest_req rq = {.method = method, .path = path, .authorization = key ? auth : NULL, .body = body,
                      .n_body = body ? strlen(body) : 0, .arg = q ? lookup : NULL, .arg_ctx = q};
    cg_buf b;
    cg_buf_init(&b);
    const char *allow;
    int st = cg_rest_mem_handle(rm, &rq, &b, &allow);
    json_error_t je;
    json_t *j = json_loadb(b.data ? b.data : "", b.len, 0, &je);
    if (!j) fail_msg("%s %s: answer is not JSON: %.*s", method, path, (int)b.len, b.data ? b.data : "");
    if (st >= 400) {   // every error is OpenAI-shaped
        json_t *e = json_object_get(j, "error");
        assert_non_null(e);
        assert_true(json_is_string(json_object_get(e, "message")));
        assert_true(json_is_string(json_object_get(e, "type")));
        assert_non_null(json_object_get(e, "param"));
    }
    if (st == 405) assert_non_null(allow);
    cg_buf_free(&b);
    if (out) *out = j;
    else json_decref(j);
    return st;
}

static int64_t jint(json_t *j, const char *k) {
    json_t *v = json_object_get(j, k);
    if (!json_is_integer(v)) fail_msg("field %s is not an integer", k);
    return json_integer_value(v);
}

static const char *jerr_code(json_t *j) {
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static bool setup(backend *b, fixture *f) {
    memset(f, 0, sizeof *f);
    f->url = fresh_db(b);
    if (!f->url) return false;
    cg_err err = {0};
    CG_ASSERT_OK(cg_store_open(f->url, NULL, &f->s, &err), &err);
    CG_ASSERT_OK(cg_rest_mem_new(f->s, &f->rm, &err), &err);
    int64_t uid, kid;
    CG_ASSERT_OK(cg_store_user_add(f->s, "root", &uid, &err), &err);
    CG_ASSERT_OK(cg_store_key_create(f->s, uid, CG_KEY_ADMIN, f->admin, &kid, &err), &err);
    return true;
}

static void teardown(fixture *f) {
    cg_rest_mem_free(f->rm);
    cg_store_close(f->s);
    free(f->url);
}

// Creates a user through the API and a user-scope key for it; returns the user id.
static int64_t make_user(fixture *f, const char *name, char key[64], int64_t *key_id) {
    json_t *j;
    char body[128];
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
    assert_int_equal(call(f->rm, f->admin, "POST", "/v1/users", body, NULL, &j), 201);
    int64_t uid = jint(j, "id");
    json_decref(j);
    snprintf(body, sizeof body, "{\"user\":%lld}", (long long)uid);
    assert_int_equal(call(f->rm, f->admin, "POST", "/v1/keys", body, NULL, &j), 201);
    const char *k = json_string_value(json_object_get(j, "key"));
    assert_non_null(k);
    assert_int_equal(strlen(k), CG_KEY_STR_LEN - 1);
    assert_string_equal(json_string_value(json_object_get(j, "scope")), "user");
    assert_int_equal(jint(j, "user"), uid);
    snprintf(key, 64, "%s", k);
    if (key_id) *key_id = jint(j, "id");
    json_decref(j);
    return uid;
}

static int64_t add_memory(fixture *f, const char *key, const char *body) {
    json_t *j;
    assert_int_equal(call(f->rm, key, "POST", "/v1/memories", body, NULL, &j), 201);
    int64_t id = jint(j, "id");
    json_decref(j);
    return id;
}

// ---- tests ------------------------------------------------------------------------------------

static void test_no_store(void **state) {
    (void)state;
    json_t *j;
    assert_int_equal(call(NULL, "cg-x", "GET", "/v1/memories", NULL, NULL, &j), 501);
    assert_string_equal(jerr_code(j), "memory_not_configured");
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "--db"));
    json_decref(j);
    assert_true(cg_rest_mem_path("/v1/memories"));
    assert_true(cg_rest_mem_path("/v1/memories/7"));
    assert_true(cg_rest_mem_path("/v1/users"));
    assert_false(cg_rest_mem_path("/v1/memoriesx"));
    assert_false(cg_rest_mem_path("/v1/models"));
    cg_store *s = NULL;
    cg_rest_mem *rm = NULL;
    cg_err err = {0};
    char *dir = cg_test_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/x.db", dir);
    CG_ASSERT_OK(cg_store_open(path, NULL, &s, &err), &err);
    CG_ASSERT_OK(cg_rest_mem_new(s, &rm, &err), &err);
    assert_int_equal(call(rm, NULL, "GET", "/v1/models", NULL, NULL, NULL), 404);   // not ours
    cg_rest_mem_free(rm);
    cg_store_close(s);
    unlink(path);
    rmdir(dir);
    free(dir);
}

static void test_auth_scopes(void **state) {
    fixture f;
    if (!setup(*state, &f)) { skip(); return; }
    json_t *j;
    assert_int_equal(call(f.rm, NULL, "GET", "/v1/memories", NULL, NULL, &j), 401);
    assert_string_equal(jerr_code(j), "invalid_api_key");
    json_decref(j);
    assert_int_equal(call(f.rm, "cg-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "GET", "/v1/memories", NULL, NULL, NULL), 401);
    char ka[64];
    int64_t kid;
    int64_t ua = make_user(&f, "minji", ka, &kid);
    // A user key cannot manage users or create keys for others or admin keys.
    assert_int_equal(call(f.rm, ka, "GET", "/v1/users", NULL, NULL, &j), 403);
    assert_string_equal(jerr_code(j), "insufficient_scope");
    json_decref(j);
    assert_int_equal(call(f.rm, ka, "POST", "/v1/users", "{\"name\":\"x\"}", NULL, NULL), 403);
    assert_int_equal(call(f.rm, ka, "POST", "/v1/keys", "{\"scope\":\"admin\"}", NULL, NULL), 403);
    assert_int_equal(call(f.rm, ka, "POST", "/v1/keys", "{\"user\":1}", NULL, NULL), 403);
    assert_int_equal(call(f.rm, ka, "DELETE", "/v1/users/1", NULL, NULL, NULL), 403);
    // It can create a second key for itself and revoke its first; the revoked key stops working.
    assert_int_equal(call(f.rm, ka, "POST", "/v1/keys", "{}", NULL, &j), 201);
    char k2[64];
    snprintf(k2, sizeof k2, "%s", json_string_value(json_object_get(j, "key")));
    assert_int_equal(jint(j, "user"), ua);
    json_decref(j);
    char path[64];
    snprintf(path, sizeof path, "/v1/keys/%lld", (long long)kid);
    assert_int_equal(call(f.rm, k2, "DELETE", path, NULL, NULL, NULL), 200);
    assert_int_equal(call(f.rm, ka, "GET", "/v1/memories", NULL, NULL, NULL), 401);
    assert_int_equal(call(f.rm, k2, "GET", "/v1/memories", NULL, NULL, NULL), 200);
    // Admin lists both users, rejects a duplicate name, deletes a user (their key dies with them).
    assert_int_equal(call(f.rm, f.admin, "GET", "/v1/users", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 2);
    json_decref(j);
    assert_int_equal(call(f.rm, f.admin, "POST", "/v1/users", "{\"name\":\"minji\"}", NULL, NULL), 409);
    snprintf(path, sizeof path, "/v1/users/%lld", (long long)ua);
    assert_int_equal(call(f.rm, f.admin, "DELETE", path, NULL, NULL, NULL), 200);
    assert_int_equal(call(f.rm, f.admin, "DELETE", path, NULL, NULL, NULL), 404);
    assert_int_equal(call(f.rm, k2, "GET", "/v1/memories", NULL, NULL, NULL), 401);
    teardown(&f);
}

static void test_memories(void **state) {
    fixture f;
    if (!setup(*state, &f)) { skip(); return; }
    char k[64];
    make_user(&f, "minji", k, NULL);
    json_t *j;
    int64_t seoul = add_memory(&f, k, "{\"text\":\"서울에 살아요\",\"kind\":\"profile\",\"importance\":0.5}");
    int64_t coffee = add_memory(&f, k, "{\"text\":\"아침마다 커피를 마셔요\",\"kind\":\"preference\",\"client_id\":\"c1\"}");
    add_memory(&f, k, "{\"text\":\"Meeting with 지수 at the office\",\"kind\":\"event\"}");
    // Korean search: the 2-syllable query finds the word with a particle attached.
    qargs q = {{"q", "k"}, {"커피", "5"}};
    assert_int_equal(call(f.rm, k, "GET", "/v1/memories", NULL, &q, &j), 200);
    json_t *d = json_object_get(j, "data");
    assert_int_equal(json_array_size(d), 1);
    assert_int_equal(jint(json_array_get(d, 0), "id"), coffee);
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "client_id")), "c1");
    assert_true(json_real_value(json_object_get(json_array_get(d, 0), "score")) > 0);
    json_decref(j);
    // Supersede: "I moved to Busan" replaces Seoul; search for 서울 no longer returns it as current.
    char body[160];
    snprintf(body, sizeof body, "{\"text\":\"부산으로 이사했어요 (moved from 서울)\",\"supersedes\":%lld}", (long long)seoul);
    int64_t busan = add_memory(&f, k, body);
    q = (qargs){{"q"}, {"서울"}};
    assert_int_equal(call(f.rm, k, "GET", "/v1/memories", NULL, &q, &j), 200);
    d = json_object_get(j, "data");
    assert_int_equal(json_array_size(d), 1);
    assert_int_equal(jint(json_array_get(d, 0), "id"), busan);
    json_decref(j);
    char path[64];
    snprintf(path, sizeof path, "/v1/memories/%lld", (long long)seoul);
    assert_int_equal(call(f.rm, k, "GET", path, NULL, NULL, &j), 200);
    assert_int_equal(jint(j, "superseded_by"), busan);
    assert_string_equal(json_string_value(json_object_get(j, "text")), "서울에 살아요");
    json_decref(j);
    // List: current only by default (3), with history 4.
    assert_int_equal(call(f.rm, k, "GET", "/v1/memories", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 3);
    json_decref(j);
    q = (qargs){{"include_history"}, {"true"}};
    assert_int_equal(call(f.rm, k, "GET", "/v1/memories", NULL, &q, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 4);
    json_decref(j);
    // Edit, then read back.
    snprintf(path, sizeof path, "/v1/memories/%lld", (long long)coffee);
    assert_int_equal(call(f.rm, k, "PATCH", path, "{\"text\":\"녹차를 마셔요\",\"importance\":0.9}", NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "text")), "녹차를 마셔요");
    assert_true(json_real_value(json_object_get(j, "importance")) > 0.89);
    json_decref(j);
    // Export holds the edited text and the superseded one (history is not lost).
    assert_int_equal(call(f.rm, k, "GET", "/v1/memories/export", NULL, NULL, &j), 200);
    char *dump = json_dumps(j, 0);
    assert_non_null(strstr(dump, "녹차를"));
    assert_non_null(strstr(dump, "minji"));
    free(dump);
    json_decref(j);
    // Errors: each names what is wrong.
    assert_int_equal(call(f.rm, k, "POST", "/v1/memories", "{\"kind\":\"note\"}", NULL, &j), 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "param")), "text");
    json_decref(j);
    assert_int_equal(call(f.rm, k, "POST", "/v1/memories", "{\"text\":\"x\",\"kind\":\"mood\"}", NULL, &j), 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "param")), "kind");
    json_decref(j);
    assert_int_equal(call(f.rm, k, "POST", "/v1/memories", "{\"text\":\"x\",\"importance\":2}", NULL, NULL), 400);
    assert_int_equal(call(f.rm, k, "POST", "/v1/memories", "{\"text\":", NULL, &j), 400);
    assert_string_equal(jerr_code(j), "invalid_json");
    json_decref(j);
    assert_int_equal(call(f.rm, k, "POST", "/v1/memories", "[1]", NULL, NULL), 400);
    assert_int_equal(call(f.rm, k, "POST", "/v1/memories", "{\"text\":\"a\",\"text\":\"b\"}", NULL, NULL), 400);
    assert_int_equal(call(f.rm, k, "PUT", "/v1/memories", "{}", NULL, NULL), 405);
    assert_int_equal(call(f.rm, k, "GET", "/v1/memories/abc", NULL, NULL, NULL), 404);
    assert_int_equal(call(f.rm, k, "GET", "/v1/memories/99999999999999999999", NULL, NULL, NULL), 404);
    q = (qargs){{"q", "k"}, {"커피", "0"}};
    assert_int_equal(call(f.rm, k, "GET", "/v1/memories", NULL, &q, NULL), 400);
    // Delete one, then forget all.
    assert_int_equal(call(f.rm, k, "DELETE", path, NULL, NULL, NULL), 200);
    assert_int_equal(call(f.rm, k, "GET", path, NULL, NULL, NULL), 404);
    assert_int_equal(call(f.rm, k, "DELETE", "/v1/memories", NULL, NULL, &j), 200);
    assert_int_equal(jint(j, "deleted"), 3);
    json_decref(j);
    assert_int_equal(call(f.rm, k, "GET", "/v1/memories", NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    teardown(&f);
}

static void test_conversations(void **state) {
    fixture f;
    if (!setup(*state, &f)) { skip(); return; }
    char k[64];
    make_user(&f, "minji", k, NULL);
    json_t *j;
    assert_int_equal(call(f.rm, k, "POST", "/v1/conversations", "{\"title\":\"점심\"}", NULL, &j), 201);
    int64_t conv = jint(j, "id");
    json_decref(j);
    char path[96], body[200];
    snprintf(path, sizeof path, "/v1/conversations/%lld/messages", (long long)conv);
    assert_int_equal(call(f.rm, k, "POST", path, "{\"role\":\"user\",\"content\":\"안녕\",\"n_tokens\":3}", NULL, NULL), 201);
    assert_int_equal(call(f.rm, k, "POST", path, "{\"role\":\"robot\",\"content\":\"x\"}", NULL, NULL), 400);
    assert_int_equal(call(f.rm, k, "GET", path, NULL, NULL, &j), 200);
    json_t *d = json_object_get(j, "data");
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "content")), "안녕");
    assert_int_equal(jint(json_array_get(d, 0), "n_tokens"), 3);
    json_decref(j);
    // A memory citing a normal conversation is fine; citing a temporary one is refused (409).
    snprintf(body, sizeof body, "{\"text\":\"점심은 비빔밥\",\"conversation_id\":%lld}", (long long)conv);
    add_memory(&f, k, body);
    assert_int_equal(call(f.rm, k, "POST", "/v1/conversations", "{\"temporary\":true}", NULL, &j), 201);
    int64_t tmp = jint(j, "id");
    assert_true(json_is_true(json_object_get(j, "temporary")));
    json_decref(j);
    snprintf(body, sizeof body, "{\"text\":\"secret\",\"conversation_id\":%lld}", (long long)tmp);
    assert_int_equal(call(f.rm, k, "POST", "/v1/memories", body, NULL, &j), 409);
    json_decref(j);
    snprintf(path, sizeof path, "/v1/conversations/%lld", (long long)conv);
    assert_int_equal(call(f.rm, k, "DELETE", path, NULL, NULL, NULL), 200);
    assert_int_equal(call(f.rm, k, "GET", path, NULL, NULL, NULL), 404);
    snprintf(path, sizeof path, "/v1/conversations/%lld/other", (long long)tmp);
    assert_int_equal(call(f.rm, k, "GET", path, NULL, NULL, NULL), 404);
    teardown(&f);
}

// Every endpoint with an id, called with user B's key on user A's ids: 404, and A's data intact.
static void test_isolation_matrix(void **state) {
    fixture f;
    if (!setup(*state, &f)) { skip(); return; }
    char ka[64], kb[64];
    int64_t ka_id;
    int64_t ua = make_user(&f, "alice", ka, &ka_id);
    int64_t ub = make_user(&f, "bob", kb, NULL);
    json_t *j;
    int64_t mem = add_memory(&f, ka, "{\"text\":\"alice의 비밀 커피 zebra\"}");
    assert_int_equal(call(f.rm, ka, "POST", "/v1/conversations", "{\"title\":\"a\"}", NULL, &j), 201);
    int64_t conv = jint(j, "id");
    json_decref(j);
    char mp[64], cp[64], cmp[80], kp[64], kpu[64], b1[128], b2[128], b3[128];
    snprintf(mp, sizeof mp, "/v1/memories/%lld", (long long)mem);
    snprintf(cp, sizeof cp, "/v1/conversations/%lld", (long long)conv);
    snprintf(cmp, sizeof cmp, "/v1/conversations/%lld/messages", (long long)conv);
    snprintf(kp, sizeof kp, "/v1/keys/%lld", (long long)ka_id);
    snprintf(kpu, sizeof kpu, "%lld", (long long)ub);
    snprintf(b1, sizeof b1, "{\"text\":\"hijack\",\"supersedes\":%lld}", (long long)mem);
    snprintf(b2, sizeof b2, "{\"text\":\"hijack\",\"conversation_id\":%lld}", (long long)conv);
    snprintf(b3, sizeof b3, "{\"role\":\"user\",\"content\":\"hijack\"}");
    qargs as_b = {{"user"}, {kpu}};
    struct { const char *key, *method, *path, *body; qargs *q; } M[] = {
        {kb, "GET", mp, NULL, NULL},
        {kb, "PATCH", mp, "{\"text\":\"hijack\"}", NULL},
        {kb, "POST", mp, "{\"text\":\"hijack\"}", NULL},
        {kb, "DELETE", mp, NULL, NULL},
        {kb, "POST", "/v1/memories", b1, NULL},
        {kb, "POST", "/v1/memories", b2, NULL},
        {kb, "GET", cp, NULL, NULL},
        {kb, "DELETE", cp, NULL, NULL},
        {kb, "GET", cmp, NULL, NULL},
        {kb, "POST", cmp, b3, NULL},
        {kb, "DELETE", kp, NULL, NULL},
        {f.admin, "DELETE", kp, NULL, &as_b},   // admin naming the wrong owner
        {f.admin, "GET", mp, NULL, NULL},       // admin's own data scope: not alice's memory
    };
    for (size_t i = 0; i < sizeof M / sizeof M[0]; i++) {
        int st = call(f.rm, M[i].key, M[i].method, M[i].path, M[i].body, M[i].q, &j);
        if (st != 404) fail_msg("isolation: %s %s answered %d, expected 404", M[i].method, M[i].path, st);
        assert_string_equal(jerr_code(j), "not_found");
        json_decref(j);
    }
    printf("isolation matrix: %zu cross-user calls, all 404\n", sizeof M / sizeof M[0]);
    // B's search, list and export see nothing of A's.
    qargs q = {{"q"}, {"zebra 커피"}};
    assert_int_equal(call(f.rm, kb, "GET", "/v1/memories", NULL, &q, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    assert_int_equal(call(f.rm, kb, "GET", "/v1/memories/export", NULL, NULL, &j), 200);
    char *dump = json_dumps(j, 0);
    assert_null(strstr(dump, "zebra"));
    free(dump);
    json_decref(j);
    assert_int_equal(call(f.rm, kb, "DELETE", "/v1/memories", NULL, NULL, NULL), 200);
    // A's data is unchanged and A's key still works.
    assert_int_equal(call(f.rm, ka, "GET", mp, NULL, NULL, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "text")), "alice의 비밀 커피 zebra");
    assert_null(json_integer_value(json_object_get(j, "superseded_by")) ? "superseded" : NULL);
    json_decref(j);
    assert_int_equal(call(f.rm, ka, "GET", cmp, NULL, NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 0);
    json_decref(j);
    (void)ua;
    teardown(&f);
}

// ---- PostgreSQL cluster -----------------------------------------------------------------------

static void pg_start(void) {
    const char *given = getenv("CG_TEST_PG");
    if (given && *given) { PG.pg_base = strdup(given); return; }
    const char *src = getenv("CHINGU_SRC");
    char cmd[1024], line[1024] = "";
    snprintf(cmd, sizeof cmd, "bash '%s/tests/pg.sh' start", src ? src : ".");
    FILE *f = popen(cmd, "r");
    if (!f || !fgets(line, sizeof line, f)) line[0] = '\0';
    int rc = f ? pclose(f) : -1;
    int code = rc >= 0 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (code == 77) { fprintf(stderr, "postgres: no server binaries: the PostgreSQL runs are SKIPPED\n"); return; }
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = '\0';
    if (code != 0 || !n) { fprintf(stderr, "postgres: tests/pg.sh start failed (exit %d)\n", code); PG.pg_broken = true; return; }
    PG.pg_base = strdup(line);
    const char *h = strstr(line, "host=");
    if (h) {
        PG.pg_dir = strdup(h + 5);
        char *sp = strchr(PG.pg_dir, ' ');
        if (sp) *sp = '\0';
    }
}

static void pg_stop(void) {
    if (PG.pg_dir) {
        const char *src = getenv("CHINGU_SRC");
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "bash '%s/tests/pg.sh' stop '%s'", src ? src : ".", PG.pg_dir);
        if (system(cmd) != 0) fprintf(stderr, "postgres: stopping the cluster failed\n");
    }
    free(PG.pg_base);
    free(PG.pg_dir);
}

#define REST_TESTS(B)                                                                              \
    cmocka_unit_test_prestate(test_auth_scopes, &B), cmocka_unit_test_prestate(test_memories, &B), \
        cmocka_unit_test_prestate(test_conversations, &B), cmocka_unit_test_prestate(test_isolation_matrix, &B)

int main(void) {
    const struct CMUnitTest common[] = {cmocka_unit_test(test_no_store)};
    const struct CMUnitTest sq[] = {REST_TESTS(SQ)};
    const struct CMUnitTest pg[] = {REST_TESTS(PG)};
    SQ.tmpdir = cg_test_tmpdir();
    int fails = cmocka_run_group_tests_name("rest_common", common, NULL, NULL);
    fails += cmocka_run_group_tests_name("rest_sqlite", sq, NULL, NULL);
    pg_start();
    fails += cmocka_run_group_tests_name("rest_postgres", pg, NULL, NULL);
    pg_stop();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", SQ.tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", SQ.tmpdir);
    free(SQ.tmpdir);
    return fails ? 1 : 0;
}
