/* Sampling from the context's generator: randperm, multinomial, bernoulli, and the in-place
 * fills uniform_, normal_, bernoulli_. Draws are taken one element at a time in row-major order
 * on the calling thread, so that a seed fixes every value whatever the thread count. */
#include "../autograd/autograd.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* uniform on [0, range) without modulo bias (range > 0) */
static uint64_t random_below(mm_ctx *ctx, uint64_t range) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t r = mm_random_u64(ctx);
  while (r >= limit)
    r = mm_random_u64(ctx);
  return r % range;
}

static void store(void *data, mm_dtype dt, int64_t i, double v) {
  switch (dt) {
  case MM_FLOAT32:
    ((float *)data)[i] = (float)v;
    break;
  case MM_FLOAT64:
    ((double *)data)[i] = v;
    break;
  case MM_INT64:
    ((int64_t *)data)[i] = (int64_t)v;
    break;
  default:
    ((uint8_t *)data)[i] = v != 0;
    break;
  }
}

/* A contiguous float64 copy (or t itself when it already is one). */
static mm_tensor *dense_f64(mm_ctx *ctx, const mm_tensor *t) {
  return t->dtype == MM_FLOAT64 ? mm_contiguous(ctx, t) : mm_to_dtype(ctx, t, MM_FLOAT64);
}

mm_tensor *mm_randperm(mm_ctx *ctx, int64_t n) {
  if (n < 0) {
    mm_fail(ctx, "moonml.randperm: n must be non-negative, got %lld", (long long)n);
    return NULL;
  }
  mm_tensor *t = mm_empty(ctx, MM_INT64, 1, &n);
  if (!t)
    return NULL;
  int64_t *p = mm_data(t);
  for (int64_t i = 0; i < n; i++)
    p[i] = i;
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
    int64_t j = (int64_t)random_below(ctx, (uint64_t)i + 1);
    int64_t tmp = p[i];
    p[i] = p[j];
    p[j] = tmp;
  }
  return t;
}

/* ------------------------------------------------------------------ multinomial */

typedef struct {
  double key;
  int64_t index;
} keyed;

static int by_key(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Checks every row before drawing anything: finite weights >= 0, a positive sum, and enough
 * non-zero weights to draw k distinct ones without replacement. */
static int check_rows(mm_ctx *ctx, const double *w, int64_t rows, int64_t n, int64_t k,
                      bool replacement) {
  for (int64_t r = 0; r < rows; r++) {
    const double *row = w + r * n;
    double sum = 0;
    int64_t nonzero = 0;
    for (int64_t i = 0; i < n; i++) {
      if (!isfinite(row[i]) || row[i] < 0)
        return mm_fail(ctx,
                       "moonml.multinomial: probabilities must be finite and non-negative, "
                       "row %lld has %g",
                       (long long)r + 1, row[i]);
      sum += row[i];
      nonzero += row[i] > 0;
    }
    if (!(sum > 0))
      return mm_fail(ctx, "moonml.multinomial: the probabilities of row %lld sum to 0",
                     (long long)r + 1);
    if (!replacement && nonzero < k)
      return mm_fail(ctx,
                     "moonml.multinomial: cannot draw %lld samples without replacement from row "
                     "%lld, which has %lld non-zero probabilities",
                     (long long)k, (long long)r + 1, (long long)nonzero);
  }
  return 0;
}

/* With replacement: inverse of the row's cumulative sums by binary search. */
static void draw_with_replacement(mm_ctx *ctx, const double *row, int64_t n, int64_t k, double *cdf,
                                  int64_t *out) {
  double acc = 0;
  int64_t last = 0; /* the last category with a non-zero weight */
  for (int64_t i = 0; i < n; i++) {
    acc += row[i];
    cdf[i] = acc;
    if (row[i] > 0)
      last = i;
  }
  for (int64_t s = 0; s < k; s++) {
    double u = mm_random_uniform(ctx) * acc;
    int64_t lo = 0, hi = n; /* first i with cdf[i] > u: never a zero-weight category */
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (cdf[mid] > u)
        hi = mid;
      else
        lo = mid + 1;
    }
    out[s] = lo < n ? lo : last; /* u rounded up to the total */
  }
}

/* Without replacement (Efraimidis-Spirakis): category i gets the key E_i / w_i with E_i
 * exponential; the k smallest keys, in increasing order, are distributed as k draws one after
 * another, each from the weights left. */
static void draw_without_replacement(mm_ctx *ctx, const double *row, int64_t n, int64_t k,
                                     keyed *keys, int64_t *out) {
  for (int64_t i = 0; i < n; i++) {
    double e = -log(1.0 - mm_random_uniform(ctx)); /* 1 - u is in (0, 1] */
    keys[i].key = row[i] > 0 ? e / row[i] : INFINITY;
    keys[i].index = i;
  }
  qsort(keys, (size_t)n, sizeof *keys, by_key);
  for (int64_t s = 0; s < k; s++)
    out[s] = keys[s].index;
}

mm_tensor *mm_multinomial(mm_ctx *ctx, const mm_tensor *probs, int64_t num_samples,
                          bool replacement) {
  if (!mm_dtype_is_float(probs->dtype)) {
    mm_fail(ctx, "moonml.multinomial: probabilities must be a float tensor, got %s",
            mm_dtype_name(probs->dtype));
    return NULL;
  }
  if (probs->ndim != 1 && probs->ndim != 2) {
    mm_fail(ctx, "moonml.multinomial: probabilities must be 1-D or 2-D, got %d-D", probs->ndim);
    return NULL;
  }
  int64_t n = probs->shape[probs->ndim - 1];
  int64_t rows = probs->ndim == 2 ? probs->shape[0] : 1;
  if (num_samples <= 0) {
    mm_fail(ctx, "moonml.multinomial: num_samples must be positive, got %lld",
            (long long)num_samples);
    return NULL;
  }
  if (n == 0) {
    mm_fail(ctx, "moonml.multinomial: there are no categories to draw from");
    return NULL;
  }
  if (!replacement && num_samples > n) {
    mm_fail(ctx,
            "moonml.multinomial: cannot draw %lld samples without replacement from %lld "
            "categories",
            (long long)num_samples, (long long)n);
    return NULL;
  }
  int64_t shape[2] = {rows, num_samples};
  int nd = probs->ndim;
  mm_tensor *out = mm_empty(ctx, MM_INT64, nd, nd == 2 ? shape : shape + 1);
  mm_tensor *w = out ? dense_f64(ctx, probs) : NULL;
  void *scratch = w ? malloc((size_t)n * (replacement ? sizeof(double) : sizeof(keyed))) : NULL;
  if (w && !scratch)
    mm_fail(ctx, "moonml.multinomial: out of memory");
  if (!scratch || check_rows(ctx, mm_data(w), rows, n, num_samples, replacement) != 0) {
    free(scratch);
    mm_release(w);
    mm_release(out);
    return NULL;
  }
  const double *wd = mm_data(w);
  int64_t *od = mm_data(out);
  for (int64_t r = 0; r < rows; r++) {
    if (replacement)
      draw_with_replacement(ctx, wd + r * n, n, num_samples, scratch, od + r * num_samples);
    else
      draw_without_replacement(ctx, wd + r * n, n, num_samples, scratch, od + r * num_samples);
  }
  free(scratch);
  mm_release(w);
  return out;
}

/* ------------------------------------------------------------------ bernoulli */

static int check_probabilities(mm_ctx *ctx, const char *name, const mm_tensor *p64) {
  const double *p = mm_data(p64);
  int64_t n = mm_numel(p64);
  for (int64_t i = 0; i < n; i++)
    if (!(p[i] >= 0 && p[i] <= 1))
      return mm_fail(ctx, "moonml.%s: probabilities must be in [0, 1], got %g", name, p[i]);
  return 0;
}

mm_tensor *mm_bernoulli(mm_ctx *ctx, const mm_tensor *p) {
  if (!mm_dtype_is_float(p->dtype)) {
    mm_fail(ctx, "moonml.bernoulli: probabilities must be a float tensor, got %s",
            mm_dtype_name(p->dtype));
    return NULL;
  }
  mm_tensor *p64 = dense_f64(ctx, p);
  if (!p64 || check_probabilities(ctx, "bernoulli", p64) != 0) {
    mm_release(p64);
    return NULL;
  }
  mm_tensor *out = mm_empty(ctx, p->dtype, p->ndim, p->shape);
  if (out) {
    const double *pd = mm_data(p64);
    void *od = mm_data(out);
    int64_t n = mm_numel(out);
    for (int64_t i = 0; i < n; i++)
      store(od, p->dtype, i, mm_random_uniform(ctx) < pd[i]);
  }
  mm_release(p64);
  return out;
}

/* ------------------------------------------------------------------ in-place fills */

/* A fill cuts the tensor's values off from what they were computed from: the gradient through
 * them is 0 (PyTorch's rule for uniform_, normal_, bernoulli_). */
static int zero_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  grad_in[0] = mm_zeros(ctx, node->in[0].dtype, g->ndim, g->shape);
  return grad_in[0] ? 0 : -1;
}

typedef enum { FILL_UNIFORM, FILL_NORMAL, FILL_BERNOULLI } fill_kind;

typedef struct {
  fill_kind kind;
  double a, b;       /* from, to / mean, std / p */
  const double *p;   /* bernoulli with a tensor: p per element (row-major), else NULL */
  bool float32_bits; /* uniform float32: 24 random bits, as mm_rand */
  bool has_spare;    /* normal: the second value of the last Box-Muller pair */
  double spare;
} fill_spec;

static double draw(mm_ctx *ctx, fill_spec *f, int64_t i) {
  switch (f->kind) {
  case FILL_UNIFORM: {
    double u =
        f->float32_bits ? (double)(mm_random_u64(ctx) >> 40) * 0x1.0p-24 : mm_random_uniform(ctx);
    double v = f->a + (f->b - f->a) * u;
    if (f->float32_bits && (float)v >= (float)f->b && f->a < f->b)
      v = nextafterf((float)f->b, -INFINITY); /* rounding must not reach `to` */
    else if (v >= f->b && f->a < f->b)
      v = nextafter(f->b, -INFINITY);
    return v;
  }
  case FILL_NORMAL: {
    if (f->has_spare) {
      f->has_spare = false;
      return f->a + f->b * f->spare;
    }
    /* Box-Muller, both values of the pair used */
    double r = sqrt(-2.0 * log(1.0 - mm_random_uniform(ctx))); /* 1 - u in (0, 1] */
    double t = 6.283185307179586 * mm_random_uniform(ctx);
    f->spare = r * sin(t);
    f->has_spare = true;
    return f->a + f->b * (r * cos(t));
  }
  default:
    return mm_random_uniform(ctx) < (f->p ? f->p[i] : f->a);
  }
}

static int fill_exec(mm_ctx *ctx, const char *name, const char *node_name, mm_tensor *t,
                     fill_spec *f) {
  for (int d = 0; d < t->ndim; d++)
    if (t->stride[d] == 0 && t->shape[d] > 1)
      return mm_fail(ctx,
                     "moonml.%s: cannot write in place into an expanded tensor (several "
                     "elements share memory); clone it first",
                     name);
  mm_node *node = NULL;
  if (mm_grad_enabled(ctx) && t->requires_grad) {
    if (!t->grad_fn)
      return mm_fail(ctx,
                     "moonml.%s: a leaf tensor that requires grad cannot be changed in place; "
                     "use ml.no_grad or clone it first",
                     name);
    if (mm_node_begin(ctx, node_name, zero_backward, 1, (const mm_tensor *const[]){t}, &node) != 0)
      return -1;
  }
  /* draws in row-major order into t, or into a dense buffer copied into a strided t */
  mm_tensor *buf = mm_is_contiguous(t) ? NULL : mm_empty(ctx, t->dtype, t->ndim, t->shape);
  if (!mm_is_contiguous(t) && !buf) {
    mm_node_release(node);
    return -1;
  }
  void *data = mm_data(buf ? buf : t);
  int64_t n = mm_numel(t);
  for (int64_t i = 0; i < n; i++)
    store(data, t->dtype, i, draw(ctx, f, i));
  int rc = buf ? mm_copy_(ctx, t, buf) : 0;
  mm_release(buf);
  if (rc != 0) {
    mm_node_release(node);
    return -1;
  }
  mm_bump_version(t);
  if (node)
    mm_node_attach(node, t);
  return 0;
}

int mm_uniform_(mm_ctx *ctx, mm_tensor *t, double from, double to) {
  if (!mm_dtype_is_float(t->dtype))
    return mm_fail(ctx, "moonml.uniform_: only float tensors can be filled, got %s",
                   mm_dtype_name(t->dtype));
  if (!isfinite(from) || !isfinite(to))
    return mm_fail(ctx, "moonml.uniform_: from and to must be finite, got %g and %g", from, to);
  if (from > to)
    return mm_fail(ctx, "moonml.uniform_: expects from <= to, got from = %g > to = %g", from, to);
  if (!isfinite(to - from) ||
      (t->dtype == MM_FLOAT32 && (fabs(from) > FLT_MAX || fabs(to) > FLT_MAX)))
    return mm_fail(ctx, "moonml.uniform_: the range [%g, %g) is too wide for %s", from, to,
                   mm_dtype_name(t->dtype));
  fill_spec f = {FILL_UNIFORM, from, to, NULL, t->dtype == MM_FLOAT32, false, 0};
  return fill_exec(ctx, "uniform_", "UniformBackward", t, &f);
}

int mm_normal_(mm_ctx *ctx, mm_tensor *t, double mean, double std) {
  if (!mm_dtype_is_float(t->dtype))
    return mm_fail(ctx, "moonml.normal_: only float tensors can be filled, got %s",
                   mm_dtype_name(t->dtype));
  if (!(std >= 0))
    return mm_fail(ctx, "moonml.normal_: std must be >= 0, got %g", std);
  fill_spec f = {FILL_NORMAL, mean, std, NULL, false, false, 0};
  return fill_exec(ctx, "normal_", "NormalBackward", t, &f);
}

int mm_bernoulli_(mm_ctx *ctx, mm_tensor *t, const mm_tensor *pt, double p) {
  fill_spec f = {FILL_BERNOULLI, p, 0, NULL, false, false, 0};
  if (!pt) {
    if (!(p >= 0 && p <= 1))
      return mm_fail(ctx, "moonml.bernoulli_: p must be in [0, 1], got %g", p);
    return fill_exec(ctx, "bernoulli_", "BernoulliBackward", t, &f);
  }
  if (!mm_dtype_is_float(pt->dtype))
    return mm_fail(ctx, "moonml.bernoulli_: probabilities must be a float tensor, got %s",
                   mm_dtype_name(pt->dtype));
  int nd;
  int64_t shape[MM_MAX_DIMS];
  if (mm_broadcast_shape(ctx, "bernoulli_", t->ndim, t->shape, pt->ndim, pt->shape, &nd, shape) !=
      0)
    return -1;
  if (nd != t->ndim || memcmp(shape, t->shape, sizeof(int64_t) * (size_t)nd) != 0) {
    char a[128], b[128];
    return mm_fail(ctx, "moonml.bernoulli_: probabilities of shape %s do not fit the shape %s",
                   mm_shape_str(a, sizeof a, pt->ndim, pt->shape),
                   mm_shape_str(b, sizeof b, t->ndim, t->shape));
  }
  mm_tensor *e = mm_expand(ctx, pt, t->ndim, t->shape);
  mm_tensor *p64 = e ? dense_f64(ctx, e) : NULL;
  mm_release(e);
  int rc = -1;
  if (p64 && check_probabilities(ctx, "bernoulli_", p64) == 0) {
    f.p = mm_data(p64);
    rc = fill_exec(ctx, "bernoulli_", "BernoulliBackward", t, &f);
  }
  mm_release(p64);
  return rc;
}
