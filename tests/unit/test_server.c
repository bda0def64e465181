// test_server.c — the server layer: request validation (bad requests → 400 naming the field), the
// JSON/SSE escaper, OpenAI error and response shapes, API-key hashing, metrics text, the fake
// backend's contract, and the HTTP server end to end in-process (libcurl as the client).
//
// Expectations are hand-written from the OpenAI API reference and the JSON/Prometheus specs;
// JSON output is re-parsed with jansson (an independent parser), never compared with earlier output.
#include "testutil.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/time.h"
#include "server/auth.h"
#include "server/backend_fake.h"
#include "server/metrics.h"
#include "server/openai.h"
#include "server/server.h"
#include "server/sse.h"

// ---- request validation -----------------------------------------------------------------------

typedef struct bad_case {
    cg_oai_endpoint ep;
    const char *body;
    const char *param;   // NULL: param must be null
} bad_case;

#define M "\"model\":\"m\","
#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static const bad_case BAD[] = {
    {CG_OAI_CHAT, "", NULL},
    {CG_OAI_CHAT, "{", NULL},
    {CG_OAI_CHAT, "[]", NULL},
    {CG_OAI_CHAT, "{\"model\":\"m\",\"model\":\"m\"," MSG "}", NULL},
    {CG_OAI_CHAT, "{\"model\":\"a\xff\"," MSG "}", NULL},
    {CG_OAI_CHAT, "{" MSG "}", "model"},
    {CG_OAI_CHAT, "{\"model\":7," MSG "}", "model"},
    {CG_OAI_CHAT, "{" M "\"messages\":{}}", "messages"},
    {CG_OAI_CHAT, "{" M "\"messages\":[]}", "messages"},
    {CG_OAI_CHAT, "{" M "\"messages\":[3]}", "messages[0]"},
    {CG_OAI_CHAT, "{" M "\"messages\":[{\"content\":\"x\"}]}", "messages[0].role"},
    {CG_OAI_CHAT, "{" M "\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages[0].role"},
    {CG_OAI_CHAT, "{" M "\"messages\":[{\"role\":\"user\"}]}", "messages[0].content"},
    {CG_OAI_CHAT, "{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}", "messages[0].content[0].type"},
    {CG_OAI_CHAT, "{" M "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":1}]}]}", "messages[0].content[0].text"},
    {CG_OAI_CHAT, "{" M "\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"name\":5}]}", "messages[0].name"},
    {CG_OAI_CHAT, "{" M "\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0].tool_call_id"},
    {CG_OAI_CHAT, "{" M MSG ",\"temperature\":\"1\"}", "temperature"},
    {CG_OAI_CHAT, "{" M MSG ",\"temperature\":-0.5}", "temperature"},
    {CG_OAI_CHAT, "{" M MSG ",\"top_p\":1.01}", "top_p"},
    {CG_OAI_CHAT, "{" M MSG ",\"n\":0}", "n"},
    {CG_OAI_CHAT, "{" M MSG ",\"n\":17}", "n"},
    {CG_OAI_CHAT, "{" M MSG ",\"n\":true}", "n"},
    {CG_OAI_CHAT, "{" M MSG ",\"seed\":1.5}", "seed"},
    {CG_OAI_CHAT, "{" M MSG ",\"max_tokens\":0}", "max_tokens"},
    {CG_OAI_CHAT, "{" M MSG ",\"max_tokens\":99999999}", "max_tokens"},
    {CG_OAI_CHAT, "{" M MSG ",\"max_completion_tokens\":-3}", "max_completion_tokens"},
    {CG_OAI_CHAT, "{" M MSG ",\"stop\":5}", "stop"},
    {CG_OAI_CHAT, "{" M MSG ",\"stop\":[\"a\",7]}", "stop[1]"},
    {CG_OAI_CHAT, "{" M MSG ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop"},
    {CG_OAI_CHAT, "{" M MSG ",\"presence_penalty\":-2.5}", "presence_penalty"},
    {CG_OAI_CHAT, "{" M MSG ",\"frequency_penalty\":\"x\"}", "frequency_penalty"},
    {CG_OAI_CHAT, "{" M MSG ",\"logit_bias\":[]}", "logit_bias"},
    {CG_OAI_CHAT, "{" M MSG ",\"logit_bias\":{\"-1\":3}}", "logit_bias"},
    {CG_OAI_CHAT, "{" M MSG ",\"logit_bias\":{\"5\":-101}}", "logit_bias"},
    {CG_OAI_CHAT, "{" M MSG ",\"logprobs\":1}", "logprobs"},
    {CG_OAI_CHAT, "{" M MSG ",\"top_logprobs\":3}", "top_logprobs"},
    {CG_OAI_CHAT, "{" M MSG ",\"logprobs\":true,\"top_logprobs\":21}", "top_logprobs"},
    {CG_OAI_CHAT, "{" M MSG ",\"stream\":1}", "stream"},
    {CG_OAI_CHAT, "{" M MSG ",\"stream_options\":{\"include_usage\":true}}", "stream_options"},
    {CG_OAI_CHAT, "{" M MSG ",\"stream\":true,\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage"},
    {CG_OAI_CHAT, "{" M MSG ",\"response_format\":\"json\"}", "response_format"},
    {CG_OAI_CHAT, "{" M MSG ",\"response_format\":{}}", "response_format.type"},
    {CG_OAI_CHAT, "{" M MSG ",\"response_format\":{\"type\":\"json_schema\"}}", "response_format.json_schema"},
    {CG_OAI_CHAT, "{" M MSG ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a b\"}}}", "response_format.json_schema.name"},
    {CG_OAI_CHAT, "{" M MSG ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"a\",\"schema\":[]}}}", "response_format.json_schema.schema"},
    {CG_OAI_CHAT, "{" M MSG ",\"tools\":{}}", "tools"},
    {CG_OAI_CHAT, "{" M MSG ",\"tools\":[{\"type\":\"function\"}]}", "tools[0].function"},
    {CG_OAI_CHAT, "{" M MSG ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"ok\"}},{\"type\":\"function\",\"function\":{\"name\":\"\"}}]}", "tools[1].function.name"},
    {CG_OAI_CHAT, "{" M MSG ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":\"{}\"}}]}", "tools[0].function.parameters"},
    {CG_OAI_CHAT, "{" M MSG ",\"tool_choice\":\"sometimes\"}", "tool_choice"},
    {CG_OAI_CHAT, "{" M MSG ",\"tool_choice\":\"required\"}", "tool_choice"},
    {CG_OAI_CHAT, "{" M MSG ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}", "tool_choice"},
    {CG_OAI_CHAT, "{" M MSG ",\"parallel_tool_calls\":\"yes\"}", "parallel_tool_calls"},
    {CG_OAI_CHAT, "{" M MSG ",\"user\":42}", "user"},
    {CG_OAI_COMPLETIONS, "{\"model\":\"m\"}", "prompt"},
    {CG_OAI_COMPLETIONS, "{" M "\"prompt\":[]}", "prompt"},
    {CG_OAI_COMPLETIONS, "{" M "\"prompt\":{}}", "prompt"},
    {CG_OAI_COMPLETIONS, "{" M "\"prompt\":[\"a\",3]}", "prompt[1]"},
    {CG_OAI_COMPLETIONS, "{" M "\"prompt\":[1,2147483648]}", "prompt[1]"},
    {CG_OAI_COMPLETIONS, "{" M "\"prompt\":\"x\",\"logprobs\":true}", "logprobs"},
    {CG_OAI_COMPLETIONS, "{" M "\"prompt\":\"x\",\"echo\":\"no\"}", "echo"},
    {CG_OAI_COMPLETIONS, "{" M "\"prompt\":\"x\",\"best_of\":3}", "best_of"},
    {CG_OAI_COMPLETIONS, "{" M "\"prompt\":\"x\",\"suffix\":\"tail\"}", "suffix"},
    {CG_OAI_EMBEDDINGS, "{\"model\":\"m\"}", "input"},
    {CG_OAI_EMBEDDINGS, "{" M "\"input\":\"\"}", "input"},
    {CG_OAI_EMBEDDINGS, "{" M "\"input\":[\"a\",[1]]}", "input[1]"},
    {CG_OAI_EMBEDDINGS, "{" M "\"input\":[[1],\"a\"]}", "input[1]"},
    {CG_OAI_EMBEDDINGS, "{" M "\"input\":[1,\"a\"]}", "input[1]"},
    {CG_OAI_EMBEDDINGS, "{" M "\"input\":[[1],[]]}", "input[1]"},
    {CG_OAI_EMBEDDINGS, "{" M "\"input\":[[1,-2]]}", "input[0][1]"},
    {CG_OAI_EMBEDDINGS, "{" M "\"input\":{}}", "input"},
    {CG_OAI_EMBEDDINGS, "{" M "\"input\":\"a\",\"encoding_format\":\"hex\"}", "encoding_format"},
    {CG_OAI_EMBEDDINGS, "{" M "\"input\":\"a\",\"dimensions\":0}", "dimensions"},
};

static void test_bad_requests_name_the_field(void **state) {
    (void)state;
    cg_oai_limits lim = cg_oai_limits_default();
    size_t n = sizeof BAD / sizeof BAD[0];
    for (size_t i = 0; i < n; i++) {
        cg_oai_req r;
        cg_oai_error e;
        memset(&e, 0, sizeof e);
        cg_status st = cg_oai_parse(BAD[i].ep, BAD[i].body, strlen(BAD[i].body), &lim, &r, &e);
        if (st != CG_ERR_INVALID) fail_msg("case %zu (%s): accepted", i, BAD[i].body);
        assert_int_equal(e.http_status, 400);
        assert_string_equal(e.type, "invalid_request_error");
        if (strcmp(e.param, BAD[i].param ? BAD[i].param : ""))
            fail_msg("case %zu (%s): param '%s', want '%s' (%s)", i, BAD[i].body, e.param, BAD[i].param ? BAD[i].param : "", e.message);
        if (BAD[i].param && !strstr(e.message, BAD[i].param))
            fail_msg("case %zu: message does not name '%s': %s", i, BAD[i].param, e.message);
    }
    print_message("%zu bad requests rejected with 400 and the right param\n", n);
}

// Mutated valid bodies (deterministic xorshift): every result is either a valid request or a 400
// with a message — never a crash (this runs under ASan/UBSan in CI).
static void test_mutated_bodies_never_crash(void **state) {
    (void)state;
    static const char *const SEEDS[] = {
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"안녕\"}]}],"
        "\"n\":2,\"stop\":[\"x\"],\"logit_bias\":{\"5\":1},\"logprobs\":true,\"top_logprobs\":2,\"stream\":true,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"s\",\"schema\":{}}}}",
        "{\"model\":\"m\",\"prompt\":[[1,2],\"a\"],\"echo\":true,\"logprobs\":3,\"max_tokens\":4}",
        "{\"model\":\"m\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\"}",
    };
    static const char SIG[] = "{}[]\",:-0123456789.eE\\ntfu\x00\xff\xc3";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    cg_oai_limits lim = cg_oai_limits_default();
    size_t n_ok = 0, n_bad = 0;
    char buf[1024];
    for (int it = 0; it < 6000; it++) {
        int k = it % 3;
        size_t n = strlen(SEEDS[k]);
        memcpy(buf, SEEDS[k], n);
        int n_mut = 1 + (int)(x % 4);
        for (int m = 0; m < n_mut; m++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x >> 8) % n;
            switch (x % 4) {
            case 0: buf[at] = SIG[(x >> 40) % (sizeof SIG - 1)]; break;
            case 1: buf[at] = (char)(x >> 32); break;
            case 2: memmove(buf + at, buf + at + 1, n - at - 1); n--; break;
            default: if (n + 1 < sizeof buf) { memmove(buf + at + 1, buf + at, n - at); n++; } break;
            }
        }
        cg_oai_req r;
        cg_oai_error e;
        memset(&e, 0, sizeof e);
        cg_status st = cg_oai_parse((cg_oai_endpoint)k, buf, n, &lim, &r, &e);
        if (st == CG_OK) {
            n_ok++;
            if (k != CG_OAI_EMBEDDINGS) assert_true(r.req.n >= 1 && r.req.n <= lim.max_n);
            cg_oai_req_free(&r);
        } else {
            n_bad++;
            assert_int_equal(st, CG_ERR_INVALID);
            assert_int_equal(e.http_status, 400);
            assert_true(e.message[0] != 0);
        }
    }
    print_message("6000 mutated bodies: %zu accepted, %zu rejected with 400\n", n_ok, n_bad);
    assert_true(n_ok > 0 && n_bad > 0);
}

static void test_depth_cap(void **state) {
    (void)state;
    cg_oai_limits lim = cg_oai_limits_default();
    lim.max_depth = 8;
    char body[256];
    // depth 8 (object + messages array + 6 nested arrays inside an unknown field): accepted
    snprintf(body, sizeof body, "{" M MSG ",\"x\":[[[[[[]]]]]]}");
    cg_oai_req r;
    cg_oai_error e;
    assert_int_equal(cg_oai_parse(CG_OAI_CHAT, body, strlen(body), &lim, &r, &e), CG_OK);
    cg_oai_req_free(&r);
    snprintf(body, sizeof body, "{" M MSG ",\"x\":[[[[[[[[]]]]]]]]}");
    assert_int_equal(cg_oai_parse(CG_OAI_CHAT, body, strlen(body), &lim, &r, &e), CG_ERR_INVALID);
    assert_string_equal(e.code, "json_too_deep");
    // brackets inside strings do not count
    snprintf(body, sizeof body, "{" M MSG ",\"x\":\"[[[[[[[[[[[[\\\"[[[[\"}");
    assert_int_equal(cg_oai_parse(CG_OAI_CHAT, body, strlen(body), &lim, &r, &e), CG_OK);
    cg_oai_req_free(&r);
}

// The four input forms of /v1/embeddings: string, strings, token ids, token-id arrays.
static void test_embedding_input_forms(void **state) {
    (void)state;
    cg_oai_limits lim = cg_oai_limits_default();
    cg_oai_req q;
    cg_oai_error e;
    const char *b1 = "{\"model\":\"m\",\"input\":[5,6,7],\"encoding_format\":\"base64\"}";
    assert_int_equal(cg_oai_parse(CG_OAI_EMBEDDINGS, b1, strlen(b1), &lim, &q, &e), CG_OK);
    assert_int_equal(q.n_inputs, 1);
    assert_null(q.inputs[0].text);
    assert_int_equal(q.inputs[0].n_tokens, 3);
    assert_int_equal(q.inputs[0].tokens[2], 7);
    assert_true(q.base64);
    cg_oai_req_free(&q);
    const char *b2 = "{\"model\":\"m\",\"input\":[[1,2],[3]],\"dimensions\":8}";
    assert_int_equal(cg_oai_parse(CG_OAI_EMBEDDINGS, b2, strlen(b2), &lim, &q, &e), CG_OK);
    assert_int_equal(q.n_inputs, 2);
    assert_int_equal(q.inputs[1].n_tokens, 1);
    assert_int_equal(q.inputs[1].tokens[0], 3);
    assert_int_equal(q.dimensions, 8);
    cg_oai_req_free(&q);
    const char *b3 = "{\"model\":\"m\",\"input\":[\"a\",\"b c\"]}";
    assert_int_equal(cg_oai_parse(CG_OAI_EMBEDDINGS, b3, strlen(b3), &lim, &q, &e), CG_OK);
    assert_int_equal(q.n_inputs, 2);
    assert_string_equal(q.inputs[1].text, "b c");
    cg_oai_req_free(&q);
}

static void test_good_chat_request(void **state) {
    (void)state;
    const char *body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"안녕\"},{\"type\":\"text\",\"text\":\"b\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"}],"
        "\"temperature\":0.5,\"top_p\":0.9,\"n\":3,\"seed\":-7,\"stop\":\"END\",\"max_completion_tokens\":77,"
        "\"logprobs\":true,\"top_logprobs\":4,\"logit_bias\":{\"15\":-100,\"3\":2.5},"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"schema\":{\"type\":\"object\"}}},"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},\"parallel_tool_calls\":false,"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"user\":\"u1\",\"unknown_field\":{\"a\":1}}";
    cg_oai_limits lim = cg_oai_limits_default();
    cg_oai_req r;
    cg_oai_error e;
    assert_int_equal(cg_oai_parse(CG_OAI_CHAT, body, strlen(body), &lim, &r, &e), CG_OK);
    const cg_srv_request *q = &r.req;
    assert_string_equal(r.model, "m");
    assert_true(r.stream && r.include_usage);
    assert_int_equal(q->n_messages, 4);
    assert_int_equal(q->messages[1].role, CG_SRV_ROLE_USER);
    assert_string_equal(q->messages[1].content, "안녕\nb");
    assert_string_equal(q->messages[2].content, "");
    assert_non_null(strstr(q->messages[2].tool_calls_json, "\"id\":\"c1\""));
    assert_string_equal(q->messages[3].tool_call_id, "c1");
    assert_true(q->temperature == 0.5 && q->top_p == 0.9);
    assert_int_equal(q->n, 3);
    assert_true(q->has_seed);
    assert_int_equal((int64_t)q->seed, -7);
    assert_int_equal(q->n_stop, 1);
    assert_string_equal(q->stop[0], "END");
    assert_int_equal(q->max_tokens, 77);
    assert_true(q->logprobs);
    assert_int_equal(q->top_logprobs, 4);
    assert_int_equal(q->n_logit_bias, 2);
    assert_int_equal(q->format, CG_SRV_FORMAT_JSON_SCHEMA);
    assert_string_equal(q->schema_json, "{\"type\":\"object\"}");
    assert_int_equal(q->n_tools, 1);
    assert_string_equal(q->tools[0].parameters_json, "{}");
    assert_int_equal(q->tool_choice, CG_SRV_TOOL_CHOICE_NAMED);
    assert_false(q->parallel_tool_calls);
    assert_string_equal(q->user, "u1");
    cg_oai_req_free(&r);
    // completions default max_tokens is 16; token-id prompts
    const char *c = "{\"model\":\"m\",\"prompt\":[[1,2],\"x\"],\"n\":2,\"echo\":true,\"logprobs\":0}";
    assert_int_equal(cg_oai_parse(CG_OAI_COMPLETIONS, c, strlen(c), &lim, &r, &e), CG_OK);
    assert_int_equal(r.req.max_tokens, 16);
    assert_int_equal(r.req.n_prompts, 2);
    assert_int_equal(r.req.prompts[0].n_tokens, 2);
    assert_int_equal(r.req.prompts[0].tokens[1], 2);
    assert_string_equal(r.req.prompts[1].text, "x");
    assert_true(r.req.echo && r.req.logprobs);
    cg_oai_req_free(&r);
    // max_tokens: absent / null → the endpoint's default (chat: -1 = up to the context; legacy: 16);
    // -1 → no limit on both (llama-server's reading); other values below 1 → 400 naming the field
    static const struct { cg_oai_endpoint ep; const char *body; int64_t want; const char *param; } MT[] = {
        {CG_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", -1, NULL},
        {CG_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":null}", -1, NULL},
        {CG_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-1}", -1, NULL},
        {CG_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":5}", 5, NULL},
        {CG_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-2}", 0, "max_tokens"},
        {CG_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":0}", 0,
         "max_completion_tokens"},
        {CG_OAI_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}", 0, "max_tokens"},
        {CG_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":null}", 16, NULL},
        {CG_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":-1}", -1, NULL},
        {CG_OAI_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":-7}", 0, "max_tokens"},
    };
    for (size_t i = 0; i < sizeof MT / sizeof *MT; i++) {
        cg_status st = cg_oai_parse(MT[i].ep, MT[i].body, strlen(MT[i].body), &lim, &r, &e);
        if (MT[i].param) {
            assert_int_equal(st, CG_ERR_INVALID);
            assert_int_equal(e.http_status, 400);
            assert_string_equal(e.param, MT[i].param);
            assert_non_null(strstr(e.message, MT[i].param));
        } else {
            if (st) fail_msg("%s: %s", MT[i].body, e.message);
            assert_int_equal(r.req.max_tokens, MT[i].want);
            cg_oai_req_free(&r);
        }
    }
}

// ---- escaping and shapes ----------------------------------------------------------------------

static char *esc(const char *s, size_t n) {
    cg_buf b;
    cg_buf_init(&b);
    cg_json_str(&b, s, n);
    return b.data;
}

static void test_json_escaper(void **state) {
    (void)state;
    struct { const char *in; size_t n; const char *want; } cases[] = {
        {"plain", 5, "\"plain\""},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\""},
        {"a\0b", 3, "\"a\\u0000b\""},
        {"안녕 친구", strlen("안녕 친구"), "\"안녕 친구\""},
        {"🙂", 4, "\"🙂\""},
        {"x\xe2\x80\xa8y", 5, "\"x\\u2028y\""},
        {"\xff", 1, "\"\xEF\xBF\xBD\""},
        {"a\xc3", 2, "\"a\xEF\xBF\xBD\""},                  // truncated sequence
        {"\xc0\xaf", 2, "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},   // overlong '/'
        {"\xed\xa0\x80", 3, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},   // surrogate
        {"</script>", 9, "\"</script>\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = esc(cases[i].in, cases[i].n);
        if (strcmp(got, cases[i].want)) fail_msg("case %zu: got %s want %s", i, got, cases[i].want);
        // an independent parser reads it back; valid input round-trips
        json_error_t je;
        json_t *v = json_loads(got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!v) fail_msg("case %zu: jansson rejects %s: %s", i, got, je.text);
        if (i < 8) {
            assert_int_equal(json_string_length(v), cases[i].n);
            assert_memory_equal(json_string_value(v), cases[i].in, cases[i].n);
        }
        json_decref(v);
        free(got);
    }
    cg_buf b;
    cg_buf_init(&b);
    cg_sse_data(&b, "{}", 2);
    assert_string_equal(b.data, "data: {}\n\n");
    cg_buf_reset(&b);
    cg_json_float(&b, -1.0 / 0.0);
    assert_string_equal(b.data, "-9999");
    cg_buf_free(&b);
}

static void test_error_shape(void **state) {
    (void)state;
    cg_oai_error e;
    cg_oai_error_set(&e, 400, "invalid_request_error", "invalid_type", "messages[0].role", "bad \"%s\"", "role");
    cg_buf b;
    cg_buf_init(&b);
    cg_oai_error_json(&b, &e);
    assert_string_equal(b.data, "{\"error\":{\"message\":\"bad \\\"role\\\"\",\"type\":\"invalid_request_error\","
                                "\"param\":\"messages[0].role\",\"code\":\"invalid_type\"}}");
    cg_buf_reset(&b);
    cg_oai_error_set(&e, 404, "invalid_request_error", NULL, NULL, "x");
    cg_oai_error_json(&b, &e);
    assert_string_equal(b.data, "{\"error\":{\"message\":\"x\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}");
    cg_buf_free(&b);
}

static void feed_tokens(cg_oai_acc *a, cg_buf *sse) {
    cg_srv_logprob top[2] = {{"Hi", 2, -0.25f}, {"Yo", 2, -1.5f}};
    cg_srv_event ev = {.kind = CG_SRV_EV_TOKEN, .i_choice = 0, .text = "Hi", .n_text = 2, .has_logprob = true,
                       .tok = {"Hi", 2, -0.25f}, .top = top, .n_top = 2};
    cg_oai_acc_event(a, &ev, sse);
    ev = (cg_srv_event){.kind = CG_SRV_EV_TOKEN, .i_choice = 0, .text = " 친구", .n_text = 7, .has_logprob = true,
                        .tok = {" 친구", 7, -0.5f}};
    cg_oai_acc_event(a, &ev, sse);
    ev = (cg_srv_event){.kind = CG_SRV_EV_CHOICE_END, .i_choice = 0, .finish = CG_SRV_FINISH_LENGTH};
    cg_oai_acc_event(a, &ev, sse);
    ev = (cg_srv_event){.kind = CG_SRV_EV_DONE, .usage = {10, 2, 4}};
    cg_oai_acc_event(a, &ev, sse);
}

static void test_chat_response_shapes(void **state) {
    (void)state;
    cg_err err = {0};
    cg_oai_acc *a;
    cg_oai_acc_params p = {.endpoint = CG_OAI_CHAT, .id = "chatcmpl-1", .model = "m", .created = 5, .n_choices = 1,
                           .logprobs = true};
    CG_ASSERT_OK(cg_oai_acc_new(&p, &a, &err), &err);
    cg_buf sse, body;
    cg_buf_init(&sse);
    cg_buf_init(&body);
    feed_tokens(a, &sse);
    assert_int_equal(sse.len, 0);   // not streaming
    cg_oai_acc_body(a, &body);
    json_error_t je;
    json_t *v = json_loads(body.data, 0, &je);
    if (!v) fail_msg("body is not JSON: %s", je.text);
    json_t *c0 = json_array_get(json_object_get(v, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(v, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c0, "message"), "content")), "Hi 친구");
    assert_string_equal(json_string_value(json_object_get(c0, "finish_reason")), "length");
    json_t *lp = json_object_get(json_object_get(c0, "logprobs"), "content");
    assert_int_equal(json_array_size(lp), 2);
    json_t *t1 = json_array_get(lp, 1);
    assert_int_equal(json_array_size(json_object_get(t1, "bytes")), 7);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(t1, "bytes"), 1)), 0xEC);   // 친 = EC B9 9C
    assert_true(json_real_value(json_object_get(t1, "logprob")) == -0.5);
    assert_int_equal(json_array_size(json_object_get(json_array_get(lp, 0), "top_logprobs")), 2);
    json_t *u = json_object_get(v, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 12);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens")), 4);
    json_decref(v);
    cg_oai_acc_free(a);

    // Streamed: role chunk, 2 content chunks, finish chunk, usage chunk, [DONE]; every frame is JSON.
    p.stream = p.include_usage = true;
    CG_ASSERT_OK(cg_oai_acc_new(&p, &a, &err), &err);
    feed_tokens(a, &sse);
    size_t n_frames = 0;
    char *save = NULL;
    char *copy = strdup(sse.data);
    bool saw_done = false;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        assert_true(!strncmp(line, "data: ", 6));
        n_frames++;
        if (!strcmp(line + 6, "[DONE]")) { saw_done = true; continue; }
        assert_false(saw_done);
        json_t *f = json_loads(line + 6, 0, &je);
        if (!f) fail_msg("frame %zu is not JSON: %s", n_frames, line);
        assert_string_equal(json_string_value(json_object_get(f, "object")), "chat.completion.chunk");
        json_t *ch = json_object_get(f, "choices");
        if (n_frames == 1) assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(ch, 0), "delta"), "role")), "assistant");
        if (n_frames == 5) {
            assert_int_equal(json_array_size(ch), 0);
            assert_int_equal(json_integer_value(json_object_get(json_object_get(f, "usage"), "completion_tokens")), 2);
        } else {
            assert_true(json_is_null(json_object_get(f, "usage")));
        }
        json_decref(f);
    }
    assert_int_equal(n_frames, 6);
    assert_true(saw_done);
    free(copy);
    cg_oai_acc_free(a);
    cg_buf_free(&sse);
    cg_buf_free(&body);
}

// ---- auth ---------------------------------------------------------------------------------------

static void test_auth(void **state) {
    (void)state;
    cg_err err = {0};
    cg_srv_auth *a = NULL;
    const char *keys = "# comment\n\n  sk-first-key-001  \r\nsk-second-key-002\n";
    CG_ASSERT_OK(cg_srv_auth_parse(keys, strlen(keys), &a, &err), &err);
    assert_int_equal(cg_srv_auth_count(a), 2);
    assert_true(cg_srv_auth_check(a, "Bearer sk-first-key-001"));
    assert_true(cg_srv_auth_check(a, "Bearer sk-second-key-002"));
    assert_false(cg_srv_auth_check(a, "Bearer sk-first-key-00"));
    assert_false(cg_srv_auth_check(a, "Bearer sk-first-key-0011"));
    assert_false(cg_srv_auth_check(a, "sk-first-key-001"));
    assert_false(cg_srv_auth_check(a, "Basic sk-first-key-001"));
    assert_false(cg_srv_auth_check(a, "Bearer "));
    assert_false(cg_srv_auth_check(a, NULL));
    assert_false(cg_srv_auth_check(a, "Bearer # comment"));
    cg_srv_auth_free(a);
    assert_int_equal(cg_srv_auth_parse("# only\n\n", 8, &a, &err), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "no API key"));
    assert_int_equal(cg_srv_auth_parse("sk-good-key-1\nshort\n", 20, &a, &err), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_int_equal(cg_srv_auth_parse("sk-with space\n", 14, &a, &err), CG_ERR_FORMAT);
    assert_int_equal(cg_srv_auth_load("/nonexistent/keys", &a, &err), CG_ERR_IO);
}

// ---- metrics ----------------------------------------------------------------------------------

static void test_metrics_text(void **state) {
    (void)state;
    cg_err err = {0};
    cg_srv_metrics *m;
    CG_ASSERT_OK(cg_srv_metrics_new(&m, &err), &err);
    cg_srv_metrics_request(m, 200);
    cg_srv_metrics_request(m, 200);
    cg_srv_metrics_request(m, 503);
    cg_srv_metrics_tokens(m, 30, 12);
    cg_srv_metrics_ttft(m, 0.004);   // ≤ 0.005
    cg_srv_metrics_ttft(m, 0.2);     // ≤ 0.25
    cg_srv_metrics_ttft(m, 100);     // +Inf only
    cg_srv_metrics_itl(m, 0.002);
    cg_srv_gauges g = {.kv_blocks_used = 3, .kv_blocks_free = 61, .queue_depth = 2, .running = 1,
                       .prefix_hit_tokens = 1, .prefix_lookup_tokens = 4, .cancelled_total = 9};
    cg_buf b;
    cg_buf_init(&b);
    cg_srv_metrics_render(m, &g, &b);
    const char *want[] = {
        "chingu_requests_total{code=\"200\"} 2\n", "chingu_requests_total{code=\"503\"} 1\n",
        "chingu_prompt_tokens_total 30\n", "chingu_generated_tokens_total 12\n",
        "chingu_time_to_first_token_seconds_bucket{le=\"0.005\"} 1\n",
        "chingu_time_to_first_token_seconds_bucket{le=\"0.1\"} 1\n",
        "chingu_time_to_first_token_seconds_bucket{le=\"0.25\"} 2\n",
        "chingu_time_to_first_token_seconds_bucket{le=\"30\"} 2\n",
        "chingu_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3\n",
        "chingu_time_to_first_token_seconds_sum 100.204\n", "chingu_time_to_first_token_seconds_count 3\n",
        "chingu_inter_token_latency_seconds_bucket{le=\"0.001\"} 0\n",
        "chingu_inter_token_latency_seconds_bucket{le=\"0.0025\"} 1\n",
        "# TYPE chingu_inter_token_latency_seconds histogram\n",
        "chingu_kv_blocks_used 3\n", "chingu_kv_blocks_free 61\n", "chingu_queue_depth 2\n",
        "chingu_requests_running 1\n", "chingu_prefix_cache_hit_ratio 0.250000\n",
        "chingu_requests_cancelled_total 9\n", "chingu_model_loading 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(b.data, want[i])) fail_msg("metrics lack %s\n---\n%s", want[i], b.data);
    // every non-comment line is "name{labels} value" or "name value"
    for (char *l = b.data; *l;) {
        char *e = strchr(l, '\n');
        assert_non_null(e);
        if (*l != '#') assert_non_null(memchr(l, ' ', (size_t)(e - l)));
        l = e + 1;
    }
    cg_buf_free(&b);
    cg_srv_metrics_free(m);
}

// ---- the fake backend -------------------------------------------------------------------------

typedef struct sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    cg_srv_event_kind last;
    cg_srv_finish finish[4];
    char text[4][512];
    uint64_t completion_tokens, prompt_tokens;
    int n_tool;
} sink;

static void on_ev(void *user, const cg_srv_event *ev) {
    sink *s = user;
    pthread_mutex_lock(&s->mu);
    if (ev->kind == CG_SRV_EV_TOKEN && ev->i_choice < 4) strncat(s->text[ev->i_choice], ev->text, ev->n_text);
    if (ev->kind == CG_SRV_EV_TOOL_CALL) s->n_tool++;
    if (ev->kind == CG_SRV_EV_CHOICE_END && ev->i_choice < 4) s->finish[ev->i_choice] = ev->finish;
    if (ev->kind == CG_SRV_EV_DONE) s->completion_tokens = ev->usage.completion_tokens, s->prompt_tokens = ev->usage.prompt_tokens;
    if (ev->kind == CG_SRV_EV_DONE || ev->kind == CG_SRV_EV_ERROR) {
        s->done = true;
        s->last = ev->kind;
        s->finish[3] = ev->finish;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void sink_wait(sink *s) {
    pthread_mutex_lock(&s->mu);
    while (!s->done) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void run_fake(cg_srv_backend *be, const cg_srv_request *q, sink *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    uint64_t id;
    cg_err err = {0};
    CG_ASSERT_OK(be->submit(be->state, q, on_ev, s, &id, &err), &err);
    sink_wait(s);
}

static void test_fake_backend(void **state) {
    (void)state;
    cg_err err = {0};
    cg_srv_backend be;
    CG_ASSERT_OK(cg_srv_fake_new("latency_ms=0,slots=1,queue=1", 64, 1, &be, &err), &err);
    cg_srv_message msg = {.role = CG_SRV_ROLE_USER, .content = "fake:long please"};
    cg_srv_request q = {.kind = CG_SRV_KIND_CHAT, .messages = &msg, .n_messages = 1, .n = 2, .max_tokens = 7,
                        .has_seed = true, .seed = 1};
    sink s;
    run_fake(&be, &q, &s);
    assert_int_equal(s.last, CG_SRV_EV_DONE);
    assert_int_equal(s.completion_tokens, 14);   // 2 choices × max_tokens
    assert_int_equal(s.prompt_tokens, 5);        // 2 words + 3 per message
    assert_int_equal(s.finish[0], CG_SRV_FINISH_LENGTH);
    assert_string_not_equal(s.text[0], s.text[1]);
    char first[512];
    snprintf(first, sizeof first, "%s", s.text[0]);
    // Stop string: take the 2nd word of choice 0 and cut there.
    const char *sp = strchr(first, ' ');
    assert_non_null(sp);
    char stop[8] = {0};
    memcpy(stop, sp, 3);
    const char *stops[] = {stop};
    q.stop = stops;
    q.n_stop = 1;
    q.n = 1;
    run_fake(&be, &q, &s);
    assert_int_equal(s.finish[0], CG_SRV_FINISH_STOP);
    assert_int_equal(strlen(s.text[0]), (size_t)(strstr(first, stop) - first));
    assert_memory_equal(s.text[0], first, strlen(s.text[0]));
    // Context: 5 prompt tokens + 60 > 64
    q.n_stop = 0;
    q.max_tokens = 60;
    uint64_t id;
    assert_int_equal(be.submit(be.state, &q, on_ev, &s, &id, &err), CG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "context length"));
    // Tools → one streamed call with valid JSON arguments
    cg_srv_tool tool = {.name = "f", .parameters_json = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\",\"minimum\":3}}}"};
    q.max_tokens = 20;
    q.tools = &tool;
    q.n_tools = 1;
    run_fake(&be, &q, &s);
    assert_int_equal(s.finish[0], CG_SRV_FINISH_TOOL_CALLS);
    assert_true(s.n_tool >= 1);
    q.n_tools = 0;
    // Queue: one slot, one waiting place: the third concurrent request is refused; cancel works.
    cg_srv_backend slow;
    CG_ASSERT_OK(cg_srv_fake_new("latency_ms=5,slots=1,queue=1", 4096, 1, &slow, &err), &err);
    q.max_tokens = 1000;
    sink a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&a.mu, NULL), pthread_cond_init(&a.cv, NULL);
    pthread_mutex_init(&b.mu, NULL), pthread_cond_init(&b.cv, NULL);
    uint64_t ida, idb;
    CG_ASSERT_OK(slow.submit(slow.state, &q, on_ev, &a, &ida, &err), &err);
    usleep(20000);   // a is admitted
    CG_ASSERT_OK(slow.submit(slow.state, &q, on_ev, &b, &idb, &err), &err);
    assert_int_equal(slow.submit(slow.state, &q, on_ev, &s, &id, &err), CG_ERR_STATE);
    slow.cancel(slow.state, ida);
    slow.cancel(slow.state, idb);
    sink_wait(&a);
    sink_wait(&b);
    assert_int_equal(a.last, CG_SRV_EV_ERROR);
    assert_int_equal(a.finish[3], CG_SRV_FINISH_CANCELLED);
    assert_int_equal(b.finish[3], CG_SRV_FINISH_CANCELLED);
    cg_srv_gauges g;
    slow.gauges(slow.state, &g);
    assert_int_equal(g.cancelled_total, 2);
    slow.cancel(slow.state, ida);   // finished ids are ignored
    // Timeout
    q.timeout_ms = 30;
    run_fake(&slow, &q, &s);
    assert_int_equal(s.last, CG_SRV_EV_ERROR);
    assert_int_equal(s.finish[3], CG_SRV_FINISH_TIMEOUT);
    slow.free(slow.state);
    be.free(be.state);
    assert_int_equal(cg_srv_fake_new("bogus=1", 64, 1, &be, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "bogus"));
    assert_int_equal(cg_srv_fake_new("slots=x", 64, 1, &be, &err), CG_ERR_INVALID);
}

// ---- HTTP in-process --------------------------------------------------------------------------

typedef struct resp { long status; cg_buf body; } resp;

static size_t on_body(char *p, size_t sz, size_t n, void *user) {
    cg_buf_append(&((resp *)user)->body, p, sz * n);
    return sz * n;
}

static void http(uint16_t port, const char *method, const char *path, const char *body, const char *auth, resp *r) {
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth) h = curl_slist_append(h, auth);
    cg_buf_init(&r->body);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    cg_buf_putc(&r->body, 0);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void test_http_server(void **state) {
    (void)state;
    cg_err err = {0};
    cg_srv_backend be;
    CG_ASSERT_OK(cg_srv_fake_new("latency_ms=1", 2048, 2, &be, &err), &err);
    cg_srv_auth *auth;
    CG_ASSERT_OK(cg_srv_auth_parse("sk-unit-test-key\n", 17, &auth, &err), &err);
    cg_srv_config cfg = {.port = 0, .limits = cg_oai_limits_default(), .auth = auth, .max_body = 4096, .n_threads = 2};
    cg_server *srv;
    CG_ASSERT_OK(cg_server_start(&cfg, &be, &srv, &err), &err);
    uint16_t port = cg_server_port(srv);
    assert_true(port > 0);
    const char *key = "Authorization: Bearer sk-unit-test-key";
    resp r;
    http(port, "GET", "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    cg_buf_free(&r.body);
    http(port, "GET", "/v1/models", NULL, NULL, &r);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.body.data, "\"code\":\"invalid_api_key\""));
    cg_buf_free(&r.body);
    http(port, "POST", "/v1/chat/completions",
         "{\"model\":\"fake\",\"messages\":[{\"role\":\"user\",\"content\":\"fake:long\"}],\"max_tokens\":5,\"n\":2}", key, &r);
    assert_int_equal(r.status, 200);
    json_t *v = json_loads(r.body.data, 0, NULL);
    assert_non_null(v);
    assert_int_equal(json_array_size(json_object_get(v, "choices")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "usage"), "completion_tokens")), 10);
    json_decref(v);
    cg_buf_free(&r.body);
    http(port, "POST", "/v1/chat/completions",
         "{\"model\":\"fake\",\"messages\":[{\"role\":\"user\",\"content\":\"fake:long\"}],\"max_tokens\":4,\"stream\":true}", key, &r);
    assert_int_equal(r.status, 200);
    size_t n_data = 0;
    for (const char *p = r.body.data; (p = strstr(p, "data: ")); p += 6) n_data++;
    assert_int_equal(n_data, 1 + 4 + 1 + 1);   // role, 4 tokens, finish, [DONE]
    assert_non_null(strstr(r.body.data, "data: [DONE]\n\n"));
    cg_buf_free(&r.body);
    http(port, "POST", "/v1/chat/completions", "{\"model\":\"fake\",\"messages\":[]}", key, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "\"param\":\"messages\""));
    cg_buf_free(&r.body);
    char big[6000];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = 0;
    big[0] = '{', big[sizeof big - 2] = '}';
    http(port, "POST", "/v1/chat/completions", big, key, &r);
    assert_int_equal(r.status, 413);
    cg_buf_free(&r.body);
    http(port, "PUT", "/v1/models", NULL, key, &r);
    assert_int_equal(r.status, 405);
    cg_buf_free(&r.body);
    http(port, "GET", "/v2/none", NULL, key, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body.data, "\"error\":{\"message\":"));
    cg_buf_free(&r.body);
    http(port, "GET", "/metrics", NULL, key, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "chingu_requests_total{code=\"200\"} "));
    assert_non_null(strstr(r.body.data, "chingu_requests_total{code=\"413\"} 1\n"));
    cg_buf_free(&r.body);
    cg_server_stop(srv);
    be.free(be.state);
    cg_srv_auth_free(auth);
}

typedef struct bg_req { uint16_t port; resp r; } bg_req;

// A non-streaming client that gives up while its request is parked is noticed by the watchdog.
static void test_http_client_gone_is_cancelled(void **state) {
    (void)state;
    cg_err err = {0};
    cg_srv_backend be;
    CG_ASSERT_OK(cg_srv_fake_new("latency_ms=20", 2048, 2, &be, &err), &err);
    cg_srv_config cfg = {.limits = cg_oai_limits_default()};
    cg_server *srv;
    CG_ASSERT_OK(cg_server_start(&cfg, &be, &srv, &err), &err);
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/v1/chat/completions", cg_server_port(srv));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                     "{\"model\":\"fake\",\"messages\":[{\"role\":\"user\",\"content\":\"fake:long\"}],\"max_tokens\":1000}");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 300L);
    assert_int_equal(curl_easy_perform(c), CURLE_OPERATION_TIMEDOUT);
    curl_easy_cleanup(c);
    cg_srv_gauges g = {0};
    uint64_t t0 = cg_time_ns();
    for (int i = 0; i < 100 && g.cancelled_total == 0; i++) {
        usleep(20000);
        be.gauges(be.state, &g);
    }
    print_message("client gone → cancelled after %.0f ms\n", (double)(cg_time_ns() - t0) * 1e-6);
    assert_int_equal(g.cancelled_total, 1);
    cg_server_stop(srv);
    be.free(be.state);
}

static void *bg_stream(void *arg) {
    bg_req *b = arg;
    http(b->port, "POST", "/v1/chat/completions",
         "{\"model\":\"fake\",\"messages\":[{\"role\":\"user\",\"content\":\"fake:long\"}],\"max_tokens\":1000,\"stream\":true}",
         NULL, &b->r);
    return NULL;
}

static void test_http_loading_and_shutdown(void **state) {
    (void)state;
    cg_err err = {0};
    cg_srv_backend be;
    CG_ASSERT_OK(cg_srv_fake_new("latency_ms=20,loading_ms=400", 2048, 2, &be, &err), &err);
    cg_srv_config cfg = {.limits = cg_oai_limits_default(), .shutdown_grace_ms = 100};
    cfg.limits.timeout_ms = 300;
    cg_server *srv;
    CG_ASSERT_OK(cg_server_start(&cfg, &be, &srv, &err), &err);
    uint16_t port = cg_server_port(srv);
    resp r;
    http(port, "GET", "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body.data, "loading"));
    cg_buf_free(&r.body);
    const char *chat = "{\"model\":\"fake\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}";
    http(port, "POST", "/v1/chat/completions", chat, NULL, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body.data, "loading"));
    cg_buf_free(&r.body);
    usleep(450000);
    http(port, "GET", "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    cg_buf_free(&r.body);
    http(port, "POST", "/v1/embeddings", "{\"model\":\"fake\",\"input\":\"a\",\"dimensions\":32}", NULL, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "\"param\":\"dimensions\""));
    cg_buf_free(&r.body);
    // A request past the per-request timeout ends with 504 in OpenAI's shape.
    uint64_t t_req = cg_time_ns();
    http(port, "POST", "/v1/chat/completions",
         "{\"model\":\"fake\",\"messages\":[{\"role\":\"user\",\"content\":\"fake:long\"}],\"max_tokens\":1000}", NULL, &r);
    assert_int_equal(r.status, 504);
    assert_non_null(strstr(r.body.data, "\"code\":\"timeout\""));
    assert_true((double)(cg_time_ns() - t_req) * 1e-9 < 2.0);
    cg_buf_free(&r.body);
    // Stop while a long generation is in flight: it is cancelled after the grace period and
    // stop() returns (bounded) instead of hanging on the suspended connection.
    bg_req bg = {.port = port};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bg_stream, &bg), 0);
    usleep(200000);
    uint64_t t0 = cg_time_ns();
    cg_server_stop(srv);
    double secs = (double)(cg_time_ns() - t0) * 1e-9;
    pthread_join(t, NULL);
    print_message("stop with one stream in flight took %.3f s\n", secs);
    assert_true(secs < 3.0);
    assert_int_equal(bg.r.status, 200);
    assert_non_null(strstr(bg.r.body.data, "data: {\"id\""));            // it was streaming
    // ...and was told why it ended: cancelled by the stop, or — on a loaded machine where the 200 ms
    // sleep stretches past the 300 ms request timeout — timed out first. Either is a proper ending.
    assert_true(strstr(bg.r.body.data, "\"code\":\"cancelled\"") || strstr(bg.r.body.data, "\"code\":\"timeout\""));
    assert_null(strstr(bg.r.body.data, "[DONE]"));
    cg_buf_free(&bg.r.body);
    be.free(be.state);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_requests_name_the_field),
        cmocka_unit_test(test_mutated_bodies_never_crash),
        cmocka_unit_test(test_depth_cap),
        cmocka_unit_test(test_good_chat_request),
        cmocka_unit_test(test_embedding_input_forms),
        cmocka_unit_test(test_json_escaper),
        cmocka_unit_test(test_error_shape),
        cmocka_unit_test(test_chat_response_shapes),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_fake_backend),
        cmocka_unit_test(test_http_server),
        cmocka_unit_test(test_http_loading_and_shutdown),
        cmocka_unit_test(test_http_client_gone_is_cancelled),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
