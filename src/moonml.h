/*
 * moonml.h -- the one public C header of moonml's core.
 *
 * The core knows nothing of Lua: an embedding host, a C user or the Lua binding
 * (src/lua/) all call the same functions. Every call takes an mm_ctx, which holds
 * what a Lua state would otherwise keep as globals: the random generator, the last
 * error message and the cache of large buffers.
 *
 * Conventions:
 *  - Functions that make a tensor return a new reference, or NULL on error; the
 *    message is then in mm_ctx_error(ctx). Functions returning int return 0 on
 *    success and -1 on error. The core never aborts or exits.
 *  - Dimensions and indices are 0-based here; the Lua binding converts from Lua's
 *    1-based counting. Negative dimensions are resolved by the caller
 *    (mm_wrap_dim helps).
 *  - Error messages start with "moonml.<name>:" where <name> is the op name passed in
 *    or the op's own name.
 *
 * Example (error checks shortened):
 *
 *   mm_ctx *ctx = mm_ctx_new();
 *   int64_t shape[2] = {2, 3};
 *   mm_tensor *a = mm_full(ctx, MM_FLOAT32, 2, shape, 1.5);
 *   mm_tensor *b = mm_arange(ctx, MM_FLOAT32, 0, 2, 1);     // 0, 1, 2
 *   mm_tensor *c = mm_binary(ctx, MM_OP_ADD, a, b);          // broadcast: 2x3
 *   if (!c) fprintf(stderr, "%s\n", mm_ctx_error(ctx));
 *   printf("%g\n", mm_get_double(c, (int64_t[]){1, 2}));      // 3.5
 *   mm_release(a); mm_release(b); mm_release(c);
 *   mm_ctx_release(ctx);
 */
#ifndef MOONML_H
#define MOONML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define MM_API __declspec(dllexport)
#else
#define MM_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define MM_VERSION "0.1.0"
#define MM_MAX_DIMS 8

/* ---------------------------------------------------------------- dtypes */

typedef enum mm_dtype {
  MM_FLOAT32 = 0, /* the compute type and the default */
  MM_INT64,       /* ids, targets, indices */
  MM_BOOL,        /* masks; comparisons return it; stored as one byte 0/1 */
  MM_FLOAT64,
  MM_DTYPE_COUNT
} mm_dtype;

MM_API const char *mm_dtype_name(mm_dtype dt);                  /* "float32", "int64", ... */
MM_API int mm_dtype_from_name(const char *name, mm_dtype *out); /* 0 ok, -1 unknown */
MM_API size_t mm_dtype_size(mm_dtype dt);
MM_API bool mm_dtype_is_float(mm_dtype dt);
/* PyTorch's promotion between two tensor dtypes of the same "dimension category" */
MM_API mm_dtype mm_promote(mm_dtype a, mm_dtype b);

/* ---------------------------------------------------------------- context */

typedef struct mm_ctx mm_ctx;

MM_API mm_ctx *mm_ctx_new(void);
MM_API void mm_ctx_retain(mm_ctx *ctx);
MM_API void mm_ctx_release(mm_ctx *ctx); /* freed once every storage made in it is gone */
MM_API const char *mm_ctx_error(const mm_ctx *ctx);
/* Formats the error message; returns -1 so that `return mm_fail(...)` reads well. */
MM_API int mm_fail(mm_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Bytes of tensor storage allocated since the last call (the binding reports them to
 * the Lua collector so that it sees native memory). */
MM_API size_t mm_ctx_take_allocated(mm_ctx *ctx);
/* Bytes of storage currently alive in this context. */
MM_API size_t mm_ctx_live_bytes(const mm_ctx *ctx);
/* Largest total size of freed large buffers kept for reuse (default 256 MiB). */
MM_API void mm_ctx_set_cache_limit(mm_ctx *ctx, size_t bytes);
MM_API void mm_ctx_clear_cache(mm_ctx *ctx);

/* Process-wide thread count: OpenBLAS's pool and moonml's own loops together. */
MM_API void mm_set_num_threads(int n);
MM_API int mm_get_num_threads(void);

/* ---------------------------------------------------------------- random */

MM_API void mm_manual_seed(mm_ctx *ctx, uint64_t seed);
MM_API uint64_t mm_random_u64(mm_ctx *ctx);
MM_API double mm_random_uniform(mm_ctx *ctx); /* [0, 1) with 53 random bits */
MM_API double mm_random_normal(mm_ctx *ctx);  /* standard normal */

/* ---------------------------------------------------------------- tensors */

typedef struct mm_storage mm_storage;
typedef struct mm_node mm_node; /* a step of the autograd graph (src/autograd) */

/* A refcounted storage plus a view. Shape and strides live inside the struct, so a
 * view never allocates its shape. Strides and offset count elements. */
typedef struct mm_tensor {
  int refcount;
  mm_dtype dtype;
  int ndim; /* 0 for a scalar (0-d) tensor */
  int64_t shape[MM_MAX_DIMS];
  int64_t stride[MM_MAX_DIMS];
  int64_t offset;
  mm_storage *storage;
  /* autograd: a leaf has grad_fn NULL; grad is accumulated by mm_backward */
  bool requires_grad;
  struct mm_tensor *grad;
  mm_node *grad_fn;
  /* a view made by a view op (mm_view ... mm_select): the tensor it views (never itself
   * such a view; retained), and base->grad_fn when this view's history was last brought
   * up to date. An in-place change through one view rewrites the base's history, and
   * every other view of it rebuilds its own from the base when next used (as PyTorch). */
  struct mm_tensor *base;
  mm_node *view_fn;
} mm_tensor;

MM_API void mm_retain(mm_tensor *t);
MM_API void mm_release(mm_tensor *t); /* NULL is allowed */

MM_API int64_t mm_numel(const mm_tensor *t);
MM_API bool mm_is_contiguous(const mm_tensor *t);
/* Pointer to the first element of the view (storage data + offset). */
MM_API void *mm_data(const mm_tensor *t);
MM_API int64_t mm_storage_numel(const mm_tensor *t);
MM_API bool mm_same_storage(const mm_tensor *a, const mm_tensor *b);
/* Resolves a possibly negative 0-based dim against ndim; -1 on error (message set). */
MM_API int mm_wrap_dim(mm_ctx *ctx, const char *op, int64_t dim, int ndim);

/* creation */
MM_API mm_tensor *mm_empty(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape);
MM_API mm_tensor *mm_zeros(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape);
MM_API mm_tensor *mm_full(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape, double value);
/* start, start+step, ... up to and including end (when reached exactly) */
MM_API mm_tensor *mm_arange(mm_ctx *ctx, mm_dtype dt, double start, double end, double step);
MM_API mm_tensor *mm_linspace(mm_ctx *ctx, mm_dtype dt, double start, double end, int64_t steps);
MM_API mm_tensor *mm_eye(mm_ctx *ctx, mm_dtype dt, int64_t n, int64_t m);
MM_API mm_tensor *mm_rand(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape);
MM_API mm_tensor *mm_randn(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape);
/* integers drawn uniformly from [low, high], both ends included */
MM_API mm_tensor *mm_randint(mm_ctx *ctx, mm_dtype dt, int64_t low, int64_t high, int ndim,
                             const int64_t *shape);
/* Copies `count` elements of type dt from a C buffer into a new contiguous tensor. */
MM_API mm_tensor *mm_from_buffer(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape,
                                 const void *data, size_t nbytes);

/* Called with (data, ud) when the last tensor over a wrapped buffer is released. */
typedef void (*mm_free_fn)(void *data, void *ud);
/* A tensor over caller memory, without copying: contiguous, row-major, native byte order;
 * nbytes must equal numel * element size and data must be aligned to the element size. Views
 * and in-place ops read and write that memory. With free_fn, moonml owns the buffer from a
 * successful call on and calls free_fn(data, free_ud) once, when the last tensor (or view, or
 * autograd saved copy) over it goes. With free_fn NULL the caller keeps ownership: the memory
 * must stay valid until every tensor over it is released. On error (NULL returned) nothing is
 * taken and free_fn is not called. Wrapped bytes do not count in mm_ctx_live_bytes. */
MM_API mm_tensor *mm_wrap_buffer(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape,
                                 void *data, size_t nbytes, mm_free_fn free_fn, void *free_ud);
/* Raw little-endian bytes (safetensors' and NumPy's '<' layout) to a new contiguous tensor;
 * nbytes must equal numel * element size; bool bytes must be 0 or 1. */
MM_API mm_tensor *mm_from_bytes(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape,
                                const void *data, size_t nbytes);
/* t's elements in row-major order (whatever its strides) as little-endian bytes into out,
 * which holds exactly nbytes = numel * element size. */
MM_API int mm_to_bytes(mm_ctx *ctx, const mm_tensor *t, void *out, size_t nbytes);

/* ---------------------------------------------------------------- safetensors files */
/* src/io/safetensors.c. The layout of Hugging Face's safetensors: an 8-byte little-endian
 * header length N, N bytes of JSON ({"__metadata__": {string: string}, name: {"dtype",
 * "shape", "data_offsets"}, ...}, padded with spaces to a multiple of 8), then the raw
 * little-endian data of every tensor, row-major, one after the other. */

/* One tensor to write: name, tensor (any strides), and the file dtype ("F32", "F16", "BF16",
 * "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"), or NULL for the tensor's own (float32 F32,
 * float64 F64, int64 I64, bool BOOL). Floats go to float dtypes only, int64 to integer ones
 * (a value that does not fit is an error), bool to BOOL. */
typedef struct mm_st_item {
  const char *name;
  const mm_tensor *tensor;
  const char *dtype;
} mm_st_item;

/* Writes path as the reference implementation does: tensors ordered by file dtype (widest
 * first, the reference's order) then by name, data contiguous, metadata keys sorted; the
 * metadata object is left out when nmeta is 0. meta holds nmeta key, value pairs
 * (2 * nmeta strings). Atomic: the bytes go to "<path>.tmp-<pid>-<n>", which is renamed over
 * path at the end; on any error the temporary is removed and path left as it was. */
MM_API int mm_st_save(mm_ctx *ctx, const char *path, int n, const mm_st_item *items, int nmeta,
                      const char *const *meta);

typedef struct mm_st_file mm_st_file;
/* Reads a whole file. Every size and offset of the header is checked against the file
 * before any tensor memory is allocated; a file that breaks the format gives NULL and
 * "moonml.load: <path>: <what is wrong>". F16, BF16 load as float32, I32, I16, I8, U8,
 * U16, U32 as int64; F32, F64, I64 and BOOL as they are. */
MM_API mm_st_file *mm_st_load(mm_ctx *ctx, const char *path);
MM_API int mm_st_count(const mm_st_file *f);
/* Entry i (0-based, in file order): name, dtype as written in the file, tensor (borrowed:
 * mm_retain it to keep it after mm_st_free). */
MM_API const char *mm_st_name(const mm_st_file *f, int i);
MM_API const char *mm_st_dtype(const mm_st_file *f, int i);
MM_API mm_tensor *mm_st_tensor(const mm_st_file *f, int i);
MM_API int mm_st_metadata_count(const mm_st_file *f);
MM_API const char *mm_st_metadata_key(const mm_st_file *f, int i);
MM_API const char *mm_st_metadata_value(const mm_st_file *f, int i);
MM_API void mm_st_free(mm_st_file *f);

/* element access; idx holds ndim 0-based indices (already checked by the caller) */
MM_API double mm_get_double(const mm_tensor *t, const int64_t *idx);
MM_API int64_t mm_get_int64(const mm_tensor *t, const int64_t *idx);
MM_API void mm_set_double(mm_tensor *t, const int64_t *idx, double v);
MM_API void mm_set_int64(mm_tensor *t, const int64_t *idx, int64_t v);
/* t[idx] = v as an in-place op autograd sees: refused for a leaf that requires grad (or a
 * view of one) in grad mode; recorded when t or its base requires grad. */
MM_API int mm_set_element_(mm_ctx *ctx, mm_tensor *t, const int64_t *idx, double v);

/* views: share storage, never copy data */
MM_API mm_tensor *mm_view(mm_ctx *ctx, const mm_tensor *t, int ndim, const int64_t *shape);
/* reshape: a view when the strides allow it, else a contiguous copy. -1 in shape infers */
MM_API mm_tensor *mm_reshape(mm_ctx *ctx, const mm_tensor *t, int ndim, const int64_t *shape);
MM_API mm_tensor *mm_flatten(mm_ctx *ctx, const mm_tensor *t, int start_dim, int end_dim);
MM_API mm_tensor *mm_squeeze(mm_ctx *ctx, const mm_tensor *t, int dim); /* dim<0: all */
MM_API mm_tensor *mm_unsqueeze(mm_ctx *ctx, const mm_tensor *t, int dim);
MM_API mm_tensor *mm_permute(mm_ctx *ctx, const mm_tensor *t, const int *dims);
MM_API mm_tensor *mm_transpose(mm_ctx *ctx, const mm_tensor *t, int d0, int d1);
MM_API mm_tensor *mm_expand(mm_ctx *ctx, const mm_tensor *t, int ndim, const int64_t *shape);
MM_API mm_tensor *mm_narrow(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t start,
                            int64_t length);
/* elements first, first+step, ... not past last (0-based, inclusive) */
MM_API mm_tensor *mm_slice(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t first, int64_t last,
                           int64_t step);
MM_API mm_tensor *mm_select(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t index);
MM_API mm_tensor *mm_alias(mm_ctx *ctx, const mm_tensor *t); /* a new view of the same */

/* copies */
MM_API mm_tensor *mm_contiguous(mm_ctx *ctx, const mm_tensor *t); /* t itself (retained) if so */
MM_API mm_tensor *mm_clone(mm_ctx *ctx, const mm_tensor *t);
MM_API mm_tensor *mm_to_dtype(mm_ctx *ctx, const mm_tensor *t, mm_dtype dt);
/* dst <- src, src broadcast to dst's shape, converted to dst's dtype */
MM_API int mm_copy_(mm_ctx *ctx, mm_tensor *dst, const mm_tensor *src);
MM_API int mm_fill_(mm_ctx *ctx, mm_tensor *dst, double value);

/* Broadcast shape of a and b (PyTorch rules); -1 with a message naming op if they clash. */
MM_API int mm_broadcast_shape(mm_ctx *ctx, const char *op, int na, const int64_t *sa, int nb,
                              const int64_t *sb, int *nout, int64_t *out);

/* ---------------------------------------------------------------- sampling */

/* Sampling (src/ops/random.c), all from the context's generator, in row-major order of the
 * elements, so that mm_manual_seed makes every draw reproducible. Positions are 0-based here. */
/* 0 .. n-1 in random order, int64 */
MM_API mm_tensor *mm_randperm(mm_ctx *ctx, int64_t n);
/* num_samples category positions (int64) for each row of weights (1-D: [num_samples]; 2-D:
 * [rows, num_samples]), category k drawn with probability weight_k / sum of the row. Weights must
 * be finite and >= 0 with a positive sum per row. Without replacement the positions of a row
 * are distinct and num_samples may not exceed its number of non-zero weights (PyTorch would
 * then hand out zero-weight categories). */
MM_API mm_tensor *mm_multinomial(mm_ctx *ctx, const mm_tensor *probs, int64_t num_samples,
                                 bool replacement);
/* 1 with probability p[i], else 0; p is a float tensor of values in [0, 1]; p's dtype. */
MM_API mm_tensor *mm_bernoulli(mm_ctx *ctx, const mm_tensor *p);
/* In place, any dtype: each element 1 with probability p (the number, or the tensor pt
 * broadcast to t's shape when pt is not NULL), else 0. */
MM_API int mm_bernoulli_(mm_ctx *ctx, mm_tensor *t, const mm_tensor *pt, double p);
/* In place, float tensors: uniform on [from, to) (finite, from <= to); normal (std >= 0). */
MM_API int mm_uniform_(mm_ctx *ctx, mm_tensor *t, double from, double to);
MM_API int mm_normal_(mm_ctx *ctx, mm_tensor *t, double mean, double std);

/* ---------------------------------------------------------------- autograd */

/* Grad mode lives in the context: ops record the graph only while it is on. */
MM_API bool mm_grad_enabled(const mm_ctx *ctx);
MM_API bool mm_set_grad_enabled(mm_ctx *ctx, bool on); /* returns the previous mode */
/* Only leaves may change the flag; only floating-point tensors may require grad. */
MM_API int mm_set_requires_grad(mm_ctx *ctx, mm_tensor *t, bool flag);
/* A new view of t's data outside the graph. */
MM_API mm_tensor *mm_detach(mm_ctx *ctx, const mm_tensor *t);
/* Reverse-mode pass from root. grad is d(out)/d(root) with root's shape, or NULL for a
 * one-element root (taken as 1). Leaves' .grad are updated only if the whole pass
 * succeeds. Without retain_graph the saved tensors are freed on the way. */
MM_API int mm_backward(mm_ctx *ctx, mm_tensor *root, const mm_tensor *grad, bool retain_graph);
MM_API const char *mm_node_name(const mm_node *node); /* "AddBackward", ... */
/* Brings a view's history up to date after an in-place change of what it views (ops do
 * this themselves; for reading t->requires_grad / t->grad_fn directly). */
MM_API int mm_sync_view(mm_ctx *ctx, mm_tensor *t);
/* Counts in-place changes of a tensor's storage; saved tensors check it in backward. */
MM_API void mm_bump_version(mm_tensor *t);

/* ---------------------------------------------------------------- element-wise */

typedef enum mm_binary_op {
  MM_OP_ADD = 0,
  MM_OP_SUB,
  MM_OP_MUL,
  MM_OP_DIV, /* true division: integer inputs give float32 */
  MM_OP_POW,
  MM_OP_EQ, /* comparisons give bool */
  MM_OP_NE,
  MM_OP_LT,
  MM_OP_LE,
  MM_OP_GT,
  MM_OP_GE,
  MM_BINARY_OP_COUNT
} mm_binary_op;

typedef enum mm_unary_op {
  MM_OP_NEG = 0,
  MM_OP_ABS,
  MM_OP_EXP,
  MM_OP_LOG,
  MM_OP_SQRT,
  MM_OP_TANH,
  MM_OP_SIGMOID,
  MM_OP_RELU,
  MM_UNARY_OP_COUNT
} mm_unary_op;

MM_API const char *mm_binary_op_name(mm_binary_op op); /* "add", "sub", ... */
MM_API const char *mm_unary_op_name(mm_unary_op op);

/* A Lua number or C scalar taking part in an op: it does not raise the tensor's dtype
 * category beyond what PyTorch's "wrapped number" rule allows (int64 tensor + 1.5 is
 * float32, float32 tensor + 2 stays float32). */
typedef struct mm_scalar {
  double value;
  bool is_integer;
} mm_scalar;

/* Broadcasting as NumPy/PyTorch. Between two tensors the result dtype follows bool < int64 <
 * float32 < float64, a 0-d tensor counting like any other (PyTorch differs only for a 0-d
 * float64 with a float32 tensor: float32 there, float64 here). Bool tensors cannot be
 * subtracted or raised to a bool power; int64 ** negative scalar is an error (PyTorch). */
MM_API mm_tensor *mm_binary(mm_ctx *ctx, mm_binary_op op, const mm_tensor *a, const mm_tensor *b);
MM_API mm_tensor *mm_binary_scalar(mm_ctx *ctx, mm_binary_op op, const mm_tensor *a, mm_scalar b,
                                   bool scalar_first);
/* in place: a <- a op b; b broadcasts to a's shape; the result must fit a's dtype */
MM_API int mm_binary_(mm_ctx *ctx, mm_binary_op op, mm_tensor *a, const mm_tensor *b);
MM_API int mm_binary_scalar_(mm_ctx *ctx, mm_binary_op op, mm_tensor *a, mm_scalar b);
/* torch.add / torch.sub with alpha: a + alpha * b (a - alpha * b for MM_OP_SUB), b being the
 * tensor b, or the scalar bs when b is NULL. An int64 or bool result needs an integer alpha;
 * for a bool result alpha counts as a bool, as in PyTorch. */
MM_API mm_tensor *mm_add_alpha(mm_ctx *ctx, mm_binary_op op, const mm_tensor *a, const mm_tensor *b,
                               mm_scalar bs, mm_scalar alpha);
MM_API int mm_add_alpha_(mm_ctx *ctx, mm_binary_op op, mm_tensor *a, const mm_tensor *b,
                         mm_scalar bs, mm_scalar alpha);
/* exp, log, sqrt, tanh and sigmoid of int64/bool give float32; neg, abs and relu keep the
 * dtype and refuse bool */
MM_API mm_tensor *mm_unary(mm_ctx *ctx, mm_unary_op op, const mm_tensor *a);
MM_API int mm_unary_(mm_ctx *ctx, mm_unary_op op, mm_tensor *a);
/* true when every pair satisfies |a - b| <= atol + rtol * |b| (NaN equal when equal_nan) */
MM_API int mm_allclose(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b, double rtol,
                       double atol, bool equal_nan, bool *result);

/* ---------------------------------------------------------------- more element-wise math */
/* src/ops/math.c. Dtypes follow PyTorch; every op records its autograd node, and the in-place
 * forms take a graph too (a leaf that requires grad cannot change in place while grad mode is
 * on, as in PyTorch). In place, the result must fit the tensor's dtype and shape. */

typedef enum mm_math_op {
  MM_MATH_RSQRT = 0,
  MM_MATH_SIN,
  MM_MATH_COS,
  MM_MATH_SIGN, /* -1, 0 or 1 (NaN gives 0) */
  MM_MATH_FLOOR,
  MM_MATH_CEIL,
  MM_MATH_ROUND, /* half to even, as PyTorch */
  MM_MATH_OP_COUNT
} mm_math_op;

MM_API const char *mm_math_op_name(mm_math_op op); /* "rsqrt", "sin", ... */
/* rsqrt, sin and cos of int64/bool give float32; sign keeps every dtype; floor, ceil and round
 * keep int64 as it is and refuse bool. */
MM_API mm_tensor *mm_math(mm_ctx *ctx, mm_math_op op, const mm_tensor *a);
MM_API int mm_math_(mm_ctx *ctx, mm_math_op op, mm_tensor *a);

/* One bound of clamp: absent (set false), a tensor t, or else the scalar s. */
typedef struct mm_bound {
  bool set;
  const mm_tensor *t;
  mm_scalar s;
} mm_bound;

/* min(max(a, min), max) with broadcasting; at least one bound must be set. The dtype is
 * promoted over a and the bounds (scalars by the wrapped-number rule); bool bounds act as or /
 * and. A NaN in a or in a bound gives NaN. A number and a tensor may be mixed (PyTorch 1.13 takes
 * two numbers or two tensors). The gradient is 1 where min <= a <= max, else 0; a tensor
 * bound gets it where it is the answer (PyTorch's rule, min > max included). */
MM_API mm_tensor *mm_clamp(mm_ctx *ctx, const mm_tensor *a, mm_bound min, mm_bound max);
MM_API int mm_clamp_(mm_ctx *ctx, mm_tensor *a, mm_bound min, mm_bound max);
/* Element-wise larger / smaller of two tensors, promoted and broadcast; NaN propagates; on a tie
 * each side gets half of the gradient (PyTorch). */
MM_API mm_tensor *mm_maximum(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b);
MM_API mm_tensor *mm_minimum(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b);
MM_API int mm_maximum_(mm_ctx *ctx, mm_tensor *a, const mm_tensor *b);
MM_API int mm_minimum_(mm_ctx *ctx, mm_tensor *a, const mm_tensor *b);
/* start + weight * (end - start), weight being the tensor w, or the number ws when w is NULL.
 * start, end and w share one floating dtype (PyTorch does not promote here). */
MM_API mm_tensor *mm_lerp(mm_ctx *ctx, const mm_tensor *start, const mm_tensor *end,
                          const mm_tensor *w, double ws);
MM_API int mm_lerp_(mm_ctx *ctx, mm_tensor *start, const mm_tensor *end, const mm_tensor *w,
                    double ws);

/* ---------------------------------------------------------------- reductions */

typedef enum mm_reduce_op {
  MM_RED_SUM = 0,
  MM_RED_MEAN,
  MM_RED_MAX,
  MM_RED_MIN,
  MM_RED_ARGMAX,
  MM_RED_ARGMIN,
  MM_REDUCE_OP_COUNT
} mm_reduce_op;

/* Over all elements: a 0-d tensor (arg* give the 0-based flat index as int64). */
MM_API mm_tensor *mm_reduce_all(mm_ctx *ctx, mm_reduce_op op, const mm_tensor *a);
/* Over one dim; for MAX/MIN, *indices (if not NULL) receives the 0-based int64 positions. */
MM_API mm_tensor *mm_reduce_dim(mm_ctx *ctx, mm_reduce_op op, const mm_tensor *a, int dim,
                                bool keepdim, mm_tensor **indices);
MM_API mm_tensor *mm_softmax(mm_ctx *ctx, const mm_tensor *a, int dim);
MM_API mm_tensor *mm_log_softmax(mm_ctx *ctx, const mm_tensor *a, int dim);

/* ---------------------------------------------------------------- indexing */

/* Index tensors are int64 counting from 0; every index is checked against its dimension.
 * mm_index_normalize turns what a user gave (int64, or float32/float64 holding whole
 * numbers, counting from `base`; negative from the end if allow_negative) into such a
 * tensor (new, contiguous, same shape); `dim` only names the dimension in its messages. */
MM_API mm_tensor *mm_index_normalize(mm_ctx *ctx, const char *op, const mm_tensor *index,
                                     int64_t size, int dim, int base, bool allow_negative);
/* index: 1-D or 0-d; the result has a's shape with dim's size numel(index) */
MM_API mm_tensor *mm_index_select(mm_ctx *ctx, const mm_tensor *a, int dim, const mm_tensor *index);
/* torch.gather: index has a's number of dims; the result has index's shape */
MM_API mm_tensor *mm_gather(mm_ctx *ctx, const mm_tensor *a, int dim, const mm_tensor *index);
/* torch.scatter: src's elements (src a tensor of a's dtype), or the 0-d tensor value (src
 * NULL; converted to a's dtype, no gradient), written where index points along dim. */
MM_API mm_tensor *mm_scatter(mm_ctx *ctx, const mm_tensor *a, int dim, const mm_tensor *index,
                             const mm_tensor *src, const mm_tensor *value);
MM_API int mm_scatter_(mm_ctx *ctx, mm_tensor *a, int dim, const mm_tensor *index,
                       const mm_tensor *src, const mm_tensor *value);
MM_API mm_tensor *mm_scatter_add(mm_ctx *ctx, const mm_tensor *a, int dim, const mm_tensor *index,
                                 const mm_tensor *src);
MM_API int mm_scatter_add_(mm_ctx *ctx, mm_tensor *a, int dim, const mm_tensor *index,
                           const mm_tensor *src);
/* mask: bool, broadcast with a (in place: to a's shape); value: a 0-d tensor */
MM_API mm_tensor *mm_masked_fill(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *mask,
                                 const mm_tensor *value);
MM_API int mm_masked_fill_(mm_ctx *ctx, mm_tensor *a, const mm_tensor *mask,
                           const mm_tensor *value);
/* the elements of a where mask (both broadcast) is true, as a 1-D tensor */
MM_API mm_tensor *mm_masked_select(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *mask);
/* cond ? x : y, the three broadcast; x or y NULL means the scalar xs / ys, promoted as
 * PyTorch's wrapped numbers (two scalars give int64, or float32 if either is fractional). */
MM_API mm_tensor *mm_where(mm_ctx *ctx, const mm_tensor *cond, const mm_tensor *x, mm_scalar xs,
                           const mm_tensor *y, mm_scalar ys);
/* positions of the nonzero elements (NaN counts): N x ndim int64, 0-based, row-major order */
MM_API mm_tensor *mm_nonzero(mm_ctx *ctx, const mm_tensor *a);
/* a[key]: a bool key whose shape equals a's leading dims picks the true positions (shape
 * [count, rest of a]); an int64 key picks along dim 0 (shape key's + rest of a). */
MM_API mm_tensor *mm_index(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *key);
/* a[key] = value: value broadcast to a[key]'s shape and converted to a's dtype; with
 * repeated indices the last write wins. */
MM_API int mm_index_put_(mm_ctx *ctx, mm_tensor *a, const mm_tensor *key, const mm_tensor *value);
/* ---------------------------------------------------------------- more reductions, scans */

typedef enum mm_stat_op {
  MM_STAT_PROD = 0, /* int64 and bool give int64 (wrapping around on overflow) */
  MM_STAT_VAR,      /* var, std and norm need a floating-point tensor */
  MM_STAT_STD,
  MM_STAT_NORM,
  MM_STAT_LOGSUMEXP, /* int64 and bool give float32 */
  MM_STAT_OP_COUNT
} mm_stat_op;

/* param: the correction of VAR / STD (1 for the unbiased estimate: sum of squared
 * deviations over max(0, n - correction)); p of NORM (any number but NaN; INFINITY and
 * -INFINITY for the largest / smallest |x|, 0 counts nonzeros); unused otherwise.
 * Over all elements (a 0-d result) or along one dim. */
MM_API mm_tensor *mm_stat_all(mm_ctx *ctx, mm_stat_op op, const mm_tensor *a, double param);
MM_API mm_tensor *mm_stat_dim(mm_ctx *ctx, mm_stat_op op, const mm_tensor *a, int dim, bool keepdim,
                              double param);
/* Running sum / product along dim; bool gives int64. */
MM_API mm_tensor *mm_cumsum(mm_ctx *ctx, const mm_tensor *a, int dim);
MM_API mm_tensor *mm_cumprod(mm_ctx *ctx, const mm_tensor *a, int dim);

/* ---------------------------------------------------------------- sorting */

/* Stable sort along dim: equal values keep their order; NaN counts as larger than every
 * number (last ascending, first descending); -0 equals +0. *indices (if not NULL)
 * receives the 0-based int64 positions the values came from. */
MM_API mm_tensor *mm_sort(mm_ctx *ctx, const mm_tensor *a, int dim, bool descending,
                          mm_tensor **indices);
/* The k largest (or smallest) along dim, best first when sorted (otherwise in no set
 * order); among equal values the earlier position comes first. 0 <= k <= size; not for
 * bool tensors (PyTorch refuses them too). */
MM_API mm_tensor *mm_topk(mm_ctx *ctx, const mm_tensor *a, int64_t k, int dim, bool largest,
                          bool sorted, mm_tensor **indices);
/* The distinct values of a (all elements), ascending; each NaN is distinct and they come
 * last. inverse (a's shape) and counts, if not NULL, receive int64 tensors: the 0-based
 * position in the result of each element, and how often each value occurs. */
MM_API mm_tensor *mm_unique(mm_ctx *ctx, const mm_tensor *a, mm_tensor **inverse,
                            mm_tensor **counts);

/* ---------------------------------------------------------------- joining and splitting */

/* Joins n >= 1 tensors along dim (cat: an existing one, sizes equal elsewhere; stack: a new
 * one, shapes equal). The dtype is promoted over all of them; cat skips 1-D empty tensors
 * whatever their shape elsewhere, as PyTorch does. */
MM_API mm_tensor *mm_cat(mm_ctx *ctx, const mm_tensor *const *ts, int64_t n, int dim);
MM_API mm_tensor *mm_stack(mm_ctx *ctx, const mm_tensor *const *ts, int64_t n, int dim);
/* Consecutive views along dim: pieces of `size` (the last may be smaller), pieces of the
 * given sizes (they must add up to the size of dim), or `chunks` pieces of equal size but
 * the last (fewer when the size does not allow that many). They return a malloc'd array of
 * new references (their number in *count) for mm_release_list, or NULL on error. */
MM_API mm_tensor **mm_split(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t size, int64_t *count);
MM_API mm_tensor **mm_split_sizes(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t n,
                                  const int64_t *sizes);
MM_API mm_tensor **mm_chunk(mm_ctx *ctx, const mm_tensor *t, int dim, int64_t chunks,
                            int64_t *count);
MM_API void mm_release_list(mm_tensor **ts, int64_t n); /* releases each, frees the array */
/* The tensor repeated reps[d] times along each dim. repeat (torch.Tensor.repeat) needs
 * n >= ndim; tile (torch.tile) also takes fewer, padding them with 1s in front. */
MM_API mm_tensor *mm_repeat(mm_ctx *ctx, const mm_tensor *t, int n, const int64_t *reps);
MM_API mm_tensor *mm_tile(mm_ctx *ctx, const mm_tensor *t, int n, const int64_t *reps);
/* A copy with the order of elements reversed along each of the n dims. */
MM_API mm_tensor *mm_flip(mm_ctx *ctx, const mm_tensor *t, int n, const int *dims);

/* ---------------------------------------------------------------- linear algebra */

/* PyTorch's torch.matmul rules for 1-D, 2-D and batched (broadcast) operands. */
MM_API mm_tensor *mm_matmul(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b);
MM_API mm_tensor *mm_dot(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b);
MM_API mm_tensor *mm_mv(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *x);
MM_API mm_tensor *mm_mm(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b);
MM_API mm_tensor *mm_bmm(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b);
/* beta * c + alpha * (a @ b), c broadcast to the product's shape */
MM_API mm_tensor *mm_addmm(mm_ctx *ctx, const mm_tensor *c, const mm_tensor *a, const mm_tensor *b,
                           double beta, double alpha);

/* ---------------------------------------------------------------- images */
/* src/io/png.c. Load: any PNG (gray, gray + alpha, RGB, RGBA, palette; 1 to 16 bits;
 * interlaced) as float32 C x H x W in [0, 1], C = 1, 2, 3 or 4 (palette -> RGB, tRNS -> an
 * alpha channel; samples / 255 or / 65535). Save: a float H x W (gray) or C x H x W tensor
 * (C = 1..4), values clamped to [0, 1] and rounded to bit_depth 8 or 16 bits (NaN is an
 * error), written to a temporary file beside path and renamed over it. */
MM_API mm_tensor *mm_png_load(mm_ctx *ctx, const char *path);
MM_API int mm_png_save(mm_ctx *ctx, const mm_tensor *t, const char *path, int bit_depth);

/* src/io/draw.c: drawing in place on a contiguous float32 C x H x W canvas (C = 1..4); color
 * holds C values. Pixel (row i, column j) covers [j, j+1) x [i, i+1). */
#define MM_FONT_WIDTH 5   /* glyph columns */
#define MM_FONT_HEIGHT 9  /* glyph rows: 7 above the baseline, 2 for descenders */
#define MM_FONT_ADVANCE 6 /* columns from one character to the next */
/* Fills columns x0..x1-1 of rows y0..y1-1 (clipped to the canvas). */
MM_API int mm_draw_rect(mm_ctx *ctx, mm_tensor *canvas, int64_t x0, int64_t y0, int64_t x1,
                        int64_t y1, const float *color);
/* An anti-aliased line of the given width through n points xy[2k], xy[2k+1]; a non-finite
 * point breaks the line. */
MM_API int mm_draw_polyline(mm_ctx *ctx, mm_tensor *canvas, const double *xy, int64_t n,
                            double width, const float *color);
/* n anti-aliased discs of the given radius centred on the points xy. */
MM_API int mm_draw_markers(mm_ctx *ctx, mm_tensor *canvas, const double *xy, int64_t n,
                           double radius, const float *color);
/* ASCII text (other bytes draw as '?') with its top-left corner at (x, y), each font pixel
 * scale x scale; vertical text reads upwards, (x, y) the top-left of its bounding box. */
MM_API int mm_draw_text(mm_ctx *ctx, mm_tensor *canvas, const char *text, int64_t x, int64_t y,
                        int scale, bool vertical, const float *color);

/* ---------------------------------------------------------------- optimizers */

/* Fused parameter updates with PyTorch 1.13's formulas. Every tensor of one call has the
 * parameter's shape and floating dtype and is contiguous; the state tensors are updated
 * in place. grad == NULL skips the parameter. None of these records a graph. */
typedef struct mm_sgd_opts {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
} mm_sgd_opts;
/* buf: the momentum buffer (ignored when momentum == 0); first: buf holds no history yet */
MM_API int mm_sgd_step(mm_ctx *ctx, mm_tensor *param, const mm_tensor *grad, mm_tensor *buf,
                       bool first, const mm_sgd_opts *o);

typedef struct mm_adam_opts {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad, maximize;
  bool decoupled; /* AdamW: weight decay applied to the parameter, not the gradient */
} mm_adam_opts;
/* step counts from 1 (this update's number); max_sq only with amsgrad */
MM_API int mm_adam_step(mm_ctx *ctx, mm_tensor *param, const mm_tensor *grad, mm_tensor *avg,
                        mm_tensor *avg_sq, mm_tensor *max_sq, int64_t step, const mm_adam_opts *o);

typedef struct mm_rmsprop_opts {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered, maximize;
} mm_rmsprop_opts;
/* buf only with momentum > 0, grad_avg only when centered */
MM_API int mm_rmsprop_step(mm_ctx *ctx, mm_tensor *param, const mm_tensor *grad,
                           mm_tensor *square_avg, mm_tensor *buf, mm_tensor *grad_avg,
                           const mm_rmsprop_opts *o);

typedef struct mm_adagrad_opts {
  double lr, lr_decay, weight_decay, eps;
  bool maximize;
} mm_adagrad_opts;
MM_API int mm_adagrad_step(mm_ctx *ctx, mm_tensor *param, const mm_tensor *grad,
                           mm_tensor *state_sum, int64_t step, const mm_adagrad_opts *o);
/* The checks every step above makes of param and grad, alone: an optimizer checks all its
 * parameters first, so that a bad gradient fails the step before anything changes. */
MM_API int mm_optim_check(mm_ctx *ctx, const char *op, const mm_tensor *param,
                          const mm_tensor *grad);

/* ---------------------------------------------------------------- files: IDX */

/* Reads an IDX file (the MNIST format), gzip-compressed or plain, into a tensor of the
 * stored shape converted to dtype (float32 or float64 keep the values; int64 needs an
 * integer element type). Every size is checked against the file: a truncated, oversized
 * or malformed file is an error naming the path. */
MM_API mm_tensor *mm_read_idx(mm_ctx *ctx, const char *path, mm_dtype dtype);

#ifdef __cplusplus
}
#endif
#endif /* MOONML_H */
