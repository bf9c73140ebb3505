/* Scans along one dim: cumsum and cumprod, each beside its backward. Float inputs
 * accumulate in double (as PyTorch's CPU kernels do); int64 wraps around on overflow;
 * bool counts as int64. */
#include "rows.h"

#include <stdatomic.h>
#include <stdlib.h>

typedef struct {
  const mm_rows *rw;
  char *out;
  bool prod, reverse;
} scan_job;

#define SCAN_LOOP(TI, TA, TO, IDENT)                                                               \
  do {                                                                                             \
    const TI *x = mm_data(job->rw->x);                                                             \
    TO *o = (TO *)job->out;                                                                        \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      const TI *xr = x + r * R;                                                                    \
      TO *orow = o + r * R;                                                                        \
      TA acc = IDENT;                                                                              \
      for (int64_t k = 0; k < R; k++) {                                                            \
        int64_t j = job->reverse ? R - 1 - k : k;                                                  \
        if (job->prod)                                                                             \
          acc *= (TA)xr[j];                                                                        \
        else                                                                                       \
          acc += (TA)xr[j];                                                                        \
        orow[j] = (TO)acc;                                                                         \
      }                                                                                            \
    }                                                                                              \
  } while (0)

static void scan_rows(int64_t r0, int64_t r1, void *arg) {
  const scan_job *job = arg;
  int64_t R = job->rw->R;
  switch (job->rw->x->dtype) {
  case MM_FLOAT32:
    SCAN_LOOP(float, double, float, job->prod ? 1.0 : 0.0);
    break;
  case MM_FLOAT64:
    SCAN_LOOP(double, double, double, job->prod ? 1.0 : 0.0);
    break;
  default: /* int64: unsigned arithmetic wraps around as PyTorch's does */
    SCAN_LOOP(int64_t, uint64_t, int64_t, job->prod ? 1u : 0u);
    break;
  }
}

static mm_tensor *scan_impl(mm_ctx *ctx, const char *name, const mm_tensor *a, int dim, bool prod,
                            bool reverse) {
  if (!a) {
    mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", name);
    return NULL;
  }
  if (mm_check_dim0(ctx, name, dim, a->ndim) != 0)
    return NULL;
  bool mode = mm_grad_pause(ctx);
  mm_tensor *src = mm_to_dtype(ctx, a, a->dtype == MM_BOOL ? MM_INT64 : a->dtype);
  mm_rows rw = {0};
  mm_tensor *out = NULL;
  if (src && mm_rows_init(ctx, src, dim, false, &rw) == 0) {
    out = mm_rows_new(ctx, &rw, src->dtype, rw.R);
    if (out) {
      scan_job job = {&rw, mm_data(out), prod, reverse};
      mm_rows_for(rw.nrows, rw.R, scan_rows, &job);
      out = mm_rows_restore(ctx, &rw, out);
    }
  }
  mm_rows_free(&rw);
  mm_release(src);
  mm_set_grad_enabled(ctx, mode);
  return out;
}

/* ------------------------------------------------------------------ cumsum */

/* node->i[0]: dim. The gradient is the reversed cumulative sum of g. */
static int cumsum_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  grad_in[0] = scan_impl(ctx, "cumsum", g, (int)node->i[0], false, true);
  return grad_in[0] ? 0 : -1;
}

mm_tensor *mm_cumsum(mm_ctx *ctx, const mm_tensor *a, int dim) {
  mm_tensor *out = scan_impl(ctx, "cumsum", a, dim, false, false);
  mm_node *node;
  if (!out || mm_node_begin(ctx, "CumsumBackward", cumsum_backward, 1, &a, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node) {
    node->i[0] = dim;
    mm_node_attach(node, out);
  }
  return out;
}

/* ------------------------------------------------------------------ cumprod */

typedef struct {
  const mm_rows *x, *g;
  char *out;
  atomic_int failed;
} cumprod_grad_job;

static double load(const mm_tensor *t, int64_t i) {
  const void *p = mm_data(t);
  return t->dtype == MM_FLOAT32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

/* d out[j] / d x[k] = prod of x[0..j] without x[k] (j >= k). With z the first zero of the
 * row: before z this is out[j] / x[k] and only j < z count; at z the products run on
 * past it; after z every product holds x[z] = 0. */
static void cumprod_grad_rows(int64_t r0, int64_t r1, void *arg) {
  cumprod_grad_job *job = arg;
  int64_t R = job->x->R;
  double *pre = malloc((size_t)(R > 0 ? R : 1) * sizeof *pre);
  if (!pre) {
    atomic_store(&job->failed, 1);
    return;
  }
  const mm_tensor *xt = job->x->x, *gt = job->g->x;
  bool f32 = xt->dtype == MM_FLOAT32;
  for (int64_t r = r0; r < r1; r++) {
    int64_t base = r * R, z = R;
    double p = 1;
    for (int64_t k = 0; k < R; k++) {
      double v = load(xt, base + k);
      if (v == 0) {
        z = k;
        break;
      }
      p *= v;
      pre[k] = p;
    }
    double s = 0;
    for (int64_t k = R - 1; k >= 0; k--) {
      double res;
      if (k > z) {
        res = 0;
      } else if (k == z) {
        double prod = z > 0 ? pre[z - 1] : 1, sum = load(gt, base + z) * prod;
        for (int64_t j = z + 1; j < R; j++) {
          prod *= load(xt, base + j);
          sum += load(gt, base + j) * prod;
        }
        res = sum;
      } else {
        s += load(gt, base + k) * pre[k];
        res = s / load(xt, base + k);
      }
      if (f32)
        ((float *)job->out)[base + k] = (float)res;
      else
        ((double *)job->out)[base + k] = res;
    }
  }
  free(pre);
}

/* node->i[0]: dim; saved: the input */
static int cumprod_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  int dim = (int)node->i[0];
  const mm_tensor *x = node->saved[0];
  mm_rows rx = {0}, rg = {0};
  mm_tensor *gx = mm_to_dtype(ctx, g, x->dtype), *out = NULL;
  if (gx && mm_rows_init(ctx, x, dim, false, &rx) == 0 &&
      mm_rows_init(ctx, gx, dim, false, &rg) == 0) {
    out = mm_rows_new(ctx, &rx, x->dtype, rx.R);
    if (out) {
      cumprod_grad_job job = {&rx, &rg, mm_data(out), 0};
      mm_rows_for(rx.nrows, rx.R, cumprod_grad_rows, &job);
      if (atomic_load(&job.failed)) {
        mm_release(out);
        out = NULL;
        mm_fail(ctx, "moonml.backward: out of memory in CumprodBackward");
      }
      out = mm_rows_restore(ctx, &rx, out);
    }
  }
  mm_rows_free(&rx);
  mm_rows_free(&rg);
  mm_release(gx);
  grad_in[0] = out;
  return out ? 0 : -1;
}

mm_tensor *mm_cumprod(mm_ctx *ctx, const mm_tensor *a, int dim) {
  mm_tensor *out = scan_impl(ctx, "cumprod", a, dim, true, false);
  mm_node *node;
  if (!out || mm_node_begin(ctx, "CumprodBackward", cumprod_backward, 1, &a, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node) {
    node->i[0] = dim;
    mm_node_attach(node, out);
    if (mm_node_save(ctx, node, a) != 0) {
      mm_release(out);
      return NULL;
    }
  }
  return out;
}
