/* Matrix products: matmul (torch.matmul's rules), dot, mv, mm, bmm, addmm.
 *
 * float32/float64 go to OpenBLAS (sgemm/dgemm, sgemv/dgemv, sdot/ddot); int64 uses plain
 * loops, as PyTorch does on the CPU. Strided operands are handed to BLAS as they are when
 * one stride is 1 and the other at least the extent (the transpose flag and leading
 * dimension describe them); anything else is copied to a contiguous buffer first.
 *
 * Threads: BLAS calls run on the calling thread, and OpenBLAS splits them over its own
 * pool, whose size mm_set_num_threads() sets. Only the direct loops (tiny products and
 * int64) are split with mm_parallel_for, and those never call BLAS.
 *
 * Autograd: every product records a node; one backward serves matmul, dot, mv, mm and bmm
 * (1-D operands are treated as matrices with a size-1 dim, which the gradient drops
 * again; broadcast batch dims are summed back by the engine). addmm has its own.
 */
#include "../autograd/autograd.h"
#include "../core/internal.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

#define SHAPE_BUF 128

/* Products of at most this many multiply-adds (n * k * p per matrix) skip BLAS for a
 * direct loop. Measured from Lua (ml.mm in a loop, 1 thread, median of 7 runs of 2e5
 * calls), microseconds per call, direct loop / sgemm: 2x2x2 0.25 / 0.30, 4x4x4 0.28 /
 * 0.31, 5x5x5 0.31 / 0.32, 4x8x4 0.29 / 0.33, 6x6x6 0.36 / 0.33, 8x4x8 0.39 / 0.32,
 * 8x8x8 0.46 / 0.33. Matrix-vector (ml.mv, n x n), direct / sgemv: 8 0.24 / 0.25, 16
 * 0.27 / 0.27, 24 0.34 / 0.28. About 0.25 us of each call is the Lua call and the new
 * tensor, the same on both sides. */
#ifndef MM_GEMM_DIRECT_MAX
#define MM_GEMM_DIRECT_MAX 128
#endif
#ifndef MM_GEMV_DIRECT_MAX
#define MM_GEMV_DIRECT_MAX 128
#endif
/* The direct loops are split over threads only above this many multiply-adds per chunk
 * (starting a thread costs tens of microseconds). */
#define DIRECT_GRAIN_WORK ((int64_t)1 << 18)

/* ------------------------------------------------------------------ checks */

static const char *dim_str(char *buf, size_t n, const mm_tensor *t) {
  return mm_shape_str(buf, n, t->ndim, t->shape);
}

static int fail_shapes(mm_ctx *ctx, const char *op, const mm_tensor *a, const mm_tensor *b,
                       const char *why) {
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  return mm_fail(ctx, "moonml.%s: cannot multiply %s by %s%s", op, dim_str(sa, sizeof sa, a),
                 dim_str(sb, sizeof sb, b), why);
}

/* Both present, same dtype, not bool. */
static int check_pair(mm_ctx *ctx, const char *op, const mm_tensor *a, const mm_tensor *b) {
  if (!a || !b)
    return mm_fail(ctx, "moonml.%s: expected two tensors, got NULL", op);
  if (a->dtype != b->dtype)
    return mm_fail(ctx, "moonml.%s: expected both operands to have the same dtype, got %s and %s",
                   op, mm_dtype_name(a->dtype), mm_dtype_name(b->dtype));
  if (a->dtype == MM_BOOL)
    return mm_fail(ctx, "moonml.%s: not supported for bool tensors (convert with float or long)",
                   op);
  return 0;
}

/* BLAS takes int sizes and leading dimensions. */
static bool fits_int(int64_t v) { return v <= INT_MAX; }

/* ------------------------------------------------------------------ layouts */

/* Can BLAS read the rows x cols matrix with element strides rs, cs as it is? Row-major
 * (cs == 1) is NoTrans with ld = rs; column-major (rs == 1) is Trans with ld = cs. Strides
 * of size-1 dims do not matter. */
static bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs, CBLAS_TRANSPOSE *tr,
                        int *ld) {
  int64_t l;
  if ((cs == 1 || cols == 1) && (rows == 1 || rs >= cols)) {
    *tr = CblasNoTrans;
    l = rows == 1 ? cols : rs;
  } else if ((rs == 1 || rows == 1) && (cols == 1 || cs >= rows)) {
    *tr = CblasTrans;
    l = cols == 1 ? rows : cs;
  } else {
    return false;
  }
  if (l < 1)
    l = 1;
  if (!fits_int(l))
    return false;
  *ld = (int)l;
  return true;
}

/* A header-only view (no reference taken) of t with new shape and strides; only used
 * for reading during one call while t is alive. */
static mm_tensor header(const mm_tensor *t, int ndim, const int64_t *shape, const int64_t *stride) {
  mm_tensor h = *t;
  h.ndim = ndim;
  for (int d = 0; d < ndim; d++) {
    h.shape[d] = shape[d];
    h.stride[d] = stride[d];
  }
  return h;
}

/* ------------------------------------------------------------------ direct loops */

/* Integer loops compute in uint64_t (A below), so that overflow wraps as in PyTorch
 * instead of being undefined; for floats A is T. */

/* c[i, j] = alpha * (a[i, :] . b[:, j]) + (use_beta ? beta * c[i, j] : 0) for rows
 * [0, n); c's rows are ldc apart and contiguous; strides count elements. Dot-product
 * order: for tiny products it beats the row-update order below (4x4x4 in C: 22 ns
 * against 48 ns, sgemm 61 ns). */
#define DEFINE_SMALL_GEMM(NAME, T, A)                                                              \
  static void NAME(int64_t n, int64_t k, int64_t p, T alpha, const T *a, int64_t ars, int64_t acs, \
                   const T *b, int64_t brs, int64_t bcs, T beta, bool use_beta, T *c,              \
                   int64_t ldc) {                                                                  \
    for (int64_t i = 0; i < n; i++) {                                                              \
      const T *ai = a + i * ars;                                                                   \
      T *ci = c + i * ldc;                                                                         \
      for (int64_t j = 0; j < p; j++) {                                                            \
        const T *bj = b + j * bcs;                                                                 \
        A acc = 0;                                                                                 \
        for (int64_t l = 0; l < k; l++)                                                            \
          acc += (A)ai[l * acs] * (A)bj[l * brs];                                                  \
        ci[j] = (T)(use_beta ? (A)alpha * acc + (A)beta * (A)ci[j] : (A)alpha * acc);              \
      }                                                                                            \
    }                                                                                              \
  }

DEFINE_SMALL_GEMM(small_gemm_f32, float, float)
DEFINE_SMALL_GEMM(small_gemm_f64, double, double)
DEFINE_SMALL_GEMM(small_gemm_i64, int64_t, uint64_t)

/* The same for larger int64 products, in row-update order: the inner loop runs along a
 * row of b and of c, which vectorises when b's rows are contiguous. */
static void rows_gemm_i64(int64_t n, int64_t k, int64_t p, int64_t alpha, const int64_t *a,
                          int64_t ars, int64_t acs, const int64_t *b, int64_t brs, int64_t bcs,
                          int64_t beta, bool use_beta, int64_t *restrict c, int64_t ldc) {
  for (int64_t i = 0; i < n; i++) {
    int64_t *restrict ci = c + i * ldc;
    const int64_t *ai = a + i * ars;
    for (int64_t j = 0; j < p; j++)
      ci[j] = use_beta ? (int64_t)((uint64_t)beta * (uint64_t)ci[j]) : 0;
    for (int64_t l = 0; l < k; l++) {
      uint64_t av = (uint64_t)alpha * (uint64_t)ai[l * acs];
      const int64_t *restrict bl = b + l * brs;
      if (bcs == 1) {
        for (int64_t j = 0; j < p; j++)
          ci[j] = (int64_t)((uint64_t)ci[j] + av * (uint64_t)bl[j]);
      } else {
        for (int64_t j = 0; j < p; j++)
          ci[j] = (int64_t)((uint64_t)ci[j] + av * (uint64_t)bl[j * bcs]);
      }
    }
  }
}

/* y[i] = sum_l m[i, l] * x[l] for rows [0, n); y contiguous. */
#define DEFINE_DIRECT_GEMV(NAME, T, A)                                                             \
  static void NAME(int64_t n, int64_t k, const T *m, int64_t rs, int64_t cs, const T *x,           \
                   int64_t incx, T *y) {                                                           \
    for (int64_t i = 0; i < n; i++) {                                                              \
      const T *mi = m + i * rs;                                                                    \
      A acc = 0;                                                                                   \
      if (cs == 1 && incx == 1) {                                                                  \
        for (int64_t l = 0; l < k; l++)                                                            \
          acc += (A)mi[l] * (A)x[l];                                                               \
      } else {                                                                                     \
        for (int64_t l = 0; l < k; l++)                                                            \
          acc += (A)mi[l * cs] * (A)x[l * incx];                                                   \
      }                                                                                            \
      y[i] = (T)acc;                                                                               \
    }                                                                                              \
  }

DEFINE_DIRECT_GEMV(direct_gemv_f32, float, float)
DEFINE_DIRECT_GEMV(direct_gemv_f64, double, double)
DEFINE_DIRECT_GEMV(direct_gemv_i64, int64_t, uint64_t)

/* ------------------------------------------------------------------ batched GEMM */

/* out[batch..., n, p] (contiguous) = alpha * a @ b + beta * out, where the matrix dims of
 * a and b are their last two and their batch dims broadcast to the batch shape. */
typedef struct {
  mm_dtype dt;
  int nb;
  int64_t bshape[MM_MAX_DIMS];
  int64_t ast[MM_MAX_DIMS], bst[MM_MAX_DIMS]; /* per batch dim, elements; 0 = broadcast */
  int64_t nbatch, n, k, p;
  const void *a, *b; /* first elements */
  void *c;
  int64_t ars, acs, brs, bcs;
  double alpha, beta;
  bool use_beta;
  bool small; /* tiny per-batch product: the dot-product loop */
} gemm_job;

/* Element offsets of batch number t into a and b. */
static void batch_offsets(const gemm_job *j, int64_t t, int64_t *oa, int64_t *ob) {
  int64_t ra = 0, rb = 0;
  for (int d = j->nb - 1; d >= 0; d--) {
    int64_t i = t % j->bshape[d];
    t /= j->bshape[d];
    ra += i * j->ast[d];
    rb += i * j->bst[d];
  }
  *oa = ra;
  *ob = rb;
}

/* Rows [r0, r1) of the direct loop, rows counted over all batches. */
static void direct_rows(const gemm_job *j, int64_t r0, int64_t r1) {
  while (r0 < r1) {
    int64_t t = r0 / j->n, i = r0 % j->n;
    int64_t rows = j->n - i;
    if (rows > r1 - r0)
      rows = r1 - r0;
    int64_t oa, ob;
    batch_offsets(j, t, &oa, &ob);
    oa += i * j->ars;
    int64_t oc = (t * j->n + i) * j->p;
    switch (j->dt) {
    case MM_FLOAT32:
      small_gemm_f32(rows, j->k, j->p, (float)j->alpha, (const float *)j->a + oa, j->ars, j->acs,
                     (const float *)j->b + ob, j->brs, j->bcs, (float)j->beta, j->use_beta,
                     (float *)j->c + oc, j->p);
      break;
    case MM_FLOAT64:
      small_gemm_f64(rows, j->k, j->p, j->alpha, (const double *)j->a + oa, j->ars, j->acs,
                     (const double *)j->b + ob, j->brs, j->bcs, j->beta, j->use_beta,
                     (double *)j->c + oc, j->p);
      break;
    default: {
      const int64_t *a = (const int64_t *)j->a + oa, *b = (const int64_t *)j->b + ob;
      int64_t *c = (int64_t *)j->c + oc;
      if (j->small)
        small_gemm_i64(rows, j->k, j->p, (int64_t)j->alpha, a, j->ars, j->acs, b, j->brs, j->bcs,
                       (int64_t)j->beta, j->use_beta, c, j->p);
      else
        rows_gemm_i64(rows, j->k, j->p, (int64_t)j->alpha, a, j->ars, j->acs, b, j->brs, j->bcs,
                      (int64_t)j->beta, j->use_beta, c, j->p);
      break;
    }
    }
    r0 += rows;
  }
}

static void direct_range(int64_t begin, int64_t end, void *arg) { direct_rows(arg, begin, end); }

/* out <- beta * out (use_beta) or 0: the whole result when the product contributes
 * nothing (k == 0 or alpha == 0). */
static void scale_out(mm_tensor *out, double beta, bool use_beta) {
  int64_t n = mm_numel(out);
  void *d = mm_data(out);
  if (!use_beta) {
    memset(d, 0, (size_t)n * mm_dtype_size(out->dtype));
    return;
  }
  if (beta == 1)
    return;
  switch (out->dtype) {
  case MM_FLOAT32:
    for (int64_t i = 0; i < n; i++)
      ((float *)d)[i] *= (float)beta;
    break;
  case MM_FLOAT64:
    for (int64_t i = 0; i < n; i++)
      ((double *)d)[i] *= beta;
    break;
  default:
    for (int64_t i = 0; i < n; i++)
      ((int64_t *)d)[i] = (int64_t)((uint64_t)((int64_t *)d)[i] * (uint64_t)(int64_t)beta);
    break;
  }
}

/* a: [..., n, k] and b: [..., k, p] (ndim >= 2, sizes already checked); nb batch dims of
 * shape bshape; out holds nbatch * n * p elements, contiguous (and c when use_beta). */
static int gemm_into(mm_ctx *ctx, const char *op, mm_tensor *out, int nb, const int64_t *bshape,
                     const mm_tensor *a, const mm_tensor *b, double alpha, double beta,
                     bool use_beta) {
  gemm_job j;
  j.dt = a->dtype;
  j.nb = nb;
  j.n = a->shape[a->ndim - 2];
  j.k = a->shape[a->ndim - 1];
  j.p = b->shape[b->ndim - 1];
  j.alpha = alpha;
  j.beta = beta;
  j.use_beta = use_beta;
  j.nbatch = 1;
  for (int d = 0; d < nb; d++) {
    j.bshape[d] = bshape[d];
    j.nbatch *= bshape[d];
  }
  if (j.nbatch * j.n * j.p == 0)
    return 0;
  if (j.k == 0 || alpha == 0) { /* as BLAS: no product, so NaNs in a or b do not show */
    scale_out(out, beta, use_beta);
    return 0;
  }
  j.c = mm_data(out);

  double work = (double)j.n * (double)j.k * (double)j.p; /* no overflow */
  j.small = work <= MM_GEMM_DIRECT_MAX;
  bool direct = j.small || j.dt == MM_INT64;
  CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
  int lda = 0, ldb = 0;
  mm_tensor *ac = NULL, *bc = NULL; /* contiguous copies when BLAS cannot read them */
  if (!direct) {
    if (!fits_int(j.n) || !fits_int(j.k) || !fits_int(j.p))
      return mm_fail(ctx, "moonml.%s: matrix dimensions too large for BLAS", op);
    const mm_tensor *ops[2] = {a, b};
    mm_tensor **copies[2] = {&ac, &bc};
    CBLAS_TRANSPOSE *trs[2] = {&ta, &tb};
    int *lds[2] = {&lda, &ldb};
    for (int o = 0; o < 2; o++) {
      const mm_tensor *t = ops[o];
      int r = t->ndim - 2;
      if (!blas_layout(t->shape[r], t->shape[r + 1], t->stride[r], t->stride[r + 1], trs[o],
                       lds[o])) {
        *copies[o] = mm_clone_raw(ctx, t);
        if (!*copies[o]) {
          mm_release(ac);
          return -1;
        }
        t = *copies[o];
        blas_layout(t->shape[r], t->shape[r + 1], t->stride[r], t->stride[r + 1], trs[o], lds[o]);
      }
    }
  }
  const mm_tensor *ua = ac ? ac : a, *ub = bc ? bc : b;
  j.a = mm_data(ua);
  j.b = mm_data(ub);
  j.ars = ua->stride[ua->ndim - 2];
  j.acs = ua->stride[ua->ndim - 1];
  j.brs = ub->stride[ub->ndim - 2];
  j.bcs = ub->stride[ub->ndim - 1];
  for (int d = 0; d < nb; d++) {
    int da = d - (nb - (ua->ndim - 2)), db = d - (nb - (ub->ndim - 2));
    j.ast[d] = da < 0 || ua->shape[da] == 1 ? 0 : ua->stride[da];
    j.bst[d] = db < 0 || ub->shape[db] == 1 ? 0 : ub->stride[db];
  }

  if (direct) {
    int64_t rows = j.nbatch * j.n;
    int64_t row_work = j.k * j.p > 0 ? j.k * j.p : 1;
    mm_parallel_for(rows, DIRECT_GRAIN_WORK / row_work + 1, direct_range, &j);
  } else {
    for (int64_t t = 0; t < j.nbatch; t++) {
      int64_t oa, ob;
      batch_offsets(&j, t, &oa, &ob);
      int64_t oc = t * j.n * j.p;
      if (j.dt == MM_FLOAT32)
        cblas_sgemm(CblasRowMajor, ta, tb, (int)j.n, (int)j.p, (int)j.k, (float)alpha,
                    (const float *)j.a + oa, lda, (const float *)j.b + ob, ldb,
                    use_beta ? (float)beta : 0.0f, (float *)j.c + oc, (int)j.p);
      else
        cblas_dgemm(CblasRowMajor, ta, tb, (int)j.n, (int)j.p, (int)j.k, alpha,
                    (const double *)j.a + oa, lda, (const double *)j.b + ob, ldb,
                    use_beta ? beta : 0.0, (double *)j.c + oc, (int)j.p);
    }
  }
  mm_release(ac);
  mm_release(bc);
  return 0;
}

/* ------------------------------------------------------------------ matrix-vector */

/* y[n] (contiguous) = m[n, k] @ x[k]; m 2-D and x 1-D, possibly header views. */
static int gemv_into(mm_ctx *ctx, const char *op, mm_tensor *y, const mm_tensor *m,
                     const mm_tensor *x) {
  int64_t n = m->shape[0], k = m->shape[1];
  if (n == 0)
    return 0;
  if (k == 0) {
    scale_out(y, 0, false);
    return 0;
  }
  mm_dtype dt = m->dtype;
  if (dt == MM_INT64 || n * k <= MM_GEMV_DIRECT_MAX) {
    const void *mp = mm_data(m), *xp = mm_data(x);
    switch (dt) {
    case MM_FLOAT32:
      direct_gemv_f32(n, k, (const float *)mp, m->stride[0], m->stride[1], (const float *)xp,
                      x->stride[0], mm_data(y));
      break;
    case MM_FLOAT64:
      direct_gemv_f64(n, k, (const double *)mp, m->stride[0], m->stride[1], (const double *)xp,
                      x->stride[0], mm_data(y));
      break;
    default:
      direct_gemv_i64(n, k, (const int64_t *)mp, m->stride[0], m->stride[1], (const int64_t *)xp,
                      x->stride[0], mm_data(y));
      break;
    }
    return 0;
  }
  if (!fits_int(n) || !fits_int(k))
    return mm_fail(ctx, "moonml.%s: matrix dimensions too large for BLAS", op);
  CBLAS_TRANSPOSE tr = CblasNoTrans;
  int ld = 1;
  mm_tensor *mc = NULL, *xc = NULL;
  if (!blas_layout(n, k, m->stride[0], m->stride[1], &tr, &ld)) {
    mc = mm_clone_raw(ctx, m);
    if (!mc)
      return -1;
    m = mc;
    blas_layout(n, k, m->stride[0], m->stride[1], &tr, &ld);
  }
  /* BLAS rejects an increment of 0 (an expanded vector) */
  if (x->stride[0] < 1 || !fits_int(x->stride[0])) {
    xc = mm_clone_raw(ctx, x);
    if (!xc) {
      mm_release(mc);
      return -1;
    }
    x = xc;
  }
  /* Trans: the column-major n x k matrix is a row-major k x n one */
  int rows = tr == CblasNoTrans ? (int)n : (int)k, cols = tr == CblasNoTrans ? (int)k : (int)n;
  if (dt == MM_FLOAT32)
    cblas_sgemv(CblasRowMajor, tr, rows, cols, 1.0f, mm_data(m), ld, mm_data(x), (int)x->stride[0],
                0.0f, mm_data(y), 1);
  else
    cblas_dgemv(CblasRowMajor, tr, rows, cols, 1.0, mm_data(m), ld, mm_data(x), (int)x->stride[0],
                0.0, mm_data(y), 1);
  mm_release(mc);
  mm_release(xc);
  return 0;
}

/* y = m @ x as a new tensor of shape out_shape (n elements). */
static mm_tensor *gemv_new(mm_ctx *ctx, const char *op, const mm_tensor *m, const mm_tensor *x,
                           int out_ndim, const int64_t *out_shape) {
  mm_tensor *y = mm_empty(ctx, m->dtype, out_ndim, out_shape);
  if (y && gemv_into(ctx, op, y, m, x) != 0) {
    mm_release(y);
    return NULL;
  }
  return y;
}

static mm_tensor *record_product(mm_ctx *ctx, mm_tensor *out, const char *name, const mm_tensor *a,
                                 const mm_tensor *b);

/* ------------------------------------------------------------------ dot */

static mm_tensor *dot_impl(mm_ctx *ctx, const char *op, const mm_tensor *a, const mm_tensor *b) {
  if (a->shape[0] != b->shape[0]) {
    fail_shapes(ctx, op, a, b, "");
    return NULL;
  }
  int64_t n = a->shape[0], sa = a->stride[0], sb = b->stride[0];
  mm_tensor *r = mm_empty(ctx, a->dtype, 0, NULL);
  if (!r)
    return NULL;
  bool blas = fits_int(n) && sa >= 0 && sb >= 0 && fits_int(sa) && fits_int(sb);
/* the loop for int64, and for floats whose strides do not fit BLAS's int */
#define DOT_LOOP(T, A)                                                                             \
  do {                                                                                             \
    const T *x = mm_data(a), *y = mm_data(b);                                                      \
    A acc = 0;                                                                                     \
    for (int64_t i = 0; i < n; i++)                                                                \
      acc += (A)x[i * sa] * (A)y[i * sb];                                                          \
    *(T *)mm_data(r) = (T)acc;                                                                     \
  } while (0)
  if (a->dtype == MM_FLOAT32 && blas)
    *(float *)mm_data(r) = n ? cblas_sdot((int)n, mm_data(a), (int)sa, mm_data(b), (int)sb) : 0;
  else if (a->dtype == MM_FLOAT64 && blas)
    *(double *)mm_data(r) = n ? cblas_ddot((int)n, mm_data(a), (int)sa, mm_data(b), (int)sb) : 0;
  else if (a->dtype == MM_FLOAT32)
    DOT_LOOP(float, float);
  else if (a->dtype == MM_FLOAT64)
    DOT_LOOP(double, double);
  else
    DOT_LOOP(int64_t, uint64_t);
#undef DOT_LOOP
  return r;
}

mm_tensor *mm_dot(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b) {
  if (check_pair(ctx, "dot", a, b) != 0)
    return NULL;
  if (a->ndim != 1 || b->ndim != 1) {
    mm_fail(ctx, "moonml.dot: expected 1-D tensors, got %d-D and %d-D", a->ndim, b->ndim);
    return NULL;
  }
  return record_product(ctx, dot_impl(ctx, "dot", a, b), "DotBackward", a, b);
}

/* ------------------------------------------------------------------ mv, mm, bmm */

static mm_tensor *mv_impl(mm_ctx *ctx, const char *op, const mm_tensor *a, const mm_tensor *x) {
  if (a->shape[1] != x->shape[0]) {
    fail_shapes(ctx, op, a, x, "");
    return NULL;
  }
  return gemv_new(ctx, op, a, x, 1, a->shape);
}

mm_tensor *mm_mv(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *x) {
  if (check_pair(ctx, "mv", a, x) != 0)
    return NULL;
  if (a->ndim != 2 || x->ndim != 1) {
    mm_fail(ctx, "moonml.mv: expected a 2-D matrix and a 1-D vector, got %d-D and %d-D", a->ndim,
            x->ndim);
    return NULL;
  }
  return record_product(ctx, mv_impl(ctx, "mv", a, x), "MvBackward", a, x);
}

/* alpha * [n, k] @ [k, p] -> [n, p] */
static mm_tensor *mm_scaled(mm_ctx *ctx, const char *op, const mm_tensor *a, const mm_tensor *b,
                            double alpha) {
  if (a->shape[1] != b->shape[0]) {
    fail_shapes(ctx, op, a, b, "");
    return NULL;
  }
  int64_t shape[2] = {a->shape[0], b->shape[1]};
  mm_tensor *out = mm_empty(ctx, a->dtype, 2, shape);
  if (out && gemm_into(ctx, op, out, 0, NULL, a, b, alpha, 0, false) != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

static mm_tensor *mm_impl(mm_ctx *ctx, const char *op, const mm_tensor *a, const mm_tensor *b) {
  return mm_scaled(ctx, op, a, b, 1);
}

/* ------------------------------------------------------------------ autograd */

/* a's view as a stack header with its last two dims swapped (a read-only operand) */
static mm_tensor swap_last(const mm_tensor *a) {
  mm_tensor h = *a;
  int n = a->ndim;
  h.shape[n - 2] = a->shape[n - 1];
  h.shape[n - 1] = a->shape[n - 2];
  h.stride[n - 2] = a->stride[n - 1];
  h.stride[n - 1] = a->stride[n - 2];
  return h;
}

/* x @ y, times alpha (alpha != 1 only for 2-D operands) */
static mm_tensor *product(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *y, double alpha) {
  if (alpha == 1)
    return mm_matmul(ctx, x, y);
  return mm_scaled(ctx, "addmm", x, y, alpha);
}

/* Drops the size-1 dim at d that a 1-D operand's matrix form added (a new reference). */
static mm_tensor *drop_dim(mm_ctx *ctx, mm_tensor *t, int d) {
  if (!t)
    return NULL;
  mm_tensor *v = mm_select(ctx, t, d, 0);
  mm_release(t);
  return v;
}

/* Gradients of out = alpha * (a @ b) under torch.matmul's rules, given g = d(loss)/d(out).
 * a (needed for gb) and b (needed for ga) may be NULL when not needed; their ranks are
 * given. ga and gb may keep broadcast batch dims (the engine sums them). */
static int product_grads(mm_ctx *ctx, int a_ndim, const mm_tensor *a, int b_ndim,
                         const mm_tensor *b, const mm_tensor *g, double alpha, mm_tensor **ga,
                         mm_tensor **gb) {
  bool a1 = a_ndim == 1, b1 = b_ndim == 1;
  /* g with the dims of 1-D operands put back: [batch..., n or 1, p or 1] */
  int nb = g->ndim - (a1 ? 0 : 1) - (b1 ? 0 : 1), n = 0;
  int64_t sh[MM_MAX_DIMS], st[MM_MAX_DIMS];
  for (int d = 0; d < nb; d++, n++) {
    sh[n] = g->shape[d];
    st[n] = g->stride[d];
  }
  sh[n] = a1 ? 1 : g->shape[nb];
  st[n++] = a1 ? 1 : g->stride[nb];
  sh[n] = b1 ? 1 : g->shape[g->ndim - 1];
  st[n++] = b1 ? 1 : g->stride[g->ndim - 1];
  mm_tensor g2 = header(g, n, sh, st);
  if (ga) {
    mm_tensor b2 = *b;
    if (b1) {
      int64_t bs[2] = {b->shape[0], 1}, bst[2] = {b->stride[0], 1};
      b2 = header(b, 2, bs, bst);
    }
    mm_tensor bt = swap_last(&b2);
    *ga = product(ctx, &g2, &bt, alpha);
    if (a1)
      *ga = drop_dim(ctx, *ga, (*ga ? (*ga)->ndim : 2) - 2);
    if (!*ga)
      return -1;
  }
  if (gb) {
    if (a->ndim >= 3 && b_ndim <= 2) {
      /* b has no batch dims: fold a's and g's into rows, one product instead of a
       * batched one summed afterwards */
      int64_t k = a->shape[a->ndim - 1], p = b1 ? 1 : g->shape[g->ndim - 1];
      int64_t ash[2] = {-1, k}, gsh[2] = {-1, p};
      mm_tensor *af = mm_reshape(ctx, a, 2, ash);
      mm_tensor *gf = af ? mm_reshape(ctx, g, b1 ? 1 : 2, b1 ? ash : gsh) : NULL;
      if (gf) {
        mm_tensor at = swap_last(af);
        *gb = product(ctx, &at, gf, alpha);
      }
      mm_release(af);
      mm_release(gf);
    } else {
      mm_tensor a2 = *a;
      if (a1) {
        int64_t as[2] = {1, a->shape[0]}, ast[2] = {1, a->stride[0]};
        a2 = header(a, 2, as, ast);
      }
      mm_tensor at = swap_last(&a2);
      *gb = product(ctx, &at, &g2, alpha);
      if (b1)
        *gb = drop_dim(ctx, *gb, (*gb ? (*gb)->ndim : 1) - 1);
    }
    if (!*gb) {
      if (ga) {
        mm_release(*ga);
        *ga = NULL;
      }
      return -1;
    }
  }
  return 0;
}

/* The saved operand i[which] points at (-1: not saved). */
static const mm_tensor *saved_operand(const mm_node *node, int which) {
  return node->i[which] < 0 ? NULL : node->saved[node->i[which]];
}

/* matmul, dot, mv, mm, bmm */
static int product_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                            mm_tensor **grad_in) {
  const mm_tensor *a = saved_operand(node, 0), *b = saved_operand(node, 1);
  return product_grads(ctx, (int)node->i[2], a, (int)node->i[3], b, grad, 1,
                       node->in[0].needs_grad ? &grad_in[0] : NULL,
                       node->in[1].needs_grad ? &grad_in[1] : NULL);
}

static int addmm_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  double beta = node->f[0], alpha = node->f[1];
  if (node->in[0].needs_grad) {
    if (beta == 1) {
      mm_retain((mm_tensor *)grad);
      grad_in[0] = (mm_tensor *)grad;
    } else if (!(grad_in[0] =
                     mm_binary_scalar(ctx, MM_OP_MUL, grad, (mm_scalar){beta, false}, false))) {
      return -1;
    }
  }
  const mm_tensor *a = saved_operand(node, 0), *b = saved_operand(node, 1);
  return product_grads(ctx, 2, a, 2, b, grad, alpha, node->in[1].needs_grad ? &grad_in[1] : NULL,
                       node->in[2].needs_grad ? &grad_in[2] : NULL);
}

/* Records out = op(inputs) where inputs[first], inputs[first + 1] are the two factors:
 * each is saved only when the other's gradient needs it. Releases out on error. */
static mm_tensor *record(mm_ctx *ctx, mm_tensor *out, const char *name, mm_backward_fn fn, int n,
                         const mm_tensor *const *inputs, int first, double beta, double alpha) {
  mm_node *node;
  if (!out || mm_node_begin(ctx, name, fn, n, inputs, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (!node)
    return out;
  const mm_tensor *a = inputs[first], *b = inputs[first + 1];
  node->i[0] = node->i[1] = -1;
  node->i[2] = a->ndim;
  node->i[3] = b->ndim;
  node->f[0] = beta;
  node->f[1] = alpha;
  int st = 0;
  if (b->requires_grad) {
    node->i[0] = node->n_saved;
    st = mm_node_save(ctx, node, a);
  }
  if (st == 0 && a->requires_grad) {
    node->i[1] = node->n_saved;
    st = mm_node_save(ctx, node, b);
  }
  if (st != 0) {
    mm_node_release(node);
    mm_release(out);
    return NULL;
  }
  mm_node_attach(node, out);
  return out;
}

static mm_tensor *record_product(mm_ctx *ctx, mm_tensor *out, const char *name, const mm_tensor *a,
                                 const mm_tensor *b) {
  const mm_tensor *in[2] = {a, b};
  return record(ctx, out, name, product_backward, 2, in, 0, 1, 1);
}

mm_tensor *mm_mm(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b) {
  if (check_pair(ctx, "mm", a, b) != 0)
    return NULL;
  if (a->ndim != 2 || b->ndim != 2) {
    mm_fail(ctx, "moonml.mm: expected 2-D tensors, got %d-D and %d-D", a->ndim, b->ndim);
    return NULL;
  }
  return record_product(ctx, mm_impl(ctx, "mm", a, b), "MmBackward", a, b);
}

mm_tensor *mm_bmm(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b) {
  if (check_pair(ctx, "bmm", a, b) != 0)
    return NULL;
  if (a->ndim != 3 || b->ndim != 3) {
    mm_fail(ctx, "moonml.bmm: expected 3-D tensors, got %d-D and %d-D", a->ndim, b->ndim);
    return NULL;
  }
  if (a->shape[0] != b->shape[0]) {
    mm_fail(ctx, "moonml.bmm: batch sizes differ (%lld and %lld)", (long long)a->shape[0],
            (long long)b->shape[0]);
    return NULL;
  }
  if (a->shape[2] != b->shape[1]) {
    fail_shapes(ctx, "bmm", a, b, "");
    return NULL;
  }
  int64_t shape[3] = {a->shape[0], a->shape[1], b->shape[2]};
  mm_tensor *out = mm_empty(ctx, a->dtype, 3, shape);
  if (out && gemm_into(ctx, "bmm", out, 1, shape, a, b, 1, 0, false) != 0) {
    mm_release(out);
    return NULL;
  }
  return record_product(ctx, out, "BmmBackward", a, b);
}

/* ------------------------------------------------------------------ matmul */

/* Can the leading dims of t (all but the last) be read as one dim of uniform stride?
 * Then [..., n, k] folds into one [M, k] matrix. Sets *stride to that stride. */
static bool leading_dims_fold(const mm_tensor *t, int64_t *stride) {
  int64_t s = 0, extent = 0; /* stride and size of the folded dims seen so far */
  bool seen = false;
  for (int d = t->ndim - 2; d >= 0; d--) {
    if (t->shape[d] == 1)
      continue;
    if (!seen) {
      s = t->stride[d];
      extent = t->shape[d];
      seen = true;
    } else if (t->stride[d] == s * extent) {
      extent *= t->shape[d];
    } else {
      return false;
    }
  }
  *stride = seen ? s : t->shape[t->ndim - 1];
  return true;
}

/* Batched matmul: either side >= 3-D (both at least 1-D). */
static mm_tensor *matmul_batched(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b) {
  bool drop_n = a->ndim == 1, drop_p = b->ndim == 1;
  mm_tensor a2 = *a, b2 = *b; /* matrix views of 1-D operands */
  if (drop_n) {
    int64_t sh[2] = {1, a->shape[0]}, st[2] = {a->shape[0], a->stride[0]};
    a2 = header(a, 2, sh, st);
  }
  if (drop_p) {
    int64_t sh[2] = {b->shape[0], 1}, st[2] = {b->stride[0], 1};
    b2 = header(b, 2, sh, st);
  }
  int64_t n = a2.shape[a2.ndim - 2], k = a2.shape[a2.ndim - 1], p = b2.shape[b2.ndim - 1];
  if (b2.shape[b2.ndim - 2] != k) {
    fail_shapes(ctx, "matmul", a, b, "");
    return NULL;
  }

  /* b a plain matrix or vector: fold a's batch dims into its rows, one BLAS call */
  int64_t rs;
  if (b->ndim <= 2 && leading_dims_fold(a, &rs)) {
    int64_t M = 1;
    for (int d = 0; d < a->ndim - 1; d++)
      M *= a->shape[d];
    int64_t sh[2] = {M, k}, st[2] = {rs, a->stride[a->ndim - 1]};
    mm_tensor af = header(a, 2, sh, st);
    int64_t oshape[MM_MAX_DIMS];
    int on = 0;
    for (int d = 0; d < a->ndim - 1; d++)
      oshape[on++] = a->shape[d];
    if (drop_p)
      return gemv_new(ctx, "matmul", &af, b, on, oshape);
    oshape[on++] = p;
    mm_tensor *out = mm_empty(ctx, a->dtype, on, oshape);
    if (out && gemm_into(ctx, "matmul", out, 0, NULL, &af, b, 1, 0, false) != 0) {
      mm_release(out);
      return NULL;
    }
    return out;
  }

  /* broadcast the batch dims */
  int na = a2.ndim - 2, nbd = b2.ndim - 2;
  int nb = na > nbd ? na : nbd;
  int64_t bshape[MM_MAX_DIMS] = {0};
  for (int d = 0; d < nb; d++) {
    int da = d - (nb - na), db = d - (nb - nbd);
    int64_t sa = da < 0 ? 1 : a2.shape[da], sb = db < 0 ? 1 : b2.shape[db];
    if (sa != sb && sa != 1 && sb != 1) {
      fail_shapes(ctx, "matmul", a, b, " (batch dimensions do not broadcast)");
      return NULL;
    }
    bshape[d] = sa == 1 ? sb : sa;
  }
  int64_t oshape[MM_MAX_DIMS];
  int on = nb;
  memcpy(oshape, bshape, (size_t)nb * sizeof *bshape);
  if (!drop_n)
    oshape[on++] = n;
  if (!drop_p)
    oshape[on++] = p;
  mm_tensor *out = mm_empty(ctx, a->dtype, on, oshape);
  if (out && gemm_into(ctx, "matmul", out, nb, bshape, &a2, &b2, 1, 0, false) != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

static mm_tensor *matmul_impl(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b) {
  if (check_pair(ctx, "matmul", a, b) != 0)
    return NULL;
  if (a->ndim == 0 || b->ndim == 0) {
    mm_fail(ctx, "moonml.matmul: both arguments need to be at least 1-D, got %d-D and %d-D",
            a->ndim, b->ndim);
    return NULL;
  }
  if (a->ndim == 1 && b->ndim == 1)
    return dot_impl(ctx, "matmul", a, b);
  if (a->ndim == 2 && b->ndim == 1)
    return mv_impl(ctx, "matmul", a, b);
  if (a->ndim == 1 && b->ndim == 2) {
    /* x @ B = B^T x */
    if (a->shape[0] != b->shape[0]) {
      fail_shapes(ctx, "matmul", a, b, "");
      return NULL;
    }
    int64_t sh[2] = {b->shape[1], b->shape[0]}, st[2] = {b->stride[1], b->stride[0]};
    mm_tensor bt = header(b, 2, sh, st);
    return gemv_new(ctx, "matmul", &bt, a, 1, sh);
  }
  if (a->ndim == 2 && b->ndim == 2)
    return mm_impl(ctx, "matmul", a, b);
  return matmul_batched(ctx, a, b);
}

mm_tensor *mm_matmul(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b) {
  mm_tensor *out = matmul_impl(ctx, a, b);
  return out ? record_product(ctx, out, "MatmulBackward", a, b) : NULL;
}

/* ------------------------------------------------------------------ addmm */

/* false for fractions, NaN and values outside int64 */
static bool is_int64_value(double v) {
  return v >= -9.2e18 && v <= 9.2e18 && v == (double)(int64_t)v;
}

mm_tensor *mm_addmm(mm_ctx *ctx, const mm_tensor *c, const mm_tensor *a, const mm_tensor *b,
                    double beta, double alpha) {
  if (check_pair(ctx, "addmm", a, b) != 0)
    return NULL;
  if (!c) {
    mm_fail(ctx, "moonml.addmm: expected a tensor to add, got NULL");
    return NULL;
  }
  if (c->dtype != a->dtype) {
    mm_fail(ctx, "moonml.addmm: expected c to have the dtype of a and b (%s), got %s",
            mm_dtype_name(a->dtype), mm_dtype_name(c->dtype));
    return NULL;
  }
  if (a->ndim != 2 || b->ndim != 2) {
    mm_fail(ctx, "moonml.addmm: expected 2-D matrices, got %d-D and %d-D", a->ndim, b->ndim);
    return NULL;
  }
  if (a->shape[1] != b->shape[0]) {
    fail_shapes(ctx, "addmm", a, b, "");
    return NULL;
  }
  if (a->dtype == MM_INT64 && (!is_int64_value(beta) || !is_int64_value(alpha))) {
    mm_fail(ctx, "moonml.addmm: beta and alpha must be integers for int64 tensors, got %g and %g",
            beta, alpha);
    return NULL;
  }
  int64_t shape[2] = {a->shape[0], b->shape[1]};
  bool fits = c->ndim <= 2;
  for (int d = 0; fits && d < c->ndim; d++) {
    int64_t want = shape[2 - c->ndim + d];
    fits = c->shape[d] == want || c->shape[d] == 1;
  }
  if (!fits) {
    char sc[SHAPE_BUF], so[SHAPE_BUF];
    mm_fail(ctx, "moonml.addmm: cannot broadcast c of shape %s to the product's shape %s",
            dim_str(sc, sizeof sc, c), mm_shape_str(so, sizeof so, 2, shape));
    return NULL;
  }
  mm_tensor *out = mm_empty(ctx, a->dtype, 2, shape);
  if (!out)
    return NULL;
  bool use_beta = beta != 0; /* beta = 0 ignores c, NaNs included */
  if ((use_beta && mm_copy_raw(ctx, out, c) != 0) ||
      gemm_into(ctx, "addmm", out, 0, NULL, a, b, alpha, beta, use_beta) != 0) {
    mm_release(out);
    return NULL;
  }
  const mm_tensor *in[3] = {c, a, b};
  return record(ctx, out, "AddmmBackward", addmm_backward, 3, in, 1, beta, alpha);
}
