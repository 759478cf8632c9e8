/* SPDX-License-Identifier: MIT */
/* The generator's PRNG: xoshiro256** seeded through splitmix64, and normal
 * deviates by Box-Muller.  Every row of every tensor gets its own stream
 * (seed, tensor index, row), so a file does not depend on the number of
 * threads or on how the rows are split between them. */
#pragma once

#include <math.h>
#include <stdint.h>

typedef struct mk_rng {
        uint64_t s[4];
        float spare; /* second Box-Muller deviate */
        int has_spare;
} mk_rng;

static inline uint64_t mk_splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static inline void mk_rng_init(mk_rng *r, uint64_t seed, uint64_t stream, uint64_t sub) {
        uint64_t x = seed;
        x = mk_splitmix64(&x) ^ stream;
        x = mk_splitmix64(&x) ^ sub;
        for (int i = 0; i < 4; i++)
                r->s[i] = mk_splitmix64(&x);
        r->has_spare = 0;
}

static inline uint64_t mk_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t mk_rng_next(mk_rng *r) {
        uint64_t *s = r->s, result = mk_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = mk_rotl(s[3], 45);
        return result;
}

/* Two standard normal deviates from one draw, Box-Muller: u1 in (0, 1] (so
 * that the log is finite) and u2 in [0, 1) of 24 bits each,
 * sqrt(-2 ln u1) (cos, sin)(2 pi u2).
 * In float: the tails stop at 5.8 sigma, which is plenty for weights. */
static inline void mk_rng_normal2(mk_rng *r, float *a, float *b) {
        uint64_t v = mk_rng_next(r);
        float u1 = (float)((v >> 40) + 1) * 0x1.0p-24f, u2 = (float)((v >> 16) & 0xffffff) * 0x1.0p-24f;
        float rad = sqrtf(-2.0f * logf(u1)), s, c;
        sincosf(2.0f * (float)M_PI * u2, &s, &c);
        *a = rad * c;
        *b = rad * s;
}

static inline float mk_rng_normal(mk_rng *r) {
        if (r->has_spare) {
                r->has_spare = 0;
                return r->spare;
        }
        float a;
        mk_rng_normal2(r, &a, &r->spare);
        r->has_spare = 1;
        return a;
}
