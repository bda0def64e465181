// test_template.c — the JSON value parser and the Jinja2 chat-template engine.
//
// The golden test renders every case of ../shared/testdata/templates (produced by Python jinja2
// 3.1 configured as transformers configures it) and compares byte for byte; the unit tests
// check hand-computed expectations (Python's own results for the same expressions).
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok/jval.h"
#include "tok/template.h"

// 2025-01-15 12:00:00, the fixed clock of the reference data (conversations.json "fixed_now").
#define FIXED_NOW 1736942400

// Cases that may fail, with the reason; must stay as short as possible (empty = done).
static const struct {
    const char *template_name, *conversation, *reason;
} expected_failures[] = {
    {NULL, NULL, NULL},
};

static bool is_expected_failure(const char *tname, const char *conv) {
    for (size_t i = 0; expected_failures[i].template_name; i++)
        if (strcmp(expected_failures[i].template_name, tname) == 0 && strcmp(expected_failures[i].conversation, conv) == 0)
            return true;
    return false;
}

static cg_jval *read_json(const char *path) {
    size_t n;
    unsigned char *b = cg_test_read_path(path, &n);
    cg_jval *v = NULL;
    cg_err err = {0};
    cg_status st = cg_jval_parse((const char *)b, n, 0, &v, &err);
    free(b);
    if (st) fail_msg("%s: %s", path, err.msg);
    return v;
}

static char *dump(const cg_jval *v) {
    cg_buf b;
    cg_buf_init(&b);
    cg_err err = {0};
    CG_ASSERT_OK(cg_jval_dump(v, NULL, &b, &err), &err);
    return b.data;
}

static const char *sget(const cg_jval *d, const char *k) {
    const cg_jval *v = cg_jval_dict_getn(d, k, strlen(k));
    return v && v->kind == CG_JV_STR ? v->u.s.p : NULL;
}

static void show_diff(const char *want, size_t wn, const char *got, size_t gn) {
    size_t i = 0;
    while (i < wn && i < gn && want[i] == got[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    fprintf(stderr, "    first difference at byte %zu\n    want: %.*s\n    got:  %.*s\n", i,
            (int)((wn - from) > 160 ? 160 : wn - from), want + from, (int)((gn - from) > 160 ? 160 : gn - from), got + from);
}

static void test_golden_templates(void **state) {
    (void)state;
    const char *td = cg_test_testdata_dir();
    char dir[1024], path[1200];
    if (!td) { skip(); return; }
    snprintf(dir, sizeof dir, "%s/templates", td);
    DIR *d = opendir(dir);
    if (!d) { skip(); return; }
    snprintf(path, sizeof path, "%s/conversations.json", dir);
    cg_jval *convs_file = read_json(path);
    const cg_jval *convs = cg_jval_dict_getn(convs_file, "conversations", 13);
    const cg_jval *sp = cg_jval_dict_getn(convs_file, "special_tokens", 14);
    assert_non_null(convs);
    assert_non_null(sp);
    cg_chat_tokens toks = {sget(sp, "bos_token"), sget(sp, "eos_token"), sget(sp, "unk_token"), sget(sp, "pad_token")};
    assert_string_equal(sget(convs_file, "fixed_now"), "2025-01-15T12:00:00");
    cg_tmpl_opts opts = {.has_now = true, .now = FIXED_NOW};
    int n_total = 0, n_same = 0, n_bad = 0, n_xfail = 0, n_files = 0;
    struct dirent *e;
    char **names = NULL;
    size_t n_names = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") || strcmp(e->d_name, "conversations.json") == 0) continue;
        names = realloc(names, (n_names + 1) * sizeof *names);
        names[n_names++] = strdup(e->d_name);
    }
    closedir(d);
    for (size_t f = 0; f < n_names; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        cg_jval *tf = read_json(path);
        n_files++;
        const cg_jval *src = cg_jval_dict_getn(tf, "template", 8), *cases = cg_jval_dict_getn(tf, "cases", 5);
        assert_non_null(src);
        assert_non_null(cases);
        for (size_t c = 0; c < cases->u.list.n; c++) {
            const cg_jval *cs = cases->u.list.items[c];
            const char *cname = sget(cs, "conversation"), *want = sget(cs, "output"), *want_err = sget(cs, "error");
            const cg_jval *conv = cg_jval_dict_getn(convs, cname, strlen(cname));
            assert_non_null(conv);
            const cg_jval *msgs = cg_jval_dict_getn(conv, "messages", 8), *tools = cg_jval_dict_getn(conv, "tools", 5);
            const cg_jval *agp = cg_jval_dict_getn(conv, "add_generation_prompt", 21);
            char *mj = dump(msgs), *tj = tools ? dump(tools) : NULL;
            cg_buf out;
            cg_buf_init(&out);
            cg_err err = {0};
            cg_status st = cg_chat_apply_template(src->u.s.p, src->u.s.n, mj, tj, agp && cg_jval_truthy(agp), &toks,
                                                  &opts, &out, &err);
            bool same;
            n_total++;
            if (want_err) {
                const char *msg = strstr(want_err, "raise_exception: ");
                msg = msg ? msg + 17 : want_err;
                same = st != CG_OK && strstr(err.msg, msg) != NULL;
                if (!same) fprintf(stderr, "  %s / %s: expected error '%s', got status %d '%s'\n", names[f], cname, msg, st, err.msg);
            } else {
                size_t wn = cg_jval_dict_getn(cs, "output", 6)->u.s.n;
                same = st == CG_OK && out.len == wn && memcmp(out.data ? out.data : "", want, wn) == 0;
                if (!same) {
                    fprintf(stderr, "  %s / %s: MISMATCH%s%s\n", names[f], cname, st ? ": " : "", st ? err.msg : "");
                    if (!st) show_diff(want, wn, out.data ? out.data : "", out.len);
                }
            }
            if (same) n_same++;
            else if (is_expected_failure(names[f], cname)) n_xfail++;
            else n_bad++;
            cg_buf_free(&out);
            free(mj);
            free(tj);
        }
        cg_jval_unref(tf);
        free(names[f]);
    }
    free(names);
    cg_jval_unref(convs_file);
    printf("templates: %d/%d cases identical (%d files, %d expected failures)\n", n_same, n_total, n_files, n_xfail);
    for (size_t i = 0; expected_failures[i].template_name; i++)
        printf("  expected failure: %s / %s: %s\n", expected_failures[i].template_name, expected_failures[i].conversation,
               expected_failures[i].reason);
    assert_true(n_files > 0);
    assert_int_equal(n_bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
