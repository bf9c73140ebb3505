/* Lua binding for the reduce ops (src/ops/reduce.c): sum, mean, max, min, argmax,
 * argmin, softmax, log_softmax. Dims come in 1-based; positions go out 1-based. */
#include "binding.h"

/* keepdim at idx: absent or nil is false, otherwise it must be a boolean */
static bool opt_keepdim(lua_State *L, int idx, const char *fn) {
  if (lua_isnoneornil(L, idx))
    return false;
  if (!lua_isboolean(L, idx))
    mml_error(L, "moonml.%s: keepdim must be a boolean, got %s", fn, mml_typename(L, idx));
  return lua_toboolean(L, idx);
}

/* keepdim only means something with a dim */
static void check_no_keepdim(lua_State *L, int idx, const char *fn) {
  if (!lua_isnoneornil(L, idx))
    mml_error(L, "moonml.%s: keepdim given without a dim", fn);
}

/* The core's positions count from 0; Lua's from 1. t is a fresh contiguous int64 tensor. */
static void to_lua_positions(mm_tensor *t) {
  int64_t *p = mm_data(t), n = mm_numel(t);
  for (int64_t i = 0; i < n; i++)
    p[i] += 1;
}

/* x:sum([dim [, keepdim]]), x:mean(...) */
static int reduce_value(lua_State *L, mm_reduce_op op, const char *fn) {
  mm_tensor *t = mml_check_tensor(L, 1, fn);
  if (lua_isnoneornil(L, 2)) {
    check_no_keepdim(L, 3, fn);
    mml_push_tensor(L, mm_reduce_all(mml_ctx(L), op, t));
    return 1;
  }
  int dim = mml_check_dim(L, 2, fn, t->ndim);
  bool keepdim = opt_keepdim(L, 3, fn);
  mml_push_tensor(L, mm_reduce_dim(mml_ctx(L), op, t, dim, keepdim, NULL));
  return 1;
}

/* x:max() -> 0-d tensor; x:max(dim [, keepdim]) -> values, positions */
static int reduce_best(lua_State *L, mm_reduce_op op, const char *fn) {
  mm_tensor *t = mml_check_tensor(L, 1, fn);
  if (lua_isnoneornil(L, 2)) {
    check_no_keepdim(L, 3, fn);
    mml_push_tensor(L, mm_reduce_all(mml_ctx(L), op, t));
    return 1;
  }
  int dim = mml_check_dim(L, 2, fn, t->ndim);
  bool keepdim = opt_keepdim(L, 3, fn);
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *idx = NULL;
  mm_tensor *values = mm_reduce_dim(ctx, op, t, dim, keepdim, &idx);
  if (!values)
    return mml_core_error(L);
  mml_push_tensor(L, values);
  if (values->requires_grad) {
    /* the graph keeps the 0-based positions for backward: hand out a 1-based copy */
    mm_tensor *lua_idx = mm_binary_scalar(ctx, MM_OP_ADD, idx, (mm_scalar){1, true}, false);
    mm_release(idx);
    mml_push_tensor(L, lua_idx);
  } else {
    to_lua_positions(idx);
    mml_push_tensor(L, idx);
  }
  return 2;
}

/* x:argmax() -> 0-d int64 flat position; x:argmax(dim [, keepdim]) -> positions */
static int reduce_arg(lua_State *L, mm_reduce_op op, const char *fn) {
  mm_tensor *t = mml_check_tensor(L, 1, fn);
  mm_tensor *r;
  if (lua_isnoneornil(L, 2)) {
    check_no_keepdim(L, 3, fn);
    r = mml_push_tensor(L, mm_reduce_all(mml_ctx(L), op, t));
  } else {
    int dim = mml_check_dim(L, 2, fn, t->ndim);
    bool keepdim = opt_keepdim(L, 3, fn);
    r = mml_push_tensor(L, mm_reduce_dim(mml_ctx(L), op, t, dim, keepdim, NULL));
  }
  to_lua_positions(r);
  return 1;
}

static int m_sum(lua_State *L) { return reduce_value(L, MM_RED_SUM, "sum"); }
static int m_mean(lua_State *L) { return reduce_value(L, MM_RED_MEAN, "mean"); }
static int m_max(lua_State *L) { return reduce_best(L, MM_RED_MAX, "max"); }
static int m_min(lua_State *L) { return reduce_best(L, MM_RED_MIN, "min"); }
static int m_argmax(lua_State *L) { return reduce_arg(L, MM_RED_ARGMAX, "argmax"); }
static int m_argmin(lua_State *L) { return reduce_arg(L, MM_RED_ARGMIN, "argmin"); }

/* x:softmax([dim]): dim defaults to the last */
static int softmax_like(lua_State *L, bool log, const char *fn) {
  mm_tensor *t = mml_check_tensor(L, 1, fn);
  int dim = mml_opt_dim(L, 2, fn, t->ndim, t->ndim > 0 ? t->ndim - 1 : 0);
  mm_ctx *ctx = mml_ctx(L);
  mml_push_tensor(L, log ? mm_log_softmax(ctx, t, dim) : mm_softmax(ctx, t, dim));
  return 1;
}

static int m_softmax(lua_State *L) { return softmax_like(L, false, "softmax"); }
static int m_log_softmax(lua_State *L) { return softmax_like(L, true, "log_softmax"); }

static const luaL_Reg methods[] = {
    {"sum", m_sum},         {"mean", m_mean},
    {"max", m_max},         {"min", m_min},
    {"argmax", m_argmax},   {"argmin", m_argmin},
    {"softmax", m_softmax}, {"log_softmax", m_log_softmax},
    {NULL, NULL},
};

void mml_open_reduce(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->methods, methods);
}
