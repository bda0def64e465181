// dispatch.c — picks the backend table: the best kernel set for this CPU (kern/cpu.h: detected
// once, CHINGU_ISA may force "generic"), else the scalar reference. Every table agrees with the
// reference.
#include "kern/cpu.h"
#include "kern/kern.h"
#if defined(__x86_64__)
#include "kern/x86/avx2.h"
#endif
#if defined(__aarch64__)
#include "kern/arm/neon.h"
#endif

const cg_kern *cg_kern_get(void) {
#if defined(__x86_64__)
    if (cg_cpu_isa() == CG_ISA_AVX2) return cg_kern_avx2();
#endif
#if defined(__aarch64__)
    if (cg_cpu_isa() == CG_ISA_NEON) return cg_kern_neon();
#endif
    return cg_kern_generic();
}
