/* 2-D pooling, forward and backward: max_pool2d (with the positions of the maxima, which
 * its backward scatters to), avg_pool2d and adaptive_avg_pool2d. The window rules
 * (padding, dilation, ceil_mode, the divisor of avg_pool2d) are PyTorch's CPU kernels'.
 * Planes (n, c) are independent and split over threads with mm_parallel_for. */
#include "nn_internal.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* Work (window elements visited) per thread chunk below which threads do not pay. */
#define POOL_GRAIN_WORK ((int64_t)1 << 16)

typedef struct pool_geom {
  int64_t planes, h, w, oh, ow;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool count_include_pad;
  int64_t divisor_override;
} pool_geom;

/* PyTorch's pooling_output_shape: floor or ceil division, and with ceil_mode the last
 * window must start inside the input or the left padding. */
static int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t s, int64_t d, bool ceil) {
  int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  int64_t q = num >= 0 ? num / s : -((-num + s - 1) / s);
  int64_t out = q + 1;
  if (ceil && (out - 1) * s >= in + pad)
    out--;
  return out;
}

/* x 3-D or 4-D float with non-empty planes. Fills planes, h, w. */
static int check_input(mm_ctx *ctx, const char *op, const mm_tensor *x, pool_geom *g) {
  char s[NN_SHAPE_BUF];
  if (nn_check_float(ctx, op, x, "input") != 0)
    return -1;
  if (x->ndim != 3 && x->ndim != 4)
    return mm_fail(ctx,
                   "moonml.%s: expected a 3-D (unbatched) or 4-D (batched) input, got %d-D input "
                   "of shape %s",
                   op, x->ndim, mm_shape_str(s, sizeof s, x->ndim, x->shape));
  for (int d = x->ndim - 3; d < x->ndim; d++)
    if (x->shape[d] == 0)
      return mm_fail(ctx,
                     "moonml.%s: expected non-empty channel and spatial dims, got input of "
                     "shape %s",
                     op, mm_shape_str(s, sizeof s, x->ndim, x->shape));
  memset(g, 0, sizeof *g);
  g->planes = x->ndim == 4 ? x->shape[0] * x->shape[1] : x->shape[0];
  g->h = x->shape[x->ndim - 2];
  g->w = x->shape[x->ndim - 1];
  return 0;
}

/* Kernel, stride, padding and dilation checks; fills the geometry and output size. */
static int pool_setup(mm_ctx *ctx, const char *op, const mm_tensor *x, const mm_pool_opts *o,
                      bool dilated, pool_geom *g) {
  if (check_input(ctx, op, x, g) != 0)
    return -1;
  for (int i = 0; i < 2; i++) {
    if (o->kernel[i] < 1)
      return mm_fail(ctx, "moonml.%s: kernel size must be positive, got %lld", op,
                     (long long)o->kernel[i]);
    if (o->stride[i] < 1)
      return mm_fail(ctx, "moonml.%s: stride must be positive, got %lld", op,
                     (long long)o->stride[i]);
    if (dilated && o->dilation[i] < 1)
      return mm_fail(ctx, "moonml.%s: dilation must be positive, got %lld", op,
                     (long long)o->dilation[i]);
    if (o->padding[i] < 0 || o->padding[i] > o->kernel[i] / 2)
      return mm_fail(ctx,
                     "moonml.%s: padding must be between 0 and half the kernel size, got "
                     "padding %lld with kernel size %lld",
                     op, (long long)o->padding[i], (long long)o->kernel[i]);
  }
  g->kh = o->kernel[0];
  g->kw = o->kernel[1];
  g->sh = o->stride[0];
  g->sw = o->stride[1];
  g->ph = o->padding[0];
  g->pw = o->padding[1];
  g->dh = dilated ? o->dilation[0] : 1;
  g->dw = dilated ? o->dilation[1] : 1;
  g->count_include_pad = o->count_include_pad;
  g->divisor_override = o->divisor_override;
  g->oh = pool_out_size(g->h, g->kh, g->ph, g->sh, g->dh, o->ceil_mode);
  g->ow = pool_out_size(g->w, g->kw, g->pw, g->sw, g->dw, o->ceil_mode);
  if (g->oh < 1 || g->ow < 1)
    return mm_fail(ctx,
                   "moonml.%s: input of size %lld x %lld gives an output of size %lld x %lld, "
                   "which is too small",
                   op, (long long)g->h, (long long)g->w, (long long)g->oh, (long long)g->ow);
  return 0;
}

/* Output tensor: x's leading dims, then oh x ow. */
static mm_tensor *new_like(mm_ctx *ctx, const mm_tensor *x, mm_dtype dt, int64_t oh, int64_t ow) {
  int64_t shape[4];
  for (int d = 0; d < x->ndim - 2; d++)
    shape[d] = x->shape[d];
  shape[x->ndim - 2] = oh;
  shape[x->ndim - 1] = ow;
  return mm_empty(ctx, dt, x->ndim, shape);
}

typedef struct pool_job {
  pool_geom g;
  mm_dtype dt;
  const void *in; /* forward: x; backward: grad of the output */
  void *out;      /* forward: output; backward: grad of x */
  int64_t *idx;   /* max pool positions */
  int64_t oh, ow; /* adaptive: output size */
} pool_job;

static int64_t pool_grain(int64_t per_plane) {
  return POOL_GRAIN_WORK / (per_plane > 0 ? per_plane : 1) + 1;
}

/* ------------------------------------------------------------------ max_pool2d */

#define DEFINE_MAX_POOL(SUFFIX, T)                                                                 \
  static void max_fwd_##SUFFIX(int64_t p0, int64_t p1, void *arg) {                                \
    const pool_job *j = arg;                                                                       \
    const pool_geom *g = &j->g;                                                                    \
    for (int64_t p = p0; p < p1; p++) {                                                            \
      const T *in = (const T *)j->in + p * g->h * g->w;                                            \
      T *out = (T *)j->out + p * g->oh * g->ow;                                                    \
      int64_t *idx = j->idx + p * g->oh * g->ow;                                                   \
      for (int64_t oy = 0; oy < g->oh; oy++) {                                                     \
        int64_t y0 = oy * g->sh - g->ph, y1 = y0 + (g->kh - 1) * g->dh + 1;                        \
        if (y1 > g->h)                                                                             \
          y1 = g->h;                                                                               \
        while (y0 < 0)                                                                             \
          y0 += g->dh;                                                                             \
        for (int64_t ox = 0; ox < g->ow; ox++) {                                                   \
          int64_t x0 = ox * g->sw - g->pw, x1 = x0 + (g->kw - 1) * g->dw + 1;                      \
          if (x1 > g->w)                                                                           \
            x1 = g->w;                                                                             \
          while (x0 < 0)                                                                           \
            x0 += g->dw;                                                                           \
          int64_t best = y0 * g->w + x0;                                                           \
          T m = -INFINITY;                                                                         \
          for (int64_t y = y0; y < y1; y += g->dh)                                                 \
            for (int64_t x = x0; x < x1; x += g->dw) {                                             \
              T v = in[y * g->w + x];                                                              \
              if (v > m || isnan(v)) {                                                             \
                m = v;                                                                             \
                best = y * g->w + x;                                                               \
              }                                                                                    \
            }                                                                                      \
          out[oy * g->ow + ox] = m;                                                                \
          idx[oy * g->ow + ox] = best;                                                             \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  /* grad x (zeroed) += grad out at the saved positions */                                         \
  static void max_bwd_##SUFFIX(int64_t p0, int64_t p1, void *arg) {                                \
    const pool_job *j = arg;                                                                       \
    const pool_geom *g = &j->g;                                                                    \
    int64_t count = g->oh * g->ow;                                                                 \
    for (int64_t p = p0; p < p1; p++) {                                                            \
      const T *go = (const T *)j->in + p * count;                                                  \
      const int64_t *idx = j->idx + p * count;                                                     \
      T *gx = (T *)j->out + p * g->h * g->w;                                                       \
      for (int64_t i = 0; i < count; i++)                                                          \
        if (idx[i] >= 0 && idx[i] < g->h * g->w) /* a window all in the padding has none */        \
          gx[idx[i]] += go[i];                                                                     \
    }                                                                                              \
  }

DEFINE_MAX_POOL(f32, float)
DEFINE_MAX_POOL(f64, double)

/* The CNNs' common case, 2x2 windows at stride 2 without padding or dilation, without the
 * general loop's bounds: the four elements of a window are compared in the same order
 * with the same rule (a NaN wins, a later NaN over an earlier one), without branches,
 * which the general loop mispredicts on every other window. On CPUs with AVX-512F,
 * float32 rows go 16 windows at a time (the rows of a CNN's planes are 7-14 windows long,
 * too short for the compiler's vector loop): 64 x 32 x 28 x 28 took 6.2 ms in the
 * general loop, PyTorch 1.13 takes 6.1 ms. */
#define DEFINE_MAX_POOL_2X2(SUFFIX, T)                                                             \
  static void max2_fwd_##SUFFIX(int64_t p0, int64_t p1, void *arg) {                               \
    const pool_job *j = arg;                                                                       \
    int64_t w = j->g.w, oh = j->g.oh, ow = j->g.ow;                                                \
    for (int64_t p = p0; p < p1; p++) {                                                            \
      const T *in = (const T *)j->in + p * j->g.h * w;                                             \
      T *out = (T *)j->out + p * oh * ow;                                                          \
      int64_t *idx = j->idx + p * oh * ow;                                                         \
      for (int64_t oy = 0; oy < oh; oy++) {                                                        \
        const T *r0 = in + 2 * oy * w, *r1 = r0 + w;                                               \
        for (int64_t ox = 0; ox < ow; ox++) {                                                      \
          T m = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];                \
          int64_t k = 0; /* offset in the window: 0, 1, w or w + 1 */                              \
          bool t = (b > m) | (b != b);                                                             \
          m = t ? b : m;                                                                           \
          k = t ? 1 : k;                                                                           \
          t = (c > m) | (c != c);                                                                  \
          m = t ? c : m;                                                                           \
          k = t ? w : k;                                                                           \
          t = (d > m) | (d != d);                                                                  \
          m = t ? d : m;                                                                           \
          k = t ? w + 1 : k;                                                                       \
          out[oy * ow + ox] = m;                                                                   \
          idx[oy * ow + ox] = 2 * oy * w + 2 * ox + k;                                             \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }

DEFINE_MAX_POOL_2X2(f32, float)
DEFINE_MAX_POOL_2X2(f64, double)

#ifdef MM_HAVE_SGEMM_AVX512
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

static __mmask16 lanes_below(int64_t n) {
  return n <= 0 ? 0 : n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/* m, k <- v, off where v > m or v is NaN (lanes of one window position) */
#define TAKE(v, off)                                                                               \
  {                                                                                                \
    __mmask16 t = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);   \
    m = _mm512_mask_mov_ps(m, t, v);                                                               \
    k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(off));                                       \
  }

AVX512 static void max2_fwd_avx512(int64_t p0, int64_t p1, void *arg) {
  const pool_job *j = arg;
  int64_t w = j->g.w, oh = j->g.oh, ow = j->g.ow;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i twice = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  for (int64_t p = p0; p < p1; p++) {
    const float *in = (const float *)j->in + p * j->g.h * w;
    float *out = (float *)j->out + p * oh * ow;
    int64_t *idx = j->idx + p * oh * ow;
    for (int64_t oy = 0; oy < oh; oy++) {
      const float *r0 = in + 2 * oy * w, *r1 = r0 + w;
      for (int64_t ox = 0; ox < ow; ox += 16) {
        int64_t n = ow - ox < 16 ? ow - ox : 16; /* windows in this step */
        __mmask16 lo = lanes_below(2 * n), hi = lanes_below(2 * n - 16);
        __m512 x0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * ox);
        __m512 x1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * ox + 16);
        __m512 y0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * ox);
        __m512 y1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * ox + 16);
        __m512 m = _mm512_permutex2var_ps(x0, even, x1);
        __m512i k = _mm512_setzero_si512();
        __m512 b = _mm512_permutex2var_ps(x0, odd, x1);
        TAKE(b, 1)
        __m512 c = _mm512_permutex2var_ps(y0, even, y1);
        TAKE(c, (int)w)
        __m512 d = _mm512_permutex2var_ps(y0, odd, y1);
        TAKE(d, (int)w + 1)
        __mmask16 keep = lanes_below(n);
        _mm512_mask_storeu_ps(out + oy * ow + ox, keep, m);
        /* positions 2 * oy * w + 2 * (ox + lane) + k, in int64 */
        __m512i base = _mm512_add_epi64(_mm512_set1_epi64(2 * oy * w + 2 * ox), twice);
        __m512i klo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(k));
        __m512i khi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(k, 1));
        int64_t *dst = idx + oy * ow + ox;
        _mm512_mask_storeu_epi64(dst, (__mmask8)keep, _mm512_add_epi64(base, klo));
        _mm512_mask_storeu_epi64(
            dst + 8, (__mmask8)(keep >> 8),
            _mm512_add_epi64(_mm512_add_epi64(base, _mm512_set1_epi64(16)), khi));
      }
    }
  }
}
#endif

static int max_pool_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                             mm_tensor **grad_in) {
  const mm_tensor *idx = node->saved[0];
  const mm_edge *e = &node->in[0];
  mm_tensor *go = mm_contiguous(ctx, grad_out);
  mm_tensor *gx = go ? mm_zeros(ctx, e->dtype, e->ndim, e->shape) : NULL;
  if (!gx) {
    mm_release(go);
    return -1;
  }
  pool_job j = {0};
  j.g.planes = e->ndim == 4 ? e->shape[0] * e->shape[1] : e->shape[0];
  j.g.h = e->shape[e->ndim - 2];
  j.g.w = e->shape[e->ndim - 1];
  j.g.oh = idx->shape[idx->ndim - 2];
  j.g.ow = idx->shape[idx->ndim - 1];
  j.in = mm_data(go);
  j.out = mm_data(gx);
  j.idx = mm_data(idx); /* saved contiguous by the forward */
  mm_parallel_for(j.g.planes, pool_grain(j.g.oh * j.g.ow),
                  e->dtype == MM_FLOAT32 ? max_bwd_f32 : max_bwd_f64, &j);
  mm_release(go);
  grad_in[0] = gx;
  return 0;
}

mm_tensor *mm_max_pool2d(mm_ctx *ctx, const mm_tensor *x, const mm_pool_opts *o,
                         mm_tensor **indices) {
  if (indices)
    *indices = NULL;
  pool_job j = {0};
  if (pool_setup(ctx, "max_pool2d", x, o, true, &j.g) != 0)
    return NULL;
  mm_tensor *xc = mm_contiguous(ctx, x);
  mm_tensor *out = xc ? new_like(ctx, x, x->dtype, j.g.oh, j.g.ow) : NULL;
  mm_tensor *idx = out ? new_like(ctx, x, MM_INT64, j.g.oh, j.g.ow) : NULL;
  if (!idx) {
    mm_release(xc);
    mm_release(out);
    return NULL;
  }
  j.dt = x->dtype;
  j.in = mm_data(xc);
  j.out = mm_data(out);
  j.idx = mm_data(idx);
  const pool_geom *g = &j.g;
  bool tiled = g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 &&
               g->dh == 1 && g->dw == 1 && 2 * g->oh <= g->h && 2 * g->ow <= g->w;
  mm_range_fn run = x->dtype == MM_FLOAT32 ? (tiled ? max2_fwd_f32 : max_fwd_f32)
                                           : (tiled ? max2_fwd_f64 : max_fwd_f64);
#ifdef MM_HAVE_SGEMM_AVX512
  if (tiled && x->dtype == MM_FLOAT32 && g->w < INT_MAX && mm_sgemm_fast_available())
    run = max2_fwd_avx512;
#endif
  mm_parallel_for(j.g.planes, pool_grain(j.g.oh * j.g.ow * j.g.kh * j.g.kw), run, &j);
  mm_release(xc);
  const mm_tensor *inputs[1] = {x};
  mm_node *node;
  if (mm_node_begin(ctx, "MaxPool2dBackward", max_pool_backward, 1, inputs, &node) != 0 ||
      (node && mm_node_save(ctx, node, idx) != 0)) {
    mm_node_release(node);
    mm_release(out);
    mm_release(idx);
    return NULL;
  }
  if (node)
    mm_node_attach(node, out);
  if (indices)
    *indices = idx;
  else
    mm_release(idx);
  return out;
}

/* ------------------------------------------------------------------ avg_pool2d */

/* One window of avg_pool2d as PyTorch's kernel computes it: [y0, y1) x [x0, x1) inside
 * the input, and the divisor. Returns false for a window entirely in the padding. */
static bool avg_window(const pool_geom *g, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1,
                       int64_t *x0, int64_t *x1, double *div) {
  int64_t a = oy * g->sh - g->ph, b = ox * g->sw - g->pw;
  int64_t c = a + g->kh, d = b + g->kw;
  if (c > g->h + g->ph)
    c = g->h + g->ph;
  if (d > g->w + g->pw)
    d = g->w + g->pw;
  int64_t pool_size = (c - a) * (d - b);
  if (a < 0)
    a = 0;
  if (b < 0)
    b = 0;
  if (c > g->h)
    c = g->h;
  if (d > g->w)
    d = g->w;
  *y0 = a;
  *y1 = c;
  *x0 = b;
  *x1 = d;
  if (a >= c || b >= d)
    return false;
  if (g->divisor_override)
    *div = (double)g->divisor_override;
  else if (g->count_include_pad)
    *div = (double)pool_size;
  else
    *div = (double)((c - a) * (d - b));
  return true;
}

#define DEFINE_AVG_POOL(SUFFIX, T)                                                                 \
  static void avg_fwd_##SUFFIX(int64_t p0, int64_t p1, void *arg) {                                \
    const pool_job *j = arg;                                                                       \
    const pool_geom *g = &j->g;                                                                    \
    for (int64_t p = p0; p < p1; p++) {                                                            \
      const T *in = (const T *)j->in + p * g->h * g->w;                                            \
      T *out = (T *)j->out + p * g->oh * g->ow;                                                    \
      for (int64_t oy = 0; oy < g->oh; oy++)                                                       \
        for (int64_t ox = 0; ox < g->ow; ox++) {                                                   \
          int64_t y0, y1, x0, x1;                                                                  \
          double div;                                                                              \
          if (!avg_window(g, oy, ox, &y0, &y1, &x0, &x1, &div)) {                                  \
            out[oy * g->ow + ox] = 0;                                                              \
            continue;                                                                              \
          }                                                                                        \
          T sum = 0;                                                                               \
          for (int64_t y = y0; y < y1; y++)                                                        \
            for (int64_t x = x0; x < x1; x++)                                                      \
              sum += in[y * g->w + x];                                                             \
          out[oy * g->ow + ox] = sum / (T)div;                                                     \
        }                                                                                          \
    }                                                                                              \
  }                                                                                                \
  static void avg_bwd_##SUFFIX(int64_t p0, int64_t p1, void *arg) {                                \
    const pool_job *j = arg;                                                                       \
    const pool_geom *g = &j->g;                                                                    \
    for (int64_t p = p0; p < p1; p++) {                                                            \
      const T *go = (const T *)j->in + p * g->oh * g->ow;                                          \
      T *gx = (T *)j->out + p * g->h * g->w;                                                       \
      for (int64_t oy = 0; oy < g->oh; oy++)                                                       \
        for (int64_t ox = 0; ox < g->ow; ox++) {                                                   \
          int64_t y0, y1, x0, x1;                                                                  \
          double div;                                                                              \
          if (!avg_window(g, oy, ox, &y0, &y1, &x0, &x1, &div))                                    \
            continue;                                                                              \
          T v = go[oy * g->ow + ox] / (T)div;                                                      \
          for (int64_t y = y0; y < y1; y++)                                                        \
            for (int64_t x = x0; x < x1; x++)                                                      \
              gx[y * g->w + x] += v;                                                               \
        }                                                                                          \
    }                                                                                              \
  }

DEFINE_AVG_POOL(f32, float)
DEFINE_AVG_POOL(f64, double)

static int avg_pool_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                             mm_tensor **grad_in) {
  const mm_edge *e = &node->in[0];
  pool_job j = {0};
  j.g.planes = e->ndim == 4 ? e->shape[0] * e->shape[1] : e->shape[0];
  j.g.h = e->shape[e->ndim - 2];
  j.g.w = e->shape[e->ndim - 1];
  j.g.oh = grad_out->shape[grad_out->ndim - 2];
  j.g.ow = grad_out->shape[grad_out->ndim - 1];
  j.g.kh = node->i[0];
  j.g.kw = node->i[1];
  j.g.sh = node->i[2];
  j.g.sw = node->i[3];
  j.g.ph = node->i[4];
  j.g.pw = node->i[5];
  j.g.count_include_pad = node->i[6] != 0;
  j.g.divisor_override = node->i[7];
  mm_tensor *go = mm_contiguous(ctx, grad_out);
  mm_tensor *gx = go ? mm_zeros(ctx, e->dtype, e->ndim, e->shape) : NULL;
  if (!gx) {
    mm_release(go);
    return -1;
  }
  j.in = mm_data(go);
  j.out = mm_data(gx);
  mm_parallel_for(j.g.planes, pool_grain(j.g.oh * j.g.ow * j.g.kh * j.g.kw),
                  e->dtype == MM_FLOAT32 ? avg_bwd_f32 : avg_bwd_f64, &j);
  mm_release(go);
  grad_in[0] = gx;
  return 0;
}

mm_tensor *mm_avg_pool2d(mm_ctx *ctx, const mm_tensor *x, const mm_pool_opts *o) {
  pool_job j = {0};
  if (pool_setup(ctx, "avg_pool2d", x, o, false, &j.g) != 0)
    return NULL;
  if (o->divisor_override < 0) {
    mm_fail(ctx, "moonml.avg_pool2d: divisor_override must be positive, got %lld",
            (long long)o->divisor_override);
    return NULL;
  }
  mm_tensor *xc = mm_contiguous(ctx, x);
  mm_tensor *out = xc ? new_like(ctx, x, x->dtype, j.g.oh, j.g.ow) : NULL;
  if (!out) {
    mm_release(xc);
    return NULL;
  }
  j.in = mm_data(xc);
  j.out = mm_data(out);
  mm_parallel_for(j.g.planes, pool_grain(j.g.oh * j.g.ow * j.g.kh * j.g.kw),
                  x->dtype == MM_FLOAT32 ? avg_fwd_f32 : avg_fwd_f64, &j);
  mm_release(xc);
  const mm_tensor *inputs[1] = {x};
  mm_node *node;
  if (mm_node_begin(ctx, "AvgPool2dBackward", avg_pool_backward, 1, inputs, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node) {
    int64_t p[8] = {j.g.kh,
                    j.g.kw,
                    j.g.sh,
                    j.g.sw,
                    j.g.ph,
                    j.g.pw,
                    j.g.count_include_pad,
                    j.g.divisor_override};
    memcpy(node->i, p, sizeof p);
    mm_node_attach(node, out);
  }
  return out;
}

/* ------------------------------------------------------------------ adaptive_avg_pool2d */

/* Window [*a, *b) of output position i of n over an input of size in. */
static void adaptive_range(int64_t i, int64_t n, int64_t in, int64_t *a, int64_t *b) {
  *a = i * in / n;
  *b = ((i + 1) * in + n - 1) / n;
}

#define DEFINE_ADAPTIVE(SUFFIX, T)                                                                 \
  static void adaptive_fwd_##SUFFIX(int64_t p0, int64_t p1, void *arg) {                           \
    const pool_job *j = arg;                                                                       \
    const pool_geom *g = &j->g;                                                                    \
    for (int64_t p = p0; p < p1; p++) {                                                            \
      const T *in = (const T *)j->in + p * g->h * g->w;                                            \
      T *out = (T *)j->out + p * g->oh * g->ow;                                                    \
      for (int64_t oy = 0; oy < g->oh; oy++) {                                                     \
        int64_t y0, y1;                                                                            \
        adaptive_range(oy, g->oh, g->h, &y0, &y1);                                                 \
        for (int64_t ox = 0; ox < g->ow; ox++) {                                                   \
          int64_t x0, x1;                                                                          \
          adaptive_range(ox, g->ow, g->w, &x0, &x1);                                               \
          T sum = 0;                                                                               \
          for (int64_t y = y0; y < y1; y++)                                                        \
            for (int64_t x = x0; x < x1; x++)                                                      \
              sum += in[y * g->w + x];                                                             \
          out[oy * g->ow + ox] = sum / (T)((y1 - y0) * (x1 - x0));                                 \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  static void adaptive_bwd_##SUFFIX(int64_t p0, int64_t p1, void *arg) {                           \
    const pool_job *j = arg;                                                                       \
    const pool_geom *g = &j->g;                                                                    \
    for (int64_t p = p0; p < p1; p++) {                                                            \
      const T *go = (const T *)j->in + p * g->oh * g->ow;                                          \
      T *gx = (T *)j->out + p * g->h * g->w;                                                       \
      for (int64_t oy = 0; oy < g->oh; oy++) {                                                     \
        int64_t y0, y1;                                                                            \
        adaptive_range(oy, g->oh, g->h, &y0, &y1);                                                 \
        for (int64_t ox = 0; ox < g->ow; ox++) {                                                   \
          int64_t x0, x1;                                                                          \
          adaptive_range(ox, g->ow, g->w, &x0, &x1);                                               \
          T v = go[oy * g->ow + ox] / (T)((y1 - y0) * (x1 - x0));                                  \
          for (int64_t y = y0; y < y1; y++)                                                        \
            for (int64_t x = x0; x < x1; x++)                                                      \
              gx[y * g->w + x] += v;                                                               \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }

DEFINE_ADAPTIVE(f32, float)
DEFINE_ADAPTIVE(f64, double)

static int adaptive_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *grad_out,
                             mm_tensor **grad_in) {
  const mm_edge *e = &node->in[0];
  pool_job j = {0};
  j.g.planes = e->ndim == 4 ? e->shape[0] * e->shape[1] : e->shape[0];
  j.g.h = e->shape[e->ndim - 2];
  j.g.w = e->shape[e->ndim - 1];
  j.g.oh = grad_out->shape[grad_out->ndim - 2];
  j.g.ow = grad_out->shape[grad_out->ndim - 1];
  mm_tensor *go = mm_contiguous(ctx, grad_out);
  mm_tensor *gx = go ? mm_zeros(ctx, e->dtype, e->ndim, e->shape) : NULL;
  if (!gx) {
    mm_release(go);
    return -1;
  }
  j.in = mm_data(go);
  j.out = mm_data(gx);
  mm_parallel_for(j.g.planes, pool_grain(j.g.h * j.g.w + j.g.oh * j.g.ow),
                  e->dtype == MM_FLOAT32 ? adaptive_bwd_f32 : adaptive_bwd_f64, &j);
  mm_release(go);
  grad_in[0] = gx;
  return 0;
}

mm_tensor *mm_adaptive_avg_pool2d(mm_ctx *ctx, const mm_tensor *x, const int64_t output_size[2]) {
  pool_job j = {0};
  if (check_input(ctx, "adaptive_avg_pool2d", x, &j.g) != 0)
    return NULL;
  if (output_size[0] < 0 || output_size[1] < 0) {
    mm_fail(ctx, "moonml.adaptive_avg_pool2d: output size must be non-negative, got %lld x %lld",
            (long long)output_size[0], (long long)output_size[1]);
    return NULL;
  }
  j.g.oh = output_size[0];
  j.g.ow = output_size[1];
  mm_tensor *xc = mm_contiguous(ctx, x);
  mm_tensor *out = xc ? new_like(ctx, x, x->dtype, j.g.oh, j.g.ow) : NULL;
  if (!out) {
    mm_release(xc);
    return NULL;
  }
  j.in = mm_data(xc);
  j.out = mm_data(out);
  mm_parallel_for(j.g.planes, pool_grain(j.g.h * j.g.w + j.g.oh * j.g.ow),
                  x->dtype == MM_FLOAT32 ? adaptive_fwd_f32 : adaptive_fwd_f64, &j);
  mm_release(xc);
  const mm_tensor *inputs[1] = {x};
  mm_node *node;
  if (mm_node_begin(ctx, "AdaptiveAvgPool2dBackward", adaptive_backward, 1, inputs, &node) != 0) {
    mm_release(out);
    return NULL;
  }
  if (node)
    mm_node_attach(node, out);
  return out;
}
