// metrics.h — the server's Prometheus metrics: requests by status, tokens in/out, time-to-first-
// token and inter-token latency histograms; the backend's gauges (KV blocks, queue, prefix cache,
// cancellations) are passed in at render time.
//
// Thread-safety: every function may be called concurrently (one mutex inside).
#ifndef CG_SERVER_METRICS_H
#define CG_SERVER_METRICS_H

#include <stdint.h>

#include "base/buf.h"
#include "server/backend.h"

typedef struct cg_srv_metrics cg_srv_metrics;

cg_status cg_srv_metrics_new(cg_srv_metrics **out, cg_err *err);
void cg_srv_metrics_free(cg_srv_metrics *m);   // accepts NULL

void cg_srv_metrics_request(cg_srv_metrics *m, int http_status);   // statuses outside 100..599 count as 0
void cg_srv_metrics_tokens(cg_srv_metrics *m, uint64_t prompt, uint64_t generated);
void cg_srv_metrics_ttft(cg_srv_metrics *m, double seconds);
void cg_srv_metrics_itl(cg_srv_metrics *m, double seconds);

// Appends the Prometheus text exposition (format 0.0.4). g may be NULL (then no gauges).
void cg_srv_metrics_render(cg_srv_metrics *m, const cg_srv_gauges *g, cg_buf *out);

#endif
