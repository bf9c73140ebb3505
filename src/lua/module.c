/* luaopen_moonml_core: the context, the tensor metatable, argument helpers. */
#include "binding.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Report native memory to the collector in steps of this size, so that a loop of tiny
 * temporaries does not call lua_gc on every op. */
#define MML_REPORT_BYTES (64 * 1024)
/* Least growth of live native memory, over twice what survived the last full collection,
 * that calls for another (see mml_push_tensor). */
#define MML_COLLECT_SLACK ((size_t)16 << 20)

mm_ctx *mml_ctx(lua_State *L) {
  return ((mml_ctx_box *)lua_touserdata(L, lua_upvalueindex(1)))->ctx;
}

int mml_error(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap); /* no position prefix: messages start with "moonml." */
  va_end(ap);
  return lua_error(L);
}

int mml_core_error(lua_State *L) { return mml_error(L, "%s", mm_ctx_error(mml_ctx(L))); }

void mml_check_status(lua_State *L, int status) {
  if (status != 0)
    mml_core_error(L);
}

const char *mml_typename(lua_State *L, int idx) {
  mml_tensor_box *b = mml_test_box(L, idx);
  if (b)
    return b->t ? "tensor" : "closed tensor";
  return luaL_typename(L, idx);
}

/* Compares the metatable with the one cached in the context box (upvalue 1 of every
 * binding function) instead of luaL_testudata's registry look-up by name. */
mml_tensor_box *mml_test_box(lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  if (!p || !lua_getmetatable(L, idx))
    return NULL;
  const mml_ctx_box *cb = lua_touserdata(L, lua_upvalueindex(1));
  const void *mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  if (!cb) /* a function without the context upvalue (a metamethod such as __gc) */
    return luaL_testudata(L, idx, MML_TENSOR_MT);
  return mt == cb->tensor_mt ? p : NULL;
}

mm_tensor *mml_test_tensor(lua_State *L, int idx) {
  mml_tensor_box *b = mml_test_box(L, idx);
  return b ? b->t : NULL;
}

mm_tensor *mml_check_tensor(lua_State *L, int idx, const char *fn) {
  mml_tensor_box *b = mml_test_box(L, idx);
  if (!b) {
    mml_error(L, "moonml.%s: expected a tensor as argument %d, got %s", fn, idx,
              luaL_typename(L, idx));
    return NULL;
  }
  if (!b->t)
    mml_error(L, "moonml.%s: argument %d is a closed tensor", fn, idx);
  return b->t;
}

/* Tells the collector about native memory. A step with the bytes as debt paces the
 * incremental collector; in generational mode (lua.c's default) it only brings on minor
 * collections, which never free a tensor that had grown old (one held in a local across
 * two collections): debt does not count as heap growth, so no major collection comes and
 * such tensors would pile up without bound. Hence the backstop: a full collection once the
 * live native bytes pass twice what survived the previous one, plus the larger of the Lua
 * heap and MML_COLLECT_SLACK -- the rule by which Lua itself calls a major collection. */
static void report_native(lua_State *L, mml_ctx_box *cb) {
  int kb = (int)(cb->unreported / 1024);
  cb->unreported -= (size_t)kb * 1024;
  lua_gc(L, LUA_GCSTEP, kb);
  size_t live = mm_ctx_live_bytes(cb->ctx);
  /* Also after as many native bytes as the heap and the live tensors hold together (at
   * least MML_COLLECT_SLACK): garbage that is not tensor storage (graph nodes, headers)
   * never raises `live`, and a training loop makes it by the megabyte. */
  size_t held = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024 + live;
  bool volume = cb->since_full >= MML_COLLECT_SLACK && cb->since_full >= held;
  if ((live <= cb->collect_at && !volume) || !lua_gc(L, LUA_GCISRUNNING))
    return; /* not when the user stopped the collector */
  cb->since_full = 0;
  lua_gc(L, LUA_GCCOLLECT);
  size_t heap = (size_t)lua_gc(L, LUA_GCCOUNT) * 1024;
  cb->collect_at =
      2 * mm_ctx_live_bytes(cb->ctx) + (heap > MML_COLLECT_SLACK ? heap : MML_COLLECT_SLACK);
}

mm_tensor *mml_push_tensor(lua_State *L, mm_tensor *t) {
  if (!t)
    mml_core_error(L);
  mml_tensor_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->t = t;
  mml_ctx_box *cb = lua_touserdata(L, lua_upvalueindex(1));
  lua_getiuservalue(L, lua_upvalueindex(1), 1); /* the metatable, without a look-up by name */
  lua_setmetatable(L, -2);
  /* the storage and the header; small ones come from the context's free lists but are
   * memory all the same while the tensor lives */
  size_t add = mm_ctx_take_allocated(cb->ctx) + sizeof(mm_tensor);
  cb->unreported += add;
  cb->since_full += add;
  if (cb->unreported >= MML_REPORT_BYTES)
    report_native(L, cb);
  return t;
}

int64_t mml_check_integer(lua_State *L, int idx, const char *fn, const char *what) {
  int isnum = 0;
  /* numbers only: lua_tointegerx alone would also take the string "3" */
  lua_Integer v = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &isnum) : 0;
  if (!isnum) {
    if (lua_type(L, idx) == LUA_TNUMBER)
      mml_error(L, "moonml.%s: %s must be an integer, got %s", fn, what, lua_tostring(L, idx));
    mml_error(L, "moonml.%s: %s must be an integer, got %s", fn, what, mml_typename(L, idx));
  }
  return (int64_t)v;
}

double mml_check_number(lua_State *L, int idx, const char *fn, const char *what) {
  int isnum = 0;
  lua_Number v = lua_tonumberx(L, idx, &isnum);
  if (!isnum || lua_type(L, idx) != LUA_TNUMBER)
    mml_error(L, "moonml.%s: %s must be a number, got %s", fn, what, mml_typename(L, idx));
  return (double)v;
}

int mml_check_dim(lua_State *L, int idx, const char *fn, int ndim) {
  int64_t d = mml_check_integer(L, idx, fn, "dim");
  int n = ndim > 0 ? ndim : 1;
  if (d == 0 || d > n || d < -n)
    mml_error(L, "moonml.%s: dim %I out of range for a %d-D tensor", fn, (lua_Integer)d, ndim);
  return (int)(d > 0 ? d - 1 : d + n);
}

int mml_opt_dim(lua_State *L, int idx, const char *fn, int ndim, int def) {
  if (lua_isnoneornil(L, idx))
    return def;
  return mml_check_dim(L, idx, fn, ndim);
}

int mml_check_shape(lua_State *L, int idx, const char *fn, int64_t *shape, int *next) {
  int n = 0;
  if (lua_istable(L, idx) && !mml_test_tensor(L, idx)) {
    int len = (int)luaL_len(L, idx);
    if (len > MM_MAX_DIMS)
      mml_error(L, "moonml.%s: %d dimensions given, at most %d supported", fn, len, MM_MAX_DIMS);
    for (int i = 1; i <= len; i++) {
      lua_rawgeti(L, idx, i);
      shape[n++] = mml_check_integer(L, -1, fn, "size");
      lua_pop(L, 1);
    }
    /* ml.zeros{dtype = "int64"} must not pass for a 0-d shape */
    if (len == 0) {
      lua_pushnil(L);
      if (lua_next(L, idx)) {
        lua_pop(L, 1);
        mml_error(L, "moonml.%s: expected a table of sizes, got a table with key '%s'", fn,
                  luaL_tolstring(L, -1, NULL));
      }
    }
    *next = idx + 1;
  } else {
    while (lua_type(L, idx + n) == LUA_TNUMBER) {
      if (n == MM_MAX_DIMS)
        mml_error(L, "moonml.%s: at most %d dimensions are supported", fn, MM_MAX_DIMS);
      shape[n] = mml_check_integer(L, idx + n, fn, "size");
      n++;
    }
    if (n == 0 && !lua_isnone(L, idx)) /* nil too: ml.zeros(n) with n unset */
      mml_error(L, "moonml.%s: expected sizes or a table of sizes, got %s", fn,
                mml_typename(L, idx));
    *next = idx + n;
  }
  for (int d = 0; d < n; d++)
    if (shape[d] < 0)
      mml_error(L, "moonml.%s: negative size %I in dimension %d", fn, (lua_Integer)shape[d], d + 1);
  return n;
}

mm_dtype mml_check_dtype(lua_State *L, int idx, const char *fn, mm_dtype def) {
  if (lua_isnoneornil(L, idx))
    return def;
  if (lua_type(L, idx) != LUA_TSTRING)
    mml_error(L, "moonml.%s: dtype must be a string, got %s", fn, mml_typename(L, idx));
  mm_dtype dt;
  if (mm_dtype_from_name(lua_tostring(L, idx), &dt) != 0)
    mml_error(L, "moonml.%s: unknown dtype '%s' (float32, int64, bool or float64)", fn,
              lua_tostring(L, idx));
  return dt;
}

mm_dtype mml_opt_dtype(lua_State *L, int idx, const char *fn, mm_dtype def,
                       const char *const *extra) {
  if (lua_isnoneornil(L, idx))
    return def;
  if (lua_type(L, idx) == LUA_TSTRING) /* shorthand: ml.tensor(t, "int64") */
    return mml_check_dtype(L, idx, fn, def);
  if (!lua_istable(L, idx))
    mml_error(L, "moonml.%s: options must be a table, got %s", fn, mml_typename(L, idx));
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    bool known = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "dtype") == 0;
    for (int i = 0; extra && extra[i] && !known; i++)
      known = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), extra[i]) == 0;
    if (!known) {
      lua_pushvalue(L, -2);
      mml_error(L, "moonml.%s: unknown option '%s'", fn, luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, idx, "dtype");
  mm_dtype dt = mml_check_dtype(L, -1, fn, def);
  lua_pop(L, 1);
  return dt;
}

void mml_register(lua_State *L, const mml_open_state *st, int table, const luaL_Reg *regs) {
  for (; regs->name; regs++) {
    lua_pushvalue(L, st->ctxbox);
    lua_pushcclosure(L, regs->func, 1);
    lua_setfield(L, table, regs->name);
  }
}

/* ------------------------------------------------------------------ context */

static int ctx_gc(lua_State *L) {
  mml_ctx_box *b = lua_touserdata(L, 1);
  if (b->ctx) {
    mm_ctx_release(b->ctx); /* storages still alive keep it until they go */
    b->ctx = NULL;
  }
  return 0;
}

int luaopen_moonml_core(lua_State *L);

MM_API int luaopen_moonml_core(lua_State *L) {
  lua_settop(L, 0);
  mml_open_state st = {1, 2, 3};
  lua_newtable(L); /* module */
  lua_newtable(L); /* methods */
  mml_ctx_box *cb = lua_newuserdatauv(L, sizeof *cb, 1);
  cb->ctx = mm_ctx_new();
  cb->unreported = 0;
  cb->collect_at = MML_COLLECT_SLACK;
  cb->since_full = 0;
  cb->tensor_mt = NULL;
  if (!cb->ctx)
    return luaL_error(L, "moonml: out of memory creating the context");
  lua_newtable(L);
  lua_pushcfunction(L, ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, st.ctxbox);

  mml_open_tensor(L, &st); /* creates the tensor metatable */
  luaL_getmetatable(L, MML_TENSOR_MT);
  cb->tensor_mt = lua_topointer(L, -1);
  lua_setiuservalue(L, st.ctxbox, 1);
  mml_open_elementwise(L, &st);
  mml_open_reduce(L, &st);
  mml_open_linalg(L, &st);
  mml_open_rec(L, &st);
  mml_open_rec_neumf(L, &st);
  mml_open_autograd(L, &st);
  mml_open_optim(L, &st);
  mml_open_math(L, &st);
  mml_open_random(L, &st);
  mml_open_bytes(L, &st);
  mml_open_index(L, &st);
  mml_open_join(L, &st);
  mml_open_sort(L, &st);
  mml_open_stats(L, &st);
  mml_open_io(L, &st);
  mml_open_clock(L, &st);
  mml_open_image(L, &st);
  mml_open_term(L, &st);
  mml_open_nn_functional(L, &st);
  mml_open_rnn(L, &st);
  mml_open_files(L, &st);
  mml_open_json(L, &st);

  lua_pushvalue(L, st.methods);
  lua_setfield(L, st.module, "methods");
  luaL_getmetatable(L, MML_TENSOR_MT);
  lua_setfield(L, st.module, "Tensor");
  lua_pushliteral(L, MM_VERSION);
  lua_setfield(L, st.module, "_VERSION");
  lua_settop(L, st.module);
  return 1;
}
