// mmap.h — read-only file mappings, and buffers in huge pages.
//
// A cg_mmap owns a read-only, private mapping of a whole file (no copy). Immutable after open and
// safe to share between threads. An empty file maps to data == NULL, size == 0.
#ifndef CG_BASE_MMAP_H
#define CG_BASE_MMAP_H

#include <stddef.h>

#include "base/err.h"

typedef struct cg_mmap {
    const unsigned char *data;   // owned mapping, valid until cg_mmap_close
    size_t size;
} cg_mmap;

// Maps `path`. Errors: CG_ERR_IO naming the path and the system error.
cg_status cg_mmap_open(const char *path, cg_mmap *out, cg_err *err);
void cg_mmap_close(cg_mmap *m);   // accepts a zeroed cg_mmap

// Reads a whole file into a malloc'ed buffer (owned by the caller, NUL-terminated for convenience;
// *size excludes the NUL). For small files (test data, configs). Errors: CG_ERR_IO, CG_ERR_NOMEM.
cg_status cg_file_read_all(const char *path, unsigned char **data, size_t *size, cg_err *err);

// Allocates `bytes` rounded up to whole 2 MiB pages, 2 MiB-aligned, and offers them to the kernel as
// transparent huge pages (advice only: where THP is off the pages stay small). For buffers that are
// streamed end to end (repacked weights, the bandwidth probe): with 4 KiB pages every 4 KiB costs a
// TLB miss. *alloc gets the rounded size. NULL when out of memory or when the size overflows (*alloc
// is then 0). The caller owns the buffer and releases it with free().
void *cg_alloc_huge(size_t bytes, size_t *alloc);

#endif
