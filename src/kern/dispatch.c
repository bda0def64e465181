// dispatch.c — picks the backend table. Only the scalar reference exists today; SIMD tables will
// be chosen here from cpuid (once), and must agree with the reference.
#include "kern/kern.h"

const cg_kern *cg_kern_get(void) { return cg_kern_generic(); }
