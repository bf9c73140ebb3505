/* Lua binding for bulk data: ml.from_bytes(str, dtype[, shape]) and x:to_bytes(), raw
 * little-endian bytes in row-major order (src/core/bytes.c). */
#include "binding.h"

/* ml.from_bytes(str, dtype[, shape]): shape as separate sizes or one table; without it, a 1-D
 * tensor of all the elements the string holds */
static int l_from_bytes(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    mml_error(L, "moonml.from_bytes: expected a string of bytes as argument 1, got %s",
              mml_typename(L, 1));
  size_t len;
  const char *data = lua_tolstring(L, 1, &len);
  if (lua_isnoneornil(L, 2))
    mml_error(L, "moonml.from_bytes: expected a dtype as argument 2, got %s", mml_typename(L, 2));
  mm_dtype dt = mml_check_dtype(L, 2, "from_bytes", MM_FLOAT32);
  int64_t shape[MM_MAX_DIMS];
  int nd = 1, next = 3;
  if (lua_isnone(L, 3)) {
    size_t es = mm_dtype_size(dt);
    if (len % es != 0)
      mml_error(L,
                "moonml.from_bytes: %I bytes are not a whole number of %s elements (%I bytes each)",
                (lua_Integer)len, mm_dtype_name(dt), (lua_Integer)es);
    shape[0] = (int64_t)(len / es);
  } else {
    nd = mml_check_shape(L, 3, "from_bytes", shape, &next);
  }
  if (!lua_isnone(L, next))
    mml_error(L, "moonml.from_bytes: unexpected argument %d (%s)", next, mml_typename(L, next));
  mml_push_tensor(L, mm_from_bytes(mml_ctx(L), dt, nd, shape, data, len));
  return 1;
}

/* x:to_bytes() -> string of numel * element size bytes */
static int m_to_bytes(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "to_bytes");
  if (lua_gettop(L) > 1)
    mml_error(L, "moonml.to_bytes: expected no argument after the tensor, got %s",
              mml_typename(L, 2));
  size_t n = (size_t)mm_numel(t) * mm_dtype_size(t->dtype);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n);
  mml_check_status(L, mm_to_bytes(mml_ctx(L), t, p, n));
  luaL_pushresultsize(&b, n);
  return 1;
}

static const luaL_Reg functions[] = {
    {"from_bytes", l_from_bytes},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"to_bytes", m_to_bytes},
    {NULL, NULL},
};

void mml_open_bytes(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->module, functions);
  mml_register(L, st, st->methods, methods);
}
