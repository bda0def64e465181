// test_quantize.c — the per-tensor type mixes (quant/mix.c) against llama-quantize's choices in
// ../shared/models/MANIFEST.json and against hand-computed rules.
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/mix.h"
#include "quant/quant.h"

static const char *const ARCHS[] = {"llama-spm", "llama3-bpe", "qwen2", "qwen3", "gemma3", "phi3"};
static const char *const MIXES[] = {"Q8_0",   "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K_M",
                                    "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K", "F16",  "BF16"};
#define N_ARCHS (sizeof ARCHS / sizeof ARCHS[0])
#define N_MIXES (sizeof MIXES / sizeof MIXES[0])

// ---- MANIFEST helpers ---------------------------------------------------------------------------

static json_t *load_manifest(void) {
    const char *md = cg_test_models_dir();
    if (!md) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/MANIFEST.json", md);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("MANIFEST.json: %s (line %d)", je.text, je.line);
    return j;
}

static json_t *manifest_file(json_t *man, const char *rel) {
    json_t *files = json_object_get(man, "files"), *f;
    size_t i;
    json_array_foreach(files, i, f) {
        if (!strcmp(json_string_value(json_object_get(f, "path")), rel)) return f;
    }
    fail_msg("MANIFEST has no entry for %s", rel);
    return NULL;
}

static uint32_t kv_u32(json_t *file, const char *key, uint32_t dflt) {
    json_t *v = json_object_get(json_object_get(file, "kv"), key);
    return v ? (uint32_t)json_integer_value(v) : dflt;
}

// The model facts and the tensor list of a MANIFEST entry, sorted in llama.cpp's output order.
typedef struct model_desc {
    char arch[64];
    cg_mix_hparams hp;
    cg_mix_tensor *t;
    size_t n;
} model_desc;

static int cmp_tensor(const void *a, const void *b) {
    return cg_mix_name_cmp(((const cg_mix_tensor *)a)->name, ((const cg_mix_tensor *)b)->name);
}

static void describe(json_t *file, model_desc *d) {
    json_t *kv = json_object_get(file, "kv");
    snprintf(d->arch, sizeof d->arch, "%s", json_string_value(json_object_get(kv, "general.architecture")));
    char k[128];
    d->hp.arch = d->arch;
    snprintf(k, sizeof k, "%s.block_count", d->arch);
    d->hp.n_layer = kv_u32(file, k, 0);
    snprintf(k, sizeof k, "%s.expert_count", d->arch);
    d->hp.n_expert = kv_u32(file, k, 0);
    snprintf(k, sizeof k, "%s.attention.head_count", d->arch);
    d->hp.n_head = kv_u32(file, k, 0);
    snprintf(k, sizeof k, "%s.attention.head_count_kv", d->arch);
    d->hp.n_head_kv = kv_u32(file, k, d->hp.n_head);
    json_t *ts = json_object_get(file, "tensors"), *t;
    d->n = json_array_size(ts);
    d->t = calloc(d->n, sizeof *d->t);
    size_t i;
    json_array_foreach(ts, i, t) {
        cg_mix_tensor *x = &d->t[i];
        x->name = json_string_value(json_object_get(t, "name"));
        x->type = (uint32_t)json_integer_value(json_object_get(t, "ggml_type_id"));
        json_t *ne = json_object_get(t, "ne");
        x->n_dims = (uint32_t)json_array_size(ne);
        for (int j = 0; j < 4; j++) x->ne[j] = j < (int)x->n_dims ? json_integer_value(json_array_get(ne, j)) : 1;
    }
    qsort(d->t, d->n, sizeof *d->t, cmp_tensor);
}

// ---- the mixes against llama-quantize -------------------------------------------------------

// Every tensor's type, and the tensor order, for 6 architectures x 12 mixes.
static void test_mix_matches_manifest(void **state) {
    (void)state;
    json_t *man = load_manifest();
    if (!man) { skip(); return; }
    size_t n_checked = 0, n_raised = 0;
    for (size_t a = 0; a < N_ARCHS; a++) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/random/rand-%s-F32.gguf", ARCHS[a]);
        model_desc d = {0};
        describe(manifest_file(man, rel), &d);
        uint32_t *got = calloc(d.n, sizeof *got);
        for (size_t m = 0; m < N_MIXES; m++) {
            const cg_ftype_info *fi = cg_ftype_find(MIXES[m]);
            assert_non_null(fi);
            cg_err err = {0};
            CG_ASSERT_OK(cg_mix_choose(&d.hp, fi->ftype, false, d.t, d.n, got, &err), &err);
            snprintf(rel, sizeof rel, "models/random/rand-%s-%s.gguf", ARCHS[a], MIXES[m]);
            json_t *ref = manifest_file(man, rel);
            json_t *rts = json_object_get(ref, "tensors");
            assert_int_equal(json_array_size(rts), d.n);
            assert_int_equal(kv_u32(ref, "general.file_type", 999), fi->ftype);
            for (size_t i = 0; i < d.n; i++) {
                json_t *rt = json_array_get(rts, i);
                const char *rname = json_string_value(json_object_get(rt, "name"));
                uint32_t rtype = (uint32_t)json_integer_value(json_object_get(rt, "ggml_type_id"));
                if (strcmp(rname, d.t[i].name))
                    fail_msg("%s: tensor %zu is '%s', llama-quantize wrote '%s' there", rel, i, d.t[i].name, rname);
                if (got[i] != rtype)
                    fail_msg("%s: '%s' gets %s, llama-quantize chose %s", rel, rname, cg_qtype_name(got[i]),
                             cg_qtype_name(rtype));
                n_checked++;
                if (got[i] != fi->base && cg_mix_is_quantizable(&d.t[i])) n_raised++;
            }
        }
        free(got);
        free(d.t);
    }
    printf("mix: %zu tensor types in %zu files match llama-quantize (%zu differ from the mix's base type)\n",
           n_checked, N_ARCHS * N_MIXES, n_raised);
    json_decref(man);
}

// stories260K: rows of 64 and 172 elements force the block-size fallbacks in the K mixes.
static void test_mix_fallback_matches_manifest(void **state) {
    (void)state;
    json_t *man = load_manifest();
    if (!man) { skip(); return; }
    static const char *const K_MIXES[] = {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K"};
    model_desc d = {0};
    describe(manifest_file(man, "models/real/stories260K.gguf"), &d);
    uint32_t *got = calloc(d.n, sizeof *got);
    size_t n_checked = 0;
    for (size_t m = 0; m < sizeof K_MIXES / sizeof K_MIXES[0]; m++) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/real/stories260K-%s.gguf", K_MIXES[m]);
        cg_err err = {0};
        CG_ASSERT_OK(cg_mix_choose(&d.hp, cg_ftype_find(K_MIXES[m])->ftype, false, d.t, d.n, got, &err), &err);
        json_t *rts = json_object_get(manifest_file(man, rel), "tensors");
        for (size_t i = 0; i < d.n; i++) {
            json_t *rt = json_array_get(rts, i);
            assert_string_equal(json_string_value(json_object_get(rt, "name")), d.t[i].name);
            uint32_t rtype = (uint32_t)json_integer_value(json_object_get(rt, "ggml_type_id"));
            if (got[i] != rtype)
                fail_msg("%s: '%s' gets %s, llama-quantize chose %s", rel, d.t[i].name, cg_qtype_name(got[i]),
                         cg_qtype_name(rtype));
            n_checked++;
        }
    }
    // The legacy mixes have no fallback for rows of 172: llama-quantize refuses, and so do we.
    cg_err err = {0};
    assert_int_equal(cg_mix_choose(&d.hp, CG_FTYPE_MOSTLY_Q8_0, false, d.t, d.n, got, &err), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "ffn_down"));
    assert_non_null(strstr(err.msg, "172"));
    printf("fallback: %zu stories260K tensor types match; Q8_0 refused: %s\n", n_checked, err.msg);
    free(got);
    free(d.t);
    json_decref(man);
}

// ---- hand-computed rules --------------------------------------------------------------------

// A synthetic llama model with n_layer layers (attn_v, attn_k, attn_output, ffn_down, ffn_up per
// layer, untied output), columns `cols`.
typedef struct synth {
    char names[6 * 128 + 4][48];
    cg_mix_tensor t[6 * 128 + 4];
    size_t n;
} synth;

static void synth_add(synth *s, const char *name, int64_t ne0, int64_t ne1) {
    snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
    s->t[s->n] = (cg_mix_tensor){.name = s->names[s->n], .n_dims = 2, .ne = {ne0, ne1, 1, 1}, .type = CG_QTYPE_F32};
    s->n++;
}

static synth *synth_model(int n_layer, int64_t cols) {
    synth *s = calloc(1, sizeof *s);
    synth_add(s, "token_embd.weight", cols, 1000);
    synth_add(s, "output.weight", cols, 1000);
    s->t[s->n] = (cg_mix_tensor){.name = "output_norm.weight", .n_dims = 1, .ne = {cols, 1, 1, 1}};
    s->n++;
    static const char *const roles[] = {"attn_k", "attn_output", "attn_v", "ffn_down", "ffn_up"};
    for (int l = 0; l < n_layer; l++)
        for (size_t r = 0; r < 5; r++) {
            char nm[48];
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, roles[r]);
            synth_add(s, nm, cols, cols);
        }
    qsort(s->t, s->n, sizeof s->t[0], cmp_tensor);
    return s;
}

static uint32_t type_of(const synth *s, const uint32_t *types, const char *name) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return types[i];
    fail_msg("no tensor %s", name);
    return 0;
}

// use_more_bits(i, 32) is true for layers 0-3, 6, 9, ..., 27 (every third from n/8) and 28-31.
static void test_q4_k_m_more_bits_32_layers(void **state) {
    (void)state;
    synth *s = synth_model(32, 4096);
    uint32_t types[sizeof s->t / sizeof s->t[0]];
    cg_mix_hparams hp = {.arch = "llama", .n_layer = 32, .n_head = 32, .n_head_kv = 8};
    cg_err err = {0};
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q4_K_M, false, s->t, s->n, types, &err), &err);
    static const int more[] = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
    for (int l = 0; l < 32; l++) {
        bool hi = false;
        for (size_t k = 0; k < sizeof more / sizeof more[0]; k++) hi |= more[k] == l;
        char nm[48];
        snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", l);
        assert_int_equal(type_of(s, types, nm), hi ? CG_QTYPE_Q6_K : CG_QTYPE_Q4_K);
        snprintf(nm, sizeof nm, "blk.%d.ffn_down.weight", l);
        assert_int_equal(type_of(s, types, nm), hi ? CG_QTYPE_Q6_K : CG_QTYPE_Q4_K);
        snprintf(nm, sizeof nm, "blk.%d.ffn_up.weight", l);
        assert_int_equal(type_of(s, types, nm), CG_QTYPE_Q4_K);
    }
    assert_int_equal(type_of(s, types, "output.weight"), CG_QTYPE_Q6_K);
    assert_int_equal(type_of(s, types, "token_embd.weight"), CG_QTYPE_Q4_K);   // untied
    assert_int_equal(type_of(s, types, "output_norm.weight"), CG_QTYPE_F32);

    // Q3_K_M at 32 layers: attn_v Q5_K for the first two, then Q4_K; ffn_down Q5_K for layers
    // < 32/16 = 2, then Q4_K; Q3_K_S changes nothing but the output matrix.
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q3_K_M, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "blk.1.attn_v.weight"), CG_QTYPE_Q5_K);
    assert_int_equal(type_of(s, types, "blk.2.attn_v.weight"), CG_QTYPE_Q4_K);
    assert_int_equal(type_of(s, types, "blk.1.ffn_down.weight"), CG_QTYPE_Q5_K);
    assert_int_equal(type_of(s, types, "blk.2.ffn_down.weight"), CG_QTYPE_Q4_K);
    assert_int_equal(type_of(s, types, "blk.5.attn_output.weight"), CG_QTYPE_Q4_K);
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q3_K_S, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "blk.0.attn_v.weight"), CG_QTYPE_Q3_K);
    assert_int_equal(type_of(s, types, "blk.0.ffn_down.weight"), CG_QTYPE_Q3_K);
    assert_int_equal(type_of(s, types, "output.weight"), CG_QTYPE_Q6_K);
    // Q4_K_S: attn_v Q5_K for the first 4, ffn_down Q5_K below 32/8 = 4.
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q4_K_S, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "blk.3.attn_v.weight"), CG_QTYPE_Q5_K);
    assert_int_equal(type_of(s, types, "blk.4.attn_v.weight"), CG_QTYPE_Q4_K);
    assert_int_equal(type_of(s, types, "blk.3.ffn_down.weight"), CG_QTYPE_Q5_K);
    assert_int_equal(type_of(s, types, "blk.4.ffn_down.weight"), CG_QTYPE_Q4_K);
    // Q8_0 keeps the output matrix at Q8_0; F16 has no exceptions at all.
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q8_0, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "output.weight"), CG_QTYPE_Q8_0);
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_F16, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "output.weight"), CG_QTYPE_F16);
    assert_int_equal(type_of(s, types, "output_norm.weight"), CG_QTYPE_F32);
    free(s);
}

// 70B (llama, 80 layers, GQA): attn_v Q3_K/Q4_K become Q5_K. MoE with 8 experts: attn_v and
// attn_k Q8_0, attn_output Q5_K. Q2_K with n_head / n_head_kv >= 4: attn_v Q4_K.
static void test_special_models(void **state) {
    (void)state;
    synth *s = synth_model(80, 8192);
    uint32_t types[sizeof s->t / sizeof s->t[0]];
    cg_err err = {0};
    cg_mix_hparams hp = {.arch = "llama", .n_layer = 80, .n_head = 64, .n_head_kv = 8};
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q3_K_S, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "blk.40.attn_v.weight"), CG_QTYPE_Q5_K);
    assert_int_equal(type_of(s, types, "blk.40.attn_k.weight"), CG_QTYPE_Q3_K);
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q2_K, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "blk.40.attn_v.weight"), CG_QTYPE_Q5_K);   // Q4_K (gqa 8), then 70B
    hp.n_head_kv = 64;   // no GQA: the 65B model, no 70B rule
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q3_K_S, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "blk.40.attn_v.weight"), CG_QTYPE_Q3_K);
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q2_K, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "blk.40.attn_v.weight"), CG_QTYPE_Q3_K);

    hp = (cg_mix_hparams){.arch = "llama", .n_layer = 80, .n_head = 64, .n_head_kv = 64, .n_expert = 8};
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q4_K_M, false, s->t, s->n, types, &err), &err);
    assert_int_equal(type_of(s, types, "blk.3.attn_v.weight"), CG_QTYPE_Q8_0);
    assert_int_equal(type_of(s, types, "blk.3.attn_k.weight"), CG_QTYPE_Q8_0);
    assert_int_equal(type_of(s, types, "blk.3.attn_output.weight"), CG_QTYPE_Q5_K);
    // MoE: per-layer rules read the layer from the name (layer 79 >= 7*80/8: more bits).
    assert_int_equal(type_of(s, types, "blk.79.ffn_down.weight"), CG_QTYPE_Q6_K);
    assert_int_equal(type_of(s, types, "blk.40.ffn_down.weight"), CG_QTYPE_Q4_K);
    // ... and reject an expert tensor outside "blk.N." or beyond n_layer.
    cg_mix_tensor bad = {.name = "blk.80.ffn_down_exps.weight", .n_dims = 3, .ne = {8192, 8192, 8, 1}};
    uint32_t t1;
    assert_int_equal(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q4_K_M, false, &bad, 1, &t1, &err), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "blk.80.ffn_down_exps.weight"));
    free(s);
}

// Rows that do not fit the block size: K -> legacy 32-blocks -> F16; legacy mixes: an error.
static void test_fallback_and_pure(void **state) {
    (void)state;
    cg_mix_hparams hp = {.arch = "qwen2", .n_layer = 1, .n_head = 4, .n_head_kv = 4};
    cg_mix_tensor t[] = {
        {.name = "blk.0.attn_q.weight", .n_dims = 2, .ne = {64, 64, 1, 1}},    // 64: Q4_K -> Q5_0
        {.name = "blk.0.attn_v.weight", .n_dims = 2, .ne = {100, 64, 1, 1}},   // 100: -> F16
        {.name = "blk.0.ffn_up.weight", .n_dims = 2, .ne = {256, 1, 1, 1}},    // one row: 1-D for ggml
        {.name = "blk.0.ffn_gate_inp.weight", .n_dims = 2, .ne = {256, 8, 1, 1}},   // router: kept
        {.name = "blk.0.attn_q.bias", .n_dims = 2, .ne = {256, 8, 1, 1}},      // not a weight
        {.name = "token_embd.weight", .n_dims = 2, .ne = {256, 100, 1, 1}},    // tied: the output rule
    };
    size_t n = sizeof t / sizeof t[0];
    uint32_t ty[6];
    cg_err err = {0};
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q4_K_S, false, t, n, ty, &err), &err);
    assert_int_equal(ty[0], CG_QTYPE_Q5_0);
    assert_int_equal(ty[1], CG_QTYPE_F16);   // attn_v: Q5_K (first four) -> Q5_1 -> F16
    assert_int_equal(ty[2], CG_QTYPE_F32);
    assert_int_equal(ty[3], CG_QTYPE_F32);
    assert_int_equal(ty[4], CG_QTYPE_F32);
    assert_int_equal(ty[5], CG_QTYPE_Q6_K);
    // --pure: the base type everywhere, fallback still applies.
    CG_ASSERT_OK(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q4_K_S, true, t, n, ty, &err), &err);
    assert_int_equal(ty[0], CG_QTYPE_Q5_0);
    assert_int_equal(ty[1], CG_QTYPE_F16);
    assert_int_equal(ty[5], CG_QTYPE_Q4_K);
    // A legacy type has no fallback.
    assert_int_equal(cg_mix_choose(&hp, CG_FTYPE_MOSTLY_Q5_1, false, t, n, ty, &err), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "blk.0.attn_v.weight"));
    assert_non_null(strstr(err.msg, "100"));
    assert_int_equal(cg_mix_choose(&hp, (cg_ftype)4, false, t, n, ty, &err), CG_ERR_INVALID);
}

static void test_names_and_order(void **state) {
    (void)state;
    assert_int_equal(cg_ftype_find("q4_k_m")->ftype, CG_FTYPE_MOSTLY_Q4_K_M);
    assert_int_equal(cg_ftype_find("Q4_K")->ftype, CG_FTYPE_MOSTLY_Q4_K_M);
    assert_int_equal(cg_ftype_find("bf16")->base, CG_QTYPE_BF16);
    assert_null(cg_ftype_find("Q4_2"));
    assert_null(cg_ftype_find("IQ2_XXS"));
    char list[512];
    cg_ftype_list(list, sizeof list);
    assert_string_equal(list, "Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, Q8_0, "
                              "Q4_0, Q4_1, Q5_0, Q5_1, F16, BF16, F32");
    assert_int_equal(cg_ftype_count(), 17);
    // Non-layer tensors first (by name), then by layer number, not by string.
    assert_true(cg_mix_name_cmp("token_embd.weight", "blk.0.attn_q.weight") < 0);
    assert_true(cg_mix_name_cmp("blk.2.ffn_up.weight", "blk.10.attn_q.weight") < 0);
    assert_true(cg_mix_name_cmp("blk.10.attn_k.weight", "blk.10.attn_q.weight") < 0);
    assert_true(cg_mix_name_cmp("output.weight", "output_norm.weight") < 0);
    assert_int_equal(cg_mix_name_cmp("a", "a"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mix_matches_manifest),
        cmocka_unit_test(test_mix_fallback_matches_manifest),
        cmocka_unit_test(test_q4_k_m_more_bits_32_layers),
        cmocka_unit_test(test_special_models),
        cmocka_unit_test(test_fallback_and_pure),
        cmocka_unit_test(test_names_and_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
