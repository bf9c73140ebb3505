/* Tensor userdata: creation, element access, indexing metamethods, conversions. */
#include "binding.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ lifetime */

static int t_gc(lua_State *L) {
  mml_tensor_box *b = lua_touserdata(L, 1);
  mm_release(b->t);
  b->t = NULL;
  return 0;
}

/* ------------------------------------------------------------------ numbers <-> elements */

/* Pushes one element as a Lua value: integer for int64, boolean for bool. */
static void push_element(lua_State *L, const mm_tensor *t, const int64_t *idx) {
  switch (t->dtype) {
  case MM_INT64:
    lua_pushinteger(L, (lua_Integer)mm_get_int64(t, idx));
    break;
  case MM_BOOL:
    lua_pushboolean(L, mm_get_int64(t, idx) != 0);
    break;
  default:
    lua_pushnumber(L, (lua_Number)mm_get_double(t, idx));
    break;
  }
}

/* A float bound for an int64 tensor must be a number int64 can hold (PyTorch raises an
 * overflow error too); float and bool tensors take any value. */
static double check_fits(lua_State *L, mm_dtype dt, double v, const char *fn) {
  const double two_pow_63 = 9223372036854775808.0;
  if (dt == MM_INT64 && !(v >= -two_pow_63 && v < two_pow_63))
    mml_error(L, "moonml.%s: cannot store %f in an int64 tensor", fn, v);
  return v;
}

static int core_error_as(lua_State *L, const char *fn);

/* Stores the Lua value at vidx into one element, converting as PyTorch would. A float
 * element of an existing tensor is an in-place change autograd sees (track). */
static void set_element(lua_State *L, mm_tensor *t, const int64_t *idx, int vidx, const char *fn,
                        bool track) {
  int type = lua_type(L, vidx);
  if (track && mm_dtype_is_float(t->dtype) && (type == LUA_TNUMBER || type == LUA_TBOOLEAN)) {
    double v = type == LUA_TBOOLEAN ? lua_toboolean(L, vidx) : lua_tonumber(L, vidx);
    if (mm_set_element_(mml_ctx(L), t, idx, v) != 0)
      core_error_as(L, fn);
    return;
  }
  if (type == LUA_TBOOLEAN) {
    mm_set_int64(t, idx, lua_toboolean(L, vidx));
  } else if (type == LUA_TNUMBER) {
    if (lua_isinteger(L, vidx))
      mm_set_int64(t, idx, (int64_t)lua_tointeger(L, vidx));
    else
      mm_set_double(t, idx, check_fits(L, t->dtype, lua_tonumber(L, vidx), fn));
  } else {
    mml_error(L, "moonml.%s: expected a number, got %s", fn, mml_typename(L, vidx));
  }
}

/* A 1-based or negative Lua index into a dimension of size n, as 0-based. */
static int64_t check_index(lua_State *L, int idx, const char *fn, int64_t n) {
  int64_t i = mml_check_integer(L, idx, fn, "index");
  int64_t z = i > 0 ? i - 1 : i + n;
  if (i == 0 || z < 0 || z >= n)
    mml_error(L, "moonml.%s: index %I out of range for size %I", fn, (lua_Integer)i,
              (lua_Integer)n);
  return z;
}

/* Raises the core's last error under the name the user called: x[i] = v fails inside
 * copy_ and ml.ones inside full, but the messages should read "moonml.newindex: ..." and
 * "moonml.ones: ...". */
static int core_error_as(lua_State *L, const char *fn) {
  const char *msg = mm_ctx_error(mml_ctx(L)), *colon = strchr(msg, ':');
  if (strncmp(msg, "moonml.", 7) != 0 || !colon)
    return mml_core_error(L);
  return mml_error(L, "moonml.%s%s", fn, colon);
}

/* Pushes t (see mml_push_tensor); a NULL t raises the core's error as fn's. */
static mm_tensor *push_as(lua_State *L, mm_tensor *t, const char *fn) {
  if (!t)
    core_error_as(L, fn);
  return mml_push_tensor(L, t);
}

/* ------------------------------------------------------------------ creation */

static const char *const creation_opts[] = {"requires_grad", NULL};

/* The requires_grad option of a creation function (opts at index idx, checked already by
 * mml_opt_dtype): applied to the new tensor on top of the stack. */
static void apply_requires_grad(lua_State *L, int idx, const char *fn) {
  if (!lua_istable(L, idx) || mml_test_tensor(L, idx))
    return;
  lua_getfield(L, idx, "requires_grad");
  int type = lua_type(L, -1);
  bool flag = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (type == LUA_TNIL)
    return;
  if (type != LUA_TBOOLEAN)
    mml_error(L, "moonml.%s: requires_grad must be a boolean, got %s", fn, lua_typename(L, type));
  mm_tensor *t = mml_test_tensor(L, -1);
  if (flag && !mm_dtype_is_float(t->dtype))
    mml_error(L, "moonml.%s: only floating-point tensors can require gradients, got %s", fn,
              mm_dtype_name(t->dtype));
  mml_check_status(L, mm_set_requires_grad(mml_ctx(L), t, flag));
}

static int l_empty(lua_State *L) {
  int64_t shape[MM_MAX_DIMS];
  int next;
  int n = mml_check_shape(L, 1, "empty", shape, &next);
  mm_dtype dt = mml_opt_dtype(L, next, "empty", MM_FLOAT32, creation_opts);
  push_as(L, mm_zeros(mml_ctx(L), dt, n, shape), "empty"); /* zeroed: no stale data */
  apply_requires_grad(L, next, "empty");
  return 1;
}

static int l_zeros(lua_State *L) {
  int64_t shape[MM_MAX_DIMS];
  int next;
  int n = mml_check_shape(L, 1, "zeros", shape, &next);
  mm_dtype dt = mml_opt_dtype(L, next, "zeros", MM_FLOAT32, creation_opts);
  mml_push_tensor(L, mm_zeros(mml_ctx(L), dt, n, shape));
  apply_requires_grad(L, next, "zeros");
  return 1;
}

static int l_ones(lua_State *L) {
  int64_t shape[MM_MAX_DIMS];
  int next;
  int n = mml_check_shape(L, 1, "ones", shape, &next);
  mm_dtype dt = mml_opt_dtype(L, next, "ones", MM_FLOAT32, creation_opts);
  push_as(L, mm_full(mml_ctx(L), dt, n, shape, 1), "ones");
  apply_requires_grad(L, next, "ones");
  return 1;
}

static double check_fill_value(lua_State *L, int idx, const char *fn) {
  if (lua_type(L, idx) == LUA_TBOOLEAN)
    return lua_toboolean(L, idx);
  return mml_check_number(L, idx, fn, "value");
}

/* Fills t with the Lua value at vidx. The core's fill takes a double, so a Lua integer
 * going into an int64 tensor is copied from a 0-d int64 tensor instead: 2^62 + 1 stays
 * exact. */
static void fill_value(lua_State *L, mm_tensor *t, int vidx, const char *fn) {
  mm_ctx *ctx = mml_ctx(L);
  double v = check_fits(L, t->dtype, check_fill_value(L, vidx, fn), fn);
  if (t->dtype != MM_INT64 || !lua_isinteger(L, vidx)) {
    if (mm_fill_(ctx, t, v) != 0)
      core_error_as(L, fn);
    return;
  }
  mm_tensor *scalar = mm_empty(ctx, MM_INT64, 0, NULL);
  if (!scalar) {
    mml_core_error(L);
    return;
  }
  mm_set_int64(scalar, NULL, (int64_t)lua_tointeger(L, vidx));
  int status = mm_copy_(ctx, t, scalar);
  mm_release(scalar);
  if (status != 0)
    core_error_as(L, fn);
}

static int l_full(lua_State *L) {
  int64_t shape[MM_MAX_DIMS];
  int next;
  if (!lua_istable(L, 1))
    mml_error(L, "moonml.full: expected a table of sizes as argument 1, got %s",
              mml_typename(L, 1));
  int n = mml_check_shape(L, 1, "full", shape, &next);
  check_fill_value(L, next, "full");
  mm_dtype def = lua_type(L, next) == LUA_TBOOLEAN ? MM_BOOL : MM_FLOAT32;
  mm_dtype dt = mml_opt_dtype(L, next + 1, "full", def, creation_opts);
  fill_value(L, push_as(L, mm_empty(mml_ctx(L), dt, n, shape), "full"), next, "full");
  apply_requires_grad(L, next + 1, "full");
  return 1;
}

static int l_arange(lua_State *L) {
  double start = 1, end, step = 1;
  int opts;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    start = mml_check_number(L, 1, "arange", "start");
    end = mml_check_number(L, 2, "arange", "end");
    if (lua_type(L, 3) == LUA_TNUMBER) {
      step = mml_check_number(L, 3, "arange", "step");
      opts = 4;
    } else {
      opts = 3;
    }
  } else {
    end = mml_check_number(L, 1, "arange", "end");
    opts = 2;
  }
  mm_dtype dt = mml_opt_dtype(L, opts, "arange", MM_FLOAT32, creation_opts);
  mml_push_tensor(L, mm_arange(mml_ctx(L), dt, start, end, step));
  apply_requires_grad(L, opts, "arange");
  return 1;
}

static int l_linspace(lua_State *L) {
  double start = mml_check_number(L, 1, "linspace", "start");
  double end = mml_check_number(L, 2, "linspace", "end");
  int64_t steps = mml_check_integer(L, 3, "linspace", "steps");
  mm_dtype dt = mml_opt_dtype(L, 4, "linspace", MM_FLOAT32, creation_opts);
  mml_push_tensor(L, mm_linspace(mml_ctx(L), dt, start, end, steps));
  apply_requires_grad(L, 4, "linspace");
  return 1;
}

static int l_eye(lua_State *L) {
  int64_t n = mml_check_integer(L, 1, "eye", "n");
  int64_t m = n;
  int opts = 2;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    m = mml_check_integer(L, 2, "eye", "m");
    opts = 3;
  }
  if (n < 0 || m < 0)
    mml_error(L, "moonml.eye: sizes must be non-negative, got %I and %I", (lua_Integer)n,
              (lua_Integer)m);
  mm_dtype dt = mml_opt_dtype(L, opts, "eye", MM_FLOAT32, creation_opts);
  mml_push_tensor(L, mm_eye(mml_ctx(L), dt, n, m));
  apply_requires_grad(L, opts, "eye");
  return 1;
}

static int l_rand(lua_State *L) {
  int64_t shape[MM_MAX_DIMS];
  int next;
  int n = mml_check_shape(L, 1, "rand", shape, &next);
  mm_dtype dt = mml_opt_dtype(L, next, "rand", MM_FLOAT32, creation_opts);
  mml_push_tensor(L, mm_rand(mml_ctx(L), dt, n, shape));
  apply_requires_grad(L, next, "rand");
  return 1;
}

static int l_randn(lua_State *L) {
  int64_t shape[MM_MAX_DIMS];
  int next;
  int n = mml_check_shape(L, 1, "randn", shape, &next);
  mm_dtype dt = mml_opt_dtype(L, next, "randn", MM_FLOAT32, creation_opts);
  mml_push_tensor(L, mm_randn(mml_ctx(L), dt, n, shape));
  apply_requires_grad(L, next, "randn");
  return 1;
}

/* randint(low, high, shape[, opts]) or randint(high, shape): integers in [low, high] */
static int l_randint(lua_State *L) {
  int64_t low = 1, high;
  int at;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    low = mml_check_integer(L, 1, "randint", "low");
    high = mml_check_integer(L, 2, "randint", "high");
    at = 3;
  } else {
    high = mml_check_integer(L, 1, "randint", "high");
    at = 2;
  }
  int64_t shape[MM_MAX_DIMS];
  int next;
  if (!lua_istable(L, at))
    mml_error(L, "moonml.randint: expected a table of sizes as argument %d, got %s", at,
              mml_typename(L, at));
  int n = mml_check_shape(L, at, "randint", shape, &next);
  mm_dtype dt = mml_opt_dtype(L, next, "randint", MM_INT64, creation_opts);
  mml_push_tensor(L, mm_randint(mml_ctx(L), dt, low, high, n, shape));
  apply_requires_grad(L, next, "randint");
  return 1;
}

/* ---- from nested Lua tables ---- */

typedef struct {
  int ndim;
  int64_t shape[MM_MAX_DIMS];
  bool all_bool;
} table_shape;

static void infer_table_shape(lua_State *L, int idx, table_shape *ts) {
  ts->ndim = 0;
  ts->all_bool = true;
  lua_pushvalue(L, idx);
  while (lua_istable(L, -1)) {
    if (ts->ndim == MM_MAX_DIMS)
      mml_error(L, "moonml.tensor: nested more than %d levels deep", MM_MAX_DIMS);
    int64_t len = (int64_t)luaL_len(L, -1);
    ts->shape[ts->ndim++] = len;
    if (len == 0)
      break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
}

/* Writes the nested table at idx, depth d, into t's contiguous data from *pos. */
static void fill_from_table(lua_State *L, int idx, int d, const table_shape *ts, mm_tensor *t,
                            int64_t *pos) {
  int64_t len = (int64_t)luaL_len(L, idx);
  if (len != ts->shape[d])
    mml_error(L, "moonml.tensor: ragged nested table: expected %I elements at depth %d, got %I",
              (lua_Integer)ts->shape[d], d + 1, (lua_Integer)len);
  for (int64_t i = 1; i <= len; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i);
    if (d + 1 < ts->ndim) {
      if (!lua_istable(L, -1))
        mml_error(L, "moonml.tensor: ragged nested table: expected a table at depth %d, got %s",
                  d + 2, mml_typename(L, -1));
      fill_from_table(L, lua_gettop(L), d + 1, ts, t, pos);
    } else {
      int type = lua_type(L, -1);
      if (type != LUA_TNUMBER && type != LUA_TBOOLEAN)
        mml_error(L, "moonml.tensor: expected numbers or booleans, got %s", mml_typename(L, -1));
      /* address the flat position through a 1-D index on the contiguous data */
      int64_t idx1[MM_MAX_DIMS] = {0}, rest = *pos;
      for (int k = t->ndim - 1; k >= 0; k--) {
        idx1[k] = rest % t->shape[k];
        rest /= t->shape[k];
      }
      set_element(L, t, idx1, -1, "tensor", false);
      (*pos)++;
    }
    lua_pop(L, 1);
  }
}

static bool table_all_bool(lua_State *L, int idx) {
  /* walks down the first elements: a bool leaf makes the default dtype bool */
  lua_pushvalue(L, idx);
  while (lua_istable(L, -1)) {
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  bool b = lua_type(L, -1) == LUA_TBOOLEAN;
  lua_pop(L, 1);
  return b;
}

static int l_tensor(lua_State *L) {
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *src = mml_test_tensor(L, 1);
  if (src) {
    mm_dtype dt = mml_opt_dtype(L, 2, "tensor", src->dtype, creation_opts);
    /* a copy outside the graph, as torch.tensor(t) */
    bool mode = mm_set_grad_enabled(ctx, false);
    mm_tensor *copy = dt == src->dtype ? mm_clone(ctx, src) : mm_to_dtype(ctx, src, dt);
    mm_set_grad_enabled(ctx, mode);
    push_as(L, copy, "tensor");
    apply_requires_grad(L, 2, "tensor");
    return 1;
  }
  int type = lua_type(L, 1);
  if (type == LUA_TNUMBER || type == LUA_TBOOLEAN) {
    mm_dtype dt =
        mml_opt_dtype(L, 2, "tensor", type == LUA_TBOOLEAN ? MM_BOOL : MM_FLOAT32, creation_opts);
    mm_tensor *t = push_as(L, mm_empty(ctx, dt, 0, NULL), "tensor");
    set_element(L, t, NULL, 1, "tensor", false);
    apply_requires_grad(L, 2, "tensor");
    return 1;
  }
  if (type != LUA_TTABLE)
    mml_error(L, "moonml.tensor: expected a table, number or tensor, got %s", mml_typename(L, 1));
  table_shape ts;
  infer_table_shape(L, 1, &ts);
  mm_dtype dt =
      mml_opt_dtype(L, 2, "tensor", table_all_bool(L, 1) ? MM_BOOL : MM_FLOAT32, creation_opts);
  mm_tensor *t = push_as(L, mm_empty(ctx, dt, ts.ndim, ts.shape), "tensor");
  int64_t pos = 0;
  fill_from_table(L, 1, 0, &ts, t, &pos); /* also when empty: {{}, {1}} is ragged */
  apply_requires_grad(L, 2, "tensor");
  return 1;
}

/* *_like(x[, opts]): shape (and by default dtype) of x */
static mm_tensor *like_arg(lua_State *L, const char *fn, mm_dtype *dt) {
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  *dt = x->dtype;
  return x;
}

static int l_zeros_like(lua_State *L) {
  mm_dtype dt;
  mm_tensor *x = like_arg(L, "zeros_like", &dt);
  dt = mml_opt_dtype(L, 2, "zeros_like", dt, creation_opts);
  push_as(L, mm_zeros(mml_ctx(L), dt, x->ndim, x->shape), "zeros_like");
  apply_requires_grad(L, 2, "zeros_like");
  return 1;
}

static int l_ones_like(lua_State *L) {
  mm_dtype dt;
  mm_tensor *x = like_arg(L, "ones_like", &dt);
  dt = mml_opt_dtype(L, 2, "ones_like", dt, creation_opts);
  push_as(L, mm_full(mml_ctx(L), dt, x->ndim, x->shape, 1), "ones_like");
  apply_requires_grad(L, 2, "ones_like");
  return 1;
}

static int l_empty_like(lua_State *L) {
  mm_dtype dt;
  mm_tensor *x = like_arg(L, "empty_like", &dt);
  dt = mml_opt_dtype(L, 2, "empty_like", dt, creation_opts);
  push_as(L, mm_zeros(mml_ctx(L), dt, x->ndim, x->shape), "empty_like");
  apply_requires_grad(L, 2, "empty_like");
  return 1;
}

static int l_full_like(lua_State *L) {
  mm_dtype dt;
  mm_tensor *x = like_arg(L, "full_like", &dt);
  check_fill_value(L, 2, "full_like");
  dt = mml_opt_dtype(L, 3, "full_like", dt, creation_opts);
  fill_value(L, push_as(L, mm_empty(mml_ctx(L), dt, x->ndim, x->shape), "full_like"), 2,
             "full_like");
  apply_requires_grad(L, 3, "full_like");
  return 1;
}

static int l_rand_like(lua_State *L) {
  mm_dtype dt;
  mm_tensor *x = like_arg(L, "rand_like", &dt);
  dt = mml_opt_dtype(L, 2, "rand_like", dt, creation_opts);
  push_as(L, mm_rand(mml_ctx(L), dt, x->ndim, x->shape), "rand_like");
  apply_requires_grad(L, 2, "rand_like");
  return 1;
}

static int l_randn_like(lua_State *L) {
  mm_dtype dt;
  mm_tensor *x = like_arg(L, "randn_like", &dt);
  dt = mml_opt_dtype(L, 2, "randn_like", dt, creation_opts);
  push_as(L, mm_randn(mml_ctx(L), dt, x->ndim, x->shape), "randn_like");
  apply_requires_grad(L, 2, "randn_like");
  return 1;
}

/* randint_like(x, low, high[, opts]) or randint_like(x, high[, opts]) */
static int l_randint_like(lua_State *L) {
  mm_dtype dt;
  mm_tensor *x = like_arg(L, "randint_like", &dt);
  int64_t low = 1, high;
  int opts = 3;
  if (lua_type(L, 3) == LUA_TNUMBER) {
    low = mml_check_integer(L, 2, "randint_like", "low");
    high = mml_check_integer(L, 3, "randint_like", "high");
    opts = 4;
  } else {
    high = mml_check_integer(L, 2, "randint_like", "high");
  }
  dt = mml_opt_dtype(L, opts, "randint_like", dt, creation_opts);
  push_as(L, mm_randint(mml_ctx(L), dt, low, high, x->ndim, x->shape), "randint_like");
  apply_requires_grad(L, opts, "randint_like");
  return 1;
}

/* ------------------------------------------------------------------ settings */

static int l_manual_seed(lua_State *L) {
  mm_manual_seed(mml_ctx(L), (uint64_t)mml_check_integer(L, 1, "manual_seed", "seed"));
  return 0;
}

static int l_set_num_threads(lua_State *L) {
  int64_t n = mml_check_integer(L, 1, "set_num_threads", "n");
  if (n < 1 || n > 64)
    mml_error(L, "moonml.set_num_threads: n must be between 1 and 64, got %I", (lua_Integer)n);
  mm_set_num_threads((int)n);
  return 0;
}

static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, mm_get_num_threads());
  return 1;
}

static int l_memory_stats(lua_State *L) {
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, (lua_Integer)mm_ctx_live_bytes(mml_ctx(L)));
  lua_setfield(L, -2, "live_bytes");
  return 1;
}

/* ------------------------------------------------------------------ inspection */

static int m_dim(lua_State *L) {
  lua_pushinteger(L, mml_check_tensor(L, 1, "dim")->ndim);
  return 1;
}

static int m_numel(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mm_numel(mml_check_tensor(L, 1, "numel")));
  return 1;
}

static int m_dtype(lua_State *L) {
  lua_pushstring(L, mm_dtype_name(mml_check_tensor(L, 1, "dtype")->dtype));
  return 1;
}

static void push_shape(lua_State *L, const mm_tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, (lua_Integer)t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

static int m_size(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "size");
  if (lua_isnoneornil(L, 2)) {
    push_shape(L, t);
    return 1;
  }
  if (t->ndim == 0)
    mml_error(L, "moonml.size: a 0-d tensor has no dimensions");
  lua_pushinteger(L, (lua_Integer)t->shape[mml_check_dim(L, 2, "size", t->ndim)]);
  return 1;
}

static int m_shape(lua_State *L) {
  push_shape(L, mml_check_tensor(L, 1, "shape"));
  return 1;
}

static int m_stride(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "stride");
  if (!lua_isnoneornil(L, 2)) {
    if (t->ndim == 0)
      mml_error(L, "moonml.stride: a 0-d tensor has no dimensions");
    lua_pushinteger(L, (lua_Integer)t->stride[mml_check_dim(L, 2, "stride", t->ndim)]);
    return 1;
  }
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, (lua_Integer)t->stride[d]);
    lua_rawseti(L, -2, d + 1);
  }
  return 1;
}

static int m_is_contiguous(lua_State *L) {
  lua_pushboolean(L, mm_is_contiguous(mml_check_tensor(L, 1, "is_contiguous")));
  return 1;
}

static int t_len(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "__len");
  if (t->ndim == 0)
    mml_error(L, "moonml.__len: a 0-d tensor has no length");
  lua_pushinteger(L, (lua_Integer)t->shape[0]);
  return 1;
}

/* ------------------------------------------------------------------ elements */

static void check_indices(lua_State *L, mm_tensor *t, int first, const char *fn, int64_t *idx) {
  int given = lua_gettop(L) - first + 1;
  if (given < t->ndim)
    mml_error(L, "moonml.%s: %d indices given for a %d-D tensor", fn, given, t->ndim);
  for (int d = 0; d < t->ndim; d++)
    idx[d] = check_index(L, first + d, fn, t->shape[d]);
}

static int m_get(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "get");
  int64_t idx[MM_MAX_DIMS];
  if (lua_gettop(L) - 1 != t->ndim)
    mml_error(L, "moonml.get: %d indices given for a %d-D tensor", lua_gettop(L) - 1, t->ndim);
  check_indices(L, t, 2, "get", idx);
  push_element(L, t, idx);
  return 1;
}

static int m_set(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "set");
  int64_t idx[MM_MAX_DIMS];
  if (lua_gettop(L) - 2 != t->ndim)
    mml_error(L, "moonml.set: expected %d indices and a value, got %d arguments", t->ndim,
              lua_gettop(L) - 1);
  check_indices(L, t, 2, "set", idx);
  set_element(L, t, idx, 2 + t->ndim, "set", true);
  lua_settop(L, 1);
  return 1;
}

static int m_item(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "item");
  if (mm_numel(t) != 1)
    mml_error(L, "moonml.item: the tensor has %I elements, item needs exactly one",
              (lua_Integer)mm_numel(t));
  int64_t idx[MM_MAX_DIMS] = {0};
  push_element(L, t, idx);
  return 1;
}

static void push_table(lua_State *L, const mm_tensor *t, int d, int64_t *idx) {
  if (d == t->ndim) {
    push_element(L, t, idx);
    return;
  }
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    idx[d] = i;
    push_table(L, t, d + 1, idx);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static int m_totable(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "totable");
  int64_t idx[MM_MAX_DIMS] = {0};
  luaL_checkstack(L, t->ndim + 10, "moonml.totable: nested too deep");
  push_table(L, t, 0, idx);
  return 1;
}

/* x[i]: a number on 1-D, a view of row i otherwise; x.name: a method. */
static int t_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL)
      return 1;
    mml_tensor_box *b = lua_touserdata(L, 1);
    if (b->t && mml_tensor_get_property(L, b->t, lua_tostring(L, 2)))
      return 1;
    lua_pushnil(L);
    return 1;
  }
  mm_tensor *t = mml_check_tensor(L, 1, "index");
  if (mml_test_tensor(L, 2))
    return mml_index_by_tensor(L, t);
  if (lua_type(L, 2) != LUA_TNUMBER)
    mml_error(L, "moonml.index: a tensor is indexed by an integer or a method name, got %s",
              mml_typename(L, 2));
  if (t->ndim == 0)
    mml_error(L, "moonml.index: cannot index a 0-d tensor (use item())");
  int64_t i = check_index(L, 2, "index", t->shape[0]);
  if (t->ndim == 1) {
    push_element(L, t, &i);
    return 1;
  }
  mml_push_tensor(L, mm_select(mml_ctx(L), t, 0, i));
  return 1;
}

/* x[i] = v: a number fills row i, a tensor is copied into it (broadcast). */
static int t_newindex(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "newindex");
  if (lua_type(L, 2) == LUA_TSTRING && mml_tensor_set_property(L, t, lua_tostring(L, 2), 3))
    return 0;
  if (mml_test_tensor(L, 2))
    return mml_newindex_by_tensor(L, t);
  if (lua_type(L, 2) != LUA_TNUMBER)
    mml_error(L, "moonml.newindex: tensors take no fields; index with an integer, got %s",
              mml_typename(L, 2));
  if (t->ndim == 0)
    mml_error(L, "moonml.newindex: cannot index a 0-d tensor (use fill_)");
  int64_t i = check_index(L, 2, "newindex", t->shape[0]);
  mm_ctx *ctx = mml_ctx(L);
  if (mm_grad_enabled(ctx) && t->requires_grad && !t->grad_fn)
    mml_error(L, "moonml.newindex: a leaf tensor that requires grad cannot be changed in place "
                 "(use ml.no_grad or detach)");
  mm_tensor *src = mml_test_tensor(L, 3);
  if (!src && lua_type(L, 3) != LUA_TNUMBER && lua_type(L, 3) != LUA_TBOOLEAN)
    mml_error(L, "moonml.newindex: can assign a number or a tensor, got %s", mml_typename(L, 3));
  if (t->ndim == 1 && !src) {
    set_element(L, t, &i, 3, "newindex", true);
    return 0;
  }
  /* row lives in a Lua box, so that an error below still frees it */
  mm_tensor *row = mml_push_tensor(L, mm_select(ctx, t, 0, i));
  if (!src) {
    fill_value(L, row, 3, "newindex");
    return 0;
  }
  /* as in PyTorch's x[i] = v, leading size-1 dims of v beyond row's rank are dropped */
  int lead = src->ndim - row->ndim, d = 0;
  while (d < lead && src->shape[d] == 1)
    d++;
  mm_tensor *v = NULL;
  if (lead > 0 && d == lead)
    src = v = mm_view(ctx, src, row->ndim, src->shape + lead);
  int status = src ? mm_copy_(ctx, row, src) : -1;
  mm_release(v);
  if (status != 0)
    core_error_as(L, "newindex");
  return 0;
}

/* ------------------------------------------------------------------ copies, conversions */

static int m_clone(lua_State *L) {
  mml_push_tensor(L, mm_clone(mml_ctx(L), mml_check_tensor(L, 1, "clone")));
  return 1;
}

static int m_contiguous(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "contiguous");
  if (mm_is_contiguous(t)) {
    lua_settop(L, 1);
    return 1;
  }
  push_as(L, mm_contiguous(mml_ctx(L), t), "contiguous");
  return 1;
}

static int m_copy_(lua_State *L) {
  mm_tensor *dst = mml_check_tensor(L, 1, "copy_");
  mm_tensor *src = mml_check_tensor(L, 2, "copy_");
  if (mm_copy_(mml_ctx(L), dst, src) != 0)
    core_error_as(L, "copy_");
  lua_settop(L, 1);
  return 1;
}

static int m_fill_(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "fill_");
  fill_value(L, t, 2, "fill_");
  lua_settop(L, 1);
  return 1;
}

static int m_zero_(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "zero_");
  if (mm_fill_(mml_ctx(L), t, 0) != 0)
    core_error_as(L, "zero_");
  lua_settop(L, 1);
  return 1;
}

/* Returns x itself when it already has the dtype, as PyTorch does. */
static int convert(lua_State *L, const char *fn, mm_dtype dt) {
  mm_tensor *t = mml_check_tensor(L, 1, fn);
  if (t->dtype == dt) {
    lua_settop(L, 1);
    return 1;
  }
  push_as(L, mm_to_dtype(mml_ctx(L), t, dt), fn);
  return 1;
}

static int m_float(lua_State *L) { return convert(L, "float", MM_FLOAT32); }
static int m_double(lua_State *L) { return convert(L, "double", MM_FLOAT64); }
static int m_long(lua_State *L) { return convert(L, "long", MM_INT64); }
static int m_bool(lua_State *L) { return convert(L, "bool", MM_BOOL); }
static int m_to(lua_State *L) {
  mml_check_tensor(L, 1, "to");
  if (lua_isnoneornil(L, 2))
    mml_error(L, "moonml.to: expected a dtype name");
  return convert(L, "to", mml_check_dtype(L, 2, "to", MM_FLOAT32));
}

/* Identity of the underlying storage, for specs and debugging: views share it. */
static int m_storage_id(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "storage_id");
  lua_pushlightuserdata(L, t->storage);
  return 1;
}

static const luaL_Reg functions[] = {
    {"tensor", l_tensor},
    {"empty", l_empty},
    {"zeros", l_zeros},
    {"ones", l_ones},
    {"full", l_full},
    {"arange", l_arange},
    {"linspace", l_linspace},
    {"eye", l_eye},
    {"rand", l_rand},
    {"randn", l_randn},
    {"randint", l_randint},
    {"zeros_like", l_zeros_like},
    {"ones_like", l_ones_like},
    {"empty_like", l_empty_like},
    {"full_like", l_full_like},
    {"rand_like", l_rand_like},
    {"randn_like", l_randn_like},
    {"randint_like", l_randint_like},
    {"manual_seed", l_manual_seed},
    {"set_num_threads", l_set_num_threads},
    {"get_num_threads", l_get_num_threads},
    {"memory_stats", l_memory_stats},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"dim", m_dim},
    {"numel", m_numel},
    {"dtype", m_dtype},
    {"size", m_size},
    {"shape", m_shape},
    {"stride", m_stride},
    {"is_contiguous", m_is_contiguous},
    {"get", m_get},
    {"set", m_set},
    {"item", m_item},
    {"totable", m_totable},
    {"clone", m_clone},
    {"contiguous", m_contiguous},
    {"copy_", m_copy_},
    {"fill_", m_fill_},
    {"zero_", m_zero_},
    {"float", m_float},
    {"double", m_double},
    {"long", m_long},
    {"bool", m_bool},
    {"to", m_to},
    {"storage_id", m_storage_id},
    {NULL, NULL},
};

void mml_open_tensor(lua_State *L, const mml_open_state *st) {
  luaL_newmetatable(L, MML_TENSOR_MT);
  int mt = lua_gettop(L);
  lua_pushcfunction(L, t_gc);
  lua_setfield(L, mt, "__gc");
  lua_pushcfunction(L, t_gc);
  lua_setfield(L, mt, "__close");
  lua_pushvalue(L, st->ctxbox);
  lua_pushcclosure(L, t_len, 1);
  lua_setfield(L, mt, "__len");
  lua_pushvalue(L, st->ctxbox);
  lua_pushvalue(L, st->methods);
  lua_pushcclosure(L, t_index, 2);
  lua_setfield(L, mt, "__index");
  lua_pushvalue(L, st->ctxbox);
  lua_pushcclosure(L, t_newindex, 1);
  lua_setfield(L, mt, "__newindex");
  lua_pushliteral(L, "moonml.Tensor");
  lua_setfield(L, mt, "__name");
  lua_pop(L, 1);
  mml_register(L, st, st->module, functions);
  mml_register(L, st, st->methods, methods);
  mml_open_shape(L, st);
}
