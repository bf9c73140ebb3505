/* A packed float32 GEMM with AVX-512 micro-kernels, for the convolutions' per-image
 * products on CPUs that have AVX-512F (checked at run time; elsewhere the convolutions
 * call OpenBLAS).
 *
 * Why not OpenBLAS there too: Debian's OpenBLAS 0.3.21 does not know AMD Zen 5 and runs
 * its Haswell (AVX2) kernels on it, at about half the machine's float32 peak; this
 * kernel reaches 1.5-1.7x OpenBLAS's speed on the convolution shapes (64 x 196 x 288) and
 * 2x on 512^3 (measured on the AMD EPYC the benchmarks run on).
 *
 * Layout: C (m x n, row-major) = [C +] A @ B. A is packed once (mm_sgemm_pack_a) into
 * panels of MR rows (k x MR, interleaved); B is packed per call into panels of 32 columns
 * (k x 32), zero-padded, from any strides. Micro-kernels compute MR x 32 tiles with
 * MR = 14, 8 or 4 (24-28 accumulators); the last column vector of a tile is masked.
 */
#include "nn_internal.h"

#ifdef MM_HAVE_SGEMM_AVX512

#include <immintrin.h>
#include <string.h>

#define NR 32
#define KC 512                     /* depth of one pass over C */
#define B_BLOCK_BYTES (512 * 1024) /* packed B per pass: about half of L2 */

/* Panel heights: 14 while at least 14 rows remain, then 8, then 4 (padded). */
static int64_t panel_height(int64_t rows_left) {
  return rows_left >= 14 ? 14 : (rows_left >= 8 ? 8 : 4);
}

size_t mm_sgemm_packed_a_size(int64_t m, int64_t k) {
  int64_t rows = 0;
  for (int64_t i = 0; i < m; i += panel_height(m - i))
    rows += panel_height(m - i);
  return (size_t)(rows * k);
}

void mm_sgemm_pack_a(int64_t m, int64_t k, const float *a, int64_t rs, int64_t cs, float *dst) {
  for (int64_t i0 = 0; i0 < m; i0 += panel_height(m - i0)) {
    int64_t h = panel_height(m - i0), valid = m - i0 < h ? m - i0 : h;
    for (int64_t p = 0; p < k; p++) {
      float *d = dst + p * h;
      int64_t i = 0;
      for (; i < valid; i++)
        d[i] = a[(i0 + i) * rs + p * cs];
      for (; i < h; i++)
        d[i] = 0;
    }
    dst += h * k;
  }
}

/* Columns of B per pass so that the packed block stays in cache (a multiple of NR). */
static int64_t block_cols(int64_t n, int64_t kc) {
  int64_t nc = B_BLOCK_BYTES / (4 * (kc > 0 ? kc : 1)) / NR * NR;
  if (nc < NR)
    nc = NR;
  int64_t npad = (n + NR - 1) / NR * NR;
  return nc < npad ? nc : npad;
}

size_t mm_sgemm_b_workspace(int64_t n, int64_t k) {
  int64_t kc = k < KC ? k : KC;
  return (size_t)(block_cols(n, kc) * (kc > 0 ? kc : 1));
}

#define AVX512 __attribute__((target("avx512f")))

#define R4(m) m(0) m(1) m(2) m(3)
#define R8(m) R4(m) m(4) m(5) m(6) m(7)
#define R14(m) R8(m) m(8) m(9) m(10) m(11) m(12) m(13)

/* C tile (rows x 32 at c, ldc) = [C +] sum over p of ap[p][i] * bp[p][:]; m0 / m1 mask
 * the two column vectors. */
#define DEFINE_KERNEL(ROWS, RN)                                                                    \
  AVX512 static void kernel_##ROWS(int64_t kc, const float *ap, const float *bp, float *c,         \
                                   int64_t ldc, bool acc, const float *rb, __mmask16 m0,           \
                                   __mmask16 m1) {                                                 \
    RN(KDECL)                                                                                      \
    for (int64_t p = 0; p < kc; p++) {                                                             \
      __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);                                \
      RN(KSTEP)                                                                                    \
      ap += ROWS;                                                                                  \
      bp += NR;                                                                                    \
    }                                                                                              \
    RN(KOUT)                                                                                       \
  }
#define KDECL(i)                                                                                   \
  __m512 c##i##a = rb ? _mm512_set1_ps(rb[i]) : _mm512_setzero_ps(), c##i##b = c##i##a;
#define KSTEP(i)                                                                                   \
  {                                                                                                \
    __m512 a = _mm512_set1_ps(ap[i]);                                                              \
    c##i##a = _mm512_fmadd_ps(a, b0, c##i##a);                                                     \
    c##i##b = _mm512_fmadd_ps(a, b1, c##i##b);                                                     \
  }
#define KOUT(i)                                                                                    \
  {                                                                                                \
    float *r = c + i * ldc;                                                                        \
    if (acc) {                                                                                     \
      c##i##a = _mm512_add_ps(c##i##a, _mm512_maskz_loadu_ps(m0, r));                              \
      c##i##b = _mm512_add_ps(c##i##b, _mm512_maskz_loadu_ps(m1, r + 16));                         \
    }                                                                                              \
    _mm512_mask_storeu_ps(r, m0, c##i##a);                                                         \
    _mm512_mask_storeu_ps(r + 16, m1, c##i##b);                                                    \
  }

static __mmask16 lane_mask(int64_t count) {
  if (count <= 0)
    return 0;
  return count >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << count) - 1);
}

/* r[0..15] (16 rows of 16) transposed in place. */
AVX512 static void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  /* 128-bit lane k of r[4i + q] now holds column 4k + q of rows 4i .. 4i + 3 */
  __m512 o[16];
  for (int q = 0; q < 4; q++) {
    __m512 a = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88),
           b = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);
    __m512 c = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
    __m512 d = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
    o[q] = _mm512_shuffle_f32x4(a, c, 0x88);
    o[8 + q] = _mm512_shuffle_f32x4(a, c, 0xDD);
    o[4 + q] = _mm512_shuffle_f32x4(b, d, 0x88);
    o[12 + q] = _mm512_shuffle_f32x4(b, d, 0xDD);
  }
  for (int i = 0; i < 16; i++)
    r[i] = o[i];
}

/* B rows [0, kc) x columns [0, nc) (strides rs, cs) into panels of kc x NR, zero-padded. */
AVX512 static void pack_b(int64_t kc, int64_t nc, const float *b, int64_t rs, int64_t cs,
                          float *dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    int64_t w = nc - j0 < NR ? nc - j0 : NR;
    const float *src = b + j0 * cs;
    if (cs == 1) { /* rows of B contiguous: two masked loads per row */
      __mmask16 m0 = lane_mask(w), m1 = lane_mask(w - 16);
      for (int64_t p = 0; p < kc; p++) {
        _mm512_store_ps(dst + p * NR, _mm512_maskz_loadu_ps(m0, src + p * rs));
        _mm512_store_ps(dst + p * NR + 16, _mm512_maskz_loadu_ps(m1, src + p * rs + 16));
      }
    } else if (rs == 1) { /* columns of B contiguous: 16 x 16 transposes */
      for (int64_t h = 0; h < 2; h++) {
        int64_t rows = w - 16 * h; /* source columns of this half */
        for (int64_t p0 = 0; p0 < kc; p0 += 16) {
          __mmask16 pm = lane_mask(kc - p0);
          __m512 r[16];
          for (int64_t t = 0; t < 16; t++)
            r[t] = t < rows ? _mm512_maskz_loadu_ps(pm, src + (16 * h + t) * cs + p0)
                            : _mm512_setzero_ps();
          transpose16(r);
          for (int64_t t = 0; t < 16 && p0 + t < kc; t++)
            _mm512_store_ps(dst + (p0 + t) * NR + 16 * h, r[t]);
        }
      }
    } else {
      for (int64_t p = 0; p < kc; p++)
        for (int64_t j = 0; j < NR; j++)
          dst[p * NR + j] = j < w ? src[p * rs + j * cs] : 0.0f;
    }
    dst += kc * NR;
  }
}

DEFINE_KERNEL(14, R14)
DEFINE_KERNEL(8, R8)
DEFINE_KERNEL(4, R4)

bool mm_sgemm_fast_available(void) {
  static int have = -1;
  if (have < 0) {
    __builtin_cpu_init();
    have = __builtin_cpu_supports("avx512f") ? 1 : 0;
  }
  return have == 1;
}

void mm_sgemm_packed(int64_t m, int64_t n, int64_t k, const float *apacked, const float *b,
                     int64_t brs, int64_t bcs, float *c, int64_t ldc, bool beta,
                     const float *row_bias, float *bbuf) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    for (int64_t i = 0; !beta && i < m; i++)
      for (int64_t j = 0; j < n; j++)
        c[i * ldc + j] = row_bias ? row_bias[i] : 0.0f;
    return;
  }
  int64_t nk = (k + KC - 1) / KC;
  for (int64_t kb = 0; kb < nk; kb++) {
    int64_t p0 = k * kb / nk, kc = k * (kb + 1) / nk - p0;
    bool acc = beta || kb > 0;
    const float *bias = acc ? NULL : row_bias; /* the first pass starts from the bias */
    int64_t nc_max = block_cols(n, kc);
    for (int64_t jb = 0; jb < n; jb += nc_max) {
      int64_t nc = n - jb < nc_max ? n - jb : nc_max;
      pack_b(kc, nc, b + p0 * brs + jb * bcs, brs, bcs, bbuf);
      for (int64_t j0 = 0; j0 < nc; j0 += NR) {
        const float *bp = bbuf + j0 * kc;
        __mmask16 m0 = lane_mask(nc - j0), m1 = lane_mask(nc - j0 - 16);
        const float *ap = apacked;
        for (int64_t i0 = 0; i0 < m; i0 += panel_height(m - i0)) {
          int64_t h = panel_height(m - i0);
          float *ct = c + i0 * ldc + jb + j0;
          const float *a = ap + p0 * h, *rb = bias ? bias + i0 : NULL;
          if (h == 14) {
            kernel_14(kc, a, bp, ct, ldc, acc, rb, m0, m1);
          } else if (h == 8) {
            kernel_8(kc, a, bp, ct, ldc, acc, rb, m0, m1);
          } else if (m - i0 >= 4) {
            kernel_4(kc, a, bp, ct, ldc, acc, rb, m0, m1);
          } else { /* fewer than 4 rows left: through a tile */
            float tile[4 * NR];
            kernel_4(kc, a, bp, tile, NR, false, NULL, 0xffff, 0xffff);
            for (int64_t i = 0; i < m - i0; i++)
              for (int64_t j = 0; j < NR && j < nc - j0; j++)
                ct[i * ldc + j] = (acc ? ct[i * ldc + j] : (rb ? rb[i] : 0.0f)) + tile[i * NR + j];
          }
          ap += h * k;
        }
      }
    }
  }
}

#endif /* MM_HAVE_SGEMM_AVX512 */
