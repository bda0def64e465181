// cpu.c — one-time CPU feature detection (cpuid + xgetbv on x86-64; NEON is baseline on aarch64)
// and the CHINGU_ISA override. The detected features and the chosen ISA are written exactly once
// under pthread_once and are read-only afterwards (the "set once" state DESIGN allows).
#include "kern/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define CG_X86 1
#endif

static cg_cpu_features g_features;
static cg_isa g_isa;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#ifdef CG_X86
// XCR0 via xgetbv, written as bytes so no -mxsave is needed.
static unsigned long long read_xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static void detect(cg_cpu_features *f) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    const bool fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    // The OS must save XMM and YMM state (XCR0 bits 1 and 2), or AVX instructions fault.
    if (!osxsave || !avx || (read_xcr0() & 6) != 6) return;
    f->fma = fma;
    f->f16c = f16c;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f->avx2 = (b >> 5) & 1;
    }
}
#else
static void detect(cg_cpu_features *f) {
#if defined(__aarch64__)
    f->neon = true;
#else
    (void)f;
#endif
}
#endif

bool cg_cpu_isa_available(cg_isa isa) {
    const cg_cpu_features *f = cg_cpu_get();
    switch (isa) {
    case CG_ISA_GENERIC: return true;
#ifdef CG_X86
    case CG_ISA_AVX2: return f->avx2 && f->fma && f->f16c;
#endif
#if defined(__aarch64__)
    case CG_ISA_NEON: return f->neon;
#endif
    default: return false;
    }
}

static void init_once(void) {
    detect(&g_features);
    // Best available first.
    g_isa = CG_ISA_GENERIC;
#ifdef CG_X86
    if (g_features.avx2 && g_features.fma && g_features.f16c) g_isa = CG_ISA_AVX2;
#endif
#if defined(__aarch64__)
    if (g_features.neon) g_isa = CG_ISA_NEON;
#endif
    const char *env = getenv("CHINGU_ISA");
    if (!env || !*env) return;
    for (int i = CG_ISA_GENERIC; i <= CG_ISA_NEON; i++)
        if (!strcmp(env, cg_isa_name((cg_isa)i))) {
            // Asking for an ISA this machine or build lacks gives the reference, never a fault.
            bool ok = i == CG_ISA_GENERIC;
#ifdef CG_X86
            ok = ok || (i == CG_ISA_AVX2 && g_features.avx2 && g_features.fma && g_features.f16c);
#endif
#if defined(__aarch64__)
            ok = ok || (i == CG_ISA_NEON && g_features.neon);
#endif
            g_isa = ok ? (cg_isa)i : CG_ISA_GENERIC;
        }
}

const cg_cpu_features *cg_cpu_get(void) {
    pthread_once(&g_once, init_once);
    return &g_features;
}

cg_isa cg_cpu_isa(void) {
    pthread_once(&g_once, init_once);
    return g_isa;
}

const char *cg_isa_name(cg_isa isa) {
    switch (isa) {
    case CG_ISA_GENERIC: return "generic";
    case CG_ISA_AVX2: return "avx2";
    case CG_ISA_NEON: return "neon";
    }
    return "unknown";
}
