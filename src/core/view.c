/* Views: new headers over the same storage. None of these copies data except reshape,
 * which copies only when the strides leave no other way (as PyTorch's does).
 *
 * Autograd: each public view op records a node whose backward sits beside it, and the
 * view remembers its base (mm_view_track) so that an in-place change through it can
 * rewrite the base's history. The static *_raw forms record nothing. */
#include "internal.h"

#include "../autograd/autograd.h"

#include <string.h>

#define SHAPE_BUF 128

/* Fills a -1 in shape from t's numel; checks the element counts agree. */
static int infer_shape(mm_ctx *ctx, const char *op, const mm_tensor *t, int ndim,
                       const int64_t *shape, int64_t *out) {
  if (ndim < 0 || ndim > MM_MAX_DIMS)
    return mm_fail(ctx, "moonml.%s: at most %d dimensions are supported", op, MM_MAX_DIMS);
  int infer = -1;
  int64_t known = 1, nonzero = 1;
  char a[SHAPE_BUF], b[SHAPE_BUF];
  for (int d = 0; d < ndim; d++) {
    out[d] = shape[d];
    if (shape[d] == -1) {
      if (infer >= 0)
        return mm_fail(ctx, "moonml.%s: only one dimension can be -1", op);
      infer = d;
    } else if (shape[d] < 0) {
      return mm_fail(ctx, "moonml.%s: negative size %lld in dimension %d", op, (long long)shape[d],
                     d + 1);
    } else {
      /* as PyTorch: the product of the nonzero sizes must fit, even next to a 0 */
      if (shape[d] > 0 && nonzero > INT64_MAX / shape[d])
        return mm_fail(ctx, "moonml.%s: shape %s has too many elements", op,
                       mm_shape_str(a, sizeof a, ndim, shape));
      if (shape[d] > 0)
        nonzero *= shape[d];
      known *= shape[d];
    }
  }
  int64_t numel = mm_numel(t);
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      return mm_fail(ctx, "moonml.%s: shape %s is invalid for a tensor of %lld elements", op,
                     mm_shape_str(a, sizeof a, ndim, shape), (long long)numel);
    out[infer] = numel / known;
  } else if (known != numel) {
    return mm_fail(ctx, "moonml.%s: cannot view a tensor of shape %s (%lld elements) as %s", op,
                   mm_shape_str(a, sizeof a, t->ndim, t->shape), (long long)numel,
                   mm_shape_str(b, sizeof b, ndim, shape));
  }
  return 0;
}

/* Strides for viewing t as shape without copying, or false: PyTorch's computeStride,
 * so that the strides (size-1 dims included) are the ones PyTorch reports. */
static bool view_strides(const mm_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
  if (t->ndim == 0) {
    for (int d = 0; d < ndim; d++)
      stride[d] = 1;
    return true;
  }
  int oldn = t->ndim;
  const int64_t *oshape = t->shape, *ostride = t->stride;
  if (mm_numel(t) == 0) {
    bool same = ndim == oldn;
    for (int d = 0; same && d < ndim; d++)
      same = shape[d] == oshape[d];
    if (same)
      memcpy(stride, ostride, (size_t)ndim * sizeof *stride);
    else
      mm_contiguous_strides(ndim, shape, stride);
    return true;
  }
  int view_d = ndim - 1;
  int64_t chunk_base = ostride[oldn - 1], tensor_numel = 1, view_numel = 1;
  for (int d = oldn - 1; d >= 0; d--) {
    tensor_numel *= oshape[d];
    if (d == 0 || (oshape[d - 1] != 1 && ostride[d - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        stride[view_d] = view_numel * chunk_base;
        view_numel *= shape[view_d];
        view_d--;
      }
      if (view_numel != tensor_numel)
        return false;
      if (d > 0) {
        chunk_base = ostride[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

static mm_tensor *make_view(mm_ctx *ctx, const mm_tensor *t, int ndim, const int64_t *shape,
                            const int64_t *stride, int64_t offset) {
  mm_tensor *v = mm_tensor_view_of(ctx, t);
  if (!v)
    return NULL;
  v->ndim = ndim;
  memmove(v->shape, shape, (size_t)ndim * sizeof *shape);
  memmove(v->stride, stride, (size_t)ndim * sizeof *stride);
  v->offset = offset;
  return v;
}

/* ------------------------------------------------------------------ autograd */

/* Finishes view op `name` on t: v (a view of t when is_view, else a copy) remembers its
 * base and gets a node carrying np parameters. Releases v and returns NULL on error. */
static mm_tensor *track(mm_ctx *ctx, const mm_tensor *t, mm_tensor *v, bool is_view,
                        const char *name, mm_backward_fn fn, const int64_t *params, int np) {
  if (!v)
    return NULL;
  if (is_view)
    mm_view_track(v, t);
  mm_node *node;
  if (mm_node_begin(ctx, name, fn, 1, &t, &node) != 0) {
    mm_release(v);
    return NULL;
  }
  if (node) {
    for (int k = 0; k < np; k++)
      node->i[k] = params[k];
    mm_node_attach(node, v);
  }
  return v;
}

/* view, reshape, flatten, squeeze, unsqueeze: the gradient takes the input's shape back */
static int reshape_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                            mm_tensor **grad_in) {
  return (grad_in[0] = mm_reshape(ctx, grad, node->in[0].ndim, node->in[0].shape)) ? 0 : -1;
}

/* expand: the engine sums the gradient back over the expanded dims */
static int expand_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  (void)ctx;
  (void)node;
  mm_retain((mm_tensor *)grad);
  grad_in[0] = (mm_tensor *)grad;
  return 0;
}

/* permute, transpose: i[] holds the inverse permutation */
static int permute_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad,
                            mm_tensor **grad_in) {
  int inv[MM_MAX_DIMS];
  for (int d = 0; d < grad->ndim; d++)
    inv[d] = (int)node->i[d];
  return (grad_in[0] = mm_permute(ctx, grad, inv)) ? 0 : -1;
}

/* narrow, slice (i: dim, first, last, step) and select (i: dim, index): the gradient
 * lands in the selected part of zeros of the input's shape */
static mm_tensor *slice_raw(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t first, int64_t last,
                            int64_t step);
static mm_tensor *select_raw(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t index);

static int part_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in,
                         bool is_select) {
  const mm_edge *e = &node->in[0];
  mm_tensor *z = mm_zeros(ctx, grad->dtype, e->ndim, e->shape);
  if (!z)
    return -1;
  int dim = (int)node->i[0];
  mm_tensor *part = is_select ? select_raw(ctx, z, dim, node->i[1])
                              : slice_raw(ctx, z, dim, node->i[1], node->i[2], node->i[3]);
  int st = part ? mm_copy_raw(ctx, part, grad) : -1;
  mm_release(part);
  if (st != 0) {
    mm_release(z);
    return -1;
  }
  grad_in[0] = z;
  return 0;
}

static int slice_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  return part_backward(ctx, node, grad, grad_in, false);
}

static int select_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad, mm_tensor **grad_in) {
  return part_backward(ctx, node, grad, grad_in, true);
}

/* ------------------------------------------------------------------ views */

mm_tensor *mm_view(mm_ctx *ctx, const mm_tensor *t, int ndim, const int64_t *shape) {
  int64_t s[MM_MAX_DIMS], st[MM_MAX_DIMS];
  if (infer_shape(ctx, "view", t, ndim, shape, s) != 0)
    return NULL;
  if (!view_strides(t, ndim, s, st)) {
    char a[SHAPE_BUF];
    mm_fail(ctx,
            "moonml.view: the strides of this %s view do not allow it; use reshape or "
            "contiguous first",
            mm_shape_str(a, sizeof a, t->ndim, t->shape));
    return NULL;
  }
  return track(ctx, t, make_view(ctx, t, ndim, s, st, t->offset), true, "ViewBackward",
               reshape_backward, NULL, 0);
}

/* *is_view tells whether the result shares t's storage */
static mm_tensor *reshape_raw(mm_ctx *ctx, const char *op, const mm_tensor *t, int ndim,
                              const int64_t *shape, bool *is_view) {
  int64_t s[MM_MAX_DIMS], st[MM_MAX_DIMS];
  if (infer_shape(ctx, op, t, ndim, shape, s) != 0)
    return NULL;
  *is_view = view_strides(t, ndim, s, st);
  if (*is_view)
    return make_view(ctx, t, ndim, s, st, t->offset);
  mm_tensor *c = mm_clone_raw(ctx, t);
  if (!c)
    return NULL;
  mm_contiguous_strides(ndim, s, st);
  mm_tensor *v = make_view(ctx, c, ndim, s, st, 0);
  mm_release(c);
  return v;
}

mm_tensor *mm_reshape(mm_ctx *ctx, const mm_tensor *t, int ndim, const int64_t *shape) {
  bool is_view = false;
  mm_tensor *v = reshape_raw(ctx, "reshape", t, ndim, shape, &is_view);
  return track(ctx, t, v, is_view, "ReshapeBackward", reshape_backward, NULL, 0);
}

mm_tensor *mm_flatten(mm_ctx *ctx, const mm_tensor *t, int start, int end) {
  bool is_view = false;
  if (t->ndim == 0) {
    int64_t one = 1;
    return track(ctx, t, reshape_raw(ctx, "flatten", t, 1, &one, &is_view), is_view,
                 "FlattenBackward", reshape_backward, NULL, 0);
  }
  if (start > end) {
    mm_fail(ctx, "moonml.flatten: start dimension %d comes after end dimension %d", start + 1,
            end + 1);
    return NULL;
  }
  int64_t shape[MM_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < start; d++)
    shape[n++] = t->shape[d];
  int64_t merged = 1;
  for (int d = start; d <= end; d++)
    merged *= t->shape[d];
  shape[n++] = merged;
  for (int d = end + 1; d < t->ndim; d++)
    shape[n++] = t->shape[d];
  return track(ctx, t, reshape_raw(ctx, "flatten", t, n, shape, &is_view), is_view,
               "FlattenBackward", reshape_backward, NULL, 0);
}

mm_tensor *mm_squeeze(mm_ctx *ctx, const mm_tensor *t, int dim) {
  int64_t shape[MM_MAX_DIMS], stride[MM_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {
    bool drop = t->shape[d] == 1 && (dim < 0 || dim == d);
    if (!drop) {
      shape[n] = t->shape[d];
      stride[n++] = t->stride[d];
    }
  }
  return track(ctx, t, make_view(ctx, t, n, shape, stride, t->offset), true, "SqueezeBackward",
               reshape_backward, NULL, 0);
}

mm_tensor *mm_unsqueeze(mm_ctx *ctx, const mm_tensor *t, int dim) {
  if (t->ndim >= MM_MAX_DIMS) {
    mm_fail(ctx, "moonml.unsqueeze: at most %d dimensions are supported", MM_MAX_DIMS);
    return NULL;
  }
  if (dim < 0 || dim > t->ndim) {
    mm_fail(ctx, "moonml.unsqueeze: dimension %d out of range for a %d-D tensor", dim + 1, t->ndim);
    return NULL;
  }
  int64_t shape[MM_MAX_DIMS], stride[MM_MAX_DIMS];
  int n = 0;
  for (int d = 0; d <= t->ndim; d++) {
    if (d == dim) {
      shape[n] = 1;
      stride[n++] = d < t->ndim ? t->shape[d] * t->stride[d] : 1;
    }
    if (d < t->ndim) {
      shape[n] = t->shape[d];
      stride[n++] = t->stride[d];
    }
  }
  return track(ctx, t, make_view(ctx, t, n, shape, stride, t->offset), true, "UnsqueezeBackward",
               reshape_backward, NULL, 0);
}

static mm_tensor *permute_raw(mm_ctx *ctx, const mm_tensor *t, const int *dims) {
  int64_t shape[MM_MAX_DIMS], stride[MM_MAX_DIMS];
  bool seen[MM_MAX_DIMS] = {false};
  for (int d = 0; d < t->ndim; d++) {
    int s = dims[d];
    if (s < 0 || s >= t->ndim || seen[s]) {
      mm_fail(ctx, "moonml.permute: dims must be a permutation of 1..%d", t->ndim);
      return NULL;
    }
    seen[s] = true;
    shape[d] = t->shape[s];
    stride[d] = t->stride[s];
  }
  return make_view(ctx, t, t->ndim, shape, stride, t->offset);
}

mm_tensor *mm_permute(mm_ctx *ctx, const mm_tensor *t, const int *dims) {
  int64_t inv[MM_MAX_DIMS];
  mm_tensor *v = permute_raw(ctx, t, dims);
  for (int d = 0; v && d < t->ndim; d++)
    inv[dims[d]] = d;
  return track(ctx, t, v, true, "PermuteBackward", permute_backward, inv, t->ndim);
}

mm_tensor *mm_transpose(mm_ctx *ctx, const mm_tensor *t, int d0, int d1) {
  int dims[MM_MAX_DIMS];
  int64_t perm[MM_MAX_DIMS];
  for (int d = 0; d < t->ndim; d++)
    dims[d] = d;
  if (t->ndim == 0)
    return mm_alias(ctx, t);
  dims[d0] = d1;
  dims[d1] = d0;
  for (int d = 0; d < t->ndim; d++)
    perm[d] = dims[d]; /* a swap is its own inverse */
  return track(ctx, t, permute_raw(ctx, t, dims), true, "TransposeBackward", permute_backward, perm,
               t->ndim);
}

mm_tensor *mm_expand(mm_ctx *ctx, const mm_tensor *t, int ndim, const int64_t *shape) {
  char a[SHAPE_BUF], b[SHAPE_BUF];
  if (ndim < t->ndim || ndim > MM_MAX_DIMS) {
    mm_fail(ctx, "moonml.expand: cannot expand shape %s to %s",
            mm_shape_str(a, sizeof a, t->ndim, t->shape), mm_shape_str(b, sizeof b, ndim, shape));
    return NULL;
  }
  int64_t s[MM_MAX_DIMS], st[MM_MAX_DIMS];
  int lead = ndim - t->ndim;
  int64_t nonzero = 1;
  /* from the last dim: PyTorch's inferExpandGeometry, strides included (a new leading
   * dim of size 1 gets the stride a contiguous tensor would have, not 0) */
  for (int d = ndim - 1; d >= 0; d--) {
    int od = d - lead;
    int64_t want = shape[d];
    if (od < 0) {
      if (want < 0) {
        mm_fail(ctx, "moonml.expand: -1 is not allowed in a new leading dimension");
        return NULL;
      }
      s[d] = want;
      st[d] = want == 1 ? (d + 1 < ndim ? s[d + 1] * st[d + 1] : 1) : 0;
    } else if (want == -1 || want == t->shape[od]) {
      s[d] = t->shape[od];
      st[d] = t->stride[od];
    } else if (t->shape[od] == 1 && want >= 0) {
      s[d] = want;
      st[d] = 0;
    } else {
      mm_fail(ctx, "moonml.expand: cannot expand shape %s to %s",
              mm_shape_str(a, sizeof a, t->ndim, t->shape), mm_shape_str(b, sizeof b, ndim, shape));
      return NULL;
    }
    if (s[d] > 0 && nonzero > INT64_MAX / s[d]) { /* as in view: the count must fit */
      mm_fail(ctx, "moonml.expand: shape %s has too many elements",
              mm_shape_str(b, sizeof b, ndim, shape));
      return NULL;
    }
    if (s[d] > 0)
      nonzero *= s[d];
  }
  return track(ctx, t, make_view(ctx, t, ndim, s, st, t->offset), true, "ExpandBackward",
               expand_backward, NULL, 0);
}

mm_tensor *mm_narrow(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t start, int64_t length) {
  if (t->ndim == 0) {
    mm_fail(ctx, "moonml.narrow: cannot narrow a 0-d tensor");
    return NULL;
  }
  int64_t size = t->shape[dim];
  if (start < 0 || length < 0 || start > size || length > size - start) {
    mm_fail(ctx, "moonml.narrow: start %lld and length %lld are out of range for size %lld",
            (long long)start + 1, (long long)length, (long long)size);
    return NULL;
  }
  mm_tensor *v = mm_tensor_view_of(ctx, t);
  if (v) {
    v->offset += start * t->stride[dim];
    v->shape[dim] = length;
  }
  int64_t params[4] = {dim, start, start + length - 1, 1};
  return track(ctx, t, v, true, "SliceBackward", slice_backward, params, 4);
}

static mm_tensor *slice_raw(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t first, int64_t last,
                            int64_t step) {
  if (t->ndim == 0) {
    mm_fail(ctx, "moonml.slice: cannot slice a 0-d tensor");
    return NULL;
  }
  if (step < 1) {
    mm_fail(ctx, "moonml.slice: step must be positive, got %lld", (long long)step);
    return NULL;
  }
  int64_t size = t->shape[dim];
  if (first < 0 || first > size || last < first - 1 || last >= size) {
    mm_fail(ctx, "moonml.slice: range %lld..%lld is out of bounds for size %lld",
            (long long)first + 1, (long long)last + 1, (long long)size);
    return NULL;
  }
  mm_tensor *v = mm_tensor_view_of(ctx, t);
  if (v) {
    v->offset += first * t->stride[dim];
    v->shape[dim] = last < first ? 0 : (last - first) / step + 1;
    v->stride[dim] *= step;
  }
  return v;
}

mm_tensor *mm_slice(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t first, int64_t last,
                    int64_t step) {
  int64_t params[4] = {dim, first, last, step};
  return track(ctx, t, slice_raw(ctx, t, dim, first, last, step), true, "SliceBackward",
               slice_backward, params, 4);
}

static mm_tensor *select_raw(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t index) {
  if (t->ndim == 0) {
    mm_fail(ctx, "moonml.select: cannot index a 0-d tensor");
    return NULL;
  }
  if (index < 0 || index >= t->shape[dim]) {
    mm_fail(ctx, "moonml.select: index %lld is out of range for dimension %d of size %lld",
            (long long)index + 1, dim + 1, (long long)t->shape[dim]);
    return NULL;
  }
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

mm_tensor *mm_select(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t index) {
  int64_t params[2] = {dim, index};
  return track(ctx, t, select_raw(ctx, t, dim, index), true, "SelectBackward", select_backward,
               params, 2);
}

int mm_broadcast_shape(mm_ctx *ctx, const char *op, int na, const int64_t *sa, int nb,
                       const int64_t *sb, int *nout, int64_t *out) {
  int n = na > nb ? na : nb;
  if (n > MM_MAX_DIMS)
    return mm_fail(ctx, "moonml.%s: at most %d dimensions are supported", op, MM_MAX_DIMS);
  int64_t shape[MM_MAX_DIMS] = {0}; /* out may be sa or sb: fill a copy first */
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nb - n + i;
    int64_t x = ia >= 0 ? sa[ia] : 1, y = ib >= 0 ? sb[ib] : 1;
    if (x != y && x != 1 && y != 1) {
      char a[SHAPE_BUF], b[SHAPE_BUF];
      return mm_fail(ctx, "moonml.%s: shapes %s and %s cannot be broadcast together", op,
                     mm_shape_str(a, sizeof a, na, sa), mm_shape_str(b, sizeof b, nb, sb));
    }
    shape[i] = x == 1 ? y : x;
  }
  memcpy(out, shape, (size_t)n * sizeof *out);
  *nout = n;
  return 0;
}
