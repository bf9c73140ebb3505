/* Lua binding for the element-wise math of src/ops/math.c: rsqrt sin cos sign floor ceil round,
 * clamp, maximum, minimum, lerp, and their in-place forms. */
#include "binding.h"

#include <string.h>

/* The math ops take the tensor alone: x:round(2) must not pass for rounding to 2 decimals. */
static void check_no_more(lua_State *L, int idx, const char *fn) {
  if (lua_gettop(L) >= idx)
    mml_error(L, "moonml.%s: expected no argument after the tensor, got %s", fn,
              mml_typename(L, idx));
}

static int math1(lua_State *L, mm_math_op op) {
  const char *fn = mm_math_op_name(op);
  mm_tensor *a = mml_check_tensor(L, 1, fn);
  check_no_more(L, 2, fn);
  mml_push_tensor(L, mm_math(mml_ctx(L), op, a));
  return 1;
}

static int math1_(lua_State *L, mm_math_op op, const char *fn) {
  mm_tensor *a = mml_check_tensor(L, 1, fn);
  check_no_more(L, 2, fn);
  mml_check_status(L, mm_math_(mml_ctx(L), op, a));
  lua_settop(L, 1);
  return 1;
}

#define MATH1(name, OP)                                                                            \
  static int m_##name(lua_State *L) { return math1(L, OP); }                                       \
  static int m_##name##_(lua_State *L) { return math1_(L, OP, #name "_"); }

MATH1(rsqrt, MM_MATH_RSQRT)
MATH1(sin, MM_MATH_SIN)
MATH1(cos, MM_MATH_COS)
MATH1(sign, MM_MATH_SIGN)
MATH1(floor, MM_MATH_FLOOR)
MATH1(ceil, MM_MATH_CEIL)
MATH1(round, MM_MATH_ROUND)

/* ------------------------------------------------------------------ clamp */

/* A bound at idx: nil (absent), a Lua number (an integer stays one) or a tensor. */
static mm_bound check_bound(lua_State *L, int idx, const char *fn, const char *what) {
  mm_bound b = {false, NULL, {0, false}};
  if (lua_isnoneornil(L, idx))
    return b;
  b.set = true;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    b.s.is_integer = lua_isinteger(L, idx);
    b.s.value = b.s.is_integer ? (double)lua_tointeger(L, idx) : (double)lua_tonumber(L, idx);
    return b;
  }
  b.t = mml_test_tensor(L, idx);
  if (!b.t)
    mml_error(L, "moonml.%s: %s must be a number, a tensor or nil, got %s", fn, what,
              mml_typename(L, idx));
  return b;
}

/* x:clamp(min, max) or x:clamp{min = ..., max = ...}; leaves the bounds at 2 and 3 */
static void clamp_args(lua_State *L, const char *fn, mm_bound *lo, mm_bound *hi) {
  if (lua_istable(L, 2) && !mml_test_tensor(L, 2)) {
    if (!lua_isnone(L, 3))
      mml_error(L, "moonml.%s: give the bounds as (min, max) or as one table {min =, max =}", fn);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      if (!k || (strcmp(k, "min") != 0 && strcmp(k, "max") != 0)) {
        lua_pushvalue(L, -2);
        mml_error(L, "moonml.%s: unknown option '%s'", fn, luaL_tolstring(L, -1, NULL));
      }
      lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_getfield(L, 2, "min");
    lua_getfield(L, 2, "max");
    lua_remove(L, 2); /* x, min, max */
  }
  *lo = check_bound(L, 2, fn, "min");
  *hi = check_bound(L, 3, fn, "max");
  if (lua_gettop(L) > 3)
    mml_error(L, "moonml.%s: expected min and max, got an argument %d (%s)", fn, 4,
              mml_typename(L, 4));
}

static int m_clamp(lua_State *L) {
  mm_tensor *a = mml_check_tensor(L, 1, "clamp");
  mm_bound lo, hi;
  clamp_args(L, "clamp", &lo, &hi);
  mml_push_tensor(L, mm_clamp(mml_ctx(L), a, lo, hi));
  return 1;
}

static int m_clamp_(lua_State *L) {
  mm_tensor *a = mml_check_tensor(L, 1, "clamp_");
  mm_bound lo, hi;
  clamp_args(L, "clamp_", &lo, &hi);
  mml_check_status(L, mm_clamp_(mml_ctx(L), a, lo, hi));
  lua_settop(L, 1);
  return 1;
}

/* ------------------------------------------------------------------ maximum, minimum */

static int minmax(lua_State *L, bool is_min, bool inplace) {
  const char *fn = is_min ? (inplace ? "minimum_" : "minimum") : (inplace ? "maximum_" : "maximum");
  mm_tensor *a = mml_check_tensor(L, 1, fn);
  mm_tensor *b = mml_check_tensor(L, 2, fn);
  mm_ctx *ctx = mml_ctx(L);
  if (inplace) {
    mml_check_status(L, is_min ? mm_minimum_(ctx, a, b) : mm_maximum_(ctx, a, b));
    lua_settop(L, 1);
  } else {
    mml_push_tensor(L, is_min ? mm_minimum(ctx, a, b) : mm_maximum(ctx, a, b));
  }
  return 1;
}

static int m_maximum(lua_State *L) { return minmax(L, false, false); }
static int m_minimum(lua_State *L) { return minmax(L, true, false); }
static int m_maximum_(lua_State *L) { return minmax(L, false, true); }
static int m_minimum_(lua_State *L) { return minmax(L, true, true); }

/* ------------------------------------------------------------------ lerp */

/* x:lerp(end, weight): weight a number or a tensor */
static int lerp(lua_State *L, bool inplace) {
  const char *fn = inplace ? "lerp_" : "lerp";
  mm_tensor *s = mml_check_tensor(L, 1, fn);
  mm_tensor *e = mml_check_tensor(L, 2, fn);
  mm_tensor *w = NULL;
  double ws = 0;
  if (lua_type(L, 3) == LUA_TNUMBER)
    ws = lua_tonumber(L, 3);
  else if (!(w = mml_test_tensor(L, 3)))
    mml_error(L, "moonml.%s: weight must be a number or a tensor, got %s", fn, mml_typename(L, 3));
  mm_ctx *ctx = mml_ctx(L);
  if (inplace) {
    mml_check_status(L, mm_lerp_(ctx, s, e, w, ws));
    lua_settop(L, 1);
  } else {
    mml_push_tensor(L, mm_lerp(ctx, s, e, w, ws));
  }
  return 1;
}

static int m_lerp(lua_State *L) { return lerp(L, false); }
static int m_lerp_(lua_State *L) { return lerp(L, true); }

static const luaL_Reg methods[] = {
    {"rsqrt", m_rsqrt},     {"rsqrt_", m_rsqrt_},
    {"sin", m_sin},         {"sin_", m_sin_},
    {"cos", m_cos},         {"cos_", m_cos_},
    {"sign", m_sign},       {"sign_", m_sign_},
    {"floor", m_floor},     {"floor_", m_floor_},
    {"ceil", m_ceil},       {"ceil_", m_ceil_},
    {"round", m_round},     {"round_", m_round_},
    {"clamp", m_clamp},     {"clamp_", m_clamp_},
    {"maximum", m_maximum}, {"maximum_", m_maximum_},
    {"minimum", m_minimum}, {"minimum_", m_minimum_},
    {"lerp", m_lerp},       {"lerp_", m_lerp_},
    {NULL, NULL},
};

void mml_open_math(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->methods, methods);
}
