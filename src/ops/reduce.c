/* Reductions -- sum, mean, max, min, argmax, argmin over all elements or along one dim
 * -- and softmax / log_softmax along one dim.
 *
 * The hot loops (the #else branch at the end of this file) are written once with GCC /
 * Clang vector extensions and compiled twice by including this file into itself: with
 * 16-byte vectors for any target (SSE2, NEON), and on x86-64 with 32-byte vectors, AVX2
 * and FMA, picked at run time when the CPU has them. The rest of the file is plain C:
 * it chooses, for each run of outputs, whether to reduce along contiguous rows or to
 * accumulate whole rows of columns, so that strided inputs never cost a division per
 * element. */
#ifndef MM_REDUCE_PASS

#include "../autograd/autograd.h"
#include "../core/internal.h"
#include "vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define MM_REDUCE_X86 1
#include <immintrin.h>
#else
#define MM_REDUCE_X86 0
#endif

/* What each instruction set provides; every pass fills one of these. */
typedef struct {
  double (*sum_f32)(const float *x, int64_t n);
  double (*sum_f64)(const double *x, int64_t n);
  /* first position of the largest / smallest value; a NaN wins (the first one) */
  int64_t (*max_f32)(const float *x, int64_t n, float *value);
  int64_t (*min_f32)(const float *x, int64_t n, float *value);
  /* acc[j] += x[r * rs + j] over `rows` rows of n (<= COLS) columns */
  void (*col_sum_f32)(double *acc, const float *x, int64_t rs, int64_t rows, int64_t n);
  void (*col_max_f32)(float *best, int64_t *pos, const float *x, int64_t n, int64_t r);
  void (*col_min_f32)(float *best, int64_t *pos, const float *x, int64_t n, int64_t r);
  /* softmax pieces: the largest non-NaN value (-inf if none), sum of exp(x - m) (y, if
   * not NULL, receives the terms), y *= s, y = (x - m) - l */
  float (*rowmax_f32)(const float *x, int64_t n);
  double (*expsum_f32)(const float *x, float *y, int64_t n, float m);
  void (*scale_f32)(float *y, int64_t n, float s);
  void (*shift_f32)(const float *x, float *y, int64_t n, float m, float l);
  /* the same across columns: m[j] = max(m[j], x[j]); e[j] = exp(x[j] - m[j]) and
   * s[j] += e[j]; y[j] = (x[j] - m[j]) - l[j]; y[j] *= s[j] */
  void (*colmax_f32)(float *m, const float *x, int64_t n);
  void (*colexp_f32)(const float *x, const float *m, float *e, float *s, int64_t n);
  void (*colshift_f32)(const float *x, const float *m, const float *l, float *y, int64_t n);
  void (*colmul_f32)(float *y, const float *s, int64_t n);
} mm_red_kernels;

/* A full reduction is cut into chunks of this many elements; their partial results are
 * combined in order, so the result does not depend on the thread count. */
#define RED_CHUNK ((int64_t)1 << 18)
#define RED_MAX_CHUNKS 64
/* A thread gets at least this many input elements to work on. */
#define RED_GRAIN ((int64_t)1 << 17)
/* Outputs reduced together when the reduced dim is not the innermost one. */
#define COLS 1024
/* Strided softmax rows are gathered in pieces of this many elements. */
#define PIECE 256

#define MM_REDUCE_PASS 1
#define KN(name) name##_v16
#define KTARGET
#define KVB 16
#define KFMA(a, b, c) ((a) * (b) + (c))
#include "reduce.c"
#undef KN
#undef KTARGET
#undef KVB
#undef KFMA

#if MM_REDUCE_X86
#define KN(name) name##_avx2
#define KTARGET __attribute__((target("avx2,fma")))
#define KVB 32
#define KFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#include "reduce.c"
#undef KN
#undef KTARGET
#undef KVB
#undef KFMA
#endif
#undef MM_REDUCE_PASS

static const mm_red_kernels *kernels(void) {
#if MM_REDUCE_X86
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return &kernels_avx2;
#endif
  return &kernels_v16;
}

/* ------------------------------------------------------------------ ops and dtypes */

static const char *op_name(mm_reduce_op op) {
  static const char *const names[] = {"sum", "mean", "max", "min", "argmax", "argmin"};
  return op >= 0 && op < MM_REDUCE_OP_COUNT ? names[op] : "reduce";
}

static bool is_best(mm_reduce_op op) { return op >= MM_RED_MAX; } /* max min argmax argmin */
static bool is_max_op(mm_reduce_op op) { return op == MM_RED_MAX || op == MM_RED_ARGMAX; }

/* The result dtype, as in PyTorch; -1 with a message for inputs PyTorch refuses. */
static int result_dtype(mm_ctx *ctx, mm_reduce_op op, const mm_tensor *a, mm_dtype *out) {
  if (op < 0 || op >= MM_REDUCE_OP_COUNT)
    return mm_fail(ctx, "moonml.reduce: unknown reduction %d", (int)op);
  const char *name = op_name(op);
  if (!a)
    return mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", name);
  bool fl = mm_dtype_is_float(a->dtype);
  switch (op) {
  case MM_RED_SUM:
    *out = fl ? a->dtype : MM_INT64;
    break;
  case MM_RED_MEAN:
    if (!fl)
      return mm_fail(ctx, "moonml.mean: needs a floating-point tensor, got %s",
                     mm_dtype_name(a->dtype));
    *out = a->dtype;
    break;
  case MM_RED_MAX:
  case MM_RED_MIN:
    *out = a->dtype;
    break;
  default:
    if (a->dtype == MM_BOOL)
      return mm_fail(ctx, "moonml.%s: not defined for bool tensors", name);
    *out = MM_INT64;
    break;
  }
  return 0;
}

static double load_f(const char *p, mm_dtype dt) {
  return dt == MM_FLOAT32 ? (double)*(const float *)p : *(const double *)p;
}

static int64_t load_i(const char *p, mm_dtype dt) {
  return dt == MM_BOOL ? (int64_t)(*(const uint8_t *)p != 0) : *(const int64_t *)p;
}

/* ------------------------------------------------------------------ runs */

typedef struct {
  double f;   /* float inputs */
  uint64_t i; /* int64 and bool inputs; wraps around on overflow as PyTorch does */
} sum_state;

typedef struct {
  double v;      /* best value of a float input */
  int64_t iv;    /* best value of an int64 or bool input */
  int64_t index; /* its position; -1 before the first element */
} best_state;

/* Adds the n elements at p (byte stride s) to *acc. */
static void run_sum(const mm_red_kernels *k, mm_dtype dt, const char *p, int64_t s, int64_t n,
                    sum_state *acc) {
  if (dt == MM_FLOAT32 && s == (int64_t)sizeof(float)) {
    acc->f += k->sum_f32((const float *)p, n);
  } else if (dt == MM_FLOAT64 && s == (int64_t)sizeof(double)) {
    acc->f += k->sum_f64((const double *)p, n);
  } else if (dt == MM_FLOAT32 || dt == MM_FLOAT64) {
    double t0 = 0, t1 = 0;
    int64_t i = 0;
    for (; i + 1 < n; i += 2) {
      t0 += load_f(p + i * s, dt);
      t1 += load_f(p + (i + 1) * s, dt);
    }
    if (i < n)
      t0 += load_f(p + i * s, dt);
    acc->f += t0 + t1;
  } else if (dt == MM_INT64) {
    uint64_t t = 0;
    for (int64_t i = 0; i < n; i++)
      t += (uint64_t) * (const int64_t *)(p + i * s);
    acc->i += t;
  } else {
    uint64_t t = 0;
    for (int64_t i = 0; i < n; i++)
      t += p[i * s] != 0;
    acc->i += t;
  }
}

/* The largest (is_max) or smallest of the n elements at p; positions start at pos.
 * Ties keep the first position; a NaN beats everything and the first NaN is kept. */
static best_state run_best(const mm_red_kernels *k, mm_dtype dt, bool is_max, const char *p,
                           int64_t s, int64_t n, int64_t pos) {
  best_state b = {0, 0, -1};
  if (n <= 0)
    return b;
  if (dt == MM_FLOAT32 && s == (int64_t)sizeof(float)) {
    float v = 0;
    int64_t i = (is_max ? k->max_f32 : k->min_f32)((const float *)p, n, &v);
    b.v = v;
    b.index = pos + i;
  } else if (dt == MM_FLOAT32 || dt == MM_FLOAT64) {
    double bv = load_f(p, dt);
    int64_t bi = 0;
    for (int64_t i = 1; i < n && bv == bv; i++) {
      double v = load_f(p + i * s, dt);
      if (v != v || (is_max ? v > bv : v < bv)) {
        bv = v;
        bi = i;
      }
    }
    b.v = bv;
    b.index = pos + bi;
  } else {
    int64_t bv = load_i(p, dt), bi = 0;
    for (int64_t i = 1; i < n; i++) {
      int64_t v = load_i(p + i * s, dt);
      if (is_max ? v > bv : v < bv) {
        bv = v;
        bi = i;
      }
    }
    b.iv = bv;
    b.index = pos + bi;
  }
  return b;
}

/* Folds c (which comes after s in order) into s. */
static void best_merge(best_state *s, const best_state *c, bool fl, bool is_max) {
  if (c->index < 0)
    return;
  if (s->index < 0) {
    *s = *c;
    return;
  }
  if (fl) {
    if (s->v != s->v)
      return; /* the first NaN stays */
    if (c->v != c->v || (is_max ? c->v > s->v : c->v < s->v))
      *s = *c;
  } else if (is_max ? c->iv > s->iv : c->iv < s->iv) {
    *s = *c;
  }
}

/* Writes one result: the value into o (out_dt) and, when ix is not NULL, the position. */
static void put_result(mm_reduce_op op, mm_dtype dt, mm_dtype out_dt, char *o, char *ix,
                       const sum_state *sum, const best_state *best, int64_t count) {
  switch (op) {
  case MM_RED_SUM:
    if (out_dt == MM_FLOAT32)
      *(float *)o = (float)sum->f;
    else if (out_dt == MM_FLOAT64)
      *(double *)o = sum->f;
    else
      *(int64_t *)o = (int64_t)sum->i;
    break;
  case MM_RED_MEAN:
    /* an empty mean is 0/0: NaN, as in PyTorch */
    if (out_dt == MM_FLOAT32)
      *(float *)o = (float)(sum->f / (double)count);
    else
      *(double *)o = sum->f / (double)count;
    break;
  case MM_RED_MAX:
  case MM_RED_MIN:
    if (dt == MM_FLOAT32)
      *(float *)o = (float)best->v;
    else if (dt == MM_FLOAT64)
      *(double *)o = best->v;
    else if (dt == MM_INT64)
      *(int64_t *)o = best->iv;
    else
      *(uint8_t *)o = (uint8_t)best->iv;
    if (ix)
      *(int64_t *)ix = best->index;
    break;
  default:
    *(int64_t *)o = best->index;
    break;
  }
}

/* ------------------------------------------------------------------ over an iterator */

struct all_part;

typedef struct {
  const mm_red_kernels *k;
  const mm_iter *it;
  mm_reduce_op op;
  mm_dtype dt;
  int64_t n, nchunks;
  struct all_part *parts;
} all_job;

typedef struct all_part {
  const all_job *job;
  int64_t pos;
  sum_state sum;
  best_state best;
} all_part;

static void all_run(char **ptrs, const int64_t *strides, int64_t n, void *arg) {
  all_part *pt = arg;
  const all_job *job = pt->job;
  if (is_best(job->op)) {
    best_state c = run_best(job->k, job->dt, is_max_op(job->op), ptrs[0], strides[0], n, pt->pos);
    best_merge(&pt->best, &c, mm_dtype_is_float(job->dt), is_max_op(job->op));
  } else {
    run_sum(job->k, job->dt, ptrs[0], strides[0], n, &pt->sum);
  }
  pt->pos += n;
}

static void all_chunks(int64_t c0, int64_t c1, void *arg) {
  all_job *job = arg;
  for (int64_t c = c0; c < c1; c++) {
    int64_t begin = job->n * c / job->nchunks, end = job->n * (c + 1) / job->nchunks;
    job->parts[c].pos = begin;
    mm_iter_run_range(job->it, all_run, &job->parts[c], begin, end);
  }
}

/* Reduces every element the iterator visits, in logical order (positions are flat
 * indices), split over threads by fixed chunks. */
static void reduce_iter(const mm_red_kernels *k, const mm_iter *it, mm_reduce_op op, mm_dtype dt,
                        sum_state *sum, best_state *best) {
  all_part parts[RED_MAX_CHUNKS];
  int64_t nchunks = it->numel / RED_CHUNK;
  if (nchunks < 1)
    nchunks = 1;
  if (nchunks > RED_MAX_CHUNKS)
    nchunks = RED_MAX_CHUNKS;
  all_job job = {k, it, op, dt, it->numel, nchunks, parts};
  for (int64_t c = 0; c < nchunks; c++)
    parts[c] = (all_part){&job, 0, {0, 0}, {0, 0, -1}};
  mm_parallel_for(nchunks, 1, all_chunks, &job);
  *sum = (sum_state){0, 0};
  *best = (best_state){0, 0, -1};
  for (int64_t c = 0; c < nchunks; c++) {
    sum->f += parts[c].sum.f;
    sum->i += parts[c].sum.i;
    best_merge(best, &parts[c].best, mm_dtype_is_float(dt), is_max_op(op));
  }
}

/* ------------------------------------------------------------------ autograd */

/* sum, mean, max and min are differentiable; argmax and argmin are not */
static bool reduce_recording(const mm_ctx *ctx, mm_reduce_op op, const mm_tensor *a) {
  return ctx->grad_enabled && a->requires_grad && op <= MM_RED_MIN;
}

/* Gradients go back in the input's dtype, whatever dtype reached the node. */
static int grad_to_input_dtype(mm_ctx *ctx, const mm_node *node, mm_tensor **gi) {
  if (!gi[0])
    return -1;
  if (gi[0]->dtype == node->in[0].dtype)
    return 0;
  mm_tensor *c = mm_to_dtype(ctx, gi[0], node->in[0].dtype);
  mm_release(gi[0]);
  gi[0] = c;
  return c ? 0 : -1;
}

/* sum / mean: g, with the reduced dim put back (node->i[1] >= 0: one dim, node->i[2]:
 * keepdim; -1: all dims), expanded to the input's shape; mean divides by the count first. */
static mm_tensor *spread_back(mm_ctx *ctx, const mm_node *node, const mm_tensor *g) {
  const mm_edge *e = &node->in[0];
  int dim = (int)node->i[1];
  int64_t count = 1;
  for (int d = 0; d < e->ndim; d++)
    if (dim < 0 || d == dim)
      count *= e->shape[d];
  mm_tensor *q;
  if (node->i[0] == MM_RED_MEAN) {
    q = mm_binary_scalar(ctx, MM_OP_DIV, g, (mm_scalar){(double)count, true}, false);
  } else {
    mm_retain((mm_tensor *)g);
    q = (mm_tensor *)g;
  }
  if (q && dim >= 0 && !node->i[2] && e->ndim > 0) {
    mm_tensor *u = mm_unsqueeze(ctx, q, dim);
    mm_release(q);
    q = u;
  }
  if (!q)
    return NULL;
  mm_tensor *r = mm_expand(ctx, q, e->ndim, e->shape);
  mm_release(q);
  return r;
}

typedef struct {
  mm_dtype dt;
  double value;
  int64_t count;
} tie_arg;

/* out = 1 where a holds the selected value (NaN: where a is NaN), else 0; counts them */
static void tie_mark(char **p, const int64_t *s, int64_t n, void *arg) {
  tie_arg *t = arg;
  bool nan = t->value != t->value;
  for (int64_t i = 0; i < n; i++) {
    double x = load_f(p[1] + i * s[1], t->dt);
    bool hit = nan ? x != x : x == t->value;
    t->count += hit;
    if (t->dt == MM_FLOAT32)
      *(float *)(p[0] + i * s[0]) = hit;
    else
      *(double *)(p[0] + i * s[0]) = hit;
  }
}

/* max() / min() over all elements: like PyTorch 1.13, the gradient is shared evenly among
 * the elements equal to the result. */
static mm_tensor *ties_backward(mm_ctx *ctx, const mm_node *node, const mm_tensor *g) {
  const mm_tensor *a = node->saved[0];
  mm_tensor *out = mm_empty(ctx, a->dtype, a->ndim, a->shape);
  if (!out)
    return NULL;
  tie_arg t = {a->dtype, node->f[0], 0};
  mm_iter it;
  mm_tensor *ts[2] = {out, (mm_tensor *)a};
  mm_iter_init(&it, 2, ts);
  mm_iter_run_range(&it, tie_mark, &t, 0, it.numel); /* one thread: t.count */
  int64_t n = mm_numel(out);
  double gv = mm_get_double(g, NULL);
  if (out->dtype == MM_FLOAT32) {
    float q = (float)gv / (float)t.count, *o = mm_data(out);
    for (int64_t i = 0; i < n; i++)
      o[i] = o[i] != 0.0f ? q : 0.0f;
  } else {
    double q = gv / (double)t.count, *o = mm_data(out);
    for (int64_t i = 0; i < n; i++)
      o[i] = o[i] != 0.0 ? q : 0.0;
  }
  return out;
}

typedef struct {
  int64_t step; /* bytes between neighbours along the reduced dim of the gradient */
  size_t es;
} scatter_arg;

/* p[0]: the gradient at position 0 of the reduced dim, p[1]: g, p[2]: the position */
static void scatter_run(char **p, const int64_t *s, int64_t n, void *arg) {
  const scatter_arg *sa = arg;
  for (int64_t i = 0; i < n; i++) {
    int64_t k = *(const int64_t *)(p[2] + i * s[2]);
    memcpy(p[0] + i * s[0] + k * sa->step, p[1] + i * s[1], sa->es);
  }
}

/* t seen with the reduced dim kept (size 1), as a header on the stack */
static void keepdim_header(const mm_tensor *t, int dim, bool keepdim, mm_tensor *h) {
  *h = *t;
  if (keepdim)
    return;
  for (int d = t->ndim; d > dim; d--) {
    h->shape[d] = t->shape[d - 1];
    h->stride[d] = t->stride[d - 1];
  }
  h->shape[dim] = 1;
  h->stride[dim] = 0;
  h->ndim = t->ndim + 1;
}

/* max(dim) / min(dim): each output's gradient goes to the position it was taken from. */
static mm_tensor *scatter_backward(mm_ctx *ctx, const mm_node *node, const mm_tensor *g) {
  const mm_edge *e = &node->in[0];
  if (e->ndim == 0) {
    mm_retain((mm_tensor *)g);
    return (mm_tensor *)g;
  }
  int dim = (int)node->i[1];
  mm_tensor *out = mm_zeros(ctx, g->dtype, e->ndim, e->shape);
  if (!out || mm_numel(g) == 0)
    return out;
  mm_tensor hz = *out, hg, hi;
  hz.shape[dim] = 1;
  keepdim_header(g, dim, node->i[2], &hg);
  keepdim_header(node->saved[0], dim, node->i[2], &hi);
  mm_tensor *ts[3] = {&hz, &hg, &hi};
  mm_iter it;
  mm_iter_init(&it, 3, ts);
  size_t es = mm_dtype_size(out->dtype);
  scatter_arg sa = {out->stride[dim] * (int64_t)es, es};
  mm_iter_run(&it, scatter_run, &sa);
  return out;
}

static int reduce_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **gi) {
  mm_reduce_op op = (mm_reduce_op)node->i[0];
  if (op == MM_RED_SUM || op == MM_RED_MEAN)
    gi[0] = spread_back(ctx, node, g);
  else if (node->i[1] < 0)
    gi[0] = ties_backward(ctx, node, g);
  else
    gi[0] = scatter_backward(ctx, node, g);
  return grad_to_input_dtype(ctx, node, gi);
}

/* Attaches the node of a reduction of a over dim (-1: all) to out. saved: the input (max /
 * min over all) or the positions (max / min over a dim); value: the selected value. */
static int reduce_record(mm_ctx *ctx, mm_reduce_op op, const mm_tensor *a, mm_tensor *out, int dim,
                         bool keepdim, const mm_tensor *saved, double value) {
  static const char *const names[] = {"SumBackward", "MeanBackward", "MaxBackward", "MinBackward"};
  mm_node *node;
  if (mm_node_begin(ctx, names[op], reduce_backward, 1, &a, &node) != 0)
    return -1;
  node->i[0] = op;
  node->i[1] = dim;
  node->i[2] = keepdim;
  node->f[0] = value;
  if (saved && mm_node_save(ctx, node, saved) != 0) {
    mm_node_release(node);
    return -1;
  }
  mm_node_attach(node, out);
  return 0;
}

mm_tensor *mm_reduce_all(mm_ctx *ctx, mm_reduce_op op, const mm_tensor *a) {
  mm_dtype out_dt = MM_FLOAT32;
  if (result_dtype(ctx, op, a, &out_dt) != 0)
    return NULL;
  int64_t n = mm_numel(a);
  if (n == 0 && is_best(op)) {
    char sh[96];
    mm_fail(ctx, "moonml.%s: the tensor is empty (shape %s); give a dim whose size is not 0",
            op_name(op), mm_shape_str(sh, sizeof sh, a->ndim, a->shape));
    return NULL;
  }
  int64_t none[1] = {0};
  mm_tensor *out = mm_empty(ctx, out_dt, 0, none);
  if (!out)
    return NULL;
  sum_state sum = {0, 0};
  best_state best = {0, 0, -1};
  if (n > 0) {
    mm_iter it;
    mm_tensor *ts[1] = {(mm_tensor *)a};
    mm_iter_init(&it, 1, ts);
    reduce_iter(kernels(), &it, op, a->dtype, &sum, &best);
  }
  put_result(op, a->dtype, out_dt, mm_data(out), NULL, &sum, &best, n);
  if (reduce_recording(ctx, op, a) &&
      reduce_record(ctx, op, a, out, -1, false, is_best(op) ? a : NULL, best.v) != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

/* ------------------------------------------------------------------ along one dim */

/* The dims of a other than skip, by decreasing |stride| (stable), so that the iterator
 * over them runs along the innermost memory dim. Returns how many. */
static int kept_dims(const mm_tensor *a, int skip, int *dims) {
  int n = 0;
  for (int d = 0; d < a->ndim; d++) {
    if (d == skip)
      continue;
    int j = n++;
    while (j > 0 && llabs(a->stride[dims[j - 1]]) < llabs(a->stride[d])) {
      dims[j] = dims[j - 1];
      j--;
    }
    dims[j] = d;
  }
  return n;
}

/* A header (on the stack, not counted) viewing dims[0..n) of t. */
static void sub_view(mm_tensor *v, const mm_tensor *t, int n, const int *dims) {
  *v = *t;
  v->ndim = n;
  for (int i = 0; i < n; i++) {
    v->shape[i] = t->shape[dims[i]];
    v->stride[i] = t->stride[dims[i]];
  }
}

typedef struct {
  const mm_red_kernels *k;
  mm_reduce_op op;
  mm_dtype dt, out_dt;
  int64_t R, rs; /* size of the reduced dim; its stride in a, in bytes */
  bool with_idx; /* ptrs[2] receives the positions of MAX / MIN */
  mm_iter it;    /* over {out, a, idx} without the reduced dim */
} dim_job;

/* Each of the n outputs reduces its own run along the reduced dim. */
static void dim_rows(const dim_job *job, char *o, int64_t os, const char *x, int64_t xs, char *ix,
                     int64_t is, int64_t n) {
  bool best = is_best(job->op);
  for (int64_t i = 0; i < n; i++) {
    sum_state sum = {0, 0};
    best_state b = {0, 0, -1};
    const char *p = x + i * xs;
    if (best)
      b = run_best(job->k, job->dt, is_max_op(job->op), p, job->rs, job->R, 0);
    else
      run_sum(job->k, job->dt, p, job->rs, job->R, &sum);
    put_result(job->op, job->dt, job->out_dt, o + i * os, ix ? ix + i * is : NULL, &sum, &b,
               job->R);
  }
}

/* The n (<= COLS) outputs lie along the kept inner dim (stride xs): whole rows of them
 * are folded in at once, walking the reduced dim in the outer loop. */
static void dim_cols_sum(const dim_job *job, char *o, int64_t os, const char *x, int64_t xs,
                         int64_t n) {
  mm_dtype dt = job->dt;
  int64_t R = job->R, rs = job->rs;
  union {
    double f[COLS];
    uint64_t i[COLS];
  } acc;
  bool fl = mm_dtype_is_float(dt);
  for (int64_t j = 0; j < n; j++) {
    if (fl)
      acc.f[j] = 0;
    else
      acc.i[j] = 0;
  }
  if (dt == MM_FLOAT32 && xs == (int64_t)sizeof(float)) {
    /* byte strides of a float32 tensor are multiples of 4 */
    job->k->col_sum_f32(acc.f, (const float *)x, rs / (int64_t)sizeof(float), R, n);
  } else {
    for (int64_t r = 0; r < R; r++) {
      const char *row = x + r * rs;
      if (fl) {
        for (int64_t j = 0; j < n; j++)
          acc.f[j] += load_f(row + j * xs, dt);
      } else if (dt == MM_INT64) {
        for (int64_t j = 0; j < n; j++)
          acc.i[j] += (uint64_t) * (const int64_t *)(row + j * xs);
      } else {
        for (int64_t j = 0; j < n; j++)
          acc.i[j] += row[j * xs] != 0;
      }
    }
  }
  for (int64_t j = 0; j < n; j++) {
    sum_state s = {fl ? acc.f[j] : 0, fl ? 0 : acc.i[j]};
    put_result(job->op, dt, job->out_dt, o + j * os, NULL, &s, NULL, R);
  }
}

static void dim_cols_best(const dim_job *job, char *o, int64_t os, const char *x, int64_t xs,
                          char *ix, int64_t is, int64_t n) {
  mm_dtype dt = job->dt;
  int64_t R = job->R, rs = job->rs;
  bool is_max = is_max_op(job->op);
  int64_t pos[COLS];
  union {
    float f[COLS];
    double d[COLS];
    int64_t i[COLS];
  } b;
  float tmp[COLS];
  for (int64_t j = 0; j < n; j++)
    pos[j] = 0;
  if (dt == MM_FLOAT32) {
    for (int64_t j = 0; j < n; j++)
      b.f[j] = *(const float *)(x + j * xs);
    for (int64_t r = 1; r < R; r++) {
      const char *row = x + r * rs;
      const float *v = (const float *)row;
      if (xs != (int64_t)sizeof(float)) {
        for (int64_t j = 0; j < n; j++)
          tmp[j] = *(const float *)(row + j * xs);
        v = tmp;
      }
      (is_max ? job->k->col_max_f32 : job->k->col_min_f32)(b.f, pos, v, n, r);
    }
  } else if (dt == MM_FLOAT64) {
    for (int64_t j = 0; j < n; j++)
      b.d[j] = *(const double *)(x + j * xs);
    for (int64_t r = 1; r < R; r++) {
      const char *row = x + r * rs;
      for (int64_t j = 0; j < n; j++) {
        double v = *(const double *)(row + j * xs);
        if (b.d[j] == b.d[j] && (v != v || (is_max ? v > b.d[j] : v < b.d[j]))) {
          b.d[j] = v;
          pos[j] = r;
        }
      }
    }
  } else {
    for (int64_t j = 0; j < n; j++)
      b.i[j] = load_i(x + j * xs, dt);
    for (int64_t r = 1; r < R; r++) {
      const char *row = x + r * rs;
      for (int64_t j = 0; j < n; j++) {
        int64_t v = load_i(row + j * xs, dt);
        if (is_max ? v > b.i[j] : v < b.i[j]) {
          b.i[j] = v;
          pos[j] = r;
        }
      }
    }
  }
  for (int64_t j = 0; j < n; j++) {
    best_state s = {0, 0, pos[j]};
    if (dt == MM_FLOAT32)
      s.v = b.f[j];
    else if (dt == MM_FLOAT64)
      s.v = b.d[j];
    else
      s.iv = b.i[j];
    put_result(job->op, dt, job->out_dt, o + j * os, ix ? ix + j * is : NULL, NULL, &s, R);
  }
}

static void dim_run(char **ptrs, const int64_t *st, int64_t n, void *arg) {
  const dim_job *job = arg;
  char *ix = job->with_idx ? ptrs[2] : NULL;
  int64_t is = job->with_idx ? st[2] : 0;
  /* rows when the reduced dim is the more contiguous one, else columns */
  if (n == 1 || llabs(job->rs) <= llabs(st[1])) {
    dim_rows(job, ptrs[0], st[0], ptrs[1], st[1], ix, is, n);
    return;
  }
  for (int64_t j = 0; j < n; j += COLS) {
    int64_t c = n - j < COLS ? n - j : COLS;
    if (is_best(job->op))
      dim_cols_best(job, ptrs[0] + j * st[0], st[0], ptrs[1] + j * st[1], st[1],
                    ix ? ix + j * is : NULL, is, c);
    else
      dim_cols_sum(job, ptrs[0] + j * st[0], st[0], ptrs[1] + j * st[1], st[1], c);
  }
}

static void dim_chunk(int64_t begin, int64_t end, void *arg) {
  dim_job *job = arg;
  mm_iter_run_range(&job->it, dim_run, job, begin, end);
}

/* Threads get at least RED_GRAIN input elements: this many outputs of R each. */
static int64_t grain_for(int64_t R) { return R >= RED_GRAIN ? 1 : RED_GRAIN / (R > 0 ? R : 1); }

/* Reductions over an empty dim: sum 0, mean NaN. */
static void fill_empty_reduction(mm_reduce_op op, mm_tensor *out) {
  int64_t n = mm_numel(out);
  char *p = mm_data(out);
  sum_state zero = {0, 0};
  for (int64_t i = 0; i < n; i++)
    put_result(op, out->dtype, out->dtype, p + i * (int64_t)mm_dtype_size(out->dtype), NULL, &zero,
               NULL, 0);
}

mm_tensor *mm_reduce_dim(mm_ctx *ctx, mm_reduce_op op, const mm_tensor *a, int dim, bool keepdim,
                         mm_tensor **indices) {
  if (indices)
    *indices = NULL;
  mm_dtype out_dt = MM_FLOAT32;
  if (result_dtype(ctx, op, a, &out_dt) != 0)
    return NULL;
  const char *name = op_name(op);
  int nd = a->ndim;
  if (dim < 0 || dim >= (nd > 0 ? nd : 1)) {
    mm_fail(ctx, "moonml.%s: dimension %d out of range for a %d-D tensor", name, dim + 1, nd);
    return NULL;
  }
  int64_t R = nd > 0 ? a->shape[dim] : 1;
  int64_t rs = nd > 0 ? a->stride[dim] * (int64_t)mm_dtype_size(a->dtype) : 0;
  if (R == 0 && is_best(op)) {
    char sh[96];
    mm_fail(ctx, "moonml.%s: cannot reduce over dimension %d of size 0 (shape %s)", name, dim + 1,
            mm_shape_str(sh, sizeof sh, nd, a->shape));
    return NULL;
  }
  /* result shape: dim dropped, or kept with size 1 */
  int64_t shape[MM_MAX_DIMS];
  int ond = 0;
  for (int d = 0; d < nd; d++) {
    if (d != dim)
      shape[ond++] = a->shape[d];
    else if (keepdim)
      shape[ond++] = 1;
  }
  mm_tensor *out = mm_empty(ctx, out_dt, ond, shape);
  if (!out)
    return NULL;
  bool rec = reduce_recording(ctx, op, a);
  /* backward of max / min sends each gradient to the position the value came from */
  bool with_idx = (indices || rec) && (op == MM_RED_MAX || op == MM_RED_MIN);
  mm_tensor *idx = NULL;
  if (with_idx && !(idx = mm_empty(ctx, MM_INT64, ond, shape))) {
    mm_release(out);
    return NULL;
  }
  int64_t nout = mm_numel(out);
  if (nout > 0 && R == 0) {
    fill_empty_reduction(op, out);
  } else if (nout == 1) {
    /* one output: reduce the run like a full reduction, split over threads */
    mm_tensor run = *a;
    run.ndim = 1;
    run.shape[0] = R;
    run.stride[0] = nd > 0 ? a->stride[dim] : 0;
    mm_tensor *ts[1] = {&run};
    mm_iter it;
    mm_iter_init(&it, 1, ts);
    sum_state sum;
    best_state best;
    reduce_iter(kernels(), &it, op, a->dtype, &sum, &best);
    put_result(op, a->dtype, out_dt, mm_data(out), idx ? mm_data(idx) : NULL, &sum, &best, R);
  } else if (nout > 1) {
    int adims[MM_MAX_DIMS], odims[MM_MAX_DIMS];
    int nk = kept_dims(a, dim, adims);
    for (int i = 0; i < nk; i++)
      odims[i] = keepdim || adims[i] < dim ? adims[i] : adims[i] - 1;
    mm_tensor va, vo, vi;
    sub_view(&va, a, nk, adims);
    sub_view(&vo, out, nk, odims);
    dim_job job = {kernels(), op, a->dtype, out_dt, R, rs, with_idx, {0}};
    if (with_idx) {
      sub_view(&vi, idx, nk, odims);
      mm_tensor *ts[3] = {&vo, &va, &vi};
      mm_iter_init(&job.it, 3, ts);
    } else {
      mm_tensor *ts[2] = {&vo, &va};
      mm_iter_init(&job.it, 2, ts);
    }
    mm_parallel_for(nout, grain_for(R), dim_chunk, &job);
  }
  if (rec && reduce_record(ctx, op, a, out, dim, keepdim, idx, 0) != 0) {
    mm_release(out);
    mm_release(idx);
    return NULL;
  }
  if (indices)
    *indices = idx;
  else
    mm_release(idx);
  return out;
}

/* ------------------------------------------------------------------ softmax */

typedef struct {
  const mm_red_kernels *k;
  bool log;
  mm_dtype dt;
  int64_t R, rs, ors; /* size of the dim; its strides in a and out, in bytes */
  mm_iter it;         /* over {out, a} without the dim */
} sm_job;

static void gather_f32(float *buf, const char *x, int64_t s, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    buf[i] = *(const float *)(x + i * s);
}

static void scatter_f32(char *o, int64_t s, const float *buf, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    *(float *)(o + i * s) = buf[i];
}

/* One float32 row: max, sum of exp(x - max), then scale (or shift for log_softmax).
 * NaN anywhere, or +inf, makes the sum NaN and so the whole row, as in PyTorch. */
static void sm_row_f32(const sm_job *job, const char *x, char *o) {
  const mm_red_kernels *k = job->k;
  int64_t R = job->R, rs = job->rs, ors = job->ors;
  if (rs == (int64_t)sizeof(float) && ors == (int64_t)sizeof(float)) {
    const float *xf = (const float *)x;
    float *of = (float *)o;
    float m = k->rowmax_f32(xf, R);
    double s = k->expsum_f32(xf, job->log ? NULL : of, R, m);
    if (job->log)
      k->shift_f32(xf, of, R, m, (float)log(s));
    else
      k->scale_f32(of, R, (float)(1.0 / s));
    return;
  }
  float buf[PIECE];
  float m = -INFINITY;
  for (int64_t p = 0; p < R; p += PIECE) {
    int64_t c = R - p < PIECE ? R - p : PIECE;
    gather_f32(buf, x + p * rs, rs, c);
    float pm = k->rowmax_f32(buf, c);
    m = pm > m ? pm : m;
  }
  double s = 0;
  for (int64_t p = 0; p < R; p += PIECE) {
    int64_t c = R - p < PIECE ? R - p : PIECE;
    gather_f32(buf, x + p * rs, rs, c);
    s += k->expsum_f32(buf, job->log ? NULL : buf, c, m);
    if (!job->log)
      scatter_f32(o + p * ors, ors, buf, c);
  }
  if (job->log) {
    float l = (float)log(s);
    for (int64_t p = 0; p < R; p += PIECE) {
      int64_t c = R - p < PIECE ? R - p : PIECE;
      gather_f32(buf, x + p * rs, rs, c);
      k->shift_f32(buf, buf, c, m, l);
      scatter_f32(o + p * ors, ors, buf, c);
    }
  } else {
    float inv = (float)(1.0 / s);
    for (int64_t i = 0; i < R; i++)
      *(float *)(o + i * ors) *= inv;
  }
}

/* n (<= COLS) float32 softmaxes side by side, their elements at stride xs (os in out);
 * the dim is walked in the outer loop. */
static void sm_cols_f32(const sm_job *job, const char *x, int64_t xs, char *o, int64_t os,
                        int64_t n) {
  const mm_red_kernels *k = job->k;
  int64_t R = job->R, rs = job->rs, ors = job->ors;
  float m[COLS], s[COLS], buf[COLS], e[COLS];
  double sum[COLS];
  bool xc = xs == (int64_t)sizeof(float), oc = os == (int64_t)sizeof(float);
  for (int64_t j = 0; j < n; j++) {
    m[j] = -INFINITY;
    sum[j] = 0;
  }
#define ROW(r) (xc ? (const float *)(x + (r)*rs) : (gather_f32(buf, x + (r)*rs, xs, n), buf))
  for (int64_t r = 0; r < R; r++)
    k->colmax_f32(m, ROW(r), n);
  /* float sums over groups of 32 rows, added up in double */
  for (int64_t r0 = 0; r0 < R; r0 += 32) {
    for (int64_t j = 0; j < n; j++)
      s[j] = 0;
    for (int64_t r = r0; r < R && r < r0 + 32; r++) {
      float *dst = oc && !job->log ? (float *)(o + r * ors) : e;
      k->colexp_f32(ROW(r), m, job->log ? NULL : dst, s, n);
      if (!job->log && !oc)
        scatter_f32(o + r * ors, os, e, n);
    }
    for (int64_t j = 0; j < n; j++)
      sum[j] += s[j];
  }
  if (job->log) {
    for (int64_t j = 0; j < n; j++)
      s[j] = (float)log(sum[j]);
    for (int64_t r = 0; r < R; r++) {
      float *dst = oc ? (float *)(o + r * ors) : e;
      k->colshift_f32(ROW(r), m, s, dst, n);
      if (!oc)
        scatter_f32(o + r * ors, os, e, n);
    }
  } else {
    for (int64_t j = 0; j < n; j++)
      s[j] = (float)(1.0 / sum[j]);
    for (int64_t r = 0; r < R; r++) {
      char *orow = o + r * ors;
      if (oc) {
        k->colmul_f32((float *)orow, s, n);
      } else {
        for (int64_t j = 0; j < n; j++)
          *(float *)(orow + j * os) *= s[j];
      }
    }
  }
#undef ROW
}

/* float64: plain loops with libm's exp. */
static void sm_row_f64(const sm_job *job, const char *x, char *o) {
  int64_t R = job->R, rs = job->rs, ors = job->ors;
#define X(i) (*(const double *)(x + (i)*rs))
#define O(i) (*(double *)(o + (i)*ors))
  double m = -INFINITY, s = 0;
  for (int64_t i = 0; i < R; i++)
    m = X(i) > m ? X(i) : m;
  for (int64_t i = 0; i < R; i++) {
    double e = exp(X(i) - m);
    s += e;
    if (!job->log)
      O(i) = e;
  }
  if (job->log) {
    double l = log(s);
    for (int64_t i = 0; i < R; i++)
      O(i) = (X(i) - m) - l;
  } else {
    double inv = 1.0 / s;
    for (int64_t i = 0; i < R; i++)
      O(i) *= inv;
  }
#undef X
#undef O
}

static void sm_cols_f64(const sm_job *job, const char *x, int64_t xs, char *o, int64_t os,
                        int64_t n) {
  int64_t R = job->R, rs = job->rs, ors = job->ors;
  double m[COLS], s[COLS];
#define X(r, j) (*(const double *)(x + (r)*rs + (j)*xs))
#define O(r, j) (*(double *)(o + (r)*ors + (j)*os))
  for (int64_t j = 0; j < n; j++) {
    m[j] = -INFINITY;
    s[j] = 0;
  }
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < n; j++)
      m[j] = X(r, j) > m[j] ? X(r, j) : m[j];
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < n; j++) {
      double e = exp(X(r, j) - m[j]);
      s[j] += e;
      if (!job->log)
        O(r, j) = e;
    }
  for (int64_t j = 0; j < n; j++)
    s[j] = job->log ? log(s[j]) : 1.0 / s[j];
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < n; j++) {
      if (job->log)
        O(r, j) = (X(r, j) - m[j]) - s[j];
      else
        O(r, j) *= s[j];
    }
#undef X
#undef O
}

static void sm_run(char **ptrs, const int64_t *st, int64_t n, void *arg) {
  const sm_job *job = arg;
  char *o = ptrs[0];
  const char *x = ptrs[1];
  bool f32 = job->dt == MM_FLOAT32;
  if (n == 1 || llabs(job->rs) <= llabs(st[1])) {
    for (int64_t i = 0; i < n; i++) {
      if (f32)
        sm_row_f32(job, x + i * st[1], o + i * st[0]);
      else
        sm_row_f64(job, x + i * st[1], o + i * st[0]);
    }
    return;
  }
  for (int64_t j = 0; j < n; j += COLS) {
    int64_t c = n - j < COLS ? n - j : COLS;
    if (f32)
      sm_cols_f32(job, x + j * st[1], st[1], o + j * st[0], st[0], c);
    else
      sm_cols_f64(job, x + j * st[1], st[1], o + j * st[0], st[0], c);
  }
}

static void sm_chunk(int64_t begin, int64_t end, void *arg) {
  sm_job *job = arg;
  mm_iter_run_range(&job->it, sm_run, job, begin, end);
}

/* softmax: y * (g - sum(g * y)); log_softmax: g - exp(y) * sum(g), sums along the dim */
static int softmax_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **gi) {
  const mm_tensor *y = node->saved[0];
  int dim = (int)node->i[1];
  mm_tensor *t = NULL, *s = NULL, *d = NULL;
  if (node->i[0]) {
    s = mm_reduce_dim(ctx, MM_RED_SUM, g, dim, true, NULL);
    t = s ? mm_unary(ctx, MM_OP_EXP, y) : NULL;
    d = t ? mm_binary(ctx, MM_OP_MUL, t, s) : NULL;
    gi[0] = d ? mm_binary(ctx, MM_OP_SUB, g, d) : NULL;
  } else {
    t = mm_binary(ctx, MM_OP_MUL, g, y);
    s = t ? mm_reduce_dim(ctx, MM_RED_SUM, t, dim, true, NULL) : NULL;
    d = s ? mm_binary(ctx, MM_OP_SUB, g, s) : NULL;
    gi[0] = d ? mm_binary(ctx, MM_OP_MUL, y, d) : NULL;
  }
  mm_release(t);
  mm_release(s);
  mm_release(d);
  return grad_to_input_dtype(ctx, node, gi);
}

static int softmax_record(mm_ctx *ctx, const mm_tensor *a, mm_tensor *out, int dim, bool log) {
  mm_node *node;
  if (mm_node_begin(ctx, log ? "LogSoftmaxBackward" : "SoftmaxBackward", softmax_backward, 1, &a,
                    &node) != 0)
    return -1;
  node->i[0] = log;
  node->i[1] = dim;
  if (mm_node_save(ctx, node, out) != 0) {
    mm_node_release(node);
    return -1;
  }
  mm_node_attach(node, out);
  return 0;
}

static mm_tensor *softmax_impl(mm_ctx *ctx, const mm_tensor *a, int dim, bool log) {
  const char *name = log ? "log_softmax" : "softmax";
  if (!a) {
    mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", name);
    return NULL;
  }
  if (!mm_dtype_is_float(a->dtype)) {
    mm_fail(ctx, "moonml.%s: needs a floating-point tensor, got %s", name, mm_dtype_name(a->dtype));
    return NULL;
  }
  int nd = a->ndim;
  if (dim < 0 || dim >= (nd > 0 ? nd : 1)) {
    mm_fail(ctx, "moonml.%s: dimension %d out of range for a %d-D tensor", name, dim + 1, nd);
    return NULL;
  }
  mm_tensor *out = mm_empty(ctx, a->dtype, nd, a->shape);
  if (!out || mm_numel(a) == 0)
    return out;
  int64_t es = (int64_t)mm_dtype_size(a->dtype);
  int64_t R = nd > 0 ? a->shape[dim] : 1;
  sm_job job = {kernels(),
                log,
                a->dtype,
                R,
                nd > 0 ? a->stride[dim] * es : 0,
                nd > 0 ? out->stride[dim] * es : 0,
                {0}};
  int dims[MM_MAX_DIMS];
  int nk = kept_dims(a, dim, dims);
  mm_tensor va, vo;
  sub_view(&va, a, nk, dims);
  sub_view(&vo, out, nk, dims);
  mm_tensor *ts[2] = {&vo, &va};
  mm_iter_init(&job.it, 2, ts);
  mm_parallel_for(job.it.numel, grain_for(3 * R), sm_chunk, &job);
  return out;
}

/* out's node when a requires grad in grad mode; NULL (out released) if recording fails */
static mm_tensor *softmax_graph(mm_ctx *ctx, const mm_tensor *a, mm_tensor *out, int dim,
                                bool log) {
  if (out && ctx->grad_enabled && a->requires_grad && softmax_record(ctx, a, out, dim, log) != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

mm_tensor *mm_softmax(mm_ctx *ctx, const mm_tensor *a, int dim) {
  return softmax_graph(ctx, a, softmax_impl(ctx, a, dim, false), dim, false);
}

mm_tensor *mm_log_softmax(mm_ctx *ctx, const mm_tensor *a, int dim) {
  return softmax_graph(ctx, a, softmax_impl(ctx, a, dim, true), dim, true);
}

#else /* MM_REDUCE_PASS: the vectorised kernels of one instruction set */
#ifndef KN
#error "this part of reduce.c is compiled by including reduce.c from itself"
#endif

typedef float KN(vf) __attribute__((vector_size(KVB)));
typedef int32_t KN(vi) __attribute__((vector_size(KVB)));
typedef uint32_t KN(vu) __attribute__((vector_size(KVB)));
typedef double KN(vd) __attribute__((vector_size(KVB)));
#define VF KN(vf)
#define VI KN(vi)
#define VU KN(vu)
#define VD KN(vd)
#define VL ((int64_t)(KVB / sizeof(float)))
#define VLD ((int64_t)(KVB / sizeof(double)))
#define KINLINE static inline __attribute__((always_inline)) KTARGET
/* float lanes are summed in blocks this long, then added up in double: the error stays
 * that of a 1024-element sum however long the input */
#define KBLOCK 1024
/* sum_f32 asks for the cache line this many floats ahead (16 KiB: measured best) */
#define KPREFETCH 4096

KINLINE VF KN(ld)(const float *p) {
  VF v;
  memcpy(&v, p, sizeof v);
  return v;
}

KINLINE void KN(st)(float *p, VF v) { memcpy(p, &v, sizeof v); }

KINLINE VD KN(ldd)(const double *p) {
  VD v;
  memcpy(&v, p, sizeof v);
  return v;
}

KINLINE VF KN(splat)(float x) {
  VF v = {0};
  for (int j = 0; j < VL; j++)
    v[j] = x;
  return v;
}

KINLINE VF KN(sel)(VI m, VF a, VF b) { return (VF)((m & (VI)a) | (~m & (VI)b)); }

/* lanes added pairwise in double: a short dependency chain */
KINLINE double KN(hsum)(VF v) {
  double t[VL];
  for (int j = 0; j < VL; j++)
    t[j] = v[j];
  for (int w = VL / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; j++)
      t[j] += t[j + w];
  return t[0];
}

/* exp for float32 lanes with x <= 0 or NaN (softmax passes x - max): n = round(x / ln 2),
 * r = x - n ln 2 (Cody-Waite, two parts), Cephes' degree-6 polynomial on r, times 2^n
 * built in two halves so that results down to the smallest subnormal come out right.
 * Within 2 ulp of the true value; NaN stays NaN, -inf gives 0. */
KINLINE VF KN(vexp)(VF x) {
  VF xc = KN(sel)(x < -104.0f, KN(splat)(-104.0f), x);
  const VF magic = KN(splat)(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
  VF t = KFMA(xc, KN(splat)(MM_EXP_LOG2E), magic);
  VF nf = t - magic;
  VI n = (VI)t - 0x4B400000;
  VF r = KFMA(nf, KN(splat)(-MM_EXP_LN2_HI), xc);
  r = KFMA(nf, KN(splat)(-MM_EXP_LN2_LO), r);
  VF p = KN(splat)(MM_EXP_P0);
  p = KFMA(p, r, KN(splat)(MM_EXP_P1));
  p = KFMA(p, r, KN(splat)(MM_EXP_P2));
  p = KFMA(p, r, KN(splat)(MM_EXP_P3));
  p = KFMA(p, r, KN(splat)(MM_EXP_P4));
  p = KFMA(p, r, KN(splat)(MM_EXP_P5));
  p = KFMA(p, r * r, r + 1.0f);
  VI n1 = n >> 1, n2 = n - n1;
  return p * (VF)((VU)(n1 + 127) << 23) * (VF)((VU)(n2 + 127) << 23);
}

/* exp(x[i] - m[i]) for the last n < VL elements, through a padded vector */
KINLINE VF KN(exp_tail)(const float *x, const float *m, float ms, int64_t n) {
  VF v = KN(splat)(0.0f);
  for (int64_t j = 0; j < n; j++)
    v[j] = x[j] - (m ? m[j] : ms);
  return KN(vexp)(v);
}

static KTARGET double KN(sum_f32)(const float *x, int64_t n) {
  double total = 0;
  int64_t i = 0;
  const int64_t step = 4 * VL;
  while (n - i >= step) {
    int64_t end = n - i >= KBLOCK ? i + KBLOCK : i + (n - i) / step * step;
    VF a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (; i < end; i += step) {
      if (i + KPREFETCH + step <= n)
        for (int64_t c = 0; c < step; c += 16) /* every 64-byte line */
          __builtin_prefetch(x + i + KPREFETCH + c);
      a0 += KN(ld)(x + i);
      a1 += KN(ld)(x + i + VL);
      a2 += KN(ld)(x + i + 2 * VL);
      a3 += KN(ld)(x + i + 3 * VL);
    }
    total += KN(hsum)((a0 + a1) + (a2 + a3));
  }
  for (; i < n; i++)
    total += x[i];
  return total;
}

static KTARGET double KN(sum_f64)(const double *x, int64_t n) {
  VD a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
  int64_t i = 0;
  for (; i + 4 * VLD <= n; i += 4 * VLD) {
    a0 += KN(ldd)(x + i);
    a1 += KN(ldd)(x + i + VLD);
    a2 += KN(ldd)(x + i + 2 * VLD);
    a3 += KN(ldd)(x + i + 3 * VLD);
  }
  VD a = (a0 + a1) + (a2 + a3);
  double s = 0;
  for (int j = 0; j < VLD; j++)
    s += a[j];
  for (; i < n; i++)
    s += x[i];
  return s;
}

/* Blocks of 256: a vector pass finds each block's extreme and whether it holds a NaN;
 * only the block that wins is scanned again for the position. */
KINLINE int64_t KN(best_f32)(const float *x, int64_t n, bool is_max, float *value) {
  const int64_t B = 256;
  float best = 0;
  int64_t best_block = -1;
  for (int64_t b0 = 0; b0 < n; b0 += B) {
    float bm;
    if (n - b0 >= B) {
      VF e0 = KN(ld)(x + b0), e1 = KN(ld)(x + b0 + VL);
      VI nan = (e0 != e0) | (e1 != e1);
      for (int64_t i = b0 + 2 * VL; i < b0 + B; i += 2 * VL) {
        VF v0 = KN(ld)(x + i), v1 = KN(ld)(x + i + VL);
        nan |= (v0 != v0) | (v1 != v1);
        e0 = KN(sel)(is_max ? v0 > e0 : v0 < e0, v0, e0);
        e1 = KN(sel)(is_max ? v1 > e1 : v1 < e1, v1, e1);
      }
      int any = 0;
      for (int j = 0; j < VL; j++)
        any |= nan[j];
      if (any) {
        int64_t i = b0;
        while (x[i] == x[i])
          i++;
        *value = x[i];
        return i;
      }
      e0 = KN(sel)(is_max ? e1 > e0 : e1 < e0, e1, e0);
      bm = e0[0];
      for (int j = 1; j < VL; j++)
        bm = (is_max ? e0[j] > bm : e0[j] < bm) ? e0[j] : bm;
    } else {
      bm = x[b0];
      for (int64_t i = b0; i < n; i++) {
        if (x[i] != x[i]) {
          *value = x[i];
          return i;
        }
        bm = (is_max ? x[i] > bm : x[i] < bm) ? x[i] : bm;
      }
    }
    if (best_block < 0 || (is_max ? bm > best : bm < best)) {
      best = bm;
      best_block = b0;
    }
  }
  int64_t i = best_block;
  while (x[i] != best)
    i++;
  *value = best;
  return i;
}

static KTARGET int64_t KN(max_f32)(const float *x, int64_t n, float *value) {
  return KN(best_f32)(x, n, true, value);
}

static KTARGET int64_t KN(min_f32)(const float *x, int64_t n, float *value) {
  return KN(best_f32)(x, n, false, value);
}

/* float sums over groups of 32 rows, added up in double */
static KTARGET void KN(col_sum_f32)(double *acc, const float *x, int64_t rs, int64_t rows,
                                    int64_t n) {
  float t[COLS];
  for (int64_t r0 = 0; r0 < rows; r0 += 32) {
    int64_t r1 = rows - r0 < 32 ? rows : r0 + 32;
    for (int64_t j = 0; j < n; j++)
      t[j] = 0;
    for (int64_t r = r0; r < r1; r++) {
      const float *row = x + r * rs;
      for (int64_t j = 0; j < n; j++)
        t[j] += row[j];
    }
    for (int64_t j = 0; j < n; j++)
      acc[j] += t[j];
  }
}

KINLINE void KN(col_best_f32)(float *b, int64_t *pos, const float *x, int64_t n, int64_t r,
                              bool is_max) {
  for (int64_t j = 0; j < n; j++) {
    float v = x[j];
    bool take = (is_max ? v > b[j] : v < b[j]) || (v != v && b[j] == b[j]);
    b[j] = take ? v : b[j];
    pos[j] = take ? r : pos[j];
  }
}

static KTARGET void KN(col_max_f32)(float *b, int64_t *pos, const float *x, int64_t n, int64_t r) {
  KN(col_best_f32)(b, pos, x, n, r, true);
}

static KTARGET void KN(col_min_f32)(float *b, int64_t *pos, const float *x, int64_t n, int64_t r) {
  KN(col_best_f32)(b, pos, x, n, r, false);
}

static KTARGET float KN(rowmax_f32)(const float *x, int64_t n) {
  VF m0 = KN(splat)(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 4 * VL <= n; i += 4 * VL) {
    VF a = KN(ld)(x + i), b = KN(ld)(x + i + VL), c = KN(ld)(x + i + 2 * VL),
       d = KN(ld)(x + i + 3 * VL);
    m0 = KN(sel)(a > m0, a, m0);
    m1 = KN(sel)(b > m1, b, m1);
    m2 = KN(sel)(c > m2, c, m2);
    m3 = KN(sel)(d > m3, d, m3);
  }
  m0 = KN(sel)(m1 > m0, m1, m0);
  m2 = KN(sel)(m3 > m2, m3, m2);
  m0 = KN(sel)(m2 > m0, m2, m0);
  float m = m0[0];
  for (int j = 1; j < VL; j++)
    m = m0[j] > m ? m0[j] : m;
  for (; i < n; i++)
    m = x[i] > m ? x[i] : m;
  return m;
}

static KTARGET double KN(expsum_f32)(const float *x, float *y, int64_t n, float m) {
  VF vm = KN(splat)(m);
  double total = 0;
  int64_t i = 0;
  while (n - i >= 2 * VL) {
    int64_t end = n - i >= KBLOCK ? i + KBLOCK : i + (n - i) / (2 * VL) * (2 * VL);
    VF s0 = {0}, s1 = {0};
    for (; i < end; i += 2 * VL) {
      VF e0 = KN(vexp)(KN(ld)(x + i) - vm), e1 = KN(vexp)(KN(ld)(x + i + VL) - vm);
      if (y) {
        KN(st)(y + i, e0);
        KN(st)(y + i + VL, e1);
      }
      s0 += e0;
      s1 += e1;
    }
    total += KN(hsum)(s0 + s1);
  }
  for (; i < n; i += VL) {
    int64_t c = n - i < VL ? n - i : VL;
    VF e = KN(exp_tail)(x + i, NULL, m, c);
    for (int64_t j = 0; j < c; j++) {
      if (y)
        y[i + j] = e[j];
      total += e[j];
    }
  }
  return total;
}

static KTARGET void KN(scale_f32)(float *y, int64_t n, float s) {
  for (int64_t i = 0; i < n; i++)
    y[i] *= s;
}

static KTARGET void KN(shift_f32)(const float *x, float *y, int64_t n, float m, float l) {
  for (int64_t i = 0; i < n; i++)
    y[i] = (x[i] - m) - l;
}

static KTARGET void KN(colmax_f32)(float *m, const float *x, int64_t n) {
  for (int64_t j = 0; j < n; j++)
    m[j] = x[j] > m[j] ? x[j] : m[j];
}

static KTARGET void KN(colexp_f32)(const float *x, const float *m, float *e, float *s, int64_t n) {
  int64_t j = 0;
  for (; j + VL <= n; j += VL) {
    VF v = KN(vexp)(KN(ld)(x + j) - KN(ld)(m + j));
    KN(st)(s + j, KN(ld)(s + j) + v);
    if (e)
      KN(st)(e + j, v);
  }
  if (j < n) {
    VF v = KN(exp_tail)(x + j, m + j, 0, n - j);
    for (int64_t i = 0; j + i < n; i++) {
      s[j + i] += v[i];
      if (e)
        e[j + i] = v[i];
    }
  }
}

static KTARGET void KN(colshift_f32)(const float *x, const float *m, const float *l, float *y,
                                     int64_t n) {
  for (int64_t j = 0; j < n; j++)
    y[j] = (x[j] - m[j]) - l[j];
}

static KTARGET void KN(colmul_f32)(float *y, const float *s, int64_t n) {
  for (int64_t j = 0; j < n; j++)
    y[j] *= s[j];
}

static const mm_red_kernels KN(kernels) = {
    .sum_f32 = KN(sum_f32),
    .sum_f64 = KN(sum_f64),
    .max_f32 = KN(max_f32),
    .min_f32 = KN(min_f32),
    .col_sum_f32 = KN(col_sum_f32),
    .col_max_f32 = KN(col_max_f32),
    .col_min_f32 = KN(col_min_f32),
    .rowmax_f32 = KN(rowmax_f32),
    .expsum_f32 = KN(expsum_f32),
    .scale_f32 = KN(scale_f32),
    .shift_f32 = KN(shift_f32),
    .colmax_f32 = KN(colmax_f32),
    .colexp_f32 = KN(colexp_f32),
    .colshift_f32 = KN(colshift_f32),
    .colmul_f32 = KN(colmul_f32),
};

#undef VF
#undef VI
#undef VU
#undef VD
#undef VL
#undef VLD
#undef KINLINE
#undef KBLOCK
#undef KPREFETCH

#endif /* MM_REDUCE_PASS */
