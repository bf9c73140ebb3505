/* Lua binding for sampling (src/ops/random.c): randperm, multinomial, bernoulli and the
 * in-place fills uniform_, normal_, bernoulli_. Positions go out 1-based. */
#include "binding.h"

#include <string.h>

/* The core counts positions from 0, Lua from 1. */
static void to_lua_positions(lua_State *L, mm_tensor *t) {
  mml_check_status(L, mm_binary_scalar_(mml_ctx(L), MM_OP_ADD, t, (mm_scalar){1, true}));
}

static void check_no_more(lua_State *L, int idx, const char *fn) {
  if (lua_gettop(L) >= idx)
    mml_error(L, "moonml.%s: unexpected argument %d (%s)", fn, idx, mml_typename(L, idx));
}

static double opt_number(lua_State *L, int idx, const char *fn, const char *what, double def) {
  return lua_isnoneornil(L, idx) ? def : mml_check_number(L, idx, fn, what);
}

static const char *const no_extra[] = {NULL};

/* ml.randperm(n[, {dtype = "int64"}]): 1 .. n in random order */
static int l_randperm(lua_State *L) {
  int64_t n = mml_check_integer(L, 1, "randperm", "n");
  mm_dtype dt = mml_opt_dtype(L, 2, "randperm", MM_INT64, no_extra);
  check_no_more(L, 3, "randperm");
  if (dt == MM_BOOL)
    mml_error(L, "moonml.randperm: dtype must be int64, float32 or float64, got bool");
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *t = mml_push_tensor(L, mm_randperm(ctx, n));
  to_lua_positions(L, t);
  if (dt != MM_INT64)
    mml_push_tensor(L, mm_to_dtype(ctx, t, dt));
  return 1;
}

/* probs:multinomial(num_samples[, {replacement = false}]) */
static int m_multinomial(lua_State *L) {
  mm_tensor *p = mml_check_tensor(L, 1, "multinomial");
  int64_t k = mml_check_integer(L, 2, "multinomial", "num_samples");
  bool replacement = false;
  if (!lua_isnoneornil(L, 3)) {
    if (!lua_istable(L, 3) || mml_test_tensor(L, 3))
      mml_error(L, "moonml.multinomial: options must be a table, got %s", mml_typename(L, 3));
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "replacement") != 0) {
        lua_pushvalue(L, -2);
        mml_error(L, "moonml.multinomial: unknown option '%s'", luaL_tolstring(L, -1, NULL));
      }
      if (!lua_isboolean(L, -1))
        mml_error(L, "moonml.multinomial: option replacement must be a boolean, got %s",
                  mml_typename(L, -1));
      replacement = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
  }
  check_no_more(L, 4, "multinomial");
  mm_tensor *t = mml_push_tensor(L, mm_multinomial(mml_ctx(L), p, k, replacement));
  to_lua_positions(L, t);
  return 1;
}

/* p:bernoulli(): 0/1 with the probabilities p; x:bernoulli(q): x's shape and dtype, each 1
 * with probability q */
static int m_bernoulli(lua_State *L) {
  mm_tensor *p = mml_check_tensor(L, 1, "bernoulli");
  check_no_more(L, 3, "bernoulli");
  mm_ctx *ctx = mml_ctx(L);
  if (lua_isnoneornil(L, 2)) {
    mml_push_tensor(L, mm_bernoulli(ctx, p));
    return 1;
  }
  double q = mml_check_number(L, 2, "bernoulli", "p");
  mm_tensor *t = mml_push_tensor(L, mm_empty(ctx, p->dtype, p->ndim, p->shape));
  mml_check_status(L, mm_bernoulli_(ctx, t, NULL, q));
  return 1;
}

/* x:bernoulli_([p = 0.5]): p a number or a tensor of probabilities broadcast to x */
static int m_bernoulli_(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "bernoulli_");
  check_no_more(L, 3, "bernoulli_");
  mm_tensor *pt = mml_test_tensor(L, 2);
  double p = pt ? 0 : opt_number(L, 2, "bernoulli_", "p", 0.5);
  mml_check_status(L, mm_bernoulli_(mml_ctx(L), t, pt, p));
  lua_settop(L, 1);
  return 1;
}

/* x:uniform_([from = 0 [, to = 1]]) */
static int m_uniform_(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "uniform_");
  double from = opt_number(L, 2, "uniform_", "from", 0);
  double to = opt_number(L, 3, "uniform_", "to", 1);
  check_no_more(L, 4, "uniform_");
  mml_check_status(L, mm_uniform_(mml_ctx(L), t, from, to));
  lua_settop(L, 1);
  return 1;
}

/* x:normal_([mean = 0 [, std = 1]]) */
static int m_normal_(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "normal_");
  double mean = opt_number(L, 2, "normal_", "mean", 0);
  double std = opt_number(L, 3, "normal_", "std", 1);
  check_no_more(L, 4, "normal_");
  mml_check_status(L, mm_normal_(mml_ctx(L), t, mean, std));
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg functions[] = {
    {"randperm", l_randperm},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"multinomial", m_multinomial}, {"bernoulli", m_bernoulli}, {"bernoulli_", m_bernoulli_},
    {"uniform_", m_uniform_},       {"normal_", m_normal_},     {NULL, NULL},
};

void mml_open_random(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->module, functions);
  mml_register(L, st, st->methods, methods);
}
