// prefix.h — the prefix cache: a radix tree over whole KV blocks of earlier requests, so a new
// request that starts with the same tokens reuses their KV instead of recomputing it.
//
// Every node below the (implicit) root stands for one block: block_size token ids, and the KV
// block (engine/kv.h) that holds those tokens' rows given the tokens on the path above. A path
// from the root is a cached prefix; prefixes with common leading blocks share those nodes, so a
// shared ancestor (a system prompt) is stored once, and its KV block once. The cache holds one
// reference on each node's KV block (cg_kv_block_retain); running sequences that reuse a node hold
// their own references through their block tables, so evicting a node never pulls a block from
// under a running sequence — the block returns to the pool when its last holder lets go.
//
// Block granularity: only full blocks are cached, and a reuser gets whole blocks (a write into a
// shared block would copy it first anyway, kv.h). A match is kept below the prompt's length (the
// last prompt token must run through the model to produce logits).
//
// Lookup walks the prompt one block at a time; a node's children are found through one hash table
// keyed by (parent node, block tokens), so a lookup costs O(prompt blocks × block_size) whatever
// the number of cached prefixes. Eviction removes leaves only, least recently used first: nodes sit
// on a recency list where every node is ahead of its descendants (a use touches the path from the
// deepest node up to the root), so the list's tail is always a leaf.
//
// Ownership: the KV cache is borrowed and must outlive the prefix cache; cg_prefix_free releases the
// cache's block references in it. Not thread-safe: the engine thread owns both.
#ifndef CG_ENGINE_PREFIX_H
#define CG_ENGINE_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "engine/kv.h"

typedef struct cg_prefix cg_prefix;

// A cache of at most max_blocks nodes (≥ 1) over kv's blocks (block size from kv's parameters).
// Errors: CG_ERR_INVALID, CG_ERR_NOMEM.
cg_status cg_prefix_new(cg_kv *kv, int max_blocks, cg_prefix **out, cg_err *err);
void cg_prefix_free(cg_prefix *p);   // accepts NULL; releases every cached block in the KV cache

// Length of the longest usable cached prefix of tokens[0..n): a multiple of the block size, < n;
// 0 when none. Marks the matched path as used.
int32_t cg_prefix_match(cg_prefix *p, const int32_t *tokens, size_t n);

// Like cg_prefix_match, and makes sequence `seq` (cleared first) hold the matched blocks
// (cg_kv_seq_assign), so its length is the returned match. Returns 0 and leaves seq cleared when
// nothing matches or the assignment fails.
int32_t cg_prefix_attach(cg_prefix *p, const int32_t *tokens, size_t n, int seq);

// Offers sequence `seq`, whose KV holds tokens[0..n) (n ≤ its length), to the cache: every whole
// block of it not cached yet becomes a node holding a reference on that KV block. Blocks already
// cached under the same path are left as they are. When the cache is full, least recently used
// leaves off this path are evicted first; when none is left, the rest is not cached. The caller
// keeps its sequence (and clears it as usual). Returns the number of nodes added (0 on allocation
// failure too: caching is best effort).
int cg_prefix_insert(cg_prefix *p, int seq, const int32_t *tokens, size_t n);

// Evicts the least recently used leaf; false when the cache is empty.
bool cg_prefix_evict_leaf(cg_prefix *p);

int64_t cg_prefix_n_blocks(const cg_prefix *p);   // nodes (= KV blocks the cache references)
size_t cg_prefix_n_leaves(const cg_prefix *p);    // distinct cached prefixes

#endif
