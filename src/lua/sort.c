/* Lua binding for sorting (src/ops/sort.c): x:sort, x:topk, x:unique. Dims come in
 * 1-based; positions go out 1-based. */
#include "binding.h"

#include <string.h>

/* Raises for a key of the options table at idx that is not in keys (NULL-terminated). */
static void check_keys(lua_State *L, int idx, const char *fn, const char *const *keys) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    bool known = false;
    for (int i = 0; keys[i] && !known; i++)
      known = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), keys[i]) == 0;
    if (!known) {
      lua_pushvalue(L, -2);
      mml_error(L, "moonml.%s: unknown option '%s'", fn, luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
  }
}

/* opts[key] as a boolean, def when absent */
static bool opt_flag(lua_State *L, int idx, const char *fn, const char *key, bool def) {
  if (idx == 0)
    return def;
  lua_getfield(L, idx, key);
  bool v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1))
      mml_error(L, "moonml.%s: option %s must be a boolean, got %s", fn, key, mml_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* the options table at idx (absent or nil: 0) */
static int opt_table(lua_State *L, int idx, const char *fn, const char *const *keys) {
  if (lua_isnoneornil(L, idx))
    return 0;
  if (!lua_istable(L, idx))
    mml_error(L, "moonml.%s: options must be a table, got %s", fn, mml_typename(L, idx));
  idx = lua_absindex(L, idx);
  check_keys(L, idx, fn, keys);
  return idx;
}

static bool check_flag(lua_State *L, int idx, const char *fn, const char *what) {
  if (!lua_isboolean(L, idx))
    mml_error(L, "moonml.%s: %s must be a boolean, got %s", fn, what, mml_typename(L, idx));
  return lua_toboolean(L, idx);
}

/* The core's positions count from 0; Lua's from 1. t is a fresh contiguous int64 tensor. */
static void to_lua_positions(mm_tensor *t) {
  int64_t *p = mm_data(t), n = mm_numel(t);
  for (int64_t i = 0; i < n; i++)
    p[i] += 1;
}

static int last_dim(const mm_tensor *t) { return t->ndim > 0 ? t->ndim - 1 : 0; }

static int push_pair(lua_State *L, mm_tensor *values, mm_tensor *indices) {
  if (!values)
    return mml_core_error(L);
  to_lua_positions(indices);
  mml_push_tensor(L, values);
  mml_push_tensor(L, indices);
  return 2;
}

/* x:sort([dim] [, {descending =, stable =}]) or x:sort(dim, descending); dim defaults to
 * the last. The sort is always stable. */
static int m_sort(lua_State *L) {
  static const char *const keys[] = {"descending", "stable", NULL};
  mm_tensor *t = mml_check_tensor(L, 1, "sort");
  int dim = last_dim(t), oidx = 3;
  if (lua_istable(L, 2)) {
    if (!lua_isnone(L, 3))
      mml_error(L, "moonml.sort: unexpected argument 3 after the options");
    oidx = 2;
  } else {
    dim = mml_opt_dim(L, 2, "sort", t->ndim, dim);
  }
  bool descending = false;
  if (lua_isboolean(L, oidx)) {
    descending = lua_toboolean(L, oidx);
  } else {
    int o = opt_table(L, oidx, "sort", keys);
    descending = opt_flag(L, o, "sort", "descending", false);
    opt_flag(L, o, "sort", "stable", true); /* checked; every sort here is stable */
  }
  mm_tensor *idx = NULL;
  mm_tensor *v = mm_sort(mml_ctx(L), t, dim, descending, &idx);
  return push_pair(L, v, idx);
}

/* x:topk(k [, dim] [, {largest =, sorted =}]) or x:topk(k, dim, largest, sorted) */
static int m_topk(lua_State *L) {
  static const char *const keys[] = {"largest", "sorted", NULL};
  mm_tensor *t = mml_check_tensor(L, 1, "topk");
  int64_t k = mml_check_integer(L, 2, "topk", "k");
  int dim = last_dim(t);
  bool largest = true, sorted = true;
  if (lua_istable(L, 3)) {
    int o = opt_table(L, 3, "topk", keys);
    largest = opt_flag(L, o, "topk", "largest", true);
    sorted = opt_flag(L, o, "topk", "sorted", true);
  } else {
    dim = mml_opt_dim(L, 3, "topk", t->ndim, dim);
    if (lua_istable(L, 4)) {
      int o = opt_table(L, 4, "topk", keys);
      largest = opt_flag(L, o, "topk", "largest", true);
      sorted = opt_flag(L, o, "topk", "sorted", true);
    } else {
      if (!lua_isnoneornil(L, 4))
        largest = check_flag(L, 4, "topk", "largest");
      if (!lua_isnoneornil(L, 5))
        sorted = check_flag(L, 5, "topk", "sorted");
    }
  }
  mm_tensor *idx = NULL;
  mm_tensor *v = mm_topk(mml_ctx(L), t, k, dim, largest, sorted, &idx);
  return push_pair(L, v, idx);
}

/* x:unique([{sorted =, return_inverse =, return_counts =}]) -> values [, inverse]
 * [, counts], as torch.unique over all elements; the values always come sorted. */
static int m_unique(lua_State *L) {
  static const char *const keys[] = {"sorted", "return_inverse", "return_counts", "dim", NULL};
  mm_tensor *t = mml_check_tensor(L, 1, "unique");
  int o = opt_table(L, 2, "unique", keys);
  if (o) {
    lua_getfield(L, o, "dim");
    if (!lua_isnil(L, -1))
      mml_error(L, "moonml.unique: the dim option is not supported; unique works over all "
                   "elements");
    lua_pop(L, 1);
  }
  opt_flag(L, o, "unique", "sorted", true);
  bool want_inverse = opt_flag(L, o, "unique", "return_inverse", false);
  bool want_counts = opt_flag(L, o, "unique", "return_counts", false);
  mm_tensor *inv = NULL, *cnt = NULL;
  mm_tensor *v = mm_unique(mml_ctx(L), t, want_inverse ? &inv : NULL, want_counts ? &cnt : NULL);
  if (!v)
    return mml_core_error(L);
  mml_push_tensor(L, v);
  if (inv) {
    to_lua_positions(inv);
    mml_push_tensor(L, inv);
  }
  if (cnt)
    mml_push_tensor(L, cnt);
  return 1 + (inv != NULL) + (cnt != NULL);
}

static const luaL_Reg methods[] = {
    {"sort", m_sort},
    {"topk", m_topk},
    {"unique", m_unique},
    {NULL, NULL},
};

void mml_open_sort(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->methods, methods);
}
