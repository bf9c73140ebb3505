/* Internal to src/ops: a tensor seen as rows along one dim. The dim is moved last and
 * the result made contiguous, so that the ops along a dim (scans, sorts and the
 * reductions of sort.c, scan.c and stats.c) see nrows contiguous rows of R elements;
 * row r of a reduction is element r of its contiguous output. */
#ifndef MM_ROWS_H
#define MM_ROWS_H

#include "../autograd/autograd.h"

typedef struct {
  mm_tensor *x;  /* contiguous, dim last: row r starts at element r * R */
  int64_t R;     /* size of dim (numel when all) */
  int64_t nrows; /* product of the other sizes (1 when all) */
  bool permuted; /* dim was moved: per-element results go back through mm_rows_restore */
  int ndim, dim;
  int64_t shape[MM_MAX_DIMS]; /* the input's shape */
} mm_rows;

/* all: every element as one row (dim ignored). */
int mm_rows_init(mm_ctx *ctx, const mm_tensor *a, int dim, bool all, mm_rows *rw);
void mm_rows_free(mm_rows *rw);
/* A new contiguous tensor of dtype dt in the rows' layout with rows of `len` elements. */
mm_tensor *mm_rows_new(mm_ctx *ctx, const mm_rows *rw, mm_dtype dt, int64_t len);
/* t (from mm_rows_new) in the input's layout, dim holding t's row length; takes t. */
mm_tensor *mm_rows_restore(mm_ctx *ctx, const mm_rows *rw, mm_tensor *t);

/* The shape of a reduction of a over dim (all: 0-d). */
void mm_reduced_shape(const mm_tensor *a, int dim, bool all, bool keepdim, int *ndim,
                      int64_t *shape);

/* Runs fn over [0, nrows) split over threads, each part at least ~32K elements. */
void mm_rows_for(int64_t nrows, int64_t R, mm_range_fn fn, void *arg);

/* Checks a 0-based dim against ndim (0-d tensors take dim 0); -1 with a message. */
int mm_check_dim0(mm_ctx *ctx, const char *op, int dim, int ndim);

/* Turns grad mode off and returns the previous mode: the forward of an op that records
 * its own node may call other ops, which must not record theirs. */
static inline bool mm_grad_pause(mm_ctx *ctx) { return mm_set_grad_enabled(ctx, false); }

#endif
