/* Neighbourhood models with Surprise's definitions: the similarity measures
 * (surprise/similarities.pyx), the k-NN estimates (prediction_algorithms/knns.py),
 * SlopeOne and CoClustering. Nothing here holds an n x n array: a similarity row is
 * accumulated in a dense scratch of n entries per thread over the co-rated pairs and
 * kept as a sparse row. */
#include "../core/internal.h"
#include "rec.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void mm_rec_rows_free(mm_rec_rows *r) {
  if (r->len) {
    for (int32_t x = 0; x < r->n; x++) {
      free(r->idx[x]);
      free(r->val[x]);
    }
  }
  free(r->len);
  free(r->idx);
  free(r->val);
  memset(r, 0, sizeof *r);
}

size_t mm_rec_rows_bytes(const mm_rec_rows *r) {
  size_t b = (size_t)r->n * (sizeof(int32_t) + 2 * sizeof(void *));
  for (int32_t x = 0; x < r->n; x++)
    b += (size_t)r->len[x] * (sizeof(int32_t) + sizeof(double));
  return b;
}

static int rows_alloc(mm_rec_rows *r, int32_t n) {
  memset(r, 0, sizeof *r);
  r->n = n;
  size_t m = n > 0 ? (size_t)n : 1;
  r->len = calloc(m, sizeof(int32_t));
  r->idx = calloc(m, sizeof(int32_t *));
  r->val = calloc(m, sizeof(double *));
  if (!r->len || !r->idx || !r->val) {
    mm_rec_rows_free(r);
    return -1;
  }
  return 0;
}

/* Stores row x from the scratch arrays; -1 when out of memory. */
static int rows_set(mm_rec_rows *r, int32_t x, int64_t len, const int32_t *idx, const double *val) {
  r->len[x] = (int32_t)len;
  if (len == 0)
    return 0;
  r->idx[x] = malloc(sizeof(int32_t) * (size_t)len);
  r->val[x] = malloc(sizeof(double) * (size_t)len);
  if (!r->idx[x] || !r->val[x])
    return -1;
  memcpy(r->idx[x], idx, sizeof(int32_t) * (size_t)len);
  memcpy(r->val[x], val, sizeof(double) * (size_t)len);
  return 0;
}

/* The rows of by_y transposed (n_x rows): every row lists its ids in increasing order.
 * Walking two such rows visits their common ids in the same order, so the sums of a
 * pair come out bit for bit the same from either side and the similarities (and
 * SlopeOne's deviations) are exactly symmetric, as Surprise's mirrored matrices. */
static int csr_transpose(const mm_rec_csr *by_y, int32_t n_x, mm_rec_csr *out) {
  int64_t nnz = by_y->ptr[by_y->n_rows];
  out->n_rows = n_x;
  out->ptr = calloc((size_t)n_x + 1, sizeof(int64_t));
  out->idx = malloc(sizeof(int32_t) * (size_t)(nnz > 0 ? nnz : 1));
  out->val = malloc(sizeof(double) * (size_t)(nnz > 0 ? nnz : 1));
  if (!out->ptr || !out->idx || !out->val) {
    free(out->ptr);
    free(out->idx);
    free(out->val);
    return -1;
  }
  for (int64_t p = 0; p < nnz; p++)
    out->ptr[by_y->idx[p] + 1]++;
  for (int32_t x = 0; x < n_x; x++)
    out->ptr[x + 1] += out->ptr[x];
  for (int32_t y = 0; y < by_y->n_rows; y++)
    for (int64_t p = by_y->ptr[y]; p < by_y->ptr[y + 1]; p++) {
      int64_t at = out->ptr[by_y->idx[p]]++;
      out->idx[at] = y;
      out->val[at] = by_y->val[p];
    }
  for (int32_t x = n_x; x > 0; x--)
    out->ptr[x] = out->ptr[x - 1];
  out->ptr[0] = 0;
  return 0;
}

static void csr_free(mm_rec_csr *c) {
  free(c->ptr);
  free(c->idx);
  free(c->val);
}

/* ------------------------------------------------------------------ similarities */

/* Per-thread scratch: sums over the co-rated y of (x, x') for every x' touched. */
typedef struct {
  int32_t *freq, *touched, *out_idx;
  double *acc; /* 5 sums per x', interleaved: one cache line per neighbour */
  double *out_val;
} sim_scratch;

static void scratch_free(sim_scratch *s) {
  free(s->freq);
  free(s->touched);
  free(s->out_idx);
  free(s->acc);
  free(s->out_val);
}

static int scratch_alloc(sim_scratch *s, int32_t n) {
  size_t m = n > 0 ? (size_t)n : 1;
  s->freq = calloc(m, sizeof(int32_t));
  s->touched = malloc(m * sizeof(int32_t));
  s->out_idx = malloc(m * sizeof(int32_t));
  s->acc = calloc(m * 5, sizeof(double));
  s->out_val = malloc(m * sizeof(double));
  if (!s->freq || !s->touched || !s->out_idx || !s->acc || !s->out_val) {
    scratch_free(s);
    return -1;
  }
  return 0;
}

/* Surprise's formulas, from the per-pair sums. */
static double sim_value(const mm_rec_sim_opts *o, int32_t f, const double *a) {
  switch (o->kind) {
  case MM_REC_SIM_COSINE: {
    double den = sqrt(a[1] * a[2]);
    return den == 0 ? 0 : a[0] / den;
  }
  case MM_REC_SIM_MSD:
    return 1 / (a[0] / f + 1);
  case MM_REC_SIM_PEARSON: {
    double n = f;
    double num = n * a[0] - a[3] * a[4];
    double den = sqrt((n * a[1] - a[3] * a[3]) * (n * a[2] - a[4] * a[4]));
    return den == 0 ? 0 : num / den;
  }
  case MM_REC_SIM_PEARSON_BASELINE: {
    double den = sqrt(a[1] * a[2]);
    if (den == 0)
      return 0;
    return a[0] / den * ((f - 1.0) / (f - 1.0 + o->shrinkage));
  }
  }
  return 0;
}

/* Row x into s->out_idx / s->out_val; returns its length. */
static int64_t sim_row(const mm_rec_csr *bx, const mm_rec_csr *by, const mm_rec_sim_opts *o,
                       int32_t x, sim_scratch *s) {
  int32_t *freq = s->freq, *touched = s->touched;
  double *acc = s->acc;
  int64_t nt = 0;
  mm_rec_sim_kind kind = o->kind;
  for (int64_t p = bx->ptr[x]; p < bx->ptr[x + 1]; p++) {
    int32_t y = bx->idx[p];
    double ri = bx->val[p];
    double di = 0, part = 0;
    if (kind == MM_REC_SIM_PEARSON_BASELINE) {
      part = o->mu + o->by[y];
      di = ri - (part + o->bx[x]);
    }
    for (int64_t q = by->ptr[y]; q < by->ptr[y + 1]; q++) {
      int32_t xj = by->idx[q];
      double rj = by->val[q];
      double *a = acc + (size_t)xj * 5;
      if (freq[xj]++ == 0)
        touched[nt++] = xj;
      switch (kind) {
      case MM_REC_SIM_COSINE:
        a[0] += ri * rj;
        a[1] += ri * ri;
        a[2] += rj * rj;
        break;
      case MM_REC_SIM_MSD:
        a[0] += (ri - rj) * (ri - rj);
        break;
      case MM_REC_SIM_PEARSON:
        a[0] += ri * rj;
        a[1] += ri * ri;
        a[2] += rj * rj;
        a[3] += ri;
        a[4] += rj;
        break;
      case MM_REC_SIM_PEARSON_BASELINE: {
        double dj = rj - (part + o->bx[xj]);
        a[0] += di * dj;
        a[1] += di * di;
        a[2] += dj * dj;
        break;
      }
      }
    }
  }
  int min_sprt = o->min_support;
  if (kind == MM_REC_SIM_PEARSON_BASELINE && min_sprt < 2)
    min_sprt = 2;
  int64_t len = 0;
  for (int64_t t = 0; t < nt; t++) {
    int32_t xj = touched[t];
    double *a = acc + (size_t)xj * 5;
    double sim;
    if (xj == x)
      sim = 1;
    else if (freq[xj] < min_sprt)
      sim = 0;
    else
      sim = sim_value(o, freq[xj], a);
    freq[xj] = 0;
    a[0] = a[1] = a[2] = a[3] = a[4] = 0;
    if (sim > 0) {
      s->out_idx[len] = xj;
      s->out_val[len] = sim;
      len++;
    }
  }
  return len;
}

typedef struct {
  const mm_rec_csr *bx, *by;
  const mm_rec_sim_opts *o;
  mm_rec_rows *out;
  atomic_int_fast64_t next;
  atomic_int failed;
} sim_job;

/* Each worker pulls rows from a shared counter: row costs vary a lot (popular users). */
static void sim_worker(int64_t b, int64_t e, void *arg) {
  (void)b;
  (void)e;
  sim_job *J = arg;
  int32_t n = J->bx->n_rows;
  sim_scratch s;
  if (scratch_alloc(&s, n) != 0) {
    atomic_store(&J->failed, 1);
    return;
  }
  for (;;) {
    int64_t x = atomic_fetch_add(&J->next, 1);
    if (x >= n || atomic_load(&J->failed))
      break;
    int64_t len = sim_row(J->bx, J->by, J->o, (int32_t)x, &s);
    if (rows_set(J->out, (int32_t)x, len, s.out_idx, s.out_val) != 0)
      atomic_store(&J->failed, 1);
  }
  scratch_free(&s);
}

int mm_rec_sim_rows(mm_ctx *ctx, const mm_rec_csr *by_x, const mm_rec_csr *by_y,
                    const mm_rec_sim_opts *o, mm_rec_rows *out) {
  mm_rec_csr sorted;
  if (csr_transpose(by_y, by_x->n_rows, &sorted) != 0)
    return mm_fail(ctx, "moonml.rec: out of memory computing similarities");
  if (rows_alloc(out, by_x->n_rows) != 0) {
    csr_free(&sorted);
    return mm_fail(ctx, "moonml.rec: out of memory computing similarities");
  }
  sim_job J = {&sorted, by_y, o, out, 0, 0};
  int threads = mm_get_num_threads();
  /* small problems are not worth a thread start */
  int64_t work = by_x->ptr[by_x->n_rows];
  mm_parallel_for(work < 20000 ? 1 : threads, 1, sim_worker, &J);
  csr_free(&sorted);
  if (atomic_load(&J.failed)) {
    mm_rec_rows_free(out);
    return mm_fail(ctx, "moonml.rec: out of memory computing similarities");
  }
  return 0;
}

int64_t mm_rec_sim_row(mm_ctx *ctx, const mm_rec_csr *by_x, const mm_rec_csr *by_y,
                       const mm_rec_sim_opts *o, int32_t x, int32_t *idx, double *val) {
  sim_scratch s;
  mm_rec_csr sorted;
  if (csr_transpose(by_y, by_x->n_rows, &sorted) != 0)
    return mm_fail(ctx, "moonml.rec: out of memory computing similarities");
  if (scratch_alloc(&s, by_x->n_rows) != 0) {
    csr_free(&sorted);
    return mm_fail(ctx, "moonml.rec: out of memory computing similarities");
  }
  int64_t len = sim_row(&sorted, by_y, o, x, &s);
  csr_free(&sorted);
  memcpy(idx, s.out_idx, sizeof(int32_t) * (size_t)len);
  memcpy(val, s.out_val, sizeof(double) * (size_t)len);
  scratch_free(&s);
  return len;
}

void mm_rec_row_stats(const mm_rec_csr *c, double *mean, double *sd) {
  for (int32_t x = 0; x < c->n_rows; x++) {
    int64_t a = c->ptr[x], b = c->ptr[x + 1];
    if (a == b) {
      mean[x] = sd[x] = 0;
      continue;
    }
    double s = 0;
    for (int64_t p = a; p < b; p++)
      s += c->val[p];
    double m = s / (double)(b - a), v = 0;
    for (int64_t p = a; p < b; p++)
      v += (c->val[p] - m) * (c->val[p] - m);
    mean[x] = m;
    sd[x] = sqrt(v / (double)(b - a));
  }
}

/* ------------------------------------------------------------------ k-NN estimates */

typedef struct {
  double sim, r;
  int64_t pos;
  int32_t x;
} cand;

/* a ranks before b: larger similarity, then the earlier rating (heapq.nlargest). */
static inline bool cand_before(const cand *a, const cand *b) {
  return a->sim > b->sim || (a->sim == b->sim && a->pos < b->pos);
}

/* Min-heap on cand_before: the root is the worst of the kept candidates. */
static void heap_down(cand *h, int n, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, w = i;
    if (l < n && cand_before(&h[w], &h[l]))
      w = l;
    if (r < n && cand_before(&h[w], &h[r]))
      w = r;
    if (w == i)
      return;
    cand t = h[i];
    h[i] = h[w];
    h[w] = t;
    i = w;
  }
}

static void heap_up(cand *h, int i) {
  while (i > 0) {
    int p = (i - 1) / 2;
    if (!cand_before(&h[p], &h[i]))
      return;
    cand t = h[i];
    h[i] = h[p];
    h[p] = t;
    i = p;
  }
}

typedef struct {
  const mm_rec_knn *m;
  const int32_t *xs, *ys;
  const int64_t *order, *gstart; /* pairs sorted by x; group g is order[gstart[g]..) */
  int64_t n_groups;
  double *est;
  int32_t *actual_k;
  size_t heap_room;
  atomic_int_fast64_t next;
  atomic_int failed;
} knn_job;

/* Offers a candidate to the k-best heap of n entries; returns the new n. Candidates
 * come in the order of y's ratings, so an equal similarity never displaces. */
static inline int heap_offer(cand *heap, int n, int k, cand c) {
  if (n < k) {
    heap[n] = c;
    heap_up(heap, n);
    return n + 1;
  }
  if (k > 0 && cand_before(&c, &heap[0])) {
    heap[0] = c;
    heap_down(heap, n, 0);
  }
  return n;
}

static void knn_finish(const mm_rec_knn *m, cand *heap, int n, int32_t x, int32_t y,
                       double *est_out, int32_t *ak_out);

static void knn_one(const mm_rec_knn *m, const double *simd, cand *heap, int32_t x, int32_t y,
                    double *est_out, int32_t *ak_out) {
  const mm_rec_csr *by = m->by_y;
  int n = 0;
  for (int64_t p = by->ptr[y]; p < by->ptr[y + 1]; p++) {
    int32_t x2 = by->idx[p];
    double s = simd[x2];
    if (s > 0)
      n = heap_offer(heap, n, m->k, (cand){s, by->val[p], p, x2});
  }
  knn_finish(m, heap, n, x, y, est_out, ak_out);
}

/* The estimate from the kept neighbours, summed in Surprise's order: best first. */
static void knn_finish(const mm_rec_knn *m, cand *heap, int n, int32_t x, int32_t y,
                       double *est_out, int32_t *ak_out) {
  /* heap sort in place: the worst goes last, so the array ends best first */
  for (int end = n - 1; end > 0; end--) {
    cand t = heap[0];
    heap[0] = heap[end];
    heap[end] = t;
    heap_down(heap, end, 0);
  }
  double sum_sim = 0, sum_r = 0;
  for (int j = 0; j < n; j++) {
    const cand *c = &heap[j];
    sum_sim += c->sim;
    switch (m->kind) {
    case MM_REC_KNN_BASIC:
      sum_r += c->sim * c->r;
      break;
    case MM_REC_KNN_MEANS:
      sum_r += c->sim * (c->r - m->means[c->x]);
      break;
    case MM_REC_KNN_ZSCORE:
      sum_r += c->sim * (c->r - m->means[c->x]) / m->sigmas[c->x];
      break;
    case MM_REC_KNN_BASELINE:
      sum_r += c->sim * (c->r - (m->mu + m->bx[c->x] + m->by[y]));
      break;
    }
  }
  *ak_out = n;
  double est;
  switch (m->kind) {
  case MM_REC_KNN_BASIC:
    est = n < m->min_k ? NAN : sum_r / sum_sim;
    break;
  case MM_REC_KNN_MEANS:
    est = m->means[x] + (n < m->min_k || n == 0 ? 0 : sum_r / sum_sim);
    break;
  case MM_REC_KNN_ZSCORE:
    est = m->means[x] + (n < m->min_k || n == 0 ? 0 : sum_r / sum_sim * m->sigmas[x]);
    break;
  default:
    est = m->mu + m->bx[x] + m->by[y] + (n < m->min_k || n == 0 ? 0 : sum_r / sum_sim);
    break;
  }
  *est_out = est;
}

static void knn_worker(int64_t b, int64_t e, void *arg) {
  (void)b;
  (void)e;
  knn_job *J = arg;
  const mm_rec_knn *m = J->m;
  int32_t nx = m->by_x->n_rows;
  double *simd = calloc(nx > 0 ? (size_t)nx : 1, sizeof(double));
  cand *heap = malloc(sizeof(cand) * J->heap_room);
  if (!simd || !heap) {
    free(simd);
    free(heap);
    atomic_store(&J->failed, 1);
    return;
  }
  for (;;) {
    int64_t g = atomic_fetch_add(&J->next, 1);
    if (g >= J->n_groups)
      break;
    int64_t a = J->gstart[g], z = J->gstart[g + 1];
    int32_t x = J->xs[J->order[a]];
    const mm_rec_rows *S = m->sims;
    for (int32_t t = 0; t < S->len[x]; t++)
      simd[S->idx[x][t]] = S->val[x][t];
    for (int64_t p = a; p < z; p++) {
      int64_t j = J->order[p];
      knn_one(m, simd, heap, x, J->ys[j], &J->est[j], &J->actual_k[j]);
    }
    for (int32_t t = 0; t < S->len[x]; t++)
      simd[S->idx[x][t]] = 0;
  }
  free(simd);
  free(heap);
}

/* Room for the k best candidates: never more than the longest row of by_y holds (k may
 * be any large number). */
static size_t heap_room(const mm_rec_knn *m) {
  int64_t longest = 1;
  for (int32_t y = 0; y < m->by_y->n_rows; y++) {
    int64_t len = m->by_y->ptr[y + 1] - m->by_y->ptr[y];
    if (len > longest)
      longest = len;
  }
  return (size_t)(m->k < longest ? (m->k > 0 ? m->k : 1) : longest);
}

static bool has_row(const mm_rec_csr *c, int32_t r) {
  return r >= 0 && r < c->n_rows && c->ptr[r + 1] > c->ptr[r];
}

/* Groups the pairs whose ids are both known by x (counting sort). order and gstart are
 * malloc'ed; returns the group count or -1. Unknown pairs are left to the caller. */
static int64_t group_by(const int32_t *xs, const int32_t *ys, int64_t n, const mm_rec_csr *bx,
                        const mm_rec_csr *by, int64_t **order_out, int64_t **gstart_out) {
  int32_t nx = bx->n_rows;
  int64_t *cnt = calloc((size_t)nx + 1, sizeof(int64_t));
  int64_t *order = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  int64_t *gstart = malloc(sizeof(int64_t) * ((size_t)nx + 1));
  if (!cnt || !order || !gstart) {
    free(cnt);
    free(order);
    free(gstart);
    return -1;
  }
  for (int64_t j = 0; j < n; j++)
    if (has_row(bx, xs[j]) && has_row(by, ys[j]))
      cnt[xs[j] + 1]++;
  int64_t ng = 0;
  for (int32_t x = 0; x < nx; x++) {
    if (cnt[x + 1] > 0)
      ng++;
    cnt[x + 1] += cnt[x];
  }
  int64_t g = 0;
  for (int32_t x = 0; x < nx; x++)
    if (cnt[x + 1] > cnt[x])
      gstart[g++] = cnt[x];
  gstart[g] = cnt[nx];
  for (int64_t j = 0; j < n; j++)
    if (has_row(bx, xs[j]) && has_row(by, ys[j]))
      order[cnt[xs[j]]++] = j;
  free(cnt);
  *order_out = order;
  *gstart_out = gstart;
  return ng;
}

int mm_rec_knn_predict(mm_ctx *ctx, const mm_rec_knn *m, int64_t n, const int32_t *xs,
                       const int32_t *ys, double *est, int32_t *actual_k) {
  for (int64_t j = 0; j < n; j++) {
    actual_k[j] = -1;
    est[j] = NAN;
    if (m->kind == MM_REC_KNN_BASELINE) {
      bool kx = has_row(m->by_x, xs[j]), ky = has_row(m->by_y, ys[j]);
      est[j] = m->mu + (kx ? m->bx[xs[j]] : 0) + (ky ? m->by[ys[j]] : 0);
    }
  }
  int64_t *order, *gstart;
  int64_t ng = group_by(xs, ys, n, m->by_x, m->by_y, &order, &gstart);
  if (ng < 0)
    return mm_fail(ctx, "moonml.rec: out of memory in k-NN prediction");
  knn_job J = {m, xs, ys, order, gstart, ng, est, actual_k, heap_room(m), 0, 0};
  mm_parallel_for(n < 2000 ? 1 : mm_get_num_threads(), 1, knn_worker, &J);
  free(order);
  free(gstart);
  if (atomic_load(&J.failed))
    return mm_fail(ctx, "moonml.rec: out of memory in k-NN prediction");
  return 0;
}

/* Every x's estimate with one y: the rows of the x' who rated y, read from their side
 * (similarities are symmetric), give each x its candidates in the order of y's
 * ratings. Cost: the sum of those rows' lengths, not n_x full gathers. */
int mm_rec_knn_scores(mm_ctx *ctx, const mm_rec_knn *m, int32_t y, double *est, int32_t *actual_k) {
  int32_t nx = m->by_x->n_rows;
  const mm_rec_csr *by = m->by_y;
  const mm_rec_rows *S = m->sims;
  int64_t total = 0;
  for (int64_t p = by->ptr[y]; p < by->ptr[y + 1]; p++)
    total += S->len[by->idx[p]];
  int64_t *start = calloc((size_t)nx + 1, sizeof(int64_t));
  cand *buf = malloc(sizeof(cand) * (size_t)(total > 0 ? total : 1));
  cand *heap = malloc(sizeof(cand) * heap_room(m));
  if (!start || !buf || !heap) {
    free(start);
    free(buf);
    free(heap);
    return mm_fail(ctx, "moonml.rec: out of memory in k-NN scores");
  }
  for (int64_t p = by->ptr[y]; p < by->ptr[y + 1]; p++) {
    int32_t x2 = by->idx[p];
    for (int32_t t = 0; t < S->len[x2]; t++)
      start[S->idx[x2][t] + 1]++;
  }
  for (int32_t x = 0; x < nx; x++)
    start[x + 1] += start[x];
  for (int64_t p = by->ptr[y]; p < by->ptr[y + 1]; p++) { /* stable: y's order kept */
    int32_t x2 = by->idx[p];
    for (int32_t t = 0; t < S->len[x2]; t++)
      buf[start[S->idx[x2][t]]++] = (cand){S->val[x2][t], by->val[p], p, x2};
  }
  for (int32_t x = nx; x > 0; x--)
    start[x] = start[x - 1];
  start[0] = 0;
  for (int32_t x = 0; x < nx; x++) {
    actual_k[x] = -1;
    est[x] = NAN;
    if (m->by_x->ptr[x + 1] == m->by_x->ptr[x])
      continue;
    int n = 0;
    for (int64_t q = start[x]; q < start[x + 1]; q++)
      n = heap_offer(heap, n, m->k, buf[q]);
    knn_finish(m, heap, n, x, y, &est[x], &actual_k[x]);
  }
  free(start);
  free(buf);
  free(heap);
  return 0;
}

/* ------------------------------------------------------------------ SlopeOne */

typedef struct {
  const mm_rec_csr *bu, *bi;
  mm_rec_rows *out;
  atomic_int_fast64_t next;
  atomic_int failed;
} slope_job;

static void slope_worker(int64_t b, int64_t e, void *arg) {
  (void)b;
  (void)e;
  slope_job *J = arg;
  int32_t n = J->bi->n_rows;
  size_t m = n > 0 ? (size_t)n : 1;
  int32_t *freq = calloc(m, sizeof(int32_t)), *touched = malloc(m * sizeof(int32_t));
  double *dev = calloc(m, sizeof(double)), *val = malloc(m * sizeof(double));
  if (!freq || !touched || !dev || !val) {
    atomic_store(&J->failed, 1);
  } else {
    for (;;) {
      int64_t i = atomic_fetch_add(&J->next, 1);
      if (i >= n || atomic_load(&J->failed))
        break;
      int64_t nt = 0;
      for (int64_t p = J->bi->ptr[i]; p < J->bi->ptr[i + 1]; p++) {
        int32_t u = J->bi->idx[p];
        double r_ui = J->bi->val[p];
        for (int64_t q = J->bu->ptr[u]; q < J->bu->ptr[u + 1]; q++) {
          int32_t j = J->bu->idx[q];
          if (freq[j]++ == 0)
            touched[nt++] = j;
          dev[j] += r_ui - J->bu->val[q];
        }
      }
      for (int64_t t = 0; t < nt; t++) {
        int32_t j = touched[t];
        val[t] = j == i ? 0 : dev[j] / freq[j];
        freq[j] = 0;
        dev[j] = 0;
      }
      if (rows_set(J->out, (int32_t)i, nt, touched, val) != 0)
        atomic_store(&J->failed, 1);
    }
  }
  free(freq);
  free(touched);
  free(dev);
  free(val);
}

int mm_rec_slope_one_fit(mm_ctx *ctx, const mm_rec_csr *by_user, const mm_rec_csr *by_item,
                         mm_rec_rows *out) {
  mm_rec_csr sorted; /* users of each item in increasing order: dev(j, i) = -dev(i, j) */
  if (csr_transpose(by_user, by_item->n_rows, &sorted) != 0)
    return mm_fail(ctx, "moonml.rec.SlopeOne.fit: out of memory");
  if (rows_alloc(out, by_item->n_rows) != 0) {
    csr_free(&sorted);
    return mm_fail(ctx, "moonml.rec.SlopeOne.fit: out of memory");
  }
  slope_job J = {by_user, &sorted, out, 0, 0};
  int64_t work = by_item->ptr[by_item->n_rows];
  mm_parallel_for(work < 20000 ? 1 : mm_get_num_threads(), 1, slope_worker, &J);
  csr_free(&sorted);
  if (atomic_load(&J.failed)) {
    mm_rec_rows_free(out);
    return mm_fail(ctx, "moonml.rec.SlopeOne.fit: out of memory");
  }
  return 0;
}

typedef struct {
  const mm_rec_rows *dev;
  const mm_rec_csr *bu;
  const double *user_mean;
  const int32_t *us, *is;
  const int64_t *order, *gstart;
  int64_t n_groups;
  double *est;
  atomic_int_fast64_t next;
  atomic_int failed;
} slope_pjob;

static void slope_pworker(int64_t b, int64_t e, void *arg) {
  (void)b;
  (void)e;
  slope_pjob *J = arg;
  int32_t n = J->dev->n;
  double *dense = calloc(n > 0 ? (size_t)n : 1, sizeof(double));
  unsigned char *mark = calloc(n > 0 ? (size_t)n : 1, 1);
  if (!dense || !mark) {
    free(dense);
    free(mark);
    atomic_store(&J->failed, 1);
    return;
  }
  for (;;) {
    int64_t g = atomic_fetch_add(&J->next, 1);
    if (g >= J->n_groups)
      break;
    int64_t a = J->gstart[g], z = J->gstart[g + 1];
    int32_t i = J->is[J->order[a]];
    const int32_t *ri = J->dev->idx[i];
    const double *rv = J->dev->val[i];
    for (int32_t t = 0; t < J->dev->len[i]; t++) {
      dense[ri[t]] = rv[t];
      mark[ri[t]] = 1;
    }
    for (int64_t p = a; p < z; p++) {
      int64_t j = J->order[p];
      int32_t u = J->us[j];
      double s = 0;
      int64_t cnt = 0;
      for (int64_t q = J->bu->ptr[u]; q < J->bu->ptr[u + 1]; q++) {
        int32_t jj = J->bu->idx[q];
        if (mark[jj]) {
          s += dense[jj];
          cnt++;
        }
      }
      J->est[j] = J->user_mean[u] + (cnt ? s / (double)cnt : 0);
    }
    for (int32_t t = 0; t < J->dev->len[i]; t++) {
      dense[ri[t]] = 0;
      mark[ri[t]] = 0;
    }
  }
  free(dense);
  free(mark);
}

int mm_rec_slope_one_predict(mm_ctx *ctx, const mm_rec_rows *dev, const mm_rec_csr *by_user,
                             const mm_rec_csr *by_item, const double *user_mean, int64_t n,
                             const int32_t *us, const int32_t *is, double *est) {
  for (int64_t j = 0; j < n; j++)
    est[j] = NAN;
  int64_t *order, *gstart;
  int64_t ng = group_by(is, us, n, by_item, by_user, &order, &gstart);
  if (ng < 0)
    return mm_fail(ctx, "moonml.rec.SlopeOne: out of memory");
  slope_pjob J = {dev, by_user, user_mean, us, is, order, gstart, ng, est, 0, 0};
  mm_parallel_for(n < 2000 ? 1 : mm_get_num_threads(), 1, slope_pworker, &J);
  free(order);
  free(gstart);
  if (atomic_load(&J.failed))
    return mm_fail(ctx, "moonml.rec.SlopeOne: out of memory");
  return 0;
}

int mm_rec_slope_one_scores(mm_ctx *ctx, const mm_rec_rows *dev, const mm_rec_csr *by_user,
                            const mm_rec_csr *by_item, const double *user_mean, int32_t u,
                            double *est) {
  int32_t ni = dev->n;
  double *sum = calloc(ni > 0 ? (size_t)ni : 1, sizeof(double));
  int64_t *cnt = calloc(ni > 0 ? (size_t)ni : 1, sizeof(int64_t));
  if (!sum || !cnt) {
    free(sum);
    free(cnt);
    return mm_fail(ctx, "moonml.rec.SlopeOne: out of memory");
  }
  /* dev(i, j) for the user's items j, in the user's order, read from row j */
  for (int64_t q = by_user->ptr[u]; q < by_user->ptr[u + 1]; q++) {
    int32_t j = by_user->idx[q];
    for (int32_t t = 0; t < dev->len[j]; t++) {
      int32_t i = dev->idx[j][t];
      sum[i] -= dev->val[j][t];
      cnt[i]++;
    }
  }
  for (int32_t i = 0; i < ni; i++) {
    if (by_item->ptr[i + 1] == by_item->ptr[i])
      est[i] = NAN;
    else
      est[i] = user_mean[u] + (cnt[i] ? sum[i] / (double)cnt[i] : 0);
  }
  free(sum);
  free(cnt);
  return 0;
}

/* ------------------------------------------------------------------ CoClustering */

/* Cluster averages from the current assignment (Surprise's compute_averages): empty
 * clusters get the global mean. */
static void cocluster_averages(const mm_rec_csr *bu, double mu, mm_rec_cocluster *m, int64_t *cnt,
                               double *sum) {
  int nu = m->n_cltr_u, ni = m->n_cltr_i;
  int64_t *cu = cnt, *ci = cnt + nu, *cc = cnt + nu + ni;
  double *su = sum, *si = sum + nu, *sc = sum + nu + ni;
  memset(cnt, 0, sizeof(int64_t) * (size_t)(nu + ni + nu * ni));
  memset(sum, 0, sizeof(double) * (size_t)(nu + ni + nu * ni));
  for (int32_t u = 0; u < bu->n_rows; u++) {
    int uc = m->cltr_u[u];
    for (int64_t p = bu->ptr[u]; p < bu->ptr[u + 1]; p++) {
      int ic = m->cltr_i[bu->idx[p]];
      double r = bu->val[p];
      cu[uc]++;
      ci[ic]++;
      cc[uc * ni + ic]++;
      su[uc] += r;
      si[ic] += r;
      sc[uc * ni + ic] += r;
    }
  }
  for (int c = 0; c < nu; c++)
    m->avg_u[c] = cu[c] ? su[c] / (double)cu[c] : mu;
  for (int c = 0; c < ni; c++)
    m->avg_i[c] = ci[c] ? si[c] / (double)ci[c] : mu;
  for (int c = 0; c < nu * ni; c++)
    m->avg_co[c] = cc[c] ? sc[c] / (double)cc[c] : mu;
}

int mm_rec_coclustering_fit(mm_ctx *ctx, const mm_rec_csr *by_user, const mm_rec_csr *by_item,
                            double mu, int n_epochs, mm_rec_cocluster *m) {
  int nu = m->n_cltr_u, ni = m->n_cltr_i;
  size_t cells = (size_t)(nu + ni + nu * ni);
  int64_t *cnt = malloc(sizeof(int64_t) * cells);
  double *sum = malloc(sizeof(double) * cells);
  double *err = malloc(sizeof(double) * (size_t)(nu > ni ? nu : ni));
  if (!cnt || !sum || !err) {
    free(cnt);
    free(sum);
    free(err);
    return mm_fail(ctx, "moonml.rec.CoClustering.fit: out of memory");
  }
  double *sd_u = malloc(sizeof(double) * (size_t)(by_user->n_rows > 0 ? by_user->n_rows : 1));
  double *sd_i = malloc(sizeof(double) * (size_t)(by_item->n_rows > 0 ? by_item->n_rows : 1));
  if (!sd_u || !sd_i) {
    free(cnt);
    free(sum);
    free(err);
    free(sd_u);
    free(sd_i);
    return mm_fail(ctx, "moonml.rec.CoClustering.fit: out of memory");
  }
  mm_rec_row_stats(by_user, m->user_mean, sd_u);
  mm_rec_row_stats(by_item, m->item_mean, sd_i);
  free(sd_u);
  free(sd_i);
  for (int epoch = 0; epoch < n_epochs; epoch++) {
    cocluster_averages(by_user, mu, m, cnt, sum);
    /* each user to the cluster with the least squared error over its ratings */
    for (int32_t u = 0; u < by_user->n_rows; u++) {
      if (by_user->ptr[u + 1] == by_user->ptr[u])
        continue;
      for (int uc = 0; uc < nu; uc++) {
        double e = 0;
        for (int64_t p = by_user->ptr[u]; p < by_user->ptr[u + 1]; p++) {
          int32_t i = by_user->idx[p];
          int ic = m->cltr_i[i];
          double est = m->avg_co[uc * ni + ic] + m->user_mean[u] - m->avg_u[uc] + m->item_mean[i] -
                       m->avg_i[ic];
          e += (by_user->val[p] - est) * (by_user->val[p] - est);
        }
        err[uc] = e;
      }
      int best = 0;
      for (int uc = 1; uc < nu; uc++)
        if (err[uc] < err[best])
          best = uc;
      m->cltr_u[u] = best;
    }
    /* then each item, with the new user clusters and the same averages */
    for (int32_t i = 0; i < by_item->n_rows; i++) {
      if (by_item->ptr[i + 1] == by_item->ptr[i])
        continue;
      for (int ic = 0; ic < ni; ic++) {
        double e = 0;
        for (int64_t p = by_item->ptr[i]; p < by_item->ptr[i + 1]; p++) {
          int32_t u = by_item->idx[p];
          int uc = m->cltr_u[u];
          double est = m->avg_co[uc * ni + ic] + m->user_mean[u] - m->avg_u[uc] + m->item_mean[i] -
                       m->avg_i[ic];
          e += (by_item->val[p] - est) * (by_item->val[p] - est);
        }
        err[ic] = e;
      }
      int best = 0;
      for (int ic = 1; ic < ni; ic++)
        if (err[ic] < err[best])
          best = ic;
      m->cltr_i[i] = best;
    }
  }
  cocluster_averages(by_user, mu, m, cnt, sum);
  free(cnt);
  free(sum);
  free(err);
  return 0;
}

/* ------------------------------------------------------------------ factor cosines */

void mm_rec_cosine_rows(const float *m, int32_t n, int32_t k, int32_t row, double *out) {
  const float *a = m + (size_t)row * (size_t)k;
  double na = 0;
  for (int32_t f = 0; f < k; f++)
    na += (double)a[f] * a[f];
  na = sqrt(na);
  for (int32_t j = 0; j < n; j++) {
    const float *b = m + (size_t)j * (size_t)k;
    double d = 0, nb = 0;
    for (int32_t f = 0; f < k; f++) {
      d += (double)a[f] * b[f];
      nb += (double)b[f] * b[f];
    }
    nb = sqrt(nb);
    out[j] = na == 0 || nb == 0 ? 0 : d / (na * nb);
  }
}
