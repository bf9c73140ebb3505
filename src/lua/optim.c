/* Binding of the fused optimizer updates. The Lua classes in lua/moonml/optim/ keep the
 * state; these take one parameter per call, with numbers as positional arguments so
 * that a step costs no table look-ups. */
#include "binding.h"

#include <stdio.h>

static mm_tensor *opt_tensor(lua_State *L, int idx, const char *fn) {
  return lua_isnil(L, idx) ? NULL : mml_check_tensor(L, idx, fn);
}

/* sgd_step(p, grad, buf, first, lr, momentum, dampening, weight_decay, nesterov, maximize) */
static int l_sgd_step(lua_State *L) {
  mm_tensor *p = mml_check_tensor(L, 1, "SGD");
  mm_tensor *g = opt_tensor(L, 2, "SGD");
  mm_tensor *buf = opt_tensor(L, 3, "SGD");
  mm_sgd_opts o = {mml_check_number(L, 5, "SGD", "lr"),
                   mml_check_number(L, 6, "SGD", "momentum"),
                   mml_check_number(L, 7, "SGD", "dampening"),
                   mml_check_number(L, 8, "SGD", "weight_decay"),
                   lua_toboolean(L, 9),
                   lua_toboolean(L, 10)};
  mml_check_status(L, mm_sgd_step(mml_ctx(L), p, g, buf, lua_toboolean(L, 4), &o));
  return 0;
}

/* adam_step(p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
 *           weight_decay, amsgrad, maximize, decoupled) */
static int l_adam_step(lua_State *L) {
  const char *fn = lua_toboolean(L, 14) ? "AdamW" : "Adam";
  mm_tensor *p = mml_check_tensor(L, 1, fn);
  mm_tensor *g = opt_tensor(L, 2, fn);
  mm_tensor *m = mml_check_tensor(L, 3, fn);
  mm_tensor *v = mml_check_tensor(L, 4, fn);
  mm_tensor *vmax = opt_tensor(L, 5, fn);
  int64_t step = mml_check_integer(L, 6, fn, "step");
  mm_adam_opts o = {mml_check_number(L, 7, fn, "lr"),
                    mml_check_number(L, 8, fn, "beta1"),
                    mml_check_number(L, 9, fn, "beta2"),
                    mml_check_number(L, 10, fn, "eps"),
                    mml_check_number(L, 11, fn, "weight_decay"),
                    lua_toboolean(L, 12),
                    lua_toboolean(L, 13),
                    lua_toboolean(L, 14)};
  mml_check_status(L, mm_adam_step(mml_ctx(L), p, g, m, v, vmax, step, &o));
  return 0;
}

/* rmsprop_step(p, grad, square_avg, buf, grad_avg, lr, alpha, eps, weight_decay, momentum,
 *              centered, maximize) */
static int l_rmsprop_step(lua_State *L) {
  mm_tensor *p = mml_check_tensor(L, 1, "RMSprop");
  mm_tensor *g = opt_tensor(L, 2, "RMSprop");
  mm_tensor *sq = mml_check_tensor(L, 3, "RMSprop");
  mm_tensor *buf = opt_tensor(L, 4, "RMSprop");
  mm_tensor *ga = opt_tensor(L, 5, "RMSprop");
  mm_rmsprop_opts o = {mml_check_number(L, 6, "RMSprop", "lr"),
                       mml_check_number(L, 7, "RMSprop", "alpha"),
                       mml_check_number(L, 8, "RMSprop", "eps"),
                       mml_check_number(L, 9, "RMSprop", "weight_decay"),
                       mml_check_number(L, 10, "RMSprop", "momentum"),
                       lua_toboolean(L, 11),
                       lua_toboolean(L, 12)};
  mml_check_status(L, mm_rmsprop_step(mml_ctx(L), p, g, sq, buf, ga, &o));
  return 0;
}

/* adagrad_step(p, grad, sum, step, lr, lr_decay, weight_decay, eps, maximize) */
static int l_adagrad_step(lua_State *L) {
  mm_tensor *p = mml_check_tensor(L, 1, "Adagrad");
  mm_tensor *g = opt_tensor(L, 2, "Adagrad");
  mm_tensor *sum = mml_check_tensor(L, 3, "Adagrad");
  int64_t step = mml_check_integer(L, 4, "Adagrad", "step");
  mm_adagrad_opts o = {mml_check_number(L, 5, "Adagrad", "lr"),
                       mml_check_number(L, 6, "Adagrad", "lr_decay"),
                       mml_check_number(L, 7, "Adagrad", "weight_decay"),
                       mml_check_number(L, 8, "Adagrad", "eps"), lua_toboolean(L, 9)};
  mml_check_status(L, mm_adagrad_step(mml_ctx(L), p, g, sum, step, &o));
  return 0;
}

/* check_grads(params, name, first): checks every parameter of the Lua array params that has
 * a gradient, before a step changes any (first: the number of params[1] in messages). */
static int l_check_grads(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *name = luaL_checkstring(L, 2);
  lua_Integer first = luaL_checkinteger(L, 3);
  lua_Integer n = luaL_len(L, 1);
  for (lua_Integer k = 1; k <= n; k++) {
    lua_rawgeti(L, 1, k);
    mm_tensor *p = mml_test_tensor(L, -1);
    lua_pop(L, 1);
    if (!p)
      return mml_error(L, "moonml.optim.%s: parameter %I is not a tensor", name, first + k - 1);
    char op[96];
    snprintf(op, sizeof op, "optim.%s: parameter %lld", name, (long long)(first + k - 1));
    mml_check_status(L, mm_optim_check(mml_ctx(L), op, p, p->grad));
  }
  return 0;
}

static const luaL_Reg kernels[] = {
    {"check_grads", l_check_grads},   {"sgd_step", l_sgd_step},         {"adam_step", l_adam_step},
    {"rmsprop_step", l_rmsprop_step}, {"adagrad_step", l_adagrad_step}, {NULL, NULL},
};

/* module._optim: the kernels the optimizer classes call (not a user-facing API) */
void mml_open_optim(lua_State *L, const mml_open_state *st) {
  lua_newtable(L);
  mml_register(L, st, lua_gettop(L), kernels);
  lua_setfield(L, st->module, "_optim");
}
