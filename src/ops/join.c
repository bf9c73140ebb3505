/* Joining and splitting: cat, stack, split / split_sizes / chunk (views), repeat / tile,
 * flip; each forward beside its backward. */
#include "rows.h"

#include <stdlib.h>
#include <string.h>

void mm_release_list(mm_tensor **ts, int64_t n) {
  if (!ts)
    return;
  for (int64_t k = 0; k < n; k++)
    mm_release(ts[k]);
  free(ts);
}

/* A view of t narrowed along dim, made here rather than by mm_narrow so that it never
 * records a node of its own (the caller records one). */
static mm_tensor *narrow_view(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t start,
                              int64_t len) {
  mm_tensor *v = mm_tensor_view_of(ctx, t);
  if (v) {
    v->offset += start * t->stride[dim];
    v->shape[dim] = len;
  }
  return v;
}

static mm_tensor *select_view(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t index) {
  mm_tensor *v = mm_tensor_view_of(ctx, t);
  if (!v)
    return NULL;
  v->offset += index * t->stride[dim];
  for (int d = dim; d < t->ndim - 1; d++) {
    v->shape[d] = t->shape[d + 1];
    v->stride[d] = t->stride[d + 1];
  }
  v->ndim--;
  return v;
}

/* ------------------------------------------------------------------ cat and stack */

/* The graph of a cat or stack of n inputs: nodes take at most MM_NODE_MAX_INPUTS inputs,
 * so longer lists become a tree whose inner nodes stand for the concatenation of a run
 * of inputs. node->i: [0] dim, [1] children are stacked inputs (select, not narrow),
 * [2 + k] length of child k along dim. */
#define FAN MM_NODE_MAX_INPUTS

static int join_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  int dim = (int)node->i[0];
  bool sel = node->i[1] != 0;
  int64_t off = 0;
  for (int k = 0; k < node->n_inputs; k++) {
    const mm_edge *e = &node->in[k];
    int64_t len = node->i[2 + k];
    if (e->needs_grad) {
      mm_tensor *v;
      if (sel)
        v = mm_select(ctx, g, dim, off);
      else if (g->ndim != e->ndim) /* a 1-D empty input that cat skipped */
        v = mm_zeros(ctx, e->dtype, e->ndim, e->shape);
      else
        v = mm_narrow(ctx, g, dim, off, len);
      if (v && v->dtype != e->dtype) {
        mm_tensor *c = mm_to_dtype(ctx, v, e->dtype);
        mm_release(v);
        v = c;
      }
      if (!v)
        return -1;
      grad_in[k] = v;
    }
    off += len;
  }
  return 0;
}

static int join_record(mm_ctx *ctx, const char *name, const mm_tensor *const *ts, int64_t n,
                       const int64_t *lens, int dim, bool stack, mm_tensor *out) {
  if (!mm_grad_enabled(ctx))
    return 0;
  bool any = false;
  for (int64_t k = 0; k < n && !any; k++)
    any = ts[k]->requires_grad;
  if (!any)
    return 0;
  const mm_tensor **cur = malloc((size_t)n * sizeof *cur);
  int64_t *len = malloc((size_t)n * sizeof *len);
  mm_tensor *level = NULL; /* headers standing for the runs of the level below */
  int status = 0;
  if (!cur || !len) {
    status = mm_fail(ctx, "moonml.%s: out of memory recording the graph", name);
    goto done;
  }
  for (int64_t k = 0; k < n; k++) {
    cur[k] = ts[k];
    len[k] = lens[k];
  }
  bool leaves = true;
  for (;;) {
    int64_t groups = (n + FAN - 1) / FAN;
    mm_tensor *next = groups > 1 ? calloc((size_t)groups, sizeof *next) : NULL;
    if (groups > 1 && !next) {
      status = mm_fail(ctx, "moonml.%s: out of memory recording the graph", name);
      break;
    }
    for (int64_t g = 0; g < groups && status == 0; g++) {
      int64_t first = g * FAN, count = n - first < FAN ? n - first : FAN, total = 0;
      mm_node *node;
      status = mm_node_begin(ctx, name, join_backward, (int)count, cur + first, &node);
      if (status != 0)
        break;
      for (int64_t k = 0; k < count; k++)
        total += len[first + k];
      if (node) {
        node->i[0] = dim;
        node->i[1] = stack && leaves;
        for (int64_t k = 0; k < count; k++)
          node->i[2 + k] = len[first + k];
      }
      if (groups == 1) {
        if (node)
          mm_node_attach(node, out);
        break;
      }
      mm_tensor *h = &next[g]; /* only what mm_node_begin reads */
      h->dtype = out->dtype;
      h->ndim = out->ndim;
      memcpy(h->shape, out->shape, sizeof h->shape);
      h->shape[dim] = total;
      h->requires_grad = node != NULL;
      h->grad_fn = node;
      len[g] = total;
    }
    if (level) { /* the nodes of the level below are held by this level's nodes now */
      for (int64_t k = 0; k < n; k++)
        mm_node_release(level[k].grad_fn);
      free(level);
      level = NULL;
    }
    if (groups == 1 || status != 0) {
      if (next)
        for (int64_t k = 0; k < groups; k++)
          mm_node_release(next[k].grad_fn);
      free(next);
      break;
    }
    level = next;
    for (int64_t g = 0; g < groups; g++)
      cur[g] = &level[g];
    n = groups;
    leaves = false;
  }
done:
  free(cur);
  free(len);
  return status;
}

static bool legacy_empty(const mm_tensor *t) { return t->ndim == 1 && t->shape[0] == 0; }

static int check_list(mm_ctx *ctx, const char *name, const mm_tensor *const *ts, int64_t n) {
  if (n < 1)
    return mm_fail(ctx, "moonml.%s: expected a non-empty list of tensors", name);
  for (int64_t k = 0; k < n; k++)
    if (!ts[k])
      return mm_fail(ctx, "moonml.%s: tensor %lld of the list is NULL", name, (long long)k + 1);
  return 0;
}

static mm_dtype list_dtype(const mm_tensor *const *ts, int64_t n) {
  mm_dtype dt = ts[0]->dtype;
  for (int64_t k = 1; k < n; k++)
    dt = mm_promote(dt, ts[k]->dtype);
  return dt;
}

mm_tensor *mm_cat(mm_ctx *ctx, const mm_tensor *const *ts, int64_t n, int dim) {
  if (check_list(ctx, "cat", ts, n) != 0)
    return NULL;
  const mm_tensor *ref = NULL; /* PyTorch skips 1-D empty tensors when shapes are checked */
  for (int64_t k = 0; k < n; k++) {
    if (ts[k]->ndim == 0) {
      mm_fail(ctx, "moonml.cat: tensor %lld of the list is 0-d and cannot be concatenated",
              (long long)k + 1);
      return NULL;
    }
    if (!ref && !legacy_empty(ts[k]))
      ref = ts[k];
  }
  if (!ref)
    ref = ts[0];
  if (mm_check_dim0(ctx, "cat", dim, ref->ndim) != 0)
    return NULL;
  int64_t *lens = malloc((size_t)n * sizeof *lens);
  if (!lens) {
    mm_fail(ctx, "moonml.cat: out of memory");
    return NULL;
  }
  int64_t shape[MM_MAX_DIMS], total = 0;
  memcpy(shape, ref->shape, sizeof shape);
  for (int64_t k = 0; k < n; k++) {
    const mm_tensor *t = ts[k];
    lens[k] = 0;
    if (t != ref && legacy_empty(t))
      continue;
    char a[96], b[96];
    if (t->ndim != ref->ndim) {
      mm_fail(ctx,
              "moonml.cat: tensors must have the same number of dimensions, got %s and %s "
              "(tensor %lld of the list)",
              mm_shape_str(a, sizeof a, ref->ndim, ref->shape),
              mm_shape_str(b, sizeof b, t->ndim, t->shape), (long long)k + 1);
      free(lens);
      return NULL;
    }
    for (int d = 0; d < t->ndim; d++)
      if (d != dim && t->shape[d] != ref->shape[d]) {
        mm_fail(ctx,
                "moonml.cat: sizes must match except in dimension %d, got %s and %s "
                "(tensor %lld of the list)",
                dim + 1, mm_shape_str(a, sizeof a, ref->ndim, ref->shape),
                mm_shape_str(b, sizeof b, t->ndim, t->shape), (long long)k + 1);
        free(lens);
        return NULL;
      }
    lens[k] = t->shape[dim];
    total += lens[k];
  }
  shape[dim] = total;
  mm_tensor *out = mm_empty(ctx, list_dtype(ts, n), ref->ndim, shape);
  bool mode = mm_grad_pause(ctx);
  int64_t off = 0;
  for (int64_t k = 0; out && k < n; k++) {
    if (lens[k] > 0) {
      mm_tensor *v = narrow_view(ctx, out, dim, off, lens[k]);
      if (!v || mm_copy_(ctx, v, ts[k]) != 0) {
        mm_release(v);
        mm_release(out);
        out = NULL;
        break;
      }
      mm_release(v);
    }
    off += lens[k];
  }
  mm_set_grad_enabled(ctx, mode);
  if (out && join_record(ctx, "CatBackward", ts, n, lens, dim, false, out) != 0) {
    mm_release(out);
    out = NULL;
  }
  free(lens);
  return out;
}

mm_tensor *mm_stack(mm_ctx *ctx, const mm_tensor *const *ts, int64_t n, int dim) {
  if (check_list(ctx, "stack", ts, n) != 0)
    return NULL;
  const mm_tensor *t0 = ts[0];
  for (int64_t k = 1; k < n; k++) {
    bool same = ts[k]->ndim == t0->ndim;
    for (int d = 0; same && d < t0->ndim; d++)
      same = ts[k]->shape[d] == t0->shape[d];
    if (!same) {
      char a[96], b[96];
      mm_fail(ctx,
              "moonml.stack: expects tensors of equal shape, got %s (tensor 1) and %s "
              "(tensor %lld)",
              mm_shape_str(a, sizeof a, t0->ndim, t0->shape),
              mm_shape_str(b, sizeof b, ts[k]->ndim, ts[k]->shape), (long long)k + 1);
      return NULL;
    }
  }
  if (dim < 0 || dim > t0->ndim) {
    mm_fail(ctx, "moonml.stack: dimension %d out of range for stacking %d-D tensors", dim + 1,
            t0->ndim);
    return NULL;
  }
  if (t0->ndim + 1 > MM_MAX_DIMS) {
    mm_fail(ctx, "moonml.stack: the result would have more than %d dimensions", MM_MAX_DIMS);
    return NULL;
  }
  int64_t shape[MM_MAX_DIMS];
  for (int d = 0, s = 0; d <= t0->ndim; d++)
    shape[d] = d == dim ? n : t0->shape[s++];
  mm_tensor *out = mm_empty(ctx, list_dtype(ts, n), t0->ndim + 1, shape);
  if (!out)
    return NULL;
  int64_t *lens = malloc((size_t)n * sizeof *lens);
  if (!lens) {
    mm_release(out);
    mm_fail(ctx, "moonml.stack: out of memory");
    return NULL;
  }
  bool mode = mm_grad_pause(ctx);
  for (int64_t k = 0; k < n; k++) {
    lens[k] = 1;
    mm_tensor *v = select_view(ctx, out, dim, k);
    if (!v || mm_copy_(ctx, v, ts[k]) != 0) {
      mm_release(v);
      mm_release(out);
      out = NULL;
      break;
    }
    mm_release(v);
  }
  mm_set_grad_enabled(ctx, mode);
  if (out && join_record(ctx, "StackBackward", ts, n, lens, dim, true, out) != 0) {
    mm_release(out);
    out = NULL;
  }
  free(lens);
  return out;
}

/* ------------------------------------------------------------------ split and chunk */

/* node->i: [0] dim, [1] start, [2] length of the piece */
static int split_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  const mm_edge *e = &node->in[0];
  mm_tensor *full = mm_zeros(ctx, e->dtype, e->ndim, e->shape);
  if (!full)
    return -1;
  mm_tensor *v = narrow_view(ctx, full, (int)node->i[0], node->i[1], node->i[2]);
  int st = v ? mm_copy_(ctx, v, g) : -1;
  mm_release(v);
  if (st != 0) {
    mm_release(full);
    return -1;
  }
  grad_in[0] = full;
  return 0;
}

/* Views of t along dim with the given sizes (they sum to the size of dim). */
static mm_tensor **split_pieces(mm_ctx *ctx, const char *name, const mm_tensor *t, int dim,
                                int64_t n, const int64_t *sizes) {
  mm_tensor **out = calloc((size_t)(n > 0 ? n : 1), sizeof *out);
  if (!out) {
    mm_fail(ctx, "moonml.%s: out of memory", name);
    return NULL;
  }
  int64_t start = 0;
  for (int64_t k = 0; k < n; k++) {
    mm_node *node = NULL;
    out[k] = narrow_view(ctx, t, dim, start, sizes[k]);
    if (!out[k] || mm_node_begin(ctx, "SplitBackward", split_backward, 1, &t, &node) != 0) {
      mm_release_list(out, k + 1);
      return NULL;
    }
    if (node) {
      node->i[0] = dim;
      node->i[1] = start;
      node->i[2] = sizes[k];
      mm_node_attach(node, out[k]);
    }
    start += sizes[k];
  }
  return out;
}

static int check_split_input(mm_ctx *ctx, const char *name, const mm_tensor *t, int dim) {
  if (!t)
    return mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", name);
  if (t->ndim == 0)
    return mm_fail(ctx, "moonml.%s: cannot split a 0-d tensor", name);
  return mm_check_dim0(ctx, name, dim, t->ndim);
}

/* n pieces of `size` along dim (the last one smaller), from a size of S */
static mm_tensor **split_even(mm_ctx *ctx, const char *name, const mm_tensor *t, int dim,
                              int64_t size, int64_t n, int64_t *count) {
  int64_t S = t->shape[dim];
  int64_t *sizes = malloc((size_t)(n > 0 ? n : 1) * sizeof *sizes);
  if (!sizes) {
    mm_fail(ctx, "moonml.%s: out of memory", name);
    return NULL;
  }
  for (int64_t k = 0; k < n; k++) {
    int64_t rest = S - k * size;
    sizes[k] = rest < size ? (rest > 0 ? rest : 0) : size;
  }
  mm_tensor **out = split_pieces(ctx, name, t, dim, n, sizes);
  free(sizes);
  if (out)
    *count = n;
  return out;
}

mm_tensor **mm_split(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t size, int64_t *count) {
  if (check_split_input(ctx, "split", t, dim) != 0)
    return NULL;
  int64_t S = t->shape[dim];
  if (size < 0 || (size == 0 && S != 0)) {
    mm_fail(ctx, "moonml.split: split size must be positive, got %lld", (long long)size);
    return NULL;
  }
  int64_t n = S == 0 ? 1 : (S + size - 1) / size;
  return split_even(ctx, "split", t, dim, size, n, count);
}

mm_tensor **mm_split_sizes(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t n,
                           const int64_t *sizes) {
  if (check_split_input(ctx, "split", t, dim) != 0)
    return NULL;
  int64_t total = 0;
  for (int64_t k = 0; k < n; k++) {
    if (sizes[k] < 0) {
      mm_fail(ctx, "moonml.split: size %lld of the list is negative (%lld)", (long long)k + 1,
              (long long)sizes[k]);
      return NULL;
    }
    total += sizes[k];
  }
  if (total != t->shape[dim]) {
    mm_fail(ctx, "moonml.split: the sizes add up to %lld, but dimension %d has size %lld",
            (long long)total, dim + 1, (long long)t->shape[dim]);
    return NULL;
  }
  return split_pieces(ctx, "split", t, dim, n, sizes);
}

mm_tensor **mm_chunk(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t chunks, int64_t *count) {
  if (check_split_input(ctx, "chunk", t, dim) != 0)
    return NULL;
  if (chunks < 1) {
    mm_fail(ctx, "moonml.chunk: the number of chunks must be positive, got %lld",
            (long long)chunks);
    return NULL;
  }
  int64_t S = t->shape[dim];
  if (S == 0) /* PyTorch: `chunks` empty pieces */
    return split_even(ctx, "chunk", t, dim, 0, chunks, count);
  int64_t size = (S + chunks - 1) / chunks;
  return split_even(ctx, "chunk", t, dim, size, (S + size - 1) / size, count);
}

/* ------------------------------------------------------------------ repeat and tile */

/* Walks the rows (all dims but the last) of a contiguous tensor of shape out[0..m), and
 * for each gives the element offset of the matching row of the source (shape in[], one
 * source element standing for rep[d] = out[d] / in[d] along each dim, or flipped). */
typedef struct {
  int m;
  int64_t out[MM_MAX_DIMS], in[MM_MAX_DIMS], in_stride[MM_MAX_DIMS];
  int64_t idx[MM_MAX_DIMS];
  unsigned flip; /* bit d: dim d runs backwards in the source */
} row_walk;

static void walk_init(row_walk *w, int m, const int64_t *out, const int64_t *in, unsigned flip) {
  w->m = m;
  w->flip = flip;
  int64_t s = 1;
  for (int d = m - 1; d >= 0; d--) {
    w->out[d] = out[d];
    w->in[d] = in[d];
    w->in_stride[d] = s;
    s *= in[d];
    w->idx[d] = 0;
  }
}

static int64_t walk_src(const row_walk *w) {
  int64_t off = 0;
  for (int d = 0; d < w->m - 1; d++) {
    int64_t j = w->idx[d] % w->in[d];
    if (w->flip >> d & 1)
      j = w->in[d] - 1 - j;
    off += j * w->in_stride[d];
  }
  return off;
}

static void walk_next(row_walk *w) {
  for (int d = w->m - 2; d >= 0; d--) {
    if (++w->idx[d] < w->out[d])
      return;
    w->idx[d] = 0;
  }
}

/* node->i[0..m): the repetitions per dim of the (padded) input */
static int repeat_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  const mm_edge *e = &node->in[0];
  int m = g->ndim;
  int64_t in[MM_MAX_DIMS];
  for (int d = 0; d < m; d++)
    in[d] = g->shape[d] / (node->i[d] > 0 ? node->i[d] : 1);
  mm_tensor *gc = mm_contiguous(ctx, g);
  mm_tensor *acc = gc ? mm_zeros(ctx, g->dtype, m, in) : NULL;
  if (!acc) {
    mm_release(gc);
    return -1;
  }
  int64_t n = mm_numel(g);
  if (n > 0 && m > 0) {
    row_walk w;
    walk_init(&w, m, g->shape, in, 0);
    int64_t inner = in[m - 1], reps = node->i[m - 1], rows = n / g->shape[m - 1];
    const char *src = mm_data(gc);
    char *dst = mm_data(acc);
    for (int64_t r = 0; r < rows; r++, walk_next(&w)) {
      int64_t so = walk_src(&w), go = r * inner * reps;
      if (g->dtype == MM_FLOAT32) {
        float *a = (float *)dst + so;
        const float *x = (const float *)src + go;
        for (int64_t k = 0; k < reps; k++)
          for (int64_t j = 0; j < inner; j++)
            a[j] += x[k * inner + j];
      } else {
        double *a = (double *)dst + so;
        const double *x = (const double *)src + go;
        for (int64_t k = 0; k < reps; k++)
          for (int64_t j = 0; j < inner; j++)
            a[j] += x[k * inner + j];
      }
    }
  } else if (n > 0 && mm_copy_(ctx, acc, gc) != 0) {
    mm_release(acc);
    acc = NULL;
  }
  mm_release(gc);
  if (!acc)
    return -1;
  mm_tensor *shaped = mm_reshape(ctx, acc, e->ndim, e->shape);
  mm_release(acc);
  if (!shaped)
    return -1;
  grad_in[0] = shaped;
  return 0;
}

static mm_tensor *repeat_impl(mm_ctx *ctx, const char *name, const mm_tensor *t, int n,
                              const int64_t *reps, bool pad_reps) {
  if (!t) {
    mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", name);
    return NULL;
  }
  if (n < t->ndim && !pad_reps) {
    mm_fail(ctx,
            "moonml.%s: %d repetitions given for a %d-D tensor; give at least one per "
            "dimension",
            name, n, t->ndim);
    return NULL;
  }
  int m = n > t->ndim ? n : t->ndim;
  if (m > MM_MAX_DIMS) {
    mm_fail(ctx, "moonml.%s: %d repetitions given, at most %d dimensions supported", name, n,
            MM_MAX_DIMS);
    return NULL;
  }
  int64_t in[MM_MAX_DIMS], rep[MM_MAX_DIMS], out[MM_MAX_DIMS];
  for (int d = 0; d < m; d++) {
    int di = d - (m - t->ndim), dr = d - (m - n);
    in[d] = di >= 0 ? t->shape[di] : 1;
    rep[d] = dr >= 0 ? reps[dr] : 1;
    if (rep[d] < 0) {
      mm_fail(ctx, "moonml.%s: repetitions must not be negative, got %lld", name,
              (long long)rep[d]);
      return NULL;
    }
    if (in[d] > 0 && rep[d] > INT64_MAX / in[d]) { /* checked before multiplying */
      mm_fail(ctx, "moonml.%s: size too large to allocate", name);
      return NULL;
    }
    out[d] = in[d] * rep[d];
  }
  /* the size limit under this op's name (mm_empty would report it as "empty") */
  if (mm_shape_numel(ctx, name, m, out, t->dtype) < 0)
    return NULL;
  mm_tensor *res = mm_empty(ctx, t->dtype, m, out);
  if (!res)
    return NULL;
  bool mode = mm_grad_pause(ctx);
  mm_tensor *src = mm_contiguous(ctx, t);
  mm_set_grad_enabled(ctx, mode);
  if (!src) {
    mm_release(res);
    return NULL;
  }
  int64_t total = mm_numel(res);
  size_t es = mm_dtype_size(t->dtype);
  if (total > 0 && m == 0) {
    memcpy(mm_data(res), mm_data(src), es);
  } else if (total > 0) {
    row_walk w;
    walk_init(&w, m, out, in, 0);
    int64_t inner = in[m - 1], rows = total / out[m - 1];
    size_t run = (size_t)inner * es;
    const char *s = mm_data(src);
    char *o = mm_data(res);
    for (int64_t r = 0; r < rows; r++, walk_next(&w)) {
      const char *row = s + walk_src(&w) * (int64_t)es;
      for (int64_t k = 0; k < rep[m - 1]; k++, o += run)
        memcpy(o, row, run);
    }
  }
  mm_release(src);
  mm_node *node;
  if (mm_node_begin(ctx, "RepeatBackward", repeat_backward, 1, &t, &node) != 0) {
    mm_release(res);
    return NULL;
  }
  if (node) {
    for (int d = 0; d < m; d++)
      node->i[d] = rep[d];
    mm_node_attach(node, res);
  }
  return res;
}

mm_tensor *mm_repeat(mm_ctx *ctx, const mm_tensor *t, int n, const int64_t *reps) {
  return repeat_impl(ctx, "repeat", t, n, reps, false);
}

mm_tensor *mm_tile(mm_ctx *ctx, const mm_tensor *t, int n, const int64_t *reps) {
  return repeat_impl(ctx, "tile", t, n, reps, true);
}

/* ------------------------------------------------------------------ flip */

static mm_tensor *flip_mask(mm_ctx *ctx, const mm_tensor *t, unsigned mask) {
  mm_tensor *res = mm_empty(ctx, t->dtype, t->ndim, t->shape);
  bool mode = mm_grad_pause(ctx);
  mm_tensor *src = res ? mm_contiguous(ctx, t) : NULL;
  mm_set_grad_enabled(ctx, mode);
  if (!src) {
    mm_release(res);
    return NULL;
  }
  int64_t total = mm_numel(t);
  size_t es = mm_dtype_size(t->dtype);
  int m = t->ndim;
  if (total > 0 && (m == 0 || mask == 0)) {
    memcpy(mm_data(res), mm_data(src), (size_t)total * es);
  } else if (total > 0) {
    row_walk w;
    walk_init(&w, m, t->shape, t->shape, mask);
    int64_t inner = t->shape[m - 1], rows = total / inner;
    bool rev = mask >> (m - 1) & 1;
    const char *s = mm_data(src);
    char *o = mm_data(res);
    for (int64_t r = 0; r < rows; r++, walk_next(&w), o += (size_t)inner * es) {
      const char *row = s + walk_src(&w) * (int64_t)es;
      if (!rev)
        memcpy(o, row, (size_t)inner * es);
      else if (es == 8)
        for (int64_t j = 0; j < inner; j++)
          memcpy(o + j * 8, row + (inner - 1 - j) * 8, 8);
      else if (es == 4)
        for (int64_t j = 0; j < inner; j++)
          memcpy(o + j * 4, row + (inner - 1 - j) * 4, 4);
      else
        for (int64_t j = 0; j < inner; j++)
          o[j] = row[inner - 1 - j];
    }
  }
  mm_release(src);
  return res;
}

/* node->i[0]: the mask of flipped dims */
static int flip_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  grad_in[0] = flip_mask(ctx, g, (unsigned)node->i[0]);
  return grad_in[0] ? 0 : -1;
}

mm_tensor *mm_flip(mm_ctx *ctx, const mm_tensor *t, int n, const int *dims) {
  if (!t) {
    mm_fail(ctx, "moonml.flip: expected a tensor, got NULL");
    return NULL;
  }
  unsigned mask = 0;
  for (int k = 0; k < n; k++) {
    if (mm_check_dim0(ctx, "flip", dims[k], t->ndim) != 0)
      return NULL;
    if (mask >> dims[k] & 1) {
      mm_fail(ctx, "moonml.flip: dimension %d appears more than once", dims[k] + 1);
      return NULL;
    }
    mask |= 1u << dims[k];
  }
  if (t->ndim == 0)
    mask = 0;
  mm_tensor *res = flip_mask(ctx, t, mask);
  mm_node *node;
  if (!res || mm_node_begin(ctx, "FlipBackward", flip_backward, 1, &t, &node) != 0) {
    mm_release(res);
    return NULL;
  }
  if (node) {
    node->i[0] = mask;
    mm_node_attach(node, res);
  }
  return res;
}
