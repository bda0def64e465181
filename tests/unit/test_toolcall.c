// test_toolcall.c — tool-call parsers: golden results per format, streamed split at every byte
// boundary (and byte by byte) giving the one-shot result; tool-call grammars.
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/grammar.h"
#include "sample/toolcall.h"

typedef struct golden {
    cg_toolcall_format fmt;
    const char *text;
    const char *content;        // expected content
    size_t n_calls;
    const char *calls[3][3];    // name, arguments, id (NULL: none)
} golden;

static const golden GOLDEN[] = {
    {CG_TOOLCALL_HERMES,
     "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Seoul\", \"unit\": "
     "\"celsius\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>\n",
     "Let me check.\n", 2,
     {{"get_weather", "{\"location\":\"Seoul\",\"unit\":\"celsius\"}", NULL}, {"get_time", "{}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{oops}</tool_call> done", "<tool_call>{oops}</tool_call> done", 0, {{0}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\":\"a\",\"arguments\":\"{\\\"k\\\": [1]}\"}", "", 1, {{"a", "{\"k\":[1]}", NULL}}},
    {CG_TOOLCALL_HERMES, "a <tool use> b <tool_cal", "a <tool use> b <tool_cal", 0, {{0}}},
    {CG_TOOLCALL_HERMES, "서울 날씨: <tool_call>{\"name\": \"w\", \"arguments\": {\"q\": \"서울\"}}</tool_call>그래요",
     "서울 날씨: 그래요", 1, {{"w", "{\"q\":\"서울\"}", NULL}}},
    {CG_TOOLCALL_LLAMA3, "  {\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\"}}", "", 1,
     {{"get_weather", "{\"location\":\"Paris\"}", NULL}}},
    {CG_TOOLCALL_LLAMA3, "<|python_tag|>brave_search.call(query=\"서울 날씨\", n=3, safe=True)", "", 1,
     {{"brave_search", "{\"query\":\"서울 날씨\",\"n\":3,\"safe\":true}", NULL}}},
    {CG_TOOLCALL_LLAMA3, "Running it.<|python_tag|>print(1+1)", "Running it.", 1,
     {{"python", "{\"code\":\"print(1+1)\"}", NULL}}},
    {CG_TOOLCALL_LLAMA3, "{\"answer\": 42}", "{\"answer\": 42}", 0, {{0}}},
    {CG_TOOLCALL_LLAMA3, "Hello {world} <|python", "Hello {world} <|python", 0, {{0}}},
    {CG_TOOLCALL_MISTRAL,
     "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Busan\"}, \"id\": \"abc123xyz\"}]", "", 1,
     {{"get_weather", "{\"city\":\"Busan\"}", "abc123xyz"}}},
    {CG_TOOLCALL_MISTRAL, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Busan\"}[TOOL_CALLS]get_time[ARGS]{}", "", 2,
     {{"get_weather", "{\"city\":\"Busan\"}", NULL}, {"get_time", "{}", NULL}}},
    {CG_TOOLCALL_MISTRAL, "Sure. [TOOL_CALLS] not json", "Sure. [TOOL_CALLS] not json", 0, {{0}}},
    {CG_TOOLCALL_MISTRAL, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": [1, 2", "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": [1, 2", 0, {{0}}},
    {CG_TOOLCALL_GENERIC, "{\"tool_call\": {\"name\": \"f\", \"arguments\": {\"x\": 1}}}", "", 1, {{"f", "{\"x\":1}", NULL}}},
    {CG_TOOLCALL_GENERIC,
     "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": {\"y\": null}}]}", "", 2,
     {{"f", "{}", NULL}, {"g", "{\"y\":null}", NULL}}},
    {CG_TOOLCALL_GENERIC, "{\"response\": \"안녕하세요\"}", "안녕하세요", 0, {{0}}},
    {CG_TOOLCALL_GENERIC, "plain text {\"tool_call\": 1}", "plain text {\"tool_call\": 1}", 0, {{0}}},
    // numbers are re-written as JSON numbers (shortest form); one beyond a double is not passed on
    {CG_TOOLCALL_MISTRAL, "[TOOL_CALLS]f[ARGS]{\"t\": 0.50, \"n\": -3, \"e\": 1E2}", "", 1,
     {{"f", "{\"t\":0.5,\"n\":-3,\"e\":100.0}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1e999}}</tool_call>",
     "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1e999}}</tool_call>", 0, {{0}}},
    // a value cut inside a negative number, a literal or a \\u escape waits for more, then completes
    {CG_TOOLCALL_MISTRAL, "[TOOL_CALLS]f[ARGS]{\"a\": -1, \"b\": true, \"c\": \"\\u00e9\"}", "", 1,
     {{"f", "{\"a\":-1,\"b\":true,\"c\":\"\xc3\xa9\"}", NULL}}},
};

typedef struct result { cg_buf content; size_t n_calls; char calls[4][3][256]; } result;

// Feeds text in the chunks given by cut points (sorted, within [0, n]); collects the result.
static void parse_chunks(cg_toolcall_format fmt, const char *text, const size_t *cuts, size_t n_cuts, result *r) {
    cg_err err = {0};
    cg_toolcall_parser *p;
    CG_ASSERT_OK(cg_toolcall_parser_new(fmt, &p, &err), &err);
    cg_buf_init(&r->content);
    size_t n = strlen(text), at = 0, n_new, seen = 0;
    for (size_t c = 0; c <= n_cuts; c++) {
        size_t end = c < n_cuts ? cuts[c] : n;
        CG_ASSERT_OK(cg_toolcall_parser_feed(p, text + at, end - at, &r->content, &n_new, &err), &err);
        seen += n_new;
        at = end;
    }
    CG_ASSERT_OK(cg_toolcall_parser_finish(p, &r->content, &n_new, &err), &err);
    seen += n_new;
    r->n_calls = cg_toolcall_parser_n_calls(p);
    assert_int_equal(seen, r->n_calls);
    for (size_t i = 0; i < r->n_calls && i < 4; i++) {
        const cg_toolcall *tc = cg_toolcall_parser_call(p, i);
        snprintf(r->calls[i][0], 256, "%s", tc->name);
        snprintf(r->calls[i][1], 256, "%s", tc->arguments);
        snprintf(r->calls[i][2], 256, "%s", tc->id ? tc->id : "");
    }
    cg_toolcall_parser_free(p);
}

static void check_golden(const golden *g, const result *r) {
    size_t cl = strlen(g->content);
    if (r->content.len != cl || memcmp(r->content.data ? r->content.data : "", g->content, cl) != 0)
        fail_msg("'%s': content '%.*s', want '%s'", g->text, (int)r->content.len, r->content.data, g->content);
    assert_int_equal(r->n_calls, g->n_calls);
    for (size_t i = 0; i < g->n_calls; i++) {
        assert_string_equal(r->calls[i][0], g->calls[i][0]);
        assert_string_equal(r->calls[i][1], g->calls[i][1]);
        assert_string_equal(r->calls[i][2], g->calls[i][2] ? g->calls[i][2] : "");
    }
}

static void test_golden_streamed(void **state) {
    (void)state;
    size_t n_parses = 0;
    for (size_t gi = 0; gi < sizeof GOLDEN / sizeof *GOLDEN; gi++) {
        const golden *g = &GOLDEN[gi];
        size_t n = strlen(g->text);
        result r;
        parse_chunks(g->fmt, g->text, NULL, 0, &r);   // one shot
        check_golden(g, &r);
        cg_buf_free(&r.content);
        for (size_t cut = 0; cut <= n; cut++) {        // two chunks, split at every byte
            parse_chunks(g->fmt, g->text, &cut, 1, &r);
            check_golden(g, &r);
            cg_buf_free(&r.content);
            n_parses++;
        }
        size_t *all = malloc((n + 1) * sizeof *all);   // byte by byte
        for (size_t i = 0; i < n; i++) all[i] = i + 1;
        parse_chunks(g->fmt, g->text, all, n, &r);
        check_golden(g, &r);
        cg_buf_free(&r.content);
        free(all);
        n_parses += 2;
    }
    print_message("%zu golden cases, %zu parses (one-shot, every 2-chunk split, byte by byte) all identical\n",
                  sizeof GOLDEN / sizeof *GOLDEN, n_parses);
}

static void test_streaming_holds_markup(void **state) {
    (void)state;
    cg_err err = {0};
    cg_toolcall_parser *p;
    CG_ASSERT_OK(cg_toolcall_parser_new(CG_TOOLCALL_HERMES, &p, &err), &err);
    cg_buf c;
    cg_buf_init(&c);
    size_t n_new;
    CG_ASSERT_OK(cg_toolcall_parser_feed(p, "Hi <tool_", 9, &c, &n_new, &err), &err);
    assert_int_equal(c.len, 3);   // "Hi " emitted, "<tool_" held back
    CG_ASSERT_OK(cg_toolcall_parser_feed(p, "call>{\"name\": \"f\", \"arguments\": {}}</tool_call>", 47, &c, &n_new, &err), &err);
    assert_int_equal(n_new, 1);   // the call is delivered as soon as it closes
    assert_int_equal(c.len, 3);
    assert_int_equal(cg_toolcall_parser_feed(p, "", 0, &c, &n_new, &err), CG_OK);
    CG_ASSERT_OK(cg_toolcall_parser_finish(p, &c, &n_new, &err), &err);
    assert_int_equal(cg_toolcall_parser_finish(p, &c, &n_new, &err), CG_ERR_STATE);
    cg_toolcall_parser_free(p);
    cg_buf_free(&c);
    assert_int_equal(cg_toolcall_parser_new((cg_toolcall_format)9, &p, &err), CG_ERR_INVALID);
}

static bool accepts(const cg_grammar *g, const char *s) {
    cg_err err = {0};
    cg_grammar_matcher *m;
    CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
    bool ok = cg_grammar_matcher_accept_bytes(m, s, strlen(s), &err) == CG_OK && cg_grammar_matcher_can_end(m);
    cg_grammar_matcher_free(m);
    return ok;
}

static void test_grammar_forcing(void **state) {
    (void)state;
    cg_err err = {0};
    const char *weather = "{\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\"},\"unit\":{\"enum\":[\"c\",\"f\"]}},"
                          "\"required\":[\"location\"]}";
    cg_tool_def tools[2] = {{"get_weather", weather, strlen(weather)}, {"get_time", NULL, 0}};
    struct { cg_toolcall_format fmt; const char *only; bool parallel; const char *good; const char *bad; } cases[] = {
        {CG_TOOLCALL_HERMES, NULL, true,
         "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Seoul\", \"unit\": \"c\"}}\n</tool_call>\n"
         "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
         "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"c\"}}\n</tool_call>"},
        {CG_TOOLCALL_LLAMA3, "get_time", false, "{\"name\": \"get_time\", \"parameters\": {\"tz\": \"KST\"}}",
         "{\"name\": \"get_weather\", \"parameters\": {\"location\": \"x\"}}"},
        {CG_TOOLCALL_MISTRAL, "get_weather", true,
         "[{\"name\": \"get_weather\", \"arguments\": {\"location\": \"a\"}}, {\"name\": \"get_weather\", \"arguments\": {\"location\": \"b\"}}]",
         "[]"},
        {CG_TOOLCALL_GENERIC, NULL, false, "{\"tool_call\": {\"name\": \"get_weather\", \"arguments\": {\"location\": \"a\"}}}",
         "{\"response\": \"hi\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cg_buf b;
        cg_buf_init(&b);
        CG_ASSERT_OK(cg_toolcall_grammar(cases[i].fmt, tools, 2, cases[i].only, cases[i].parallel, &b, &err), &err);
        cg_grammar *g;
        cg_status st = cg_grammar_parse(b.data, b.len, NULL, &g, &err);
        if (st) fail_msg("%s\n%s", err.msg, b.data);
        if (!accepts(g, cases[i].good)) fail_msg("case %zu rejects %s", i, cases[i].good);
        if (accepts(g, cases[i].bad)) fail_msg("case %zu accepts %s", i, cases[i].bad);
        cg_grammar_free(g);
        cg_buf_free(&b);
    }
    cg_buf b;
    cg_buf_init(&b);
    assert_int_equal(cg_toolcall_grammar(CG_TOOLCALL_HERMES, tools, 2, "nope", false, &b, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "'nope'"));
    cg_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_streamed), cmocka_unit_test(test_streaming_holds_markup),
        cmocka_unit_test(test_grammar_forcing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
