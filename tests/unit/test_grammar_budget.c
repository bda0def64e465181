// test_grammar_budget.c — the termination guarantee (grammar.h "Budgets", setup.h
// cg_sample_seq_set_budget): exact distances of hand-made grammars (hand-computed byte counts),
// forced closing of a nested JSON value, budgets against adversarial logits that favour opening
// brackets, a parallel tool-call grammar, and a vocabulary missing the closing character.
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "sample/grammar.h"
#include "sample/sampler.h"
#include "sample/setup.h"
#include "sample/toolcall.h"

static const char JSON_GBNF[] =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "object ::= \"{\" ws ( string \":\" ws value (\",\" ws string \":\" ws value)* )? \"}\" ws\n"
    "array  ::= \"[\" ws ( value (\",\" ws value)* )? \"]\" ws\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x7F\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) )* \"\\\"\" ws\n"
    "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9] [1-9]?)? ws\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";

static cg_grammar *parse_ok(const char *src) {
    cg_err err = {0};
    cg_grammar *g = NULL;
    CG_ASSERT_OK(cg_grammar_parse(src, strlen(src), NULL, &g, &err), &err);
    return g;
}

// The distance after feeding prefix[0..n) to a fresh matcher.
static uint32_t dist_after(const cg_grammar *g, const char *prefix, size_t n) {
    cg_err err = {0};
    cg_grammar_matcher *m;
    CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
    CG_ASSERT_OK(cg_grammar_matcher_accept_bytes(m, prefix, n, &err), &err);
    uint32_t d = cg_grammar_matcher_distance(m);
    assert_int_equal(d == 0, cg_grammar_matcher_can_end(m));
    cg_grammar_matcher_free(m);
    return d;
}
#define DIST(g, s) dist_after(g, s, sizeof(s) - 1)

static void test_distances(void **state) {
    (void)state;
    cg_grammar *g = parse_ok("root ::= \"ab\" x \"c\"\nx ::= \"d\" | \"efg\"\n");
    assert_int_equal(DIST(g, ""), 4);      // "abdc"
    assert_int_equal(DIST(g, "a"), 3);
    assert_int_equal(DIST(g, "ab"), 2);    // "dc"
    assert_int_equal(DIST(g, "abe"), 3);   // "fgc"
    assert_int_equal(DIST(g, "abd"), 1);
    assert_int_equal(DIST(g, "abdc"), 0);
    cg_grammar_free(g);

    // multi-byte code points: é (U+00E9) is 2 bytes; inside a partial code point the missing bytes count
    g = parse_ok("root ::= [\\u00E9-\\u00FC] \"x\"");
    assert_int_equal(DIST(g, ""), 3);
    assert_int_equal(DIST(g, "\xc3"), 2);
    assert_int_equal(DIST(g, "\xc3\xa9"), 1);
    cg_grammar_free(g);
    g = parse_ok("root ::= [\\u4E00-\\u9FFF] | [\\U0001F600-\\U0001F64F] \"a\"");   // 3 bytes or 4 + 1
    assert_int_equal(DIST(g, ""), 3);
    assert_int_equal(DIST(g, "\xf0\x9f"), 3);   // two bytes of 😀 missing, then "a"
    cg_grammar_free(g);
    // negated sets: the smallest code point not excluded
    g = parse_ok("root ::= [^\\x00-\\x7F] [^a-z] .");
    assert_int_equal(DIST(g, ""), 2 + 1 + 1);
    cg_grammar_free(g);

    // recursion and repetition
    g = parse_ok("root ::= \"(\" root \")\" | \"x\"");
    assert_int_equal(DIST(g, ""), 1);
    assert_int_equal(DIST(g, "(("), 3);     // "x))"
    assert_int_equal(DIST(g, "((x)"), 1);
    cg_grammar_free(g);
    g = parse_ok("root ::= \"a\"{3,5} \"b\"?");
    assert_int_equal(DIST(g, ""), 3);
    assert_int_equal(DIST(g, "aaaa"), 0);
    cg_grammar_free(g);

    // a rule without any finite sentence
    g = parse_ok("root ::= \"a\" | \"b\" r\nr ::= \"c\" r\n");
    assert_int_equal(DIST(g, ""), 1);
    assert_int_equal(DIST(g, "b"), UINT32_MAX);
    cg_grammar_free(g);

    // JSON: "{}" is the shortest object; inside a key, '":0}' remains
    g = parse_ok(JSON_GBNF);
    assert_int_equal(DIST(g, ""), 2);
    assert_int_equal(DIST(g, "{\"ab"), 4);
    assert_int_equal(DIST(g, "{\"a\":[[{\"b\":\"xyz"), 5);   // "}]]}
    assert_int_equal(DIST(g, "{\"a\":tr"), 3);               // ue}
    assert_int_equal(DIST(g, "{\"a\":\"\\u00"), 4);          // 2 hex digits, ", }
    cg_grammar_free(g);
}

// A vocabulary: every printable ASCII byte alone, multi-byte tokens that open brackets and strings,
// and EOG last. without: a byte left out (0 = none).
typedef struct tvocab {
    cg_token_text toks[160];
    char one[128][2];
    uint8_t flags[160];
    int32_t n, eog;
    cg_sample_vocab sv;
} tvocab;

static const char *const MULTI[] = {"{\"", "\":[", "[[", "[{\"", "\":\"", "aaaa", "\": {\"", ", \"", "\"}", "}]", "true",
                                    "<tool_call>\n{\"name\": \"", "\n<tool_call>", "\n", "{\"a\":[", "xyz"};

static void tvocab_init(tvocab *t, char without) {
    cg_err err = {0};
    memset(t, 0, sizeof *t);
    for (int c = 0x20; c < 0x7F; c++) {
        if (c == without) continue;
        t->one[c][0] = (char)c;
        t->toks[t->n++] = (cg_token_text){t->one[c], 1};
    }
    for (size_t i = 0; i < sizeof MULTI / sizeof *MULTI; i++) {
        t->toks[t->n++] = (cg_token_text){MULTI[i], strlen(MULTI[i])};
    }
    t->eog = t->n;
    t->toks[t->n] = (cg_token_text){"</s>", 4};
    t->flags[t->n++] = CG_GTOK_EOG;
    t->sv.n_vocab = t->n;
    t->sv.pieces = t->toks;
    t->sv.eog = &t->eog;
    t->sv.n_eog = 1;
    CG_ASSERT_OK(cg_grammar_vocab_new(t->toks, t->flags, t->n, &t->sv.gvocab, &err), &err);
}

static void tvocab_free(tvocab *t) { cg_grammar_vocab_free(t->sv.gvocab); }

static int32_t tok_id(const tvocab *t, const char *s) {
    for (int32_t i = 0; i < t->n; i++)
        if (t->toks[i].n == strlen(s) && !memcmp(t->toks[i].p, s, t->toks[i].n)) return i;
    fail_msg("no token '%s'", s);
    return -1;
}

static void seq_new(cg_sample_seq *q, const cg_grammar *g, const tvocab *t, uint64_t seed) {
    cg_err err = {0};
    cg_sampler_params p;
    cg_sampler_params_default(&p);
    p.seed = seed;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.penalty_last_n = 0;
    CG_ASSERT_OK(cg_sample_seq_init(q, &p, g, &t->sv, &err), &err);
}

// Generates until must_end, EOG or the budget; appends the text. Returns the status of the step
// that stopped it (CG_OK when it ended normally) and the number of tokens in *steps.
static cg_status run_seq(cg_sample_seq *q, const tvocab *t, const float *logits, int64_t budget, cg_buf *out,
                         int64_t *steps, bool *ended, cg_err *err) {
    *ended = false;
    for (*steps = 0; *steps < budget;) {
        int32_t tok;
        cg_status st = cg_sample_seq_next(q, logits, &tok, err);
        if (st) return st;
        ++*steps;
        if (tok == t->eog) { *ended = true; break; }
        cg_buf_append(out, t->toks[tok].p, t->toks[tok].n);
        if (cg_sample_seq_must_end(q)) { *ended = true; break; }
    }
    return CG_OK;
}

static bool complete_under(const cg_grammar *g, const cg_buf *out) {
    cg_err err = {0};
    cg_grammar_matcher *m;
    CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
    bool ok = cg_grammar_matcher_accept_bytes(m, out->data ? out->data : "", out->len, &err) == CG_OK &&
              cg_grammar_matcher_can_end(m);
    cg_grammar_matcher_free(m);
    return ok;
}

static bool complete_with(const cg_grammar *g, const char *pre, const cg_buf *out) {
    cg_buf all;
    cg_buf_init(&all);
    cg_buf_puts(&all, pre);
    cg_buf_append(&all, out->data, out->len);
    bool ok = complete_under(g, &all);
    cg_buf_free(&all);
    return ok;
}

// Inside `{"a":[[{"b":"xyz` with exactly 5 tokens left, the output must end with `"}]]}`: the
// logits favour continuing the string ('q'), and closing mode must override them.
static void test_forced_close(void **state) {
    (void)state;
    cg_err err = {0};
    tvocab t;
    tvocab_init(&t, 0);
    cg_grammar *g = parse_ok(JSON_GBNF);
    float *logits = calloc((size_t)t.n, sizeof *logits);
    logits[tok_id(&t, "q")] = 20.0f;
    cg_sample_seq q;
    seq_new(&q, g, &t, 1);
    const char pre[] = "{\"a\":[[{\"b\":\"xyz";
    CG_ASSERT_OK(cg_grammar_matcher_accept_bytes(q.gm, pre, sizeof pre - 1, &err), &err);
    cg_sample_seq_set_budget(&q, 5, CG_SAMPLE_BUDGET_MARGIN);
    cg_buf out;
    cg_buf_init(&out);
    int64_t steps;
    bool ended;
    CG_ASSERT_OK(run_seq(&q, &t, logits, 5, &out, &steps, &ended, &err), &err);
    assert_true(ended);
    // a token counts when it lowers the distance as a whole: `, "` (string bytes, then the quote) may
    // come first; whatever comes, the output closes the string, the object, both arrays and the root
    if (out.len < 5 || memcmp(out.data + out.len - 5, "\"}]]}", 5)) fail_msg("got %.*s", (int)out.len, out.data);
    assert_true(q.closing);
    assert_int_equal(q.n_cut, steps);   // every step was cut ("}, }] may take two bytes at once)
    cg_sample_seq_free(&q);

    assert_true(complete_with(g, pre, &out));

    // one token to spare and margin 0: one free step ('q' wins: the distance stays 5 <= 5 left),
    // then whatever fits; the whole text is a complete JSON value
    seq_new(&q, g, &t, 1);
    CG_ASSERT_OK(cg_grammar_matcher_accept_bytes(q.gm, pre, sizeof pre - 1, &err), &err);
    cg_sample_seq_set_budget(&q, 6, 0);
    out.len = 0;
    CG_ASSERT_OK(run_seq(&q, &t, logits, 6, &out, &steps, &ended, &err), &err);
    assert_true(ended);
    assert_true(out.len >= 6 && out.data[0] == 'q');
    assert_true(complete_with(g, pre, &out));
    cg_sample_seq_free(&q);

    // without a budget the same logits never close the string
    seq_new(&q, g, &t, 1);
    CG_ASSERT_OK(cg_grammar_matcher_accept_bytes(q.gm, pre, sizeof pre - 1, &err), &err);
    out.len = 0;
    CG_ASSERT_OK(run_seq(&q, &t, logits, 200, &out, &steps, &ended, &err), &err);
    assert_false(ended);
    cg_sample_seq_free(&q);
    cg_buf_free(&out);
    free(logits);
    cg_grammar_free(g);
    tvocab_free(&t);
}

// Random logits plus a strong pull towards opening tokens, many seeds and budgets: every output
// ends (must_end or EOG) within its budget as a complete JSON sentence.
static void test_budget_adversarial(void **state) {
    (void)state;
    cg_err err = {0};
    tvocab t;
    tvocab_init(&t, 0);
    cg_grammar *g = parse_ok(JSON_GBNF);
    float *logits = calloc((size_t)t.n, sizeof *logits);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int n_runs = 0, n_closing = 0, n_cut = 0;
    int64_t total = 0;
    for (int64_t budget = 2; budget <= 60; budget++) {
        for (int rep = 0; rep < 6; rep++) {
            for (int32_t i = 0; i < t.n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                logits[i] = (float)(x % 1000) / 250.0f;
            }
            const char *open[] = {"{\"", "\":[", "[[", "[{\"", "aaaa", "\": {\"", "{\"a\":[", "[", "{", "\""};
            for (size_t k = 0; k < sizeof open / sizeof *open; k++) logits[tok_id(&t, open[k])] += 6.0f;
            logits[t.eog] = -5.0f;
            cg_sample_seq q;
            seq_new(&q, g, &t, (uint64_t)(budget * 100 + rep));
            cg_sample_seq_set_budget(&q, budget, rep % 2 ? CG_SAMPLE_BUDGET_MARGIN : 0);
            cg_buf out;
            cg_buf_init(&out);
            int64_t steps;
            bool ended;
            CG_ASSERT_OK(run_seq(&q, &t, logits, budget, &out, &steps, &ended, &err), &err);
            if (!ended || !complete_under(g, &out))
                fail_msg("budget %lld rep %d: %s after %lld tokens: %.*s", (long long)budget, rep,
                         ended ? "incomplete" : "no end", (long long)steps, (int)out.len, out.data);
            assert_true(steps <= budget);
            n_runs++;
            n_closing += q.closing;
            n_cut += q.n_cut > 0;
            total += steps;
            cg_buf_free(&out);
            cg_sample_seq_free(&q);
        }
    }
    print_message("JSON under budgets 2..60: %d runs all complete within budget; closing mode in %d, mask cut in %d; "
                  "%.1f tokens on average\n", n_runs, n_closing, n_cut, (double)total / n_runs);
    assert_true(n_cut > n_runs / 2);   // the pull towards opening tokens really needed the budget
    free(logits);
    cg_grammar_free(g);
    tvocab_free(&t);
}

// tool_choice "required" with parallel calls: a model that always wants another call is stopped
// by the budget with complete calls only.
static void test_budget_parallel_tools(void **state) {
    (void)state;
    cg_err err = {0};
    tvocab t;
    tvocab_init(&t, 0);
    cg_tool_def def = {.name = "a", .parameters = "{\"type\":\"object\",\"properties\":{\"b\":{\"type\":\"string\"}}}"};
    def.parameters_len = strlen(def.parameters);
    cg_buf gb;
    cg_buf_init(&gb);
    CG_ASSERT_OK(cg_toolcall_grammar(CG_TOOLCALL_HERMES, &def, 1, NULL, true, &gb, &err), &err);
    cg_grammar *g;
    CG_ASSERT_OK(cg_grammar_parse(gb.data, gb.len, NULL, &g, &err), &err);
    float *logits = calloc((size_t)t.n, sizeof *logits);
    logits[tok_id(&t, "\n<tool_call>")] = 30.0f;
    logits[tok_id(&t, "<tool_call>\n{\"name\": \"")] = 30.0f;
    logits[t.eog] = -30.0f;
    logits[tok_id(&t, "\"")] = 3.0f;
    logits[tok_id(&t, "}")] = 3.0f;
    for (int64_t budget = 60; budget <= 300; budget += 60) {
        cg_sample_seq q;
        seq_new(&q, g, &t, (uint64_t)budget);
        cg_sample_seq_set_budget(&q, budget, CG_SAMPLE_BUDGET_MARGIN);
        cg_buf out;
        cg_buf_init(&out);
        int64_t steps;
        bool ended;
        CG_ASSERT_OK(run_seq(&q, &t, logits, budget, &out, &steps, &ended, &err), &err);
        assert_true(ended);
        assert_true(complete_under(g, &out));
        size_t n_calls = 0;
        for (const char *p = out.data; (p = strstr(p, "</tool_call>")); p++) n_calls++;
        assert_true(n_calls >= 1);
        if (budget == 300) assert_true(n_calls >= 2);   // the pull towards more calls is real
        cg_buf_free(&out);
        cg_sample_seq_free(&q);
    }
    free(logits);
    cg_grammar_free(g);
    cg_buf_free(&gb);
    tvocab_free(&t);
}

// The closing character is not in the vocabulary: the shortest completion cannot be spelled.
// The sequence reports CG_ERR_STATE within the budget — no hang, no output beyond it.
static void test_missing_char(void **state) {
    (void)state;
    cg_err err = {0};
    tvocab t;
    tvocab_init(&t, '}');
    cg_grammar *g = parse_ok("root ::= \"{\" [a-z]* \"}\"");
    float *logits = calloc((size_t)t.n, sizeof *logits);
    cg_sample_seq q;
    seq_new(&q, g, &t, 3);
    cg_sample_seq_set_budget(&q, 10, 2);
    cg_buf out;
    cg_buf_init(&out);
    int64_t steps;
    bool ended;
    cg_status st = run_seq(&q, &t, logits, 10, &out, &steps, &ended, &err);
    assert_int_equal(st, CG_ERR_STATE);
    assert_non_null(strstr(err.msg, "no token is allowed"));
    assert_true(steps < 10);
    assert_false(ended);
    assert_int_equal(cg_grammar_matcher_distance(q.gm), 1);   // only the "}" is missing
    print_message("without '}': stopped after %lld tokens with \"%.*s\" (%s)\n", (long long)steps, (int)out.len,
                  out.data, err.msg);
    cg_buf_free(&out);
    cg_sample_seq_free(&q);
    free(logits);
    cg_grammar_free(g);
    tvocab_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distances), cmocka_unit_test(test_forced_close), cmocka_unit_test(test_budget_adversarial),
        cmocka_unit_test(test_budget_parallel_tools), cmocka_unit_test(test_missing_char),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
