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

/* ---------------------------------------------------------------- implicit feedback */

/* One orientation of an interaction matrix (implicit feedback): rows sorted by column,
 * one entry per (row, column) pair, float32 values (the confidences before alpha). */
typedef struct mm_rec_icsr {
  int32_t n_rows, n_cols;
  int64_t *ptr; /* n_rows + 1 offsets */
  int32_t *idx;
  float *val;
} mm_rec_icsr;

/* Bytes of both orientations for n_rows x n_cols and up to nnz entries (8-aligned parts). */
size_t mm_rec_inter_bytes(int32_t n_rows, int32_t n_cols, int64_t nnz);

/* Builds both orientations (by_row: rows are the first id, by_col the transpose) into mem,
 * mm_rec_inter_bytes(n_rows, n_cols, nnz_max) bytes, from the rows of `keep` (may be NULL)
 * whose drop[row] is 0 (drop may be NULL) followed by n triples (rows[k], cols[k],
 * vals[k]). binary: every value is 1 and a pair given twice stays 1; otherwise the values
 * of a pair given twice add up (as scipy's COO to CSR conversion). Returns the entries
 * kept, or -1 when out of memory (a cursor array of max(n_rows, n_cols) + 1 int64). */
int64_t mm_rec_inter_build(mm_ctx *ctx, int32_t n_rows, int32_t n_cols, const mm_rec_icsr *keep,
                           const unsigned char *drop, int64_t n, const int32_t *rows,
                           const int32_t *cols, const double *vals, bool binary, void *mem,
                           mm_rec_icsr *by_row, mm_rec_icsr *by_col);

/* Does row r hold column c? (binary search in the sorted row) */
bool mm_rec_icsr_has(const mm_rec_icsr *c, int32_t r, int32_t c_id);

/* out[i] = x . Y_i for the n rows of Y (n x k, row-major float32). */
void mm_rec_factor_scores(const float *x, const float *Y, int32_t n, int k, double *out);

/* The n best of the candidates (cand[0..len), or 0..len-1 when cand is NULL) by scores
 * (NaN: not a candidate), best first: larger score, then smaller rank[i] (rank may be
 * NULL: smaller index). Writes up to n indices to out and returns their count. Long lists
 * (n > 64) are sorted whole in a malloc'ed array: -1 when out of memory. */
int64_t mm_rec_top_n(const double *scores, const int32_t *cand, int32_t len, int64_t n,
                     const int32_t *rank, int32_t *out);

/* Implicit's ALS (Hu, Koren & Volinsky) with the conjugate-gradient solver. Confidence
 * c = alpha * value; a positive value means p = 1, a negative one p = 0 with
 * confidence |c|; missing entries have c = 1, p = 0. */
typedef struct mm_rec_als_opts {
  double regularization, alpha;
  int iterations, cg_steps;
  bool calculate_loss;
} mm_rec_als_opts;

/* iterations of (users from items, items from users), cg_steps CG steps per row warm-
 * started from X (n_users x k) and Y (n_items x k). Rows without entries get zeros.
 * losses[it] (when calculate_loss; may be NULL otherwise) gets the training loss after
 * each iteration. Threads over rows; -1 when out of memory. */
int mm_rec_als_fit(mm_ctx *ctx, const mm_rec_icsr *by_user, const mm_rec_icsr *by_item, float *X,
                   float *Y, int k, const mm_rec_als_opts *o, double *losses);
/* implicit's loss: sum over all pairs of c (p - x.y)^2 + reg (|X|^2 + |Y|^2), divided by
 * the total confidence plus the number of missing pairs. */
double mm_rec_als_loss(const mm_rec_icsr *by_user, const float *X, const float *Y, int32_t n_items,
                       int k, double reg, double alpha);
/* gram (k x k, full, float32) = Y^T Y for the n rows of Y (OpenBLAS). */
void mm_rec_gram(const float *Y, int32_t n, int k, float *gram);
/* The exact least-squares rows (Cholesky in float64) for the given rows of c against Y,
 * as implicit's recalculate_user / partial_fit_users: for every row r of `rows` (all rows
 * when rows is NULL), X[r] solves (G + reg I + sum (c - 1) y y^T) x = sum_{c > 0} c y,
 * with G = Y^T Y (gram). Rows without entries get zeros. -1 when out of memory or when a
 * system is not positive definite (regularization 0 with too few entries). */
int mm_rec_als_solve(mm_ctx *ctx, const mm_rec_icsr *c, const int32_t *rows, int64_t n_rows,
                     float *X, const float *Y, int k, const float *gram, double reg, double alpha);

/* implicit's BPR: factors have k + 1 columns (users: last column 1, items: the bias). */
typedef struct mm_rec_bpr_opts {
  double learning_rate, regularization;
  int iterations;
  bool verify_negative_samples;
  uint64_t seed; /* per-chunk generators are seeded from it */
} mm_rec_bpr_opts;

/* Each epoch draws nnz (user, positive, negative) samples in as many chunks as threads
 * (lock-free: threads may write the same item rows, as implicit). *correct / *skipped
 * get the last epoch's counts. -1 when out of memory. */
int mm_rec_bpr_fit(mm_ctx *ctx, const mm_rec_icsr *by_user, float *X, float *Y, int k,
                   const mm_rec_bpr_opts *o, int64_t *correct, int64_t *skipped);
/* Fold-in of a new user with the n given items (sorted, distinct): x (k + 1 floats) from
 * implicit's initial values (seeded by o->seed), then o->iterations epochs of n BPR
 * samples updating x only (item factors Y fixed; negatives: the item of a uniformly drawn
 * interaction of by_user, skipped when given with verify_negative_samples). */
void mm_rec_bpr_fold_in(const mm_rec_icsr *by_user, const int32_t *items, int64_t n, float *x,
                        const float *Y, int k, const mm_rec_bpr_opts *o);
/* One BPR update for user row x and item rows yi, yj (k + 1 floats each; yi may equal
 * yj); returns z = 1 / (1 + exp(x . (yi - yj))). */
float mm_rec_bpr_step(float *x, float *yi, float *yj, int k, float lr, float reg);

/* implicit's item-item models (CosineRecommender, TFIDFRecommender, BM25Recommender,
 * ItemItemRecommender). */
typedef enum {
  MM_REC_IKNN_COSINE,
  MM_REC_IKNN_TFIDF,
  MM_REC_IKNN_BM25,
  MM_REC_IKNN_PLAIN
} mm_rec_iknn_kind;

/* The weight of every entry of by_user (users x items) into w_user, as implicit's
 * weightings of the item rows: cosine x / |item|, tfidf sqrt(x) idf_u / |item row|, bm25
 * x (K1 + 1) / (K1 len_i + x) idf_u, plain x; idf_u = log(n_items) - log1p(entries of u).
 * idf (n_users) and item_f (n_items: 1 / the row norm, or BM25's len_i) receive what the
 * weights are made of, so mm_rec_iknn_fit weighs by_item's entries on the way. */
void mm_rec_iknn_weights(const mm_rec_icsr *by_user, const mm_rec_icsr *by_item,
                         mm_rec_iknn_kind kind, double K1, double B, float *w_user, double *idf,
                         double *item_f);
/* Similarity rows: for every item, the K items of largest sum_u w_ui w_uj (the item itself
 * included), kept with implicit's top-K rule; each row best first (ties: smaller id).
 * ptr (n_items + 1), idx and val (n_items * K) are the caller's; threads over items. -1
 * when out of memory. */
int mm_rec_iknn_fit(mm_ctx *ctx, const mm_rec_icsr *by_user, const mm_rec_icsr *by_item,
                    mm_rec_iknn_kind kind, double K1, const float *w_user, const double *idf,
                    const double *item_f, int K, int64_t *ptr, int32_t *idx, double *val);
/* scores[j] += sum over the n (item, value) pairs of value * sim(item, j) over the kept
 * rows. scores (n_items entries) must be NaN on entry: an item first reached starts at 0
 * and is listed in touched (the count is returned); the others stay NaN. */
int32_t mm_rec_iknn_scores(const int64_t *ptr, const int32_t *idx, const double *val, int64_t n,
                           const int32_t *items, const float *values, double *scores,
                           int32_t *touched);
/* A seeded synthetic interaction set: `factors` latent topics; every item belongs to one
 * topic and has a Zipf popularity within it; every user mixes one to three topics (random
 * weights) and draws its items from its topics by popularity, or with probability `noise`
 * from all items by popularity; no pair twice. Activity per user is log-normal (at least
 * one interaction). Ratings 1..5: round(1 + 4 w + N(0, 0.5^2)) clipped, with w the user's
 * weight of the item's topic (0 for the noise draws). Rows come user by user; ts (may be
 * NULL) gets each interaction's draw position within its user. r's arrays are the
 * caller's (n entries). -1 with a message for impossible sizes or when out of memory. */
typedef struct mm_rec_synth_opts {
  int32_t users, items;
  int64_t interactions;
  int factors;
  double noise;
  uint64_t seed;
} mm_rec_synth_opts;
int mm_rec_synthetic(mm_ctx *ctx, const mm_rec_synth_opts *o, mm_rec_ratings *r);

/* NumPy's np.random.default_rng(seed) (SeedSequence + PCG64) and its float32 uniform draws,
 * bit for bit: implicit draws its initial factors from it. */
typedef struct mm_rec_npy_rng {
  uint64_t state_hi, state_lo, inc_hi, inc_lo;
  bool has32;
  uint32_t u32;
} mm_rec_npy_rng;
void mm_rec_npy_seed(mm_rec_npy_rng *g, uint64_t seed);
uint32_t mm_rec_npy_next32(mm_rec_npy_rng *g);
float mm_rec_npy_float(mm_rec_npy_rng *g); /* rng.random(dtype=np.float32) */

/* Fold-in of a new user into SVD / SVD++ (m->yj non-NULL): n_epochs of Surprise's SGD on
 * the n given (item, rating) pairs with the item parameters fixed, from bu = 0, pu = 0
 * (SVD++ adds the implicit term of the given items). Writes bu and pu (k floats) and, for
 * SVD++, the implicit term to imp (k floats; may be NULL otherwise). */
void mm_rec_mf_fold_in(const mm_rec_mf *m, int64_t n, const int32_t *items, const double *ratings,
                       const mm_rec_sgd_opts *o, double *bu, float *pu, float *imp);

#endif
