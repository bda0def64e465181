// kv.h — the paged KV cache: a pool of fixed-size blocks shared by many sequences.
//
// Storage: for every layer, n_blocks blocks of block_size token rows; a K row holds n_embd_k values
// (n_head_kv * head_dim), a V row n_embd_v, in F16 (default) or F32. A sequence (id 0..max_seqs-1)
// owns a block table: entry i holds the block of positions [i*block_size, (i+1)*block_size). The
// token at position p lives in row p % block_size of block table[p / block_size].
//
// Blocks are reference-counted. cg_kv_seq_fork makes a second sequence share the first one's blocks
// (n > 1 sampling); cg_kv_block_retain lets a holder outside any sequence (the prefix cache) keep a
// block alive, and cg_kv_seq_assign builds a sequence from such blocks. A later write into a shared
// block copies it first (copy-on-write), so sharing never changes what another sequence sees.
//
// Ownership: a cg_kv owns all its memory; pointers it returns are borrowed until the next call that
// changes block tables (prepare, fork, truncate, clear) or cg_kv_free. Thread-safety: none — one
// owner thread (the engine thread) at a time; reading block data from several threads during a
// forward step is fine while no table changes.
#ifndef CG_ENGINE_KV_H
#define CG_ENGINE_KV_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "kern/kern.h"

typedef struct cg_kv cg_kv;

typedef struct cg_kv_params {
    int n_layer;          // ≥ 1
    int64_t n_embd_k;     // values per token per layer for K (n_head_kv * head_dim)
    int64_t n_embd_v;     // same for V
    int block_size;       // tokens per block, 1..4096 (16 is a good default)
    int n_blocks;         // blocks in the pool, ≥ 1
    int max_seqs;         // sequence ids 0..max_seqs-1, 1..65536
    cg_kv_dtype type;     // CG_KV_F16 (default) or CG_KV_F32
} cg_kv_params;

// Allocates the pool. Errors: CG_ERR_INVALID (a parameter out of range, named), CG_ERR_LIMIT (size
// overflow), CG_ERR_NOMEM.
cg_status cg_kv_new(const cg_kv_params *p, cg_kv **out, cg_err *err);
void cg_kv_free(cg_kv *kv);   // accepts NULL

// Writes every byte of the pool (with the zeros it already holds) so all its pages are resident from
// now on: the process's memory then stays flat as blocks are first used. Not thread-safe.
void cg_kv_prefault(cg_kv *kv);

const cg_kv_params *cg_kv_get_params(const cg_kv *kv);
int cg_kv_n_free_blocks(const cg_kv *kv);
int32_t cg_kv_seq_len(const cg_kv *kv, int seq);   // positions 0..len-1 hold data; -1 for a bad id
int cg_kv_block_refcount(const cg_kv *kv, int block);   // -1 for a bad id

// Makes positions [pos_begin, pos_end) of `seq` writable: truncates the sequence to pos_begin
// (which must be ≤ its length: no gaps), allocates blocks and un-shares shared ones, then sets its
// length to pos_end. On error nothing visible changed except that truncation may have happened.
// Errors: CG_ERR_INVALID (bad seq id, pos_begin > length, empty or negative range),
// CG_ERR_LIMIT (pool exhausted: the message gives blocks needed and free).
cg_status cg_kv_seq_prepare(cg_kv *kv, int seq, int32_t pos_begin, int32_t pos_end, cg_err *err);

// dst becomes a sequence sharing all of src's blocks (dst's old blocks are released first).
// Errors: CG_ERR_INVALID (bad ids, src == dst).
cg_status cg_kv_seq_fork(cg_kv *kv, int src, int dst, cg_err *err);

// Keeps positions [0, n) of seq, releasing blocks no longer needed (n ≥ length: no-op).
void cg_kv_seq_truncate(cg_kv *kv, int seq, int32_t n);
void cg_kv_seq_clear(cg_kv *kv, int seq);   // truncate to 0

// The row for (layer, seq, pos): where K/V of that token are stored, in the cache's dtype. pos
// must be < the sequence's length (after prepare). Returns NULL for out-of-range arguments.
// Block id of table entry i of seq (positions [i*block_size, (i+1)*block_size)); -1 when seq or
// i is out of range.
int cg_kv_seq_block(const cg_kv *kv, int seq, int i);

// One more reference on block b held outside any sequence; ignored for a bad id or a free block.
void cg_kv_block_retain(cg_kv *kv, int b);
// Drops a reference taken with cg_kv_block_retain; at zero the block returns to the pool. Ignored
// for a bad id or a free block.
void cg_kv_block_release(cg_kv *kv, int b);

// seq (cleared first) becomes blocks[0..n) (each gains a reference), with length n * block_size.
// The blocks must be live (refcount ≥ 1). Errors: CG_ERR_INVALID (bad seq id, a bad or free block,
// named), CG_ERR_NOMEM.
cg_status cg_kv_seq_assign(cg_kv *kv, int seq, const int *blocks, int n, cg_err *err);

void *cg_kv_k_row(cg_kv *kv, int layer, int seq, int32_t pos);
void *cg_kv_v_row(cg_kv *kv, int layer, int seq, int32_t pos);

// Per-layer block base pointers of a sequence's table, for attention: fills k[i], v[i] for table
// entries i < n (n ≤ number of entries; returns how many were filled).
int cg_kv_seq_blocks(const cg_kv *kv, int layer, int seq, const void **k, const void **v, int n);

#endif
