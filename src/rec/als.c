/* implicit's ALS (Hu, Koren & Volinsky 2008) with the conjugate-gradient solver of
 * Takacs, Pilaszy & Tikk (implicit/cpu/_als.pyx, least_squares_cg): for every row, a few
 * CG steps on (G + reg I + sum (c - 1) y y^T) x = sum c p y, warm-started from the
 * current factors, never forming the k x k system. G = Y^T Y comes from OpenBLAS before
 * the parallel loop; inside it only the small loops of rec_simd.h run, so OpenBLAS and
 * moonml's threads never multiply. */
#include "../core/internal.h"
#include "rec.h"
#include "rec_simd.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* gram (k x k, full) = Y^T Y in float32, as implicit's np.dot(Y.T, Y). */
static void gram_f32(const float *Y, int32_t n, int k, float *g) {
  memset(g, 0, sizeof(float) * (size_t)k * (size_t)k);
  if (n > 0 && k > 0)
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, k, n, 1.0f, Y, k, 0.0f, g, k);
  for (int a = 0; a < k; a++)
    for (int b = 0; b < a; b++)
      g[(size_t)a * (size_t)k + (size_t)b] = g[(size_t)b * (size_t)k + (size_t)a];
}

/* ------------------------------------------------------------------ conjugate gradient */

typedef struct {
  const mm_rec_icsr *c;
  float *X;
  const float *Y, *G; /* G includes reg on the diagonal */
  int k, steps;
  float alpha;
  atomic_int_fast64_t next;
  atomic_int failed;
} cg_job;

#define CG_CHUNK 32

/* One row: implicit's least_squares_cg body. Entries whose confidence is exactly 1 add
 * nothing to the system (their (c - 1) y y^T term is zero), so their dot products are
 * skipped: the result is the same. */
MM_REC_INLINE void cg_row(const cg_job *J, int64_t row, float *restrict r, float *restrict p,
                          float *restrict ap) {
  const mm_rec_icsr *c = J->c;
  const int k = J->k;
  const float *G = J->G, *Y = J->Y;
  const float alpha = J->alpha;
  float *restrict x = J->X + (size_t)row * (size_t)k;
  int64_t b = c->ptr[row], e = c->ptr[row + 1];
  if (b == e) {
    memset(x, 0, sizeof(float) * (size_t)k);
    return;
  }
  mm_rec_symv(G, x, r, k, -1.0f);
  for (int64_t q = b; q < e; q++) {
    const float *y = Y + (size_t)c->idx[q] * (size_t)k;
    float conf = alpha * c->val[q];
    float t = conf > 0 ? conf : 0;
    if (conf < 0)
      conf = -conf;
    if (conf != 1.0f)
      t -= (conf - 1) * mm_rec_dot(y, x, k);
    mm_rec_axpy(t, y, r, k);
  }
  memcpy(p, r, sizeof(float) * (size_t)k);
  float rsold = mm_rec_dot(r, r, k);
  if (rsold < 1e-20f)
    return;
  for (int it = 0; it < J->steps; it++) {
    mm_rec_symv(G, p, ap, k, 1.0f);
    for (int64_t q = b; q < e; q++) {
      float conf = fabsf(alpha * c->val[q]);
      if (conf != 1.0f) {
        const float *y = Y + (size_t)c->idx[q] * (size_t)k;
        mm_rec_axpy((conf - 1) * mm_rec_dot(y, p, k), y, ap, k);
      }
    }
    float step = rsold / mm_rec_dot(p, ap, k);
    mm_rec_axpy(step, p, x, k);
    mm_rec_axpy(-step, ap, r, k);
    float rsnew = mm_rec_dot(r, r, k);
    if (rsnew < 1e-20f)
      break;
    float beta = rsnew / rsold;
    for (int f = 0; f < k; f++)
      p[f] = beta * p[f] + r[f];
    rsold = rsnew;
  }
}

MM_REC_CLONES
static void cg_rows(const cg_job *J, int64_t b, int64_t e, float *r, float *p, float *ap) {
  for (int64_t row = b; row < e; row++)
    cg_row(J, row, r, p, ap);
}

static void cg_worker(int64_t b, int64_t e, void *arg) {
  (void)b;
  (void)e;
  cg_job *J = arg;
  float *scratch = malloc(sizeof(float) * 3 * (size_t)(J->k > 0 ? J->k : 1));
  if (!scratch) {
    atomic_store(&J->failed, 1);
    return;
  }
  int64_t n = J->c->n_rows;
  for (;;) {
    int64_t start = atomic_fetch_add(&J->next, CG_CHUNK);
    if (start >= n)
      break;
    int64_t end = start + CG_CHUNK < n ? start + CG_CHUNK : n;
    cg_rows(J, start, end, scratch, scratch + J->k, scratch + 2 * J->k);
  }
  free(scratch);
}

/* Rows of X from Y: G <- Y^T Y + reg I, then the CG steps over every row. */
static int half_step(const mm_rec_icsr *c, float *X, const float *Y, int32_t n_y, int k,
                     const mm_rec_als_opts *o, float *G) {
  gram_f32(Y, n_y, k, G);
  for (int a = 0; a < k; a++)
    G[(size_t)a * (size_t)k + (size_t)a] += (float)o->regularization;
  cg_job J = {c, X, Y, G, k, o->cg_steps, (float)o->alpha, 0, 0};
  int64_t work = c->ptr[c->n_rows] + c->n_rows;
  mm_parallel_for(work < 4096 ? 1 : mm_get_num_threads(), 1, cg_worker, &J);
  return atomic_load(&J.failed) ? -1 : 0;
}

int mm_rec_als_fit(mm_ctx *ctx, const mm_rec_icsr *by_user, const mm_rec_icsr *by_item, float *X,
                   float *Y, int k, const mm_rec_als_opts *o, double *losses) {
  float *G = malloc(sizeof(float) * (size_t)(k > 0 ? k * k : 1));
  if (!G)
    return mm_fail(ctx, "moonml.rec.ALS.fit: out of memory");
  for (int it = 0; it < o->iterations; it++) {
    if (half_step(by_user, X, Y, by_item->n_rows, k, o, G) != 0 ||
        half_step(by_item, Y, X, by_user->n_rows, k, o, G) != 0) {
      free(G);
      return mm_fail(ctx, "moonml.rec.ALS.fit: out of memory");
    }
    if (o->calculate_loss && losses)
      losses[it] = mm_rec_als_loss(by_user, X, Y, by_item->n_rows, k, o->regularization, o->alpha);
  }
  free(G);
  return 0;
}

/* ------------------------------------------------------------------ loss */

MM_REC_CLONES
static double loss_impl(const mm_rec_icsr *by_user, const float *X, const float *Y, int32_t n_items,
                        int k, double reg, double alpha, const float *G) {
  double loss = 0, conf_total = 0, xnorm = 0, ynorm = 0;
  for (int32_t u = 0; u < by_user->n_rows; u++) {
    const float *x = X + (size_t)u * (size_t)k;
    double quad = 0; /* x^T G x: sum over every item of (x . y)^2 */
    for (int a = 0; a < k; a++)
      quad += (double)x[a] * (double)mm_rec_dot(G + (size_t)a * (size_t)k, x, k);
    loss += quad;
    xnorm += (double)mm_rec_dot(x, x, k);
    for (int64_t q = by_user->ptr[u]; q < by_user->ptr[u + 1]; q++) {
      const float *y = Y + (size_t)by_user->idx[q] * (size_t)k;
      double c = alpha * (double)by_user->val[q], s = (double)mm_rec_dot(x, y, k);
      double ac = fabs(c);
      loss += (ac - 1) * s * s; /* the entry's c (p - s)^2 beyond the s^2 counted above */
      if (c > 0)
        loss += c * (1 - 2 * s);
      conf_total += ac;
    }
  }
  for (int32_t i = 0; i < n_items; i++) {
    const float *y = Y + (size_t)i * (size_t)k;
    ynorm += (double)mm_rec_dot(y, y, k);
  }
  int64_t nnz = by_user->ptr[by_user->n_rows];
  double missing = (double)by_user->n_rows * (double)n_items - (double)nnz;
  return (loss + reg * (xnorm + ynorm)) / (conf_total + missing);
}

double mm_rec_als_loss(const mm_rec_icsr *by_user, const float *X, const float *Y, int32_t n_items,
                       int k, double reg, double alpha) {
  float *G = malloc(sizeof(float) * (size_t)(k > 0 ? k * k : 1));
  if (!G)
    return NAN;
  gram_f32(Y, n_items, k, G);
  double loss = loss_impl(by_user, X, Y, n_items, k, reg, alpha, G);
  free(G);
  return loss;
}

/* ------------------------------------------------------------------ exact solves */

void mm_rec_gram(const float *Y, int32_t n, int k, float *gram) { gram_f32(Y, n, k, gram); }

/* In-place Cholesky of the k x k matrix a (lower part used); false when not positive
 * definite. */
static bool cholesky(double *a, int k) {
  for (int j = 0; j < k; j++) {
    double d = a[(size_t)j * (size_t)k + (size_t)j];
    for (int t = 0; t < j; t++)
      d -= a[(size_t)j * (size_t)k + (size_t)t] * a[(size_t)j * (size_t)k + (size_t)t];
    if (!(d > 0))
      return false;
    d = sqrt(d);
    a[(size_t)j * (size_t)k + (size_t)j] = d;
    for (int i = j + 1; i < k; i++) {
      double s = a[(size_t)i * (size_t)k + (size_t)j];
      for (int t = 0; t < j; t++)
        s -= a[(size_t)i * (size_t)k + (size_t)t] * a[(size_t)j * (size_t)k + (size_t)t];
      a[(size_t)i * (size_t)k + (size_t)j] = s / d;
    }
  }
  return true;
}

/* Solves L L^T x = b in place (b becomes x). */
static void chol_solve(const double *l, int k, double *b) {
  for (int i = 0; i < k; i++) {
    double s = b[i];
    for (int t = 0; t < i; t++)
      s -= l[(size_t)i * (size_t)k + (size_t)t] * b[t];
    b[i] = s / l[(size_t)i * (size_t)k + (size_t)i];
  }
  for (int i = k - 1; i >= 0; i--) {
    double s = b[i];
    for (int t = i + 1; t < k; t++)
      s -= l[(size_t)t * (size_t)k + (size_t)i] * b[t];
    b[i] = s / l[(size_t)i * (size_t)k + (size_t)i];
  }
}

typedef struct {
  const mm_rec_icsr *c;
  const int32_t *rows;
  int64_t n_rows;
  float *X;
  const float *Y, *gram;
  int k;
  double reg, alpha;
  atomic_int_fast64_t next;
  atomic_int failed;   /* out of memory */
  atomic_int singular; /* a system was not positive definite */
} solve_job;

static void solve_worker(int64_t b, int64_t e, void *arg) {
  (void)b;
  (void)e;
  solve_job *J = arg;
  const int k = J->k;
  double *A = malloc(sizeof(double) * ((size_t)k * (size_t)k + (size_t)k + 1));
  if (!A) {
    atomic_store(&J->failed, 1);
    return;
  }
  double *rhs = A + (size_t)k * (size_t)k;
  for (;;) {
    int64_t j = atomic_fetch_add(&J->next, 1);
    if (j >= J->n_rows)
      break;
    int32_t row = J->rows ? J->rows[j] : (int32_t)j;
    float *x = J->X + (size_t)row * (size_t)k;
    const mm_rec_icsr *c = J->c;
    if (c->ptr[row] == c->ptr[row + 1]) {
      memset(x, 0, sizeof(float) * (size_t)k);
      continue;
    }
    for (size_t t = 0; t < (size_t)k * (size_t)k; t++)
      A[t] = J->gram[t];
    for (int a = 0; a < k; a++) {
      A[(size_t)a * (size_t)k + (size_t)a] += J->reg;
      rhs[a] = 0;
    }
    for (int64_t q = c->ptr[row]; q < c->ptr[row + 1]; q++) {
      const float *y = J->Y + (size_t)c->idx[q] * (size_t)k;
      double conf = J->alpha * (double)c->val[q];
      if (conf > 0)
        for (int a = 0; a < k; a++)
          rhs[a] += conf * (double)y[a];
      else
        conf = -conf;
      if (conf != 1)
        for (int a = 0; a < k; a++) {
          double ya = (conf - 1) * (double)y[a];
          for (int t = 0; t <= a; t++)
            A[(size_t)a * (size_t)k + (size_t)t] += ya * (double)y[t];
        }
    }
    if (!cholesky(A, k)) {
      atomic_store(&J->singular, 1);
      continue;
    }
    chol_solve(A, k, rhs);
    for (int a = 0; a < k; a++)
      x[a] = (float)rhs[a];
  }
  free(A);
}

int mm_rec_als_solve(mm_ctx *ctx, const mm_rec_icsr *c, const int32_t *rows, int64_t n_rows,
                     float *X, const float *Y, int k, const float *gram, double reg, double alpha) {
  solve_job J = {c, rows, rows ? n_rows : c->n_rows, X, Y, gram, k, reg, alpha, 0, 0, 0};
  mm_parallel_for(J.n_rows < 64 ? 1 : mm_get_num_threads(), 1, solve_worker, &J);
  if (atomic_load(&J.failed))
    return mm_fail(ctx, "moonml.rec.ALS: out of memory");
  if (atomic_load(&J.singular))
    return mm_fail(ctx, "moonml.rec.ALS: a least-squares system is singular (raise the "
                        "regularization)");
  return 0;
}
