// model_impl.h — the cg_model struct, shared by model.c (loader) and forward.c only.
// Not a public header: other modules use model.h.
#ifndef CG_MODEL_IMPL_H
#define CG_MODEL_IMPL_H

#include "model/model.h"

struct cg_model {
    cg_gguf *file;               // owned mapping; every tensor view points into it
    const cg_arch_desc *arch;    // static row
    cg_hparams hp;
    cg_tensor tok_embd, output;  // output == tok_embd when the embeddings are tied
    const float *out_norm;
    const float *rope_freqs;     // NULL or n_rot/2 factors
    cg_layer *layers;            // owned, hp.n_layer entries
    char keybuf[160];            // scratch for key names during load only
};

#endif
