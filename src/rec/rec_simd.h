/* Small dense kernels shared by the implicit-feedback solvers (als.c, bpr.c, implicit.c):
 * dot products and updates over factor rows of any length, written so the compiler
 * vectorises them, and the x86-64 AVX2+FMA clones picked at run time. Private to src/rec. */
#ifndef MM_REC_SIMD_H
#define MM_REC_SIMD_H

#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#elif defined(__clang__)
#pragma clang fp contract(fast)
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define MM_REC_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MM_REC_CLONES
#endif

#if defined(__GNUC__)
#define MM_REC_INLINE static inline __attribute__((always_inline))
#else
#define MM_REC_INLINE static inline
#endif

#define MM_REC_LANES 8

#if defined(__GNUC__)
/* Eight floats as one value (GCC/Clang vector extensions: one AVX register in the AVX2
 * clones, two SSE registers otherwise); _u loads and stores at any float alignment. */
typedef float mm_v8f __attribute__((vector_size(32)));
typedef float mm_v8f_u __attribute__((vector_size(32), aligned(4), may_alias));
#define MM_REC_VEC 1

/* macros, not functions: a vector passed by value would change the ABI outside AVX */
#define mm_v8_load(p) (*(const mm_v8f_u *)(p))
#define mm_v8_store(p, v) (*(mm_v8f_u *)(p) = (v))
#define mm_v8_sum(v)                                                                               \
  ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))
#endif

/* a . b over k floats, with two vectors of partial sums side by side. */
MM_REC_INLINE float mm_rec_dot(const float *restrict a, const float *restrict b, int k) {
  int f = 0;
  float s = 0;
#if defined(MM_REC_VEC)
  mm_v8f s0 = {0}, s1 = {0};
  for (; f + 16 <= k; f += 16) {
    s0 += mm_v8_load(a + f) * mm_v8_load(b + f);
    s1 += mm_v8_load(a + f + 8) * mm_v8_load(b + f + 8);
  }
  for (; f + 8 <= k; f += 8)
    s0 += mm_v8_load(a + f) * mm_v8_load(b + f);
  s = mm_v8_sum(s0 + s1);
#endif
  for (; f < k; f++)
    s += a[f] * b[f];
  return s;
}

/* y += a x over k floats. */
MM_REC_INLINE void mm_rec_axpy(float a, const float *restrict x, float *restrict y, int k) {
  int f = 0;
#if defined(MM_REC_VEC)
  for (; f + 8 <= k; f += 8)
    mm_v8_store(y + f, mm_v8_load(y + f) + a * mm_v8_load(x + f));
#endif
  for (; f < k; f++)
    y[f] += a * x[f];
}

#if defined(MM_REC_VEC)
/* out[c0 .. c0 + 8 nv) of scale * G x, the nv vectors of sums held in registers while
 * the rows of G stream past (nv is a constant where this is inlined). */
MM_REC_INLINE void mm_rec_symv_block(const float *restrict G, const float *restrict x,
                                     float *restrict out, int k, float scale, int c0, int nv) {
  mm_v8f acc[8];
  for (int j = 0; j < nv; j++)
    acc[j] = (mm_v8f){0, 0, 0, 0, 0, 0, 0, 0};
  for (int b = 0; b < k; b++) {
    const float *g = G + (size_t)b * (size_t)k + (size_t)c0;
    float xb = x[b];
    for (int j = 0; j < nv; j++)
      acc[j] += xb * mm_v8_load(g + 8 * j);
  }
  for (int j = 0; j < nv; j++)
    mm_v8_store(out + c0 + 8 * j, scale * acc[j]);
}
#endif

/* out = scale * G x for the symmetric k x k matrix G, as a sum of G's rows weighted by x,
 * 64 columns at a time: independent multiply-adds into registers instead of k dependent
 * dot products or a store per row. */
MM_REC_INLINE void mm_rec_symv(const float *restrict G, const float *restrict x,
                               float *restrict out, int k, float scale) {
  int c0 = 0;
#if defined(MM_REC_VEC)
  for (; c0 + 64 <= k; c0 += 64)
    mm_rec_symv_block(G, x, out, k, scale, c0, 8);
  if (c0 + 32 <= k) {
    mm_rec_symv_block(G, x, out, k, scale, c0, 4);
    c0 += 32;
  }
  if (c0 + 16 <= k) {
    mm_rec_symv_block(G, x, out, k, scale, c0, 2);
    c0 += 16;
  }
  if (c0 + 8 <= k) {
    mm_rec_symv_block(G, x, out, k, scale, c0, 1);
    c0 += 8;
  }
#endif
  for (; c0 < k; c0++) {
    float s = 0;
    for (int b = 0; b < k; b++)
      s += x[b] * G[(size_t)b * (size_t)k + (size_t)c0];
    out[c0] = scale * s;
  }
}

#endif
