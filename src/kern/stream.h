// stream.h — a read-only memory-bandwidth probe (the roofline for decode, which reads every weight
// once per token).
//
// A cg_stream owns a buffer of `bytes` (choose it ≫ the last-level cache; 0 picks 1 GiB) in huge
// pages, as the repacked weights are (cg_alloc_huge, base/mmap.h: with 4 KiB pages the probe itself
// pays a TLB miss per 4 KiB and reads ~10 % less than the weights stream on this kind of machine),
// with every page touched at creation. cg_stream_read lets the threads of `pool` (NULL: the caller
// alone) sum the buffer once, taking pieces from a shared counter as the matmuls do, `reps` times;
// the result is the best repetition's GB/s (10^9 bytes/s), the figure STREAM-like tools report
// for a read-only kernel. It uses the pool like any other parallel op (one driver thread at a
// time). A cg_stream is used by one thread at a time. cg_stream_read_gbps is the one-shot form
// (create, read, free).
// Errors: CG_ERR_NOMEM (the buffer), CG_ERR_INVALID (reps < 1), CG_ERR_INTERNAL (the threads did not
// read every line exactly once: a bug).
#ifndef CG_KERN_STREAM_H
#define CG_KERN_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/thread.h"

typedef struct cg_stream cg_stream;

cg_status cg_stream_new(size_t bytes, cg_stream **out, cg_err *err);
void cg_stream_free(cg_stream *s);   // accepts NULL
cg_status cg_stream_read(cg_stream *s, cg_pool *pool, int reps, double *gbps, cg_err *err);

cg_status cg_stream_read_gbps(cg_pool *pool, size_t bytes, int reps, double *gbps, cg_err *err);

// The probe's read loop: n_lines 64-byte lines from p (8-byte aligned) summed as 64-bit words with
// eight independent sums, folded to one value (for a caller that must keep the reads; e.g.
// bench/decode_parts' read-only matmuls).
uint64_t cg_stream_sum(const void *p, size_t n_lines);

#endif
