// sampler.c — sampler stages over a candidate array, the configurable chain, logprobs.
//
// Invariants: a stage only shrinks c->n (never reallocates c->data); after any stage that needs
// probabilities, c->data is sorted by logit descending and p holds the softmax of the survivors.
// The chain owns: its candidate array (n_vocab entries), a history ring (the last `window` tokens)
// and its RNG. Nothing here is global.
#include "sample/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/num.h"

// ---- RNG ---------------------------------------------------------------------------------------
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void cg_rng_seed(cg_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t cg_rng_next(cg_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cg_rng_uniform(cg_rng *r) { return (double)(cg_rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

// ---- ordering helpers ----------------------------------------------------------------------------
// "a before b" in descending logit order; ties by ascending id so results are deterministic.
static inline bool before(const cg_token_data *a, const cg_token_data *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_desc(const void *pa, const void *pb) {
    const cg_token_data *a = pa, *b = pb;
    if (before(a, b)) return -1;
    if (before(b, a)) return 1;
    return 0;
}

static void swap_td(cg_token_data *a, cg_token_data *b) { cg_token_data t = *a; *a = *b; *b = t; }

// Moves the k best candidates into data[0..k) (unordered): quickselect with a median-of-three
// pivot. Ties are broken by id, so all elements are distinct and the loop always shrinks.
static void select_top(cg_token_data *d, size_t n, size_t k) {
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (before(&d[mid], &d[lo])) swap_td(&d[mid], &d[lo]);
        if (before(&d[hi - 1], &d[lo])) swap_td(&d[hi - 1], &d[lo]);
        if (before(&d[hi - 1], &d[mid])) swap_td(&d[hi - 1], &d[mid]);
        swap_td(&d[mid], &d[hi - 1]);   // pivot (the median) at the end
        size_t store = lo;
        for (size_t i = lo; i < hi - 1; i++)
            if (before(&d[i], &d[hi - 1])) swap_td(&d[i], &d[store++]);
        swap_td(&d[store], &d[hi - 1]);   // d[store] is the pivot, in its final rank
        if (store + 1 == k) return;
        if (store + 1 > k) hi = store;
        else lo = store + 1;
    }
}

static void sort_desc(cg_candidates *c) {
    if (c->sorted) return;
    qsort(c->data, c->n, sizeof *c->data, cmp_desc);
    c->sorted = true;
}

void cg_candidates_softmax(cg_candidates *c) {
    if (c->n == 0) return;
    sort_desc(c);
    float max = c->data[0].logit;
    if (isinf(max) && max < 0) {   // everything banned: uniform is meaningless, leave p = 0
        for (size_t i = 0; i < c->n; i++) c->data[i].p = 0;
        return;
    }
    double sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        double e = exp((double)c->data[i].logit - max);
        c->data[i].p = (float)e;
        sum += e;
    }
    for (size_t i = 0; i < c->n; i++) c->data[i].p = (float)(c->data[i].p / sum);
}

static size_t keep_at_least(size_t want, size_t min_keep, size_t n) {
    if (min_keep < 1) min_keep = 1;
    if (want < min_keep) want = min_keep;
    return want < n ? want : n;
}

// ---- stages --------------------------------------------------------------------------------------
void cg_sample_top_k(cg_candidates *c, int32_t k, size_t min_keep) {
    if (k <= 0 || c->n == 0) return;
    size_t kk = keep_at_least((size_t)k, min_keep, c->n);
    if (!c->sorted) {
        if (kk < c->n) select_top(c->data, c->n, kk);
        c->n = kk;
        qsort(c->data, c->n, sizeof *c->data, cmp_desc);
        c->sorted = true;
    } else {
        c->n = kk;
    }
}

void cg_sample_top_p(cg_candidates *c, float p, size_t min_keep) {
    if (p >= 1.0f || c->n == 0) return;
    cg_candidates_softmax(c);
    double cum = 0;
    size_t last = c->n;
    for (size_t i = 0; i < c->n; i++) {
        cum += c->data[i].p;
        // keep the token that reaches p (llama.cpp semantics)
        if (cum >= p && i + 1 >= (min_keep ? min_keep : 1)) { last = i + 1; break; }
    }
    c->n = keep_at_least(last, min_keep, c->n);
}

void cg_sample_min_p(cg_candidates *c, float p, size_t min_keep) {
    if (p <= 0.0f || c->n == 0) return;
    cg_candidates_softmax(c);
    float thr = c->data[0].p * p;
    size_t keep = 0;
    while (keep < c->n && c->data[keep].p >= thr) keep++;
    c->n = keep_at_least(keep, min_keep, c->n);
}

typedef struct scored { double score; size_t i; } scored;

static int cmp_scored(const void *pa, const void *pb) {
    const scored *a = pa, *b = pb;
    if (a->score < b->score) return -1;
    if (a->score > b->score) return 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

void cg_sample_typical(cg_candidates *c, float p, size_t min_keep) {
    if (p >= 1.0f || c->n == 0) return;
    cg_candidates_softmax(c);
    double ent = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->data[i].p > 0) ent -= c->data[i].p * log(c->data[i].p);
    scored *sc = malloc(c->n * sizeof *sc);
    cg_token_data *tmp = malloc(c->n * sizeof *tmp);
    if (!sc || !tmp) goto done;   // out of memory: no truncation rather than a failure
    // locally typical: rank by |-log p - H| ascending, keep until the cumulative p reaches `p`
    for (size_t i = 0; i < c->n; i++) {
        double lp = c->data[i].p > 0 ? -log(c->data[i].p) : INFINITY;
        sc[i] = (scored){fabs(lp - ent), i};
    }
    qsort(sc, c->n, sizeof *sc, cmp_scored);
    double cum = 0;
    size_t keep = c->n;
    for (size_t i = 0; i < c->n; i++) {
        cum += c->data[sc[i].i].p;
        if (cum >= p) { keep = i + 1; break; }
    }
    keep = keep_at_least(keep, min_keep, c->n);
    for (size_t i = 0; i < keep; i++) tmp[i] = c->data[sc[i].i];
    memcpy(c->data, tmp, keep * sizeof *tmp);
    c->n = keep;
    c->sorted = false;
done:
    free(sc);
    free(tmp);
}

void cg_sample_temperature(cg_candidates *c, float t) {
    if (t <= 0.0f || t == 1.0f) return;
    for (size_t i = 0; i < c->n; i++) c->data[i].logit /= t;
}

void cg_sample_xtc(cg_candidates *c, float probability, float threshold, size_t min_keep, cg_rng *rng) {
    if (probability <= 0.0f || threshold > 0.5f || c->n < 2) return;
    if (cg_rng_uniform(rng) >= probability) return;
    cg_candidates_softmax(c);
    size_t n_above = 0;
    while (n_above < c->n && c->data[n_above].p >= threshold) n_above++;
    if (n_above < 2) return;
    size_t drop = n_above - 1;   // keep the least probable of those above the threshold
    if (c->n - drop < (min_keep ? min_keep : 1)) return;
    memmove(c->data, c->data + drop, (c->n - drop) * sizeof *c->data);
    c->n -= drop;
}

static int cmp_i32(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return a < b ? -1 : a > b;
}

cg_status cg_sample_penalties(cg_candidates *c, const int32_t *history, size_t n_history, float repeat,
                              float frequency, float presence, cg_err *err) {
    if (n_history == 0 || c->n == 0 || (repeat == 1.0f && frequency == 0.0f && presence == 0.0f))
        return CG_OK;
    // sorted copy of the window: count of a token = length of its run, found by binary search
    int32_t *h = malloc(n_history * sizeof *h);
    if (!h) return cg_err_set(err, CG_ERR_NOMEM, "sample: penalties out of memory (%zu tokens)", n_history);
    memcpy(h, history, n_history * sizeof *h);
    qsort(h, n_history, sizeof *h, cmp_i32);
    for (size_t i = 0; i < c->n; i++) {
        int32_t id = c->data[i].id;
        size_t lo = 0, hi = n_history;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (h[mid] < id) lo = mid + 1;
            else hi = mid;
        }
        size_t count = 0;
        while (lo + count < n_history && h[lo + count] == id) count++;
        if (!count) continue;
        float *l = &c->data[i].logit;
        if (*l <= 0) *l *= repeat;
        else *l /= repeat;
        *l -= (float)count * frequency + presence;
    }
    c->sorted = false;
    free(h);
    return CG_OK;
}

typedef struct dry_pen { int32_t id; float pen; } dry_pen;

static int cmp_pen(const void *pa, const void *pb) {
    const dry_pen *a = pa, *b = pb;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return a->pen > b->pen ? -1 : a->pen < b->pen;   // largest first within an id
}

static bool is_breaker(int32_t t, const int32_t *breakers, size_t n_breakers) {
    for (size_t b = 0; b < n_breakers; b++)
        if (t == breakers[b]) return true;
    return false;
}

cg_status cg_sample_dry(cg_candidates *c, const int32_t *history, size_t n, float multiplier, float base,
                        int32_t allowed_length, const int32_t *breakers, size_t n_breakers, cg_err *err) {
    if (multiplier == 0.0f || n < 2 || c->n == 0) return CG_OK;
    cg_status st = CG_OK;
    size_t n_pen = 0;
    int32_t *r = malloc(n * sizeof *r);
    size_t *z = malloc(n * sizeof *z);
    dry_pen *pens = malloc(n * sizeof *pens);
    if (!r || !z || !pens) {
        st = cg_err_set(err, CG_ERR_NOMEM, "sample: DRY out of memory (%zu tokens of history)", n);
        goto done;
    }
    // r = history reversed. z[k] = common prefix of r and r[k..] = the common suffix of the history
    // and of the history without its last k tokens (Z-algorithm, O(n)).
    for (size_t i = 0; i < n; i++) r[i] = history[n - 1 - i];
    z[0] = n;
    for (size_t k = 1, l = 0, rr = 0; k < n; k++) {
        size_t v = 0;
        if (k < rr) v = z[k - l] < rr - k ? z[k - l] : rr - k;
        while (k + v < n && r[v] == r[k + v]) v++;
        z[k] = v;
        if (k + v > rr) { l = k; rr = k + v; }
    }
    // a repeat never extends across a sequence breaker: cap by the distance to the latest one
    size_t brk = n;
    for (size_t i = 0; i < n; i++)
        if (is_breaker(r[i], breakers, n_breakers)) { brk = i; break; }
    size_t allowed = allowed_length > 0 ? (size_t)allowed_length : 0;
    for (size_t k = 1; k < n; k++) {
        size_t len = z[k] < brk ? z[k] : brk;
        if (len == 0 || len < allowed) continue;
        int32_t next = r[k - 1];   // the token that followed the earlier occurrence
        if (is_breaker(next, breakers, n_breakers)) continue;
        pens[n_pen++] = (dry_pen){next, multiplier * powf(base, (float)len - (float)allowed)};
    }
    if (n_pen == 0) goto done;
    qsort(pens, n_pen, sizeof *pens, cmp_pen);
    for (size_t i = 0; i < c->n; i++) {
        size_t lo = 0, hi = n_pen;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (pens[mid].id < c->data[i].id) lo = mid + 1;
            else hi = mid;
        }
        if (lo < n_pen && pens[lo].id == c->data[i].id) c->data[i].logit -= pens[lo].pen;
    }
    c->sorted = false;
done:
    free(r);
    free(z);
    free(pens);
    return st;
}

size_t cg_sample_greedy(const cg_candidates *c) {
    size_t best = 0;
    for (size_t i = 1; i < c->n; i++)
        if (before(&c->data[i], &c->data[best])) best = i;
    return best;
}

// softmax without sorting (the draw does not need an order)
static void softmax_unsorted(cg_candidates *c) {
    float max = -INFINITY;
    for (size_t i = 0; i < c->n; i++)
        if (c->data[i].logit > max) max = c->data[i].logit;
    double sum = 0;
    for (size_t i = 0; i < c->n; i++) {
        double e = exp((double)c->data[i].logit - max);
        c->data[i].p = (float)e;
        sum += e;
    }
    for (size_t i = 0; i < c->n; i++) c->data[i].p = (float)(c->data[i].p / sum);
}

size_t cg_sample_dist(cg_candidates *c, cg_rng *rng) {
    if (c->sorted) cg_candidates_softmax(c);
    else softmax_unsorted(c);
    double u = cg_rng_uniform(rng), cum = 0;
    for (size_t i = 0; i < c->n; i++) {
        cum += c->data[i].p;
        if (u < cum) return i;
    }
    // rounding left u above the sum: the last candidate with p > 0
    size_t i = c->n;
    while (i > 1 && c->data[i - 1].p == 0) i--;
    return i - 1;
}

// ---- the chain -------------------------------------------------------------------------------------
struct cg_sampler {
    cg_sampler_params p;         // copy; p.logit_bias and p.order point into the fields below
    cg_logit_bias *bias;         // owned
    cg_sampler_stage order[CG_SAMPLER_STAGE_COUNT_ * 2];
    int32_t n_vocab;
    cg_token_data *cand;         // owned, n_vocab entries
    cg_candidates last;          // view of cand after the last sample
    int32_t *hist;               // owned, growable: every accepted token
    size_t n_hist, cap_hist;
    cg_rng rng;
    float mu;                    // mirostat v2 state
};

static const cg_sampler_stage DEFAULT_ORDER[] = {
    CG_SAMPLER_STAGE_PENALTIES, CG_SAMPLER_STAGE_DRY,   CG_SAMPLER_STAGE_TOP_K,
    CG_SAMPLER_STAGE_TYPICAL,   CG_SAMPLER_STAGE_TOP_P, CG_SAMPLER_STAGE_MIN_P,
    CG_SAMPLER_STAGE_XTC,       CG_SAMPLER_STAGE_TEMPERATURE,
};

void cg_sampler_params_default(cg_sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->seed = 0;
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->typical_p = 1.0f;
    p->min_keep = 1;
    p->penalty_last_n = 64;
    p->repeat_penalty = 1.0f;
    p->mirostat_tau = 5.0f;
    p->mirostat_eta = 0.1f;
    p->dry_base = 1.75f;
    p->dry_allowed_length = 2;
    p->dry_last_n = -1;
    p->xtc_threshold = 0.1f;
}

#define CHECK_RANGE(cond, field, fmt, val)                                                          \
    do {                                                                                            \
        if (!(cond)) return cg_err_set(err, CG_ERR_INVALID, "sampler: " field " = " fmt " is out of range", val); \
    } while (0)

static cg_status validate(const cg_sampler_params *p, int32_t n_vocab, cg_err *err) {
    if (n_vocab <= 0) return cg_err_set(err, CG_ERR_INVALID, "sampler: n_vocab = %d must be > 0", n_vocab);
    CHECK_RANGE(isfinite(p->temperature), "temperature", "%g", (double)p->temperature);
    CHECK_RANGE(p->top_p >= 0 && p->top_p <= 1, "top_p", "%g (0..1)", (double)p->top_p);
    CHECK_RANGE(p->min_p >= 0 && p->min_p <= 1, "min_p", "%g (0..1)", (double)p->min_p);
    CHECK_RANGE(p->typical_p >= 0 && p->typical_p <= 1, "typical_p", "%g (0..1)", (double)p->typical_p);
    CHECK_RANGE(p->repeat_penalty > 0 && isfinite(p->repeat_penalty), "repeat_penalty", "%g (> 0)",
                (double)p->repeat_penalty);
    CHECK_RANGE(isfinite(p->frequency_penalty), "frequency_penalty", "%g", (double)p->frequency_penalty);
    CHECK_RANGE(isfinite(p->presence_penalty), "presence_penalty", "%g", (double)p->presence_penalty);
    CHECK_RANGE(p->penalty_last_n >= -1, "penalty_last_n", "%d (-1 or >= 0)", p->penalty_last_n);
    CHECK_RANGE(p->dry_last_n >= -1, "dry_last_n", "%d (-1 or >= 0)", p->dry_last_n);
    CHECK_RANGE(p->dry_multiplier >= 0 && isfinite(p->dry_multiplier), "dry_multiplier", "%g", (double)p->dry_multiplier);
    CHECK_RANGE(p->dry_base >= 1 && isfinite(p->dry_base), "dry_base", "%g (>= 1)", (double)p->dry_base);
    CHECK_RANGE(p->n_dry_breakers <= CG_SAMPLER_MAX_BREAKERS, "n_dry_breakers", "%zu", p->n_dry_breakers);
    CHECK_RANGE(p->xtc_probability >= 0 && p->xtc_probability <= 1, "xtc_probability", "%g (0..1)",
                (double)p->xtc_probability);
    CHECK_RANGE(p->xtc_threshold >= 0 && p->xtc_threshold <= 1, "xtc_threshold", "%g (0..1)", (double)p->xtc_threshold);
    if (p->mirostat == 1)
        return cg_err_set(err, CG_ERR_UNSUPPORTED, "sampler: mirostat = 1 is not implemented (use 2)");
    CHECK_RANGE(p->mirostat == 0 || p->mirostat == 2, "mirostat", "%d (0 or 2)", p->mirostat);
    if (p->mirostat == 2) {
        CHECK_RANGE(p->mirostat_tau > 0 && isfinite(p->mirostat_tau), "mirostat_tau", "%g", (double)p->mirostat_tau);
        CHECK_RANGE(p->mirostat_eta > 0 && isfinite(p->mirostat_eta), "mirostat_eta", "%g", (double)p->mirostat_eta);
    }
    for (size_t i = 0; i < p->n_logit_bias; i++) {
        if (p->logit_bias[i].id < 0 || p->logit_bias[i].id >= n_vocab)
            return cg_err_set(err, CG_ERR_INVALID, "sampler: logit_bias[%zu] token id %d is outside the vocabulary (0..%d)",
                              i, p->logit_bias[i].id, n_vocab - 1);
        if (isnan(p->logit_bias[i].bias))
            return cg_err_set(err, CG_ERR_INVALID, "sampler: logit_bias[%zu] for token %d is NaN", i, p->logit_bias[i].id);
    }
    if (p->order && p->n_order > CG_SAMPLER_STAGE_COUNT_ * 2)
        return cg_err_set(err, CG_ERR_INVALID, "sampler: order has %zu stages (at most %d)", p->n_order,
                          CG_SAMPLER_STAGE_COUNT_ * 2);
    for (size_t i = 0; p->order && i < p->n_order; i++)
        if ((unsigned)p->order[i] >= CG_SAMPLER_STAGE_COUNT_)
            return cg_err_set(err, CG_ERR_INVALID, "sampler: order[%zu] = %d is not a stage", i, (int)p->order[i]);
    return CG_OK;
}

cg_status cg_sampler_new(const cg_sampler_params *p, int32_t n_vocab, cg_sampler **out, cg_err *err) {
    cg_status st = validate(p, n_vocab, err);
    if (st) return st;
    cg_sampler *s = calloc(1, sizeof *s);
    if (!s) return cg_err_set(err, CG_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    if (p->n_logit_bias) s->bias = malloc(p->n_logit_bias * sizeof *s->bias);
    if (!s->cand || (p->n_logit_bias && !s->bias)) {
        st = cg_err_set(err, CG_ERR_NOMEM, "sampler: out of memory (n_vocab %d)", n_vocab);
        goto fail;
    }
    if (p->n_logit_bias) memcpy(s->bias, p->logit_bias, p->n_logit_bias * sizeof *s->bias);
    s->p.logit_bias = s->bias;
    if (p->order) {
        memcpy(s->order, p->order, p->n_order * sizeof *s->order);
    } else {
        memcpy(s->order, DEFAULT_ORDER, sizeof DEFAULT_ORDER);
        s->p.n_order = sizeof DEFAULT_ORDER / sizeof *DEFAULT_ORDER;
    }
    s->p.order = s->order;
    cg_sampler_reset(s, p->seed);
    *out = s;
    return CG_OK;
fail:
    cg_sampler_free(s);
    return st;
}

void cg_sampler_free(cg_sampler *s) {
    if (!s) return;
    free(s->bias);
    free(s->cand);
    free(s->hist);
    free(s);
}

void cg_sampler_reset(cg_sampler *s, uint64_t seed) {
    s->n_hist = 0;
    cg_rng_seed(&s->rng, seed);
    s->mu = 2.0f * s->p.mirostat_tau;
    s->last = (cg_candidates){s->cand, 0, false};
}

cg_status cg_sampler_accept(cg_sampler *s, int32_t token, cg_err *err) {
    if (token < 0 || token >= s->n_vocab)
        return cg_err_set(err, CG_ERR_INVALID, "sampler: accepted token %d is outside the vocabulary (0..%d)",
                          token, s->n_vocab - 1);
    if (s->n_hist == s->cap_hist) {
        size_t cap = s->cap_hist ? s->cap_hist * 2 : 256, bytes;
        if (!cg_mul_size(cap, sizeof *s->hist, &bytes))
            return cg_err_set(err, CG_ERR_LIMIT, "sampler: history of %zu tokens is too long", s->n_hist);
        int32_t *h = realloc(s->hist, bytes);
        if (!h) return cg_err_set(err, CG_ERR_NOMEM, "sampler: out of memory for the history");
        s->hist = h;
        s->cap_hist = cap;
    }
    s->hist[s->n_hist++] = token;
    return CG_OK;
}

static const int32_t *window(const cg_sampler *s, int32_t last_n, size_t *n) {
    size_t w = last_n < 0 ? s->n_hist : (size_t)last_n;
    if (w > s->n_hist) w = s->n_hist;
    *n = w;
    return w ? s->hist + (s->n_hist - w) : s->hist;   // no history yet: hist may be NULL
}

static cg_status apply_stage(cg_sampler *s, cg_sampler_stage st, cg_candidates *c, cg_err *err) {
    const cg_sampler_params *p = &s->p;
    size_t n;
    const int32_t *h;
    switch (st) {
    case CG_SAMPLER_STAGE_PENALTIES:
        h = window(s, p->penalty_last_n, &n);
        return cg_sample_penalties(c, h, n, p->repeat_penalty, p->frequency_penalty, p->presence_penalty, err);
    case CG_SAMPLER_STAGE_DRY:
        h = window(s, p->dry_last_n, &n);
        return cg_sample_dry(c, h, n, p->dry_multiplier, p->dry_base, p->dry_allowed_length, p->dry_breakers,
                             p->n_dry_breakers, err);
    case CG_SAMPLER_STAGE_TOP_K: cg_sample_top_k(c, p->top_k, p->min_keep); break;
    case CG_SAMPLER_STAGE_TYPICAL: cg_sample_typical(c, p->typical_p, p->min_keep); break;
    case CG_SAMPLER_STAGE_TOP_P: cg_sample_top_p(c, p->top_p, p->min_keep); break;
    case CG_SAMPLER_STAGE_MIN_P: cg_sample_min_p(c, p->min_p, p->min_keep); break;
    case CG_SAMPLER_STAGE_XTC: cg_sample_xtc(c, p->xtc_probability, p->xtc_threshold, p->min_keep, &s->rng); break;
    case CG_SAMPLER_STAGE_TEMPERATURE: cg_sample_temperature(c, p->temperature); break;
    default: return cg_err_set(err, CG_ERR_INTERNAL, "sampler: stage %d", (int)st);
    }
    return CG_OK;
}

// mirostat v2: drop candidates whose surprise -log2 p exceeds mu, draw, move mu towards tau.
static size_t mirostat2(cg_sampler *s, cg_candidates *c) {
    cg_candidates_softmax(c);
    size_t keep = 0;
    while (keep < c->n && -log2f(c->data[keep].p) <= s->mu) keep++;
    if (keep == 0) keep = 1;
    c->n = keep;
    cg_candidates_softmax(c);
    size_t i = cg_sample_dist(c, &s->rng);
    float surprise = -log2f(c->data[i].p);
    s->mu -= s->p.mirostat_eta * (surprise - s->p.mirostat_tau);
    return i;
}

cg_status cg_sampler_sample(cg_sampler *s, const float *logits, const uint8_t *allowed, int32_t *out_token,
                            cg_err *err) {
    cg_status st = CG_OK;
    cg_token_data *d = s->cand;
    for (int32_t i = 0; i < s->n_vocab; i++) d[i] = (cg_token_data){i, logits[i], 0};
    for (size_t i = 0; i < s->p.n_logit_bias; i++) d[s->bias[i].id].logit += s->bias[i].bias;
    size_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        if (allowed && !allowed[i]) continue;
        if (isnan(d[i].logit) || (isinf(d[i].logit) && d[i].logit < 0)) continue;
        d[n++] = d[i];
    }
    cg_candidates c = {d, n, false};
    s->last = c;
    if (n == 0) return cg_err_set(err, CG_ERR_STATE, "sampler: no token is allowed (all masked or -inf)");
    // +inf logits: those tokens are certain; keep them only, equally likely
    size_t n_inf = 0;
    for (size_t i = 0; i < n; i++)
        if (isinf(d[i].logit)) d[n_inf++] = (cg_token_data){d[i].id, 0.0f, 0};
    if (n_inf) c.n = n_inf;
    size_t pick;
    if (s->p.mirostat == 2) {
        size_t nh;
        const int32_t *h = window(s, s->p.penalty_last_n, &nh);
        if ((st = cg_sample_penalties(&c, h, nh, s->p.repeat_penalty, s->p.frequency_penalty,
                                      s->p.presence_penalty, err)))
            return st;
        cg_sample_temperature(&c, s->p.temperature);
        pick = mirostat2(s, &c);
    } else if (s->p.temperature <= 0) {
        // greedy: only the stages that move logits matter
        for (size_t i = 0; i < s->p.n_order; i++)
            if (s->order[i] == CG_SAMPLER_STAGE_PENALTIES || s->order[i] == CG_SAMPLER_STAGE_DRY)
                if ((st = apply_stage(s, s->order[i], &c, err))) return st;
        // the argmax (lowest id on ties) is the only candidate left, with all the probability
        swap_td(&c.data[0], &c.data[cg_sample_greedy(&c)]);
        c.n = 1;
        c.sorted = true;
        c.data[0].p = 1.0f;
        pick = 0;
    } else {
        for (size_t i = 0; i < s->p.n_order; i++)
            if ((st = apply_stage(s, s->order[i], &c, err))) return st;
        pick = cg_sample_dist(&c, &s->rng);
    }
    s->last = c;
    *out_token = c.data[pick].id;
    return CG_OK;
}

const cg_candidates *cg_sampler_last(const cg_sampler *s) { return &s->last; }

// ---- logprobs -------------------------------------------------------------------------------------
cg_status cg_logprobs_compute(const float *logits, int32_t n_vocab, int32_t chosen, size_t n_top,
                              const cg_token_text *vocab, cg_logprobs *out, cg_err *err) {
    if (n_vocab <= 0 || chosen < 0 || chosen >= n_vocab)
        return cg_err_set(err, CG_ERR_INVALID, "logprobs: chosen token %d is outside the vocabulary (0..%d)", chosen,
                          n_vocab - 1);
    if (n_top > CG_LOGPROBS_MAX_TOP)
        return cg_err_set(err, CG_ERR_INVALID, "logprobs: top_logprobs = %zu (at most %d)", n_top, CG_LOGPROBS_MAX_TOP);
    float max = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++)
        if (logits[i] > max) max = logits[i];
    if (!isfinite(max)) return cg_err_set(err, CG_ERR_INVALID, "logprobs: no finite logit (max %g)", (double)max);
    double sum = 0;
    for (int32_t i = 0; i < n_vocab; i++) sum += exp((double)logits[i] - max);
    double lse = max + log(sum);
    // top n: insertion into a small sorted array (n_top <= 20)
    memset(out, 0, sizeof *out);
    size_t k = 0;
    for (int32_t i = 0; i < n_vocab && n_top; i++) {
        float l = logits[i];
        if (k == n_top && !(l > out->top[k - 1].logprob)) continue;
        size_t j = k < n_top ? k++ : k - 1;
        while (j > 0 && l > out->top[j - 1].logprob) { out->top[j] = out->top[j - 1]; j--; }
        out->top[j] = (cg_token_logprob){i, l, {NULL, 0}};
    }
    out->n_top = k;
    for (size_t j = 0; j < k; j++) {
        out->top[j].logprob = (float)((double)out->top[j].logprob - lse);
        if (vocab) out->top[j].bytes = vocab[out->top[j].id];
    }
    out->chosen = (cg_token_logprob){chosen, (float)((double)logits[chosen] - lse), {NULL, 0}};
    if (vocab) out->chosen.bytes = vocab[chosen];
    return CG_OK;
}
