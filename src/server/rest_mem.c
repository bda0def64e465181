// rest_mem.c — /v1/users, /v1/keys, /v1/conversations, /v1/memories over a cg_store.
//
// Flow of one request: authenticate the bearer key with the store (→ caller user id + scope),
// split the path into at most three segments after "/v1/", dispatch on (resource, method), parse
// the JSON body with jansson (duplicates rejected, must be an object), call the store with the
// caller's user id, render the answer with the server's JSON escaper.
// Invariants: every store call carries the caller's user id, except the admin-only user/key
// management calls, which check the scope first; a path id that does not parse is a 404, the same
// answer as another user's id; the store mutex is held for the whole request (one connection).
#include "server/rest_mem.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "server/openai.h"
#include "server/sse.h"

struct cg_rest_mem {
    cg_store *store;  // borrowed
    pthread_mutex_t mu;
};

typedef struct ctx {
    cg_rest_mem *rm;
    const cg_rest_req *rq;
    cg_buf *out;
    int64_t uid;
    cg_key_scope scope;
    json_t *body;     // parsed body (owned) or NULL
    const char **allow;
} ctx;

static const char *const PREFIXES[] = {"/v1/users", "/v1/keys", "/v1/conversations", "/v1/memories"};

bool cg_rest_mem_path(const char *path) {
    if (!path) return false;
    for (size_t i = 0; i < sizeof PREFIXES / sizeof PREFIXES[0]; i++) {
        size_t n = strlen(PREFIXES[i]);
        if (!strncmp(path, PREFIXES[i], n) && (path[n] == '\0' || path[n] == '/')) return true;
    }
    return false;
}

cg_status cg_rest_mem_new(cg_store *store, cg_rest_mem **out, cg_err *err) {
    cg_rest_mem *rm = calloc(1, sizeof *rm);
    if (!rm) return cg_err_set(err, CG_ERR_NOMEM, "rest: out of memory");
    if (pthread_mutex_init(&rm->mu, NULL)) {
        free(rm);
        return cg_err_set(err, CG_ERR_NOMEM, "rest: cannot create a mutex");
    }
    rm->store = store;
    *out = rm;
    return CG_OK;
}

void cg_rest_mem_free(cg_rest_mem *rm) {
    if (!rm) return;
    pthread_mutex_destroy(&rm->mu);
    free(rm);
}

// ---- answers ----------------------------------------------------------------------------------

static int error(ctx *c, int status, const char *code, const char *param, const char *msg) {
    cg_oai_error e;
    cg_oai_error_set(&e, status, status >= 500 ? "server_error" : "invalid_request_error", code, param, "%s", msg);
    cg_buf_reset(c->out);
    cg_oai_error_json(c->out, &e);
    return status;
}

// Maps a store error: NOT_FOUND → 404 (the resource name in the message, never whose it is).
static int store_error(ctx *c, cg_status st, const cg_err *err, const char *what) {
    char msg[600];
    switch (st) {
    case CG_ERR_NOT_FOUND:
        snprintf(msg, sizeof msg, "No such %s.", what);
        return error(c, 404, "not_found", NULL, msg);
    case CG_ERR_INVALID: case CG_ERR_LIMIT: return error(c, 400, "invalid_value", NULL, err->msg);
    case CG_ERR_STATE: return error(c, 409, "conflict", NULL, err->msg);
    default: return error(c, 500, NULL, NULL, err->msg);
    }
}

static int not_allowed(ctx *c, const char *allow) {
    char msg[200];
    snprintf(msg, sizeof msg, "Method %.16s is not allowed on %.100s (allowed: %s).", c->rq->method, c->rq->path, allow);
    *c->allow = allow;
    return error(c, 405, "method_not_allowed", NULL, msg);
}

static int admin_only(ctx *c) {
    return error(c, 403, "insufficient_scope", NULL, "This endpoint needs an admin API key.");
}

static void put_i64_or_null(cg_buf *b, int64_t v) {
    if (v) cg_buf_printf(b, "%" PRId64, v);
    else cg_buf_puts(b, "null");
}

static void memory_json(cg_buf *b, const cg_memory *m, bool with_score) {
    cg_buf_printf(b, "{\"id\":%" PRId64 ",\"object\":\"memory\",\"kind\":", m->id);
    cg_json_cstr(b, cg_mem_kind_name(m->kind));
    cg_buf_puts(b, ",\"source\":");
    cg_json_cstr(b, cg_mem_source_name(m->source));
    cg_buf_puts(b, ",\"text\":");
    cg_json_cstr(b, m->text);
    cg_buf_puts(b, ",\"client_id\":");
    cg_json_cstr(b, m->client_id);
    cg_buf_puts(b, ",\"importance\":");
    cg_json_float(b, m->importance);
    cg_buf_printf(b, ",\"created_ms\":%" PRId64 ",\"updated_ms\":%" PRId64 ",\"valid_from_ms\":%" PRId64
                  ",\"valid_to_ms\":", m->created_ms, m->updated_ms, m->valid_from_ms);
    put_i64_or_null(b, m->valid_to_ms);
    cg_buf_puts(b, ",\"superseded_by\":");
    put_i64_or_null(b, m->superseded_by);
    cg_buf_puts(b, ",\"due_ms\":");
    put_i64_or_null(b, m->due_ms);
    cg_buf_puts(b, ",\"conversation_id\":");
    put_i64_or_null(b, m->conv_id);
    if (with_score) {
        cg_buf_puts(b, ",\"score\":");
        cg_json_float(b, m->score);
    }
    cg_buf_putc(b, '}');
}

static void memory_list_json(cg_buf *b, const cg_memory *m, size_t n, bool with_score) {
    cg_buf_puts(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) cg_buf_putc(b, ',');
        memory_json(b, &m[i], with_score);
    }
    cg_buf_puts(b, "]}");
}

// ---- parsing ----------------------------------------------------------------------------------

// A path id: decimal 1..INT64_MAX, nothing else. 0 when it does not parse (→ 404 by the caller).
static int64_t parse_id(const char *s, size_t n) {
    if (n == 0 || n > 19) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        if (v > (INT64_MAX - (s[i] - '0')) / 10) return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

// Parses the body into c->body (an object). An empty body is an empty object.
static int parse_body(ctx *c) {
    if (c->rq->n_body == 0) {
        c->body = json_object();
        return c->body ? 0 : error(c, 500, NULL, NULL, "The server ran out of memory.");
    }
    json_error_t je;
    c->body = json_loadb(c->rq->body, c->rq->n_body, JSON_REJECT_DUPLICATES, &je);
    if (!c->body) {
        char msg[300];
        snprintf(msg, sizeof msg, "The request body is not valid JSON: %s (line %d, column %d).", je.text, je.line,
                 je.column);
        return error(c, 400, "invalid_json", NULL, msg);
    }
    if (!json_is_object(c->body)) return error(c, 400, "invalid_json", NULL, "The request body must be a JSON object.");
    return 0;
}

// Optional string field: *out NULL when absent/null. Returns an HTTP status on a wrong type, else 0.
static int field_str(ctx *c, const char *name, bool required, const char **out) {
    json_t *v = json_object_get(c->body, name);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required) return 0;
        char msg[160];
        snprintf(msg, sizeof msg, "Missing required parameter: '%s'.", name);
        return error(c, 400, "missing_required_parameter", name, msg);
    }
    if (!json_is_string(v)) {
        char msg[160];
        snprintf(msg, sizeof msg, "Invalid type for '%s': expected a string.", name);
        return error(c, 400, "invalid_type", name, msg);
    }
    *out = json_string_value(v);
    return 0;
}

// Optional number in [lo, hi]; *out untouched when absent.
static int field_num(ctx *c, const char *name, double lo, double hi, double *out) {
    json_t *v = json_object_get(c->body, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "Invalid value for '%s': expected a number in %g..%g.", name, lo, hi);
        return error(c, 400, "invalid_value", name, msg);
    }
    *out = json_number_value(v);
    return 0;
}

static int field_bool(ctx *c, const char *name, bool *out) {
    json_t *v = json_object_get(c->body, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        char msg[160];
        snprintf(msg, sizeof msg, "Invalid type for '%s': expected a boolean.", name);
        return error(c, 400, "invalid_type", name, msg);
    }
    *out = json_is_true(v);
    return 0;
}

static const char *arg(ctx *c, const char *name) {
    return c->rq->arg ? c->rq->arg(c->rq->arg_ctx, name) : NULL;
}

static bool arg_true(ctx *c, const char *name) {
    const char *v = arg(c, name);
    return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

// ---- users and keys (admin) -------------------------------------------------------------------

static int users(ctx *c, const char *id_s, size_t id_n, bool has_id) {
    const char *m = c->rq->method;
    cg_err err = {0};
    cg_status st;
    if (!has_id) {
        if (!strcmp(m, "GET")) {
            if (c->scope != CG_KEY_ADMIN) return admin_only(c);
            cg_user *u = NULL;
            size_t n = 0;
            if ((st = cg_store_user_list(c->rm->store, &u, &n, &err))) return store_error(c, st, &err, "user");
            cg_buf_puts(c->out, "{\"object\":\"list\",\"data\":[");
            for (size_t i = 0; i < n; i++) {
                cg_buf_printf(c->out, "%s{\"id\":%" PRId64 ",\"object\":\"user\",\"name\":", i ? "," : "", u[i].id);
                cg_json_cstr(c->out, u[i].name);
                cg_buf_printf(c->out, ",\"created_ms\":%" PRId64 "}", u[i].created_ms);
            }
            cg_buf_puts(c->out, "]}");
            cg_user_list_free(u, n);
            return 200;
        }
        if (!strcmp(m, "POST")) {
            if (c->scope != CG_KEY_ADMIN) return admin_only(c);
            int r;
            const char *name;
            if ((r = parse_body(c)) || (r = field_str(c, "name", true, &name))) return r;
            int64_t id;
            if ((st = cg_store_user_add(c->rm->store, name, &id, &err))) {
                if (st == CG_ERR_INVALID && strstr(err.msg, "exists")) return error(c, 409, "conflict", "name", err.msg);
                return store_error(c, st, &err, "user");
            }
            cg_buf_printf(c->out, "{\"id\":%" PRId64 ",\"object\":\"user\",\"name\":", id);
            cg_json_cstr(c->out, name);
            cg_buf_putc(c->out, '}');
            return 201;
        }
        return not_allowed(c, "GET, POST");
    }
    if (strcmp(m, "DELETE")) return not_allowed(c, "DELETE");
    if (c->scope != CG_KEY_ADMIN) return admin_only(c);
    int64_t id = parse_id(id_s, id_n);
    if (!id) return error(c, 404, "not_found", NULL, "No such user.");
    if ((st = cg_store_user_delete(c->rm->store, id, &err))) return store_error(c, st, &err, "user");
    cg_buf_printf(c->out, "{\"id\":%" PRId64 ",\"object\":\"user\",\"deleted\":true}", id);
    return 200;
}

static int keys(ctx *c, const char *id_s, size_t id_n, bool has_id) {
    const char *m = c->rq->method;
    cg_err err = {0};
    cg_status st;
    int r;
    if (!has_id) {
        if (strcmp(m, "POST")) return not_allowed(c, "POST");
        if ((r = parse_body(c))) return r;
        double user = 0;
        const char *scope_s = NULL;
        if ((r = field_num(c, "user", 1, 9007199254740992.0, &user)) || (r = field_str(c, "scope", false, &scope_s)))
            return r;
        cg_key_scope scope = CG_KEY_USER;
        if (scope_s && !strcmp(scope_s, "admin")) scope = CG_KEY_ADMIN;
        else if (scope_s && strcmp(scope_s, "user"))
            return error(c, 400, "invalid_value", "scope", "Invalid value for 'scope': expected 'user' or 'admin'.");
        int64_t owner = user > 0 ? (int64_t)user : c->uid;
        if ((owner != c->uid || scope == CG_KEY_ADMIN) && c->scope != CG_KEY_ADMIN) return admin_only(c);
        char key[CG_KEY_STR_LEN];
        int64_t key_id;
        if ((st = cg_store_key_create(c->rm->store, owner, scope, key, &key_id, &err)))
            return store_error(c, st, &err, "user");
        cg_buf_printf(c->out, "{\"id\":%" PRId64 ",\"object\":\"api_key\",\"user\":%" PRId64 ",\"scope\":\"%s\",\"key\":",
                      key_id, owner, scope == CG_KEY_ADMIN ? "admin" : "user");
        cg_json_cstr(c->out, key);
        cg_buf_putc(c->out, '}');
        return 201;
    }
    if (strcmp(m, "DELETE")) return not_allowed(c, "DELETE");
    int64_t id = parse_id(id_s, id_n), owner = c->uid;
    const char *u = arg(c, "user");
    if (u) {
        owner = parse_id(u, strlen(u));
        if (owner != c->uid && c->scope != CG_KEY_ADMIN) return admin_only(c);
    }
    if (!id || !owner) return error(c, 404, "not_found", NULL, "No such API key.");
    if ((st = cg_store_key_revoke(c->rm->store, owner, id, &err))) return store_error(c, st, &err, "API key");
    cg_buf_printf(c->out, "{\"id\":%" PRId64 ",\"object\":\"api_key\",\"deleted\":true}", id);
    return 200;
}

// ---- conversations ----------------------------------------------------------------------------

static int conversations(ctx *c, const char *id_s, size_t id_n, bool has_id, const char *sub) {
    const char *m = c->rq->method;
    cg_err err = {0};
    cg_status st;
    int r;
    if (!has_id) {
        if (strcmp(m, "POST")) return not_allowed(c, "POST");
        const char *title = NULL;
        bool temporary = false;
        if ((r = parse_body(c)) || (r = field_str(c, "title", false, &title)) || (r = field_bool(c, "temporary", &temporary)))
            return r;
        int64_t id;
        if ((st = cg_store_conv_add(c->rm->store, c->uid, title, temporary, &id, &err)))
            return store_error(c, st, &err, "conversation");
        cg_buf_printf(c->out, "{\"id\":%" PRId64 ",\"object\":\"conversation\",\"title\":", id);
        cg_json_cstr(c->out, title);
        cg_buf_printf(c->out, ",\"temporary\":%s}", temporary ? "true" : "false");
        return 201;
    }
    int64_t id = parse_id(id_s, id_n);
    bool messages = sub && !strcmp(sub, "messages");
    if (sub && !messages) return error(c, 404, "unknown_url", NULL, "Unknown request URL.");
    if (!messages && !strcmp(m, "DELETE")) {
        if (!id) return error(c, 404, "not_found", NULL, "No such conversation.");
        if ((st = cg_store_conv_delete(c->rm->store, c->uid, id, &err))) return store_error(c, st, &err, "conversation");
        cg_buf_printf(c->out, "{\"id\":%" PRId64 ",\"object\":\"conversation\",\"deleted\":true}", id);
        return 200;
    }
    if (messages && !strcmp(m, "POST")) {
        const char *role, *content;
        double n_tokens = 0;
        if ((r = parse_body(c)) || (r = field_str(c, "role", true, &role)) || (r = field_str(c, "content", true, &content)) ||
            (r = field_num(c, "n_tokens", 0, 1 << 30, &n_tokens)))
            return r;
        if (!id) return error(c, 404, "not_found", NULL, "No such conversation.");
        int64_t mid;
        if ((st = cg_store_msg_add(c->rm->store, c->uid, id, role, content, (int)n_tokens, &mid, &err)))
            return store_error(c, st, &err, "conversation");
        cg_buf_printf(c->out, "{\"id\":%" PRId64 ",\"object\":\"message\",\"conversation_id\":%" PRId64 "}", mid, id);
        return 201;
    }
    if (strcmp(m, "GET")) return not_allowed(c, messages ? "GET, POST" : "GET, DELETE");
    if (!id) return error(c, 404, "not_found", NULL, "No such conversation.");
    cg_message *msg = NULL;
    size_t n = 0;
    if ((st = cg_store_msg_list(c->rm->store, c->uid, id, &msg, &n, &err))) return store_error(c, st, &err, "conversation");
    if (messages) cg_buf_puts(c->out, "{\"object\":\"list\",\"data\":[");
    else cg_buf_printf(c->out, "{\"id\":%" PRId64 ",\"object\":\"conversation\",\"messages\":[", id);
    for (size_t i = 0; i < n; i++) {
        cg_buf_printf(c->out, "%s{\"id\":%" PRId64 ",\"object\":\"message\",\"role\":", i ? "," : "", msg[i].id);
        cg_json_cstr(c->out, msg[i].role);
        cg_buf_puts(c->out, ",\"content\":");
        cg_json_cstr(c->out, msg[i].text);
        cg_buf_printf(c->out, ",\"n_tokens\":%d,\"created_ms\":%" PRId64 "}", msg[i].n_tokens, msg[i].created_ms);
    }
    cg_buf_puts(c->out, "]}");
    cg_message_list_free(msg, n);
    return 200;
}

// ---- memories ---------------------------------------------------------------------------------

static int memory_create(ctx *c) {
    int r;
    const char *text, *kind_s = NULL, *client_id = NULL;
    double importance = 0, supersedes = 0, due = 0, conv = 0;
    if ((r = parse_body(c)) || (r = field_str(c, "text", true, &text)) || (r = field_str(c, "kind", false, &kind_s)) ||
        (r = field_str(c, "client_id", false, &client_id)) || (r = field_num(c, "importance", 0, 1, &importance)) ||
        (r = field_num(c, "supersedes", 1, 9007199254740992.0, &supersedes)) ||
        (r = field_num(c, "due_ms", 1, 9007199254740992.0, &due)) ||
        (r = field_num(c, "conversation_id", 1, 9007199254740992.0, &conv)))
        return r;
    cg_err err = {0};
    cg_mem_new nm = {.text = text, .importance = importance, .supersedes = (int64_t)supersedes, .due_ms = (int64_t)due,
                     .conv_id = (int64_t)conv, .client_id = client_id,
                     .source = conv > 0 ? CG_SRC_MESSAGE : CG_SRC_MANUAL};
    if (kind_s && cg_mem_kind_parse(kind_s, &nm.kind, &err)) return error(c, 400, "invalid_value", "kind", err.msg);
    int64_t id;
    cg_status st = cg_store_memory_add(c->rm->store, c->uid, &nm, &id, &err);
    if (st) return store_error(c, st, &err, nm.supersedes ? "memory to supersede" : conv > 0 ? "conversation" : "memory");
    cg_memory mem;
    if ((st = cg_store_memory_get(c->rm->store, c->uid, id, &mem, &err))) return store_error(c, st, &err, "memory");
    memory_json(c->out, &mem, false);
    cg_memory_clear(&mem);
    return 201;
}

static int memories(ctx *c, const char *id_s, size_t id_n, bool has_id) {
    const char *m = c->rq->method;
    cg_err err = {0};
    cg_status st;
    int r;
    if (!has_id) {
        if (!strcmp(m, "POST")) return memory_create(c);
        if (!strcmp(m, "DELETE")) {
            int64_t n = 0;
            if ((st = cg_store_memory_forget_all(c->rm->store, c->uid, &n, &err))) return store_error(c, st, &err, "memory");
            cg_buf_printf(c->out, "{\"object\":\"memory.forget_all\",\"deleted\":%" PRId64 "}", n);
            return 200;
        }
        if (strcmp(m, "GET")) return not_allowed(c, "GET, POST, DELETE");
        cg_memory *list = NULL;
        size_t n = 0;
        const char *q = arg(c, "q");
        bool history = arg_true(c, "include_history");
        if (q) {
            cg_search_opts so = {.k = 10, .include_history = history};
            const char *k = arg(c, "k");
            if (k) {
                int64_t kv = parse_id(k, strlen(k));
                if (kv < 1 || kv > 1000) return error(c, 400, "invalid_value", "k", "Invalid value for 'k': expected 1..1000.");
                so.k = (int)kv;
            }
            if ((st = cg_store_memory_search(c->rm->store, c->uid, q, &so, &list, &n, &err)))
                return store_error(c, st, &err, "memory");
        } else if ((st = cg_store_memory_list(c->rm->store, c->uid, !history, &list, &n, &err))) {
            return store_error(c, st, &err, "memory");
        }
        memory_list_json(c->out, list, n, q != NULL);
        cg_memory_list_free(list, n);
        return 200;
    }
    if (id_n == 6 && !memcmp(id_s, "export", 6)) {
        if (strcmp(m, "GET")) return not_allowed(c, "GET");
        if ((st = cg_store_export_json(c->rm->store, c->uid, c->out, &err))) return store_error(c, st, &err, "user");
        return 200;
    }
    int64_t id = parse_id(id_s, id_n);
    bool get = !strcmp(m, "GET"), del = !strcmp(m, "DELETE"), edit = !strcmp(m, "PATCH") || !strcmp(m, "POST");
    if (!get && !del && !edit) return not_allowed(c, "GET, POST, PATCH, DELETE");
    const char *text = NULL;
    double importance = -1;
    if (edit && ((r = parse_body(c)) || (r = field_str(c, "text", true, &text)) ||
                 (r = field_num(c, "importance", 0, 1, &importance))))
        return r;
    if (!id) return error(c, 404, "not_found", NULL, "No such memory.");
    if (del) {
        if ((st = cg_store_memory_delete(c->rm->store, c->uid, id, &err))) return store_error(c, st, &err, "memory");
        cg_buf_printf(c->out, "{\"id\":%" PRId64 ",\"object\":\"memory\",\"deleted\":true}", id);
        return 200;
    }
    if (edit && (st = cg_store_memory_edit(c->rm->store, c->uid, id, text, importance, &err)))
        return store_error(c, st, &err, "memory");
    cg_memory mem;
    if ((st = cg_store_memory_get(c->rm->store, c->uid, id, &mem, &err))) return store_error(c, st, &err, "memory");
    memory_json(c->out, &mem, false);
    cg_memory_clear(&mem);
    return 200;
}

// ---- entry ------------------------------------------------------------------------------------

static int authenticate(ctx *c) {
    const char *a = c->rq->authorization;
    if (!a || strncmp(a, "Bearer ", 7))
        return error(c, 401, "invalid_api_key", NULL,
                     "Missing API key. Send a chingu key as 'Authorization: Bearer cg-…' (chingu key create).");
    a += 7;
    while (*a == ' ') a++;
    cg_err err = {0};
    cg_status st = cg_store_key_verify(c->rm->store, a, &c->uid, &c->scope, &err);
    if (st == CG_ERR_NOT_FOUND || st == CG_ERR_INVALID)
        return error(c, 401, "invalid_api_key", NULL, "Incorrect or revoked API key.");
    if (st) return error(c, 500, NULL, NULL, err.msg);
    return 0;
}

int cg_rest_mem_authorize(cg_rest_mem *rm, const char *a, int64_t *user_id) {
    *user_id = 0;
    if (!rm || !a || strncmp(a, "Bearer ", 7)) return 401;
    a += 7;
    while (*a == ' ') a++;
    cg_err err = {0};
    cg_key_scope scope;
    pthread_mutex_lock(&rm->mu);
    cg_status st = cg_store_key_verify(rm->store, a, user_id, &scope, &err);
    pthread_mutex_unlock(&rm->mu);
    if (st == CG_ERR_NOT_FOUND || st == CG_ERR_INVALID) return 401;
    if (st) {
        cg_log(CG_LOG_ERROR, "auth: the store failed to check a key: %s", err.msg);
        return 500;
    }
    return 0;
}

int cg_rest_mem_handle(cg_rest_mem *rm, const cg_rest_req *rq, cg_buf *out, const char **allow) {
    ctx c = {.rm = rm, .rq = rq, .out = out, .allow = allow};
    *allow = NULL;
    if (!rm)
        return error(&c, 501, "memory_not_configured", NULL,
                     "This server has no memory store: start it with --db URL|PATH or --data-dir DIR.");
    if (!cg_rest_mem_path(rq->path)) return error(&c, 404, "unknown_url", NULL, "Unknown request URL.");
    // Segments after /v1/: resource [/ id [/ sub]].
    const char *p = rq->path + 4, *slash = strchr(p, '/');
    size_t res_n = slash ? (size_t)(slash - p) : strlen(p);
    const char *id_s = slash ? slash + 1 : NULL, *sub = NULL;
    size_t id_n = 0;
    char subbuf[32] = "";
    if (id_s) {
        const char *s2 = strchr(id_s, '/');
        id_n = s2 ? (size_t)(s2 - id_s) : strlen(id_s);
        if (s2) {
            if (strchr(s2 + 1, '/') || strlen(s2 + 1) >= sizeof subbuf)
                return error(&c, 404, "unknown_url", NULL, "Unknown request URL.");
            snprintf(subbuf, sizeof subbuf, "%s", s2 + 1);
            sub = subbuf;
        }
    }
    bool has_id = id_s != NULL;
    pthread_mutex_lock(&rm->mu);
    int status = authenticate(&c);
    if (status) goto out;
    if (sub && !(res_n == 13 && !strncmp(p, "conversations", 13))) {
        status = error(&c, 404, "unknown_url", NULL, "Unknown request URL.");
    } else if (res_n == 5 && !strncmp(p, "users", 5)) {
        status = users(&c, id_s, id_n, has_id);
    } else if (res_n == 4 && !strncmp(p, "keys", 4)) {
        status = keys(&c, id_s, id_n, has_id);
    } else if (res_n == 13 && !strncmp(p, "conversations", 13)) {
        status = conversations(&c, id_s, id_n, has_id, sub);
    } else {
        status = memories(&c, id_s, id_n, has_id);
    }
    if (!cg_buf_ok(out)) {
        cg_buf_free(out);
        cg_buf_init(out);
        status = error(&c, 500, NULL, NULL, "The server ran out of memory.");
    }
out:
    pthread_mutex_unlock(&rm->mu);
    json_decref(c.body);
    return status;
}
