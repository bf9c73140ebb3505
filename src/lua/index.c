/* Lua binding for indexing (src/ops/index.c): index_select, gather, scatter(_),
 * scatter_add(_), masked_fill(_), masked_select, where, nonzero, and x[key] / x[key] = v
 * with a tensor key.
 *
 * Index arguments count from 1 and are int64 tensors, float tensors holding whole numbers,
 * or (nested) Lua tables of integers. index_select, gather and the scatters refuse negative
 * indices, as PyTorch does; x[index] and x[index] = v count them from the end, as PyTorch's
 * advanced indexing does. Masks are bool tensors. Positions that nonzero returns count
 * from 1. */
#include "binding.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ arguments */

/* Raises the core's last error under the name the user called (x[k] = v fails inside
 * index_put_, but the message should read "moonml.newindex: ..."). */
static int core_error_as(lua_State *L, const char *fn) {
  const char *msg = mm_ctx_error(mml_ctx(L)), *colon = strchr(msg, ':');
  if (strncmp(msg, "moonml.", 7) != 0 || !colon)
    return mml_core_error(L);
  return mml_error(L, "moonml.%s%s", fn, colon);
}

/* Shape of a nested table of numbers, from its first elements. */
static int table_shape(lua_State *L, int idx, const char *fn, int64_t *shape) {
  int nd = 0;
  lua_pushvalue(L, idx);
  while (lua_istable(L, -1) && !mml_test_tensor(L, -1)) {
    if (nd == MM_MAX_DIMS)
      mml_error(L, "moonml.%s: index table nested more than %d levels deep", fn, MM_MAX_DIMS);
    shape[nd] = (int64_t)luaL_len(L, -1);
    if (shape[nd++] == 0)
      break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return nd;
}

static void fill_index(lua_State *L, int idx, const char *fn, int d, int nd, const int64_t *shape,
                       int64_t **out) {
  int64_t len = (int64_t)luaL_len(L, idx);
  if (len != shape[d])
    mml_error(L, "moonml.%s: ragged index table: expected %I elements at depth %d, got %I", fn,
              (lua_Integer)shape[d], d + 1, (lua_Integer)len);
  for (int64_t i = 1; i <= len; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    if (d + 1 < nd) {
      if (!lua_istable(L, -1))
        mml_error(L, "moonml.%s: ragged index table: expected a table at depth %d, got %s", fn,
                  d + 2, mml_typename(L, -1));
      fill_index(L, lua_gettop(L), fn, d + 1, nd, shape, out);
    } else {
      if (lua_type(L, -1) != LUA_TNUMBER)
        mml_error(L, "moonml.%s: an index table holds integers, got %s", fn, mml_typename(L, -1));
      if (lua_isinteger(L, -1)) {
        *(*out)++ = (int64_t)lua_tointeger(L, -1);
      } else {
        double v = (double)lua_tonumber(L, -1);
        if (isnan(v))
          mml_error(L, "moonml.%s: index nan is not a whole number", fn);
        if (v != floor(v) || !(fabs(v) < 9.2e18))
          mml_error(L, "moonml.%s: index %f is not a whole number", fn, (lua_Number)v);
        *(*out)++ = (int64_t)v;
      }
    }
    lua_pop(L, 1);
  }
}

/* The index argument at idx as a 0-based int64 tensor (pushed on the stack, returned),
 * checked against a dimension of `size` elements (dim names it in messages). */
static mm_tensor *check_index(lua_State *L, int idx, const char *fn, int64_t size, int dim,
                              bool negative) {
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *given = mml_test_tensor(L, idx);
  if (!given) {
    if (!lua_istable(L, idx))
      mml_error(L, "moonml.%s: index must be a tensor or a table of integers, got %s", fn,
                mml_typename(L, idx));
    int64_t shape[MM_MAX_DIMS];
    int nd = table_shape(L, idx, fn, shape);
    given = mml_push_tensor(L, mm_empty(ctx, MM_INT64, nd, shape));
    int64_t *p = mm_data(given);
    fill_index(L, idx, fn, 0, nd, shape, &p);
  }
  mm_tensor *z = mm_index_normalize(ctx, fn, given, size, dim, 1, negative);
  if (!z)
    mml_core_error(L);
  return mml_push_tensor(L, z);
}

/* The mask at idx: a tensor (the core checks that it is bool). */
static mm_tensor *check_mask(lua_State *L, int idx, const char *fn) {
  mm_tensor *m = mml_test_tensor(L, idx);
  if (!m)
    mml_error(L, "moonml.%s: mask must be a bool tensor, got %s", fn, mml_typename(L, idx));
  return m;
}

/* A value written into a tensor of dtype dt: a tensor (returned as is), or a number or
 * boolean made into a 0-d tensor (pushed): int64 for Lua integers, so that they stay exact,
 * float64 for other numbers, bool for booleans. */
static mm_tensor *check_value(lua_State *L, int idx, const char *fn, mm_dtype dt) {
  mm_tensor *t = mml_test_tensor(L, idx);
  if (t)
    return t;
  mm_ctx *ctx = mml_ctx(L);
  int type = lua_type(L, idx);
  if (type == LUA_TBOOLEAN) {
    t = mml_push_tensor(L, mm_empty(ctx, MM_BOOL, 0, NULL));
    mm_set_int64(t, NULL, lua_toboolean(L, idx));
  } else if (type == LUA_TNUMBER && lua_isinteger(L, idx)) {
    t = mml_push_tensor(L, mm_empty(ctx, MM_INT64, 0, NULL));
    mm_set_int64(t, NULL, (int64_t)lua_tointeger(L, idx));
  } else if (type == LUA_TNUMBER) {
    double v = (double)lua_tonumber(L, idx);
    const double two_pow_63 = 9223372036854775808.0;
    if (dt == MM_INT64 && isnan(v))
      mml_error(L, "moonml.%s: cannot store nan in an int64 tensor", fn);
    if (dt == MM_INT64 && !(v >= -two_pow_63 && v < two_pow_63))
      mml_error(L, "moonml.%s: cannot store %f in an int64 tensor", fn, (lua_Number)v);
    t = mml_push_tensor(L, mm_empty(ctx, MM_FLOAT64, 0, NULL));
    mm_set_double(t, NULL, v);
  } else {
    mml_error(L, "moonml.%s: value must be a number, a boolean or a 0-d tensor, got %s", fn,
              mml_typename(L, idx));
  }
  return t;
}

static int64_t dim_size(const mm_tensor *t, int dim) { return t->ndim ? t->shape[dim] : 1; }

/* Frees the temporaries (converted indices, values) that this call pushed above slot top,
 * at once rather than when the collector comes: an index as large as its tensor would
 * otherwise hold its memory until then. A node that saved one keeps its own reference. */
static void free_temps(lua_State *L, int top) {
  for (int i = lua_gettop(L); i > top; i--) {
    mml_tensor_box *b = luaL_testudata(L, i, MML_TENSOR_MT);
    if (b && b->t) {
      mm_release(b->t);
      b->t = NULL;
    }
  }
  lua_settop(L, top);
}

/* Pushes the result of a call whose temporaries sit above top (NULL raises the error). */
static void push_result(lua_State *L, int top, mm_tensor *r) {
  if (!r)
    mml_core_error(L);
  free_temps(L, top);
  mml_push_tensor(L, r);
}

/* ------------------------------------------------------------------ gather family */

/* x:index_select(dim, index) */
static int m_index_select(lua_State *L) {
  lua_settop(L, 3); /* arguments keep their slots as values are pushed */
  mm_tensor *a = mml_check_tensor(L, 1, "index_select");
  int dim = mml_check_dim(L, 2, "index_select", a->ndim);
  mm_tensor *index = check_index(L, 3, "index_select", dim_size(a, dim), dim, false);
  push_result(L, 3, mm_index_select(mml_ctx(L), a, dim, index));
  return 1;
}

/* x:gather(dim, index) */
static int m_gather(lua_State *L) {
  lua_settop(L, 3); /* arguments keep their slots as values are pushed */
  mm_tensor *a = mml_check_tensor(L, 1, "gather");
  int dim = mml_check_dim(L, 2, "gather", a->ndim);
  mm_tensor *index = check_index(L, 3, "gather", dim_size(a, dim), dim, false);
  push_result(L, 3, mm_gather(mml_ctx(L), a, dim, index));
  return 1;
}

/* x:scatter(dim, index, src_or_value), x:scatter_add(dim, index, src) and in-place forms */
static int scatter(lua_State *L, const char *fn, bool add, bool inplace) {
  lua_settop(L, 4); /* arguments keep their slots as values are pushed */
  mm_tensor *a = mml_check_tensor(L, 1, fn);
  int dim = mml_check_dim(L, 2, fn, a->ndim);
  mm_tensor *index = check_index(L, 3, fn, dim_size(a, dim), dim, false);
  mm_tensor *src = mml_test_tensor(L, 4), *value = NULL;
  if (add && !src)
    mml_error(L, "moonml.%s: src must be a tensor, got %s", fn, mml_typename(L, 4));
  if (!src) {
    int type = lua_type(L, 4);
    if (type != LUA_TNUMBER && type != LUA_TBOOLEAN)
      mml_error(L, "moonml.%s: src must be a tensor or a number, got %s", fn, mml_typename(L, 4));
    value = check_value(L, 4, fn, a->dtype);
  }
  mm_ctx *ctx = mml_ctx(L);
  if (inplace) {
    mml_check_status(L, add ? mm_scatter_add_(ctx, a, dim, index, src)
                            : mm_scatter_(ctx, a, dim, index, src, value));
    free_temps(L, 4);
    lua_pushvalue(L, 1);
    return 1;
  }
  push_result(L, 4,
              add ? mm_scatter_add(ctx, a, dim, index, src)
                  : mm_scatter(ctx, a, dim, index, src, value));
  return 1;
}

static int m_scatter(lua_State *L) { return scatter(L, "scatter", false, false); }
static int m_scatter_(lua_State *L) { return scatter(L, "scatter_", false, true); }
static int m_scatter_add(lua_State *L) { return scatter(L, "scatter_add", true, false); }
static int m_scatter_add_(lua_State *L) { return scatter(L, "scatter_add_", true, true); }

/* ------------------------------------------------------------------ masks */

/* x:masked_fill(mask, value), x:masked_fill_(mask, value) */
static int masked_fill(lua_State *L, const char *fn, bool inplace) {
  lua_settop(L, 3); /* arguments keep their slots as values are pushed */
  mm_tensor *a = mml_check_tensor(L, 1, fn);
  mm_tensor *mask = check_mask(L, 2, fn);
  mm_tensor *value = check_value(L, 3, fn, a->dtype);
  mm_ctx *ctx = mml_ctx(L);
  if (inplace) {
    mml_check_status(L, mm_masked_fill_(ctx, a, mask, value));
    free_temps(L, 3);
    lua_pushvalue(L, 1);
    return 1;
  }
  push_result(L, 3, mm_masked_fill(ctx, a, mask, value));
  return 1;
}

static int m_masked_fill(lua_State *L) { return masked_fill(L, "masked_fill", false); }
static int m_masked_fill_(lua_State *L) { return masked_fill(L, "masked_fill_", true); }

static int m_masked_select(lua_State *L) {
  lua_settop(L, 2); /* arguments keep their slots as values are pushed */
  mm_tensor *a = mml_check_tensor(L, 1, "masked_select");
  mm_tensor *mask = check_mask(L, 2, "masked_select");
  mml_push_tensor(L, mm_masked_select(mml_ctx(L), a, mask));
  return 1;
}

/* ------------------------------------------------------------------ where, nonzero */

/* The operand at idx: a tensor (returned) or a Lua number (NULL, value in *s). */
static mm_tensor *where_operand(lua_State *L, int idx, mm_scalar *s) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    s->is_integer = lua_isinteger(L, idx);
    s->value = s->is_integer ? (double)lua_tointeger(L, idx) : (double)lua_tonumber(L, idx);
    return NULL;
  }
  mm_tensor *t = mml_test_tensor(L, idx);
  if (!t)
    mml_error(L, "moonml.where: expected a tensor or a number as argument %d, got %s", idx,
              mml_typename(L, idx));
  return t;
}

/* 1-based positions: the core's count from 0 */
static void to_lua_positions(mm_tensor *t) {
  int64_t *p = mm_data(t), n = mm_numel(t);
  for (int64_t i = 0; i < n; i++)
    p[i] += 1;
}

/* Pushes nonzero's result: an N x ndim tensor, or with as_tuple a Lua array of ndim 1-D
 * tensors (one for a 0-d input, as PyTorch). */
static int push_nonzero(lua_State *L, const mm_tensor *a, bool as_tuple) {
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *pos = mml_push_tensor(L, mm_nonzero(ctx, a));
  to_lua_positions(pos);
  if (!as_tuple)
    return 1;
  int n = a->ndim ? a->ndim : 1;
  lua_createtable(L, n, 0);
  for (int d = 0; d < n; d++) {
    if (a->ndim == 0) { /* a 0-d input counts as one element at position 1 */
      mml_push_tensor(L, mm_full(ctx, MM_INT64, 1, pos->shape, 1));
    } else {
      mm_tensor *col = mm_select(ctx, pos, 1, d);
      mm_tensor *c = col ? mm_clone(ctx, col) : NULL;
      mm_release(col);
      mml_push_tensor(L, c);
    }
    lua_rawseti(L, -2, d + 1);
  }
  return 1;
}

/* x:nonzero([{as_tuple = bool}]) */
static int m_nonzero(lua_State *L) {
  mm_tensor *a = mml_check_tensor(L, 1, "nonzero");
  bool as_tuple = false;
  if (!lua_isnoneornil(L, 2)) {
    if (!lua_istable(L, 2) || mml_test_tensor(L, 2))
      mml_error(L, "moonml.nonzero: options must be a table, got %s", mml_typename(L, 2));
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "as_tuple") != 0) {
        lua_pushvalue(L, -2);
        mml_error(L, "moonml.nonzero: unknown option '%s'", luaL_tolstring(L, -1, NULL));
      }
      if (!lua_isboolean(L, -1))
        mml_error(L, "moonml.nonzero: as_tuple must be a boolean, got %s", mml_typename(L, -1));
      as_tuple = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, 1);
  return push_nonzero(L, a, as_tuple);
}

static int where(lua_State *L, mm_tensor *cond, int xi, int yi) {
  mm_scalar xs = {0, true}, ys = {0, true};
  mm_tensor *x = where_operand(L, xi, &xs);
  mm_tensor *y = where_operand(L, yi, &ys);
  mml_push_tensor(L, mm_where(mml_ctx(L), cond, x, xs, y, ys));
  return 1;
}

/* ml.where(cond, x, y); ml.where(cond) is ml.nonzero(cond, {as_tuple = true}) */
static int l_where(lua_State *L) {
  mm_tensor *cond = mml_test_tensor(L, 1);
  if (!cond)
    mml_error(L, "moonml.where: the condition must be a bool tensor, got %s", mml_typename(L, 1));
  if (lua_gettop(L) == 1) {
    return push_nonzero(L, cond, true);
  }
  return where(L, cond, 2, 3);
}

/* x:where(cond, y) is ml.where(cond, x, y), as PyTorch's Tensor.where */
static int m_where(lua_State *L) {
  mml_check_tensor(L, 1, "where");
  mm_tensor *cond = mml_test_tensor(L, 2);
  if (!cond)
    mml_error(L, "moonml.where: the condition must be a bool tensor, got %s", mml_typename(L, 2));
  return where(L, cond, 1, 3);
}

/* ------------------------------------------------------------------ x[key] */

/* The key at 2 as the core takes it: a bool mask as is, indices 0-based along dim 1. */
static mm_tensor *check_key(lua_State *L, mm_tensor *t, const char *fn) {
  mm_tensor *key = mml_test_tensor(L, 2);
  if (key->dtype == MM_BOOL)
    return key;
  if (t->ndim == 0)
    mml_error(L, "moonml.%s: cannot index a 0-d tensor with an index tensor", fn);
  return check_index(L, 2, fn, t->shape[0], 0, true);
}

int mml_index_by_tensor(lua_State *L, mm_tensor *t) {
  lua_settop(L, 2);
  mm_tensor *key = check_key(L, t, "index");
  mm_tensor *r = mm_index(mml_ctx(L), t, key);
  if (!r)
    core_error_as(L, "index");
  push_result(L, 2, r);
  return 1;
}

int mml_newindex_by_tensor(lua_State *L, mm_tensor *t) {
  lua_settop(L, 3);
  mm_tensor *key = check_key(L, t, "newindex");
  mm_tensor *value = check_value(L, 3, "newindex", t->dtype);
  if (mm_index_put_(mml_ctx(L), t, key, value) != 0)
    core_error_as(L, "newindex");
  free_temps(L, 3);
  return 0;
}

static const luaL_Reg methods[] = {
    {"index_select", m_index_select},
    {"gather", m_gather},
    {"scatter", m_scatter},
    {"scatter_", m_scatter_},
    {"scatter_add", m_scatter_add},
    {"scatter_add_", m_scatter_add_},
    {"masked_fill", m_masked_fill},
    {"masked_fill_", m_masked_fill_},
    {"masked_select", m_masked_select},
    {"where", m_where},
    {"nonzero", m_nonzero},
    {NULL, NULL},
};

/* module-only: where takes the condition first */
static const luaL_Reg functions[] = {
    {"where", l_where},
    {NULL, NULL},
};

void mml_open_index(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->methods, methods);
  mml_register(L, st, st->module, functions);
}
