// mmap.c — POSIX mmap wrapper, whole-file reads and huge-page buffers.
#define _GNU_SOURCE
#include "base/mmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/num.h"

cg_status cg_mmap_open(const char *path, cg_mmap *out, cg_err *err) {
    out->data = NULL;
    out->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cg_err_set(err, CG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cg_err_set(err, CG_ERR_IO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return cg_err_set(err, CG_ERR_IO, "'%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return CG_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return cg_err_set(err, CG_ERR_IO, "cannot map '%s': %s", path, strerror(e));
    out->data = p;
    out->size = (size_t)st.st_size;
    return CG_OK;
}

void cg_mmap_close(cg_mmap *m) {
    if (!m || !m->data) return;
    munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

cg_status cg_file_read_all(const char *path, unsigned char **data, size_t *size, cg_err *err) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cg_err_set(err, CG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return cg_err_set(err, CG_ERR_NOMEM, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (n == cap) {
            unsigned char *nb = cap > SIZE_MAX / 4 ? NULL : realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return cg_err_set(err, CG_ERR_NOMEM, "out of memory reading '%s'", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return cg_err_set(err, CG_ERR_IO, "cannot read '%s'", path);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return CG_OK;
}

void *cg_alloc_huge(size_t bytes, size_t *alloc) {
    const size_t huge = (size_t)2 << 20;
    *alloc = 0;
    size_t n;
    if (bytes == 0 || !cg_add_size(bytes, huge - 1, &n)) return NULL;
    n &= ~(huge - 1);
    void *p = aligned_alloc(huge, n);
    if (!p) return NULL;
    (void)madvise(p, n, MADV_HUGEPAGE);
    *alloc = n;
    return p;
}
