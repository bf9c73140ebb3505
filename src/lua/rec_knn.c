/* Binding of the neighbourhood models (src/rec/knn.c): similarity rows, k-NN and
 * SlopeOne estimates, CoClustering's fit and cosines of factor rows. Functions of the
 * table `_rec`; lua/moonml/rec/ holds the API. Argument checks only. */
#include "rec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS_MT "moonml.rec.Rows"

typedef struct {
  mm_rec_rows r;
} rows_box;

static int rows_gc(lua_State *L) {
  rows_box *b = luaL_checkudata(L, 1, ROWS_MT);
  mm_rec_rows_free(&b->r);
  return 0;
}

static mm_rec_rows *check_rows(lua_State *L, int idx) {
  rows_box *b = luaL_testudata(L, idx, ROWS_MT);
  if (!b)
    mml_error(L, "moonml.rec: expected sparse rows as argument %d, got %s", idx,
              mml_typename(L, idx));
  return &b->r;
}

/* A new empty rows userdata on the stack; the caller fills b->r. */
static rows_box *new_rows(lua_State *L) {
  rows_box *b = lua_newuserdatauv(L, sizeof(rows_box), 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, ROWS_MT);
  return b;
}

/* Tells the collector about the native memory the rows hold. */
static void report_rows(lua_State *L, const mm_rec_rows *r) {
  size_t kb = mm_rec_rows_bytes(r) / 1024;
  if (kb > 0)
    lua_gc(L, LUA_GCSTEP, kb > 1000000 ? 1000000 : (int)kb);
}

/* Before building rows that may be large: the rows of a model fitted earlier may be
 * garbage already, and an incremental step would only free them a cycle later, so a
 * large build collects first (peak memory is then one model, not several). The size is
 * bounded by the co-rated pairs (sum over y of |row y|^2) and by n_x^2. */
static void collect_before(lua_State *L, const mm_rec_csr *by_y, int32_t n_x) {
  double pairs = 0;
  for (int32_t y = 0; y < by_y->n_rows; y++) {
    double m = (double)(by_y->ptr[y + 1] - by_y->ptr[y]);
    pairs += m * m;
  }
  double cap = (double)n_x * (double)n_x;
  if ((pairs < cap ? pairs : cap) * 12 > 64.0 * 1024 * 1024)
    lua_gc(L, LUA_GCCOLLECT);
}

/* A float64 vector of n entries at idx, or NULL when nil and optional. */
static const double *opt_vec64(lua_State *L, int idx, int64_t n, const char *what, bool required) {
  if (lua_isnoneornil(L, idx)) {
    if (required)
      mml_error(L, "moonml.rec: missing %s", what);
    return NULL;
  }
  mm_tensor *t = mml_test_tensor(L, idx);
  if (!t || t->dtype != MM_FLOAT64 || t->ndim != 1 || t->shape[0] != n || !mm_is_contiguous(t)) {
    mml_error(L, "moonml.rec: %s must be a contiguous float64 vector of %d entries", what, (int)n);
    return NULL;
  }
  return mm_data(t);
}

static mm_rec_sim_kind check_sim_name(lua_State *L, int idx) {
  static const char *const names[] = {"cosine", "msd", "pearson", "pearson_baseline", NULL};
  static const mm_rec_sim_kind kinds[] = {MM_REC_SIM_COSINE, MM_REC_SIM_MSD, MM_REC_SIM_PEARSON,
                                          MM_REC_SIM_PEARSON_BASELINE};
  const char *s = luaL_checkstring(L, idx);
  for (int j = 0; names[j]; j++)
    if (strcmp(s, names[j]) == 0)
      return kinds[j];
  return (mm_rec_sim_kind)mml_error(L, "moonml.rec: unknown similarity '%s'", s);
}

/* Reads (store, user_based, name, min_support, shrinkage, mu, bx, by) at 1..8. */
static void read_sim_args(lua_State *L, const mm_rec_csr **bx, const mm_rec_csr **by,
                          mm_rec_sim_opts *o) {
  mml_rec_check_store(L, 1);
  bool ub = lua_toboolean(L, 2);
  *bx = mml_rec_store_csr(L, 1, !ub);
  *by = mml_rec_store_csr(L, 1, ub);
  o->kind = check_sim_name(L, 3);
  o->min_support = (int)luaL_checkinteger(L, 4);
  o->shrinkage = luaL_checknumber(L, 5);
  o->mu = luaL_checknumber(L, 6);
  bool pb = o->kind == MM_REC_SIM_PEARSON_BASELINE;
  o->bx = opt_vec64(L, 7, (*bx)->n_rows, "bx", pb);
  o->by = opt_vec64(L, 8, (*by)->n_rows, "by", pb);
}

/* sims(store, user_based, name, min_support, shrinkage, mu, bx|nil, by|nil) -> rows */
static int l_sims(lua_State *L) {
  const mm_rec_csr *bx, *by;
  mm_rec_sim_opts o;
  read_sim_args(L, &bx, &by, &o);
  collect_before(L, by, bx->n_rows);
  rows_box *b = new_rows(L);
  mml_check_status(L, mm_rec_sim_rows(mml_ctx(L), bx, by, &o, &b->r));
  report_rows(L, &b->r);
  return 1;
}

static void push_row(lua_State *L, int64_t len, const int32_t *idx, const double *val) {
  lua_createtable(L, (int)len, 0);
  lua_createtable(L, (int)len, 0);
  for (int64_t t = 0; t < len; t++) {
    lua_pushinteger(L, idx[t] + 1);
    lua_rawseti(L, -3, t + 1);
    lua_pushnumber(L, val[t]);
    lua_rawseti(L, -2, t + 1);
  }
}

/* sim_row(store, user_based, name, min_support, shrinkage, mu, bx, by, x) -> ids, sims */
static int l_sim_row(lua_State *L) {
  const mm_rec_csr *bx, *by;
  mm_rec_sim_opts o;
  read_sim_args(L, &bx, &by, &o);
  int64_t x = luaL_checkinteger(L, 9) - 1;
  if (x < 0 || x >= bx->n_rows)
    mml_error(L, "moonml.rec: row %d out of range", (int)(x + 1));
  size_t n = bx->n_rows > 0 ? (size_t)bx->n_rows : 1;
  int32_t *idx = lua_newuserdatauv(L, n * sizeof(int32_t), 0);
  double *val = lua_newuserdatauv(L, n * sizeof(double), 0);
  int64_t len = mm_rec_sim_row(mml_ctx(L), bx, by, &o, (int32_t)x, idx, val);
  if (len < 0)
    return mml_core_error(L);
  push_row(L, len, idx, val);
  return 2;
}

/* rows:row(x) -> ids (1-based), values */
static int r_row(lua_State *L) {
  mm_rec_rows *r = check_rows(L, 1);
  int64_t x = luaL_checkinteger(L, 2) - 1;
  if (x < 0 || x >= r->n)
    mml_error(L, "moonml.rec: row %d out of range 1..%d", (int)(x + 1), (int)r->n);
  push_row(L, r->len[x], r->idx[x], r->val[x]);
  return 2;
}

/* rows:nnz() -> stored entries, rows:bytes() -> bytes held */
static int r_nnz(lua_State *L) {
  mm_rec_rows *r = check_rows(L, 1);
  int64_t s = 0;
  for (int32_t x = 0; x < r->n; x++)
    s += r->len[x];
  lua_pushinteger(L, s);
  return 1;
}

static int r_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mm_rec_rows_bytes(check_rows(L, 1)));
  return 1;
}

/* row_stats(store, by_item) -> means, population sds (float64 tensors) */
static int l_row_stats(lua_State *L) {
  mml_rec_check_store(L, 1);
  const mm_rec_csr *c = mml_rec_store_csr(L, 1, lua_toboolean(L, 2));
  int64_t n = c->n_rows;
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *m = mml_push_tensor(L, mm_empty(ctx, MM_FLOAT64, 1, &n));
  mm_tensor *s = mml_push_tensor(L, mm_empty(ctx, MM_FLOAT64, 1, &n));
  mm_rec_row_stats(c, mm_data(m), mm_data(s));
  return 2;
}

/* Lua array of 1-based ids at idx -> 0-based int32 (0 and out-of-range -> -1). */
static int32_t *read_ids(lua_State *L, int idx, int64_t n, int64_t limit) {
  int32_t *v = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(n > 0 ? n : 1), 0);
  for (int64_t j = 0; j < n; j++) {
    lua_rawgeti(L, idx, j + 1);
    int64_t x = lua_tointeger(L, -1) - 1;
    lua_pop(L, 1);
    v[j] = x >= 0 && x < limit ? (int32_t)x : -1;
  }
  return v;
}

static int64_t check_pairs(lua_State *L, int a, int b) {
  luaL_checktype(L, a, LUA_TTABLE);
  luaL_checktype(L, b, LUA_TTABLE);
  int64_t n = (int64_t)lua_rawlen(L, a);
  if ((int64_t)lua_rawlen(L, b) != n)
    mml_error(L, "moonml.rec: id arrays differ in length");
  return n;
}

/* The k-NN model given as (kind, rows, store, user_based, k, min_k) at 1..6 and (means,
 * sigmas, mu, bx, by) from `extra` on. */
static void read_knn(lua_State *L, int extra, mm_rec_knn *m) {
  static const char *const kinds[] = {"basic", "means", "zscore", "baseline", NULL};
  memset(m, 0, sizeof *m);
  m->kind = (mm_rec_knn_kind)luaL_checkoption(L, 1, NULL, kinds);
  m->sims = check_rows(L, 2);
  mml_rec_check_store(L, 3);
  bool ub = lua_toboolean(L, 4);
  m->by_x = mml_rec_store_csr(L, 3, !ub);
  m->by_y = mml_rec_store_csr(L, 3, ub);
  if (m->sims->n != m->by_x->n_rows)
    mml_error(L, "moonml.rec: similarity rows do not match the train set");
  lua_Integer k = luaL_checkinteger(L, 5), min_k = luaL_checkinteger(L, 6);
  if (k < 0 || min_k < 0)
    mml_error(L, "moonml.rec: negative k or min_k");
  /* any k beyond the number of rows means "all of them" */
  m->k = k > INT32_MAX ? INT32_MAX : (int)k;
  m->min_k = min_k > INT32_MAX ? INT32_MAX : (int)min_k;
  int64_t nx = m->by_x->n_rows, ny = m->by_y->n_rows;
  bool needs_means = m->kind == MM_REC_KNN_MEANS || m->kind == MM_REC_KNN_ZSCORE;
  m->means = opt_vec64(L, extra, nx, "means", needs_means);
  m->sigmas = opt_vec64(L, extra + 1, nx, "sigmas", m->kind == MM_REC_KNN_ZSCORE);
  m->mu = luaL_optnumber(L, extra + 2, 0);
  m->bx = opt_vec64(L, extra + 3, nx, "bx", m->kind == MM_REC_KNN_BASELINE);
  m->by = opt_vec64(L, extra + 4, ny, "by", m->kind == MM_REC_KNN_BASELINE);
}

static void push_est_ak(lua_State *L, const double *est, const int32_t *ak, int64_t n) {
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  for (int64_t j = 0; j < n; j++) {
    lua_pushnumber(L, est[j]);
    lua_rawseti(L, -3, j + 1);
    lua_pushinteger(L, ak[j]);
    lua_rawseti(L, -2, j + 1);
  }
}

/* knn_scores(kind, rows, store, user_based, k, min_k, y, means|nil, sigmas|nil, mu,
 * bx|nil, by|nil) -> estimates over the x space with y (NaN where none), actual_k */
static int l_knn_scores(lua_State *L) {
  mm_rec_knn m;
  read_knn(L, 8, &m);
  int64_t y = luaL_checkinteger(L, 7) - 1;
  if (y < 0 || y >= m.by_y->n_rows || m.by_y->ptr[y + 1] == m.by_y->ptr[y])
    mml_error(L, "moonml.rec: row %d has no training ratings", (int)(y + 1));
  int64_t nx = m.by_x->n_rows;
  double *est = lua_newuserdatauv(L, sizeof(double) * (size_t)(nx > 0 ? nx : 1), 0);
  int32_t *ak = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(nx > 0 ? nx : 1), 0);
  mml_check_status(L, mm_rec_knn_scores(mml_ctx(L), &m, (int32_t)y, est, ak));
  push_est_ak(L, est, ak, nx);
  return 2;
}

/* knn_scores_new(kind, rows, store, user_based = false, k, min_k, items, ratings, means|nil,
 * sigmas|nil, mu, bx|nil, by|nil, bu_new) -> estimates over the item space (NaN where
 * none), actual_k, for a new user given as (item, rating) pairs (items 1-based): the
 * item-based estimates from the given ratings alone; bu_new is the user's baseline. */
static int l_knn_scores_new(lua_State *L) {
  mm_rec_knn m;
  read_knn(L, 9, &m);
  if (lua_toboolean(L, 4))
    mml_error(L, "moonml.rec: a new user folds into item-based models only");
  int64_t n = check_pairs(L, 7, 8);
  int64_t nx = m.by_x->n_rows;
  int32_t *items = read_ids(L, 7, n, nx);
  double *val = lua_newuserdatauv(L, sizeof(double) * (size_t)(n > 0 ? n : 1), 0);
  for (int64_t j = 0; j < n; j++) {
    if (items[j] < 0)
      mml_error(L, "moonml.rec: bad item at position %d", (int)(j + 1));
    lua_rawgeti(L, 8, j + 1);
    val[j] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  int64_t ptr[2] = {0, n};
  mm_rec_csr one = {1, ptr, items, val};
  double by_new = luaL_optnumber(L, 14, 0);
  m.by_y = &one;
  if (m.by)
    m.by = &by_new;
  double *est = lua_newuserdatauv(L, sizeof(double) * (size_t)(nx > 0 ? nx : 1), 0);
  int32_t *ak = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(nx > 0 ? nx : 1), 0);
  mml_check_status(L, mm_rec_knn_scores(mml_ctx(L), &m, 0, est, ak));
  push_est_ak(L, est, ak, nx);
  return 2;
}

/* knn_predict(kind, rows, store, user_based, k, min_k, xs, ys, means|nil, sigmas|nil, mu,
 * bx|nil, by|nil) -> estimates (NaN where none), actual_k (-1 where x or y is unknown) */
static int l_knn_predict(lua_State *L) {
  mm_rec_knn m;
  read_knn(L, 9, &m);
  int64_t n = check_pairs(L, 7, 8);
  int64_t nx = m.by_x->n_rows, ny = m.by_y->n_rows;
  int32_t *xs = read_ids(L, 7, n, nx), *ys = read_ids(L, 8, n, ny);
  double *est = lua_newuserdatauv(L, sizeof(double) * (size_t)(n > 0 ? n : 1), 0);
  int32_t *ak = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(n > 0 ? n : 1), 0);
  mml_check_status(L, mm_rec_knn_predict(mml_ctx(L), &m, n, xs, ys, est, ak));
  push_est_ak(L, est, ak, n);
  return 2;
}

/* slope_one_fit(store) -> rows of deviations */
static int l_slope_one_fit(lua_State *L) {
  mml_rec_check_store(L, 1);
  const mm_rec_csr *bu = mml_rec_store_csr(L, 1, false), *bi = mml_rec_store_csr(L, 1, true);
  collect_before(L, bu, bi->n_rows);
  rows_box *b = new_rows(L);
  mml_check_status(L, mm_rec_slope_one_fit(mml_ctx(L), bu, bi, &b->r));
  report_rows(L, &b->r);
  return 1;
}

/* slope_one_predict(rows, store, users, items, user_means) -> estimates (NaN: unknown) */
static int l_slope_one_predict(lua_State *L) {
  mm_rec_rows *dev = check_rows(L, 1);
  mml_rec_check_store(L, 2);
  const mm_rec_csr *bu = mml_rec_store_csr(L, 2, false), *bi = mml_rec_store_csr(L, 2, true);
  if (dev->n != bi->n_rows)
    mml_error(L, "moonml.rec: deviation rows do not match the train set");
  int64_t n = check_pairs(L, 3, 4);
  const double *mean = opt_vec64(L, 5, bu->n_rows, "user means", true);
  int32_t *us = read_ids(L, 3, n, bu->n_rows), *is = read_ids(L, 4, n, bi->n_rows);
  double *est = lua_newuserdatauv(L, sizeof(double) * (size_t)(n > 0 ? n : 1), 0);
  mml_check_status(L, mm_rec_slope_one_predict(mml_ctx(L), dev, bu, bi, mean, n, us, is, est));
  lua_createtable(L, (int)n, 0);
  for (int64_t j = 0; j < n; j++) {
    lua_pushnumber(L, est[j]);
    lua_rawseti(L, -2, j + 1);
  }
  return 1;
}

static void push_doubles(lua_State *L, const double *v, int64_t n) {
  lua_createtable(L, (int)n, 0);
  for (int64_t j = 0; j < n; j++) {
    lua_pushnumber(L, v[j]);
    lua_rawseti(L, -2, j + 1);
  }
}

/* slope_one_scores(rows, store, user, user_means) -> estimates over the item space
 * (false where the item has no training ratings) */
static int l_slope_one_scores(lua_State *L) {
  mm_rec_rows *dev = check_rows(L, 1);
  mml_rec_check_store(L, 2);
  const mm_rec_csr *bu = mml_rec_store_csr(L, 2, false), *bi = mml_rec_store_csr(L, 2, true);
  if (dev->n != bi->n_rows)
    mml_error(L, "moonml.rec: deviation rows do not match the train set");
  int64_t u = luaL_checkinteger(L, 3) - 1;
  if (u < 0 || u >= bu->n_rows || bu->ptr[u + 1] == bu->ptr[u])
    mml_error(L, "moonml.rec: user %d has no training ratings", (int)(u + 1));
  const double *mean = opt_vec64(L, 4, bu->n_rows, "user means", true);
  int64_t ni = bi->n_rows;
  double *est = lua_newuserdatauv(L, sizeof(double) * (size_t)(ni > 0 ? ni : 1), 0);
  mml_check_status(L, mm_rec_slope_one_scores(mml_ctx(L), dev, bu, bi, mean, (int32_t)u, est));
  lua_createtable(L, (int)ni, 0);
  for (int64_t j = 0; j < ni; j++) {
    if (est[j] == est[j])
      lua_pushnumber(L, est[j]);
    else
      lua_pushboolean(L, 0);
    lua_rawseti(L, -2, j + 1);
  }
  return 1;
}

/* coclustering_fit(store, mu, n_cltr_u, n_cltr_i, n_epochs, seed|nil) -> {cltr_u, cltr_i
 * (1-based clusters), user_mean, item_mean, avg_u, avg_i, avg_co (row-major)}. Initial
 * clusters are uniform draws from moonml's generator (or one seeded for the call). */
static int l_coclustering_fit(lua_State *L) {
  mm_rec_ratings *s = mml_rec_check_store(L, 1);
  const mm_rec_csr *bu = mml_rec_store_csr(L, 1, false), *bi = mml_rec_store_csr(L, 1, true);
  double mu = luaL_checknumber(L, 2);
  int64_t ncu = luaL_checkinteger(L, 3), nci = luaL_checkinteger(L, 4);
  int n_epochs = (int)luaL_checkinteger(L, 5);
  if (ncu < 1 || nci < 1 || ncu > 100000 || nci > 100000 || ncu * nci > 10000000)
    mml_error(L, "moonml.rec: bad cluster counts");
  mm_rec_cocluster m;
  m.n_cltr_u = (int)ncu;
  m.n_cltr_i = (int)nci;
  size_t nu = s->n_users > 0 ? (size_t)s->n_users : 1, ni = s->n_items > 0 ? (size_t)s->n_items : 1;
  m.cltr_u = lua_newuserdatauv(L, sizeof(int32_t) * nu, 0);
  m.cltr_i = lua_newuserdatauv(L, sizeof(int32_t) * ni, 0);
  m.user_mean = lua_newuserdatauv(L, sizeof(double) * nu, 0);
  m.item_mean = lua_newuserdatauv(L, sizeof(double) * ni, 0);
  m.avg_u = lua_newuserdatauv(L, sizeof(double) * (size_t)ncu, 0);
  m.avg_i = lua_newuserdatauv(L, sizeof(double) * (size_t)nci, 0);
  m.avg_co = lua_newuserdatauv(L, sizeof(double) * (size_t)(ncu * nci), 0);
  bool seeded = !lua_isnoneornil(L, 6);
  uint64_t seed = seeded ? (uint64_t)luaL_checkinteger(L, 6) : 0;
  mm_ctx *ctx = mml_ctx(L), *own = NULL;
  if (seeded) {
    own = mm_ctx_new();
    if (!own)
      mml_error(L, "moonml.rec: out of memory");
    mm_manual_seed(own, seed);
  }
  mm_ctx *rng = own ? own : ctx;
  for (int32_t u = 0; u < s->n_users; u++) {
    int c = (int)(mm_random_uniform(rng) * (double)ncu);
    m.cltr_u[u] = c < ncu ? c : (int32_t)ncu - 1;
  }
  for (int32_t i = 0; i < s->n_items; i++) {
    int c = (int)(mm_random_uniform(rng) * (double)nci);
    m.cltr_i[i] = c < nci ? c : (int32_t)nci - 1;
  }
  if (own)
    mm_ctx_release(own);
  mml_check_status(L, mm_rec_coclustering_fit(ctx, bu, bi, mu, n_epochs, &m));
  lua_createtable(L, 0, 7);
  lua_createtable(L, s->n_users, 0);
  for (int32_t u = 0; u < s->n_users; u++) {
    lua_pushinteger(L, m.cltr_u[u] + 1);
    lua_rawseti(L, -2, u + 1);
  }
  lua_setfield(L, -2, "cltr_u");
  lua_createtable(L, s->n_items, 0);
  for (int32_t i = 0; i < s->n_items; i++) {
    lua_pushinteger(L, m.cltr_i[i] + 1);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "cltr_i");
  push_doubles(L, m.user_mean, s->n_users);
  lua_setfield(L, -2, "user_mean");
  push_doubles(L, m.item_mean, s->n_items);
  lua_setfield(L, -2, "item_mean");
  push_doubles(L, m.avg_u, ncu);
  lua_setfield(L, -2, "avg_u");
  push_doubles(L, m.avg_i, nci);
  lua_setfield(L, -2, "avg_i");
  push_doubles(L, m.avg_co, ncu * nci);
  lua_setfield(L, -2, "avg_co");
  return 1;
}

/* factor_cosine(matrix, row) -> Lua array of the cosines of row `row` (1-based) with
 * every row of a contiguous float32 n x k matrix */
static int l_factor_cosine(lua_State *L) {
  mm_tensor *t = mml_test_tensor(L, 1);
  if (!t || t->dtype != MM_FLOAT32 || t->ndim != 2 || !mm_is_contiguous(t))
    mml_error(L, "moonml.rec: factors must be a contiguous float32 matrix");
  int64_t n = t->shape[0], k = t->shape[1];
  int64_t row = luaL_checkinteger(L, 2) - 1;
  if (row < 0 || row >= n)
    mml_error(L, "moonml.rec: row %d out of range", (int)(row + 1));
  double *out = lua_newuserdatauv(L, sizeof(double) * (size_t)(n > 0 ? n : 1), 0);
  mm_rec_cosine_rows(mm_data(t), (int32_t)n, (int32_t)k, (int32_t)row, out);
  push_doubles(L, out, n);
  return 1;
}

/* rows:tensors() -> ptr (int64, n + 1 offsets), idx (int64, 1-based), val (float64): the rows
 * as one CSR, to be saved (moonml.rec.persist) */
static int r_tensors(lua_State *L) {
  mm_rec_rows *r = check_rows(L, 1);
  mm_ctx *ctx = mml_ctx(L);
  int64_t n1 = (int64_t)r->n + 1, nnz = 0;
  for (int32_t x = 0; x < r->n; x++)
    nnz += r->len[x];
  int64_t *ptr = mm_data(mml_push_tensor(L, mm_empty(ctx, MM_INT64, 1, &n1)));
  int64_t *idx = mm_data(mml_push_tensor(L, mm_empty(ctx, MM_INT64, 1, &nnz)));
  double *val = mm_data(mml_push_tensor(L, mm_empty(ctx, MM_FLOAT64, 1, &nnz)));
  int64_t at = 0;
  ptr[0] = 0;
  for (int32_t x = 0; x < r->n; x++) {
    for (int32_t t = 0; t < r->len[x]; t++, at++) {
      idx[at] = (int64_t)r->idx[x][t] + 1;
      val[at] = r->val[x][t];
    }
    ptr[x + 1] = at;
  }
  return 3;
}

/* rows_from_tensors(ptr, idx, val, n_cols) -> rows: the inverse of rows:tensors(), checking
 * everything (the tensors come from a file): ptr starts at 0, never decreases and ends at the
 * length of idx and val; every idx is in 1..n_cols, and no row holds an index twice (the
 * k-NN kernels size their candidate heaps on that). */
static int l_rows_from_tensors(lua_State *L) {
  mm_tensor *tp = mml_test_tensor(L, 1), *ti = mml_test_tensor(L, 2), *tv = mml_test_tensor(L, 3);
  int64_t n_cols = luaL_checkinteger(L, 4);
  if (!tp || !ti || !tv || tp->dtype != MM_INT64 || ti->dtype != MM_INT64 ||
      tv->dtype != MM_FLOAT64 || tp->ndim != 1 || ti->ndim != 1 || tv->ndim != 1 ||
      !mm_is_contiguous(tp) || !mm_is_contiguous(ti) || !mm_is_contiguous(tv))
    mml_error(L, "moonml.rec: sparse rows need 1-D contiguous int64 ptr and idx and float64 val");
  int64_t n = tp->shape[0] - 1, nnz = ti->shape[0];
  const int64_t *ptr = mm_data(tp), *idx = mm_data(ti);
  const double *val = mm_data(tv);
  if (n < 0 || n > INT32_MAX || tv->shape[0] != nnz || ptr[0] != 0 || ptr[n] != nnz || n_cols < 0 ||
      n_cols > INT32_MAX)
    mml_error(L, "moonml.rec: sparse rows: ptr does not match idx and val");
  for (int64_t x = 0; x < n; x++)
    if (ptr[x + 1] < ptr[x] || ptr[x + 1] - ptr[x] > INT32_MAX)
      mml_error(L, "moonml.rec: sparse rows: ptr decreases at row %d", (int)(x + 1));
  for (int64_t k = 0; k < nnz; k++)
    if (idx[k] < 1 || idx[k] > n_cols)
      mml_error(L, "moonml.rec: sparse rows: index %d out of range 1..%d", (int)idx[k],
                (int)n_cols);
  /* last_row[j]: 1 + the last row that held index j (a userdata: an error frees it) */
  int32_t *last_row = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(n_cols > 0 ? n_cols : 1), 0);
  memset(last_row, 0, sizeof(int32_t) * (size_t)n_cols);
  for (int64_t x = 0; x < n; x++)
    for (int64_t k = ptr[x]; k < ptr[x + 1]; k++) {
      if (last_row[idx[k] - 1] == (int32_t)(x + 1))
        mml_error(L, "moonml.rec: sparse rows: row %d holds index %d twice", (int)(x + 1),
                  (int)idx[k]);
      last_row[idx[k] - 1] = (int32_t)(x + 1);
    }
  lua_pop(L, 1);
  rows_box *b = new_rows(L);
  mm_rec_rows *r = &b->r;
  size_t m = n > 0 ? (size_t)n : 1;
  r->len = calloc(m, sizeof(int32_t));
  r->idx = calloc(m, sizeof(int32_t *));
  r->val = calloc(m, sizeof(double *));
  if (!r->len || !r->idx || !r->val)
    mml_error(L, "moonml.rec: out of memory");
  r->n = (int32_t)n; /* from here on the collector frees what is filled */
  for (int64_t x = 0; x < n; x++) {
    int64_t len = ptr[x + 1] - ptr[x];
    if (len == 0)
      continue;
    r->idx[x] = malloc(sizeof(int32_t) * (size_t)len);
    r->val[x] = malloc(sizeof(double) * (size_t)len);
    if (!r->idx[x] || !r->val[x])
      mml_error(L, "moonml.rec: out of memory");
    r->len[x] = (int32_t)len;
    for (int64_t t = 0; t < len; t++) {
      r->idx[x][t] = (int32_t)(idx[ptr[x] + t] - 1);
      r->val[x][t] = val[ptr[x] + t];
    }
  }
  report_rows(L, r);
  return 1;
}

static const luaL_Reg rows_methods[] = {
    {"row", r_row}, {"nnz", r_nnz}, {"bytes", r_bytes}, {"tensors", r_tensors}, {NULL, NULL}};

static const luaL_Reg knn_funcs[] = {{"sims", l_sims},
                                     {"sim_row", l_sim_row},
                                     {"row_stats", l_row_stats},
                                     {"knn_predict", l_knn_predict},
                                     {"knn_scores", l_knn_scores},
                                     {"knn_scores_new", l_knn_scores_new},
                                     {"slope_one_scores", l_slope_one_scores},
                                     {"slope_one_fit", l_slope_one_fit},
                                     {"slope_one_predict", l_slope_one_predict},
                                     {"coclustering_fit", l_coclustering_fit},
                                     {"factor_cosine", l_factor_cosine},
                                     {"rows_from_tensors", l_rows_from_tensors},
                                     {NULL, NULL}};

void mml_rec_register_knn(lua_State *L, const mml_open_state *st, int table) {
  table = lua_absindex(L, table);
  luaL_newmetatable(L, ROWS_MT);
  lua_pushcfunction(L, rows_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  mml_register(L, st, lua_absindex(L, -1), rows_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  mml_register(L, st, table, knn_funcs);
}
