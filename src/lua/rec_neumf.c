/* Binding of NeuMF's training pairs (src/rec/neumf.c): an index of a train set's
 * interactions with a generator of its own, which draws each epoch's shuffled positives
 * and sampled negatives as tensors. Functions of the table `_rec`; the model is
 * lua/moonml/rec/neumf.lua. Argument checks and 0-based -> 1-based ids only. */
#include "../rec/neumf.h"
#include "rec_internal.h"

#include <string.h>

#define INDEX_MT "moonml.rec.NeuMFIndex"

typedef struct {
  mm_rec_pos p;
  mm_ctx *rng; /* NULL once collected */
} index_box;

static size_t a8(size_t n) { return (n + 7) & ~(size_t)7; }

static int index_gc(lua_State *L) {
  index_box *b = luaL_checkudata(L, 1, INDEX_MT);
  if (b->rng)
    mm_ctx_release(b->rng);
  b->rng = NULL;
  return 0;
}

static index_box *check_index(lua_State *L, int idx) {
  index_box *b = luaL_testudata(L, idx, INDEX_MT);
  if (!b || !b->rng)
    mml_error(L, "moonml.rec: expected a NeuMF index as argument %d, got %s", idx,
              mml_typename(L, idx));
  return b;
}

/* A new index box of `bytes` bytes of pairs after the header (its pos not yet filled),
 * on the stack, with a generator seeded with the integer at stack index seed_idx or,
 * when that is nil, with a draw of the state's generator (so that ml.manual_seed makes
 * the fit reproducible). Returns the box; *mem is the block for its pairs. */
static index_box *new_index(lua_State *L, size_t bytes, int seed_idx, void **mem) {
  bool seeded = !lua_isnoneornil(L, seed_idx);
  uint64_t seed = seeded ? (uint64_t)mml_check_integer(L, seed_idx, "rec", "seed") : 0;
  size_t head = a8(sizeof(index_box));
  index_box *b = lua_newuserdatauv(L, head + bytes, 0);
  b->rng = NULL;
  luaL_setmetatable(L, INDEX_MT);
  mm_ctx *rng = mm_ctx_new();
  if (!rng)
    mml_error(L, "moonml.rec: out of memory");
  mm_manual_seed(rng, seeded ? seed : mm_random_u64(mml_ctx(L)));
  b->rng = rng;
  *mem = (char *)b + head;
  return b;
}

/* neumf_index(store, seed|nil): the distinct pairs of the store by user and a generator
 * seeded with seed (see new_index). */
static int l_neumf_index(lua_State *L) {
  mm_rec_ratings *r = mml_rec_check_store(L, 1);
  const mm_rec_csr *csr = mml_rec_store_csr(L, 1, false);
  void *mem;
  index_box *b = new_index(L, mm_rec_pos_bytes(csr, r->n_items), 2, &mem);
  mm_rec_pos_fill(csr, r->n_items, mem, &b->p);
  return 1;
}

/* index:user(items, seed|nil): a one-user index for fold-in (its user is 1): the given
 * items (a Lua array of 1-based ids, each a candidate of this index) as its pairs, over
 * this index's items and candidates, with a generator of its own (see new_index). */
static int i_user(lua_State *L) {
  index_box *from = check_index(L, 1);
  if (!lua_istable(L, 2))
    mml_error(L, "moonml.rec: expected an array of items, got %s", mml_typename(L, 2));
  int64_t n = (int64_t)luaL_len(L, 2);
  if (n < 1 || n > from->p.n_items)
    mml_error(L, "moonml.rec: expected 1..%d items, got %I", (int)from->p.n_items, (lua_Integer)n);
  int32_t *ids = lua_newuserdatauv(L, (size_t)n * sizeof(int32_t), 0);
  for (int64_t k = 0; k < n; k++) {
    lua_geti(L, 2, k + 1);
    int64_t i = mml_check_integer(L, -1, "rec", "item");
    lua_pop(L, 1);
    if (i < 1 || i > from->p.n_items)
      mml_error(L, "moonml.rec: item %I out of range 1..%d", (lua_Integer)i, (int)from->p.n_items);
    ids[k] = (int32_t)(i - 1);
  }
  void *mem;
  index_box *b = new_index(L, mm_rec_pos_user_bytes(&from->p, n), 3, &mem);
  if (mm_rec_pos_fill_user(&from->p, ids, n, mem, &b->p) != 0)
    mml_error(L, "moonml.rec: every item of a fold-in must have training interactions");
  return 1;
}

/* index:epoch(negatives) -> users, items (int64, 1-based), labels (float32) */
static int i_epoch(lua_State *L) {
  index_box *b = check_index(L, 1);
  int64_t neg = mml_check_integer(L, 2, "rec", "negatives");
  if (neg < 0 || neg > 1000000)
    mml_error(L, "moonml.rec: negatives must be in 0..1000000, got %I", (lua_Integer)neg);
  int64_t n = mm_rec_neg_rows(&b->p, (int32_t)neg);
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *u = mml_push_tensor(L, mm_empty(ctx, MM_INT64, 1, &n));
  mm_tensor *i = mml_push_tensor(L, mm_empty(ctx, MM_INT64, 1, &n));
  mm_tensor *y = mml_push_tensor(L, mm_empty(ctx, MM_FLOAT32, 1, &n));
  mm_rec_neg_epoch(b->rng, &b->p, (int32_t)neg, 1, mm_data(u), mm_data(i), mm_data(y));
  return 3;
}

/* index:fill(t, "normal"|"uniform", a, b): t (contiguous float32) from Normal(a, b) or
 * Uniform[a, b) with the index's generator */
static int i_fill(lua_State *L) {
  index_box *b = check_index(L, 1);
  mm_tensor *t = mml_check_tensor(L, 2, "rec");
  const char *dist = luaL_checkstring(L, 3);
  double lo = luaL_checknumber(L, 4), hi = luaL_checknumber(L, 5);
  if (t->dtype != MM_FLOAT32 || !mm_is_contiguous(t))
    mml_error(L, "moonml.rec: fill needs a contiguous float32 tensor");
  if (strcmp(dist, "normal") == 0)
    mm_rec_fill_normal(b->rng, mm_data(t), mm_numel(t), lo, hi);
  else if (strcmp(dist, "uniform") == 0)
    mm_rec_fill_uniform(b->rng, mm_data(t), mm_numel(t), lo, hi);
  else
    mml_error(L, "moonml.rec: unknown distribution '%s'", dist);
  mm_bump_version(t);
  return 0;
}

/* index:seen(u) -> int64 tensor of the items of user u (1-based), ascending */
static int i_seen(lua_State *L) {
  index_box *b = check_index(L, 1);
  int64_t u = mml_check_integer(L, 2, "rec", "user") - 1;
  int64_t n = 0;
  const int32_t *row = NULL;
  if (u >= 0 && u < b->p.n_users) {
    row = b->p.item + b->p.ptr[u];
    n = b->p.ptr[u + 1] - b->p.ptr[u];
  }
  mm_tensor *t = mml_push_tensor(L, mm_empty(mml_ctx(L), MM_INT64, 1, &n));
  int64_t *d = mm_data(t);
  for (int64_t k = 0; k < n; k++)
    d[k] = row[k] + 1;
  return 1;
}

/* index:candidates() -> bool tensor over the items, true for those with an interaction */
static int i_candidates(lua_State *L) {
  index_box *b = check_index(L, 1);
  int64_t n = b->p.n_items;
  mm_tensor *t = mml_push_tensor(L, mm_zeros(mml_ctx(L), MM_BOOL, 1, &n));
  uint8_t *d = mm_data(t);
  for (int32_t c = 0; c < b->p.n_cand; c++)
    d[b->p.cand[c]] = 1;
  return 1;
}

/* index:counts() -> users, items (id space), candidates, distinct pairs */
static int i_counts(lua_State *L) {
  index_box *b = check_index(L, 1);
  lua_pushinteger(L, b->p.n_users);
  lua_pushinteger(L, b->p.n_items);
  lua_pushinteger(L, b->p.n_cand);
  lua_pushinteger(L, b->p.nnz);
  return 4;
}

static const luaL_Reg index_methods[] = {
    {"epoch", i_epoch},           {"fill", i_fill}, {"seen", i_seen}, {"counts", i_counts},
    {"candidates", i_candidates}, {"user", i_user}, {NULL, NULL}};

static const luaL_Reg funcs[] = {{"neumf_index", l_neumf_index}, {NULL, NULL}};

void mml_open_rec_neumf(lua_State *L, const mml_open_state *st) {
  luaL_newmetatable(L, INDEX_MT);
  lua_pushcfunction(L, index_gc);
  lua_setfield(L, -2, "__gc");
  lua_newtable(L);
  mml_register(L, st, lua_absindex(L, -1), index_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_getfield(L, st->module, "_rec");
  mml_register(L, st, lua_absindex(L, -1), funcs);
  lua_pop(L, 1);
}
