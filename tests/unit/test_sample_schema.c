// test_sample_schema.c — JSON Schema → GBNF: hand-checked pieces (integer ranges, dates, errors) and
// 200 seeded generations per schema in tests/schemas/ with adversarial random logits on a hand-made
// vocabulary. Every generation must terminate within the token budget and parse as JSON; the outputs
// are written to $CG_SCHEMA_OUT (or a temp dir) where tests/integ/schema_ajv.sh validates them with
// ajv, an independent validator.
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sample/grammar.h"
#include "sample/sampler.h"
#include "sample/schema.h"
#include "tok/jval.h"

static cg_grammar *schema_grammar(const char *schema) {
    cg_err err = {0};
    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_schema_to_gbnf(schema, strlen(schema), &b, &err), &err);
    cg_grammar *g;
    cg_status st = cg_grammar_parse(b.data, b.len, NULL, &g, &err);
    if (st) fail_msg("%s\n--- grammar:\n%s", err.msg, b.data);
    cg_buf_free(&b);
    return g;
}

static bool accepts(const cg_grammar *g, const char *s) {
    cg_err err = {0};
    cg_grammar_matcher *m;
    CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
    bool ok = cg_grammar_matcher_accept_bytes(m, s, strlen(s), &err) == CG_OK && cg_grammar_matcher_can_end(m);
    cg_grammar_matcher_free(m);
    return ok;
}

static void test_integer_ranges(void **state) {
    (void)state;
    struct { const char *schema; long lo, hi; } cases[] = {
        {"{\"type\":\"integer\",\"minimum\":-15,\"maximum\":123}", -15, 123},
        {"{\"type\":\"integer\",\"minimum\":7,\"maximum\":7}", 7, 7},
        {"{\"type\":\"integer\",\"exclusiveMinimum\":-3,\"exclusiveMaximum\":208}", -2, 207},
        {"{\"type\":\"integer\",\"minimum\":-1234,\"maximum\":-7}", -1234, -7},
        {"{\"type\":\"integer\",\"minimum\":95}", 95, 100000000},
        {"{\"type\":\"integer\",\"maximum\":-95}", -100000000, -95},
        {"{\"type\":\"integer\",\"minimum\":0,\"maximum\":10080}", 0, 10080},
    };
    char num[32];
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cg_grammar *g = schema_grammar(cases[c].schema);
        for (long v = -1300; v <= 11000; v++) {
            snprintf(num, sizeof num, "%ld", v);
            bool want = v >= cases[c].lo && v <= cases[c].hi;
            if (accepts(g, num) != want) fail_msg("%s: %ld accepted=%d", cases[c].schema, v, !want);
        }
        assert_false(accepts(g, "007"));
        assert_false(accepts(g, "-0"));
        cg_grammar_free(g);
    }
    // numbers with bounds: fractions inside, not outside
    cg_grammar *g = schema_grammar("{\"type\":\"number\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1}");
    assert_true(accepts(g, "0.5"));
    assert_true(accepts(g, "0.001"));
    assert_false(accepts(g, "0"));
    assert_false(accepts(g, "1"));
    assert_false(accepts(g, "1.5"));
    cg_grammar_free(g);
    g = schema_grammar("{\"type\":\"number\",\"minimum\":-40,\"maximum\":60}");
    assert_true(accepts(g, "-40"));
    assert_true(accepts(g, "59.99"));
    assert_true(accepts(g, "60"));
    assert_false(accepts(g, "60.5"));
    assert_false(accepts(g, "-41"));
    cg_grammar_free(g);
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static void test_formats(void **state) {
    (void)state;
    cg_grammar *g = schema_grammar("{\"type\":\"string\",\"format\":\"date\"}");
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    char s[32];
    int n_ok = 0;
    for (int y = 2023; y <= 2024; y++)
        for (int mo = 0; mo <= 13; mo++)
            for (int d = 0; d <= 32; d++) {
                snprintf(s, sizeof s, "\"%04d-%02d-%02d\"", y, mo, d);
                int dim = mo >= 1 && mo <= 12 ? mdays[mo - 1] : 0;
                // Feb 29 is never generated (valid only in leap years): the grammar stays a subset
                bool valid = dim && d >= 1 && d <= dim;
                bool got = accepts(g, s);
                if (got && !valid) fail_msg("invalid date %s accepted", s);
                if (!got && valid) fail_msg("valid date %s rejected", s);
                n_ok += got;
                (void)leap;
            }
    assert_int_equal(n_ok, 2 * 365);
    cg_grammar_free(g);
    g = schema_grammar("{\"type\":\"string\",\"format\":\"date-time\"}");
    assert_true(accepts(g, "\"2024-12-31T23:59:59.123+09:00\""));
    assert_true(accepts(g, "\"2024-01-01T00:00:00Z\""));
    assert_false(accepts(g, "\"2024-01-01T24:00:00Z\""));
    assert_false(accepts(g, "\"2024-01-01T10:00:00\""));
    cg_grammar_free(g);
    g = schema_grammar("{\"type\":\"string\",\"format\":\"uuid\"}");
    assert_true(accepts(g, "\"123e4567-e89b-12d3-a456-426614174000\""));
    assert_false(accepts(g, "\"123e4567e89b-12d3-a456-426614174000\""));
    cg_grammar_free(g);
    // minLength/maxLength count code points (an escape is one)
    g = schema_grammar("{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}");
    assert_true(accepts(g, "\"한국\""));
    assert_true(accepts(g, "\"a\\n😀\""));
    assert_false(accepts(g, "\"한국어요\""));
    assert_false(accepts(g, "\"a\""));
    assert_false(accepts(g, "\"\\ud800\""));   // a lone surrogate escape is not a code point
    cg_grammar_free(g);
    // additionalProperties: extra keys never repeat a declared one
    g = schema_grammar("{\"properties\":{\"id\":{\"type\":\"integer\"}},\"additionalProperties\":true}");
    assert_true(accepts(g, "{\"id\": 1, \"i\": 2, \"idx\": \"y\", \"x\": null}"));
    assert_false(accepts(g, "{\"id\": 1, \"id\": \"x\"}"));
    assert_false(accepts(g, "{\"i\\u0064\": 1}"));   // escaped spelling of a declared key
    cg_grammar_free(g);
}

static void expect_err(const char *schema, cg_status want, const char *needle) {
    cg_err err = {0};
    cg_buf b;
    cg_buf_init(&b);
    cg_status st = cg_schema_to_gbnf(schema, strlen(schema), &b, &err);
    cg_buf_free(&b);
    if (st != want) fail_msg("%s: status %d (%s), want %d", schema, st, err.msg, want);
    if (!strstr(err.msg, needle)) fail_msg("%s: '%s' lacks '%s'", schema, err.msg, needle);
}

static void test_schema_errors(void **state) {
    (void)state;
    expect_err("{\"type\":\"string\",\"pattern\":\"^a\"}", CG_ERR_UNSUPPORTED, "keyword 'pattern' is not supported at '#'");
    expect_err("{\"properties\":{\"a\":{\"type\":\"string\",\"format\":\"email\"}}}", CG_ERR_UNSUPPORTED,
               "format 'email' is not supported at '/a'");
    expect_err("{\"$ref\":\"#/$defs/missing\"}", CG_ERR_NOT_FOUND, "does not resolve");
    expect_err("{\"type\":\"array\",\"uniqueItems\":true}", CG_ERR_UNSUPPORTED, "uniqueItems");
    expect_err("{\"type\":\"strin\"}", CG_ERR_UNSUPPORTED, "unknown type 'strin'");
    expect_err("{\"type\":", CG_ERR_FORMAT, "offset 8");
    expect_err("{\"type\":\"integer\",\"minimum\":5,\"maximum\":2}", CG_ERR_UNSUPPORTED, "admit no value");
}

// ---- generation ---------------------------------------------------------------------------------
typedef struct tvocab { cg_token_text *t; uint8_t *flags; int32_t n, eog; char store[16384]; } tvocab;

static void add_tok(tvocab *v, const char *s, size_t n) {
    static size_t used;
    if (v->n == 0) used = 0;
    memcpy(v->store + used, s, n);
    v->t[v->n] = (cg_token_text){v->store + used, n};
    used += n;
    v->n++;
}

// All printable ASCII, whitespace, JSON punctuation runs, words and digits, multi-byte characters
// whole and split into single bytes (so code points can span tokens), and one EOG token.
static void make_vocab(tvocab *v) {
    v->t = calloc(1024, sizeof *v->t);
    v->flags = calloc(1024, 1);
    v->n = 0;
    for (int c = 0x20; c < 0x7F; c++) { char ch = (char)c; add_tok(v, &ch, 1); }
    const char *multi[] = {
        "\n", "\t", "  ", "\n  ", "{\"", "\":", "\": ", "\",", "\", \"", "\"}", "}}", "]}", "[]", "{}", ", ", "true",
        "false", "null", "nul", "tr", "fa", "\\n", "\\\"", "\\u", "\\u00", "00", "12", "99", "2024", "-0", "-1", "0.",
        ".5", "e+", "E-", "1e", "name", "id", "value", "children", "x", "op", "key", "add", "celsius", "fahren",
        "heit", "active", "pend", "ing", "T1", "T2", ":00", ":59", "Z\"", "+09:00", "-12-31", "-02-", "-02-29",
        "-13-", "T24:", "e89b", "-4", "a456", "426614174000", "deadbeef", "\"\"", "한", "국어", "é", "😀", "\xed",
        "\x95", "\x9c", "\xea", "\xb0", "\x80", "\xf0\x9f", "\x98", "\xc3", "\xa9", "\xe2\x82", "\xac",
        "\xc0\xaf", "\xed\xa0\x80", "\xf5", "\xff", "\x01", "\x7f",
    };
    for (size_t i = 0; i < sizeof multi / sizeof *multi; i++) add_tok(v, multi[i], strlen(multi[i]));
    for (int i = 0; i < 100; i += 7) { char d[3] = {(char)('0' + i / 10), (char)('0' + i % 10), 0}; add_tok(v, d, 2); }
    v->eog = v->n;
    add_tok(v, "</s>", 4);
    v->flags[v->eog] = CG_GTOK_EOG;
}

// Adversarial logits: noise, plus on most steps a strong push towards a random token class, EOG
// (pushing to stop early), or long tokens.
static void adversarial_logits(float *l, const tvocab *v, cg_rng *r) {
    for (int32_t i = 0; i < v->n; i++) l[i] = (float)(cg_rng_uniform(r) * 6.0 - 3.0);
    double mode = cg_rng_uniform(r);
    if (mode < 0.2) l[v->eog] += 15.0f;
    else if (mode < 0.5) {
        for (int32_t i = 0; i < v->n; i++)
            if (v->t[i].n >= 3) l[i] += 4.0f;
    } else if (mode < 0.8) {
        int32_t pick = (int32_t)(cg_rng_next(r) % (uint64_t)v->n);
        l[pick] += 12.0f;
    }
}

#define N_GEN 200
#define MAX_TOKENS 3000

static void test_schema_generation(void **state) {
    (void)state;
    const char *src = getenv("CHINGU_SRC");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/schemas", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d) { print_message("no schema dir %s\n", dir); skip(); return; }
    const char *out_env = getenv("CG_SCHEMA_OUT");
    char *tmp = NULL;
    const char *out_dir = out_env;
    if (!out_dir) out_dir = tmp = cg_test_tmpdir();
    tvocab v;
    make_vocab(&v);
    cg_err err = {0};
    cg_grammar_vocab *gv;
    CG_ASSERT_OK(cg_grammar_vocab_new(v.t, v.flags, v.n, &gv, &err), &err);
    float *logits = malloc((size_t)v.n * sizeof *logits);
    uint8_t *mask = malloc((size_t)v.n);
    char names[64][256];
    int n_schemas = 0;
    for (struct dirent *e; (e = readdir(d)) && n_schemas < 64;) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) snprintf(names[n_schemas++], 256, "%s", e->d_name);
    }
    closedir(d);
    assert_int_equal(n_schemas, 20);
    size_t total_tokens = 0, longest = 0, total_gens = 0, n_dup = 0;
    for (int si = 0; si < n_schemas; si++) {
        char path[8192];
        if (snprintf(path, sizeof path, "%s/%s", dir, names[si]) >= (int)sizeof path) fail_msg("path too long");
        size_t n;
        char *schema = (char *)cg_test_read_path(path, &n);
        cg_buf gb;
        cg_buf_init(&gb);
        cg_status st = cg_schema_to_gbnf(schema, n, &gb, &err);
        if (st) fail_msg("%s: %s", names[si], err.msg);
        cg_grammar *g;
        st = cg_grammar_parse(gb.data, gb.len, NULL, &g, &err);
        if (st) fail_msg("%s: %s\n%s", names[si], err.msg, gb.data);
        char sub[8192];
        if (snprintf(sub, sizeof sub, "%s/%.*s", out_dir, (int)(strlen(names[si]) - 5), names[si]) >= (int)sizeof sub) fail_msg("path too long");
        mkdir(sub, 0755);
        for (int k = 0; k < N_GEN; k++) {
            cg_sampler_params sp;
            cg_sampler_params_default(&sp);
            sp.seed = (uint64_t)si * 1000 + (uint64_t)k;
            sp.temperature = 1.0f;
            sp.top_k = 0;
            sp.top_p = 1.0f;
            sp.min_p = 0;
            cg_sampler *s;
            CG_ASSERT_OK(cg_sampler_new(&sp, v.n, &s, &err), &err);
            cg_grammar_matcher *m;
            CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
            cg_rng r;
            cg_rng_seed(&r, sp.seed ^ 0xabcdef);
            cg_buf out;
            cg_buf_init(&out);
            bool done = false;
            int steps = 0;
            for (; steps < MAX_TOKENS && !done; steps++) {
                CG_ASSERT_OK(cg_grammar_matcher_mask(m, gv, mask, &err), &err);
                adversarial_logits(logits, &v, &r);
                int32_t t;
                st = cg_sampler_sample(s, logits, mask, &t, &err);
                if (st) fail_msg("%s #%d: %s after \"%.*s\"", names[si], k, err.msg, (int)out.len, out.data);
                CG_ASSERT_OK(cg_grammar_matcher_accept_token(m, gv, t, &err), &err);
                if (t == v.eog) done = true;
                else cg_buf_append(&out, v.t[t].p, v.t[t].n);
            }
            if (!done) fail_msg("%s #%d: no end within %d tokens: %.200s…", names[si], k, MAX_TOKENS, out.data);
            total_tokens += (size_t)steps;
            if ((size_t)steps > longest) longest = (size_t)steps;
            total_gens++;
            // our own reader must accept it as JSON too (the real check is ajv, in the integ test)
            cg_jval *root = NULL;
            st = cg_jval_parse(out.data, out.len, 0, &root, &err);
            // free-form keys (any object, extra properties) may repeat: JSON allows it, ajv sees the
            // last value, which matches the same schema as the first; our strict reader refuses it
            if (st && strstr(err.msg, "duplicate key")) { n_dup++; st = CG_OK; }
            if (st) fail_msg("%s #%d: output is not JSON (%s): %s", names[si], k, err.msg, out.data);
            cg_jval_unref(root);
            char fp[8300];
            if (snprintf(fp, sizeof fp, "%s/%03d.json", sub, k) >= (int)sizeof fp) fail_msg("path too long");
            FILE *f = fopen(fp, "wb");
            assert_non_null(f);
            fwrite(out.data, 1, out.len, f);
            fclose(f);
            cg_buf_free(&out);
            cg_grammar_matcher_free(m);
            cg_sampler_free(s);
        }
        cg_grammar_free(g);
        cg_buf_free(&gb);
        free(schema);
    }
    print_message("%zu generations over %d schemas: all ended with EOG; %.1f tokens on average, longest %zu "
                  "(budget %d); %zu with a repeated free-form key; outputs in %s\n",
                  total_gens, n_schemas, (double)total_tokens / (double)total_gens, longest, MAX_TOKENS, n_dup, out_dir);
    if (tmp) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) print_message("could not remove %s\n", tmp);
        free(tmp);
    }
    free(logits);
    free(mask);
    cg_grammar_vocab_free(gv);
    free(v.t);
    free(v.flags);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integer_ranges), cmocka_unit_test(test_formats), cmocka_unit_test(test_schema_errors),
        cmocka_unit_test(test_schema_generation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
