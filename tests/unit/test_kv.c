// test_kv.c — the paged KV cache's block tables, checked against hand-computed expectations:
// allocation in order, sharing by fork, reference counts, copy-on-write, release, exhaustion.
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "engine/kv.h"

static cg_kv *mk(int n_blocks, int max_seqs, cg_kv_dtype t) {
    cg_err err = {0};
    cg_kv_params p = {.n_layer = 2, .n_embd_k = 8, .n_embd_v = 4, .block_size = 4, .n_blocks = n_blocks,
                      .max_seqs = max_seqs, .type = t};
    cg_kv *kv = NULL;
    CG_ASSERT_OK(cg_kv_new(&p, &kv, &err), &err);
    return kv;
}

static void test_alloc_and_rows(void **state) {
    (void)state;
    cg_err err = {0};
    cg_kv *kv = mk(4, 2, CG_KV_F32);
    assert_int_equal(cg_kv_n_free_blocks(kv), 4);
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 0, 0, 5, &err), &err);   // 5 tokens of 4 per block → 2 blocks
    assert_int_equal(cg_kv_seq_len(kv, 0), 5);
    assert_int_equal(cg_kv_n_free_blocks(kv), 2);
    assert_int_equal(cg_kv_block_refcount(kv, 0), 1);
    assert_int_equal(cg_kv_block_refcount(kv, 1), 1);
    assert_int_equal(cg_kv_block_refcount(kv, 2), 0);
    // Position 4 is row 0 of the second block: 4 rows × 8 floats after the first block's start.
    float *r0 = cg_kv_k_row(kv, 0, 0, 0), *r4 = cg_kv_k_row(kv, 0, 0, 4);
    assert_ptr_equal(r4, r0 + 4 * 8);
    assert_null(cg_kv_k_row(kv, 0, 0, 5));   // beyond the length
    assert_null(cg_kv_v_row(kv, 2, 0, 0));   // no layer 2
    const void *kb[4], *vb[4];
    assert_int_equal(cg_kv_seq_blocks(kv, 1, 0, kb, vb, 4), 2);
    assert_ptr_equal(kb[0], cg_kv_k_row(kv, 1, 0, 0));
    assert_ptr_equal(vb[1], cg_kv_v_row(kv, 1, 0, 4));
    // Appending within the last block allocates nothing; past it, one block.
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 0, 5, 8, &err), &err);
    assert_int_equal(cg_kv_n_free_blocks(kv), 2);
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 0, 8, 9, &err), &err);
    assert_int_equal(cg_kv_n_free_blocks(kv), 1);
    // Rewriting from position 2 truncates: blocks past the new end are released first.
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 0, 2, 3, &err), &err);
    assert_int_equal(cg_kv_seq_len(kv, 0), 3);
    assert_int_equal(cg_kv_n_free_blocks(kv), 3);
    cg_kv_seq_clear(kv, 0);
    assert_int_equal(cg_kv_n_free_blocks(kv), 4);
    assert_int_equal(cg_kv_seq_len(kv, 0), 0);
    cg_kv_free(kv);
}

static void test_fork_refcount_and_cow(void **state) {
    (void)state;
    cg_err err = {0};
    cg_kv *kv = mk(6, 3, CG_KV_F16);
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 0, 0, 6, &err), &err);   // blocks 0, 1
    uint16_t *row = cg_kv_k_row(kv, 0, 0, 5);
    row[3] = 0x3c00;   // 1.0 in F16
    CG_ASSERT_OK(cg_kv_seq_fork(kv, 0, 1, &err), &err);
    CG_ASSERT_OK(cg_kv_seq_fork(kv, 0, 2, &err), &err);
    assert_int_equal(cg_kv_block_refcount(kv, 0), 3);
    assert_int_equal(cg_kv_block_refcount(kv, 1), 3);
    assert_int_equal(cg_kv_n_free_blocks(kv), 4);
    assert_ptr_equal(cg_kv_k_row(kv, 0, 1, 5), row);   // shared storage
    // Sequence 1 appends at position 6, inside shared block 1: copy-on-write gives it a private
    // copy (with the old contents), the others keep block 1.
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 1, 6, 7, &err), &err);
    assert_int_equal(cg_kv_block_refcount(kv, 1), 2);
    assert_int_equal(cg_kv_block_refcount(kv, 0), 3);
    assert_int_equal(cg_kv_n_free_blocks(kv), 3);
    uint16_t *copy = cg_kv_k_row(kv, 0, 1, 5);
    assert_ptr_not_equal(copy, row);
    assert_int_equal(copy[3], 0x3c00);
    copy[3] = 0;
    assert_int_equal(row[3], 0x3c00);   // the original is untouched
    // Releasing: refcounts drop, blocks return only when the last user lets go.
    cg_kv_seq_clear(kv, 0);
    assert_int_equal(cg_kv_block_refcount(kv, 0), 2);
    assert_int_equal(cg_kv_n_free_blocks(kv), 3);
    cg_kv_seq_clear(kv, 2);
    assert_int_equal(cg_kv_block_refcount(kv, 0), 1);
    assert_int_equal(cg_kv_block_refcount(kv, 1), 0);
    assert_int_equal(cg_kv_n_free_blocks(kv), 4);
    cg_kv_seq_clear(kv, 1);
    assert_int_equal(cg_kv_n_free_blocks(kv), 6);
    // Forking onto a sequence that holds blocks releases them first.
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 0, 0, 4, &err), &err);
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 1, 0, 8, &err), &err);
    assert_int_equal(cg_kv_n_free_blocks(kv), 3);
    CG_ASSERT_OK(cg_kv_seq_fork(kv, 0, 1, &err), &err);
    assert_int_equal(cg_kv_n_free_blocks(kv), 5);
    assert_int_equal(cg_kv_seq_len(kv, 1), 4);
    cg_kv_free(kv);
}

static void test_exhaustion_and_bad_input(void **state) {
    (void)state;
    cg_err err = {0};
    cg_kv *kv = mk(2, 2, CG_KV_F32);
    CG_ASSERT_OK(cg_kv_seq_prepare(kv, 0, 0, 8, &err), &err);   // the whole pool
    assert_int_equal(cg_kv_seq_prepare(kv, 1, 0, 1, &err), CG_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "cache full"));
    assert_int_equal(cg_kv_seq_len(kv, 1), 0);
    assert_int_equal(cg_kv_seq_prepare(kv, 0, 8, 9, &err), CG_ERR_LIMIT);
    assert_int_equal(cg_kv_seq_len(kv, 0), 8);   // a failed append changed nothing
    // Copy-on-write needs a free block too.
    CG_ASSERT_OK(cg_kv_seq_fork(kv, 0, 1, &err), &err);
    assert_int_equal(cg_kv_seq_prepare(kv, 1, 7, 8, &err), CG_ERR_LIMIT);
    assert_int_equal(cg_kv_seq_prepare(kv, 0, 10, 11, &err), CG_ERR_INVALID);   // gap
    assert_non_null(strstr(err.msg, "gap"));
    assert_int_equal(cg_kv_seq_prepare(kv, 2, 0, 1, &err), CG_ERR_INVALID);     // no sequence 2
    assert_int_equal(cg_kv_seq_prepare(kv, 0, 3, 3, &err), CG_ERR_INVALID);     // empty range
    assert_int_equal(cg_kv_seq_fork(kv, 0, 0, &err), CG_ERR_INVALID);
    assert_int_equal(cg_kv_seq_len(kv, 5), -1);
    assert_int_equal(cg_kv_block_refcount(kv, 2), -1);
    cg_kv_free(kv);

    cg_kv_params p = {.n_layer = 1, .n_embd_k = 8, .n_embd_v = 8, .block_size = 0, .n_blocks = 1, .max_seqs = 1};
    cg_kv *bad = NULL;
    assert_int_equal(cg_kv_new(&p, &bad, &err), CG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "block_size 0"));
    p.block_size = 4096;
    p.n_blocks = INT32_MAX;
    p.type = CG_KV_F32;
    p.n_embd_k = 1 << 20;   // 4096 × 4 bytes × 2^20 × 2^31 overflows 64 bits
    assert_int_equal(cg_kv_new(&p, &bad, &err), CG_ERR_LIMIT);
    assert_null(bad);
    cg_kv_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_and_rows),
        cmocka_unit_test(test_fork_refcount_and_cow),
        cmocka_unit_test(test_exhaustion_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
