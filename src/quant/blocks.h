// blocks.h — the quantized block layouts exactly as GGUF stores them (little-endian, no padding).
//
// A row of n elements is n / CG_QK_<type> consecutive blocks. Half-precision fields are raw
// binary16 bits (cg_f16, see f16.h). Most blocks are 2-byte aligned; cg_block_q8_K is 4-byte
// aligned (float d). Callers that hand a `const void *` to the reference kernels must respect that
// alignment (GGUF tensor data is 32-byte aligned and every row size of these types is even).
// Types only; no state.
#ifndef CG_QUANT_BLOCKS_H
#define CG_QUANT_BLOCKS_H

#include <stdint.h>

#include "quant/f16.h"

#define CG_QK4_0 32
#define CG_QK4_1 32
#define CG_QK5_0 32
#define CG_QK5_1 32
#define CG_QK8_0 32
#define CG_QK8_1 32
#define CG_QK4_NL 32
#define CG_QK_K_ 256  // == CG_QK_K in quant.h (kept separate so this header stands alone)
#define CG_K_SCALE_SIZE 12

typedef struct cg_block_q4_0 {
    cg_f16 d;          // scale
    uint8_t qs[16];    // nibbles: element j in low nibble of qs[j], element j+16 in high nibble
} cg_block_q4_0;

typedef struct cg_block_q4_1 {
    cg_f16 d, m;       // scale, minimum
    uint8_t qs[16];
} cg_block_q4_1;

typedef struct cg_block_q5_0 {
    cg_f16 d;
    uint8_t qh[4];     // bit 4 of element j at bit j of the little-endian uint32
    uint8_t qs[16];
} cg_block_q5_0;

typedef struct cg_block_q5_1 {
    cg_f16 d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} cg_block_q5_1;

typedef struct cg_block_q8_0 {
    cg_f16 d;
    int8_t qs[32];
} cg_block_q8_0;

typedef struct cg_block_q8_1 {
    cg_f16 d;          // scale
    cg_f16 s;          // d · Σ qs
    int8_t qs[32];
} cg_block_q8_1;

typedef struct cg_block_q2_K {
    uint8_t scales[16];  // low nibble: scale, high nibble: min, per sub-block of 16
    uint8_t qs[64];      // 2-bit quants
    cg_f16 d, dmin;      // super-block scale for scales / for mins
} cg_block_q2_K;

typedef struct cg_block_q3_K {
    uint8_t hmask[32];   // high bit of each quant
    uint8_t qs[64];      // low 2 bits
    uint8_t scales[12];  // 16 six-bit signed scales (offset 32)
    cg_f16 d;
} cg_block_q3_K;

typedef struct cg_block_q4_K {
    cg_f16 d, dmin;
    uint8_t scales[CG_K_SCALE_SIZE];  // 8 six-bit scales and 8 six-bit mins
    uint8_t qs[128];
} cg_block_q4_K;

typedef struct cg_block_q5_K {
    cg_f16 d, dmin;
    uint8_t scales[CG_K_SCALE_SIZE];
    uint8_t qh[32];      // 5th bit
    uint8_t qs[128];     // low 4 bits
} cg_block_q5_K;

typedef struct cg_block_q6_K {
    uint8_t ql[128];     // low 4 bits
    uint8_t qh[64];      // high 2 bits
    int8_t scales[16];   // per sub-block of 16
    cg_f16 d;
} cg_block_q6_K;

typedef struct cg_block_q8_K {
    float d;             // negative when the block's largest-magnitude element is positive
    int8_t qs[256];
    int16_t bsums[16];   // Σ qs[16g .. 16g+15]
} cg_block_q8_K;

typedef struct cg_block_iq4_nl {
    cg_f16 d;
    uint8_t qs[16];      // indices into the 16-entry non-linear table
} cg_block_iq4_nl;

typedef struct cg_block_iq4_xs {
    cg_f16 d;
    uint16_t scales_h;   // high 2 bits of the 8 six-bit sub-block scales
    uint8_t scales_l[4]; // low 4 bits
    uint8_t qs[128];
} cg_block_iq4_xs;

_Static_assert(sizeof(cg_block_q4_0) == 18, "q4_0 block is 18 bytes");
_Static_assert(sizeof(cg_block_q4_1) == 20, "q4_1 block is 20 bytes");
_Static_assert(sizeof(cg_block_q5_0) == 22, "q5_0 block is 22 bytes");
_Static_assert(sizeof(cg_block_q5_1) == 24, "q5_1 block is 24 bytes");
_Static_assert(sizeof(cg_block_q8_0) == 34, "q8_0 block is 34 bytes");
_Static_assert(sizeof(cg_block_q8_1) == 36, "q8_1 block is 36 bytes");
_Static_assert(sizeof(cg_block_q2_K) == 84, "q2_K block is 84 bytes");
_Static_assert(sizeof(cg_block_q3_K) == 110, "q3_K block is 110 bytes");
_Static_assert(sizeof(cg_block_q4_K) == 144, "q4_K block is 144 bytes");
_Static_assert(sizeof(cg_block_q5_K) == 176, "q5_K block is 176 bytes");
_Static_assert(sizeof(cg_block_q6_K) == 210, "q6_K block is 210 bytes");
_Static_assert(sizeof(cg_block_q8_K) == 292, "q8_K block is 292 bytes");
_Static_assert(sizeof(cg_block_iq4_nl) == 18, "iq4_nl block is 18 bytes");
_Static_assert(sizeof(cg_block_iq4_xs) == 136, "iq4_xs block is 136 bytes");

#endif
