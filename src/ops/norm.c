/* Normalisation, forward and backward: batch_norm (training with batch statistics and
 * the running-statistics update, or evaluation with the running statistics) and
 * layer_norm. Statistics are accumulated in double; the per-channel (batch_norm) or
 * per-row (layer_norm) mean and 1/sqrt(var + eps) are saved as a float64 tensor for the
 * backward. Channels / rows are split over threads with mm_parallel_for. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

#define NORM_GRAIN_WORK ((int64_t)1 << 15)

static int64_t grain(int64_t per_item) {
  return NORM_GRAIN_WORK / (per_item > 0 ? per_item : 1) + 1;
}

/* Reads element i of a 1-D tensor (any float dtype, any stride) as double. */
static double vec_get(const mm_tensor *t, int64_t i) {
  const char *p = (const char *)mm_data(t) + (size_t)(i * t->stride[0]) * mm_dtype_size(t->dtype);
  return t->dtype == MM_FLOAT32 ? (double)*(const float *)p : *(const double *)p;
}

static void vec_set(mm_tensor *t, int64_t i, double v) {
  char *p = (char *)mm_data(t) + (size_t)(i * t->stride[0]) * mm_dtype_size(t->dtype);
  if (t->dtype == MM_FLOAT32)
    *(float *)p = (float)v;
  else
    *(double *)p = v;
}

/* Contiguous float64 copy of an optional 1-D tensor of n elements (NULL: all `fill`). */
static mm_tensor *vec_f64(mm_ctx *ctx, const mm_tensor *t, int64_t n, double fill) {
  mm_tensor *r = mm_empty(ctx, MM_FLOAT64, 1, &n);
  if (!r)
    return NULL;
  double *d = mm_data(r);
  for (int64_t i = 0; i < n; i++)
    d[i] = t ? vec_get(t, i) : fill;
  return r;
}

/* ------------------------------------------------------------------ batch_norm */

/* x viewed as (n, c, s); stats: mean[c], invstd[c] (float64). */
typedef struct bn_job {
  mm_dtype dt;
  int64_t n, c, s;
  const void *x, *gout;
  void *out, *gx;
  double *mean, *invstd; /* 2c block */
  const double *w, *b;   /* scale and shift per channel (1 and 0 when absent) */
  double *gw, *gb;       /* backward sums per channel */
  bool training;
} bn_job;

#define X_AT(T, p, i) ((const T *)(p))[i]

/* Batch statistics of channels [c0, c1). */
static void bn_stats(int64_t c0, int64_t c1, void *arg) {
  bn_job *j = arg;
  double m = (double)(j->n * j->s);
  for (int64_t c = c0; c < c1; c++) {
    double sum = 0, sq = 0;
    for (int64_t b = 0; b < j->n; b++) {
      int64_t base = (b * j->c + c) * j->s;
      if (j->dt == MM_FLOAT32)
        for (int64_t i = 0; i < j->s; i++)
          sum += X_AT(float, j->x, base + i);
      else
        for (int64_t i = 0; i < j->s; i++)
          sum += X_AT(double, j->x, base + i);
    }
    double mean = sum / m;
    for (int64_t b = 0; b < j->n; b++) {
      int64_t base = (b * j->c + c) * j->s;
      if (j->dt == MM_FLOAT32)
        for (int64_t i = 0; i < j->s; i++) {
          double d = X_AT(float, j->x, base + i) - mean;
          sq += d * d;
        }
      else
        for (int64_t i = 0; i < j->s; i++) {
          double d = X_AT(double, j->x, base + i) - mean;
          sq += d * d;
        }
    }
    j->mean[c] = mean;
    j->invstd[c] = sq / m; /* the variance for now; batch_norm turns it into invstd */
  }
}

/* y = (x - mean) * invstd * w + b for channels [c0, c1) */
static void bn_apply(int64_t c0, int64_t c1, void *arg) {
  bn_job *j = arg;
  for (int64_t c = c0; c < c1; c++) {
    double scale = j->invstd[c] * j->w[c], shift = j->b[c] - j->mean[c] * scale;
    for (int64_t b = 0; b < j->n; b++) {
      int64_t base = (b * j->c + c) * j->s;
      if (j->dt == MM_FLOAT32) {
        const float *x = (const float *)j->x + base;
        float *y = (float *)j->out + base, sc = (float)scale, sh = (float)shift;
        for (int64_t i = 0; i < j->s; i++)
          y[i] = x[i] * sc + sh;
      } else {
        const double *x = (const double *)j->x + base;
        double *y = (double *)j->out + base;
        for (int64_t i = 0; i < j->s; i++)
          y[i] = x[i] * scale + shift;
      }
    }
  }
}

/* Per channel sums of g and g * (x - mean), then grad x, for channels [c0, c1). */
static void bn_grad(int64_t c0, int64_t c1, void *arg) {
  bn_job *j = arg;
  double m = (double)(j->n * j->s);
  for (int64_t c = c0; c < c1; c++) {
    double mean = j->mean[c], invstd = j->invstd[c], sg = 0, sgx = 0;
    for (int64_t b = 0; b < j->n; b++) {
      int64_t base = (b * j->c + c) * j->s;
      for (int64_t i = 0; i < j->s; i++) {
        double g, x;
        if (j->dt == MM_FLOAT32) {
          g = X_AT(float, j->gout, base + i);
          x = X_AT(float, j->x, base + i);
        } else {
          g = X_AT(double, j->gout, base + i);
          x = X_AT(double, j->x, base + i);
        }
        sg += g;
        sgx += g * (x - mean);
      }
    }
    if (j->gw)
      j->gw[c] = sgx * invstd;
    if (j->gb)
      j->gb[c] = sg;
    if (!j->gx)
      continue;
    /* training: dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat)) */
    double k = j->w[c] * invstd;
    double a = j->training ? sg / m : 0, bcoef = j->training ? sgx / m * invstd * invstd : 0;
    for (int64_t b = 0; b < j->n; b++) {
      int64_t base = (b * j->c + c) * j->s;
      if (j->dt == MM_FLOAT32) {
        const float *g = (const float *)j->gout + base, *x = (const float *)j->x + base;
        float *gx = (float *)j->gx + base;
        for (int64_t i = 0; i < j->s; i++)
          gx[i] = (float)(k * ((double)g[i] - a - ((double)x[i] - mean) * bcoef));
      } else {
        const double *g = (const double *)j->gout + base, *x = (const double *)j->x + base;
        double *gx = (double *)j->gx + base;
        for (int64_t i = 0; i < j->s; i++)
          gx[i] = k * (g[i] - a - (x[i] - mean) * bcoef);
      }
    }
  }
}

static void bn_dims(const mm_tensor *x, int64_t *n, int64_t *c, int64_t *s) {
  *n = x->shape[0];
  *c = x->shape[1];
  *s = 1;
  for (int d = 2; d < x->ndim; d++)
    *s *= x->shape[d];
}

/* A float64 vector of n elements as a new tensor from doubles (NULL on error). */
static mm_tensor *from_doubles(mm_ctx *ctx, mm_dtype dt, const double *v, int64_t n) {
  mm_tensor *t = mm_empty(ctx, dt, 1, &n);
  if (t)
    for (int64_t i = 0; i < n; i++)
      vec_set(t, i, v[i]);
  return t;
}

static int batch_norm_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                               mm_tensor **grad_in) {
  const mm_tensor *x = node->saved[0], *stats = node->saved[1], *w = node->saved[2];
  bn_job j = {0};
  j.dt = x->dtype;
  bn_dims(x, &j.n, &j.c, &j.s);
  j.training = node->i[0] != 0;
  j.mean = mm_data(stats);
  j.invstd = j.mean + j.c;
  mm_tensor *xc = mm_contiguous(ctx, x), *go = mm_contiguous(ctx, grad_out);
  mm_tensor *wv = vec_f64(ctx, w, j.c, 1.0);
  mm_tensor *sums = nn_scratch(ctx, MM_FLOAT64, 2 * j.c);
  mm_tensor *gx = NULL;
  int status = xc && go && wv && sums ? 0 : -1;
  if (status == 0 && node->in[0].needs_grad && !(gx = mm_empty(ctx, x->dtype, x->ndim, x->shape)))
    status = -1;
  if (status == 0) {
    j.x = mm_data(xc);
    j.gout = mm_data(go);
    j.gx = gx ? mm_data(gx) : NULL;
    j.w = mm_data(wv);
    j.gw = mm_data(sums);
    j.gb = j.gw + j.c;
    mm_parallel_for(j.c, grain(j.n * j.s), bn_grad, &j);
    if (node->in[1].needs_grad && !(grad_in[1] = from_doubles(ctx, x->dtype, j.gw, j.c)))
      status = -1;
    if (status == 0 && node->in[2].needs_grad &&
        !(grad_in[2] = from_doubles(ctx, x->dtype, j.gb, j.c)))
      status = -1;
  }
  mm_release(xc);
  mm_release(go);
  mm_release(wv);
  mm_release(sums);
  if (status != 0) {
    mm_release(gx);
    return -1;
  }
  grad_in[0] = gx;
  return 0;
}

mm_tensor *mm_batch_norm(mm_ctx *ctx, const mm_tensor *x, mm_tensor *running_mean,
                         mm_tensor *running_var, const mm_tensor *weight, const mm_tensor *bias,
                         bool training, double momentum, double eps) {
  const char *op = "batch_norm";
  char s[NN_SHAPE_BUF];
  if (nn_check_float(ctx, op, x, "input") != 0)
    return NULL;
  if (x->ndim < 2) {
    mm_fail(ctx, "moonml.%s: expected an input of at least 2 dims (N, C, ...), got %s", op,
            mm_shape_str(s, sizeof s, x->ndim, x->shape));
    return NULL;
  }
  bn_job j = {0};
  j.dt = x->dtype;
  j.training = training;
  bn_dims(x, &j.n, &j.c, &j.s);
  if (nn_check_like(ctx, op, running_mean, x, "running_mean") != 0 ||
      nn_check_like(ctx, op, running_var, x, "running_var") != 0 ||
      nn_check_like(ctx, op, weight, x, "weight") != 0 ||
      nn_check_like(ctx, op, bias, x, "bias") != 0 ||
      nn_check_vector(ctx, op, running_mean, j.c, "running_mean") != 0 ||
      nn_check_vector(ctx, op, running_var, j.c, "running_var") != 0 ||
      nn_check_vector(ctx, op, weight, j.c, "weight") != 0 ||
      nn_check_vector(ctx, op, bias, j.c, "bias") != 0)
    return NULL;
  if (!training && (!running_mean || !running_var)) {
    mm_fail(ctx, "moonml.%s: running_mean and running_var are needed when not training", op);
    return NULL;
  }
  if (training && j.n * j.s <= 1) {
    mm_fail(ctx,
            "moonml.%s: expected more than 1 value per channel when training, got input of "
            "shape %s",
            op, mm_shape_str(s, sizeof s, x->ndim, x->shape));
    return NULL;
  }
  if (!(eps >= 0)) {
    mm_fail(ctx, "moonml.%s: eps must be non-negative, got %g", op, eps);
    return NULL;
  }
  int64_t two_c = 2 * j.c;
  mm_tensor *stats = mm_empty(ctx, MM_FLOAT64, 1, &two_c);
  mm_tensor *xc = stats ? mm_contiguous(ctx, x) : NULL;
  mm_tensor *wv = xc ? vec_f64(ctx, weight, j.c, 1.0) : NULL;
  mm_tensor *bv = wv ? vec_f64(ctx, bias, j.c, 0.0) : NULL;
  mm_tensor *out = bv ? mm_empty(ctx, x->dtype, x->ndim, x->shape) : NULL;
  if (!out) {
    mm_release(stats);
    mm_release(xc);
    mm_release(wv);
    mm_release(bv);
    return NULL;
  }
  j.x = mm_data(xc);
  j.out = mm_data(out);
  j.mean = mm_data(stats);
  j.invstd = j.mean + j.c;
  j.w = mm_data(wv);
  j.b = mm_data(bv);
  if (training) {
    mm_parallel_for(j.c, grain(2 * j.n * j.s), bn_stats, &j);
    double m = (double)(j.n * j.s);
    for (int64_t c = 0; c < j.c; c++) {
      double var = j.invstd[c];
      if (running_mean)
        vec_set(running_mean, c, (1 - momentum) * vec_get(running_mean, c) + momentum * j.mean[c]);
      if (running_var)
        vec_set(running_var, c,
                (1 - momentum) * vec_get(running_var, c) + momentum * var * m / (m - 1));
      j.invstd[c] = 1 / sqrt(var + eps);
    }
    if (running_mean)
      mm_bump_version(running_mean);
    if (running_var)
      mm_bump_version(running_var);
  } else {
    for (int64_t c = 0; c < j.c; c++) {
      j.mean[c] = vec_get(running_mean, c);
      j.invstd[c] = 1 / sqrt(vec_get(running_var, c) + eps);
    }
  }
  mm_parallel_for(j.c, grain(j.n * j.s), bn_apply, &j);
  mm_release(xc);
  mm_release(wv);
  mm_release(bv);
  const mm_tensor *inputs[3] = {x, weight, bias};
  mm_node *node;
  int status = mm_node_begin(ctx, "BatchNormBackward", batch_norm_backward, 3, inputs, &node);
  if (status == 0 && node) {
    status = mm_node_save(ctx, node, x);
    if (status == 0)
      status = mm_node_save(ctx, node, stats);
    if (status == 0 && weight)
      status = mm_node_save(ctx, node, weight);
    if (status == 0) {
      node->i[0] = training;
      mm_node_attach(node, out);
    } else {
      mm_node_release(node);
    }
  }
  mm_release(stats);
  if (status != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

/* ------------------------------------------------------------------ layer_norm */

typedef struct ln_job {
  mm_dtype dt;
  int64_t rows, d;
  const void *x, *gout, *w, *b; /* w, b: x's dtype, d elements, or NULL */
  void *out, *gx;
  double *mean, *rstd;
  double eps;
} ln_job;

#define DEFINE_LN(SUFFIX, T)                                                                       \
  static void ln_fwd_##SUFFIX(int64_t r0, int64_t r1, void *arg) {                                 \
    ln_job *j = arg;                                                                               \
    const T *w = j->w, *b = j->b;                                                                  \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      const T *x = (const T *)j->x + r * j->d;                                                     \
      T *y = (T *)j->out + r * j->d;                                                               \
      double sum = 0, sq = 0;                                                                      \
      for (int64_t i = 0; i < j->d; i++)                                                           \
        sum += x[i];                                                                               \
      double mean = sum / (double)j->d;                                                            \
      for (int64_t i = 0; i < j->d; i++) {                                                         \
        double dv = x[i] - mean;                                                                   \
        sq += dv * dv;                                                                             \
      }                                                                                            \
      double rstd = 1 / sqrt(sq / (double)j->d + j->eps);                                          \
      j->mean[r] = mean;                                                                           \
      j->rstd[r] = rstd;                                                                           \
      T m = (T)mean, rs = (T)rstd;                                                                 \
      for (int64_t i = 0; i < j->d; i++) {                                                         \
        T v = (x[i] - m) * rs;                                                                     \
        if (w)                                                                                     \
          v *= w[i];                                                                               \
        if (b)                                                                                     \
          v += b[i];                                                                               \
        y[i] = v;                                                                                  \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  /* dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), gw = g * w */                           \
  static void ln_bwd_##SUFFIX(int64_t r0, int64_t r1, void *arg) {                                 \
    ln_job *j = arg;                                                                               \
    const T *w = j->w;                                                                             \
    for (int64_t r = r0; r < r1; r++) {                                                            \
      const T *x = (const T *)j->x + r * j->d, *g = (const T *)j->gout + r * j->d;                 \
      T *gx = (T *)j->gx + r * j->d;                                                               \
      double mean = j->mean[r], rstd = j->rstd[r], a = 0, bsum = 0;                                \
      for (int64_t i = 0; i < j->d; i++) {                                                         \
        double gw = w ? (double)g[i] * w[i] : (double)g[i];                                        \
        a += gw;                                                                                   \
        bsum += gw * (x[i] - mean) * rstd;                                                         \
      }                                                                                            \
      a /= (double)j->d;                                                                           \
      bsum /= (double)j->d;                                                                        \
      for (int64_t i = 0; i < j->d; i++) {                                                         \
        double gw = w ? (double)g[i] * w[i] : (double)g[i];                                        \
        gx[i] = (T)(rstd * (gw - a - (x[i] - mean) * rstd * bsum));                                \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  /* sums over rows of g * xhat and of g */                                                        \
  static void ln_param_##SUFFIX(const ln_job *j, double *gw, double *gb) {                         \
    for (int64_t r = 0; r < j->rows; r++) {                                                        \
      const T *x = (const T *)j->x + r * j->d, *g = (const T *)j->gout + r * j->d;                 \
      double mean = j->mean[r], rstd = j->rstd[r];                                                 \
      for (int64_t i = 0; i < j->d; i++) {                                                         \
        gw[i] += (double)g[i] * (x[i] - mean) * rstd;                                              \
        gb[i] += g[i];                                                                             \
      }                                                                                            \
    }                                                                                              \
  }

DEFINE_LN(f32, float)
DEFINE_LN(f64, double)

static int layer_norm_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                               mm_tensor **grad_in) {
  const mm_tensor *x = node->saved[0], *stats = node->saved[1];
  const mm_tensor *w = node->n_saved > 2 ? node->saved[2] : NULL;
  ln_job j = {0};
  j.dt = x->dtype;
  j.d = node->i[0];
  j.rows = j.d ? mm_numel(x) / j.d : 0;
  j.mean = mm_data(stats);
  j.rstd = j.mean + j.rows;
  mm_tensor *xc = mm_contiguous(ctx, x), *go = mm_contiguous(ctx, grad_out), *wc = NULL;
  mm_tensor *gx = NULL, *sums = NULL;
  int status = xc && go ? nn_contig_opt(ctx, w, &wc) : -1;
  if (status == 0 && node->in[0].needs_grad && !(gx = mm_empty(ctx, x->dtype, x->ndim, x->shape)))
    status = -1;
  if (status == 0) {
    j.x = mm_data(xc);
    j.gout = mm_data(go);
    j.w = wc ? mm_data(wc) : NULL;
    if (gx) {
      j.gx = mm_data(gx);
      mm_parallel_for(j.rows, grain(2 * j.d), j.dt == MM_FLOAT32 ? ln_bwd_f32 : ln_bwd_f64, &j);
    }
    if (node->in[1].needs_grad || node->in[2].needs_grad) {
      sums = mm_zeros(ctx, MM_FLOAT64, 1, (int64_t[]){2 * j.d});
      if (!sums)
        status = -1;
    }
  }
  if (status == 0 && sums) {
    double *gw = mm_data(sums), *gb = gw + j.d;
    if (j.dt == MM_FLOAT32)
      ln_param_f32(&j, gw, gb);
    else
      ln_param_f64(&j, gw, gb);
    int nd = (int)node->i[1];
    int64_t shape[MM_MAX_DIMS];
    memcpy(shape, x->shape + x->ndim - nd, (size_t)nd * sizeof *shape);
    for (int k = 1; k <= 2 && status == 0; k++) {
      if (!node->in[k].needs_grad)
        continue;
      mm_tensor *flat = from_doubles(ctx, x->dtype, k == 1 ? gw : gb, j.d);
      grad_in[k] = flat ? mm_reshape(ctx, flat, nd, shape) : NULL;
      mm_release(flat);
      if (!grad_in[k])
        status = -1;
    }
  }
  mm_release(xc);
  mm_release(go);
  mm_release(wc);
  mm_release(sums);
  if (status != 0) {
    mm_release(gx);
    return -1;
  }
  grad_in[0] = gx;
  return 0;
}

mm_tensor *mm_layer_norm(mm_ctx *ctx, const mm_tensor *x, int nnorm,
                         const int64_t *normalized_shape, const mm_tensor *weight,
                         const mm_tensor *bias, double eps) {
  const char *op = "layer_norm";
  char s1[NN_SHAPE_BUF], s2[NN_SHAPE_BUF];
  if (nn_check_float(ctx, op, x, "input") != 0)
    return NULL;
  if (nnorm < 1 || nnorm > x->ndim) {
    mm_fail(ctx,
            "moonml.%s: normalized_shape %s does not match the last dims of input of "
            "shape %s",
            op, mm_shape_str(s1, sizeof s1, nnorm < 0 ? 0 : nnorm, normalized_shape),
            mm_shape_str(s2, sizeof s2, x->ndim, x->shape));
    return NULL;
  }
  int64_t d = 1;
  for (int k = 0; k < nnorm; k++) {
    if (x->shape[x->ndim - nnorm + k] != normalized_shape[k]) {
      mm_fail(ctx,
              "moonml.%s: normalized_shape %s does not match the last dims of input of "
              "shape %s",
              op, mm_shape_str(s1, sizeof s1, nnorm, normalized_shape),
              mm_shape_str(s2, sizeof s2, x->ndim, x->shape));
      return NULL;
    }
    d *= normalized_shape[k];
  }
  const mm_tensor *params[2] = {weight, bias};
  const char *names[2] = {"weight", "bias"};
  for (int k = 0; k < 2; k++) {
    const mm_tensor *p = params[k];
    if (!p)
      continue;
    if (nn_check_like(ctx, op, p, x, names[k]) != 0)
      return NULL;
    bool same = p->ndim == nnorm;
    for (int i = 0; same && i < nnorm; i++)
      same = p->shape[i] == normalized_shape[i];
    if (!same) {
      mm_fail(ctx, "moonml.%s: expected %s of shape %s, got %s", op, names[k],
              mm_shape_str(s1, sizeof s1, nnorm, normalized_shape),
              mm_shape_str(s2, sizeof s2, p->ndim, p->shape));
      return NULL;
    }
  }
  if (!(eps >= 0)) {
    mm_fail(ctx, "moonml.%s: eps must be non-negative, got %g", op, eps);
    return NULL;
  }
  ln_job j = {0};
  j.dt = x->dtype;
  j.d = d;
  j.rows = d ? mm_numel(x) / d : 0;
  j.eps = eps;
  int64_t two_rows = 2 * j.rows;
  mm_tensor *stats = mm_empty(ctx, MM_FLOAT64, 1, &two_rows);
  mm_tensor *xc = stats ? mm_contiguous(ctx, x) : NULL, *wc = NULL, *bc = NULL;
  mm_tensor *out = xc ? mm_empty(ctx, x->dtype, x->ndim, x->shape) : NULL;
  int status = out ? nn_contig_opt(ctx, weight, &wc) : -1;
  if (status == 0)
    status = nn_contig_opt(ctx, bias, &bc);
  if (status == 0) {
    j.x = mm_data(xc);
    j.out = mm_data(out);
    j.w = wc ? mm_data(wc) : NULL;
    j.b = bc ? mm_data(bc) : NULL;
    j.mean = mm_data(stats);
    j.rstd = j.mean + j.rows;
    mm_parallel_for(j.rows, grain(3 * d), j.dt == MM_FLOAT32 ? ln_fwd_f32 : ln_fwd_f64, &j);
  }
  mm_release(xc);
  mm_release(wc);
  mm_release(bc);
  const mm_tensor *inputs[3] = {x, weight, bias};
  mm_node *node = NULL;
  if (status == 0)
    status = mm_node_begin(ctx, "LayerNormBackward", layer_norm_backward, 3, inputs, &node);
  if (status == 0 && node) {
    status = mm_node_save(ctx, node, x);
    if (status == 0)
      status = mm_node_save(ctx, node, stats);
    if (status == 0 && weight)
      status = mm_node_save(ctx, node, weight);
    if (status == 0) {
      node->i[0] = d;
      node->i[1] = nnorm;
      mm_node_attach(node, out);
    } else {
      mm_node_release(node);
    }
  }
  mm_release(stats);
  if (status != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}
