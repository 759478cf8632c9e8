/* SPDX-License-Identifier: MIT */
/* The sampler: logits in, one token id out.  The chain is llama.cpp's
 * default order and semantics:
 *
 *   repetition penalty  every distinct token among the last repeat_last_n
 *                       accepted: logit > 0 ? logit / penalty : logit * penalty
 *   greedy              temperature <= 0: argmax (lowest id on ties)
 *   top-k               keep the k largest logits
 *   top-p               keep the smallest prefix (by probability, at
 *                       temperature 1) whose mass reaches p
 *   min-p               keep tokens with p >= min_p * p_max
 *   temperature         logits / T
 *   draw                softmax, one uniform draw from our own PRNG
 *                       (xoshiro256**, seeded through splitmix64), so a
 *                       seed gives the same tokens on every machine.
 *
 * Every buffer is allocated once, with the sampler. */
#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "engine.h"
#include "macro.h"

typedef struct cand {
        float logit;
        int32_t id;
} cand;

struct engine_sampler {
        engine_sampler_params p;
        int32_t n_vocab;
        cand *cands;      /* [n_vocab] */
        uint8_t *seen;    /* [n_vocab] marks while applying the penalty */
        int32_t *recent;  /* ring of the last repeat_last_n accepted tokens */
        int32_t n_recent, recent_head;
        uint64_t rng[4];
};

/* ---- PRNG ---- */

static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) {
        return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro256ss(uint64_t s[4]) {
        uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(engine_sampler *s) {
        return (double)(xoshiro256ss(s->rng) >> 11) * 0x1.0p-53;
}

/* ---- lifetime ---- */

void engine_sampler_default_params(engine_sampler_params *p) {
        *p = (engine_sampler_params){
                .temperature = 0.8f,
                .top_k = 40,
                .top_p = 0.95f,
                .min_p = 0.05f,
                .repeat_penalty = 1.0f,
                .repeat_last_n = 64,
                .seed = ENGINE_SEED_RANDOM,
        };
}

void engine_sampler_free(engine_sampler *s) {
        if (!s)
                return;
        free(s->cands);
        free(s->seen);
        free(s->recent);
        free(s);
}

int engine_sampler_new(const engine_sampler_params *p, int32_t n_vocab, engine_sampler **ret) {
        engine_sampler *s;
        uint64_t seed;

        if (!p || !ret || n_vocab <= 0 || p->repeat_last_n < 0 || !(p->repeat_penalty > 0.0f) ||
            isnan(p->temperature) || isnan(p->top_p) || isnan(p->min_p))
                return -EINVAL;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->p = *p;
        s->n_vocab = n_vocab;
        s->cands = malloc((size_t)n_vocab * sizeof(cand));
        s->seen = calloc((size_t)n_vocab, 1);
        s->recent = malloc((size_t)MAX(p->repeat_last_n, 1) * sizeof(int32_t));
        if (!s->cands || !s->seen || !s->recent) {
                engine_sampler_free(s);
                return -ENOMEM;
        }

        seed = p->seed;
        if (seed == ENGINE_SEED_RANDOM && getrandom(&seed, sizeof seed, 0) != sizeof seed)
                seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        for (int i = 0; i < 4; i++)
                s->rng[i] = splitmix64(&seed);
        *ret = s;
        return 0;
}

void engine_sampler_accept(engine_sampler *s, int32_t token) {
        int32_t cap = s->p.repeat_last_n;
        if (cap <= 0)
                return;
        s->recent[s->recent_head] = token;
        s->recent_head = (s->recent_head + 1) % cap;
        if (s->n_recent < cap)
                s->n_recent++;
}

/* ---- the chain ---- */

static void apply_penalty(engine_sampler *s, float *logits) {
        float pen = s->p.repeat_penalty;

        if (pen == 1.0f || s->n_recent == 0)
                return;
        for (int32_t i = 0; i < s->n_recent; i++) {
                int32_t t = s->recent[i];
                if (t < 0 || t >= s->n_vocab || s->seen[t])
                        continue;
                s->seen[t] = 1;
                logits[t] = logits[t] > 0.0f ? logits[t] / pen : logits[t] * pen;
        }
        for (int32_t i = 0; i < s->n_recent; i++) {
                int32_t t = s->recent[i];
                if (t >= 0 && t < s->n_vocab)
                        s->seen[t] = 0;
        }
}

static int32_t argmax(const float *x, int32_t n) {
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
                if (x[i] > x[best])
                        best = i;
        return best;
}

/* a before b: higher logit first, then lower id (a total order, so the
 * result does not depend on the sort algorithm) */
static inline bool cand_before(const cand *a, const cand *b) {
        return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_cmp(const void *a, const void *b) {
        return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

/* Min-heap on cand_before (the root is the worst kept candidate). */
static void heap_sift_down(cand *h, int32_t n, int32_t i) {
        for (;;) {
                int32_t l = 2 * i + 1, r = l + 1, w = i;
                if (l < n && cand_before(&h[w], &h[l]))
                        w = l;
                if (r < n && cand_before(&h[w], &h[r]))
                        w = r;
                if (w == i)
                        return;
                cand t = h[i];
                h[i] = h[w];
                h[w] = t;
                i = w;
        }
}

/* Keep the k best of c[0..n) in c[0..k), sorted best first: O(n log k). */
static void top_k_sorted(cand *c, int32_t n, int32_t k) {
        for (int32_t i = k / 2 - 1; i >= 0; i--)
                heap_sift_down(c, k, i);
        for (int32_t i = k; i < n; i++)
                if (cand_before(&c[i], &c[0])) {
                        c[0] = c[i];
                        heap_sift_down(c, k, 0);
                }
        qsort(c, (size_t)k, sizeof(cand), cand_cmp);
}

int32_t engine_sampler_sample(engine_sampler *s, float *logits) {
        const engine_sampler_params *p = &s->p;
        cand *c = s->cands;
        int32_t n = s->n_vocab;
        bool sorted = false;

        apply_penalty(s, logits);
        if (!(p->temperature > 0.0f))
                return argmax(logits, n);

        for (int32_t i = 0; i < n; i++)
                c[i] = (cand){ .logit = logits[i], .id = i };

        if (p->top_k > 0 && p->top_k < n) {
                top_k_sorted(c, n, p->top_k);
                n = p->top_k;
                sorted = true;
        }

        if (p->top_p < 1.0f) {
                if (!sorted)
                        qsort(c, (size_t)n, sizeof(cand), cand_cmp);
                sorted = true;
                /* probabilities at temperature 1 */
                double sum = 0.0;
                for (int32_t i = 0; i < n; i++)
                        sum += exp((double)c[i].logit - (double)c[0].logit);
                double cum = 0.0;
                for (int32_t i = 0; i < n; i++) {
                        cum += exp((double)c[i].logit - (double)c[0].logit) / sum;
                        if (cum >= (double)p->top_p) {
                                n = i + 1;
                                break;
                        }
                }
        }

        if (p->min_p > 0.0f) {
                /* p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p) */
                float max = c[0].logit;
                if (!sorted)
                        for (int32_t i = 1; i < n; i++)
                                max = MAX(max, c[i].logit);
                float min_logit = max + logf(p->min_p);
                int32_t kept = 0;
                for (int32_t i = 0; i < n; i++)
                        if (c[i].logit >= min_logit)
                                c[kept++] = c[i];
                n = MAX(kept, 1); /* the maximum always passes */
        }

        /* temperature, softmax, draw */
        float max = c[0].logit;
        for (int32_t i = 1; i < n; i++)
                max = MAX(max, c[i].logit);
        double sum = 0.0;
        for (int32_t i = 0; i < n; i++) {
                c[i].logit = expf((c[i].logit - max) / p->temperature);
                sum += c[i].logit;
        }
        double u = rng_uniform(s) * sum, acc = 0.0;
        for (int32_t i = 0; i < n; i++) {
                acc += c[i].logit;
                if (u < acc)
                        return c[i].id;
        }
        return c[n - 1].id;
}
