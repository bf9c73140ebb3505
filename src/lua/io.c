/* Lua binding for file readers (src/io). */
#include "binding.h"

/* read_idx(path[, {dtype = "float32"}]) */
static int l_read_idx(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    return mml_error(L, "moonml.read_idx: expected a file path, got %s", mml_typename(L, 1));
  mm_dtype dt = mml_opt_dtype(L, 2, "read_idx", MM_FLOAT32, NULL);
  mml_push_tensor(L, mm_read_idx(mml_ctx(L), lua_tostring(L, 1), dt));
  return 1;
}

static const luaL_Reg functions[] = {
    {"read_idx", l_read_idx},
    {NULL, NULL},
};

void mml_open_io(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->module, functions);
}
