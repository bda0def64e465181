// quantize.h — convert a GGUF model file to another tensor format or mix (`chingu quantize`).
//
// cg_quantize_file reads IN through the GGUF reader (mmap, no copy), chooses every tensor's type
// with quant/mix.h, and streams the converted tensors through the GGUF writer into OUT, so memory
// stays at a few chunks of rows whatever the model size. The output is laid out as llama-quantize
// lays it out: the input's metadata in order with `general.quantization_version` = 2 and
// `general.file_type` moved to the end, tensors in the model loader's order (non-layer tensors,
// then layer by layer), data aligned to the file's alignment. OUT is written atomically
// (OUT.tmp, then rename): on any error it is left untouched and no temporary file remains.
//
// Thread-safety: one call uses its own thread pool and touches no shared state; concurrent calls
// with different paths are fine.
#ifndef CG_MODEL_QUANTIZE_H
#define CG_MODEL_QUANTIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "quant/mix.h"

// Progress: called on the calling thread after each chunk of output; `name` (borrowed for the
// call) is the tensor being written, bytes count output tensor data.
typedef void (*cg_quantize_progress_fn)(void *user, const char *name, size_t i_tensor, size_t n_tensors,
                                        uint64_t bytes_done, uint64_t bytes_total);

typedef struct cg_quantize_stats {
    uint64_t in_file_bytes, out_file_bytes;
    size_t n_tensors;
    size_t n_converted;   // tensors whose type changed
    double seconds;
} cg_quantize_stats;

typedef struct cg_quantize_params {
    cg_ftype ftype;                    // the mix (cg_ftype_find("Q4_K_M")->ftype …)
    bool pure;                         // one type for every quantizable tensor (see cg_mix_choose)
    int n_thread;                      // ≤ 0: every CPU
    cg_quantize_progress_fn progress;  // optional
    void *progress_user;               // borrowed, passed to progress
    cg_quantize_stats *stats;          // optional, borrowed: filled on success
} cg_quantize_params;

// Converts `in` to `out`. Errors: CG_ERR_IO (cannot read IN, cannot write OUT — missing directory,
// full disk; the message names the path and the system error), the reader's CG_ERR_FORMAT /
// CG_ERR_LIMIT / CG_ERR_UNSUPPORTED for a bad input file, CG_ERR_NOT_FOUND (no
// general.architecture or {arch}.block_count), CG_ERR_UNSUPPORTED (a tensor whose input type
// chingu cannot read, or whose target type it cannot write, naming both; a row length that fits
// no type of the mix), CG_ERR_INVALID (bad params), CG_ERR_NOMEM.
cg_status cg_quantize_file(const char *in, const char *out, const cg_quantize_params *params, cg_err *err);

#endif
