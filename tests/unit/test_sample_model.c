// test_sample_model.c — schema-constrained generation with a real random-weight model (default
// rand-qwen2-F32, from ../shared/models/random; CG_MODEL_NAME picks another, e.g.
// rand-llama-spm-F32): its logits are not trained, hence adversarial for constraints.
// CG_MODEL_GENS seeded generations (temperature 1) per schema in tests/schemas/ (default 2: the
// debug build's scalar forward pass is slow; the release proof run uses 200), each under a token
// budget through cg_sample_seq (the production path): CG_MODEL_MAX_TOKENS when set, otherwise the
// schema's shortest sentence in bytes + 24, so closing mode (setup.h) is exercised. Every
// generation must end within its budget (EOG, or complete in closing mode) and parse as JSON.
// Outputs go to $CG_SCHEMA_MODEL_OUT (or a temp dir) for the ajv check in tests/integ/schema_ajv.sh.
// Skipped when the model is absent.
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/session.h"
#include "model/model.h"
#include "sample/grammar.h"
#include "sample/sampler.h"
#include "sample/schema.h"
#include "sample/setup.h"
#include "tok/jval.h"
#include "tok/tok.h"

static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

static void test_model_generation(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    if (!md) { skip(); return; }
    const char *model = getenv("CG_MODEL_NAME") ? getenv("CG_MODEL_NAME") : "rand-qwen2-F32";
    char path[4096];
    snprintf(path, sizeof path, "%s/random/%s.gguf", md, model);
    FILE *f = fopen(path, "rb");
    if (!f) { skip(); return; }
    fclose(f);
    cg_err err = {0};
    cg_session_params sp = {.n_ctx = 4096, .kv_type = CG_KV_F32, .n_threads = 1, .n_batch = 64};
    cg_session *ses;
    CG_ASSERT_OK(cg_session_open(path, &sp, &ses, &err), &err);
    const cg_vocab *voc = cg_session_vocab(ses);
    int32_t n_vocab = (int32_t)cg_model_hparams(cg_session_model(ses))->n_vocab;
    cg_sample_vocab sv;
    CG_ASSERT_OK(cg_sample_vocab_init(&sv, voc, n_vocab, true, &err), &err);
    int32_t bos = cg_vocab_special(voc, CG_SPECIAL_BOS);
    if (bos < 0) bos = 0;

    const char *src = getenv("CHINGU_SRC");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/schemas", src ? src : ".");
    const char *out_env = getenv("CG_SCHEMA_MODEL_OUT");
    char *tmp = NULL;
    const char *out_dir = out_env ? out_env : (tmp = cg_test_tmpdir());
    const char *ng = getenv("CG_MODEL_GENS");
    int n_gen = ng ? atoi(ng) : 2;
    const char *mt = getenv("CG_MODEL_MAX_TOKENS");
    long fixed_budget = mt ? atol(mt) : 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    char names[64][256];
    int n_schemas = 0;
    for (struct dirent *e; (e = readdir(d)) && n_schemas < 64;) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) snprintf(names[n_schemas++], 256, "%s", e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n_schemas, sizeof names[0], cmp_name);
    size_t total = 0, longest = 0, gens = 0, n_dup = 0, n_eog = 0, n_full = 0, n_closed = 0, n_cut = 0;
    for (int si = 0; si < n_schemas; si++) {
        char sp_path[8192];
        if (snprintf(sp_path, sizeof sp_path, "%s/%s", dir, names[si]) >= (int)sizeof sp_path) fail_msg("path too long");
        size_t n;
        char *schema = (char *)cg_test_read_path(sp_path, &n);
        cg_grammar *g;
        CG_ASSERT_OK(cg_sample_grammar_build(CG_SAMPLE_GRAMMAR_JSON_SCHEMA, schema, n, &g, &err), &err);
        char sub[8192];
        if (snprintf(sub, sizeof sub, "%s/%.*s", out_dir, (int)(strlen(names[si]) - 5), names[si]) >= (int)sizeof sub) fail_msg("path too long");
        mkdir(sub, 0755);
        cg_grammar_matcher *m0;
        CG_ASSERT_OK(cg_grammar_matcher_new(g, &m0, &err), &err);
        uint32_t d0 = cg_grammar_matcher_distance(m0);
        cg_grammar_matcher_free(m0);
        long budget = fixed_budget > 0 ? fixed_budget : (long)d0 + 24;
        if ((long)d0 > budget) fail_msg("%s: the shortest sentence has %u bytes, more than the budget %ld", names[si], d0, budget);
        for (int k = 0; k < n_gen; k++) {
            cg_sampler_params p;
            cg_sampler_params_default(&p);
            p.seed = 7000 + (uint64_t)si * 1000 + (uint64_t)k;
            p.temperature = 1.0f;
            p.top_k = 0;
            p.top_p = 1.0f;
            p.min_p = 0;
            cg_sample_seq q;
            CG_ASSERT_OK(cg_sample_seq_init(&q, &p, g, &sv, &err), &err);
            cg_sample_seq_set_budget(&q, budget, CG_SAMPLE_BUDGET_MARGIN);
            cg_session_rewind(ses, 0);
            const float *logits;
            CG_ASSERT_OK(cg_session_feed(ses, &bos, 1, &logits, &err), &err);
            cg_buf out;
            cg_buf_init(&out);
            bool done = false, eog = false;
            long steps = 0;
            while (steps < budget && !done) {
                int32_t t;
                cg_status st = cg_sample_seq_next(&q, logits, &t, &err);
                if (st) fail_msg("%s #%d: step %ld: %s (so far: %.200s)", names[si], k, steps, err.msg, out.data);
                steps++;
                if (cg_vocab_is_eog(voc, t)) { done = eog = true; break; }
                cg_buf_append(&out, sv.pieces[t].p, sv.pieces[t].n);
                if (cg_sample_seq_must_end(&q)) { done = true; break; }
                CG_ASSERT_OK(cg_session_feed(ses, &t, 1, &logits, &err), &err);
            }
            if (!done) fail_msg("%s #%d: no end within %ld tokens: %.200s", names[si], k, budget, out.data);
            total += (size_t)steps;
            if ((size_t)steps > longest) longest = (size_t)steps;
            gens++;
            n_eog += eog;
            n_full += !eog && cg_grammar_matcher_must_end(q.gm);    // the grammar allows nothing more
            n_closed += !eog && !cg_grammar_matcher_must_end(q.gm); // complete, ended by closing mode
            n_cut += q.n_cut > 0;
            cg_jval *root = NULL;
            cg_status st = cg_jval_parse(out.data, out.len, 0, &root, &err);
            if (st && strstr(err.msg, "duplicate key")) { n_dup++; st = CG_OK; }
            if (st) fail_msg("%s #%d: not JSON (%s): %s", names[si], k, err.msg, out.data);
            cg_jval_unref(root);
            char fp[8300];
            if (snprintf(fp, sizeof fp, "%s/%03d.json", sub, k) >= (int)sizeof fp) fail_msg("path too long");
            FILE *fo = fopen(fp, "wb");
            assert_non_null(fo);
            fwrite(out.data, 1, out.len, fo);
            fclose(fo);
            cg_buf_free(&out);
            cg_sample_seq_free(&q);
        }
        cg_grammar_free(g);
        free(schema);
    }
    print_message("%s (vocab %d): %zu generations over %d schemas, budget %s tokens: all ended within it as "
                  "JSON — %zu by EOG, %zu where the grammar allowed nothing more, %zu completed in closing mode; "
                  "%zu had masks cut by the budget; %.1f tokens on average, longest %zu; %zu with a repeated "
                  "free-form key; outputs in %s\n",
                  model, n_vocab, gens, n_schemas, fixed_budget > 0 ? mt : "shortest+24", n_eog, n_full, n_closed, n_cut,
                  (double)total / (double)(gens ? gens : 1), longest, n_dup, out_dir);
    if (tmp) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) print_message("could not remove %s\n", tmp);
        free(tmp);
    }
    cg_sample_vocab_free(&sv);
    cg_session_free(ses);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_model_generation)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
