/* Rows along one dim, shared by the ops of sort.c, scan.c and stats.c (rows.h). */
#include "rows.h"

#include <string.h>

/* dims of the rows' layout: every dim but `dim` in order, then `dim` */
static void row_perm(int ndim, int dim, int *perm) {
  int n = 0;
  for (int d = 0; d < ndim; d++)
    if (d != dim)
      perm[n++] = d;
  perm[n] = dim;
}

int mm_rows_init(mm_ctx *ctx, const mm_tensor *a, int dim, bool all, mm_rows *rw) {
  rw->ndim = a->ndim;
  rw->dim = dim;
  memcpy(rw->shape, a->shape, sizeof rw->shape);
  all = all || a->ndim == 0;
  rw->R = all ? mm_numel(a) : a->shape[dim];
  rw->nrows = 1; /* rows of nothing too: a reduction gives them its identity */
  for (int d = 0; !all && d < a->ndim; d++)
    if (d != dim)
      rw->nrows *= a->shape[d];
  /* moving dim last changes nothing when every dim after it has size 1 */
  rw->permuted = false;
  for (int d = dim + 1; !all && d < a->ndim; d++)
    rw->permuted = rw->permuted || a->shape[d] != 1;
  bool mode = mm_grad_pause(ctx);
  if (rw->permuted) {
    int perm[MM_MAX_DIMS];
    row_perm(a->ndim, dim, perm);
    mm_tensor *p = mm_permute(ctx, a, perm);
    rw->x = p ? mm_contiguous(ctx, p) : NULL;
    mm_release(p);
  } else {
    rw->x = mm_contiguous(ctx, a);
  }
  mm_set_grad_enabled(ctx, mode);
  return rw->x ? 0 : -1;
}

void mm_rows_free(mm_rows *rw) {
  mm_release(rw->x);
  rw->x = NULL;
}

mm_tensor *mm_rows_new(mm_ctx *ctx, const mm_rows *rw, mm_dtype dt, int64_t len) {
  int64_t shape[MM_MAX_DIMS] = {0};
  if (rw->ndim == 0)
    return mm_empty(ctx, dt, 0, shape);
  int perm[MM_MAX_DIMS];
  row_perm(rw->ndim, rw->dim, perm);
  for (int d = 0; d < rw->ndim; d++)
    shape[d] = rw->permuted ? rw->shape[perm[d]] : rw->shape[d];
  shape[rw->permuted ? rw->ndim - 1 : rw->dim] = len;
  return mm_empty(ctx, dt, rw->ndim, shape);
}

mm_tensor *mm_rows_restore(mm_ctx *ctx, const mm_rows *rw, mm_tensor *t) {
  if (!t || !rw->permuted)
    return t;
  int perm[MM_MAX_DIMS], inv[MM_MAX_DIMS];
  row_perm(rw->ndim, rw->dim, perm);
  for (int d = 0; d < rw->ndim; d++)
    inv[perm[d]] = d;
  int64_t shape[MM_MAX_DIMS];
  memcpy(shape, rw->shape, sizeof shape);
  shape[rw->dim] = t->shape[rw->ndim - 1];
  mm_tensor *out = mm_empty(ctx, t->dtype, rw->ndim, shape);
  mm_tensor *v = out ? mm_permute(ctx, t, inv) : NULL;
  int st = v ? mm_copy_(ctx, out, v) : -1;
  mm_release(v);
  mm_release(t);
  if (st != 0) {
    mm_release(out);
    return NULL;
  }
  return out;
}

void mm_reduced_shape(const mm_tensor *a, int dim, bool all, bool keepdim, int *ndim,
                      int64_t *shape) {
  if (all || a->ndim == 0) {
    *ndim = 0;
    return;
  }
  int n = 0;
  for (int d = 0; d < a->ndim; d++) {
    if (d != dim)
      shape[n++] = a->shape[d];
    else if (keepdim)
      shape[n++] = 1;
  }
  *ndim = n;
}

void mm_rows_for(int64_t nrows, int64_t R, mm_range_fn fn, void *arg) {
  int64_t grain = ((int64_t)1 << 15) / (R > 0 ? R : 1);
  mm_parallel_for(nrows, grain > 0 ? grain : 1, fn, arg);
}

int mm_check_dim0(mm_ctx *ctx, const char *op, int dim, int ndim) {
  int n = ndim > 0 ? ndim : 1;
  if (dim < 0 || dim >= n)
    return mm_fail(ctx, "moonml.%s: dimension %d out of range for a %d-D tensor", op, dim + 1,
                   ndim);
  return 0;
}
