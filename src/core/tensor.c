/* Tensor headers, creation, element access and copies. Views live in view.c. */
#include "internal.h"

#include "../autograd/autograd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ headers */

void mm_retain(mm_tensor *t) { t->refcount++; }

void mm_release(mm_tensor *t) {
  if (!t || --t->refcount > 0)
    return;
  if (t->grad)
    mm_release(t->grad);
  if (t->grad_fn)
    mm_node_release(t->grad_fn);
  if (t->view_fn)
    mm_node_release(t->view_fn);
  if (t->base)
    mm_release(t->base);
  /* the storage keeps the context alive until the header is back on its free list */
  mm_storage *s = t->storage;
  mm_header_free(s->ctx, t);
  mm_storage_release(s);
}

int64_t mm_numel(const mm_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++)
    n *= t->shape[d];
  return n;
}

bool mm_is_contiguous(const mm_tensor *t) {
  int64_t expected = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] == 0)
      return true;
    if (t->shape[d] != 1 && t->stride[d] != expected)
      return false;
    expected *= t->shape[d];
  }
  return true;
}

void *mm_data(const mm_tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)mm_elsize(t->dtype);
}

int64_t mm_storage_numel(const mm_tensor *t) {
  return (int64_t)(t->storage->nbytes / mm_dtype_size(t->dtype));
}

bool mm_same_storage(const mm_tensor *a, const mm_tensor *b) { return a->storage == b->storage; }

int mm_wrap_dim(mm_ctx *ctx, const char *op, int64_t dim, int ndim) {
  int n = ndim > 0 ? ndim : 1; /* a 0-d tensor accepts dim 0 and -1, as in PyTorch */
  if (dim < -n || dim >= n)
    return mm_fail(ctx, "moonml.%s: dimension %lld out of range for a %d-D tensor", op,
                   (long long)(dim + 1), ndim);
  return (int)(dim < 0 ? dim + n : dim);
}

void mm_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d] > 1 ? shape[d] : 1;
  }
}

const char *mm_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < ndim && used < n; d++)
    used += (size_t)snprintf(buf + used, n - used, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (used < n)
    snprintf(buf + used, n - used, "]");
  return buf;
}

int64_t mm_shape_numel(mm_ctx *ctx, const char *op, int ndim, const int64_t *shape, mm_dtype dt) {
  if (ndim < 0 || ndim > MM_MAX_DIMS)
    return mm_fail(ctx, "moonml.%s: %d dimensions given, at most %d supported", op, ndim,
                   MM_MAX_DIMS);
  /* The product of the nonzero sizes must fit in bytes even next to a 0 (an empty tensor of
   * shape [0, 2^31, 2^31, 2^31] would overflow its strides). Bytes in a double: exact below
   * 2^53, and the loop stops at 2^46, so no division on this hot path and n never
   * overflows. */
  double bytes = (double)mm_elsize(dt);
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return mm_fail(ctx, "moonml.%s: negative size %lld in dimension %d", op, (long long)shape[d],
                     d + 1);
    if (shape[d] > 0) {
      bytes *= (double)shape[d];
      if (bytes > (double)MM_MAX_BYTES)
        return mm_fail(ctx, "moonml.%s: size too large to allocate", op);
    }
    n *= shape[d]; /* after the check: |n| stays below 2^46 */
  }
  return n;
}

mm_tensor *mm_tensor_wrap(mm_storage *s, mm_dtype dt, int ndim, const int64_t *shape) {
  mm_tensor *t = mm_header_new(s->ctx);
  if (!t)
    return NULL;
  t->refcount = 1;
  t->dtype = dt;
  t->ndim = ndim;
  int64_t stride = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    t->shape[d] = shape[d];
    t->stride[d] = stride;
    stride *= shape[d] > 1 ? shape[d] : 1;
  }
  t->offset = 0;
  t->storage = s;
  t->requires_grad = false;
  t->grad = NULL;
  t->grad_fn = NULL;
  t->base = NULL;
  t->view_fn = NULL;
  s->refcount++;
  return t;
}

mm_tensor *mm_tensor_view_of(mm_ctx *ctx, const mm_tensor *t) {
  mm_tensor *v = mm_header_new(ctx);
  if (!v)
    return NULL;
  *v = *t;
  v->refcount = 1;
  v->requires_grad = false; /* a view joins the graph only through its op's node */
  v->grad = NULL;
  v->grad_fn = NULL;
  v->base = NULL; /* view ops set it (mm_view_track); detached and saved tensors have none */
  v->view_fn = NULL;
  v->storage->refcount++;
  return v;
}

static int identity_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                             mm_tensor **grad_in) {
  (void)ctx;
  (void)node;
  mm_retain((mm_tensor *)grad);
  grad_in[0] = (mm_tensor *)grad;
  return 0;
}

/* out (a new tensor computed from t) gets a one-input node; NULL and out released on error */
static mm_tensor *record1(mm_ctx *ctx, const mm_tensor *t, mm_tensor *out, const char *name,
                          mm_backward_fn fn) {
  mm_node *node;
  if (out && mm_node_begin(ctx, name, fn, 1, &t, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (out && node)
    mm_node_attach(node, out);
  return out;
}

mm_tensor *mm_alias(mm_ctx *ctx, const mm_tensor *t) {
  mm_tensor *v = mm_tensor_view_of(ctx, t);
  if (v)
    mm_view_track(v, t);
  return record1(ctx, t, v, "AliasBackward", identity_backward);
}

/* ------------------------------------------------------------------ creation */

mm_tensor *mm_new_tensor(mm_ctx *ctx, const char *op, mm_dtype dt, int ndim, const int64_t *shape) {
  int64_t n = mm_shape_numel(ctx, op, ndim, shape, dt);
  if (n < 0)
    return NULL;
  mm_storage *s = mm_storage_new(ctx, (size_t)n * mm_elsize(dt), op);
  if (!s)
    return NULL;
  mm_tensor *t = mm_tensor_wrap(s, dt, ndim, shape);
  mm_storage_release(s);
  return t;
}

mm_tensor *mm_empty(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape) {
  return mm_new_tensor(ctx, "empty", dt, ndim, shape);
}

mm_tensor *mm_zeros(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape) {
  mm_tensor *t = mm_new_tensor(ctx, "zeros", dt, ndim, shape);
  if (t)
    memset(mm_data(t), 0, (size_t)mm_numel(t) * mm_dtype_size(dt));
  return t;
}

mm_tensor *mm_full(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape, double value) {
  mm_tensor *t = mm_new_tensor(ctx, "full", dt, ndim, shape);
  if (t)
    mm_fill_(ctx, t, value);
  return t;
}

#define TWO_POW_63 9223372036854775808.0

/* Truncates toward zero like a C cast, but defined for every input: NaN and values
 * outside int64's range give INT64_MIN, which is what PyTorch produces on x86. */
static int64_t double_to_int64(double v) {
  if (v >= -TWO_POW_63 && v < TWO_POW_63)
    return (int64_t)v;
  return INT64_MIN;
}

/* Writes v into element i of a contiguous buffer of dtype dt. */
static void store(void *data, mm_dtype dt, int64_t i, double v) {
  switch (dt) {
  case MM_FLOAT32:
    ((float *)data)[i] = (float)v;
    break;
  case MM_FLOAT64:
    ((double *)data)[i] = v;
    break;
  case MM_INT64:
    ((int64_t *)data)[i] = double_to_int64(v);
    break;
  case MM_BOOL:
    ((uint8_t *)data)[i] = v != 0;
    break;
  default:
    break;
  }
}

/* PyTorch's CPU range kernels (arange, linspace; 1.13, AVX2 and default builds) write
 * two vectors of V = 32 bytes / element size per round, each as base + k * step, and
 * the remainder one element at a time; the compiler fuses `start + step * i` into an
 * fma there. moonml repeats that arithmetic so that the values agree bit for bit with
 * PyTorch's (beyond its parallel grain of 32768 elements PyTorch splits the range over
 * its threads, and its values then depend on the thread count). */
#define RANGE_LANES(dt) ((int64_t)(32 / mm_dtype_size(dt)))

/* arange: PyTorch accumulates float32 ranges in double. */
static void fill_arange(void *data, mm_dtype dt, double start, double step, int64_t n) {
  const int64_t v = RANGE_LANES(dt);
  int64_t i = 0;
  if (dt == MM_FLOAT64) {
    double *p = data;
    for (; i + 2 * v <= n; i += 2 * v)
      for (int64_t g = i; g < i + 2 * v; g += v) {
        double base = fma(step, (double)g, start);
        for (int64_t k = 0; k < v; k++)
          p[g + k] = fma((double)k, step, base);
      }
    for (; i < n; i++)
      p[i] = fma(step, (double)i, start);
  } else if (dt == MM_FLOAT32) {
    float *p = data;
    for (; i + 2 * v <= n; i += 2 * v)
      for (int64_t g = i; g < i + 2 * v; g += v) {
        float base = (float)fma(step, (double)g, start);
        for (int64_t k = 0; k < v; k++)
          p[g + k] = (float)fma((double)k, step, (double)base);
      }
    for (; i < n; i++)
      p[i] = (float)fma(step, (double)i, start);
  } else { /* int64: exact integer steps when start and step are whole numbers */
    int64_t *p = data;
    bool whole = start == floor(start) && step == floor(step);
    for (; i < n; i++)
      p[i] = whole ? (int64_t)start + i * (int64_t)step : double_to_int64(start + step * (double)i);
  }
}

mm_tensor *mm_arange(mm_ctx *ctx, mm_dtype dt, double start, double end, double step) {
  if (!isfinite(start) || !isfinite(end) || !isfinite(step)) {
    mm_fail(ctx, "moonml.arange: start, end and step must be finite");
    return NULL;
  }
  if (step == 0) {
    mm_fail(ctx, "moonml.arange: step must not be zero");
    return NULL;
  }
  if (dt == MM_BOOL) {
    mm_fail(ctx, "moonml.arange: dtype bool is not supported");
    return NULL;
  }
  /* inclusive like Lua's numeric for: the small slack keeps 0, 0.1, ..., 1 at 11 */
  double span = (end - start) / step;
  if (span > 1e15) {
    mm_fail(ctx, "moonml.arange: size too large to allocate");
    return NULL;
  }
  int64_t n = span < 0 ? 0 : (int64_t)floor(span + 1e-9) + 1;
  if (dt == MM_INT64 && n > 0) {
    /* the margin covers the rounding of `last`, so the exact values fit too */
    double last = start + step * (double)(n - 1), limit = TWO_POW_63 - 4096;
    if (!(fabs(start) <= limit && fabs(last) <= limit)) {
      mm_fail(ctx, "moonml.arange: values from %g to %g do not fit in int64", start, last);
      return NULL;
    }
  }
  mm_tensor *t = mm_new_tensor(ctx, "arange", dt, 1, &n);
  if (t)
    fill_arange(mm_data(t), dt, start, step, n);
  return t;
}

/* linspace: PyTorch computes in the tensor's own type, from both ends towards the middle. */
static void fill_linspace(void *data, mm_dtype dt, double start, double end, int64_t n) {
  const int64_t v = RANGE_LANES(dt), half = n / 2;
  int64_t i = 0;
  if (dt == MM_FLOAT32) {
    float *p = data, s = (float)start, e = (float)end, step = (e - s) / (float)(n - 1);
#define LIN_F32(j) ((j) < half ? fmaf(step, (float)(j), s) : fmaf(-step, (float)(n - (j)-1), e))
    for (; i + 2 * v <= n; i += 2 * v)
      for (int64_t g = i; g < i + 2 * v; g += v) {
        float base = LIN_F32(g);
        for (int64_t k = 0; k < v; k++)
          p[g + k] = base + (float)k * step;
      }
    for (; i < n; i++)
      p[i] = LIN_F32(i);
#undef LIN_F32
  } else if (dt == MM_FLOAT64) {
    double *p = data, s = start, e = end, step = (e - s) / (double)(n - 1);
#define LIN_F64(j) ((j) < half ? fma(step, (double)(j), s) : fma(-step, (double)(n - (j)-1), e))
    for (; i + 2 * v <= n; i += 2 * v)
      for (int64_t g = i; g < i + 2 * v; g += v) {
        double base = LIN_F64(g);
        for (int64_t k = 0; k < v; k++)
          p[g + k] = base + (double)k * step;
      }
    for (; i < n; i++)
      p[i] = LIN_F64(i);
#undef LIN_F64
  } else { /* int64: ends truncated first, the step kept in double */
    int64_t *p = data, s = double_to_int64(start), e = double_to_int64(end);
    double step = ((double)e - (double)s) / (double)(n - 1);
#define LIN_I64(j)                                                                                 \
  double_to_int64((j) < half ? fma(step, (double)(j), (double)s)                                   \
                             : fma(-step, (double)(n - (j)-1), (double)e))
    for (; i + 2 * v <= n; i += 2 * v)
      for (int64_t g = i; g < i + 2 * v; g += v) {
        int64_t base = LIN_I64(g);
        for (int64_t k = 0; k < v; k++)
          p[g + k] = double_to_int64((double)base + (double)k * step);
      }
    for (; i < n; i++)
      p[i] = LIN_I64(i);
#undef LIN_I64
  }
}

mm_tensor *mm_linspace(mm_ctx *ctx, mm_dtype dt, double start, double end, int64_t steps) {
  if (steps < 0) {
    mm_fail(ctx, "moonml.linspace: number of steps must be non-negative, got %lld",
            (long long)steps);
    return NULL;
  }
  if (dt == MM_BOOL) {
    mm_fail(ctx, "moonml.linspace: dtype bool is not supported");
    return NULL;
  }
  mm_tensor *t = mm_new_tensor(ctx, "linspace", dt, 1, &steps);
  if (!t)
    return NULL;
  if (steps == 1)
    store(mm_data(t), dt, 0, start);
  else if (steps > 1)
    fill_linspace(mm_data(t), dt, start, end, steps);
  return t;
}

mm_tensor *mm_eye(mm_ctx *ctx, mm_dtype dt, int64_t n, int64_t m) {
  int64_t shape[2] = {n, m};
  mm_tensor *t = mm_new_tensor(ctx, "eye", dt, 2, shape);
  if (!t)
    return NULL;
  memset(mm_data(t), 0, (size_t)(n * m) * mm_dtype_size(dt));
  for (int64_t i = 0; i < n && i < m; i++)
    store(mm_data(t), dt, i * m + i, 1);
  return t;
}

mm_tensor *mm_rand(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape) {
  if (!mm_dtype_is_float(dt)) {
    mm_fail(ctx, "moonml.rand: dtype must be a floating type, got %s", mm_dtype_name(dt));
    return NULL;
  }
  mm_tensor *t = mm_new_tensor(ctx, "rand", dt, ndim, shape);
  if (!t)
    return NULL;
  int64_t n = mm_numel(t);
  if (dt == MM_FLOAT32) {
    float *p = mm_data(t);
    for (int64_t i = 0; i < n; i++) /* 24 random bits: every value exact in float32, < 1 */
      p[i] = (float)(mm_random_u64(ctx) >> 40) * 0x1.0p-24f;
  } else {
    double *p = mm_data(t);
    for (int64_t i = 0; i < n; i++)
      p[i] = mm_random_uniform(ctx);
  }
  return t;
}

mm_tensor *mm_randn(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape) {
  if (!mm_dtype_is_float(dt)) {
    mm_fail(ctx, "moonml.randn: dtype must be a floating type, got %s", mm_dtype_name(dt));
    return NULL;
  }
  mm_tensor *t = mm_new_tensor(ctx, "randn", dt, ndim, shape);
  if (!t)
    return NULL;
  int64_t n = mm_numel(t);
  void *data = mm_data(t);
  for (int64_t i = 0; i < n; i++)
    store(data, dt, i, mm_random_normal(ctx));
  return t;
}

mm_tensor *mm_randint(mm_ctx *ctx, mm_dtype dt, int64_t low, int64_t high, int ndim,
                      const int64_t *shape) {
  if (high < low) {
    mm_fail(ctx, "moonml.randint: high (%lld) is below low (%lld)", (long long)high,
            (long long)low);
    return NULL;
  }
  if (dt == MM_BOOL && (low < 0 || high > 1)) {
    mm_fail(ctx, "moonml.randint: a bool tensor holds only 0 and 1");
    return NULL;
  }
  mm_tensor *t = mm_new_tensor(ctx, "randint", dt, ndim, shape);
  if (!t)
    return NULL;
  uint64_t range = (uint64_t)high - (uint64_t)low + 1; /* 0 means all 2^64 values */
  int64_t n = mm_numel(t);
  void *data = mm_data(t);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = mm_random_u64(ctx);
    if (range) { /* rejection keeps the draw unbiased */
      uint64_t limit = UINT64_MAX - UINT64_MAX % range;
      while (r >= limit)
        r = mm_random_u64(ctx);
      r %= range;
    }
    int64_t v = (int64_t)((uint64_t)low + r);
    if (dt == MM_INT64)
      ((int64_t *)data)[i] = v;
    else
      store(data, dt, i, (double)v);
  }
  return t;
}

mm_tensor *mm_from_buffer(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape,
                          const void *data, size_t nbytes) {
  mm_tensor *t = mm_new_tensor(ctx, "from_buffer", dt, ndim, shape);
  if (!t)
    return NULL;
  size_t need = (size_t)mm_numel(t) * mm_dtype_size(dt);
  if (nbytes != need) {
    mm_fail(ctx, "moonml.from_buffer: %zu bytes given, the shape needs %zu", nbytes, need);
    mm_release(t);
    return NULL;
  }
  if (need)
    memcpy(mm_data(t), data, need);
  return t;
}

/* ------------------------------------------------------------------ element access */

static char *element(const mm_tensor *t, const int64_t *idx) {
  int64_t off = t->offset;
  for (int d = 0; d < t->ndim; d++)
    off += idx[d] * t->stride[d];
  return (char *)t->storage->data + off * (int64_t)mm_dtype_size(t->dtype);
}

static double load_double(const char *p, mm_dtype dt) {
  switch (dt) {
  case MM_FLOAT32:
    return *(const float *)p;
  case MM_FLOAT64:
    return *(const double *)p;
  case MM_INT64:
    return (double)*(const int64_t *)p;
  case MM_BOOL:
    return *(const uint8_t *)p;
  default:
    return 0;
  }
}

static int64_t load_int64(const char *p, mm_dtype dt) {
  switch (dt) {
  case MM_INT64:
    return *(const int64_t *)p;
  case MM_BOOL:
    return *(const uint8_t *)p;
  default:
    return double_to_int64(load_double(p, dt));
  }
}

static void store_int64(char *p, mm_dtype dt, int64_t v) {
  if (dt == MM_INT64)
    *(int64_t *)p = v;
  else if (dt == MM_BOOL)
    *(uint8_t *)p = v != 0;
  else if (dt == MM_FLOAT32)
    *(float *)p = (float)v; /* one rounding, not two through double */
  else
    store(p, dt, 0, (double)v);
}

double mm_get_double(const mm_tensor *t, const int64_t *idx) {
  return load_double(element(t, idx), t->dtype);
}

int64_t mm_get_int64(const mm_tensor *t, const int64_t *idx) {
  return load_int64(element(t, idx), t->dtype);
}

void mm_set_double(mm_tensor *t, const int64_t *idx, double v) {
  store(element(t, idx), t->dtype, 0, v);
  mm_bump_version(t);
}

void mm_set_int64(mm_tensor *t, const int64_t *idx, int64_t v) {
  store_int64(element(t, idx), t->dtype, v);
  mm_bump_version(t);
}

static int fill_named(mm_ctx *ctx, const char *op, mm_tensor *dst, double value);

int mm_set_element_(mm_ctx *ctx, mm_tensor *t, const int64_t *idx, double v) {
  bool tracked = mm_grad_enabled(ctx) && (t->requires_grad || (t->base && t->base->requires_grad));
  if (!tracked) {
    mm_set_double(t, idx, v);
    return 0;
  }
  if (t->requires_grad && !t->grad_fn)
    return mm_fail(ctx, "moonml.set: a leaf tensor that requires grad cannot be changed in place "
                        "(use ml.no_grad or detach)");
  /* autograd sees a fill of the element's 0-d view */
  mm_tensor *e = mm_alias(ctx, t);
  for (int d = 0; e && d < t->ndim; d++) {
    mm_tensor *next = mm_select(ctx, e, 0, idx[d]);
    mm_release(e);
    e = next;
  }
  int st = e ? fill_named(ctx, "set", e, v) : -1;
  mm_release(e);
  return st;
}

/* ------------------------------------------------------------------ copies */

typedef struct {
  mm_dtype dst, src;
} copy_types;

static void copy_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  const copy_types *ty = arg;
  char *d = p[0];
  const char *x = p[1];
  if (ty->dst == ty->src) {
    size_t es = mm_dtype_size(ty->dst);
    if (s[0] == (int64_t)es && s[1] == (int64_t)es) {
      memcpy(d, x, (size_t)n * es);
      return;
    }
    for (int64_t i = 0; i < n; i++, d += s[0], x += s[1])
      memcpy(d, x, es);
  } else if (ty->dst == MM_FLOAT32 && ty->src == MM_INT64) {
    for (int64_t i = 0; i < n; i++, d += s[0], x += s[1])
      *(float *)d = (float)*(const int64_t *)x;
  } else if (ty->dst == MM_BOOL) { /* nonzero is true: 0.5 and NaN too */
    for (int64_t i = 0; i < n; i++, d += s[0], x += s[1])
      *(uint8_t *)d = load_double(x, ty->src) != 0;
  } else if (ty->dst == MM_INT64) {
    for (int64_t i = 0; i < n; i++, d += s[0], x += s[1])
      *(int64_t *)d = load_int64(x, ty->src);
  } else {
    for (int64_t i = 0; i < n; i++, d += s[0], x += s[1])
      store(d, ty->dst, 0, load_double(x, ty->src));
  }
}

/* Byte range [*lo, *hi) of the storage that t's elements touch (strides are >= 0). */
static void byte_extent(const mm_tensor *t, int64_t *lo, int64_t *hi) {
  int64_t last = t->offset;
  for (int d = 0; d < t->ndim; d++)
    last += (t->shape[d] - 1) * t->stride[d];
  int64_t es = (int64_t)mm_dtype_size(t->dtype);
  *lo = t->offset * es;
  *hi = (last + 1) * es;
}

/* Must the copy read src before writing dst? True when they share memory in any other
 * way than element for element (x:copy_(x:t()) would otherwise read values it wrote). */
static bool overlaps(const mm_tensor *dst, const mm_tensor *src) {
  if (dst->storage != src->storage)
    return false;
  int64_t dlo, dhi, slo, shi;
  byte_extent(dst, &dlo, &dhi);
  byte_extent(src, &slo, &shi);
  if (dhi <= slo || shi <= dlo)
    return false;
  if (dst->dtype != src->dtype || dst->offset != src->offset)
    return true;
  for (int d = 0; d < dst->ndim; d++)
    if (dst->shape[d] > 1 && dst->stride[d] != src->stride[d])
      return true;
  return false;
}

/* src's header broadcast to dst's shape (a stack header, stride 0 on broadcast dims);
 * false when the shapes do not fit. */
static bool broadcast_to(const mm_tensor *src, const mm_tensor *dst, mm_tensor *e) {
  if (src->ndim > dst->ndim)
    return false;
  *e = *src;
  e->ndim = dst->ndim;
  int lead = dst->ndim - src->ndim;
  for (int d = dst->ndim - 1; d >= 0; d--) {
    int od = d - lead;
    int64_t size = od >= 0 ? src->shape[od] : 1, stride = od >= 0 ? src->stride[od] : 0;
    if (size == dst->shape[d]) {
      e->shape[d] = size;
      e->stride[d] = stride;
    } else if (size == 1) {
      e->shape[d] = dst->shape[d];
      e->stride[d] = 0;
    } else {
      return false;
    }
  }
  return true;
}

/* The checks of copy_, before anything is written or recorded. */
static int check_copy(mm_ctx *ctx, const mm_tensor *dst, const mm_tensor *src, mm_tensor *e) {
  if (!broadcast_to(src, dst, e)) {
    char a[96], b[96];
    return mm_fail(ctx, "moonml.copy_: cannot copy a tensor of shape %s into shape %s",
                   mm_shape_str(a, sizeof a, src->ndim, src->shape),
                   mm_shape_str(b, sizeof b, dst->ndim, dst->shape));
  }
  if (mm_numel(dst) == 0)
    return 0;
  for (int d = 0; d < dst->ndim; d++)
    if (dst->shape[d] > 1 && dst->stride[d] == 0)
      return mm_fail(ctx, "moonml.copy_: the destination is an expanded view whose elements "
                          "share memory; clone() it first");
  return 0;
}

/* dst <- e (already broadcast to dst's shape and checked). */
static int copy_checked(mm_ctx *ctx, mm_tensor *dst, const mm_tensor *e) {
  if (mm_numel(dst) == 0)
    return 0;
  mm_tensor *c = NULL;
  if (overlaps(dst, e) && !(c = mm_clone_raw(ctx, e)))
    return -1;
  copy_types ty = {dst->dtype, e->dtype};
  mm_iter it;
  mm_tensor *ts[2] = {dst, c ? c : (mm_tensor *)e};
  mm_iter_init(&it, 2, ts);
  mm_iter_run(&it, copy_kernel, &ty);
  mm_release(c);
  mm_bump_version(dst);
  return 0;
}

int mm_copy_raw(mm_ctx *ctx, mm_tensor *dst, const mm_tensor *src) {
  mm_tensor e;
  if (check_copy(ctx, dst, src, &e) != 0)
    return -1;
  return copy_checked(ctx, dst, &e);
}

/* d(dst)/d(src) is the identity where copied (the engine sums a broadcast src back); the
 * earlier value of dst gets nothing. */
static int copy_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  if (node->in[0].needs_grad && !(grad_in[0] = mm_zeros(ctx, grad->dtype, grad->ndim, grad->shape)))
    return -1;
  if (node->in[1].needs_grad && !(grad_in[1] = mm_to_dtype(ctx, grad, node->in[1].dtype)))
    return -1;
  return 0;
}

int mm_copy_(mm_ctx *ctx, mm_tensor *dst, const mm_tensor *src) {
  mm_tensor e;
  if (check_copy(ctx, dst, src, &e) != 0)
    return -1;
  mm_node *node = NULL;
  const mm_tensor *in[2] = {dst, src};
  /* an int64 or bool destination never requires grad (it may still be a leaf's view) */
  if (mm_inplace_begin(ctx, "copy_", "CopyBackward", copy_backward,
                       mm_dtype_is_float(dst->dtype) ? 2 : 1, in, &node) != 0)
    return -1;
  if (copy_checked(ctx, dst, &e) != 0) {
    mm_node_release(node);
    return -1;
  }
  return mm_inplace_attach(ctx, node, dst);
}

typedef struct {
  mm_dtype dt;
  double value;
} fill_arg;

static void fill_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  const fill_arg *f = arg;
  char *d = p[0];
  if (f->dt == MM_FLOAT32 && s[0] == 4) {
    float v = (float)f->value, *q = (float *)d;
    for (int64_t i = 0; i < n; i++)
      q[i] = v;
    return;
  }
  for (int64_t i = 0; i < n; i++, d += s[0])
    store(d, f->dt, 0, f->value);
}

static int fill_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  (void)node;
  return (grad_in[0] = mm_zeros(ctx, grad->dtype, grad->ndim, grad->shape)) ? 0 : -1;
}

static int fill_named(mm_ctx *ctx, const char *op, mm_tensor *dst, double value) {
  mm_node *node = NULL;
  const mm_tensor *in[1] = {dst};
  if (mm_inplace_begin(ctx, op, "FillBackward", fill_backward, 1, in, &node) != 0)
    return -1;
  fill_arg f = {dst->dtype, value};
  mm_iter it;
  mm_iter_init(&it, 1, &dst);
  mm_iter_run(&it, fill_kernel, &f);
  mm_bump_version(dst);
  return mm_inplace_attach(ctx, node, dst);
}

int mm_fill_(mm_ctx *ctx, mm_tensor *dst, double value) {
  return fill_named(ctx, "fill_", dst, value);
}

mm_tensor *mm_clone_raw(mm_ctx *ctx, const mm_tensor *t) {
  mm_tensor *c = mm_new_tensor(ctx, "clone", t->dtype, t->ndim, t->shape);
  if (c && mm_copy_raw(ctx, c, t) != 0) {
    mm_release(c);
    return NULL;
  }
  return c;
}

mm_tensor *mm_clone(mm_ctx *ctx, const mm_tensor *t) {
  return record1(ctx, t, mm_clone_raw(ctx, t), "CloneBackward", identity_backward);
}

mm_tensor *mm_contiguous(mm_ctx *ctx, const mm_tensor *t) {
  if (mm_is_contiguous(t)) {
    mm_retain((mm_tensor *)t);
    return (mm_tensor *)t;
  }
  return mm_clone(ctx, t);
}

/* The gradient goes back in the input's dtype. */
static int to_dtype_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                             mm_tensor **grad_in) {
  return (grad_in[0] = mm_to_dtype(ctx, grad, node->in[0].dtype)) ? 0 : -1;
}

mm_tensor *mm_to_dtype(mm_ctx *ctx, const mm_tensor *t, mm_dtype dt) {
  if (t->dtype == dt) {
    mm_retain((mm_tensor *)t);
    return (mm_tensor *)t;
  }
  mm_tensor *c = mm_new_tensor(ctx, "to", dt, t->ndim, t->shape);
  if (c && mm_copy_raw(ctx, c, t) != 0) {
    mm_release(c);
    return NULL;
  }
  if (!mm_dtype_is_float(dt)) /* to int64 or bool: not differentiable */
    return c;
  return record1(ctx, t, c, "ToCopyBackward", to_dtype_backward);
}
