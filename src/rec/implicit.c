/* Implicit feedback: the interaction matrix in both orientations (float32 values, int32
 * ids), scoring one user against item factors, the top-n selection shared by every
 * implicit model, and the seeded synthetic interaction generator. */
#include "rec.h"
#include "rec_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ interaction matrix */

static size_t a8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t mm_rec_inter_bytes(int32_t n_rows, int32_t n_cols, int64_t nnz) {
  size_t e = nnz > 0 ? (size_t)nnz : 0;
  return a8(((size_t)n_rows + 1) * sizeof(int64_t)) + a8(((size_t)n_cols + 1) * sizeof(int64_t)) +
         2 * (a8(e * sizeof(int32_t)) + a8(e * sizeof(float)));
}

/* Points c's arrays at *p (8-aligned slices) and advances *p. */
static void carve(char **p, mm_rec_icsr *c, int32_t rows, int32_t cols, int64_t nnz) {
  void *vp = *p;
  c->n_rows = rows;
  c->n_cols = cols;
  c->ptr = vp;
  *p += a8(((size_t)rows + 1) * sizeof(int64_t));
  vp = *p;
  c->idx = vp;
  *p += a8((size_t)nnz * sizeof(int32_t));
  vp = *p;
  c->val = vp;
  *p += a8((size_t)nnz * sizeof(float));
}

/* dst (n_dst rows) <- the transpose of the first src->ptr[n] entries of src, walking src's
 * rows in order: every row of dst comes out sorted. */
static void transpose(const mm_rec_icsr *src, mm_rec_icsr *dst, int64_t *cur) {
  int32_t nd = dst->n_rows;
  memset(dst->ptr, 0, ((size_t)nd + 1) * sizeof(int64_t));
  int64_t nnz = src->ptr[src->n_rows];
  for (int64_t q = 0; q < nnz; q++)
    dst->ptr[src->idx[q] + 1]++;
  for (int32_t r = 0; r < nd; r++)
    dst->ptr[r + 1] += dst->ptr[r];
  memcpy(cur, dst->ptr, (size_t)nd * sizeof(int64_t));
  for (int32_t r = 0; r < src->n_rows; r++)
    for (int64_t q = src->ptr[r]; q < src->ptr[r + 1]; q++) {
      int64_t at = cur[src->idx[q]]++;
      dst->idx[at] = r;
      dst->val[at] = src->val[q];
    }
}

int64_t mm_rec_inter_build(mm_ctx *ctx, int32_t n_rows, int32_t n_cols, const mm_rec_icsr *keep,
                           const unsigned char *drop, int64_t n, const int32_t *rows,
                           const int32_t *cols, const double *vals, bool binary, void *mem,
                           mm_rec_icsr *by_row, mm_rec_icsr *by_col) {
  int64_t kept = 0;
  if (keep)
    for (int32_t r = 0; r < keep->n_rows; r++)
      if (!drop || !drop[r])
        kept += keep->ptr[r + 1] - keep->ptr[r];
  int64_t total = kept + n;
  char *p = mem;
  carve(&p, by_row, n_rows, n_cols, total);
  carve(&p, by_col, n_cols, n_rows, total);
  int32_t most = n_rows > n_cols ? n_rows : n_cols;
  int64_t *cur = malloc(((size_t)most + 1) * sizeof(int64_t));
  if (!cur)
    return mm_fail(ctx, "moonml.rec: out of memory building the interaction matrix");
  /* 1: by column, in input order */
  memset(by_col->ptr, 0, ((size_t)n_cols + 1) * sizeof(int64_t));
  if (keep)
    for (int32_t r = 0; r < keep->n_rows; r++)
      if (!drop || !drop[r])
        for (int64_t q = keep->ptr[r]; q < keep->ptr[r + 1]; q++)
          by_col->ptr[keep->idx[q] + 1]++;
  for (int64_t t = 0; t < n; t++)
    by_col->ptr[cols[t] + 1]++;
  for (int32_t c = 0; c < n_cols; c++)
    by_col->ptr[c + 1] += by_col->ptr[c];
  memcpy(cur, by_col->ptr, (size_t)n_cols * sizeof(int64_t));
  if (keep)
    for (int32_t r = 0; r < keep->n_rows; r++)
      if (!drop || !drop[r])
        for (int64_t q = keep->ptr[r]; q < keep->ptr[r + 1]; q++) {
          int64_t at = cur[keep->idx[q]]++;
          by_col->idx[at] = r;
          by_col->val[at] = binary ? 1.0f : keep->val[q];
        }
  for (int64_t t = 0; t < n; t++) {
    int64_t at = cur[cols[t]]++;
    by_col->idx[at] = rows[t];
    by_col->val[at] = binary ? 1.0f : (float)vals[t];
  }
  /* 2: by row, rows sorted by column */
  transpose(by_col, by_row, cur);
  /* 3: one entry per pair */
  int64_t w = 0, b = 0;
  for (int32_t r = 0; r < n_rows; r++) {
    int64_t e = by_row->ptr[r + 1];
    int64_t start = w;
    by_row->ptr[r] = start;
    for (int64_t q = b; q < e; q++) {
      if (w > start && by_row->idx[w - 1] == by_row->idx[q]) {
        if (!binary)
          by_row->val[w - 1] += by_row->val[q];
      } else {
        by_row->idx[w] = by_row->idx[q];
        by_row->val[w] = by_row->val[q];
        w++;
      }
    }
    b = e;
  }
  by_row->ptr[n_rows] = w;
  /* 4: by column again, from the merged rows (sorted) */
  transpose(by_row, by_col, cur);
  free(cur);
  return w;
}

bool mm_rec_icsr_has(const mm_rec_icsr *c, int32_t r, int32_t c_id) {
  int64_t lo = c->ptr[r], hi = c->ptr[r + 1];
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (c->idx[mid] < c_id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < c->ptr[r + 1] && c->idx[lo] == c_id;
}

/* ------------------------------------------------------------------ scoring */

/* Four items at a time: four independent chains of vector multiply-adds, so the loop
 * runs at the throughput of the multiply-add units rather than their latency. */
MM_REC_CLONES
static void factor_scores(const float *restrict x, const float *restrict Y, int32_t n, int k,
                          double *restrict out) {
  int32_t i = 0;
#if defined(MM_REC_VEC)
  const int kv = k / 8 * 8;
  for (; i + 4 <= n; i += 4) {
    const float *y0 = Y + (size_t)i * (size_t)k, *y1 = y0 + k, *y2 = y1 + k, *y3 = y2 + k;
    mm_v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int f = 0; f < kv; f += 8) {
      mm_v8f xv = mm_v8_load(x + f);
      a0 += xv * mm_v8_load(y0 + f);
      a1 += xv * mm_v8_load(y1 + f);
      a2 += xv * mm_v8_load(y2 + f);
      a3 += xv * mm_v8_load(y3 + f);
    }
    float s0 = mm_v8_sum(a0), s1 = mm_v8_sum(a1), s2 = mm_v8_sum(a2), s3 = mm_v8_sum(a3);
    for (int f = kv; f < k; f++) {
      s0 += x[f] * y0[f];
      s1 += x[f] * y1[f];
      s2 += x[f] * y2[f];
      s3 += x[f] * y3[f];
    }
    out[i] = s0;
    out[i + 1] = s1;
    out[i + 2] = s2;
    out[i + 3] = s3;
  }
#endif
  for (; i < n; i++)
    out[i] = (double)mm_rec_dot(x, Y + (size_t)i * (size_t)k, k);
}

void mm_rec_factor_scores(const float *x, const float *Y, int32_t n, int k, double *out) {
  factor_scores(x, Y, n, k, out);
}

typedef struct {
  double s;
  int32_t rank, idx;
} scored;

static int scored_cmp(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  if (a->s != b->s)
    return a->s > b->s ? -1 : 1;
  return (a->rank > b->rank) - (a->rank < b->rank);
}

/* Lists of up to this many are kept by insertion; longer ones are sorted whole. */
#define TOPN_INSERT 64

int64_t mm_rec_top_n(const double *scores, const int32_t *cand, int32_t len, int64_t n,
                     const int32_t *rank, int32_t *out) {
  if (n <= 0)
    return 0;
  if (n <= TOPN_INSERT) {
    /* out[0..cnt) sorted best first; once full, its last entry is the bar to beat */
    int64_t cnt = 0;
    double bar = -INFINITY;
    int32_t bar_rank = INT32_MAX;
    for (int32_t t = 0; t < len; t++) {
      int32_t i = cand ? cand[t] : t;
      double s = scores[i];
      if (!(s >= bar)) /* below the bar, or NaN */
        continue;
      int32_t ri = rank ? rank[i] : i;
      if (s == bar && ri > bar_rank)
        continue;
      int64_t pos = cnt < n ? cnt++ : n - 1;
      while (pos > 0) {
        int32_t o = out[pos - 1];
        double so = scores[o];
        if (s < so || (s == so && ri > (rank ? rank[o] : o)))
          break;
        out[pos] = o;
        pos--;
      }
      out[pos] = i;
      if (cnt == n) {
        bar = scores[out[n - 1]];
        bar_rank = rank ? rank[out[n - 1]] : out[n - 1];
      }
    }
    return cnt;
  }
  scored *all = malloc(sizeof(scored) * (size_t)(len > 0 ? len : 1));
  if (!all)
    return -1;
  int64_t m = 0;
  for (int32_t t = 0; t < len; t++) {
    int32_t i = cand ? cand[t] : t;
    if (scores[i] == scores[i])
      all[m++] = (scored){scores[i], rank ? rank[i] : i, i};
  }
  qsort(all, (size_t)m, sizeof(scored), scored_cmp);
  if (m > n)
    m = n;
  for (int64_t j = 0; j < m; j++)
    out[j] = all[j].idx;
  free(all);
  return m;
}

/* ------------------------------------------------------------------ synthetic data */

/* SplitMix64: one 64-bit state, fast, and good enough for sampling test data. */
static uint64_t sm_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double sm_unif(uint64_t *s) { return (double)(sm_next(s) >> 11) * 0x1.0p-53; }

static int64_t sm_below(uint64_t *s, int64_t n) {
  int64_t v = (int64_t)(sm_unif(s) * (double)n);
  return v < n ? v : n - 1;
}

static double sm_normal(uint64_t *s) {
  double x, y, r;
  do {
    x = 2 * sm_unif(s) - 1;
    y = 2 * sm_unif(s) - 1;
    r = x * x + y * y;
  } while (r >= 1 || r == 0);
  return x * sqrt(-2 * log(r) / r);
}

/* The first position in cum[lo..hi) whose value exceeds v (cum increasing). */
static int64_t search_cum(const double *cum, int64_t lo, int64_t hi, double v) {
  int64_t end = hi;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (cum[mid] <= v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < end ? lo : end - 1;
}

#define SYNTH_MAX_TOPICS 3
#define SYNTH_TRIES 64

int mm_rec_synthetic(mm_ctx *ctx, const mm_rec_synth_opts *o, mm_rec_ratings *r) {
  const char *op = "moonml.rec.synthetic";
  int32_t nu = o->users, ni = o->items;
  int kf = o->factors;
  if (nu < 1 || ni < 2)
    return mm_fail(ctx, "%s: needs at least 1 user and 2 items", op);
  if (kf < 1 || kf > ni)
    return mm_fail(ctx, "%s: factors must be in 1..%d (the item count)", op, (int)ni);
  int64_t cap = ni / 2; /* most interactions of one user */
  if (o->interactions < nu || o->interactions > (int64_t)nu * cap)
    return mm_fail(ctx, "%s: interactions must be in %lld..%lld for %d users and %d items", op,
                   (long long)nu, (long long)nu * cap, (int)nu, (int)ni);
  if (!(o->noise >= 0 && o->noise <= 1))
    return mm_fail(ctx, "%s: noise must be in [0, 1]", op);
  uint64_t s = o->seed ^ 0x5deece66dULL;
  int32_t *topic = malloc(sizeof(int32_t) * (size_t)ni);
  int32_t *order = malloc(sizeof(int32_t) * (size_t)ni); /* items grouped by topic */
  int64_t *tstart = calloc((size_t)kf + 1, sizeof(int64_t));
  double *pop = malloc(sizeof(double) * (size_t)ni);
  double *tcum = malloc(sizeof(double) * (size_t)ni);
  double *gcum = malloc(sizeof(double) * (size_t)ni);
  int32_t *count = malloc(sizeof(int32_t) * (size_t)nu);
  int32_t *stamp = malloc(sizeof(int32_t) * (size_t)ni);
  int status = -1;
  if (!topic || !order || !tstart || !pop || !tcum || !gcum || !count || !stamp) {
    mm_fail(ctx, "%s: out of memory", op);
    goto done;
  }
  /* items: a topic each and a Zipf popularity by a random rank */
  for (int32_t i = 0; i < ni; i++)
    order[i] = i;
  for (int32_t i = ni - 1; i > 0; i--) {
    int32_t j = (int32_t)sm_below(&s, (int64_t)i + 1), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (int32_t j = 0; j < ni; j++)
    pop[order[j]] = pow((double)j + 1, -0.9);
  for (int32_t i = 0; i < ni; i++) {
    topic[i] = (int32_t)sm_below(&s, kf);
    tstart[topic[i] + 1]++;
  }
  for (int t = 0; t < kf; t++)
    tstart[t + 1] += tstart[t];
  {
    int64_t *cur = malloc(sizeof(int64_t) * (size_t)kf);
    if (!cur) {
      mm_fail(ctx, "%s: out of memory", op);
      goto done;
    }
    memcpy(cur, tstart, sizeof(int64_t) * (size_t)kf);
    for (int32_t i = 0; i < ni; i++)
      order[cur[topic[i]]++] = i;
    free(cur);
  }
  for (int t = 0; t < kf; t++) {
    double acc = 0;
    for (int64_t j = tstart[t]; j < tstart[t + 1]; j++) {
      acc += pop[order[j]];
      tcum[j] = acc;
    }
  }
  double gacc = 0;
  for (int32_t i = 0; i < ni; i++) {
    gacc += pop[i];
    gcum[i] = gacc;
  }
  /* activity: log-normal shares of the total, at least 1 and at most cap each */
  {
    double *act = malloc(sizeof(double) * (size_t)nu), sum = 0;
    if (!act) {
      mm_fail(ctx, "%s: out of memory", op);
      goto done;
    }
    for (int32_t u = 0; u < nu; u++) {
      act[u] = exp(sm_normal(&s));
      sum += act[u];
    }
    int64_t got = 0;
    for (int32_t u = 0; u < nu; u++) {
      int64_t c = (int64_t)((double)o->interactions * act[u] / sum);
      c = c < 1 ? 1 : c > cap ? cap : c;
      count[u] = (int32_t)c;
      got += c;
    }
    free(act);
    while (got < o->interactions) {
      int32_t u = (int32_t)sm_below(&s, nu);
      if (count[u] < cap) {
        count[u]++;
        got++;
      }
    }
    while (got > o->interactions) {
      int32_t u = (int32_t)sm_below(&s, nu);
      if (count[u] > 1) {
        count[u]--;
        got--;
      }
    }
  }
  for (int32_t i = 0; i < ni; i++)
    stamp[i] = -1;
  int64_t at = 0;
  for (int32_t u = 0; u < nu; u++) {
    /* the user's topics and weights (Dirichlet(1) over one to three topics) */
    int nt = 1 + (sm_unif(&s) < 0.5) + (sm_unif(&s) < 0.25);
    int32_t ut[SYNTH_MAX_TOPICS];
    double uw[SYNTH_MAX_TOPICS], wsum = 0;
    for (int t = 0; t < nt; t++) {
      ut[t] = (int32_t)sm_below(&s, kf);
      uw[t] = -log(1 - sm_unif(&s));
      wsum += uw[t];
    }
    for (int t = 0; t < nt; t++)
      uw[t] /= wsum;
    for (int32_t c = 0; c < count[u]; c++) {
      int32_t item = -1;
      for (int tries = 0; tries < SYNTH_TRIES && item < 0; tries++) {
        int32_t cand;
        if (sm_unif(&s) < o->noise) {
          cand = (int32_t)search_cum(gcum, 0, ni, sm_unif(&s) * gacc);
        } else {
          double v = sm_unif(&s), acc = 0;
          int t = 0;
          for (; t < nt - 1; t++) {
            acc += uw[t];
            if (v < acc)
              break;
          }
          int32_t tp = ut[t];
          int64_t lo = tstart[tp], hi = tstart[tp + 1];
          if (lo == hi)
            continue;
          double total = tcum[hi - 1];
          cand = order[search_cum(tcum, lo, hi, sm_unif(&s) * total)];
        }
        if (stamp[cand] != u)
          item = cand;
      }
      if (item < 0) { /* the user's likely items are taken: any free item */
        int32_t start = (int32_t)sm_below(&s, ni);
        for (int32_t j = 0; j < ni && item < 0; j++) {
          int32_t cand = (int32_t)((start + (int64_t)j) % ni);
          if (stamp[cand] != u)
            item = cand;
        }
      }
      stamp[item] = u;
      double w = 0;
      for (int t = 0; t < nt; t++)
        if (ut[t] == topic[item])
          w += uw[t];
      double rating = floor(1 + 4 * w + 0.5 * sm_normal(&s) + 0.5);
      rating = rating < 1 ? 1 : rating > 5 ? 5 : rating;
      r->user[at] = u;
      r->item[at] = item;
      r->rating[at] = rating;
      if (r->ts)
        r->ts[at] = c + 1;
      at++;
    }
  }
  status = 0;
done:
  free(topic);
  free(order);
  free(tstart);
  free(pop);
  free(tcum);
  free(gcum);
  free(count);
  free(stamp);
  return status;
}
