// test_grammar.c — GBNF parser errors, acceptance, UTF-8 edge cases, masking on a hand-made vocab
// (checked against brute force) and on the real 151k-token qwen3 vocabulary (cost per token).
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/utf8.h"
#include "sample/grammar.h"
#include "sample/sampler.h"

static const char JSON_GBNF[] =
    "# JSON, as llama.cpp's grammars/json.gbnf describes it (bounded whitespace)\n"
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "object ::=\n"
    "  \"{\" ws (\n"
    "            string \":\" ws value\n"
    "    (\",\" ws string \":\" ws value)*\n"
    "  )? \"}\" ws\n"
    "array  ::=\n"
    "  \"[\" ws (\n"
    "            value\n"
    "    (\",\" ws value)*\n"
    "  )? \"]\" ws\n"
    "string ::=\n"
    "  \"\\\"\" (\n"
    "    [^\"\\\\\\x7F\\x00-\\x1F] |\n"
    "    \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) # escapes\n"
    "  )* \"\\\"\" ws\n"
    "number ::= (\"-\"? ([0-9] | [1-9] [0-9]{0,15})) (\".\" [0-9]+)? ([eE] [-+]? [0-9] [1-9]?)? ws\n"
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";

static cg_grammar *parse_ok(const char *src) {
    cg_err err = {0};
    cg_grammar *g = NULL;
    CG_ASSERT_OK(cg_grammar_parse(src, strlen(src), NULL, &g, &err), &err);
    return g;
}

static void expect_error(const char *src, const char *needle) {
    cg_err err = {0};
    cg_grammar *g = NULL;
    cg_status st = cg_grammar_parse(src, strlen(src), NULL, &g, &err);
    if (st == CG_OK) fail_msg("grammar parsed but should fail: %s", src);
    if (!strstr(err.msg, needle)) fail_msg("error '%s' does not contain '%s'", err.msg, needle);
}

static void test_parse_errors(void **state) {
    (void)state;
    expect_error("root ::= foo\n", "line 1, column 10: undefined rule 'foo'");
    expect_error("root ::= \"a\"\nx ::= [ab\n", "line 2, column 7: unterminated character class");
    expect_error("root ::= \"\\q\"", "line 1, column 11: unknown escape");
    expect_error("root ::= (\"a\" | \"b\"\n", "line 1, column 10: expected ')'");
    expect_error("x ::= \"a\"\n", "no 'root' rule");
    expect_error("root ::= \"a\"\nroot ::= \"b\"\n", "line 2, column 1: rule defined twice");
    expect_error("root ::= * \"a\"", "line 1, column 10: repetition operator");
    expect_error("root ::= \"a\"{3,2}", "n < m");
    expect_error("root ::= [z-a]", "line 1, column 13: character range upper bound");
    expect_error("root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]\n",
                 "line 2, column 1: left recursion: rule 'expr'");
    expect_error("root ::= a\na ::= b? \"x\" | c\nc ::= \"y\"? a\nb ::= \"z\"\n", "left recursion");
    expect_error("root ::= \"a\" \"b\" junk-here )\n", "unexpected character");
    expect_error("root ::= \"\xff\"", "invalid UTF-8");
}

// Whole-string acceptance through accept_bytes, fed in two pieces at every split point.
static bool accepts(const cg_grammar *g, const char *s, size_t n) {
    bool result = false;
    for (size_t cut = 0; cut <= n; cut++) {
        cg_err err = {0};
        cg_grammar_matcher *m;
        CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
        bool ok = cg_grammar_matcher_accept_bytes(m, s, cut, &err) == CG_OK &&
                  cg_grammar_matcher_accept_bytes(m, s + cut, n - cut, &err) == CG_OK && cg_grammar_matcher_can_end(m);
        if (cut == 0) result = ok;
        else assert_int_equal(ok, result);   // the split must not matter
        cg_grammar_matcher_free(m);
    }
    return result;
}
#define ACC(g, s) accepts(g, s, sizeof(s) - 1)

static void test_accept(void **state) {
    (void)state;
    cg_grammar *g = parse_ok(JSON_GBNF);
    assert_true(ACC(g, "{}"));
    assert_true(ACC(g, "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\n\"], \"b\": {\"c\": \"한국어\"}}"));
    assert_false(ACC(g, "{\"a\": }"));
    assert_false(ACC(g, "{\"a\": 01}"));
    assert_false(ACC(g, "{\"a\": \"\x01\"}"));
    assert_false(ACC(g, "[1]"));
    assert_false(ACC(g, "{"));
    cg_grammar_free(g);

    g = parse_ok("root ::= \"a\"{2,3} \"-\" [^a-c\\u00e9]{,2} x{1,}\nx ::= [0-9]   # comment\n");
    assert_true(ACC(g, "aa-1"));
    assert_true(ACC(g, "aaa-de12"));
    assert_true(ACC(g, "aa-\xea\xb0\x80" "0"));   // 가 is outside the negated class
    assert_false(ACC(g, "a-1"));
    assert_false(ACC(g, "aaaa-1"));
    assert_false(ACC(g, "aa-b1"));
    assert_false(ACC(g, "aa-\xc3\xa9" "1"));      // é is in the negated class
    assert_false(ACC(g, "aa-def1"));
    assert_false(ACC(g, "aa-"));
    cg_grammar_free(g);

    g = parse_ok("root ::= [\\uAC00-\\uD7A3]+ \"!\"? | \"\\U0001F600\"");
    assert_true(ACC(g, "한국어!"));
    assert_true(ACC(g, "\xf0\x9f\x98\x80"));
    assert_false(ACC(g, "abc"));
    assert_false(ACC(g, "한국어!!"));
    cg_grammar_free(g);
}

static void test_utf8_edges(void **state) {
    (void)state;
    cg_grammar *g = parse_ok("root ::= .*");
    assert_true(ACC(g, "\xed\x9f\xbf"));              // U+D7FF
    assert_true(ACC(g, "\xee\x80\x80"));              // U+E000
    assert_true(ACC(g, "\xf4\x8f\xbf\xbf"));          // U+10FFFF
    assert_false(ACC(g, "\xc0\xaf"));                 // overlong '/'
    assert_false(ACC(g, "\xc1\xbf"));
    assert_false(ACC(g, "\xe0\x80\xaf"));             // overlong, 3 bytes
    assert_false(ACC(g, "\xf0\x80\x80\xaf"));         // overlong, 4 bytes
    assert_false(ACC(g, "\xed\xa0\x80"));             // surrogate U+D800
    assert_false(ACC(g, "\xf4\x90\x80\x80"));         // U+110000
    assert_false(ACC(g, "\xf5\x80\x80\x80"));
    assert_false(ACC(g, "\xff"));
    assert_false(ACC(g, "\x80"));                     // lone continuation
    assert_false(ACC(g, "\xe2\x82"));                 // truncated: cannot end inside a sequence
    cg_grammar_free(g);
}

// ---- masking -------------------------------------------------------------------------------------
// Brute force: a fresh matcher replays `prefix`, then tries the token's bytes.
static bool brute_allowed(const cg_grammar *g, const char *prefix, size_t n_prefix, const cg_token_text *t,
                          uint8_t flags) {
    cg_err err = {0};
    cg_grammar_matcher *m;
    CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
    CG_ASSERT_OK(cg_grammar_matcher_accept_bytes(m, prefix, n_prefix, &err), &err);
    bool ok;
    if (flags & CG_GTOK_EOG) ok = cg_grammar_matcher_can_end(m);
    else if (flags & CG_GTOK_CONTROL || t->n == 0) ok = false;
    else ok = cg_grammar_matcher_accept_bytes(m, t->p, t->n, &err) == CG_OK;
    cg_grammar_matcher_free(m);
    return ok;
}

// Checks tokens i with i % stride == 0 (stride 1: all of them).
static void check_mask_vs_brute(const cg_grammar *g, const cg_grammar_vocab *v, const cg_token_text *toks,
                                const uint8_t *flags, int32_t n, const char *prefix, size_t n_prefix, int32_t stride) {
    cg_err err = {0};
    cg_grammar_matcher *m;
    CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
    CG_ASSERT_OK(cg_grammar_matcher_accept_bytes(m, prefix, n_prefix, &err), &err);
    uint8_t *mask = malloc((size_t)n);
    CG_ASSERT_OK(cg_grammar_matcher_mask(m, v, mask, &err), &err);
    for (int32_t i = 0; i < n; i += stride) {
        bool want = brute_allowed(g, prefix, n_prefix, &toks[i], flags ? flags[i] : 0);
        if (want != (mask[i] != 0))
            fail_msg("token %d (%.*s) after \"%.*s\": mask %d, brute force %d", i, (int)toks[i].n, toks[i].p,
                     (int)n_prefix, prefix, mask[i], want);
    }
    free(mask);
    cg_grammar_matcher_free(m);
}

static void test_mask_small_vocab(void **state) {
    (void)state;
    cg_err err = {0};
    const cg_token_text toks[] = {
        {"a", 1}, {"b", 1}, {"ab", 2}, {"ba", 2}, {"aab", 3}, {"{", 1}, {"}", 1}, {"\"", 1},
        {"\xed\x95\x9c", 3},   // 한
        {"\xed", 1}, {"\x95\x9c", 2}, {"\x95", 1}, {"\x9c", 1}, {"\xc0", 1}, {"\xe0\x80", 2}, {"\xed\xa0", 2},
        {"", 0}, {"<|end|>", 7}, {"<|ctl|>", 7}, {"a\xed", 2}, {"\xea\xb0\x80", 3},   // 가
    };
    enum { N = sizeof toks / sizeof *toks };
    uint8_t flags[N] = {0};
    flags[17] = CG_GTOK_EOG;
    flags[18] = CG_GTOK_CONTROL;
    cg_grammar_vocab *v;
    CG_ASSERT_OK(cg_grammar_vocab_new(toks, flags, N, &v, &err), &err);

    cg_grammar *g = parse_ok("root ::= \"a\"+ \"b\"");
    uint8_t mask[N];
    cg_grammar_matcher *m;
    CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
    CG_ASSERT_OK(cg_grammar_matcher_mask(m, v, mask, &err), &err);
    // hand-computed: a, ab, aab
    for (int i = 0; i < N; i++) assert_int_equal(mask[i], i == 0 || i == 2 || i == 4);
    CG_ASSERT_OK(cg_grammar_matcher_accept_token(m, v, 0, &err), &err);
    CG_ASSERT_OK(cg_grammar_matcher_mask(m, v, mask, &err), &err);
    for (int i = 0; i < N; i++) assert_int_equal(mask[i], i == 0 || i == 1 || i == 2 || i == 4);
    assert_int_equal(cg_grammar_matcher_accept_token(m, v, 3, &err), CG_ERR_STATE);   // "ba" rejected...
    CG_ASSERT_OK(cg_grammar_matcher_accept_token(m, v, 1, &err), &err);             // ...matcher unchanged
    CG_ASSERT_OK(cg_grammar_matcher_mask(m, v, mask, &err), &err);
    for (int i = 0; i < N; i++) assert_int_equal(mask[i], i == 17);   // only the EOG token
    assert_true(cg_grammar_matcher_must_end(m));
    CG_ASSERT_OK(cg_grammar_matcher_accept_token(m, v, 17, &err), &err);
    cg_grammar_matcher_free(m);
    check_mask_vs_brute(g, v, toks, flags, N, "aa", 2, 1);
    cg_grammar_free(g);

    // Hangul syllables: partial sequences are allowed only when they can still become one
    g = parse_ok("root ::= [가-힣]+");
    CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
    CG_ASSERT_OK(cg_grammar_matcher_mask(m, v, mask, &err), &err);
    // 한, \xed (U+D000..U+D7FF overlaps), 가; not \xed\xa0 (surrogates), \xc0, \xe0\x80
    for (int i = 0; i < N; i++) assert_int_equal(mask[i], i == 8 || i == 9 || i == 20);
    CG_ASSERT_OK(cg_grammar_matcher_accept_token(m, v, 9, &err), &err);
    assert_false(cg_grammar_matcher_can_end(m));
    CG_ASSERT_OK(cg_grammar_matcher_mask(m, v, mask, &err), &err);
    // \x95\x9c (U+D55C), \x95 (U+D540..U+D57F) and \x9c (U+D700..U+D73F, still below U+D7A3)
    for (int i = 0; i < N; i++) assert_int_equal(mask[i], i == 10 || i == 11 || i == 12);
    CG_ASSERT_OK(cg_grammar_matcher_accept_token(m, v, 11, &err), &err);
    CG_ASSERT_OK(cg_grammar_matcher_accept_token(m, v, 12, &err), &err);   // 한 assembled from 3 tokens
    assert_true(cg_grammar_matcher_can_end(m));
    cg_grammar_matcher_free(m);
    check_mask_vs_brute(g, v, toks, flags, N, "\xed", 1, 1);
    check_mask_vs_brute(g, v, toks, flags, N, "\xea\xb0\x80", 3, 1);
    cg_grammar_free(g);

    g = parse_ok(JSON_GBNF);
    check_mask_vs_brute(g, v, toks, flags, N, "{\"", 2, 1);
    check_mask_vs_brute(g, v, toks, flags, N, "{\"a\xed", 4, 1);
    cg_grammar_free(g);
    cg_grammar_vocab_free(v);
}

// ---- the real qwen3 vocabulary, read from its GGUF file with a minimal reader ----------------------
typedef struct rd { const unsigned char *p; size_t n, at; bool bad; } rd;
static uint64_t rd_u(rd *r, int bytes) {
    if (r->at + (size_t)bytes > r->n) { r->bad = true; return 0; }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)r->p[r->at + (size_t)i] << (8 * i);
    r->at += (size_t)bytes;
    return v;
}
static size_t type_size(uint32_t t) {
    static const size_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? sz[t] : 0;
}
static void rd_skip_value(rd *r, uint32_t t) {
    if (t == 8) { uint64_t l = rd_u(r, 8); r->at += l; return; }
    if (t == 9) {
        uint32_t et = (uint32_t)rd_u(r, 4);
        uint64_t n = rd_u(r, 8);
        for (uint64_t i = 0; i < n && !r->bad; i++) rd_skip_value(r, et);
        return;
    }
    r->at += type_size(t);
}

// GPT-2 byte-level BPE: the printable stand-in code point of every byte, inverted.
static int byte_of_cp(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    int k = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) continue;
        if (cp == 256u + (uint32_t)k) return b;
        k++;
    }
    return -1;
}

typedef struct real_vocab { cg_token_text *t; uint8_t *flags; char *blob; int32_t n; unsigned char *file; } real_vocab;

static bool load_qwen3(real_vocab *rv) {
    const char *md = cg_test_models_dir();
    if (!md) return false;
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-qwen3.gguf", md);
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fclose(f);
    size_t size;
    rv->file = cg_test_read_path(path, &size);
    rd r = {rv->file, size, 0, false};
    if (rd_u(&r, 4) != 0x46554747u) fail_msg("not a GGUF file: %s", path);
    rd_u(&r, 4);
    rd_u(&r, 8);
    uint64_t n_kv = rd_u(&r, 8);
    size_t tok_at = 0, type_at = 0;
    for (uint64_t i = 0; i < n_kv && !r.bad; i++) {
        uint64_t kl = rd_u(&r, 8);
        const char *key = (const char *)r.p + r.at;
        r.at += kl;
        uint32_t t = (uint32_t)rd_u(&r, 4);
        if (t == 9 && kl == 21 && memcmp(key, "tokenizer.ggml.tokens", 21) == 0) tok_at = r.at;
        if (t == 9 && kl == 25 && memcmp(key, "tokenizer.ggml.token_type", 25) == 0) type_at = r.at;
        rd_skip_value(&r, t);
    }
    if (r.bad || !tok_at || !type_at) fail_msg("qwen3 vocab: tokens not found");
    r.at = tok_at;
    rd_u(&r, 4);
    rv->n = (int32_t)rd_u(&r, 8);
    rv->t = calloc((size_t)rv->n, sizeof *rv->t);
    rv->flags = calloc((size_t)rv->n, 1);
    rv->blob = malloc(size);
    size_t used = 0;
    rd rt = {rv->file, size, type_at + 12, false};
    for (int32_t i = 0; i < rv->n; i++) {
        uint64_t l = rd_u(&r, 8);
        const char *s = (const char *)r.p + r.at;
        r.at += l;
        int32_t type = (int32_t)rd_u(&rt, 4);
        rv->t[i].p = rv->blob + used;
        if (type == 3 || type == 4) {   // control / user-defined: literal text
            memcpy(rv->blob + used, s, l);
            rv->t[i].n = l;
            if (type == 3) rv->flags[i] = CG_GTOK_CONTROL;
            if ((l == 10 && memcmp(s, "<|im_end|>", 10) == 0) || (l == 13 && memcmp(s, "<|endoftext|>", 13) == 0))
                rv->flags[i] = CG_GTOK_EOG;
        } else {
            size_t k = 0;
            for (size_t j = 0; j < l;) {
                uint32_t cp;
                int len = cg_utf8_decode(s + j, l - j, &cp);
                int b = len ? byte_of_cp(cp) : -1;
                if (b < 0) fail_msg("token %d is not byte-level BPE text", i);
                rv->blob[used + k++] = (char)b;
                j += (size_t)len;
            }
            rv->t[i].n = k;
        }
        used += rv->t[i].n;
    }
    return !r.bad;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_mask_qwen3(void **state) {
    (void)state;
    real_vocab rv = {0};
    if (!load_qwen3(&rv)) { skip(); return; }
    cg_err err = {0};
    cg_grammar_vocab *v;
    double t0 = now_s();
    CG_ASSERT_OK(cg_grammar_vocab_new(rv.t, rv.flags, rv.n, &v, &err), &err);
    double t_build = now_s() - t0;
    cg_grammar *g = parse_ok(JSON_GBNF);
    // brute-force agreement at a few positions (inside a string, after a key, inside a number, inside a
    // code point): every 5th token (all of them take minutes under ASan)
    const char *prefixes[] = {"{\"k", "{\"k\": ", "{\"k\": -1", "{\"k\": \"\xed"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        check_mask_vs_brute(g, v, rv.t, rv.flags, rv.n, prefixes[i], strlen(prefixes[i]), 5);

    // generate with random logits: time per mask, and the output must parse under the grammar
    cg_sampler_params sp;
    cg_sampler_params_default(&sp);
    sp.seed = 1234;
    sp.temperature = 1.0f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0;
    cg_sampler *s;
    CG_ASSERT_OK(cg_sampler_new(&sp, rv.n, &s, &err), &err);
    cg_grammar_matcher *m;
    CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
    float *logits = malloc((size_t)rv.n * sizeof *logits);
    uint8_t *mask = malloc((size_t)rv.n);
    cg_rng rng;
    cg_rng_seed(&rng, 99);
    double t_mask = 0, t_cold = 0;
    size_t n_steps = 0, visits = 0, n_allowed_sum = 0, n_cold = 0;
    bool ended = false;
    for (int step = 0; step < 200 && !ended; step++) {
        for (int32_t i = 0; i < rv.n; i++) logits[i] = (float)(cg_rng_uniform(&rng) * 8.0);
        double a = now_s();
        CG_ASSERT_OK(cg_grammar_matcher_mask(m, v, mask, &err), &err);
        double dt = now_s() - a;
        t_mask += dt;
        visits += cg_grammar_matcher_last_visits(m);
        if (cg_grammar_matcher_last_visits(m)) { n_cold++; t_cold += dt; }   // not served from the mask cache
        for (int32_t i = 0; i < rv.n; i++) n_allowed_sum += mask[i];
        n_steps++;
        int32_t tok;
        CG_ASSERT_OK(cg_sampler_sample(s, logits, mask, &tok, &err), &err);
        CG_ASSERT_OK(cg_grammar_matcher_accept_token(m, v, tok, &err), &err);
        ended = rv.flags[tok] & CG_GTOK_EOG;
    }
    print_message("qwen3 vocab: %d tokens, trie %zu nodes built in %.1f ms; JSON grammar mask: %.2f ms/token "
                  "(%zu steps, %.0f tokens allowed per step on average); %zu masks walked the trie: %.2f ms each, "
                  "%.0f trie edges visited each; the others came from the mask cache\n",
                  rv.n, cg_grammar_vocab_n_nodes(v), t_build * 1e3, t_mask * 1e3 / (double)n_steps, n_steps,
                  (double)n_allowed_sum / (double)n_steps, n_cold, n_cold ? t_cold * 1e3 / (double)n_cold : 0.0,
                  n_cold ? (double)visits / (double)n_cold : 0.0);
    free(logits);
    free(mask);
    cg_grammar_matcher_free(m);
    cg_sampler_free(s);
    cg_grammar_free(g);
    cg_grammar_vocab_free(v);
    free(rv.t);
    free(rv.flags);
    free(rv.blob);
    free(rv.file);
}

// Budgeted masks (closing mode) on the 151k-token qwen3 vocabulary: every 31st token's verdict agrees
// with feeding prefix + token to a fresh matcher and comparing its distance with the limit; the
// time of such a mask (never cached: the limit cuts it) is the cost per token in closing mode.
static void test_budget_mask_qwen3(void **state) {
    (void)state;
    real_vocab rv = {0};
    if (!load_qwen3(&rv)) { skip(); return; }
    cg_err err = {0};
    cg_grammar_vocab *v;
    CG_ASSERT_OK(cg_grammar_vocab_new(rv.t, rv.flags, rv.n, &v, &err), &err);
    cg_grammar *g = parse_ok(JSON_GBNF);
    const char *prefixes[] = {"{\"k\": \"abc", "{\"k\": [1, {\"a\": 12", "{\"k\": [[\"\xed"};
    uint8_t *mask = malloc((size_t)rv.n);
    double t_total = 0;
    size_t n_allowed = 0;
    for (size_t pi = 0; pi < sizeof prefixes / sizeof *prefixes; pi++) {
        const char *pre = prefixes[pi];
        size_t np = strlen(pre);
        cg_grammar_matcher *m;
        CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
        CG_ASSERT_OK(cg_grammar_matcher_accept_bytes(m, pre, np, &err), &err);
        uint32_t d = cg_grammar_matcher_distance(m);
        assert_true(d >= 2);
        bool cut = false;
        double a = now_s();
        CG_ASSERT_OK(cg_grammar_matcher_mask_budget(m, v, mask, (int64_t)d - 1, &cut, &err), &err);
        t_total += now_s() - a;
        // inside a partial code point every continuation lowers the distance: nothing to cut there
        assert_int_equal(cut, pi < 2);
        for (int32_t i = 0; i < rv.n; i++) n_allowed += mask[i];
        for (int32_t i = 0; i < rv.n; i += 31) {   // every 31st: a fresh matcher per token is slow under ASan
            bool want = false;
            if (!(rv.flags[i] & (CG_GTOK_EOG | CG_GTOK_CONTROL)) && rv.t[i].n) {
                cg_grammar_matcher *b;
                CG_ASSERT_OK(cg_grammar_matcher_new(g, &b, &err), &err);
                CG_ASSERT_OK(cg_grammar_matcher_accept_bytes(b, pre, np, &err), &err);
                want = cg_grammar_matcher_accept_bytes(b, rv.t[i].p, rv.t[i].n, &err) == CG_OK &&
                       cg_grammar_matcher_distance(b) < d;
                cg_grammar_matcher_free(b);
            }
            if (want != (mask[i] != 0))
                fail_msg("token %d (%.*s) after \"%s\" (distance %u): mask %d, brute force %d", i, (int)rv.t[i].n,
                         rv.t[i].p, pre, d, mask[i], want);
        }
        cg_grammar_matcher_free(m);
    }
    print_message("qwen3 vocab, closing mode (distance must drop): %.2f ms per mask, %.1f tokens allowed on average\n",
                  t_total * 1e3 / 3.0, (double)n_allowed / 3.0);
    free(mask);
    cg_grammar_free(g);
    cg_grammar_vocab_free(v);
    free(rv.t);
    free(rv.flags);
    free(rv.blob);
    free(rv.file);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_accept), cmocka_unit_test(test_utf8_edges),
        cmocka_unit_test(test_mask_small_vocab), cmocka_unit_test(test_mask_qwen3),
        cmocka_unit_test(test_budget_mask_qwen3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
