/* Binding of the fused optimizer updates. The Lua classes in lua/moonml/optim/ keep the
 * state (one table per parameter, in the optimizer's `state`). Two forms, with numbers as
 * positional arguments so that a step costs no option look-ups:
 * - <name>_step: one parameter per call, its gradient and state tensors passed in;
 * - <name>_group(params, state, ...): one call per parameter group, looping over the
 *   group's Lua array in C. Gradients are read here, without making Lua objects for them
 *   (so zero_grad hands their buffers back at once), and the state tables and tensors are
 *   created on first use exactly as the per-parameter form's Lua code does. */
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

/* ------------------------------------------------------------------ group loops */

/* Pushes state[p] (p at index pidx), made an empty table on first use. */
static int push_state(lua_State *L, int state, int pidx) {
  lua_pushvalue(L, pidx);
  if (lua_rawget(L, state) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, pidx);
    lua_pushvalue(L, -2);
    lua_rawset(L, state);
  }
  return lua_gettop(L);
}

/* s[key] as a tensor, or NULL when absent (it stays referenced by s). */
static mm_tensor *get_tensor(lua_State *L, int s, const char *key, const char *fn) {
  mm_tensor *t = NULL;
  if (lua_getfield(L, s, key) != LUA_TNIL)
    t = mml_check_tensor(L, -1, fn);
  lua_pop(L, 1);
  return t;
}

/* s[key] = a new tensor like p filled with v; returns it. */
static mm_tensor *new_tensor(lua_State *L, int s, const char *key, const mm_tensor *p, double v) {
  mm_tensor *t = mml_push_tensor(L, mm_full(mml_ctx(L), p->dtype, p->ndim, p->shape, v));
  lua_setfield(L, s, key);
  return t;
}

/* s.step + 1 (s.step must be set), stored back */
static int64_t next_step(lua_State *L, int s, const char *fn) {
  lua_getfield(L, s, "step");
  int64_t step = mml_check_integer(L, -1, fn, "step") + 1;
  lua_pop(L, 1);
  lua_pushinteger(L, (lua_Integer)step);
  lua_setfield(L, s, "step");
  return step;
}

static lua_Integer group_size(lua_State *L, const char *fn) {
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!lua_istable(L, 2))
    mml_error(L, "moonml.%s: expected the state table as argument 2, got %s", fn,
              mml_typename(L, 2));
  return (lua_Integer)lua_rawlen(L, 1);
}

/* sgd_group(params, state, lr, momentum, dampening, weight_decay, nesterov, maximize) */
static int l_sgd_group(lua_State *L) {
  lua_Integer n = group_size(L, "SGD");
  mm_sgd_opts o = {mml_check_number(L, 3, "SGD", "lr"),
                   mml_check_number(L, 4, "SGD", "momentum"),
                   mml_check_number(L, 5, "SGD", "dampening"),
                   mml_check_number(L, 6, "SGD", "weight_decay"),
                   lua_toboolean(L, 7),
                   lua_toboolean(L, 8)};
  mm_ctx *ctx = mml_ctx(L);
  int top = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++, lua_settop(L, top)) {
    lua_rawgeti(L, 1, i);
    mm_tensor *p = mml_check_tensor(L, top + 1, "SGD");
    if (!p->grad)
      continue;
    int s = push_state(L, 2, top + 1);
    mm_tensor *buf = get_tensor(L, s, "momentum_buffer", "SGD");
    bool first = false;
    if (o.momentum != 0 && !buf) {
      buf = new_tensor(L, s, "momentum_buffer", p, 0);
      first = true;
    }
    mml_check_status(L, mm_sgd_step(ctx, p, p->grad, buf, first, &o));
  }
  return 0;
}

/* adam_group(params, state, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
 *            decoupled) */
static int l_adam_group(lua_State *L) {
  const char *fn = lua_toboolean(L, 10) ? "AdamW" : "Adam";
  lua_Integer n = group_size(L, fn);
  mm_adam_opts o = {mml_check_number(L, 3, fn, "lr"),
                    mml_check_number(L, 4, fn, "beta1"),
                    mml_check_number(L, 5, fn, "beta2"),
                    mml_check_number(L, 6, fn, "eps"),
                    mml_check_number(L, 7, fn, "weight_decay"),
                    lua_toboolean(L, 8),
                    lua_toboolean(L, 9),
                    lua_toboolean(L, 10)};
  mm_ctx *ctx = mml_ctx(L);
  int top = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++, lua_settop(L, top)) {
    lua_rawgeti(L, 1, i);
    mm_tensor *p = mml_check_tensor(L, top + 1, fn);
    if (!p->grad)
      continue;
    int s = push_state(L, 2, top + 1);
    mm_tensor *m, *v, *vmax;
    if (lua_getfield(L, s, "step") == LUA_TNIL) {
      lua_pushinteger(L, 0);
      lua_setfield(L, s, "step");
      m = new_tensor(L, s, "exp_avg", p, 0);
      v = new_tensor(L, s, "exp_avg_sq", p, 0);
      vmax = o.amsgrad ? new_tensor(L, s, "max_exp_avg_sq", p, 0) : NULL;
    } else {
      m = get_tensor(L, s, "exp_avg", fn);
      v = get_tensor(L, s, "exp_avg_sq", fn);
      vmax = get_tensor(L, s, "max_exp_avg_sq", fn);
    }
    int64_t step = next_step(L, s, fn);
    mml_check_status(L, mm_adam_step(ctx, p, p->grad, m, v, vmax, step, &o));
  }
  return 0;
}

/* rmsprop_group(params, state, lr, alpha, eps, weight_decay, momentum, centered, maximize) */
static int l_rmsprop_group(lua_State *L) {
  const char *fn = "RMSprop";
  lua_Integer n = group_size(L, fn);
  mm_rmsprop_opts o = {mml_check_number(L, 3, fn, "lr"),
                       mml_check_number(L, 4, fn, "alpha"),
                       mml_check_number(L, 5, fn, "eps"),
                       mml_check_number(L, 6, fn, "weight_decay"),
                       mml_check_number(L, 7, fn, "momentum"),
                       lua_toboolean(L, 8),
                       lua_toboolean(L, 9)};
  mm_ctx *ctx = mml_ctx(L);
  int top = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++, lua_settop(L, top)) {
    lua_rawgeti(L, 1, i);
    mm_tensor *p = mml_check_tensor(L, top + 1, fn);
    if (!p->grad)
      continue;
    int s = push_state(L, 2, top + 1);
    mm_tensor *sq = get_tensor(L, s, "square_avg", fn);
    if (!sq) {
      lua_pushinteger(L, 0);
      lua_setfield(L, s, "step");
      sq = new_tensor(L, s, "square_avg", p, 0);
      if (o.momentum > 0)
        new_tensor(L, s, "momentum_buffer", p, 0);
      if (o.centered)
        new_tensor(L, s, "grad_avg", p, 0);
    }
    next_step(L, s, fn);
    mm_tensor *buf = get_tensor(L, s, "momentum_buffer", fn);
    mm_tensor *ga = get_tensor(L, s, "grad_avg", fn);
    mml_check_status(L, mm_rmsprop_step(ctx, p, p->grad, sq, buf, ga, &o));
  }
  return 0;
}

/* adagrad_group(params, state, lr, lr_decay, weight_decay, eps, maximize,
 *               initial_accumulator_value) */
static int l_adagrad_group(lua_State *L) {
  const char *fn = "Adagrad";
  lua_Integer n = group_size(L, fn);
  mm_adagrad_opts o = {mml_check_number(L, 3, fn, "lr"), mml_check_number(L, 4, fn, "lr_decay"),
                       mml_check_number(L, 5, fn, "weight_decay"),
                       mml_check_number(L, 6, fn, "eps"), lua_toboolean(L, 7)};
  double init = mml_check_number(L, 8, fn, "initial_accumulator_value");
  mm_ctx *ctx = mml_ctx(L);
  int top = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++, lua_settop(L, top)) {
    lua_rawgeti(L, 1, i);
    mm_tensor *p = mml_check_tensor(L, top + 1, fn);
    if (!p->grad)
      continue;
    int s = push_state(L, 2, top + 1);
    mm_tensor *sum = get_tensor(L, s, "sum", fn);
    if (!sum) {
      lua_pushinteger(L, 0);
      lua_setfield(L, s, "step");
      sum = new_tensor(L, s, "sum", p, init);
    }
    int64_t step = next_step(L, s, fn);
    mml_check_status(L, mm_adagrad_step(ctx, p, p->grad, sum, step, &o));
  }
  return 0;
}

/* zero_grad(params): drops the gradient of every tensor of the Lua array */
static int l_zero_grad(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    mm_tensor *t = mml_test_tensor(L, -1);
    if (t && t->grad) {
      mm_release(t->grad);
      t->grad = NULL;
    }
    lua_pop(L, 1);
  }
  return 0;
}

static const luaL_Reg kernels[] = {
    {"check_grads", l_check_grads},
    {"sgd_step", l_sgd_step},
    {"adam_step", l_adam_step},
    {"rmsprop_step", l_rmsprop_step},
    {"adagrad_step", l_adagrad_step},
    {"sgd_group", l_sgd_group},
    {"adam_group", l_adam_group},
    {"rmsprop_group", l_rmsprop_group},
    {"adagrad_group", l_adagrad_group},
    {"zero_grad", l_zero_grad},
    {NULL, NULL},
};

/* module._optim: the kernels the optimizer classes call (not a user-facing API) */
void mml_open_optim(lua_State *L, const mml_open_state *st) {
  lua_newtable(L);
  mml_register(L, st, lua_gettop(L), kernels);
  lua_setfield(L, st->module, "_optim");
}
