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

#endif
