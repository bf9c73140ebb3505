/* NumPy's default generator, np.random.default_rng(seed): SeedSequence (numpy/random/
 * bit_generator.pyx) feeding PCG64 (XSL-RR 128/64, numpy/random/src/pcg64), and its
 * float32 uniform draws (next_uint32 >> 8) * 2^-24. implicit 0.7.3 initialises its
 * factors from this generator, so a model seeded the same way starts from the very same
 * numbers. Portable C: 128-bit arithmetic on pairs of 64-bit halves. */
#include "rec.h"

typedef struct {
  uint64_t hi, lo;
} u128;

static u128 add128(u128 a, u128 b) {
  u128 r = {a.hi + b.hi, a.lo + b.lo};
  r.hi += r.lo < a.lo;
  return r;
}

/* The full 128-bit product of two 64-bit numbers. */
static u128 mul64(uint64_t a, uint64_t b) {
  uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
  uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
  u128 r;
  r.lo = (p00 & 0xffffffffu) | (mid << 32);
  r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
  return r;
}

static u128 mul128(u128 a, u128 b) {
  u128 r = mul64(a.lo, b.lo);
  r.hi += a.hi * b.lo + a.lo * b.hi;
  return r;
}

static const u128 PCG_MULT = {2549297995355413924ULL, 4865540595714422341ULL};

static void pcg_step(mm_rec_npy_rng *g) {
  u128 s = {g->state_hi, g->state_lo}, inc = {g->inc_hi, g->inc_lo};
  s = add128(mul128(s, PCG_MULT), inc);
  g->state_hi = s.hi;
  g->state_lo = s.lo;
}

static uint64_t pcg_next64(mm_rec_npy_rng *g) {
  pcg_step(g);
  uint64_t x = g->state_hi ^ g->state_lo;
  unsigned rot = (unsigned)(g->state_hi >> 58);
  return (x >> rot) | (x << ((64 - rot) & 63));
}

/* ------------------------------------------------------------------ SeedSequence */

#define INIT_A 0x43b0d7e5u
#define MULT_A 0x931e8875u
#define INIT_B 0x8b51f9ddu
#define MULT_B 0x58f38dedu
#define MIX_MULT_L 0xca01f9ddu
#define MIX_MULT_R 0x4973f715u
#define POOL 4

static uint32_t hashmix(uint32_t value, uint32_t *hash_const) {
  value ^= *hash_const;
  *hash_const *= MULT_A;
  value *= *hash_const;
  value ^= value >> 16;
  return value;
}

static uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t r = MIX_MULT_L * x - MIX_MULT_R * y;
  r ^= r >> 16;
  return r;
}

void mm_rec_npy_seed(mm_rec_npy_rng *g, uint64_t seed) {
  /* the seed as little-endian 32-bit words (0 is one word) */
  uint32_t ent[2];
  int n_ent = 0;
  do {
    ent[n_ent++] = (uint32_t)(seed & 0xffffffffu);
    seed >>= 32;
  } while (seed > 0);
  uint32_t pool[POOL], hc = INIT_A;
  for (int i = 0; i < POOL; i++)
    pool[i] = hashmix(i < n_ent ? ent[i] : 0, &hc);
  for (int s = 0; s < POOL; s++)
    for (int d = 0; d < POOL; d++)
      if (s != d)
        pool[d] = mix(pool[d], hashmix(pool[s], &hc));
  /* generate_state(4, uint64): 8 words, paired little-endian into 64-bit values */
  uint32_t w[8];
  uint32_t hb = INIT_B;
  for (int i = 0; i < 8; i++) {
    uint32_t v = pool[i % POOL];
    v ^= hb;
    hb *= MULT_B;
    v *= hb;
    v ^= v >> 16;
    w[i] = v;
  }
  uint64_t val[4];
  for (int i = 0; i < 4; i++)
    val[i] = (uint64_t)w[2 * i] | ((uint64_t)w[2 * i + 1] << 32);
  /* pcg64_set_seed: state = (val[0] << 64) + val[1], sequence (val[2] << 64) + val[3] */
  u128 initstate = {val[0], val[1]}, initseq = {val[2], val[3]};
  u128 inc = {(initseq.hi << 1) | (initseq.lo >> 63), (initseq.lo << 1) | 1u};
  g->inc_hi = inc.hi;
  g->inc_lo = inc.lo;
  g->state_hi = g->state_lo = 0;
  pcg_step(g);
  u128 s = add128((u128){g->state_hi, g->state_lo}, initstate);
  g->state_hi = s.hi;
  g->state_lo = s.lo;
  pcg_step(g);
  g->has32 = false;
  g->u32 = 0;
}

uint32_t mm_rec_npy_next32(mm_rec_npy_rng *g) {
  if (g->has32) {
    g->has32 = false;
    return g->u32;
  }
  uint64_t next = pcg_next64(g);
  g->has32 = true;
  g->u32 = (uint32_t)(next >> 32);
  return (uint32_t)(next & 0xffffffffu);
}

float mm_rec_npy_float(mm_rec_npy_rng *g) {
  return (float)(mm_rec_npy_next32(g) >> 8) * (1.0f / 16777216.0f);
}
