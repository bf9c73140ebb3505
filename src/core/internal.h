/* Internal to the core: storage layout, the context's fields, the strided iterator and
 * the parallel loop shared by the op families. Not part of the public API. */
#ifndef MM_INTERNAL_H
#define MM_INTERNAL_H

#include "../moonml.h"

#include <stdarg.h>

#define MM_ALIGN 64
/* Buffers at least this large go through the context's reuse cache. */
#define MM_CACHE_MIN_BYTES ((size_t)64 * 1024)
#define MM_CACHE_SLOTS 32
/* Small storages (data up to 64 << (MM_SMALL_CLASSES - 1) bytes) and tensor headers freed
 * recently are kept on per-context free lists, up to this many bytes in all: a game's
 * per-frame temporaries then never reach malloc. */
#define MM_SMALL_CLASSES 6
#define MM_SMALL_CACHE_BYTES ((size_t)1 << 20)
/* No tensor may hold more bytes than this (a clear error instead of a failed malloc). */
#define MM_MAX_BYTES ((int64_t)1 << 46)

struct mm_storage {
  int refcount;
  mm_ctx *ctx;
  void *data;
  size_t nbytes;      /* bytes the tensors may use */
  size_t capacity;    /* bytes of the data block (>= nbytes); 0 when inline */
  uint32_t version;   /* bumped by every in-place change (autograd checks saved tensors) */
  mm_free_fn free_fn; /* non-NULL: caller memory (mm_wrap_buffer), handed back on release */
  void *free_ud;
};

struct mm_ctx {
  int refcount;
  char err[512];
  uint64_t rng[4];  /* xoshiro256** state */
  size_t allocated; /* since the last mm_ctx_take_allocated */
  size_t live;      /* bytes in live storages */
  struct {
    void *ptr;
    size_t capacity;
  } cache[MM_CACHE_SLOTS];
  int ncached;
  size_t cached_bytes, cache_limit;
  bool grad_enabled; /* autograd records ops only while on */
  int backward_pass; /* marks the nodes visited by one mm_backward */

  /* free lists (ctx.c), linked through each block's first word */
  void *free_headers;                 /* mm_tensor headers */
  void *free_small[MM_SMALL_CLASSES]; /* small storage blocks by size class */
  size_t small_cached_bytes;          /* held by the lists */
};

/* autograd nodes (src/autograd/engine.c) */
void mm_node_release(mm_node *node);

/* mm_dtype_size without a call: hot paths (mm_data, tensor creation) use it */
static inline size_t mm_elsize(mm_dtype dt) {
  static const unsigned char sizes[MM_DTYPE_COUNT] = {
      [MM_FLOAT32] = 4, [MM_INT64] = 8, [MM_BOOL] = 1, [MM_FLOAT64] = 8};
  return sizes[dt];
}

/* dtype rules shared by the ops (dtype.c), after PyTorch */
int mm_dtype_category(mm_dtype dt); /* 0 bool, 1 integer, 2 floating */
bool mm_scalar_is_int(mm_scalar s);
/* the wrapped-number rule: a scalar raises the category only, to its default dtype */
mm_dtype mm_scalar_promote(mm_dtype t, mm_scalar s);
/* canCast: no float into an integer dtype, nothing but bool into bool */
bool mm_can_cast(mm_dtype from, mm_dtype to);
const char *mm_dtype_article(mm_dtype dt); /* "an" int64, "a" float32 */
/* a double as int64: NaN gives 0, out of range saturates */
int64_t mm_to_int64(double v);

/* storage (ctx.c) */
mm_storage *mm_storage_new(mm_ctx *ctx, size_t nbytes, const char *op);
void mm_storage_release(mm_storage *s);
/* tensor headers from the context's free list (ctx.c); mm_header_free needs ctx alive */
mm_tensor *mm_header_new(mm_ctx *ctx);
void mm_header_free(mm_ctx *ctx, mm_tensor *t);
/* A storage over caller memory (see mm_wrap_buffer); free_fn NULL: the caller keeps it. */
mm_storage *mm_storage_wrap(mm_ctx *ctx, void *data, size_t nbytes, mm_free_fn free_fn, void *ud);

/* A new tensor header around a storage (retained); contiguous strides for shape. */
mm_tensor *mm_tensor_wrap(mm_storage *s, mm_dtype dt, int ndim, const int64_t *shape);
/* A new contiguous tensor (uninitialised data); errors (size too large, out of memory) name
 * op. */
mm_tensor *mm_new_tensor(mm_ctx *ctx, const char *op, mm_dtype dt, int ndim, const int64_t *shape);
/* A new header sharing t's storage, with t's dtype; the caller fills shape/stride/offset. */
mm_tensor *mm_tensor_view_of(mm_ctx *ctx, const mm_tensor *t);
void mm_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
/* mm_copy_ and mm_clone without autograd (no checks, nothing recorded), for ops that copy
 * their operands internally (stack headers included) */
int mm_copy_raw(mm_ctx *ctx, mm_tensor *dst, const mm_tensor *src);
mm_tensor *mm_clone_raw(mm_ctx *ctx, const mm_tensor *t);
/* numel of a shape, checking sizes: -1 with a message for a negative or too large size */
int64_t mm_shape_numel(mm_ctx *ctx, const char *op, int ndim, const int64_t *shape, mm_dtype dt);
/* "[2, 3]" into buf */
const char *mm_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

/* ---- strided iteration over up to MM_ITER_MAX tensors of one shape ---- */
#define MM_ITER_MAX 4

typedef struct mm_iter {
  int ndim; /* after coalescing and dropping size-1 dims; last is innermost */
  int64_t shape[MM_MAX_DIMS];
  int64_t numel;
  int ntensors;
  int64_t stride[MM_ITER_MAX][MM_MAX_DIMS]; /* in bytes */
  char *base[MM_ITER_MAX];
} mm_iter;

/* Kernel over one run of n elements along the innermost dim; strides in bytes. */
typedef void (*mm_inner_fn)(char **ptrs, const int64_t *strides, int64_t n, void *arg);

/* Every tensor in ts must already have the iteration shape (expanded views allowed). */
void mm_iter_init(mm_iter *it, int n, mm_tensor *const *ts);
/* Runs fn over linear positions [begin, end) of the iteration space. */
void mm_iter_run_range(const mm_iter *it, mm_inner_fn fn, void *arg, int64_t begin, int64_t end);
/* Runs the whole space, split over threads when large enough. */
void mm_iter_run(const mm_iter *it, mm_inner_fn fn, void *arg);
/* Runs fn over tensors of one shape: straight on the data when each operand is dense or a
 * broadcast scalar and the work is small (the per-call cost of small tensors matters),
 * through mm_iter (coalescing, threads) otherwise. */
void mm_run_kernel(int n, mm_tensor *const *ts, mm_inner_fn fn, void *arg);

/* ---- parallel loop (parallel.c) ---- */
typedef void (*mm_range_fn)(int64_t begin, int64_t end, void *arg);
/* Splits [0, n) into up to mm_get_num_threads() chunks of at least `grain`. */
void mm_parallel_for(int64_t n, int64_t grain, mm_range_fn fn, void *arg);

#endif
