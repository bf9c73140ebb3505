/* 2-D convolution and transposed convolution, forward and backward.
 *
 * Both go through im2col / col2im and a GEMM: for each image, the patches of the
 * "image side" (conv: the input; conv_transpose: the output) are laid out as a
 * (C * kh * kw) x (oh * ow) column matrix in a workspace reused from image to image,
 * and each group is one GEMM with its block of rows. Per image the workspace stays in
 * cache (conv 32->64 3x3 on 14x14: 225 KB), which is why this is not one GEMM for the
 * batch.
 *
 *   conv2d:            out_n = W @ im2col(x_n)          (+ bias)
 *     grad x:          x_n  += col2im(W^T @ gout_n)
 *     grad W:          W    += gout_n @ im2col(x_n)^T
 *   conv_transpose2d:  out_n = col2im(W^T @ x_n)        (+ bias)
 *     grad x:          x_n   = W @ im2col(gout_n)
 *     grad W:          W    += x_n @ im2col(gout_n)^T
 *
 * The GEMMs are OpenBLAS's, except for float32 on CPUs with AVX-512F, where the packed
 * kernels of sgemm_avx512.c run them (the weight is packed once per call) together with
 * vectorised stride-1 im2col / col2im: on the AMD EPYC the benchmarks run on, Debian's
 * OpenBLAS takes its Haswell kernels and the CNN's 32->64 layer took 15.3 ms forward +
 * backward (batch 64, one thread) against 7.5 ms now.
 *
 * Threads: with mm_get_num_threads() > 1 the batch is split into chunks run with
 * mm_parallel_for, each with its own workspace (and its own weight-gradient
 * accumulator), while OpenBLAS is set to one thread so that the two pools never
 * multiply; with one thread the images run in order on the calling thread.
 */
#include "nn_internal.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Geometry of one image <-> columns pair. */
typedef struct geom {
  int64_t c, h, w; /* image side */
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t oh, ow; /* column side (spatial) */
  bool identity;  /* 1x1 kernel, stride 1, no padding: columns are the image */
} geom;

static void set_identity(geom *g) {
  g->identity = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* Columns ox in [*lo, *hi) read inside the image for kernel column offset off. */
static void valid_range(const geom *g, int64_t off, int64_t *lo, int64_t *hi) {
  int64_t a = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
  int64_t last = g->w - 1 - off; /* ox * sw <= last */
  int64_t b = last < 0 ? 0 : last / g->sw + 1;
  if (b > g->ow)
    b = g->ow;
  if (a > b)
    a = b;
  *lo = a;
  *hi = b;
}

#define DEFINE_IM2COL(SUFFIX, T)                                                                   \
  static void im2col_##SUFFIX(const geom *g, const T *im, T *col) {                                \
    int64_t ocount = g->oh * g->ow;                                                                \
    for (int64_t c = 0; c < g->c; c++) {                                                           \
      const T *plane = im + c * g->h * g->w;                                                       \
      for (int64_t ki = 0; ki < g->kh; ki++) {                                                     \
        for (int64_t kj = 0; kj < g->kw; kj++) {                                                   \
          T *row = col + ((c * g->kh + ki) * g->kw + kj) * ocount;                                 \
          int64_t off = kj * g->dw - g->pw, lo, hi;                                                \
          valid_range(g, off, &lo, &hi);                                                           \
          for (int64_t oy = 0; oy < g->oh; oy++) {                                                 \
            T *dst = row + oy * g->ow;                                                             \
            int64_t iy = oy * g->sh - g->ph + ki * g->dh;                                          \
            if (iy < 0 || iy >= g->h) {                                                            \
              for (int64_t ox = 0; ox < g->ow; ox++)                                               \
                dst[ox] = 0;                                                                       \
              continue;                                                                            \
            }                                                                                      \
            const T *src = plane + iy * g->w;                                                      \
            for (int64_t ox = 0; ox < lo; ox++)                                                    \
              dst[ox] = 0;                                                                         \
            if (g->sw == 1) /* rows are short: an inline loop beats memcpy's call */               \
              for (int64_t ox = lo; ox < hi; ox++)                                                 \
                dst[ox] = src[ox + off];                                                           \
            else                                                                                   \
              for (int64_t ox = lo; ox < hi; ox++)                                                 \
                dst[ox] = src[ox * g->sw + off];                                                   \
            for (int64_t ox = hi; ox < g->ow; ox++)                                                \
              dst[ox] = 0;                                                                         \
          }                                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  /* im += the columns folded back (im must be initialised by the caller) */                       \
  static void col2im_##SUFFIX(const geom *g, const T *col, T *im) {                                \
    int64_t ocount = g->oh * g->ow;                                                                \
    for (int64_t c = 0; c < g->c; c++) {                                                           \
      T *plane = im + c * g->h * g->w;                                                             \
      for (int64_t ki = 0; ki < g->kh; ki++) {                                                     \
        for (int64_t kj = 0; kj < g->kw; kj++) {                                                   \
          const T *row = col + ((c * g->kh + ki) * g->kw + kj) * ocount;                           \
          int64_t off = kj * g->dw - g->pw, lo, hi;                                                \
          valid_range(g, off, &lo, &hi);                                                           \
          for (int64_t oy = 0; oy < g->oh; oy++) {                                                 \
            int64_t iy = oy * g->sh - g->ph + ki * g->dh;                                          \
            if (iy < 0 || iy >= g->h)                                                              \
              continue;                                                                            \
            const T *src = row + oy * g->ow;                                                       \
            T *dst = plane + iy * g->w + off;                                                      \
            if (g->sw == 1)                                                                        \
              for (int64_t ox = lo; ox < hi; ox++)                                                 \
                dst[ox] += src[ox];                                                                \
            else                                                                                   \
              for (int64_t ox = lo; ox < hi; ox++)                                                 \
                dst[ox * g->sw] += src[ox];                                                        \
          }                                                                                        \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }

DEFINE_IM2COL(f32, float)
DEFINE_IM2COL(f64, double)

#ifdef MM_HAVE_SGEMM_AVX512
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

/* lanes t of [0, 16) with lo <= t < hi */
static __mmask16 range_mask(int64_t lo, int64_t hi) {
  if (lo < 0)
    lo = 0;
  if (hi > 16)
    hi = 16;
  return hi <= lo ? 0 : (__mmask16)(((1u << (hi - lo)) - 1) << lo);
}

/* im2col and col2im for horizontal stride 1 (float32), 16 columns per masked load: the
 * rows are short (14 in the CNN's second layer), so per-element loops spend most of their
 * time on loop overhead. Masked-off lanes are never read. Sizes are copied to locals so
 * that the stores (through void pointers) do not force them to be reloaded. */
AVX512 static void im2col_s1_avx512(const geom *g, const float *im, float *col) {
  const int64_t C = g->c, H = g->h, W = g->w, KH = g->kh, KW = g->kw, OH = g->oh, OW = g->ow;
  const int64_t SH = g->sh, PH = g->ph, DH = g->dh, DW = g->dw, PW = g->pw, ocount = OH * OW;
  const int64_t pieces = (OW + 15) / 16;
  for (int64_t c = 0; c < C; c++) {
    const float *plane = im + c * H * W;
    for (int64_t kj = 0; kj < KW; kj++) {
      int64_t off = kj * DW - PW; /* stride 1: ox reads ix = ox + off */
      int64_t lo = off < 0 ? -off : 0, hi = W - off < OW ? W - off : OW;
      for (int64_t q = 0; q < pieces; q++) {
        int64_t ox0 = 16 * q;
        __mmask16 mload = range_mask(lo - ox0, hi - ox0), mstore = range_mask(0, OW - ox0);
        for (int64_t ki = 0; ki < KH; ki++) {
          float *row = col + ((c * KH + ki) * KW + kj) * ocount + ox0;
          const float *src = plane + off + ox0;
          for (int64_t oy = 0; oy < OH; oy++) {
            int64_t iy = oy * SH - PH + ki * DH;
            __m512 v = _mm512_setzero_ps();
            if (iy >= 0 && iy < H && mload)
              v = _mm512_maskz_loadu_ps(mload, src + iy * W);
            _mm512_mask_storeu_ps(row + oy * OW, mstore, v);
          }
        }
      }
    }
  }
}

/* im = col folded back, written (not accumulated): each 16-wide piece of an image row
 * sums its contributions in a register and is stored once, so no store waits on the
 * previous one (an add into memory per kernel offset did, through store forwarding). */
AVX512 static void col2im_s1_avx512(const geom *g, const float *col, float *im) {
  const int64_t C = g->c, H = g->h, W = g->w, KH = g->kh, KW = g->kw, OH = g->oh, OW = g->ow;
  const int64_t SH = g->sh, PH = g->ph, DH = g->dh, DW = g->dw, PW = g->pw, ocount = OH * OW;
  const int64_t pieces = (W + 15) / 16;
  /* the mask of kernel column kj for a piece of an image row, computed once if it fits */
  __mmask16 table[64];
  bool tabled = KW * pieces <= 64;
  for (int64_t kj = 0; tabled && kj < KW; kj++)
    for (int64_t q = 0; q < pieces; q++) {
      int64_t off = kj * DW - PW, ix0 = 16 * q, hi = OW + off - ix0, wlim = W - ix0;
      table[kj * pieces + q] = range_mask(off - ix0, hi < wlim ? hi : wlim);
    }
  for (int64_t c = 0; c < C; c++) {
    float *plane = im + c * H * W;
    const float *crows = col + c * KH * KW * ocount;
    for (int64_t iy = 0; iy < H; iy++)
      for (int64_t q = 0; q < pieces; q++) {
        int64_t ix0 = 16 * q;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t ki = 0; ki < KH; ki++) {
          int64_t t = iy + PH - ki * DH; /* oy * SH */
          if (t < 0 || (SH > 1 && t % SH != 0))
            continue;
          int64_t oy = SH > 1 ? t / SH : t;
          if (oy >= OH)
            continue;
          const float *src = crows + ki * KW * ocount + oy * OW + ix0 + PW;
          for (int64_t kj = 0; kj < KW; kj++) {
            __mmask16 m;
            if (tabled) {
              m = table[kj * pieces + q];
            } else {
              int64_t off = kj * DW - PW, hi = OW + off - ix0, wlim = W - ix0;
              m = range_mask(off - ix0, hi < wlim ? hi : wlim);
            }
            if (m) /* column ox = ix - off of row (ki, kj) */
              acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, src + kj * (ocount - DW)));
          }
        }
        _mm512_mask_storeu_ps(plane + iy * W + ix0, range_mask(0, W - ix0), acc);
      }
  }
}
#endif

/* fast: float32 on a CPU with AVX-512F (the job's packed-GEMM flag) */
static void im2col(mm_dtype dt, bool fast, const geom *g, const void *im, void *col) {
#ifdef MM_HAVE_SGEMM_AVX512
  if (fast && g->sw == 1) {
    im2col_s1_avx512(g, im, col);
    return;
  }
#endif
  (void)fast;
  if (dt == MM_FLOAT32)
    im2col_f32(g, im, col);
  else
    im2col_f64(g, im, col);
}

/* im = the columns folded back (im's previous contents are ignored) */
static void col2im(mm_dtype dt, bool fast, const geom *g, const void *col, void *im) {
#ifdef MM_HAVE_SGEMM_AVX512
  if (fast && g->sw == 1) {
    col2im_s1_avx512(g, col, im);
    return;
  }
#endif
  (void)fast;
  memset(im, 0, (size_t)(g->c * g->h * g->w) * (dt == MM_FLOAT32 ? 4 : 8));
  if (dt == MM_FLOAT32)
    col2im_f32(g, col, im);
  else
    col2im_f64(g, col, im);
}

/* C (m x n, row-major, ldc) = op(A) @ op(B) + beta * C; sizes were checked to fit int. */
static void gemm(mm_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a,
                 int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
  if (m == 0 || n == 0)
    return;
  CBLAS_TRANSPOSE tra = ta ? CblasTrans : CblasNoTrans, trb = tb ? CblasTrans : CblasNoTrans;
  if (lda < 1)
    lda = 1;
  if (ldb < 1)
    ldb = 1;
  if (dt == MM_FLOAT32)
    cblas_sgemm(CblasRowMajor, tra, trb, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b, (int)ldb,
                (float)beta, c, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, tra, trb, (int)m, (int)n, (int)k, 1.0, a, (int)lda, b, (int)ldb,
                beta, c, (int)ldc);
}

/* rows x count block: row r set to v[r] (v NULL: zeros) */
static void fill_rows(mm_dtype dt, void *p, int64_t rows, int64_t count, const void *v) {
  for (int64_t r = 0; r < rows; r++) {
    if (dt == MM_FLOAT32) {
      float *q = (float *)p + r * count, x = v ? ((const float *)v)[r] : 0.0f;
      for (int64_t i = 0; i < count; i++)
        q[i] = x;
    } else {
      double *q = (double *)p + r * count, x = v ? ((const double *)v)[r] : 0.0;
      for (int64_t i = 0; i < count; i++)
        q[i] = x;
    }
  }
}

/* row r += v[r] */
static void add_rows(mm_dtype dt, void *p, int64_t rows, int64_t count, const void *v) {
  for (int64_t r = 0; r < rows; r++) {
    if (dt == MM_FLOAT32) {
      float *q = (float *)p + r * count, x = ((const float *)v)[r];
      for (int64_t i = 0; i < count; i++)
        q[i] += x;
    } else {
      double *q = (double *)p + r * count, x = ((const double *)v)[r];
      for (int64_t i = 0; i < count; i++)
        q[i] += x;
    }
  }
}

/* dst[i] += src[i] */
static void add_into(mm_dtype dt, void *dst, const void *src, int64_t n) {
  if (dt == MM_FLOAT32) {
    float *d = dst;
    const float *s = src;
    for (int64_t i = 0; i < n; i++)
      d[i] += s[i];
  } else {
    double *d = dst;
    const double *s = src;
    for (int64_t i = 0; i < n; i++)
      d[i] += s[i];
  }
}

/* Sum of n floats in 16 independent lanes, so that the compiler vectorises it. */
static double sum_f32(const float *p, int64_t n) {
  float lanes[16] = {0};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; k++)
      lanes[k] += p[i + k];
  double s = 0;
  for (int k = 0; k < 16; k++)
    s += lanes[k];
  for (; i < n; i++)
    s += p[i];
  return s;
}

static double sum_f64(const double *p, int64_t n) {
  double lanes[8] = {0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++)
      lanes[k] += p[i + k];
  double s = 0;
  for (int k = 0; k < 8; k++)
    s += lanes[k];
  for (; i < n; i++)
    s += p[i];
  return s;
}

/* grad_bias[o] = sum over n and positions of gout[n, o, :] (accumulated in double) */
static void bias_grad(mm_dtype dt, const void *gout, int64_t n, int64_t o, int64_t count,
                      void *gb) {
  for (int64_t c = 0; c < o; c++) {
    double acc = 0;
    for (int64_t b = 0; b < n; b++) {
      int64_t base = (b * o + c) * count;
      acc += dt == MM_FLOAT32 ? sum_f32((const float *)gout + base, count)
                              : sum_f64((const double *)gout + base, count);
    }
    if (dt == MM_FLOAT32)
      ((float *)gb)[c] = (float)acc;
    else
      ((double *)gb)[c] = acc;
  }
}

/* ------------------------------------------------------------------ jobs */

/* One call's work over the batch. "col" sizes refer to the column side of g. */
typedef struct conv_job {
  mm_dtype dt;
  size_t esz;
  geom g;
  int64_t n, groups;
  int64_t cimg, ccol; /* channels of the image side and of the column side */
  int64_t kg;         /* rows of the column matrix per group: cimg / groups * kh * kw */
  int64_t ccg;        /* column-side channels per group */
  int64_t l;          /* column-side positions: oh * ow */
  int64_t img;        /* image-side elements per image: cimg * h * w */
  /* data, all contiguous */
  const void *x;    /* conv: input (image side); transpose: input (column side) */
  const void *w;    /* weight */
  const void *bias; /* may be NULL */
  const void *gout; /* backward: gradient of the output */
  void *out;        /* forward output */
  void *gx, *gw;    /* backward results (NULL when not wanted) */
  /* the packed AVX-512 GEMM (float32 on CPUs with AVX-512F), else OpenBLAS */
  bool fast;
  const float *wn, *wt;     /* W_g packed as A (ccg x kg) and as A^T (kg x ccg), per group */
  int64_t wn_size, wt_size; /* floats per group */
  /* per chunk */
  int nchunks;
  void **col;   /* im2col workspace, kg * groups * l each */
  void **gacc;  /* weight-gradient accumulators for chunks > 0 */
  float **bbuf; /* packed-B workspace (fast) */
  float **abuf; /* packed-A workspace for the weight gradient (fast) */
  void (*run)(struct conv_job *j, int chunk, int64_t b0, int64_t b1);
} conv_job;

static char *at(const void *p, int64_t elems, size_t esz) {
  return (char *)p + (size_t)elems * esz;
}

static const void *w_group(const conv_job *j, int64_t gr) {
  return at(j->w, gr * j->ccg * j->kg, j->esz);
}

/* c (ccg x l) = W_g (ccg x kg) @ b (kg x l) + bias_g (per row; NULL: none) */
static void gemm_w(conv_job *j, int chunk, int64_t gr, const void *b, void *c, const void *bias) {
#ifdef MM_HAVE_SGEMM_AVX512
  if (j->fast) {
    mm_sgemm_packed(j->ccg, j->l, j->kg, j->wn + gr * j->wn_size, b, j->l, 1, c, j->l, false,
                    bias ? (const float *)bias + gr * j->ccg : NULL, j->bbuf[chunk]);
    return;
  }
#endif
  (void)chunk;
  void *cg = c;
  if (bias)
    fill_rows(j->dt, cg, j->ccg, j->l, at(bias, gr * j->ccg, j->esz));
  gemm(j->dt, false, false, j->ccg, j->l, j->kg, w_group(j, gr), j->kg, b, j->l, bias ? 1.0 : 0.0,
       c, j->l);
}

/* c (kg x l) = W_g^T (kg x ccg) @ b (ccg x l) */
static void gemm_wt(conv_job *j, int chunk, int64_t gr, const void *b, void *c) {
#ifdef MM_HAVE_SGEMM_AVX512
  if (j->fast) {
    mm_sgemm_packed(j->kg, j->l, j->ccg, j->wt + gr * j->wt_size, b, j->l, 1, c, j->l, false, NULL,
                    j->bbuf[chunk]);
    return;
  }
#endif
  (void)chunk;
  gemm(j->dt, true, false, j->kg, j->l, j->ccg, w_group(j, gr), j->kg, b, j->l, 0.0, c, j->l);
}

/* Floats of n rounded up to 64 bytes, so that buffers laid end to end stay aligned for
 * the packed GEMM. */
static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

/* Weight gradient: gw_g (ccg x kg) = [gw_g +] a (ccg x l) @ col_g^T (l x kg). The packed
 * path wants full 32-column panels: along kg, or else (a 3x3 kernel on one channel has kg
 * = 9) along ccg, computing the transpose col_g @ a^T into a scratch tile. */
static void gemm_gw(conv_job *j, int chunk, const void *a, const void *col, void *c, bool beta) {
#ifdef MM_HAVE_SGEMM_AVX512
  if (j->fast && j->kg >= 32) {
    mm_sgemm_pack_a(j->ccg, j->l, a, j->l, 1, j->abuf[chunk]);
    mm_sgemm_packed(j->ccg, j->kg, j->l, j->abuf[chunk], col, 1, j->l, c, j->kg, beta, NULL,
                    j->bbuf[chunk]);
    return;
  }
  if (j->fast && j->ccg >= 32) {
    float *apk = j->abuf[chunk],
          *tile = apk + round16((int64_t)mm_sgemm_packed_a_size(j->kg, j->l));
    mm_sgemm_pack_a(j->kg, j->l, col, j->l, 1, apk);
    mm_sgemm_packed(j->kg, j->ccg, j->l, apk, a, 1, j->l, tile, j->ccg, false, NULL,
                    j->bbuf[chunk]);
    float *gw = c;
    for (int64_t o = 0; o < j->ccg; o++)
      for (int64_t k = 0; k < j->kg; k++)
        gw[o * j->kg + k] = (beta ? gw[o * j->kg + k] : 0.0f) + tile[k * j->ccg + o];
    return;
  }
#endif
  (void)chunk;
  gemm(j->dt, false, true, j->ccg, j->kg, j->l, a, j->l, col, j->l, beta ? 1.0 : 0.0, c, j->kg);
}

/* conv2d forward over images [b0, b1) */
static void conv_forward(conv_job *j, int chunk, int64_t b0, int64_t b1) {
  const geom *g = &j->g;
  for (int64_t b = b0; b < b1; b++) {
    const void *xb = at(j->x, b * j->img, j->esz);
    const void *col = xb;
    if (!g->identity) {
      im2col(j->dt, j->fast, g, xb, j->col[chunk]);
      col = j->col[chunk];
    }
    void *ob = at(j->out, b * j->ccol * j->l, j->esz);
    for (int64_t gr = 0; gr < j->groups; gr++)
      gemm_w(j, chunk, gr, at(col, gr * j->kg * j->l, j->esz), at(ob, gr * j->ccg * j->l, j->esz),
             j->bias);
  }
}

/* conv2d backward over images [b0, b1): gx and/or gw (chunk > 0 into its accumulator) */
static void conv_backward(conv_job *j, int chunk, int64_t b0, int64_t b1) {
  const geom *g = &j->g;
  void *gw = chunk == 0 ? j->gw : (j->gw ? j->gacc[chunk] : NULL);
  for (int64_t b = b0; b < b1; b++) {
    const void *gob = at(j->gout, b * j->ccol * j->l, j->esz);
    if (gw) {
      const void *xb = at(j->x, b * j->img, j->esz);
      const void *col = xb;
      if (!g->identity) {
        im2col(j->dt, j->fast, g, xb, j->col[chunk]);
        col = j->col[chunk];
      }
      for (int64_t gr = 0; gr < j->groups; gr++)
        gemm_gw(j, chunk, at(gob, gr * j->ccg * j->l, j->esz), at(col, gr * j->kg * j->l, j->esz),
                at(gw, gr * j->ccg * j->kg, j->esz), b != b0);
    }
    if (j->gx) {
      void *gxb = at(j->gx, b * j->img, j->esz);
      void *gcol = g->identity ? gxb : j->col[chunk];
      for (int64_t gr = 0; gr < j->groups; gr++)
        gemm_wt(j, chunk, gr, at(gob, gr * j->ccg * j->l, j->esz),
                at(gcol, gr * j->kg * j->l, j->esz));
      if (!g->identity)
        col2im(j->dt, j->fast, g, gcol, gxb);
    }
  }
}

/* conv_transpose2d forward: the input is the column side, the output the image side */
static void convt_forward(conv_job *j, int chunk, int64_t b0, int64_t b1) {
  const geom *g = &j->g;
  for (int64_t b = b0; b < b1; b++) {
    const void *xb = at(j->x, b * j->ccol * j->l, j->esz);
    void *ob = at(j->out, b * j->img, j->esz);
    void *col = g->identity ? ob : j->col[chunk];
    for (int64_t gr = 0; gr < j->groups; gr++)
      gemm_wt(j, chunk, gr, at(xb, gr * j->ccg * j->l, j->esz), at(col, gr * j->kg * j->l, j->esz));
    if (!g->identity)
      col2im(j->dt, j->fast, g, col, ob);
    if (j->bias)
      add_rows(j->dt, ob, g->c, g->h * g->w, j->bias);
  }
}

static void convt_backward(conv_job *j, int chunk, int64_t b0, int64_t b1) {
  const geom *g = &j->g;
  void *gw = chunk == 0 ? j->gw : (j->gw ? j->gacc[chunk] : NULL);
  for (int64_t b = b0; b < b1; b++) {
    const void *gob = at(j->gout, b * j->img, j->esz);
    const void *col = gob;
    if (!g->identity) {
      im2col(j->dt, j->fast, g, gob, j->col[chunk]);
      col = j->col[chunk];
    }
    if (j->gx) {
      void *gxb = at(j->gx, b * j->ccol * j->l, j->esz);
      for (int64_t gr = 0; gr < j->groups; gr++)
        gemm_w(j, chunk, gr, at(col, gr * j->kg * j->l, j->esz),
               at(gxb, gr * j->ccg * j->l, j->esz), NULL);
    }
    if (gw) {
      const void *xb = at(j->x, b * j->ccol * j->l, j->esz);
      for (int64_t gr = 0; gr < j->groups; gr++)
        gemm_gw(j, chunk, at(xb, gr * j->ccg * j->l, j->esz), at(col, gr * j->kg * j->l, j->esz),
                at(gw, gr * j->ccg * j->kg, j->esz), b != b0);
    }
  }
}

static void run_range(int64_t begin, int64_t end, void *arg) {
  conv_job *j = arg;
  for (int64_t c = begin; c < end; c++) {
    int64_t b0 = j->n * c / j->nchunks, b1 = j->n * (c + 1) / j->nchunks;
    if (b1 > b0)
      j->run(j, (int)c, b0, b1);
  }
}

/* Chunks run in parallel only when there are at least this many multiply-adds per
 * chunk: below that, starting a thread costs more than it saves. */
#define CONV_GRAIN_WORK ((int64_t)1 << 20)
#define MAX_CHUNKS 64

/* Packs the weight for the AVX-512 GEMM when the job can use it: as A (want_n) and / or
 * as A^T (want_t), for every group, into *holder. Leaves j->fast false otherwise. */
static int prepack_weight(mm_ctx *ctx, conv_job *j, bool want_n, bool want_t, mm_tensor **holder) {
  *holder = NULL;
  j->fast = false;
#ifdef MM_HAVE_SGEMM_AVX512
  if (j->dt != MM_FLOAT32 || j->n == 0 || !mm_sgemm_fast_available())
    return 0;
  j->wn_size = want_n ? round16((int64_t)mm_sgemm_packed_a_size(j->ccg, j->kg)) : 0;
  j->wt_size = want_t ? round16((int64_t)mm_sgemm_packed_a_size(j->kg, j->ccg)) : 0;
  int64_t total = j->groups * (j->wn_size + j->wt_size);
  if (total > 0) {
    *holder = nn_scratch(ctx, MM_FLOAT32, total);
    if (!*holder)
      return -1;
    float *base = mm_data(*holder);
    j->wn = base;
    j->wt = base + j->groups * j->wn_size;
    for (int64_t gr = 0; gr < j->groups; gr++) {
      const float *wg = w_group(j, gr);
      if (want_n)
        mm_sgemm_pack_a(j->ccg, j->kg, wg, j->kg, 1, (float *)j->wn + gr * j->wn_size);
      if (want_t)
        mm_sgemm_pack_a(j->kg, j->ccg, wg, 1, j->kg, (float *)j->wt + gr * j->wt_size);
    }
  }
  j->fast = true;
#else
  (void)ctx, (void)want_n, (void)want_t;
#endif
  return 0;
}

/* Floats of per-chunk packing workspace the fast GEMMs of this job need (B, then A). */
static void fast_workspace(const conv_job *j, int64_t *bsize, int64_t *asize) {
  *bsize = *asize = 0;
#ifdef MM_HAVE_SGEMM_AVX512
  if (!j->fast)
    return;
  int64_t sizes[4] = {
      (int64_t)mm_sgemm_b_workspace(j->l, j->kg), (int64_t)mm_sgemm_b_workspace(j->l, j->ccg),
      (int64_t)mm_sgemm_b_workspace(j->kg, j->l), (int64_t)mm_sgemm_b_workspace(j->ccg, j->l)};
  for (int i = 0; i < 4; i++)
    *bsize = sizes[i] > *bsize ? sizes[i] : *bsize;
  *bsize = round16(*bsize);
  int64_t normal = round16((int64_t)mm_sgemm_packed_a_size(j->ccg, j->l));
  int64_t transposed =
      round16((int64_t)mm_sgemm_packed_a_size(j->kg, j->l)) + round16(j->kg * j->ccg);
  *asize = normal > transposed ? normal : transposed;
#endif
}

/* Allocates the per-chunk buffers, runs the job and frees them. gacc_elems: weight
 * gradient size (0 when not accumulating one). want_wn / want_wt: the weight packings
 * the job's GEMMs use. */
static int run_job(mm_ctx *ctx, conv_job *j, int64_t work_per_image, bool want_wn, bool want_wt,
                   int64_t gacc_elems) {
  if (j->n == 0)
    return 0;
  int threads = mm_get_num_threads();
  int64_t per = work_per_image > 0 ? work_per_image : 1;
  int64_t max_chunks = j->n * per / CONV_GRAIN_WORK;
  int nchunks = threads;
  if (nchunks > j->n)
    nchunks = (int)j->n;
  if (nchunks > max_chunks)
    nchunks = (int)(max_chunks > 1 ? max_chunks : 1);
  if (nchunks > MAX_CHUNKS)
    nchunks = MAX_CHUNKS;
  j->nchunks = nchunks;
  mm_tensor *wpack = NULL, *holders[MAX_CHUNKS] = {NULL};
  void *cols[MAX_CHUNKS] = {NULL}, *gaccs[MAX_CHUNKS] = {NULL};
  float *bbufs[MAX_CHUNKS] = {NULL}, *abufs[MAX_CHUNKS] = {NULL};
  j->col = cols;
  j->gacc = gaccs;
  j->bbuf = bbufs;
  j->abuf = abufs;
  int status = prepack_weight(ctx, j, want_wn, want_wt, &wpack);
  /* per chunk, one buffer: columns, weight-gradient accumulator, packed B, packed A */
  int64_t col_elems = j->g.identity ? 0 : round16(j->kg * j->groups * j->l);
  int64_t acc_elems = round16(gacc_elems), bsize, asize;
  fast_workspace(j, &bsize, &asize);
  for (int c = 0; c < nchunks && status == 0; c++) {
    int64_t total = col_elems + (c > 0 ? acc_elems : 0) + bsize + asize;
    if (total == 0)
      continue;
    holders[c] = nn_scratch(ctx, j->dt, total);
    if (!holders[c]) {
      status = -1;
      break;
    }
    char *p = mm_data(holders[c]);
    cols[c] = col_elems ? p : NULL;
    p += (size_t)col_elems * j->esz;
    if (c > 0 && acc_elems) {
      gaccs[c] = p;
      p += (size_t)acc_elems * j->esz;
    }
    bbufs[c] = bsize ? (float *)p : NULL;
    p += (size_t)bsize * j->esz;
    abufs[c] = asize ? (float *)p : NULL;
  }
  if (status == 0) {
    if (nchunks > 1) {
      openblas_set_num_threads(1); /* our threads, BLAS's single: never both */
      mm_parallel_for(nchunks, 1, run_range, j);
      openblas_set_num_threads(threads);
      for (int c = 1; c < nchunks && gacc_elems > 0; c++)
        add_into(j->dt, j->gw, gaccs[c], gacc_elems);
    } else {
      j->run(j, 0, 0, j->n);
    }
  }
  for (int c = 0; c < MAX_CHUNKS; c++)
    mm_release(holders[c]);
  mm_release(wpack);
  return status;
}

/* ------------------------------------------------------------------ checks */

static bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* One spatial output size of a convolution; < 1 when the kernel does not fit. */
static int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

static int check_opts(mm_ctx *ctx, const char *op, const mm_conv_opts *o, bool transpose) {
  for (int i = 0; i < 2; i++) {
    if (o->stride[i] < 1)
      return mm_fail(ctx, "moonml.%s: stride must be positive, got %lld", op,
                     (long long)o->stride[i]);
    if (o->dilation[i] < 1)
      return mm_fail(ctx, "moonml.%s: dilation must be positive, got %lld", op,
                     (long long)o->dilation[i]);
    if (o->padding[i] < 0)
      return mm_fail(ctx, "moonml.%s: padding must be non-negative, got %lld", op,
                     (long long)o->padding[i]);
    if (transpose && (o->output_padding[i] < 0 || (o->output_padding[i] >= o->stride[i] &&
                                                   o->output_padding[i] >= o->dilation[i])))
      return mm_fail(ctx,
                     "moonml.%s: output_padding (%lld) must be non-negative and smaller than "
                     "either stride (%lld) or dilation (%lld)",
                     op, (long long)o->output_padding[i], (long long)o->stride[i],
                     (long long)o->dilation[i]);
  }
  if (o->groups < 1)
    return mm_fail(ctx, "moonml.%s: groups must be positive, got %lld", op, (long long)o->groups);
  return 0;
}

/* Common checks: x 3-D or 4-D float, weight 4-D of x's dtype, bias 1-D of nbias. */
static int check_tensors(mm_ctx *ctx, const char *op, const mm_tensor *x, const mm_tensor *w,
                         const mm_tensor *bias) {
  char s[NN_SHAPE_BUF];
  if (nn_check_float(ctx, op, x, "input") != 0 || nn_check_float(ctx, op, w, "weight") != 0)
    return -1;
  if (x->ndim != 3 && x->ndim != 4)
    return mm_fail(ctx,
                   "moonml.%s: expected a 3-D (unbatched) or 4-D (batched) input, got %d-D input "
                   "of shape %s",
                   op, x->ndim, mm_shape_str(s, sizeof s, x->ndim, x->shape));
  if (w->ndim != 4)
    return mm_fail(ctx, "moonml.%s: expected a 4-D weight, got %d-D weight of shape %s", op,
                   w->ndim, mm_shape_str(s, sizeof s, w->ndim, w->shape));
  if (w->shape[2] < 1 || w->shape[3] < 1)
    return mm_fail(ctx, "moonml.%s: kernel size must be positive, got weight of shape %s", op,
                   mm_shape_str(s, sizeof s, 4, w->shape));
  if (nn_check_like(ctx, op, w, x, "weight") != 0 || nn_check_like(ctx, op, bias, x, "bias") != 0)
    return -1;
  return 0;
}

/* Sizes of x read as (N, C, H, W); an unbatched (C, H, W) input has N = 1. */
static void batch_dims(const mm_tensor *x, int64_t *n, int64_t *c, int64_t *h, int64_t *w) {
  int lead = x->ndim - 3;
  *n = lead ? x->shape[0] : 1;
  *c = x->shape[lead];
  *h = x->shape[lead + 1];
  *w = x->shape[lead + 2];
}

/* ------------------------------------------------------------------ conv2d */

static int conv2d_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                           mm_tensor **grad_in);

/* Fills j (geometry and sizes) for conv2d of x by w; checks sizes. */
static int conv2d_setup(mm_ctx *ctx, conv_job *j, const mm_tensor *x, const mm_tensor *w,
                        const mm_conv_opts *o) {
  const char *op = "conv2d";
  char s1[NN_SHAPE_BUF], s2[NN_SHAPE_BUF];
  int64_t n, c, h, wd;
  batch_dims(x, &n, &c, &h, &wd);
  int64_t oc = w->shape[0], g = o->groups;
  if (w->shape[1] * g != c || oc % g != 0) {
    if (oc % g != 0)
      return mm_fail(ctx, "moonml.%s: out channels (%lld) must be divisible by groups (%lld)", op,
                     (long long)oc, (long long)g);
    return mm_fail(ctx,
                   "moonml.%s: groups=%lld and weight of shape %s expect an input with %lld "
                   "channels, got input of shape %s",
                   op, (long long)g, mm_shape_str(s1, sizeof s1, 4, w->shape),
                   (long long)(w->shape[1] * g), mm_shape_str(s2, sizeof s2, x->ndim, x->shape));
  }
  int64_t kh = w->shape[2], kw = w->shape[3];
  int64_t eh = o->dilation[0] * (kh - 1) + 1, ew = o->dilation[1] * (kw - 1) + 1;
  int64_t ph = h + 2 * o->padding[0], pw = wd + 2 * o->padding[1];
  if (eh > ph || ew > pw)
    return mm_fail(ctx,
                   "moonml.%s: kernel size (%lld x %lld, dilated) is larger than the padded input "
                   "(%lld x %lld)",
                   op, (long long)eh, (long long)ew, (long long)ph, (long long)pw);
  memset(j, 0, sizeof *j);
  j->dt = x->dtype;
  j->esz = mm_dtype_size(x->dtype);
  j->g = (geom){c,
                h,
                wd,
                kh,
                kw,
                o->stride[0],
                o->stride[1],
                o->padding[0],
                o->padding[1],
                o->dilation[0],
                o->dilation[1],
                0,
                0,
                false};
  j->g.oh = conv_out_size(h, kh, o->stride[0], o->padding[0], o->dilation[0]);
  j->g.ow = conv_out_size(wd, kw, o->stride[1], o->padding[1], o->dilation[1]);
  set_identity(&j->g);
  j->n = n;
  j->groups = g;
  j->cimg = c;
  j->ccol = oc;
  j->ccg = oc / g;
  j->kg = c / g * kh * kw;
  j->l = j->g.oh * j->g.ow;
  j->img = c * h * wd;
  if (!fits_int(j->kg * g) || !fits_int(j->l) || !fits_int(oc) || !fits_int(j->kg * g * j->l))
    return mm_fail(ctx, "moonml.%s: sizes too large for BLAS", op);
  return 0;
}

/* The forward's common part for conv2d and conv_transpose2d, once job j is set up: the
 * output of shape oshape (N left out for an unbatched x), the job run on contiguous copies
 * (run: the job's step; normal_w: whether its GEMMs take w as it is or transposed), then
 * the autograd node, which saves x and w and keeps the options in node->i. */
static mm_tensor *run_and_record(mm_ctx *ctx, conv_job *j, const mm_tensor *x, const mm_tensor *w,
                                 const mm_tensor *bias, const mm_conv_opts *o,
                                 const int64_t oshape[4],
                                 void (*run)(conv_job *, int, int64_t, int64_t), bool normal_w,
                                 const char *node_name, mm_backward_fn backward) {
  int lead = x->ndim - 3;
  mm_tensor *out = mm_empty(ctx, x->dtype, x->ndim, oshape + 1 - lead);
  mm_tensor *xc = mm_contiguous(ctx, x), *wc = mm_contiguous(ctx, w), *bc = NULL;
  int status = out && xc && wc ? nn_contig_opt(ctx, bias, &bc) : -1;
  if (status == 0) {
    j->x = mm_data(xc);
    j->w = mm_data(wc);
    j->bias = bc ? mm_data(bc) : NULL;
    j->out = mm_data(out);
    j->run = run;
    status = run_job(ctx, j, j->ccol * j->kg * j->l, normal_w, !normal_w, 0);
  }
  mm_release(xc);
  mm_release(wc);
  mm_release(bc);
  if (status != 0) {
    mm_release(out);
    return NULL;
  }
  const mm_tensor *inputs[3] = {x, w, bias};
  mm_node *node;
  if (mm_node_begin(ctx, node_name, backward, 3, inputs, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node) {
    if (mm_node_save(ctx, node, x) != 0 || mm_node_save(ctx, node, w) != 0) {
      mm_node_release(node);
      mm_release(out);
      return NULL;
    }
    for (int i = 0; i < 2; i++) {
      node->i[i] = o->stride[i];
      node->i[2 + i] = o->padding[i];
      node->i[4 + i] = o->dilation[i];
    }
    node->i[6] = o->groups;
    mm_node_attach(node, out);
  }
  return out;
}

mm_tensor *mm_conv2d(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *w, const mm_tensor *bias,
                     const mm_conv_opts *o) {
  const char *op = "conv2d";
  if (check_tensors(ctx, op, x, w, bias) != 0 || check_opts(ctx, op, o, false) != 0 ||
      nn_check_vector(ctx, op, bias, w->shape[0], "bias") != 0)
    return NULL;
  conv_job j;
  if (conv2d_setup(ctx, &j, x, w, o) != 0)
    return NULL;
  int64_t oshape[4] = {j.n, j.ccol, j.g.oh, j.g.ow};
  return run_and_record(ctx, &j, x, w, bias, o, oshape, conv_forward, true, "Conv2dBackward",
                        conv2d_backward);
}

static void opts_from_node(const mm_node *node, mm_conv_opts *o) {
  memset(o, 0, sizeof *o);
  for (int i = 0; i < 2; i++) {
    o->stride[i] = node->i[i];
    o->padding[i] = node->i[2 + i];
    o->dilation[i] = node->i[4 + i];
  }
  o->groups = node->i[6];
}

/* Allocates the wanted gradients of x, w and bias (shapes from the saved tensors). */
static int alloc_grads(mm_ctx *ctx, const mm_node *node, const mm_tensor *x, const mm_tensor *w,
                       mm_tensor **gx, mm_tensor **gw, mm_tensor **gb, int64_t nbias) {
  if (node->in[0].needs_grad && !(*gx = mm_empty(ctx, x->dtype, x->ndim, x->shape)))
    return -1;
  if (node->in[1].needs_grad && !(*gw = mm_empty(ctx, w->dtype, w->ndim, w->shape)))
    return -1;
  if (node->in[2].needs_grad && !(*gb = mm_empty(ctx, x->dtype, 1, &nbias)))
    return -1;
  return 0;
}

static int conv2d_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                           mm_tensor **grad_in) {
  const mm_tensor *x = node->saved[0], *w = node->saved[1];
  mm_conv_opts o;
  opts_from_node(node, &o);
  conv_job j;
  if (conv2d_setup(ctx, &j, x, w, &o) != 0)
    return -1;
  mm_tensor *gx = NULL, *gw = NULL, *gb = NULL;
  mm_tensor *xc = NULL, *wc = NULL, *go = mm_contiguous(ctx, grad_out);
  int status = go ? alloc_grads(ctx, node, x, w, &gx, &gw, &gb, j.ccol) : -1;
  if (status == 0 && gw && !(xc = mm_contiguous(ctx, x)))
    status = -1;
  if (status == 0 && gx && !(wc = mm_contiguous(ctx, w)))
    status = -1;
  if (status == 0 && (gx || gw)) {
    j.x = xc ? mm_data(xc) : NULL;
    j.w = wc ? mm_data(wc) : NULL;
    j.gout = mm_data(go);
    j.gx = gx ? mm_data(gx) : NULL;
    j.gw = gw ? mm_data(gw) : NULL;
    j.run = conv_backward;
    if (gw && j.n == 0)
      memset(j.gw, 0, (size_t)mm_numel(gw) * j.esz);
    int64_t work = j.ccol * j.kg * j.l * ((gx ? 1 : 0) + (gw ? 1 : 0));
    status = run_job(ctx, &j, work, false, gx != NULL, gw ? mm_numel(gw) : 0);
  }
  if (status == 0 && gb)
    bias_grad(j.dt, mm_data(go), j.n, j.ccol, j.l, mm_data(gb));
  mm_release(go);
  mm_release(xc);
  mm_release(wc);
  if (status != 0) {
    mm_release(gx);
    mm_release(gw);
    mm_release(gb);
    return -1;
  }
  grad_in[0] = gx;
  grad_in[1] = gw;
  grad_in[2] = gb;
  return 0;
}

/* ------------------------------------------------------------------ conv_transpose2d */

static int convt_backward_fn(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                             mm_tensor **grad_in);

/* Geometry for conv_transpose2d of x (N, Cin, H, W) by w (Cin, Cout/g, kh, kw) giving an
 * output of spatial size oh x ow (the image side). */
static int convt_setup(mm_ctx *ctx, conv_job *j, const mm_tensor *x, const mm_tensor *w,
                       const mm_conv_opts *o, int64_t oh, int64_t ow) {
  int64_t n, cin, h, wd;
  batch_dims(x, &n, &cin, &h, &wd);
  int64_t g = o->groups, cog = w->shape[1], kh = w->shape[2], kw = w->shape[3];
  memset(j, 0, sizeof *j);
  j->dt = x->dtype;
  j->esz = mm_dtype_size(x->dtype);
  j->g = (geom){cog * g,
                oh,
                ow,
                kh,
                kw,
                o->stride[0],
                o->stride[1],
                o->padding[0],
                o->padding[1],
                o->dilation[0],
                o->dilation[1],
                h,
                wd,
                false};
  set_identity(&j->g);
  j->n = n;
  j->groups = g;
  j->cimg = cog * g;
  j->ccol = cin;
  j->ccg = cin / g;
  j->kg = cog * kh * kw;
  j->l = h * wd;
  j->img = cog * g * oh * ow;
  if (!fits_int(j->kg * g) || !fits_int(j->l) || !fits_int(cin) || !fits_int(j->kg * g * j->l))
    return mm_fail(ctx, "moonml.conv_transpose2d: sizes too large for BLAS");
  return 0;
}

mm_tensor *mm_conv_transpose2d(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *w,
                               const mm_tensor *bias, const mm_conv_opts *o) {
  const char *op = "conv_transpose2d";
  char s1[NN_SHAPE_BUF], s2[NN_SHAPE_BUF];
  if (check_tensors(ctx, op, x, w, bias) != 0 || check_opts(ctx, op, o, true) != 0)
    return NULL;
  int64_t n, cin, h, wd;
  batch_dims(x, &n, &cin, &h, &wd);
  int64_t g = o->groups;
  if (w->shape[0] != cin) {
    mm_fail(ctx,
            "moonml.%s: weight of shape %s expects an input with %lld channels, got input "
            "of shape %s",
            op, mm_shape_str(s1, sizeof s1, 4, w->shape), (long long)w->shape[0],
            mm_shape_str(s2, sizeof s2, x->ndim, x->shape));
    return NULL;
  }
  if (cin % g != 0) {
    mm_fail(ctx, "moonml.%s: input channels (%lld) must be divisible by groups (%lld)", op,
            (long long)cin, (long long)g);
    return NULL;
  }
  int64_t cout = w->shape[1] * g;
  if (nn_check_vector(ctx, op, bias, cout, "bias") != 0)
    return NULL;
  int64_t oh = (h - 1) * o->stride[0] - 2 * o->padding[0] + o->dilation[0] * (w->shape[2] - 1) +
               o->output_padding[0] + 1;
  int64_t ow = (wd - 1) * o->stride[1] - 2 * o->padding[1] + o->dilation[1] * (w->shape[3] - 1) +
               o->output_padding[1] + 1;
  if (oh < 1 || ow < 1 || h < 1 || wd < 1) {
    mm_fail(ctx,
            "moonml.%s: input of shape %s gives an output of size %lld x %lld, which is "
            "too small",
            op, mm_shape_str(s2, sizeof s2, x->ndim, x->shape), (long long)oh, (long long)ow);
    return NULL;
  }
  conv_job j;
  if (convt_setup(ctx, &j, x, w, o, oh, ow) != 0)
    return NULL;
  int64_t oshape[4] = {n, cout, oh, ow};
  return run_and_record(ctx, &j, x, w, bias, o, oshape, convt_forward, false,
                        "ConvTranspose2dBackward", convt_backward_fn);
}

static int convt_backward_fn(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                             mm_tensor **grad_in) {
  const mm_tensor *x = node->saved[0], *w = node->saved[1];
  mm_conv_opts o;
  opts_from_node(node, &o);
  conv_job j;
  int lead = grad_out->ndim - 3;
  if (convt_setup(ctx, &j, x, w, &o, grad_out->shape[lead + 1], grad_out->shape[lead + 2]) != 0)
    return -1;
  mm_tensor *gx = NULL, *gw = NULL, *gb = NULL;
  mm_tensor *xc = NULL, *wc = NULL, *go = mm_contiguous(ctx, grad_out);
  int status = go ? alloc_grads(ctx, node, x, w, &gx, &gw, &gb, j.cimg) : -1;
  if (status == 0 && gw && !(xc = mm_contiguous(ctx, x)))
    status = -1;
  if (status == 0 && gx && !(wc = mm_contiguous(ctx, w)))
    status = -1;
  if (status == 0 && (gx || gw)) {
    j.x = xc ? mm_data(xc) : NULL;
    j.w = wc ? mm_data(wc) : NULL;
    j.gout = mm_data(go);
    j.gx = gx ? mm_data(gx) : NULL;
    j.gw = gw ? mm_data(gw) : NULL;
    j.run = convt_backward;
    if (gw && j.n == 0)
      memset(j.gw, 0, (size_t)mm_numel(gw) * j.esz);
    int64_t work = j.ccol * j.kg * j.l * ((gx ? 1 : 0) + (gw ? 1 : 0));
    status = run_job(ctx, &j, work, gx != NULL, false, gw ? mm_numel(gw) : 0);
  }
  if (status == 0 && gb)
    bias_grad(j.dt, mm_data(go), j.n, j.cimg, j.g.h * j.g.w, mm_data(gb));
  mm_release(go);
  mm_release(xc);
  mm_release(wc);
  if (status != 0) {
    mm_release(gx);
    mm_release(gw);
    mm_release(gb);
    return -1;
  }
  grad_in[0] = gx;
  grad_in[1] = gw;
  grad_in[2] = gb;
  return 0;
}
