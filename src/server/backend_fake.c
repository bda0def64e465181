// backend_fake.c — deterministic fake backend (test equipment; see backend_fake.h for what it does).
//
// Structure: submit() turns the request into a `job` (prompt hash, token counts, per-choice plan:
// words, a fixed JSON payload or a tool call) and appends it to a bounded queue. One engine thread
// admits jobs while fewer than `slots` run, then every `latency_ms` advances each running choice by
// one token and delivers events. Invariants: a job is in exactly one of queue/running, both guarded
// by mu; only the engine thread touches a running job's choice state and calls callbacks, always
// without holding mu (a callback may call cancel()); a job is freed right after its terminal event.
#include "server/backend_fake.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/time.h"

#define MAX_STOP 4
#define MAX_TOP 20
#define N_PREFIX_CACHE 64
#define ARG_CHUNK 8
#define JSON_CHUNK 4

static const char *const WORDS[] = {
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "친구", "안녕하세요", "오늘",
    "data", "\"quoted\"", "back\\slash", "tab\t", "line\n", "café", "🙂", "model", "test",
    "fake", "token", "seoul", "river", "light", "</script>", "x<y&z", "42",
};
#define N_WORDS (sizeof WORDS / sizeof WORDS[0])

typedef enum { MODE_WORDS, MODE_PAYLOAD, MODE_TOOL } choice_mode;

typedef struct choice {
    choice_mode mode;
    uint64_t hash;           // per-choice seed
    int64_t natural;         // tokens before a natural end (-1: none)
    char *payload;           // MODE_PAYLOAD / MODE_TOOL: owned text split into chunks
    size_t n_payload, i_payload;
    char tool_id[32];
    const char *tool_name;   // points into job->tool_names
    char *echo;              // owned; prompt text to emit first (COMPLETION echo)
    cg_buf text;             // all generated text
    size_t n_emitted;        // text bytes already delivered
    int64_t n_tokens;
    bool done;
    cg_srv_finish finish;
} choice;

typedef struct job {
    struct job *next;
    uint64_t id;
    cg_srv_event_fn fn;
    void *user;
    atomic_bool cancelled;
    uint64_t deadline_ns;    // 0: none
    uint64_t prompt_tokens, cached_tokens;
    int64_t limit;           // max tokens per choice
    bool logprobs;
    uint32_t top_logprobs;
    char *stop[MAX_STOP];
    size_t n_stop;
    char *tool_names;        // owned storage for the chosen tool's name
    choice *choices;
    uint32_t n_choices;
    bool has_tools;
} job;

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stopping;
    job *queue, *running;    // singly linked, guarded by mu
    uint32_t n_queue, n_running;
    uint32_t slots, queue_cap, latency_ms;
    uint32_t n_ctx;
    uint64_t next_id;
    uint64_t loaded_at_ns;
    uint64_t seed_counter;
    uint64_t prefix_hash[N_PREFIX_CACHE], prefix_tokens[N_PREFIX_CACHE];
    size_t i_prefix;
    uint64_t prefix_hit, prefix_lookup, cancelled_total, used_blocks;
    char id[64];
} fake;

// ---- hashing ----------------------------------------------------------------------------------

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}
static uint64_t fnv_str(uint64_t h, const char *s) { return s ? fnv(h, s, strlen(s) + 1) : fnv(h, "", 1); }
static uint64_t mix(uint64_t x) {   // splitmix64 finaliser
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t count_words(const char *s) {
    uint64_t n = 0;
    bool in = false;
    for (; s && *s; s++) {
        bool sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

// ---- JSON instance from a schema --------------------------------------------------------------

static json_t *instance(json_t *schema, int depth);

static json_t *instance_of_type(json_t *schema, const char *type, int depth) {
    if (!strcmp(type, "object")) {
        json_t *obj = json_object(), *props = json_object_get(schema, "properties");
        const char *k;
        json_t *v;
        json_object_foreach(props, k, v) json_object_set_new(obj, k, instance(v, depth + 1));
        return obj;
    }
    if (!strcmp(type, "array")) {
        json_t *arr = json_array();
        json_int_t n = json_integer_value(json_object_get(schema, "minItems"));
        if (n < 1) n = 1;
        if (n > 8) n = 8;
        json_t *items = json_object_get(schema, "items");
        for (json_int_t i = 0; i < n; i++) json_array_append_new(arr, instance(items, depth + 1));
        return arr;
    }
    if (!strcmp(type, "string")) {
        json_int_t n = json_integer_value(json_object_get(schema, "minLength"));
        char s[64] = "fake";
        for (size_t i = 4; i < (size_t)n && i < sizeof s - 1; i++) s[i] = 'x', s[i + 1] = 0;
        return json_string(s);
    }
    if (!strcmp(type, "integer") || !strcmp(type, "number")) {
        json_t *mn = json_object_get(schema, "minimum");
        double v = mn ? json_number_value(mn) : 7;
        json_t *mx = json_object_get(schema, "maximum");
        if (mx && v > json_number_value(mx)) v = json_number_value(mx);
        return !strcmp(type, "integer") ? json_integer((json_int_t)v) : json_real(v);
    }
    if (!strcmp(type, "boolean")) return json_true();
    return json_null();
}

static json_t *instance(json_t *schema, int depth) {
    if (!json_is_object(schema) || depth > 16) return json_string("fake");
    json_t *v;
    if ((v = json_object_get(schema, "const"))) return json_deep_copy(v);
    if ((v = json_object_get(schema, "enum")) && json_array_size(v)) return json_deep_copy(json_array_get(v, 0));
    if ((v = json_object_get(schema, "anyOf")) && json_array_size(v)) return instance(json_array_get(v, 0), depth + 1);
    if ((v = json_object_get(schema, "oneOf")) && json_array_size(v)) return instance(json_array_get(v, 0), depth + 1);
    json_t *type = json_object_get(schema, "type");
    if (json_is_string(type)) return instance_of_type(schema, json_string_value(type), depth);
    if (json_is_array(type)) {
        size_t i;
        json_t *t;
        json_array_foreach(type, i, t) if (json_is_string(t) && strcmp(json_string_value(t), "null"))
            return instance_of_type(schema, json_string_value(t), depth);
        return json_null();
    }
    if (json_object_get(schema, "properties")) return instance_of_type(schema, "object", depth);
    return json_string("fake");
}

// Serialises an instance of the schema in `schema_json` (a malloc'ed string, NULL on failure).
static char *instance_text(const char *schema_json) {
    json_t *schema = schema_json ? json_loads(schema_json, 0, NULL) : NULL;
    json_t *inst = instance(schema, 0);
    char *s = json_dumps(inst, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(inst);
    json_decref(schema);
    return s;
}

// ---- jobs -------------------------------------------------------------------------------------

static void job_free(job *j) {
    if (!j) return;
    for (uint32_t i = 0; j->choices && i < j->n_choices; i++) {
        free(j->choices[i].payload);
        free(j->choices[i].echo);
        cg_buf_free(&j->choices[i].text);
    }
    free(j->choices);
    for (size_t i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->tool_names);
    free(j);
}

// Simulated prefix cache: hashes of message prefixes. Returns the tokens of the longest cached
// prefix and records every prefix of this prompt. Caller holds mu.
static uint64_t prefix_cache_lookup(fake *f, const cg_srv_request *req) {
    uint64_t h = 0xcbf29ce484222325ull, tokens = 0, best = 0;
    for (size_t i = 0; i < req->n_messages; i++) {
        const cg_srv_message *m = &req->messages[i];
        h = fnv(h, &m->role, sizeof m->role);
        h = fnv_str(h, m->content);
        tokens += count_words(m->content) + 3;
        bool hit = false;
        for (size_t k = 0; k < N_PREFIX_CACHE; k++)
            if (f->prefix_hash[k] == h && f->prefix_tokens[k] == tokens) hit = true;
        if (hit) best = tokens;
        else {
            f->prefix_hash[f->i_prefix] = h;
            f->prefix_tokens[f->i_prefix] = tokens;
            f->i_prefix = (f->i_prefix + 1) % N_PREFIX_CACHE;
        }
    }
    f->prefix_hit += best;
    f->prefix_lookup += tokens;
    return best;
}

static cg_status plan_choice(const cg_srv_request *req, job *j, choice *c, size_t i_prompt, cg_err *err) {
    cg_buf_init(&c->text);
    c->natural = 8 + (int64_t)(mix(c->hash) % 25);
    bool tool_result_last = req->n_messages && req->messages[req->n_messages - 1].role == CG_SRV_ROLE_TOOL;
    bool use_tool = req->n_tools && req->tool_choice != CG_SRV_TOOL_CHOICE_NONE &&
                    (!tool_result_last || req->tool_choice != CG_SRV_TOOL_CHOICE_AUTO);
    if (req->kind == CG_SRV_KIND_COMPLETION && req->echo) {
        const cg_srv_prompt *p = &req->prompts[i_prompt];
        cg_buf b;
        cg_buf_init(&b);
        if (p->text) cg_buf_puts(&b, p->text);
        for (size_t k = 0; !p->text && k < p->n_tokens; k++) cg_buf_printf(&b, "<%" PRId32 ">", p->tokens[k]);
        if (!cg_buf_ok(&b)) { cg_buf_free(&b); return cg_err_set(err, CG_ERR_NOMEM, "fake: out of memory"); }
        c->echo = b.data ? b.data : strdup("");
        if (!c->echo) return cg_err_set(err, CG_ERR_NOMEM, "fake: out of memory");
    }
    if (use_tool) {
        const cg_srv_tool *t = &req->tools[0];
        if (req->tool_choice == CG_SRV_TOOL_CHOICE_NAMED) {
            t = NULL;
            for (size_t k = 0; k < req->n_tools; k++)
                if (!strcmp(req->tools[k].name, req->tool_choice_name)) t = &req->tools[k];
            if (!t)
                return cg_err_set(err, CG_ERR_INVALID, "tool_choice names function '%s', which is not in tools",
                                  req->tool_choice_name);
        }
        if (!j->tool_names && !(j->tool_names = strdup(t->name)))
            return cg_err_set(err, CG_ERR_NOMEM, "fake: out of memory");
        c->mode = MODE_TOOL;
        c->tool_name = j->tool_names;
        snprintf(c->tool_id, sizeof c->tool_id, "call_%016" PRIx64, mix(c->hash ^ 0x7001));
        c->payload = instance_text(t->parameters_json);
    } else if (req->format != CG_SRV_FORMAT_TEXT) {
        c->mode = MODE_PAYLOAD;
        c->payload = req->format == CG_SRV_FORMAT_JSON_SCHEMA
                         ? instance_text(req->schema_json)
                         : strdup("{\"answer\":\"fake\",\"ok\":true,\"n\":3}");
    } else {
        c->mode = MODE_WORDS;
        return CG_OK;
    }
    if (!c->payload) return cg_err_set(err, CG_ERR_NOMEM, "fake: out of memory");
    c->n_payload = strlen(c->payload);
    return CG_OK;
}

static bool prompt_says_long(const cg_srv_request *req) {
    for (size_t i = 0; i < req->n_messages; i++)
        if (req->messages[i].content && strstr(req->messages[i].content, "fake:long")) return true;
    for (size_t i = 0; i < req->n_prompts; i++)
        if (req->prompts[i].text && strstr(req->prompts[i].text, "fake:long")) return true;
    return false;
}

static cg_status make_job(fake *f, const cg_srv_request *req, job **out, cg_err *err) {
    cg_status st = CG_OK;
    job *j = calloc(1, sizeof *j);
    if (!j) return cg_err_set(err, CG_ERR_NOMEM, "fake: out of memory");
    uint64_t h = fnv(0xcbf29ce484222325ull, &req->kind, sizeof req->kind);
    uint64_t tokens = 0;
    for (size_t i = 0; i < req->n_messages; i++) {
        const cg_srv_message *m = &req->messages[i];
        h = fnv(h, &m->role, sizeof m->role);
        h = fnv_str(fnv_str(fnv_str(h, m->content), m->name), m->tool_call_id);
        tokens += count_words(m->content) + 3;
    }
    size_t n_prompts = req->kind == CG_SRV_KIND_COMPLETION ? req->n_prompts : 1;
    uint64_t max_prompt = tokens;
    for (size_t i = 0; req->kind == CG_SRV_KIND_COMPLETION && i < req->n_prompts; i++) {
        const cg_srv_prompt *p = &req->prompts[i];
        uint64_t t = p->text ? count_words(p->text) + 1 : p->n_tokens;
        if (t > max_prompt) max_prompt = t;
        tokens += t;
    }
    j->prompt_tokens = tokens;
    if (max_prompt >= f->n_ctx) {
        st = cg_err_set(err, CG_ERR_LIMIT,
                        "This model's maximum context length is %u tokens, but the prompt has %" PRIu64 " tokens",
                        f->n_ctx, max_prompt);
        goto fail;
    }
    int64_t room = (int64_t)(f->n_ctx - max_prompt);
    if (req->max_tokens >= 0 && req->max_tokens > room) {
        st = cg_err_set(err, CG_ERR_LIMIT,
                        "This model's maximum context length is %u tokens; the prompt has %" PRIu64
                        " tokens and max_tokens asks for %" PRId64 " more",
                        f->n_ctx, max_prompt, req->max_tokens);
        goto fail;
    }
    j->limit = req->max_tokens >= 0 ? req->max_tokens : room;
    j->logprobs = req->logprobs;
    j->top_logprobs = req->top_logprobs > MAX_TOP ? MAX_TOP : req->top_logprobs;
    j->has_tools = req->n_tools > 0;
    for (size_t i = 0; i < req->n_stop && i < MAX_STOP; i++) {
        if (!(j->stop[i] = strdup(req->stop[i]))) { st = cg_err_set(err, CG_ERR_NOMEM, "fake: out of memory"); goto fail; }
        j->n_stop++;
    }
    pthread_mutex_lock(&f->mu);
    uint64_t seed = req->has_seed ? req->seed : mix(cg_time_ns() ^ ++f->seed_counter);
    if (req->kind == CG_SRV_KIND_CHAT) j->cached_tokens = prefix_cache_lookup(f, req);
    pthread_mutex_unlock(&f->mu);
    uint64_t n_choices = (uint64_t)n_prompts * req->n;
    if (n_choices == 0 || n_choices > 1024) {
        st = cg_err_set(err, CG_ERR_LIMIT, "fake: %" PRIu64 " choices (1..1024)", n_choices);
        goto fail;
    }
    j->n_choices = (uint32_t)n_choices;
    if (!(j->choices = calloc(n_choices, sizeof *j->choices))) { st = cg_err_set(err, CG_ERR_NOMEM, "fake: out of memory"); goto fail; }
    bool is_long = prompt_says_long(req);
    for (uint32_t i = 0; i < j->n_choices; i++) {
        choice *c = &j->choices[i];
        size_t i_prompt = i / req->n;
        uint64_t ph = h;
        if (req->kind == CG_SRV_KIND_COMPLETION) {
            const cg_srv_prompt *p = &req->prompts[i_prompt];
            ph = p->text ? fnv_str(ph, p->text) : fnv(ph, p->tokens, p->n_tokens * sizeof *p->tokens);
        }
        c->hash = mix(ph ^ mix(seed) ^ mix(0x1000 + i % req->n));
        if ((st = plan_choice(req, j, c, i_prompt, err))) goto fail;
        if (is_long) c->natural = -1;
    }
    if (req->timeout_ms) j->deadline_ns = cg_time_ns() + (uint64_t)req->timeout_ms * 1000000ull;
    *out = j;
    return CG_OK;
fail:
    job_free(j);
    return st;
}

// ---- the engine thread ------------------------------------------------------------------------

// Bytes at the end of text that could begin a stop string (must be held back).
static size_t held_back(const job *j, const cg_buf *t, size_t from) {
    size_t best = 0;
    for (size_t s = 0; s < j->n_stop; s++) {
        size_t ls = strlen(j->stop[s]);
        if (ls == 0) continue;
        for (size_t k = ls - 1; k > best && k > 0; k--)
            if (t->len - from >= k && !memcmp(t->data + t->len - k, j->stop[s], k)) { best = k; break; }
    }
    return best;
}

static const char *find(const char *hay, size_t n, const char *needle, size_t ln) {
    if (ln == 0 || ln > n) return NULL;
    for (size_t i = 0; i + ln <= n; i++)
        if (hay[i] == needle[0] && !memcmp(hay + i, needle, ln)) return hay + i;
    return NULL;
}

static void emit_text(job *j, choice *c, uint32_t i, size_t upto, const cg_srv_event *tok_ev) {
    cg_srv_event ev = tok_ev ? *tok_ev : (cg_srv_event){.kind = CG_SRV_EV_TOKEN, .i_choice = i};
    ev.text = c->text.data ? c->text.data + c->n_emitted : "";
    ev.n_text = upto - c->n_emitted;
    c->n_emitted = upto;
    j->fn(j->user, &ev);
}

static void finish_choice(job *j, choice *c, uint32_t i, cg_srv_finish why) {
    if (c->n_emitted < c->text.len) emit_text(j, c, i, c->text.len, NULL);
    c->done = true;
    c->finish = why;
    cg_srv_event ev = {.kind = CG_SRV_EV_CHOICE_END, .i_choice = i, .finish = why};
    j->fn(j->user, &ev);
}

// Advances one choice by one token.
static void step_choice(job *j, choice *c, uint32_t i) {
    if (c->echo) {
        cg_srv_event ev = {.kind = CG_SRV_EV_TOKEN, .i_choice = i, .text = c->echo, .n_text = strlen(c->echo),
                           .is_echo = true};
        j->fn(j->user, &ev);
        free(c->echo);
        c->echo = NULL;
        return;
    }
    if (c->n_tokens >= j->limit) { finish_choice(j, c, i, CG_SRV_FINISH_LENGTH); return; }
    if (c->mode == MODE_TOOL) {
        if (c->i_payload >= c->n_payload) { finish_choice(j, c, i, CG_SRV_FINISH_TOOL_CALLS); return; }
        size_t n = c->n_payload - c->i_payload < ARG_CHUNK ? c->n_payload - c->i_payload : ARG_CHUNK;
        cg_srv_event ev = {.kind = CG_SRV_EV_TOOL_CALL, .i_choice = i, .i_tool = 0,
                           .args = c->payload + c->i_payload, .n_args = n};
        if (c->i_payload == 0) ev.tool_id = c->tool_id, ev.tool_name = c->tool_name;
        c->i_payload += n;
        c->n_tokens++;
        j->fn(j->user, &ev);
        return;
    }
    if (c->mode == MODE_PAYLOAD ? c->i_payload >= c->n_payload : (c->natural >= 0 && c->n_tokens >= c->natural)) {
        finish_choice(j, c, i, CG_SRV_FINISH_STOP);
        return;
    }
    uint64_t h = mix(c->hash + (uint64_t)c->n_tokens);
    const char *piece;
    size_t n_piece;
    char word[64];
    if (c->mode == MODE_PAYLOAD) {
        piece = c->payload + c->i_payload;
        n_piece = c->n_payload - c->i_payload < JSON_CHUNK ? c->n_payload - c->i_payload : JSON_CHUNK;
        // never split a UTF-8 sequence between tokens
        while (c->i_payload + n_piece < c->n_payload && ((unsigned char)piece[n_piece] & 0xC0) == 0x80) n_piece++;
        c->i_payload += n_piece;
    } else {
        snprintf(word, sizeof word, "%s%s", c->n_tokens ? " " : "", WORDS[h % N_WORDS]);
        piece = word;
        n_piece = strlen(word);
    }
    c->n_tokens++;
    size_t from = c->text.len;
    cg_buf_append(&c->text, piece, n_piece);
    cg_srv_event ev = {.kind = CG_SRV_EV_TOKEN, .i_choice = i};
    cg_srv_logprob top[MAX_TOP];
    if (j->logprobs) {
        ev.has_logprob = true;
        ev.tok = (cg_srv_logprob){piece, n_piece, -(float)((h >> 20) % 3000) / 1000.0f - 0.01f};
        for (uint32_t k = 0; k < j->top_logprobs; k++) {
            const char *w = k == 0 ? NULL : WORDS[(h + k) % N_WORDS];
            top[k] = k == 0 ? ev.tok : (cg_srv_logprob){w, strlen(w), ev.tok.logprob - 0.5f * (float)k};
        }
        ev.top = top;
        ev.n_top = j->top_logprobs;
    }
    // The earliest stop string in the text, searching only where a new match can start.
    size_t best = SIZE_MAX;
    for (size_t s = 0; s < j->n_stop; s++) {
        size_t ls = strlen(j->stop[s]);
        size_t start = from >= ls ? from - ls + 1 : 0;
        if (start < c->n_emitted) start = c->n_emitted;
        const char *hit = find(c->text.data + start, c->text.len - start, j->stop[s], ls);
        if (hit && (size_t)(hit - c->text.data) < best) best = (size_t)(hit - c->text.data);
    }
    if (best != SIZE_MAX) {
        c->text.len = best;
        emit_text(j, c, i, best, &ev);
        finish_choice(j, c, i, CG_SRV_FINISH_STOP);
        return;
    }
    emit_text(j, c, i, c->text.len - held_back(j, &c->text, c->n_emitted), &ev);
}

static void deliver_end(job *j, cg_srv_finish why, const char *msg) {
    cg_srv_event ev = {.kind = CG_SRV_EV_ERROR, .finish = why, .status = CG_ERR_STATE, .message = msg};
    if (why == CG_SRV_FINISH_STOP) {
        ev.kind = CG_SRV_EV_DONE;
        ev.usage.prompt_tokens = j->prompt_tokens;
        ev.usage.cached_tokens = j->cached_tokens;
        for (uint32_t i = 0; i < j->n_choices; i++) ev.usage.completion_tokens += (uint64_t)j->choices[i].n_tokens;
    }
    j->fn(j->user, &ev);
    job_free(j);
}

static void unlink_job(job **list, job *j) {
    for (job **p = list; *p; p = &(*p)->next)
        if (*p == j) { *p = j->next; return; }
}

static void *engine_main(void *arg) {
    fake *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->stopping && !f->running && !f->queue) pthread_cond_wait(&f->cv, &f->mu);
        if (f->stopping && !f->running && !f->queue) break;
        uint64_t now = cg_time_ns();
        // Queued jobs that were cancelled or timed out end without running.
        for (job *q = f->queue, *nx; q; q = nx) {
            nx = q->next;
            bool cancel = atomic_load(&q->cancelled) || f->stopping, late = q->deadline_ns && now > q->deadline_ns;
            if (!cancel && !late) continue;
            unlink_job(&f->queue, q);
            f->n_queue--;
            if (cancel) f->cancelled_total++;
            pthread_mutex_unlock(&f->mu);
            deliver_end(q, cancel ? CG_SRV_FINISH_CANCELLED : CG_SRV_FINISH_TIMEOUT,
                        cancel ? "request cancelled" : "request timed out while waiting in the queue");
            pthread_mutex_lock(&f->mu);
        }
        while (f->queue && f->n_running < f->slots) {   // admit FIFO
            job *q = f->queue;
            f->queue = q->next;
            f->n_queue--;
            job **tail = &f->running;
            while (*tail) tail = &(*tail)->next;
            q->next = NULL;
            *tail = q;
            f->n_running++;
        }
        job *run = f->running;
        pthread_mutex_unlock(&f->mu);
        // Only this thread unlinks running jobs, so walking the list without mu is safe; submit()
        // only touches the queue.
        uint64_t blocks = 0;
        for (job *r = run, *nx; r; r = nx) {
            nx = r->next;
            bool cancel = atomic_load(&r->cancelled), late = r->deadline_ns && cg_time_ns() > r->deadline_ns;
            bool all_done = true;
            if (!cancel && !late) {
                for (uint32_t i = 0; i < r->n_choices; i++) {
                    if (r->choices[i].done) continue;
                    step_choice(r, &r->choices[i], i);
                    all_done = all_done && r->choices[i].done;
                    blocks += (r->prompt_tokens + (uint64_t)r->choices[i].n_tokens + 15) / 16;
                }
            }
            if (!cancel && !late && !all_done) continue;
            pthread_mutex_lock(&f->mu);
            unlink_job(&f->running, r);
            f->n_running--;
            if (cancel) f->cancelled_total++;
            pthread_mutex_unlock(&f->mu);
            deliver_end(r, cancel ? CG_SRV_FINISH_CANCELLED : late ? CG_SRV_FINISH_TIMEOUT : CG_SRV_FINISH_STOP,
                        cancel ? "request cancelled" : "request timed out");
        }
        pthread_mutex_lock(&f->mu);
        f->used_blocks = blocks;
        if (f->running && f->latency_ms) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)f->latency_ms * 1000000ull;
            ts.tv_sec += (time_t)(ns / 1000000000ull);
            ts.tv_nsec = (long)(ns % 1000000000ull);
            // Sleeps one step; a stop request wakes it early. (The cv's clock is CLOCK_REALTIME.)
            if (!f->stopping) pthread_cond_timedwait(&f->cv, &f->mu, &ts);
        }
        if (f->stopping)   // cancel everything still running; the loop delivers the terminal events
            for (job *r = f->running; r; r = r->next) atomic_store(&r->cancelled, true);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

// ---- vtable -----------------------------------------------------------------------------------

static void fake_info(void *state, cg_srv_model_info *out) {
    fake *f = state;
    *out = (cg_srv_model_info){.id = f->id, .owned_by = "chingu-test-fake", .created = 1700000000,
                               .n_ctx = f->n_ctx, .n_embd = CG_SRV_FAKE_EMBD};
}

static bool is_loading(fake *f) { return cg_time_ns() < f->loaded_at_ns; }

static cg_status fake_submit(void *state, const cg_srv_request *req, cg_srv_event_fn fn, void *user, uint64_t *id,
                             cg_err *err) {
    fake *f = state;
    if (is_loading(f)) return cg_err_set(err, CG_ERR_STATE, "the model is still loading");
    job *j = NULL;
    cg_status st = make_job(f, req, &j, err);
    if (st) return st;
    j->fn = fn;
    j->user = user;
    pthread_mutex_lock(&f->mu);
    if (f->stopping || f->n_queue >= f->queue_cap) {
        uint32_t n = f->n_queue;
        bool stopping = f->stopping;
        pthread_mutex_unlock(&f->mu);
        job_free(j);
        return stopping ? cg_err_set(err, CG_ERR_STATE, "the server is shutting down")
                        : cg_err_set(err, CG_ERR_STATE, "all %u slots are busy and %u requests are waiting",
                                     f->slots, n);
    }
    j->id = ++f->next_id;
    *id = j->id;
    job **tail = &f->queue;
    while (*tail) tail = &(*tail)->next;
    *tail = j;
    f->n_queue++;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return CG_OK;
}

static void fake_cancel(void *state, uint64_t id) {
    fake *f = state;
    pthread_mutex_lock(&f->mu);
    for (job *j = f->queue; j; j = j->next) if (j->id == id) atomic_store(&j->cancelled, true);
    for (job *j = f->running; j; j = j->next) if (j->id == id) atomic_store(&j->cancelled, true);
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static cg_status fake_embed(void *state, const cg_srv_prompt *in, float *out, size_t n_dim, uint32_t *n_tokens,
                            cg_err *err) {
    (void)state;
    if (n_dim != CG_SRV_FAKE_EMBD) return cg_err_set(err, CG_ERR_INVALID, "fake: embedding width %zu != %d", n_dim, CG_SRV_FAKE_EMBD);
    // Text hashes its bytes and counts words as tokens; token ids hash their int32 bytes.
    const char *text = in->text;
    size_t n_text = text ? strlen(text) : 0;
    uint64_t h = text ? fnv(0xcbf29ce484222325ull, text, n_text)
                      : fnv(0x84222325cbf29ce4ull, in->tokens, in->n_tokens * sizeof *in->tokens);
    double norm = 0;
    for (size_t i = 0; i < n_dim; i++) {
        out[i] = (float)((double)(mix(h + i) >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
        norm += (double)out[i] * out[i];
    }
    norm = norm > 0 ? 1.0 / __builtin_sqrt(norm) : 0;
    for (size_t i = 0; i < n_dim; i++) out[i] = (float)(out[i] * norm);
    uint64_t w = text ? 0 : in->n_tokens;
    bool inw = false;
    for (size_t i = 0; i < n_text; i++) {
        bool sp = text[i] == ' ' || text[i] == '\n' || text[i] == '\t';
        if (!sp && !inw) w++;
        inw = !sp;
    }
    *n_tokens = (uint32_t)(w > UINT32_MAX ? UINT32_MAX : w);
    return CG_OK;
}

static void fake_gauges(void *state, cg_srv_gauges *out) {
    fake *f = state;
    pthread_mutex_lock(&f->mu);
    uint64_t cap = (uint64_t)f->n_ctx * f->slots / 16;
    *out = (cg_srv_gauges){.loading = is_loading(f), .kv_blocks_used = f->used_blocks,
                           .kv_blocks_free = cap > f->used_blocks ? cap - f->used_blocks : 0,
                           .queue_depth = f->n_queue, .running = f->n_running,
                           .prefix_hit_tokens = f->prefix_hit, .prefix_lookup_tokens = f->prefix_lookup,
                           .cancelled_total = f->cancelled_total};
    pthread_mutex_unlock(&f->mu);
}

static void fake_free(void *state) {
    fake *f = state;
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static cg_status parse_u32(const char *key, const char *v, size_t n, uint32_t max, uint32_t *out, cg_err *err) {
    char tmp[24];
    if (n == 0 || n >= sizeof tmp) goto bad;
    memcpy(tmp, v, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    unsigned long x = strtoul(tmp, &end, 10);
    if (errno || *end || tmp[0] == '-' || x > max) goto bad;
    *out = (uint32_t)x;
    return CG_OK;
bad:
    return cg_err_set(err, CG_ERR_INVALID, "fake: '%s=%.*s' is not an integer in 0..%u", key, (int)n, v, max);
}

cg_status cg_srv_fake_new(const char *spec, uint32_t n_ctx, uint32_t n_parallel, cg_srv_backend *out, cg_err *err) {
    cg_status st = CG_OK;
    fake *f = calloc(1, sizeof *f);
    if (!f) return cg_err_set(err, CG_ERR_NOMEM, "fake: out of memory");
    f->n_ctx = n_ctx ? n_ctx : 4096;
    f->slots = n_parallel ? n_parallel : 4;
    f->queue_cap = 16;
    f->latency_ms = 2;
    uint32_t loading_ms = 0;
    snprintf(f->id, sizeof f->id, "fake");
    for (const char *p = spec ? spec : ""; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (n && !eq) { st = cg_err_set(err, CG_ERR_INVALID, "fake: option '%.*s' needs a value (key=value)", (int)n, p); goto fail; }
        if (eq) {
            size_t nk = (size_t)(eq - p), nv = n - nk - 1;
            const char *v = eq + 1;
            if (nk == 10 && !memcmp(p, "latency_ms", 10)) st = parse_u32("latency_ms", v, nv, 10000, &f->latency_ms, err);
            else if (nk == 5 && !memcmp(p, "slots", 5)) st = parse_u32("slots", v, nv, 4096, &f->slots, err);
            else if (nk == 5 && !memcmp(p, "queue", 5)) st = parse_u32("queue", v, nv, 1000000, &f->queue_cap, err);
            else if (nk == 10 && !memcmp(p, "loading_ms", 10)) st = parse_u32("loading_ms", v, nv, 600000, &loading_ms, err);
            else if (nk == 2 && !memcmp(p, "id", 2) && nv > 0 && nv < sizeof f->id) snprintf(f->id, sizeof f->id, "%.*s", (int)nv, v);
            else st = cg_err_set(err, CG_ERR_INVALID, "fake: unknown option '%.*s' (latency_ms, slots, queue, loading_ms, id)", (int)n, p);
            if (st) goto fail;
        }
        p += n + (end ? 1 : 0);
    }
    if (f->slots == 0) { st = cg_err_set(err, CG_ERR_INVALID, "fake: slots must be ≥ 1"); goto fail; }
    f->loaded_at_ns = cg_time_ns() + (uint64_t)loading_ms * 1000000ull;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    int rc = pthread_create(&f->thread, NULL, engine_main, f);
    if (rc) {
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        st = cg_err_set(err, CG_ERR_IO, "fake: cannot start the engine thread: %s", strerror(rc));
        goto fail;
    }
    *out = (cg_srv_backend){.state = f, .info = fake_info, .submit = fake_submit, .cancel = fake_cancel,
                            .embed = fake_embed, .gauges = fake_gauges, .free = fake_free};
    return CG_OK;
fail:
    free(f);
    return st;
}
