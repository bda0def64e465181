// repack_round_trip.h — what the repacked-layout tests (test_repack.c, test_repack_k.c,
// test_repack_q5_0.c, test_repack_q6k.c) share:
//   rt_frand, rt_matrix — the file's random source and a random stored matrix of any type (rows from
//     rt_fill_scaled or the file's own pattern);
//   rt_check — the round trip: a stored matrix is eligible, its repacked size equals the stored one,
//     the repacked view carries the layout tag, the caller's buffer and the stored row size, the
//     bytes really moved, and unpacking gives the stored bytes back;
//   rt_check_errors — the errors every repack shares.
// Include after testutil.h, kern/repack.h and quant/quant.h.
#ifndef CG_TEST_REPACK_ROUND_TRIP_H
#define CG_TEST_REPACK_ROUND_TRIP_H

// Uniform in [−0.5, 0.5), one fixed xorshift sequence per test file.
static uint64_t rt_rng = 0x9E3779B97F4A7C15ULL;
static float rt_frand(void) {
    rt_rng ^= rt_rng << 13, rt_rng ^= rt_rng >> 7, rt_rng ^= rt_rng << 17;
    return (float)(rt_rng >> 40) * 0x1p-24f - 0.5f;
}

// A row with one amplitude in [0, 1) drawn first, every 37th element four times as large.
static inline void rt_fill_scaled(float *row, int64_t n) {
    const float amp = 0.5f + rt_frand();
    for (int64_t i = 0; i < n; i++) row[i] = amp * rt_frand() * (i % 37 == 0 ? 4.0f : 1.0f);
}

// A stored matrix of `type`, n_out rows of n_in: each row's floats from fill(row, n_in), quantized
// with the type's reference; *W is its view named `name`. Returns the bytes (the caller frees).
static unsigned char *rt_matrix(uint32_t type, int64_t n_in, int64_t n_out, const char *name,
                                void (*fill)(float *row, int64_t n), cg_tensor *W) {
    const cg_qtype_traits *tr = cg_qtype_get(type);
    const size_t rb = (size_t)(n_in / tr->blck_size) * tr->type_size;
    unsigned char *w = malloc(rb * (size_t)n_out);
    float *row = malloc((size_t)n_in * sizeof *row);
    for (int64_t o = 0; o < n_out; o++) {
        fill(row, n_in);
        tr->from_f32(row, w + rb * (size_t)o, n_in);
    }
    free(row);
    *W = (cg_tensor){.name = name, .type = type, .ne = {n_in, n_out, 1, 1}, .row_bytes = rb, .data = w};
    return w;
}

typedef struct rt_layout {
    cg_layout layout;
    bool (*eligible)(const cg_tensor *W);
    cg_status (*size)(const cg_tensor *W, size_t *out, cg_err *err);
    cg_status (*repack)(const cg_tensor *W, void *dst, size_t dst_size, cg_tensor *out, cg_err *err);
    void (*unpack)(const void *src, int64_t n_in, int64_t n_rows, void *dst);
} rt_layout;

// Repacks W (stored bytes w) through L and checks the above; returns the repacked bytes (caller
// frees) for the caller's checks by hand.
static unsigned char *rt_check(const rt_layout *L, const cg_tensor *W, const unsigned char *w) {
    cg_err err = {0};
    cg_tensor R;
    size_t n;
    assert_true(L->eligible(W));
    CG_ASSERT_OK(L->size(W, &n, &err), &err);
    assert_int_equal(n, W->row_bytes * (size_t)W->ne[1]);
    unsigned char *r = malloc(n), *back = malloc(n);
    CG_ASSERT_OK(L->repack(W, r, n, &R, &err), &err);
    assert_int_equal(R.layout, L->layout);
    assert_ptr_equal(R.data, r);
    assert_int_equal(R.row_bytes, W->row_bytes);
    assert_true(memcmp(r, w, n) != 0);   // really moved
    L->unpack(r, W->ne[0], W->ne[1], back);
    assert_memory_equal(back, w, n);
    free(back);
    return r;
}

// The errors every repack shares, each CG_ERR_INVALID naming W (an eligible stored matrix), never
// a crash: bad_rows rows (the message gives the count), another type (other_type), rows of
// bad_n_in elements (not whole blocks, row_bytes disagrees), a view already in L's layout (not
// eligible, and refused), and a buffer of `small` bytes (shorter than the repack: "needs").
static void rt_check_errors(const rt_layout *L, const cg_tensor *W, int64_t bad_rows, uint32_t other_type,
                            int64_t bad_n_in, size_t small) {
    cg_err err = {0};
    cg_tensor bad = *W, R;
    size_t n;
    char count[24];
    snprintf(count, sizeof count, "%lld", (long long)bad_rows);
    bad.ne[1] = bad_rows;
    assert_false(L->eligible(&bad));
    assert_int_equal(L->size(&bad, &n, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, W->name));
    assert_non_null(strstr(err.msg, count));
    print_message("wrong shape: %s\n", err.msg);
    bad = *W;
    bad.type = other_type;
    assert_int_equal(L->size(&bad, &n, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, W->name));
    bad = *W;
    bad.ne[0] = bad_n_in;
    assert_int_equal(L->size(&bad, &n, &err), CG_ERR_INVALID);
    bad = *W;
    bad.layout = L->layout;   // already repacked
    assert_false(L->eligible(&bad));
    unsigned char *buf = malloc(small);
    assert_int_equal(L->repack(&bad, buf, small, &R, &err), CG_ERR_INVALID);
    assert_int_equal(L->repack(W, buf, small, &R, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "needs"));
    assert_non_null(strstr(err.msg, W->name));
    print_message("short buffer: %s\n", err.msg);
    free(buf);
}

#endif
