/* Recommender kernels: the rating store, its CSR views, the file parser, and the
 * matrix-factorisation family (baselines, SVD, SVD++, NMF). Plain C over arrays; knows
 * nothing of Lua. Ids here are dense 0-based "inner" ids; the raw ids of the files are
 * kept by the caller (the parser hands them over as strings). */
#ifndef MM_REC_H
#define MM_REC_H

#include "../moonml.h"

/* A list of ratings. n_users / n_items are the sizes of the id spaces the inner ids
 * index (several rating lists may share one id space, e.g. a train and a test set). */
typedef struct mm_rec_ratings {
  int64_t n;
  int32_t n_users, n_items;
  int32_t *user, *item; /* 0-based inner ids */
  double *rating;
  int64_t *ts; /* NULL when the ratings have no timestamps */
} mm_rec_ratings;

/* Compressed rows: by user (columns are items) or by item (columns are users). Within a
 * row the ratings keep the order of the rating list. */
typedef struct mm_rec_csr {
  int32_t n_rows;
  int64_t *ptr; /* n_rows + 1 offsets */
  int32_t *idx; /* the other id */
  double *val;  /* the rating */
} mm_rec_csr;

/* Bytes needed by mm_rec_csr_fill's arrays for n_rows rows and nnz ratings. */
size_t mm_rec_csr_bytes(int32_t n_rows, int64_t nnz);
/* Points csr's arrays into mem (mm_rec_csr_bytes long, 8-aligned) and fills them. */
void mm_rec_csr_fill(const mm_rec_ratings *r, bool by_item, void *mem, mm_rec_csr *csr);

/* ---------------------------------------------------------------- parsing */

typedef struct mm_rec_parse_opts {
  const char *sep;            /* field separator: "\t", "::", ",", ... */
  bool header;                /* skip the first line */
  bool skip_bad;              /* skip malformed lines (counted) instead of failing */
  int min_fields, max_fields; /* 4..4 for MovieLens; 3..4 for generic files */
  bool has_scale;             /* ratings outside [lo, hi] are errors */
  double lo, hi;
  const char *name; /* file name used in messages */
  const char *op;   /* "moonml.rec.load" */
} mm_rec_parse_opts;

typedef struct mm_rec_parsed {
  mm_rec_ratings r;             /* arrays malloc'ed; inner ids by first appearance */
  char *pool;                   /* raw ids, NUL-terminated, one after another */
  int64_t *user_off, *item_off; /* offsets into pool, n_users / n_items of them */
  int64_t n_skipped;            /* malformed lines skipped (skip_bad) */
  int64_t first_skipped;        /* line number of the first one (0: none) */
  double rmin, rmax;            /* rating range seen (NaN when empty) */
} mm_rec_parsed;

/* Reads a delimited rating file. -1 with a message "<op>: <name>:<line>: ..." on a bad
 * line (unless skip_bad), an unreadable file, or a non-finite or out-of-scale rating. */
int mm_rec_parse_file(mm_ctx *ctx, const char *path, const mm_rec_parse_opts *opts,
                      mm_rec_parsed *out);
void mm_rec_parsed_free(mm_rec_parsed *p);

/* p[0..n) <- draws from Normal(mean, sd) / Uniform[lo, hi) with moonml's generator. */
void mm_rec_fill_normal(mm_ctx *ctx, float *p, int64_t n, double mean, double sd);
void mm_rec_fill_uniform(mm_ctx *ctx, float *p, int64_t n, double lo, double hi);

/* perm[0..n) <- a random permutation of 0..n-1 (Fisher-Yates, moonml's generator). */
void mm_rec_permutation(mm_ctx *ctx, int64_t n, int64_t *perm);

/* ---------------------------------------------------------------- models */

/* A biased/unbiased factor model. BaselineOnly is k = 0; SVD++ adds yj and the cached
 * per-user implicit term imp = |I(u)|^-1/2 sum_{j in I(u)} y_j. Factor rows are k
 * contiguous floats. Arrays not used by a model are NULL. */
typedef struct mm_rec_mf {
  int32_t n_users, n_items, k;
  bool biased;
  double mu; /* the train set's global mean */
  double *bu, *bi;
  float *pu, *qi, *yj, *imp;
} mm_rec_mf;

/* Learning rates and regularisation of the SGD solvers (Surprise's names). */
typedef struct mm_rec_sgd_opts {
  int n_epochs;
  double lr_bu, lr_bi, lr_pu, lr_qi, lr_yj;
  double reg_bu, reg_bi, reg_pu, reg_qi, reg_yj;
} mm_rec_sgd_opts;

/* Surprise's baseline_als: n_epochs of item then user closed-form bias updates. */
void mm_rec_baseline_als(const mm_rec_csr *by_user, const mm_rec_csr *by_item, double mu,
                         int n_epochs, double reg_u, double reg_i, double *bu, double *bi);
/* Surprise's baseline_sgd over the ratings by user. */
void mm_rec_baseline_sgd(const mm_rec_csr *by_user, int32_t n_items, double mu, int n_epochs,
                         double reg, double lr, double *bu, double *bi);

/* SVD (biased or not) by SGD, starting from the values in m (bu, bi, pu, qi); -1 on
 * allocation failure. */
int mm_rec_svd_fit(mm_ctx *ctx, const mm_rec_csr *by_user, mm_rec_mf *m, const mm_rec_sgd_opts *o);
/* SVD++ by SGD from the values in m; fills m->imp at the end. Needs 3k floats scratch
 * per call (allocated); -1 on allocation failure. */
int mm_rec_svdpp_fit(mm_ctx *ctx, const mm_rec_csr *by_user, mm_rec_mf *m,
                     const mm_rec_sgd_opts *o);
/* m->imp from m->yj for every user (the final implicit term used when predicting). */
void mm_rec_svdpp_implicit(const mm_rec_csr *by_user, mm_rec_mf *m);
/* NMF (Luo et al., Surprise's variant) from the values in m; -1 on allocation failure. */
int mm_rec_nmf_fit(mm_ctx *ctx, const mm_rec_csr *by_user, const mm_rec_csr *by_item, mm_rec_mf *m,
                   const mm_rec_sgd_opts *o);

/* Estimate for inner ids u, i (-1 = not in the id space); known = has training ratings.
 * Sets *impossible (the unbiased models cannot predict unknown pairs). Not clipped. */
double mm_rec_mf_estimate(const mm_rec_mf *m, int32_t u, int32_t i, bool u_known, bool i_known,
                          bool *impossible);

/* ---------------------------------------------------------------- neighbourhoods */

/* Sparse rows: row x holds len[x] pairs (idx, val), each row malloc'ed on its own so a
 * large table is never copied whole. Used for the kept similarity rows of the k-NN
 * family and SlopeOne's deviations. */
typedef struct mm_rec_rows {
  int32_t n;
  int32_t *len;
  int32_t **idx;
  double **val;
} mm_rec_rows;

/* Frees every row and the tables (the struct itself is the caller's). */
void mm_rec_rows_free(mm_rec_rows *r);
/* Bytes held by the rows (to tell a garbage collector). */
size_t mm_rec_rows_bytes(const mm_rec_rows *r);

typedef enum {
  MM_REC_SIM_COSINE,
  MM_REC_SIM_MSD,
  MM_REC_SIM_PEARSON,
  MM_REC_SIM_PEARSON_BASELINE
} mm_rec_sim_kind;

/* Surprise's similarity measures (surprise/similarities.pyx). x indexes the rows of
 * by_x (users when user-based), y the rows of by_y. Pearson_baseline centres ratings on
 * mu + bx[x] + by[y] and needs min_support >= 2 (Surprise raises it to 2). */
typedef struct mm_rec_sim_opts {
  mm_rec_sim_kind kind;
  int min_support;
  double shrinkage;
  double mu;
  const double *bx, *by;
} mm_rec_sim_opts;

/* The similarity rows of every x: the other x' that share at least min_support y with x
 * and have a similarity > 0 (x itself included, with 1, as Surprise's diagonal). Only
 * positive similarities can weigh in Surprise's k-NN estimates, so nothing else is
 * kept. Rows are computed in parallel by accumulating over co-rated pairs. -1 on
 * allocation failure (out is then empty). */
int mm_rec_sim_rows(mm_ctx *ctx, const mm_rec_csr *by_x, const mm_rec_csr *by_y,
                    const mm_rec_sim_opts *o, mm_rec_rows *out);
/* One row of the above (for x), into caller arrays of by_x->n_rows entries; returns
 * its length or -1 on allocation failure. */
int64_t mm_rec_sim_row(mm_ctx *ctx, const mm_rec_csr *by_x, const mm_rec_csr *by_y,
                       const mm_rec_sim_opts *o, int32_t x, int32_t *idx, double *val);

/* Mean and population standard deviation of every row's ratings (0 for empty rows). */
void mm_rec_row_stats(const mm_rec_csr *c, double *mean, double *sd);

typedef enum {
  MM_REC_KNN_BASIC,
  MM_REC_KNN_MEANS,
  MM_REC_KNN_ZSCORE,
  MM_REC_KNN_BASELINE
} mm_rec_knn_kind;

/* A fitted k-NN model in x/y terms (x = users when user-based). means/sigmas index x;
 * bx/by are the baselines (KNNBaseline). */
typedef struct mm_rec_knn {
  mm_rec_knn_kind kind;
  int k, min_k;
  const mm_rec_rows *sims;
  const mm_rec_csr *by_x, *by_y;
  const double *means, *sigmas;
  double mu;
  const double *bx, *by;
} mm_rec_knn;

/* Surprise's estimates for n pairs (xs[j], ys[j]), 0-based, -1 for ids outside the id
 * space: the k most similar x' among those who rated y (ties to the earlier rating of
 * y), similarities > 0 only. actual_k[j] is the number of neighbours used, or -1 when
 * x or y has no training ratings (est is then the baseline for KNNBaseline and NaN for
 * the others). A KNNBasic estimate with actual_k < min_k is NaN. -1 on allocation
 * failure. */
int mm_rec_knn_predict(mm_ctx *ctx, const mm_rec_knn *m, int64_t n, const int32_t *xs,
                       const int32_t *ys, double *est, int32_t *actual_k);

/* The estimates of every x (n_x of them) with the one y (0-based, with training
 * ratings), as mm_rec_knn_predict gives them, at the cost of y's neighbours' rows:
 * recommend for item-based models. -1 on allocation failure. */
int mm_rec_knn_scores(mm_ctx *ctx, const mm_rec_knn *m, int32_t y, double *est, int32_t *actual_k);

/* SlopeOne's deviation rows over items: row i holds every j sharing a user with i and
 * dev(i, j) = mean over those users of r_ui - r_uj (dev(i, i) = 0). -1 on allocation
 * failure. */
int mm_rec_slope_one_fit(mm_ctx *ctx, const mm_rec_csr *by_user, const mm_rec_csr *by_item,
                         mm_rec_rows *out);
/* est[j] = mean_u + average dev(i, j) over the items j of u in row i; NaN (and
 * known[j] = false) when u or i has no training ratings. -1 on allocation failure. */
int mm_rec_slope_one_predict(mm_ctx *ctx, const mm_rec_rows *dev, const mm_rec_csr *by_user,
                             const mm_rec_csr *by_item, const double *user_mean, int64_t n,
                             const int32_t *us, const int32_t *is, double *est);

/* est[i] for every item i (NaN where i has no training ratings) with the known user u,
 * as mm_rec_slope_one_predict gives them. -1 on allocation failure. */
int mm_rec_slope_one_scores(mm_ctx *ctx, const mm_rec_rows *dev, const mm_rec_csr *by_user,
                            const mm_rec_csr *by_item, const double *user_mean, int32_t u,
                            double *est);

/* CoClustering (George & Merugu, Surprise's variant). cltr_u / cltr_i hold the initial
 * clusters and receive the final ones; the means and cluster averages are outputs
 * (avg_co is n_cltr_u x n_cltr_i, row-major). */
typedef struct mm_rec_cocluster {
  int n_cltr_u, n_cltr_i;
  int32_t *cltr_u, *cltr_i;
  double *user_mean, *item_mean;
  double *avg_u, *avg_i, *avg_co;
} mm_rec_cocluster;
int mm_rec_coclustering_fit(mm_ctx *ctx, const mm_rec_csr *by_user, const mm_rec_csr *by_item,
                            double mu, int n_epochs, mm_rec_cocluster *m);

/* out[j] = cosine of rows `row` and j of the n x k matrix m (0 where a norm is 0). */
void mm_rec_cosine_rows(const float *m, int32_t n, int32_t k, int32_t row, double *out);

#endif
