/* Binding of the recommender kernels (src/rec): the rating store userdata with its cached
 * CSR views, the parser, and the model entry points. Registered as the table `_rec` of
 * moonml.core; lua/moonml/rec/ holds the API. Argument checks only. */
#include "rec_internal.h"

#include <math.h>
#include <string.h>

#define STORE_MT "moonml.rec.Store"
#define CSR_MT "moonml.rec.CSR"

/* A store is one userdata block: the header, then rating, ts, user, item arrays.
 * User value 1 caches the CSR by user, 2 the CSR by item. */
typedef struct {
  mm_rec_ratings r;
} store_box;

typedef struct {
  mm_rec_csr c;
} csr_box;

static size_t a8(size_t n) { return (n + 7) & ~(size_t)7; }

static mm_rec_ratings *new_store(lua_State *L, int64_t n, int32_t n_users, int32_t n_items,
                                 bool has_ts) {
  size_t head = a8(sizeof(store_box));
  size_t bytes = head + a8((size_t)n * 8) * (has_ts ? 2 : 1) + a8((size_t)n * 4) * 2;
  store_box *b = lua_newuserdatauv(L, bytes, 2);
  luaL_setmetatable(L, STORE_MT);
  char *p = (char *)b + head;
  b->r.n = n;
  b->r.n_users = n_users;
  b->r.n_items = n_items;
  void *vp = p; /* the arrays are 8-aligned slices of the block */
  b->r.rating = vp;
  p += a8((size_t)n * 8);
  b->r.ts = NULL;
  if (has_ts) {
    vp = p;
    b->r.ts = vp;
    p += a8((size_t)n * 8);
  }
  vp = p;
  b->r.user = vp;
  p += a8((size_t)n * 4);
  vp = p;
  b->r.item = vp;
  return &b->r;
}

mm_rec_ratings *mml_rec_new_store(lua_State *L, int64_t n, int32_t n_users, int32_t n_items,
                                  bool has_ts) {
  return new_store(L, n, n_users, n_items, has_ts);
}

mm_rec_ratings *mml_rec_check_store(lua_State *L, int idx) {
  store_box *b = luaL_testudata(L, idx, STORE_MT);
  if (!b)
    mml_error(L, "moonml.rec: expected a rating store as argument %d, got %s", idx,
              mml_typename(L, idx));
  return &b->r;
}

/* The CSR of the store at idx (built once, then cached in the store's user value). */
const mm_rec_csr *mml_rec_store_csr(lua_State *L, int idx, bool by_item) {
  idx = lua_absindex(L, idx);
  mm_rec_ratings *r = mml_rec_check_store(L, idx);
  int uv = by_item ? 2 : 1;
  lua_getiuservalue(L, idx, uv);
  csr_box *c = luaL_testudata(L, -1, CSR_MT);
  lua_pop(L, 1); /* still referenced by the store's user value */
  if (c)
    return &c->c;
  int32_t rows = by_item ? r->n_items : r->n_users;
  size_t head = a8(sizeof(csr_box));
  c = lua_newuserdatauv(L, head + mm_rec_csr_bytes(rows, r->n), 0);
  luaL_setmetatable(L, CSR_MT);
  mm_rec_csr_fill(r, by_item, (char *)c + head, &c->c);
  lua_setiuservalue(L, idx, uv);
  return &c->c;
}

static int64_t row_len(const mm_rec_csr *c, int64_t row) {
  if (row < 0 || row >= c->n_rows)
    return 0;
  return c->ptr[row + 1] - c->ptr[row];
}

/* ------------------------------------------------------------------ parse */

static const char *opt_string(lua_State *L, int t, const char *k, const char *def) {
  lua_getfield(L, t, k);
  const char *s = lua_isnil(L, -1) ? def : lua_tostring(L, -1);
  lua_pop(L, 1); /* the string stays alive in the options table */
  return s;
}

static double opt_number(lua_State *L, int t, const char *k, double def, bool *given) {
  lua_getfield(L, t, k);
  double v = def;
  if (given)
    *given = !lua_isnil(L, -1);
  if (!lua_isnil(L, -1))
    v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static bool opt_bool(lua_State *L, int t, const char *k) {
  lua_getfield(L, t, k);
  bool v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* parse(path, {sep, header, skip_bad, min_fields, max_fields, lo, hi, name, op})
 * -> store, user raw ids (strings), item raw ids, skipped, first skipped line, rmin, rmax */
static int l_parse(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  mm_rec_parse_opts o;
  o.sep = opt_string(L, 2, "sep", "\t");
  o.header = opt_bool(L, 2, "header");
  o.skip_bad = opt_bool(L, 2, "skip_bad");
  o.min_fields = (int)opt_number(L, 2, "min_fields", 3, NULL);
  o.max_fields = (int)opt_number(L, 2, "max_fields", 4, NULL);
  bool lo_given = false;
  o.lo = opt_number(L, 2, "lo", 0, &lo_given);
  o.hi = opt_number(L, 2, "hi", 0, NULL);
  o.has_scale = lo_given;
  o.name = opt_string(L, 2, "name", path);
  o.op = opt_string(L, 2, "op", "moonml.rec.load");
  mm_rec_parsed p;
  if (mm_rec_parse_file(mml_ctx(L), path, &o, &p) != 0)
    return mml_core_error(L);
  /* copy into Lua-owned memory first so that an error below cannot leak */
  mm_rec_ratings *r = new_store(L, p.r.n, p.r.n_users, p.r.n_items, p.r.ts != NULL);
  if (p.r.n > 0) { /* an empty file has no arrays: memcpy from NULL is undefined */
    memcpy(r->rating, p.r.rating, sizeof(double) * (size_t)p.r.n);
    memcpy(r->user, p.r.user, sizeof(int32_t) * (size_t)p.r.n);
    memcpy(r->item, p.r.item, sizeof(int32_t) * (size_t)p.r.n);
    if (p.r.ts)
      memcpy(r->ts, p.r.ts, sizeof(int64_t) * (size_t)p.r.n);
  }
  lua_createtable(L, p.r.n_users, 0);
  lua_createtable(L, p.r.n_items, 0);
  for (int32_t k = 0; k < p.r.n_users; k++) {
    lua_pushstring(L, p.pool + p.user_off[k]);
    lua_rawseti(L, -3, k + 1);
  }
  for (int32_t k = 0; k < p.r.n_items; k++) {
    lua_pushstring(L, p.pool + p.item_off[k]);
    lua_rawseti(L, -2, k + 1);
  }
  lua_pushinteger(L, p.n_skipped);
  lua_pushinteger(L, p.first_skipped);
  lua_pushnumber(L, p.rmin);
  lua_pushnumber(L, p.rmax);
  mm_rec_parsed_free(&p);
  return 7;
}

/* ------------------------------------------------------------------ building stores */

/* Element k (0-based) of a Lua array or 1-D tensor at idx, as a number. */
static double column_get(lua_State *L, int idx, mm_tensor *t, int64_t k, bool *ok) {
  if (t) {
    int64_t at = k;
    *ok = true;
    return mm_get_double(t, &at);
  }
  lua_rawgeti(L, idx, k + 1);
  int isnum = 0;
  double v = lua_tonumberx(L, -1, &isnum);
  *ok = isnum && lua_type(L, -1) == LUA_TNUMBER;
  lua_pop(L, 1);
  return v;
}

static int64_t column_len(lua_State *L, int idx, mm_tensor **t, const char *what) {
  *t = mml_test_tensor(L, idx);
  if (*t) {
    if ((*t)->ndim != 1)
      mml_error(L, "moonml.rec: %s must be a 1-D tensor", what);
    return (*t)->shape[0];
  }
  if (!lua_istable(L, idx))
    mml_error(L, "moonml.rec: %s must be a table or a tensor, got %s", what, mml_typename(L, idx));
  return (int64_t)lua_rawlen(L, idx);
}

/* from_columns(users, items, ratings, ts|nil, n_users, n_items, op): users/items hold
 * 1-based inner ids. Ratings must be finite; the message names the row. */
static int l_from_columns(lua_State *L) {
  mm_tensor *tu = NULL, *ti = NULL, *tr = NULL, *tt = NULL;
  int64_t n = column_len(L, 1, &tu, "users");
  if (column_len(L, 2, &ti, "items") != n || column_len(L, 3, &tr, "ratings") != n)
    mml_error(L, "moonml.rec: users, items and ratings differ in length");
  bool has_ts = !lua_isnoneornil(L, 4);
  if (has_ts && column_len(L, 4, &tt, "timestamps") != n)
    mml_error(L, "moonml.rec: timestamps differ in length from the ratings");
  int64_t nu = luaL_checkinteger(L, 5), ni = luaL_checkinteger(L, 6);
  const char *op = luaL_optstring(L, 7, "moonml.rec.from_table");
  if (nu < 0 || ni < 0 || nu > INT32_MAX || ni > INT32_MAX)
    mml_error(L, "%s: too many users or items", op);
  mm_rec_ratings *r = new_store(L, n, (int32_t)nu, (int32_t)ni, has_ts);
  for (int64_t k = 0; k < n; k++) {
    bool ok1, ok2, ok3, ok4 = true;
    double u = column_get(L, 1, tu, k, &ok1);
    double i = column_get(L, 2, ti, k, &ok2);
    double v = column_get(L, 3, tr, k, &ok3);
    double ts = has_ts ? column_get(L, 4, tt, k, &ok4) : 0;
    if (!ok1 || !ok2 || !(u >= 1 && u <= (double)nu) || !(i >= 1 && i <= (double)ni))
      mml_error(L, "%s: bad user or item at row %d", op, (int)(k + 1));
    if (!ok3)
      mml_error(L, "%s: rating at row %d is not a number", op, (int)(k + 1));
    if (!isfinite(v))
      mml_error(L, "%s: rating at row %d is not finite (%f)", op, (int)(k + 1), v);
    if (!ok4 || !isfinite(ts))
      mml_error(L, "%s: timestamp at row %d is not a number", op, (int)(k + 1));
    r->user[k] = (int32_t)u - 1;
    r->item[k] = (int32_t)i - 1;
    r->rating[k] = v;
    if (has_ts)
      r->ts[k] = (int64_t)ts;
  }
  return 1;
}

/* remap(store, umap, imap, n_users, n_items): umap[old+1] = new 1-based inner id. */
static int l_remap(lua_State *L) {
  mm_rec_ratings *s = mml_rec_check_store(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  int64_t nu = luaL_checkinteger(L, 4), ni = luaL_checkinteger(L, 5);
  int32_t *um = lua_newuserdatauv(L, sizeof(int32_t) * ((size_t)s->n_users + 1), 0);
  int32_t *im = lua_newuserdatauv(L, sizeof(int32_t) * ((size_t)s->n_items + 1), 0);
  for (int32_t k = 0; k < s->n_users; k++) {
    lua_rawgeti(L, 2, k + 1);
    um[k] = (int32_t)lua_tointeger(L, -1) - 1;
    lua_pop(L, 1);
    if (um[k] < 0 || um[k] >= nu)
      mml_error(L, "moonml.rec: bad user map entry %d", (int)(k + 1));
  }
  for (int32_t k = 0; k < s->n_items; k++) {
    lua_rawgeti(L, 3, k + 1);
    im[k] = (int32_t)lua_tointeger(L, -1) - 1;
    lua_pop(L, 1);
    if (im[k] < 0 || im[k] >= ni)
      mml_error(L, "moonml.rec: bad item map entry %d", (int)(k + 1));
  }
  mm_rec_ratings *r = new_store(L, s->n, (int32_t)nu, (int32_t)ni, s->ts != NULL);
  for (int64_t k = 0; k < s->n; k++) {
    r->user[k] = um[s->user[k]];
    r->item[k] = im[s->item[k]];
    r->rating[k] = s->rating[k];
    if (s->ts)
      r->ts[k] = s->ts[k];
  }
  return 1;
}

/* select(store, marks, value, equal): the ratings whose mark (marks[k], a Lua array of
 * integers) equals value (equal = true) or differs from it (equal = false), in order. */
static int l_select(lua_State *L) {
  mm_rec_ratings *s = mml_rec_check_store(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer value = luaL_checkinteger(L, 3);
  bool equal = lua_toboolean(L, 4);
  if ((int64_t)lua_rawlen(L, 2) != s->n)
    mml_error(L, "moonml.rec: %d marks for %d ratings", (int)lua_rawlen(L, 2), (int)s->n);
  unsigned char *keep = lua_newuserdatauv(L, (size_t)s->n + 1, 0);
  int64_t m = 0;
  for (int64_t k = 0; k < s->n; k++) {
    lua_rawgeti(L, 2, k + 1);
    keep[k] = (lua_tointeger(L, -1) == value) == equal;
    lua_pop(L, 1);
    m += keep[k];
  }
  mm_rec_ratings *r = new_store(L, m, s->n_users, s->n_items, s->ts != NULL);
  for (int64_t k = 0, j = 0; k < s->n; k++)
    if (keep[k]) {
      r->user[j] = s->user[k];
      r->item[j] = s->item[k];
      r->rating[j] = s->rating[k];
      if (s->ts)
        r->ts[j] = s->ts[k];
      j++;
    }
  return 1;
}

/* take(store, rows): the ratings at the 1-based positions in the Lua array rows, in
 * that order. */
static int l_take(lua_State *L) {
  mm_rec_ratings *s = mml_rec_check_store(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int64_t m = (int64_t)lua_rawlen(L, 2);
  mm_rec_ratings *r = new_store(L, m, s->n_users, s->n_items, s->ts != NULL);
  for (int64_t j = 0; j < m; j++) {
    lua_rawgeti(L, 2, j + 1);
    int64_t k = lua_tointeger(L, -1) - 1;
    lua_pop(L, 1);
    if (k < 0 || k >= s->n)
      mml_error(L, "moonml.rec: row %d out of range", (int)(k + 1));
    r->user[j] = s->user[k];
    r->item[j] = s->item[k];
    r->rating[j] = s->rating[k];
    if (s->ts)
      r->ts[j] = s->ts[k];
  }
  return 1;
}

/* permutation(n, seed|nil) -> Lua array, a permutation of 1..n. With a seed the draw
 * uses a generator of its own, leaving the state's generator untouched. */
static int l_permutation(lua_State *L) {
  int64_t n = luaL_checkinteger(L, 1);
  if (n < 0)
    mml_error(L, "moonml.rec: negative size");
  int64_t *perm = lua_newuserdatauv(L, sizeof(int64_t) * ((size_t)n + 1), 0);
  mm_ctx *ctx = mml_ctx(L);
  if (!lua_isnoneornil(L, 2)) {
    mm_ctx *own = mm_ctx_new();
    if (!own)
      mml_error(L, "moonml.rec: out of memory");
    mm_manual_seed(own, (uint64_t)luaL_checkinteger(L, 2));
    mm_rec_permutation(own, n, perm);
    mm_ctx_release(own);
  } else {
    mm_rec_permutation(ctx, n, perm);
  }
  lua_createtable(L, (int)n, 0);
  for (int64_t k = 0; k < n; k++) {
    lua_pushinteger(L, perm[k] + 1);
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

/* ------------------------------------------------------------------ store methods */

static int s_size(lua_State *L) {
  lua_pushinteger(L, mml_rec_check_store(L, 1)->n);
  return 1;
}

static int s_space(lua_State *L) {
  mm_rec_ratings *r = mml_rec_check_store(L, 1);
  lua_pushinteger(L, r->n_users);
  lua_pushinteger(L, r->n_items);
  lua_pushboolean(L, r->ts != NULL);
  return 3;
}

/* get(k) -> user, item (1-based inner), rating, timestamp|nil */
static int s_get(lua_State *L) {
  mm_rec_ratings *r = mml_rec_check_store(L, 1);
  int64_t k = luaL_checkinteger(L, 2);
  if (k < 1 || k > r->n)
    mml_error(L, "moonml.rec: rating %d out of range 1..%d", (int)k, (int)r->n);
  k--;
  lua_pushinteger(L, r->user[k] + 1);
  lua_pushinteger(L, r->item[k] + 1);
  lua_pushnumber(L, r->rating[k]);
  if (r->ts)
    lua_pushinteger(L, r->ts[k]);
  else
    lua_pushnil(L);
  return 4;
}

/* columns() -> Lua arrays users, items (1-based inner), ratings, timestamps|nil */
static int s_columns(lua_State *L) {
  mm_rec_ratings *r = mml_rec_check_store(L, 1);
  int n = (int)r->n;
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  if (r->ts)
    lua_createtable(L, n, 0);
  else
    lua_pushnil(L);
  for (int64_t k = 0; k < r->n; k++) {
    lua_pushinteger(L, r->user[k] + 1);
    lua_rawseti(L, -5, k + 1);
    lua_pushinteger(L, r->item[k] + 1);
    lua_rawseti(L, -4, k + 1);
    lua_pushnumber(L, r->rating[k]);
    lua_rawseti(L, -3, k + 1);
    if (r->ts) {
      lua_pushinteger(L, r->ts[k]);
      lua_rawseti(L, -2, k + 1);
    }
  }
  return 4;
}

/* tensors() -> int64 users, int64 items (1-based inner), float32 ratings, int64 ts|nil */
static int s_tensors(lua_State *L) {
  mm_rec_ratings *r = mml_rec_check_store(L, 1);
  mm_ctx *ctx = mml_ctx(L);
  int64_t n = r->n;
  mm_tensor *u = mml_push_tensor(L, mm_empty(ctx, MM_INT64, 1, &n));
  mm_tensor *i = mml_push_tensor(L, mm_empty(ctx, MM_INT64, 1, &n));
  mm_tensor *v = mml_push_tensor(L, mm_empty(ctx, MM_FLOAT32, 1, &n));
  int64_t *pu = mm_data(u), *pi = mm_data(i);
  float *pv = mm_data(v);
  for (int64_t k = 0; k < n; k++) {
    pu[k] = r->user[k] + 1;
    pi[k] = r->item[k] + 1;
    pv[k] = (float)r->rating[k];
  }
  if (r->ts) {
    mm_tensor *t = mml_push_tensor(L, mm_empty(ctx, MM_INT64, 1, &n));
    memcpy(mm_data(t), r->ts, sizeof(int64_t) * (size_t)n);
  } else {
    lua_pushnil(L);
  }
  return 4;
}

/* stats() -> mean, population variance, min, max, users with ratings, items with ratings.
 * The counts come from one pass with a mark per id, not from the CSR views, so asking for
 * the global mean does not build 24 bytes per rating of views a model may not need. */
static int s_stats(lua_State *L) {
  mm_rec_ratings *r = mml_rec_check_store(L, 1);
  double sum = 0, mn = NAN, mx = NAN;
  for (int64_t k = 0; k < r->n; k++) {
    sum += r->rating[k];
    if (!(r->rating[k] >= mn))
      mn = r->rating[k];
    if (!(r->rating[k] <= mx))
      mx = r->rating[k];
  }
  double mean = r->n ? sum / (double)r->n : NAN, var = 0;
  for (int64_t k = 0; k < r->n; k++)
    var += (r->rating[k] - mean) * (r->rating[k] - mean);
  var = r->n ? var / (double)r->n : NAN;
  unsigned char *mark = lua_newuserdatauv(L, (size_t)r->n_users + (size_t)r->n_items + 1, 0);
  memset(mark, 0, (size_t)r->n_users + (size_t)r->n_items + 1);
  unsigned char *umark = mark, *imark = mark + r->n_users;
  int64_t nu = 0, ni = 0;
  for (int64_t k = 0; k < r->n; k++) {
    nu += !umark[r->user[k]];
    umark[r->user[k]] = 1;
    ni += !imark[r->item[k]];
    imark[r->item[k]] = 1;
  }
  lua_pop(L, 1);
  lua_pushnumber(L, mean);
  lua_pushnumber(L, var);
  lua_pushnumber(L, mn);
  lua_pushnumber(L, mx);
  lua_pushinteger(L, nu);
  lua_pushinteger(L, ni);
  return 6;
}

static int s_user_count(lua_State *L) {
  mml_rec_check_store(L, 1);
  lua_pushinteger(L, row_len(mml_rec_store_csr(L, 1, false), luaL_checkinteger(L, 2) - 1));
  return 1;
}

static int s_item_count(lua_State *L) {
  mml_rec_check_store(L, 1);
  lua_pushinteger(L, row_len(mml_rec_store_csr(L, 1, true), luaL_checkinteger(L, 2) - 1));
  return 1;
}

/* row(by_item, id) -> Lua arrays of the other ids (1-based) and the ratings */
static int s_row(lua_State *L) {
  mml_rec_check_store(L, 1);
  const mm_rec_csr *c = mml_rec_store_csr(L, 1, lua_toboolean(L, 2));
  int64_t row = luaL_checkinteger(L, 3) - 1;
  int64_t n = row_len(c, row);
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  for (int64_t k = 0; k < n; k++) {
    int64_t at = c->ptr[row] + k;
    lua_pushinteger(L, c->idx[at] + 1);
    lua_rawseti(L, -3, k + 1);
    lua_pushnumber(L, c->val[at]);
    lua_rawseti(L, -2, k + 1);
  }
  return 2;
}

/* ------------------------------------------------------------------ models */

static mm_tensor *field_tensor(lua_State *L, int t, const char *k, mm_dtype dt, int64_t rows,
                               int64_t cols, bool required) {
  lua_getfield(L, t, k);
  mm_tensor *x = mml_test_tensor(L, -1);
  lua_pop(L, 1); /* the model table keeps it alive */
  if (!x) {
    if (required)
      mml_error(L, "moonml.rec: the model has no tensor '%s'", k);
    return NULL;
  }
  bool ok = x->dtype == dt && mm_is_contiguous(x) && x->shape[0] == rows &&
            (cols < 0 ? x->ndim == 1 : x->ndim == 2 && x->shape[1] == cols);
  if (!ok)
    mml_error(L, "moonml.rec: the model's '%s' has the wrong dtype or shape", k);
  return x;
}

/* The factor model described by the Lua table at idx, over the id space of store s. */
static void read_mf(lua_State *L, int idx, const mm_rec_ratings *s, mm_rec_mf *m) {
  memset(m, 0, sizeof *m);
  m->n_users = s->n_users;
  m->n_items = s->n_items;
  lua_getfield(L, idx, "biased");
  m->biased = lua_toboolean(L, -1);
  lua_getfield(L, idx, "mu");
  m->mu = lua_tonumber(L, -1);
  lua_getfield(L, idx, "k");
  m->k = (int32_t)lua_tointeger(L, -1);
  lua_pop(L, 3);
  if (m->k < 0)
    mml_error(L, "moonml.rec: negative number of factors");
  if (m->biased) {
    m->bu = mm_data(field_tensor(L, idx, "bu", MM_FLOAT64, s->n_users, -1, true));
    m->bi = mm_data(field_tensor(L, idx, "bi", MM_FLOAT64, s->n_items, -1, true));
  }
  if (m->k > 0) {
    m->pu = mm_data(field_tensor(L, idx, "pu", MM_FLOAT32, s->n_users, m->k, true));
    m->qi = mm_data(field_tensor(L, idx, "qi", MM_FLOAT32, s->n_items, m->k, true));
    mm_tensor *y = field_tensor(L, idx, "yj", MM_FLOAT32, s->n_items, m->k, false);
    mm_tensor *imp = field_tensor(L, idx, "imp", MM_FLOAT32, s->n_users, m->k, false);
    m->yj = y ? mm_data(y) : NULL;
    m->imp = imp ? mm_data(imp) : NULL;
  }
}

static void read_sgd(lua_State *L, int idx, mm_rec_sgd_opts *o) {
  o->n_epochs = (int)opt_number(L, idx, "n_epochs", 20, NULL);
  o->lr_bu = opt_number(L, idx, "lr_bu", 0.005, NULL);
  o->lr_bi = opt_number(L, idx, "lr_bi", 0.005, NULL);
  o->lr_pu = opt_number(L, idx, "lr_pu", 0.005, NULL);
  o->lr_qi = opt_number(L, idx, "lr_qi", 0.005, NULL);
  o->lr_yj = opt_number(L, idx, "lr_yj", 0.005, NULL);
  o->reg_bu = opt_number(L, idx, "reg_bu", 0.02, NULL);
  o->reg_bi = opt_number(L, idx, "reg_bi", 0.02, NULL);
  o->reg_pu = opt_number(L, idx, "reg_pu", 0.02, NULL);
  o->reg_qi = opt_number(L, idx, "reg_qi", 0.02, NULL);
  o->reg_yj = opt_number(L, idx, "reg_yj", 0.02, NULL);
}

/* baseline(store, "als"|"sgd", mu, n_epochs, a, b) -> bu, bi (float64 tensors);
 * ALS: a = reg_u, b = reg_i; SGD: a = reg, b = learning_rate. */
static int l_baseline(lua_State *L) {
  mm_rec_ratings *s = mml_rec_check_store(L, 1);
  const char *method = luaL_checkstring(L, 2);
  double mu = luaL_checknumber(L, 3);
  int n_epochs = (int)luaL_checkinteger(L, 4);
  double a = luaL_checknumber(L, 5), b = luaL_checknumber(L, 6);
  const mm_rec_csr *cu = mml_rec_store_csr(L, 1, false), *ci = mml_rec_store_csr(L, 1, true);
  mm_ctx *ctx = mml_ctx(L);
  int64_t nu = s->n_users, ni = s->n_items;
  mm_tensor *bu = mml_push_tensor(L, mm_zeros(ctx, MM_FLOAT64, 1, &nu));
  mm_tensor *bi = mml_push_tensor(L, mm_zeros(ctx, MM_FLOAT64, 1, &ni));
  if (strcmp(method, "als") == 0)
    mm_rec_baseline_als(cu, ci, mu, n_epochs, a, b, mm_data(bu), mm_data(bi));
  else
    mm_rec_baseline_sgd(cu, s->n_items, mu, n_epochs, a, b, mm_data(bu), mm_data(bi));
  return 2;
}

/* init({tensors}, "normal"|"uniform", a, b, seed|nil): fills contiguous float32 tensors,
 * one after the other, with Normal(a, b) or Uniform[a, b). With a seed the draws come
 * from a generator of its own (the state's generator is left as it was). */
static int l_init(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *dist = luaL_checkstring(L, 2);
  double a = luaL_checknumber(L, 3), b = luaL_checknumber(L, 4);
  int nt = (int)lua_rawlen(L, 1);
  for (int j = 1; j <= nt; j++) {
    lua_rawgeti(L, 1, j);
    mm_tensor *t = mml_test_tensor(L, -1);
    lua_pop(L, 1);
    if (!t || t->dtype != MM_FLOAT32 || !mm_is_contiguous(t))
      mml_error(L, "moonml.rec: init needs contiguous float32 tensors");
  }
  mm_ctx *ctx = mml_ctx(L), *own = NULL;
  if (!lua_isnoneornil(L, 5)) {
    own = mm_ctx_new();
    if (!own)
      mml_error(L, "moonml.rec: out of memory");
    mm_manual_seed(own, (uint64_t)luaL_checkinteger(L, 5));
    ctx = own;
  }
  bool normal = strcmp(dist, "normal") == 0;
  for (int j = 1; j <= nt; j++) {
    lua_rawgeti(L, 1, j);
    mm_tensor *t = mml_test_tensor(L, -1);
    lua_pop(L, 1);
    if (normal)
      mm_rec_fill_normal(ctx, mm_data(t), mm_numel(t), a, b);
    else
      mm_rec_fill_uniform(ctx, mm_data(t), mm_numel(t), a, b);
  }
  if (own)
    mm_ctx_release(own);
  return 0;
}

/* fit(kind, store, model): runs the SGD / multiplicative solver on the model's tensors. */
static int l_fit(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  mm_rec_ratings *s = mml_rec_check_store(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  const mm_rec_csr *cu = mml_rec_store_csr(L, 2, false); /* by item: NMF only */
  mm_rec_mf m;
  mm_rec_sgd_opts o;
  read_mf(L, 3, s, &m);
  read_sgd(L, 3, &o);
  if (strcmp(kind, "svd") == 0) {
    mml_check_status(L, mm_rec_svd_fit(mml_ctx(L), cu, &m, &o));
  } else if (strcmp(kind, "svdpp") == 0) {
    if (!m.yj || !m.imp || !m.biased)
      mml_error(L, "moonml.rec: SVD++ needs yj, imp and biases");
    mml_check_status(L, mm_rec_svdpp_fit(mml_ctx(L), cu, &m, &o));
  } else if (strcmp(kind, "nmf") == 0) {
    mml_check_status(L, mm_rec_nmf_fit(mml_ctx(L), cu, mml_rec_store_csr(L, 2, true), &m, &o));
  } else {
    mml_error(L, "moonml.rec: unknown solver '%s'", kind);
  }
  return 0;
}

/* predict(model, store, users, items) -> estimates, impossible flags (Lua arrays).
 * users/items: 1-based inner ids of the store's id space, 0 for ids outside it. */
static int l_predict(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  mm_rec_ratings *s = mml_rec_check_store(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  const mm_rec_csr *cu = mml_rec_store_csr(L, 2, false), *ci = mml_rec_store_csr(L, 2, true);
  mm_rec_mf m;
  read_mf(L, 1, s, &m);
  int n = (int)lua_rawlen(L, 3);
  if ((int)lua_rawlen(L, 4) != n)
    mml_error(L, "moonml.rec: users and items differ in length");
  lua_createtable(L, n, 0);
  lua_createtable(L, n, 0);
  for (int k = 1; k <= n; k++) {
    lua_rawgeti(L, 3, k);
    lua_rawgeti(L, 4, k);
    int64_t u = lua_tointeger(L, -2) - 1, i = lua_tointeger(L, -1) - 1;
    lua_pop(L, 2);
    bool uk = row_len(cu, u) > 0, ik = row_len(ci, i) > 0, imp;
    double est = mm_rec_mf_estimate(&m, uk ? (int32_t)u : -1, ik ? (int32_t)i : -1, uk, ik, &imp);
    lua_pushnumber(L, est);
    lua_rawseti(L, -3, k);
    lua_pushboolean(L, imp);
    lua_rawseti(L, -2, k);
  }
  return 2;
}

/* scores(model, store, user) -> Lua array over the item space: the estimate for the
 * (known) user and every item with training ratings, false for the others. */
static int l_scores(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  mm_rec_ratings *s = mml_rec_check_store(L, 2);
  int64_t u = luaL_checkinteger(L, 3) - 1;
  const mm_rec_csr *cu = mml_rec_store_csr(L, 2, false), *ci = mml_rec_store_csr(L, 2, true);
  mm_rec_mf m;
  read_mf(L, 1, s, &m);
  bool uk = row_len(cu, u) > 0;
  lua_createtable(L, s->n_items, 0);
  for (int32_t i = 0; i < s->n_items; i++) {
    bool ik = row_len(ci, i) > 0, imp;
    double est = mm_rec_mf_estimate(&m, uk ? (int32_t)u : -1, i, uk, ik, &imp);
    if (ik && !imp)
      lua_pushnumber(L, est);
    else
      lua_pushboolean(L, 0);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* mf_fold_in(model, store, items, ratings) -> Lua array over the item space: the
 * estimates of a new user folded into the SVD / SVD++ model from (item, rating) pairs
 * (items 1-based inner ids with training ratings), false where an item has none. */
static int l_mf_fold_in(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  mm_rec_ratings *s = mml_rec_check_store(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  const mm_rec_csr *ci = mml_rec_store_csr(L, 2, true);
  mm_rec_mf m;
  mm_rec_sgd_opts o;
  read_mf(L, 1, s, &m);
  read_sgd(L, 1, &o);
  if (m.k > 0 && (!m.pu || !m.qi))
    mml_error(L, "moonml.rec: the model has no factors");
  int64_t n = (int64_t)lua_rawlen(L, 3);
  if ((int64_t)lua_rawlen(L, 4) != n)
    mml_error(L, "moonml.rec: items and ratings differ in length");
  int32_t *items = lua_newuserdatauv(L, sizeof(int32_t) * (size_t)(n > 0 ? n : 1), 0);
  double *r = lua_newuserdatauv(L, sizeof(double) * (size_t)(n > 0 ? n : 1), 0);
  for (int64_t j = 0; j < n; j++) {
    lua_rawgeti(L, 3, j + 1);
    lua_rawgeti(L, 4, j + 1);
    int64_t i = lua_tointeger(L, -2) - 1;
    r[j] = lua_tonumber(L, -1);
    lua_pop(L, 2);
    if (i < 0 || i >= s->n_items || row_len(ci, i) == 0 || !isfinite(r[j]))
      mml_error(L, "moonml.rec: bad item or rating at position %d", (int)(j + 1));
    items[j] = (int32_t)i;
  }
  size_t kk = (size_t)(m.k > 0 ? m.k : 1);
  float *pu = lua_newuserdatauv(L, sizeof(float) * kk, 0);
  float *imp = lua_newuserdatauv(L, sizeof(float) * kk, 0);
  double bu = 0;
  mm_rec_mf_fold_in(&m, n, items, r, &o, &bu, pu, m.yj ? imp : NULL);
  lua_createtable(L, s->n_items, 0);
  for (int32_t i = 0; i < s->n_items; i++) {
    if (row_len(ci, i) == 0) {
      lua_pushboolean(L, 0);
    } else {
      double est = m.biased ? m.mu + bu + m.bi[i] : 0;
      const float *qi = m.qi ? m.qi + (size_t)i * (size_t)m.k : NULL;
      for (int f = 0; f < m.k; f++)
        est += (double)qi[f] * ((double)pu[f] + (m.yj ? (double)imp[f] : 0));
      lua_pushnumber(L, est);
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* ------------------------------------------------------------------ registration */

static const luaL_Reg store_methods[] = {{"size", s_size},
                                         {"space", s_space},
                                         {"get", s_get},
                                         {"columns", s_columns},
                                         {"tensors", s_tensors},
                                         {"stats", s_stats},
                                         {"user_count", s_user_count},
                                         {"item_count", s_item_count},
                                         {"row", s_row},
                                         {NULL, NULL}};

static const luaL_Reg rec_funcs[] = {{"parse", l_parse},
                                     {"from_columns", l_from_columns},
                                     {"remap", l_remap},
                                     {"select", l_select},
                                     {"take", l_take},
                                     {"permutation", l_permutation},
                                     {"baseline", l_baseline},
                                     {"init", l_init},
                                     {"fit", l_fit},
                                     {"predict", l_predict},
                                     {"scores", l_scores},
                                     {"mf_fold_in", l_mf_fold_in},
                                     {NULL, NULL}};

void mml_open_rec(lua_State *L, const mml_open_state *st) {
  luaL_newmetatable(L, CSR_MT);
  lua_pop(L, 1);
  luaL_newmetatable(L, STORE_MT);
  lua_newtable(L);
  mml_register(L, st, lua_absindex(L, -1), store_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  mml_register(L, st, lua_absindex(L, -1), rec_funcs);
  mml_rec_register_knn(L, st, lua_absindex(L, -1));
  mml_rec_register_implicit(L, st, lua_absindex(L, -1));
  lua_setfield(L, st->module, "_rec");
}
