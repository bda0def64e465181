// make_gguf_seeds.c — writes the tiny valid seed files of tests/fuzz/corpus/fuzz_gguf/ with
// chingu's own GGUF writer (the malformed seeds are copies of tests/gguf_bad/*.gguf).
// Not part of the build; run by hand after a change to the format code:
//   cc -std=c11 -D_DEFAULT_SOURCE -Iinclude -Isrc tests/fuzz/make_gguf_seeds.c build/debug/libchingu.a
//      -lm -o /tmp/make_gguf_seeds && /tmp/make_gguf_seeds tests/fuzz/corpus/fuzz_gguf
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"

static void die(const cg_err *err) {
    fprintf(stderr, "make_gguf_seeds: %s\n", err->msg);
    exit(1);
}
#define T(x) do { if ((x) != CG_OK) die(&err); } while (0)

static void save(cg_gguf_writer *w, const char *dir, const char *name) {
    cg_err err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    T(cg_gguf_writer_write_file(w, path, &err));
    cg_gguf_writer_free(w);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *dir = argv[1];
    cg_err err = {0};
    cg_gguf_writer *w;
    static unsigned char data[4096];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 13 + 1);

    // 1. empty file: header only.
    T(cg_gguf_writer_new(&w, &err));
    save(w, dir, "seed_empty.gguf");

    // 2. every scalar type and array type, no tensors.
    T(cg_gguf_writer_new(&w, &err));
    T(cg_gguf_writer_set_u8(w, "u8", 1, &err));
    T(cg_gguf_writer_set_i8(w, "i8", -1, &err));
    T(cg_gguf_writer_set_u16(w, "u16", 2, &err));
    T(cg_gguf_writer_set_i16(w, "i16", -2, &err));
    T(cg_gguf_writer_set_u32(w, "u32", 3, &err));
    T(cg_gguf_writer_set_i32(w, "i32", -3, &err));
    T(cg_gguf_writer_set_u64(w, "u64", 4, &err));
    T(cg_gguf_writer_set_i64(w, "i64", -4, &err));
    T(cg_gguf_writer_set_f32(w, "f32", 0.5f, &err));
    T(cg_gguf_writer_set_f64(w, "f64", 0.25, &err));
    T(cg_gguf_writer_set_bool(w, "bool", true, &err));
    T(cg_gguf_writer_set_str(w, "str", "hi", &err));
    const uint32_t u32s[] = {1, 2, 3};
    const float f32s[] = {1, 2};
    const unsigned char bools[] = {0, 1};
    const char *strs[] = {"a", "", "bc"};
    T(cg_gguf_writer_set_arr(w, "a.u32", CG_GGUF_TYPE_UINT32, u32s, 3, &err));
    T(cg_gguf_writer_set_arr(w, "a.f32", CG_GGUF_TYPE_FLOAT32, f32s, 2, &err));
    T(cg_gguf_writer_set_arr(w, "a.bool", CG_GGUF_TYPE_BOOL, bools, 2, &err));
    T(cg_gguf_writer_set_arr(w, "a.u8", CG_GGUF_TYPE_UINT8, bools, 2, &err));
    T(cg_gguf_writer_set_arr_str(w, "a.str", strs, NULL, 3, &err));
    save(w, dir, "seed_kv_all_types.gguf");

    // 3. tensors of several types and ranks, default alignment.
    T(cg_gguf_writer_new(&w, &err));
    T(cg_gguf_writer_set_str(w, "general.architecture", "llama", &err));
    T(cg_gguf_writer_set_u32(w, "llama.block_count", 1, &err));
    T(cg_gguf_writer_add_tensor(w, "token_embd.weight", CG_QTYPE_F32, 2, (int64_t[]){4, 8}, data, &err));
    T(cg_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", CG_QTYPE_Q8_0, 2, (int64_t[]){32, 2}, data, &err));
    T(cg_gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", CG_QTYPE_Q4_K, 3, (int64_t[]){256, 1, 2}, data, &err));
    T(cg_gguf_writer_add_tensor(w, "output_norm.weight", CG_QTYPE_F16, 1, (int64_t[]){3}, data, &err));
    T(cg_gguf_writer_add_tensor(w, "empty", CG_QTYPE_BF16, 4, (int64_t[]){2, 0, 1, 1}, NULL, &err));
    save(w, dir, "seed_tensors.gguf");

    // 4. alignment 64, version 2.
    T(cg_gguf_writer_new(&w, &err));
    T(cg_gguf_writer_set_version(w, 2, &err));
    T(cg_gguf_writer_set_u32(w, "general.alignment", 64, &err));
    T(cg_gguf_writer_add_tensor(w, "a", CG_QTYPE_I32, 1, (int64_t[]){5}, data, &err));
    T(cg_gguf_writer_add_tensor(w, "b", CG_QTYPE_Q6_K, 1, (int64_t[]){256}, data, &err));
    save(w, dir, "seed_align64_v2.gguf");

    // 5. a tokenizer-like vocabulary.
    T(cg_gguf_writer_new(&w, &err));
    T(cg_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", &err));
    const char *toks[] = {"<s>", "</s>", "Ġthe", "한", "\xe2\x96\x81" "a", "<0x0A>"};
    const int32_t types[] = {3, 3, 1, 1, 1, 6};
    const char *merges[] = {"Ġ t", "Ġt he"};
    T(cg_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 6, &err));
    T(cg_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", CG_GGUF_TYPE_INT32, types, 6, &err));
    T(cg_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 2, &err));
    T(cg_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 0, &err));
    save(w, dir, "seed_vocab.gguf");
    return 0;
}
