/* Shape methods: view, reshape, squeeze, permute, narrow, slice, select, ... */
#include "binding.h"

#include <string.h>

/* sizes may include -1 (inferred), so the shape is read without the sign check */
static int read_shape_allow_infer(lua_State *L, int idx, const char *fn, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, idx) && !mml_test_tensor(L, idx)) {
    int len = (int)luaL_len(L, idx);
    if (len > MM_MAX_DIMS)
      mml_error(L, "moonml.%s: at most %d dimensions are supported", fn, MM_MAX_DIMS);
    for (int i = 1; i <= len; i++) {
      lua_rawgeti(L, idx, i);
      shape[n++] = mml_check_integer(L, -1, fn, "size");
      lua_pop(L, 1);
    }
    return n;
  }
  for (; !lua_isnone(L, idx + n); n++) {
    if (n == MM_MAX_DIMS)
      mml_error(L, "moonml.%s: at most %d dimensions are supported", fn, MM_MAX_DIMS);
    shape[n] = mml_check_integer(L, idx + n, fn, "size");
  }
  return n;
}

static int m_view_infer(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "view");
  int64_t shape[MM_MAX_DIMS];
  int n = read_shape_allow_infer(L, 2, "view", shape);
  mml_push_tensor(L, mm_view(mml_ctx(L), t, n, shape));
  return 1;
}

static int m_reshape(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "reshape");
  int64_t shape[MM_MAX_DIMS];
  int n = read_shape_allow_infer(L, 2, "reshape", shape);
  mml_push_tensor(L, mm_reshape(mml_ctx(L), t, n, shape));
  return 1;
}

/* Pushes r, or raises the core's error of `core_fn` under the name `fn` the user called
 * (x:view_as(y) fails inside mm_view, whose message says "moonml.view:"). */
static void push_as(lua_State *L, mm_tensor *r, const char *core_fn, const char *fn) {
  if (!r) {
    const char *msg = mm_ctx_error(mml_ctx(L));
    size_t n = strlen("moonml.") + strlen(core_fn) + 2; /* "moonml.<core_fn>: " */
    if (strncmp(msg, "moonml.", 7) == 0 && strncmp(msg + 7, core_fn, strlen(core_fn)) == 0 &&
        strncmp(msg + n - 2, ": ", 2) == 0)
      mml_error(L, "moonml.%s: %s", fn, msg + n);
    mml_core_error(L);
  }
  mml_push_tensor(L, r);
}

static int m_view_as(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "view_as");
  mm_tensor *o = mml_check_tensor(L, 2, "view_as");
  push_as(L, mm_view(mml_ctx(L), t, o->ndim, o->shape), "view", "view_as");
  return 1;
}

static int m_flatten(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "flatten");
  int last = t->ndim > 0 ? t->ndim - 1 : 0;
  int start = mml_opt_dim(L, 2, "flatten", t->ndim, 0);
  int end = mml_opt_dim(L, 3, "flatten", t->ndim, last);
  mml_push_tensor(L, mm_flatten(mml_ctx(L), t, start, end));
  return 1;
}

static int m_squeeze(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "squeeze");
  int dim = mml_opt_dim(L, 2, "squeeze", t->ndim, -1);
  mml_push_tensor(L, mm_squeeze(mml_ctx(L), t, t->ndim == 0 ? -1 : dim));
  return 1;
}

static int m_unsqueeze(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "unsqueeze");
  int dim = mml_check_dim(L, 2, "unsqueeze", t->ndim + 1);
  mml_push_tensor(L, mm_unsqueeze(mml_ctx(L), t, dim));
  return 1;
}

static int m_permute(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "permute");
  int dims[MM_MAX_DIMS];
  int given;
  if (lua_istable(L, 2)) {
    given = (int)luaL_len(L, 2);
    if (given != t->ndim)
      mml_error(L, "moonml.permute: %d dims given for a %d-D tensor", given, t->ndim);
    for (int d = 0; d < given; d++) {
      lua_rawgeti(L, 2, d + 1);
      dims[d] = mml_check_dim(L, -1, "permute", t->ndim);
      lua_pop(L, 1);
    }
  } else {
    given = lua_gettop(L) - 1;
    if (given != t->ndim)
      mml_error(L, "moonml.permute: %d dims given for a %d-D tensor", given, t->ndim);
    for (int d = 0; d < given; d++)
      dims[d] = mml_check_dim(L, d + 2, "permute", t->ndim);
  }
  mml_push_tensor(L, mm_permute(mml_ctx(L), t, dims));
  return 1;
}

static int m_transpose(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "transpose");
  int d0 = mml_check_dim(L, 2, "transpose", t->ndim);
  int d1 = mml_check_dim(L, 3, "transpose", t->ndim);
  mml_push_tensor(L, mm_transpose(mml_ctx(L), t, d0, d1));
  return 1;
}

static int m_t(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "t");
  if (t->ndim > 2)
    mml_error(L, "moonml.t: expects a tensor of at most 2 dimensions, got %d-D", t->ndim);
  mml_push_tensor(L, t->ndim < 2 ? mm_alias(mml_ctx(L), t) : mm_transpose(mml_ctx(L), t, 0, 1));
  return 1;
}

static int m_expand(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "expand");
  int64_t shape[MM_MAX_DIMS];
  int n = read_shape_allow_infer(L, 2, "expand", shape);
  mml_push_tensor(L, mm_expand(mml_ctx(L), t, n, shape));
  return 1;
}

static int m_expand_as(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "expand_as");
  mm_tensor *o = mml_check_tensor(L, 2, "expand_as");
  push_as(L, mm_expand(mml_ctx(L), t, o->ndim, o->shape), "expand", "expand_as");
  return 1;
}

static int64_t check_position(lua_State *L, int idx, const char *fn, const char *what,
                              int64_t size) {
  int64_t i = mml_check_integer(L, idx, fn, what);
  if (i == 0 || i > size + 1 || i < -size)
    mml_error(L, "moonml.%s: %s %d out of range for size %d", fn, what, (int)i, (int)size);
  return i > 0 ? i - 1 : i + size;
}

static int m_narrow(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "narrow");
  if (t->ndim == 0)
    mml_error(L, "moonml.narrow: cannot narrow a 0-d tensor");
  int dim = mml_check_dim(L, 2, "narrow", t->ndim);
  int64_t start = check_position(L, 3, "narrow", "start", t->shape[dim]);
  int64_t length = mml_check_integer(L, 4, "narrow", "length");
  mml_push_tensor(L, mm_narrow(mml_ctx(L), t, dim, start, length));
  return 1;
}

/* slice(dim, first, last[, step]): both ends included; negative counts from the end */
static int m_slice(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "slice");
  if (t->ndim == 0)
    mml_error(L, "moonml.slice: cannot slice a 0-d tensor");
  int dim = mml_check_dim(L, 2, "slice", t->ndim);
  int64_t size = t->shape[dim];
  int64_t first = lua_isnoneornil(L, 3) ? 0 : check_position(L, 3, "slice", "first", size);
  int64_t last = size - 1;
  if (!lua_isnoneornil(L, 4)) {
    int64_t l = mml_check_integer(L, 4, "slice", "last");
    if (l > size || l < -size)
      mml_error(L, "moonml.slice: last %d out of range for size %d", (int)l, (int)size);
    last = l > 0 ? l - 1 : (l == 0 ? -1 : l + size);
  }
  int64_t step = lua_isnoneornil(L, 5) ? 1 : mml_check_integer(L, 5, "slice", "step");
  if (last < first - 1)
    last = first - 1; /* an empty range */
  mml_push_tensor(L, mm_slice(mml_ctx(L), t, dim, first, last, step));
  return 1;
}

static int m_select(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "select");
  if (t->ndim == 0)
    mml_error(L, "moonml.select: cannot index a 0-d tensor");
  int dim = mml_check_dim(L, 2, "select", t->ndim);
  int64_t size = t->shape[dim];
  int64_t i = mml_check_integer(L, 3, "select", "index");
  if (i == 0 || i > size || i < -size)
    mml_error(L, "moonml.select: index %d out of range for size %d", (int)i, (int)size);
  mml_push_tensor(L, mm_select(mml_ctx(L), t, dim, i > 0 ? i - 1 : i + size));
  return 1;
}

static const luaL_Reg methods[] = {
    {"view", m_view_infer}, {"reshape", m_reshape},     {"view_as", m_view_as},
    {"flatten", m_flatten}, {"squeeze", m_squeeze},     {"unsqueeze", m_unsqueeze},
    {"permute", m_permute}, {"transpose", m_transpose}, {"t", m_t},
    {"expand", m_expand},   {"expand_as", m_expand_as}, {"narrow", m_narrow},
    {"slice", m_slice},     {"select", m_select},       {NULL, NULL},
};

void mml_open_shape(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->methods, methods);
}
