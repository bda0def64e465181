// test_sample_model.c — schema-constrained generation with a real random-weight model (rand-qwen2,
// from ../shared/models/random): its logits are not trained, hence adversarial for constraints.
// CG_MODEL_GENS seeded generations per schema in tests/schemas/ (default 2: the scalar forward pass
// of a debug build makes 200 per schema take hours; run CG_MODEL_GENS=200 on a release build);
// every one must end with EOG within the budget and parse as JSON. Outputs go to $CG_SCHEMA_MODEL_OUT (or a temp dir) for the ajv check in
// tests/integ/schema_ajv.sh. Skipped when the model is absent.
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/session.h"
#include "sample/grammar.h"
#include "sample/sampler.h"
#include "sample/schema.h"
#include "tok/jval.h"
#include "tok/tok.h"

#define MAX_TOKENS 2000

static void test_model_generation(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    if (!md) { skip(); return; }
    char path[4096];
    snprintf(path, sizeof path, "%s/random/rand-qwen2-F32.gguf", md);
    FILE *f = fopen(path, "rb");
    if (!f) { skip(); return; }
    fclose(f);
    cg_err err = {0};
    cg_session_params sp = {.n_ctx = 4096, .kv_type = CG_KV_F32, .n_threads = 1, .n_batch = 64};
    cg_session *ses;
    CG_ASSERT_OK(cg_session_open(path, &sp, &ses, &err), &err);
    const cg_vocab *voc = cg_session_vocab(ses);
    int32_t n_vocab = (int32_t)cg_vocab_n_tokens(voc);
    cg_token_text *texts = calloc((size_t)n_vocab, sizeof *texts);
    uint8_t *flags = calloc((size_t)n_vocab, 1);
    for (int32_t i = 0; i < n_vocab; i++) {
        if (cg_vocab_is_eog(voc, i)) flags[i] = CG_GTOK_EOG;
        else if (cg_vocab_token_attr(voc, i) & (CG_TOK_ATTR_CONTROL | CG_TOK_ATTR_UNKNOWN | CG_TOK_ATTR_UNUSED))
            flags[i] = CG_GTOK_CONTROL;
        CG_ASSERT_OK(cg_token_to_piece(voc, i, 0, false, &texts[i].p, &texts[i].n, &err), &err);
    }
    cg_grammar_vocab *gv;
    CG_ASSERT_OK(cg_grammar_vocab_new(texts, flags, n_vocab, &gv, &err), &err);
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
    DIR *d = opendir(dir);
    assert_non_null(d);
    char names[64][256];
    int n_schemas = 0;
    for (struct dirent *e; (e = readdir(d)) && n_schemas < 64;) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) snprintf(names[n_schemas++], 256, "%s", e->d_name);
    }
    closedir(d);
    uint8_t *mask = malloc((size_t)n_vocab);
    size_t total = 0, longest = 0, gens = 0, n_dup = 0;
    for (int si = 0; si < n_schemas; si++) {
        char sp_path[8192];
        if (snprintf(sp_path, sizeof sp_path, "%s/%s", dir, names[si]) >= (int)sizeof sp_path) fail_msg("path too long");
        size_t n;
        char *schema = (char *)cg_test_read_path(sp_path, &n);
        cg_buf gb;
        cg_buf_init(&gb);
        CG_ASSERT_OK(cg_schema_to_gbnf(schema, n, &gb, &err), &err);
        cg_grammar *g;
        CG_ASSERT_OK(cg_grammar_parse(gb.data, gb.len, NULL, &g, &err), &err);
        char sub[8192];
        if (snprintf(sub, sizeof sub, "%s/%.*s", out_dir, (int)(strlen(names[si]) - 5), names[si]) >= (int)sizeof sub) fail_msg("path too long");
        mkdir(sub, 0755);
        for (int k = 0; k < n_gen; k++) {
            cg_sampler_params p;
            cg_sampler_params_default(&p);
            p.seed = 7000 + (uint64_t)si * 1000 + (uint64_t)k;
            p.temperature = 1.0f;
            p.top_k = 0;
            p.top_p = 1.0f;
            p.min_p = 0;
            cg_sampler *s;
            CG_ASSERT_OK(cg_sampler_new(&p, n_vocab, &s, &err), &err);
            cg_grammar_matcher *m;
            CG_ASSERT_OK(cg_grammar_matcher_new(g, &m, &err), &err);
            cg_session_rewind(ses, 0);
            const float *logits;
            CG_ASSERT_OK(cg_session_feed(ses, &bos, 1, &logits, &err), &err);
            cg_buf out;
            cg_buf_init(&out);
            bool done = false;
            int steps = 0;
            for (; steps < MAX_TOKENS && !done; steps++) {
                CG_ASSERT_OK(cg_grammar_matcher_mask(m, gv, mask, &err), &err);
                int32_t t;
                CG_ASSERT_OK(cg_sampler_sample(s, logits, mask, &t, &err), &err);
                CG_ASSERT_OK(cg_grammar_matcher_accept_token(m, gv, t, &err), &err);
                if (flags[t] & CG_GTOK_EOG) { done = true; break; }
                cg_buf_append(&out, texts[t].p, texts[t].n);
                CG_ASSERT_OK(cg_session_feed(ses, &t, 1, &logits, &err), &err);
            }
            if (!done) fail_msg("%s #%d: no end within %d tokens: %.200s", names[si], k, MAX_TOKENS, out.data);
            total += (size_t)steps;
            if ((size_t)steps > longest) longest = (size_t)steps;
            gens++;
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
            cg_grammar_matcher_free(m);
            cg_sampler_free(s);
        }
        cg_grammar_free(g);
        cg_buf_free(&gb);
        free(schema);
    }
    print_message("rand-qwen2 (vocab %d): %zu generations over %d schemas all ended with EOG; %.1f tokens on "
                  "average, longest %zu (budget %d); %zu with a repeated free-form key; outputs in %s\n",
                  n_vocab, gens, n_schemas, (double)total / (double)(gens ? gens : 1), longest, MAX_TOKENS, n_dup,
                  out_dir);
    if (tmp) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) print_message("could not remove %s\n", tmp);
        free(tmp);
    }
    free(mask);
    free(texts);
    free(flags);
    cg_grammar_vocab_free(gv);
    cg_session_free(ses);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_model_generation)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
