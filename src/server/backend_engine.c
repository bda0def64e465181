// backend_engine.c — cg_srv_backend over the scheduler (see backend_engine.h).
//
// Embeddings (be_embed) tokenize on the caller's thread and run through cg_sched_embed: on the
// engine thread between decode steps, on the scheduler's scratch sequence, L2-normalised.
//
// A job is one backend request: one scheduler sub-request per prompt (chat: one), each with n
// choices; job->ch[i_prompt * n + k] is the state of choice k of prompt i_prompt (sampler, grammar
// matcher, detokenizer, stop matcher, tool-call parser). Every callback runs on the scheduler's
// engine thread, so a job's events are never concurrent. The job lives until its last sub-request
// reported done(); that call sends the terminal event (unless submit() itself failed, in which
// case nothing is sent) and frees the job. `jobs` (under mu) maps backend ids to jobs for cancel().
#include "server/backend_engine.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/time.h"
#include "model/model.h"
#include "sample/grammar.h"
#include "sample/sampler.h"
#include "sample/setup.h"
#include "sample/stop.h"
#include "sample/toolcall.h"
#include "tok/template.h"
#include "tok/tok.h"

typedef struct eng {
    cg_model *m;
    cg_vocab *vocab;
    cg_sched *sched;
    char *id;
    int64_t created;
    int32_t n_vocab;
    char *tmpl;                 // chat template source (owned)
    cg_toolcall_format tc_fmt;
    char *bos_text, *eos_text;  // NUL-terminated token texts or NULL
    cg_sample_vocab sv;         // token bytes, EOG ids, grammar trie
    pthread_mutex_t mu;
    uint64_t next_id;
    struct job *jobs;
} eng;

typedef struct choice_st {
    cg_sample_seq seq;          // sampler + grammar matcher
    cg_detok_stream *detok;
    cg_stop *stop;
    cg_toolcall_parser *tc;
    uint32_t n_calls_sent;      // calls sent whole; call n_calls_sent may be partly sent:
    bool head_sent;             //   its first delta (id, name) went out
    size_t args_sent;           //   and this many bytes of its arguments
    bool ended;
} choice_st;

typedef struct sub {
    struct job *job;
    uint32_t i_prompt;
    uint64_t sched_id;
    bool submitted;
} sub;

typedef struct job {
    eng *e;
    uint64_t id;
    cg_srv_event_fn fn;
    void *user;
    uint32_t n;               // choices per prompt
    size_t n_prompts;
    sub *subs;
    choice_st *ch;
    char **echo;              // per prompt: text to echo (COMPLETION with echo) or NULL
    bool logprobs;
    uint32_t top_logprobs;
    bool tools;               // parse tool calls
    bool tool_marker;         // feed "[TOOL_CALLS]" first (forced Mistral calls)
    cg_grammar *grammar;
    // Plain greedy (temperature ≤ 0, no penalties, no grammar): tokens are picked by cg_srv_greedy_pick
    // instead of the sampler; bias ids ascending and distinct (duplicates summed), -100 → -inf.
    bool greedy;
    int32_t *gb_id;
    float *gb;
    size_t n_gb;
    // totals, engine thread
    size_t n_pending;         // sub-requests without done() yet
    bool silent;              // submit failed: send nothing, just free
    cg_sched_end end;
    cg_status err_st;
    char *err_msg;
    uint64_t prompt_tokens, completion_tokens, cached_tokens;
    struct job *next;
} job;

// ---- job lifetime ------------------------------------------------------------------------------

static void job_free(job *j) {
    if (!j) return;
    size_t n_ch = j->n_prompts * j->n;
    for (size_t i = 0; j->ch && i < n_ch; i++) {
        choice_st *c = &j->ch[i];
        cg_sample_seq_free(&c->seq);
        cg_detok_stream_free(c->detok);
        cg_stop_free(c->stop);
        cg_toolcall_parser_free(c->tc);
    }
    for (size_t i = 0; j->echo && i < j->n_prompts; i++) free(j->echo[i]);
    free(j->echo);
    free(j->ch);
    free(j->subs);
    cg_grammar_free(j->grammar);
    free(j->gb_id);
    free(j->gb);
    free(j->err_msg);
    free(j);
}

static void job_unlink(eng *e, job *j) {
    pthread_mutex_lock(&e->mu);
    for (job **pp = &e->jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    pthread_mutex_unlock(&e->mu);
}

// ---- events --------------------------------------------------------------------------------------

static void send_text(job *j, uint32_t i_choice, const char *p, size_t n) {
    if (n == 0) return;
    cg_srv_event ev = {.kind = CG_SRV_EV_TOKEN, .i_choice = i_choice, .text = p, .n_text = n};
    j->fn(j->user, &ev);
}

static void send_tool_delta(job *j, uint32_t i_choice, choice_st *c, const char *id, const char *name,
                            const char *args, size_t n_args) {
    char idbuf[48];
    if (!id) snprintf(idbuf, sizeof idbuf, "call_%llu_%u_%u", (unsigned long long)j->id, i_choice, c->n_calls_sent);
    cg_srv_event ev = {.kind = CG_SRV_EV_TOOL_CALL, .i_choice = i_choice, .i_tool = c->n_calls_sent};
    if (!c->head_sent) ev.tool_id = id ? id : idbuf, ev.tool_name = name;
    if (n_args > c->args_sent) ev.args = args + c->args_sent, ev.n_args = n_args - c->args_sent;
    if (!ev.tool_id && !ev.n_args) return;
    c->head_sent = true;
    c->args_sent = n_args;
    j->fn(j->user, &ev);
}

// Sends what is new in the tool calls: the rest of every completed call, then the open (streamed)
// call's head and its arguments so far. A streamed call's final arguments extend what was sent.
static void send_calls(job *j, uint32_t i_choice, choice_st *c) {
    size_t n = cg_toolcall_parser_n_calls(c->tc);
    for (; c->n_calls_sent < n; c->n_calls_sent++, c->head_sent = false, c->args_sent = 0) {
        const cg_toolcall *tc = cg_toolcall_parser_call(c->tc, c->n_calls_sent);
        send_tool_delta(j, i_choice, c, tc->id, tc->name, tc->arguments, strlen(tc->arguments));
    }
    const char *name, *args;
    size_t n_args;
    if (cg_toolcall_parser_open_call(c->tc, &name, &args, &n_args)) send_tool_delta(j, i_choice, c, NULL, name, args, n_args);
}

// Routes text that passed the stop matcher: through the tool-call parser when tools are on.
static void route_text(job *j, uint32_t i_choice, choice_st *c, const char *p, size_t n, bool final,
                       const cg_srv_event *with_logprob) {
    cg_buf content;
    cg_buf_init(&content);
    size_t n_new = 0;
    if (c->tc) {
        if (n) cg_toolcall_parser_feed(c->tc, p, n, &content, &n_new, NULL);
        if (final) cg_toolcall_parser_finish(c->tc, &content, &n_new, NULL);
        p = content.data, n = content.len;
    }
    if (with_logprob) {
        cg_srv_event ev = *with_logprob;
        ev.text = p ? p : "";
        ev.n_text = n;
        j->fn(j->user, &ev);
    } else {
        send_text(j, i_choice, p, n);
    }
    if (c->tc) send_calls(j, i_choice, c);
    cg_buf_free(&content);
}

static void end_choice(job *j, uint32_t i_choice, choice_st *c, cg_srv_finish finish) {
    c->ended = true;
    // As OpenAI: "length" stays when max_tokens or the context cut the output (a call being streamed
    // then was closed where it stood); an output that ended by itself with calls is "tool_calls".
    if (finish == CG_SRV_FINISH_STOP && c->tc && cg_toolcall_parser_n_calls(c->tc) > 0) finish = CG_SRV_FINISH_TOOL_CALLS;
    cg_srv_event ev = {.kind = CG_SRV_EV_CHOICE_END, .i_choice = i_choice, .finish = finish};
    j->fn(j->user, &ev);
}

// ---- scheduler callbacks --------------------------------------------------------------------------

// Max of x[lo, hi) into *best / *best_i when above *best (strictly: the lowest index wins a tie;
// NaN never wins). Blocks of 256: each block's max is a branch-free select the compiler vectorizes,
// and only a block that raises the best is scanned again for the index — a few blocks per call, so
// the cost is about one vectorized pass instead of a scalar compare-and-branch per logit.
static void scan_max(const float *x, int64_t lo, int64_t hi, float *best, int64_t *best_i) {
    enum { BLK = 256 };
    for (int64_t b0 = lo; b0 < hi; b0 += BLK) {
        int64_t b1 = b0 + BLK < hi ? b0 + BLK : hi, i = b0;
        float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        for (; i + 8 <= b1; i += 8)
            for (int k = 0; k < 8; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
        float bm = -INFINITY;
        for (; i < b1; i++) bm = x[i] > bm ? x[i] : bm;
        for (int k = 0; k < 8; k++) bm = m[k] > bm ? m[k] : bm;
        if (bm > *best) {   // bm is one of the block's values: the scan stops in the block
            for (i = b0; x[i] != bm; i++) {}
            *best = bm;
            *best_i = i;
        }
    }
}

// Argmax of the logits with the bias added at b_id (one pass, vectorized; see scan_max) instead of
// the sampler's candidate list of n_vocab entries (copied, filtered, then scanned: its main cost per
// token at a 151,936-entry vocabulary). -inf and NaN are never picked; -1 when nothing is allowed.
int32_t cg_srv_greedy_pick(const float *logits, int64_t n_vocab, const int32_t *b_id, const float *b, size_t n_b) {
    float best = -INFINITY;
    int64_t best_i = -1, i = 0;
    for (size_t k = 0; k <= n_b; k++) {
        int64_t end = k < n_b ? b_id[k] : n_vocab;
        scan_max(logits, i, end, &best, &best_i);
        if (k == n_b) break;
        float v = logits[end] + b[k];   // a biased entry: compared in index order, so ties still go low
        if (v > best) best = v, best_i = end;
        i = end + 1;
    }
    return (int32_t)best_i;
}

static int cmp_bias(const void *a, const void *b) {
    int32_t x = ((const cg_srv_bias *)a)->token, y = ((const cg_srv_bias *)b)->token;
    return (x > y) - (x < y);
}

// Sets j->greedy and its bias table when the request is plain greedy. Errors: CG_ERR_NOMEM.
static cg_status greedy_init(job *j, const cg_srv_request *rq, cg_err *err) {
    j->greedy = rq->temperature <= 0 && rq->presence_penalty == 0 && rq->frequency_penalty == 0 && !j->grammar;
    if (!j->greedy || !rq->n_logit_bias) return CG_OK;
    cg_srv_bias *sorted = malloc(rq->n_logit_bias * sizeof *sorted);
    j->gb_id = malloc(rq->n_logit_bias * sizeof *j->gb_id);
    j->gb = malloc(rq->n_logit_bias * sizeof *j->gb);
    if (!sorted || !j->gb_id || !j->gb) {
        free(sorted);
        return cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
    }
    memcpy(sorted, rq->logit_bias, rq->n_logit_bias * sizeof *sorted);
    qsort(sorted, rq->n_logit_bias, sizeof *sorted, cmp_bias);
    for (size_t i = 0; i < rq->n_logit_bias; i++) {
        float b = sorted[i].bias <= -100.0f ? -INFINITY : sorted[i].bias;   // as choice_init maps it
        if (j->n_gb && j->gb_id[j->n_gb - 1] == sorted[i].token) j->gb[j->n_gb - 1] += b;
        else j->gb_id[j->n_gb] = sorted[i].token, j->gb[j->n_gb++] = b;
    }
    free(sorted);
    return CG_OK;
}

static int32_t on_next(void *user, uint32_t i_choice_local, uint32_t i_step, const float *logits, int64_t n_vocab,
                       bool is_last) {
    sub *sb = user;
    job *j = sb->job;
    eng *e = j->e;
    uint32_t i_choice = sb->i_prompt * j->n + i_choice_local;
    choice_st *c = &j->ch[i_choice];
    if (c->ended) return -1;
    if (i_step == 0 && j->echo && j->echo[sb->i_prompt]) {
        const char *t = j->echo[sb->i_prompt];
        cg_srv_event ev = {.kind = CG_SRV_EV_TOKEN, .i_choice = i_choice, .text = t, .n_text = strlen(t), .is_echo = true};
        j->fn(j->user, &ev);
    }
    cg_err err = {0};
    int32_t tok = -1;
    if (j->greedy) {
        tok = cg_srv_greedy_pick(logits, n_vocab, j->gb_id, j->gb, j->n_gb);
        // The sampler keeps the history (nothing reads it without penalties, but it stays exact).
        if (tok < 0 || cg_sampler_accept(c->seq.smp, tok, &err)) goto stop_now;   // nothing allowed: stop
    } else if (cg_sample_seq_next(&c->seq, logits, &tok, &err)) {
        goto stop_now;   // nothing allowed: stop
    }
    j->completion_tokens++;

    cg_srv_event lp = {.kind = CG_SRV_EV_TOKEN, .i_choice = i_choice};
    cg_logprobs lps;
    cg_srv_logprob top[CG_LOGPROBS_MAX_TOP];
    bool is_eog = cg_vocab_is_eog(e->vocab, tok);
    if (j->logprobs && !is_eog &&
        cg_logprobs_compute(logits, (int32_t)n_vocab, tok, j->top_logprobs, e->sv.pieces, &lps, NULL) == CG_OK) {
        lp.has_logprob = true;
        lp.tok = (cg_srv_logprob){.token = lps.chosen.bytes.p ? lps.chosen.bytes.p : "", .n_token = lps.chosen.bytes.n,
                                  .logprob = lps.chosen.logprob};
        for (size_t k = 0; k < lps.n_top; k++)
            top[k] = (cg_srv_logprob){.token = lps.top[k].bytes.p ? lps.top[k].bytes.p : "", .n_token = lps.top[k].bytes.n,
                                      .logprob = lps.top[k].logprob};
        lp.top = top;
        lp.n_top = lps.n_top;
    }
    cg_buf piece, emit;
    cg_buf_init(&piece);
    cg_buf_init(&emit);
    if (!is_eog) cg_detok_stream_feed(c->detok, tok, &piece, NULL);
    cg_stop_reason why = cg_stop_feed_token(c->stop, tok, piece.data ? piece.data : "", piece.len, &emit);
    bool grammar_done = cg_sample_seq_must_end(&c->seq);
    bool finishing = why != CG_STOP_NONE || is_last || grammar_done;
    bool calls_done = false;   // the one call parallel_tool_calls false allows is complete
    if (finishing && why != CG_STOP_STRING) {
        cg_buf rest;
        cg_buf_init(&rest);
        cg_detok_stream_flush(c->detok, &rest, NULL);
        if (rest.len && why == CG_STOP_NONE) why = cg_stop_feed_text(c->stop, rest.data, rest.len, &emit);
        if (why != CG_STOP_STRING) cg_stop_flush(c->stop, &emit);
        cg_buf_free(&rest);
    }
    route_text(j, i_choice, c, emit.data, emit.len, finishing, lp.has_logprob ? &lp : NULL);
    cg_buf_free(&piece);
    cg_buf_free(&emit);
    if (!finishing && c->tc && cg_toolcall_parser_done(c->tc)) finishing = calls_done = true;
    if (finishing) {
        if (calls_done) {   // what the model writes after the call would be dropped: stop now
            end_choice(j, i_choice, c, CG_SRV_FINISH_TOOL_CALLS);
            return -1;
        }
        bool length = why == CG_STOP_NONE && is_last && !grammar_done;
        end_choice(j, i_choice, c, length ? CG_SRV_FINISH_LENGTH : CG_SRV_FINISH_STOP);
        return -1;
    }
    return tok;
stop_now:
    // The grammar or the sampler cannot continue (e.g. every token masked): end the choice here.
    CG_DEBUG("engine: request %llu choice %u ends early: %s", (unsigned long long)j->id, i_choice, err.msg);
    {
        cg_buf tail, rest;
        cg_buf_init(&tail);
        cg_buf_init(&rest);
        cg_detok_stream_flush(c->detok, &rest, NULL);
        if (rest.len) cg_stop_feed_text(c->stop, rest.data, rest.len, &tail);
        cg_stop_flush(c->stop, &tail);
        route_text(j, i_choice, c, tail.data, tail.len, true, NULL);
        cg_buf_free(&rest);
        cg_buf_free(&tail);
    }
    end_choice(j, i_choice, c, CG_SRV_FINISH_STOP);
    return -1;
}

static void on_done(void *user, cg_sched_end end, uint32_t n_prompt, uint32_t n_cached, cg_status st,
                    const char *message) {
    sub *sb = user;
    job *j = sb->job;
    j->prompt_tokens += n_prompt;
    j->cached_tokens += n_cached;
    if (end != CG_SCHED_END_OK && j->end == CG_SCHED_END_OK) {
        j->end = end;
        j->err_st = st;
        if (message) j->err_msg = strdup(message);
        // The other prompts of the job stop too.
        pthread_mutex_lock(&j->e->mu);
        for (size_t i = 0; i < j->n_prompts; i++)
            if (j->subs[i].submitted && &j->subs[i] != sb) cg_sched_cancel(j->e->sched, j->subs[i].sched_id);
        pthread_mutex_unlock(&j->e->mu);
    }
    pthread_mutex_lock(&j->e->mu);
    size_t left = --j->n_pending;
    pthread_mutex_unlock(&j->e->mu);
    if (left > 0) return;
    job_unlink(j->e, j);
    if (!j->silent) {
        cg_srv_event ev = {0};
        if (j->end == CG_SCHED_END_OK) {
            ev.kind = CG_SRV_EV_DONE;
            ev.usage = (cg_srv_usage){j->prompt_tokens, j->completion_tokens, j->cached_tokens};
        } else {
            ev.kind = CG_SRV_EV_ERROR;
            ev.finish = j->end == CG_SCHED_END_TIMEOUT ? CG_SRV_FINISH_TIMEOUT : CG_SRV_FINISH_CANCELLED;
            ev.status = j->end == CG_SCHED_END_ERROR ? (j->err_st ? j->err_st : CG_ERR_INTERNAL) : CG_OK;
            ev.message = j->end == CG_SCHED_END_ERROR ? (j->err_msg ? j->err_msg : "engine error")
                         : j->end == CG_SCHED_END_TIMEOUT ? "the request timed out"
                                                          : "the request was cancelled";
        }
        j->fn(j->user, &ev);
    }
    job_free(j);
}

static const cg_sched_ops OPS = {.next = on_next, .done = on_done};

// ---- prompt building ------------------------------------------------------------------------------

static const char *role_name(cg_srv_role r) {
    switch (r) {
    case CG_SRV_ROLE_SYSTEM:
    case CG_SRV_ROLE_DEVELOPER: return "system";
    case CG_SRV_ROLE_USER: return "user";
    case CG_SRV_ROLE_ASSISTANT: return "assistant";
    case CG_SRV_ROLE_TOOL: return "tool";
    }
    return "user";
}

// The messages and tools as the JSON the template context wants. Caller frees both strings.
static cg_status chat_json(const cg_srv_request *rq, char **messages, char **tools, cg_err *err) {
    cg_status st = CG_OK;
    json_t *arr = json_array(), *tarr = NULL;
    *messages = *tools = NULL;
    if (!arr) return cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
    for (size_t i = 0; i < rq->n_messages; i++) {
        const cg_srv_message *m = &rq->messages[i];
        json_t *o = json_object();
        json_object_set_new(o, "role", json_string(role_name(m->role)));
        json_object_set_new(o, "content", json_string(m->content ? m->content : ""));
        if (m->name) json_object_set_new(o, "name", json_string(m->name));
        if (m->tool_call_id) json_object_set_new(o, "tool_call_id", json_string(m->tool_call_id));
        if (m->tool_calls_json) {
            json_t *tc = json_loads(m->tool_calls_json, 0, NULL);
            // Templates read function.arguments as an object (tojson) more often than as text.
            size_t k;
            json_t *call;
            json_array_foreach(tc, k, call) {
                json_t *fn = json_object_get(call, "function");
                json_t *args = fn ? json_object_get(fn, "arguments") : NULL;
                if (json_is_string(args)) {
                    json_t *parsed = json_loads(json_string_value(args), 0, NULL);
                    if (parsed) json_object_set_new(fn, "arguments", parsed);
                }
            }
            if (tc) json_object_set_new(o, "tool_calls", tc);
        }
        json_array_append_new(arr, o);
    }
    *messages = json_dumps(arr, JSON_COMPACT);
    if (rq->n_tools) {
        tarr = json_array();
        for (size_t i = 0; i < rq->n_tools; i++) {
            const cg_srv_tool *t = &rq->tools[i];
            json_t *fn = json_object();
            json_object_set_new(fn, "name", json_string(t->name));
            if (t->description) json_object_set_new(fn, "description", json_string(t->description));
            json_t *params = json_loads(t->parameters_json ? t->parameters_json : "{}", 0, NULL);
            json_object_set_new(fn, "parameters", params ? params : json_object());
            json_t *o = json_object();
            json_object_set_new(o, "type", json_string("function"));
            json_object_set_new(o, "function", fn);
            json_array_append_new(tarr, o);
        }
        *tools = json_dumps(tarr, JSON_COMPACT);
        if (!*tools) st = cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
    }
    if (!*messages) st = cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
    json_decref(arr);
    json_decref(tarr);
    return st;
}

static cg_status render_chat(eng *e, const char *tmpl, const cg_srv_request *rq, cg_buf *out, cg_err *err) {
    char *msgs = NULL, *tools = NULL;
    cg_status st = chat_json(rq, &msgs, &tools, err);
    if (st) goto out;
    cg_chat_tokens ct = {.bos = e->bos_text, .eos = e->eos_text};
    st = cg_chat_apply_template(tmpl, strlen(tmpl), msgs, tools, true, &ct, NULL, out, err);
out:
    free(msgs);
    free(tools);
    return st;
}

static cg_status tokenize_prompt(eng *e, const char *text, size_t n, bool parse_special, cg_tokens *out, cg_err *err) {
    bool add_special = cg_vocab_add_bos(e->vocab);
    if (add_special && e->bos_text && n >= strlen(e->bos_text) && !memcmp(text, e->bos_text, strlen(e->bos_text)))
        add_special = false;   // the template wrote BOS itself
    return cg_tokenize(e->vocab, text, n, add_special, parse_special, out, err);
}

// ---- per-request setup --------------------------------------------------------------------------------

static cg_status build_grammar(eng *e, const cg_srv_request *rq, job *j, cg_err *err) {
    cg_status st = CG_OK;
    cg_buf g;
    cg_buf_init(&g);
    bool forced = rq->n_tools && (rq->tool_choice == CG_SRV_TOOL_CHOICE_REQUIRED || rq->tool_choice == CG_SRV_TOOL_CHOICE_NAMED);
    if (forced) {
        cg_tool_def *defs = calloc(rq->n_tools, sizeof *defs);
        if (!defs) return cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
        for (size_t i = 0; i < rq->n_tools; i++)
            defs[i] = (cg_tool_def){.name = rq->tools[i].name, .parameters = rq->tools[i].parameters_json,
                                    .parameters_len = rq->tools[i].parameters_json ? strlen(rq->tools[i].parameters_json) : 0};
        st = cg_toolcall_grammar(e->tc_fmt, defs, rq->n_tools,
                                 rq->tool_choice == CG_SRV_TOOL_CHOICE_NAMED ? rq->tool_choice_name : NULL,
                                 rq->parallel_tool_calls, &g, err);
        free(defs);
        j->tool_marker = e->tc_fmt == CG_TOOLCALL_MISTRAL;
        if (!st && !cg_buf_ok(&g)) st = cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
        if (!st) st = cg_sample_grammar_build(CG_SAMPLE_GRAMMAR_GBNF, g.data, g.len, &j->grammar, err);
    } else if (rq->format == CG_SRV_FORMAT_JSON_OBJECT) {
        st = cg_sample_grammar_build(CG_SAMPLE_GRAMMAR_JSON_OBJECT, NULL, 0, &j->grammar, err);
    } else if (rq->format == CG_SRV_FORMAT_JSON_SCHEMA) {
        const char *s = rq->schema_json ? rq->schema_json : "{}";
        st = cg_sample_grammar_build(CG_SAMPLE_GRAMMAR_JSON_SCHEMA, s, strlen(s), &j->grammar, err);
    }
    if (st && st != CG_ERR_NOMEM) st = CG_ERR_INVALID;   // the request's schema or tools: a 400
    cg_buf_free(&g);
    return st;
}

// budget: the most tokens the choice may generate (max_tokens, or the context left after the prompt).
static cg_status choice_init(eng *e, const cg_srv_request *rq, job *j, uint32_t i_choice, uint64_t seed, int64_t budget,
                             cg_err *err) {
    cg_status st;
    choice_st *c = &j->ch[i_choice];
    cg_sampler_params sp;
    cg_sampler_params_default(&sp);
    sp.seed = seed;
    sp.temperature = (float)rq->temperature;
    sp.top_k = 0;
    sp.top_p = (float)rq->top_p;
    sp.min_p = 0.0f;
    sp.penalty_last_n = -1;
    sp.presence_penalty = (float)rq->presence_penalty;
    sp.frequency_penalty = (float)rq->frequency_penalty;
    cg_logit_bias *lb = NULL;
    if (rq->n_logit_bias) {
        lb = calloc(rq->n_logit_bias, sizeof *lb);
        if (!lb) return cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
        for (size_t i = 0; i < rq->n_logit_bias; i++) {
            lb[i].id = rq->logit_bias[i].token;
            lb[i].bias = rq->logit_bias[i].bias <= -100.0f ? -INFINITY : rq->logit_bias[i].bias;
        }
    }
    sp.logit_bias = lb;
    sp.n_logit_bias = rq->n_logit_bias;
    st = cg_sample_seq_init(&c->seq, &sp, j->grammar, &e->sv, err);
    free(lb);
    if (st) return st;
    // under a grammar, the budget is one the output closes and completes in (finish "stop"); without
    // max_tokens it is the context left, so a constrained answer never ends cut by a full context
    cg_sample_seq_set_budget(&c->seq, budget, CG_SAMPLE_BUDGET_MARGIN);
    size_t *lens = NULL;
    if (rq->n_stop && !(lens = calloc(rq->n_stop, sizeof *lens))) return cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
    for (size_t i = 0; i < rq->n_stop; i++) lens[i] = strlen(rq->stop[i]);
    st = cg_stop_new(rq->stop, lens, rq->n_stop, e->sv.eog, e->sv.n_eog, 0, &c->stop, err);
    free(lens);
    if (st) return st;
    if ((st = cg_detok_stream_new(e->vocab, false, &c->detok, err))) return st;
    if (j->tools) {
        if ((st = cg_toolcall_parser_new(e->tc_fmt, &c->tc, err))) return st;
        if ((st = cg_toolcall_parser_stream_args(c->tc, true, err))) return st;
        // parallel_tool_calls false: one call, also when the model chose to call (tool_choice auto)
        if (!rq->parallel_tool_calls && (st = cg_toolcall_parser_set_max_calls(c->tc, 1, err))) return st;
        if (j->tool_marker) {
            cg_buf sink;
            cg_buf_init(&sink);
            size_t n_new;
            cg_toolcall_parser_feed(c->tc, "[TOOL_CALLS]", 12, &sink, &n_new, NULL);
            cg_buf_free(&sink);
        }
    }
    return CG_OK;
}

static cg_status be_submit(void *state, const cg_srv_request *rq, cg_srv_event_fn fn, void *user, uint64_t *id,
                           cg_err *err) {
    eng *e = state;
    cg_status st = CG_OK;
    cg_buf text;
    cg_buf_init(&text);
    cg_tokens *toks = NULL;
    job *j = calloc(1, sizeof *j);
    if (!j) return cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
    j->e = e;
    j->fn = fn;
    j->user = user;
    j->n = rq->n ? rq->n : 1;
    j->n_prompts = rq->kind == CG_SRV_KIND_CHAT ? 1 : rq->n_prompts;
    if (j->n_prompts == 0) {
        st = cg_err_set(err, CG_ERR_INVALID, "the request has no prompt");
        goto fail;
    }
    j->logprobs = rq->logprobs;
    j->top_logprobs = rq->top_logprobs > CG_LOGPROBS_MAX_TOP ? CG_LOGPROBS_MAX_TOP : rq->top_logprobs;
    j->tools = rq->kind == CG_SRV_KIND_CHAT && rq->n_tools > 0 && rq->tool_choice != CG_SRV_TOOL_CHOICE_NONE;
    if ((st = build_grammar(e, rq, j, err))) goto fail;
    j->subs = calloc(j->n_prompts, sizeof *j->subs);
    j->ch = calloc(j->n_prompts * j->n, sizeof *j->ch);
    toks = calloc(j->n_prompts, sizeof *toks);
    if (rq->kind == CG_SRV_KIND_COMPLETION && rq->echo) j->echo = calloc(j->n_prompts, sizeof *j->echo);
    if (!j->subs || !j->ch || !toks || (rq->kind == CG_SRV_KIND_COMPLETION && rq->echo && !j->echo)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
        goto fail;
    }
    // Prompts → tokens.
    for (size_t i = 0; i < j->n_prompts; i++) {
        if (rq->kind == CG_SRV_KIND_CHAT) {
            cg_buf_reset(&text);
            if ((st = render_chat(e, e->tmpl, rq, &text, err))) {
                st = st == CG_ERR_NOMEM ? st : CG_ERR_INVALID;
                goto fail;
            }
            if ((st = tokenize_prompt(e, text.data ? text.data : "", text.len, true, &toks[i], err))) goto fail;
        } else {
            const cg_srv_prompt *p = &rq->prompts[i];
            if (p->text) {
                if ((st = tokenize_prompt(e, p->text, strlen(p->text), true, &toks[i], err))) goto fail;
            } else {
                for (size_t k = 0; k < p->n_tokens; k++)
                    if (p->tokens[k] < 0 || p->tokens[k] >= e->n_vocab) {
                        st = cg_err_set(err, CG_ERR_INVALID, "prompt token %zu is %d; the vocabulary has ids 0..%d", k,
                                        p->tokens[k], e->n_vocab - 1);
                        goto fail;
                    }
                cg_tokens t = {0};
                t.ids = malloc((p->n_tokens ? p->n_tokens : 1) * sizeof *t.ids);
                if (!t.ids) {
                    st = cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
                    goto fail;
                }
                memcpy(t.ids, p->tokens, p->n_tokens * sizeof *t.ids);
                t.n = t.cap = p->n_tokens;
                toks[i] = t;
            }
            if (j->echo) {
                cg_buf eb;
                cg_buf_init(&eb);
                if (p->text) cg_buf_puts(&eb, p->text);
                else cg_detokenize(e->vocab, p->tokens, p->n_tokens, false, false, &eb, NULL);
                j->echo[i] = eb.data ? strdup(eb.data) : strdup("");
                cg_buf_free(&eb);
            }
        }
        if (toks[i].n == 0) {
            st = cg_err_set(err, CG_ERR_INVALID, "prompt %zu is empty after tokenization", i);
            goto fail;
        }
    }
    // Per choice state.
    uint64_t base_seed = rq->has_seed ? rq->seed : (cg_time_ns() ^ ((uint64_t)(uintptr_t)j << 16));
    for (uint32_t i = 0; i < j->n_prompts * j->n; i++) {
        int64_t room = (int64_t)cg_sched_n_ctx(e->sched) - (int64_t)toks[i / j->n].n;
        if ((st = choice_init(e, rq, j, i, base_seed + i, rq->max_tokens > 0 ? rq->max_tokens : room, err))) {
            if (st != CG_ERR_NOMEM) st = CG_ERR_INVALID;
            goto fail;
        }
    }
    // After choice_init: the sampler has validated the bias token ids.
    if ((st = greedy_init(j, rq, err))) goto fail;
    pthread_mutex_lock(&e->mu);
    j->id = e->next_id++;
    j->next = e->jobs;
    e->jobs = j;
    j->n_pending = j->n_prompts;
    pthread_mutex_unlock(&e->mu);
    *id = j->id;
    uint64_t deadline = rq->timeout_ms ? cg_time_ns() + (uint64_t)rq->timeout_ms * 1000000u : 0;
    for (size_t i = 0; i < j->n_prompts; i++) {
        cg_sched_req sr = {.prompt = toks[i].ids, .n_prompt = toks[i].n, .n_choices = j->n, .max_new = rq->max_tokens,
                           .deadline_ns = deadline};
        // done() may run on the engine thread before submit returns; the id is published under mu.
        uint64_t sid = 0;
        pthread_mutex_lock(&e->mu);
        j->subs[i].job = j;
        j->subs[i].i_prompt = (uint32_t)i;
        pthread_mutex_unlock(&e->mu);
        cg_status sst = cg_sched_submit(e->sched, &sr, &OPS, &j->subs[i], &sid, err);
        pthread_mutex_lock(&e->mu);
        if (!sst) j->subs[i].sched_id = sid, j->subs[i].submitted = true;
        pthread_mutex_unlock(&e->mu);
        if (sst) {
            // Sub-requests already queued finish as cancelled, silently; the last one frees the job.
            pthread_mutex_lock(&e->mu);
            j->silent = true;
            size_t n_left = (j->n_pending -= (j->n_prompts - i));
            pthread_mutex_unlock(&e->mu);
            pthread_mutex_lock(&e->mu);
            for (size_t k = 0; k < i; k++) cg_sched_cancel(e->sched, j->subs[k].sched_id);
            pthread_mutex_unlock(&e->mu);
            if (n_left == 0) {
                job_unlink(e, j);
                job_free(j);
            }
            st = sst;
            j = NULL;
            goto out;
        }
    }
    j = NULL;
    goto out;
fail:
    job_free(j);
out:
    for (size_t i = 0; toks && i < (rq->kind == CG_SRV_KIND_CHAT ? 1 : rq->n_prompts); i++) cg_tokens_free(&toks[i]);
    free(toks);
    cg_buf_free(&text);
    return st;
}

// ---- the rest of the vtable ----------------------------------------------------------------------------

// Pooling none (a vector per token) and rank (a reranker head) have no OpenAI embeddings shape.
static bool embeds(const eng *e) {
    cg_pooling p = cg_model_hparams(e->m)->pooling;
    return p == CG_POOLING_MEAN || p == CG_POOLING_CLS || p == CG_POOLING_LAST;
}

static void be_info(void *state, cg_srv_model_info *out) {
    eng *e = state;
    *out = (cg_srv_model_info){.id = e->id, .owned_by = "chingu", .created = e->created,
                               .n_ctx = (uint32_t)cg_sched_n_ctx(e->sched),
                               .n_embd = embeds(e) ? (uint32_t)cg_model_hparams(e->m)->n_embd : 0};
}

static void be_cancel(void *state, uint64_t id) {
    eng *e = state;
    pthread_mutex_lock(&e->mu);
    for (job *j = e->jobs; j; j = j->next)
        if (j->id == id)
            for (size_t i = 0; i < j->n_prompts; i++)
                if (j->subs[i].submitted) cg_sched_cancel(e->sched, j->subs[i].sched_id);
    pthread_mutex_unlock(&e->mu);
}

static cg_status be_embed(void *state, const cg_srv_prompt *in, float *out, size_t n_dim, uint32_t *n_tokens,
                          cg_err *err) {
    eng *e = state;
    cg_tokens toks = {0};
    const int32_t *ids = in->tokens;
    size_t n = in->n_tokens;
    cg_status st;
    *n_tokens = 0;
    if (!embeds(e))
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "this model's pooling type (%d) gives no single vector per input",
                          (int)cg_model_hparams(e->m)->pooling);
    if (n_dim != (size_t)cg_model_hparams(e->m)->n_embd)
        return cg_err_set(err, CG_ERR_INVALID, "engine: embedding width %zu, the model's is %lld", n_dim,
                          (long long)cg_model_hparams(e->m)->n_embd);
    if (in->text) {
        // As llama-server: the vocabulary's BOS/EOS rules, special-token texts parsed.
        if ((st = cg_tokenize(e->vocab, in->text, strlen(in->text), true, true, &toks, err))) goto out;
        ids = toks.ids;
        n = toks.n;
    }
    if (n == 0) {
        st = cg_err_set(err, CG_ERR_INVALID, "the input is empty after tokenization");
        goto out;
    }
    st = cg_sched_embed(e->sched, ids, n, cg_model_hparams(e->m)->pooling, true, out, err);
    if (!st) *n_tokens = (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n);
out:
    cg_tokens_free(&toks);
    return st;
}

static void be_gauges(void *state, cg_srv_gauges *out) {
    eng *e = state;
    cg_sched_stats s;
    cg_sched_stats_get(e->sched, &s);
    *out = (cg_srv_gauges){.kv_blocks_used = s.kv_blocks_used, .kv_blocks_free = s.kv_blocks_free,
                           .queue_depth = s.queue_depth, .running = s.running,
                           .prefix_hit_tokens = s.prefix_hit_tokens, .prefix_lookup_tokens = s.prefix_lookup_tokens,
                           .cancelled_total = s.cancelled_total, .engine_forward_s = (double)s.forward_ns * 1e-9,
                           .engine_callback_s = (double)s.callback_ns * 1e-9,
                           .engine_other_s = (double)s.step_other_ns * 1e-9, .engine_steps = s.steps_total,
                           .engine_rows = s.rows_total};
}

static void be_free(void *state) {
    eng *e = state;
    if (!e) return;
    cg_sched_free(e->sched);   // every job gets its terminal event here
    cg_sample_vocab_free(&e->sv);
    free(e->tmpl);
    free(e->bos_text);
    free(e->eos_text);
    free(e->id);
    cg_vocab_free(e->vocab);
    cg_model_free(e->m);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

// ---- loading -------------------------------------------------------------------------------------------

static char *token_text_dup(const cg_vocab *v, int32_t id) {
    size_t n = 0;
    const char *p = id >= 0 ? cg_vocab_token_text(v, id, &n) : NULL;
    if (!p) return NULL;
    char *s = malloc(n + 1);
    if (s) memcpy(s, p, n), s[n] = 0;
    return s;
}

static cg_toolcall_format detect_tool_format(const char *tmpl) {
    if (strstr(tmpl, "<tool_call>")) return CG_TOOLCALL_HERMES;
    if (strstr(tmpl, "[TOOL_CALLS]")) return CG_TOOLCALL_MISTRAL;
    if (strstr(tmpl, "<|python_tag|>") || strstr(tmpl, "<|start_header_id|>")) return CG_TOOLCALL_LLAMA3;
    return CG_TOOLCALL_GENERIC;
}

static cg_status prepare_template(eng *e, cg_err *err) {
    cg_gguf_str s = {0};
    const cg_gguf_kv *kv = cg_gguf_find(cg_model_gguf(e->m), "tokenizer.chat_template");
    if (kv) s = cg_gguf_kv_str(kv);
    if (s.p && s.n) {
        e->tmpl = strndup(s.p, s.n);
        if (!e->tmpl) return cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
        // A template that cannot render a plain conversation is replaced by the built-in one.
        cg_buf b;
        cg_buf_init(&b);
        cg_err terr = {0};
        cg_chat_tokens ct = {.bos = e->bos_text, .eos = e->eos_text};
        static const char probe[] = "[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"}]";
        cg_status st = cg_chat_apply_template(e->tmpl, strlen(e->tmpl), probe, NULL, true, &ct, NULL, &b, &terr);
        cg_buf_free(&b);
        if (st == CG_OK) return CG_OK;
        CG_WARN("engine: the model's chat template does not render (%s); using a built-in one", terr.msg);
        const char *name = cg_chat_detect_builtin(e->tmpl);
        free(e->tmpl);
        e->tmpl = strdup(cg_chat_builtin_source(name ? name : "chatml"));
    } else {
        e->tmpl = strdup(cg_chat_builtin_source(cg_chat_detect_builtin(NULL)));
    }
    return e->tmpl ? CG_OK : cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
}

// Faults in every page of tensor data in file order, reporting progress about every 1/256 of it.
static void touch_weights(const cg_model *m, cg_srv_load_progress_fn fn, void *user) {
    const cg_gguf *g = cg_model_gguf(m);
    uint64_t total = 0, done = 0, next_report = 0;
    size_t n_t = cg_gguf_n_tensors(g);
    for (size_t i = 0; i < n_t; i++) total += cg_gguf_tensor_at(g, i)->n_bytes;
    volatile unsigned char sink = 0;
    const uint64_t PAGE = 4096, STEP = total / 256 + 1;
    for (size_t i = 0; i < n_t; i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        const unsigned char *d = t->data;
        for (uint64_t off = 0; off < t->n_bytes; off += PAGE) {
            sink ^= d[off];
            uint64_t now = done + (off + PAGE < t->n_bytes ? off + PAGE : t->n_bytes);
            if (now >= next_report) {
                fn(user, now, total);
                next_report = now + STEP;
            }
        }
        done += t->n_bytes;
    }
    (void)sink;
    fn(user, total, total);
}

cg_status cg_srv_engine_new(const cg_srv_engine_params *p, cg_srv_backend *out, cg_err *err) {
    cg_status st;
    eng *e = calloc(1, sizeof *e);
    if (!e) return cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
    pthread_mutex_init(&e->mu, NULL);
    e->next_id = 1;
    if ((st = cg_model_load(p->model_path, &e->m, err))) goto fail;
    if (p->progress) touch_weights(e->m, p->progress, p->progress_user);
    if ((st = cg_vocab_load(cg_model_gguf(e->m), &e->vocab, err))) goto fail;
    e->n_vocab = (int32_t)cg_model_hparams(e->m)->n_vocab;
    if ((st = cg_sample_vocab_init(&e->sv, e->vocab, e->n_vocab, true, err))) {
        cg_err_wrap(err, "engine");
        goto fail;
    }
    e->bos_text = token_text_dup(e->vocab, cg_vocab_special(e->vocab, CG_SPECIAL_BOS));
    e->eos_text = token_text_dup(e->vocab, cg_vocab_special(e->vocab, CG_SPECIAL_EOS));
    if ((st = prepare_template(e, err))) goto fail;
    e->tc_fmt = detect_tool_format(e->tmpl);
    if ((st = cg_sched_new(e->m, &p->sched, &e->sched, err))) goto fail;
    // Model id: the file name without directory and ".gguf".
    const char *base = strrchr(p->model_path, '/');
    base = base ? base + 1 : p->model_path;
    size_t n_base = strlen(base);
    if (n_base > 5 && !strcmp(base + n_base - 5, ".gguf")) n_base -= 5;
    e->id = strndup(base, n_base);
    struct stat sb;
    e->created = stat(p->model_path, &sb) == 0 ? (int64_t)sb.st_mtime : cg_time_unix_ms() / 1000;
    if (!e->id) {
        st = cg_err_set(err, CG_ERR_NOMEM, "engine: out of memory");
        goto fail;
    }
    *out = (cg_srv_backend){.state = e, .info = be_info, .submit = be_submit, .cancel = be_cancel,
                            .embed = be_embed, .gauges = be_gauges, .free = be_free};
    return CG_OK;
fail:
    be_free(e);
    return st;
}
