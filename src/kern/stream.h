// stream.h — a read-only memory-bandwidth probe (the roofline for decode, which reads every weight
// once per token).
//
// cg_stream_read_gbps allocates a buffer of `bytes` (choose it ≫ the last-level cache; 0 picks
// 1 GiB), touches every page, then lets every thread of `pool` (NULL: the caller alone) sum its
// contiguous slice, `reps` times; the result is the best repetition's GB/s (10^9 bytes/s), the
// figure STREAM-like tools report for a read-only kernel. Errors: CG_ERR_NOMEM, CG_ERR_INVALID
// (reps < 1). Uses the pool like any other parallel op (one driver thread at a time); the buffer
// is freed before returning.
#ifndef CG_KERN_STREAM_H
#define CG_KERN_STREAM_H

#include <stddef.h>

#include "base/err.h"
#include "base/thread.h"

cg_status cg_stream_read_gbps(cg_pool *pool, size_t bytes, int reps, double *gbps, cg_err *err);

#endif
