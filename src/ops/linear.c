/* linear: y = x W^T + b as one op with one autograd node (LinearBackward), forward and
 * backward side by side. x is [..., in] (or [in]), W [out, in] (PyTorch's layout), b [out].
 *
 *   forward:  y  = x W^T + b
 *   grad x:   gx = g W
 *   grad W:   gW = g^T x
 *   grad b:   gb = column sums of g
 *
 * Three ways to run the products, chosen by size and dtype:
 * - direct loops for small products (fewer than DIRECT_ROWS rows, or little work): a
 *   one-sample MLP step is dominated by call overhead, and a BLAS call plus the
 *   transposed-view and separate-bias nodes of the composed form cost more than the
 *   arithmetic (the float32 forward takes 16 outputs at a time with AVX-512F, with fused
 *   multiply-adds, so its last bits may differ from the plain loop's);
 * - float32 on CPUs with AVX-512F: the packed kernels of sgemm_avx512.c, which reach
 *   about 2x Debian's OpenBLAS (Haswell kernels) on these shapes (784 -> 256 layer, batch
 *   128: forward 0.30 ms against 0.85 ms; weight gradient 0.21 ms against 0.42 ms);
 * - OpenBLAS otherwise (float64, or CPUs without AVX-512).
 * The weight gradient comes out contiguous and owned, so the engine hands it to .grad
 * without a copy.
 */
#include "nn_internal.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

/* Products with fewer rows than this, or at most DIRECT_WORK multiply-adds, use the
 * direct loops. */
#define DIRECT_ROWS 4
#define DIRECT_WORK ((int64_t)1 << 15)
/* Multiply-adds per thread below which the packed GEMM is not split. */
#define GRAIN_WORK ((int64_t)1 << 21)
#define MAX_CHUNKS 64

/* A 2-D operand read through strides (elements). */
typedef struct mat2 {
  char *p; /* first element */
  int64_t rows, cols, rs, cs;
} mat2;

static mat2 mat_of(const mm_tensor *t, int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  mat2 m = {(char *)mm_data(t), rows, cols, rs, cs};
  return m;
}

/* The leading dims of t fold into one of stride *rs (size-1 dims ignored)? */
static bool fold_rows(const mm_tensor *t, int64_t *rs) {
  int last = t->ndim - 1;
  int64_t expect = -1; /* stride the next outer non-trivial dim must have */
  *rs = last >= 1 ? t->stride[last - 1] : t->stride[last] * t->shape[last];
  for (int d = last - 1; d >= 0; d--) {
    if (t->shape[d] == 1)
      continue;
    if (expect >= 0 && t->stride[d] != expect)
      return false;
    if (expect < 0)
      *rs = t->stride[d];
    expect = t->stride[d] * t->shape[d];
  }
  return true;
}

/* t [..., cols] as a rows x cols matrix; *copy receives a contiguous copy when the
 * leading dims do not fold (released by the caller). */
static int as_rows(mm_ctx *ctx, const mm_tensor *t, int64_t rows, mat2 *m, mm_tensor **copy) {
  *copy = NULL;
  int64_t cols = t->shape[t->ndim - 1], rs;
  if (!fold_rows(t, &rs)) {
    if (!(*copy = mm_clone_raw(ctx, t)))
      return -1;
    t = *copy;
    rs = cols;
  }
  *m = mat_of(t, rows, cols, rs, t->stride[t->ndim - 1]);
  return 0;
}

/* ------------------------------------------------------------------ direct loops */

/* Each loop is written once over the element type T with accumulator type A (int64
 * accumulates in uint64_t so that overflow wraps as in PyTorch). Dot products of
 * contiguous rows keep LANES partial sums, which the compiler turns into vector
 * registers; the result does not depend on the clone the loader picks. */
#define LANES 16
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define LINEAR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LINEAR_CLONES
#endif

#define DEFINE_DIRECT(SUF, T, A)                                                                   \
  /* y[m, o] = b[o] + x[m, :] . w[o, :]   (y contiguous [rows, out]) */                            \
  LINEAR_CLONES static void fwd_##SUF(const mat2 *x, const mat2 *w, const T *b, int64_t bs,        \
                                      T *y) {                                                      \
    int64_t k = x->cols, n = w->rows;                                                              \
    for (int64_t m = 0; m < x->rows; m++) {                                                        \
      const T *xm = (const T *)x->p + m * x->rs;                                                   \
      for (int64_t o = 0; o < n; o++) {                                                            \
        const T *wo = (const T *)w->p + o * w->rs;                                                 \
        A acc = 0;                                                                                 \
        int64_t i = 0;                                                                             \
        if (x->cs == 1 && w->cs == 1) {                                                            \
          A lane[LANES] = {0};                                                                     \
          for (; i + LANES <= k; i += LANES)                                                       \
            for (int l = 0; l < LANES; l++)                                                        \
              lane[l] += (A)xm[i + l] * (A)wo[i + l];                                              \
          for (int l = 0; l < LANES; l++)                                                          \
            acc += lane[l];                                                                        \
          for (; i < k; i++)                                                                       \
            acc += (A)xm[i] * (A)wo[i];                                                            \
        } else {                                                                                   \
          for (; i < k; i++)                                                                       \
            acc += (A)xm[i * x->cs] * (A)wo[i * w->cs];                                            \
        }                                                                                          \
        y[m * n + o] = (T)(b ? acc + (A)b[o * bs] : acc);                                          \
      }                                                                                            \
    }                                                                                              \
  }

#define DEFINE_DIRECT_GRAD(SUF, T)                                                                 \
  /* gx[m, :] = sum_o g[m, o] w[o, :]   (gx contiguous [rows, in]) */                              \
  LINEAR_CLONES static void gx_##SUF(const mat2 *g, const mat2 *w, T *gx) {                        \
    int64_t k = w->cols;                                                                           \
    for (int64_t m = 0; m < g->rows; m++) {                                                        \
      T *row = gx + m * k;                                                                         \
      memset(row, 0, (size_t)k * sizeof(T));                                                       \
      for (int64_t o = 0; o < g->cols; o++) {                                                      \
        T a = ((const T *)g->p)[m * g->rs + o * g->cs];                                            \
        const T *wo = (const T *)w->p + o * w->rs;                                                 \
        if (w->cs == 1)                                                                            \
          for (int64_t i = 0; i < k; i++)                                                          \
            row[i] += a * wo[i];                                                                   \
        else                                                                                       \
          for (int64_t i = 0; i < k; i++)                                                          \
            row[i] += a * wo[i * w->cs];                                                           \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  /* gw[o, :] = sum_m g[m, o] x[m, :]   (gw contiguous [out, in]) */                               \
  LINEAR_CLONES static void gw_##SUF(const mat2 *g, const mat2 *x, T *gw) {                        \
    int64_t k = x->cols;                                                                           \
    for (int64_t o = 0; o < g->cols; o++) {                                                        \
      T *row = gw + o * k;                                                                         \
      memset(row, 0, (size_t)k * sizeof(T));                                                       \
      for (int64_t m = 0; m < g->rows; m++) {                                                      \
        T a = ((const T *)g->p)[m * g->rs + o * g->cs];                                            \
        const T *xm = (const T *)x->p + m * x->rs;                                                 \
        if (x->cs == 1)                                                                            \
          for (int64_t i = 0; i < k; i++)                                                          \
            row[i] += a * xm[i];                                                                   \
        else                                                                                       \
          for (int64_t i = 0; i < k; i++)                                                          \
            row[i] += a * xm[i * x->cs];                                                           \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  /* gb[o] = sum_m g[m, o], summed in double (float32) as the reductions do */                     \
  static void gb_##SUF(const mat2 *g, T *gb) {                                                     \
    for (int64_t o = 0; o < g->cols; o++) {                                                        \
      double acc = 0;                                                                              \
      for (int64_t m = 0; m < g->rows; m++)                                                        \
        acc += ((const T *)g->p)[m * g->rs + o * g->cs];                                           \
      gb[o] = (T)acc;                                                                              \
    }                                                                                              \
  }

DEFINE_DIRECT(f32, float, float)
DEFINE_DIRECT(f64, double, double)
DEFINE_DIRECT(i64, int64_t, uint64_t)
DEFINE_DIRECT_GRAD(f32, float)
DEFINE_DIRECT_GRAD(f64, double)

#ifdef MM_HAVE_SGEMM_AVX512
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

static __mmask16 lanes_below(int64_t n) {
  return n <= 0 ? 0 : n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/* r[j] = sum of the 16 lanes of v[j]: a tree of unpacks and lane shuffles (45 operations
 * for 16 sums, where 16 separate reductions take about 130). */
AVX512 static __m512 sum16(__m512 v[16]) {
  __m512 w[8], u[4];
  for (int p = 0; p < 8; p++) /* per 128-bit lane: a02 b02 a13 b13 */
    w[p] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * p], v[2 * p + 1]),
                         _mm512_unpackhi_ps(v[2 * p], v[2 * p + 1]));
  for (int q = 0; q < 4; q++) { /* per 128-bit lane: the lane's sums of v[4q .. 4q + 3] */
    __m512d x = _mm512_castps_pd(w[2 * q]), y = _mm512_castps_pd(w[2 * q + 1]);
    u[q] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  __m512 z0 =
      _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88), _mm512_shuffle_f32x4(u[0], u[1], 0xDD));
  __m512 z1 =
      _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88), _mm512_shuffle_f32x4(u[2], u[3], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(z0, z1, 0x88), _mm512_shuffle_f32x4(z0, z1, 0xDD));
}

/* fwd_f32 for rows of x and w with unit column stride: 16 outputs at a time, their dot
 * products kept in 16 vector accumulators and summed by one tree (one sample through
 * 32 -> 64: 0.22 us in the plain loop, about 0.06 us here). */
AVX512 static void fwd_avx512(const mat2 *x, const mat2 *w, const float *b, int64_t bs, float *y) {
  int64_t k = x->cols, n = w->rows;
  for (int64_t m = 0; m < x->rows; m++) {
    const float *xm = (const float *)x->p + m * x->rs;
    for (int64_t o0 = 0; o0 < n; o0 += 16) {
      int64_t nb = n - o0 < 16 ? n - o0 : 16;
      __m512 acc[16];
      for (int j = 0; j < 16; j++)
        acc[j] = _mm512_setzero_ps();
      for (int64_t i = 0; i < k; i += 16) {
        __mmask16 mask = lanes_below(k - i);
        __m512 xv = _mm512_maskz_loadu_ps(mask, xm + i);
        for (int j = 0; j < nb; j++) {
          const float *wo = (const float *)w->p + (o0 + j) * w->rs;
          acc[j] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, wo + i), xv, acc[j]);
        }
      }
      __m512 r = sum16(acc);
      __mmask16 keep = lanes_below(nb);
      if (b && bs == 1) {
        r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(keep, b + o0));
      } else if (b) {
        float tmp[16];
        _mm512_storeu_ps(tmp, r);
        for (int j = 0; j < nb; j++)
          tmp[j] += b[(o0 + j) * bs];
        r = _mm512_loadu_ps(tmp);
      }
      _mm512_mask_storeu_ps(y + m * n + o0, keep, r);
    }
  }
}
#endif

static void fwd_direct_f32(const mat2 *x, const mat2 *w, const float *b, int64_t bs, float *y) {
#ifdef MM_HAVE_SGEMM_AVX512
  if (x->cs == 1 && w->cs == 1 && mm_sgemm_fast_available()) {
    fwd_avx512(x, w, b, bs, y);
    return;
  }
#endif
  fwd_f32(x, w, b, bs, y);
}

/* ------------------------------------------------------------------ BLAS */

/* How BLAS reads a (rows x cols, strides rs, cs): false when it cannot. */
static bool blas_layout(const mat2 *a, CBLAS_TRANSPOSE *tr, int *ld) {
  if (a->rows > INT_MAX || a->cols > INT_MAX)
    return false;
  if (a->cs == 1 && a->rs >= (a->cols > 1 ? a->cols : 1) && a->rs <= INT_MAX) {
    *tr = CblasNoTrans;
    *ld = (int)(a->rs > 0 ? a->rs : 1);
    return true;
  }
  if (a->rs == 1 && a->cs >= (a->rows > 1 ? a->rows : 1) && a->cs <= INT_MAX) {
    *tr = CblasTrans;
    *ld = (int)a->cs;
    return true;
  }
  return false;
}

/* A contiguous copy of a (into *holder) when BLAS cannot read it as it is. */
static int blas_ready(mm_ctx *ctx, mm_dtype dt, mat2 *a, mm_tensor **holder) {
  CBLAS_TRANSPOSE tr;
  int ld;
  *holder = NULL;
  if (blas_layout(a, &tr, &ld))
    return 0;
  int64_t shape[2] = {a->rows, a->cols};
  *holder = mm_empty(ctx, dt, 2, shape);
  if (!*holder)
    return -1;
  size_t es = mm_dtype_size(dt);
  char *d = mm_data(*holder);
  for (int64_t r = 0; r < a->rows; r++)
    for (int64_t c = 0; c < a->cols; c++)
      memcpy(d + (size_t)(r * a->cols + c) * es, a->p + (size_t)(r * a->rs + c * a->cs) * es, es);
  *a = mat_of(*holder, a->rows, a->cols, a->cols, 1);
  return 0;
}

/* c (m x n, contiguous) = [c +] a (m x k) @ b (k x n) */
static int blas_gemm(mm_ctx *ctx, mm_dtype dt, mat2 a, mat2 b, void *c, bool beta) {
  mm_tensor *ha = NULL, *hb = NULL;
  int st = blas_ready(ctx, dt, &a, &ha);
  if (st == 0)
    st = blas_ready(ctx, dt, &b, &hb);
  if (st == 0) {
    CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
    int lda = 1, ldb = 1;
    blas_layout(&a, &ta, &lda);
    blas_layout(&b, &tb, &ldb);
    if (dt == MM_FLOAT32)
      cblas_sgemm(CblasRowMajor, ta, tb, (int)a.rows, (int)b.cols, (int)a.cols, 1.0f,
                  (const float *)a.p, lda, (const float *)b.p, ldb, beta ? 1.0f : 0.0f, c,
                  (int)b.cols);
    else
      cblas_dgemm(CblasRowMajor, ta, tb, (int)a.rows, (int)b.cols, (int)a.cols, 1.0,
                  (const double *)a.p, lda, (const double *)b.p, ldb, beta ? 1.0 : 0.0, c,
                  (int)b.cols);
  }
  mm_release(ha);
  mm_release(hb);
  return st;
}

/* ------------------------------------------------------------------ packed AVX-512 GEMM */

#ifdef MM_HAVE_SGEMM_AVX512
static int64_t round16(int64_t n) { return (n + 15) / 16 * 16; }

typedef struct packed_job {
  mat2 a, b;
  float *c;
  bool beta;
  int64_t per; /* rows per chunk (a multiple of 14, the kernels' panel height) */
  float *abuf[MAX_CHUNKS], *bbuf[MAX_CHUNKS];
} packed_job;

static void packed_rows(packed_job *j, int64_t chunk) {
  int64_t r0 = chunk * j->per, r1 = r0 + j->per < j->a.rows ? r0 + j->per : j->a.rows;
  if (r1 <= r0)
    return;
  const float *a = (const float *)j->a.p + r0 * j->a.rs;
  mm_sgemm_pack_a(r1 - r0, j->a.cols, a, j->a.rs, j->a.cs, j->abuf[chunk]);
  mm_sgemm_packed(r1 - r0, j->b.cols, j->a.cols, j->abuf[chunk], (const float *)j->b.p, j->b.rs,
                  j->b.cs, j->c + r0 * j->b.cols, j->b.cols, j->beta, NULL, j->bbuf[chunk]);
}

static void packed_range(int64_t begin, int64_t end, void *arg) {
  for (int64_t c = begin; c < end; c++)
    packed_rows(arg, c);
}

/* c (m x n, contiguous) = [c +] a @ b with the packed kernels, rows split over threads. */
static int packed_gemm(mm_ctx *ctx, mat2 a, mat2 b, float *c, bool beta) {
  int64_t m = a.rows, work = m * a.cols * b.cols;
  int64_t chunks = mm_get_num_threads();
  if (chunks > work / GRAIN_WORK)
    chunks = work / GRAIN_WORK > 1 ? work / GRAIN_WORK : 1;
  if (chunks > (m + 13) / 14)
    chunks = (m + 13) / 14;
  if (chunks > MAX_CHUNKS)
    chunks = MAX_CHUNKS;
  packed_job j = {.a = a, .b = b, .c = c, .beta = beta};
  j.per = ((m + chunks - 1) / chunks + 13) / 14 * 14;
  int64_t asize = round16((int64_t)mm_sgemm_packed_a_size(j.per, a.cols));
  int64_t bsize = round16((int64_t)mm_sgemm_b_workspace(b.cols, a.cols));
  mm_tensor *work_buf = nn_scratch(ctx, MM_FLOAT32, chunks * (asize + bsize));
  if (!work_buf)
    return -1;
  float *p = mm_data(work_buf);
  for (int64_t ch = 0; ch < chunks; ch++) {
    j.abuf[ch] = p + ch * (asize + bsize);
    j.bbuf[ch] = j.abuf[ch] + asize;
  }
  if (chunks > 1)
    mm_parallel_for(chunks, 1, packed_range, &j);
  else
    packed_rows(&j, 0);
  mm_release(work_buf);
  return 0;
}
#endif

typedef enum { RUN_DIRECT, RUN_PACKED, RUN_BLAS } run_kind;

static run_kind choose(mm_dtype dt, int64_t rows, int64_t work) {
  if (dt == MM_INT64 || rows < DIRECT_ROWS || work <= DIRECT_WORK)
    return RUN_DIRECT;
#ifdef MM_HAVE_SGEMM_AVX512
  if (dt == MM_FLOAT32 && mm_sgemm_fast_available())
    return RUN_PACKED;
#endif
  return RUN_BLAS;
}

/* c (m x n, contiguous) = [c +] a @ b through the packed kernels or BLAS. */
static int big_gemm(mm_ctx *ctx, run_kind how, mm_dtype dt, mat2 a, mat2 b, void *c, bool beta) {
#ifdef MM_HAVE_SGEMM_AVX512
  if (how == RUN_PACKED)
    return packed_gemm(ctx, a, b, c, beta);
#else
  (void)how;
#endif
  return blas_gemm(ctx, dt, a, b, c, beta);
}

/* mat2 with rows and columns swapped (a transposed view) */
static mat2 transposed(mat2 a) {
  mat2 t = {a.p, a.cols, a.rows, a.cs, a.rs};
  return t;
}

/* y rows = bias (the packed and BLAS paths then accumulate the product onto it) */
static void fill_bias(mm_dtype dt, void *y, int64_t rows, int64_t n, const mm_tensor *b) {
  size_t es = mm_dtype_size(dt);
  const char *bp = mm_data(b);
  int64_t bs = b->stride[0];
  char *row = y;
  if (bs == 1) {
    for (int64_t m = 0; m < rows; m++, row += n * es)
      memcpy(row, bp, (size_t)n * es);
    return;
  }
  for (int64_t m = 0; m < rows; m++, row += n * es)
    for (int64_t o = 0; o < n; o++)
      memcpy(row + o * es, bp + (size_t)(o * bs) * es, es);
}

/* ------------------------------------------------------------------ backward */

static const mm_tensor *saved_at(const mm_node *node, int which) {
  return node->i[which] < 0 ? NULL : node->saved[node->i[which]];
}

static int linear_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  int64_t in = node->i[2], out = node->i[3], rows = node->i[4];
  mm_dtype dt = grad->dtype;
  mm_tensor *gcopy = NULL, *xcopy = NULL;
  mat2 g;
  if (as_rows(ctx, grad, rows, &g, &gcopy) != 0)
    return -1;
  int st = 0;
  if (node->in[0].needs_grad) { /* gx = g W, in x's shape */
    const mm_tensor *w = saved_at(node, 0);
    mat2 wm = mat_of(w, out, in, w->stride[0], w->stride[1]);
    mm_tensor *gx = mm_empty(ctx, dt, node->in[0].ndim, node->in[0].shape);
    run_kind how = choose(dt, rows, rows * in * out);
    if (!gx)
      st = -1;
    else if (how == RUN_DIRECT)
      dt == MM_FLOAT32 ? gx_f32(&g, &wm, mm_data(gx)) : gx_f64(&g, &wm, mm_data(gx));
    else
      st = big_gemm(ctx, how, dt, g, wm, mm_data(gx), false);
    grad_in[0] = gx;
  }
  if (st == 0 && node->in[1].needs_grad) { /* gW = g^T x */
    const mm_tensor *x = saved_at(node, 1);
    mat2 xm;
    int64_t shape[2] = {out, in};
    mm_tensor *gw = mm_empty(ctx, dt, 2, shape);
    st = gw ? as_rows(ctx, x, rows, &xm, &xcopy) : -1;
    /* the product's rows are the output features; few samples make it a short sum */
    run_kind how = choose(dt, out, rows < DIRECT_ROWS ? 0 : rows * in * out);
    if (st != 0)
      ;
    else if (how == RUN_DIRECT)
      dt == MM_FLOAT32 ? gw_f32(&g, &xm, mm_data(gw)) : gw_f64(&g, &xm, mm_data(gw));
    else
      st = big_gemm(ctx, how, dt, transposed(g), xm, mm_data(gw), false);
    grad_in[1] = gw;
  }
  if (st == 0 && node->in[2].needs_grad) { /* gb = column sums of g */
    mm_tensor *gb = mm_empty(ctx, dt, 1, &out);
    if (!gb)
      st = -1;
    else
      dt == MM_FLOAT32 ? gb_f32(&g, mm_data(gb)) : gb_f64(&g, mm_data(gb));
    grad_in[2] = gb;
  }
  mm_release(gcopy);
  mm_release(xcopy);
  return st;
}

/* ------------------------------------------------------------------ forward */

static int check_args(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *w, const mm_tensor *b) {
  if (!x || !w)
    return mm_fail(ctx, "moonml.linear: expected an input and a weight tensor, got NULL");
  if (x->dtype != MM_FLOAT32 && x->dtype != MM_FLOAT64 && x->dtype != MM_INT64)
    return mm_fail(ctx, "moonml.linear: expected a float32, float64 or int64 input, got %s",
                   mm_dtype_name(x->dtype));
  if (w->dtype != x->dtype || (b && b->dtype != x->dtype))
    return mm_fail(ctx, "moonml.linear: the weight%s must have the input's dtype %s, got %s",
                   b ? " and bias" : "", mm_dtype_name(x->dtype),
                   mm_dtype_name(w->dtype != x->dtype ? w->dtype : b->dtype));
  char s[NN_SHAPE_BUF];
  if (w->ndim != 2)
    return mm_fail(ctx, "moonml.linear: expected a 2-D weight [out, in], got %s",
                   mm_shape_str(s, sizeof s, w->ndim, w->shape));
  if (x->ndim == 0 || x->shape[x->ndim - 1] != w->shape[1])
    return mm_fail(ctx,
                   "moonml.linear: input has %lld features in its last dimension, the weight "
                   "expects %lld",
                   (long long)(x->ndim ? x->shape[x->ndim - 1] : 0), (long long)w->shape[1]);
  return b ? nn_check_vector(ctx, "linear", b, w->shape[0], "a bias") : 0;
}

mm_tensor *mm_linear(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *w, const mm_tensor *b) {
  if (check_args(ctx, x, w, b) != 0)
    return NULL;
  mm_dtype dt = x->dtype;
  int64_t in = w->shape[1], out = w->shape[0], rows = 1;
  int64_t shape[MM_MAX_DIMS];
  for (int d = 0; d < x->ndim - 1; d++)
    rows *= (shape[d] = x->shape[d]);
  shape[x->ndim - 1] = out;
  mm_tensor *y = mm_empty(ctx, dt, x->ndim, shape), *xcopy = NULL;
  mat2 xm;
  if (!y || as_rows(ctx, x, rows, &xm, &xcopy) != 0) {
    mm_release(y);
    return NULL;
  }
  mat2 wm = mat_of(w, out, in, w->stride[0], w->stride[1]);
  int st = 0;
  run_kind how = choose(dt, rows, rows * in * out);
  if (rows * out == 0) {
    /* nothing to compute */
  } else if (how == RUN_DIRECT) {
    const void *bp = b ? mm_data(b) : NULL;
    int64_t bs = b ? b->stride[0] : 0;
    if (dt == MM_FLOAT32)
      fwd_direct_f32(&xm, &wm, bp, bs, mm_data(y));
    else if (dt == MM_FLOAT64)
      fwd_f64(&xm, &wm, bp, bs, mm_data(y));
    else
      fwd_i64(&xm, &wm, bp, bs, mm_data(y));
  } else {
    if (b)
      fill_bias(dt, mm_data(y), rows, out, b);
    st = big_gemm(ctx, how, dt, xm, transposed(wm), mm_data(y), b != NULL);
  }
  mm_release(xcopy);
  const mm_tensor *inputs[3] = {x, w, b};
  mm_node *node = NULL;
  if (st == 0)
    st = mm_node_begin(ctx, "LinearBackward", linear_backward, 3, inputs, &node);
  if (st == 0 && node) {
    node->i[0] = node->i[1] = -1;
    node->i[2] = in;
    node->i[3] = out;
    node->i[4] = rows;
    if (x->requires_grad) { /* gx reads W */
      node->i[0] = node->n_saved;
      st = mm_node_save(ctx, node, w);
    }
    if (st == 0 && w->requires_grad) { /* gW reads x */
      node->i[1] = node->n_saved;
      st = mm_node_save(ctx, node, x);
    }
    if (st == 0)
      mm_node_attach(node, y);
    else
      mm_node_release(node);
  }
  if (st != 0) {
    mm_release(y);
    return NULL;
  }
  return y;
}
