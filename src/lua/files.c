/* Lua binding of safetensors files (src/io/safetensors.c): ml.save(tensors, path, opts) and
 * ml.load(path) -> tensors, metadata. Argument checks only. */
#include "binding.h"

#include <string.h>

/* Scratch arrays of the save call live in userdata, so an error raised while they are
 * filled leaks nothing. */
static void *scratch(lua_State *L, size_t n, size_t size) {
  return lua_newuserdatauv(L, (n > 0 ? n : 1) * size, 0);
}

/* The string at idx holds no zero byte (the C side reads it up to the first one). */
static void check_no_nul(lua_State *L, int idx, const char *what) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (strlen(s) != len)
    mml_error(L, "moonml.save: %s '%s' contains a zero byte", what, s);
}

/* The string-to-string table at idx (metadata or dtypes): n pairs. */
static int count_pairs(lua_State *L, int idx, const char *field) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      mml_error(L, "moonml.save: %s keys must be strings, got %s", field, luaL_typename(L, -2));
    if (lua_type(L, -1) != LUA_TSTRING)
      mml_error(L, "moonml.save: %s value for '%s' must be a string, got %s", field,
                lua_tostring(L, -2), mml_typename(L, -1));
    check_no_nul(L, -2, "the key");
    check_no_nul(L, -1, "the value");
    n++;
    lua_pop(L, 1);
  }
  return n;
}

/* ml.save(tbl, path[, {metadata = {k = "v"}, dtypes = {name = "F16"}}]) */
static int l_save(lua_State *L) {
  if (!lua_istable(L, 1))
    mml_error(L, "moonml.save: expected a table of tensors as argument 1, got %s",
              mml_typename(L, 1));
  if (lua_type(L, 2) != LUA_TSTRING)
    mml_error(L, "moonml.save: expected a file path as argument 2, got %s", mml_typename(L, 2));
  const char *path = lua_tostring(L, 2);
  int meta_idx = 0, dtypes_idx = 0;
  if (!lua_isnoneornil(L, 3)) {
    if (!lua_istable(L, 3) || mml_test_tensor(L, 3))
      mml_error(L, "moonml.save: options must be a table, got %s", mml_typename(L, 3));
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (strcmp(k, "metadata") != 0 && strcmp(k, "dtypes") != 0) {
        lua_pushvalue(L, -2);
        mml_error(L, "moonml.save: unknown option '%s' (metadata or dtypes)",
                  luaL_tolstring(L, -1, NULL));
      }
      lua_pop(L, 1);
    }
    lua_settop(L, 3);
    lua_getfield(L, 3, "metadata");
    lua_getfield(L, 3, "dtypes");
    if (!lua_isnil(L, 4)) {
      if (!lua_istable(L, 4) || mml_test_tensor(L, 4))
        mml_error(L, "moonml.save: metadata must be a table of strings, got %s",
                  mml_typename(L, 4));
      meta_idx = 4;
    }
    if (!lua_isnil(L, 5)) {
      if (!lua_istable(L, 5) || mml_test_tensor(L, 5))
        mml_error(L, "moonml.save: dtypes must be a table of names to dtypes, got %s",
                  mml_typename(L, 5));
      dtypes_idx = 5;
    }
  }
  if (mml_test_tensor(L, 1))
    mml_error(L, "moonml.save: expected a table of tensors as argument 1, got a tensor "
                 "(save {name = x})");
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      const char *type = luaL_typename(L, -2);
      lua_pushvalue(L, -2);
      mml_error(L, "moonml.save: tensor names must be strings, got the %s key %s", type,
                luaL_tolstring(L, -1, NULL));
    }
    check_no_nul(L, -2, "the tensor name");
    mml_tensor_box *b = luaL_testudata(L, -1, MML_TENSOR_MT);
    if (!b || !b->t)
      mml_error(L, "moonml.save: '%s' is a %s, expected a tensor", lua_tostring(L, -2),
                mml_typename(L, -1));
    n++;
    lua_pop(L, 1);
  }
  mm_st_item *items = scratch(L, (size_t)n, sizeof *items);
  int k = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) { /* names and tensors stay alive in the table */
    items[k].name = lua_tostring(L, -2);
    items[k].tensor = mml_test_tensor(L, -1);
    items[k].dtype = NULL;
    if (dtypes_idx) {
      lua_getfield(L, dtypes_idx, items[k].name);
      if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
          mml_error(L, "moonml.save: the dtype for '%s' must be a string, got %s", items[k].name,
                    mml_typename(L, -1));
        items[k].dtype = lua_tostring(L, -1); /* also a value of the dtypes table */
      }
      lua_pop(L, 1);
    }
    k++;
    lua_pop(L, 1);
  }
  if (dtypes_idx) {
    count_pairs(L, dtypes_idx, "dtypes");
    lua_pushnil(L);
    while (lua_next(L, dtypes_idx)) {
      lua_pushvalue(L, -2);
      if (lua_rawget(L, 1) == LUA_TNIL)
        mml_error(L, "moonml.save: dtypes names '%s', which is not in the table",
                  lua_tostring(L, -3));
      lua_pop(L, 2);
    }
  }
  int nmeta = meta_idx ? count_pairs(L, meta_idx, "metadata") : 0;
  const char **meta = scratch(L, (size_t)(2 * nmeta), sizeof *meta);
  if (nmeta > 0) {
    int j = 0;
    lua_pushnil(L);
    while (lua_next(L, meta_idx)) {
      meta[j++] = lua_tostring(L, -2);
      meta[j++] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  }
  mml_check_status(L, mm_st_save(mml_ctx(L), path, n, items, nmeta, meta));
  return 0;
}

/* Keeps a loaded file until its tensors are on the Lua stack (freed on error too). */
typedef struct {
  mm_st_file *f;
} file_box;

static int file_gc(lua_State *L) {
  file_box *b = lua_touserdata(L, 1);
  mm_st_free(b->f);
  b->f = NULL;
  return 0;
}

/* ml.load(path) -> table of tensors, table of metadata strings (empty when none) */
static int l_load(lua_State *L) {
  if (lua_type(L, 1) != LUA_TSTRING)
    mml_error(L, "moonml.load: expected a file path as argument 1, got %s", mml_typename(L, 1));
  if (lua_gettop(L) > 1)
    mml_error(L, "moonml.load: expected one argument, the file path, got %d", lua_gettop(L));
  file_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->f = NULL;
  lua_newtable(L);
  lua_pushcfunction(L, file_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  b->f = mm_st_load(mml_ctx(L), lua_tostring(L, 1));
  if (!b->f)
    mml_core_error(L);
  int n = mm_st_count(b->f), nm = mm_st_metadata_count(b->f);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    mm_tensor *t = mm_st_tensor(b->f, i);
    mm_retain(t);
    mml_push_tensor(L, t);
    lua_setfield(L, -2, mm_st_name(b->f, i));
  }
  lua_createtable(L, 0, nm);
  for (int i = 0; i < nm; i++) {
    lua_pushstring(L, mm_st_metadata_value(b->f, i));
    lua_setfield(L, -2, mm_st_metadata_key(b->f, i));
  }
  mm_st_free(b->f);
  b->f = NULL;
  return 2;
}

static const luaL_Reg functions[] = {
    {"save", l_save},
    {"load", l_load},
    {NULL, NULL},
};

void mml_open_files(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->module, functions);
}
