// f16.c — row converters between float32 and binary16 / bfloat16 (the F16 and BF16 rows of the
// traits table), and the plain F32/F16/BF16 dot products. Pure functions over caller buffers.
#include "quant/f16.h"
#include "quant/ref.h"

void cg_f16_row_to_f32(const void *src, float *dst, int64_t n) {
    const cg_f16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = cg_f16_to_f32(s[i]);
}

void cg_f32_row_to_f16(const float *src, void *dst, int64_t n) {
    cg_f16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = cg_f32_to_f16(src[i]);
}

void cg_bf16_row_to_f32(const void *src, float *dst, int64_t n) {
    const cg_bf16 *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = cg_bf16_to_f32(s[i]);
}

void cg_f32_row_to_bf16(const float *src, void *dst, int64_t n) {
    cg_bf16 *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = cg_f32_to_bf16(src[i]);
}

void cg_f32_copy_to_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void cg_f32_copy_from_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

// Products are exact-ish float32 (F16/BF16 products are exact in float), summed in double as
// ggml's portable kernels do; SIMD kernels differ only in summation order.
void cg_f32_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const float *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(a[i] * b[i]);
    *s = (float)sum;
}

void cg_f16_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_f16 *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(cg_f16_to_f32(a[i]) * cg_f16_to_f32(b[i]));
    *s = (float)sum;
}

void cg_bf16_vec_dot(int64_t n, float *s, const void *x, const void *y) {
    const cg_bf16 *a = x, *b = y;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(cg_bf16_to_f32(a[i]) * cg_bf16_to_f32(b[i]));
    *s = (float)sum;
}
