/* More reductions: prod, var, std, norm and logsumexp, over all elements or along one
 * dim, each beside its backward. Float inputs accumulate in double; int64 products wrap
 * around on overflow as PyTorch's do. */
#include "rows.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

static const char *stat_name(mm_stat_op op) {
  static const char *const names[] = {"prod", "var", "std", "norm", "logsumexp"};
  return op >= 0 && op < MM_STAT_OP_COUNT ? names[op] : "reduce";
}

static double load(const mm_tensor *t, int64_t i) {
  const void *p = mm_data(t);
  return t->dtype == MM_FLOAT32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static void store(mm_tensor *t, int64_t i, double v) {
  if (t->dtype == MM_FLOAT32)
    ((float *)mm_data(t))[i] = (float)v;
  else
    ((double *)mm_data(t))[i] = v;
}

static double sgn(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : v); } /* NaN stays */

/* ------------------------------------------------------------------ forward kernels */

/* one row of R float32 or float64 values (T), whatever the op */
#define ROW_STAT(T)                                                                                \
  static double row_stat_##T(const T *x, int64_t R, mm_stat_op op, double param) {                 \
    switch (op) {                                                                                  \
    case MM_STAT_PROD: {                                                                           \
      double p = 1;                                                                                \
      for (int64_t i = 0; i < R; i++)                                                              \
        p *= x[i];                                                                                 \
      return p;                                                                                    \
    }                                                                                              \
    case MM_STAT_VAR:                                                                              \
    case MM_STAT_STD: { /* two passes: no cancellation as in sum(x^2) - n mean^2 */                \
      double s = 0, ss = 0;                                                                        \
      for (int64_t i = 0; i < R; i++)                                                              \
        s += x[i];                                                                                 \
      double mean = s / (double)R;                                                                 \
      for (int64_t i = 0; i < R; i++) {                                                            \
        double d = x[i] - mean;                                                                    \
        ss += d * d;                                                                               \
      }                                                                                            \
      double dof = (double)R - param;                                                              \
      double v = ss / (dof > 0 ? dof : 0);                                                         \
      return op == MM_STAT_STD ? sqrt(v) : v;                                                      \
    }                                                                                              \
    case MM_STAT_NORM: {                                                                           \
      double p = param, acc = 0;                                                                   \
      if (R == 0) /* whatever p, as PyTorch */                                                     \
        return 0;                                                                                  \
      if (p == 2) {                                                                                \
        for (int64_t i = 0; i < R; i++)                                                            \
          acc += (double)x[i] * x[i];                                                              \
        return sqrt(acc);                                                                          \
      }                                                                                            \
      if (p == 1) {                                                                                \
        for (int64_t i = 0; i < R; i++)                                                            \
          acc += fabs((double)x[i]);                                                               \
        return acc;                                                                                \
      }                                                                                            \
      if (isinf(p)) { /* largest / smallest |x|; NaN wins */                                       \
        acc = fabs((double)x[0]);                                                                  \
        for (int64_t i = 1; i < R && acc == acc; i++) {                                            \
          double a = fabs((double)x[i]);                                                           \
          if (a != a || (p > 0 ? a > acc : a < acc))                                               \
            acc = a;                                                                               \
        }                                                                                          \
        return acc;                                                                                \
      }                                                                                            \
      if (p == 0) {                                                                                \
        for (int64_t i = 0; i < R; i++)                                                            \
          acc += x[i] != 0;                                                                        \
        return acc;                                                                                \
      }                                                                                            \
      for (int64_t i = 0; i < R; i++)                                                              \
        acc += pow(fabs((double)x[i]), p);                                                         \
      return pow(acc, 1 / p);                                                                      \
    }                                                                                              \
    default: { /* logsumexp: shifted by the largest finite-or-not value, as PyTorch */             \
      double m = -INFINITY, s = 0;                                                                 \
      for (int64_t i = 0; i < R; i++) {                                                            \
        if (x[i] != x[i])                                                                          \
          return x[i];                                                                             \
        m = x[i] > m ? x[i] : m;                                                                   \
      }                                                                                            \
      if (isinf(m))                                                                                \
        m = 0;                                                                                     \
      for (int64_t i = 0; i < R; i++)                                                              \
        s += exp(x[i] - m);                                                                        \
      return log(s) + m;                                                                           \
    }                                                                                              \
    }                                                                                              \
  }

ROW_STAT(float)
ROW_STAT(double)

typedef struct {
  const mm_rows *rw;
  mm_tensor *out;
  mm_stat_op op;
  double param;
} stat_job;

static void stat_rows(int64_t r0, int64_t r1, void *arg) {
  const stat_job *job = arg;
  const mm_tensor *x = job->rw->x;
  int64_t R = job->rw->R;
  if (x->dtype == MM_INT64) { /* prod only */
    const int64_t *p = mm_data(x);
    int64_t *o = mm_data(job->out);
    for (int64_t r = r0; r < r1; r++) {
      uint64_t acc = 1;
      for (int64_t i = 0; i < R; i++)
        acc *= (uint64_t)p[r * R + i];
      o[r] = (int64_t)acc;
    }
    return;
  }
  for (int64_t r = r0; r < r1; r++) {
    double v = x->dtype == MM_FLOAT32
                   ? row_stat_float((const float *)mm_data(x) + r * R, R, job->op, job->param)
                   : row_stat_double((const double *)mm_data(x) + r * R, R, job->op, job->param);
    store(job->out, r, v);
  }
}

/* ------------------------------------------------------------------ backward */

typedef struct {
  const mm_rows *x;
  const mm_tensor *g, *out; /* one value per row, contiguous */
  mm_tensor *gin;           /* rows of R, contiguous */
  mm_stat_op op;
  double param;
  atomic_int failed;
} grad_job;

/* d prod / d x[k] = product of the others: prefix times suffix, so that zeros need no
 * division (one zero: only its position gets a gradient; two: none does). */
static void prod_grad_row(const mm_tensor *x, int64_t base, int64_t R, double g, double *suf,
                          mm_tensor *gin) {
  double s = 1;
  for (int64_t k = R - 1; k >= 0; k--) {
    suf[k] = s;
    s *= load(x, base + k);
  }
  double p = 1;
  for (int64_t k = 0; k < R; k++) {
    store(gin, base + k, g * p * suf[k]);
    p *= load(x, base + k);
  }
}

static void norm_grad_row(const grad_job *job, int64_t base, int64_t R, double g, double n) {
  double p = job->param;
  const mm_tensor *x = job->x->x;
  double count = 0;
  if (isinf(p)) /* the gradient is shared by the elements at the extreme (and NaNs) */
    for (int64_t k = 0; k < R; k++) {
      double a = fabs(load(x, base + k));
      count += a == n || a != a;
    }
  for (int64_t k = 0; k < R; k++) {
    double v = load(x, base + k), a = fabs(v), r;
    if (p == 0)
      r = 0;
    else if (p == 1)
      r = sgn(v) * g;
    else if (p == 2)
      r = n == 0 ? 0 : g * v / n;
    else if (isinf(p))
      r = (a == n || a != a) ? sgn(v) * (g / count) : 0;
    else if (p < 1)
      r = v == 0 ? 0 : sgn(v) * pow(a, p - 1) * g * pow(n, 1 - p);
    else
      r = n == 0 ? 0 : sgn(v) * pow(a, p - 1) * (g / pow(n, p - 1));
    store(job->gin, base + k, r);
  }
}

static void grad_rows(int64_t r0, int64_t r1, void *arg) {
  grad_job *job = arg;
  const mm_tensor *x = job->x->x;
  int64_t R = job->x->R;
  double *buf = NULL;
  if (job->op == MM_STAT_PROD && !(buf = malloc((size_t)(R > 0 ? R : 1) * sizeof *buf))) {
    atomic_store(&job->failed, 1);
    return;
  }
  for (int64_t r = r0; r < r1; r++) {
    int64_t base = r * R;
    double g = load(job->g, r), o = job->out ? load(job->out, r) : 0;
    switch (job->op) {
    case MM_STAT_PROD:
      prod_grad_row(x, base, R, g, buf, job->gin);
      break;
    case MM_STAT_VAR:
    case MM_STAT_STD: {
      double s = 0;
      for (int64_t k = 0; k < R; k++)
        s += load(x, base + k);
      double mean = s / (double)R, dof = (double)R - job->param;
      /* var: 2 (x - mean) / dof; std: the same over 2 std, 0 where std is 0 (PyTorch) */
      double scale = 2 * g / dof;
      if (job->op == MM_STAT_STD)
        scale = o == 0 ? 0 : scale / (2 * o);
      for (int64_t k = 0; k < R; k++)
        store(job->gin, base + k, scale * (load(x, base + k) - mean));
      break;
    }
    case MM_STAT_NORM:
      norm_grad_row(job, base, R, g, o);
      break;
    default:
      for (int64_t k = 0; k < R; k++)
        store(job->gin, base + k, g * exp(load(x, base + k) - o));
      break;
    }
  }
  free(buf);
}

/* node->i: [0] dim, [1] all, [2] the op; node->f[0]: its parameter; saved: the input and,
 * but for prod and var, the output */
static int stat_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  mm_stat_op op = (mm_stat_op)node->i[2];
  const mm_tensor *x = node->saved[0];
  mm_rows rx = {0};
  mm_tensor *gc = mm_to_dtype(ctx, g, x->dtype), *gcc = NULL, *gin = NULL;
  gcc = gc ? mm_contiguous(ctx, gc) : NULL;
  if (gcc && mm_rows_init(ctx, x, (int)node->i[0], node->i[1] != 0, &rx) == 0) {
    /* all: one row holding every element, in x's shape */
    gin = node->i[1] ? mm_empty(ctx, x->dtype, x->ndim, x->shape)
                     : mm_rows_new(ctx, &rx, x->dtype, rx.R);
    if (gin) {
      grad_job job = {&rx, gcc, node->n_saved > 1 ? node->saved[1] : NULL, gin, op, node->f[0], 0};
      mm_rows_for(rx.nrows, rx.R, grad_rows, &job);
      if (atomic_load(&job.failed)) {
        mm_release(gin);
        gin = NULL;
        mm_fail(ctx, "moonml.backward: out of memory in %s", node->name);
      }
      if (!node->i[1])
        gin = mm_rows_restore(ctx, &rx, gin);
    }
  }
  mm_rows_free(&rx);
  mm_release(gc);
  mm_release(gcc);
  grad_in[0] = gin;
  return gin ? 0 : -1;
}

/* ------------------------------------------------------------------ entry points */

static mm_tensor *stat_impl(mm_ctx *ctx, mm_stat_op op, const mm_tensor *a, int dim, bool all,
                            bool keepdim, double param) {
  if (op < 0 || op >= MM_STAT_OP_COUNT) {
    mm_fail(ctx, "moonml.reduce: unknown reduction %d", (int)op);
    return NULL;
  }
  const char *name = stat_name(op);
  if (!a) {
    mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", name);
    return NULL;
  }
  if (!all && mm_check_dim0(ctx, name, dim, a->ndim) != 0)
    return NULL;
  bool fl = mm_dtype_is_float(a->dtype);
  mm_dtype work = a->dtype; /* what the kernels read, and the result's dtype */
  if (op == MM_STAT_PROD && !fl)
    work = MM_INT64;
  else if (op == MM_STAT_LOGSUMEXP && !fl)
    work = MM_FLOAT32;
  else if (!fl) {
    mm_fail(ctx, "moonml.%s: needs a floating-point tensor, got %s", name, mm_dtype_name(a->dtype));
    return NULL;
  }
  if (op == MM_STAT_NORM && param != param) {
    mm_fail(ctx, "moonml.norm: p must be a number, got NaN");
    return NULL;
  }
  int ndim;
  int64_t shape[MM_MAX_DIMS];
  mm_reduced_shape(a, dim, all, keepdim, &ndim, shape);
  mm_tensor *out = mm_empty(ctx, work, ndim, shape);
  if (!out)
    return NULL;
  bool mode = mm_grad_pause(ctx);
  mm_tensor *src = mm_to_dtype(ctx, a, work);
  mm_rows rw = {0};
  int st = src ? mm_rows_init(ctx, src, dim, all, &rw) : -1;
  if (st == 0) {
    stat_job job = {&rw, out, op, param};
    mm_rows_for(rw.nrows, rw.R, stat_rows, &job);
  }
  mm_rows_free(&rw);
  mm_release(src);
  mm_set_grad_enabled(ctx, mode);
  mm_node *node = NULL;
  if (st == 0) {
    static const char *const names[] = {"ProdBackward", "VarBackward", "StdBackward",
                                        "NormBackward", "LogsumexpBackward"};
    st = mm_node_begin(ctx, names[op], stat_backward, 1, &a, &node);
  }
  if (node) {
    node->i[0] = dim;
    node->i[1] = all;
    node->i[2] = op;
    node->f[0] = param;
    mm_node_attach(node, out);
    st = mm_node_save(ctx, node, a);
    if (st == 0 && op != MM_STAT_PROD && op != MM_STAT_VAR)
      st = mm_node_save(ctx, node, out);
  }
  if (st != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

mm_tensor *mm_stat_all(mm_ctx *ctx, mm_stat_op op, const mm_tensor *a, double param) {
  return stat_impl(ctx, op, a, 0, true, false, param);
}

mm_tensor *mm_stat_dim(mm_ctx *ctx, mm_stat_op op, const mm_tensor *a, int dim, bool keepdim,
                       double param) {
  return stat_impl(ctx, op, a, dim, false, keepdim, param);
}
