// metrics.c — counters and fixed-bucket histograms behind one mutex; rendered as Prometheus text.
// Invariant: bucket counts are stored non-cumulatively and summed when rendered, so an observation
// touches one slot.
#include "server/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

static const double TTFT_LE[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double ITL_LE[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
#define N_TTFT (sizeof TTFT_LE / sizeof TTFT_LE[0])
#define N_ITL (sizeof ITL_LE / sizeof ITL_LE[0])

typedef struct hist {
    uint64_t n[16];   // per bucket, last = +Inf
    uint64_t count;
    double sum;
} hist;

struct cg_srv_metrics {
    pthread_mutex_t mu;
    uint64_t by_status[600];
    uint64_t prompt_tokens, generated_tokens;
    hist ttft, itl;
};

cg_status cg_srv_metrics_new(cg_srv_metrics **out, cg_err *err) {
    cg_srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return cg_err_set(err, CG_ERR_NOMEM, "metrics: out of memory");
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return CG_OK;
}

void cg_srv_metrics_free(cg_srv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void cg_srv_metrics_request(cg_srv_metrics *m, int http_status) {
    pthread_mutex_lock(&m->mu);
    m->by_status[http_status >= 100 && http_status < 600 ? http_status : 0]++;
    pthread_mutex_unlock(&m->mu);
}

void cg_srv_metrics_tokens(cg_srv_metrics *m, uint64_t prompt, uint64_t generated) {
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += prompt;
    m->generated_tokens += generated;
    pthread_mutex_unlock(&m->mu);
}

static void observe(cg_srv_metrics *m, hist *h, const double *le, size_t n_le, double v) {
    pthread_mutex_lock(&m->mu);
    size_t i = 0;
    while (i < n_le && v > le[i]) i++;
    h->n[i]++;
    h->count++;
    h->sum += v;
    pthread_mutex_unlock(&m->mu);
}

void cg_srv_metrics_ttft(cg_srv_metrics *m, double s) { observe(m, &m->ttft, TTFT_LE, N_TTFT, s); }
void cg_srv_metrics_itl(cg_srv_metrics *m, double s) { observe(m, &m->itl, ITL_LE, N_ITL, s); }

static void render_hist(cg_buf *b, const char *name, const char *help, const hist *h, const double *le, size_t n_le) {
    cg_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < n_le; i++) {
        cum += h->n[i];
        cg_buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, le[i], cum);
    }
    cum += h->n[n_le];
    cg_buf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.9g\n%s_count %" PRIu64 "\n", name, cum, name, h->sum,
                  name, h->count);
}

void cg_srv_metrics_render(cg_srv_metrics *m, const cg_srv_gauges *g, cg_buf *b) {
    pthread_mutex_lock(&m->mu);
    cg_buf_puts(b, "# HELP chingu_requests_total HTTP requests answered, by status code.\n"
                   "# TYPE chingu_requests_total counter\n");
    for (int s = 0; s < 600; s++)
        if (m->by_status[s]) cg_buf_printf(b, "chingu_requests_total{code=\"%d\"} %" PRIu64 "\n", s, m->by_status[s]);
    cg_buf_printf(b, "# HELP chingu_prompt_tokens_total Prompt tokens of finished requests.\n"
                     "# TYPE chingu_prompt_tokens_total counter\nchingu_prompt_tokens_total %" PRIu64 "\n"
                     "# HELP chingu_generated_tokens_total Generated tokens of finished requests.\n"
                     "# TYPE chingu_generated_tokens_total counter\nchingu_generated_tokens_total %" PRIu64 "\n",
                  m->prompt_tokens, m->generated_tokens);
    render_hist(b, "chingu_time_to_first_token_seconds", "Time from submission to the first generated token.",
                &m->ttft, TTFT_LE, N_TTFT);
    render_hist(b, "chingu_inter_token_latency_seconds", "Time between consecutive generated tokens of a request.",
                &m->itl, ITL_LE, N_ITL);
    pthread_mutex_unlock(&m->mu);
    if (!g) return;
    double ratio = g->prefix_lookup_tokens ? (double)g->prefix_hit_tokens / (double)g->prefix_lookup_tokens : 0;
    cg_buf_printf(b,
                  "# HELP chingu_kv_blocks_used KV-cache blocks in use.\n# TYPE chingu_kv_blocks_used gauge\n"
                  "chingu_kv_blocks_used %" PRIu64 "\n"
                  "# HELP chingu_kv_blocks_free KV-cache blocks free.\n# TYPE chingu_kv_blocks_free gauge\n"
                  "chingu_kv_blocks_free %" PRIu64 "\n"
                  "# HELP chingu_queue_depth Requests waiting for a slot.\n# TYPE chingu_queue_depth gauge\n"
                  "chingu_queue_depth %" PRIu64 "\n"
                  "# HELP chingu_requests_running Requests being generated.\n# TYPE chingu_requests_running gauge\n"
                  "chingu_requests_running %" PRIu64 "\n"
                  "# HELP chingu_prefix_cache_hit_ratio Prompt tokens served from the prefix cache / prompt tokens looked up.\n"
                  "# TYPE chingu_prefix_cache_hit_ratio gauge\nchingu_prefix_cache_hit_ratio %.6f\n"
                  "# HELP chingu_requests_cancelled_total Generations cancelled (client left or shutdown).\n"
                  "# TYPE chingu_requests_cancelled_total counter\nchingu_requests_cancelled_total %" PRIu64 "\n"
                  "# HELP chingu_model_loading 1 while the model is loading.\n# TYPE chingu_model_loading gauge\n"
                  "chingu_model_loading %d\n",
                  g->kv_blocks_used, g->kv_blocks_free, g->queue_depth, g->running, ratio, g->cancelled_total,
                  g->loading ? 1 : 0);
    cg_buf_printf(b,
                  "# HELP chingu_engine_seconds_total Engine-thread time in decode steps, by part: forward passes, "
                  "per-token callbacks (sampling, detokenizing, streaming), other bookkeeping.\n"
                  "# TYPE chingu_engine_seconds_total counter\n"
                  "chingu_engine_seconds_total{part=\"forward\"} %.6f\n"
                  "chingu_engine_seconds_total{part=\"callback\"} %.6f\n"
                  "chingu_engine_seconds_total{part=\"other\"} %.6f\n"
                  "# HELP chingu_engine_steps_total Forward passes run.\n# TYPE chingu_engine_steps_total counter\n"
                  "chingu_engine_steps_total %" PRIu64 "\n"
                  "# HELP chingu_engine_rows_total Tokens fed to forward passes.\n"
                  "# TYPE chingu_engine_rows_total counter\nchingu_engine_rows_total %" PRIu64 "\n",
                  g->engine_forward_s, g->engine_callback_s, g->engine_other_s, g->engine_steps, g->engine_rows);
}
