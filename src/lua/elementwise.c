/* Lua binding for the element-wise ops (src/ops/elementwise.c): methods, in-place forms and
 * the arithmetic metamethods. The other operand is a tensor or a Lua number; a Lua integer
 * (2) and a Lua float (2.0) differ as Python's 2 and 2.0 do (int64 tensor + 2.0 is float32). */
#include "binding.h"

#include <string.h>

/* The operand at idx: a tensor (returned), or a Lua number (NULL returned, value in *s). */
static mm_tensor *check_operand(lua_State *L, int idx, const char *fn, mm_scalar *s) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    s->is_integer = lua_isinteger(L, idx);
    s->value = s->is_integer ? (double)lua_tointeger(L, idx) : (double)lua_tonumber(L, idx);
    return NULL;
  }
  mml_tensor_box *b = mml_test_box(L, idx);
  if (!b) {
    mml_error(L, "moonml.%s: expected a tensor or a number as argument %d, got %s", fn, idx,
              luaL_typename(L, idx));
    return NULL; /* not reached: mml_error raises */
  }
  if (!b->t)
    mml_error(L, "moonml.%s: argument %d is a closed tensor", fn, idx);
  return b->t;
}

/* Checks that the options table at idx has only the given keys. */
static void check_options(lua_State *L, int idx, const char *fn, const char *const *keys) {
  if (!lua_istable(L, idx) || mml_test_tensor(L, idx))
    mml_error(L, "moonml.%s: options must be a table, got %s", fn, mml_typename(L, idx));
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

static double opt_number(lua_State *L, int idx, const char *fn, const char *key, double def,
                         bool *is_integer) {
  lua_getfield(L, idx, key);
  double v = def;
  if (is_integer)
    *is_integer = true;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER)
      mml_error(L, "moonml.%s: option %s must be a number, got %s", fn, key, mml_typename(L, -1));
    if (is_integer)
      *is_integer = lua_isinteger(L, -1);
    v = lua_isinteger(L, -1) ? (double)lua_tointeger(L, -1) : (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static const char *const alpha_keys[] = {"alpha", NULL};

/* {alpha = a} at idx; alpha 1 when absent */
static mm_scalar check_alpha(lua_State *L, int idx, const char *fn) {
  check_options(L, idx, fn, alpha_keys);
  mm_scalar alpha;
  alpha.value = opt_number(L, idx, fn, "alpha", 1, &alpha.is_integer);
  return alpha;
}

/* ------------------------------------------------------------------ binary */

/* op(a, b): either side may be a Lua number (2 - x, ml.div(1, x)); add/sub take {alpha}. */
static int binary(lua_State *L, mm_binary_op op, bool alpha_ok) {
  const char *fn = mm_binary_op_name(op);
  mm_scalar sa = {0, false}, sb = {0, false};
  mm_tensor *a = check_operand(L, 1, fn, &sa);
  mm_tensor *b = check_operand(L, 2, fn, &sb);
  mm_ctx *ctx = mml_ctx(L);
  if (!a && !b)
    mml_error(L, "moonml.%s: expected a tensor as argument 1 or 2, got two numbers", fn);
  if (alpha_ok && !lua_isnoneornil(L, 3)) {
    mm_scalar alpha = check_alpha(L, 3, fn);
    if (!a)
      mml_error(L, "moonml.%s: with alpha, argument 1 must be a tensor, got number", fn);
    mml_push_tensor(L, mm_add_alpha(ctx, op, a, b, sb, alpha));
    return 1;
  }
  if (a && b)
    mml_push_tensor(L, mm_binary(ctx, op, a, b));
  else if (a)
    mml_push_tensor(L, mm_binary_scalar(ctx, op, a, sb, false));
  else
    mml_push_tensor(L, mm_binary_scalar(ctx, op, b, sa, true));
  return 1;
}

/* self:op_(other): writes into self and returns it */
static int binary_(lua_State *L, mm_binary_op op, const char *fn, bool alpha_ok) {
  mm_tensor *a = mml_check_tensor(L, 1, fn);
  mm_scalar sb = {0, false};
  mm_tensor *b = check_operand(L, 2, fn, &sb);
  mm_ctx *ctx = mml_ctx(L);
  int status;
  if (alpha_ok && !lua_isnoneornil(L, 3))
    status = mm_add_alpha_(ctx, op, a, b, sb, check_alpha(L, 3, fn));
  else if (b)
    status = mm_binary_(ctx, op, a, b);
  else
    status = mm_binary_scalar_(ctx, op, a, sb);
  mml_check_status(L, status);
  lua_settop(L, 1);
  return 1;
}

#define BINARY(name, OP, ALPHA)                                                                    \
  static int m_##name(lua_State *L) { return binary(L, OP, ALPHA); }
#define BINARY_(name, OP, ALPHA)                                                                   \
  static int m_##name##_(lua_State *L) { return binary_(L, OP, #name "_", ALPHA); }

BINARY(add, MM_OP_ADD, true)
BINARY(sub, MM_OP_SUB, true)
BINARY(mul, MM_OP_MUL, false)
BINARY(div, MM_OP_DIV, false)
BINARY(pow, MM_OP_POW, false)
BINARY(eq, MM_OP_EQ, false)
BINARY(ne, MM_OP_NE, false)
BINARY(lt, MM_OP_LT, false)
BINARY(le, MM_OP_LE, false)
BINARY(gt, MM_OP_GT, false)
BINARY(ge, MM_OP_GE, false)
BINARY_(add, MM_OP_ADD, true)
BINARY_(sub, MM_OP_SUB, true)
BINARY_(mul, MM_OP_MUL, false)
BINARY_(div, MM_OP_DIV, false)
BINARY_(pow, MM_OP_POW, false)

/* metamethods: Lua passes exactly the two operands */
static int mt_add(lua_State *L) { return binary(L, MM_OP_ADD, false); }
static int mt_sub(lua_State *L) { return binary(L, MM_OP_SUB, false); }
static int mt_mul(lua_State *L) { return binary(L, MM_OP_MUL, false); }
static int mt_div(lua_State *L) { return binary(L, MM_OP_DIV, false); }
static int mt_pow(lua_State *L) { return binary(L, MM_OP_POW, false); }

/* ------------------------------------------------------------------ unary */

static int unary(lua_State *L, mm_unary_op op) {
  mm_tensor *a = mml_check_tensor(L, 1, mm_unary_op_name(op));
  mml_push_tensor(L, mm_unary(mml_ctx(L), op, a));
  return 1;
}

static int unary_(lua_State *L, mm_unary_op op, const char *fn) {
  mm_tensor *a = mml_check_tensor(L, 1, fn);
  mml_check_status(L, mm_unary_(mml_ctx(L), op, a));
  lua_settop(L, 1);
  return 1;
}

#define UNARY(name, OP)                                                                            \
  static int m_##name(lua_State *L) { return unary(L, OP); }                                       \
  static int m_##name##_(lua_State *L) { return unary_(L, OP, #name "_"); }

UNARY(neg, MM_OP_NEG)
UNARY(abs, MM_OP_ABS)
UNARY(exp, MM_OP_EXP)
UNARY(log, MM_OP_LOG)
UNARY(sqrt, MM_OP_SQRT)
UNARY(tanh, MM_OP_TANH)
UNARY(sigmoid, MM_OP_SIGMOID)
UNARY(relu, MM_OP_RELU)

/* -x: Lua passes x twice */
static int mt_unm(lua_State *L) {
  lua_settop(L, 1);
  return unary(L, MM_OP_NEG);
}

/* ------------------------------------------------------------------ allclose */

static const char *const allclose_keys[] = {"rtol", "atol", "equal_nan", NULL};

/* x:allclose(y[, {rtol = 1e-5, atol = 1e-8, equal_nan = false}]) -> boolean */
static int m_allclose(lua_State *L) {
  mm_tensor *a = mml_check_tensor(L, 1, "allclose");
  mm_tensor *b = mml_check_tensor(L, 2, "allclose");
  double rtol = 1e-5, atol = 1e-8;
  bool equal_nan = false;
  if (!lua_isnoneornil(L, 3)) {
    check_options(L, 3, "allclose", allclose_keys);
    rtol = opt_number(L, 3, "allclose", "rtol", rtol, NULL);
    atol = opt_number(L, 3, "allclose", "atol", atol, NULL);
    lua_getfield(L, 3, "equal_nan");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN)
      mml_error(L, "moonml.allclose: option equal_nan must be a boolean, got %s",
                mml_typename(L, -1));
    equal_nan = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  bool result = false;
  mml_check_status(L, mm_allclose(mml_ctx(L), a, b, rtol, atol, equal_nan, &result));
  lua_pushboolean(L, result);
  return 1;
}

static const luaL_Reg methods[] = {
    {"add", m_add},     {"sub", m_sub},         {"mul", m_mul},
    {"div", m_div},     {"pow", m_pow},         {"eq", m_eq},
    {"ne", m_ne},       {"lt", m_lt},           {"le", m_le},
    {"gt", m_gt},       {"ge", m_ge},           {"add_", m_add_},
    {"sub_", m_sub_},   {"mul_", m_mul_},       {"div_", m_div_},
    {"pow_", m_pow_},   {"neg", m_neg},         {"neg_", m_neg_},
    {"abs", m_abs},     {"abs_", m_abs_},       {"exp", m_exp},
    {"exp_", m_exp_},   {"log", m_log},         {"log_", m_log_},
    {"sqrt", m_sqrt},   {"sqrt_", m_sqrt_},     {"tanh", m_tanh},
    {"tanh_", m_tanh_}, {"sigmoid", m_sigmoid}, {"sigmoid_", m_sigmoid_},
    {"relu", m_relu},   {"relu_", m_relu_},     {"allclose", m_allclose},
    {NULL, NULL},
};

/* No __eq/__lt/__le: Lua would turn their tensor results into one boolean. */
static const luaL_Reg metamethods[] = {
    {"__add", mt_add}, {"__sub", mt_sub}, {"__mul", mt_mul}, {"__div", mt_div},
    {"__pow", mt_pow}, {"__unm", mt_unm}, {NULL, NULL},
};

void mml_open_elementwise(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->methods, methods);
  luaL_getmetatable(L, MML_TENSOR_MT);
  mml_register(L, st, lua_gettop(L), metamethods);
  lua_pop(L, 1);
}
