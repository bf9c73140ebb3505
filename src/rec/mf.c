/* The matrix-factorisation family with Surprise's update rules: baselines (ALS, SGD),
 * SVD, SVD++ and NMF. Factor rows are k contiguous floats and the per-factor loops are
 * written so the compiler vectorises them (fixed-width partial sums for dot products,
 * restrict-qualified rows for the updates). On x86-64 the epoch loops are also compiled
 * for AVX2+FMA and picked at run time. */
#include "rec.h"

/* -std=c11 turns off the contraction of a*b + c into one FMA instruction; the update
 * rules here are the bulk of the work and FMA halves their arithmetic. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast")
#elif defined(__clang__)
#pragma clang fp contract(fast)
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define MM_REC_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MM_REC_CLONES
#endif

#define LANES 8

#if defined(__GNUC__)
#define MM_INLINE static inline __attribute__((always_inline))
#define MM_PREFETCH(p) __builtin_prefetch(p)
#else
#define MM_INLINE static inline
#define MM_PREFETCH(p) ((void)0)
#endif

/* Asks for the factor row of a later rating ahead of time: item rows are visited in a
 * random order and the whole table does not fit in L2 for 100 factors. */
MM_INLINE void prefetch_row(const float *row, int kp) {
  for (int f = 0; f < kp; f += 16)
    MM_PREFETCH(row + f);
}

MM_INLINE float dotf(const float *restrict a, const float *restrict b, int k) {
  float acc[LANES] = {0};
  int f = 0;
  for (; f + LANES <= k; f += LANES)
    for (int j = 0; j < LANES; j++)
      acc[j] += a[f + j] * b[f + j];
  float s = 0;
  for (; f < k; f++)
    s += a[f] * b[f];
  return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* One rating's factor step with the old values of both rows (Surprise's order). */
MM_INLINE void svd_step(float *restrict pu, float *restrict qi, int k, float err, float lr_pu,
                        float reg_pu, float lr_qi, float reg_qi) {
  for (int f = 0; f < k; f++) {
    float p = pu[f], q = qi[f];
    pu[f] = p + lr_pu * (err * q - reg_pu * p);
    qi[f] = q + lr_qi * (err * p - reg_qi * q);
  }
}

/* Rows padded to a multiple of 8 floats are handled as vectors of 8 (GCC/Clang vector
 * extensions: AVX registers in the AVX2 clone, pairs of SSE registers otherwise). */
#if defined(__GNUC__)
typedef float v8f __attribute__((vector_size(32), aligned(32), may_alias));

MM_INLINE float hsum8(v8f v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

/* four independent chains so the additions do not wait on each other */
MM_INLINE float dot_padded(const float *a, const float *b, int kp) {
  const v8f *va = (const v8f *)a, *vb = (const v8f *)b;
  v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
  int n = kp / LANES, j = 0;
  for (; j + 4 <= n; j += 4) {
    s0 += va[j] * vb[j];
    s1 += va[j + 1] * vb[j + 1];
    s2 += va[j + 2] * vb[j + 2];
    s3 += va[j + 3] * vb[j + 3];
  }
  for (; j < n; j++)
    s1 += va[j] * vb[j];
  return hsum8((s0 + s1) + (s2 + s3));
}

MM_INLINE void svd_step_padded(float *pu, float *qi, int kp, float err, float lr_pu, float reg_pu,
                               float lr_qi, float reg_qi) {
  v8f *p = (v8f *)pu, *q = (v8f *)qi;
  for (int j = 0; j < kp / LANES; j++) {
    v8f pp = p[j], qq = q[j];
    p[j] = pp + lr_pu * (err * qq - reg_pu * pp);
    q[j] = qq + lr_qi * (err * pp - reg_qi * qq);
  }
}
#else
MM_INLINE float dot_padded(const float *a, const float *b, int kp) { return dotf(a, b, kp); }
#define svd_step_padded svd_step
#endif

/* The solvers work on copies of the factor rows padded with zeros to kp = k rounded up
 * to 8 floats (64-byte aligned): no scalar tails in the vector loops. Zero padding stays
 * zero under every update rule here, so the results are those of the unpadded rows. */
static int pad_k(int k) { return (k + LANES - 1) / LANES * LANES; }

static float *pad_rows(const float *src, int32_t n, int k, int kp) {
  size_t bytes = sizeof(float) * (size_t)n * (size_t)kp;
  bytes = (bytes + 63) / 64 * 64;
  float *dst = aligned_alloc(64, bytes ? bytes : 64);
  if (!dst)
    return NULL;
  memset(dst, 0, bytes);
  for (int32_t r = 0; r < n; r++)
    memcpy(dst + (size_t)r * (size_t)kp, src + (size_t)r * (size_t)k, sizeof(float) * (size_t)k);
  return dst;
}

static void unpad_rows(float *dst, const float *src, int32_t n, int k, int kp) {
  for (int32_t r = 0; r < n; r++)
    memcpy(dst + (size_t)r * (size_t)k, src + (size_t)r * (size_t)kp, sizeof(float) * (size_t)k);
}

/* ------------------------------------------------------------------ baselines */

void mm_rec_baseline_als(const mm_rec_csr *by_user, const mm_rec_csr *by_item, double mu,
                         int n_epochs, double reg_u, double reg_i, double *bu, double *bi) {
  memset(bu, 0, sizeof(double) * (size_t)by_user->n_rows);
  memset(bi, 0, sizeof(double) * (size_t)by_item->n_rows);
  for (int e = 0; e < n_epochs; e++) {
    for (int32_t i = 0; i < by_item->n_rows; i++) {
      double dev = 0;
      for (int64_t k = by_item->ptr[i]; k < by_item->ptr[i + 1]; k++)
        dev += by_item->val[k] - mu - bu[by_item->idx[k]];
      bi[i] = dev / (reg_i + (double)(by_item->ptr[i + 1] - by_item->ptr[i]));
    }
    for (int32_t u = 0; u < by_user->n_rows; u++) {
      double dev = 0;
      for (int64_t k = by_user->ptr[u]; k < by_user->ptr[u + 1]; k++)
        dev += by_user->val[k] - mu - bi[by_user->idx[k]];
      bu[u] = dev / (reg_u + (double)(by_user->ptr[u + 1] - by_user->ptr[u]));
    }
  }
}

void mm_rec_baseline_sgd(const mm_rec_csr *by_user, int32_t n_items, double mu, int n_epochs,
                         double reg, double lr, double *bu, double *bi) {
  memset(bu, 0, sizeof(double) * (size_t)by_user->n_rows);
  memset(bi, 0, sizeof(double) * (size_t)n_items);
  for (int e = 0; e < n_epochs; e++)
    for (int32_t u = 0; u < by_user->n_rows; u++)
      for (int64_t k = by_user->ptr[u]; k < by_user->ptr[u + 1]; k++) {
        int32_t i = by_user->idx[k];
        double err = by_user->val[k] - (mu + bu[u] + bi[i]);
        bu[u] += lr * (err - reg * bu[u]);
        bi[i] += lr * (err - reg * bi[i]);
      }
}

/* ------------------------------------------------------------------ SVD */

/* dot products of a with c and of b with c in one pass (two chains each) */
MM_INLINE void dot2_padded(const float *a, const float *b, const float *c, int kp, float *ac,
                           float *bc) {
#if defined(__GNUC__)
  const v8f *va = (const v8f *)a, *vb = (const v8f *)b, *vc = (const v8f *)c;
  v8f s0 = {0}, s1 = {0}, t0 = {0}, t1 = {0};
  int n = kp / LANES, j = 0;
  for (; j + 2 <= n; j += 2) {
    s0 += va[j] * vc[j];
    s1 += va[j + 1] * vc[j + 1];
    t0 += vb[j] * vc[j];
    t1 += vb[j + 1] * vc[j + 1];
  }
  if (j < n) {
    s0 += va[j] * vc[j];
    t0 += vb[j] * vc[j];
  }
  *ac = hsum8(s0 + s1);
  *bc = hsum8(t0 + t1);
#else
  *ac = dotf(a, c, kp);
  *bc = dotf(b, c, kp);
#endif
}

/* Surprise's SGD over the ratings by user. The estimate of a user's next rating needs
 * p_u after this rating's update, p' = a p + lr_pu err q (a = 1 - lr_pu reg_pu), so
 * p'.q_next = a (p.q_next) + lr_pu err (q.q_next): both dot products are taken before
 * err is known, and the wait from one rating's error to the next estimate is a few
 * scalar operations instead of an update pass and a dot pass. The updates themselves are
 * Surprise's, in Surprise's order. (A user rating the same item twice in a row takes the
 * direct path.) */
MM_REC_CLONES
static void svd_epochs(const mm_rec_csr *by_user, const mm_rec_mf *m, const mm_rec_sgd_opts *o,
                       float *restrict pus, float *restrict qis, int kp) {
  const bool biased = m->biased;
  const double mu = biased ? m->mu : 0;
  double *restrict bu = m->bu, *restrict bi = m->bi;
  const double lr_bu = o->lr_bu, lr_bi = o->lr_bi, reg_bu = o->reg_bu, reg_bi = o->reg_bi;
  const float lr_pu = (float)o->lr_pu, reg_pu = (float)o->reg_pu;
  const float lr_qi = (float)o->lr_qi, reg_qi = (float)o->reg_qi;
  const float a_pu = 1.0f - lr_pu * reg_pu;
  const int64_t *ptr = by_user->ptr;
  const int32_t *idx = by_user->idx;
  const double *val = by_user->val;
  for (int e = 0; e < o->n_epochs; e++) {
    for (int32_t u = 0; u < by_user->n_rows; u++) {
      int64_t b = ptr[u], end = ptr[u + 1];
      if (b == end)
        continue;
      float *pu = pus + (size_t)u * (size_t)kp;
      float dot = dot_padded(pu, qis + (size_t)idx[b] * (size_t)kp, kp);
      for (int64_t x = b; x < end; x++) {
        int32_t i = idx[x];
        float *qi = qis + (size_t)i * (size_t)kp;
        double est = mu + (double)dot;
        if (biased)
          est += bu[u] + bi[i];
        double err = val[x] - est;
        if (biased) {
          bu[u] += lr_bu * (err - reg_bu * bu[u]);
          bi[i] += lr_bi * (err - reg_bi * bi[i]);
        }
        float ef = (float)err;
        if (x + 1 < end && idx[x + 1] != i) {
          const float *qn = qis + (size_t)idx[x + 1] * (size_t)kp;
          float pn, qqn;
          dot2_padded(pu, qi, qn, kp, &pn, &qqn);
          svd_step_padded(pu, qi, kp, ef, lr_pu, reg_pu, lr_qi, reg_qi);
          dot = a_pu * pn + lr_pu * ef * qqn;
        } else {
          svd_step_padded(pu, qi, kp, ef, lr_pu, reg_pu, lr_qi, reg_qi);
          if (x + 1 < end)
            dot = dot_padded(pu, qis + (size_t)idx[x + 1] * (size_t)kp, kp);
        }
      }
    }
  }
}

int mm_rec_svd_fit(mm_ctx *ctx, const mm_rec_csr *by_user, mm_rec_mf *m, const mm_rec_sgd_opts *o) {
  int k = m->k, kp = pad_k(k);
  float *pu = pad_rows(m->pu, m->n_users, k, kp);
  float *qi = pad_rows(m->qi, m->n_items, k, kp);
  if (!pu || !qi) {
    free(pu);
    free(qi);
    return mm_fail(ctx, "moonml.rec.SVD.fit: out of memory");
  }
  svd_epochs(by_user, m, o, pu, qi, kp);
  unpad_rows(m->pu, pu, m->n_users, k, kp);
  unpad_rows(m->qi, qi, m->n_items, k, kp);
  free(pu);
  free(qi);
  return 0;
}

/* ------------------------------------------------------------------ SVD++ */

void mm_rec_svdpp_implicit(const mm_rec_csr *by_user, mm_rec_mf *m) {
  const int k = m->k;
  for (int32_t u = 0; u < by_user->n_rows; u++) {
    float *imp = m->imp + (size_t)u * (size_t)k;
    memset(imp, 0, sizeof(float) * (size_t)k);
    int64_t n = by_user->ptr[u + 1] - by_user->ptr[u];
    if (n == 0)
      continue;
    for (int64_t x = by_user->ptr[u]; x < by_user->ptr[u + 1]; x++) {
      const float *y = m->yj + (size_t)by_user->idx[x] * (size_t)k;
      for (int f = 0; f < k; f++)
        imp[f] += y[f];
    }
    float s = (float)(1.0 / sqrt((double)n));
    for (int f = 0; f < k; f++)
      imp[f] *= s;
  }
}

/* Surprise updates every y_j (j in I(u)) after each of u's ratings with the same affine
 * map y <- a*y + lr_yj*c (a = 1 - lr_yj*reg_yj, c = err*q_i/sqrt|I(u)|). Composing those
 * maps over u's ratings gives y_j <- A*y_j + D for one scalar A and one vector D shared
 * by all j, and sum_j y_j = A*S + |I(u)|*D with S the sum at the start of u's ratings. So
 * each rating costs O(k) instead of O(|I(u)| k), with the same updates in exact
 * arithmetic; the y_j are written once at the end of the user. */
MM_REC_CLONES
static void svdpp_epochs(const mm_rec_csr *by_user, mm_rec_mf *m, const mm_rec_sgd_opts *o,
                         float *restrict sum, float *restrict d, float *restrict imp) {
  const int k = m->k;
  const float lr_pu = (float)o->lr_pu, reg_pu = (float)o->reg_pu;
  const float lr_qi = (float)o->lr_qi, reg_qi = (float)o->reg_qi;
  const float lr_yj = (float)o->lr_yj;
  const double a = 1.0 - o->lr_yj * o->reg_yj;
  for (int e = 0; e < o->n_epochs; e++) {
    for (int32_t u = 0; u < by_user->n_rows; u++) {
      int64_t b = by_user->ptr[u], end = by_user->ptr[u + 1];
      if (b == end)
        continue;
      float *restrict pu = m->pu + (size_t)u * (size_t)k;
      float n = (float)(end - b), s = (float)(1.0 / sqrt((double)(end - b)));
      memset(sum, 0, sizeof(float) * (size_t)k);
      memset(d, 0, sizeof(float) * (size_t)k);
      for (int64_t x = b; x < end; x++) {
        const float *restrict y = m->yj + (size_t)by_user->idx[x] * (size_t)k;
        for (int f = 0; f < k; f++)
          sum[f] += y[f];
      }
      double big_a = 1.0;
      for (int64_t x = b; x < end; x++) {
        int32_t i = by_user->idx[x];
        float *restrict qi = m->qi + (size_t)i * (size_t)k;
        float fa = (float)big_a;
        float acc[LANES] = {0};
        int f = 0;
        for (; f + LANES <= k; f += LANES)
          for (int j = 0; j < LANES; j++) {
            float im = s * (fa * sum[f + j] + n * d[f + j]);
            imp[f + j] = im;
            acc[j] += qi[f + j] * (pu[f + j] + im);
          }
        float dot = 0;
        for (; f < k; f++) {
          float im = s * (fa * sum[f] + n * d[f]);
          imp[f] = im;
          dot += qi[f] * (pu[f] + im);
        }
        dot += ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        double err = by_user->val[x] - (m->mu + m->bu[u] + m->bi[i] + (double)dot);
        m->bu[u] += o->lr_bu * (err - o->reg_bu * m->bu[u]);
        m->bi[i] += o->lr_bi * (err - o->reg_bi * m->bi[i]);
        float ef = (float)err, fa2 = (float)a, c = lr_yj * ef * s;
        for (f = 0; f < k; f++) {
          float p = pu[f], q = qi[f];
          pu[f] = p + lr_pu * (ef * q - reg_pu * p);
          qi[f] = q + lr_qi * (ef * (p + imp[f]) - reg_qi * q);
          d[f] = fa2 * d[f] + c * q;
        }
        big_a *= a;
      }
      float fa = (float)big_a;
      for (int64_t x = b; x < end; x++) {
        float *restrict y = m->yj + (size_t)by_user->idx[x] * (size_t)k;
        for (int f = 0; f < k; f++)
          y[f] = fa * y[f] + d[f];
      }
    }
  }
}

int mm_rec_svdpp_fit(mm_ctx *ctx, const mm_rec_csr *by_user, mm_rec_mf *m,
                     const mm_rec_sgd_opts *o) {
  float *scratch = malloc(sizeof(float) * 3 * (size_t)(m->k > 0 ? m->k : 1));
  if (!scratch)
    return mm_fail(ctx, "moonml.rec.SVDpp.fit: out of memory");
  svdpp_epochs(by_user, m, o, scratch, scratch + m->k, scratch + 2 * m->k);
  free(scratch);
  mm_rec_svdpp_implicit(by_user, m);
  return 0;
}

/* ------------------------------------------------------------------ NMF */

MM_REC_CLONES
static void nmf_epochs(const mm_rec_csr *by_user, const mm_rec_csr *by_item, mm_rec_mf *m,
                       const mm_rec_sgd_opts *o, double *restrict unum, double *restrict uden,
                       double *restrict inum, double *restrict iden) {
  const int k = m->k;
  const double mu = m->biased ? m->mu : 0;
  const size_t un = (size_t)m->n_users * (size_t)k, in = (size_t)m->n_items * (size_t)k;
  for (int e = 0; e < o->n_epochs; e++) {
    memset(unum, 0, sizeof(double) * un);
    memset(uden, 0, sizeof(double) * un);
    memset(inum, 0, sizeof(double) * in);
    memset(iden, 0, sizeof(double) * in);
    for (int32_t u = 0; u < by_user->n_rows; u++) {
      const float *restrict pu = m->pu + (size_t)u * (size_t)k;
      double *restrict un_u = unum + (size_t)u * (size_t)k;
      double *restrict ud_u = uden + (size_t)u * (size_t)k;
      for (int64_t x = by_user->ptr[u]; x < by_user->ptr[u + 1]; x++) {
        int32_t i = by_user->idx[x];
        const float *restrict qi = m->qi + (size_t)i * (size_t)k;
        double r = by_user->val[x];
        double est = mu + (double)dotf(pu, qi, k);
        if (m->biased) {
          est += m->bu[u] + m->bi[i];
          double err = r - est;
          m->bu[u] += o->lr_bu * (err - o->reg_bu * m->bu[u]);
          m->bi[i] += o->lr_bi * (err - o->reg_bi * m->bi[i]);
        }
        double *restrict in_i = inum + (size_t)i * (size_t)k;
        double *restrict id_i = iden + (size_t)i * (size_t)k;
        for (int f = 0; f < k; f++) {
          un_u[f] += qi[f] * r;
          ud_u[f] += qi[f] * est;
          in_i[f] += pu[f] * r;
          id_i[f] += pu[f] * est;
        }
      }
    }
    for (int32_t u = 0; u < by_user->n_rows; u++) {
      double n = (double)(by_user->ptr[u + 1] - by_user->ptr[u]);
      float *pu = m->pu + (size_t)u * (size_t)k;
      for (int f = 0; f < k; f++)
        if (pu[f] != 0) {
          double den = uden[(size_t)u * (size_t)k + f] + n * o->reg_pu * pu[f];
          pu[f] = (float)(pu[f] * (unum[(size_t)u * (size_t)k + f] / den));
        }
    }
    for (int32_t i = 0; i < by_item->n_rows; i++) {
      double n = (double)(by_item->ptr[i + 1] - by_item->ptr[i]);
      float *qi = m->qi + (size_t)i * (size_t)k;
      for (int f = 0; f < k; f++)
        if (qi[f] != 0) {
          double den = iden[(size_t)i * (size_t)k + f] + n * o->reg_qi * qi[f];
          qi[f] = (float)(qi[f] * (inum[(size_t)i * (size_t)k + f] / den));
        }
    }
  }
}

int mm_rec_nmf_fit(mm_ctx *ctx, const mm_rec_csr *by_user, const mm_rec_csr *by_item, mm_rec_mf *m,
                   const mm_rec_sgd_opts *o) {
  size_t un = (size_t)m->n_users * (size_t)m->k, in = (size_t)m->n_items * (size_t)m->k;
  double *buf = malloc(sizeof(double) * (2 * un + 2 * in + 1));
  if (!buf)
    return mm_fail(ctx, "moonml.rec.NMF.fit: out of memory");
  nmf_epochs(by_user, by_item, m, o, buf, buf + un, buf + 2 * un, buf + 2 * un + in);
  free(buf);
  return 0;
}

/* ------------------------------------------------------------------ predict */

double mm_rec_mf_estimate(const mm_rec_mf *m, int32_t u, int32_t i, bool u_known, bool i_known,
                          bool *impossible) {
  *impossible = false;
  bool both = u_known && i_known;
  if (!m->biased && !both) {
    *impossible = true;
    return 0;
  }
  double est = m->biased ? m->mu : 0;
  if (m->biased && u_known)
    est += m->bu[u];
  if (m->biased && i_known)
    est += m->bi[i];
  if (both && m->k > 0) {
    const float *pu = m->pu + (size_t)u * (size_t)m->k;
    const float *qi = m->qi + (size_t)i * (size_t)m->k;
    if (m->imp) {
      const float *imp = m->imp + (size_t)u * (size_t)m->k;
      double s = 0;
      for (int f = 0; f < m->k; f++)
        s += (double)qi[f] * ((double)pu[f] + (double)imp[f]);
      est += s;
    } else {
      est += (double)dotf(pu, qi, m->k);
    }
  }
  return est;
}

/* ------------------------------------------------------------------ fold-in */

void mm_rec_mf_fold_in(const mm_rec_mf *m, int64_t n, const int32_t *items, const double *ratings,
                       const mm_rec_sgd_opts *o, double *bu_out, float *pu, float *imp) {
  const int k = m->k;
  const bool pp = m->yj != NULL && imp != NULL;
  double bu = 0;
  for (int f = 0; f < k; f++)
    pu[f] = 0;
  if (pp) {
    for (int f = 0; f < k; f++)
      imp[f] = 0;
    for (int64_t x = 0; x < n; x++) {
      const float *y = m->yj + (size_t)items[x] * (size_t)k;
      for (int f = 0; f < k; f++)
        imp[f] += y[f];
    }
    float s = n > 0 ? (float)(1.0 / sqrt((double)n)) : 0;
    for (int f = 0; f < k; f++)
      imp[f] *= s;
  }
  const float lr_pu = (float)o->lr_pu, reg_pu = (float)o->reg_pu;
  for (int e = 0; e < o->n_epochs; e++)
    for (int64_t x = 0; x < n; x++) {
      int32_t i = items[x];
      const float *qi = m->qi + (size_t)i * (size_t)k;
      double dot = 0;
      for (int f = 0; f < k; f++)
        dot += (double)qi[f] * ((double)pu[f] + (pp ? (double)imp[f] : 0));
      double est = dot;
      if (m->biased)
        est += m->mu + bu + m->bi[i];
      float err = (float)(ratings[x] - est);
      if (m->biased)
        bu += o->lr_bu * ((double)err - o->reg_bu * bu);
      for (int f = 0; f < k; f++)
        pu[f] += lr_pu * (err * qi[f] - reg_pu * pu[f]);
    }
  *bu_out = bu;
}
