// cpu.h — what the CPU can do, detected once, and which kernel set (ISA) to use.
//
// cg_cpu_get() runs cpuid/xgetbv (x86-64) the first time it is called and caches the result; NEON
// is part of the aarch64 baseline. cg_cpu_isa() is the kernel set the dispatcher should use: the
// best the CPU supports, unless the environment variable CHINGU_ISA=generic|avx2|neon asks for
// another one (for tests and benchmarks; asking for an ISA the CPU lacks falls back to generic, and
// an unknown name is ignored with the default kept). Both are computed once (pthread_once) and are
// then immutable, so every function here is thread-safe.
#ifndef CG_KERN_CPU_H
#define CG_KERN_CPU_H

#include <stdbool.h>

typedef struct cg_cpu_features {
    bool avx2, fma, f16c;   // x86-64, each only when the OS saves the YMM state (xgetbv)
    bool neon;              // aarch64 Advanced SIMD
} cg_cpu_features;

typedef enum cg_isa {
    CG_ISA_GENERIC = 0,   // the scalar reference (quant/ref.h)
    CG_ISA_AVX2,          // AVX2 + FMA + F16C (src/kern/x86)
    CG_ISA_NEON,          // aarch64 NEON (src/kern/arm)
} cg_isa;

// Borrowed static data, valid for the process lifetime.
const cg_cpu_features *cg_cpu_get(void);

// The kernel set in use (see above).
cg_isa cg_cpu_isa(void);

// True when this build has kernels for `isa` and the CPU can run them.
bool cg_cpu_isa_available(cg_isa isa);

// "generic", "avx2", "neon".
const char *cg_isa_name(cg_isa isa);

#endif
