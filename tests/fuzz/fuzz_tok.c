// fuzz_tok.c — libFuzzer target: tokenize arbitrary bytes (valid or invalid UTF-8), then
// detokenize the ids, batch and streaming, with three vocabularies loaded once:
//   * rand-qwen2 (byte-level BPE, qwen2 pre-tokenizer: the collapsed-regex path) and
//   * stories260K (SPM with byte fallback), from $CHINGU_TESTDATA/../models when present;
//   * a tiny BPE vocabulary built in code with the GGUF writer (llama3 pre-tokenizer: the UCP path),
//     so the target also works without the shared data.
// Input layout: byte 0 picks the vocabulary and the add_special / parse_special switches; the rest
// is the text. Checks (abort on violation): tokenizing never fails, every id is in range,
// detokenize accepts them, the stream's output is valid UTF-8.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/utf8.h"
#include "gguf/gguf.h"
#include "tok/tok.h"

static cg_vocab *g_vocabs[3];
static int g_n_vocabs;
static cg_buf g_mini_file;
static cg_gguf *g_mini_gguf;

static void load_path(const char *dir, const char *rel) {
    char p[4096];
    snprintf(p, sizeof p, "%s/../models/%s", dir, rel);
    cg_err err = {0};
    cg_gguf *g;
    if (cg_gguf_open(p, &g, &err)) return;
    if (!cg_vocab_load(g, &g_vocabs[g_n_vocabs], &err)) g_n_vocabs++;
    cg_gguf_close(g);
}

static void load_mini(void) {
    static const char *const toks[] = {"a", "b", "c", "ab", "abc", "\xc4\xa0", "\xc4\xa0\x61", "<|x|>", "</s>",
                                       "\xc3\xad", "\xc2\x95", "\xc2\x9c", "\xc3\xad\xc2\x95"};
    static const int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 3, 1, 1, 1, 1, 4};
    static const char *const merges[] = {"a b", "ab c", "\xc4\xa0 a", "\xc3\xad \xc2\x95"};
    cg_err err = {0};
    cg_gguf_writer *w;
    if (cg_gguf_writer_new(&w, &err)) abort();
    if (cg_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", &err) ||
        cg_gguf_writer_set_str(w, "tokenizer.ggml.pre", "llama-bpe", &err) ||
        cg_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 13, &err) ||
        cg_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", CG_GGUF_TYPE_INT32, types, 13, &err) ||
        cg_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 4, &err) ||
        cg_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 7, &err))
        abort();
    cg_buf_init(&g_mini_file);
    if (cg_gguf_writer_write_mem(w, &g_mini_file, &err)) abort();
    cg_gguf_writer_free(w);
    if (cg_gguf_open_mem(g_mini_file.data, g_mini_file.len, &g_mini_gguf, &err)) abort();
    if (cg_vocab_load(g_mini_gguf, &g_vocabs[g_n_vocabs], &err)) {
        fprintf(stderr, "fuzz_tok: mini vocab: %s\n", err.msg);
        abort();
    }
    g_n_vocabs++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *td = getenv("CHINGU_TESTDATA");
    if (!td) td = "../shared/testdata";
    load_path(td, "random/rand-qwen2-F32.gguf");
    load_path(td, "real/stories260K.gguf");
    load_mini();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint8_t sel = data[0];
    const cg_vocab *v = g_vocabs[(sel & 3) % g_n_vocabs];
    bool add_special = sel & 4, parse_special = sel & 8, unparse = sel & 16;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    cg_err err = {0};
    cg_tokens t = {0};
    if (cg_tokenize(v, text, n, add_special, parse_special, &t, &err)) {
        fprintf(stderr, "tokenize failed: %s\n", err.msg);
        abort();
    }
    uint32_t nv = cg_vocab_n_tokens(v);
    for (size_t i = 0; i < t.n; i++)
        if (t.ids[i] < 0 || (uint32_t)t.ids[i] >= nv) abort();
    cg_buf d;
    cg_buf_init(&d);
    if (cg_detokenize(v, t.ids, t.n, sel & 32, unparse, &d, &err)) abort();
    cg_detok_stream *s;
    if (cg_detok_stream_new(v, unparse, &s, &err)) abort();
    cg_buf o;
    cg_buf_init(&o);
    for (size_t i = 0; i < t.n; i++)
        if (cg_detok_stream_feed(s, t.ids[i], &o, &err)) abort();
    if (cg_detok_stream_flush(s, &o, &err)) abort();
    if (!cg_utf8_valid(o.data ? o.data : "", o.len, NULL)) abort();
    // the buffer form agrees with the vector form
    size_t need = 0;
    int32_t small[8];
    cg_status st = cg_tokenize_buf(v, text, n, add_special, parse_special, small, 8, &need, &err);
    if (need != t.n || (st != CG_OK && st != CG_ERR_LIMIT)) abort();
    cg_detok_stream_free(s);
    cg_buf_free(&o);
    cg_buf_free(&d);
    cg_tokens_free(&t);
    return 0;
}
