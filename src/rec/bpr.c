/* implicit's Bayesian Personalised Ranking (implicit/cpu/bpr.pyx, bpr_update): SGD on
 * sampled (user, liked, disliked) triples. The liked item is a uniformly drawn
 * interaction (users weigh by their activity), the disliked one the item of another
 * uniformly drawn interaction (popularity-proportional negatives); with
 * verify_negative_samples a disliked item the user has is skipped. The last item column is
 * a bias, the last user column stays 1. Threads run lock-free (Hogwild, as implicit),
 * each with its own generator. */
#include "../core/internal.h"
#include "rec.h"
#include "rec_simd.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static uint64_t sm_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* uniform in [0, n), n < 2^32: the high half of a 32 x 32-bit product (Lemire) */
static int64_t below(uint64_t *s, int64_t n) {
  uint64_t r = sm_next(s) >> 32;
  if (n <= 0xffffffffLL)
    return (int64_t)((r * (uint64_t)n) >> 32);
  return (int64_t)(sm_next(s) % (uint64_t)n);
}

/* The update with the old user row (implicit's order: user, liked, disliked per column). */
MM_REC_INLINE float step_distinct(float *restrict x, float *restrict yi, float *restrict yj, int k,
                                  float lr, float reg) {
  const int kk = k + 1;
  int f = 0;
  float score = 0;
#if defined(MM_REC_VEC)
  mm_v8f acc = {0};
  for (; f + 8 <= kk; f += 8)
    acc += mm_v8_load(x + f) * (mm_v8_load(yi + f) - mm_v8_load(yj + f));
  score = mm_v8_sum(acc);
#endif
  for (; f < kk; f++)
    score += x[f] * (yi[f] - yj[f]);
  float z = 1.0f / (1.0f + expf(score));
  f = 0;
#if defined(MM_REC_VEC)
  for (; f + 8 <= k; f += 8) {
    mm_v8f t = mm_v8_load(x + f), a = mm_v8_load(yi + f), b = mm_v8_load(yj + f);
    mm_v8_store(x + f, t + lr * (z * (a - b) - reg * t));
    mm_v8_store(yi + f, a + lr * (z * t - reg * a));
    mm_v8_store(yj + f, b + lr * (-z * t - reg * b));
  }
#endif
  for (; f < k; f++) {
    float t = x[f], a = yi[f], b = yj[f];
    x[f] = t + lr * (z * (a - b) - reg * t);
    yi[f] = a + lr * (z * t - reg * a);
    yj[f] = b + lr * (-z * t - reg * b);
  }
  yi[k] += lr * (z - reg * yi[k]);
  yj[k] += lr * (-z - reg * yj[k]);
  return z;
}

/* The same when liked and disliked are one row (possible without verification). */
static float step_same(float *x, float *y, int k, float lr, float reg) {
  float z = 0.5f; /* x . (y - y) = 0 */
  for (int f = 0; f < k; f++) {
    float t = x[f];
    x[f] = t + lr * (z * (y[f] - y[f]) - reg * t);
    y[f] += lr * (z * t - reg * y[f]);
    y[f] += lr * (-z * t - reg * y[f]);
  }
  y[k] += lr * (z - reg * y[k]);
  y[k] += lr * (-z - reg * y[k]);
  return z;
}

float mm_rec_bpr_step(float *x, float *yi, float *yj, int k, float lr, float reg) {
  if (yi == yj)
    return step_same(x, yi, k, lr, reg);
  return step_distinct(x, yi, yj, k, lr, reg);
}

typedef struct {
  const mm_rec_icsr *c;
  const int32_t *user_of; /* the user of every interaction */
  float *X, *Y;
  int k;
  float lr, reg;
  bool verify;
  int64_t parts;
  uint64_t *rng; /* one state per part */
  atomic_int_fast64_t correct, skipped;
} bpr_job;

MM_REC_CLONES
static void bpr_part(bpr_job *J, int64_t part) {
  const mm_rec_icsr *c = J->c;
  int64_t nnz = c->ptr[c->n_rows];
  int64_t b = nnz * part / J->parts, e = nnz * (part + 1) / J->parts;
  uint64_t state = J->rng[part]; /* a local copy: the parts' states share a cache line */
  uint64_t *s = &state;
  const int kk = J->k + 1;
  int64_t correct = 0, skipped = 0;
  for (int64_t t = b; t < e; t++) {
    int64_t liked_at = below(s, nnz);
    int64_t disliked_at = below(s, nnz);
    int32_t u = J->user_of[liked_at], i = c->idx[liked_at], j = c->idx[disliked_at];
    if (J->verify && mm_rec_icsr_has(c, u, j)) {
      skipped++;
      continue;
    }
    float *x = J->X + (size_t)u * (size_t)kk;
    float *yi = J->Y + (size_t)i * (size_t)kk, *yj = J->Y + (size_t)j * (size_t)kk;
    float z = i == j ? step_same(x, yi, J->k, J->lr, J->reg)
                     : step_distinct(x, yi, yj, J->k, J->lr, J->reg);
    correct += z < 0.5f;
  }
  J->rng[part] = state;
  atomic_fetch_add(&J->correct, correct);
  atomic_fetch_add(&J->skipped, skipped);
}

static void bpr_worker(int64_t b, int64_t e, void *arg) {
  for (int64_t part = b; part < e; part++)
    bpr_part(arg, part);
}

int mm_rec_bpr_fit(mm_ctx *ctx, const mm_rec_icsr *by_user, float *X, float *Y, int k,
                   const mm_rec_bpr_opts *o, int64_t *correct, int64_t *skipped) {
  int64_t nnz = by_user->ptr[by_user->n_rows];
  *correct = *skipped = 0;
  if (nnz == 0 || o->iterations <= 0)
    return 0;
  int64_t parts = mm_get_num_threads();
  if (parts > 64)
    parts = 64;
  if (nnz < 4096)
    parts = 1;
  int32_t *user_of = malloc(sizeof(int32_t) * (size_t)nnz);
  uint64_t *rng = malloc(sizeof(uint64_t) * (size_t)parts);
  if (!user_of || !rng) {
    free(user_of);
    free(rng);
    return mm_fail(ctx, "moonml.rec.BPR.fit: out of memory");
  }
  for (int32_t u = 0; u < by_user->n_rows; u++)
    for (int64_t q = by_user->ptr[u]; q < by_user->ptr[u + 1]; q++)
      user_of[q] = u;
  uint64_t seed = o->seed;
  for (int64_t p = 0; p < parts; p++)
    rng[p] = sm_next(&seed);
  bpr_job J = {by_user,
               user_of,
               X,
               Y,
               k,
               (float)o->learning_rate,
               (float)o->regularization,
               o->verify_negative_samples,
               parts,
               rng,
               0,
               0};
  for (int it = 0; it < o->iterations; it++) {
    atomic_store(&J.correct, 0);
    atomic_store(&J.skipped, 0);
    mm_parallel_for(parts, 1, bpr_worker, &J);
  }
  *correct = atomic_load(&J.correct);
  *skipped = atomic_load(&J.skipped);
  free(user_of);
  free(rng);
  return 0;
}

/* Does the sorted list a[0..n) hold v? */
static bool sorted_has(const int32_t *a, int64_t n, int32_t v) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && a[lo] == v;
}

MM_REC_CLONES
static void fold_in_epochs(const mm_rec_icsr *by_user, const int32_t *items, int64_t n, float *x,
                           const float *Y, int k, const mm_rec_bpr_opts *o, uint64_t *s) {
  const int kk = k + 1;
  const float lr = (float)o->learning_rate, reg = (float)o->regularization;
  int64_t nnz = by_user->ptr[by_user->n_rows];
  for (int it = 0; it < o->iterations; it++)
    for (int64_t t = 0; t < n; t++) {
      int32_t i = items[below(s, n)];
      int32_t j = by_user->idx[below(s, nnz)];
      if (o->verify_negative_samples && sorted_has(items, n, j))
        continue;
      const float *yi = Y + (size_t)i * (size_t)kk, *yj = Y + (size_t)j * (size_t)kk;
      float score = 0;
      for (int f = 0; f < kk; f++)
        score += x[f] * (yi[f] - yj[f]);
      float z = 1.0f / (1.0f + expf(score));
      for (int f = 0; f < k; f++)
        x[f] += lr * (z * (yi[f] - yj[f]) - reg * x[f]);
    }
}

void mm_rec_bpr_fold_in(const mm_rec_icsr *by_user, const int32_t *items, int64_t n, float *x,
                        const float *Y, int k, const mm_rec_bpr_opts *o) {
  uint64_t s = o->seed;
  for (int f = 0; f < k; f++)
    x[f] = (float)(((double)(sm_next(&s) >> 11) * 0x1.0p-53 - 0.5) / k);
  x[k] = 1.0f;
  if (n == 0 || by_user->ptr[by_user->n_rows] == 0)
    return;
  fold_in_epochs(by_user, items, n, x, Y, k, o, &s);
}
