// fuzz_gguf.c — libFuzzer target for the GGUF reader.
//
// Opens the input with cg_gguf_open_mem and, when it is accepted, touches everything a caller could:
// every kv through every getter that applies (typed, lenient, array element access, raw copies),
// every tensor (lookup by name, first and last byte of its data). ASan/UBSan do the checking; the
// asserts below check the reader's own promises (lookups find what iteration yields, extents lie
// inside the input).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

#define CHECK(c) \
    do {         \
        if (!(c)) abort(); \
    } while (0)

static volatile unsigned g_sink;

static void touch(const void *p, size_t n) {
    if (!n) return;
    g_sink += ((const unsigned char *)p)[0] + ((const unsigned char *)p)[n - 1];
}

static void walk_kv(const cg_gguf *g, const cg_gguf_kv *kv) {
    cg_err err = {0};
    CHECK(cg_gguf_find(g, kv->key) == kv);
    CHECK(strlen(kv->key) == kv->key_len);
    const char *k = kv->key;
    union {
        uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
        uint64_t u64; int64_t i64; float f32; double f64; bool b;
    } v;
    // Every typed getter: exactly the one matching the type succeeds.
    int n_ok = 0;
    n_ok += cg_gguf_get_u8(g, k, &v.u8, &err) == CG_OK;
    n_ok += cg_gguf_get_i8(g, k, &v.i8, &err) == CG_OK;
    n_ok += cg_gguf_get_u16(g, k, &v.u16, &err) == CG_OK;
    n_ok += cg_gguf_get_i16(g, k, &v.i16, &err) == CG_OK;
    n_ok += cg_gguf_get_u32(g, k, &v.u32, &err) == CG_OK;
    n_ok += cg_gguf_get_i32(g, k, &v.i32, &err) == CG_OK;
    n_ok += cg_gguf_get_u64(g, k, &v.u64, &err) == CG_OK;
    n_ok += cg_gguf_get_i64(g, k, &v.i64, &err) == CG_OK;
    n_ok += cg_gguf_get_f32(g, k, &v.f32, &err) == CG_OK;
    n_ok += cg_gguf_get_f64(g, k, &v.f64, &err) == CG_OK;
    n_ok += cg_gguf_get_bool(g, k, &v.b, &err) == CG_OK;
    cg_gguf_str s;
    n_ok += cg_gguf_get_str(g, k, &s, &err) == CG_OK;
    const cg_gguf_kv *arr;
    n_ok += cg_gguf_get_arr(g, k, CG_GGUF_TYPE_COUNT, &arr, &err) == CG_OK;
    CHECK(n_ok == 1);
    int64_t i64;
    uint64_t u64;
    uint32_t u32;
    double d;
    (void)cg_gguf_get_int(g, k, &i64, &err);
    (void)cg_gguf_get_uint(g, k, &u64, &err);
    (void)cg_gguf_get_u32_any(g, k, &u32, &err);
    (void)cg_gguf_get_real(g, k, &d, &err);

    cg_gguf_scalar sc = cg_gguf_kv_scalar(kv);
    g_sink += sc.u8;
    s = cg_gguf_kv_str(kv);
    touch(s.p, s.n);
    if (kv->type != CG_GGUF_TYPE_ARRAY) return;
    for (uint64_t i = 0; i < kv->n; i++) {
        if (kv->elem_type == CG_GGUF_TYPE_STRING) {
            CHECK(cg_gguf_arr_str(kv, i, &s, &err) == CG_OK);
            touch(s.p, s.n);
        } else {
            CHECK(cg_gguf_arr_scalar(kv, i, &sc, &err) == CG_OK);
            g_sink += sc.u8;
        }
    }
    CHECK(cg_gguf_arr_scalar(kv, kv->n, &sc, &err) != CG_OK);
    CHECK(cg_gguf_arr_str(kv, kv->n, &s, &err) != CG_OK);
    const void *raw = cg_gguf_arr_data(kv);
    if (raw) {
        size_t n = (size_t)kv->n * cg_gguf_type_size(kv->elem_type);
        touch(raw, n);
        void *copy = malloc(n ? n : 1);
        CHECK(cg_gguf_arr_copy(kv, kv->elem_type, copy, n, &err) == CG_OK);
        touch(copy, n);
        free(copy);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cg_err err = {0};
    cg_gguf *g = NULL;
    if (cg_gguf_open_mem(data, size, &g, &err) != CG_OK) {
        CHECK(g == NULL && err.code != CG_OK && err.msg[0]);
        return 0;
    }
    CHECK(cg_gguf_file_size(g) == size);
    CHECK(cg_gguf_version(g) == 2 || cg_gguf_version(g) == 3);
    uint32_t a = cg_gguf_alignment(g);
    CHECK(a && !(a & (a - 1)) && cg_gguf_data_offset(g) % a == 0);
    for (size_t i = 0; i < cg_gguf_n_kv(g); i++) walk_kv(g, cg_gguf_kv_at(g, i));
    CHECK(cg_gguf_kv_at(g, cg_gguf_n_kv(g)) == NULL);
    for (size_t i = 0; i < cg_gguf_n_tensors(g); i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        CHECK(cg_gguf_find_tensor(g, t->name) == t);
        CHECK(t->n_dims >= 1 && t->n_dims <= CG_GGUF_MAX_DIMS);
        CHECK(t->file_offset + t->n_bytes <= size);
        CHECK((const uint8_t *)t->data == data + t->file_offset);
        touch(t->data, (size_t)t->n_bytes);
    }
    CHECK(cg_gguf_tensor_at(g, cg_gguf_n_tensors(g)) == NULL);
    cg_gguf_close(g);
    return 0;
}
