// test_quantize.c — the per-tensor type mixes (quant/mix.c) against llama-quantize's choices in
// ../shared/models/MANIFEST.json and against hand-computed rules.
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "model/quantize.h"
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

// ---- whole files against llama-quantize's ------------------------------------------------------

static bool exact_type(uint32_t t) {
    return t == CG_QTYPE_F32 || t == CG_QTYPE_F16 || t == CG_QTYPE_BF16 || t == CG_QTYPE_Q8_0 || t == CG_QTYPE_Q4_0 ||
           t == CG_QTYPE_Q4_1 || t == CG_QTYPE_Q5_0 || t == CG_QTYPE_Q5_1;
}

// True when chingu can write every type `mix` uses and read it back (the quantizers of
// src/quant); false makes the file tests skip instead of failing for want of a format.
static bool formats_available(void) {
    static const cg_qtype need[] = {CG_QTYPE_F16, CG_QTYPE_BF16, CG_QTYPE_Q8_0, CG_QTYPE_Q4_0, CG_QTYPE_Q4_1,
                                    CG_QTYPE_Q5_0, CG_QTYPE_Q5_1, CG_QTYPE_Q2_K, CG_QTYPE_Q3_K, CG_QTYPE_Q4_K,
                                    CG_QTYPE_Q5_K, CG_QTYPE_Q6_K};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        const cg_qtype_traits *tr = cg_qtype_get(need[i]);
        if (!tr->from_f32 || !tr->to_f32) {
            printf("quantizer for %s not built yet: file comparisons skipped\n", tr->name);
            return false;
        }
    }
    return true;
}

static double rmse_vs(const cg_gguf_tensor *q, const float *orig, float *buf) {
    const cg_qtype_traits *tr = cg_qtype_get(q->type);
    uint64_t row;
    cg_err err = {0};
    CG_ASSERT_OK(cg_qtype_row_size(q->type, (uint64_t)q->ne[0], &row, &err), &err);
    int64_t n_rows = q->n_elems / q->ne[0];
    double sum = 0;
    for (int64_t r = 0; r < n_rows; r++) {
        tr->to_f32((const unsigned char *)q->data + r * row, buf, q->ne[0]);
        for (int64_t k = 0; k < q->ne[0]; k++) {
            double d = (double)buf[k] - (double)orig[r * q->ne[0] + k];
            sum += d * d;
        }
    }
    return sqrt(sum / (double)q->n_elems);
}

typedef struct cmp_stats {
    size_t n_tensors, n_identical, n_kquant, n_kquant_identical;
    double worst_ratio;   // max over K-quant tensors that differ: our RMSE / the reference's
    bool file_identical;
} cmp_stats;

// Ours vs the reference file: metadata (keys, types, values, order), layout (tensor names, order,
// types, shapes, offsets), data (exact types byte-identical; K-quants identical or no worse).
static void compare_files(const char *ours_path, const char *ref_path, const char *f32_path, cmp_stats *cs) {
    cg_err err = {0};
    cg_gguf *ours, *ref, *orig;
    CG_ASSERT_OK(cg_gguf_open(ours_path, &ours, &err), &err);
    CG_ASSERT_OK(cg_gguf_open(ref_path, &ref, &err), &err);
    CG_ASSERT_OK(cg_gguf_open(f32_path, &orig, &err), &err);
    assert_int_equal(cg_gguf_n_kv(ours), cg_gguf_n_kv(ref));
    for (size_t i = 0; i < cg_gguf_n_kv(ref); i++) {
        const cg_gguf_kv *a = cg_gguf_kv_at(ours, i), *b = cg_gguf_kv_at(ref, i);
        if (strcmp(a->key, b->key)) fail_msg("%s: kv %zu is '%s', reference has '%s'", ref_path, i, a->key, b->key);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->elem_type, b->elem_type);
        assert_int_equal(a->n, b->n);
        assert_int_equal(a->raw_size, b->raw_size);
        if (memcmp(a->raw, b->raw, (size_t)a->raw_size)) fail_msg("%s: value of '%s' differs", ref_path, a->key);
    }
    assert_int_equal(cg_gguf_data_offset(ours), cg_gguf_data_offset(ref));
    assert_int_equal(cg_gguf_n_tensors(ours), cg_gguf_n_tensors(ref));
    float *buf = malloc(1 << 20);
    for (size_t i = 0; i < cg_gguf_n_tensors(ref); i++) {
        const cg_gguf_tensor *a = cg_gguf_tensor_at(ours, i), *b = cg_gguf_tensor_at(ref, i);
        if (strcmp(a->name, b->name)) fail_msg("%s: tensor %zu is '%s', reference has '%s'", ref_path, i, a->name, b->name);
        if (a->type != b->type)
            fail_msg("%s: '%s' is %s, reference %s", ref_path, a->name, cg_qtype_name(a->type), cg_qtype_name(b->type));
        assert_int_equal(a->n_dims, b->n_dims);
        assert_memory_equal(a->ne, b->ne, sizeof a->ne);
        assert_int_equal(a->offset, b->offset);
        assert_int_equal(a->n_bytes, b->n_bytes);
        bool same = memcmp(a->data, b->data, (size_t)a->n_bytes) == 0;
        cs->n_tensors++;
        cs->n_identical += same;
        if (exact_type(a->type)) {
            if (!same) fail_msg("%s: %s data of '%s' differs from the reference", ref_path, cg_qtype_name(a->type), a->name);
            continue;
        }
        cs->n_kquant++;
        cs->n_kquant_identical += same;
        if (same) continue;
        const cg_gguf_tensor *o = cg_gguf_find_tensor(orig, a->name);
        assert_non_null(o);
        assert_int_equal(o->type, CG_QTYPE_F32);
        assert_true(a->ne[0] * sizeof(float) <= (1 << 20));
        double ra = rmse_vs(a, o->data, buf), rb = rmse_vs(b, o->data, buf);
        double ratio = rb > 0 ? ra / rb : (ra > 0 ? INFINITY : 1.0);
        if (ratio > cs->worst_ratio) cs->worst_ratio = ratio;
        if (ratio > 1.0 + 1e-6)
            fail_msg("%s: %s '%s' RMSE %.6g is worse than the reference's %.6g", ref_path, cg_qtype_name(a->type),
                     a->name, ra, rb);
    }
    cs->file_identical = cg_gguf_file_size(ours) == cg_gguf_file_size(ref) &&
                         !memcmp(cg_gguf_file_data(ours), cg_gguf_file_data(ref), (size_t)cg_gguf_file_size(ref));
    free(buf);
    cg_gguf_close(orig);
    cg_gguf_close(ref);
    cg_gguf_close(ours);
}

// Every F32 random model x every mix, in-process, against the llama-quantize file.
static void test_quantize_files_match_reference(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    if (!md || !formats_available()) { skip(); return; }
    char *dir = cg_test_tmpdir();
    char out[4096], in[4096], ref[4096];
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    size_t n_files_identical = 0;
    double t_total = 0;
    for (size_t m = 0; m < N_MIXES; m++) {
        cmp_stats all = {0};
        size_t files_same = 0;
        for (size_t a = 0; a < N_ARCHS; a++) {
            snprintf(in, sizeof in, "%s/random/rand-%s-F32.gguf", md, ARCHS[a]);
            snprintf(ref, sizeof ref, "%s/random/rand-%s-%s.gguf", md, ARCHS[a], MIXES[m]);
            cg_quantize_stats qs = {0};
            cg_quantize_params p = {.ftype = cg_ftype_find(MIXES[m])->ftype, .n_thread = 2, .stats = &qs};
            cg_err err = {0};
            CG_ASSERT_OK(cg_quantize_file(in, out, &p, &err), &err);
            t_total += qs.seconds;
            struct stat sb;
            assert_int_equal(stat(ref, &sb), 0);
            assert_int_equal(qs.out_file_bytes, (uint64_t)sb.st_size);
            cmp_stats cs = {0};
            compare_files(out, ref, in, &cs);
            all.n_tensors += cs.n_tensors;
            all.n_identical += cs.n_identical;
            all.n_kquant += cs.n_kquant;
            all.n_kquant_identical += cs.n_kquant_identical;
            if (cs.worst_ratio > all.worst_ratio) all.worst_ratio = cs.worst_ratio;
            files_same += cs.file_identical;
        }
        n_files_identical += files_same;
        printf("%-7s tensors byte-identical %3zu/%3zu (K-quant %3zu/%3zu), worst RMSE ratio %s%.6f, files identical %zu/%zu\n",
               MIXES[m], all.n_identical, all.n_tensors, all.n_kquant_identical, all.n_kquant,
               all.worst_ratio > 0 ? "" : "(none differ) ", all.worst_ratio, files_same, N_ARCHS);
    }
    printf("files byte-identical to llama-quantize's: %zu/%zu; quantizing took %.2f s in all\n", n_files_identical,
           N_ARCHS * N_MIXES, t_total);
    unlink(out);
    rmdir(dir);
    free(dir);
}

// --pure: every quantizable matrix gets the base type (no Q6_K output, no raised attn_v); the
// tensors that are Q4_0 in llama-quantize's Q4_0 file too are byte-identical to it.
static void test_quantize_pure(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    if (!md || !formats_available()) { skip(); return; }
    char *dir = cg_test_tmpdir();
    char out[4096], in[4096], ref[4096];
    snprintf(out, sizeof out, "%s/pure.gguf", dir);
    snprintf(in, sizeof in, "%s/random/rand-llama3-bpe-F32.gguf", md);
    snprintf(ref, sizeof ref, "%s/random/rand-llama3-bpe-Q4_0.gguf", md);
    cg_quantize_params p = {.ftype = CG_FTYPE_MOSTLY_Q4_0, .pure = true, .n_thread = 2};
    cg_err err = {0};
    CG_ASSERT_OK(cg_quantize_file(in, out, &p, &err), &err);
    cg_gguf *g, *r, *o;
    CG_ASSERT_OK(cg_gguf_open(out, &g, &err), &err);
    CG_ASSERT_OK(cg_gguf_open(ref, &r, &err), &err);
    CG_ASSERT_OK(cg_gguf_open(in, &o, &err), &err);
    size_t n_same = 0, n_q = 0;
    for (size_t i = 0; i < cg_gguf_n_tensors(g); i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i), *rt = cg_gguf_find_tensor(r, t->name);
        assert_non_null(rt);
        if (t->n_dims == 1) {
            assert_int_equal(t->type, CG_QTYPE_F32);
            continue;
        }
        assert_int_equal(t->type, CG_QTYPE_Q4_0);   // token_embd (tied) too: no Q6_K exception
        n_q++;
        if (rt->type == CG_QTYPE_Q4_0) {
            assert_memory_equal(t->data, rt->data, (size_t)t->n_bytes);
            n_same++;
        }
    }
    // token_embd in Q4_0: its error is the usual Q4_0 error, far above Q6_K's.
    const cg_gguf_tensor *te = cg_gguf_find_tensor(g, "token_embd.weight"), *re = cg_gguf_find_tensor(r, "token_embd.weight");
    float *buf = malloc(1 << 20);
    const float *orig = cg_gguf_find_tensor(o, "token_embd.weight")->data;
    double e4 = rmse_vs(te, orig, buf), e6 = rmse_vs(re, orig, buf);
    printf("pure Q4_0: %zu matrices Q4_0, %zu byte-identical to llama-quantize's; token_embd RMSE %.3g (Q6_K: %.3g)\n",
           n_q, n_same, e4, e6);
    assert_true(e4 > 2 * e6 && e4 < 0.2 * 0.05);
    free(buf);
    cg_gguf_close(o);
    cg_gguf_close(r);
    cg_gguf_close(g);
    unlink(out);
    rmdir(dir);
    free(dir);
}

static bool same_file(const char *a, const char *b) {
    size_t na, nb;
    unsigned char *da = cg_test_read_path(a, &na), *db = cg_test_read_path(b, &nb);
    bool same = na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return same;
}

// Inputs other than F32: BF16 -> F32 is exact, so BF16 -> F32 -> BF16 must give back
// llama-quantize's BF16 file; F16 -> F16 copies every tensor and reproduces the F16 file.
static void test_quantize_from_half_inputs(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    if (!md || !formats_available()) { skip(); return; }
    char *dir = cg_test_tmpdir();
    char mid[4096], out[4096], ref[4096];
    snprintf(mid, sizeof mid, "%s/mid.gguf", dir);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    cg_err err = {0};
    snprintf(ref, sizeof ref, "%s/random/rand-gemma3-BF16.gguf", md);
    cg_quantize_params p = {.ftype = CG_FTYPE_ALL_F32, .n_thread = 2};
    CG_ASSERT_OK(cg_quantize_file(ref, mid, &p, &err), &err);
    p.ftype = CG_FTYPE_MOSTLY_BF16;
    CG_ASSERT_OK(cg_quantize_file(mid, out, &p, &err), &err);
    assert_true(same_file(out, ref));
    snprintf(ref, sizeof ref, "%s/random/rand-phi3-F16.gguf", md);
    p.ftype = CG_FTYPE_MOSTLY_F16;
    CG_ASSERT_OK(cg_quantize_file(ref, out, &p, &err), &err);
    assert_true(same_file(out, ref));
    printf("BF16 -> F32 -> BF16 and F16 -> F16 reproduce llama-quantize's files byte for byte\n");
    unlink(mid);
    unlink(out);
    rmdir(dir);
    free(dir);
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

// Errors: missing input, output directory missing, bad ftype, unconvertible rows. Nothing is
// left behind (neither OUT nor OUT.tmp).
static void test_quantize_errors(void **state) {
    (void)state;
    char *dir = cg_test_tmpdir();
    char out[4096], tmp[4200], in[4096];
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    cg_quantize_params p = {.ftype = CG_FTYPE_MOSTLY_F16, .n_thread = 1};
    cg_err err = {0};
    snprintf(in, sizeof in, "%s/missing.gguf", dir);
    assert_int_equal(cg_quantize_file(in, out, &p, &err), CG_ERR_IO);
    assert_non_null(strstr(err.msg, "missing.gguf"));
    assert_false(exists(out));

    // A file that is not GGUF: the reader's error, wrapped with the path.
    char *junk = cg_test_tmpfile("not a gguf file", 15);
    assert_int_equal(cg_quantize_file(junk, out, &p, &err), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, junk));
    assert_false(exists(out));
    unlink(junk);
    free(junk);

    const char *md = cg_test_models_dir();
    if (md) {
        snprintf(in, sizeof in, "%s/random/rand-phi3-F32.gguf", md);
        char deep[4200];
        snprintf(deep, sizeof deep, "%s/no/such/dir/out.gguf", dir);
        p.ftype = CG_FTYPE_ALL_F32;   // needs no quantizer
        assert_int_equal(cg_quantize_file(in, deep, &p, &err), CG_ERR_IO);
        assert_non_null(strstr(err.msg, "no/such/dir"));
        p.ftype = (cg_ftype)5;   // Q4_2, long gone
        assert_int_equal(cg_quantize_file(in, out, &p, &err), CG_ERR_INVALID);
        // stories260K's rows of 172 have no Q5_0 form: refused before anything is written.
        snprintf(in, sizeof in, "%s/real/stories260K.gguf", md);
        p.ftype = CG_FTYPE_MOSTLY_Q5_0;
        assert_int_equal(cg_quantize_file(in, out, &p, &err), CG_ERR_UNSUPPORTED);
        assert_non_null(strstr(err.msg, "172"));
        assert_false(exists(out));
        assert_false(exists(tmp));
        // F32 -> F32 works without any quantizer: every tensor copied, only the order and the
        // two keys change.
        p.ftype = CG_FTYPE_ALL_F32;
        CG_ASSERT_OK(cg_quantize_file(in, out, &p, &err), &err);
        cg_gguf *a, *b;
        CG_ASSERT_OK(cg_gguf_open(in, &a, &err), &err);
        CG_ASSERT_OK(cg_gguf_open(out, &b, &err), &err);
        assert_int_equal(cg_gguf_n_tensors(a), cg_gguf_n_tensors(b));
        for (size_t i = 0; i < cg_gguf_n_tensors(b); i++) {
            const cg_gguf_tensor *tb = cg_gguf_tensor_at(b, i), *ta = cg_gguf_find_tensor(a, tb->name);
            assert_non_null(ta);
            assert_int_equal(ta->n_bytes, tb->n_bytes);
            assert_memory_equal(ta->data, tb->data, (size_t)ta->n_bytes);
            if (i) assert_true(cg_mix_name_cmp(cg_gguf_tensor_at(b, i - 1)->name, tb->name) < 0);
        }
        uint32_t ft = 99, qv = 0;
        CG_ASSERT_OK(cg_gguf_get_u32(b, "general.file_type", &ft, &err), &err);
        CG_ASSERT_OK(cg_gguf_get_u32(b, "general.quantization_version", &qv, &err), &err);
        assert_int_equal(ft, 0);
        assert_int_equal(qv, 2);
        assert_string_equal(cg_gguf_kv_at(b, cg_gguf_n_kv(b) - 1)->key, "general.file_type");
        assert_int_equal(cg_gguf_n_kv(b), cg_gguf_n_kv(a) + 2);   // stories260K has neither key
        cg_gguf_close(b);
        cg_gguf_close(a);
        assert_false(exists(tmp));
        unlink(out);
    }
    rmdir(dir);
    free(dir);
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
        cmocka_unit_test(test_quantize_files_match_reference),
        cmocka_unit_test(test_quantize_pure),
        cmocka_unit_test(test_quantize_from_half_inputs),
        cmocka_unit_test(test_quantize_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
