// gguf.h — read-only view of a GGUF file, and a writer for tools and tests.
//
// READER. A cg_gguf maps the file (never copies tensor data) and validates every count, length and
// offset before it is used or anything is allocated from it. After cg_gguf_open* succeeds every
// accessor below is total: it cannot read outside the file. The object is immutable after open and
// safe to share between threads without locking.
//
// What open checks (each failure is an error whose message names the section, the field and the
// byte offset where it was found):
//   * magic "GGUF", version 2 or 3 (1 and anything else: CG_ERR_UNSUPPORTED; a byte-swapped version
//     is reported as a big-endian file, also CG_ERR_UNSUPPORTED);
//   * n_tensors and n_kv against the bytes left in the file and against CG_GGUF_MAX_TENSORS /
//     CG_GGUF_MAX_KV (CG_ERR_LIMIT) before any allocation;
//   * keys: non-empty, at most CG_GGUF_MAX_KEY_LEN bytes, valid UTF-8, no NUL byte, unique;
//   * value types 0..12 (unknown: CG_ERR_FORMAT); bool bytes must be 0 or 1 (anything else is
//     CG_ERR_FORMAT — we do not guess what 2 means); strings and arrays: the declared length must fit
//     in the rest of the file (an array of N u32 needs 4N bytes, so a huge N fails at once) and be
//     at most CG_GGUF_MAX_STRING_LEN / CG_GGUF_MAX_ARRAY_LEN; arrays of arrays are rejected
//     (CG_ERR_FORMAT "nested array"); string values are NOT required to be UTF-8 (tokenizer pieces
//     may be raw bytes) — only keys and tensor names are;
//   * `general.alignment`, when present, must be a u32 that is a non-zero power of two
//     (default CG_GGUF_DEFAULT_ALIGNMENT);
//   * tensor infos: name (non-empty, ≤ CG_GGUF_MAX_NAME_LEN bytes, UTF-8, no NUL, unique),
//     n_dims 1..4, every ne[i] ≥ 0 (0 is legal in ggml and gives an empty tensor), the element count
//     must not overflow int64, the type must be a known ggml type (unknown: CG_ERR_UNSUPPORTED naming
//     the tensor and the id), ne[0] a multiple of the type's block size (CG_ERR_FORMAT), the byte
//     size must not overflow, the offset must be a multiple of the alignment;
//   * the data section starts at the end of the tensor infos rounded up to the alignment; every
//     tensor's [offset, offset + n_bytes) lies inside the file and overlaps no other tensor.
// The reader is more lenient than llama.cpp in one way: tensors need not be packed in file order,
// only aligned, in bounds and non-overlapping.
//
// WRITER. A cg_gguf_writer collects metadata (in insertion order) and tensors (in the order added)
// and writes a GGUF v3 file laid out exactly as llama.cpp / gguf-py do: header, kvs, tensor infos,
// padding to the alignment, then each tensor's data padded to the alignment. Not thread-safe.
#ifndef CG_GGUF_H
#define CG_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define CG_GGUF_MAGIC "GGUF"
#define CG_GGUF_MAX_DIMS 4
#define CG_GGUF_DEFAULT_ALIGNMENT 32u

// Reader caps (a file above one of them fails with CG_ERR_LIMIT). Real models have < 5,000 tensors
// and < 100 keys; the largest arrays (BPE merges) have < 10^6 elements.
#define CG_GGUF_MAX_KV ((uint64_t)1 << 20)
#define CG_GGUF_MAX_TENSORS ((uint64_t)1 << 20)
#define CG_GGUF_MAX_KEY_LEN ((uint64_t)1 << 16)
#define CG_GGUF_MAX_NAME_LEN ((uint64_t)1 << 10)   // ggml itself allows 63; the writer enforces that
#define CG_GGUF_MAX_STRING_LEN ((uint64_t)1 << 30)
#define CG_GGUF_MAX_ARRAY_LEN ((uint64_t)1 << 30)
#define CG_GGUF_GGML_MAX_NAME 63                   // longest tensor name llama.cpp loads

// Metadata value types, as stored in the file.
typedef enum cg_gguf_type {
    CG_GGUF_TYPE_UINT8 = 0,
    CG_GGUF_TYPE_INT8 = 1,
    CG_GGUF_TYPE_UINT16 = 2,
    CG_GGUF_TYPE_INT16 = 3,
    CG_GGUF_TYPE_UINT32 = 4,
    CG_GGUF_TYPE_INT32 = 5,
    CG_GGUF_TYPE_FLOAT32 = 6,
    CG_GGUF_TYPE_BOOL = 7,
    CG_GGUF_TYPE_STRING = 8,
    CG_GGUF_TYPE_ARRAY = 9,
    CG_GGUF_TYPE_UINT64 = 10,
    CG_GGUF_TYPE_INT64 = 11,
    CG_GGUF_TYPE_FLOAT64 = 12,
    CG_GGUF_TYPE_COUNT = 13,
} cg_gguf_type;

// gguf-py's name of a type ("UINT8", "STRING", "ARRAY", "FLOAT32" …), or "UNKNOWN".
const char *cg_gguf_type_name(cg_gguf_type t);
// Bytes of one value of a fixed-size type (1..8); 0 for STRING, ARRAY and unknown types.
size_t cg_gguf_type_size(cg_gguf_type t);
bool cg_gguf_type_is_int(cg_gguf_type t);   // the eight integer types (not BOOL)

// A byte string inside the mapping: NOT NUL-terminated, not necessarily UTF-8. Print with "%.*s".
typedef struct cg_gguf_str {
    const char *p;
    size_t n;
} cg_gguf_str;

// A scalar value; read the member named by the kv's (element) type.
typedef union cg_gguf_scalar {
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    uint32_t u32;
    int32_t i32;
    float f32;
    bool b;
    uint64_t u64;
    int64_t i64;
    double f64;
} cg_gguf_scalar;

// One metadata entry. Borrowed from its cg_gguf (valid until cg_gguf_close); all fields read-only.
typedef struct cg_gguf_kv {
    const char *key;           // NUL-terminated copy, valid UTF-8
    size_t key_len;
    cg_gguf_type type;         // CG_GGUF_TYPE_ARRAY for arrays
    cg_gguf_type elem_type;    // arrays: element type (never ARRAY); scalars and strings: == type
    uint64_t n;                // arrays: element count; otherwise 1
    const unsigned char *raw;  // into the mapping: the value bytes (scalar), the string bytes, or the
                               // array payload (first element / first string's length prefix)
    uint64_t raw_size;         // bytes at raw (string: its length; array: whole payload)
    uint64_t offset;           // file offset of this entry (its key length field), for messages
    const uint64_t *str_off;   // string arrays: offset of element i's length prefix from raw
} cg_gguf_kv;

// One tensor. Borrowed from its cg_gguf; all fields read-only.
typedef struct cg_gguf_tensor {
    const char *name;          // NUL-terminated copy, valid UTF-8
    size_t name_len;
    uint32_t type;             // ggml type id (cg_qtype), known to cg_qtype_get
    uint32_t n_dims;           // 1..4
    int64_t ne[CG_GGUF_MAX_DIMS];   // ne[0] innermost; dims ≥ n_dims are 1
    int64_t n_elems;           // product of ne (fits int64)
    uint64_t offset;           // relative to the data section (as stored in the file)
    uint64_t file_offset;      // absolute: data_offset + offset
    uint64_t n_bytes;          // cg_qtype_row_size(type, ne[0]) * ne[1] * ne[2] * ne[3]
    const void *data;          // into the mapping, aligned to the file's alignment relative to the
                               // file start (so to min(alignment, page size) in memory); n_bytes valid
    size_t index;              // position in the file's tensor table
    uint64_t info_offset;      // file offset of this tensor's info record, for messages
} cg_gguf_tensor;

typedef struct cg_gguf cg_gguf;

// ---- opening --------------------------------------------------------------------------------

// Maps and validates `path`. On success *out owns the mapping; free it with cg_gguf_close.
// Errors: CG_ERR_IO (cannot open/map), CG_ERR_FORMAT (malformed; the message names the section,
// the field and the byte offset), CG_ERR_LIMIT (a count or size above the caps),
// CG_ERR_UNSUPPORTED (version, big-endian file, unknown tensor type), CG_ERR_NOMEM.
cg_status cg_gguf_open(const char *path, cg_gguf **out, cg_err *err);

// As cg_gguf_open over a caller's buffer, which is borrowed: it must stay unchanged and alive until
// cg_gguf_close. Used by the fuzzer and tests.
cg_status cg_gguf_open_mem(const void *data, size_t size, cg_gguf **out, cg_err *err);

void cg_gguf_close(cg_gguf *g);   // accepts NULL

// ---- file facts -----------------------------------------------------------------------------

uint32_t cg_gguf_version(const cg_gguf *g);
uint32_t cg_gguf_alignment(const cg_gguf *g);
uint64_t cg_gguf_data_offset(const cg_gguf *g);   // absolute offset of the tensor data section
uint64_t cg_gguf_file_size(const cg_gguf *g);
const unsigned char *cg_gguf_file_data(const cg_gguf *g);   // the whole mapping (NULL when empty)

// ---- metadata -------------------------------------------------------------------------------

size_t cg_gguf_n_kv(const cg_gguf *g);
// Entry i in file order (0 ≤ i < n_kv), or NULL when out of range.
const cg_gguf_kv *cg_gguf_kv_at(const cg_gguf *g, size_t i);
// Looks a key up (hash table, O(1)). Returns NULL when the key is absent.
const cg_gguf_kv *cg_gguf_find(const cg_gguf *g, const char *key);

// Values of an entry. cg_gguf_kv_scalar: the value of a scalar entry (zeroed union for strings and
// arrays). cg_gguf_kv_str: the string of a STRING entry ({NULL, 0} otherwise).
cg_gguf_scalar cg_gguf_kv_scalar(const cg_gguf_kv *kv);
cg_gguf_str cg_gguf_kv_str(const cg_gguf_kv *kv);

// Array elements. Errors: CG_ERR_TYPE (not an array, or wrong element kind: scalar access to a
// string array or the reverse), CG_ERR_INVALID (i ≥ n).
cg_status cg_gguf_arr_scalar(const cg_gguf_kv *kv, uint64_t i, cg_gguf_scalar *out, cg_err *err);
cg_status cg_gguf_arr_str(const cg_gguf_kv *kv, uint64_t i, cg_gguf_str *out, cg_err *err);
// Raw little-endian elements of a numeric array (n * cg_gguf_type_size(elem_type) bytes), or NULL
// for a non-array or a string array. NOT aligned in general: read with memcpy / cg_le32 etc., or
// copy out with cg_gguf_arr_copy.
const void *cg_gguf_arr_data(const cg_gguf_kv *kv);
// Copies a numeric array into dst (dst_size bytes, must be ≥ n * element size). Errors:
// CG_ERR_TYPE (not a numeric array of `elem_type`), CG_ERR_INVALID (dst too small).
cg_status cg_gguf_arr_copy(const cg_gguf_kv *kv, cg_gguf_type elem_type, void *dst, size_t dst_size,
                           cg_err *err);

// Typed getters by key. Errors: CG_ERR_NOT_FOUND (key absent; message names the key), CG_ERR_TYPE
// (present with another type; message names the key, the expected and the actual type).
// *out is written only on success.
cg_status cg_gguf_get_u8(const cg_gguf *g, const char *key, uint8_t *out, cg_err *err);
cg_status cg_gguf_get_i8(const cg_gguf *g, const char *key, int8_t *out, cg_err *err);
cg_status cg_gguf_get_u16(const cg_gguf *g, const char *key, uint16_t *out, cg_err *err);
cg_status cg_gguf_get_i16(const cg_gguf *g, const char *key, int16_t *out, cg_err *err);
cg_status cg_gguf_get_u32(const cg_gguf *g, const char *key, uint32_t *out, cg_err *err);
cg_status cg_gguf_get_i32(const cg_gguf *g, const char *key, int32_t *out, cg_err *err);
cg_status cg_gguf_get_u64(const cg_gguf *g, const char *key, uint64_t *out, cg_err *err);
cg_status cg_gguf_get_i64(const cg_gguf *g, const char *key, int64_t *out, cg_err *err);
cg_status cg_gguf_get_f32(const cg_gguf *g, const char *key, float *out, cg_err *err);
cg_status cg_gguf_get_f64(const cg_gguf *g, const char *key, double *out, cg_err *err);
cg_status cg_gguf_get_bool(const cg_gguf *g, const char *key, bool *out, cg_err *err);
cg_status cg_gguf_get_str(const cg_gguf *g, const char *key, cg_gguf_str *out, cg_err *err);

// Lenient getters: real files store the same key with different integer (or float) types.
// cg_gguf_get_int accepts any integer type whose value fits in int64; cg_gguf_get_uint any integer
// type with a non-negative value; cg_gguf_get_u32_any any integer type with a value in 0..UINT32_MAX;
// cg_gguf_get_real FLOAT32 or FLOAT64. A value that does not fit: CG_ERR_LIMIT naming key and value.
cg_status cg_gguf_get_int(const cg_gguf *g, const char *key, int64_t *out, cg_err *err);
cg_status cg_gguf_get_uint(const cg_gguf *g, const char *key, uint64_t *out, cg_err *err);
cg_status cg_gguf_get_u32_any(const cg_gguf *g, const char *key, uint32_t *out, cg_err *err);
cg_status cg_gguf_get_real(const cg_gguf *g, const char *key, double *out, cg_err *err);

// An array entry by key whose elements have `elem_type` (CG_GGUF_TYPE_COUNT: any element type).
// Errors: CG_ERR_NOT_FOUND, CG_ERR_TYPE (not an array, or other element type).
cg_status cg_gguf_get_arr(const cg_gguf *g, const char *key, cg_gguf_type elem_type,
                          const cg_gguf_kv **out, cg_err *err);

// ---- tensors --------------------------------------------------------------------------------

size_t cg_gguf_n_tensors(const cg_gguf *g);
// Tensor i in file (table) order, or NULL when out of range.
const cg_gguf_tensor *cg_gguf_tensor_at(const cg_gguf *g, size_t i);
// Looks a tensor up by name (hash table, O(1)). NULL when absent.
const cg_gguf_tensor *cg_gguf_find_tensor(const cg_gguf *g, const char *name);

// ---- writer ---------------------------------------------------------------------------------

typedef struct cg_gguf_writer cg_gguf_writer;

// A new, empty writer (version 3, alignment 32). Errors: CG_ERR_NOMEM.
cg_status cg_gguf_writer_new(cg_gguf_writer **out, cg_err *err);
void cg_gguf_writer_free(cg_gguf_writer *w);   // accepts NULL

// Version to write: 2 or 3 (default 3; the two differ only in the number). For tests.
cg_status cg_gguf_writer_set_version(cg_gguf_writer *w, uint32_t version, cg_err *err);

// Metadata setters. The key must be non-empty valid UTF-8 without NUL, ≤ CG_GGUF_MAX_KEY_LEN bytes
// (else CG_ERR_INVALID). Setting a key that exists replaces its value in place (its position in
// the output is kept); use cg_gguf_writer_remove first to move it to the end. Values are copied.
// Setting "general.alignment" (it must be a UINT32 non-zero power of two, else CG_ERR_INVALID) also
// sets the alignment used for the layout. Errors: CG_ERR_INVALID, CG_ERR_NOMEM.
cg_status cg_gguf_writer_set_u8(cg_gguf_writer *w, const char *key, uint8_t v, cg_err *err);
cg_status cg_gguf_writer_set_i8(cg_gguf_writer *w, const char *key, int8_t v, cg_err *err);
cg_status cg_gguf_writer_set_u16(cg_gguf_writer *w, const char *key, uint16_t v, cg_err *err);
cg_status cg_gguf_writer_set_i16(cg_gguf_writer *w, const char *key, int16_t v, cg_err *err);
cg_status cg_gguf_writer_set_u32(cg_gguf_writer *w, const char *key, uint32_t v, cg_err *err);
cg_status cg_gguf_writer_set_i32(cg_gguf_writer *w, const char *key, int32_t v, cg_err *err);
cg_status cg_gguf_writer_set_u64(cg_gguf_writer *w, const char *key, uint64_t v, cg_err *err);
cg_status cg_gguf_writer_set_i64(cg_gguf_writer *w, const char *key, int64_t v, cg_err *err);
cg_status cg_gguf_writer_set_f32(cg_gguf_writer *w, const char *key, float v, cg_err *err);
cg_status cg_gguf_writer_set_f64(cg_gguf_writer *w, const char *key, double v, cg_err *err);
cg_status cg_gguf_writer_set_bool(cg_gguf_writer *w, const char *key, bool v, cg_err *err);
// A NUL-terminated string / n bytes (any bytes; need not be UTF-8).
cg_status cg_gguf_writer_set_str(cg_gguf_writer *w, const char *key, const char *s, cg_err *err);
cg_status cg_gguf_writer_set_strn(cg_gguf_writer *w, const char *key, const char *s, size_t n, cg_err *err);
// Numeric array: n elements of elem_type (a fixed-size type) at data, native = little-endian.
cg_status cg_gguf_writer_set_arr(cg_gguf_writer *w, const char *key, cg_gguf_type elem_type,
                                 const void *data, uint64_t n, cg_err *err);
// String array: n strings; lens == NULL means each is NUL-terminated.
cg_status cg_gguf_writer_set_arr_str(cg_gguf_writer *w, const char *key, const char *const *strs,
                                     const size_t *lens, uint64_t n, cg_err *err);
// Copies one entry (any type, arrays included) from a reader, under the same key.
cg_status cg_gguf_writer_copy_kv(cg_gguf_writer *w, const cg_gguf_kv *kv, cg_err *err);
// Removes a key; returns false when it was not set.
bool cg_gguf_writer_remove(cg_gguf_writer *w, const char *key);

// Tensors, written in the order added. The name must be 1..CG_GGUF_GGML_MAX_NAME bytes of UTF-8
// without NUL and unique; n_dims 1..4; ne[i] ≥ 0 (ne has n_dims entries); type a known ggml type
// with ne[0] a multiple of its block size. Errors: CG_ERR_INVALID (with the reason), CG_ERR_NOMEM.
//
// cg_gguf_writer_add_tensor: `data` holds the tensor's n_bytes and is BORROWED until the write
// call returns (it may be NULL only for an empty tensor).
cg_status cg_gguf_writer_add_tensor(cg_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const int64_t *ne, const void *data, cg_err *err);

// Streaming producer: called once per tensor, in order, while the file is written. It must push
// exactly the tensor's n_bytes through cg_gguf_sink_write (any number of calls, any sizes) and
// return CG_OK, or return an error (with err set), which aborts the write.
typedef struct cg_gguf_sink cg_gguf_sink;
typedef cg_status (*cg_gguf_produce_fn)(void *user, size_t i_tensor, uint64_t n_bytes, cg_gguf_sink *sink,
                                        cg_err *err);
cg_status cg_gguf_writer_add_tensor_cb(cg_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                       const int64_t *ne, cg_gguf_produce_fn produce, void *user, cg_err *err);
// Appends bytes of the current tensor. Errors: CG_ERR_INVALID (more than n_bytes in total),
// CG_ERR_IO (the file write failed, e.g. disk full).
cg_status cg_gguf_sink_write(cg_gguf_sink *s, const void *p, size_t n, cg_err *err);

size_t cg_gguf_writer_n_tensors(const cg_gguf_writer *w);
size_t cg_gguf_writer_n_kv(const cg_gguf_writer *w);

// Writes the file atomically: to "PATH.tmp", fsync, rename over PATH (then fsync of the directory).
// On any error (including a full disk or a producer error) the temporary file is removed, PATH is
// untouched, and the error is returned (CG_ERR_IO with the path and errno text, or the producer's).
// The writer stays usable (it may be written again).
cg_status cg_gguf_writer_write_file(const cg_gguf_writer *w, const char *path, cg_err *err);
// Appends the whole file to `out` (for tests and small files). Errors: producer errors, CG_ERR_NOMEM.
cg_status cg_gguf_writer_write_mem(const cg_gguf_writer *w, cg_buf *out, cg_err *err);

#endif
