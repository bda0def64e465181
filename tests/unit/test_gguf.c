// test_gguf.c — the GGUF reader and writer.
//
//  * round trips of every value type, arrays, alignment and tensor layout through our writer;
//  * getters (typed, lenient) and their errors; writer argument checks; streaming producers;
//    atomic file writes, including a simulated full disk (RLIMIT_FSIZE);
//  * every prefix of a valid file and thousands of single-byte corruptions (no crash, exact errors);
//  * the hand-made malformed files of tests/gguf_bad/ against their table (expected.tsv);
//  * every model under ../shared/models against MANIFEST.json (independent: written by gguf-py /
//    llama.cpp), and a rewrite of each through our writer that must be byte-identical.
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/num.h"
#include "base/utf8.h"
#include "gguf/gguf.h"
#include "quant/quant.h"

// ---- a sample file with every value type ---------------------------------------------------

static float g_f32_data[16];
static unsigned char g_q8_data[3 * 2 * 34];
static uint16_t g_f16_data[7 * 2 * 3];
static unsigned char g_q4k_data[2 * 144];

static void fill_data(void) {
    for (int i = 0; i < 16; i++) g_f32_data[i] = (float)i * 0.25f - 1.0f;
    for (size_t i = 0; i < sizeof g_q8_data; i++) g_q8_data[i] = (unsigned char)(i * 7 + 3);
    for (size_t i = 0; i < sizeof g_f16_data / 2; i++) g_f16_data[i] = (uint16_t)(0x3c00 + i);
    for (size_t i = 0; i < sizeof g_q4k_data; i++) g_q4k_data[i] = (unsigned char)(255 - i);
}

static const uint8_t A_U8[] = {0, 1, 255};
static const int8_t A_I8[] = {-128, 0, 127};
static const uint16_t A_U16[] = {0, 65535};
static const int16_t A_I16[] = {-32768, 32767};
static const uint32_t A_U32[] = {1, 2, 3, 4000000000u};
static const int32_t A_I32[] = {-2147483647 - 1, 5};
static const uint64_t A_U64[] = {UINT64_MAX, 0};
static const int64_t A_I64[] = {INT64_MIN, INT64_MAX, -1};
static const float A_F32[] = {0.5f, -1e30f, 3.25f};
static const double A_F64[] = {1e-300, -2.5};
static const bool A_BOOL[] = {true, false, true};
static const char *const A_STR[] = {"x", "", "yz", "한국어"};

static cg_gguf_writer *sample_writer(uint32_t alignment) {
    cg_err err = {0};
    cg_gguf_writer *w;
    CG_ASSERT_OK(cg_gguf_writer_new(&w, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_str(w, "general.architecture", "test", &err), &err);
    if (alignment) CG_ASSERT_OK(cg_gguf_writer_set_u32(w, "general.alignment", alignment, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_u8(w, "v.u8", 200, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_i8(w, "v.i8", -100, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_u16(w, "v.u16", 60000, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_i16(w, "v.i16", -30000, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_u32(w, "v.u32", 4000000000u, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_i32(w, "v.i32", -2000000000, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_u64(w, "v.u64", (1ull << 60) + 5, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_i64(w, "v.i64", -(1ll << 60), &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_f32(w, "v.f32", 1.5f, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_f64(w, "v.f64", 1e-300, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_bool(w, "v.bool", true, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_strn(w, "v.str", "a\0b\"\n\xff", 6, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_str(w, "v.empty", "", &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_str(w, "v.키", "값", &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.u8", CG_GGUF_TYPE_UINT8, A_U8, 3, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.i8", CG_GGUF_TYPE_INT8, A_I8, 3, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.u16", CG_GGUF_TYPE_UINT16, A_U16, 2, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.i16", CG_GGUF_TYPE_INT16, A_I16, 2, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.u32", CG_GGUF_TYPE_UINT32, A_U32, 4, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.i32", CG_GGUF_TYPE_INT32, A_I32, 2, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.u64", CG_GGUF_TYPE_UINT64, A_U64, 2, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.i64", CG_GGUF_TYPE_INT64, A_I64, 3, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.f32", CG_GGUF_TYPE_FLOAT32, A_F32, 3, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.f64", CG_GGUF_TYPE_FLOAT64, A_F64, 2, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.bool", CG_GGUF_TYPE_BOOL, A_BOOL, 3, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr_str(w, "a.str", A_STR, NULL, 4, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr(w, "a.empty", CG_GGUF_TYPE_UINT32, NULL, 0, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_arr_str(w, "a.empty_str", NULL, NULL, 0, &err), &err);
    fill_data();
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, "t.f32", CG_QTYPE_F32, 1, (int64_t[]){16}, g_f32_data, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, "t.q8", CG_QTYPE_Q8_0, 2, (int64_t[]){64, 3}, g_q8_data, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, "t.f16", CG_QTYPE_F16, 3, (int64_t[]){7, 2, 3}, g_f16_data, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, "t.empty", CG_QTYPE_F32, 2, (int64_t[]){0, 4}, NULL, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, "t.q4k", CG_QTYPE_Q4_K, 4, (int64_t[]){256, 1, 1, 2}, g_q4k_data, &err),
                 &err);
    return w;
}

// Writes the sample to memory and opens it from a malloc'ed copy of exactly its size (so ASan sees
// any read past the end).
static cg_gguf *open_buf(const cg_buf *b, unsigned char **copy) {
    *copy = malloc(b->len ? b->len : 1);
    memcpy(*copy, b->data, b->len);
    cg_err err = {0};
    cg_gguf *g = NULL;
    CG_ASSERT_OK(cg_gguf_open_mem(*copy, b->len, &g, &err), &err);
    return g;
}

static void check_sample(const cg_gguf *g, uint32_t alignment, bool has_align_kv) {
    cg_err err = {0};
    assert_int_equal(cg_gguf_version(g), 3);
    assert_int_equal(cg_gguf_alignment(g), alignment);
    assert_int_equal(cg_gguf_n_kv(g), has_align_kv ? 30 : 29);
    // File order = insertion order.
    assert_string_equal(cg_gguf_kv_at(g, 0)->key, "general.architecture");
    assert_string_equal(cg_gguf_kv_at(g, cg_gguf_n_kv(g) - 1)->key, "a.empty_str");
    assert_null(cg_gguf_kv_at(g, cg_gguf_n_kv(g)));

    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64;
    float f32; double f64; bool b; cg_gguf_str s;
    CG_ASSERT_OK(cg_gguf_get_u8(g, "v.u8", &u8, &err), &err);     assert_int_equal(u8, 200);
    CG_ASSERT_OK(cg_gguf_get_i8(g, "v.i8", &i8, &err), &err);     assert_int_equal(i8, -100);
    CG_ASSERT_OK(cg_gguf_get_u16(g, "v.u16", &u16, &err), &err);  assert_int_equal(u16, 60000);
    CG_ASSERT_OK(cg_gguf_get_i16(g, "v.i16", &i16, &err), &err);  assert_int_equal(i16, -30000);
    CG_ASSERT_OK(cg_gguf_get_u32(g, "v.u32", &u32, &err), &err);  assert_true(u32 == 4000000000u);
    CG_ASSERT_OK(cg_gguf_get_i32(g, "v.i32", &i32, &err), &err);  assert_int_equal(i32, -2000000000);
    CG_ASSERT_OK(cg_gguf_get_u64(g, "v.u64", &u64, &err), &err);  assert_true(u64 == (1ull << 60) + 5);
    CG_ASSERT_OK(cg_gguf_get_i64(g, "v.i64", &i64, &err), &err);  assert_true(i64 == -(1ll << 60));
    CG_ASSERT_OK(cg_gguf_get_f32(g, "v.f32", &f32, &err), &err);  assert_true(f32 == 1.5f);
    CG_ASSERT_OK(cg_gguf_get_f64(g, "v.f64", &f64, &err), &err);  assert_true(f64 == 1e-300);
    CG_ASSERT_OK(cg_gguf_get_bool(g, "v.bool", &b, &err), &err);  assert_true(b);
    CG_ASSERT_OK(cg_gguf_get_str(g, "v.str", &s, &err), &err);
    assert_int_equal(s.n, 6);
    assert_memory_equal(s.p, "a\0b\"\n\xff", 6);
    CG_ASSERT_OK(cg_gguf_get_str(g, "v.empty", &s, &err), &err);  assert_int_equal(s.n, 0);
    CG_ASSERT_OK(cg_gguf_get_str(g, "v.키", &s, &err), &err);
    assert_int_equal(s.n, strlen("값"));
    assert_memory_equal(s.p, "값", s.n);

    // Arrays: element type, count, every element, raw data, copies.
    struct { const char *key; cg_gguf_type t; const void *data; uint64_t n; } arrs[] = {
        {"a.u8", CG_GGUF_TYPE_UINT8, A_U8, 3},     {"a.i8", CG_GGUF_TYPE_INT8, A_I8, 3},
        {"a.u16", CG_GGUF_TYPE_UINT16, A_U16, 2},  {"a.i16", CG_GGUF_TYPE_INT16, A_I16, 2},
        {"a.u32", CG_GGUF_TYPE_UINT32, A_U32, 4},  {"a.i32", CG_GGUF_TYPE_INT32, A_I32, 2},
        {"a.u64", CG_GGUF_TYPE_UINT64, A_U64, 2},  {"a.i64", CG_GGUF_TYPE_INT64, A_I64, 3},
        {"a.f32", CG_GGUF_TYPE_FLOAT32, A_F32, 3}, {"a.f64", CG_GGUF_TYPE_FLOAT64, A_F64, 2},
        {"a.bool", CG_GGUF_TYPE_BOOL, A_BOOL, 3},  {"a.empty", CG_GGUF_TYPE_UINT32, NULL, 0},
    };
    for (size_t k = 0; k < sizeof arrs / sizeof arrs[0]; k++) {
        const cg_gguf_kv *kv;
        CG_ASSERT_OK(cg_gguf_get_arr(g, arrs[k].key, arrs[k].t, &kv, &err), &err);
        assert_int_equal(kv->type, CG_GGUF_TYPE_ARRAY);
        assert_int_equal(kv->elem_type, arrs[k].t);
        assert_int_equal(kv->n, arrs[k].n);
        size_t es = cg_gguf_type_size(arrs[k].t);
        if (arrs[k].n) assert_memory_equal(cg_gguf_arr_data(kv), arrs[k].data, es * arrs[k].n);
        for (uint64_t i = 0; i < kv->n; i++) {
            cg_gguf_scalar v;
            CG_ASSERT_OK(cg_gguf_arr_scalar(kv, i, &v, &err), &err);
            if (arrs[k].t == CG_GGUF_TYPE_BOOL)
                assert_int_equal(v.b, A_BOOL[i]);
            else
                assert_memory_equal(&v, (const char *)arrs[k].data + i * es, es);
        }
        cg_gguf_scalar v;
        assert_int_equal(cg_gguf_arr_scalar(kv, kv->n, &v, &err), CG_ERR_INVALID);
        unsigned char buf[64];
        CG_ASSERT_OK(cg_gguf_arr_copy(kv, arrs[k].t, buf, sizeof buf, &err), &err);
        if (arrs[k].n) assert_memory_equal(buf, arrs[k].data, es * arrs[k].n);
    }
    const cg_gguf_kv *kv;
    CG_ASSERT_OK(cg_gguf_get_arr(g, "a.str", CG_GGUF_TYPE_STRING, &kv, &err), &err);
    assert_int_equal(kv->n, 4);
    assert_null(cg_gguf_arr_data(kv));
    for (uint64_t i = 0; i < 4; i++) {
        CG_ASSERT_OK(cg_gguf_arr_str(kv, i, &s, &err), &err);
        assert_int_equal(s.n, strlen(A_STR[i]));
        assert_memory_equal(s.p, A_STR[i], s.n);
    }
    cg_gguf_scalar v;
    assert_int_equal(cg_gguf_arr_scalar(kv, 0, &v, &err), CG_ERR_TYPE);
    assert_int_equal(cg_gguf_arr_str(kv, 4, &s, &err), CG_ERR_INVALID);
    CG_ASSERT_OK(cg_gguf_get_arr(g, "a.empty_str", CG_GGUF_TYPE_COUNT, &kv, &err), &err);
    assert_int_equal(kv->n, 0);

    // Tensors: llama.cpp's layout (each padded to the alignment, in the order added).
    assert_int_equal(cg_gguf_n_tensors(g), 5);
    assert_int_equal(cg_gguf_data_offset(g) % alignment, 0);
    struct { const char *name; uint32_t type, n_dims; int64_t ne[4]; uint64_t n_bytes; const void *data; } ts[] = {
        {"t.f32", CG_QTYPE_F32, 1, {16, 1, 1, 1}, 64, g_f32_data},
        {"t.q8", CG_QTYPE_Q8_0, 2, {64, 3, 1, 1}, sizeof g_q8_data, g_q8_data},
        {"t.f16", CG_QTYPE_F16, 3, {7, 2, 3, 1}, sizeof g_f16_data, g_f16_data},
        {"t.empty", CG_QTYPE_F32, 2, {0, 4, 1, 1}, 0, NULL},
        {"t.q4k", CG_QTYPE_Q4_K, 4, {256, 1, 1, 2}, sizeof g_q4k_data, g_q4k_data},
    };
    uint64_t off = 0;
    for (size_t i = 0; i < 5; i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        assert_non_null(t);
        assert_ptr_equal(cg_gguf_find_tensor(g, ts[i].name), t);
        assert_string_equal(t->name, ts[i].name);
        assert_int_equal(t->index, i);
        assert_int_equal(t->type, ts[i].type);
        assert_int_equal(t->n_dims, ts[i].n_dims);
        for (int d = 0; d < 4; d++) assert_int_equal(t->ne[d], ts[i].ne[d]);
        assert_int_equal(t->n_elems, ts[i].ne[0] * ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3]);
        assert_int_equal(t->n_bytes, ts[i].n_bytes);
        assert_int_equal(t->offset, off);
        assert_int_equal(t->file_offset, cg_gguf_data_offset(g) + off);
        assert_ptr_equal(t->data, cg_gguf_file_data(g) + t->file_offset);
        if (t->n_bytes) assert_memory_equal(t->data, ts[i].data, t->n_bytes);
        uint64_t padded;
        assert_true(cg_align_up_u64(t->n_bytes, alignment, &padded));
        off += padded;
    }
    assert_int_equal(cg_gguf_file_size(g), cg_gguf_data_offset(g) + off);
    assert_null(cg_gguf_tensor_at(g, 5));
    assert_null(cg_gguf_find_tensor(g, "t.missing"));
    assert_null(cg_gguf_find_tensor(g, "t.f3"));
}

static void test_roundtrip_every_type(void **state) {
    (void)state;
    cg_err err = {0};
    uint32_t aligns[] = {0, 32, 64, 1, 4096};
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
        cg_gguf_writer *w = sample_writer(aligns[k]);
        cg_buf b;
        cg_buf_init(&b);
        CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &b, &err), &err);
        unsigned char *copy;
        cg_gguf *g = open_buf(&b, &copy);
        uint32_t a = aligns[k] ? aligns[k] : 32;
        check_sample(g, a, aligns[k] != 0);
        // The header is byte-for-byte what we expect.
        assert_memory_equal(b.data, "GGUF\3\0\0\0\5\0\0\0\0\0\0\0", 16);
        cg_gguf_close(g);
        free(copy);
        cg_buf_free(&b);
        cg_gguf_writer_free(w);
    }
}

static void test_version2_and_file_open(void **state) {
    (void)state;
    cg_err err = {0};
    cg_gguf_writer *w = sample_writer(0);
    CG_ASSERT_OK(cg_gguf_writer_set_version(w, 2, &err), &err);
    assert_int_equal(cg_gguf_writer_set_version(w, 1, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_set_version(w, 4, &err), CG_ERR_INVALID);
    char *dir = cg_test_tmpdir();
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/v2.gguf", dir);
    CG_ASSERT_OK(cg_gguf_writer_write_file(w, path, &err), &err);
    cg_gguf *g;
    CG_ASSERT_OK(cg_gguf_open(path, &g, &err), &err);
    assert_int_equal(cg_gguf_version(g), 2);
    // The mapping is page-aligned, so tensor data is aligned in memory too.
    for (size_t i = 0; i < cg_gguf_n_tensors(g); i++)
        assert_int_equal((uintptr_t)cg_gguf_tensor_at(g, i)->data % 32, 0);
    cg_gguf_close(g);
    cg_gguf_close(NULL);
    unlink(path);
    // Not a file / missing file: CG_ERR_IO.
    assert_int_equal(cg_gguf_open(dir, &g, &err), CG_ERR_IO);
    assert_null(g);
    assert_int_equal(cg_gguf_open(path, &g, &err), CG_ERR_IO);
    assert_non_null(strstr(err.msg, "v2.gguf"));
    rmdir(dir);
    free(dir);
    cg_gguf_writer_free(w);
}

static void test_getter_errors(void **state) {
    (void)state;
    cg_err err = {0};
    cg_gguf_writer *w = sample_writer(0);
    CG_ASSERT_OK(cg_gguf_writer_set_u8(w, "n.small", 7, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_i32(w, "n.neg", -5, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_u64(w, "n.huge", UINT64_MAX, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_i64(w, "n.i64", 5000000000ll, &err), &err);
    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &b, &err), &err);
    unsigned char *copy;
    cg_gguf *g = open_buf(&b, &copy);

    uint32_t u32 = 123;
    assert_int_equal(cg_gguf_get_u32(g, "no.such.key", &u32, &err), CG_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no.such.key"));
    assert_int_equal(u32, 123);   // untouched on failure
    assert_int_equal(cg_gguf_get_u32(g, "v.u8", &u32, &err), CG_ERR_TYPE);
    assert_non_null(strstr(err.msg, "v.u8"));
    assert_non_null(strstr(err.msg, "UINT8"));
    assert_non_null(strstr(err.msg, "UINT32"));
    cg_gguf_str s;
    assert_int_equal(cg_gguf_get_str(g, "a.str", &s, &err), CG_ERR_TYPE);
    float f;
    assert_int_equal(cg_gguf_get_f32(g, "v.f64", &f, &err), CG_ERR_TYPE);
    const cg_gguf_kv *kv;
    assert_int_equal(cg_gguf_get_arr(g, "a.u8", CG_GGUF_TYPE_INT8, &kv, &err), CG_ERR_TYPE);
    assert_int_equal(cg_gguf_get_arr(g, "v.u8", CG_GGUF_TYPE_COUNT, &kv, &err), CG_ERR_TYPE);
    cg_gguf_scalar v;
    assert_int_equal(cg_gguf_arr_scalar(cg_gguf_find(g, "v.u8"), 0, &v, &err), CG_ERR_TYPE);
    unsigned char small[2];
    assert_int_equal(cg_gguf_arr_copy(cg_gguf_find(g, "a.u32"), CG_GGUF_TYPE_UINT32, small, 2, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_arr_copy(cg_gguf_find(g, "a.u32"), CG_GGUF_TYPE_INT32, small, 2, &err), CG_ERR_TYPE);
    assert_null(cg_gguf_kv_str(cg_gguf_find(g, "v.u8")).p);

    // Lenient integer getters.
    int64_t i64;
    uint64_t u64;
    CG_ASSERT_OK(cg_gguf_get_u32_any(g, "n.small", &u32, &err), &err);   assert_int_equal(u32, 7);
    CG_ASSERT_OK(cg_gguf_get_int(g, "n.neg", &i64, &err), &err);         assert_int_equal(i64, -5);
    CG_ASSERT_OK(cg_gguf_get_int(g, "v.i8", &i64, &err), &err);          assert_int_equal(i64, -100);
    CG_ASSERT_OK(cg_gguf_get_int(g, "v.u16", &i64, &err), &err);         assert_int_equal(i64, 60000);
    CG_ASSERT_OK(cg_gguf_get_int(g, "v.i16", &i64, &err), &err);         assert_int_equal(i64, -30000);
    CG_ASSERT_OK(cg_gguf_get_int(g, "v.i64", &i64, &err), &err);         assert_true(i64 == -(1ll << 60));
    CG_ASSERT_OK(cg_gguf_get_uint(g, "n.huge", &u64, &err), &err);       assert_true(u64 == UINT64_MAX);
    CG_ASSERT_OK(cg_gguf_get_uint(g, "v.u32", &u64, &err), &err);        assert_true(u64 == 4000000000u);
    assert_int_equal(cg_gguf_get_uint(g, "n.neg", &u64, &err), CG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "n.neg"));
    assert_int_equal(cg_gguf_get_int(g, "n.huge", &i64, &err), CG_ERR_LIMIT);
    assert_int_equal(cg_gguf_get_u32_any(g, "n.i64", &u32, &err), CG_ERR_LIMIT);
    assert_int_equal(cg_gguf_get_u32_any(g, "n.neg", &u32, &err), CG_ERR_LIMIT);
    assert_int_equal(cg_gguf_get_int(g, "v.f32", &i64, &err), CG_ERR_TYPE);
    assert_int_equal(cg_gguf_get_int(g, "v.bool", &i64, &err), CG_ERR_TYPE);
    assert_int_equal(cg_gguf_get_int(g, "missing", &i64, &err), CG_ERR_NOT_FOUND);
    double d;
    CG_ASSERT_OK(cg_gguf_get_real(g, "v.f32", &d, &err), &err);   assert_true(d == 1.5);
    CG_ASSERT_OK(cg_gguf_get_real(g, "v.f64", &d, &err), &err);   assert_true(d == 1e-300);
    assert_int_equal(cg_gguf_get_real(g, "v.u8", &d, &err), CG_ERR_TYPE);
    assert_int_equal(cg_gguf_get_real(g, "missing", &d, &err), CG_ERR_NOT_FOUND);

    assert_string_equal(cg_gguf_type_name(CG_GGUF_TYPE_FLOAT64), "FLOAT64");
    assert_string_equal(cg_gguf_type_name((cg_gguf_type)13), "UNKNOWN");
    assert_int_equal(cg_gguf_type_size(CG_GGUF_TYPE_STRING), 0);
    assert_int_equal(cg_gguf_type_size(CG_GGUF_TYPE_INT64), 8);
    cg_gguf_close(g);
    free(copy);
    cg_buf_free(&b);
    cg_gguf_writer_free(w);
}

static void test_writer_rules(void **state) {
    (void)state;
    cg_err err = {0};
    cg_gguf_writer *w;
    CG_ASSERT_OK(cg_gguf_writer_new(&w, &err), &err);
    assert_int_equal(cg_gguf_writer_set_u32(w, "", 1, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_set_u32(w, "bad\xff", 1, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_set_u8(w, "general.alignment", 32, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_set_u32(w, "general.alignment", 48, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_set_u32(w, "general.alignment", 0, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_set_arr(w, "x", CG_GGUF_TYPE_STRING, NULL, 0, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_set_arr(w, "x", CG_GGUF_TYPE_ARRAY, NULL, 0, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_set_arr(w, "x", CG_GGUF_TYPE_BOOL, (const unsigned char[]){1, 2}, 2, &err),
                     CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_n_kv(w), 0);

    // Replacing keeps the position; remove moves nothing else.
    CG_ASSERT_OK(cg_gguf_writer_set_u32(w, "a", 1, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_u32(w, "b", 2, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_u32(w, "c", 3, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_str(w, "b", "two", &err), &err);
    assert_int_equal(cg_gguf_writer_n_kv(w), 3);
    assert_true(cg_gguf_writer_remove(w, "a"));
    assert_false(cg_gguf_writer_remove(w, "a"));
    CG_ASSERT_OK(cg_gguf_writer_set_u32(w, "a", 10, &err), &err);

    // Tensor checks.
    float x[32] = {0};
    int64_t ne1[] = {32};
    assert_int_equal(cg_gguf_writer_add_tensor(w, "", CG_QTYPE_F32, 1, ne1, x, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_add_tensor(w, "t", CG_QTYPE_F32, 0, ne1, x, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_add_tensor(w, "t", CG_QTYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, x, &err),
                     CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_add_tensor(w, "t", CG_QTYPE_Q8_0, 1, (int64_t[]){33}, x, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "block size"));
    assert_int_equal(cg_gguf_writer_add_tensor(w, "t", 99, 1, ne1, x, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_add_tensor(w, "t", CG_QTYPE_F32, 1, (int64_t[]){-1}, x, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_add_tensor(w, "t", CG_QTYPE_F32, 1, ne1, NULL, &err), CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_add_tensor(w, "t", CG_QTYPE_F32, 4,
                                               (int64_t[]){1ll << 40, 1ll << 40, 1, 1}, x, &err),
                     CG_ERR_INVALID);
    assert_int_equal(cg_gguf_writer_add_tensor_cb(w, "t", CG_QTYPE_F32, 1, ne1, NULL, NULL, &err), CG_ERR_INVALID);
    char name64[65];
    memset(name64, 'n', 64);
    name64[64] = 0;
    assert_int_equal(cg_gguf_writer_add_tensor(w, name64, CG_QTYPE_F32, 1, ne1, x, &err), CG_ERR_INVALID);
    name64[63] = 0;   // 63 bytes: ggml's limit, accepted
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, name64, CG_QTYPE_F32, 1, ne1, x, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, "t", CG_QTYPE_F32, 1, ne1, x, &err), &err);
    assert_int_equal(cg_gguf_writer_add_tensor(w, "t", CG_QTYPE_F32, 1, ne1, x, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_equal(cg_gguf_writer_n_tensors(w), 2);

    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &b, &err), &err);
    unsigned char *copy;
    cg_gguf *g = open_buf(&b, &copy);
    assert_int_equal(cg_gguf_n_kv(g), 3);
    assert_string_equal(cg_gguf_kv_at(g, 0)->key, "b");
    assert_string_equal(cg_gguf_kv_at(g, 1)->key, "c");
    assert_string_equal(cg_gguf_kv_at(g, 2)->key, "a");
    cg_gguf_str s;
    CG_ASSERT_OK(cg_gguf_get_str(g, "b", &s, &err), &err);
    assert_memory_equal(s.p, "two", 3);
    uint32_t u;
    CG_ASSERT_OK(cg_gguf_get_u32(g, "a", &u, &err), &err);
    assert_int_equal(u, 10);
    cg_gguf_close(g);
    free(copy);
    cg_buf_free(&b);
    cg_gguf_writer_free(w);
    cg_gguf_writer_free(NULL);
}

// ---- streaming producers and atomic files ---------------------------------------------------

typedef struct prod {
    size_t chunk;     // bytes per sink call
    int64_t delta;    // write n_bytes + delta
    bool fail;        // return an error instead
    int calls;
} prod;

static cg_status produce(void *user, size_t i_tensor, uint64_t n_bytes, cg_gguf_sink *sink, cg_err *err) {
    prod *p = user;
    p->calls++;
    if (p->fail) return cg_err_set(err, CG_ERR_IO, "producer failed on tensor %zu", i_tensor);
    uint64_t total = (uint64_t)((int64_t)n_bytes + p->delta);
    unsigned char buf[4096];
    for (uint64_t done = 0; done < total;) {
        size_t n = p->chunk;
        if (n > total - done) n = (size_t)(total - done);
        for (size_t k = 0; k < n; k++) buf[k] = (unsigned char)((done + k) * 31 + i_tensor);
        cg_status st = cg_gguf_sink_write(sink, buf, n, err);
        if (st) return st;
        done += n;
    }
    return CG_OK;
}

static cg_gguf_writer *producer_writer(prod *p, int64_t n_elems) {
    cg_err err = {0};
    cg_gguf_writer *w;
    CG_ASSERT_OK(cg_gguf_writer_new(&w, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_str(w, "general.architecture", "test", &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_add_tensor_cb(w, "p.a", CG_QTYPE_F32, 1, (int64_t[]){n_elems}, produce, p, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_add_tensor_cb(w, "p.b", CG_QTYPE_Q8_0, 2, (int64_t[]){32, 5}, produce, p, &err), &err);
    return w;
}

static void test_producer(void **state) {
    (void)state;
    cg_err err = {0};
    prod p = {.chunk = 7};
    cg_gguf_writer *w = producer_writer(&p, 1000);
    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &b, &err), &err);
    assert_int_equal(p.calls, 2);
    unsigned char *copy;
    cg_gguf *g = open_buf(&b, &copy);
    for (size_t i = 0; i < 2; i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        const unsigned char *d = t->data;
        for (uint64_t k = 0; k < t->n_bytes; k++) assert_int_equal(d[k], (unsigned char)(k * 31 + i));
    }
    assert_int_equal(cg_gguf_tensor_at(g, 1)->offset, 4000 + 0 /* 4000 is a multiple of 32 */);
    cg_gguf_close(g);
    free(copy);

    // Too few / too many bytes / an error: the write fails with a message naming the tensor.
    p = (prod){.chunk = 100, .delta = -1};
    cg_buf_reset(&b);
    assert_int_equal(cg_gguf_writer_write_mem(w, &b, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "p.a"));
    p = (prod){.chunk = 100, .delta = 1};
    assert_int_equal(cg_gguf_writer_write_mem(w, &b, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "more than"));
    p = (prod){.chunk = 100, .fail = true};
    assert_int_equal(cg_gguf_writer_write_mem(w, &b, &err), CG_ERR_IO);
    assert_non_null(strstr(err.msg, "producer failed"));
    cg_buf_free(&b);
    cg_gguf_writer_free(w);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_write_file_atomic(void **state) {
    (void)state;
    cg_err err = {0};
    char *dir = cg_test_tmpdir();
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    // Same bytes as the in-memory writer; no temporary left behind.
    prod p = {.chunk = 4096};
    cg_gguf_writer *w = producer_writer(&p, 1 << 16);
    CG_ASSERT_OK(cg_gguf_writer_write_file(w, path, &err), &err);
    assert_false(exists(tmp));
    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &b, &err), &err);
    size_t n;
    unsigned char *disk = cg_test_read_path(path, &n);
    assert_int_equal(n, b.len);
    assert_memory_equal(disk, b.data, n);
    free(disk);

    // A producer error: the old file stays as it was, the temporary is removed.
    FILE *f = fopen(path, "wb");
    fputs("old", f);
    fclose(f);
    p.fail = true;
    assert_int_equal(cg_gguf_writer_write_file(w, path, &err), CG_ERR_IO);
    assert_false(exists(tmp));
    disk = cg_test_read_path(path, &n);
    assert_int_equal(n, 3);
    free(disk);
    p.fail = false;

    // A full disk, simulated with RLIMIT_FSIZE (writes past 16 KiB fail with EFBIG): an error, not a
    // truncated file.
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {16384, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cg_status st = cg_gguf_writer_write_file(w, path, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_sig);
    assert_int_equal(st, CG_ERR_IO);
    assert_non_null(strstr(err.msg, "out.gguf.tmp"));
    assert_false(exists(tmp));
    disk = cg_test_read_path(path, &n);
    assert_int_equal(n, 3);
    free(disk);

    // A directory that does not exist.
    char bad[PATH_MAX + 16];
    snprintf(bad, sizeof bad, "%s/no/such/dir.gguf", dir);
    assert_int_equal(cg_gguf_writer_write_file(w, bad, &err), CG_ERR_IO);

    unlink(path);
    rmdir(dir);
    free(dir);
    cg_buf_free(&b);
    cg_gguf_writer_free(w);
}

// ---- corruption: every prefix, every byte ---------------------------------------------------

// Touches everything a caller could touch (what the fuzzer does too).
static void walk(const cg_gguf *g) {
    cg_err err = {0};
    volatile unsigned sink = 0;
    for (size_t i = 0; i < cg_gguf_n_kv(g); i++) {
        const cg_gguf_kv *kv = cg_gguf_kv_at(g, i);
        assert_ptr_equal(cg_gguf_find(g, kv->key), kv);
        cg_gguf_scalar v = cg_gguf_kv_scalar(kv);
        sink += v.u8;
        cg_gguf_str s = cg_gguf_kv_str(kv);
        if (s.n) sink += (unsigned char)s.p[s.n - 1];
        for (uint64_t k = 0; kv->type == CG_GGUF_TYPE_ARRAY && k < kv->n; k++) {
            if (kv->elem_type == CG_GGUF_TYPE_STRING) {
                assert_int_equal(cg_gguf_arr_str(kv, k, &s, &err), CG_OK);
                if (s.n) sink += (unsigned char)s.p[s.n - 1];
            } else {
                assert_int_equal(cg_gguf_arr_scalar(kv, k, &v, &err), CG_OK);
                sink += v.u8;
            }
        }
    }
    for (size_t i = 0; i < cg_gguf_n_tensors(g); i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        assert_ptr_equal(cg_gguf_find_tensor(g, t->name), t);
        if (t->n_bytes) sink += ((const unsigned char *)t->data)[0] + ((const unsigned char *)t->data)[t->n_bytes - 1];
    }
    (void)sink;
}

static void test_every_prefix_and_byte(void **state) {
    (void)state;
    cg_err err = {0};
    cg_gguf_writer *w = sample_writer(0);
    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &b, &err), &err);
    unsigned char *copy;
    cg_gguf *g = open_buf(&b, &copy);
    uint64_t data_end = 0, data_offset = cg_gguf_data_offset(g);
    for (size_t i = 0; i < cg_gguf_n_tensors(g); i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        if (t->file_offset + t->n_bytes > data_end) data_end = t->file_offset + t->n_bytes;
    }
    cg_gguf_close(g);
    free(copy);

    // Every prefix shorter than the end of the last tensor's data is an error (FORMAT) whose message
    // says "truncated" or "past the end"; longer prefixes only lose trailing padding and are valid.
    for (size_t n = 0; n <= b.len; n++) {
        unsigned char *p = malloc(n ? n : 1);
        memcpy(p, b.data, n);
        cg_gguf *h = NULL;
        cg_status st = cg_gguf_open_mem(p, n, &h, &err);
        if (n < data_end) {
            if (st != CG_ERR_FORMAT) fail_msg("prefix %zu: status %d (%s)", n, (int)st, err.msg);
            assert_null(h);
            assert_true(strstr(err.msg, "truncated") || strstr(err.msg, "past the end"));
            assert_non_null(strstr(err.msg, "offset"));
        } else {
            CG_ASSERT_OK(st, &err);
            walk(h);
            cg_gguf_close(h);
        }
        free(p);
    }

    // Every byte of the header and metadata, set to a few values: never a crash or a leak; when
    // the result still opens, everything in it is reachable.
    static const int vals[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, -1 /* flip low bit */};
    int n_ok = 0, n_bad = 0;
    for (size_t i = 0; i < data_offset; i++)
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
            unsigned char *p = malloc(b.len);
            memcpy(p, b.data, b.len);
            p[i] = vals[k] < 0 ? (unsigned char)(p[i] ^ 1) : (unsigned char)vals[k];
            cg_gguf *h = NULL;
            cg_status st = cg_gguf_open_mem(p, b.len, &h, &err);
            if (st == CG_OK) {
                walk(h);
                cg_gguf_close(h);
                n_ok++;
            } else {
                assert_null(h);
                assert_true(strlen(err.msg) > 10);
                assert_non_null(strstr(err.msg, "gguf"));
                n_bad++;
            }
            free(p);
        }
    assert_true(n_bad > 0 && n_ok > 0);
    cg_buf_free(&b);
    cg_gguf_writer_free(w);
}

// ---- tests/gguf_bad ------------------------------------------------------------------------

static cg_status status_from_name(const char *s) {
    if (!strcmp(s, "FORMAT")) return CG_ERR_FORMAT;
    if (!strcmp(s, "LIMIT")) return CG_ERR_LIMIT;
    if (!strcmp(s, "UNSUPPORTED")) return CG_ERR_UNSUPPORTED;
    if (!strcmp(s, "IO")) return CG_ERR_IO;
    fail_msg("unknown status name '%s' in expected.tsv", s);
    return CG_OK;
}

static void test_bad_files(void **state) {
    (void)state;
    const char *src = getenv("CHINGU_SRC");
    if (!src) src = ".";
    char tsv[PATH_MAX];
    snprintf(tsv, sizeof tsv, "%s/tests/gguf_bad/expected.tsv", src);
    FILE *f = fopen(tsv, "r");
    if (!f) fail_msg("cannot open %s (set CHINGU_SRC)", tsv);
    char line[1024];
    int n_cases = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = 0;
        char *name = strtok(line, "\t"), *status = strtok(NULL, "\t"), *sub = strtok(NULL, "\t");
        if (!name || !status || !sub) fail_msg("bad line in expected.tsv");
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/tests/gguf_bad/%s", src, name);
        cg_err err = {0};
        cg_gguf *g = NULL;
        cg_status st = cg_gguf_open(path, &g, &err);
        if (st != status_from_name(status) || !strstr(err.msg, sub))
            fail_msg("%s: got status %s, message \"%s\"; expected %s with \"%s\"", name, cg_status_name(st), err.msg,
                     status, sub);
        assert_null(g);
        // Also through the in-memory path, from an exact-size copy.
        size_t n;
        unsigned char *data = cg_test_read_path(path, &n);
        unsigned char *exact = malloc(n ? n : 1);
        if (n) memcpy(exact, data, n);
        cg_err err2 = {0};
        assert_int_equal(cg_gguf_open_mem(exact, n, &g, &err2), st);
        assert_string_equal(err2.msg, err.msg);
        free(exact);
        free(data);
        n_cases++;
    }
    fclose(f);
    assert_true(n_cases >= 40);
    const char *oks[] = {"ok_base.gguf", "ok_v2.gguf"};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/tests/gguf_bad/%s", src, oks[i]);
        cg_err err = {0};
        cg_gguf *g;
        CG_ASSERT_OK(cg_gguf_open(path, &g, &err), &err);
        assert_int_equal(cg_gguf_n_tensors(g), 2);
        assert_int_equal(cg_gguf_version(g), i == 0 ? 3 : 2);
        walk(g);
        cg_gguf_close(g);
    }
}

// ---- the shared models against MANIFEST.json -----------------------------------------------

static size_t n_codepoints(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    return c;
}

static void check_manifest_kv(const cg_gguf *g, const char *path, const char *key, json_t *want) {
    const cg_gguf_kv *kv = cg_gguf_find(g, key);
    if (!kv) fail_msg("%s: key %s missing", path, key);
    if (json_is_string(want)) {
        if (kv->type != CG_GGUF_TYPE_STRING) fail_msg("%s: %s is not a string", path, key);
        cg_gguf_str s = cg_gguf_kv_str(kv);
        const char *w = json_string_value(want);
        size_t wn = json_string_length(want);
        unsigned long n_chars;
        char tail;
        if (sscanf(w, "(%lu chars%c", &n_chars, &tail) == 2 && tail == ')') {   // MANIFEST abbreviates
            if (n_codepoints(s.p, s.n) != n_chars) fail_msg("%s: %s has %zu chars, want %lu", path, key,
                                                            n_codepoints(s.p, s.n), n_chars);
        } else if (s.n != wn || memcmp(s.p, w, wn) != 0) {
            fail_msg("%s: %s = \"%.*s\", want \"%s\"", path, key, (int)s.n, s.p, w);
        }
    } else if (json_is_integer(want)) {
        cg_err err = {0};
        int64_t v;
        if (cg_gguf_get_int(g, key, &v, &err) != CG_OK) fail_msg("%s: %s", path, err.msg);
        if (v != json_integer_value(want)) fail_msg("%s: %s = %" PRId64 ", want %lld", path, key, v,
                                                    (long long)json_integer_value(want));
    } else if (json_is_real(want)) {
        cg_err err = {0};
        double v;
        if (cg_gguf_get_real(g, key, &v, &err) != CG_OK) fail_msg("%s: %s", path, err.msg);
        if (v != json_real_value(want)) fail_msg("%s: %s = %.17g, want %.17g", path, key, v, json_real_value(want));
    } else if (json_is_boolean(want)) {
        cg_err err = {0};
        bool v;
        if (cg_gguf_get_bool(g, key, &v, &err) != CG_OK) fail_msg("%s: %s", path, err.msg);
        if (v != json_is_true(want)) fail_msg("%s: %s = %d", path, key, v);
    } else {
        fail_msg("%s: %s: unexpected JSON type in MANIFEST", path, key);
    }
}

// Rewrites a file through our writer (kvs copied, tensors borrowed) and returns the bytes.
static void rewrite(const cg_gguf *g, cg_buf *out) {
    cg_err err = {0};
    cg_gguf_writer *w;
    CG_ASSERT_OK(cg_gguf_writer_new(&w, &err), &err);
    CG_ASSERT_OK(cg_gguf_writer_set_version(w, cg_gguf_version(g), &err), &err);
    for (size_t i = 0; i < cg_gguf_n_kv(g); i++) CG_ASSERT_OK(cg_gguf_writer_copy_kv(w, cg_gguf_kv_at(g, i), &err), &err);
    for (size_t i = 0; i < cg_gguf_n_tensors(g); i++) {
        const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
        CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err), &err);
    }
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, out, &err), &err);
    cg_gguf_writer_free(w);
}

static void test_manifest_models(void **state) {
    (void)state;
    const char *models = cg_test_models_dir();
    if (!models) {
        skip();
        return;
    }
    char mpath[PATH_MAX * 2];
    snprintf(mpath, sizeof mpath, "%s/MANIFEST.json", models);
    json_error_t jerr;
    json_t *m = json_load_file(mpath, 0, &jerr);
    if (!m) fail_msg("cannot parse %s: %s", mpath, jerr.text);
    json_t *files = json_object_get(m, "files");
    assert_true(json_array_size(files) >= 100);
    size_t i_file, n_rewritten = 0;
    json_t *e;
    json_array_foreach(files, i_file, e) {
        const char *rel = json_string_value(json_object_get(e, "path"));   // "models/…", relative to shared/
        char path[PATH_MAX * 3];
        snprintf(path, sizeof path, "%s/../%s", models, rel);
        cg_err err = {0};
        cg_gguf *g;
        if (cg_gguf_open(path, &g, &err) != CG_OK) fail_msg("%s: %s", path, err.msg);
        assert_int_equal(cg_gguf_version(g), json_integer_value(json_object_get(e, "gguf_version")));
        assert_int_equal(cg_gguf_alignment(g), json_integer_value(json_object_get(e, "alignment")));
        assert_int_equal(cg_gguf_data_offset(g), json_integer_value(json_object_get(e, "data_offset")));
        assert_int_equal(cg_gguf_file_size(g), json_integer_value(json_object_get(e, "size")));

        json_t *kvs = json_object_get(e, "kv"), *arrays = json_object_get(e, "arrays");
        assert_int_equal(cg_gguf_n_kv(g), json_object_size(kvs) + json_object_size(arrays));
        const char *key;
        json_t *val;
        json_object_foreach(kvs, key, val) check_manifest_kv(g, path, key, val);
        json_object_foreach(arrays, key, val) {
            const cg_gguf_kv *kv;
            if (cg_gguf_get_arr(g, key, CG_GGUF_TYPE_COUNT, &kv, &err) != CG_OK) fail_msg("%s: %s", path, err.msg);
            assert_string_equal(cg_gguf_type_name(kv->elem_type), json_string_value(json_object_get(val, "elem_type")));
            assert_int_equal(kv->n, json_integer_value(json_object_get(val, "n")));
        }

        json_t *tensors = json_object_get(e, "tensors");
        assert_int_equal(cg_gguf_n_tensors(g), json_array_size(tensors));
        size_t i;
        json_t *jt;
        json_array_foreach(tensors, i, jt) {
            const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
            const char *name = json_string_value(json_object_get(jt, "name"));
            assert_string_equal(t->name, name);
            assert_ptr_equal(cg_gguf_find_tensor(g, name), t);
            assert_int_equal(t->type, json_integer_value(json_object_get(jt, "ggml_type_id")));
            assert_true(strcasecmp(cg_qtype_name(t->type), json_string_value(json_object_get(jt, "type"))) == 0);
            json_t *ne = json_object_get(jt, "ne");
            assert_int_equal(t->n_dims, json_array_size(ne));
            for (uint32_t d = 0; d < t->n_dims; d++) assert_int_equal(t->ne[d], json_integer_value(json_array_get(ne, d)));
            // MANIFEST's "offset" is the absolute file offset (its first tensor sits at data_offset).
            assert_int_equal(t->file_offset, json_integer_value(json_object_get(jt, "offset")));
            assert_int_equal(t->n_bytes, json_integer_value(json_object_get(jt, "n_bytes")));
        }

        // Our writer lays files out exactly like gguf-py / llama.cpp: a rewrite is byte-identical.
        // (Vocab-only files end without padding in gguf-py; llama.cpp and we always pad.)
        if (cg_gguf_n_tensors(g) > 0) {
            cg_buf b;
            cg_buf_init(&b);
            rewrite(g, &b);
            if (b.len != cg_gguf_file_size(g) || memcmp(b.data, cg_gguf_file_data(g), b.len) != 0)
                fail_msg("%s: rewrite differs (%zu vs %" PRIu64 " bytes)", path, b.len, cg_gguf_file_size(g));
            cg_buf_free(&b);
            n_rewritten++;
        }
        cg_gguf_close(g);
    }
    assert_true(n_rewritten >= 90);
    json_decref(m);
}

// ---- sharing between threads ---------------------------------------------------------------

static void *lookup_all(void *arg) {
    const cg_gguf *g = arg;
    for (int rep = 0; rep < 50; rep++) {
        for (size_t i = 0; i < cg_gguf_n_tensors(g); i++) {
            const cg_gguf_tensor *t = cg_gguf_tensor_at(g, i);
            if (cg_gguf_find_tensor(g, t->name) != t) return (void *)1;
        }
        for (size_t i = 0; i < cg_gguf_n_kv(g); i++)
            if (cg_gguf_find(g, cg_gguf_kv_at(g, i)->key) != cg_gguf_kv_at(g, i)) return (void *)1;
    }
    return NULL;
}

static void test_shared_between_threads(void **state) {
    (void)state;
    cg_err err = {0};
    cg_gguf_writer *w;
    CG_ASSERT_OK(cg_gguf_writer_new(&w, &err), &err);
    // 2,000 tensors, as in a large model, and 2,000 keys.
    static float one[32];
    for (int i = 0; i < 2000; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", i);
        CG_ASSERT_OK(cg_gguf_writer_add_tensor(w, name, CG_QTYPE_F32, 1, (int64_t[]){32}, one, &err), &err);
        snprintf(name, sizeof name, "key.%d", i);
        CG_ASSERT_OK(cg_gguf_writer_set_u32(w, name, (uint32_t)i, &err), &err);
    }
    cg_buf b;
    cg_buf_init(&b);
    CG_ASSERT_OK(cg_gguf_writer_write_mem(w, &b, &err), &err);
    unsigned char *copy;
    cg_gguf *g = open_buf(&b, &copy);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, lookup_all, g), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    cg_gguf_close(g);
    free(copy);
    cg_buf_free(&b);
    cg_gguf_writer_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_version2_and_file_open),
        cmocka_unit_test(test_getter_errors),
        cmocka_unit_test(test_writer_rules),
        cmocka_unit_test(test_producer),
        cmocka_unit_test(test_write_file_atomic),
        cmocka_unit_test(test_every_prefix_and_byte),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_manifest_models),
        cmocka_unit_test(test_shared_between_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
