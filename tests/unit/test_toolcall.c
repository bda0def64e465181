// test_toolcall.c — tool-call parsers: golden results per format, streamed split at every byte
// boundary (and byte by byte) giving the one-shot result; tool-call grammars.
#include "testutil.h"

#include <jansson.h>
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

// ---- streamed arguments ---------------------------------------------------------------------------------
// Hand-written expectations: the arguments are the model's object with whitespace outside strings
// removed (numbers, escapes and literals as written), or closed where the output broke off.
static const golden STREAMED[] = {
    {CG_TOOLCALL_HERMES,
     "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Seoul\", \"unit\": "
     "\"celsius\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>\n",
     "Let me check.\n", 2,
     {{"get_weather", "{\"location\":\"Seoul\",\"unit\":\"celsius\"}", NULL}, {"get_time", "{}", NULL}}},
    {CG_TOOLCALL_HERMES,
     "<tool_call>{\"name\": \"f\", \"arguments\": {\"t\": 0.50, \"e\": 1E2, \"a\": [1, -2, true, null, {\"x\": "
     "\"\\u00e9\\n \\\"q\\\"\"}], \"s\": \"a\tb\"}}</tool_call>",
     "", 1, {{"f", "{\"t\":0.50,\"e\":1E2,\"a\":[1,-2,true,null,{\"x\":\"\\u00e9\\n \\\"q\\\"\"}],\"s\":\"a\\u0009b\"}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"x", "", 1, {{"f", "{\"a\":\"x\"}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\"", "", 1, {{"f", "{\"a\":1}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": [1, ", "", 1, {{"f", "{\"a\":[1]}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1.", "", 1, {{"f", "{}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": {\"b\": 2, \"c\": tr", "", 1,
     {{"f", "{\"a\":{\"b\":2}}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 12", "", 1, {{"f", "{\"a\":12}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"x\\u00", "", 1, {{"f", "{\"a\":\"x\"}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1 x}}</tool_call> after", "after", 1,
     {{"f", "{\"a\":1}", NULL}}},
    {CG_TOOLCALL_LLAMA3, "  {\"name\": \"get_weather\", \"parameters\": {\"location\": \"Paris\", \"days\": 3}}", "", 1,
     {{"get_weather", "{\"location\":\"Paris\",\"days\":3}", NULL}}},
    {CG_TOOLCALL_GENERIC, "{\"tool_call\": {\"name\": \"f\", \"arguments\": {\"x\": 1, \"y\": \"z\"}}}", "", 1,
     {{"f", "{\"x\":1,\"y\":\"z\"}", NULL}}},
    {CG_TOOLCALL_GENERIC,
     "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {}}, {\"name\": \"g\", \"arguments\": {\"y\": null}}]}", "", 2,
     {{"f", "{}", NULL}, {"g", "{\"y\":null}", NULL}}},
    {CG_TOOLCALL_GENERIC, "{\"tool_calls\": [{\"name\": \"f\", \"arguments\": {\"a\": [1", "", 1, {{"f", "{\"a\":[1]}", NULL}}},
    {CG_TOOLCALL_GENERIC, "{\"response\": \"안녕하세요\"}", "안녕하세요", 0, {{0}}},
    // not in the streamable shape: parsed whole, as without streaming
    {CG_TOOLCALL_HERMES, "<tool_call>{\"name\":\"a\",\"arguments\":\"{\\\"k\\\": [1]}\"}", "", 1, {{"a", "{\"k\":[1]}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{\"arguments\": {\"k\": 2}, \"name\": \"a\"}</tool_call>", "", 1, {{"a", "{\"k\":2}", NULL}}},
    {CG_TOOLCALL_HERMES, "<tool_call>{oops}</tool_call> done", "<tool_call>{oops}</tool_call> done", 0, {{0}}},
    {CG_TOOLCALL_LLAMA3, "{\"answer\": 42}", "{\"answer\": 42}", 0, {{0}}},
    {CG_TOOLCALL_MISTRAL, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Busan\"}", "", 1, {{"get_weather", "{\"city\":\"Busan\"}", NULL}}},
};

typedef struct sresult {
    result r;
    size_t n_growths;   // feeds after which an open call's arguments had grown
} sresult;

// Like parse_chunks, with streamed arguments; checks after every feed that the open call's arguments
// only grew by appending and that the call, once complete, starts with what was streamed.
static void parse_streamed(const golden *g, const size_t *cuts, size_t n_cuts, size_t max_calls, sresult *sr) {
    cg_err err = {0};
    cg_toolcall_parser *p;
    CG_ASSERT_OK(cg_toolcall_parser_new(g->fmt, &p, &err), &err);
    CG_ASSERT_OK(cg_toolcall_parser_stream_args(p, true, &err), &err);
    CG_ASSERT_OK(cg_toolcall_parser_set_max_calls(p, max_calls, &err), &err);
    result *r = &sr->r;
    cg_buf_init(&r->content);
    sr->n_growths = 0;
    char seen[512] = "";   // the open call's arguments as last seen
    size_t seen_call = SIZE_MAX, n = strlen(g->text), at = 0, n_new;
    for (size_t c = 0; c <= n_cuts + 1; c++) {
        if (c <= n_cuts) {
            size_t end = c < n_cuts ? cuts[c] : n;
            CG_ASSERT_OK(cg_toolcall_parser_feed(p, g->text + at, end - at, &r->content, &n_new, &err), &err);
            at = end;
        } else {
            CG_ASSERT_OK(cg_toolcall_parser_finish(p, &r->content, &n_new, &err), &err);
        }
        size_t nc = cg_toolcall_parser_n_calls(p);
        if (seen_call != SIZE_MAX && seen_call < nc) {   // the streamed call completed: it extends what was seen
            const char *a = cg_toolcall_parser_call(p, seen_call)->arguments;
            if (strncmp(a, seen, strlen(seen)) != 0) fail_msg("'%s': call %zu is '%s', streamed '%s'", g->text, seen_call, a, seen);
            seen_call = SIZE_MAX;
            seen[0] = 0;
        }
        const char *name, *args;
        size_t na;
        if (cg_toolcall_parser_open_call(p, &name, &args, &na)) {
            assert_int_equal(seen_call == SIZE_MAX ? nc : seen_call, nc);
            size_t ls = seen_call == SIZE_MAX ? 0 : strlen(seen);
            assert_true(na >= ls && na < sizeof seen);
            if (memcmp(args, seen, ls) != 0) fail_msg("'%s': open arguments '%.*s' do not extend '%s'", g->text, (int)na, args, seen);
            if (na > ls) sr->n_growths++;
            memcpy(seen, args, na);
            seen[na] = 0;
            seen_call = nc;
        }
    }
    r->n_calls = cg_toolcall_parser_n_calls(p);
    for (size_t i = 0; i < r->n_calls && i < 4; i++) {
        const cg_toolcall *tc = cg_toolcall_parser_call(p, i);
        snprintf(r->calls[i][0], 256, "%s", tc->name);
        snprintf(r->calls[i][1], 256, "%s", tc->arguments);
        snprintf(r->calls[i][2], 256, "%s", tc->id ? tc->id : "");
    }
    cg_toolcall_parser_free(p);
}

static void test_streamed_arguments(void **state) {
    (void)state;
    size_t n_parses = 0, most_growths = 0;
    for (size_t gi = 0; gi < sizeof STREAMED / sizeof *STREAMED; gi++) {
        const golden *g = &STREAMED[gi];
        size_t n = strlen(g->text);
        sresult sr;
        parse_streamed(g, NULL, 0, 0, &sr);
        check_golden(g, &sr.r);
        cg_buf_free(&sr.r.content);
        for (size_t cut = 0; cut <= n; cut++) {
            parse_streamed(g, &cut, 1, 0, &sr);
            check_golden(g, &sr.r);
            cg_buf_free(&sr.r.content);
        }
        size_t *all = malloc((n + 1) * sizeof *all);
        for (size_t i = 0; i < n; i++) all[i] = i + 1;
        parse_streamed(g, all, n, 0, &sr);
        check_golden(g, &sr.r);
        cg_buf_free(&sr.r.content);
        free(all);
        if (sr.n_growths > most_growths) most_growths = sr.n_growths;
        if (gi == 0) assert_true(sr.n_growths > 10);   // fed byte by byte, the arguments arrive in pieces
        n_parses += n + 3;
    }
    print_message("%zu streamed cases, %zu parses identical; byte by byte up to %zu argument pieces per output\n",
                  sizeof STREAMED / sizeof *STREAMED, n_parses, most_growths);
}

// Output cut after every byte: each call's arguments are still valid JSON (checked with jansson).
static void test_streamed_cut_anywhere(void **state) {
    (void)state;
    size_t n_checked = 0;
    for (size_t gi = 0; gi < sizeof STREAMED / sizeof *STREAMED; gi++) {
        const golden *g = &STREAMED[gi];
        if (g->fmt == CG_TOOLCALL_MISTRAL) continue;
        for (size_t k = 0; k <= strlen(g->text); k++) {
            golden cut = *g;
            char *t = strndup(g->text, k);
            cut.text = t;
            sresult sr;
            parse_streamed(&cut, NULL, 0, 0, &sr);
            for (size_t i = 0; i < sr.r.n_calls; i++) {
                json_error_t je;
                json_t *v = json_loads(sr.r.calls[i][1], 0, &je);
                if (!v || !json_is_object(v)) fail_msg("'%s': arguments '%s' are not a JSON object: %s", t, sr.r.calls[i][1], je.text);
                json_decref(v);
                n_checked++;
            }
            cg_buf_free(&sr.r.content);
            free(t);
        }
    }
    print_message("%zu arguments of outputs cut at every byte parse as JSON objects\n", n_checked);
}

// parallel_tool_calls false: at most one call; the rest of the output is dropped and done() is true.
static void test_max_calls(void **state) {
    (void)state;
    static const golden ONE[] = {
        {CG_TOOLCALL_HERMES,
         "Hi.<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": 1}}</tool_call>\n<tool_call>{\"name\": \"b\", "
         "\"arguments\": {}}</tool_call> and more",
         "Hi.", 1, {{"a", "{\"x\":1}", NULL}}},
        {CG_TOOLCALL_HERMES,   // whole-call path (arguments as a string)
         "<tool_call>{\"name\": \"a\", \"arguments\": \"{}\"}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>",
         "", 1, {{"a", "{}", NULL}}},
        {CG_TOOLCALL_GENERIC, "{\"tool_calls\": [{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {}}]}",
         "", 1, {{"a", "{}", NULL}}},
        {CG_TOOLCALL_MISTRAL, "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {}}] text", "", 1,
         {{"a", "{}", NULL}}},
    };
    for (size_t gi = 0; gi < sizeof ONE / sizeof *ONE; gi++) {
        size_t n = strlen(ONE[gi].text);
        for (size_t cut = 0; cut <= n; cut++) {
            sresult sr;
            parse_streamed(&ONE[gi], &cut, 1, 1, &sr);
            check_golden(&ONE[gi], &sr.r);
            cg_buf_free(&sr.r.content);
        }
    }
    cg_err err = {0};
    cg_toolcall_parser *p;
    CG_ASSERT_OK(cg_toolcall_parser_new(CG_TOOLCALL_HERMES, &p, &err), &err);
    CG_ASSERT_OK(cg_toolcall_parser_set_max_calls(p, 1, &err), &err);
    cg_buf c;
    cg_buf_init(&c);
    size_t n_new;
    const char *t = "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>";
    assert_false(cg_toolcall_parser_done(p));
    CG_ASSERT_OK(cg_toolcall_parser_feed(p, t, strlen(t), &c, &n_new, &err), &err);
    assert_int_equal(n_new, 1);
    assert_true(cg_toolcall_parser_done(p));   // the caller stops generating here
    assert_int_equal(cg_toolcall_parser_stream_args(p, true, &err), CG_ERR_STATE);
    assert_int_equal(cg_toolcall_parser_set_max_calls(p, 2, &err), CG_ERR_STATE);
    cg_toolcall_parser_free(p);
    cg_buf_free(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_streamed), cmocka_unit_test(test_streaming_holds_markup),
        cmocka_unit_test(test_grammar_forcing), cmocka_unit_test(test_streamed_arguments),
        cmocka_unit_test(test_streamed_cut_anywhere), cmocka_unit_test(test_max_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
