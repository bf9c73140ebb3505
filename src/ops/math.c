/* More element-wise math: rsqrt sin cos sign floor ceil round, clamp, maximum, minimum and
 * lerp, with broadcasting, PyTorch's dtype rules, in-place forms and their backward passes.
 *
 * Every op runs one kernel over (output, operands...) converted to a compute dtype and
 * broadcast to the output shape as header copies; a Lua number taking part (a clamp bound, a
 * lerp weight) is dressed as a tensor with all strides 0 on the stack. Promotion is the one
 * elementwise.c uses: tensors by bool < int64 < float32 < float64, numbers by PyTorch's
 * wrapped-number rule (they raise the category only).
 *
 * In place with a graph: the op runs out of place on a copy of the old values that stands for
 * the tensor in the graph (same grad_fn), and the tensor then takes the result and the node,
 * so backward still sees the values before the change (PyTorch saves "original self" too). */
#include "../autograd/autograd.h"

#include <math.h>
#include <string.h>

#define MAX_OPERANDS 3

static const char *const math_names[MM_MATH_OP_COUNT] = {"rsqrt", "sin",  "cos",  "sign",
                                                         "floor", "ceil", "round"};
static const char *const math_names_[MM_MATH_OP_COUNT] = {"rsqrt_", "sin_",  "cos_",  "sign_",
                                                          "floor_", "ceil_", "round_"};
static const char *const math_nodes[MM_MATH_OP_COUNT] = {
    "RsqrtBackward", "SinBackward",  "CosBackward",  "SignBackward",
    "FloorBackward", "CeilBackward", "RoundBackward"};

const char *mm_math_op_name(mm_math_op op) {
  return (unsigned)op < MM_MATH_OP_COUNT ? math_names[op] : "?";
}

/* ------------------------------------------------------------------ kernels */

/* Per-call constants of a kernel. */
typedef struct {
  int mode;    /* which gradient or mask a backward kernel computes */
  bool has_lo; /* clamp: which bounds were given */
  bool has_hi;
} kparam;

/* out = EXPR(x) */
#define K1(name, TO, TA, EXPR)                                                                     \
  static void name(char **p, const int64_t *s, int64_t n, void *arg) {                             \
    const kparam *kp = arg;                                                                        \
    (void)kp;                                                                                      \
    if (s[0] == (int64_t)sizeof(TO) && s[1] == (int64_t)sizeof(TA)) {                              \
      TO *o = (TO *)p[0];                                                                          \
      const TA *pa = (const TA *)p[1];                                                             \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const TA x = pa[i];                                                                        \
        o[i] = (TO)(EXPR);                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      char *q = p[0];                                                                              \
      const char *qa = p[1];                                                                       \
      for (int64_t i = 0; i < n; i++, q += s[0], qa += s[1]) {                                     \
        const TA x = *(const TA *)qa;                                                              \
        *(TO *)q = (TO)(EXPR);                                                                     \
      }                                                                                            \
    }                                                                                              \
  }

/* out = EXPR(x, y) */
#define K2(name, TO, TA, TB, EXPR)                                                                 \
  static void name(char **p, const int64_t *s, int64_t n, void *arg) {                             \
    const kparam *kp = arg;                                                                        \
    (void)kp;                                                                                      \
    if (s[0] == (int64_t)sizeof(TO) && s[1] == (int64_t)sizeof(TA) &&                              \
        s[2] == (int64_t)sizeof(TB)) {                                                             \
      TO *o = (TO *)p[0];                                                                          \
      const TA *pa = (const TA *)p[1];                                                             \
      const TB *pb = (const TB *)p[2];                                                             \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const TA x = pa[i];                                                                        \
        const TB y = pb[i];                                                                        \
        o[i] = (TO)(EXPR);                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      char *q = p[0];                                                                              \
      const char *qa = p[1], *qb = p[2];                                                           \
      for (int64_t i = 0; i < n; i++, q += s[0], qa += s[1], qb += s[2]) {                         \
        const TA x = *(const TA *)qa;                                                              \
        const TB y = *(const TB *)qb;                                                              \
        *(TO *)q = (TO)(EXPR);                                                                     \
      }                                                                                            \
    }                                                                                              \
  }

/* out = EXPR(x, y, z); number operands (stride 0: clamp bounds, a lerp weight) get dense loops
 * of their own. */
#define K3(name, TO, T, EXPR)                                                                      \
  static void name(char **p, const int64_t *s, int64_t n, void *arg) {                             \
    const kparam *kp = arg;                                                                        \
    (void)kp;                                                                                      \
    const int64_t so = (int64_t)sizeof(TO), si = (int64_t)sizeof(T);                               \
    if (s[0] == so && s[1] == si && s[2] == si && s[3] == si) {                                    \
      TO *o = (TO *)p[0];                                                                          \
      const T *pa = (const T *)p[1], *pb = (const T *)p[2], *pc = (const T *)p[3];                 \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const T x = pa[i], y = pb[i], z = pc[i];                                                   \
        o[i] = (TO)(EXPR);                                                                         \
      }                                                                                            \
    } else if (s[0] == so && s[1] == si && s[2] == 0 && s[3] == 0) {                               \
      TO *o = (TO *)p[0];                                                                          \
      const T *pa = (const T *)p[1];                                                               \
      const T y = *(const T *)p[2], z = *(const T *)p[3];                                          \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const T x = pa[i];                                                                         \
        o[i] = (TO)(EXPR);                                                                         \
      }                                                                                            \
    } else if (s[0] == so && s[1] == si && s[2] == si && s[3] == 0) {                              \
      TO *o = (TO *)p[0];                                                                          \
      const T *pa = (const T *)p[1], *pb = (const T *)p[2];                                        \
      const T z = *(const T *)p[3];                                                                \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const T x = pa[i], y = pb[i];                                                              \
        o[i] = (TO)(EXPR);                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      char *q = p[0];                                                                              \
      const char *qa = p[1], *qb = p[2], *qc = p[3];                                               \
      for (int64_t i = 0; i < n; i++, q += s[0], qa += s[1], qb += s[2], qc += s[3]) {             \
        const T x = *(const T *)qa, y = *(const T *)qb, z = *(const T *)qc;                        \
        *(TO *)q = (TO)(EXPR);                                                                     \
      }                                                                                            \
    }                                                                                              \
  }

/* sign: (0 < x) - (x < 0) gives 0 for NaN and for -0.0, as PyTorch */
#define SIGN(x) ((0 < (x)) - ((x) < 0))

K1(k_rsqrt_f32, float, float, 1.0f / sqrtf(x))
K1(k_sin_f32, float, float, sinf(x))
K1(k_cos_f32, float, float, cosf(x))
K1(k_sign_f32, float, float, SIGN(x))
K1(k_floor_f32, float, float, floorf(x))
K1(k_ceil_f32, float, float, ceilf(x))
K1(k_round_f32, float, float, nearbyintf(x)) /* half to even in the default rounding mode */
K1(k_rsqrt_f64, double, double, 1.0 / sqrt(x))
K1(k_sin_f64, double, double, sin(x))
K1(k_cos_f64, double, double, cos(x))
K1(k_sign_f64, double, double, SIGN(x))
K1(k_floor_f64, double, double, floor(x))
K1(k_ceil_f64, double, double, ceil(x))
K1(k_round_f64, double, double, nearbyint(x))
K1(k_sign_i64, int64_t, int64_t, SIGN(x))

static const mm_inner_fn math_kernels[MM_MATH_OP_COUNT][MM_DTYPE_COUNT] = {
    [MM_MATH_RSQRT] = {[MM_FLOAT32] = k_rsqrt_f32, [MM_FLOAT64] = k_rsqrt_f64},
    [MM_MATH_SIN] = {[MM_FLOAT32] = k_sin_f32, [MM_FLOAT64] = k_sin_f64},
    [MM_MATH_COS] = {[MM_FLOAT32] = k_cos_f32, [MM_FLOAT64] = k_cos_f64},
    [MM_MATH_SIGN] =
        {[MM_FLOAT32] = k_sign_f32, [MM_FLOAT64] = k_sign_f64, [MM_INT64] = k_sign_i64},
    [MM_MATH_FLOOR] = {[MM_FLOAT32] = k_floor_f32, [MM_FLOAT64] = k_floor_f64},
    [MM_MATH_CEIL] = {[MM_FLOAT32] = k_ceil_f32, [MM_FLOAT64] = k_ceil_f64},
    [MM_MATH_ROUND] = {[MM_FLOAT32] = k_round_f32, [MM_FLOAT64] = k_round_f64},
};

/* backward of sin, cos (operands g, x) and rsqrt (operands g, y = rsqrt(x)) */
K2(k_dsin_f32, float, float, float, x *cosf(y))
K2(k_dcos_f32, float, float, float, x * -sinf(y))
K2(k_drsqrt_f32, float, float, float, -0.5f * x * (y * y * y))
K2(k_dsin_f64, double, double, double, x *cos(y))
K2(k_dcos_f64, double, double, double, x * -sin(y))
K2(k_drsqrt_f64, double, double, double, -0.5 * x * (y * y * y))

/* clamp as PyTorch's min(max(x, lo), hi): lo > hi gives hi; a NaN anywhere gives NaN */
/* branch-free selects (a NaN x falls through both tests), so that the loops vectorise */
static inline float clamp_f32(float x, float lo, float hi) {
  float v = x < lo ? lo : x;
  v = v > hi ? hi : v;
  return lo != lo || hi != hi ? lo + hi : v;
}
static inline double clamp_f64(double x, double lo, double hi) {
  double v = x < lo ? lo : x;
  v = v > hi ? hi : v;
  return lo != lo || hi != hi ? lo + hi : v;
}
static inline int64_t clamp_i64(int64_t x, int64_t lo, int64_t hi) {
  int64_t v = x < lo ? lo : x;
  return v > hi ? hi : v;
}
K3(k_clamp_f32, float, float, clamp_f32(x, y, z))
K3(k_clamp_f64, double, double, clamp_f64(x, y, z))
K3(k_clamp_i64, int64_t, int64_t, clamp_i64(x, y, z))
K3(k_clamp_b, uint8_t, uint8_t, x<y ? y : x> z ? z : x) /* bool bounds: or, and */

/* Which elements pass a gradient (PyTorch 1.13's clamp_backward / clamp_backward_min_max):
 * mode 0 for x: lo <= x <= hi over the bounds given; mode 1 for a tensor lo: x < lo (and lo < hi
 * when hi is given); mode 2 for a tensor hi: x > hi (or hi < lo when lo is given). */
#define CLAMP_MASK(x, lo, hi)                                                                      \
  (kp->mode == 0   ? (!kp->has_lo || (x) >= (lo)) && (!kp->has_hi || (x) <= (hi))                  \
   : kp->mode == 1 ? (x) < (lo) && (!kp->has_hi || (lo) < (hi))                                    \
                   : (x) > (hi) || (kp->has_lo && (hi) < (lo)))
K3(k_cmask_f32, uint8_t, float, CLAMP_MASK(x, y, z))
K3(k_cmask_f64, uint8_t, double, CLAMP_MASK(x, y, z))
K3(k_cmask_i64, uint8_t, int64_t, CLAMP_MASK(x, y, z))

/* where(mask, g, 0) */
K2(k_where_f32, float, float, uint8_t, y ? x : 0.0f)
K2(k_where_f64, double, double, uint8_t, y ? x : 0.0)

/* maximum / minimum; NaN on either side gives NaN (selects, so that the loops vectorise) */
#define MAXF(x, y) ((x) < (y) ? (y) : (x))
#define MINF(x, y) ((y) < (x) ? (y) : (x))
#define NAN_OR(x, y, v) ((x) != (x) ? (x) : (y) != (y) ? (y) : (v))
K2(k_max_f32, float, float, float, NAN_OR(x, y, MAXF(x, y)))
K2(k_max_f64, double, double, double, NAN_OR(x, y, MAXF(x, y)))
K2(k_max_i64, int64_t, int64_t, int64_t, x < y ? y : x)
K2(k_max_b, uint8_t, uint8_t, uint8_t, x | y)
K2(k_min_f32, float, float, float, NAN_OR(x, y, MINF(x, y)))
K2(k_min_f64, double, double, double, NAN_OR(x, y, MINF(x, y)))
K2(k_min_i64, int64_t, int64_t, int64_t, y < x ? y : x)
K2(k_min_b, uint8_t, uint8_t, uint8_t, x &y)

/* Gradient of maximum / minimum for one side (PyTorch 1.13): where(a == b, g / 2, g), then 0
 * where the other side wins. mode: bit 0 set for minimum, bit 1 set for the gradient of b.
 * With a NaN neither comparison holds, so both sides get the whole gradient, as in PyTorch. */
#define MM_LOSES(a, b)                                                                             \
  ((kp->mode & 1) ? ((kp->mode & 2) ? (b) > (a) : (a) > (b))                                       \
                  : ((kp->mode & 2) ? (b) < (a) : (a) < (b)))
K3(k_dminmax_f32, float, float, y == z ? x * 0.5f : MM_LOSES(y, z) ? 0.0f : x)
K3(k_dminmax_f64, double, double, y == z ? x * 0.5 : MM_LOSES(y, z) ? 0.0 : x)

/* lerp as PyTorch 1.13 computes it (the two forms keep the ends exact) */
#define LERP(s, e, w, one)                                                                         \
  (fabs(w) < 0.5 ? (s) + (w) * ((e) - (s)) : (e) - ((e) - (s)) * ((one) - (w)))
K3(k_lerp_f32, float, float, LERP(x, y, z, 1.0f))
K3(k_lerp_f64, double, double, LERP(x, y, z, 1.0))

/* ------------------------------------------------------------------ dtypes, headers */

/* A number dressed as a tensor of the iteration shape with all strides 0, on the stack. */
typedef struct {
  mm_storage storage;
  mm_tensor t;
  union {
    float f32;
    double f64;
    int64_t i64;
    uint8_t b;
  } buf;
} scalar_tensor;

static void scalar_tensor_init(scalar_tensor *st, mm_dtype dt, int ndim, const int64_t *shape,
                               double v) {
  memset(st, 0, sizeof *st);
  if (dt == MM_FLOAT32)
    st->buf.f32 = (float)v;
  else if (dt == MM_FLOAT64)
    st->buf.f64 = v;
  else if (dt == MM_INT64)
    st->buf.i64 = mm_to_int64(v);
  else
    st->buf.b = v != 0;
  st->storage.refcount = 1;
  st->storage.data = &st->buf;
  st->storage.nbytes = sizeof st->buf;
  st->t.refcount = 1;
  st->t.dtype = dt;
  st->t.ndim = ndim;
  for (int d = 0; d < ndim; d++)
    st->t.shape[d] = shape[d];
  st->t.storage = &st->storage;
}

/* t's header broadcast to (ndim, shape), stride 0 on broadcast dims; shapes already checked */
static void broadcast_header(const mm_tensor *t, int ndim, const int64_t *shape, mm_tensor *h) {
  *h = *t;
  h->ndim = ndim;
  int lead = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int od = d - lead;
    h->shape[d] = shape[d];
    h->stride[d] = (od < 0 || t->shape[od] != shape[d]) ? 0 : t->stride[od];
  }
}

static bool same_shape(int ndim, const int64_t *shape, const mm_tensor *t) {
  if (t->ndim != ndim)
    return false;
  for (int d = 0; d < ndim; d++)
    if (t->shape[d] != shape[d])
      return false;
  return true;
}

/* (nd, shape) <- broadcast of (nd, shape) with t's shape (mm_broadcast_shape may not write
 * over its input) */
static int broadcast_with(mm_ctx *ctx, const char *name, int *nd, int64_t *shape,
                          const mm_tensor *t) {
  int64_t in[MM_MAX_DIMS];
  memcpy(in, shape, sizeof(int64_t) * (size_t)*nd);
  return mm_broadcast_shape(ctx, name, *nd, in, t->ndim, t->shape, nd, shape);
}

/* Is t exactly the view v (so that reading t while writing v element by element is safe)? */
static bool same_view(const mm_tensor *t, const mm_tensor *v) {
  if (t->storage != v->storage || t->dtype != v->dtype || t->offset != v->offset ||
      !same_shape(v->ndim, v->shape, t))
    return false;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] > 1 && t->stride[d] != v->stride[d])
      return false;
  return true;
}

/* an expanded view: several elements in one memory location */
static bool internal_overlap(const mm_tensor *t) {
  for (int d = 0; d < t->ndim; d++)
    if (t->stride[d] == 0 && t->shape[d] > 1)
      return true;
  return false;
}

/* ------------------------------------------------------------------ the map driver */

/* One input of a kernel: the tensor t, or the number v when t is NULL; converted to dt. */
typedef struct {
  const mm_tensor *t;
  double v;
  mm_dtype dt;
} operand;

static operand op_tensor(const mm_tensor *t, mm_dtype dt) { return (operand){t, 0, dt}; }
static operand op_number(double v, mm_dtype dt) { return (operand){NULL, v, dt}; }

/* fn over the operands, broadcast together, into dst (which has the broadcast shape; the
 * caller checked) or into a new tensor of out_dt returned in *result. */
static int map_run(mm_ctx *ctx, const char *name, mm_tensor *dst, mm_dtype out_dt, int n,
                   const operand *ops, mm_inner_fn fn, kparam *kp, mm_tensor **result) {
  int nd = 0;
  int64_t shape[MM_MAX_DIMS];
  for (int k = 0; k < n; k++) {
    const mm_tensor *t = ops[k].t;
    if (t && broadcast_with(ctx, name, &nd, shape, t) != 0)
      return -1;
  }
  if (dst) {
    nd = dst->ndim;
    memcpy(shape, dst->shape, sizeof(int64_t) * (size_t)nd);
  }
  mm_tensor *tmp[MAX_OPERANDS] = {NULL}, *out = NULL;
  mm_tensor heads[MAX_OPERANDS], *ts[MAX_OPERANDS + 1];
  scalar_tensor sts[MAX_OPERANDS];
  int rc = -1;
  for (int k = 0; k < n; k++) {
    const mm_tensor *t = ops[k].t;
    if (!t) {
      scalar_tensor_init(&sts[k], ops[k].dt, nd, shape, ops[k].v);
      ts[k + 1] = &sts[k].t;
      continue;
    }
    if (t->dtype != ops[k].dt) {
      if (!(t = tmp[k] = mm_to_dtype(ctx, t, ops[k].dt)))
        goto done;
    } else if (dst && t->storage == dst->storage && !same_view(t, dst)) {
      if (!(t = tmp[k] = mm_clone(ctx, t))) /* read before dst overwrites it */
        goto done;
    }
    broadcast_header(t, nd, shape, &heads[k]);
    ts[k + 1] = &heads[k];
  }
  if (!dst && !(dst = out = mm_new_tensor(ctx, name, out_dt, nd, shape)))
    goto done;
  ts[0] = dst;
  mm_run_kernel(n + 1, ts, fn, kp);
  if (result) {
    *result = out;
    out = NULL;
  }
  rc = 0;
done:
  for (int k = 0; k < n; k++)
    mm_release(tmp[k]);
  mm_release(out);
  return rc;
}

/* ------------------------------------------------------------------ graph helpers */

static bool grad_wanted(const mm_ctx *ctx, int n, const mm_tensor *const *ts) {
  if (!mm_grad_enabled(ctx))
    return false;
  for (int k = 0; k < n; k++)
    if (ts[k] && ts[k]->requires_grad)
      return true;
  return false;
}

/* Checks that self may take the result of an op in place: the shape, dtype (PyTorch's
 * canCast), no expanded memory, and no leaf that requires grad while grad mode is on. */
static int check_inplace(mm_ctx *ctx, const char *name, const mm_tensor *self, mm_dtype r, int nd,
                         const int64_t *shape) {
  char s1[128], s2[128];
  if (!same_shape(nd, shape, self))
    return mm_fail(ctx, "moonml.%s: output with shape %s doesn't match the broadcast shape %s",
                   name, mm_shape_str(s1, sizeof s1, self->ndim, self->shape),
                   mm_shape_str(s2, sizeof s2, nd, shape));
  if (!mm_can_cast(r, self->dtype))
    return mm_fail(ctx, "moonml.%s: result type %s cannot be stored in place in %s %s tensor", name,
                   mm_dtype_name(r), mm_dtype_article(self->dtype), mm_dtype_name(self->dtype));
  if (internal_overlap(self))
    return mm_fail(ctx,
                   "moonml.%s: cannot write in place into an expanded tensor (several elements "
                   "share memory); clone it first",
                   name);
  if (mm_grad_enabled(ctx) && self->requires_grad && !self->grad_fn)
    return mm_fail(ctx,
                   "moonml.%s: a leaf tensor that requires grad cannot be changed in place "
                   "(use ml.no_grad or detach)",
                   name);
  const mm_tensor *b = self->base;
  if (mm_grad_enabled(ctx) && b && b->requires_grad && !b->grad_fn)
    return mm_fail(ctx,
                   "moonml.%s: a view of a leaf tensor that requires grad cannot be changed in "
                   "place (use ml.no_grad or detach)",
                   name);
  return 0;
}

/* A copy of self's values standing for self in the graph (same grad_fn). A raw clone:
 * mm_clone would attach a CloneBackward node that the grad_fn below then orphans. */
static mm_tensor *graph_clone(mm_ctx *ctx, const mm_tensor *self) {
  mm_tensor *c = mm_clone_raw(ctx, self);
  if (c && self->grad_fn) {
    c->requires_grad = true;
    c->grad_fn = self->grad_fn;
    mm_node_retain(c->grad_fn);
  }
  return c;
}

/* self takes out's values and out's node (consumes out). */
static int adopt(mm_ctx *ctx, mm_tensor *self, mm_tensor *out) {
  int rc = mm_copy_(ctx, self, out);
  if (rc == 0) {
    mm_bump_version(self);
    if (out->grad_fn) {
      mm_node_retain(out->grad_fn);
      mm_node_attach(out->grad_fn, self);
    }
  }
  mm_release(out);
  return rc;
}

/* The result of an in-place op computed into tmp (a dtype other than self's): copy it over. */
static int finish_inplace(mm_ctx *ctx, mm_tensor *self, mm_tensor *tmp) {
  int rc = tmp == self ? 0 : mm_copy_(ctx, self, tmp);
  if (tmp != self)
    mm_release(tmp);
  if (rc == 0)
    mm_bump_version(self);
  return rc;
}

/* Hands a gradient on in the input's dtype (consumes g). */
static mm_tensor *grad_as(mm_ctx *ctx, mm_tensor *g, const mm_edge *e) {
  if (!g || g->dtype == e->dtype)
    return g;
  mm_tensor *c = mm_to_dtype(ctx, g, e->dtype);
  mm_release(g);
  return c;
}

/* Saves the tensors, or releases the node and fails. */
static int save_all(mm_ctx *ctx, mm_node *node, int n, const mm_tensor *const *ts) {
  for (int k = 0; k < n; k++)
    if (ts[k] && mm_node_save(ctx, node, ts[k]) != 0) {
      mm_node_release(node);
      return -1;
    }
  return 0;
}

/* ------------------------------------------------------------------ rsqrt sin cos sign ... */

static int math_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  mm_math_op op = (mm_math_op)node->i[0];
  mm_dtype dt = node->in[0].dtype;
  mm_tensor *r = NULL;
  if (op == MM_MATH_SIN || op == MM_MATH_COS || op == MM_MATH_RSQRT) {
    static const mm_inner_fn f32[] = {
        [MM_MATH_RSQRT] = k_drsqrt_f32, [MM_MATH_SIN] = k_dsin_f32, [MM_MATH_COS] = k_dcos_f32};
    static const mm_inner_fn f64[] = {
        [MM_MATH_RSQRT] = k_drsqrt_f64, [MM_MATH_SIN] = k_dsin_f64, [MM_MATH_COS] = k_dcos_f64};
    operand ops[2] = {op_tensor(g, dt), op_tensor(node->saved[0], dt)};
    kparam kp = {0};
    if (map_run(ctx, node->name, NULL, dt, 2, ops, dt == MM_FLOAT32 ? f32[op] : f64[op], &kp, &r) !=
        0)
      return -1;
  } else if (!(r = mm_zeros(ctx, dt, g->ndim, g->shape))) { /* piecewise constant */
    return -1;
  }
  grad_in[0] = r;
  return 0;
}

static int math_exec(mm_ctx *ctx, mm_math_op op, const mm_tensor *a, mm_tensor *self,
                     mm_tensor **result) {
  if ((unsigned)op >= MM_MATH_OP_COUNT)
    return mm_fail(ctx, "moonml.math: unknown op %d", (int)op);
  const char *name = self ? math_names_[op] : math_names[op];
  bool rounding = op == MM_MATH_FLOOR || op == MM_MATH_CEIL || op == MM_MATH_ROUND;
  if (rounding && a->dtype == MM_BOOL)
    return mm_fail(ctx, "moonml.%s: not supported for bool tensors", name);
  bool to_float = op == MM_MATH_RSQRT || op == MM_MATH_SIN || op == MM_MATH_COS;
  mm_dtype c = to_float && !mm_dtype_is_float(a->dtype) ? MM_FLOAT32 : a->dtype;
  /* floor, ceil and round of int64 and sign of bool change nothing */
  bool identity = (rounding && c == MM_INT64) || (op == MM_MATH_SIGN && c == MM_BOOL);
  if (self) {
    if (check_inplace(ctx, name, self, c, a->ndim, a->shape) != 0)
      return -1;
    if (grad_wanted(ctx, 1, (const mm_tensor *const[]){self})) {
      mm_tensor *x0 = graph_clone(ctx, self), *out = NULL;
      int rc = x0 ? math_exec(ctx, op, x0, NULL, &out) : -1;
      mm_release(x0);
      return rc == 0 ? adopt(ctx, self, out) : -1;
    }
    if (identity) {
      mm_bump_version(self);
      return 0;
    }
    mm_tensor *dst = c == self->dtype ? self : NULL;
    operand ops[1] = {op_tensor(a, c)};
    kparam kp = {0};
    if (map_run(ctx, name, dst, c, 1, ops, math_kernels[op][c], &kp, dst ? NULL : &dst) != 0)
      return -1;
    return finish_inplace(ctx, self, dst);
  }
  mm_tensor *out = NULL;
  if (identity) {
    out = mm_clone(ctx, a);
  } else {
    operand ops[1] = {op_tensor(a, c)};
    kparam kp = {0};
    if (map_run(ctx, name, NULL, c, 1, ops, math_kernels[op][c], &kp, &out) != 0)
      return -1;
  }
  if (!out)
    return -1;
  mm_node *node;
  if (mm_node_begin(ctx, math_nodes[op], math_backward, 1, (const mm_tensor *const[]){a}, &node) !=
      0) {
    mm_release(out);
    return -1;
  }
  if (node) {
    node->i[0] = op;
    const mm_tensor *keep = op == MM_MATH_RSQRT ? out : a; /* rsqrt' = -y^3 / 2 */
    if ((op == MM_MATH_SIN || op == MM_MATH_COS || op == MM_MATH_RSQRT) &&
        save_all(ctx, node, 1, &keep) != 0) {
      mm_release(out);
      return -1;
    }
    mm_node_attach(node, out);
  }
  *result = out;
  return 0;
}

mm_tensor *mm_math(mm_ctx *ctx, mm_math_op op, const mm_tensor *a) {
  mm_tensor *r = NULL;
  return math_exec(ctx, op, a, NULL, &r) == 0 ? r : NULL;
}

int mm_math_(mm_ctx *ctx, mm_math_op op, mm_tensor *a) { return math_exec(ctx, op, a, a, NULL); }

/* ------------------------------------------------------------------ clamp */

static const mm_inner_fn clamp_kernels[MM_DTYPE_COUNT] = {[MM_FLOAT32] = k_clamp_f32,
                                                          [MM_FLOAT64] = k_clamp_f64,
                                                          [MM_INT64] = k_clamp_i64,
                                                          [MM_BOOL] = k_clamp_b};
static const mm_inner_fn cmask_kernels[MM_DTYPE_COUNT] = {
    [MM_FLOAT32] = k_cmask_f32, [MM_FLOAT64] = k_cmask_f64, [MM_INT64] = k_cmask_i64};

/* A bound as a kernel operand in dtype c: the tensor, the number, or the end of the range. */
static operand bound_operand(mm_bound b, mm_dtype c, bool upper) {
  if (b.set && b.t)
    return op_tensor(b.t, c);
  if (b.set)
    return op_number(b.s.value, c);
  if (c == MM_INT64)
    return op_number(upper ? 9223372036854775807.0 : -9223372036854775808.0, c);
  if (c == MM_BOOL)
    return op_number(upper, c);
  return op_number(upper ? INFINITY : -INFINITY, c);
}

/* node->i: [0] compute dtype, [1] has_lo, [2] has_hi, [3] saved slot of lo or -1, [4] of hi */
static int clamp_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  mm_dtype c = (mm_dtype)node->i[0]; /* a float: some input needs a gradient */
  mm_bound lo = {node->i[1] != 0, NULL, {node->f[0], false}};
  mm_bound hi = {node->i[2] != 0, NULL, {node->f[1], false}};
  if (node->i[3] >= 0)
    lo.t = node->saved[node->i[3]];
  if (node->i[4] >= 0)
    hi.t = node->saved[node->i[4]];
  operand mops[3] = {op_tensor(node->saved[0], c), bound_operand(lo, c, false),
                     bound_operand(hi, c, true)};
  for (int k = 0; k < 3; k++) {
    if (!node->in[k].needs_grad)
      continue;
    kparam kp = {k, lo.set, hi.set};
    mm_tensor *mask = NULL, *r = NULL;
    if (map_run(ctx, node->name, NULL, MM_BOOL, 3, mops, cmask_kernels[c], &kp, &mask) != 0)
      return -1;
    operand wops[2] = {op_tensor(g, c), op_tensor(mask, MM_BOOL)};
    int rc = map_run(ctx, node->name, NULL, c, 2, wops, c == MM_FLOAT32 ? k_where_f32 : k_where_f64,
                     &kp, &r);
    mm_release(mask);
    if (rc != 0)
      return -1;
    if (!(grad_in[k] = grad_as(ctx, r, &node->in[k])))
      return -1;
  }
  return 0;
}

static int clamp_exec(mm_ctx *ctx, const mm_tensor *a, mm_bound lo, mm_bound hi, mm_tensor *self,
                      mm_tensor **result) {
  const char *name = self ? "clamp_" : "clamp";
  if (!lo.set && !hi.set)
    return mm_fail(ctx, "moonml.%s: at least one of min and max must be given", name);
  /* dtype: tensors first, then numbers by the wrapped-number rule */
  mm_dtype c = a->dtype;
  int nd = a->ndim;
  int64_t shape[MM_MAX_DIMS];
  memcpy(shape, a->shape, sizeof(int64_t) * (size_t)nd);
  const mm_bound *bs[2] = {&lo, &hi};
  for (int k = 0; k < 2; k++)
    if (bs[k]->set && bs[k]->t) {
      c = mm_promote(c, bs[k]->t->dtype);
      if (broadcast_with(ctx, name, &nd, shape, bs[k]->t) != 0)
        return -1;
    }
  for (int k = 0; k < 2; k++)
    if (bs[k]->set && !bs[k]->t)
      c = mm_scalar_promote(c, bs[k]->s);
  const mm_tensor *in[3] = {a, lo.set ? lo.t : NULL, hi.set ? hi.t : NULL};
  if (self) {
    if (check_inplace(ctx, name, self, c, nd, shape) != 0)
      return -1;
    if (grad_wanted(ctx, 3, in)) {
      mm_tensor *x0 = graph_clone(ctx, self), *out = NULL;
      if (lo.t == self) /* x:clamp_(x, ...) reads the old values through x0 too */
        lo.t = x0;
      if (hi.t == self)
        hi.t = x0;
      int rc = x0 ? clamp_exec(ctx, x0, lo, hi, NULL, &out) : -1;
      mm_release(x0);
      return rc == 0 ? adopt(ctx, self, out) : -1;
    }
  }
  operand ops[3] = {op_tensor(a, c), bound_operand(lo, c, false), bound_operand(hi, c, true)};
  kparam kp = {0};
  mm_tensor *dst = self && c == self->dtype ? self : NULL;
  if (map_run(ctx, name, dst, c, 3, ops, clamp_kernels[c], &kp, dst ? NULL : &dst) != 0)
    return -1;
  if (self)
    return finish_inplace(ctx, self, dst);
  mm_node *node;
  if (mm_node_begin(ctx, "ClampBackward", clamp_backward, 3, in, &node) != 0) {
    mm_release(dst);
    return -1;
  }
  if (node) {
    node->i[0] = c;
    node->i[1] = lo.set;
    node->i[2] = hi.set;
    node->f[0] = lo.s.value;
    node->f[1] = hi.s.value;
    int slot = 1;
    node->i[3] = in[1] ? slot++ : -1;
    node->i[4] = in[2] ? slot++ : -1;
    if (save_all(ctx, node, 3, in) != 0) {
      mm_release(dst);
      return -1;
    }
    mm_node_attach(node, dst);
  }
  *result = dst;
  return 0;
}

mm_tensor *mm_clamp(mm_ctx *ctx, const mm_tensor *a, mm_bound min, mm_bound max) {
  mm_tensor *r = NULL;
  return clamp_exec(ctx, a, min, max, NULL, &r) == 0 ? r : NULL;
}

int mm_clamp_(mm_ctx *ctx, mm_tensor *a, mm_bound min, mm_bound max) {
  return clamp_exec(ctx, a, min, max, a, NULL);
}

/* ------------------------------------------------------------------ maximum, minimum */

static const mm_inner_fn max_kernels[MM_DTYPE_COUNT] = {[MM_FLOAT32] = k_max_f32,
                                                        [MM_FLOAT64] = k_max_f64,
                                                        [MM_INT64] = k_max_i64,
                                                        [MM_BOOL] = k_max_b};
static const mm_inner_fn min_kernels[MM_DTYPE_COUNT] = {[MM_FLOAT32] = k_min_f32,
                                                        [MM_FLOAT64] = k_min_f64,
                                                        [MM_INT64] = k_min_i64,
                                                        [MM_BOOL] = k_min_b};

/* node->i: [0] 1 for minimum, [1] compute dtype (float: only floats need a gradient) */
static int minmax_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  mm_dtype c = (mm_dtype)node->i[1];
  operand ops[3] = {op_tensor(g, c), op_tensor(node->saved[0], c), op_tensor(node->saved[1], c)};
  for (int k = 0; k < 2; k++) {
    if (!node->in[k].needs_grad)
      continue;
    kparam kp = {(int)node->i[0] | (k << 1), false, false};
    mm_tensor *r = NULL;
    if (map_run(ctx, node->name, NULL, c, 3, ops, c == MM_FLOAT32 ? k_dminmax_f32 : k_dminmax_f64,
                &kp, &r) != 0)
      return -1;
    if (!(grad_in[k] = grad_as(ctx, r, &node->in[k])))
      return -1;
  }
  return 0;
}

static int minmax_exec(mm_ctx *ctx, bool is_min, const mm_tensor *a, const mm_tensor *b,
                       mm_tensor *self, mm_tensor **result) {
  const char *name = is_min ? (self ? "minimum_" : "minimum") : (self ? "maximum_" : "maximum");
  mm_dtype c = mm_promote(a->dtype, b->dtype);
  int nd;
  int64_t shape[MM_MAX_DIMS];
  if (mm_broadcast_shape(ctx, name, a->ndim, a->shape, b->ndim, b->shape, &nd, shape) != 0)
    return -1;
  const mm_tensor *in[2] = {a, b};
  if (self) {
    if (check_inplace(ctx, name, self, c, nd, shape) != 0)
      return -1;
    if (grad_wanted(ctx, 2, in)) {
      mm_tensor *x0 = graph_clone(ctx, self), *out = NULL;
      /* b may be self itself (x:maximum_(x)): read the old values through x0 then too */
      int rc = x0 ? minmax_exec(ctx, is_min, x0, b == self ? x0 : b, NULL, &out) : -1;
      mm_release(x0);
      return rc == 0 ? adopt(ctx, self, out) : -1;
    }
  }
  operand ops[2] = {op_tensor(a, c), op_tensor(b, c)};
  kparam kp = {0};
  mm_tensor *dst = self && c == self->dtype ? self : NULL;
  mm_inner_fn fn = is_min ? min_kernels[c] : max_kernels[c];
  if (map_run(ctx, name, dst, c, 2, ops, fn, &kp, dst ? NULL : &dst) != 0)
    return -1;
  if (self)
    return finish_inplace(ctx, self, dst);
  mm_node *node;
  if (mm_node_begin(ctx, is_min ? "MinimumBackward" : "MaximumBackward", minmax_backward, 2, in,
                    &node) != 0) {
    mm_release(dst);
    return -1;
  }
  if (node) {
    node->i[0] = is_min;
    node->i[1] = c;
    if (save_all(ctx, node, 2, in) != 0) {
      mm_release(dst);
      return -1;
    }
    mm_node_attach(node, dst);
  }
  *result = dst;
  return 0;
}

mm_tensor *mm_maximum(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b) {
  mm_tensor *r = NULL;
  return minmax_exec(ctx, false, a, b, NULL, &r) == 0 ? r : NULL;
}

mm_tensor *mm_minimum(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b) {
  mm_tensor *r = NULL;
  return minmax_exec(ctx, true, a, b, NULL, &r) == 0 ? r : NULL;
}

int mm_maximum_(mm_ctx *ctx, mm_tensor *a, const mm_tensor *b) {
  return minmax_exec(ctx, false, a, b, a, NULL);
}

int mm_minimum_(mm_ctx *ctx, mm_tensor *a, const mm_tensor *b) {
  return minmax_exec(ctx, true, a, b, a, NULL);
}

/* ------------------------------------------------------------------ lerp */

/* d/dstart = g (1 - w), d/dend = g w, d/dweight = g (end - start); node->f[0] is a number
 * weight, saved: start, end [, weight] */
static int lerp_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  const mm_tensor *s = node->saved[0], *e = node->saved[1];
  const mm_tensor *w = node->n_saved > 2 ? node->saved[2] : NULL;
  double ws = node->f[0];
  if (node->in[0].needs_grad) {
    mm_tensor *omw = w ? mm_binary_scalar(ctx, MM_OP_SUB, w, (mm_scalar){1, true}, true) : NULL;
    if (w && !omw)
      return -1;
    grad_in[0] = w ? mm_binary(ctx, MM_OP_MUL, g, omw)
                   : mm_binary_scalar(ctx, MM_OP_MUL, g, (mm_scalar){1 - ws, false}, false);
    mm_release(omw);
    if (!grad_in[0])
      return -1;
  }
  if (node->in[1].needs_grad) {
    grad_in[1] = w ? mm_binary(ctx, MM_OP_MUL, g, w)
                   : mm_binary_scalar(ctx, MM_OP_MUL, g, (mm_scalar){ws, false}, false);
    if (!grad_in[1])
      return -1;
  }
  if (w && node->in[2].needs_grad) {
    mm_tensor *d = mm_binary(ctx, MM_OP_SUB, e, s);
    grad_in[2] = d ? mm_binary(ctx, MM_OP_MUL, g, d) : NULL;
    mm_release(d);
    if (!grad_in[2])
      return -1;
  }
  return 0;
}

static int lerp_exec(mm_ctx *ctx, const mm_tensor *s, const mm_tensor *e, const mm_tensor *w,
                     double ws, mm_tensor *self, mm_tensor **result) {
  const char *name = self ? "lerp_" : "lerp";
  mm_dtype c = s->dtype;
  if (!mm_dtype_is_float(c))
    return mm_fail(ctx, "moonml.%s: start must be a float tensor, got %s", name, mm_dtype_name(c));
  if (e->dtype != c)
    return mm_fail(ctx, "moonml.%s: end must have start's dtype %s, got %s", name, mm_dtype_name(c),
                   mm_dtype_name(e->dtype));
  if (w && w->dtype != c)
    return mm_fail(ctx, "moonml.%s: weight must have start's dtype %s, got %s", name,
                   mm_dtype_name(c), mm_dtype_name(w->dtype));
  int nd;
  int64_t shape[MM_MAX_DIMS];
  if (mm_broadcast_shape(ctx, name, s->ndim, s->shape, e->ndim, e->shape, &nd, shape) != 0)
    return -1;
  if (w && broadcast_with(ctx, name, &nd, shape, w) != 0)
    return -1;
  const mm_tensor *in[3] = {s, e, w};
  if (self) {
    if (check_inplace(ctx, name, self, c, nd, shape) != 0)
      return -1;
    if (grad_wanted(ctx, 3, in)) {
      mm_tensor *x0 = graph_clone(ctx, self), *out = NULL;
      int rc = x0 ? lerp_exec(ctx, x0, e == self ? x0 : e, w == self ? x0 : w, ws, NULL, &out) : -1;
      mm_release(x0);
      return rc == 0 ? adopt(ctx, self, out) : -1;
    }
  }
  operand ops[3] = {op_tensor(s, c), op_tensor(e, c), w ? op_tensor(w, c) : op_number(ws, c)};
  kparam kp = {0};
  mm_tensor *dst = self;
  if (map_run(ctx, name, dst, c, 3, ops, c == MM_FLOAT32 ? k_lerp_f32 : k_lerp_f64, &kp,
              dst ? NULL : &dst) != 0)
    return -1;
  if (self)
    return finish_inplace(ctx, self, dst);
  mm_node *node;
  if (mm_node_begin(ctx, "LerpBackward", lerp_backward, 3, in, &node) != 0) {
    mm_release(dst);
    return -1;
  }
  if (node) {
    node->f[0] = ws;
    if (save_all(ctx, node, 3, in) != 0) {
      mm_release(dst);
      return -1;
    }
    mm_node_attach(node, dst);
  }
  *result = dst;
  return 0;
}

mm_tensor *mm_lerp(mm_ctx *ctx, const mm_tensor *start, const mm_tensor *end, const mm_tensor *w,
                   double ws) {
  mm_tensor *r = NULL;
  return lerp_exec(ctx, start, end, w, ws, NULL, &r) == 0 ? r : NULL;
}

int mm_lerp_(mm_ctx *ctx, mm_tensor *start, const mm_tensor *end, const mm_tensor *w, double ws) {
  return lerp_exec(ctx, start, end, w, ws, start, NULL);
}
