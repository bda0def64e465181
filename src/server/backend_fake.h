// backend_fake.h — a deterministic fake backend: TEST EQUIPMENT, not a model.
//
// It implements cg_srv_backend without any weights so the HTTP/OpenAI layer can be tested end to
// end before (and independently of) the engine. What it "generates" is a function of the request:
//   - words from a fixed vocabulary (ASCII, Korean, emoji, quotes, backslash, tab, newline) chosen
//     by a hash of (prompt, seed, choice, position); the same prompt and seed give the same text;
//     without a seed every request draws a fresh seed;
//   - a natural length of 8..32 tokens (finish "stop"), unless a prompt contains "fake:long"
//     (then it generates until max_tokens or the context is full: finish "length");
//   - stop strings: the text ends before the first occurrence (held back while a partial match);
//   - response_format json_object → a fixed JSON object; json_schema → an instance built from the
//     schema (properties, required, types, enum/const, minItems/minLength, minimum), so it validates;
//   - tools (tool_choice not "none", and the last message not a tool result unless the choice is
//     "required" or a named function) → one call of the named/first tool with arguments built
//     from its parameters schema (finish "tool_calls"), streamed in 8-byte argument deltas;
//   - logprobs: the token and top_logprobs alternatives with decreasing fake log-probabilities;
//   - usage: prompt tokens = words + 3 per message; cached_tokens from a small simulated prefix
//     cache keyed by message-prefix hashes;
//   - one engine thread, `latency_ms` per step, at most `slots` running requests (the simulated KV
//     capacity), a waiting queue of `queue` entries; submit() fails with CG_ERR_STATE beyond it;
//   - embeddings: a unit vector of 64 floats from a hash of the text.
//
// Spec string (the part after "fake:" in `chingu serve -m fake:…`), comma-separated, all optional:
//   latency_ms=N (default 2)  slots=N (default: parallel)  queue=N (default 16)  loading_ms=N (0)
//   id=NAME (model id, default "fake")
// Thread-safety: as every backend (see backend.h).
#ifndef CG_SERVER_BACKEND_FAKE_H
#define CG_SERVER_BACKEND_FAKE_H

#include "server/backend.h"

#define CG_SRV_FAKE_EMBD 64

// Starts the fake engine thread. *out is filled with the vtable; release with out->free(out->state).
// Errors: CG_ERR_INVALID (the spec names an unknown key or a bad value), CG_ERR_NOMEM, CG_ERR_IO
// (thread creation failed).
cg_status cg_srv_fake_new(const char *spec, uint32_t n_ctx, uint32_t n_parallel, cg_srv_backend *out,
                          cg_err *err);

#endif
