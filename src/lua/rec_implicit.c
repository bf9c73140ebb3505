/* Binding of the implicit-feedback kernels (src/rec/implicit.c, als.c, bpr.c, iknn.c):
 * the interaction matrix userdata, the solvers, the item similarity rows, one user's
 * top-n in a single call, and the synthetic generator. Functions of the table `_rec`;
 * lua/moonml/rec/implicit.lua holds the API. Argument checks only. */
#include "rec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INTER_MT "moonml.rec.Interactions"
#define SIMS_MT "moonml.rec.ItemSims"
#define RANK_MT "moonml.rec.Rank"

/* One block: the header, both orientations, then the scratch of one recommend call
 * (a score per item and an index per item). */
typedef struct {
  mm_rec_icsr by_user, by_item;
  int64_t nnz;
  size_t bytes;
  double *scores;
  int32_t *top;
  int32_t *empty; /* the items without interactions, n_empty of them */
  int32_t n_empty;
  int32_t *touched; /* ItemKNN: the items one user's rows reach */
  bool scores_nan;  /* scores are all NaN (ItemKNN leaves them so after a call) */
} inter_box;

typedef struct {
  int32_t n_items;
  int64_t *ptr;
  int32_t *idx;
  double *val;
  size_t bytes;
} sims_box;

typedef struct {
  int32_t n;
  int32_t rank[];
} rank_box;

static size_t a8(size_t n) { return (n + 7) & ~(size_t)7; }

static inter_box *check_inter(lua_State *L, int idx) {
  inter_box *b = luaL_testudata(L, idx, INTER_MT);
  if (!b)
    mml_error(L, "moonml.rec: expected an interaction matrix as argument %d, got %s", idx,
              mml_typename(L, idx));
  return b;
}

static sims_box *check_sims(lua_State *L, int idx) {
  sims_box *b = luaL_testudata(L, idx, SIMS_MT);
  if (!b)
    mml_error(L, "moonml.rec: expected item similarities as argument %d, got %s", idx,
              mml_typename(L, idx));
  return b;
}

/* A contiguous float32 matrix rows x cols (rows < 0: any; cols -2: any) or vector of
 * rows entries (cols -1). */
static mm_tensor *check_f32(lua_State *L, int idx, int64_t rows, int64_t cols, const char *what) {
  mm_tensor *t = mml_test_tensor(L, idx);
  bool ok = t && t->dtype == MM_FLOAT32 && mm_is_contiguous(t) &&
            (cols == -1 ? t->ndim == 1 : t->ndim == 2 && (cols == -2 || t->shape[1] == cols)) &&
            (rows < 0 || t->shape[0] == rows);
  if (!ok)
    mml_error(L, "moonml.rec: %s must be a contiguous float32 %s", what,
              cols == -1 ? "vector of the right length" : "matrix of the right shape");
  return t;
}

/* A new interaction userdata for n_users x n_items and up to nnz entries. */
static inter_box *new_inter(lua_State *L, int32_t n_users, int32_t n_items, int64_t nnz) {
  size_t head = a8(sizeof(inter_box));
  size_t body = mm_rec_inter_bytes(n_users, n_items, nnz);
  size_t scratch = a8(((size_t)n_items + 1) * sizeof(double)) + 3 * a8(((size_t)n_items + 1) * 4);
  inter_box *b = lua_newuserdatauv(L, head + body + scratch, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, INTER_MT);
  b->bytes = head + body + scratch;
  char *p = (char *)b + head + body;
  void *vp = p;
  b->scores = vp;
  vp = p + a8(((size_t)n_items + 1) * sizeof(double));
  b->top = vp;
  vp = p + a8(((size_t)n_items + 1) * sizeof(double)) + a8(((size_t)n_items + 1) * 4);
  b->empty = vp;
  vp = p + a8(((size_t)n_items + 1) * sizeof(double)) + 2 * a8(((size_t)n_items + 1) * 4);
  b->touched = vp;
  b->scores_nan = false;
  return b;
}

/* Scores NaN for the items without interactions (not candidates). */
static void mask_items(inter_box *b, double *scores) {
  for (int32_t j = 0; j < b->n_empty; j++)
    scores[b->empty[j]] = NAN;
}

/* Lists the items without interactions (in the scratch area after the top indices). */
static void find_empty(inter_box *b) {
  b->n_empty = 0;
  for (int32_t i = 0; i < b->by_item.n_rows; i++)
    if (b->by_item.ptr[i] == b->by_item.ptr[i + 1])
      b->empty[b->n_empty++] = i;
}

/* inter_build(store, binary) -> interactions (users x items) */
static int l_inter_build(lua_State *L) {
  mm_rec_ratings *r = mml_rec_check_store(L, 1);
  bool binary = lua_toboolean(L, 2);
  inter_box *b = new_inter(L, r->n_users, r->n_items, r->n);
  void *mem = (char *)b + a8(sizeof(inter_box));
  int64_t nnz = mm_rec_inter_build(mml_ctx(L), r->n_users, r->n_items, NULL, NULL, r->n, r->user,
                                   r->item, r->rating, binary, mem, &b->by_user, &b->by_item);
  if (nnz < 0)
    return mml_core_error(L);
  b->nnz = nnz;
  find_empty(b);
  return 1;
}

/* Lua array at idx of n 1-based ids below limit -> 0-based int32 (an error otherwise). */
static int32_t *read_ids(lua_State *L, int idx, int64_t n, int64_t limit, const char *what) {
  int32_t *v = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(n > 0 ? n : 1), 0);
  for (int64_t j = 0; j < n; j++) {
    lua_rawgeti(L, idx, j + 1);
    int isnum = 0;
    lua_Integer x = lua_tointegerx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || x < 1 || x > limit)
      mml_error(L, "moonml.rec: bad %s id at position %d", what, (int)(j + 1));
    v[j] = (int32_t)(x - 1);
  }
  return v;
}

static double *read_doubles(lua_State *L, int idx, int64_t n) {
  double *v = lua_newuserdatauv(L, sizeof(double) * (size_t)(n > 0 ? n : 1), 0);
  for (int64_t j = 0; j < n; j++) {
    lua_rawgeti(L, idx, j + 1);
    int isnum = 0;
    v[j] = lua_tonumberx(L, -1, &isnum);
    lua_pop(L, 1);
    if (!isnum || !isfinite(v[j]))
      mml_error(L, "moonml.rec: value at position %d is not a finite number", (int)(j + 1));
  }
  return v;
}

/* inter_replace(inter, by_item, n_rows, n_cols, replace, rows, cols, vals, binary) -> new
 * interactions: the rows listed in `replace` (users, or items when by_item) are dropped and
 * the triples (rows[k], cols[k], vals[k]) added; the id spaces grow to n_rows x n_cols. */
static int l_inter_replace(lua_State *L) {
  inter_box *old = check_inter(L, 1);
  bool by_item = lua_toboolean(L, 2);
  int64_t nr = luaL_checkinteger(L, 3), nc = luaL_checkinteger(L, 4);
  const mm_rec_icsr *keep = by_item ? &old->by_item : &old->by_user;
  if (nr < keep->n_rows || nc < keep->n_cols || nr > INT32_MAX || nc > INT32_MAX)
    mml_error(L, "moonml.rec: the id spaces can only grow");
  luaL_checktype(L, 5, LUA_TTABLE);
  luaL_checktype(L, 6, LUA_TTABLE);
  luaL_checktype(L, 7, LUA_TTABLE);
  luaL_checktype(L, 8, LUA_TTABLE);
  bool binary = lua_toboolean(L, 9);
  int64_t nrep = (int64_t)lua_rawlen(L, 5), n = (int64_t)lua_rawlen(L, 6);
  if ((int64_t)lua_rawlen(L, 7) != n || (int64_t)lua_rawlen(L, 8) != n)
    mml_error(L, "moonml.rec: rows, columns and values differ in length");
  int32_t *rep = read_ids(L, 5, nrep, nr, "row");
  int32_t *rows = read_ids(L, 6, n, nr, "row");
  int32_t *cols = read_ids(L, 7, n, nc, "column");
  double *vals = read_doubles(L, 8, n);
  unsigned char *drop = lua_newuserdatauv(L, (size_t)keep->n_rows + 1, 0);
  memset(drop, 0, (size_t)keep->n_rows + 1);
  for (int64_t j = 0; j < nrep; j++)
    if (rep[j] < keep->n_rows)
      drop[rep[j]] = 1;
  int64_t kept = 0;
  for (int32_t r = 0; r < keep->n_rows; r++)
    if (!drop[r])
      kept += keep->ptr[r + 1] - keep->ptr[r];
  int32_t nu = (int32_t)(by_item ? nc : nr), ni = (int32_t)(by_item ? nr : nc);
  inter_box *b = new_inter(L, nu, ni, kept + n);
  void *mem = (char *)b + a8(sizeof(inter_box));
  mm_rec_icsr *by_row = by_item ? &b->by_item : &b->by_user;
  mm_rec_icsr *by_col = by_item ? &b->by_user : &b->by_item;
  /* the new block is laid out as (rows, columns): carve it in that order */
  int64_t nnz = mm_rec_inter_build(mml_ctx(L), (int32_t)nr, (int32_t)nc, keep, drop, n, rows, cols,
                                   vals, binary, mem, by_row, by_col);
  if (nnz < 0)
    return mml_core_error(L);
  b->nnz = nnz;
  find_empty(b);
  return 1;
}

/* ------------------------------------------------------------------ interaction methods */

/* space() -> n_users, n_items, entries */
static int i_space(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  lua_pushinteger(L, b->by_user.n_rows);
  lua_pushinteger(L, b->by_item.n_rows);
  lua_pushinteger(L, b->nnz);
  return 3;
}

static int64_t icsr_len(const mm_rec_icsr *c, lua_Integer row) {
  if (row < 1 || row > c->n_rows)
    return 0;
  return c->ptr[row] - c->ptr[row - 1];
}

static int i_user_count(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  lua_pushinteger(L, icsr_len(&b->by_user, luaL_checkinteger(L, 2)));
  return 1;
}

static int i_item_count(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  lua_pushinteger(L, icsr_len(&b->by_item, luaL_checkinteger(L, 2)));
  return 1;
}

/* row(by_item, id) -> Lua arrays of the other ids (1-based) and the values */
static int i_row(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  const mm_rec_icsr *c = lua_toboolean(L, 2) ? &b->by_item : &b->by_user;
  lua_Integer row = luaL_checkinteger(L, 3);
  int64_t n = icsr_len(c, row);
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  for (int64_t k = 0; k < n; k++) {
    int64_t at = c->ptr[row - 1] + k;
    lua_pushinteger(L, c->idx[at] + 1);
    lua_rawseti(L, -3, k + 1);
    lua_pushnumber(L, c->val[at]);
    lua_rawseti(L, -2, k + 1);
  }
  return 2;
}

static int i_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_inter(L, 1)->bytes);
  return 1;
}

/* popularity() -> float64 tensor: the sum of every item's values */
static int i_popularity(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  int64_t ni = b->by_item.n_rows;
  mm_tensor *t = mml_push_tensor(L, mm_zeros(mml_ctx(L), MM_FLOAT64, 1, &ni));
  double *p = mm_data(t);
  for (int32_t i = 0; i < b->by_item.n_rows; i++)
    for (int64_t q = b->by_item.ptr[i]; q < b->by_item.ptr[i + 1]; q++)
      p[i] += b->by_item.val[q];
  return 1;
}

/* ------------------------------------------------------------------ ALS */

static void read_als(lua_State *L, int idx, mm_rec_als_opts *o) {
  o->regularization = luaL_checknumber(L, idx);
  o->alpha = luaL_checknumber(L, idx + 1);
  o->iterations = (int)luaL_checkinteger(L, idx + 2);
  o->cg_steps = (int)luaL_checkinteger(L, idx + 3);
  o->calculate_loss = lua_toboolean(L, idx + 4);
}

/* als_fit(inter, X, Y, reg, alpha, iterations, cg_steps, want_loss) -> losses | nil */
static int l_als_fit(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  mm_tensor *X = check_f32(L, 2, b->by_user.n_rows, -2, "user factors");
  int64_t k = X->ndim == 2 ? X->shape[1] : 0;
  X = check_f32(L, 2, b->by_user.n_rows, k, "user factors");
  mm_tensor *Y = check_f32(L, 3, b->by_item.n_rows, k, "item factors");
  mm_rec_als_opts o;
  read_als(L, 4, &o);
  if (o.iterations < 0 || o.cg_steps < 1)
    mml_error(L, "moonml.rec: bad iterations or cg_steps");
  double *losses = lua_newuserdatauv(L, sizeof(double) * (size_t)(o.iterations + 1), 0);
  mml_check_status(L, mm_rec_als_fit(mml_ctx(L), &b->by_user, &b->by_item, mm_data(X), mm_data(Y),
                                     (int)k, &o, losses));
  mm_bump_version(X);
  mm_bump_version(Y);
  if (!o.calculate_loss) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, o.iterations, 0);
  for (int it = 0; it < o.iterations; it++) {
    lua_pushnumber(L, losses[it]);
    lua_rawseti(L, -2, it + 1);
  }
  return 1;
}

/* als_loss(inter, X, Y, reg, alpha) -> number */
static int l_als_loss(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  mm_tensor *X = check_f32(L, 2, b->by_user.n_rows, -2, "user factors");
  int64_t k = X->ndim == 2 ? X->shape[1] : 0;
  check_f32(L, 2, b->by_user.n_rows, k, "user factors");
  mm_tensor *Y = check_f32(L, 3, b->by_item.n_rows, k, "item factors");
  lua_pushnumber(L, mm_rec_als_loss(&b->by_user, mm_data(X), mm_data(Y), b->by_item.n_rows, (int)k,
                                    luaL_checknumber(L, 4), luaL_checknumber(L, 5)));
  return 1;
}

/* gram(Y) -> k x k float32 tensor Y^T Y */
static int l_gram(lua_State *L) {
  mm_tensor *Y = check_f32(L, 1, -1, -2, "factors");
  int64_t k = Y->ndim == 2 ? Y->shape[1] : 0;
  check_f32(L, 1, -1, k, "factors");
  int64_t shape[2] = {k, k};
  mm_tensor *g = mml_push_tensor(L, mm_empty(mml_ctx(L), MM_FLOAT32, 2, shape));
  mm_rec_gram(mm_data(Y), (int32_t)Y->shape[0], (int)k, mm_data(g));
  return 1;
}

/* als_solve(inter, by_item, rows|nil, X, Y, gram, reg, alpha): exact least squares for the
 * given rows (1-based users, or items when by_item) of X against Y, in place. */
static int l_als_solve(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  bool by_item = lua_toboolean(L, 2);
  const mm_rec_icsr *c = by_item ? &b->by_item : &b->by_user;
  mm_tensor *X = check_f32(L, 4, c->n_rows, -2, "factors");
  int64_t k = X->ndim == 2 ? X->shape[1] : 0;
  check_f32(L, 4, c->n_rows, k, "factors");
  mm_tensor *Y = check_f32(L, 5, c->n_cols, k, "factors");
  mm_tensor *G = check_f32(L, 6, k, k, "gram");
  double reg = luaL_checknumber(L, 7), alpha = luaL_checknumber(L, 8);
  int32_t *rows = NULL;
  int64_t n = 0;
  if (!lua_isnil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    n = (int64_t)lua_rawlen(L, 3);
    rows = read_ids(L, 3, n, c->n_rows, "row");
  }
  mml_check_status(L, mm_rec_als_solve(mml_ctx(L), c, rows, n, mm_data(X), mm_data(Y), (int)k,
                                       mm_data(G), reg, alpha));
  mm_bump_version(X);
  return 0;
}

/* A one-row matrix over n_cols columns from Lua arrays ids (1-based) and values at a, a+1;
 * the arrays live in userdata pushed on the stack. */
static void one_row(lua_State *L, int a, int32_t n_cols, mm_rec_icsr *c, int64_t *ptr) {
  luaL_checktype(L, a, LUA_TTABLE);
  luaL_checktype(L, a + 1, LUA_TTABLE);
  int64_t n = (int64_t)lua_rawlen(L, a);
  if ((int64_t)lua_rawlen(L, a + 1) != n)
    mml_error(L, "moonml.rec: ids and values differ in length");
  int32_t *ids = read_ids(L, a, n, n_cols, "item");
  double *v = read_doubles(L, a + 1, n);
  float *vf = lua_newuserdatauv(L, sizeof(float) * (size_t)(n > 0 ? n : 1), 0);
  for (int64_t j = 0; j < n; j++)
    vf[j] = (float)v[j];
  ptr[0] = 0;
  ptr[1] = n;
  c->n_rows = 1;
  c->n_cols = n_cols;
  c->ptr = ptr;
  c->idx = ids;
  c->val = vf;
}

/* als_fold_in(Y, gram, ids, values, reg, alpha) -> float32 vector: the exact user factors
 * for the given items and values (implicit's recalculate_user). */
static int l_als_fold_in(lua_State *L) {
  mm_tensor *Y = check_f32(L, 1, -1, -2, "item factors");
  int64_t k = Y->ndim == 2 ? Y->shape[1] : 0;
  check_f32(L, 1, -1, k, "item factors");
  mm_tensor *G = check_f32(L, 2, k, k, "gram");
  mm_rec_icsr c;
  int64_t ptr[2];
  one_row(L, 3, (int32_t)Y->shape[0], &c, ptr);
  double reg = luaL_checknumber(L, 5), alpha = luaL_checknumber(L, 6);
  mm_tensor *x = mml_push_tensor(L, mm_zeros(mml_ctx(L), MM_FLOAT32, 1, &k));
  mml_check_status(L, mm_rec_als_solve(mml_ctx(L), &c, NULL, 1, mm_data(x), mm_data(Y), (int)k,
                                       mm_data(G), reg, alpha));
  return 1;
}

/* ------------------------------------------------------------------ BPR */

/* bpr_fit(inter, X, Y, lr, reg, iterations, verify, seed) -> correct, skipped (last epoch) */
static int l_bpr_fit(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  mm_tensor *X = check_f32(L, 2, b->by_user.n_rows, -2, "user factors");
  int64_t kk = X->ndim == 2 ? X->shape[1] : 0;
  check_f32(L, 2, b->by_user.n_rows, kk, "user factors");
  mm_tensor *Y = check_f32(L, 3, b->by_item.n_rows, kk, "item factors");
  if (kk < 1)
    mml_error(L, "moonml.rec: BPR factors need the bias column");
  mm_rec_bpr_opts o;
  o.learning_rate = luaL_checknumber(L, 4);
  o.regularization = luaL_checknumber(L, 5);
  o.iterations = (int)luaL_checkinteger(L, 6);
  o.verify_negative_samples = lua_toboolean(L, 7);
  /* the generators' seeds: from the given seed, or drawn from moonml's generator */
  o.seed = lua_isnoneornil(L, 8) ? mm_random_u64(mml_ctx(L))
                                 : (uint64_t)luaL_checkinteger(L, 8) * 0x9e3779b97f4a7c15ULL + 1;
  int64_t correct, skipped;
  mml_check_status(L, mm_rec_bpr_fit(mml_ctx(L), &b->by_user, mm_data(X), mm_data(Y), (int)(kk - 1),
                                     &o, &correct, &skipped));
  mm_bump_version(X);
  mm_bump_version(Y);
  lua_pushinteger(L, correct);
  lua_pushinteger(L, skipped);
  return 2;
}

/* bpr_fold_in(inter, Y, ids, lr, reg, iterations, verify, seed|nil) -> float32 vector of
 * factors + 1 entries: a new user's factors by BPR's updates with Y fixed. */
static int l_bpr_fold_in(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  mm_tensor *Y = check_f32(L, 2, b->by_item.n_rows, -2, "item factors");
  int64_t kk = Y->ndim == 2 ? Y->shape[1] : 0;
  check_f32(L, 2, b->by_item.n_rows, kk, "item factors");
  if (kk < 1)
    mml_error(L, "moonml.rec: BPR factors need the bias column");
  luaL_checktype(L, 3, LUA_TTABLE);
  int64_t n = (int64_t)lua_rawlen(L, 3);
  int32_t *ids = read_ids(L, 3, n, b->by_item.n_rows, "item");
  for (int64_t j = 1; j < n; j++)
    if (ids[j] <= ids[j - 1])
      mml_error(L, "moonml.rec: fold-in items must be sorted and distinct");
  mm_rec_bpr_opts o;
  o.learning_rate = luaL_checknumber(L, 4);
  o.regularization = luaL_checknumber(L, 5);
  o.iterations = (int)luaL_checkinteger(L, 6);
  o.verify_negative_samples = lua_toboolean(L, 7);
  o.seed = lua_isnoneornil(L, 8) ? mm_random_u64(mml_ctx(L))
                                 : (uint64_t)luaL_checkinteger(L, 8) * 0x9e3779b97f4a7c15ULL + 7;
  mm_tensor *x = mml_push_tensor(L, mm_zeros(mml_ctx(L), MM_FLOAT32, 1, &kk));
  mm_rec_bpr_fold_in(&b->by_user, ids, n, mm_data(x), mm_data(Y), (int)(kk - 1), &o);
  return 1;
}

/* bpr_prepare(inter, X, Y): implicit's initial state after the random draw: rows of users
 * and items without interactions set to zero, the users' last column to 1. */
static int l_bpr_prepare(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  mm_tensor *X = check_f32(L, 2, b->by_user.n_rows, -2, "user factors");
  int64_t kk = X->ndim == 2 ? X->shape[1] : 0;
  check_f32(L, 2, b->by_user.n_rows, kk, "user factors");
  mm_tensor *Y = check_f32(L, 3, b->by_item.n_rows, kk, "item factors");
  if (kk < 1)
    mml_error(L, "moonml.rec: BPR factors need the bias column");
  float *x = mm_data(X), *y = mm_data(Y);
  for (int32_t u = 0; u < b->by_user.n_rows; u++) {
    float *row = x + (size_t)u * (size_t)kk;
    if (b->by_user.ptr[u] == b->by_user.ptr[u + 1])
      memset(row, 0, sizeof(float) * (size_t)kk);
    row[kk - 1] = 1.0f;
  }
  for (int32_t i = 0; i < b->by_item.n_rows; i++)
    if (b->by_item.ptr[i] == b->by_item.ptr[i + 1])
      memset(y + (size_t)i * (size_t)kk, 0, sizeof(float) * (size_t)kk);
  mm_bump_version(X);
  mm_bump_version(Y);
  return 0;
}

/* bpr_step(x, yi, yj, lr, reg) -> z: one update of three (k + 1)-vectors in place (yi and
 * yj may be the same tensor). */
static int l_bpr_step(lua_State *L) {
  mm_tensor *x = check_f32(L, 1, -1, -1, "x");
  int64_t kk = x->shape[0];
  mm_tensor *yi = check_f32(L, 2, kk, -1, "yi"), *yj = check_f32(L, 3, kk, -1, "yj");
  if (kk < 1)
    mml_error(L, "moonml.rec: BPR rows need the bias column");
  float z = mm_rec_bpr_step(mm_data(x), mm_data(yi), mm_data(yj), (int)(kk - 1),
                            (float)luaL_checknumber(L, 4), (float)luaL_checknumber(L, 5));
  mm_bump_version(x);
  mm_bump_version(yi);
  mm_bump_version(yj);
  lua_pushnumber(L, z);
  return 1;
}

/* ------------------------------------------------------------------ item k-NN */

/* iknn_fit(inter, "cosine"|"tfidf"|"bm25"|"plain", K, K1, B) -> item similarity rows */
static int l_iknn_fit(lua_State *L) {
  static const char *const kinds[] = {"cosine", "tfidf", "bm25", "plain", NULL};
  static const mm_rec_iknn_kind kv[] = {MM_REC_IKNN_COSINE, MM_REC_IKNN_TFIDF, MM_REC_IKNN_BM25,
                                        MM_REC_IKNN_PLAIN};
  inter_box *b = check_inter(L, 1);
  mm_rec_iknn_kind kind = kv[luaL_checkoption(L, 2, NULL, kinds)];
  lua_Integer K = luaL_checkinteger(L, 3);
  if (K < 1 || K > 1000000)
    mml_error(L, "moonml.rec: K must be in 1..1000000");
  double K1 = luaL_checknumber(L, 4), B = luaL_checknumber(L, 5);
  int32_t ni = b->by_item.n_rows;
  int64_t nnz = b->nnz;
  float *wu = lua_newuserdatauv(L, sizeof(float) * (size_t)(nnz > 0 ? nnz : 1), 0);
  double *idf = lua_newuserdatauv(L, sizeof(double) * ((size_t)b->by_user.n_rows + 1), 0);
  double *item_f = lua_newuserdatauv(L, sizeof(double) * ((size_t)ni + 1), 0);
  mm_rec_iknn_weights(&b->by_user, &b->by_item, kind, K1, B, wu, idf, item_f);
  size_t cap = (size_t)ni * (size_t)K;
  size_t head = a8(sizeof(sims_box));
  size_t bytes = head + a8(((size_t)ni + 1) * 8) + a8(cap * 4) + cap * 8 + 8;
  sims_box *s = lua_newuserdatauv(L, bytes, 0);
  luaL_setmetatable(L, SIMS_MT);
  char *p = (char *)s + head;
  void *vp = p;
  s->n_items = ni;
  s->bytes = bytes;
  s->ptr = vp;
  vp = p + a8(((size_t)ni + 1) * 8);
  s->idx = vp;
  vp = p + a8(((size_t)ni + 1) * 8) + a8(cap * 4);
  s->val = vp;
  mml_check_status(L, mm_rec_iknn_fit(mml_ctx(L), &b->by_user, &b->by_item, kind, K1, wu, idf,
                                      item_f, (int)K, s->ptr, s->idx, s->val));
  return 1;
}

/* sims:row(i) -> ids (1-based), similarities, best first */
static int s_row(lua_State *L) {
  sims_box *s = check_sims(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i < 1 || i > s->n_items)
    mml_error(L, "moonml.rec: item %d out of range 1..%d", (int)i, (int)s->n_items);
  int64_t b = s->ptr[i - 1], e = s->ptr[i];
  lua_createtable(L, (int)(e - b), 0);
  lua_createtable(L, (int)(e - b), 0);
  for (int64_t q = b; q < e; q++) {
    lua_pushinteger(L, s->idx[q] + 1);
    lua_rawseti(L, -3, q - b + 1);
    lua_pushnumber(L, s->val[q]);
    lua_rawseti(L, -2, q - b + 1);
  }
  return 2;
}

static int s_nnz(lua_State *L) {
  sims_box *s = check_sims(L, 1);
  lua_pushinteger(L, s->ptr[s->n_items]);
  return 1;
}

static int s_bytes(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_sims(L, 1)->bytes);
  return 1;
}

/* ------------------------------------------------------------------ implicit's init */

static rank_box *check_rank(lua_State *L, int idx, int32_t n) {
  rank_box *r = luaL_checkudata(L, idx, RANK_MT);
  if (r->n != n)
    mml_error(L, "moonml.rec: the ids do not match the factors");
  return r;
}

/* Fills the rows of t (n x cols) in the order of rank (row of rank 0 first) with
 * rng.random(float32) draws mapped by kind: 0: u * 0.01 (ALS), 1: (u - 0.5) / k (BPR). */
static void npy_fill(mm_rec_npy_rng *g, mm_tensor *t, const rank_box *r, int kind, int k,
                     int32_t *order) {
  int64_t n = t->shape[0], cols = t->shape[1];
  for (int32_t i = 0; i < n; i++)
    order[r->rank[i]] = i;
  float *p = mm_data(t);
  for (int64_t pos = 0; pos < n; pos++) {
    float *row = p + (size_t)order[pos] * (size_t)cols;
    for (int64_t f = 0; f < cols; f++) {
      float u = mm_rec_npy_float(g);
      row[f] = kind == 0 ? u * 0.01f : (u - 0.5f) / (float)k;
    }
  }
  mm_bump_version(t);
}

/* implicit_init(kind, X, Y, seed, user_rank, item_rank): implicit 0.7.3's initial factors
 * from np.random.default_rng(seed), rows in raw-id order. "als": users then items,
 * uniform * 0.01; "bpr": items then users, (uniform - 0.5) / factors (factors + 1
 * columns). */
static int l_implicit_init(lua_State *L) {
  static const char *const kinds[] = {"als", "bpr", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  mm_tensor *X = check_f32(L, 2, -1, -2, "user factors");
  int64_t cols = X->shape[1];
  mm_tensor *Y = check_f32(L, 3, -1, cols, "item factors");
  lua_Integer seed = luaL_checkinteger(L, 4);
  if (seed < 0)
    mml_error(L, "moonml.rec: random_state must be >= 0 (NumPy's seeds are)");
  const rank_box *ru = check_rank(L, 5, (int32_t)X->shape[0]);
  const rank_box *ri = check_rank(L, 6, (int32_t)Y->shape[0]);
  int64_t most = X->shape[0] > Y->shape[0] ? X->shape[0] : Y->shape[0];
  int32_t *order = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(most + 1), 0);
  mm_rec_npy_rng g;
  mm_rec_npy_seed(&g, (uint64_t)seed);
  int k = (int)(kind == 0 ? cols : cols - 1);
  if (kind == 0) {
    npy_fill(&g, X, ru, 0, k, order);
    npy_fill(&g, Y, ri, 0, k, order);
  } else {
    npy_fill(&g, Y, ri, 1, k, order);
    npy_fill(&g, X, ru, 1, k, order);
  }
  return 0;
}

/* npy_random(seed, n) -> Lua array of n rng.random(float32) draws (checked against NumPy) */
static int l_npy_random(lua_State *L) {
  mm_rec_npy_rng g;
  mm_rec_npy_seed(&g, (uint64_t)luaL_checkinteger(L, 1));
  lua_Integer n = luaL_checkinteger(L, 2);
  lua_createtable(L, n > 0 ? (int)n : 0, 0);
  for (lua_Integer j = 1; j <= n; j++) {
    lua_pushnumber(L, mm_rec_npy_float(&g));
    lua_rawseti(L, -2, j);
  }
  return 1;
}

/* ------------------------------------------------------------------ ranks and top-n */

typedef struct {
  bool is_str;
  double num;
  const char *s;
  size_t len;
  int32_t idx;
} raw_key;

static int raw_cmp(const void *pa, const void *pb) {
  const raw_key *a = pa, *b = pb;
  if (a->is_str != b->is_str)
    return a->is_str ? 1 : -1;
  if (!a->is_str) {
    if (a->num != b->num)
      return a->num < b->num ? -1 : 1;
  } else {
    size_t m = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, m);
    if (c != 0)
      return c;
    if (a->len != b->len)
      return a->len < b->len ? -1 : 1;
  }
  return (a->idx > b->idx) - (a->idx < b->idx);
}

/* make_rank(raw_ids) -> rank userdata: every inner id's position in raw-id order
 * (numbers by value before strings by bytes, as moonml.rec.data.id_less). */
static int l_make_rank(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int64_t n = (int64_t)lua_rawlen(L, 1);
  if (n > INT32_MAX)
    mml_error(L, "moonml.rec: too many ids");
  raw_key *keys = lua_newuserdatauv(L, sizeof(raw_key) * (size_t)(n > 0 ? n : 1), 0);
  for (int64_t j = 0; j < n; j++) {
    lua_rawgeti(L, 1, j + 1);
    raw_key *k = &keys[j];
    k->idx = (int32_t)j;
    if (lua_type(L, -1) == LUA_TNUMBER) {
      k->is_str = false;
      k->num = lua_tonumber(L, -1);
      k->s = NULL;
      k->len = 0;
    } else if (lua_type(L, -1) == LUA_TSTRING) {
      k->is_str = true;
      k->num = 0;
      k->s = lua_tolstring(L, -1, &k->len); /* stays alive in the table */
    } else {
      mml_error(L, "moonml.rec: raw id %d is neither a number nor a string", (int)(j + 1));
    }
    lua_pop(L, 1);
  }
  qsort(keys, (size_t)n, sizeof(raw_key), raw_cmp);
  rank_box *r = lua_newuserdatauv(L, sizeof(rank_box) + sizeof(int32_t) * (size_t)n, 0);
  luaL_setmetatable(L, RANK_MT);
  r->n = (int32_t)n;
  for (int64_t j = 0; j < n; j++)
    r->rank[keys[j].idx] = (int32_t)j;
  return 1;
}

/* recommend(inter, n, exclude, raw_items, rank, who, kind, a, b) -> raw ids, scores.
 * who: a 1-based user of inter, or {ids, values} (a folded-in user; ids 1-based items).
 * kind "factors": a = X (or, for a folded-in user, its factor vector), b = Y; "iknn": a =
 * similarity rows; "popular": a = float64 popularity per item. */
static int l_recommend(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  bool exclude = lua_toboolean(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  rank_box *rank = luaL_checkudata(L, 5, RANK_MT);
  const char *kind = luaL_checkstring(L, 7);
  int32_t ni = b->by_item.n_rows;
  if (rank->n < ni || (lua_Integer)lua_rawlen(L, 4) < ni)
    mml_error(L, "moonml.rec: the item ids do not match the model");
  /* the user's items: a row of inter, or the given list */
  const int32_t *liked;
  const float *liked_v;
  int64_t n_liked;
  int32_t u = -1;
  mm_rec_icsr one;
  int64_t one_ptr[2];
  if (lua_istable(L, 6)) {
    lua_rawgeti(L, 6, 1);
    lua_rawgeti(L, 6, 2);
    one_row(L, lua_absindex(L, -2), ni, &one, one_ptr);
    liked = one.idx;
    liked_v = one.val;
    n_liked = one.ptr[1];
  } else {
    lua_Integer uu = luaL_checkinteger(L, 6);
    if (uu < 1 || uu > b->by_user.n_rows)
      mml_error(L, "moonml.rec: user %d out of range", (int)uu);
    u = (int32_t)(uu - 1);
    liked = b->by_user.idx + b->by_user.ptr[u];
    liked_v = b->by_user.val + b->by_user.ptr[u];
    n_liked = b->by_user.ptr[u + 1] - b->by_user.ptr[u];
  }
  double *scores = b->scores;
  const int32_t *cand = NULL; /* NULL: every item */
  int32_t n_cand = ni;
  if (strcmp(kind, "factors") == 0) {
    mm_tensor *Y = check_f32(L, 9, ni, -2, "item factors");
    int64_t k = Y->ndim == 2 ? Y->shape[1] : 0;
    check_f32(L, 9, ni, k, "item factors");
    const float *x;
    if (u >= 0) {
      mm_tensor *X = check_f32(L, 8, -1, k, "user factors");
      if (u >= X->shape[0])
        mml_error(L, "moonml.rec: user %d has no factors", (int)(u + 1));
      x = (const float *)mm_data(X) + (size_t)u * (size_t)k;
    } else {
      x = mm_data(check_f32(L, 8, k, -1, "user vector"));
    }
    b->scores_nan = false;
    mm_rec_factor_scores(x, mm_data(Y), ni, (int)k, scores);
    mask_items(b, scores);
  } else if (strcmp(kind, "iknn") == 0) {
    sims_box *s = check_sims(L, 8);
    if (s->n_items != ni)
      mml_error(L, "moonml.rec: the similarities do not match the model");
    /* only the items the user's rows reach are touched (and set back to NaN below) */
    if (!b->scores_nan)
      for (int32_t i = 0; i < ni; i++)
        scores[i] = NAN;
    b->scores_nan = false; /* until the touched entries are NaN again (an error may come first) */
    n_cand =
        mm_rec_iknn_scores(s->ptr, s->idx, s->val, n_liked, liked, liked_v, scores, b->touched);
    cand = b->touched;
  } else if (strcmp(kind, "popular") == 0) {
    mm_tensor *p = mml_test_tensor(L, 8);
    if (!p || p->dtype != MM_FLOAT64 || p->ndim != 1 || p->shape[0] != ni || !mm_is_contiguous(p))
      mml_error(L, "moonml.rec: popularity must be a float64 vector over the items");
    b->scores_nan = false;
    memcpy(scores, mm_data(p), sizeof(double) * (size_t)ni);
    mask_items(b, scores);
  } else {
    mml_error(L, "moonml.rec: unknown model kind '%s'", kind);
  }
  if (exclude)
    for (int64_t j = 0; j < n_liked; j++)
      scores[liked[j]] = NAN;
  if (n < 0)
    n = 0;
  if (n > ni)
    n = ni;
  int64_t got = mm_rec_top_n(scores, cand, n_cand, n, rank->rank, b->top);
  /* the raw ids and scores into Lua first, then the scratch is made NaN again */
  lua_createtable(L, (int)got, 0);
  lua_createtable(L, (int)got, 0);
  for (int64_t j = 0; j < got; j++) {
    int32_t i = b->top[j];
    lua_rawgeti(L, 4, i + 1);
    lua_rawseti(L, -3, j + 1);
    lua_pushnumber(L, scores[i]);
    lua_rawseti(L, -2, j + 1);
  }
  return 2;
}

/* predict_pairs(inter, kind, a, b, users, items) -> scores, impossible flags (Lua arrays);
 * users / items 1-based, 0 for ids outside the model. */
static int l_predict_pairs(lua_State *L) {
  inter_box *b = check_inter(L, 1);
  const char *kind = luaL_checkstring(L, 2);
  luaL_checktype(L, 5, LUA_TTABLE);
  luaL_checktype(L, 6, LUA_TTABLE);
  int64_t n = (int64_t)lua_rawlen(L, 5);
  if ((int64_t)lua_rawlen(L, 6) != n)
    mml_error(L, "moonml.rec: users and items differ in length");
  int32_t nu = b->by_user.n_rows, ni = b->by_item.n_rows;
  const float *X = NULL, *Y = NULL;
  int64_t k = 0;
  sims_box *s = NULL;
  const double *pop = NULL;
  if (strcmp(kind, "factors") == 0) {
    mm_tensor *Yt = check_f32(L, 4, ni, -2, "item factors");
    k = Yt->ndim == 2 ? Yt->shape[1] : 0;
    check_f32(L, 4, ni, k, "item factors");
    X = mm_data(check_f32(L, 3, nu, k, "user factors"));
    Y = mm_data(Yt);
  } else if (strcmp(kind, "iknn") == 0) {
    s = check_sims(L, 3);
  } else if (strcmp(kind, "popular") == 0) {
    mm_tensor *p = mml_test_tensor(L, 3);
    if (!p || p->dtype != MM_FLOAT64 || p->ndim != 1 || p->shape[0] != ni || !mm_is_contiguous(p))
      mml_error(L, "moonml.rec: popularity must be a float64 vector over the items");
    pop = mm_data(p);
  } else {
    mml_error(L, "moonml.rec: unknown model kind '%s'", kind);
  }
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  for (int64_t j = 0; j < n; j++) {
    lua_rawgeti(L, 5, j + 1);
    lua_rawgeti(L, 6, j + 1);
    lua_Integer uu = lua_tointeger(L, -2) - 1, ii = lua_tointeger(L, -1) - 1;
    lua_pop(L, 2);
    bool uk = uu >= 0 && uu < nu && b->by_user.ptr[uu + 1] > b->by_user.ptr[uu];
    bool ik = ii >= 0 && ii < ni && b->by_item.ptr[ii + 1] > b->by_item.ptr[ii];
    double est = 0;
    bool impossible = !ik || (!uk && !pop);
    if (!impossible) {
      if (X) {
        est = 0;
        const float *x = X + (size_t)uu * (size_t)k, *y = Y + (size_t)ii * (size_t)k;
        for (int64_t f = 0; f < k; f++)
          est += (double)x[f] * (double)y[f];
      } else if (s) {
        for (int64_t q = b->by_user.ptr[uu]; q < b->by_user.ptr[uu + 1]; q++) {
          int32_t i = b->by_user.idx[q];
          for (int64_t p = s->ptr[i]; p < s->ptr[i + 1]; p++)
            if (s->idx[p] == ii)
              est += s->val[p] * (double)b->by_user.val[q];
        }
      } else {
        est = pop[ii];
      }
    }
    lua_pushnumber(L, est);
    lua_rawseti(L, -3, j + 1);
    lua_pushboolean(L, impossible);
    lua_rawseti(L, -2, j + 1);
  }
  return 2;
}

/* ------------------------------------------------------------------ synthetic data */

/* synthetic(users, items, interactions, factors, noise, seed, timestamps) -> store */
static int l_synthetic(lua_State *L) {
  mm_rec_synth_opts o;
  lua_Integer nu = luaL_checkinteger(L, 1), ni = luaL_checkinteger(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3), kf = luaL_checkinteger(L, 4);
  if (nu < 1 || ni < 2 || nu > INT32_MAX || ni > INT32_MAX)
    mml_error(L, "moonml.rec.synthetic: users must be >= 1 and items >= 2 (at most %d)",
              (int)INT32_MAX);
  if (n < nu || n > nu * (ni / 2))
    mml_error(L, "moonml.rec.synthetic: interactions must be in %I..%I for %I users and %I items",
              nu, nu * (ni / 2), nu, ni);
  if (kf < 1 || kf > ni)
    mml_error(L, "moonml.rec.synthetic: factors must be in 1..%I", ni);
  o.users = (int32_t)nu;
  o.items = (int32_t)ni;
  o.interactions = n;
  o.factors = (int)kf;
  o.noise = luaL_checknumber(L, 5);
  o.seed = (uint64_t)luaL_checkinteger(L, 6);
  bool ts = lua_toboolean(L, 7);
  mm_rec_ratings *r = mml_rec_new_store(L, n, (int32_t)nu, (int32_t)ni, ts);
  mml_check_status(L, mm_rec_synthetic(mml_ctx(L), &o, r));
  return 1;
}

/* ------------------------------------------------------------------ registration */

static const luaL_Reg inter_methods[] = {
    {"space", i_space}, {"user_count", i_user_count}, {"item_count", i_item_count},
    {"row", i_row},     {"bytes", i_bytes},           {"popularity", i_popularity},
    {NULL, NULL}};

static const luaL_Reg sims_methods[] = {
    {"row", s_row}, {"nnz", s_nnz}, {"bytes", s_bytes}, {NULL, NULL}};

static const luaL_Reg implicit_funcs[] = {{"inter_build", l_inter_build},
                                          {"inter_replace", l_inter_replace},
                                          {"als_fit", l_als_fit},
                                          {"als_loss", l_als_loss},
                                          {"gram", l_gram},
                                          {"als_solve", l_als_solve},
                                          {"als_fold_in", l_als_fold_in},
                                          {"bpr_fit", l_bpr_fit},
                                          {"bpr_step", l_bpr_step},
                                          {"bpr_prepare", l_bpr_prepare},
                                          {"bpr_fold_in", l_bpr_fold_in},
                                          {"iknn_fit", l_iknn_fit},
                                          {"make_rank", l_make_rank},
                                          {"implicit_init", l_implicit_init},
                                          {"npy_random", l_npy_random},
                                          {"recommend", l_recommend},
                                          {"predict_pairs", l_predict_pairs},
                                          {"synthetic", l_synthetic},
                                          {NULL, NULL}};

static void new_mt(lua_State *L, const mml_open_state *st, const char *name, const luaL_Reg *m) {
  luaL_newmetatable(L, name);
  if (m) {
    lua_newtable(L);
    mml_register(L, st, lua_absindex(L, -1), m);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

void mml_rec_register_implicit(lua_State *L, const mml_open_state *st, int table) {
  table = lua_absindex(L, table);
  new_mt(L, st, INTER_MT, inter_methods);
  new_mt(L, st, SIMS_MT, sims_methods);
  new_mt(L, st, RANK_MT, NULL);
  mml_register(L, st, table, implicit_funcs);
}
