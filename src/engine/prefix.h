// prefix.h — the prefix cache: KV sequences of earlier requests kept so a new request that starts
// with the same tokens reuses their blocks instead of recomputing them.
//
// An entry is a KV sequence id the cache owns together with the token ids its KV rows hold, cut to
// whole blocks (block granularity: only full blocks are shared, so a reuser never writes into a
// block another sequence reads). Lookup finds the entry with the longest common prefix with a new
// prompt, rounded down to a block boundary and kept below the prompt's length (the last prompt
// token must run through the model to produce logits); the scheduler then forks that entry's
// sequence (cg_kv_seq_fork: blocks are shared and ref-counted) and truncates the fork to the match.
// Entries are ordered by last use; the least recently used one is evicted first, when the entry
// slots or the block pool run short. An entry whose tokens are a prefix of a newer one is dropped
// (the newer one covers it).
//
// Entries are kept in a flat list searched linearly (a few dozen entries of ≤ n_ctx tokens: a
// lookup costs microseconds next to a forward step); tokens are compared a block at a time.
//
// Ownership: the cache owns its token copies and the sequence ids handed to it; evicted ids are
// handed back to the caller, who clears them in the KV cache. Not thread-safe: the engine thread
// owns it.
#ifndef CG_ENGINE_PREFIX_H
#define CG_ENGINE_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct cg_prefix cg_prefix;

// max_entries ≥ 1, block_size ≥ 1. Errors: CG_ERR_INVALID, CG_ERR_NOMEM.
cg_status cg_prefix_new(int max_entries, int block_size, cg_prefix **out, cg_err *err);
void cg_prefix_free(cg_prefix *p);   // accepts NULL (does not touch any KV cache)

// The longest usable cached prefix of tokens[0..n): returns its length (a multiple of the block
// size, < n; 0 when none) and sets *seq to the entry's sequence id (-1 when none). Marks the entry
// as used.
int32_t cg_prefix_lookup(cg_prefix *p, const int32_t *tokens, size_t n, int *seq);

// Offers sequence `seq`, whose KV holds tokens[0..n), to the cache. The cache keeps the first
// floor(n / block_size) blocks' worth of tokens; the caller must truncate the sequence to
// *n_keep (set on every return). Returns true when the cache took the sequence id. Ids the cache
// gives up (a covered older entry, or the LRU entry when the slots are full) are written to
// evicted[0..*n_evicted) (room for 2); the caller clears them. Returns false — the caller keeps
// and clears seq — when nothing whole-block is left, when an entry already covers the tokens, or
// on allocation failure.
bool cg_prefix_insert(cg_prefix *p, int seq, const int32_t *tokens, size_t n, int32_t *n_keep, int evicted[2],
                      int *n_evicted);

// Removes the least recently used entry; returns its sequence id, or -1 when empty.
int cg_prefix_evict_lru(cg_prefix *p);

size_t cg_prefix_n_entries(const cg_prefix *p);
// Blocks the entries span in total (an upper bound of the blocks only the cache keeps alive).
int64_t cg_prefix_n_blocks(const cg_prefix *p);

#endif
