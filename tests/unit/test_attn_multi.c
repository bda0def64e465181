// test_attn_multi.c — the multi-query attention entry (attention_multi) of every table that runs
// here (the reference and cg_kern_get()) against single-query attention, bit for bit (memcmp):
//
// * every query row of attention_multi(a, n_q) equals the reference table's attention() for that
//   row alone (its q, its position, a scratch of the single-query size) — and the same table's
//   attention(), which test_kern_table.c already ties to the reference;
// * F32 cache (value sums in both pv_gemm lane orders), F16 cache (online F16 accumulator) and F16
//   with f32_acc; GQA ratios 1, 2 and 7;
//   head_dim 64, 128 and 80 (a tail past the 32-element steps); block sizes 5 and 16 (a tile of
//   queries crosses blocks); sliding window on/off; soft-cap on/off; n_q 1..13 starting at
//   positions that fall mid-block; K/V blocks in a shuffled table, each its own allocation, and a
//   scratch of exactly cg_attn_multi_scratch() floats (ASan sees any overrun);
// * n_q outside 1..CG_ATTN_MAX_Q writes nothing.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern/kern.h"
#include "quant/f16.h"
#include "testutil.h"

typedef struct rng {
    uint64_t s;
} rng;

static float frand(rng *r) {
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)(r->s >> 40) * 0x1p-24f * 2.0f - 1.0f;
}

typedef struct mcase {
    int n_head, n_head_kv, head_dim, block_size, n_q;
    int32_t pos, n_swa;   // pos: the first query's position
    float softcap;
    cg_kv_dtype kv;
    bool f32_acc;
    bool pv_gemm;         // F32 cache: the value sums' lane order (tinyBLAS mod 8 / vec_dot mod 32)
} mcase;

typedef struct cache {
    int n_blocks;
    void **kb, **vb;   // table order (shuffled allocations)
} cache;

static cache make_cache(const mcase *c, rng *r) {
    cache ch = {.n_blocks = (c->pos + c->n_q - 1) / c->block_size + 1};
    const int64_t row = (int64_t)c->n_head_kv * c->head_dim;
    const size_t esz = c->kv == CG_KV_F16 ? 2 : 4, n_el = (size_t)(c->block_size * row);
    ch.kb = calloc((size_t)ch.n_blocks, sizeof *ch.kb);
    ch.vb = calloc((size_t)ch.n_blocks, sizeof *ch.vb);
    assert_non_null(ch.kb);
    assert_non_null(ch.vb);
    for (int b = 0; b < ch.n_blocks; b++) {
        ch.kb[b] = malloc(n_el * esz);
        ch.vb[b] = malloc(n_el * esz);
        assert_non_null(ch.kb[b]);
        assert_non_null(ch.vb[b]);
        for (size_t i = 0; i < n_el; i++) {
            const float kv = frand(r) * 2.0f, vv = frand(r);
            if (c->kv == CG_KV_F16) {
                ((uint16_t *)ch.kb[b])[i] = cg_f32_to_f16(kv);
                ((uint16_t *)ch.vb[b])[i] = cg_f32_to_f16(vv);
            } else {
                ((float *)ch.kb[b])[i] = kv;
                ((float *)ch.vb[b])[i] = vv;
            }
        }
    }
    // Shuffle the table (the blocks of a sequence need not be in address order).
    for (int b = ch.n_blocks - 1; b > 0; b--) {
        int j = (int)((frand(r) + 1.0f) * 0.5f * (float)(b + 1));
        if (j > b) j = b;
        void *t = ch.kb[b];
        ch.kb[b] = ch.kb[j];
        ch.kb[j] = t;
        t = ch.vb[b];
        ch.vb[b] = ch.vb[j];
        ch.vb[j] = t;
    }
    return ch;
}

static void free_cache(cache *ch) {
    for (int b = 0; b < ch->n_blocks; b++) free(ch->kb[b]), free(ch->vb[b]);
    free(ch->kb), free(ch->vb);
}

static const char *describe(const mcase *c, char *buf, size_t n) {
    snprintf(buf, n, "heads %d/%d, dim %d, block %d, pos %d, n_q %d, swa %d, softcap %g, kv %s, f32_acc %d, pv_gemm %d",
             c->n_head, c->n_head_kv, c->head_dim, c->block_size, c->pos, c->n_q, c->n_swa, c->softcap,
             c->kv == CG_KV_F16 ? "f16" : "f32", c->f32_acc, c->pv_gemm);
    return buf;
}

// Runs one case on table k: multi against the reference's and k's single-query attention.
static void run_case(const cg_kern *k, const mcase *c, rng *r) {
    cache ch = make_cache(c, r);
    const int64_t q_row = (int64_t)c->n_head * c->head_dim, o_row = (int64_t)c->n_head * c->head_dim;
    const size_t nq = (size_t)(c->n_q * q_row), no = (size_t)(c->n_q * o_row);
    float *q = malloc(nq * sizeof *q), *om = malloc(no * sizeof *om), *o1 = malloc(no * sizeof *o1),
          *o2 = malloc(no * sizeof *o2);
    assert_non_null(q);
    assert_non_null(om);
    assert_non_null(o1);
    assert_non_null(o2);
    for (size_t i = 0; i < nq; i++) q[i] = frand(r) * 1.5f;
    memset(om, 0xff, no * sizeof *om);   // NaN pattern: an unwritten output cannot pass
    cg_attn_args a = {.q = q, .out = om, .n_head = c->n_head, .n_head_kv = c->n_head_kv,
                      .head_dim = c->head_dim, .head_dim_v = c->head_dim, .pos = c->pos, .n_swa = c->n_swa,
                      .scale = 1.0f / sqrtf((float)c->head_dim), .softcap = c->softcap, .kv_type = c->kv,
                      .f32_acc = c->f32_acc, .pv_gemm = c->pv_gemm, .block_size = c->block_size,
                      .k_blocks = (const void *const *)ch.kb, .v_blocks = (const void *const *)ch.vb};
    const size_t n_ms = (size_t)cg_attn_multi_scratch(&a, c->n_q);
    float *ms = malloc(n_ms * sizeof *ms);
    assert_non_null(ms);
    a.scratch = ms;
    k->attention_multi(&a, c->n_q);
    for (int i = 0; i < c->n_q; i++) {
        cg_attn_args one = a;
        one.q = q + i * q_row;
        one.pos = c->pos + i;
        const size_t n_s = (size_t)cg_attn_multi_scratch(&one, 1);
        float *s = malloc(n_s * sizeof *s);
        assert_non_null(s);
        one.scratch = s;
        one.out = o1 + i * o_row;
        cg_kern_generic()->attention(&one);
        one.out = o2 + i * o_row;
        k->attention(&one);
        free(s);
    }
    char buf[200];
    for (size_t i = 0; i < no; i++) {
        if (memcmp(&om[i], &o1[i], sizeof(float)))
            fail_msg("%s attention_multi (%s): query %d out[%lld] %.9g vs reference single %.9g", k->name,
                     describe(c, buf, sizeof buf), (int)(i / (size_t)o_row), (long long)(i % (size_t)o_row), om[i],
                     o1[i]);
        if (memcmp(&om[i], &o2[i], sizeof(float)))
            fail_msg("%s attention_multi (%s): query %d out[%lld] %.9g vs its own single %.9g", k->name,
                     describe(c, buf, sizeof buf), (int)(i / (size_t)o_row), (long long)(i % (size_t)o_row), om[i],
                     o2[i]);
    }
    free(q), free(om), free(o1), free(o2), free(ms);
    free_cache(&ch);
}

// The full grid for one table; returns the number of cases.
static int run_grid(const cg_kern *k, bool full) {
    static const int GQA[][2] = {{4, 4}, {4, 2}, {14, 2}};
    static const int DIM[] = {64, 128, 80};
    rng r = {.s = 0x5eed};
    int n = 0;
    for (int kv = 0; kv < 3; kv++)
        for (size_t g = 0; g < 3; g++)
            for (size_t d = 0; d < 3; d++)
                for (int n_q = 1; n_q <= 13; n_q++) {
                    const int variant = (n_q + (int)d) % 4;   // every window/cap mix per (cache, GQA)
                    if (!full && (n_q % 4 != 1 || d == 2)) continue;
                    mcase c = {
                        .n_head = GQA[g][0],
                        .n_head_kv = GQA[g][1],
                        .head_dim = DIM[d],
                        .block_size = n_q % 2 ? 5 : 16,
                        .n_q = n_q,
                        .pos = (int32_t)((n_q * 7 + variant * 3) % 29),   // mostly mid-block
                        .n_swa = variant & 1 ? 6 : 0,
                        .softcap = variant & 2 ? 2.0f : 0.0f,   // small: tanh saturates
                        .kv = kv == 1 ? CG_KV_F32 : CG_KV_F16,
                        .f32_acc = kv == 2,
                        .pv_gemm = ((n_q >> 1) + (int)g) % 2 == 1,
                    };
                    run_case(k, &c, &r);
                    n++;
                }
    return n;
}

static void test_multi_fast(void **state) {
    (void)state;
    const cg_kern *k = cg_kern_get();
    int n = run_grid(k, true);
    print_message("%s attention_multi bit-identical with single-query attention (reference and own) in %d cases\n",
                  k->name, n);
}

static void test_multi_generic(void **state) {
    (void)state;
    if (cg_kern_get() == cg_kern_generic()) {
        print_message("cg_kern_get() is the reference: covered by test_multi_fast\n");
        return;
    }
    int n = run_grid(cg_kern_generic(), false);
    print_message("generic attention_multi bit-identical with single-query attention in %d cases\n", n);
}

// Long runs past several blocks and several 32-key chunks of the chunked scores (head_dim 32, 64,
// 96, 128, and 80 outside them), the largest tile and an 8-query one, with and without a window
// (shorter than the tile: 9; longer than a chunk: 40) and soft-cap, block sizes 16 and 5.
static void test_multi_long(void **state) {
    (void)state;
    rng r = {.s = 77};
    const cg_kern *k = cg_kern_get();
    static const int DIM[] = {64, 32, 96, 128, 80};
    int n = 0;
    for (size_t d = 0; d < sizeof DIM / sizeof DIM[0]; d++)
        for (int kv = 0; kv < 3; kv++)
            for (int v = 0; v < (d == 0 ? 4 : 2); v++) {
                mcase c = {.n_head = 14, .n_head_kv = 2, .head_dim = DIM[d], .block_size = v & 1 ? 5 : 16,
                           .n_q = v & 1 ? 8 : CG_ATTN_MAX_Q, .pos = 203 - 3 * v,
                           .n_swa = kv == 0 ? 0 : v & 1 ? 40 : 9, .softcap = v & 2 ? 2.0f : 0.0f,
                           .kv = kv == 1 ? CG_KV_F32 : CG_KV_F16, .f32_acc = kv == 2, .pv_gemm = true};
                run_case(k, &c, &r);
                n++;
            }
    print_message("%s attention_multi at positions 194..218: %d long cases bit-identical\n", k->name, n);
}

static void test_multi_bad_nq(void **state) {
    (void)state;
    const cg_kern *tabs[2] = {cg_kern_generic(), cg_kern_get()};
    float q[64] = {0}, out[64], scratch[4096];
    uint16_t kvb[16 * 64] = {0};
    const void *blk[1] = {kvb};
    for (int t = 0; t < 2; t++) {
        cg_attn_args a = {.q = q, .out = out, .n_head = 1, .n_head_kv = 1, .head_dim = 64, .head_dim_v = 64,
                          .pos = 0, .scale = 1.0f, .kv_type = CG_KV_F16, .block_size = 16, .k_blocks = blk,
                          .v_blocks = blk, .scratch = scratch};
        for (int i = 0; i < 64; i++) out[i] = 42.0f;
        tabs[t]->attention_multi(&a, 0);
        tabs[t]->attention_multi(&a, CG_ATTN_MAX_Q + 1);
        for (int i = 0; i < 64; i++) assert_true(out[i] == 42.0f);
        tabs[t]->attention_multi(&a, 1);   // one key of zeros: uniform weights over zero values
        for (int i = 0; i < 64; i++) assert_true(out[i] == 0.0f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multi_fast),
        cmocka_unit_test(test_multi_generic),
        cmocka_unit_test(test_multi_long),
        cmocka_unit_test(test_multi_bad_nq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
