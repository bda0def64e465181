// test_tok.c — tokenizers against llama.cpp's own outputs (../shared/testdata/tokenizer), the
// streaming detokenizer, malformed vocabularies, and a throughput figure (printed, never judged).
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/utf8.h"
#include "gguf/gguf.h"
#include "tok/tok.h"
#include "tok/vocab.h"   // cg_pretok_* for the split tests

#include <pthread.h>

// ---- helpers ------------------------------------------------------------------------------------

static cg_vocab *load_vocab_path(const char *path, cg_gguf **g_out) {
    cg_err err = {0};
    cg_gguf *g;
    CG_ASSERT_OK(cg_gguf_open(path, &g, &err), &err);
    cg_vocab *v;
    CG_ASSERT_OK(cg_vocab_load(g, &v, &err), &err);
    if (g_out) *g_out = g;
    else cg_gguf_close(g);
    return v;
}

// Shared dir = testdata/.. ; returns a malloc'ed absolute-ish path.
static char *shared_path(const char *rel) {
    const char *td = cg_test_testdata_dir();
    char *p = malloc(PATH_MAX);
    snprintf(p, PATH_MAX, "%s/../%s", td, rel);
    return p;
}

static bool ids_equal(const cg_tokens *t, json_t *arr) {
    if (json_array_size(arr) != t->n) return false;
    for (size_t i = 0; i < t->n; i++)
        if (json_integer_value(json_array_get(arr, i)) != t->ids[i]) return false;
    return true;
}

static void print_ids(const char *what, const cg_tokens *t, json_t *want) {
    printf("      %s got :", what);
    for (size_t i = 0; i < t->n && i < 40; i++) printf(" %d", t->ids[i]);
    printf("\n      %s want:", what);
    for (size_t i = 0; i < json_array_size(want) && i < 40; i++)
        printf(" %lld", (long long)json_integer_value(json_array_get(want, i)));
    printf("\n");
}

static void to_hex(const char *p, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", (unsigned char)p[i]);
    out[2 * n] = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// ---- vocab vectors ------------------------------------------------------------------------------

// One vocab_vectors/<name>.json: every case, every field. Returns the number of failed cases, or -1
// when the vocabulary type cannot tokenize (reported, not counted).
static int run_vocab_file(const char *json_path, int *n_cases_out) {
    json_error_t je;
    json_t *root = json_load_file(json_path, 0, &je);
    if (!root) fail_msg("%s: %s", json_path, je.text);
    char *gpath = shared_path(json_string_value(json_object_get(root, "vocab_path")));
    cg_gguf *g;
    cg_vocab *v = load_vocab_path(gpath, &g);
    const char *name = strrchr(json_path, '/') + 1;
    json_t *cases = json_object_get(root, "cases");
    int n_cases = (int)json_array_size(cases);
    *n_cases_out = n_cases;
    if (cg_vocab_get_type(v) == CG_VOCAB_UGM) {
        printf("  %-34s SKIPPED: Unigram tokenization is not implemented (%d cases)\n", name, n_cases);
        cg_vocab_free(v);
        cg_gguf_close(g);
        json_decref(root);
        free(gpath);
        return -1;
    }
    assert_int_equal(cg_vocab_n_tokens(v), json_integer_value(json_object_get(root, "n_vocab")));
    assert_int_equal(cg_vocab_add_bos(v), json_is_true(json_object_get(root, "add_bos")));
    assert_int_equal(cg_vocab_add_eos(v), json_is_true(json_object_get(root, "add_eos")));
    assert_int_equal(cg_vocab_special(v, CG_SPECIAL_BOS), json_integer_value(json_object_get(root, "bos_id")));
    assert_int_equal(cg_vocab_special(v, CG_SPECIAL_EOS), json_integer_value(json_object_get(root, "eos_id")));

    static const char *const FIELDS[4] = {"ids_plain", "ids_add_special", "ids_parse_special",
                                          "ids_add_special_parse_special"};
    int n_fail = 0, n_shown = 0;
    cg_err err = {0};
    for (int c = 0; c < n_cases; c++) {
        json_t *cs = json_array_get(cases, (size_t)c);
        const char *text = json_string_value(json_object_get(cs, "text"));
        size_t tlen = json_string_length(json_object_get(cs, "text"));
        bool ok = true;
        cg_tokens plain = {0};
        for (int f = 0; f < 4; f++) {
            cg_tokens t = {0};
            CG_ASSERT_OK(cg_tokenize(v, text, tlen, f & 1, f >> 1, &t, &err), &err);
            json_t *want = json_object_get(cs, FIELDS[f]);
            if (!ids_equal(&t, want)) {
                ok = false;
                if (n_shown < 3) print_ids(FIELDS[f], &t, want), printf("      text: %s\n", text);
            }
            if (f == 0) plain = t;
            else cg_tokens_free(&t);
        }
        // pieces (special=true, no lstrip) of the expected plain ids
        json_t *want_plain = json_object_get(cs, "ids_plain");
        json_t *pieces = json_object_get(cs, "pieces_hex");
        size_t np = json_array_size(want_plain);
        int32_t *wids = malloc((np + 1) * sizeof *wids);
        for (size_t i = 0; i < np; i++) {
            wids[i] = (int32_t)json_integer_value(json_array_get(want_plain, i));
            const char *p;
            size_t pn;
            CG_ASSERT_OK(cg_token_to_piece(v, wids[i], 0, true, &p, &pn, &err), &err);
            char hex[4096];
            if (pn > 2000) pn = 2000;
            to_hex(p, pn, hex);
            if (strcmp(hex, json_string_value(json_array_get(pieces, i)))) {
                ok = false;
                if (n_shown < 3)
                    printf("      piece of %d: got %s want %s\n", wids[i], hex,
                           json_string_value(json_array_get(pieces, i)));
            }
        }
        cg_buf d;
        cg_buf_init(&d);
        CG_ASSERT_OK(cg_detokenize(v, wids, np, false, false, &d, &err), &err);
        json_t *wd = json_object_get(cs, "detokenized");
        if (d.len != json_string_length(wd) || memcmp(d.data ? d.data : "", json_string_value(wd), d.len)) {
            ok = false;
            if (n_shown < 3) printf("      detokenized: got '%.*s' want '%s'\n", (int)d.len, d.data, json_string_value(wd));
        }
        cg_buf_free(&d);
        free(wids);
        cg_tokens_free(&plain);
        if (!ok) {
            n_fail++;
            if (n_shown < 3) printf("    ^ %s case %d\n", name, c);
            n_shown++;
        }
    }
    printf("  %-34s %d/%d cases\n", name, n_cases - n_fail, n_cases);
    cg_vocab_free(v);
    cg_gguf_close(g);
    json_decref(root);
    free(gpath);
    return n_fail;
}

static void test_vocab_vectors(void **state) {
    (void)state;
    const char *td = cg_test_testdata_dir();
    if (!td || !cg_test_models_dir()) {
        skip();
        return;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tokenizer/vocab_vectors", td);
    DIR *d = opendir(dir);
    if (!d) {
        skip();
        return;
    }
    char *names[64];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 64)
        if (strstr(e->d_name, ".json")) names[nn++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], cmp_str);
    int total_fail = 0, files = 0, total = 0, skipped = 0;
    for (int i = 0; i < nn; i++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        int nc = 0;
        int f = run_vocab_file(p, &nc);
        if (f < 0) skipped++;
        else total_fail += f, files++, total += nc;
        free(names[i]);
    }
    printf("  vocab vectors: %d files, %d/%d cases exact, %d file(s) skipped (UGM)\n", files, total - total_fail, total,
           skipped);
    assert_true(files >= 21);
    assert_int_equal(total_fail, 0);
}

// ---- llama.cpp's own test-tokenizer-0 vectors ---------------------------------------------------

static void test_llamacpp_vectors(void **state) {
    (void)state;
    const char *td = cg_test_testdata_dir();
    if (!td || !cg_test_models_dir()) {
        skip();
        return;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tokenizer/llamacpp_vectors", td);
    DIR *d = opendir(dir);
    if (!d) {
        skip();
        return;
    }
    char *names[64];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 64)
        if (strstr(e->d_name, ".gguf.inp")) names[nn++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], cmp_str);
    int total = 0, total_ok = 0, files = 0;
    cg_err err = {0};
    for (int i = 0; i < nn; i++) {
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(names[i]) - 4), names[i]);   // X.gguf
        char rel[512];
        snprintf(rel, sizeof rel, "models/vocab/%s", base);
        char *gpath = shared_path(rel);
        cg_vocab *v = load_vocab_path(gpath, NULL);
        free(gpath);
        if (cg_vocab_get_type(v) == CG_VOCAB_UGM) {
            printf("  %-34s SKIPPED: Unigram tokenization is not implemented\n", base);
            cg_vocab_free(v);
            free(names[i]);
            continue;
        }
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        size_t in_n, out_n;
        char *inp = (char *)cg_test_read_path(p, &in_n);
        snprintf(p, sizeof p, "%s/%.*s.out", dir, (int)(strlen(names[i]) - 4), names[i]);
        char *outp = (char *)cg_test_read_path(p, &out_n);
        static const char SEP[] = "\n__ggml_vocab_test__\n";
        char *s = inp, *end = inp + in_n, *o = outp, *oend = outp + out_n;
        int n = 0, ok = 0, shown = 0;
        while (s < end) {
            char *m = memmem(s, (size_t)(end - s), SEP, sizeof SEP - 1);
            if (!m) break;
            char *nl = memchr(o, '\n', (size_t)(oend - o));
            if (!nl) nl = oend;
            cg_tokens t = {0};
            CG_ASSERT_OK(cg_tokenize(v, s, (size_t)(m - s), false, false, &t, &err), &err);
            // parse the expected line
            bool same = true;
            size_t k = 0;
            char *q = o;
            while (q < nl) {
                while (q < nl && *q == ' ') q++;
                if (q >= nl) break;
                long id = strtol(q, &q, 10);
                if (k >= t.n || t.ids[k] != id) same = false;
                k++;
            }
            if (k != t.n) same = false;
            n++;
            if (same) ok++;
            else if (shown++ < 3) {
                printf("    %s line %d: '%.*s'\n      want:%.*s\n      got :", base, n, (int)(m - s), s,
                       (int)(nl - o), o);
                for (size_t j = 0; j < t.n && j < 40; j++) printf(" %d", t.ids[j]);
                printf("\n");
            }
            cg_tokens_free(&t);
            s = m + sizeof SEP - 1;
            o = nl < oend ? nl + 1 : oend;
        }
        printf("  %-34s %d/%d lines\n", base, ok, n);
        total += n;
        total_ok += ok;
        files++;
        free(inp);
        free(outp);
        cg_vocab_free(v);
        free(names[i]);
    }
    printf("  llama.cpp vectors: %d files, %d/%d lines exact\n", files, total_ok, total);
    assert_true(files >= 12);
    assert_int_equal(total_ok, total);
}

// ---- streaming detokenizer --------------------------------------------------------------------

static cg_vocab *stories_vocab(void) {
    const char *md = cg_test_models_dir();
    if (!md) return NULL;
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/real/stories260K.gguf", md);
    return load_vocab_path(p, NULL);
}

static void test_stream_korean(void **state) {
    (void)state;
    cg_vocab *v = stories_vocab();
    if (!v) {
        skip();
        return;
    }
    cg_err err = {0};
    const char *text = "한국어 안녕하세요, SK텔레콤의 에이닷입니다 🇰🇷 ok";
    cg_tokens t = {0};
    CG_ASSERT_OK(cg_tokenize(v, text, strlen(text), false, false, &t, &err), &err);
    // tok512 has no Hangul: 한 (ED 95 9C) must come out as three byte tokens.
    int32_t b_ed = cg_vocab_find(v, "<0xED>", 6), b_95 = cg_vocab_find(v, "<0x95>", 6), b_9c = cg_vocab_find(v, "<0x9C>", 6);
    assert_true(b_ed >= 0);
    bool found = false;
    for (size_t i = 0; i + 2 < t.n; i++)
        if (t.ids[i] == b_ed && t.ids[i + 1] == b_95 && t.ids[i + 2] == b_9c) found = true;
    assert_true(found);

    cg_buf full, streamed;
    cg_buf_init(&full);
    cg_buf_init(&streamed);
    CG_ASSERT_OK(cg_detokenize(v, t.ids, t.n, false, false, &full, &err), &err);
    assert_string_equal(full.data, text);
    cg_detok_stream *s;
    CG_ASSERT_OK(cg_detok_stream_new(v, false, &s, &err), &err);
    int held = 0;
    for (size_t i = 0; i < t.n; i++) {
        cg_buf chunk;
        cg_buf_init(&chunk);
        CG_ASSERT_OK(cg_detok_stream_feed(s, t.ids[i], &chunk, &err), &err);
        // every chunk is complete, valid UTF-8 on its own
        assert_true(cg_utf8_valid(chunk.data ? chunk.data : "", chunk.len, NULL));
        if (chunk.len == 0) held++;
        cg_buf_append(&streamed, chunk.data ? chunk.data : "", chunk.len);
        cg_buf_free(&chunk);
    }
    CG_ASSERT_OK(cg_detok_stream_flush(s, &streamed, &err), &err);
    assert_int_equal(streamed.len, full.len);
    assert_memory_equal(streamed.data, full.data, full.len);
    printf("  stream: %zu tokens, %d feeds held back an incomplete character, %zu bytes out\n", t.n, held,
           streamed.len);
    assert_true(held > 0);

    // invalid bytes: E2 82 then 'A' → U+FFFD 'A'; a lone continuation 80 → U+FFFD;
    // ED A0 (surrogate) → two U+FFFD; F0 9F 98 then flush → U+FFFD.
    const char *seq[] = {"<0xE2>", "<0x82>", "A", "<0x80>", "<0xED>", "<0xA0>", "<0xF0>", "<0x9F>", "<0x98>"};
    cg_buf o;
    cg_buf_init(&o);
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        int32_t id = cg_vocab_find(v, seq[i], strlen(seq[i]));
        assert_true(id >= 0);
        CG_ASSERT_OK(cg_detok_stream_feed(s, id, &o, &err), &err);
    }
    CG_ASSERT_OK(cg_detok_stream_flush(s, &o, &err), &err);
    const char *want = "\xef\xbf\xbd" "A" "\xef\xbf\xbd" "\xef\xbf\xbd\xef\xbf\xbd" "\xef\xbf\xbd";
    assert_int_equal(o.len, strlen(want));
    assert_memory_equal(o.data, want, o.len);
    cg_buf_free(&o);
    assert_int_equal(cg_detok_stream_feed(s, 99999, &o, &err), CG_ERR_INVALID);
    // SPM keeps an invalid input byte: it reaches the <0xFF> byte token (llama.cpp behaviour)
    cg_tokens inv = {0};
    CG_ASSERT_OK(cg_tokenize(v, "\xff", 1, false, false, &inv, &err), &err);
    assert_true(inv.n >= 1);
    assert_int_equal(inv.ids[inv.n - 1], cg_vocab_find(v, "<0xFF>", 6));
    cg_tokens_free(&inv);
    cg_detok_stream_free(s);
    cg_buf_free(&full);
    cg_buf_free(&streamed);
    cg_tokens_free(&t);
    cg_vocab_free(v);
}

// ---- hand-built vocabularies: errors and exact expectations -------------------------------------

typedef struct mini {
    const char *const *toks;
    int n;
    const int32_t *types;
    const char *const *merges;
    int n_merges;
    const char *pre;
} mini;

static cg_status build_and_load(const mini *m, cg_vocab **v, cg_err *err, void (*tweak)(cg_gguf_writer *)) {
    cg_gguf_writer *w;
    CG_ASSERT_OK(cg_gguf_writer_new(&w, err), err);
    CG_ASSERT_OK(cg_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", err), err);
    if (m->pre) CG_ASSERT_OK(cg_gguf_writer_set_str(w, "tokenizer.ggml.pre", m->pre, err), err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", m->toks, NULL, (uint64_t)m->n, err), err);
    if (m->types)
        CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", CG_GGUF_TYPE_INT32, m->types,
                                            (uint64_t)m->n, err), err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m->merges, NULL, (uint64_t)m->n_merges, err),
                 err);
    if (tweak) tweak(w);
    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &b, err), err);
    cg_gguf_writer_free(w);
    cg_gguf *g;
    CG_ASSERT_OK(cg_gguf_open_mem(b.data, b.len, &g, err), err);
    cg_status st = cg_vocab_load(g, v, err);
    cg_gguf_close(g);
    cg_buf_free(&b);
    return st;
}

static const char *const MINI_TOKS[] = {"a", "b", "c", "ab", "abc", "\xc4\xa0", "\xc4\xa0\x61", "<|x|>", "</s>"};
static const int32_t MINI_TYPES[] = {1, 1, 1, 1, 1, 1, 1, 3, 1};
static const char *const MINI_MERGES[] = {"a b", "ab c", "\xc4\xa0 a"};

static void tweak_short_types(cg_gguf_writer *w) {
    int32_t t[2] = {1, 1};
    cg_err err = {0};
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", CG_GGUF_TYPE_INT32, t, 2, &err), &err);
}
static void tweak_add_eos(cg_gguf_writer *w) {
    cg_err err = {0};
    CG_ASSERT_OK(cg_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", true, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 4294967295u, &err), &err);
}

static void tweak_no_merges(cg_gguf_writer *w) { cg_gguf_writer_remove(w, "tokenizer.ggml.merges"); }
static void tweak_rwkv(cg_gguf_writer *w) {
    cg_err err = {0};
    CG_ASSERT_OK(cg_gguf_writer_set_str(w, "tokenizer.ggml.model", "rwkv", &err), &err);
}
static void tweak_float_types(cg_gguf_writer *w) {
    float t[9] = {0};
    cg_err err = {0};
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", CG_GGUF_TYPE_FLOAT32, t, 9, &err), &err);
}

static void test_mini_bpe(void **state) {
    (void)state;
    cg_err err = {0};
    cg_vocab *v;
    mini m = {MINI_TOKS, 9, MINI_TYPES, MINI_MERGES, 3, "gpt-2"};
    CG_ASSERT_OK(build_and_load(&m, &v, &err, NULL), &err);
    cg_tokens t = {0};
    // "abc a" → pre-tokens "abc", " a" → merges a+b (rank 0), ab+c (rank 1); Ġ+a (rank 2)
    CG_ASSERT_OK(cg_tokenize(v, "abc a", 5, false, false, &t, &err), &err);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.ids[0], 4);
    assert_int_equal(t.ids[1], 6);
    t.n = 0;
    // "<|x|>" is CONTROL: one token only with parse_special; "</s>" is forced to CONTROL (EOG quirk)
    CG_ASSERT_OK(cg_tokenize(v, "a<|x|></s>", 10, false, true, &t, &err), &err);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.ids[1], 7);
    assert_int_equal(t.ids[2], 8);
    assert_true(cg_vocab_is_eog(v, 8));
    assert_true(cg_vocab_token_attr(v, 8) & CG_TOK_ATTR_CONTROL);
    // detokenize: control tokens render only with unparse_special
    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_detokenize(v, t.ids, t.n, false, false, &b, &err), &err);
    assert_string_equal(b.data, "a");
    cg_buf_reset(&b);
    CG_ASSERT_OK(cg_detokenize(v, t.ids, t.n, false, true, &b, &err), &err);
    assert_string_equal(b.data, "a<|x|></s>");
    cg_buf_free(&b);
    // invalid UTF-8 input never fails: each bad byte is U+FFFD (not in this vocab: no tokens)
    t.n = 0;
    CG_ASSERT_OK(cg_tokenize(v, "a\xff" "b", 3, false, false, &t, &err), &err);
    assert_int_equal(t.n, 2);
    // a word with no tokens at all ("dd": neither a token nor bytes of this vocab) as the first word of
    // a text long enough for the word cache (4096 bytes): the cache stores an empty entry (the fuzzer
    // found it computing NULL + 0 there), and the later " dd" / " abc" words come from the cache
    cg_buf longt;
    cg_buf_init(&longt);
    cg_buf_append(&longt, "dd", 2);
    size_t reps = 0;
    for (; longt.len < 5000; reps++) cg_buf_append(&longt, " abc dd", 7);
    cg_tokens_free(&t);
    CG_ASSERT_OK(cg_tokenize(v, longt.data, longt.len, false, false, &t, &err), &err);
    assert_int_equal(t.n, 3 * reps);   // per repetition: " abc" -> [Ġ, abc], " dd" -> [Ġ]
    for (size_t i = 0; i < reps; i++) {
        assert_int_equal(t.ids[3 * i], 5);
        assert_int_equal(t.ids[3 * i + 1], 4);
        assert_int_equal(t.ids[3 * i + 2], 5);
    }
    cg_buf_free(&longt);
    // caller-buffer form reports the size needed
    int32_t small[1];
    size_t need = 0;
    assert_int_equal(cg_tokenize_buf(v, "abc a", 5, false, false, small, 1, &need, &err), CG_ERR_LIMIT);
    assert_int_equal(need, 2);
    cg_tokens_free(&t);
    cg_vocab_free(v);
}

static void test_malformed_vocab(void **state) {
    (void)state;
    cg_err err = {0};
    cg_vocab *v = NULL;
    static const char *const bad_merge[] = {"a b", "a zz"};
    mini m1 = {MINI_TOKS, 9, MINI_TYPES, bad_merge, 2, "gpt-2"};
    assert_int_equal(build_and_load(&m1, &v, &err, NULL), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "merge 1 'a zz'"));
    static const char *const nospace[] = {"ab"};
    mini m2 = {MINI_TOKS, 9, MINI_TYPES, nospace, 1, "gpt-2"};
    assert_int_equal(build_and_load(&m2, &v, &err, NULL), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "no space"));
    static const char *const dup[] = {"a", "b", "a"};
    mini m3 = {dup, 3, NULL, MINI_MERGES, 1, "gpt-2"};
    assert_int_equal(build_and_load(&m3, &v, &err, NULL), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "duplicate token 'a' has ids 0 and 2"));
    static const char *const badutf[] = {"a", "b", "\xff"};
    mini m4 = {badutf, 3, NULL, MINI_MERGES, 1, "gpt-2"};
    assert_int_equal(build_and_load(&m4, &v, &err, NULL), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "token 2 is not valid UTF-8"));
    mini m5 = {MINI_TOKS, 9, MINI_TYPES, MINI_MERGES, 3, "no-such-pre"};
    assert_int_equal(build_and_load(&m5, &v, &err, NULL), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "'no-such-pre'"));
    mini m6 = {MINI_TOKS, 9, NULL, MINI_MERGES, 3, "gpt-2"};
    assert_int_equal(build_and_load(&m6, &v, &err, tweak_short_types), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "2 token types for 9 tokens"));
    assert_int_equal(build_and_load(&m6, &v, &err, tweak_add_eos), CG_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "add_eos_token"));
    assert_int_equal(build_and_load(&m6, &v, &err, tweak_no_merges), CG_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "tokenizer.ggml.merges"));
    assert_int_equal(build_and_load(&m6, &v, &err, tweak_rwkv), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "'rwkv'"));
    assert_int_equal(build_and_load(&m6, &v, &err, tweak_float_types), CG_ERR_TYPE);
    assert_non_null(strstr(err.msg, "tokenizer.ggml.token_type"));
    // out-of-range ids are rejected by the public functions
    mini ok = {MINI_TOKS, 9, MINI_TYPES, MINI_MERGES, 3, "gpt-2"};
    CG_ASSERT_OK(build_and_load(&ok, &v, &err, NULL), &err);
    const char *p;
    size_t n;
    assert_int_equal(cg_token_to_piece(v, 9, 0, true, &p, &n, &err), CG_ERR_INVALID);
    int32_t bad[2] = {0, -5};
    cg_buf b;
    cg_buf_init(&b);
    assert_int_equal(cg_detokenize(v, bad, 2, false, false, &b, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "token 1 of 2 has id -5"));
    cg_buf_free(&b);
    cg_vocab_free(v);
}

// ---- pre-tokenizers: every supported name compiles; hand-computed splits for a few ---------------

static const char *const PRE_NAMES[] = {
    "default", "gpt-2", "llama3", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "falcon", "starcoder",
    "refact", "mpt", "command-r", "smollm", "gpt-4o", "tekken", "a.x-4.0", "exaone", "exaone4", "kanana2",
    "midm-2.0", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "bloom", "chatglm-bpe", "codeshell",
    "jais", "qwen35", "seed-coder", "grok-2", "bailingmoe", "exaone-moe", "minerva-7b", "llama4", "pixtral",
    "trillion", "granite-docling", "megrez", "hunyuan", "phi-2", "deepseek-r1-qwen", "lfm2", "falcon3", "deepseek-v3",
    "hunyuan-dense", "minicpm5", "ufakzeka", "laguna", "roberta-bpe", NULL};

// Splits text with the named pre-tokenizer; returns the words joined by '|'.
static char *split_words(const char *name, const char *text) {
    cg_err err = {0};
    cg_pretok *p;
    cg_pretok_flags fl;
    CG_ASSERT_OK(cg_pretok_new(name, &p, &fl, &err), &err);
    cg_pretok_scratch s = {0};
    CG_ASSERT_OK(cg_pretok_split(p, text, strlen(text), &s, &err), &err);
    cg_buf b;
    cg_buf_init(&b);
    size_t cp = 0;
    for (size_t i = 0; i < s.n_pieces; i++) {
        if (!s.pieces[i]) continue;
        if (b.len) cg_buf_putc(&b, '|');
        cg_buf_append(&b, text + s.cp_off[cp], s.cp_off[cp + s.pieces[i]] - s.cp_off[cp]);
        cp += s.pieces[i];
    }
    cg_pretok_scratch_free(&s);
    cg_pretok_free(p);
    return b.data;
}

static void test_pretokenizers(void **state) {
    (void)state;
    const char *sample = "Hello World's 12345 ok\n\n  한국어 SK텔레콤 \xf0\x9f\x98\x80 x=1.5;";
    for (int i = 0; PRE_NAMES[i]; i++) {
        char *w = split_words(PRE_NAMES[i], sample);
        // the pieces always cover the text exactly
        cg_buf joined;
        cg_buf_init(&joined);
        for (const char *q = w; *q; q++)
            if (*q != '|') cg_buf_putc(&joined, *q);
        assert_string_equal(joined.data, "Hello World's 12345 ok\n\n  한국어 SK텔레콤 \xf0\x9f\x98\x80 x=1.5;");
        cg_buf_free(&joined);
        free(w);
    }
    printf("  %d pre-tokenizer names compile and split the sample\n", (int)(sizeof PRE_NAMES / sizeof PRE_NAMES[0]) - 1);
    struct {
        const char *name, *text, *want;
    } cases[] = {
        // \p{N}{1,3} groups, case-aware words with contractions
        {"gpt-4o", "Hello World's 12345 ok", "Hello| World's| |123|45| ok"},
        {"tekken", "HelloWorld 123", "Hello|World| |1|2|3"},
        // llama3: digits by three, spaces before a word stay with the next word only once
        {"llama-bpe", "a  b 1234\n\nc", "a| | b| |123|4|\n\n|c"},
        // gpt-2: \s+(?!\S) leaves the last space for the word
        {"gpt-2", "a   b", "a|  | b"},
        // starcoder / exaone: every digit alone
        {"exaone", "x 2024", "x| |2|0|2|4"},
        // deepseek-llm: newline alone, Latin words, Hangul run, digits
        {"deepseek-llm", "abc 123\n가나다", "abc| |123|\n|가나다"},
        // qwen2 (collapsed): one digit per piece, Korean letters are letters
        {"qwen2", "SK텔레콤 42", "SK텔레콤| |4|2"},
        // deepseek-v3: digits by three first, then Han/kana runs, then the main pattern
        {"deepseek-v3", "Hello, 世界123", "Hello|,| |世界|123"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *w = split_words(cases[i].name, cases[i].text);
        if (strcmp(w, cases[i].want)) fail_msg("%s: '%s' split as '%s', want '%s'", cases[i].name, cases[i].text, w,
                                               cases[i].want);
        free(w);
    }
    cg_err err = {0};
    cg_pretok *p = NULL;
    cg_pretok_flags fl;
    assert_int_equal(cg_pretok_new("gpt-5-turbo", &p, &fl, &err), CG_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "'gpt-5-turbo'"));
    CG_ASSERT_OK(cg_pretok_new("midm-2.0", &p, &fl, &err), &err);   // llama3 flags
    assert_true(fl.ignore_merges);
    assert_int_equal(fl.add_bos, 1);
    cg_pretok_free(p);
}

// ---- concurrency: one vocab, many threads ----------------------------------------------------------

typedef struct thr_arg {
    const cg_vocab *v;
    const char *text;
    cg_tokens out;
    cg_status st;
} thr_arg;

static void *thr_main(void *p) {
    thr_arg *a = p;
    cg_err err = {0};
    for (int k = 0; k < 20 && !a->st; k++) {
        a->out.n = 0;
        a->st = cg_tokenize(a->v, a->text, strlen(a->text), true, true, &a->out, &err);
    }
    return NULL;
}

static void test_threads_share_vocab(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    if (!md) {
        skip();
        return;
    }
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/vocab/ggml-vocab-qwen3.gguf", md);
    cg_vocab *v = load_vocab_path(p, NULL);
    const char *text = "안녕하세요, 저는 SK텔레콤의 에이닷입니다. <|im_start|>user\nHello, world! 12345 <think>";
    cg_tokens ref = {0};
    cg_err err = {0};
    CG_ASSERT_OK(cg_tokenize(v, text, strlen(text), true, true, &ref, &err), &err);
    thr_arg a[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thr_arg){v, text, {0}, CG_OK};
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].st, CG_OK);
        assert_int_equal(a[i].out.n, ref.n);
        assert_memory_equal(a[i].out.ids, ref.ids, ref.n * sizeof(int32_t));
        cg_tokens_free(&a[i].out);
    }
    cg_tokens_free(&ref);
    cg_vocab_free(v);
}

// ---- throughput (printed only) -------------------------------------------------------------------

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_throughput_qwen3(void **state) {
    (void)state;
    const char *md = cg_test_models_dir();
    size_t sn;
    char *sj = (char *)cg_test_read("tokenizer/strings.json", &sn);
    if (!md || !sj) {
        free(sj);
        skip();
        return;
    }
    json_error_t je;
    json_t *arr = json_loadb(sj, sn, 0, &je);
    free(sj);
    assert_non_null(arr);
    cg_buf unit;
    cg_buf_init(&unit);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        cg_buf_append(&unit, json_string_value(json_array_get(arr, i)), json_string_length(json_array_get(arr, i)));
        cg_buf_putc(&unit, '\n');
    }
    json_decref(arr);
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/vocab/ggml-vocab-qwen3.gguf", md);
    cg_vocab *v = load_vocab_path(p, NULL);
    const size_t sizes[2] = {1u << 20, 10u << 20};
    cg_err err = {0};
    for (int k = 0; k < 2; k++) {
        cg_buf big;
        cg_buf_init(&big);
        while (big.len < sizes[k]) cg_buf_append(&big, unit.data, unit.len);
        cg_tokens t = {0};
        double t0 = now_s();
        CG_ASSERT_OK(cg_tokenize(v, big.data, big.len, false, false, &t, &err), &err);
        double dt = now_s() - t0;
        printf("  throughput qwen3 (151936 tokens): %5.1f MB mixed Korean/English -> %zu ids in %.3f s = %.2f MB/s\n",
               big.len / 1048576.0, t.n, dt, big.len / 1048576.0 / dt);
        cg_tokens_free(&t);
        cg_buf_free(&big);
    }
    cg_buf_free(&unit);
    cg_vocab_free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mini_bpe),
        cmocka_unit_test(test_malformed_vocab),
        cmocka_unit_test(test_stream_korean),
        cmocka_unit_test(test_pretokenizers),
        cmocka_unit_test(test_threads_share_vocab),
        cmocka_unit_test(test_vocab_vectors),
        cmocka_unit_test(test_llamacpp_vectors),
        cmocka_unit_test(test_throughput_qwen3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
