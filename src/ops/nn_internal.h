/* Helpers shared by the nn kernels (conv.c, pool.c, norm.c, activation.c, loss.c):
 * argument checks with "moonml.<op>:" messages and scratch buffers. */
#ifndef MM_NN_INTERNAL_H
#define MM_NN_INTERNAL_H

#include "../autograd/autograd.h"
#include "nn.h"

#define NN_SHAPE_BUF 128

/* t present and floating point; `what` names it in the message ("input", "weight"). */
static inline int nn_check_float(mm_ctx *ctx, const char *op, const mm_tensor *t,
                                 const char *what) {
  if (!t)
    return mm_fail(ctx, "moonml.%s: expected a tensor as %s, got NULL", op, what);
  if (t->dtype != MM_FLOAT32 && t->dtype != MM_FLOAT64)
    return mm_fail(ctx, "moonml.%s: expected %s to be float32 or float64, got %s", op, what,
                   mm_dtype_name(t->dtype));
  return 0;
}

/* t (optional: NULL passes) has x's dtype. */
static inline int nn_check_like(mm_ctx *ctx, const char *op, const mm_tensor *t, const mm_tensor *x,
                                const char *what) {
  if (t && t->dtype != x->dtype)
    return mm_fail(ctx, "moonml.%s: expected %s to have the input's dtype %s, got %s", op, what,
                   mm_dtype_name(x->dtype), mm_dtype_name(t->dtype));
  return 0;
}

/* t (optional) is 1-D of n elements. */
static inline int nn_check_vector(mm_ctx *ctx, const char *op, const mm_tensor *t, int64_t n,
                                  const char *what) {
  if (!t)
    return 0;
  if (t->ndim != 1 || t->shape[0] != n) {
    char s[NN_SHAPE_BUF];
    return mm_fail(ctx, "moonml.%s: expected %s of shape [%lld], got %s", op, what, (long long)n,
                   mm_shape_str(s, sizeof s, t->ndim, t->shape));
  }
  return 0;
}

static inline bool nn_same_shape(const mm_tensor *a, const mm_tensor *b) {
  if (a->ndim != b->ndim)
    return false;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d])
      return false;
  return true;
}

/* A contiguous tensor of numel elements for scratch use within one call. It comes from
 * the context's buffer cache; it is freed before the call returns, so it is not counted
 * as memory the Lua collector should hear about. */
static inline mm_tensor *nn_scratch(mm_ctx *ctx, mm_dtype dt, int64_t numel) {
  int64_t shape[1] = {numel};
  mm_tensor *t = mm_empty(ctx, dt, 1, shape);
  if (t) {
    size_t bytes = (size_t)numel * mm_dtype_size(dt);
    ctx->allocated = ctx->allocated >= bytes ? ctx->allocated - bytes : 0;
  }
  return t;
}

/* Contiguous version of an optional tensor (a new reference, or NULL for NULL). */
static inline int nn_contig_opt(mm_ctx *ctx, const mm_tensor *t, mm_tensor **out) {
  *out = NULL;
  if (!t)
    return 0;
  *out = mm_contiguous(ctx, t);
  return *out ? 0 : -1;
}

/* Contiguous copy of t broadcast to shape (t optional). */
static inline int nn_expand_contig(mm_ctx *ctx, const char *op, const mm_tensor *t, int ndim,
                                   const int64_t *shape, const char *what, mm_tensor **out) {
  *out = NULL;
  if (!t)
    return 0;
  int nout;
  int64_t bs[MM_MAX_DIMS];
  if (mm_broadcast_shape(ctx, op, t->ndim, t->shape, ndim, shape, &nout, bs) != 0)
    return -1;
  bool ok = nout == ndim;
  for (int d = 0; ok && d < ndim; d++)
    ok = bs[d] == shape[d];
  if (!ok) {
    char a[NN_SHAPE_BUF], b[NN_SHAPE_BUF];
    return mm_fail(ctx, "moonml.%s: %s of shape %s does not broadcast to the input's shape %s", op,
                   what, mm_shape_str(a, sizeof a, t->ndim, t->shape),
                   mm_shape_str(b, sizeof b, ndim, shape));
  }
  mm_tensor *e = mm_expand(ctx, t, ndim, shape);
  if (!e)
    return -1;
  *out = mm_contiguous(ctx, e);
  mm_release(e);
  return *out ? 0 : -1;
}

/* The packed AVX-512 float32 GEMM of sgemm_avx512.c (x86-64, GCC or Clang): C (m x n,
 * row-major, ldc) = (beta ? C : row_bias[i] or 0) + A @ B, A packed beforehand by mm_sgemm_pack_a
 * (from strides rs, cs) into mm_sgemm_packed_a_size floats; B read through strides brs, bcs and
 * packed into bbuf (mm_sgemm_b_workspace floats, 64-byte aligned). Use only when
 * mm_sgemm_fast_available() says the CPU has AVX-512F. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MM_HAVE_SGEMM_AVX512 1
bool mm_sgemm_fast_available(void);
size_t mm_sgemm_packed_a_size(int64_t m, int64_t k);
void mm_sgemm_pack_a(int64_t m, int64_t k, const float *a, int64_t rs, int64_t cs, float *dst);
size_t mm_sgemm_b_workspace(int64_t n, int64_t k);
void mm_sgemm_packed(int64_t m, int64_t n, int64_t k, const float *apacked, const float *b,
                     int64_t brs, int64_t bcs, float *c, int64_t ldc, bool beta,
                     const float *row_bias, float *bbuf);
#endif

#endif
