/* Internal to src/ops: float exp, sigmoid and tanh written so that GCC vectorises the loops
 * that call them (no branches, no libm calls, no float-to-int conversion), for the
 * element-wise tanh and sigmoid (elementwise.c), gelu's tanh form (activation.c) and the
 * recurrent layers (rnn.c). libm's tanhf is a call per element and cost 7x as much over a
 * large tensor. float64 callers keep libm.
 *
 * Accuracy, measured over every float against float64: exp_f32 within 1 ulp (subnormal
 * results included), tanh_f32 within 1.5e-7 relative (1.4 ulp), sigm_f32 within 1.5e-7
 * relative where its result is normal (spec/vmath_spec.lua checks 2e-7 on a sweep).
 * Special values as PyTorch's: tanh(+-inf) = +-1, tanh(-0) = -0, sigmoid(-inf) = 0,
 * sigmoid(inf) = 1, NaN gives NaN; exp overflows to inf from the same argument as libm's
 * expf, so sigmoid is 0 where exp(-x) overflows, as 1 / (1 + exp(-x)) is in PyTorch. */
#ifndef MM_VMATH_H
#define MM_VMATH_H

#include <stdint.h>
#include <string.h>

static inline uint32_t f32_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static inline float bits_f32(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* c ? a : b by bit masks: GCC if-converts (and so vectorises) a select of computed floats
 * only when it may ignore floating-point traps; this it vectorises as it is. */
static inline float sel_f32(int c, float a, float b) {
  uint32_t m = c ? 0xFFFFFFFFu : 0u;
  return bits_f32((f32_bits(a) & m) | (f32_bits(b) & ~m));
}

/* Cephes' expf: ln 2 in two parts (Cody-Waite) and the degree-6 polynomial of exp(r) on
 * |r| <= ln(2) / 2. Shared with the explicitly vectorised exp of softmax (reduce.c). */
#define MM_EXP_LOG2E (1.44269504088896341f)
#define MM_EXP_LN2_HI (0.693359375f)
#define MM_EXP_LN2_LO (-2.12194440e-4f)
#define MM_EXP_P0 (1.9875691500e-4f)
#define MM_EXP_P1 (1.3981999507e-3f)
#define MM_EXP_P2 (8.3334519073e-3f)
#define MM_EXP_P3 (4.1665795894e-2f)
#define MM_EXP_P4 (1.6666665459e-1f)
#define MM_EXP_P5 (5.0000001201e-1f)

/* exp with Cephes' polynomial: n = round(x / ln 2) from the bits of x / ln 2 + 1.5 * 2^23
 * (no float-to-int conversion, so NaN just stays NaN), r = x - n ln 2 in two parts, and
 * 2^n applied as two factors 2^h 2^(n - h), each a normal float, so that results near the
 * overflow threshold and subnormal ones round once. x is first clamped to [-104, 89], which
 * keeps n in [-150, 128] and still gives 0 below and inf above. */
static inline float exp_f32(float x) {
  x = sel_f32(x < -104.0f, -104.0f, x);
  x = sel_f32(x > 89.0f, 89.0f, x);
  float k = x * MM_EXP_LOG2E + 12582912.0f; /* 1.5 * 2^23: rounds to an integer */
  float n = k - 12582912.0f;
  uint32_t m = f32_bits(k) - 0x4B400000u + 150u; /* n + 150, in [0, 278] */
  uint32_t h = m >> 1;
  float r = x - n * MM_EXP_LN2_HI;
  r = r - n * MM_EXP_LN2_LO;
  float p = MM_EXP_P0;
  p = p * r + MM_EXP_P1;
  p = p * r + MM_EXP_P2;
  p = p * r + MM_EXP_P3;
  p = p * r + MM_EXP_P4;
  p = p * r + MM_EXP_P5;
  p = p * r * r + r + 1.0f;
  /* 2^(h - 75) and 2^(m - h - 75): biased exponents h + 52 and m - h + 52 in [52, 191] */
  return p * bits_f32((h + 52u) << 23) * bits_f32((m - h + 52u) << 23);
}

static inline float sigm_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

/* tanh: an odd polynomial (Cephes) below 0.625, else 1 - 2 / (exp(2|x|) + 1) (1 once exp
 * overflows); the sign is put back by its bit, so -0 stays -0. */
static inline float tanh_f32(float x) {
  uint32_t sign = f32_bits(x) & 0x80000000u;
  float ax = bits_f32(f32_bits(x) & 0x7FFFFFFFu), x2 = x * x;
  float p = -5.70498872745e-3f;
  p = p * x2 + 2.06390887954e-2f;
  p = p * x2 + -5.37397155531e-2f;
  p = p * x2 + 1.33314422036e-1f;
  p = p * x2 + -3.33332819422e-1f;
  float small = ax + ax * x2 * p;
  float big = 1.0f - 2.0f / (exp_f32(2.0f * ax) + 1.0f);
  return bits_f32(f32_bits(sel_f32(ax < 0.625f, small, big)) | sign);
}

#endif
