/* Indexing: index_select, gather, scatter, scatter_add, masked_fill, masked_select, where,
 * nonzero, and a[key] / a[key] = v, each with its backward beside it.
 *
 * The gather/scatter family shares one kernel. The tensor whose elements are read (gather)
 * or written (scatter) is seen through a view with the iteration's shape and a stride of 0
 * along the indexed dim; the index is iterated alongside, and an element's address is the
 * view's plus index * mult, mult being the indexed dim's stride in bytes. a[key] runs the
 * same kernel on precomputed byte offsets (mult 1). So strided operands need no copies,
 * and every run of the innermost dim is one plain loop, with no call per element.
 *
 * Gathers run on several threads; scatters run on one, since repeated indices write the
 * same element (scatter_add accumulates them, scatter keeps the last in row-major order).
 * Every index is checked; in-place ops check all of them before writing anything. */
#include "../autograd/autograd.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#define SHAPE_BUF 128

/* ------------------------------------------------------------------ helpers */

static bool same_shape(int na, const int64_t *a, int nb, const int64_t *b) {
  if (na != nb)
    return false;
  for (int d = 0; d < na; d++)
    if (a[d] != b[d])
      return false;
  return true;
}

/* A header over t's storage and offset with the given shape and strides (elements). */
static mm_tensor *restride(mm_ctx *ctx, const mm_tensor *t, int ndim, const int64_t *shape,
                           const int64_t *stride) {
  mm_tensor *v = mm_tensor_view_of(ctx, t);
  if (!v)
    return NULL;
  v->ndim = ndim;
  for (int d = 0; d < ndim; d++) {
    v->shape[d] = shape[d];
    v->stride[d] = stride[d];
  }
  return v;
}

/* A 0-d tensor counts as one element along its only dim (dim 0), as in PyTorch. */
static int64_t dim_size(const mm_tensor *t, int dim) { return t->ndim ? t->shape[dim] : 1; }
static int64_t dim_stride(const mm_tensor *t, int dim) { return t->ndim ? t->stride[dim] : 0; }

static int check_dim(mm_ctx *ctx, const char *op, const mm_tensor *a, int dim) {
  int n = a->ndim ? a->ndim : 1;
  if (dim < 0 || dim >= n)
    return mm_fail(ctx, "moonml.%s: dimension %d out of range for a %d-D tensor", op, dim + 1,
                   a->ndim);
  return 0;
}

static int check_index_dtype(mm_ctx *ctx, const char *op, const mm_tensor *index) {
  if (!index)
    return mm_fail(ctx, "moonml.%s: expected an index tensor, got NULL", op);
  if (index->dtype != MM_INT64)
    return mm_fail(ctx, "moonml.%s: index must be an int64 tensor, got %s", op,
                   mm_dtype_name(index->dtype));
  return 0;
}

static int check_mask(mm_ctx *ctx, const char *op, const mm_tensor *mask) {
  if (!mask)
    return mm_fail(ctx, "moonml.%s: expected a mask, got NULL", op);
  if (mask->dtype != MM_BOOL)
    return mm_fail(ctx, "moonml.%s: mask must be a bool tensor, got %s", op,
                   mm_dtype_name(mask->dtype));
  return 0;
}

/* What every in-place op checks before it writes. */
static int check_inplace(mm_ctx *ctx, const char *op, const mm_tensor *a) {
  if (ctx->grad_enabled && a->requires_grad && !a->grad_fn)
    return mm_fail(ctx, "moonml.%s: a leaf tensor that requires grad cannot be changed in place",
                   op);
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] > 1 && a->stride[d] == 0)
      return mm_fail(ctx,
                     "moonml.%s: the tensor is an expanded view whose elements share memory; "
                     "clone() it first",
                     op);
  return 0;
}

/* One element of dt holding the 0-d tensor value's number, converted as PyTorch would. */
static int value_bytes(mm_ctx *ctx, const char *op, const mm_tensor *value, mm_dtype dt,
                       unsigned char *out) {
  if (!value)
    return mm_fail(ctx, "moonml.%s: expected a value, got NULL", op);
  if (value->ndim != 0)
    return mm_fail(ctx, "moonml.%s: value must be a number or a 0-d tensor, got a %d-D tensor", op,
                   value->ndim);
  mm_tensor *v = mm_to_dtype(ctx, value, dt);
  if (!v)
    return -1;
  memset(out, 0, 8);
  memcpy(out, mm_data(v), mm_dtype_size(dt));
  mm_release(v);
  return 0;
}

/* Row-major walk over a strided tensor, one element at a time, keeping its coordinates. */
typedef struct {
  int nd;
  int64_t shape[MM_MAX_DIMS], stride[MM_MAX_DIMS], c[MM_MAX_DIMS]; /* strides in bytes */
  char *p;
} walker;

static void walk_init(walker *w, const mm_tensor *t) {
  int64_t es = (int64_t)mm_dtype_size(t->dtype);
  w->nd = t->ndim;
  for (int d = 0; d < t->ndim; d++) {
    w->shape[d] = t->shape[d];
    w->stride[d] = t->stride[d] * es;
    w->c[d] = 0;
  }
  w->p = mm_data(t);
}

static void walk_next(walker *w) {
  for (int d = w->nd - 1; d >= 0; d--) {
    w->p += w->stride[d];
    if (++w->c[d] < w->shape[d])
      return;
    w->p -= w->stride[d] * w->shape[d];
    w->c[d] = 0;
  }
}

/* Fails naming the first index (in row-major order) outside [0, size). */
static int check_range(mm_ctx *ctx, const char *op, const mm_tensor *index, int64_t size, int dim) {
  walker w;
  walk_init(&w, index);
  int64_t n = mm_numel(index);
  for (int64_t k = 0; k < n; k++, walk_next(&w)) {
    int64_t v = *(const int64_t *)w.p;
    if (v < 0 || v >= size)
      return mm_fail(ctx, "moonml.%s: index %lld out of range for dimension %d of size %lld", op,
                     (long long)v, dim + 1, (long long)size);
  }
  return 0;
}

/* ------------------------------------------------------------------ the kernel */

typedef enum { K_GATHER, K_SCATTER, K_ADD, K_FILL } k_mode;

typedef struct {
  k_mode mode;
  mm_dtype dt;
  size_t es;
  int64_t mult;           /* bytes per index unit */
  uint64_t size;          /* indices must lie below this */
  unsigned char value[8]; /* K_FILL: one element of dt */
  atomic_int bad;         /* set when an index was out of range */
} k_job;

static void job_init(k_job *j, k_mode mode, const mm_tensor *data, int dim) {
  memset(j, 0, sizeof *j);
  j->mode = mode;
  j->dt = data->dtype;
  j->es = mm_dtype_size(data->dtype);
  j->mult = dim_stride(data, dim) * (int64_t)j->es;
  j->size = (uint64_t)dim_size(data, dim);
}

#define K_BAD()                                                                                    \
  do {                                                                                             \
    atomic_store_explicit(&j->bad, 1, memory_order_relaxed);                                       \
    return;                                                                                        \
  } while (0)

/* Every element of the run: i is the index, at the element it addresses in the view. An
 * index out of range is noted and replaced by 0 (the loop has no early exit, so the
 * compiler can vectorise it); callers then fail. Scatters check their indices before. */
#define K_EACH(BODY)                                                                               \
  do {                                                                                             \
    uint64_t size_ = j->size, bad_ = 0;                                                            \
    for (int64_t k = 0; k < n; k++) {                                                              \
      uint64_t i = (uint64_t) * (const int64_t *)(pi + k * si);                                    \
      bad_ |= i >= size_;                                                                          \
      i = i < size_ ? i : 0;                                                                       \
      char *at = pd + k * sd + (int64_t)i * j->mult;                                               \
      BODY;                                                                                        \
    }                                                                                              \
    if (bad_)                                                                                      \
      K_BAD();                                                                                     \
  } while (0)

/* A run whose index does not move (index_select along an outer dim): one row copy. */
static void copy_row(char *dst, int64_t ds, const char *src, int64_t ss, int64_t n, size_t es) {
  if (ds == (int64_t)es && ss == (int64_t)es) {
    memcpy(dst, src, (size_t)n * es);
    return;
  }
  switch (es) {
  case 1:
    for (int64_t k = 0; k < n; k++)
      dst[k * ds] = src[k * ss];
    break;
  case 4:
    for (int64_t k = 0; k < n; k++)
      memcpy(dst + k * ds, src + k * ss, 4);
    break;
  default:
    for (int64_t k = 0; k < n; k++)
      memcpy(dst + k * ds, src + k * ss, 8);
    break;
  }
}

/* p[0]: the view with stride 0 along the indexed dim; p[1]: the index; p[2]: the output
 * (gather) or the source (scatter, add); absent for fill. Strides in bytes. */
static void k_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  k_job *j = arg;
  char *pd = p[0];
  const char *pi = p[1];
  int64_t sd = s[0], si = s[1];
  if (j->mode == K_FILL) {
    switch (j->es) {
    case 1:
      K_EACH(*at = (char)j->value[0]);
      break;
    case 4:
      K_EACH(memcpy(at, j->value, 4));
      break;
    default:
      K_EACH(memcpy(at, j->value, 8));
      break;
    }
    return;
  }
  char *po = p[2];
  int64_t so = s[2];
  if (si == 0 && j->mode != K_ADD) {
    uint64_t i = (uint64_t) * (const int64_t *)pi;
    if (i >= j->size)
      K_BAD();
    char *row = pd + (int64_t)i * j->mult;
    if (j->mode == K_GATHER)
      copy_row(po, so, row, sd, n, j->es);
    else
      copy_row(row, sd, po, so, n, j->es);
    return;
  }
  if (j->mode == K_GATHER && si == 8 && sd == 0 && so == (int64_t)j->es) {
    /* a run along the indexed dim, everything contiguous: fixed strides */
    const int64_t *ix = (const int64_t *)pi;
    uint64_t size = j->size, bad = 0;
    int64_t mult = j->mult;
#define K_RUN(ES)                                                                                  \
  for (int64_t k = 0; k < n; k++) {                                                                \
    uint64_t i = (uint64_t)ix[k];                                                                  \
    bad |= i >= size;                                                                              \
    i = i < size ? i : 0;                                                                          \
    memcpy(po + k * (ES), pd + (int64_t)i * mult, ES);                                             \
  }
    if (j->es == 4)
      K_RUN(4)
    else if (j->es == 8)
      K_RUN(8)
    else
      K_RUN(1)
#undef K_RUN
    if (bad)
      K_BAD();
    return;
  }
  if (j->mode == K_GATHER) {
    switch (j->es) {
    case 1:
      K_EACH(po[k * so] = *at);
      break;
    case 4:
      K_EACH(memcpy(po + k * so, at, 4));
      break;
    default:
      K_EACH(memcpy(po + k * so, at, 8));
      break;
    }
  } else if (j->mode == K_SCATTER) {
    switch (j->es) {
    case 1:
      K_EACH(*at = po[k * so]);
      break;
    case 4:
      K_EACH(memcpy(at, po + k * so, 4));
      break;
    default:
      K_EACH(memcpy(at, po + k * so, 8));
      break;
    }
  } else {
    switch (j->dt) {
    case MM_FLOAT32:
      K_EACH(*(float *)at += *(const float *)(po + k * so));
      break;
    case MM_FLOAT64:
      K_EACH(*(double *)at += *(const double *)(po + k * so));
      break;
    case MM_INT64: /* wraps around on overflow, as PyTorch */
      K_EACH(*(int64_t *)at = (int64_t)((uint64_t) * (int64_t *)at +
                                        (uint64_t) * (const int64_t *)(po + k * so)));
      break;
    default: /* bool: true + true is true */
      K_EACH(*(uint8_t *)at |= *(const uint8_t *)(po + k * so) != 0);
      break;
    }
  }
}

/* Runs the kernel over (data, idx[, other]), which share one shape; -1 if an index was out
 * of range (no message: the caller names the index). */
static int run_k(k_job *j, mm_tensor *data, const mm_tensor *idx, const mm_tensor *other,
                 bool parallel) {
  mm_tensor *ts[3] = {data, (mm_tensor *)idx, (mm_tensor *)other};
  mm_iter it;
  mm_iter_init(&it, other ? 3 : 2, ts);
  atomic_init(&j->bad, 0);
  if (parallel)
    mm_iter_run(&it, k_kernel, j);
  else if (it.numel > 0)
    mm_iter_run_range(&it, k_kernel, j, 0, it.numel);
  return atomic_load(&j->bad) ? -1 : 0;
}

/* The kernel's view of data over the iteration shape: data's strides, 0 along dim (and
 * everywhere when data is 0-d). */
static mm_tensor *along_view(mm_ctx *ctx, const mm_tensor *data, int dim, int nd,
                             const int64_t *shape) {
  int64_t st[MM_MAX_DIMS];
  for (int d = 0; d < nd; d++)
    st[d] = d != dim && data->ndim == nd ? data->stride[d] : 0;
  return restride(ctx, data, nd, shape, st);
}

/* index_select's 1-D index over the iteration shape: it moves along dim only. */
static mm_tensor *select_index_view(mm_ctx *ctx, const mm_tensor *index, int dim, int nd,
                                    const int64_t *shape) {
  int64_t st[MM_MAX_DIMS];
  for (int d = 0; d < nd; d++)
    st[d] = d == dim && index->ndim == 1 ? index->stride[0] : 0;
  return restride(ctx, index, nd, shape, st);
}

/* ------------------------------------------------------------------ index_select */

/* index_select of a contiguous tensor by a contiguous index: whole rows of the dims after
 * dim, copied without the iterator (an embedding lookup copies one row per index). */
typedef struct {
  const char *src;
  char *dst;
  const int64_t *idx;
  int64_t n;           /* indices */
  uint64_t size;       /* of the selected dim */
  size_t row;          /* bytes per row */
  int64_t outer_bytes; /* between the input's outer slices */
  atomic_int bad;
} rows_job;

static void rows_chunk(int64_t begin, int64_t end, void *arg) {
  rows_job *j = arg;
  int64_t o = begin / j->n, i = begin % j->n;
  size_t row = j->row;
  char *dst = j->dst + (size_t)begin * row;
  for (int64_t r = begin; r < end; r++, dst += row) {
    uint64_t v = (uint64_t)j->idx[i];
    if (v >= j->size) {
      atomic_store_explicit(&j->bad, 1, memory_order_relaxed);
      return;
    }
    const char *src = j->src + o * j->outer_bytes + (int64_t)v * (int64_t)row;
    if (row == 4)
      memcpy(dst, src, 4);
    else if (row == 8)
      memcpy(dst, src, 8);
    else
      memcpy(dst, src, row);
    if (++i == j->n) {
      i = 0;
      o++;
    }
  }
}

/* The elements per row: 1 when dim is the last (the iterator's runs along it are faster). */
static int64_t row_elements(const mm_tensor *a, int dim) {
  int64_t inner = 1;
  for (int d = dim + 1; d < a->ndim; d++)
    inner *= a->shape[d];
  return inner;
}

/* -1 if an index was out of range */
static int index_select_rows(const mm_tensor *a, int dim, const mm_tensor *index, mm_tensor *out) {
  int64_t inner = row_elements(a, dim), n = mm_numel(index);
  size_t row = (size_t)inner * mm_dtype_size(a->dtype);
  int64_t size = dim_size(a, dim), rows = n == 0 ? 0 : mm_numel(out) / inner;
  if (rows == 0)
    return 0;
  rows_job j = {mm_data(a),     mm_data(out), mm_data(index),      n,
                (uint64_t)size, row,          size * (int64_t)row, 0};
  atomic_init(&j.bad, 0);
  int64_t grain = ((int64_t)1 << 17) / inner;
  mm_parallel_for(rows, grain > 0 ? grain : 1, rows_chunk, &j);
  return atomic_load(&j.bad) ? -1 : 0;
}

/* out (or dst, for the add) has a's shape with dim's size numel(index). */
static int index_select_run(mm_ctx *ctx, const char *op, k_mode mode, mm_tensor *data, int dim,
                            const mm_tensor *index, mm_tensor *other) {
  if (mode == K_GATHER && mm_is_contiguous(data) && mm_is_contiguous(index) &&
      mm_numel(other) > 0 && row_elements(data, dim) > 1) {
    if (index_select_rows(data, dim, index, other) == 0)
      return 0;
    return check_range(ctx, op, index, dim_size(data, dim), dim);
  }
  int nd = other->ndim;
  mm_tensor *dv = along_view(ctx, data, dim, nd, other->shape);
  mm_tensor *iv = dv ? select_index_view(ctx, index, dim, nd, other->shape) : NULL;
  int status = -1;
  if (iv) {
    k_job j;
    job_init(&j, mode, data, dim);
    status = run_k(&j, dv, iv, other, mode == K_GATHER);
    if (status != 0)
      check_range(ctx, op, index, dim_size(data, dim), dim);
  }
  mm_release(dv);
  mm_release(iv);
  return status;
}

static int index_select_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                                 mm_tensor **grad_in) {
  const mm_edge *e = &node->in[0];
  mm_tensor *g = mm_zeros(ctx, grad->dtype, e->ndim, e->shape);
  if (!g || index_select_run(ctx, "index_select", K_ADD, g, (int)node->i[0], node->saved[0],
                             (mm_tensor *)grad) != 0) {
    mm_release(g);
    return -1;
  }
  grad_in[0] = g;
  return 0;
}

mm_tensor *mm_index_select(mm_ctx *ctx, const mm_tensor *a, int dim, const mm_tensor *index) {
  const char *op = "index_select";
  if (!a)
    return mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", op), NULL;
  if (check_index_dtype(ctx, op, index) != 0 || check_dim(ctx, op, a, dim) != 0)
    return NULL;
  if (index->ndim > 1)
    return mm_fail(ctx, "moonml.%s: index must be 1-D, got %d-D", op, index->ndim), NULL;
  int64_t n = mm_numel(index);
  if (a->ndim == 0 && n != 1)
    return mm_fail(ctx, "moonml.%s: a 0-d tensor takes exactly one index, got %lld", op,
                   (long long)n),
           NULL;
  int64_t shape[MM_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  if (a->ndim > 0)
    shape[dim] = n;
  mm_tensor *out = mm_empty(ctx, a->dtype, a->ndim, shape);
  if (!out || index_select_run(ctx, op, K_GATHER, (mm_tensor *)a, dim, index, out) != 0) {
    mm_release(out);
    return NULL;
  }
  mm_node *node;
  if (mm_node_begin(ctx, "IndexSelectBackward", index_select_backward, 1,
                    (const mm_tensor *const[]){a}, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node) {
    if (mm_node_save(ctx, node, index) != 0) {
      mm_node_release(node);
      mm_release(out);
      return NULL;
    }
    node->i[0] = dim;
    mm_node_attach(node, out);
  }
  return out;
}

/* ------------------------------------------------------------------ gather and scatter */

/* out[p] = a[p with index[p] along dim]; out has index's shape. */
static mm_tensor *gather_impl(mm_ctx *ctx, const char *op, const mm_tensor *a, int dim,
                              const mm_tensor *index) {
  mm_tensor *out = mm_empty(ctx, a->dtype, index->ndim, index->shape);
  mm_tensor *dv = out ? along_view(ctx, a, dim, index->ndim, index->shape) : NULL;
  int status = -1;
  if (dv) {
    k_job j;
    job_init(&j, K_GATHER, a, dim);
    status = run_k(&j, dv, index, out, true);
    if (status != 0)
      check_range(ctx, op, index, dim_size(a, dim), dim);
  }
  mm_release(dv);
  if (status != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

/* dst[p with index[p] along dim] = src[p] (or += for K_ADD, or the value for K_FILL), p over
 * index's shape. Indices must have been checked. */
static int scatter_run(mm_ctx *ctx, k_mode mode, mm_tensor *dst, int dim, const mm_tensor *index,
                       const mm_tensor *src, const unsigned char *value) {
  int nd = index->ndim;
  mm_tensor *dv = along_view(ctx, dst, dim, nd, index->shape);
  mm_tensor *own = NULL, *sv = NULL;
  int status = -1;
  if (!dv)
    goto done;
  if (src) {
    if (mm_same_storage(src, dst)) { /* read all of src before writing dst */
      src = own = mm_clone(ctx, src);
      if (!own)
        goto done;
    }
    int64_t st[MM_MAX_DIMS];
    for (int d = 0; d < nd; d++)
      st[d] = src->ndim == nd ? src->stride[d] : 0;
    sv = restride(ctx, src, nd, index->shape, st);
    if (!sv)
      goto done;
  }
  k_job j;
  job_init(&j, mode, dst, dim);
  if (value)
    memcpy(j.value, value, sizeof j.value);
  status = run_k(&j, dv, index, sv, false);
  if (status != 0)
    check_range(ctx, "scatter", index, dim_size(dst, dim), dim);
done:
  mm_release(dv);
  mm_release(sv);
  mm_release(own);
  return status;
}

/* PyTorch's rule: index, a and src have one number of dims (or all at most 1-D); index is
 * no larger than src anywhere and no larger than a outside dim. */
static int check_index_shape(mm_ctx *ctx, const char *op, const mm_tensor *a, int dim,
                             const mm_tensor *index, const mm_tensor *src) {
  bool low = a->ndim <= 1 && index->ndim <= 1 && (!src || src->ndim <= 1);
  if (!low && index->ndim != a->ndim)
    return mm_fail(ctx, "moonml.%s: index must have as many dims as the tensor (%d), got %d", op,
                   a->ndim, index->ndim);
  if (!low && src && src->ndim != index->ndim)
    return mm_fail(ctx, "moonml.%s: src must have as many dims as the index (%d), got %d", op,
                   index->ndim, src->ndim);
  int nd = index->ndim;
  for (int d = 0; d < nd; d++) {
    int64_t n = index->shape[d];
    bool big_a = d != dim && a->ndim == nd && n > a->shape[d];
    bool big_src = src && n > (src->ndim == nd ? src->shape[d] : 1);
    if (big_a || big_src) {
      char si[SHAPE_BUF], sa[SHAPE_BUF];
      const mm_tensor *other = big_a ? a : src;
      return mm_fail(ctx, "moonml.%s: index of shape %s is larger than the %s's shape %s %s%d", op,
                     mm_shape_str(si, sizeof si, index->ndim, index->shape),
                     big_a ? "tensor" : "src",
                     mm_shape_str(sa, sizeof sa, other->ndim, other->shape),
                     big_a ? "outside dimension " : "in dimension ", big_a ? dim + 1 : d + 1);
    }
  }
  return 0;
}

static int gather_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  const mm_edge *e = &node->in[0];
  mm_tensor *g = mm_zeros(ctx, grad->dtype, e->ndim, e->shape);
  if (!g || scatter_run(ctx, K_ADD, g, (int)node->i[0], node->saved[0], grad, NULL) != 0) {
    mm_release(g);
    return -1;
  }
  grad_in[0] = g;
  return 0;
}

/* Records node on out for an op over inputs (a, other), saving t. */
static int record(mm_ctx *ctx, const char *name, mm_backward_fn fn, const mm_tensor *a,
                  const mm_tensor *other, const mm_tensor *save, int64_t i0, int64_t i1,
                  mm_node **out) {
  if (mm_node_begin(ctx, name, fn, 2, (const mm_tensor *const[]){a, other}, out) != 0)
    return -1;
  if (*out) {
    if (save && mm_node_save(ctx, *out, save) != 0) {
      mm_node_release(*out);
      *out = NULL;
      return -1;
    }
    (*out)->i[0] = i0;
    (*out)->i[1] = i1;
  }
  return 0;
}

mm_tensor *mm_gather(mm_ctx *ctx, const mm_tensor *a, int dim, const mm_tensor *index) {
  const char *op = "gather";
  if (!a)
    return mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", op), NULL;
  if (check_index_dtype(ctx, op, index) != 0 || check_dim(ctx, op, a, dim) != 0 ||
      check_index_shape(ctx, op, a, dim, index, NULL) != 0)
    return NULL;
  mm_tensor *out = gather_impl(ctx, op, a, dim, index);
  mm_node *node;
  if (!out || record(ctx, "GatherBackward", gather_backward, a, NULL, index, dim, 0, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node)
    mm_node_attach(node, out);
  return out;
}

/* Zeroes the elements of g (src's gradient, contiguous, index's shape) whose write a later
 * one to the same element overwrote: scattering each position's number and reading it
 * back finds the writes that remained. out is shaped as the scatter's result. */
static int drop_overwritten_src(mm_ctx *ctx, mm_tensor *g, const mm_tensor *out, int dim,
                                const mm_tensor *index) {
  int64_t n = mm_numel(index);
  if (n < 2)
    return 0;
  mm_tensor *pos = mm_empty(ctx, MM_INT64, index->ndim, index->shape);
  mm_tensor *owner = pos ? mm_full(ctx, MM_INT64, out->ndim, out->shape, -1) : NULL;
  mm_tensor *back = NULL;
  if (owner) {
    int64_t *pp = mm_data(pos);
    for (int64_t k = 0; k < n; k++)
      pp[k] = k;
    if (scatter_run(ctx, K_SCATTER, owner, dim, index, pos, NULL) == 0)
      back = gather_impl(ctx, "scatter", owner, dim, index);
  }
  if (back) {
    const int64_t *bp = mm_data(back);
    size_t es = mm_dtype_size(g->dtype);
    char *gp = mm_data(g);
    for (int64_t k = 0; k < n; k++)
      if (bp[k] != k)
        memset(gp + (size_t)k * es, 0, es);
  }
  mm_release(pos);
  mm_release(owner);
  int status = back ? 0 : -1;
  mm_release(back);
  return status;
}

/* i[0]: dim; i[1]: 1 for scatter_add. Input 0 is the tensor, input 1 src. */
static int scatter_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                            mm_tensor **grad_in) {
  const mm_tensor *index = node->saved[0];
  int dim = (int)node->i[0];
  if (node->in[0].needs_grad) {
    if (node->i[1]) {
      mm_retain((mm_tensor *)grad);
      grad_in[0] = (mm_tensor *)grad;
    } else {
      const unsigned char zero[8] = {0};
      mm_tensor *g = mm_clone(ctx, grad);
      if (!g || scatter_run(ctx, K_FILL, g, dim, index, NULL, zero) != 0) {
        mm_release(g);
        return -1;
      }
      grad_in[0] = g;
    }
  }
  const mm_edge *e = &node->in[1];
  if (e->needs_grad) {
    mm_tensor *g = gather_impl(ctx, "scatter", grad, dim, index);
    if (!g)
      return -1;
    if (!node->i[1] && drop_overwritten_src(ctx, g, grad, dim, index) != 0) {
      mm_release(g);
      return -1;
    }
    if (!same_shape(g->ndim, g->shape, e->ndim, e->shape)) {
      /* src is larger than the index: its other elements were not used */
      mm_tensor *full = mm_zeros(ctx, g->dtype, e->ndim, e->shape);
      mm_tensor *part = full ? restride(ctx, full, g->ndim, g->shape, full->stride) : NULL;
      int st = part ? mm_copy_(ctx, part, g) : -1;
      mm_release(part);
      mm_release(g);
      if (st != 0) {
        mm_release(full);
        return -1;
      }
      g = full;
    }
    grad_in[1] = g;
  }
  return 0;
}

/* Checks a scatter's arguments; fills *bytes from value when src is NULL. */
static int scatter_check(mm_ctx *ctx, const char *op, bool add, const mm_tensor *a, int dim,
                         const mm_tensor *index, const mm_tensor *src, const mm_tensor *value,
                         unsigned char *bytes) {
  if (!a)
    return mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", op);
  if (check_index_dtype(ctx, op, index) != 0 || check_dim(ctx, op, a, dim) != 0)
    return -1;
  if (!src && (add || !value))
    return mm_fail(ctx, "moonml.%s: expected a src tensor%s, got NULL", op,
                   add ? "" : " or a value");
  if (src && src->dtype != a->dtype)
    return mm_fail(ctx, "moonml.%s: src must have the tensor's dtype %s, got %s", op,
                   mm_dtype_name(a->dtype), mm_dtype_name(src->dtype));
  if (check_index_shape(ctx, op, a, dim, index, src) != 0)
    return -1;
  if (!src && value_bytes(ctx, op, value, a->dtype, bytes) != 0)
    return -1;
  return check_range(ctx, op, index, dim_size(a, dim), dim);
}

static k_mode scatter_mode(bool add, const mm_tensor *src) {
  return add ? K_ADD : src ? K_SCATTER : K_FILL;
}

static mm_tensor *scatter_out(mm_ctx *ctx, const char *op, bool add, const mm_tensor *a, int dim,
                              const mm_tensor *index, const mm_tensor *src,
                              const mm_tensor *value) {
  unsigned char bytes[8] = {0};
  if (scatter_check(ctx, op, add, a, dim, index, src, value, bytes) != 0)
    return NULL;
  mm_tensor *out = mm_clone(ctx, a);
  mm_node *node = NULL;
  if (!out || scatter_run(ctx, scatter_mode(add, src), out, dim, index, src, bytes) != 0 ||
      record(ctx, add ? "ScatterAddBackward" : "ScatterBackward", scatter_backward, a, src, index,
             dim, add, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node)
    mm_node_attach(node, out);
  return out;
}

static int scatter_inplace(mm_ctx *ctx, const char *op, bool add, mm_tensor *a, int dim,
                           const mm_tensor *index, const mm_tensor *src, const mm_tensor *value) {
  unsigned char bytes[8] = {0};
  if (scatter_check(ctx, op, add, a, dim, index, src, value, bytes) != 0 ||
      check_inplace(ctx, op, a) != 0)
    return -1;
  mm_node *node;
  if (record(ctx, add ? "ScatterAddBackward" : "ScatterBackward", scatter_backward, a, src, index,
             dim, add, &node) != 0)
    return -1;
  if (scatter_run(ctx, scatter_mode(add, src), a, dim, index, src, bytes) != 0) {
    mm_node_release(node);
    return -1;
  }
  mm_bump_version(a);
  if (node)
    mm_node_attach(node, a);
  return 0;
}

mm_tensor *mm_scatter(mm_ctx *ctx, const mm_tensor *a, int dim, const mm_tensor *index,
                      const mm_tensor *src, const mm_tensor *value) {
  return scatter_out(ctx, "scatter", false, a, dim, index, src, value);
}

int mm_scatter_(mm_ctx *ctx, mm_tensor *a, int dim, const mm_tensor *index, const mm_tensor *src,
                const mm_tensor *value) {
  return scatter_inplace(ctx, "scatter_", false, a, dim, index, src, value);
}

mm_tensor *mm_scatter_add(mm_ctx *ctx, const mm_tensor *a, int dim, const mm_tensor *index,
                          const mm_tensor *src) {
  return scatter_out(ctx, "scatter_add", true, a, dim, index, src, NULL);
}

int mm_scatter_add_(mm_ctx *ctx, mm_tensor *a, int dim, const mm_tensor *index,
                    const mm_tensor *src) {
  return scatter_inplace(ctx, "scatter_add_", true, a, dim, index, src, NULL);
}

/* ------------------------------------------------------------------ masks */

typedef struct {
  mm_dtype dt;
  unsigned char value[8];
} fill_job;

/* p[0]: destination, p[1]: mask (bool). Every element is stored, the old or the new
 * value: no branch on the mask, which is as often random as not. */
#define FILL_LOOP(T)                                                                               \
  do {                                                                                             \
    T v;                                                                                           \
    memcpy(&v, j->value, sizeof v);                                                                \
    if (s[0] == sizeof(T) && s[1] == 1) {                                                          \
      T *o = (T *)d;                                                                               \
      for (int64_t k = 0; k < n; k++)                                                              \
        o[k] = m[k] ? v : o[k];                                                                    \
    } else {                                                                                       \
      for (int64_t k = 0; k < n; k++) {                                                            \
        T *at = (T *)(d + k * s[0]);                                                               \
        *at = m[k * s[1]] ? v : *at;                                                               \
      }                                                                                            \
    }                                                                                              \
  } while (0)

static void fill_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  const fill_job *j = arg;
  char *d = p[0];
  const char *m = p[1];
  switch (j->dt) {
  case MM_FLOAT32:
    FILL_LOOP(float);
    break;
  case MM_FLOAT64:
    FILL_LOOP(double);
    break;
  case MM_INT64:
    FILL_LOOP(int64_t);
    break;
  default:
    FILL_LOOP(uint8_t);
    break;
  }
}

/* dst[mask] = value, mask already of dst's shape */
static int fill_where(mm_tensor *dst, const mm_tensor *mask, const unsigned char *value) {
  fill_job j = {dst->dtype, {0}};
  memcpy(j.value, value, sizeof j.value);
  mm_tensor *ts[2] = {dst, (mm_tensor *)mask};
  mm_iter it;
  mm_iter_init(&it, 2, ts);
  mm_iter_run(&it, fill_kernel, &j);
  return 0;
}

/* The broadcast shape of a and b, named for op on failure. */
static int broadcast2(mm_ctx *ctx, const char *op, const mm_tensor *a, const mm_tensor *b, int *nd,
                      int64_t *shape) {
  return mm_broadcast_shape(ctx, op, a->ndim, a->shape, b->ndim, b->shape, nd, shape);
}

/* a with value where mask is true; the result has the broadcast shape. No graph. */
static mm_tensor *masked_fill_impl(mm_ctx *ctx, const char *op, const mm_tensor *a,
                                   const mm_tensor *mask, const unsigned char *value) {
  int nd;
  int64_t shape[MM_MAX_DIMS];
  if (broadcast2(ctx, op, a, mask, &nd, shape) != 0)
    return NULL;
  mm_tensor *out = mm_empty(ctx, a->dtype, nd, shape);
  mm_tensor *me = out ? mm_expand(ctx, mask, nd, shape) : NULL;
  if (!me || mm_copy_(ctx, out, a) != 0) {
    mm_release(me);
    mm_release(out);
    return NULL;
  }
  fill_where(out, me, value);
  mm_release(me);
  return out;
}

typedef struct {
  size_t es;
  int64_t count;
  char *out;       /* select: next output element */
  const char *src; /* scatter: next source element */
  int64_t src_stride;
} pick_job;

static void count_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  pick_job *j = arg;
  int64_t c = 0;
  for (int64_t k = 0; k < n; k++)
    c += p[0][k * s[0]] != 0;
  j->count += c;
}

/* p[0]: data, p[1]: mask; appends the picked elements. Every element is written at the
 * next place, which advances only when it was picked (no branch on the mask): the output
 * has one spare element. */
#define SELECT_LOOP(ES)                                                                            \
  for (int64_t k = 0; k < n; k++) {                                                                \
    memcpy(out, p[0] + k * s[0], ES);                                                              \
    out += (p[1][k * s[1]] != 0) * (ES);                                                           \
  }

static void select_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  pick_job *j = arg;
  char *out = j->out;
  switch (j->es) {
  case 1:
    SELECT_LOOP(1);
    break;
  case 4:
    SELECT_LOOP(4);
    break;
  default:
    SELECT_LOOP(8);
    break;
  }
  j->out = out;
}

/* p[0]: destination, p[1]: mask; takes the next source element for each true */
static void unselect_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  pick_job *j = arg;
  for (int64_t k = 0; k < n; k++)
    if (p[1][k * s[1]]) {
      memcpy(p[0] + k * s[0], j->src, j->es);
      j->src += j->src_stride;
    }
}

static void run_serial(int n, mm_tensor *const *ts, mm_inner_fn fn, void *arg) {
  mm_iter it;
  mm_iter_init(&it, n, ts);
  if (it.numel > 0)
    mm_iter_run_range(&it, fn, arg, 0, it.numel);
}

static int64_t count_true(const mm_tensor *mask) {
  pick_job j = {0};
  mm_tensor *ts[1] = {(mm_tensor *)mask};
  run_serial(1, ts, count_kernel, &j);
  return j.count;
}

/* The elements of a where mask is true (both broadcast); *expanded receives the mask
 * expanded to the broadcast shape when not NULL. No graph. */
static mm_tensor *masked_select_impl(mm_ctx *ctx, const char *op, const mm_tensor *a,
                                     const mm_tensor *mask, mm_tensor **expanded) {
  int nd;
  int64_t shape[MM_MAX_DIMS];
  if (broadcast2(ctx, op, a, mask, &nd, shape) != 0)
    return NULL;
  mm_tensor *ae = mm_expand(ctx, a, nd, shape);
  mm_tensor *me = ae ? mm_expand(ctx, mask, nd, shape) : NULL;
  mm_tensor *out = NULL;
  if (me) {
    int64_t count = count_true(me), spare = count + 1;
    out = mm_empty(ctx, a->dtype, 1, &spare);
    if (out)
      out->shape[0] = count;
  }
  if (out) {
    pick_job j = {mm_dtype_size(a->dtype), 0, mm_data(out), NULL, 0};
    mm_tensor *ts[2] = {ae, me};
    run_serial(2, ts, select_kernel, &j);
  }
  mm_release(ae);
  if (out && expanded)
    *expanded = me;
  else
    mm_release(me);
  return out;
}

static int masked_fill_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                                mm_tensor **grad_in) {
  const mm_tensor *mask = node->saved[0];
  if (node->in[0].needs_grad) {
    const unsigned char zero[8] = {0};
    grad_in[0] = masked_fill_impl(ctx, "masked_fill", grad, mask, zero);
    if (!grad_in[0])
      return -1;
  }
  if (node->in[1].needs_grad) { /* the value went everywhere the mask was true */
    mm_tensor *picked = masked_select_impl(ctx, "masked_fill", grad, mask, NULL);
    grad_in[1] = picked ? mm_reduce_all(ctx, MM_RED_SUM, picked) : NULL;
    mm_release(picked);
    if (!grad_in[1])
      return -1;
  }
  return 0;
}

mm_tensor *mm_masked_fill(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *mask,
                          const mm_tensor *value) {
  const char *op = "masked_fill";
  unsigned char bytes[8];
  if (!a)
    return mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", op), NULL;
  if (check_mask(ctx, op, mask) != 0 || value_bytes(ctx, op, value, a->dtype, bytes) != 0)
    return NULL;
  mm_tensor *out = masked_fill_impl(ctx, op, a, mask, bytes);
  mm_node *node;
  if (!out ||
      record(ctx, "MaskedFillBackward", masked_fill_backward, a, value, mask, 0, 0, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node)
    mm_node_attach(node, out);
  return out;
}

int mm_masked_fill_(mm_ctx *ctx, mm_tensor *a, const mm_tensor *mask, const mm_tensor *value) {
  const char *op = "masked_fill_";
  unsigned char bytes[8];
  if (!a)
    return mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", op);
  if (check_mask(ctx, op, mask) != 0 || value_bytes(ctx, op, value, a->dtype, bytes) != 0 ||
      check_inplace(ctx, op, a) != 0)
    return -1;
  int nd;
  int64_t shape[MM_MAX_DIMS];
  if (broadcast2(ctx, op, a, mask, &nd, shape) != 0)
    return -1;
  if (!same_shape(nd, shape, a->ndim, a->shape)) {
    char sm[SHAPE_BUF], sa[SHAPE_BUF];
    return mm_fail(ctx, "moonml.%s: a mask of shape %s does not broadcast to the tensor's shape %s",
                   op, mm_shape_str(sm, sizeof sm, mask->ndim, mask->shape),
                   mm_shape_str(sa, sizeof sa, a->ndim, a->shape));
  }
  mm_tensor *me = mm_expand(ctx, mask, nd, shape);
  mm_node *node = NULL;
  if (!me ||
      record(ctx, "MaskedFillBackward", masked_fill_backward, a, value, mask, 0, 0, &node) != 0) {
    mm_release(me);
    return -1;
  }
  fill_where(a, me, bytes);
  mm_release(me);
  mm_bump_version(a);
  if (node)
    mm_node_attach(node, a);
  return 0;
}

/* Saved: the mask expanded to the broadcast shape, which the gradient has. */
static int masked_select_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                                  mm_tensor **grad_in) {
  const mm_tensor *me = node->saved[0];
  mm_tensor *g = mm_zeros(ctx, grad->dtype, me->ndim, me->shape);
  if (!g)
    return -1;
  size_t es = mm_dtype_size(grad->dtype);
  pick_job j = {es, 0, NULL, mm_data(grad), grad->stride[0] * (int64_t)es};
  mm_tensor *ts[2] = {g, (mm_tensor *)me};
  run_serial(2, ts, unselect_kernel, &j);
  grad_in[0] = g;
  return 0;
}

mm_tensor *mm_masked_select(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *mask) {
  const char *op = "masked_select";
  if (!a)
    return mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", op), NULL;
  if (check_mask(ctx, op, mask) != 0)
    return NULL;
  mm_tensor *me = NULL;
  mm_tensor *out = masked_select_impl(ctx, op, a, mask, &me);
  mm_node *node = NULL;
  int st =
      out ? record(ctx, "MaskedSelectBackward", masked_select_backward, a, NULL, me, 0, 0, &node)
          : -1;
  mm_release(me);
  if (st != 0) {
    mm_release(out);
    return NULL;
  }
  if (node)
    mm_node_attach(node, out);
  return out;
}

/* ------------------------------------------------------------------ where */

/* p[0]: out, p[1]: cond, p[2]: x, p[3]: y. Elements are blended as unsigned integers of
 * their size under a mask made from cond: no branch, and the compiler vectorises it. */
#define WHERE_LOOP(U)                                                                              \
  do {                                                                                             \
    for (int64_t k = 0; k < n; k++) {                                                              \
      U xv, yv, mk = (U)0 - (U)(p[1][k * s[1]] != 0);                                              \
      memcpy(&xv, p[2] + k * s[2], sizeof xv);                                                     \
      memcpy(&yv, p[3] + k * s[3], sizeof yv);                                                     \
      U r = (U)((xv & mk) | (yv & (U)~mk));                                                        \
      memcpy(p[0] + k * s[0], &r, sizeof r);                                                       \
    }                                                                                              \
  } while (0)

/* the same with every stride fixed, so that the loop is plain: contiguous out and cond,
 * x and y contiguous or a broadcast scalar (stride 0) */
#define WHERE_CASE(U, SX, SY)                                                                      \
  if (s[0] == sizeof(U) && s[1] == 1 && s[2] == (SX) && s[3] == (SY)) {                            \
    WHERE_FIXED(U, SX, SY);                                                                        \
    return;                                                                                        \
  }
#define WHERE_FIXED(U, SX, SY)                                                                     \
  for (int64_t k = 0; k < n; k++) {                                                                \
    U xv, yv, mk = (U)0 - (U)(p[1][k] != 0);                                                       \
    memcpy(&xv, p[2] + k * (SX), sizeof xv);                                                       \
    memcpy(&yv, p[3] + k * (SY), sizeof yv);                                                       \
    U r = (U)((xv & mk) | (yv & (U)~mk));                                                          \
    memcpy(p[0] + k * sizeof(U), &r, sizeof r);                                                    \
  }

#define WHERE_ALL(U)                                                                               \
  do {                                                                                             \
    WHERE_CASE(U, sizeof(U), sizeof(U))                                                            \
    WHERE_CASE(U, sizeof(U), 0)                                                                    \
    WHERE_CASE(U, 0, sizeof(U))                                                                    \
    WHERE_LOOP(U);                                                                                 \
  } while (0)

static void where_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  switch (mm_dtype_size(*(const mm_dtype *)arg)) {
  case 1:
    WHERE_ALL(uint8_t);
    break;
  case 4:
    WHERE_ALL(uint32_t);
    break;
  default:
    WHERE_ALL(uint64_t);
    break;
  }
}

/* A tensor of dtype t with a scalar s: PyTorch's wrapped-number rule. */
static mm_dtype with_scalar(mm_dtype t, mm_scalar s) {
  if (mm_dtype_is_float(t))
    return t;
  if (!s.is_integer)
    return MM_FLOAT32;
  return MM_INT64; /* int64, and bool with an integer */
}

static int where_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  const mm_tensor *cond = node->saved[0];
  const mm_scalar zero = {0, true};
  if (node->in[0].needs_grad && !(grad_in[0] = mm_where(ctx, cond, grad, zero, NULL, zero)))
    return -1;
  if (node->in[1].needs_grad && !(grad_in[1] = mm_where(ctx, cond, NULL, zero, grad, zero)))
    return -1;
  return 0;
}

mm_tensor *mm_where(mm_ctx *ctx, const mm_tensor *cond, const mm_tensor *x, mm_scalar xs,
                    const mm_tensor *y, mm_scalar ys) {
  const char *op = "where";
  if (!cond)
    return mm_fail(ctx, "moonml.%s: expected a condition, got NULL", op), NULL;
  if (cond->dtype != MM_BOOL)
    return mm_fail(ctx, "moonml.%s: the condition must be a bool tensor, got %s", op,
                   mm_dtype_name(cond->dtype)),
           NULL;
  mm_dtype rt = x && y                           ? mm_promote(x->dtype, y->dtype)
                : x                              ? with_scalar(x->dtype, ys)
                : y                              ? with_scalar(y->dtype, xs)
                : xs.is_integer && ys.is_integer ? MM_INT64
                                                 : MM_FLOAT32;
  int nd = cond->ndim;
  int64_t shape[MM_MAX_DIMS];
  memcpy(shape, cond->shape, sizeof shape);
  for (int k = 0; k < 2; k++) {
    const mm_tensor *t = k ? y : x;
    int64_t prev[MM_MAX_DIMS];
    memcpy(prev, shape, sizeof prev);
    if (t && mm_broadcast_shape(ctx, op, nd, prev, t->ndim, t->shape, &nd, shape) != 0)
      return NULL;
  }
  mm_tensor *xt = x ? mm_to_dtype(ctx, x, rt) : mm_full(ctx, rt, 0, NULL, xs.value);
  mm_tensor *yt = y ? mm_to_dtype(ctx, y, rt) : mm_full(ctx, rt, 0, NULL, ys.value);
  mm_tensor *ts[4] = {NULL, NULL, NULL, NULL};
  mm_tensor *out = NULL;
  if (xt && yt) {
    ts[1] = mm_expand(ctx, cond, nd, shape);
    ts[2] = mm_expand(ctx, xt, nd, shape);
    ts[3] = mm_expand(ctx, yt, nd, shape);
    if (ts[1] && ts[2] && ts[3])
      ts[0] = out = mm_empty(ctx, rt, nd, shape);
  }
  if (out) {
    mm_iter it;
    mm_iter_init(&it, 4, ts);
    mm_iter_run(&it, where_kernel, &rt);
  }
  for (int k = 1; k < 4; k++)
    mm_release(ts[k]);
  mm_release(xt);
  mm_release(yt);
  mm_node *node;
  if (!out || record(ctx, "WhereBackward", where_backward, x, y, cond, 0, 0, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node)
    mm_node_attach(node, out);
  return out;
}

/* ------------------------------------------------------------------ nonzero */

typedef struct {
  mm_dtype dt;
  int64_t count;
} nz_job;

#define NZ_COUNT(T)                                                                                \
  for (int64_t k = 0; k < n; k++)                                                                  \
    c += *(const T *)(p[0] + k * s[0]) != 0;

static void nz_count_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  nz_job *j = arg;
  int64_t c = 0;
  switch (j->dt) {
  case MM_FLOAT32:
    NZ_COUNT(float);
    break;
  case MM_FLOAT64:
    NZ_COUNT(double);
    break;
  case MM_INT64:
    NZ_COUNT(int64_t);
    break;
  default:
    NZ_COUNT(uint8_t);
    break;
  }
  j->count += c;
}

/* One row (the last dim) of nonzero's output: every element writes its coordinates at o,
 * which advances only past the nonzero ones (no branch; the output has a spare row). */
#define NZ_ROW(T)                                                                                  \
  for (int64_t k = 0; k < len; k++) {                                                              \
    for (int d = 0; d < nd - 1; d++)                                                               \
      o[d] = c[d];                                                                                 \
    o[nd - 1] = k;                                                                                 \
    o += nd & -(int64_t)(*(const T *)(p + k * st) != 0);                                           \
  }

mm_tensor *mm_nonzero(mm_ctx *ctx, const mm_tensor *a) {
  if (!a)
    return mm_fail(ctx, "moonml.nonzero: expected a tensor, got NULL"), NULL;
  /* count with the coalescing iterator, then walk the rows for the coordinates */
  nz_job j = {a->dtype, 0};
  mm_tensor *ts[1] = {(mm_tensor *)a};
  run_serial(1, ts, nz_count_kernel, &j);
  int nd = a->ndim;
  int64_t shape[2] = {j.count + 1, nd};
  mm_tensor *out = mm_empty(ctx, MM_INT64, 2, shape);
  if (!out)
    return NULL;
  out->shape[0] = j.count;
  if (j.count == 0 || nd == 0)
    return out;
  int64_t *o = mm_data(out), c[MM_MAX_DIMS] = {0};
  int64_t es = (int64_t)mm_dtype_size(a->dtype), len = a->shape[nd - 1];
  int64_t st = a->stride[nd - 1] * es, rows = mm_numel(a) / len;
  const char *p = mm_data(a);
  for (int64_t r = 0; r < rows; r++) {
    switch (a->dtype) {
    case MM_FLOAT32:
      NZ_ROW(float);
      break;
    case MM_FLOAT64:
      NZ_ROW(double);
      break;
    case MM_INT64:
      NZ_ROW(int64_t);
      break;
    default:
      NZ_ROW(uint8_t);
      break;
    }
    for (int d = nd - 2; d >= 0; d--) { /* next row: carry through the outer dims */
      p += a->stride[d] * es;
      if (++c[d] < a->shape[d])
        break;
      p -= a->shape[d] * a->stride[d] * es;
      c[d] = 0;
    }
  }
  return out;
}

/* ------------------------------------------------------------------ a[key] */

/* Byte offsets, into a tensor with t's shape, strides and dtype, of the rows key picks: a
 * bool key the positions of its true elements over t's leading key->ndim dims, an int64
 * key positions along dim 0. *lead receives the number of t's dims the key covers. */
static mm_tensor *key_offsets(mm_ctx *ctx, const char *op, const mm_tensor *t, const mm_tensor *key,
                              int *lead) {
  int64_t es = (int64_t)mm_dtype_size(t->dtype), n = mm_numel(key);
  walker w;
  walk_init(&w, key);
  if (key->dtype == MM_BOOL) {
    if (key->ndim > t->ndim)
      return mm_fail(ctx, "moonml.%s: a %d-D mask cannot index a %d-D tensor", op, key->ndim,
                     t->ndim),
             NULL;
    for (int d = 0; d < key->ndim; d++)
      if (key->shape[d] != t->shape[d]) {
        char sk[SHAPE_BUF], st[SHAPE_BUF];
        return mm_fail(ctx,
                       "moonml.%s: the mask's shape %s does not match the tensor's shape %s in "
                       "dimension %d",
                       op, mm_shape_str(sk, sizeof sk, key->ndim, key->shape),
                       mm_shape_str(st, sizeof st, t->ndim, t->shape), d + 1),
               NULL;
      }
    int64_t count = count_true(key);
    mm_tensor *offs = mm_empty(ctx, MM_INT64, 1, &count);
    if (!offs)
      return NULL;
    int64_t *o = mm_data(offs);
    for (int64_t k = 0; k < n; k++, walk_next(&w))
      if (*w.p) {
        int64_t off = 0;
        for (int d = 0; d < key->ndim; d++)
          off += w.c[d] * t->stride[d];
        *o++ = off * es;
      }
    *lead = key->ndim;
    return offs;
  }
  if (key->dtype != MM_INT64)
    return mm_fail(ctx, "moonml.%s: a key tensor must be bool (a mask) or int64 (indices), got %s",
                   op, mm_dtype_name(key->dtype)),
           NULL;
  if (t->ndim == 0)
    return mm_fail(ctx, "moonml.%s: cannot index a 0-d tensor with an index tensor", op), NULL;
  mm_tensor *offs = mm_empty(ctx, MM_INT64, 1, &n);
  if (!offs)
    return NULL;
  int64_t *o = mm_data(offs);
  for (int64_t k = 0; k < n; k++, walk_next(&w)) {
    int64_t v = *(const int64_t *)w.p;
    if (v < 0 || v >= t->shape[0]) {
      mm_release(offs);
      return mm_fail(ctx, "moonml.%s: index %lld out of range for dimension 1 of size %lld", op,
                     (long long)v, (long long)t->shape[0]),
             NULL;
    }
    o[k] = v * t->stride[0] * es;
  }
  *lead = 1;
  return offs;
}

/* The shapes of a[key]: the kernel's [count, rest of t...] (ishape, returns its ndim) and
 * the result's (rshape, *rnd); -1 past MM_MAX_DIMS. */
static int key_shapes(mm_ctx *ctx, const char *op, const mm_tensor *t, const mm_tensor *key,
                      const mm_tensor *offs, int lead, int64_t *ishape, int64_t *rshape, int *rnd) {
  int in = 1 + t->ndim - lead;
  *rnd = key->dtype == MM_BOOL ? in : key->ndim + t->ndim - 1;
  if (in > MM_MAX_DIMS || *rnd > MM_MAX_DIMS)
    return mm_fail(ctx, "moonml.%s: the result would have more than %d dims", op, MM_MAX_DIMS);
  ishape[0] = mm_numel(offs);
  for (int d = lead; d < t->ndim; d++)
    ishape[1 + d - lead] = t->shape[d];
  if (key->dtype == MM_BOOL) {
    memcpy(rshape, ishape, (size_t)in * sizeof *ishape);
  } else {
    memcpy(rshape, key->shape, (size_t)key->ndim * sizeof *rshape);
    memcpy(rshape + key->ndim, t->shape + 1, (size_t)(t->ndim - 1) * sizeof *rshape);
  }
  return in;
}

/* Runs the kernel between t (through offs) and other, which has the shape ishape. */
static int key_run(mm_ctx *ctx, k_mode mode, mm_tensor *t, const mm_tensor *offs, int lead, int in,
                   const int64_t *ishape, const mm_tensor *other, const unsigned char *value) {
  int64_t st[MM_MAX_DIMS], ost[MM_MAX_DIMS] = {1};
  st[0] = 0;
  for (int d = 1; d < in; d++) {
    st[d] = t->stride[lead + d - 1];
    ost[d] = 0;
  }
  mm_tensor *tv = restride(ctx, t, in, ishape, st);
  mm_tensor *ov = tv ? restride(ctx, offs, in, ishape, ost) : NULL;
  int status = -1;
  if (ov) {
    k_job j;
    job_init(&j, mode, t, 0);
    j.mult = 1;
    j.size = UINT64_MAX;
    if (value)
      memcpy(j.value, value, sizeof j.value);
    status = run_k(&j, tv, ov, other, mode == K_GATHER);
  }
  mm_release(tv);
  mm_release(ov);
  return status;
}

/* a[key] without the graph */
static mm_tensor *index_impl(mm_ctx *ctx, const char *op, const mm_tensor *a,
                             const mm_tensor *key) {
  if (key->dtype == MM_BOOL && key->ndim > 0 &&
      same_shape(key->ndim, key->shape, a->ndim, a->shape))
    return masked_select_impl(ctx, op, a, key, NULL); /* the same, in one pass */
  int lead, rnd;
  int64_t ishape[MM_MAX_DIMS], rshape[MM_MAX_DIMS];
  mm_tensor *offs = key_offsets(ctx, op, a, key, &lead);
  int in = offs ? key_shapes(ctx, op, a, key, offs, lead, ishape, rshape, &rnd) : -1;
  mm_tensor *out = in > 0 ? mm_empty(ctx, a->dtype, rnd, rshape) : NULL;
  mm_tensor *ov = NULL;
  if (out) {
    int64_t st[MM_MAX_DIMS];
    mm_contiguous_strides(in, ishape, st);
    ov = restride(ctx, out, in, ishape, st);
  }
  int status = ov ? key_run(ctx, K_GATHER, (mm_tensor *)a, offs, lead, in, ishape, ov, NULL) : -1;
  mm_release(ov);
  mm_release(offs);
  if (status != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

/* g <- zeros of a's shape with grad put (mode K_ADD) at key; or grad itself with zeros put
 * at key (mode K_FILL). */
static mm_tensor *key_grad(mm_ctx *ctx, k_mode mode, const mm_edge *e, const mm_tensor *key,
                           const mm_tensor *grad) {
  mm_tensor *g =
      mode == K_ADD ? mm_zeros(ctx, grad->dtype, e->ndim, e->shape) : mm_clone(ctx, grad);
  int lead, rnd;
  int64_t ishape[MM_MAX_DIMS], rshape[MM_MAX_DIMS];
  mm_tensor *offs = g ? key_offsets(ctx, "index", g, key, &lead) : NULL;
  int in = offs ? key_shapes(ctx, "index", g, key, offs, lead, ishape, rshape, &rnd) : -1;
  mm_tensor *src = in > 0 && mode == K_ADD ? mm_reshape(ctx, grad, in, ishape) : NULL;
  const unsigned char zero[8] = {0};
  int status = in > 0 && (src || mode == K_FILL)
                   ? key_run(ctx, mode, g, offs, lead, in, ishape, src, zero)
                   : -1;
  mm_release(src);
  mm_release(offs);
  if (status != 0) {
    mm_release(g);
    return NULL;
  }
  return g;
}

static int index_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  grad_in[0] = key_grad(ctx, K_ADD, &node->in[0], node->saved[0], grad);
  return grad_in[0] ? 0 : -1;
}

mm_tensor *mm_index(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *key) {
  if (!a || !key)
    return mm_fail(ctx, "moonml.index: expected a tensor and a key, got NULL"), NULL;
  mm_tensor *out = index_impl(ctx, "index", a, key);
  mm_node *node;
  if (!out || record(ctx, "IndexBackward", index_backward, a, NULL, key, 0, 0, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node)
    mm_node_attach(node, out);
  return out;
}

/* Zeroes the rows of g (contiguous, key's shape + rows) whose index a later one repeats:
 * their writes were overwritten, so their values had no effect. */
static int drop_overwritten(mm_ctx *ctx, mm_tensor *g, const mm_tensor *key, int64_t size) {
  int64_t n = mm_numel(key);
  if (n < 2 || size == 0)
    return 0;
  int64_t shape = size;
  mm_tensor *last = mm_full(ctx, MM_INT64, 1, &shape, -1);
  if (!last)
    return -1;
  int64_t *lp = mm_data(last);
  walker w;
  walk_init(&w, key);
  for (int64_t k = 0; k < n; k++, walk_next(&w))
    lp[*(const int64_t *)w.p] = k;
  size_t row = (size_t)(mm_numel(g) / n) * mm_dtype_size(g->dtype);
  char *p = mm_data(g);
  walk_init(&w, key);
  for (int64_t k = 0; k < n; k++, walk_next(&w))
    if (lp[*(const int64_t *)w.p] != k)
      memset(p + (size_t)k * row, 0, row);
  mm_release(last);
  return 0;
}

/* Input 0 is the tensor, input 1 the value (broadcast to a[key]'s shape). */
static int index_put_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                              mm_tensor **grad_in) {
  const mm_tensor *key = node->saved[0];
  if (node->in[0].needs_grad && !(grad_in[0] = key_grad(ctx, K_FILL, &node->in[0], key, grad)))
    return -1;
  if (node->in[1].needs_grad) {
    grad_in[1] = index_impl(ctx, "index_put_", grad, key);
    if (!grad_in[1])
      return -1;
    if (key->dtype == MM_INT64 && drop_overwritten(ctx, grad_in[1], key, grad->shape[0]) != 0)
      return -1;
  }
  return 0;
}

int mm_index_put_(mm_ctx *ctx, mm_tensor *a, const mm_tensor *key, const mm_tensor *value) {
  const char *op = "index_put_";
  if (!a || !key || !value)
    return mm_fail(ctx, "moonml.%s: expected a tensor, a key and a value, got NULL", op);
  if (check_inplace(ctx, op, a) != 0)
    return -1;
  int lead, rnd, bnd;
  int64_t ishape[MM_MAX_DIMS], rshape[MM_MAX_DIMS], bshape[MM_MAX_DIMS];
  mm_tensor *offs = key_offsets(ctx, op, a, key, &lead);
  int in = offs ? key_shapes(ctx, op, a, key, offs, lead, ishape, rshape, &rnd) : -1;
  mm_tensor *conv = NULL, *ve = NULL, *vr = NULL;
  mm_node *node = NULL;
  int status = -1;
  if (in < 0)
    goto done;
  if (mm_broadcast_shape(ctx, op, value->ndim, value->shape, rnd, rshape, &bnd, bshape) != 0 ||
      !same_shape(bnd, bshape, rnd, rshape)) {
    char sv[SHAPE_BUF], sr[SHAPE_BUF];
    mm_fail(ctx, "moonml.%s: a value of shape %s cannot be broadcast to the indexed shape %s", op,
            mm_shape_str(sv, sizeof sv, value->ndim, value->shape),
            mm_shape_str(sr, sizeof sr, rnd, rshape));
    goto done;
  }
  /* a converted (or cloned) value never shares memory with a */
  conv = value->dtype != a->dtype || !mm_same_storage(value, a) ? mm_to_dtype(ctx, value, a->dtype)
                                                                : mm_clone(ctx, value);
  ve = conv ? mm_expand(ctx, conv, rnd, rshape) : NULL;
  vr = ve ? mm_reshape(ctx, ve, in, ishape) : NULL;
  if (!vr || record(ctx, "IndexPutBackward", index_put_backward, a, value, key, 0, 0, &node) != 0)
    goto done;
  status = key_run(ctx, K_SCATTER, a, offs, lead, in, ishape, vr, NULL);
  if (status == 0) {
    mm_bump_version(a);
    if (node)
      mm_node_attach(node, a);
    node = NULL;
  }
done:
  mm_node_release(node);
  mm_release(vr);
  mm_release(ve);
  mm_release(conv);
  mm_release(offs);
  return status;
}

/* ------------------------------------------------------------------ index arguments */

typedef struct {
  mm_dtype dt;
  int64_t size, base;
  bool negative;
  int error; /* 0, 1: out of range, 2: not a whole number */
  double bad_f;
  int64_t bad_i;
} norm_job;

/* p[0]: the int64 result, p[1]: the given index */
static void norm_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  norm_job *j = arg;
  if (j->error)
    return;
  if (j->dt == MM_INT64 && s[0] == 8 && s[1] == 8) {
    /* the common case in one pass the compiler vectorises; the loop below finds any error */
    const int64_t *x = (const int64_t *)p[1];
    int64_t *o = (int64_t *)p[0];
    uint64_t size = (uint64_t)j->size;
    int bad = 0;
    if (j->negative) {
      for (int64_t k = 0; k < n; k++) {
        int64_t z = x[k] < 0 ? x[k] + j->size : (int64_t)((uint64_t)x[k] - (uint64_t)j->base);
        bad |= (uint64_t)z >= size;
        o[k] = z;
      }
    } else {
      for (int64_t k = 0; k < n; k++) {
        int64_t z = (int64_t)((uint64_t)x[k] - (uint64_t)j->base);
        bad |= (uint64_t)z >= size;
        o[k] = z;
      }
    }
    if (!bad)
      return;
  }
  for (int64_t k = 0; k < n; k++) {
    const char *x = p[1] + k * s[1];
    int64_t v;
    if (j->dt == MM_INT64) {
      v = *(const int64_t *)x;
    } else {
      double f = j->dt == MM_FLOAT32 ? *(const float *)x : *(const double *)x;
      if (!(f >= -9.2e18 && f <= 9.2e18)) { /* NaN and infinities are not whole numbers */
        j->error = isnan(f) || isinf(f) ? 2 : 1;
        j->bad_f = f;
        return;
      }
      v = (int64_t)f;
      if ((double)v != f) {
        j->error = 2;
        j->bad_f = f;
        return;
      }
    }
    /* unsigned: INT64_MIN - 1 wraps to a large value, out of range */
    int64_t z = j->negative && v < 0 ? v + j->size : (int64_t)((uint64_t)v - (uint64_t)j->base);
    if (z < 0 || z >= j->size) {
      j->error = 1;
      j->bad_i = v;
      j->bad_f = (double)v;
      return;
    }
    *(int64_t *)(p[0] + k * s[0]) = z;
  }
}

mm_tensor *mm_index_normalize(mm_ctx *ctx, const char *op, const mm_tensor *index, int64_t size,
                              int dim, int base, bool allow_negative) {
  if (!index)
    return mm_fail(ctx, "moonml.%s: expected an index tensor, got NULL", op), NULL;
  if (index->dtype != MM_INT64 && !mm_dtype_is_float(index->dtype))
    return mm_fail(ctx,
                   "moonml.%s: index must be an int64 tensor or a float tensor of whole numbers, "
                   "got %s",
                   op, mm_dtype_name(index->dtype)),
           NULL;
  mm_tensor *out = mm_empty(ctx, MM_INT64, index->ndim, index->shape);
  if (!out)
    return NULL;
  norm_job j = {index->dtype, size, base, allow_negative, 0, 0, 0};
  mm_tensor *ts[2] = {out, (mm_tensor *)index};
  run_serial(2, ts, norm_kernel, &j);
  if (j.error == 0)
    return out;
  mm_release(out);
  if (j.error == 2 && isnan(j.bad_f))
    return mm_fail(ctx, "moonml.%s: index nan is not a whole number", op), NULL;
  if (j.error == 2)
    return mm_fail(ctx, "moonml.%s: index %g is not a whole number", op, j.bad_f), NULL;
  if (index->dtype == MM_INT64 || fabs(j.bad_f) < 1e15)
    return mm_fail(ctx, "moonml.%s: index %lld out of range for dimension %d of size %lld", op,
                   (long long)(index->dtype == MM_INT64 ? j.bad_i : (int64_t)j.bad_f), dim + 1,
                   (long long)size),
           NULL;
  return mm_fail(ctx, "moonml.%s: index %g out of range for dimension %d of size %lld", op, j.bad_f,
                 dim + 1, (long long)size),
         NULL;
}
