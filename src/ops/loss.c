/* Losses, fused and numerically stable, forward and backward: cross_entropy (from logits,
 * class-index or class-probability targets, class weights, ignore_index, label
 * smoothing), nll_loss, multi_margin_loss, and the element-wise mse_loss, l1_loss,
 * binary_cross_entropy, binary_cross_entropy_with_logits, kl_div and
 * hinge_embedding_loss. Formulas, clamps and the divisors of the "mean" reduction are
 * PyTorch 1.13's. Sums are accumulated in double; results have the input's dtype.
 * Losses are small next to the layers that feed them, so these loops are plain. */
#include "nn_internal.h"

#include <math.h>
#include <string.h>

static inline double ld(const void *p, mm_dtype dt, int64_t i) {
  return dt == MM_FLOAT32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static inline void st(void *p, mm_dtype dt, int64_t i, double v) {
  if (dt == MM_FLOAT32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}

static int check_reduction(mm_ctx *ctx, const char *op, mm_reduction red, bool batchmean_ok) {
  if (red == MM_REDUCTION_NONE || red == MM_REDUCTION_MEAN || red == MM_REDUCTION_SUM ||
      (batchmean_ok && red == MM_REDUCTION_BATCHMEAN))
    return 0;
  return mm_fail(ctx, "moonml.%s: unknown reduction %d", op, (int)red);
}

/* The reduced result: 0-d holding total (sum) or total / den (mean). */
static mm_tensor *scalar_result(mm_ctx *ctx, mm_dtype dt, double v) {
  mm_tensor *r = mm_empty(ctx, dt, 0, NULL);
  if (r)
    st(mm_data(r), dt, 0, v);
  return r;
}

/* d(loss)/d(element) factor for element i of the unreduced loss. */
static inline double reduced_scale(const void *g, mm_dtype dt, mm_reduction red, int64_t i,
                                   double den) {
  if (red == MM_REDUCTION_NONE)
    return ld(g, dt, i);
  double g0 = ld(g, dt, 0);
  return red == MM_REDUCTION_SUM ? g0 : g0 / den;
}

/* ================================================================== element-wise losses */

typedef enum { PW_MSE, PW_L1, PW_BCE, PW_BCE_LOGITS, PW_KL, PW_KL_LOG, PW_HINGE } pw_kind;

static const char *const pw_ops[] = {
    "mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "kl_div",   "kl_div",  "hinge_embedding_loss"};
static const char *const pw_nodes[] = {"MseLossBackward",
                                       "L1LossBackward",
                                       "BinaryCrossEntropyBackward",
                                       "BinaryCrossEntropyWithLogitsBackward",
                                       "KlDivBackward",
                                       "KlDivBackward",
                                       "HingeEmbeddingLossBackward"};

static inline double softplus_neg(double x) { /* log(1 + exp(-x)), stable */
  return log1p(exp(-fabs(x))) + fmax(-x, 0.0);
}

static inline double sign_of(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); }

/* Loss of one element, and (when dx / dt are not NULL) its derivatives by x and target.
 * w: weight, pw: pos_weight (1 when absent), m: margin. */
static double pw_eval(pw_kind k, double x, double t, double w, double pw, double m, double *dx,
                      double *dt) {
  double v = 0, gx = 0, gt = 0;
  switch (k) {
  case PW_MSE:
    v = (x - t) * (x - t);
    gx = 2 * (x - t);
    gt = -gx;
    break;
  case PW_L1:
    v = fabs(x - t);
    gx = sign_of(x - t);
    gt = -gx;
    break;
  case PW_BCE: {
    double lx = fmax(log(x), -100.0), l1x = fmax(log1p(-x), -100.0);
    v = -w * (t * lx + (1 - t) * l1x);
    gx = w * (x - t) / fmax((1 - x) * x, 1e-12);
    gt = w * (l1x - lx);
    break;
  }
  case PW_BCE_LOGITS: {
    double sp = softplus_neg(x), lw = 1 + (pw - 1) * t;
    v = w * ((1 - t) * x + lw * sp);
    double sig_neg = 1 / (1 + exp(x)); /* sigmoid(-x) */
    gx = w * ((1 - t) - lw * sig_neg);
    gt = w * (-x + (pw - 1) * sp);
    break;
  }
  case PW_KL: /* xlogy(t, t) - t * x */
    v = (t == 0 ? 0.0 : t * log(t)) - t * x;
    gx = -t;
    gt = t == 0 ? NAN : log(t) + 1 - x; /* PyTorch's xlogy gradient gives 0/0 at t = 0 */
    break;
  case PW_KL_LOG:
    v = exp(t) * (t - x);
    gx = -exp(t);
    gt = exp(t) * (t - x + 1);
    break;
  case PW_HINGE:
    v = (t != 1 ? fmax(m - x, 0.0) : 0.0) + (t != -1 ? x : 0.0);
    gx = (t != -1 ? 1.0 : 0.0) + (t != 1 && m - x > 0 ? -1.0 : 0.0);
    break;
  }
  if (dx)
    *dx = gx;
  if (dt)
    *dt = gt;
  return v;
}

/* den of the mean / batchmean reductions */
static double pw_den(mm_reduction red, const mm_tensor *x) {
  if (red == MM_REDUCTION_BATCHMEAN)
    return x->ndim > 0 ? (double)x->shape[0] : 1.0;
  return (double)mm_numel(x);
}

static int pw_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out, mm_tensor **grad_in) {
  pw_kind k = (pw_kind)node->i[0];
  mm_reduction red = (mm_reduction)node->i[1];
  const mm_tensor *x = node->saved[0], *t = node->saved[1];
  const mm_tensor *w = node->i[2] ? node->saved[2] : NULL;
  const mm_tensor *pw = node->i[3] ? node->saved[node->i[2] ? 3 : 2] : NULL;
  mm_dtype dt = x->dtype;
  int64_t n = mm_numel(x);
  double den = pw_den(red, x);
  bool want_x = node->in[0].needs_grad, want_t = node->in[1].needs_grad && k != PW_HINGE;
  mm_tensor *xc = mm_contiguous(ctx, x), *tc = xc ? mm_to_dtype(ctx, t, dt) : NULL;
  mm_tensor *tcc = tc ? mm_contiguous(ctx, tc) : NULL;
  mm_tensor *go = tcc ? mm_contiguous(ctx, grad_out) : NULL;
  mm_tensor *gx = NULL, *gt = NULL;
  int status = go ? 0 : -1;
  if (status == 0 && want_x && !(gx = mm_empty(ctx, dt, x->ndim, x->shape)))
    status = -1;
  if (status == 0 && want_t && !(gt = mm_empty(ctx, dt, x->ndim, x->shape)))
    status = -1;
  if (status == 0) {
    const void *xp = mm_data(xc), *tp = mm_data(tcc), *g = mm_data(go);
    const void *wp = w ? mm_data(w) : NULL, *pp = pw ? mm_data(pw) : NULL;
    for (int64_t i = 0; i < n; i++) {
      double dx, dtv, s = reduced_scale(g, dt, red, i, den);
      pw_eval(k, ld(xp, dt, i), ld(tp, dt, i), wp ? ld(wp, dt, i) : 1.0, pp ? ld(pp, dt, i) : 1.0,
              node->f[0], &dx, &dtv);
      if (gx)
        st(mm_data(gx), dt, i, s * dx);
      if (gt)
        st(mm_data(gt), dt, i, s * dtv);
    }
  }
  mm_release(xc);
  mm_release(tc);
  mm_release(tcc);
  mm_release(go);
  if (status != 0) {
    mm_release(gx);
    mm_release(gt);
    return -1;
  }
  grad_in[0] = gx;
  grad_in[1] = gt;
  return 0;
}

static mm_tensor *pointwise_loss(mm_ctx *ctx, pw_kind k, const mm_tensor *x, const mm_tensor *t,
                                 const mm_tensor *weight, const mm_tensor *pos_weight,
                                 double margin, mm_reduction red) {
  const char *op = pw_ops[k];
  char s1[NN_SHAPE_BUF], s2[NN_SHAPE_BUF];
  if (nn_check_float(ctx, op, x, "input") != 0 ||
      check_reduction(ctx, op, red, k == PW_KL || k == PW_KL_LOG) != 0)
    return NULL;
  if (!t) {
    mm_fail(ctx, "moonml.%s: expected a tensor as target, got NULL", op);
    return NULL;
  }
  if (t->dtype != x->dtype && !(k == PW_HINGE && t->dtype == MM_INT64)) {
    mm_fail(ctx, "moonml.%s: expected target to have the input's dtype %s, got %s", op,
            mm_dtype_name(x->dtype), mm_dtype_name(t->dtype));
    return NULL;
  }
  if (!nn_same_shape(x, t)) {
    mm_fail(ctx, "moonml.%s: target of shape %s does not match input of shape %s", op,
            mm_shape_str(s1, sizeof s1, t->ndim, t->shape),
            mm_shape_str(s2, sizeof s2, x->ndim, x->shape));
    return NULL;
  }
  if (nn_check_like(ctx, op, weight, x, "weight") != 0 ||
      nn_check_like(ctx, op, pos_weight, x, "pos_weight") != 0)
    return NULL;
  mm_dtype dt = x->dtype;
  int64_t n = mm_numel(x);
  mm_tensor *xc = NULL, *tc = NULL, *tcc = NULL, *wc = NULL, *pc = NULL, *out = NULL;
  int status = (xc = mm_contiguous(ctx, x)) ? 0 : -1;
  if (status == 0 && !(tc = mm_to_dtype(ctx, t, dt)))
    status = -1;
  if (status == 0 && !(tcc = mm_contiguous(ctx, tc)))
    status = -1;
  if (status == 0)
    status = nn_expand_contig(ctx, op, weight, x->ndim, x->shape, "weight", &wc);
  if (status == 0)
    status = nn_expand_contig(ctx, op, pos_weight, x->ndim, x->shape, "pos_weight", &pc);
  if (status == 0 && k == PW_BCE) {
    const void *xp = mm_data(xc);
    for (int64_t i = 0; i < n && status == 0; i++) {
      double v = ld(xp, dt, i);
      if (!(v >= 0 && v <= 1))
        status = mm_fail(ctx, "moonml.%s: input values must be between 0 and 1, got %g", op, v);
    }
  }
  if (status == 0) {
    out = red == MM_REDUCTION_NONE ? mm_empty(ctx, dt, x->ndim, x->shape) : NULL;
    if (red == MM_REDUCTION_NONE && !out)
      status = -1;
  }
  if (status == 0) {
    const void *xp = mm_data(xc), *tp = mm_data(tcc);
    const void *wp = wc ? mm_data(wc) : NULL, *pp = pc ? mm_data(pc) : NULL;
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
      double v = pw_eval(k, ld(xp, dt, i), ld(tp, dt, i), wp ? ld(wp, dt, i) : 1.0,
                         pp ? ld(pp, dt, i) : 1.0, margin, NULL, NULL);
      if (out)
        st(mm_data(out), dt, i, v);
      else
        total += v;
    }
    if (!out) {
      out = scalar_result(ctx, dt, red == MM_REDUCTION_SUM ? total : total / pw_den(red, x));
      if (!out)
        status = -1;
    }
  }
  mm_release(xc);
  mm_release(tc);
  mm_release(tcc);
  const mm_tensor *inputs[2] = {x, t->dtype == x->dtype ? t : NULL};
  mm_node *node = NULL;
  if (status == 0)
    status = mm_node_begin(ctx, pw_nodes[k], pw_backward, 2, inputs, &node);
  if (status == 0 && node) {
    status = mm_node_save(ctx, node, x);
    if (status == 0)
      status = mm_node_save(ctx, node, t);
    if (status == 0 && wc)
      status = mm_node_save(ctx, node, wc);
    if (status == 0 && pc)
      status = mm_node_save(ctx, node, pc);
    if (status == 0) {
      node->i[0] = k;
      node->i[1] = red;
      node->i[2] = wc != NULL;
      node->i[3] = pc != NULL;
      node->f[0] = margin;
      mm_node_attach(node, out);
    } else {
      mm_node_release(node);
    }
  }
  mm_release(wc);
  mm_release(pc);
  if (status != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

mm_tensor *mm_mse_loss(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target, mm_reduction red) {
  return pointwise_loss(ctx, PW_MSE, x, target, NULL, NULL, 0, red);
}

mm_tensor *mm_l1_loss(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target, mm_reduction red) {
  return pointwise_loss(ctx, PW_L1, x, target, NULL, NULL, 0, red);
}

mm_tensor *mm_binary_cross_entropy(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                                   const mm_tensor *weight, mm_reduction red) {
  return pointwise_loss(ctx, PW_BCE, x, target, weight, NULL, 0, red);
}

mm_tensor *mm_binary_cross_entropy_with_logits(mm_ctx *ctx, const mm_tensor *x,
                                               const mm_tensor *target, const mm_tensor *weight,
                                               const mm_tensor *pos_weight, mm_reduction red) {
  return pointwise_loss(ctx, PW_BCE_LOGITS, x, target, weight, pos_weight, 0, red);
}

mm_tensor *mm_kl_div(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target, mm_reduction red,
                     bool log_target) {
  return pointwise_loss(ctx, log_target ? PW_KL_LOG : PW_KL, x, target, NULL, NULL, 0, red);
}

mm_tensor *mm_hinge_embedding_loss(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                                   double margin, mm_reduction red) {
  return pointwise_loss(ctx, PW_HINGE, x, target, NULL, NULL, margin, red);
}

/* ================================================================== class losses */

/* input (N, C, d...) or (C); positions (n, i) with i over d...; element (n, c, i) is at
 * (n * C + c) * inner + i and the target of (n, i) at n * inner + i. */
typedef struct cls_layout {
  int64_t n, c, inner;
} cls_layout;

static void layout_of(const mm_tensor *x, cls_layout *l) {
  if (x->ndim == 1) {
    l->n = 1;
    l->c = x->shape[0];
    l->inner = 1;
    return;
  }
  l->n = x->shape[0];
  l->c = x->shape[1];
  l->inner = 1;
  for (int d = 2; d < x->ndim; d++)
    l->inner *= x->shape[d];
}

/* Shape of the per-position loss: the input's without the class dim. */
static int positions_shape(const mm_tensor *x, int64_t *shape) {
  if (x->ndim == 1)
    return 0;
  shape[0] = x->shape[0];
  for (int d = 2; d < x->ndim; d++)
    shape[d - 1] = x->shape[d];
  return x->ndim - 1;
}

/* Checks input (float, >= 1-D with max_dims) and an int64 index target of the matching
 * shape; target values in [0, C) unless equal to ignore_index (has_ignore). */
static int check_class_args(mm_ctx *ctx, const char *op, const mm_tensor *x, const mm_tensor *t,
                            const mm_tensor *weight, int max_dims, bool has_ignore,
                            int64_t ignore_index) {
  char s1[NN_SHAPE_BUF], s2[NN_SHAPE_BUF];
  if (nn_check_float(ctx, op, x, "input") != 0)
    return -1;
  if (x->ndim < 1 || x->ndim > max_dims)
    return mm_fail(ctx, "moonml.%s: expected an input of %s dims, got %d-D input of shape %s", op,
                   max_dims == 2 ? "1 or 2" : "at least 1", x->ndim,
                   mm_shape_str(s1, sizeof s1, x->ndim, x->shape));
  if (!t)
    return mm_fail(ctx, "moonml.%s: expected a tensor as target, got NULL", op);
  if (t->dtype != MM_INT64)
    return mm_fail(ctx, "moonml.%s: expected target to be int64 class indices, got %s", op,
                   mm_dtype_name(t->dtype));
  int64_t want[MM_MAX_DIMS];
  int nw = positions_shape(x, want);
  bool same = t->ndim == nw;
  for (int d = 0; same && d < nw; d++)
    same = t->shape[d] == want[d];
  if (!same) {
    if (x->ndim >= 2 && t->ndim >= 1 && t->shape[0] != x->shape[0])
      return mm_fail(ctx, "moonml.%s: input batch size %lld does not match target batch size %lld",
                     op, (long long)x->shape[0], (long long)t->shape[0]);
    return mm_fail(ctx, "moonml.%s: expected target of shape %s for input of shape %s, got %s", op,
                   mm_shape_str(s1, sizeof s1, nw, want),
                   mm_shape_str(s2, sizeof s2, x->ndim, x->shape),
                   mm_shape_str(s1, sizeof s1, t->ndim, t->shape));
  }
  cls_layout l;
  layout_of(x, &l);
  if (nn_check_like(ctx, op, weight, x, "weight") != 0 ||
      nn_check_vector(ctx, op, weight, l.c, "weight") != 0)
    return -1;
  mm_tensor *tc = mm_contiguous(ctx, t);
  if (!tc)
    return -1;
  const int64_t *tp = mm_data(tc);
  int64_t npos = l.n * l.inner;
  int status = 0;
  for (int64_t i = 0; i < npos && status == 0; i++) {
    int64_t v = tp[i];
    if ((v < 0 || v >= l.c) && !(has_ignore && v == ignore_index))
      status = mm_fail(ctx, "moonml.%s: target %lld out of range for %lld classes", op,
                       (long long)v, (long long)l.c);
  }
  mm_release(tc);
  return status;
}

/* Contiguous inputs of a class loss, read as doubles. */
typedef struct cls_data {
  mm_tensor *x, *t, *w; /* contiguous (w may be NULL) */
  mm_dtype dt;
  cls_layout l;
} cls_data;

static int cls_load(mm_ctx *ctx, cls_data *d, const mm_tensor *x, const mm_tensor *t,
                    const mm_tensor *w) {
  memset(d, 0, sizeof *d);
  d->dt = x->dtype;
  layout_of(x, &d->l);
  if (!(d->x = mm_contiguous(ctx, x)) || !(d->t = mm_contiguous(ctx, t)) ||
      nn_contig_opt(ctx, w, &d->w) != 0)
    return -1;
  return 0;
}

static void cls_free(cls_data *d) {
  mm_release(d->x);
  mm_release(d->t);
  mm_release(d->w);
}

static double weight_of(const cls_data *d, int64_t c) {
  return d->w ? ld(mm_data(d->w), d->dt, c) : 1.0;
}

/* Sum of the weights of the kept targets (the "mean" divisor of index-target losses). */
static double kept_weight(const cls_data *d, int64_t ignore_index) {
  const int64_t *tp = mm_data(d->t);
  double total = 0;
  for (int64_t i = 0; i < d->l.n * d->l.inner; i++)
    if (tp[i] != ignore_index)
      total += weight_of(d, tp[i]);
  return total;
}

/* logsumexp over classes at position (n, i): NaN if a logit is NaN, -inf if all are -inf */
static double lse_at(const cls_data *d, int64_t n, int64_t i) {
  const void *xp = mm_data(d->x);
  int64_t base = n * d->l.c * d->l.inner + i, step = d->l.inner, best = 0;
  double m = -INFINITY;
  for (int64_t c = 0; c < d->l.c; c++) {
    double v = ld(xp, d->dt, base + c * step);
    if (isnan(v))
      return v;
    if (v > m) {
      m = v;
      best = c;
    }
  }
  if (isinf(m))
    return m;
  double s = 1; /* the largest term, exp(0) */
  for (int64_t c = 0; c < d->l.c; c++)
    if (c != best)
      s += exp(ld(xp, d->dt, base + c * step) - m);
  return m + log(s);
}

/* Result of a class loss from per-position values (loss[npos], already written). */
static mm_tensor *cls_result(mm_ctx *ctx, const mm_tensor *x, mm_reduction red, const double *loss,
                             int64_t npos, double den) {
  if (red == MM_REDUCTION_NONE) {
    int64_t shape[MM_MAX_DIMS];
    int nd = positions_shape(x, shape);
    mm_tensor *out = mm_empty(ctx, x->dtype, nd, shape);
    if (out)
      for (int64_t i = 0; i < npos; i++)
        st(mm_data(out), x->dtype, i, loss[i]);
    return out;
  }
  double total = 0;
  for (int64_t i = 0; i < npos; i++)
    total += loss[i];
  return scalar_result(ctx, x->dtype, red == MM_REDUCTION_SUM ? total : total / den);
}

/* Records a class loss's node: saves x, target and weight; f[0] label smoothing, f[1]
 * the mean divisor, i[0] ignore_index, i[1] reduction, i[2] probability targets. */
static int cls_record(mm_ctx *ctx, const char *name, mm_backward_fn fn, mm_tensor *out,
                      const mm_tensor *x, const mm_tensor *t, const mm_tensor *w, bool prob,
                      int64_t ignore_index, mm_reduction red, double ls, double den,
                      int64_t extra) {
  const mm_tensor *inputs[2] = {x, prob ? t : NULL};
  mm_node *node;
  if (mm_node_begin(ctx, name, fn, 2, inputs, &node) != 0)
    return -1;
  if (!node)
    return 0;
  if (mm_node_save(ctx, node, x) != 0 || mm_node_save(ctx, node, t) != 0 ||
      (w && mm_node_save(ctx, node, w) != 0)) {
    mm_node_release(node);
    return -1;
  }
  node->f[0] = ls;
  node->f[1] = den;
  node->f[2] = (double)extra;
  node->i[0] = ignore_index;
  node->i[1] = red;
  node->i[2] = prob;
  node->i[3] = w != NULL;
  mm_node_attach(node, out);
  return 0;
}

/* ------------------------------------------------------------------ cross_entropy */

static int cross_entropy_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                                  mm_tensor **grad_in) {
  const mm_tensor *x = node->saved[0], *t = node->saved[1];
  const mm_tensor *w = node->i[3] ? node->saved[2] : NULL;
  double ls = node->f[0], den = node->f[1];
  int64_t ignore = node->i[0];
  mm_reduction red = (mm_reduction)node->i[1];
  bool prob = node->i[2] != 0;
  cls_data d;
  mm_tensor *go = NULL, *gx = NULL, *gt = NULL;
  int status = cls_load(ctx, &d, x, t, w);
  if (status == 0 && !(go = mm_contiguous(ctx, grad_out)))
    status = -1;
  if (status == 0 && node->in[0].needs_grad && !(gx = mm_zeros(ctx, x->dtype, x->ndim, x->shape)))
    status = -1;
  if (status == 0 && prob && node->in[1].needs_grad &&
      !(gt = mm_empty(ctx, x->dtype, x->ndim, x->shape)))
    status = -1;
  if (status == 0) {
    const void *xp = mm_data(d.x), *tp = mm_data(d.t), *g = mm_data(go);
    int64_t C = d.l.c, inner = d.l.inner;
    double wsum = 0;
    for (int64_t c = 0; c < C; c++)
      wsum += weight_of(&d, c);
    for (int64_t n = 0; n < d.l.n; n++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t pos = n * inner + i, base = n * C * inner + i;
        double s = reduced_scale(g, d.dt, red, pos, den), lse = lse_at(&d, n, i);
        if (prob) {
          double tw = 0; /* sum_c w_c t'_c */
          for (int64_t c = 0; c < C; c++)
            tw += weight_of(&d, c) * ((1 - ls) * ld(tp, d.dt, base + c * inner) + ls / (double)C);
          for (int64_t c = 0; c < C; c++) {
            int64_t e = base + c * inner;
            double logp = ld(xp, d.dt, e) - lse, wc = weight_of(&d, c);
            double tc = (1 - ls) * ld(tp, d.dt, e) + ls / (double)C;
            if (gx)
              st(mm_data(gx), d.dt, e, s * (exp(logp) * tw - wc * tc));
            if (gt)
              st(mm_data(gt), d.dt, e, -s * (1 - ls) * wc * logp);
          }
          continue;
        }
        int64_t tgt = ((const int64_t *)tp)[pos];
        if (tgt == ignore || !gx)
          continue;
        double wt = weight_of(&d, tgt);
        for (int64_t c = 0; c < C; c++) {
          int64_t e = base + c * inner;
          double p = exp(ld(xp, d.dt, e) - lse);
          double v =
              (1 - ls) * wt * (p - (c == tgt)) + ls / (double)C * (wsum * p - weight_of(&d, c));
          st(mm_data(gx), d.dt, e, s * v);
        }
      }
  }
  cls_free(&d);
  mm_release(go);
  if (status != 0) {
    mm_release(gx);
    mm_release(gt);
    return -1;
  }
  grad_in[0] = gx;
  grad_in[1] = gt;
  return 0;
}

mm_tensor *mm_cross_entropy(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                            const mm_tensor *weight, int64_t ignore_index, double label_smoothing,
                            mm_reduction red) {
  const char *op = "cross_entropy";
  if (nn_check_float(ctx, op, x, "input") != 0 || check_reduction(ctx, op, red, false) != 0)
    return NULL;
  if (!(label_smoothing >= 0 && label_smoothing <= 1)) {
    mm_fail(ctx, "moonml.%s: label_smoothing must be between 0 and 1, got %g", op, label_smoothing);
    return NULL;
  }
  /* class probabilities: a float target of the input's shape */
  bool prob = target && mm_dtype_is_float(target->dtype) && nn_same_shape(x, target);
  if (prob) {
    char s1[NN_SHAPE_BUF];
    if (nn_check_float(ctx, op, x, "input") != 0 ||
        nn_check_like(ctx, op, target, x, "a probability target") != 0)
      return NULL;
    if (x->ndim < 1) {
      mm_fail(ctx, "moonml.%s: expected an input of at least 1 dim, got shape %s", op,
              mm_shape_str(s1, sizeof s1, x->ndim, x->shape));
      return NULL;
    }
    cls_layout l;
    layout_of(x, &l);
    if (nn_check_like(ctx, op, weight, x, "weight") != 0 ||
        nn_check_vector(ctx, op, weight, l.c, "weight") != 0)
      return NULL;
  } else {
    if (target && target->dtype != MM_INT64 && x->ndim >= 1) {
      char s1[NN_SHAPE_BUF], s2[NN_SHAPE_BUF];
      mm_fail(ctx,
              "moonml.%s: expected target to be int64 class indices or %s class probabilities "
              "of the input's shape %s, got %s target of shape %s",
              op, mm_dtype_name(x->dtype), mm_shape_str(s1, sizeof s1, x->ndim, x->shape),
              mm_dtype_name(target->dtype),
              mm_shape_str(s2, sizeof s2, target->ndim, target->shape));
      return NULL;
    }
    if (check_class_args(ctx, op, x, target, weight, MM_MAX_DIMS, true, ignore_index) != 0)
      return NULL;
  }
  cls_data d;
  mm_tensor *lbuf = NULL, *out = NULL;
  int status = cls_load(ctx, &d, x, target, weight);
  int64_t C = d.l.c, inner = d.l.inner, npos = d.l.n * inner;
  if (status == 0 && !(lbuf = nn_scratch(ctx, MM_FLOAT64, npos)))
    status = -1;
  double den = 0;
  if (status == 0) {
    double *loss = mm_data(lbuf);
    const void *xp = mm_data(d.x), *tp = mm_data(d.t);
    for (int64_t n = 0; n < d.l.n; n++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t pos = n * inner + i, base = n * C * inner + i;
        int64_t tgt = prob ? 0 : ((const int64_t *)tp)[pos];
        if (!prob && tgt == ignore_index) {
          loss[pos] = 0;
          continue;
        }
        double lse = lse_at(&d, n, i), v = 0, smooth = 0;
        for (int64_t c = 0; c < C; c++) {
          int64_t e = base + c * inner;
          double logp = ld(xp, d.dt, e) - lse, wc = weight_of(&d, c);
          if (prob)
            v -=
                wc * ((1 - label_smoothing) * ld(tp, d.dt, e) + label_smoothing / (double)C) * logp;
          else
            smooth -= wc * logp;
        }
        if (!prob) {
          double nll = -weight_of(&d, tgt) * (ld(xp, d.dt, base + tgt * inner) - lse);
          v = (1 - label_smoothing) * nll + label_smoothing / (double)C * smooth;
        }
        loss[pos] = v;
      }
    den = prob ? (double)npos : kept_weight(&d, ignore_index);
    out = cls_result(ctx, x, red, loss, npos, den);
    if (!out)
      status = -1;
  }
  cls_free(&d);
  mm_release(lbuf);
  if (status == 0)
    status = cls_record(ctx, "CrossEntropyBackward", cross_entropy_backward, out, x, target, weight,
                        prob, ignore_index, red, label_smoothing, den, 0);
  if (status != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

/* ------------------------------------------------------------------ nll_loss */

static int nll_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                        mm_tensor **grad_in) {
  const mm_tensor *x = node->saved[0], *t = node->saved[1];
  const mm_tensor *w = node->i[3] ? node->saved[2] : NULL;
  cls_data d;
  mm_tensor *go = NULL, *gx = NULL;
  int status = cls_load(ctx, &d, x, t, w);
  if (status == 0 && !(go = mm_contiguous(ctx, grad_out)))
    status = -1;
  if (status == 0 && !(gx = mm_zeros(ctx, x->dtype, x->ndim, x->shape)))
    status = -1;
  if (status == 0) {
    const int64_t *tp = mm_data(d.t);
    for (int64_t n = 0; n < d.l.n; n++)
      for (int64_t i = 0; i < d.l.inner; i++) {
        int64_t pos = n * d.l.inner + i, tgt = tp[pos];
        if (tgt == node->i[0])
          continue;
        double s = reduced_scale(mm_data(go), d.dt, (mm_reduction)node->i[1], pos, node->f[1]);
        st(mm_data(gx), d.dt, (n * d.l.c + tgt) * d.l.inner + i, -s * weight_of(&d, tgt));
      }
  }
  cls_free(&d);
  mm_release(go);
  if (status != 0) {
    mm_release(gx);
    return -1;
  }
  grad_in[0] = gx;
  return 0;
}

mm_tensor *mm_nll_loss(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                       const mm_tensor *weight, int64_t ignore_index, mm_reduction red) {
  const char *op = "nll_loss";
  if (check_reduction(ctx, op, red, false) != 0 ||
      check_class_args(ctx, op, x, target, weight, MM_MAX_DIMS, true, ignore_index) != 0)
    return NULL;
  cls_data d;
  mm_tensor *lbuf = NULL, *out = NULL;
  int status = cls_load(ctx, &d, x, target, weight);
  int64_t npos = d.l.n * d.l.inner;
  double den = 0;
  if (status == 0 && !(lbuf = nn_scratch(ctx, MM_FLOAT64, npos)))
    status = -1;
  if (status == 0) {
    double *loss = mm_data(lbuf);
    const int64_t *tp = mm_data(d.t);
    for (int64_t n = 0; n < d.l.n; n++)
      for (int64_t i = 0; i < d.l.inner; i++) {
        int64_t pos = n * d.l.inner + i, tgt = tp[pos];
        loss[pos] =
            tgt == ignore_index
                ? 0.0
                : -weight_of(&d, tgt) * ld(mm_data(d.x), d.dt, (n * d.l.c + tgt) * d.l.inner + i);
      }
    den = kept_weight(&d, ignore_index);
    if (!(out = cls_result(ctx, x, red, loss, npos, den)))
      status = -1;
  }
  cls_free(&d);
  mm_release(lbuf);
  if (status == 0)
    status = cls_record(ctx, "NllLossBackward", nll_backward, out, x, target, weight, false,
                        ignore_index, red, 0, den, 0);
  if (status != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

/* ------------------------------------------------------------------ multi_margin_loss */

static int multi_margin_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                                 mm_tensor **grad_in) {
  const mm_tensor *x = node->saved[0], *t = node->saved[1];
  const mm_tensor *w = node->i[3] ? node->saved[2] : NULL;
  double margin = node->f[0];
  int p = (int)node->f[2];
  cls_data d;
  mm_tensor *go = NULL, *gx = NULL;
  int status = cls_load(ctx, &d, x, t, w);
  if (status == 0 && !(go = mm_contiguous(ctx, grad_out)))
    status = -1;
  if (status == 0 && !(gx = mm_zeros(ctx, x->dtype, x->ndim, x->shape)))
    status = -1;
  if (status == 0) {
    const int64_t *tp = mm_data(d.t);
    const void *xp = mm_data(d.x);
    int64_t C = d.l.c;
    for (int64_t n = 0; n < d.l.n; n++) {
      int64_t y = tp[n];
      double s =
          reduced_scale(mm_data(go), d.dt, (mm_reduction)node->i[1], n, node->f[1]) / (double)C;
      double xy = ld(xp, d.dt, n * C + y), wy = weight_of(&d, y), gy = 0;
      for (int64_t c = 0; c < C; c++) {
        if (c == y)
          continue;
        double z = margin - xy + ld(xp, d.dt, n * C + c);
        double h = z > 0 ? (p == 1 ? s : 2 * s * z) * wy : 0;
        st(mm_data(gx), d.dt, n * C + c, h);
        gy -= h;
      }
      st(mm_data(gx), d.dt, n * C + y, gy);
    }
  }
  cls_free(&d);
  mm_release(go);
  if (status != 0) {
    mm_release(gx);
    return -1;
  }
  grad_in[0] = gx;
  return 0;
}

mm_tensor *mm_multi_margin_loss(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target, int p,
                                double margin, const mm_tensor *weight, mm_reduction red) {
  const char *op = "multi_margin_loss";
  if (check_reduction(ctx, op, red, false) != 0)
    return NULL;
  if (p != 1 && p != 2) {
    mm_fail(ctx, "moonml.%s: p must be 1 or 2, got %d", op, p);
    return NULL;
  }
  if (check_class_args(ctx, op, x, target, weight, 2, false, 0) != 0)
    return NULL;
  cls_data d;
  mm_tensor *lbuf = NULL, *out = NULL;
  int status = cls_load(ctx, &d, x, target, weight);
  int64_t npos = d.l.n, C = d.l.c;
  if (status == 0 && C == 0)
    status = mm_fail(ctx, "moonml.%s: expected at least one class", op);
  if (status == 0 && !(lbuf = nn_scratch(ctx, MM_FLOAT64, npos)))
    status = -1;
  if (status == 0) {
    double *loss = mm_data(lbuf);
    const int64_t *tp = mm_data(d.t);
    const void *xp = mm_data(d.x);
    for (int64_t n = 0; n < npos; n++) {
      int64_t y = tp[n];
      double xy = ld(xp, d.dt, n * C + y), wy = weight_of(&d, y), sum = 0;
      for (int64_t c = 0; c < C; c++) {
        if (c == y)
          continue;
        double z = margin - xy + ld(xp, d.dt, n * C + c);
        if (z > 0)
          sum += (p == 1 ? z : z * z) * wy;
      }
      loss[n] = sum / (double)C;
    }
    if (!(out = cls_result(ctx, x, red, loss, npos, (double)npos)))
      status = -1;
  }
  cls_free(&d);
  mm_release(lbuf);
  if (status == 0)
    status = cls_record(ctx, "MultiMarginLossBackward", multi_margin_backward, out, x, target,
                        weight, false, 0, red, margin, (double)npos, p);
  if (status != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}
