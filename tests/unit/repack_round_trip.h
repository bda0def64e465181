// repack_round_trip.h — the round-trip half shared by the repacked-layout tests (test_repack.c,
// test_repack_k.c, test_repack_q5_0.c, test_repack_q6k.c): a stored matrix is eligible, its repacked
// size equals the stored one, the repacked view carries the layout tag, the caller's buffer and the
// stored row size, the bytes really moved, and unpacking gives the stored bytes back. Include after
// testutil.h and kern/repack.h.
#ifndef CG_TEST_REPACK_ROUND_TRIP_H
#define CG_TEST_REPACK_ROUND_TRIP_H

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

#endif
