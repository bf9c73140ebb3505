/* implicit's item-item nearest-neighbour models (implicit/nearest_neighbours.py,
 * _nearest_neighbours.pyx): weight the user x item matrix (cosine, TF-IDF, BM25 or raw
 * values), then keep for every item the K items of largest sum_u w_ui w_uj, found by
 * accumulating over the item's users' rows into a dense scratch per thread. */
#include "../core/internal.h"
#include "rec.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static double weight(mm_rec_iknn_kind kind, double x, double idf_u, double f_i, double K1) {
  switch (kind) {
  case MM_REC_IKNN_COSINE:
    return x * f_i;
  case MM_REC_IKNN_TFIDF:
    return sqrt(x) * idf_u * f_i;
  case MM_REC_IKNN_BM25:
    return x * (K1 + 1.0) / (K1 * f_i + x) * idf_u;
  default:
    return x;
  }
}

void mm_rec_iknn_weights(const mm_rec_icsr *by_user, const mm_rec_icsr *by_item,
                         mm_rec_iknn_kind kind, double K1, double B, float *w_user, double *idf,
                         double *item_f) {
  int32_t nu = by_user->n_rows, ni = by_item->n_rows;
  for (int32_t u = 0; u < nu; u++)
    idf[u] = log((double)ni) - log1p((double)(by_user->ptr[u + 1] - by_user->ptr[u]));
  double avg_len = 0;
  for (int32_t i = 0; i < ni; i++) {
    double acc = 0;
    for (int64_t q = by_item->ptr[i]; q < by_item->ptr[i + 1]; q++) {
      double x = by_item->val[q];
      if (kind == MM_REC_IKNN_COSINE) {
        acc += x * x;
      } else if (kind == MM_REC_IKNN_TFIDF) {
        double t = sqrt(x) * idf[by_item->idx[q]];
        acc += t * t;
      } else {
        acc += x;
      }
    }
    item_f[i] = acc;
    avg_len += acc;
  }
  avg_len = ni > 0 ? avg_len / ni : 0;
  for (int32_t i = 0; i < ni; i++) {
    if (kind == MM_REC_IKNN_BM25)
      item_f[i] = (1.0 - B) + B * item_f[i] / avg_len;
    else
      item_f[i] = item_f[i] > 0 ? 1.0 / sqrt(item_f[i]) : 0;
  }
  for (int32_t u = 0; u < nu; u++)
    for (int64_t q = by_user->ptr[u]; q < by_user->ptr[u + 1]; q++)
      w_user[q] = (float)weight(kind, by_user->val[q], idf[u], item_f[by_user->idx[q]], K1);
}

/* ------------------------------------------------------------------ top K per item */

typedef struct {
  double s;
  int32_t idx;
} entry;

/* implicit's TopK heap order: the root is the smallest (score, index) pair. */
static bool entry_less(entry a, entry b) { return a.s < b.s || (a.s == b.s && a.idx < b.idx); }

static void sift_down(entry *h, int n, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && entry_less(h[l], h[m]))
      m = l;
    if (r < n && entry_less(h[r], h[m]))
      m = r;
    if (m == i)
      return;
    entry t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

static void sift_up(entry *h, int i) {
  while (i > 0) {
    int p = (i - 1) / 2;
    if (!entry_less(h[i], h[p]))
      return;
    entry t = h[i];
    h[i] = h[p];
    h[p] = t;
    i = p;
  }
}

static int entry_best_first(const void *pa, const void *pb) {
  const entry *a = pa, *b = pb;
  if (a->s != b->s)
    return a->s > b->s ? -1 : 1;
  return (a->idx > b->idx) - (a->idx < b->idx);
}

typedef struct {
  const mm_rec_icsr *bu, *bi;
  const float *wu;            /* the weights of bu's entries */
  const double *idf, *item_f; /* to weigh bi's entries on the way */
  mm_rec_iknn_kind kind;
  double K1;
  int K;
  int32_t *out_idx; /* n_items x K, fixed stride */
  double *out_val;
  int32_t *out_len;
  atomic_int_fast64_t next;
  atomic_int failed;
} iknn_job;

#define IKNN_CHUNK 8

static void iknn_worker(int64_t b, int64_t e, void *arg) {
  (void)b;
  (void)e;
  iknn_job *J = arg;
  int32_t ni = J->bi->n_rows;
  size_t m = ni > 0 ? (size_t)ni : 1;
  double *sums = calloc(m, sizeof(double));
  int32_t *touched = malloc(m * sizeof(int32_t));
  unsigned char *seen = calloc(m, 1);
  entry *heap = malloc(sizeof(entry) * (size_t)(J->K > 0 ? J->K : 1));
  if (!sums || !touched || !seen || !heap) {
    atomic_store(&J->failed, 1);
    free(sums);
    free(touched);
    free(seen);
    free(heap);
    return;
  }
  const mm_rec_icsr *bu = J->bu, *bi = J->bi;
  for (;;) {
    int64_t start = atomic_fetch_add(&J->next, IKNN_CHUNK);
    if (start >= ni)
      break;
    int64_t end = start + IKNN_CHUNK < ni ? start + IKNN_CHUNK : ni;
    for (int64_t i = start; i < end; i++) {
      int32_t nt = 0;
      for (int64_t q = bi->ptr[i]; q < bi->ptr[i + 1]; q++) {
        int32_t u = bi->idx[q];
        /* as a float, like the stored weights: the same product from either side */
        double w1 = (float)weight(J->kind, bi->val[q], J->idf[u], J->item_f[i], J->K1);
        for (int64_t p = bu->ptr[u]; p < bu->ptr[u + 1]; p++) {
          int32_t j = bu->idx[p];
          sums[j] += (double)J->wu[p] * w1;
          if (!seen[j]) {
            seen[j] = 1;
            touched[nt++] = j;
          }
        }
      }
      /* implicit visits its accumulator's list newest first and keeps a pair when the heap
       * has room or its score beats the smallest kept one */
      int n = 0;
      for (int32_t t = nt - 1; t >= 0; t--) {
        int32_t j = touched[t];
        entry c = {sums[j], j};
        sums[j] = 0;
        seen[j] = 0;
        if (n < J->K) {
          heap[n] = c;
          sift_up(heap, n);
          n++;
        } else if (J->K > 0 && c.s > heap[0].s) {
          heap[0] = c;
          sift_down(heap, n, 0);
        }
      }
      qsort(heap, (size_t)n, sizeof(entry), entry_best_first);
      for (int t = 0; t < n; t++) {
        J->out_idx[(size_t)i * (size_t)J->K + (size_t)t] = heap[t].idx;
        J->out_val[(size_t)i * (size_t)J->K + (size_t)t] = heap[t].s;
      }
      J->out_len[i] = n;
    }
  }
  free(sums);
  free(touched);
  free(seen);
  free(heap);
}

int mm_rec_iknn_fit(mm_ctx *ctx, const mm_rec_icsr *by_user, const mm_rec_icsr *by_item,
                    mm_rec_iknn_kind kind, double K1, const float *w_user, const double *idf,
                    const double *item_f, int K, int64_t *ptr, int32_t *idx, double *val) {
  int32_t ni = by_item->n_rows;
  int32_t *len = malloc(sizeof(int32_t) * (size_t)(ni > 0 ? ni : 1));
  if (!len)
    return mm_fail(ctx, "moonml.rec.ItemKNN.fit: out of memory");
  iknn_job J = {by_user, by_item, w_user, idf, item_f, kind, K1, K, idx, val, len, 0, 0};
  int64_t work = by_item->ptr[ni];
  mm_parallel_for(work < 20000 ? 1 : mm_get_num_threads(), 1, iknn_worker, &J);
  if (atomic_load(&J.failed)) {
    free(len);
    return mm_fail(ctx, "moonml.rec.ItemKNN.fit: out of memory");
  }
  /* compact the fixed-stride rows into CSR order (each row moves down or stays) */
  int64_t at = 0;
  for (int32_t i = 0; i < ni; i++) {
    ptr[i] = at;
    for (int t = 0; t < len[i]; t++) {
      idx[at] = idx[(size_t)i * (size_t)K + (size_t)t];
      val[at] = val[(size_t)i * (size_t)K + (size_t)t];
      at++;
    }
  }
  ptr[ni] = at;
  free(len);
  return 0;
}

int32_t mm_rec_iknn_scores(const int64_t *ptr, const int32_t *idx, const double *val, int64_t n,
                           const int32_t *items, const float *values, double *scores,
                           int32_t *touched) {
  int32_t nt = 0;
  for (int64_t t = 0; t < n; t++) {
    int32_t i = items[t];
    double x = values[t];
    for (int64_t q = ptr[i]; q < ptr[i + 1]; q++) {
      int32_t j = idx[q];
      double s = scores[j];
      if (s != s) {
        s = 0;
        touched[nt++] = j;
      }
      scores[j] = s + val[q] * x;
    }
  }
  return nt;
}
