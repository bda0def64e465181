// http.c — libmicrohttpd glue: routing, limits, auth, CORS, streaming with suspend/resume,
// cancellation of clients that leave, graceful shutdown. The only file that includes microhttpd.h.
//
// Objects and ownership:
//   conn  — one HTTP request (MHD's con_cls). Owns the body buffer; freed in NOTIFY_COMPLETED.
//   call  — one generation, reference-counted: the conn holds one reference, the backend one
//           until its terminal event, a streaming response one until MHD frees the response.
//           call->mu guards everything in it; the backend's callback, the content reader and the
//           access handler all run on different threads.
// Suspend/resume invariants: a connection is suspended only (a) by the access handler of a
// non-streaming generation whose terminal event has not arrived, or (b) by the content reader of
// a stream that has no bytes pending and is not finished. Both set call->suspended under call->mu;
// the event callback resumes under the same mutex after adding bytes or the terminal event, so a
// wake-up is never lost and the daemon never spins on an empty reader. A suspended connection
// is never closed by MHD, so call->mhd stays valid while call->suspended is true.
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/time.h"
#include "server/metrics.h"
#include "server/sse.h"

#define DISCARD_MAX (64ull << 20)   // an oversized body up to this size is drained before the 413

typedef struct call call;

struct cg_server {
    cg_srv_config cfg;
    cg_srv_backend *be;
    struct MHD_Daemon *d;
    cg_srv_metrics *metrics;
    uint16_t port;
    pthread_mutex_t mu;          // guards the list of generations the backend still owes events
    pthread_cond_t cv;
    call *active;
    size_t n_active, n_suspended_nonstream;
    atomic_bool stopping;
    pthread_t watchdog;          // cancels parked requests whose client hung up
    bool has_watchdog;
    atomic_bool watchdog_stop;
    atomic_int n_conns;          // requests between their first call and NOTIFY_COMPLETED
    atomic_bool freed;           // a request completed or a socket closed since the last heap trim
};

struct call {
    pthread_mutex_t mu;
    int refs;
    cg_server *srv;
    struct MHD_Connection *mhd;  // NULL once the connection completed
    call *prev, *next;           // in srv->active while the backend owes the terminal event
    bool in_active;
    bool stream, suspended, terminal, failed;
    bool client_gone;            // the watchdog saw the client hang up while parked
    uint64_t id;
    cg_oai_acc *acc;
    cg_buf out;                  // stream bytes not yet handed to MHD
    size_t out_off;
    cg_oai_error err;            // the ERROR event as an OpenAI error
    uint64_t t_submit, t_last;
    bool got_first;
};

typedef struct conn {
    cg_buf body;
    bool too_big;                // the body exceeds max_body: the rest is discarded, then 413
    uint64_t n_discarded;
    bool answered;               // a response is queued (the rest of the upload is discarded)
    call *call;
    int status;
    uint64_t t_start;
    int64_t user_id;             // store user of the request's API key; 0: none
    char method[16];
    char path[128];
} conn;

// ---- small helpers ----------------------------------------------------------------------------

static void call_unref(call *c) {
    pthread_mutex_lock(&c->mu);
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left) return;
    cg_oai_acc_free(c->acc);
    cg_buf_free(&c->out);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void add_cors(cg_server *s, struct MHD_Connection *mc, struct MHD_Response *r) {
    if (!s->cfg.n_cors_origins) return;
    const char *origin = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Origin");
    if (!origin) return;
    for (size_t i = 0; i < s->cfg.n_cors_origins; i++) {
        const char *o = s->cfg.cors_origins[i];
        if (!strcmp(o, "*") || !strcmp(o, origin)) {
            MHD_add_response_header(r, "Access-Control-Allow-Origin", !strcmp(o, "*") ? "*" : origin);
            MHD_add_response_header(r, "Vary", "Origin");
            return;
        }
    }
}

// Queues a fully built body. Returns MHD_NO only when MHD cannot even queue (it then closes).
static enum MHD_Result respond(cg_server *s, struct MHD_Connection *mc, conn *cn, int status, const char *ctype,
                               const cg_buf *body, const char *retry_after) {
    struct MHD_Response *r = MHD_create_response_from_buffer(body->len, body->data ? body->data : (void *)"",
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    add_cors(s, mc, r);
    enum MHD_Result ret = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    cn->status = status;
    cn->answered = true;
    return ret;
}

static enum MHD_Result respond_error(cg_server *s, struct MHD_Connection *mc, conn *cn, const cg_oai_error *e) {
    cg_buf b;
    cg_buf_init(&b);
    cg_oai_error_json(&b, e);
    enum MHD_Result r = respond(s, mc, cn, e->http_status, "application/json", &b, e->http_status == 503 ? "1" : NULL);
    cg_buf_free(&b);
    return r;
}

static enum MHD_Result fail(cg_server *s, struct MHD_Connection *mc, conn *cn, int status, const char *type,
                            const char *code, const char *param, const char *msg) {
    cg_oai_error e;
    cg_oai_error_set(&e, status, type, code, param, "%s", msg);
    return respond_error(s, mc, cn, &e);
}

static enum MHD_Result respond_json(cg_server *s, struct MHD_Connection *mc, conn *cn, int status, cg_buf *b) {
    if (!cg_buf_ok(b)) return fail(s, mc, cn, 500, "server_error", NULL, NULL, "The server ran out of memory.");
    return respond(s, mc, cn, status, "application/json", b, NULL);
}

static void new_id(char *out, size_t n, const char *prefix) {
    unsigned char r[12];
    randombytes_buf(r, sizeof r);
    char hex[25];
    for (size_t i = 0; i < sizeof r; i++) snprintf(hex + 2 * i, 3, "%02x", r[i]);
    snprintf(out, n, "%s%s", prefix, hex);
}

static int status_of(cg_status st) {
    switch (st) {
    case CG_ERR_INVALID: case CG_ERR_LIMIT: case CG_ERR_FORMAT: case CG_ERR_TYPE: case CG_ERR_UNSUPPORTED: return 400;
    case CG_ERR_STATE: return 503;
    default: return 500;
    }
}

static void error_of(cg_oai_error *e, cg_status st, const char *msg) {
    int http = status_of(st);
    bool ctx_len = st == CG_ERR_LIMIT && strstr(msg, "context length");
    cg_oai_error_set(e, http, http == 400 ? "invalid_request_error" : "server_error",
                     ctx_len ? "context_length_exceeded" : http == 503 ? "server_overloaded" : NULL,
                     ctx_len ? "messages" : NULL, "%s", msg);
}

// ---- backend events ---------------------------------------------------------------------------

static void active_remove(cg_server *s, call *c) {
    pthread_mutex_lock(&s->mu);
    if (c->in_active) {
        if (c->prev) c->prev->next = c->next; else s->active = c->next;
        if (c->next) c->next->prev = c->prev;
        c->in_active = false;
        s->n_active--;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_event(void *user, const cg_srv_event *ev) {
    call *c = user;
    cg_server *s = c->srv;
    uint64_t now = cg_time_ns();
    bool terminal = ev->kind == CG_SRV_EV_DONE || ev->kind == CG_SRV_EV_ERROR;
    if ((ev->kind == CG_SRV_EV_TOKEN && !ev->is_echo) || ev->kind == CG_SRV_EV_TOOL_CALL) {
        if (!c->got_first) cg_srv_metrics_ttft(s->metrics, (double)(now - c->t_submit) * 1e-9);
        else cg_srv_metrics_itl(s->metrics, (double)(now - c->t_last) * 1e-9);
        c->got_first = true;
        c->t_last = now;
    }
    pthread_mutex_lock(&c->mu);
    bool gone = c->stream && !c->mhd;
    if (!gone) cg_oai_acc_event(c->acc, ev, &c->out);
    if (ev->kind == CG_SRV_EV_ERROR) {
        c->failed = true;
        if (ev->finish == CG_SRV_FINISH_TIMEOUT)
            cg_oai_error_set(&c->err, 504, "server_error", "timeout", NULL, "%s", ev->message ? ev->message : "timed out");
        else if (ev->finish == CG_SRV_FINISH_CANCELLED)
            cg_oai_error_set(&c->err, 503, "server_error", "cancelled", NULL, "%s", ev->message ? ev->message : "cancelled");
        else
            error_of(&c->err, ev->status, ev->message ? ev->message : "generation failed");
        if (c->stream && !gone) {
            cg_buf e;
            cg_buf_init(&e);
            cg_oai_error_json(&e, &c->err);
            cg_sse_data(&c->out, e.data ? e.data : "", e.len);
            cg_buf_free(&e);
        }
    }
    if (ev->kind == CG_SRV_EV_DONE) {
        cg_srv_usage u = ev->usage;
        cg_srv_metrics_tokens(s->metrics, u.prompt_tokens, u.completion_tokens);
    }
    if (terminal) c->terminal = true;
    // A stream wakes for every frame; a non-streaming response only when it is complete.
    if (c->suspended && c->mhd && (c->stream || terminal)) {
        c->suspended = false;
        MHD_resume_connection(c->mhd);
    }
    pthread_mutex_unlock(&c->mu);
    if (terminal) {
        active_remove(s, c);
        call_unref(c);   // the backend's reference
    }
}

// ---- streaming --------------------------------------------------------------------------------

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    call *c = cls;
    ssize_t n = 0;
    pthread_mutex_lock(&c->mu);
    size_t pending = c->out.len - c->out_off;
    if (pending) {
        size_t k = pending < max ? pending : max;
        memcpy(buf, c->out.data + c->out_off, k);
        c->out_off += k;
        if (c->out_off == c->out.len) { cg_buf_reset(&c->out); c->out_off = 0; }
        n = (ssize_t)k;
    } else if (c->terminal || !cg_buf_ok(&c->out)) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (c->mhd) {
        // Nothing yet: park the connection until on_event resumes it (returning 0 without
        // suspending would make the daemon thread spin).
        c->suspended = true;
        MHD_suspend_connection(c->mhd);
    } else {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

static void stream_free(void *cls) { call_unref(cls); }

// ---- generation endpoints ---------------------------------------------------------------------

static enum MHD_Result finish_nonstream(cg_server *s, struct MHD_Connection *mc, conn *cn) {
    call *c = cn->call;
    pthread_mutex_lock(&c->mu);
    bool failed = c->failed;
    cg_oai_error e = c->err;
    cg_buf b;
    cg_buf_init(&b);
    if (!failed) cg_oai_acc_body(c->acc, &b);
    pthread_mutex_unlock(&c->mu);
    enum MHD_Result r = failed ? respond_error(s, mc, cn, &e) : respond_json(s, mc, cn, 200, &b);
    cg_buf_free(&b);
    return r;
}

static bool model_matches(cg_server *s, struct MHD_Connection *mc, conn *cn, const char *model, enum MHD_Result *r) {
    cg_srv_model_info mi;
    s->be->info(s->be->state, &mi);
    if (!strcmp(model, mi.id)) return true;
    cg_oai_error e;
    cg_oai_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                     "The model '%.200s' does not exist or you do not have access to it.", model);
    *r = respond_error(s, mc, cn, &e);
    return false;
}

static enum MHD_Result generate(cg_server *s, struct MHD_Connection *mc, conn *cn, cg_oai_endpoint ep) {
    cg_oai_req q;
    cg_oai_error e;
    enum MHD_Result r = MHD_YES;
    cg_err err = {0};
    if (cg_oai_parse(ep, cn->body.data ? cn->body.data : "", cn->body.len, &s->cfg.limits, &q, &e))
        return respond_error(s, mc, cn, &e);
    if (!model_matches(s, mc, cn, q.model, &r)) goto out;
    q.req.key_user = cn->user_id;
    call *c = calloc(1, sizeof *c);
    if (!c) { r = fail(s, mc, cn, 500, "server_error", NULL, NULL, "The server ran out of memory."); goto out; }
    pthread_mutex_init(&c->mu, NULL);
    cg_buf_init(&c->out);
    c->refs = 1;   // the conn's
    c->srv = s;
    c->mhd = mc;
    c->stream = q.stream;
    cn->call = c;
    char id[48];
    new_id(id, sizeof id, ep == CG_OAI_CHAT ? "chatcmpl-" : "cmpl-");
    uint32_t n_choices = q.req.n * (uint32_t)(ep == CG_OAI_COMPLETIONS ? q.req.n_prompts : 1);
    cg_oai_acc_params ap = {.endpoint = ep, .id = id, .model = q.model, .created = cg_time_unix_ms() / 1000,
                            .n_choices = n_choices, .logprobs = q.req.logprobs, .stream = q.stream,
                            .include_usage = q.include_usage};
    if (cg_oai_acc_new(&ap, &c->acc, &err)) {
        c->terminal = true;   // nothing was submitted
        r = fail(s, mc, cn, 500, "server_error", NULL, NULL, err.msg);
        goto out;
    }
    c->refs++;   // the backend's, handed over by a successful submit
    c->t_submit = cg_time_ns();
    pthread_mutex_lock(&s->mu);
    c->in_active = true;
    c->next = s->active;
    if (s->active) s->active->prev = c;
    s->active = c;
    s->n_active++;
    pthread_mutex_unlock(&s->mu);
    cg_status st = atomic_load(&s->stopping) ? cg_err_set(&err, CG_ERR_STATE, "the server is shutting down")
                                              : s->be->submit(s->be->state, &q.req, on_event, c, &c->id, &err);
    if (st) {
        active_remove(s, c);
        c->refs--;   // no event will come
        c->terminal = true;
        error_of(&e, st, err.msg);
        r = respond_error(s, mc, cn, &e);
        goto out;
    }
    if (q.stream) {
        pthread_mutex_lock(&c->mu);
        c->refs++;   // the response's
        pthread_mutex_unlock(&c->mu);
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, c,
                                                                      stream_free);
        if (!resp) {
            call_unref(c);
            s->be->cancel(s->be->state, c->id);
            r = MHD_NO;
            goto out;
        }
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no");
        add_cors(s, mc, resp);
        r = MHD_queue_response(mc, 200, resp);
        MHD_destroy_response(resp);
        cn->status = 200;
        cn->answered = true;
        goto out;
    }
    pthread_mutex_lock(&c->mu);
    bool done = c->terminal;
    if (!done) {
        c->suspended = true;
        MHD_suspend_connection(mc);
    }
    pthread_mutex_unlock(&c->mu);
    if (done) r = finish_nonstream(s, mc, cn);
out:
    cg_oai_req_free(&q);
    return r;
}

static enum MHD_Result embeddings(cg_server *s, struct MHD_Connection *mc, conn *cn) {
    cg_oai_req q;
    cg_oai_error e;
    enum MHD_Result r = MHD_YES;
    float *vecs = NULL;
    cg_err err = {0};
    if (cg_oai_parse(CG_OAI_EMBEDDINGS, cn->body.data ? cn->body.data : "", cn->body.len, &s->cfg.limits, &q, &e))
        return respond_error(s, mc, cn, &e);
    if (!model_matches(s, mc, cn, q.model, &r)) goto out;
    cg_srv_model_info mi;
    s->be->info(s->be->state, &mi);
    if (!mi.n_embd || !s->be->embed) {
        r = fail(s, mc, cn, 400, "invalid_request_error", "unsupported_model", "model", "This model cannot compute embeddings.");
        goto out;
    }
    if (q.dimensions && q.dimensions != mi.n_embd) {
        cg_oai_error_set(&e, 400, "invalid_request_error", "invalid_value", "dimensions",
                         "Invalid 'dimensions': this model embeds into %u dimensions, %u were requested.", mi.n_embd,
                         q.dimensions);
        r = respond_error(s, mc, cn, &e);
        goto out;
    }
    vecs = calloc(q.n_inputs * mi.n_embd, sizeof *vecs);   // n_inputs ≤ max_prompts, n_embd from the model
    if (!vecs) { r = fail(s, mc, cn, 500, "server_error", NULL, NULL, "The server ran out of memory."); goto out; }
    uint64_t tokens = 0;
    for (size_t i = 0; i < q.n_inputs; i++) {
        uint32_t nt = 0;
        cg_status st = s->be->embed(s->be->state, &q.inputs[i], vecs + i * mi.n_embd, mi.n_embd, &nt, &err);
        if (st) {
            error_of(&e, st, err.msg);
            r = respond_error(s, mc, cn, &e);
            goto out;
        }
        tokens += nt;
    }
    cg_srv_metrics_tokens(s->metrics, tokens, 0);
    cg_buf b;
    cg_buf_init(&b);
    cg_oai_embeddings_json(&b, mi.id, vecs, q.n_inputs, mi.n_embd, q.base64, tokens);
    r = respond_json(s, mc, cn, 200, &b);
    cg_buf_free(&b);
out:
    free(vecs);
    cg_oai_req_free(&q);
    return r;
}

// ---- routing ----------------------------------------------------------------------------------

static const char *query_arg(void *mc, const char *name) {
    return MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, name);
}

// The personal layer (rest_mem.c): it authenticates with the store's own keys.
static enum MHD_Result rest_mem(cg_server *s, struct MHD_Connection *mc, conn *cn, const char *url, const char *method) {
    cg_rest_req rq = {.method = method, .path = url, .body = cn->body.data, .n_body = cn->body.len,
                      .authorization = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization"),
                      .arg = query_arg, .arg_ctx = mc};
    cg_buf b;
    cg_buf_init(&b);
    const char *allow = NULL;
    int status = cg_rest_mem_handle(s->cfg.mem, &rq, &b, &allow);
    enum MHD_Result r = MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.data ? b.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (resp) {
        MHD_add_response_header(resp, "Content-Type", "application/json");
        if (allow) MHD_add_response_header(resp, "Allow", allow);
        add_cors(s, mc, resp);
        r = MHD_queue_response(mc, (unsigned)status, resp);
        MHD_destroy_response(resp);
        cn->status = status;
        cn->answered = true;
    }
    cg_buf_free(&b);
    return r;
}

static enum MHD_Result route(cg_server *s, struct MHD_Connection *mc, conn *cn, const char *url, const char *method) {
    if (cg_rest_mem_path(url)) return rest_mem(s, mc, cn, url, method);
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    cg_buf b;
    cg_buf_init(&b);
    enum MHD_Result r;
    cg_srv_gauges g;
    cg_srv_model_info mi;
    s->be->info(s->be->state, &mi);
    const char *allow = NULL;
    if (!strcmp(url, "/v1/chat/completions")) { if (post) return generate(s, mc, cn, CG_OAI_CHAT); allow = "POST"; }
    else if (!strcmp(url, "/v1/completions")) { if (post) return generate(s, mc, cn, CG_OAI_COMPLETIONS); allow = "POST"; }
    else if (!strcmp(url, "/v1/embeddings")) { if (post) return embeddings(s, mc, cn); allow = "POST"; }
    else if (!strcmp(url, "/v1/models")) {
        if (get) { cg_oai_models_json(&b, &mi); r = respond_json(s, mc, cn, 200, &b); goto out; }
        allow = "GET";
    } else if (!strncmp(url, "/v1/models/", 11)) {
        if (get) {
            if (strcmp(url + 11, mi.id)) {
                cg_oai_error e;
                cg_oai_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                                 "The model '%.200s' does not exist or you do not have access to it.", url + 11);
                r = respond_error(s, mc, cn, &e);
            } else {
                cg_oai_model_json(&b, &mi);
                r = respond_json(s, mc, cn, 200, &b);
            }
            goto out;
        }
        allow = "GET";
    } else if (!strcmp(url, "/health")) {
        if (get) {
            s->be->gauges(s->be->state, &g);
            cg_buf_puts(&b, g.loading ? "{\"status\":\"loading\"}" : "{\"status\":\"ok\"}");
            r = respond(s, mc, cn, g.loading ? 503 : 200, "application/json", &b, g.loading ? "1" : NULL);
            goto out;
        }
        allow = "GET";
    } else if (!strcmp(url, "/metrics")) {
        if (get) {
            s->be->gauges(s->be->state, &g);
            cg_srv_metrics_render(s->metrics, &g, &b);
            r = respond(s, mc, cn, 200, "text/plain; version=0.0.4; charset=utf-8", &b, NULL);
            goto out;
        }
        allow = "GET";
    }
    cg_oai_error e;
    if (allow) cg_oai_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL,
                                "Method %.16s is not allowed on %.100s (allowed: %s).", method, url, allow);
    else cg_oai_error_set(&e, 404, "invalid_request_error", "unknown_url", NULL, "Unknown request URL: %.16s %.100s.",
                          method, url);
    cg_oai_error_json(&b, &e);
    {
        struct MHD_Response *resp = MHD_create_response_from_buffer(b.len, b.data ? b.data : (void *)"", MHD_RESPMEM_MUST_COPY);
        if (!resp) { r = MHD_NO; goto out; }
        MHD_add_response_header(resp, "Content-Type", "application/json");
        if (allow) MHD_add_response_header(resp, "Allow", allow);
        add_cors(s, mc, resp);
        r = MHD_queue_response(mc, (unsigned)e.http_status, resp);
        MHD_destroy_response(resp);
        cn->status = e.http_status;
        cn->answered = true;
    }
out:
    cg_buf_free(&b);
    return r;
}

static enum MHD_Result preflight(cg_server *s, struct MHD_Connection *mc, conn *cn) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Allow", "GET, POST, PATCH, DELETE, OPTIONS");
    if (s->cfg.n_cors_origins && MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Origin")) {
        add_cors(s, mc, r);
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS");
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    }
    enum MHD_Result ret = MHD_queue_response(mc, 204, r);
    MHD_destroy_response(r);
    cn->status = 204;
    cn->answered = true;
    return ret;
}

static enum MHD_Result too_large(cg_server *s, struct MHD_Connection *mc, conn *cn) {
    cg_oai_error e;
    cg_oai_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                     "The request body is larger than this server accepts (%zu bytes).", s->cfg.max_body);
    return respond_error(s, mc, cn, &e);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    cg_server *s = cls;
    conn *cn = *con_cls;
    if (!cn) {   // first call: headers only
        if (!(cn = calloc(1, sizeof *cn))) return MHD_NO;
        cg_buf_init(&cn->body);
        cn->t_start = cg_time_ns();
        snprintf(cn->method, sizeof cn->method, "%s", method);
        snprintf(cn->path, sizeof cn->path, "%s", url);
        *con_cls = cn;
        atomic_fetch_add(&s->n_conns, 1);
        if (!strcmp(method, "OPTIONS")) return preflight(s, mc, cn);
        // The OpenAI endpoints open with a --api-key-file key or a live store key (the request then
        // knows its user); the personal layer checks store keys itself.
        if ((s->cfg.auth || s->cfg.mem) && strcmp(url, "/health") && !cg_rest_mem_path(url)) {
            const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
            int a = s->cfg.auth && cg_srv_auth_check(s->cfg.auth, h) ? 0 : 401;
            if (a && s->cfg.mem) a = cg_rest_mem_authorize(s->cfg.mem, h, &cn->user_id);
            if (a == 500)
                return fail(s, mc, cn, 500, "server_error", NULL, NULL, "The server could not check the API key.");
            if (a)
                return fail(s, mc, cn, 401, "invalid_request_error", "invalid_api_key", NULL,
                            "Incorrect, revoked or missing API key. Send it as 'Authorization: Bearer <key>'.");
        }
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
        unsigned long long n_cl = cl ? strtoull(cl, NULL, 10) : 0;
        if (n_cl > s->cfg.max_body) {
            // A moderately oversized body is read and dropped so the client sees the 413 rather
            // than a reset while it is still sending; a huge one is refused at once (connection closed).
            if (n_cl <= DISCARD_MAX) cn->too_big = true;
            else return too_large(s, mc, cn);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cn->answered && !cn->too_big && cn->body.len + *upload_size > s->cfg.max_body) {
            cn->too_big = true;
            cg_buf_free(&cn->body);
            cg_buf_init(&cn->body);
        }
        if (cn->too_big) cn->n_discarded += *upload_size;
        else if (!cn->answered) cg_buf_append(&cn->body, upload, *upload_size);
        *upload_size = 0;
        if (cn->too_big && !cn->answered && cn->n_discarded > DISCARD_MAX) return too_large(s, mc, cn);
        return MHD_YES;
    }
    if (cn->answered) return MHD_YES;
    if (cn->too_big) return too_large(s, mc, cn);
    if (cn->call) {   // resumed after the terminal event
        call *c = cn->call;
        pthread_mutex_lock(&c->mu);
        bool done = c->terminal;
        if (!done) {   // not expected (only the terminal event resumes); park again
            c->suspended = true;
            MHD_suspend_connection(mc);
        }
        pthread_mutex_unlock(&c->mu);
        return done ? finish_nonstream(s, mc, cn) : MHD_YES;
    }
    if (!cg_buf_ok(&cn->body)) return fail(s, mc, cn, 500, "server_error", NULL, NULL, "The server ran out of memory.");
    return route(s, mc, cn, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)mc;
    cg_server *s = cls;
    conn *cn = *con_cls;
    if (!cn) return;
    *con_cls = NULL;
    int status = cn->status ? cn->status : 500;
    cg_srv_usage u = {0};
    if (cn->call) {
        call *c = cn->call;
        pthread_mutex_lock(&c->mu);
        c->mhd = NULL;
        bool cancel = !c->terminal;
        if (c->acc) u = cg_oai_acc_usage(c->acc);
        pthread_mutex_unlock(&c->mu);
        if (c->client_gone) status = 499;
        if (cancel) {
            s->be->cancel(s->be->state, c->id);   // the client left before the end
            status = 499;
        }
        call_unref(c);
    } else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !cn->status) {
        status = 499;
    }
    cg_srv_metrics_request(s->metrics, status);
    if (s->cfg.log_requests)
        CG_INFO("%s %s %d user=%" PRId64 " prompt=%" PRIu64 " gen=%" PRIu64 " cached=%" PRIu64 " %.1fms", cn->method,
                cn->path, status, cn->user_id, u.prompt_tokens, u.completion_tokens, u.cached_tokens,
                (double)(cg_time_ns() - cn->t_start) * 1e-6);
    cg_buf_free(&cn->body);
    free(cn);
    atomic_store(&s->freed, true);
    atomic_fetch_sub(&s->n_conns, 1);
}

// A closed socket freed MHD's memory pool for it: worth a heap trim once idle.
static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx, enum MHD_ConnectionNotificationCode toe) {
    (void)mc, (void)socket_ctx;
    cg_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) atomic_store(&s->freed, true);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = 0;
    CG_DEBUG("http: %s", line);
}

// ---- watchdog ---------------------------------------------------------------------------------

// A parked (suspended) connection is not polled by MHD, so a client that hangs up while its
// request waits in the queue or generates without streaming would go unnoticed until the end.
// Every 200 ms this thread peeks at the socket of each parked request; EOF or an error means the
// client left, and the generation is cancelled. Holding call->mu while call->suspended is true
// guarantees the connection (and its fd) still exists: only the event callback resumes it, under
// the same mutex. Lock order: srv->mu, then call->mu.
static void *watchdog_main(void *arg) {
    cg_server *s = arg;
    while (!atomic_load(&s->watchdog_stop)) {
        usleep(200000);
        uint64_t gone[64];
        size_t n_gone = 0;
        pthread_mutex_lock(&s->mu);
        for (call *c = s->active; c && n_gone < 64; c = c->next) {
            pthread_mutex_lock(&c->mu);
            if (c->suspended && c->mhd && !c->terminal && !c->client_gone) {
                const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->mhd, MHD_CONNECTION_INFO_CONNECTION_FD);
                char b;
                ssize_t r = ci ? recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) : 1;
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                    c->client_gone = true;
                    gone[n_gone++] = c->id;
                }
            }
            pthread_mutex_unlock(&c->mu);
        }
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < n_gone; i++) s->be->cancel(s->be->state, gone[i]);
#ifdef __GLIBC__
        // Idle after traffic: hand the heap's free pages back (all of glibc's per-thread arenas —
        // MHD's threads, the engine's), so resident memory returns to its baseline between bursts.
        if (atomic_load(&s->n_conns) == 0 && atomic_exchange(&s->freed, false)) malloc_trim(0);
#endif
    }
    return NULL;
}

// ---- start / stop -----------------------------------------------------------------------------

cg_status cg_server_start(const cg_srv_config *cfg, cg_srv_backend *be, cg_server **out, cg_err *err) {
    cg_status st = CG_OK;
    if (sodium_init() < 0) return cg_err_set(err, CG_ERR_INTERNAL, "server: libsodium failed to initialise");
    cg_server *s = calloc(1, sizeof *s);
    if (!s) return cg_err_set(err, CG_ERR_NOMEM, "server: out of memory");
    s->cfg = *cfg;
    s->be = be;
    if (!s->cfg.host) s->cfg.host = "127.0.0.1";
    if (!s->cfg.n_threads) s->cfg.n_threads = 4;
    if (!s->cfg.max_body) s->cfg.max_body = 8u << 20;
    if (!s->cfg.shutdown_grace_ms) s->cfg.shutdown_grace_ms = 5000;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if ((st = cg_srv_metrics_new(&s->metrics, err))) goto fail;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->cfg.host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(s->cfg.port);
    } else if (inet_pton(AF_INET6, s->cfg.host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(s->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        st = cg_err_set(err, CG_ERR_INVALID, "server: --host '%s' is not a numeric IPv4 or IPv6 address", s->cfg.host);
        goto fail;
    }
    s->d = MHD_start_daemon(flags, s->cfg.port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg.n_threads,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_END);
    if (!s->d) {
        st = cg_err_set(err, CG_ERR_IO, "server: cannot listen on %s port %u (in use, or not allowed)", s->cfg.host,
                        s->cfg.port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) == 0) s->has_watchdog = true;
    else CG_WARN("server: no watchdog thread; clients that leave while parked are noticed only at the end");
    *out = s;
    return CG_OK;
fail:
    cg_srv_metrics_free(s->metrics);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return st;
}

uint16_t cg_server_port(const cg_server *s) { return s->port; }

static void wait_active(cg_server *s, uint64_t ms) {
    uint64_t end = cg_time_ns() + ms * 1000000ull;
    pthread_mutex_lock(&s->mu);
    while (s->n_active && cg_time_ns() < end) {
        pthread_mutex_unlock(&s->mu);
        usleep(10000);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

void cg_server_stop(cg_server *s) {
    if (!s) return;
    atomic_store(&s->stopping, true);
    MHD_socket ls = MHD_quiesce_daemon(s->d);   // stop accepting; existing connections go on
    if (ls != MHD_INVALID_SOCKET) close(ls);
    wait_active(s, s->cfg.shutdown_grace_ms);
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_active;
    uint64_t *ids = n ? calloc(n, sizeof *ids) : NULL;
    size_t k = 0;
    for (call *c = s->active; c && ids && k < n; c = c->next) ids[k++] = c->id;
    pthread_mutex_unlock(&s->mu);
    if (n) CG_INFO("server: cancelling %zu request(s) still running after %u ms", n, s->cfg.shutdown_grace_ms);
    for (size_t i = 0; i < k; i++) s->be->cancel(s->be->state, ids[i]);
    free(ids);
    wait_active(s, 10000);   // every suspended connection is resumed by its terminal event
    usleep(50000);           // let resumed connections flush their last bytes
    atomic_store(&s->watchdog_stop, true);
    if (s->has_watchdog) pthread_join(s->watchdog, NULL);
    MHD_stop_daemon(s->d);
    pthread_mutex_lock(&s->mu);
    size_t left = s->n_active;
    pthread_mutex_unlock(&s->mu);
    if (left) {
        // The backend broke its contract (no terminal event after cancel). Its late events would
        // touch this struct, so it is deliberately leaked rather than freed under them.
        CG_ERROR("server: %zu request(s) never finished after cancel; not freeing the server state", left);
        return;
    }
    cg_srv_metrics_free(s->metrics);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
