// openai.c — OpenAI request validation and response rendering (contracts in openai.h).
//
// Parsing: pre-scan for depth, jansson with JSON_REJECT_DUPLICATES, then one validator per field.
// Each validator either stores the value in the cg_srv_request (strings copied into the request's
// arena, so the jansson tree is freed before returning) or fills a 400 naming the field.
// Rendering: response JSON is written directly with the escaper in sse.c, never through jansson,
// so the streamed hot path costs one pass per chunk.
#include "server/openai.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"
#include "server/sse.h"

#define MAX_STOP 4
#define MAX_TOOLS 128
#define MAX_TOP_LOGPROBS 20
#define MAX_LOGIT_BIAS 1024
#define MAX_TOOL_CALLS 8

cg_oai_limits cg_oai_limits_default(void) {
    return (cg_oai_limits){.max_depth = 64, .max_tokens_cap = 32768, .max_n = 16, .max_messages = 4096,
                           .max_prompts = 256, .timeout_ms = 600000};
}

void cg_oai_error_set(cg_oai_error *e, int http_status, const char *type, const char *code, const char *param,
                      const char *fmt, ...) {
    e->http_status = http_status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void cg_oai_error_json(cg_buf *b, const cg_oai_error *e) {
    cg_buf_puts(b, "{\"error\":{\"message\":");
    cg_json_cstr(b, e->message);
    cg_buf_puts(b, ",\"type\":");
    cg_json_cstr(b, e->type ? e->type : "invalid_request_error");
    cg_buf_puts(b, ",\"param\":");
    cg_json_cstr(b, e->param[0] ? e->param : NULL);
    cg_buf_puts(b, ",\"code\":");
    cg_json_cstr(b, e->code);
    cg_buf_puts(b, "}}");
}

// ---- validation helpers -----------------------------------------------------------------------

typedef struct ctx {
    cg_oai_req *r;
    cg_oai_error *e;
    const cg_oai_limits *lim;
} ctx;

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static cg_status bad_type(ctx *c, const char *param, const char *want, const json_t *got) {
    cg_oai_error_set(c->e, 400, "invalid_request_error", "invalid_type", param,
                     "Invalid type for '%s': expected %s, but got %s instead.", param, want, type_name(got));
    return CG_ERR_INVALID;
}

static cg_status bad_value(ctx *c, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cg_status bad_value(ctx *c, const char *param, const char *code, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cg_oai_error_set(c->e, 400, "invalid_request_error", code ? code : "invalid_value", param, "Invalid '%s': %s",
                     param, msg);
    return CG_ERR_INVALID;
}

static cg_status missing(ctx *c, const char *param) {
    cg_oai_error_set(c->e, 400, "invalid_request_error", "missing_required_parameter", param,
                     "Missing required parameter: '%s'.", param);
    return CG_ERR_INVALID;
}

static cg_status nomem(ctx *c) {
    cg_oai_error_set(c->e, 500, "server_error", NULL, NULL, "The server ran out of memory parsing the request.");
    return CG_ERR_NOMEM;
}

static const char *dup_str(ctx *c, const json_t *s) {
    return cg_arena_strndup(&c->r->arena, json_string_value(s), json_string_length(s));
}

// A present, non-null field. NULL when absent or null (OpenAI treats null as "not given").
static json_t *field(json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static cg_status get_bool(ctx *c, json_t *obj, const char *key, bool *out) {
    json_t *v = field(obj, key);
    if (!v) return CG_OK;
    if (!json_is_boolean(v)) return bad_type(c, key, "a boolean", v);
    *out = json_is_true(v);
    return CG_OK;
}

static cg_status get_number(ctx *c, json_t *obj, const char *key, double lo, double hi, double *out) {
    json_t *v = field(obj, key);
    if (!v) return CG_OK;
    if (!json_is_number(v)) return bad_type(c, key, "a number", v);
    double x = json_number_value(v);
    if (!(x >= lo)) return bad_value(c, key, "decimal_below_min_value", "expected a value >= %g, but got %g instead.", lo, x);
    if (!(x <= hi)) return bad_value(c, key, "decimal_above_max_value", "expected a value <= %g, but got %g instead.", hi, x);
    *out = x;
    return CG_OK;
}

static cg_status get_int(ctx *c, json_t *obj, const char *key, int64_t lo, int64_t hi, bool *has, int64_t *out) {
    json_t *v = field(obj, key);
    if (!v) return CG_OK;
    if (!json_is_integer(v)) return bad_type(c, key, "an integer", v);
    int64_t x = json_integer_value(v);
    if (x < lo) return bad_value(c, key, "integer_below_min_value", "expected a value >= %" PRId64 ", but got %" PRId64 " instead.", lo, x);
    if (x > hi) return bad_value(c, key, "integer_above_max_value", "expected a value <= %" PRId64 ", but got %" PRId64 " instead.", hi, x);
    if (has) *has = true;
    *out = x;
    return CG_OK;
}

// Returns the deepest nesting of [ and { outside strings (a syntax error is left to jansson).
static uint32_t json_depth(const char *s, size_t n, uint32_t cap) {
    uint32_t d = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\') i++;
            else if (ch == '"') in_str = false;
        } else if (ch == '"') in_str = true;
        else if (ch == '[' || ch == '{') {
            if (++d > max) max = d;
            if (max > cap) return max;
        } else if ((ch == ']' || ch == '}') && d) d--;
    }
    return max;
}

// ---- chat fields ------------------------------------------------------------------------------

static cg_status parse_content(ctx *c, json_t *content, const char *param, const char **out) {
    if (json_is_string(content)) { *out = dup_str(c, content); return *out ? CG_OK : nomem(c); }
    if (!json_is_array(content)) return bad_type(c, param, "a string or an array of content parts", content);
    cg_buf b;
    cg_buf_init(&b);
    size_t i;
    json_t *part;
    char p[128];
    json_array_foreach(content, i, part) {
        if (!json_is_object(part)) {
            snprintf(p, sizeof p, "%.64s[%zu]", param, i);
            cg_buf_free(&b);
            return bad_type(c, p, "an object", part);
        }
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        snprintf(p, sizeof p, "%.64s[%zu].type", param, i);
        if (!type) { cg_buf_free(&b); return missing(c, p); }
        if (!json_is_string(type)) { cg_buf_free(&b); return bad_type(c, p, "a string", type); }
        if (strcmp(json_string_value(type), "text")) {
            cg_buf_free(&b);
            return bad_value(c, p, "unsupported_content_type",
                             "content part type '%s' is not supported by this model (only 'text').",
                             json_string_value(type));
        }
        snprintf(p, sizeof p, "%.64s[%zu].text", param, i);
        if (!json_is_string(text)) { cg_buf_free(&b); return text ? bad_type(c, p, "a string", text) : missing(c, p); }
        if (i) cg_buf_putc(&b, '\n');
        cg_buf_append(&b, json_string_value(text), json_string_length(text));
    }
    *out = cg_arena_strndup(&c->r->arena, b.data ? b.data : "", b.len);
    bool ok = cg_buf_ok(&b);
    cg_buf_free(&b);
    return ok && *out ? CG_OK : nomem(c);
}

static cg_status parse_messages(ctx *c, json_t *root) {
    static const char *const ROLES[] = {"system", "developer", "user", "assistant", "tool"};
    json_t *msgs = json_object_get(root, "messages");
    if (!msgs || json_is_null(msgs)) return missing(c, "messages");
    if (!json_is_array(msgs)) return bad_type(c, "messages", "an array", msgs);
    size_t n = json_array_size(msgs);
    if (n == 0) return bad_value(c, "messages", "empty_array", "expected an array with minimum length 1, but got an empty array instead.");
    if (n > c->lim->max_messages)
        return bad_value(c, "messages", "array_above_max_length", "expected at most %u messages, but got %zu.", c->lim->max_messages, n);
    cg_srv_message *out = cg_arena_calloc(&c->r->arena, n, sizeof *out, 8);
    if (!out) return nomem(c);
    char p[128];
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        snprintf(p, sizeof p, "messages[%zu]", i);
        if (!json_is_object(m)) return bad_type(c, p, "an object", m);
        json_t *role = json_object_get(m, "role");
        snprintf(p, sizeof p, "messages[%zu].role", i);
        if (!role) return missing(c, p);
        if (!json_is_string(role)) return bad_type(c, p, "a string", role);
        int r = -1;
        for (int k = 0; k < 5; k++) if (!strcmp(json_string_value(role), ROLES[k])) r = k;
        if (r < 0)
            return bad_value(c, p, NULL, "expected one of 'system', 'developer', 'user', 'assistant', 'tool', but got '%.40s' instead.",
                             json_string_value(role));
        out[i].role = (cg_srv_role)r;
        json_t *content = field(m, "content"), *tcalls = field(m, "tool_calls");
        snprintf(p, sizeof p, "messages[%zu].content", i);
        if (content) {
            cg_status st = parse_content(c, content, p, &out[i].content);
            if (st) return st;
        } else if (r == CG_SRV_ROLE_ASSISTANT) {
            out[i].content = "";
        } else {
            return missing(c, p);
        }
        json_t *name = field(m, "name");
        snprintf(p, sizeof p, "messages[%zu].name", i);
        if (name && !json_is_string(name)) return bad_type(c, p, "a string", name);
        if (name && !(out[i].name = dup_str(c, name))) return nomem(c);
        if (r == CG_SRV_ROLE_TOOL) {
            json_t *tid = json_object_get(m, "tool_call_id");
            snprintf(p, sizeof p, "messages[%zu].tool_call_id", i);
            if (!tid || json_is_null(tid)) return missing(c, p);
            if (!json_is_string(tid)) return bad_type(c, p, "a string", tid);
            if (!(out[i].tool_call_id = dup_str(c, tid))) return nomem(c);
        }
        if (tcalls && r == CG_SRV_ROLE_ASSISTANT) {
            snprintf(p, sizeof p, "messages[%zu].tool_calls", i);
            if (!json_is_array(tcalls)) return bad_type(c, p, "an array", tcalls);
            char *s = json_dumps(tcalls, JSON_COMPACT);
            if (!s) return nomem(c);
            out[i].tool_calls_json = cg_arena_strndup(&c->r->arena, s, strlen(s));
            free(s);
            if (!out[i].tool_calls_json) return nomem(c);
        }
    }
    c->r->req.messages = out;
    c->r->req.n_messages = n;
    return CG_OK;
}

static cg_status parse_stop(ctx *c, json_t *root) {
    json_t *v = field(root, "stop");
    if (!v) return CG_OK;
    const char **out = cg_arena_calloc(&c->r->arena, MAX_STOP, sizeof *out, 8);
    if (!out) return nomem(c);
    size_t n = 0;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0) return bad_value(c, "stop", NULL, "a stop string must not be empty.");
        if (!(out[n++] = dup_str(c, v))) return nomem(c);
    } else if (json_is_array(v)) {
        if (json_array_size(v) > MAX_STOP)
            return bad_value(c, "stop", "array_above_max_length", "expected at most %d stop strings, but got %zu.", MAX_STOP, json_array_size(v));
        size_t i;
        json_t *s;
        char p[32];
        json_array_foreach(v, i, s) {
            snprintf(p, sizeof p, "stop[%zu]", i);
            if (!json_is_string(s)) return bad_type(c, p, "a string", s);
            if (json_string_length(s) == 0) return bad_value(c, p, NULL, "a stop string must not be empty.");
            if (!(out[n++] = dup_str(c, s))) return nomem(c);
        }
    } else {
        return bad_type(c, "stop", "a string or an array of strings", v);
    }
    c->r->req.stop = out;
    c->r->req.n_stop = n;
    return CG_OK;
}

static cg_status parse_logit_bias(ctx *c, json_t *root) {
    json_t *v = field(root, "logit_bias");
    if (!v) return CG_OK;
    if (!json_is_object(v)) return bad_type(c, "logit_bias", "an object", v);
    size_t n = json_object_size(v);
    if (n > MAX_LOGIT_BIAS) return bad_value(c, "logit_bias", NULL, "at most %d entries are allowed, got %zu.", MAX_LOGIT_BIAS, n);
    cg_srv_bias *out = cg_arena_calloc(&c->r->arena, n ? n : 1, sizeof *out, 8);
    if (!out) return nomem(c);
    size_t i = 0;
    const char *k;
    json_t *b;
    json_object_foreach(v, k, b) {
        char *end;
        long long tok = strtoll(k, &end, 10);
        if (!*k || *end || tok < 0 || tok > INT32_MAX)
            return bad_value(c, "logit_bias", NULL, "key '%.40s' is not a token id (a non-negative integer).", k);
        if (!json_is_number(b)) return bad_type(c, "logit_bias", "numbers as values", b);
        double x = json_number_value(b);
        if (!(x >= -100 && x <= 100))
            return bad_value(c, "logit_bias", NULL, "the bias for token %lld is %g; it must be in -100..100.", tok, x);
        out[i++] = (cg_srv_bias){(int32_t)tok, (float)x};
    }
    c->r->req.logit_bias = out;
    c->r->req.n_logit_bias = n;
    return CG_OK;
}

static bool valid_name(const char *s) {   // OpenAI function / schema names: ^[a-zA-Z0-9_-]{1,64}$
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

static const char *dump(ctx *c, json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) return NULL;
    const char *out = cg_arena_strndup(&c->r->arena, s, strlen(s));
    free(s);
    return out;
}

static cg_status parse_response_format(ctx *c, json_t *root) {
    json_t *v = field(root, "response_format");
    if (!v) return CG_OK;
    if (!json_is_object(v)) return bad_type(c, "response_format", "an object", v);
    json_t *type = json_object_get(v, "type");
    if (!type) return missing(c, "response_format.type");
    if (!json_is_string(type)) return bad_type(c, "response_format.type", "a string", type);
    const char *t = json_string_value(type);
    if (!strcmp(t, "text")) return CG_OK;
    if (!strcmp(t, "json_object")) { c->r->req.format = CG_SRV_FORMAT_JSON_OBJECT; return CG_OK; }
    if (strcmp(t, "json_schema"))
        return bad_value(c, "response_format.type", NULL, "expected one of 'text', 'json_object', 'json_schema', but got '%.40s' instead.", t);
    json_t *js = json_object_get(v, "json_schema");
    if (!js || json_is_null(js)) return missing(c, "response_format.json_schema");
    if (!json_is_object(js)) return bad_type(c, "response_format.json_schema", "an object", js);
    json_t *name = json_object_get(js, "name");
    if (!name) return missing(c, "response_format.json_schema.name");
    if (!json_is_string(name)) return bad_type(c, "response_format.json_schema.name", "a string", name);
    if (!valid_name(json_string_value(name)))
        return bad_value(c, "response_format.json_schema.name", NULL, "'%.70s' does not match '^[a-zA-Z0-9_-]{1,64}$'.", json_string_value(name));
    json_t *schema = field(js, "schema"), *strict = field(js, "strict");
    if (schema && !json_is_object(schema)) return bad_type(c, "response_format.json_schema.schema", "an object", schema);
    if (strict && !json_is_boolean(strict)) return bad_type(c, "response_format.json_schema.strict", "a boolean", strict);
    c->r->req.format = CG_SRV_FORMAT_JSON_SCHEMA;
    if (!(c->r->req.schema_json = schema ? dump(c, schema) : "{}")) return nomem(c);
    return CG_OK;
}

static cg_status parse_tools(ctx *c, json_t *root) {
    json_t *v = field(root, "tools");
    cg_srv_request *q = &c->r->req;
    char p[128];
    if (v) {
        if (!json_is_array(v)) return bad_type(c, "tools", "an array", v);
        size_t n = json_array_size(v);
        if (n > MAX_TOOLS) return bad_value(c, "tools", "array_above_max_length", "expected at most %d tools, but got %zu.", MAX_TOOLS, n);
        cg_srv_tool *out = cg_arena_calloc(&c->r->arena, n ? n : 1, sizeof *out, 8);
        if (!out) return nomem(c);
        for (size_t i = 0; i < n; i++) {
            json_t *t = json_array_get(v, i);
            snprintf(p, sizeof p, "tools[%zu]", i);
            if (!json_is_object(t)) return bad_type(c, p, "an object", t);
            json_t *type = json_object_get(t, "type"), *fn = json_object_get(t, "function");
            snprintf(p, sizeof p, "tools[%zu].type", i);
            if (!type) return missing(c, p);
            if (!json_is_string(type) || strcmp(json_string_value(type), "function"))
                return json_is_string(type) ? bad_value(c, p, NULL, "expected 'function', but got '%.40s' instead.", json_string_value(type))
                                            : bad_type(c, p, "a string", type);
            snprintf(p, sizeof p, "tools[%zu].function", i);
            if (!fn) return missing(c, p);
            if (!json_is_object(fn)) return bad_type(c, p, "an object", fn);
            json_t *name = json_object_get(fn, "name"), *desc = field(fn, "description"), *params = field(fn, "parameters");
            snprintf(p, sizeof p, "tools[%zu].function.name", i);
            if (!name) return missing(c, p);
            if (!json_is_string(name)) return bad_type(c, p, "a string", name);
            if (!valid_name(json_string_value(name)))
                return bad_value(c, p, NULL, "'%.70s' does not match '^[a-zA-Z0-9_-]{1,64}$'.", json_string_value(name));
            if (!(out[i].name = dup_str(c, name))) return nomem(c);
            snprintf(p, sizeof p, "tools[%zu].function.description", i);
            if (desc && !json_is_string(desc)) return bad_type(c, p, "a string", desc);
            if (desc && !(out[i].description = dup_str(c, desc))) return nomem(c);
            snprintf(p, sizeof p, "tools[%zu].function.parameters", i);
            if (params && !json_is_object(params)) return bad_type(c, p, "an object", params);
            if (!(out[i].parameters_json = params ? dump(c, params) : "{}")) return nomem(c);
        }
        q->tools = out;
        q->n_tools = n;
    }
    json_t *tc = field(root, "tool_choice");
    if (tc) {
        if (json_is_string(tc)) {
            const char *s = json_string_value(tc);
            if (!strcmp(s, "auto")) q->tool_choice = CG_SRV_TOOL_CHOICE_AUTO;
            else if (!strcmp(s, "none")) q->tool_choice = CG_SRV_TOOL_CHOICE_NONE;
            else if (!strcmp(s, "required")) q->tool_choice = CG_SRV_TOOL_CHOICE_REQUIRED;
            else return bad_value(c, "tool_choice", NULL, "expected 'none', 'auto', 'required' or an object, but got '%.40s' instead.", s);
        } else if (json_is_object(tc)) {
            json_t *fn = json_object_get(tc, "function"), *name = fn ? json_object_get(fn, "name") : NULL;
            if (!json_is_string(name)) return name ? bad_type(c, "tool_choice.function.name", "a string", name) : missing(c, "tool_choice.function.name");
            q->tool_choice = CG_SRV_TOOL_CHOICE_NAMED;
            if (!(q->tool_choice_name = dup_str(c, name))) return nomem(c);
            bool found = false;
            for (size_t i = 0; i < q->n_tools; i++) found = found || !strcmp(q->tools[i].name, q->tool_choice_name);
            if (!found) return bad_value(c, "tool_choice", NULL, "function '%.70s' is not among the tools.", q->tool_choice_name);
        } else {
            return bad_type(c, "tool_choice", "a string or an object", tc);
        }
        if (q->tool_choice != CG_SRV_TOOL_CHOICE_NONE && q->tool_choice != CG_SRV_TOOL_CHOICE_AUTO && !q->n_tools)
            return bad_value(c, "tool_choice", NULL, "tool_choice is set but no tools are given.");
    }
    q->parallel_tool_calls = true;
    return get_bool(c, root, "parallel_tool_calls", &q->parallel_tool_calls);
}

// Fields common to chat and completions.
static cg_status parse_sampling(ctx *c, json_t *root) {
    cg_srv_request *q = &c->r->req;
    cg_status st;
    int64_t x = 1;
    bool has = false;
    q->temperature = 1.0;
    q->top_p = 1.0;
    if ((st = get_number(c, root, "temperature", 0, 2, &q->temperature))) return st;
    if ((st = get_number(c, root, "top_p", 0, 1, &q->top_p))) return st;
    if ((st = get_number(c, root, "presence_penalty", -2, 2, &q->presence_penalty))) return st;
    if ((st = get_number(c, root, "frequency_penalty", -2, 2, &q->frequency_penalty))) return st;
    if ((st = get_int(c, root, "n", 1, c->lim->max_n, NULL, &x))) return st;
    q->n = (uint32_t)x;
    int64_t seed = 0;
    if ((st = get_int(c, root, "seed", INT64_MIN, INT64_MAX, &has, &seed))) return st;
    q->has_seed = has;
    q->seed = (uint64_t)seed;
    if ((st = parse_stop(c, root))) return st;
    if ((st = parse_logit_bias(c, root))) return st;
    if ((st = get_bool(c, root, "stream", &c->r->stream))) return st;
    json_t *so = field(root, "stream_options");
    if (so) {
        if (!json_is_object(so)) return bad_type(c, "stream_options", "an object", so);
        if (!c->r->stream) return bad_value(c, "stream_options", NULL, "stream_options is only allowed when 'stream' is true.");
        json_t *iu = field(so, "include_usage");
        if (iu && !json_is_boolean(iu)) return bad_type(c, "stream_options.include_usage", "a boolean", iu);
        c->r->include_usage = json_is_true(iu);
    }
    json_t *user = field(root, "user");
    if (user && !json_is_string(user)) return bad_type(c, "user", "a string", user);
    if (user && !(q->user = dup_str(c, user))) return nomem(c);
    q->timeout_ms = c->lim->timeout_ms;
    return CG_OK;
}

// max_tokens / max_completion_tokens: absent or null → dflt (-1: until the context is full); -1 also
// means no limit, as llama-server reads it (OpenAI itself rejects it); 0, other negatives, values above
// the cap and non-integers are a 400 naming the field.
static cg_status parse_max_tokens(ctx *c, json_t *root, int64_t dflt) {
    cg_srv_request *q = &c->r->req;
    cg_status st;
    int64_t x = dflt;
    static const char *const KEYS[] = {"max_tokens", "max_completion_tokens"};
    for (int k = 0; k < (c->r->endpoint == CG_OAI_CHAT ? 2 : 1); k++) {
        json_t *v = field(root, KEYS[k]);
        if (json_is_integer(v) && json_integer_value(v) == -1) {
            x = -1;
            continue;
        }
        if (json_is_integer(v) && json_integer_value(v) < 1)
            return bad_value(c, KEYS[k], "integer_below_min_value",
                             "expected a value >= 1 (or -1 for no limit), but got %" PRId64 " instead.",
                             (int64_t)json_integer_value(v));
        if ((st = get_int(c, root, KEYS[k], 1, c->lim->max_tokens_cap, NULL, &x))) return st;
    }
    q->max_tokens = x;
    return CG_OK;
}

static cg_status parse_chat(ctx *c, json_t *root) {
    cg_srv_request *q = &c->r->req;
    cg_status st;
    q->kind = CG_SRV_KIND_CHAT;
    if ((st = parse_messages(c, root))) return st;
    if ((st = parse_sampling(c, root))) return st;
    if ((st = parse_max_tokens(c, root, -1))) return st;
    if ((st = get_bool(c, root, "logprobs", &q->logprobs))) return st;
    int64_t top = 0;
    bool has_top = false;
    if ((st = get_int(c, root, "top_logprobs", 0, MAX_TOP_LOGPROBS, &has_top, &top))) return st;
    if (has_top && !q->logprobs)
        return bad_value(c, "top_logprobs", NULL, "'logprobs' must be set to true when 'top_logprobs' is used.");
    q->top_logprobs = (uint32_t)top;
    if ((st = parse_response_format(c, root))) return st;
    return parse_tools(c, root);
}

// A token-id array: every element an integer in 0..INT32_MAX.
static cg_status parse_token_array(ctx *c, json_t *arr, const char *param, cg_srv_prompt *out) {
    size_t n = json_array_size(arr);
    int32_t *t = cg_arena_calloc(&c->r->arena, n ? n : 1, sizeof *t, 8);
    if (!t) return nomem(c);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        char p[128];
        snprintf(p, sizeof p, "%.64s[%zu]", param, i);
        if (!json_is_integer(v)) return bad_type(c, p, "an integer token id", v);
        json_int_t x = json_integer_value(v);
        if (x < 0 || x > INT32_MAX) return bad_value(c, p, NULL, "token id %" JSON_INTEGER_FORMAT " is out of range.", x);
        t[i] = (int32_t)x;
    }
    if (n == 0) return bad_value(c, param, "empty_array", "a prompt must not be empty.");
    out->tokens = t;
    out->n_tokens = n;
    return CG_OK;
}

static cg_status parse_completion(ctx *c, json_t *root) {
    cg_srv_request *q = &c->r->req;
    cg_status st;
    q->kind = CG_SRV_KIND_COMPLETION;
    json_t *pr = json_object_get(root, "prompt");
    if (!pr || json_is_null(pr)) return missing(c, "prompt");
    size_t n = json_is_array(pr) ? json_array_size(pr) : 1;
    if (json_is_array(pr) && n == 0) return bad_value(c, "prompt", "empty_array", "the prompt must not be an empty array.");
    bool all_int = json_is_array(pr) && json_is_integer(json_array_get(pr, 0));
    if (all_int) n = 1;
    if (n > c->lim->max_prompts) return bad_value(c, "prompt", "array_above_max_length", "at most %u prompts, got %zu.", c->lim->max_prompts, n);
    cg_srv_prompt *out = cg_arena_calloc(&c->r->arena, n, sizeof *out, 8);
    if (!out) return nomem(c);
    if (json_is_string(pr)) {
        if (!(out[0].text = dup_str(c, pr))) return nomem(c);
    } else if (!json_is_array(pr)) {
        return bad_type(c, "prompt", "a string, an array of strings or an array of token ids", pr);
    } else if (all_int) {
        if ((st = parse_token_array(c, pr, "prompt", &out[0]))) return st;
    } else {
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(pr, i);
            char p[128];
            snprintf(p, sizeof p, "prompt[%zu]", i);
            if (json_is_string(v)) { if (!(out[i].text = dup_str(c, v))) return nomem(c); }
            else if (json_is_array(v)) { if ((st = parse_token_array(c, v, p, &out[i]))) return st; }
            else return bad_type(c, p, "a string or an array of token ids", v);
        }
    }
    q->prompts = out;
    q->n_prompts = n;
    if ((st = parse_sampling(c, root))) return st;
    if ((st = parse_max_tokens(c, root, 16))) return st;   // the legacy endpoint's default is 16
    if ((st = get_bool(c, root, "echo", &q->echo))) return st;
    int64_t lp = 0;
    bool has = false;
    if ((st = get_int(c, root, "logprobs", 0, 5, &has, &lp))) return st;
    q->logprobs = has;
    q->top_logprobs = (uint32_t)lp;
    int64_t best_of = q->n;
    if ((st = get_int(c, root, "best_of", 1, c->lim->max_n, NULL, &best_of))) return st;
    if (best_of != q->n) return bad_value(c, "best_of", NULL, "best_of must equal n on this server (got %" PRId64 ", n is %u).", best_of, q->n);
    json_t *suffix = field(root, "suffix");
    if (suffix && !json_is_string(suffix)) return bad_type(c, "suffix", "a string", suffix);
    if (suffix && json_string_length(suffix)) return bad_value(c, "suffix", NULL, "suffix (fill-in-the-middle) is not supported by this model.");
    return CG_OK;
}

static cg_status parse_embeddings(ctx *c, json_t *root) {
    cg_status st;
    json_t *in = json_object_get(root, "input");
    if (!in || json_is_null(in)) return missing(c, "input");
    // OpenAI's four forms: a string, an array of strings, an array of token ids (one input), an
    // array of token-id arrays.
    if (!json_is_string(in) && !json_is_array(in))
        return bad_type(c, "input", "a string, an array of strings, an array of token ids or an array of token-id arrays", in);
    size_t n = json_is_array(in) ? json_array_size(in) : 1;
    if (json_is_array(in) && n == 0) return bad_value(c, "input", "empty_array", "the input must not be an empty array.");
    bool one_token_input = json_is_array(in) && json_is_integer(json_array_get(in, 0));
    if (one_token_input) n = 1;
    if (n > c->lim->max_prompts) return bad_value(c, "input", "array_above_max_length", "at most %u inputs, got %zu.", c->lim->max_prompts, n);
    cg_srv_prompt *out = cg_arena_calloc(&c->r->arena, n, sizeof *out, 8);
    if (!out) return nomem(c);
    if (one_token_input) {
        if ((st = parse_token_array(c, in, "input", &out[0]))) return st;
        n = 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_is_array(in) ? json_array_get(in, i) : in;
            char p[128];
            snprintf(p, sizeof p, json_is_array(in) ? "input[%zu]" : "input", i);
            // One form per request: all strings or all token-id arrays, as input[0] decides.
            bool arrays = json_is_array(in) && json_is_array(json_array_get(in, 0));
            if (arrays) {
                if (!json_is_array(v)) return bad_type(c, p, "an array of token ids (as input[0] is)", v);
                if ((st = parse_token_array(c, v, p, &out[i]))) return st;
                continue;
            }
            if (!json_is_string(v))
                return bad_type(c, p, i ? "a string (as input[0] is)" : "a string or an array of token ids", v);
            if (json_string_length(v) == 0) return bad_value(c, p, NULL, "an input must not be empty.");
            if (!(out[i].text = dup_str(c, v))) return nomem(c);
        }
    }
    c->r->inputs = out;
    c->r->n_inputs = n;
    json_t *fmt = field(root, "encoding_format");
    if (fmt) {
        if (!json_is_string(fmt)) return bad_type(c, "encoding_format", "a string", fmt);
        if (!strcmp(json_string_value(fmt), "base64")) c->r->base64 = true;
        else if (strcmp(json_string_value(fmt), "float"))
            return bad_value(c, "encoding_format", NULL, "expected 'float' or 'base64', but got '%.40s' instead.", json_string_value(fmt));
    }
    json_t *user = field(root, "user");
    if (user && !json_is_string(user)) return bad_type(c, "user", "a string", user);
    int64_t dims = 0;
    st = get_int(c, root, "dimensions", 1, 65536, NULL, &dims);   // checked against the model by the caller
    c->r->dimensions = (uint32_t)dims;
    return st;
}

cg_status cg_oai_parse(cg_oai_endpoint endpoint, const char *body, size_t n, const cg_oai_limits *lim,
                       cg_oai_req *out, cg_oai_error *e) {
    cg_status st = CG_ERR_INVALID;
    json_t *root = NULL;
    memset(out, 0, sizeof *out);
    cg_arena_init(&out->arena, 4096);
    out->endpoint = endpoint;
    out->req.n = 1;
    out->req.max_tokens = -1;
    ctx c = {out, e, lim};
    uint32_t depth = json_depth(body, n, lim->max_depth);
    if (depth > lim->max_depth) {
        cg_oai_error_set(e, 400, "invalid_request_error", "json_too_deep", NULL,
                         "The JSON body nests deeper than %u levels.", lim->max_depth);
        goto fail;
    }
    json_error_t jerr;
    root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        cg_oai_error_set(e, 400, "invalid_request_error", "invalid_json", NULL,
                         "We could not parse the JSON body of your request: %s (line %d, column %d).", jerr.text,
                         jerr.line, jerr.column);
        goto fail;
    }
    if (!json_is_object(root)) {
        cg_oai_error_set(e, 400, "invalid_request_error", "invalid_type", NULL,
                         "The request body must be a JSON object, but got %s.", type_name(root));
        goto fail;
    }
    json_t *model = json_object_get(root, "model");
    if (!model || json_is_null(model)) { st = missing(&c, "model"); goto fail; }
    if (!json_is_string(model)) { st = bad_type(&c, "model", "a string", model); goto fail; }
    if (!(out->model = dup_str(&c, model))) { st = nomem(&c); goto fail; }
    st = endpoint == CG_OAI_CHAT ? parse_chat(&c, root)
       : endpoint == CG_OAI_COMPLETIONS ? parse_completion(&c, root)
       : parse_embeddings(&c, root);
    if (st) goto fail;
    json_decref(root);
    return CG_OK;
fail:
    json_decref(root);
    cg_oai_req_free(out);
    return st ? st : CG_ERR_INVALID;
}

void cg_oai_req_free(cg_oai_req *r) {
    if (!r) return;
    cg_arena_free(&r->arena);
    memset(r, 0, sizeof *r);
}

// ---- response accumulation --------------------------------------------------------------------

typedef struct acc_tool {
    char *id, *name;   // owned
    cg_buf args;
} acc_tool;

typedef struct acc_choice {
    cg_buf text;
    cg_buf lp;              // CHAT: comma-separated logprob objects
    cg_buf lp_tokens, lp_values, lp_top, lp_offsets;   // COMPLETIONS legacy arrays (comma-separated)
    size_t n_lp;
    size_t n_cp;            // code points in text (legacy text_offset counts characters, not bytes)
    acc_tool tools[MAX_TOOL_CALLS];
    uint32_t n_tools;
    bool started, finished;
    cg_srv_finish finish;
} acc_choice;

struct cg_oai_acc {
    cg_oai_acc_params p;
    char *id, *model;
    acc_choice *choices;
    cg_srv_usage usage;
    bool done;
};

cg_status cg_oai_acc_new(const cg_oai_acc_params *p, cg_oai_acc **out, cg_err *err) {
    cg_oai_acc *a = calloc(1, sizeof *a);
    if (!a) return cg_err_set(err, CG_ERR_NOMEM, "openai: out of memory");
    a->p = *p;
    a->id = strdup(p->id);
    a->model = strdup(p->model);
    a->choices = calloc(p->n_choices ? p->n_choices : 1, sizeof *a->choices);
    if (!a->id || !a->model || !a->choices) {
        cg_oai_acc_free(a);
        return cg_err_set(err, CG_ERR_NOMEM, "openai: out of memory");
    }
    *out = a;
    return CG_OK;
}

void cg_oai_acc_free(cg_oai_acc *a) {
    if (!a) return;
    for (uint32_t i = 0; a->choices && i < a->p.n_choices; i++) {
        acc_choice *c = &a->choices[i];
        cg_buf_free(&c->text);
        cg_buf_free(&c->lp);
        cg_buf_free(&c->lp_tokens);
        cg_buf_free(&c->lp_values);
        cg_buf_free(&c->lp_top);
        cg_buf_free(&c->lp_offsets);
        for (uint32_t k = 0; k < c->n_tools; k++) {
            free(c->tools[k].id);
            free(c->tools[k].name);
            cg_buf_free(&c->tools[k].args);
        }
    }
    free(a->choices);
    free(a->id);
    free(a->model);
    free(a);
}

cg_srv_usage cg_oai_acc_usage(const cg_oai_acc *a) { return a->usage; }

static const char *finish_name(cg_srv_finish f) {
    switch (f) {
    case CG_SRV_FINISH_LENGTH: return "length";
    case CG_SRV_FINISH_TOOL_CALLS: return "tool_calls";
    default: return "stop";
    }
}

// One chat logprob object {"token","logprob","bytes","top_logprobs"}.
static void lp_object(cg_buf *b, const cg_srv_logprob *t, const cg_srv_logprob *top, size_t n_top, bool with_top) {
    cg_buf_puts(b, "{\"token\":");
    cg_json_str(b, t->token, t->n_token);
    cg_buf_puts(b, ",\"logprob\":");
    cg_json_float(b, t->logprob);
    cg_buf_puts(b, ",\"bytes\":[");
    for (size_t i = 0; i < t->n_token; i++) cg_buf_printf(b, "%s%u", i ? "," : "", (unsigned char)t->token[i]);
    cg_buf_putc(b, ']');
    if (with_top) {
        cg_buf_puts(b, ",\"top_logprobs\":[");
        for (size_t i = 0; i < n_top; i++) {
            if (i) cg_buf_putc(b, ',');
            lp_object(b, &top[i], NULL, 0, false);
        }
        cg_buf_putc(b, ']');
    }
    cg_buf_putc(b, '}');
}

static void legacy_lp(acc_choice *c, const cg_srv_event *ev) {
    const char *sep = c->n_lp ? "," : "";
    cg_buf_puts(&c->lp_tokens, sep);
    cg_json_str(&c->lp_tokens, ev->tok.token, ev->tok.n_token);
    cg_buf_puts(&c->lp_values, sep);
    cg_json_float(&c->lp_values, ev->tok.logprob);
    cg_buf_printf(&c->lp_top, "%s{", sep);
    for (size_t i = 0; i < ev->n_top; i++) {
        if (i) cg_buf_putc(&c->lp_top, ',');
        cg_json_str(&c->lp_top, ev->top[i].token, ev->top[i].n_token);
        cg_buf_putc(&c->lp_top, ':');
        cg_json_float(&c->lp_top, ev->top[i].logprob);
    }
    cg_buf_putc(&c->lp_top, '}');
    cg_buf_printf(&c->lp_offsets, "%s%zu", sep, c->n_cp);
    c->n_lp++;
}

static void chunk_head(const cg_oai_acc *a, cg_buf *b) {
    bool chat = a->p.endpoint == CG_OAI_CHAT;
    cg_buf_puts(b, "{\"id\":");
    cg_json_cstr(b, a->id);
    cg_buf_printf(b, ",\"object\":\"%s\",\"created\":%" PRId64 ",\"model\":", chat ? "chat.completion.chunk" : "text_completion",
                  a->p.created);
    cg_json_cstr(b, a->model);
    cg_buf_puts(b, ",\"system_fingerprint\":\"fp_chingu\",\"choices\":[");
}

static void chunk_tail(const cg_oai_acc *a, cg_buf *b) {
    cg_buf_puts(b, "]");
    if (a->p.include_usage) cg_buf_puts(b, ",\"usage\":null");
    cg_buf_putc(b, '}');
}

static void sse_frame(cg_buf *sse, cg_buf *frame) {
    cg_sse_data(sse, frame->data ? frame->data : "", frame->len);
    cg_buf_reset(frame);
}

static void usage_json(cg_buf *b, const cg_srv_usage *u) {
    cg_buf_printf(b,
                  "{\"prompt_tokens\":%" PRIu64 ",\"completion_tokens\":%" PRIu64 ",\"total_tokens\":%" PRIu64
                  ",\"prompt_tokens_details\":{\"cached_tokens\":%" PRIu64
                  "},\"completion_tokens_details\":{\"reasoning_tokens\":0}}",
                  u->prompt_tokens, u->completion_tokens, u->prompt_tokens + u->completion_tokens, u->cached_tokens);
}

static void stream_event(cg_oai_acc *a, acc_choice *c, const cg_srv_event *ev, cg_buf *sse) {
    bool chat = a->p.endpoint == CG_OAI_CHAT;
    cg_buf f;
    cg_buf_init(&f);
    if (chat && !c->started && ev->kind != CG_SRV_EV_DONE && ev->kind != CG_SRV_EV_ERROR) {
        chunk_head(a, &f);
        cg_buf_printf(&f, "{\"index\":%u,\"delta\":{\"role\":\"assistant\",\"content\":%s,\"refusal\":null},"
                          "\"logprobs\":null,\"finish_reason\":null}",
                      ev->i_choice, ev->kind == CG_SRV_EV_TOOL_CALL ? "null" : "\"\"");
        chunk_tail(a, &f);
        sse_frame(sse, &f);
    }
    c->started = true;
    if (ev->kind == CG_SRV_EV_TOKEN) {
        if (ev->n_text == 0 && !ev->has_logprob) goto out;
        chunk_head(a, &f);
        if (chat) {
            cg_buf_printf(&f, "{\"index\":%u,\"delta\":{\"content\":", ev->i_choice);
            cg_json_str(&f, ev->text, ev->n_text);
            cg_buf_puts(&f, "},\"logprobs\":");
            if (ev->has_logprob && a->p.logprobs) {
                cg_buf_puts(&f, "{\"content\":[");
                lp_object(&f, &ev->tok, ev->top, ev->n_top, true);
                cg_buf_puts(&f, "],\"refusal\":null}");
            } else {
                cg_buf_puts(&f, "null");
            }
        } else {
            cg_buf_puts(&f, "{\"text\":");
            cg_json_str(&f, ev->text, ev->n_text);
            cg_buf_printf(&f, ",\"index\":%u,\"logprobs\":", ev->i_choice);
            if (ev->has_logprob && a->p.logprobs) {
                cg_buf_puts(&f, "{\"tokens\":[");
                cg_json_str(&f, ev->tok.token, ev->tok.n_token);
                cg_buf_puts(&f, "],\"token_logprobs\":[");
                cg_json_float(&f, ev->tok.logprob);
                cg_buf_puts(&f, "],\"top_logprobs\":[{");
                for (size_t i = 0; i < ev->n_top; i++) {
                    if (i) cg_buf_putc(&f, ',');
                    cg_json_str(&f, ev->top[i].token, ev->top[i].n_token);
                    cg_buf_putc(&f, ':');
                    cg_json_float(&f, ev->top[i].logprob);
                }
                cg_buf_printf(&f, "}],\"text_offset\":[%zu]}", c->n_cp);
            } else {
                cg_buf_puts(&f, "null");
            }
        }
        cg_buf_puts(&f, ",\"finish_reason\":null}");
        chunk_tail(a, &f);
        sse_frame(sse, &f);
    } else if (ev->kind == CG_SRV_EV_TOOL_CALL && chat) {
        // As OpenAI streams a call: the first delta carries id, type, name and empty arguments;
        // the arguments follow in deltas that carry only the call's index and a fragment.
        if (ev->tool_id) {
            chunk_head(a, &f);
            cg_buf_printf(&f, "{\"index\":%u,\"delta\":{\"tool_calls\":[{\"index\":%u,\"id\":", ev->i_choice, ev->i_tool);
            cg_json_cstr(&f, ev->tool_id);
            cg_buf_puts(&f, ",\"type\":\"function\",\"function\":{\"name\":");
            cg_json_cstr(&f, ev->tool_name ? ev->tool_name : "");
            cg_buf_puts(&f, ",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}");
            chunk_tail(a, &f);
            sse_frame(sse, &f);
        }
        if (ev->n_args) {
            chunk_head(a, &f);
            cg_buf_printf(&f, "{\"index\":%u,\"delta\":{\"tool_calls\":[{\"index\":%u,\"function\":{\"arguments\":",
                          ev->i_choice, ev->i_tool);
            cg_json_str(&f, ev->args, ev->n_args);
            cg_buf_puts(&f, "}}]},\"logprobs\":null,\"finish_reason\":null}");
            chunk_tail(a, &f);
            sse_frame(sse, &f);
        }
    } else if (ev->kind == CG_SRV_EV_CHOICE_END) {
        chunk_head(a, &f);
        if (chat) cg_buf_printf(&f, "{\"index\":%u,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}", ev->i_choice, finish_name(ev->finish));
        else cg_buf_printf(&f, "{\"text\":\"\",\"index\":%u,\"logprobs\":null,\"finish_reason\":\"%s\"}", ev->i_choice, finish_name(ev->finish));
        chunk_tail(a, &f);
        sse_frame(sse, &f);
    } else if (ev->kind == CG_SRV_EV_DONE) {
        if (a->p.include_usage) {
            chunk_head(a, &f);
            cg_buf_puts(&f, "],\"usage\":");
            usage_json(&f, &ev->usage);
            cg_buf_putc(&f, '}');
            sse_frame(sse, &f);
        }
        cg_buf_puts(sse, "data: [DONE]\n\n");
    }
out:
    if (!cg_buf_ok(&f)) sse->failed = true;
    cg_buf_free(&f);
}

void cg_oai_acc_event(cg_oai_acc *a, const cg_srv_event *ev, cg_buf *sse) {
    acc_choice *c = NULL;
    if (ev->kind == CG_SRV_EV_TOKEN || ev->kind == CG_SRV_EV_TOOL_CALL || ev->kind == CG_SRV_EV_CHOICE_END) {
        if (ev->i_choice >= a->p.n_choices) return;   // a backend bug; ignore rather than crash
        c = &a->choices[ev->i_choice];
    }
    if (ev->kind == CG_SRV_EV_DONE) {
        a->usage = ev->usage;
        a->done = true;
    }
    if (a->p.stream && ev->kind != CG_SRV_EV_ERROR) {
        acc_choice dummy = {.started = true};
        stream_event(a, c ? c : &dummy, ev, sse);
    }
    if (ev->kind == CG_SRV_EV_TOKEN) {
        if (ev->has_logprob && a->p.logprobs && !a->p.stream) {
            if (a->p.endpoint == CG_OAI_CHAT) {
                if (c->n_lp++) cg_buf_putc(&c->lp, ',');
                lp_object(&c->lp, &ev->tok, ev->top, ev->n_top, true);
            } else {
                legacy_lp(c, ev);
            }
        }
        cg_buf_append(&c->text, ev->text, ev->n_text);
        for (size_t i = 0; i < ev->n_text; i++) c->n_cp += ((unsigned char)ev->text[i] & 0xC0) != 0x80;
    } else if (ev->kind == CG_SRV_EV_TOOL_CALL) {
        if (ev->tool_id && c->n_tools < MAX_TOOL_CALLS) {
            acc_tool *t = &c->tools[c->n_tools++];
            t->id = strdup(ev->tool_id);
            t->name = strdup(ev->tool_name ? ev->tool_name : "");
        }
        if (c->n_tools && ev->i_tool == c->n_tools - 1) cg_buf_append(&c->tools[c->n_tools - 1].args, ev->args, ev->n_args);
    } else if (ev->kind == CG_SRV_EV_CHOICE_END) {
        c->finished = true;
        c->finish = ev->finish;
    }
}

void cg_oai_acc_body(const cg_oai_acc *a, cg_buf *b) {
    bool chat = a->p.endpoint == CG_OAI_CHAT;
    cg_buf_puts(b, "{\"id\":");
    cg_json_cstr(b, a->id);
    cg_buf_printf(b, ",\"object\":\"%s\",\"created\":%" PRId64 ",\"model\":", chat ? "chat.completion" : "text_completion",
                  a->p.created);
    cg_json_cstr(b, a->model);
    cg_buf_puts(b, ",\"system_fingerprint\":\"fp_chingu\",\"choices\":[");
    for (uint32_t i = 0; i < a->p.n_choices; i++) {
        const acc_choice *c = &a->choices[i];
        if (i) cg_buf_putc(b, ',');
        cg_buf_printf(b, "{\"index\":%u,", i);
        if (chat) {
            cg_buf_puts(b, "\"message\":{\"role\":\"assistant\",\"content\":");
            if (c->n_tools && c->text.len == 0) cg_buf_puts(b, "null");
            else cg_json_str(b, c->text.data ? c->text.data : "", c->text.len);
            cg_buf_puts(b, ",\"refusal\":null");
            if (c->n_tools) {
                cg_buf_puts(b, ",\"tool_calls\":[");
                for (uint32_t k = 0; k < c->n_tools; k++) {
                    const acc_tool *t = &c->tools[k];
                    cg_buf_puts(b, k ? ",{\"id\":" : "{\"id\":");
                    cg_json_cstr(b, t->id ? t->id : "");
                    cg_buf_puts(b, ",\"type\":\"function\",\"function\":{\"name\":");
                    cg_json_cstr(b, t->name ? t->name : "");
                    cg_buf_puts(b, ",\"arguments\":");
                    cg_json_str(b, t->args.data ? t->args.data : "", t->args.len);
                    cg_buf_puts(b, "}}");
                }
                cg_buf_putc(b, ']');
            }
            cg_buf_puts(b, "},\"logprobs\":");
            if (a->p.logprobs) {
                cg_buf_puts(b, "{\"content\":[");
                cg_buf_append(b, c->lp.data, c->lp.len);
                cg_buf_puts(b, "],\"refusal\":null}");
            } else {
                cg_buf_puts(b, "null");
            }
        } else {
            cg_buf_puts(b, "\"text\":");
            cg_json_str(b, c->text.data ? c->text.data : "", c->text.len);
            cg_buf_puts(b, ",\"logprobs\":");
            if (a->p.logprobs) {
                cg_buf_puts(b, "{\"tokens\":[");
                cg_buf_append(b, c->lp_tokens.data, c->lp_tokens.len);
                cg_buf_puts(b, "],\"token_logprobs\":[");
                cg_buf_append(b, c->lp_values.data, c->lp_values.len);
                cg_buf_puts(b, "],\"top_logprobs\":[");
                cg_buf_append(b, c->lp_top.data, c->lp_top.len);
                cg_buf_puts(b, "],\"text_offset\":[");
                cg_buf_append(b, c->lp_offsets.data, c->lp_offsets.len);
                cg_buf_puts(b, "]}");
            } else {
                cg_buf_puts(b, "null");
            }
        }
        cg_buf_printf(b, ",\"finish_reason\":\"%s\"}", finish_name(c->finish));
    }
    cg_buf_puts(b, "],\"usage\":");
    usage_json(b, &a->usage);
    cg_buf_putc(b, '}');
}

// ---- models and embeddings --------------------------------------------------------------------

void cg_oai_model_json(cg_buf *b, const cg_srv_model_info *m) {
    cg_buf_puts(b, "{\"id\":");
    cg_json_cstr(b, m->id);
    cg_buf_printf(b, ",\"object\":\"model\",\"created\":%" PRId64 ",\"owned_by\":", m->created);
    cg_json_cstr(b, m->owned_by ? m->owned_by : "chingu");
    cg_buf_printf(b, ",\"context_length\":%u}", m->n_ctx);
}

void cg_oai_models_json(cg_buf *b, const cg_srv_model_info *m) {
    cg_buf_puts(b, "{\"object\":\"list\",\"data\":[");
    cg_oai_model_json(b, m);
    cg_buf_puts(b, "]}");
}

static void base64(cg_buf *b, const unsigned char *p, size_t n) {
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {T[v >> 18 & 63], T[v >> 12 & 63], i + 1 < n ? T[v >> 6 & 63] : '=', i + 2 < n ? T[v & 63] : '='};
        cg_buf_append(b, q, 4);
    }
}

void cg_oai_embeddings_json(cg_buf *b, const char *model, const float *vecs, size_t n_inputs, size_t n_dim,
                            bool b64, uint64_t prompt_tokens) {
    cg_buf_puts(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n_inputs; i++) {
        cg_buf_printf(b, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i ? "," : "", i);
        const float *v = vecs + i * n_dim;
        if (b64) {   // little-endian float32 bytes, as OpenAI sends them
            cg_buf_putc(b, '"');
            base64(b, (const unsigned char *)v, n_dim * sizeof *v);
            cg_buf_putc(b, '"');
        } else {
            cg_buf_putc(b, '[');
            for (size_t k = 0; k < n_dim; k++) {
                if (k) cg_buf_putc(b, ',');
                cg_json_float(b, v[k]);
            }
            cg_buf_putc(b, ']');
        }
        cg_buf_putc(b, '}');
    }
    cg_buf_puts(b, "],\"model\":");
    cg_json_cstr(b, model);
    cg_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%" PRIu64 ",\"total_tokens\":%" PRIu64 "}}", prompt_tokens, prompt_tokens);
}
