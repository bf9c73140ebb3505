/* Lua binding for the reductions and scans of src/ops/stats.c and src/ops/scan.c:
 * x:prod, x:var, x:std, x:norm, x:logsumexp ([dim [, keepdim]]), x:cumsum(dim),
 * x:cumprod(dim). */
#include "binding.h"

#include <math.h>
#include <string.h>

/* keepdim at idx: absent or nil is false, otherwise it must be a boolean */
static bool opt_keepdim(lua_State *L, int idx, const char *fn) {
  if (lua_isnoneornil(L, idx))
    return false;
  if (!lua_isboolean(L, idx))
    mml_error(L, "moonml.%s: keepdim must be a boolean, got %s", fn, mml_typename(L, idx));
  return lua_toboolean(L, idx);
}

/* [dim [, keepdim]] from idx: whether a dim was given */
static bool dim_args(lua_State *L, int idx, const char *fn, const mm_tensor *t, int *dim,
                     bool *keepdim) {
  if (lua_isnoneornil(L, idx)) {
    if (!lua_isnoneornil(L, idx + 1))
      mml_error(L, "moonml.%s: keepdim given without a dim", fn);
    return false;
  }
  *dim = mml_check_dim(L, idx, fn, t->ndim);
  *keepdim = opt_keepdim(L, idx + 1, fn);
  return true;
}

static int push_stat(lua_State *L, mm_stat_op op, const mm_tensor *t, bool has_dim, int dim,
                     bool keepdim, double param) {
  mm_ctx *ctx = mml_ctx(L);
  mml_push_tensor(L, has_dim ? mm_stat_dim(ctx, op, t, dim, keepdim, param)
                             : mm_stat_all(ctx, op, t, param));
  return 1;
}

/* x:prod([dim [, keepdim]]), x:logsumexp([dim [, keepdim]]) */
static int simple_stat(lua_State *L, mm_stat_op op, const char *fn) {
  mm_tensor *t = mml_check_tensor(L, 1, fn);
  int dim = 0;
  bool keepdim = false;
  bool has_dim = dim_args(L, 2, fn, t, &dim, &keepdim);
  if (!lua_isnone(L, 4))
    mml_error(L, "moonml.%s: unexpected argument 4", fn);
  return push_stat(L, op, t, has_dim, dim, keepdim, 0);
}

static int m_prod(lua_State *L) { return simple_stat(L, MM_STAT_PROD, "prod"); }
static int m_logsumexp(lua_State *L) { return simple_stat(L, MM_STAT_LOGSUMEXP, "logsumexp"); }

/* the correction of {correction = c} or {unbiased = b} (default 1, as PyTorch) */
static double read_correction(lua_State *L, int idx, const char *fn) {
  if (!lua_istable(L, idx))
    mml_error(L, "moonml.%s: options must be a table, got %s", fn, mml_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!k || (strcmp(k, "correction") != 0 && strcmp(k, "unbiased") != 0)) {
      lua_pushvalue(L, -2);
      mml_error(L, "moonml.%s: unknown option '%s'", fn, luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
  }
  double c = 1;
  lua_getfield(L, idx, "correction");
  lua_getfield(L, idx, "unbiased");
  if (!lua_isnil(L, -2) && !lua_isnil(L, -1))
    mml_error(L, "moonml.%s: give correction or unbiased, not both", fn);
  if (!lua_isnil(L, -2)) {
    c = mml_check_number(L, -2, fn, "correction");
    if (!(c >= 0))
      mml_error(L, "moonml.%s: correction must not be negative, got %f", fn, (lua_Number)c);
  } else if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1))
      mml_error(L, "moonml.%s: option unbiased must be a boolean, got %s", fn, mml_typename(L, -1));
    c = lua_toboolean(L, -1) ? 1 : 0;
  }
  lua_pop(L, 2);
  return c;
}

/* x:var([dim [, keepdim]] [, {correction = 1 | unbiased = true}]); x:std(...) */
static int var_like(lua_State *L, mm_stat_op op, const char *fn) {
  mm_tensor *t = mml_check_tensor(L, 1, fn);
  int top = lua_gettop(L);
  double c = 1;
  if (top >= 2 && lua_istable(L, top)) { /* the options come last */
    c = read_correction(L, top, fn);
    lua_settop(L, top - 1);
  }
  if (lua_gettop(L) > 3)
    mml_error(L, "moonml.%s: unexpected argument 4", fn);
  int dim = 0;
  bool keepdim = false;
  bool has_dim = dim_args(L, 2, fn, t, &dim, &keepdim);
  return push_stat(L, op, t, has_dim, dim, keepdim, c);
}

static int m_var(lua_State *L) { return var_like(L, MM_STAT_VAR, "var"); }
static int m_std(lua_State *L) { return var_like(L, MM_STAT_STD, "std"); }

/* x:norm([p [, dim [, keepdim]]]): p a number (math.huge, -math.huge, 0 allowed) or "fro";
 * 2 when absent */
static int m_norm(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "norm");
  double p = 2;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 2);
    if (strcmp(s, "fro") != 0)
      mml_error(L, "moonml.norm: p must be a number or 'fro', got '%s'", s);
  } else if (!lua_isnoneornil(L, 2)) {
    p = mml_check_number(L, 2, "norm", "p");
    if (isnan(p))
      mml_error(L, "moonml.norm: p must be a number, got nan");
  }
  int dim = 0;
  bool keepdim = false;
  bool has_dim = dim_args(L, 3, "norm", t, &dim, &keepdim);
  return push_stat(L, MM_STAT_NORM, t, has_dim, dim, keepdim, p);
}

/* x:cumsum(dim), x:cumprod(dim) */
static int scan(lua_State *L, bool prod, const char *fn) {
  mm_tensor *t = mml_check_tensor(L, 1, fn);
  int dim = mml_check_dim(L, 2, fn, t->ndim);
  mm_ctx *ctx = mml_ctx(L);
  mml_push_tensor(L, prod ? mm_cumprod(ctx, t, dim) : mm_cumsum(ctx, t, dim));
  return 1;
}

static int m_cumsum(lua_State *L) { return scan(L, false, "cumsum"); }
static int m_cumprod(lua_State *L) { return scan(L, true, "cumprod"); }

static const luaL_Reg methods[] = {
    {"prod", m_prod},           {"var", m_var},       {"std", m_std},         {"norm", m_norm},
    {"logsumexp", m_logsumexp}, {"cumsum", m_cumsum}, {"cumprod", m_cumprod}, {NULL, NULL},
};

void mml_open_stats(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->methods, methods);
}
