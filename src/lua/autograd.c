/* Lua binding for autograd: backward, detach, requires_grad, grad mode, and the
 * tensor properties x.requires_grad, x.grad, x.grad_fn, x.is_leaf. */
#include "binding.h"

#include <string.h>

/* Pushes an existing tensor (a .grad), reusing its Lua object while that is alive so
 * that x.grad == x.grad holds. */
static void push_existing(lua_State *L, mm_tensor *t) {
  lua_getfield(L, LUA_REGISTRYINDEX, "moonml.existing");
  lua_rawgetp(L, -1, t);
  if (!lua_isnil(L, -1)) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  mm_retain(t);
  mml_push_tensor(L, t);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, t);
  lua_remove(L, -2);
}

int mml_tensor_get_property(lua_State *L, mm_tensor *t, const char *key) {
  /* a view whose base changed in place reads its rebuilt history */
  if (t->base && (strcmp(key, "requires_grad") == 0 || strcmp(key, "grad_fn") == 0 ||
                  strcmp(key, "is_leaf") == 0))
    mml_check_status(L, mm_sync_view(mml_ctx(L), t));
  if (strcmp(key, "requires_grad") == 0) {
    lua_pushboolean(L, t->requires_grad);
  } else if (strcmp(key, "grad") == 0) {
    if (t->grad)
      push_existing(L, t->grad);
    else
      lua_pushnil(L);
  } else if (strcmp(key, "grad_fn") == 0) {
    if (t->grad_fn)
      lua_pushstring(L, mm_node_name(t->grad_fn));
    else
      lua_pushnil(L);
  } else if (strcmp(key, "is_leaf") == 0) {
    lua_pushboolean(L, t->grad_fn == NULL);
  } else {
    return 0;
  }
  return 1;
}

int mml_tensor_set_property(lua_State *L, mm_tensor *t, const char *key, int vidx) {
  mm_ctx *ctx = mml_ctx(L);
  if (strcmp(key, "requires_grad") == 0) {
    if (lua_type(L, vidx) != LUA_TBOOLEAN)
      mml_error(L, "moonml.requires_grad: expected a boolean, got %s", mml_typename(L, vidx));
    mml_check_status(L, mm_set_requires_grad(ctx, t, lua_toboolean(L, vidx)));
  } else if (strcmp(key, "grad") == 0) {
    mm_tensor *g = NULL;
    if (!lua_isnil(L, vidx)) {
      g = mml_test_tensor(L, vidx);
      if (!g)
        return mml_error(L, "moonml.grad: expected a tensor or nil, got %s", mml_typename(L, vidx));
      bool same = g->ndim == t->ndim && g->dtype == t->dtype;
      for (int d = 0; same && d < t->ndim; d++)
        same = g->shape[d] == t->shape[d];
      if (!same)
        mml_error(L, "moonml.grad: the gradient must have the tensor's shape and dtype");
      mm_retain(g);
    }
    mm_release(t->grad);
    t->grad = g;
  } else {
    return 0;
  }
  return 1;
}

/* x:backward([grad][, {retain_graph = false}]) */
static int m_backward(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "backward");
  mm_tensor *grad = NULL;
  int opts = 2;
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2)) {
    grad = mml_check_tensor(L, 2, "backward");
    opts = 3;
  } else if (mml_test_tensor(L, 2)) {
    grad = mml_test_tensor(L, 2);
    opts = 3;
  } else if (lua_isnil(L, 2) && !lua_isnone(L, 3)) {
    opts = 3;
  }
  bool retain = false;
  if (lua_istable(L, opts)) {
    lua_pushnil(L); /* a misspelt option must not pass silently */
    while (lua_next(L, opts)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "retain_graph") != 0)
        mml_error(L, "moonml.backward: unknown option '%s'", luaL_tolstring(L, -1, NULL));
    }
    lua_getfield(L, opts, "retain_graph");
    retain = lua_toboolean(L, -1);
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, opts)) {
    mml_error(L, "moonml.backward: options must be a table, got %s", mml_typename(L, opts));
  }
  mml_check_status(L, mm_backward(mml_ctx(L), t, grad, retain));
  return 0;
}

static int m_detach(lua_State *L) {
  mml_push_tensor(L, mm_detach(mml_ctx(L), mml_check_tensor(L, 1, "detach")));
  return 1;
}

static int m_requires_grad_(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "requires_grad_");
  bool flag = true;
  if (!lua_isnone(L, 2)) {
    if (lua_type(L, 2) != LUA_TBOOLEAN)
      mml_error(L, "moonml.requires_grad_: expected a boolean, got %s", mml_typename(L, 2));
    flag = lua_toboolean(L, 2);
  }
  mml_check_status(L, mm_set_requires_grad(mml_ctx(L), t, flag));
  lua_settop(L, 1);
  return 1;
}

static int l_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, mm_grad_enabled(mml_ctx(L)));
  return 1;
}

/* set_grad_enabled(flag) -> the previous mode */
static int l_set_grad_enabled(lua_State *L) {
  if (lua_type(L, 1) != LUA_TBOOLEAN)
    mml_error(L, "moonml.set_grad_enabled: expected a boolean, got %s", mml_typename(L, 1));
  lua_pushboolean(L, mm_set_grad_enabled(mml_ctx(L), lua_toboolean(L, 1)));
  return 1;
}

static const luaL_Reg methods[] = {
    {"backward", m_backward},
    {"detach", m_detach},
    {"requires_grad_", m_requires_grad_},
    {NULL, NULL},
};

static const luaL_Reg functions[] = {
    {"is_grad_enabled", l_is_grad_enabled},
    {"set_grad_enabled", l_set_grad_enabled},
    {NULL, NULL},
};

void mml_open_autograd(lua_State *L, const mml_open_state *st) {
  lua_newtable(L); /* weak-valued: tensor pointer -> its Lua object */
  lua_newtable(L);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "moonml.existing");
  mml_register(L, st, st->methods, methods);
  mml_register(L, st, st->module, functions);
}
