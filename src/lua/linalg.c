/* Lua binding for the linalg ops (src/ops/linalg.c): matmul, dot, mv, mm, bmm, addmm. */
#include "binding.h"

#include <string.h>

static int m_matmul(lua_State *L) {
  mm_tensor *a = mml_check_tensor(L, 1, "matmul");
  mm_tensor *b = mml_check_tensor(L, 2, "matmul");
  mml_push_tensor(L, mm_matmul(mml_ctx(L), a, b));
  return 1;
}

static int m_dot(lua_State *L) {
  mm_tensor *a = mml_check_tensor(L, 1, "dot");
  mm_tensor *b = mml_check_tensor(L, 2, "dot");
  mml_push_tensor(L, mm_dot(mml_ctx(L), a, b));
  return 1;
}

static int m_mv(lua_State *L) {
  mm_tensor *a = mml_check_tensor(L, 1, "mv");
  mm_tensor *x = mml_check_tensor(L, 2, "mv");
  mml_push_tensor(L, mm_mv(mml_ctx(L), a, x));
  return 1;
}

static int m_mm(lua_State *L) {
  mm_tensor *a = mml_check_tensor(L, 1, "mm");
  mm_tensor *b = mml_check_tensor(L, 2, "mm");
  mml_push_tensor(L, mm_mm(mml_ctx(L), a, b));
  return 1;
}

static int m_bmm(lua_State *L) {
  mm_tensor *a = mml_check_tensor(L, 1, "bmm");
  mm_tensor *b = mml_check_tensor(L, 2, "bmm");
  mml_push_tensor(L, mm_bmm(mml_ctx(L), a, b));
  return 1;
}

/* c:addmm(a, b[, {beta = 1, alpha = 1}]) = beta * c + alpha * (a @ b) */
static int m_addmm(lua_State *L) {
  mm_tensor *c = mml_check_tensor(L, 1, "addmm");
  mm_tensor *a = mml_check_tensor(L, 2, "addmm");
  mm_tensor *b = mml_check_tensor(L, 3, "addmm");
  double beta = 1, alpha = 1;
  if (!lua_isnoneornil(L, 4)) {
    if (!lua_istable(L, 4) || mml_test_tensor(L, 4))
      mml_error(L, "moonml.addmm: options must be a table, got %s", mml_typename(L, 4));
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      if (key && strcmp(key, "beta") == 0) {
        beta = mml_check_number(L, -1, "addmm", "beta");
      } else if (key && strcmp(key, "alpha") == 0) {
        alpha = mml_check_number(L, -1, "addmm", "alpha");
      } else {
        lua_pushvalue(L, -2);
        mml_error(L, "moonml.addmm: unknown option '%s' (beta, alpha)",
                  luaL_tolstring(L, -1, NULL));
      }
      lua_pop(L, 1);
    }
  }
  mml_push_tensor(L, mm_addmm(mml_ctx(L), c, a, b, beta, alpha));
  return 1;
}

void mml_open_linalg(lua_State *L, const mml_open_state *st) {
  static const luaL_Reg methods[] = {
      {"matmul", m_matmul}, {"dot", m_dot},     {"mv", m_mv}, {"mm", m_mm},
      {"bmm", m_bmm},       {"addmm", m_addmm}, {NULL, NULL},
  };
  mml_register(L, st, st->methods, methods);
}
