/* Sorting along a dim: sort, topk and unique, with the backward of sort and topk.
 *
 * Every element becomes an unsigned key whose order is the wanted order of the values
 * (NaN above +inf, -0 equal to +0, flipped for descending / largest), paired with its
 * position. Pairs are unique, so ordering them by (key, position) is a stable sort of
 * the values whatever algorithm does it: LSD radix on the key for long rows, quicksort
 * for short ones, quickselect for topk. 32-bit keys travel packed with the position in
 * one uint64 (key high, position low); 64-bit keys as a pair of uint64. */
#include "rows.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint64_t key, pos;
} pair;

static inline uint32_t key_f32(float v) {
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  if (v != v)
    return 0xFFFFFFFFu;
  if (v == 0)
    return 0x80000000u;
  return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

static inline uint64_t key_f64(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof u);
  const uint64_t top = (uint64_t)1 << 63;
  if (v != v)
    return ~(uint64_t)0;
  if (v == 0)
    return top;
  return (u & top) ? ~u : u | top;
}

static bool packs(mm_dtype dt, int64_t R) {
  return (dt == MM_FLOAT32 || dt == MM_BOOL) && R <= (int64_t)UINT32_MAX;
}

/* element i of a row as packed / pair; m flips the key (descending / largest first) */
static inline uint64_t packed_at(const void *row, mm_dtype dt, int64_t i, uint32_t m) {
  uint32_t k = dt == MM_FLOAT32 ? key_f32(((const float *)row)[i])
                                : (uint32_t)(((const uint8_t *)row)[i] != 0);
  return (uint64_t)(k ^ m) << 32 | (uint64_t)i;
}

static inline pair pair_at(const void *row, mm_dtype dt, int64_t i, uint64_t m) {
  uint64_t k;
  switch (dt) {
  case MM_FLOAT64:
    k = key_f64(((const double *)row)[i]);
    break;
  case MM_INT64:
    k = (uint64_t)((const int64_t *)row)[i] ^ ((uint64_t)1 << 63);
    break;
  case MM_FLOAT32:
    k = key_f32(((const float *)row)[i]);
    break;
  default:
    k = ((const uint8_t *)row)[i] != 0;
    break;
  }
  return (pair){k ^ m, (uint64_t)i};
}

static void build_packed(const void *row, mm_dtype dt, int64_t R, bool flip, uint64_t *a) {
  uint32_t m = flip ? 0xFFFFFFFFu : 0;
  if (dt == MM_FLOAT32)
    for (int64_t i = 0; i < R; i++)
      a[i] = packed_at(row, MM_FLOAT32, i, m);
  else
    for (int64_t i = 0; i < R; i++)
      a[i] = packed_at(row, MM_BOOL, i, m);
}

static void build_pairs(const void *row, mm_dtype dt, int64_t R, bool flip, pair *a) {
  uint64_t m = flip ? ~(uint64_t)0 : 0;
  for (int64_t i = 0; i < R; i++)
    a[i] = pair_at(row, dt, i, m);
}

static inline uint64_t pos_of_packed(uint64_t e) { return e & 0xFFFFFFFFu; }

/* ------------------------------------------------------------------ comparison sorts */

#define LT_PACKED(a, b) ((a) < (b))
#define LT_PAIR(a, b) ((a).key < (b).key || ((a).key == (b).key && (a).pos < (b).pos))

/* insertion sort, heapsort, introsort and introselect over T ordered by LT */
#define DEFINE_SORTS(NAME, T, LT)                                                                  \
  static void insertion_##NAME(T *a, int64_t n) {                                                  \
    for (int64_t i = 1; i < n; i++) {                                                              \
      T v = a[i];                                                                                  \
      int64_t j = i;                                                                               \
      while (j > 0 && LT(v, a[j - 1])) {                                                           \
        a[j] = a[j - 1];                                                                           \
        j--;                                                                                       \
      }                                                                                            \
      a[j] = v;                                                                                    \
    }                                                                                              \
  }                                                                                                \
  static void sift_##NAME(T *a, int64_t n, int64_t i) { /* max-heap */                             \
    T v = a[i];                                                                                    \
    for (;;) {                                                                                     \
      int64_t c = 2 * i + 1;                                                                       \
      if (c >= n)                                                                                  \
        break;                                                                                     \
      if (c + 1 < n && LT(a[c], a[c + 1]))                                                         \
        c++;                                                                                       \
      if (!LT(v, a[c]))                                                                            \
        break;                                                                                     \
      a[i] = a[c];                                                                                 \
      i = c;                                                                                       \
    }                                                                                              \
    a[i] = v;                                                                                      \
  }                                                                                                \
  static void heapsort_##NAME(T *a, int64_t n) {                                                   \
    for (int64_t i = n / 2 - 1; i >= 0; i--)                                                       \
      sift_##NAME(a, n, i);                                                                        \
    for (int64_t e = n - 1; e > 0; e--) {                                                          \
      T t = a[0];                                                                                  \
      a[0] = a[e];                                                                                 \
      a[e] = t;                                                                                    \
      sift_##NAME(a, e, 0);                                                                        \
    }                                                                                              \
  }                                                                                                \
  /* moves the median of a[lo], a[mid], a[hi - 1] to a[hi - 1] and splits around it */             \
  static int64_t partition_##NAME(T *a, int64_t lo, int64_t hi) {                                  \
    int64_t mid = lo + (hi - lo) / 2, last = hi - 1;                                               \
    T t;                                                                                           \
    if (LT(a[mid], a[lo])) {                                                                       \
      t = a[mid], a[mid] = a[lo], a[lo] = t;                                                       \
    }                                                                                              \
    if (LT(a[last], a[lo])) {                                                                      \
      t = a[last], a[last] = a[lo], a[lo] = t;                                                     \
    }                                                                                              \
    if (LT(a[mid], a[last])) {                                                                     \
      t = a[mid], a[mid] = a[last], a[last] = t;                                                   \
    }                                                                                              \
    T pv = a[last];                                                                                \
    int64_t i = lo;                                                                                \
    for (int64_t j = lo; j < last; j++)                                                            \
      if (LT(a[j], pv)) {                                                                          \
        t = a[i], a[i] = a[j], a[j] = t;                                                           \
        i++;                                                                                       \
      }                                                                                            \
    a[last] = a[i];                                                                                \
    a[i] = pv;                                                                                     \
    return i;                                                                                      \
  }                                                                                                \
  static void introsort_##NAME(T *a, int64_t n) {                                                  \
    int depth = 2;                                                                                 \
    for (int64_t m = n; m > 1; m >>= 1)                                                            \
      depth += 2;                                                                                  \
    int64_t lo = 0, hi = n;                                                                        \
    /* the smaller side recursively, the larger one in this loop */                                \
    while (hi - lo > 16) {                                                                         \
      if (depth-- == 0) {                                                                          \
        heapsort_##NAME(a + lo, hi - lo);                                                          \
        return;                                                                                    \
      }                                                                                            \
      int64_t p = partition_##NAME(a, lo, hi);                                                     \
      if (p - lo < hi - p - 1) {                                                                   \
        introsort_##NAME(a + lo, p - lo);                                                          \
        lo = p + 1;                                                                                \
      } else {                                                                                     \
        introsort_##NAME(a + p + 1, hi - p - 1);                                                   \
        hi = p;                                                                                    \
      }                                                                                            \
    }                                                                                              \
    insertion_##NAME(a + lo, hi - lo);                                                             \
  }                                                                                                \
  /* puts the k smallest of a[0..n) first, in no particular order */                               \
  static void select_##NAME(T *a, int64_t n, int64_t k) {                                          \
    int depth = 2;                                                                                 \
    for (int64_t m = n; m > 1; m >>= 1)                                                            \
      depth += 2;                                                                                  \
    int64_t lo = 0, hi = n;                                                                        \
    while (hi - lo > 16) {                                                                         \
      if (depth-- == 0) {                                                                          \
        introsort_##NAME(a + lo, hi - lo);                                                         \
        return;                                                                                    \
      }                                                                                            \
      int64_t p = partition_##NAME(a, lo, hi);                                                     \
      if (k <= p)                                                                                  \
        hi = p;                                                                                    \
      else if (k > p + 1)                                                                          \
        lo = p + 1;                                                                                \
      else                                                                                         \
        return;                                                                                    \
    }                                                                                              \
    insertion_##NAME(a + lo, hi - lo);                                                             \
  }

DEFINE_SORTS(packed, uint64_t, LT_PACKED)
DEFINE_SORTS(pair, pair, LT_PAIR)

/* The k smallest of a row into a[0..k) without building the whole row: a max-heap of the
 * best so far, which most elements of a long row fail to enter. When too many do (a row
 * running towards the wanted end), gives up and returns false: quickselect does better. */
#define DEFINE_HEAP_SELECT(NAME, T, LT, AT, MT)                                                    \
  static bool heap_select_##NAME(const void *row, mm_dtype dt, int64_t R, int64_t k, MT m, T *a) { \
    for (int64_t i = 0; i < k; i++)                                                                \
      a[i] = AT(row, dt, i, m);                                                                    \
    for (int64_t i = k / 2 - 1; i >= 0; i--)                                                       \
      sift_##NAME(a, k, i);                                                                        \
    int64_t budget = R / 16 + 4 * k;                                                               \
    for (int64_t i = k; i < R; i++) {                                                              \
      T e = AT(row, dt, i, m);                                                                     \
      if (LT(e, a[0])) {                                                                           \
        if (--budget < 0)                                                                          \
          return false;                                                                            \
        a[0] = e;                                                                                  \
        sift_##NAME(a, k, 0);                                                                      \
      }                                                                                            \
    }                                                                                              \
    return true;                                                                                   \
  }

DEFINE_HEAP_SELECT(packed, uint64_t, LT_PACKED, packed_at, uint32_t)
DEFINE_HEAP_SELECT(pair, pair, LT_PAIR, pair_at, uint64_t)

/* topk takes the heap when k is this small a part of the row */
#define HEAP_FRACTION 16

/* ------------------------------------------------------------------ radix sorts */

#define RADIX_BITS 11
#define RADIX_SIZE (1 << RADIX_BITS)
#define RADIX_MAX_PASSES 6

/* Stable LSD radix sort of a by the bits of key(e) from `shift0` up (`passes` digits);
 * b is scratch of the same size; returns the array holding the result. */
#define DEFINE_RADIX(NAME, T, KEY)                                                                 \
  static T *radix_##NAME(T *a, T *b, int64_t n, int passes, int64_t *hist) {                       \
    memset(hist, 0, (size_t)passes *RADIX_SIZE * sizeof *hist);                                    \
    for (int64_t i = 0; i < n; i++) {                                                              \
      uint64_t k = KEY(a[i]);                                                                      \
      for (int p = 0; p < passes; p++)                                                             \
        hist[p * RADIX_SIZE + ((k >> (p * RADIX_BITS)) & (RADIX_SIZE - 1))]++;                     \
    }                                                                                              \
    for (int p = 0; p < passes; p++) {                                                             \
      int64_t *h = hist + p * RADIX_SIZE, sum = 0;                                                 \
      bool trivial = false;                                                                        \
      for (int d = 0; d < RADIX_SIZE; d++) {                                                       \
        trivial = trivial || h[d] == n;                                                            \
        int64_t c = h[d];                                                                          \
        h[d] = sum;                                                                                \
        sum += c;                                                                                  \
      }                                                                                            \
      if (trivial) /* every key has the same digit: the pass would change nothing */               \
        continue;                                                                                  \
      int shift = p * RADIX_BITS;                                                                  \
      for (int64_t i = 0; i < n; i++)                                                              \
        b[h[(KEY(a[i]) >> shift) & (RADIX_SIZE - 1)]++] = a[i];                                    \
      T *t = a;                                                                                    \
      a = b;                                                                                       \
      b = t;                                                                                       \
    }                                                                                              \
    return a;                                                                                      \
  }

#define KEY_PACKED(e) ((e) >> 32)
#define KEY_PAIR(e) ((e).key)
DEFINE_RADIX(packed, uint64_t, KEY_PACKED)
DEFINE_RADIX(pair, pair, KEY_PAIR)

/* rows shorter than this are sorted by comparisons (measured: a radix pass costs the
 * clearing and summing of 2048 counters, which short rows do not pay back) */
#define RADIX_MIN_PACKED 200
#define RADIX_MIN_PAIR 600

/* ------------------------------------------------------------------ per row */

typedef struct {
  const mm_rows *rw;
  int64_t k; /* topk: how many; sort: R */
  bool flip; /* descending / largest */
  bool topk, sorted;
  char *values; /* rows of k values, contiguous */
  int64_t *pos; /* rows of k positions (0-based) */
  atomic_int failed;
} sort_job;

/* scratch of one thread */
typedef struct {
  void *a, *b;
  int64_t *hist;
} scratch;

static bool scratch_get(scratch *s, int64_t R, size_t esz) {
  size_t n = (size_t)(R > 0 ? R : 1);
  s->a = malloc(n * esz);
  s->b = malloc(n * esz);
  s->hist = malloc((size_t)RADIX_MAX_PASSES * RADIX_SIZE * sizeof *s->hist);
  return s->a && s->b && s->hist;
}

static void scratch_free(scratch *s) {
  free(s->a);
  free(s->b);
  free(s->hist);
}

/* Orders the row's n = R elements in s->a (all of them, or the first k for topk) and
 * returns where the ordered run starts. */
static void *order_packed(const sort_job *job, scratch *s, int64_t R) {
  uint64_t *a = s->a;
  if (job->topk && job->k < R) {
    select_packed(a, R, job->k);
    if (job->sorted)
      introsort_packed(a, job->k);
    return a;
  }
  if (R < RADIX_MIN_PACKED) {
    introsort_packed(a, R);
    return a;
  }
  return radix_packed(a, s->b, R, 3, s->hist); /* 33 bits >= the 32 of the key */
}

static void *order_pairs(const sort_job *job, scratch *s, int64_t R, mm_dtype dt) {
  pair *a = s->a;
  if (job->topk && job->k < R) {
    select_pair(a, R, job->k);
    if (job->sorted)
      introsort_pair(a, job->k);
    return a;
  }
  if (R < RADIX_MIN_PAIR) {
    introsort_pair(a, R);
    return a;
  }
  int passes = dt == MM_FLOAT64 || dt == MM_INT64 ? RADIX_MAX_PASSES : 3;
  return radix_pair(a, s->b, R, passes, s->hist);
}

static void sort_rows(int64_t r0, int64_t r1, void *arg) {
  sort_job *job = arg;
  const mm_tensor *x = job->rw->x;
  int64_t R = job->rw->R, k = job->k;
  mm_dtype dt = x->dtype;
  size_t es = mm_dtype_size(dt);
  bool packed = packs(dt, R);
  scratch s;
  if (!scratch_get(&s, R, packed ? sizeof(uint64_t) : sizeof(pair))) {
    scratch_free(&s);
    atomic_store(&job->failed, 1);
    return;
  }
  for (int64_t r = r0; r < r1; r++) {
    const char *row = (const char *)mm_data(x) + r * R * (int64_t)es;
    char *vo = job->values + r * k * (int64_t)es;
    int64_t *po = job->pos + r * k;
    bool heap = job->topk && k * HEAP_FRACTION <= R;
    if (heap && packed)
      heap = heap_select_packed(row, dt, R, k, job->flip ? 0xFFFFFFFFu : 0, s.a);
    else if (heap)
      heap = heap_select_pair(row, dt, R, k, job->flip ? ~(uint64_t)0 : 0, s.a);
    if (packed && heap) {
      uint64_t *o = s.a;
      if (job->sorted)
        introsort_packed(o, k);
      for (int64_t j = 0; j < k; j++)
        po[j] = (int64_t)pos_of_packed(o[j]);
    } else if (heap) {
      pair *o = s.a;
      if (job->sorted)
        introsort_pair(o, k);
      for (int64_t j = 0; j < k; j++)
        po[j] = (int64_t)o[j].pos;
    } else if (packed) {
      build_packed(row, dt, R, job->flip, s.a);
      const uint64_t *o = order_packed(job, &s, R);
      for (int64_t j = 0; j < k; j++)
        po[j] = (int64_t)pos_of_packed(o[j]);
    } else {
      build_pairs(row, dt, R, job->flip, s.a);
      const pair *o = order_pairs(job, &s, R, dt);
      for (int64_t j = 0; j < k; j++)
        po[j] = (int64_t)o[j].pos;
    }
    /* the values themselves, not decoded keys: -0 and NaN payloads stay as they were */
    if (es == 4)
      for (int64_t j = 0; j < k; j++)
        memcpy(vo + j * 4, row + po[j] * 4, 4);
    else if (es == 8)
      for (int64_t j = 0; j < k; j++)
        memcpy(vo + j * 8, row + po[j] * 8, 8);
    else
      for (int64_t j = 0; j < k; j++)
        vo[j] = row[po[j]];
  }
  scratch_free(&s);
}

/* ------------------------------------------------------------------ backward */

typedef struct {
  const mm_rows *g, *pos;
  char *out; /* rows of R, zero-filled */
  int64_t R;
} scatter_job;

static void scatter_rows(int64_t r0, int64_t r1, void *arg) {
  const scatter_job *job = arg;
  int64_t k = job->g->R, R = job->R;
  const int64_t *p = mm_data(job->pos->x);
  bool f32 = job->g->x->dtype == MM_FLOAT32;
  for (int64_t r = r0; r < r1; r++) {
    if (f32) {
      const float *g = (const float *)mm_data(job->g->x) + r * k;
      float *o = (float *)job->out + r * R;
      for (int64_t j = 0; j < k; j++)
        o[p[r * k + j]] = g[j];
    } else {
      const double *g = (const double *)mm_data(job->g->x) + r * k;
      double *o = (double *)job->out + r * R;
      for (int64_t j = 0; j < k; j++)
        o[p[r * k + j]] = g[j];
    }
  }
}

/* The gradient goes back to the positions the values came from. node->i[0]: dim;
 * saved: the 0-based positions (a copy: the binding turns its own to 1-based). */
static int sort_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  const mm_edge *e = &node->in[0];
  int dim = (int)node->i[0];
  mm_rows rg = {0}, rp = {0}, rx = {0};
  mm_tensor *gx = mm_to_dtype(ctx, g, e->dtype), *out = NULL;
  if (gx && mm_rows_init(ctx, gx, dim, false, &rg) == 0 &&
      mm_rows_init(ctx, node->saved[0], dim, false, &rp) == 0) {
    rx = rg; /* the layout of g's rows, with rows of x's length */
    rx.x = NULL;
    rx.R = e->ndim > 0 ? e->shape[dim] : 1;
    memcpy(rx.shape, e->shape, sizeof rx.shape);
    out = mm_rows_new(ctx, &rx, e->dtype, rx.R);
    if (out) {
      mm_fill_(ctx, out, 0);
      scatter_job job = {&rg, &rp, mm_data(out), rx.R};
      mm_rows_for(rg.nrows, rx.R, scatter_rows, &job);
      out = mm_rows_restore(ctx, &rx, out);
    }
  }
  mm_rows_free(&rg);
  mm_rows_free(&rp);
  mm_release(gx);
  grad_in[0] = out;
  return out ? 0 : -1;
}

/* ------------------------------------------------------------------ sort and topk */

static mm_tensor *sort_impl(mm_ctx *ctx, const char *name, const mm_tensor *a, int dim, int64_t k,
                            bool topk, bool flip, bool sorted, mm_tensor **indices) {
  if (indices)
    *indices = NULL;
  if (!a) {
    mm_fail(ctx, "moonml.%s: expected a tensor, got NULL", name);
    return NULL;
  }
  if (mm_check_dim0(ctx, name, dim, a->ndim) != 0)
    return NULL;
  if (topk && a->dtype == MM_BOOL) {
    mm_fail(ctx, "moonml.topk: not defined for bool tensors (as in PyTorch); convert with "
                 ":long() first");
    return NULL;
  }
  int64_t R = a->ndim > 0 ? a->shape[dim] : 1;
  if (!topk)
    k = R;
  else if (k < 0 || k > R) {
    mm_fail(ctx, "moonml.topk: k = %lld is out of range for dimension %d of size %lld",
            (long long)k, dim + 1, (long long)R);
    return NULL;
  }
  bool mode = mm_grad_pause(ctx);
  mm_rows rw = {0};
  mm_tensor *vals = NULL, *pos = NULL;
  if (mm_rows_init(ctx, a, dim, false, &rw) == 0) {
    vals = mm_rows_new(ctx, &rw, a->dtype, k);
    pos = vals ? mm_rows_new(ctx, &rw, MM_INT64, k) : NULL;
  }
  if (pos) {
    sort_job job = {&rw, k, flip, topk, sorted, mm_data(vals), mm_data(pos), 0};
    if (k > 0)
      mm_rows_for(rw.nrows, R, sort_rows, &job);
    if (atomic_load(&job.failed)) {
      mm_fail(ctx, "moonml.%s: out of memory", name);
      mm_release(pos);
      pos = NULL;
    } else {
      vals = mm_rows_restore(ctx, &rw, vals);
      if (vals) {
        pos = mm_rows_restore(ctx, &rw, pos);
      } else {
        mm_release(pos);
        pos = NULL;
      }
    }
  }
  mm_rows_free(&rw);
  mm_set_grad_enabled(ctx, mode);
  mm_node *node = NULL;
  int st =
      pos ? mm_node_begin(ctx, topk ? "TopkBackward" : "SortBackward", sort_backward, 1, &a, &node)
          : -1;
  if (node) {
    node->i[0] = dim;
    mm_node_attach(node, vals);
    mm_tensor *kept = mm_clone(ctx, pos);
    st = kept ? mm_node_save(ctx, node, kept) : -1;
    mm_release(kept);
  }
  if (st != 0) {
    mm_release(vals);
    mm_release(pos);
    return NULL;
  }
  if (indices)
    *indices = pos;
  else
    mm_release(pos);
  return vals;
}

mm_tensor *mm_sort(mm_ctx *ctx, const mm_tensor *a, int dim, bool descending, mm_tensor **indices) {
  return sort_impl(ctx, "sort", a, dim, 0, false, descending, true, indices);
}

mm_tensor *mm_topk(mm_ctx *ctx, const mm_tensor *a, int64_t k, int dim, bool largest, bool sorted,
                   mm_tensor **indices) {
  return sort_impl(ctx, "topk", a, dim, k, true, largest, sorted, indices);
}

/* ------------------------------------------------------------------ unique */

static bool is_nan_at(const mm_tensor *x, int64_t i) {
  if (x->dtype == MM_FLOAT32) {
    float v = ((const float *)mm_data(x))[i];
    return v != v;
  }
  if (x->dtype == MM_FLOAT64) {
    double v = ((const double *)mm_data(x))[i];
    return v != v;
  }
  return false;
}

mm_tensor *mm_unique(mm_ctx *ctx, const mm_tensor *a, mm_tensor **inverse, mm_tensor **counts) {
  if (inverse)
    *inverse = NULL;
  if (counts)
    *counts = NULL;
  if (!a) {
    mm_fail(ctx, "moonml.unique: expected a tensor, got NULL");
    return NULL;
  }
  bool mode = mm_grad_pause(ctx);
  mm_rows rw = {0};
  int64_t n = mm_numel(a);
  size_t es = mm_dtype_size(a->dtype);
  bool packed = packs(a->dtype, n);
  int64_t *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  int64_t *group = malloc((size_t)(n > 0 ? n : 1) * sizeof *group);
  scratch s = {0};
  mm_tensor *vals = NULL, *inv = NULL, *cnt = NULL;
  bool ok = false;
  if (!order || !group || !scratch_get(&s, n, packed ? sizeof(uint64_t) : sizeof(pair))) {
    mm_fail(ctx, "moonml.unique: out of memory");
    goto done;
  }
  if (mm_rows_init(ctx, a, 0, true, &rw) != 0)
    goto done;
  /* a stable ascending sort of every element */
  sort_job job = {&rw, n, false, false, true, NULL, NULL, 0};
  if (packed) {
    build_packed(mm_data(rw.x), a->dtype, n, false, s.a);
    const uint64_t *o = order_packed(&job, &s, n);
    for (int64_t j = 0; j < n; j++)
      order[j] = (int64_t)pos_of_packed(o[j]);
  } else {
    build_pairs(mm_data(rw.x), a->dtype, n, false, s.a);
    const pair *o = order_pairs(&job, &s, n, a->dtype);
    for (int64_t j = 0; j < n; j++)
      order[j] = (int64_t)o[j].pos;
  }
  /* groups of equal values; every NaN is a value of its own (NaN != NaN) */
  const char *x = mm_data(rw.x);
  int64_t ngroups = 0;
  for (int64_t j = 0; j < n; j++) {
    bool same = j > 0 && !is_nan_at(rw.x, order[j]);
    if (same) {
      const char *p = x + order[j] * (int64_t)es, *q = x + order[j - 1] * (int64_t)es;
      if (a->dtype == MM_FLOAT32)
        same = *(const float *)p == *(const float *)q;
      else if (a->dtype == MM_FLOAT64)
        same = *(const double *)p == *(const double *)q;
      else
        same = memcmp(p, q, es) == 0;
    }
    if (!same)
      ngroups++;
    group[j] = ngroups - 1;
  }
  int64_t one[1] = {ngroups};
  vals = mm_empty(ctx, a->dtype, 1, one);
  inv = inverse && vals ? mm_empty(ctx, MM_INT64, a->ndim, a->shape) : NULL;
  cnt = counts && vals ? mm_zeros(ctx, MM_INT64, 1, one) : NULL;
  if (!vals || (inverse && !inv) || (counts && !cnt))
    goto done;
  char *v = mm_data(vals);
  for (int64_t j = 0; j < n; j++) {
    if (j == 0 || group[j] != group[j - 1]) /* the first of its group in the input's order */
      memcpy(v + group[j] * (int64_t)es, x + order[j] * (int64_t)es, es);
    if (inv)
      ((int64_t *)mm_data(inv))[order[j]] = group[j];
    if (cnt)
      ((int64_t *)mm_data(cnt))[group[j]]++;
  }
  ok = true;
done:
  if (ok) {
    if (inverse) {
      *inverse = inv;
      inv = NULL;
    }
    if (counts) {
      *counts = cnt;
      cnt = NULL;
    }
  } else {
    mm_release(vals);
    vals = NULL;
  }
  mm_release(inv);
  mm_release(cnt);
  mm_rows_free(&rw);
  scratch_free(&s);
  free(order);
  free(group);
  mm_set_grad_enabled(ctx, mode);
  return vals;
}
