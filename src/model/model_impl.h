// model_impl.h — the cg_model struct, shared by model.c (loader) and forward.c only.
// Not a public header: other modules use model.h.
#ifndef CG_MODEL_IMPL_H
#define CG_MODEL_IMPL_H

#include "model/model.h"

struct cg_model {
    cg_gguf *file;               // owned mapping; every tensor view points into it
    const cg_arch_desc *arch;    // static row
    cg_hparams hp;
    cg_tensor tok_embd, output;  // output == tok_embd when the embeddings are tied (output may then be
                                 // a repacked copy of it; tok_embd always stays in the mmap)
    const float *out_norm;
    const float *rope_freqs;     // NULL or n_rot/2 factors
    cg_layer *layers;            // owned, hp.n_layer entries
    void *repacked;              // owned (free()): the repacked copies of the weights whose view has
                                 // layout != CG_LAYOUT_STORED (kern/repack.h); NULL when none
    size_t repacked_bytes;
    char keybuf[160];            // scratch for key names during load only
};

#endif
