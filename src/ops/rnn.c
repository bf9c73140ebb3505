/* Recurrent layers: Elman RNN (tanh / relu), LSTM and GRU over whole sequences, several
 * layers, both directions, dropout between layers; PyTorch's weight layouts.
 *
 * Autograd: the engine's nodes have at most MM_NODE_MAX_INPUTS inputs and one output, so
 *  - the weights are first copied into one packed tensor (a tree of RNNWeightsBackward
 *    nodes splits its gradient back into the weights),
 *  - one node for the whole network (inputs x, h0, c0 and the packed weights) produces one
 *    buffer y = [out | h_n | c_n], and out, h_n and c_n are views of it, each with a node
 *    placing its gradient in y's. That node's backward runs backpropagation through time
 *    for every layer and direction in C (rnn_kernels.h). */
#include "rnn.h"

#include "vmath.h"

#include "../autograd/autograd.h"
#include "../core/internal.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ element helpers */

static inline double sel_f64(int c, double a, double b) { return c ? a : b; }

/* float64 is for gradient checks: the libm functions, correctly rounded or nearly */
static inline double sigm_f64(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double tanh_f64(double x) { return tanh(x); }

/* The fused steps are cloned for AVX2 and AVX-512 where the compiler and loader can pick a
 * clone at run time: their loops are vectorised, and wider vectors take the transcendental
 * functions' cost down. Results are the same on every clone (no FMA contraction in ISO C). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define RNN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RNN_CLONES
#endif

#define blas_gemm_f32 cblas_sgemm
#define blas_gemm_f64 cblas_dgemm

/* ------------------------------------------------------------------ sizes and layouts */

typedef struct rnn_dims {
  int64_t T, N, In, H, L, D; /* In: input features (I is complex.h's) */
  int64_t G;                 /* gates per hidden unit */
  int64_t GS; /* columns of the stored gates of one row: 4H for LSTM and GRU, H for RNN */
  mm_rnn_mode mode;
  bool batch_first, bias, drop;
  double p;
} rnn_dims;

int mm_rnn_gates(mm_rnn_mode mode) { return mode == MM_RNN_LSTM ? 4 : mode == MM_RNN_GRU ? 3 : 1; }

int mm_rnn_num_weights(const mm_rnn_opts *o) {
  return (int)(o->num_layers * (o->bidirectional ? 2 : 1) * (o->bias ? 4 : 2));
}

static int64_t layer_in(const rnn_dims *d, int64_t l) { return l == 0 ? d->In : d->D * d->H; }

/* Packed weights: per layer, per direction: w_ih, w_hh[, b_ih, b_hh], as PyTorch lists them. */
static int64_t w_block(const rnn_dims *d, int64_t l) {
  int64_t gh = d->G * d->H;
  return gh * (layer_in(d, l) + d->H) + (d->bias ? 2 * gh : 0);
}

static int64_t w_off(const rnn_dims *d, int64_t l, int64_t dir) {
  int64_t off = 0;
  for (int64_t k = 0; k < l; k++)
    off += d->D * w_block(d, k);
  return off + dir * w_block(d, l);
}

static int64_t w_total(const rnn_dims *d) { return w_off(d, d->L, 0); }

/* Saved workspace, per layer and direction: the hidden states hs (T + 1 slots of N x H: the
 * initial state at slot 0 going forward, at slot T going backward; the state after time t at
 * t + 1, resp. t), the cell states cs likewise (LSTM), the gates g (T x N x GS). Then, for
 * every layer but the last, its output as the next one's input (after dropout) and the
 * dropout mask. */
static int64_t ws_block(const rnn_dims *d) {
  int64_t slots = (d->T + 1) * d->N * d->H;
  return slots * (d->mode == MM_RNN_LSTM ? 2 : 1) + d->T * d->N * d->GS;
}

static int64_t ws_hs(const rnn_dims *d, int64_t l, int64_t dir) {
  return (l * d->D + dir) * ws_block(d);
}

static int64_t ws_cs(const rnn_dims *d, int64_t l, int64_t dir) {
  return ws_hs(d, l, dir) + (d->mode == MM_RNN_LSTM ? (d->T + 1) * d->N * d->H : 0);
}

static int64_t ws_g(const rnn_dims *d, int64_t l, int64_t dir) {
  return ws_hs(d, l, dir) + ws_block(d) - d->T * d->N * d->GS;
}

static int64_t ws_layer_out(const rnn_dims *d) {
  return d->T * d->N * d->D * d->H * (d->drop ? 2 : 1);
}

static int64_t ws_xn(const rnn_dims *d, int64_t l) {
  return d->L * d->D * ws_block(d) + l * ws_layer_out(d);
}

static int64_t ws_mask(const rnn_dims *d, int64_t l) {
  return ws_xn(d, l) + d->T * d->N * d->D * d->H;
}

static int64_t ws_total(const rnn_dims *d) { return ws_xn(d, d->L - 1); }

/* y = [out (T*N*D*H) | h_n (L*D*N*H) | c_n (L*D*N*H, LSTM)] */
static int64_t y_hn(const rnn_dims *d) { return d->T * d->N * d->D * d->H; }
static int64_t y_cn(const rnn_dims *d) { return y_hn(d) + d->L * d->D * d->N * d->H; }
static int64_t y_total(const rnn_dims *d) {
  return y_cn(d) + (d->mode == MM_RNN_LSTM ? d->L * d->D * d->N * d->H : 0);
}

#define RNN_T float
#define RNN_SUF f32
#include "rnn_kernels.h"
#undef RNN_T
#undef RNN_SUF

#define RNN_T double
#define RNN_SUF f64
#include "rnn_kernels.h"
#undef RNN_T
#undef RNN_SUF

/* ------------------------------------------------------------------ packed weights */

/* A new header over t's storage: contiguous, with the given shape, at element offset off. */
static mm_tensor *part_of(mm_ctx *ctx, const mm_tensor *t, int64_t off, int ndim,
                          const int64_t *shape) {
  mm_tensor *v = mm_tensor_view_of(ctx, t);
  if (!v)
    return NULL;
  v->ndim = ndim;
  memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
  mm_contiguous_strides(ndim, shape, v->stride);
  v->offset = t->offset + off;
  return v;
}

/* node->i[k]: number of elements of input k; input k's gradient is that run of g. */
static int pack_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  mm_tensor *gc = mm_contiguous(ctx, g);
  if (!gc)
    return -1;
  int64_t off = 0;
  int st = 0;
  for (int k = 0; k < node->n_inputs && st == 0; k++) {
    const mm_edge *e = &node->in[k];
    if (e->needs_grad && !(grad_in[k] = part_of(ctx, gc, off, e->ndim, e->shape)))
      st = -1;
    off += node->i[k];
  }
  mm_release(gc);
  return st;
}

/* Records packed = concatenation of the flattened ts as a tree of nodes of at most
 * MM_NODE_MAX_INPUTS inputs; an inner node's output is a header that only stands for its
 * run of the packed tensor (as mm_node_begin reads it), never data. */
static int pack_record(mm_ctx *ctx, const mm_tensor *const *ts, int n, mm_tensor *packed) {
  enum { FAN = MM_NODE_MAX_INPUTS };
  if (!mm_grad_enabled(ctx))
    return 0;
  bool any = false;
  for (int k = 0; k < n; k++)
    any = any || ts[k]->requires_grad;
  if (!any)
    return 0;
  const mm_tensor **cur = malloc((size_t)n * sizeof *cur);
  int64_t *len = malloc((size_t)n * sizeof *len);
  mm_tensor *level = NULL; /* the headers that cur points to, above the leaves */
  int nlevel = 0, status = 0;
  if (!cur || !len) {
    status = mm_fail(ctx, "moonml.rnn: out of memory recording the graph");
    n = 0;
  }
  for (int k = 0; k < n; k++) {
    cur[k] = ts[k];
    len[k] = mm_numel(ts[k]);
  }
  while (n > 0 && status == 0) {
    int groups = (n + FAN - 1) / FAN;
    mm_tensor *next = groups > 1 ? calloc((size_t)groups, sizeof *next) : NULL;
    if (groups > 1 && !next)
      status = mm_fail(ctx, "moonml.rnn: out of memory recording the graph");
    for (int g = 0; g < groups && status == 0; g++) {
      int first = g * FAN, count = n - first < FAN ? n - first : FAN;
      mm_node *node;
      status = mm_node_begin(ctx, "RNNWeightsBackward", pack_backward, count, cur + first, &node);
      if (status != 0)
        break;
      int64_t total = 0;
      for (int k = 0; k < count; k++) {
        total += len[first + k];
        if (node)
          node->i[k] = len[first + k];
      }
      if (groups == 1) {
        if (node)
          mm_node_attach(node, packed);
        break;
      }
      mm_tensor *h = &next[g];
      h->dtype = packed->dtype;
      h->ndim = 1;
      h->shape[0] = total;
      h->requires_grad = node != NULL;
      h->grad_fn = node;
      len[g] = total;
    }
    for (int k = 0; k < nlevel; k++) /* the level below: its nodes are held by this one's */
      mm_node_release(level[k].grad_fn);
    free(level);
    level = next;
    nlevel = next ? groups : 0;
    if (groups == 1 || status != 0)
      break;
    for (int g = 0; g < groups; g++)
      cur[g] = &level[g];
    n = groups;
  }
  for (int k = 0; k < nlevel; k++) /* only after a failure */
    mm_node_release(level[k].grad_fn);
  free(level);
  free(cur);
  free(len);
  return status;
}

/* ------------------------------------------------------------------ outputs of y */

/* node->i[0]: where the part starts in y; its gradient goes there in zeros of y's size. */
static int part_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  mm_tensor *z = mm_zeros(ctx, g->dtype, 1, node->in[0].shape);
  mm_tensor *v = z ? part_of(ctx, z, node->i[0], g->ndim, g->shape) : NULL;
  int st = v ? mm_copy_raw(ctx, v, g) : -1;
  mm_release(v);
  if (st != 0) {
    mm_release(z);
    return -1;
  }
  grad_in[0] = z;
  return 0;
}

static mm_tensor *y_part(mm_ctx *ctx, mm_tensor *y, int64_t off, int ndim, const int64_t *shape) {
  mm_tensor *v = part_of(ctx, y, off, ndim, shape);
  if (!v)
    return NULL;
  mm_view_track(v, y);
  const mm_tensor *in[1] = {y};
  mm_node *node;
  if (mm_node_begin(ctx, "RNNOutputBackward", part_backward, 1, in, &node) != 0) {
    mm_release(v);
    return NULL;
  }
  if (node) {
    node->i[0] = off;
    mm_node_attach(node, v);
  }
  return v;
}

/* ------------------------------------------------------------------ the network's node */

static const char *const node_names[MM_RNN_MODE_COUNT] = {"RNNTanhBackward", "RNNReluBackward",
                                                          "LSTMBackward", "GRUBackward"};

static void dims_to_node(const rnn_dims *d, mm_node *node) {
  node->i[0] = d->T;
  node->i[1] = d->N;
  node->i[2] = d->In;
  node->i[3] = d->H;
  node->i[4] = d->L;
  node->i[5] = d->D;
  node->i[6] = d->mode;
  node->i[7] = (d->batch_first ? 1 : 0) | (d->bias ? 2 : 0) | (d->drop ? 4 : 0);
  node->f[0] = d->p;
}

static void dims_init(rnn_dims *d, mm_rnn_mode mode, int64_t T, int64_t N, int64_t In, int64_t H,
                      int64_t L, int64_t D, int64_t flags, double p) {
  d->T = T;
  d->N = N;
  d->In = In;
  d->H = H;
  d->L = L;
  d->D = D;
  d->mode = mode;
  d->G = mm_rnn_gates(mode);
  d->GS = mode == MM_RNN_LSTM || mode == MM_RNN_GRU ? 4 * H : H;
  d->batch_first = flags & 1;
  d->bias = flags & 2;
  d->drop = flags & 4;
  d->p = p;
}

static mm_tensor *empty1(mm_ctx *ctx, mm_dtype dt, int64_t n) { return mm_empty(ctx, dt, 1, &n); }

static int rnn_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **grad_in) {
  rnn_dims d;
  dims_init(&d, (mm_rnn_mode)node->i[6], node->i[0], node->i[1], node->i[2], node->i[3], node->i[4],
            node->i[5], node->i[7], node->f[0]);
  const mm_tensor *x = node->saved[0], *w = node->saved[1], *ws = node->saved[2];
  mm_dtype dt = x->dtype;
  int64_t NH = d.N * d.H, LD = d.L * d.D;
  mm_tensor *gy = g->dtype == dt ? mm_contiguous(ctx, g) : mm_to_dtype(ctx, g, dt);
  mm_tensor *dx = NULL, *dh0 = NULL, *dc0 = NULL, *dw = NULL, *buf[2] = {NULL, NULL};
  mm_tensor *dg = empty1(ctx, dt, d.T * d.N * d.GS), *dhr = empty1(ctx, dt, NH);
  mm_tensor *dcr = empty1(ctx, dt, NH);
  bool ok = gy && dg && dhr && dcr;
  if (ok && node->in[0].needs_grad)
    ok = (dx = mm_empty(ctx, dt, 3, (int64_t[]){d.T, d.N, d.In})) != NULL;
  if (ok && node->in[1].needs_grad)
    ok = (dh0 = mm_empty(ctx, dt, 3, (int64_t[]){LD, d.N, d.H})) != NULL;
  if (ok && node->in[2].needs_grad)
    ok = (dc0 = mm_empty(ctx, dt, 3, (int64_t[]){LD, d.N, d.H})) != NULL;
  if (ok && node->in[3].needs_grad)
    ok = (dw = mm_zeros(ctx, dt, 1, &w->shape[0])) != NULL;
  for (int k = 0; k < 2 && ok && d.L > 1; k++)
    ok = (buf[k] = empty1(ctx, dt, d.T * d.N * d.D * d.H)) != NULL;
  if (ok) {
#define RNN_PTR(t, T) ((t) ? (T *)mm_data(t) : NULL)
    if (dt == MM_FLOAT32) {
      float *bp[2] = {RNN_PTR(buf[0], float), RNN_PTR(buf[1], float)};
      backward_f32(&d, mm_data(x), mm_data(w), mm_data(ws), mm_data(gy), RNN_PTR(dx, float),
                   RNN_PTR(dh0, float), RNN_PTR(dc0, float), RNN_PTR(dw, float), mm_data(dg),
                   mm_data(dhr), mm_data(dcr), bp);
    } else {
      double *bp[2] = {RNN_PTR(buf[0], double), RNN_PTR(buf[1], double)};
      backward_f64(&d, mm_data(x), mm_data(w), mm_data(ws), mm_data(gy), RNN_PTR(dx, double),
                   RNN_PTR(dh0, double), RNN_PTR(dc0, double), RNN_PTR(dw, double), mm_data(dg),
                   mm_data(dhr), mm_data(dcr), bp);
    }
#undef RNN_PTR
    if (dx && d.batch_first) { /* computed time-major: hand back (N, T, I) */
      mm_tensor *t = mm_transpose(ctx, dx, 0, 1);
      mm_release(dx);
      dx = t;
      ok = t != NULL;
    }
  }
  if (ok) {
    grad_in[0] = dx;
    grad_in[1] = dh0;
    grad_in[2] = dc0;
    grad_in[3] = dw;
  } else {
    mm_release(dx);
    mm_release(dh0);
    mm_release(dc0);
    mm_release(dw);
  }
  mm_release(buf[0]);
  mm_release(buf[1]);
  mm_release(dg);
  mm_release(dhr);
  mm_release(dcr);
  mm_release(gy);
  return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ checks */

static void weight_name(char *buf, size_t n, const rnn_dims *d, int64_t l, int64_t dir, int kind) {
  static const char *const kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
  snprintf(buf, n, "%s_l%lld%s", kinds[kind], (long long)l, dir ? "_reverse" : "");
}

static int check_weights(mm_ctx *ctx, const char *name, const rnn_dims *d, mm_dtype dt,
                         const mm_tensor *const *weights, int n_weights) {
  int per = d->bias ? 4 : 2;
  int64_t want = d->L * d->D * per;
  if (!weights || n_weights != want)
    return mm_fail(ctx, "moonml.%s: expected %lld weight tensors, got %d", name, (long long)want,
                   weights ? n_weights : 0);
  int64_t GH = d->G * d->H;
  for (int64_t l = 0; l < d->L; l++)
    for (int64_t dir = 0; dir < d->D; dir++)
      for (int kind = 0; kind < per; kind++) {
        const mm_tensor *t = weights[(l * d->D + dir) * per + kind];
        char wn[64], a[96], b[96];
        weight_name(wn, sizeof wn, d, l, dir, kind);
        if (!t)
          return mm_fail(ctx, "moonml.%s: %s is missing", name, wn);
        int64_t shape[2] = {GH, kind == 0 ? layer_in(d, l) : d->H};
        int ndim = kind < 2 ? 2 : 1;
        bool same = t->ndim == ndim;
        for (int k = 0; same && k < ndim; k++)
          same = t->shape[k] == shape[k];
        if (!same)
          return mm_fail(ctx, "moonml.%s: %s must have shape %s, got %s", name, wn,
                         mm_shape_str(a, sizeof a, ndim, shape),
                         mm_shape_str(b, sizeof b, t->ndim, t->shape));
        if (t->dtype != dt)
          return mm_fail(ctx, "moonml.%s: %s is %s but the input is %s", name, wn,
                         mm_dtype_name(t->dtype), mm_dtype_name(dt));
      }
  return 0;
}

static int check_state(mm_ctx *ctx, const char *name, const char *what, const mm_tensor *s,
                       const rnn_dims *d, mm_dtype dt) {
  if (!s)
    return 0;
  int64_t shape[3] = {d->L * d->D, d->N, d->H};
  bool same = s->ndim == 3;
  for (int k = 0; same && k < 3; k++)
    same = s->shape[k] == shape[k];
  char a[96], b[96];
  if (!same)
    return mm_fail(ctx, "moonml.%s: expected %s of shape %s, got %s", name, what,
                   mm_shape_str(a, sizeof a, 3, shape),
                   mm_shape_str(b, sizeof b, s->ndim, s->shape));
  if (s->dtype != dt)
    return mm_fail(ctx, "moonml.%s: %s is %s but the input is %s", name, what,
                   mm_dtype_name(s->dtype), mm_dtype_name(dt));
  return 0;
}

static int check_call(mm_ctx *ctx, const char *name, const mm_rnn_opts *o, const mm_tensor *x,
                      const mm_tensor *c0) {
  if ((unsigned)o->mode >= MM_RNN_MODE_COUNT)
    return mm_fail(ctx, "moonml.%s: unknown recurrent mode %d", name, (int)o->mode);
  if (o->hidden_size < 1)
    return mm_fail(ctx, "moonml.%s: hidden_size must be positive, got %lld", name,
                   (long long)o->hidden_size);
  if (o->num_layers < 1)
    return mm_fail(ctx, "moonml.%s: num_layers must be positive, got %lld", name,
                   (long long)o->num_layers);
  if (!(o->dropout >= 0 && o->dropout <= 1))
    return mm_fail(ctx, "moonml.%s: dropout must be a probability in [0, 1], got %g", name,
                   o->dropout);
  if (!x)
    return mm_fail(ctx, "moonml.%s: expected an input tensor, got NULL", name);
  if (x->ndim != 3)
    return mm_fail(ctx, "moonml.%s: expected a 3-D input (%s, features), got %d-D", name,
                   o->batch_first ? "batch, sequence" : "sequence, batch", x->ndim);
  if (x->dtype != MM_FLOAT32 && x->dtype != MM_FLOAT64)
    return mm_fail(ctx, "moonml.%s: expected a float32 or float64 input, got %s", name,
                   mm_dtype_name(x->dtype));
  if (x->shape[o->batch_first ? 1 : 0] < 1)
    return mm_fail(ctx, "moonml.%s: the sequence length must be at least 1, got 0", name);
  if (c0 && o->mode != MM_RNN_LSTM)
    return mm_fail(ctx, "moonml.%s: only an LSTM takes a cell state c0", name);
  return 0;
}

/* BLAS takes int sizes; every product here is bounded by these. */
static int check_blas_sizes(mm_ctx *ctx, const char *name, const rnn_dims *d) {
  int64_t in = d->In > d->D * d->H ? d->In : d->D * d->H;
  if (d->T * d->N > INT_MAX || 4 * d->H > INT_MAX || in > INT_MAX || d->T * d->D * d->H > INT_MAX)
    return mm_fail(ctx, "moonml.%s: sizes too large for one matrix product", name);
  return 0;
}

/* ------------------------------------------------------------------ forward */

/* packed <- the weights' values, in order */
static mm_tensor *pack_weights(mm_ctx *ctx, const rnn_dims *d, mm_dtype dt,
                               const mm_tensor *const *weights, int n) {
  mm_tensor *p = empty1(ctx, dt, w_total(d));
  int64_t off = 0;
  for (int k = 0; k < n && p; k++) {
    mm_tensor *v = part_of(ctx, p, off, weights[k]->ndim, weights[k]->shape);
    int st = v ? mm_copy_raw(ctx, v, weights[k]) : -1;
    mm_release(v);
    if (st != 0) {
      mm_release(p);
      return NULL;
    }
    off += mm_numel(weights[k]);
  }
  if (p && pack_record(ctx, weights, n, p) != 0) {
    mm_release(p);
    return NULL;
  }
  return p;
}

/* x as a contiguous (T, N, I) tensor (x itself when it already is one). */
static mm_tensor *time_major(mm_ctx *ctx, const mm_tensor *x, bool batch_first) {
  if (!batch_first && mm_is_contiguous(x)) {
    mm_retain((mm_tensor *)x);
    return (mm_tensor *)x;
  }
  int64_t shape[3] = {x->shape[0], x->shape[1], x->shape[2]};
  if (batch_first) {
    shape[0] = x->shape[1];
    shape[1] = x->shape[0];
  }
  mm_tensor *c = mm_empty(ctx, x->dtype, 3, shape);
  mm_tensor *src = c ? mm_tensor_view_of(ctx, x) : NULL;
  int st = src ? 0 : -1;
  if (src && batch_first) {
    src->shape[0] = x->shape[1];
    src->shape[1] = x->shape[0];
    src->stride[0] = x->stride[1];
    src->stride[1] = x->stride[0];
  }
  if (st == 0)
    st = mm_copy_raw(ctx, c, src);
  mm_release(src);
  if (st != 0) {
    mm_release(c);
    return NULL;
  }
  return c;
}

int mm_rnn(mm_ctx *ctx, const mm_rnn_opts *o, const mm_tensor *x, const mm_tensor *h0,
           const mm_tensor *c0, const mm_tensor *const *weights, int n_weights, mm_tensor **out,
           mm_tensor **h_n, mm_tensor **c_n) {
  *out = *h_n = NULL;
  if (c_n)
    *c_n = NULL;
  if (!o)
    return mm_fail(ctx, "moonml.rnn: expected options, got NULL");
  const char *name = o->name ? o->name : "rnn";
  if (check_call(ctx, name, o, x, c0) != 0)
    return -1;
  rnn_dims d;
  int64_t T = x->shape[o->batch_first ? 1 : 0], N = x->shape[o->batch_first ? 0 : 1];
  bool drop = o->train && o->dropout > 0 && o->num_layers > 1;
  dims_init(&d, o->mode, T, N, x->shape[2], o->hidden_size, o->num_layers, o->bidirectional ? 2 : 1,
            (o->batch_first ? 1 : 0) | (o->bias ? 2 : 0) | (drop ? 4 : 0), o->dropout);
  mm_dtype dt = x->dtype;
  if (weights && n_weights >= 1 && weights[0] && weights[0]->ndim == 2 &&
      weights[0]->shape[0] == d.G * d.H && weights[0]->shape[1] != d.In)
    return mm_fail(ctx, "moonml.%s: the input has %lld features, weight_ih_l0 expects %lld", name,
                   (long long)d.In, (long long)weights[0]->shape[1]);
  if (check_weights(ctx, name, &d, dt, weights, n_weights) != 0 ||
      check_state(ctx, name, "h0", h0, &d, dt) != 0 ||
      check_state(ctx, name, "c0", c0, &d, dt) != 0 || check_blas_sizes(ctx, name, &d) != 0)
    return -1;

  mm_tensor *w = pack_weights(ctx, &d, dt, weights, n_weights);
  mm_tensor *x0 = w ? time_major(ctx, x, d.batch_first) : NULL;
  mm_tensor *h0c = h0 && x0 ? mm_contiguous(ctx, h0) : NULL;
  mm_tensor *c0c = c0 && x0 ? mm_contiguous(ctx, c0) : NULL;
  mm_tensor *ws = x0 ? empty1(ctx, dt, ws_total(&d)) : NULL;
  mm_tensor *y = ws ? empty1(ctx, dt, y_total(&d)) : NULL;
  mm_tensor *scratch = y ? empty1(ctx, dt, 4 * d.H + 3 * d.N * d.H) : NULL;
  int st = scratch && (!h0 || h0c) && (!c0 || c0c) ? 0 : -1;
  if (st == 0) {
    if (dt == MM_FLOAT32) {
      float *s = mm_data(scratch);
      forward_f32(ctx, &d, mm_data(x0), h0c ? mm_data(h0c) : NULL, c0c ? mm_data(c0c) : NULL,
                  mm_data(w), mm_data(ws), mm_data(y), s, s + 4 * d.H);
    } else {
      double *s = mm_data(scratch);
      forward_f64(ctx, &d, mm_data(x0), h0c ? mm_data(h0c) : NULL, c0c ? mm_data(c0c) : NULL,
                  mm_data(w), mm_data(ws), mm_data(y), s, s + 4 * d.H);
    }
    const mm_tensor *inputs[4] = {x, h0, c0, w};
    mm_node *node = NULL;
    st = mm_node_begin(ctx, node_names[d.mode], rnn_backward, 4, inputs, &node);
    if (st == 0 && node) {
      dims_to_node(&d, node);
      st = mm_node_save(ctx, node, x0);
      if (st == 0)
        st = mm_node_save(ctx, node, w);
      if (st == 0)
        st = mm_node_save(ctx, node, ws);
      if (st == 0)
        mm_node_attach(node, y);
      else
        mm_node_release(node);
    }
  }
  mm_release(scratch);
  mm_release(c0c);
  mm_release(h0c);
  mm_release(ws);
  mm_release(x0);
  mm_release(w);
  if (st == 0) {
    int64_t LD = d.L * d.D;
    int64_t so[3] = {d.T, d.N, d.D * d.H}, sh[3] = {LD, d.N, d.H};
    if (d.batch_first) {
      so[0] = d.N;
      so[1] = d.T;
    }
    *out = y_part(ctx, y, 0, 3, so);
    *h_n = *out ? y_part(ctx, y, y_hn(&d), 3, sh) : NULL;
    if (c_n && d.mode == MM_RNN_LSTM && *h_n)
      *c_n = y_part(ctx, y, y_cn(&d), 3, sh);
    if (!*out || !*h_n || (c_n && d.mode == MM_RNN_LSTM && !*c_n))
      st = -1;
  }
  mm_release(y);
  if (st != 0) {
    mm_release(*out);
    mm_release(*h_n);
    *out = *h_n = NULL;
    if (c_n) {
      mm_release(*c_n);
      *c_n = NULL;
    }
  }
  return st;
}
