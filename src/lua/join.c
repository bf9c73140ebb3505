/* Lua binding for joining and splitting (src/ops/join.c): ml.cat, ml.stack (module
 * functions over a Lua array), x:split, x:chunk (Lua arrays of views), x:tile and
 * x["repeat"] (`repeat` is a Lua keyword, so x:repeat(...) does not parse), x:flip. */
#include "binding.h"

#include <stdlib.h>

/* The Lua array at idx as tensors, in a userdata left on the stack (freed by the
 * collector, so an error on the way leaks nothing). */
static const mm_tensor **check_list(lua_State *L, int idx, const char *fn, int64_t *n) {
  if (!lua_istable(L, idx))
    mml_error(L, "moonml.%s: expected a Lua array of tensors, got %s", fn, mml_typename(L, idx));
  lua_Integer len = luaL_len(L, idx);
  if (len < 1)
    mml_error(L, "moonml.%s: expected a non-empty list of tensors", fn);
  const mm_tensor **ts = lua_newuserdatauv(L, (size_t)len * sizeof *ts, 0);
  for (lua_Integer k = 1; k <= len; k++) {
    lua_rawgeti(L, idx, k);
    mml_tensor_box *b = luaL_testudata(L, -1, MML_TENSOR_MT);
    if (!b)
      mml_error(L, "moonml.%s: element %d of the list is a %s, not a tensor", fn, (int)k,
                mml_typename(L, -1));
    else if (!b->t)
      mml_error(L, "moonml.%s: element %d of the list is a closed tensor", fn, (int)k);
    else
      ts[k - 1] = b->t;
    lua_pop(L, 1);
  }
  *n = (int64_t)len;
  return ts;
}

/* ml.cat(tensors [, dim]): dim counts against the first tensor that is not 1-D empty */
static int f_cat(lua_State *L) {
  int64_t n;
  lua_settop(L, 2); /* the list's userdata goes above the arguments */
  const mm_tensor **ts = check_list(L, 1, "cat", &n);
  const mm_tensor *ref = ts[0];
  for (int64_t k = 0; k < n; k++)
    if (!(ts[k]->ndim == 1 && ts[k]->shape[0] == 0)) {
      ref = ts[k];
      break;
    }
  int dim = mml_opt_dim(L, 2, "cat", ref->ndim, 0);
  mml_push_tensor(L, mm_cat(mml_ctx(L), ts, n, dim));
  return 1;
}

/* ml.stack(tensors [, dim]): dim may be one past the last (ndim + 1) */
static int f_stack(lua_State *L) {
  int64_t n;
  lua_settop(L, 2);
  const mm_tensor **ts = check_list(L, 1, "stack", &n);
  int dim = mml_opt_dim(L, 2, "stack", ts[0]->ndim + 1, 0);
  mml_push_tensor(L, mm_stack(mml_ctx(L), ts, n, dim));
  return 1;
}

/* Pushes the pieces as a Lua array and frees the list. */
static int push_list(lua_State *L, mm_tensor **pieces, int64_t n) {
  if (!pieces)
    return mml_core_error(L);
  lua_createtable(L, (int)n, 0);
  for (int64_t k = 0; k < n; k++) {
    mml_push_tensor(L, pieces[k]);
    pieces[k] = NULL; /* owned by Lua now */
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
  free(pieces);
  return 1;
}

/* x:split(size [, dim]) or x:split({sizes} [, dim]) */
static int m_split(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "split");
  int dim = mml_opt_dim(L, 3, "split", t->ndim, 0);
  mm_ctx *ctx = mml_ctx(L);
  if (lua_istable(L, 2) && !mml_test_tensor(L, 2)) {
    lua_Integer n = luaL_len(L, 2);
    int64_t *sizes = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *sizes, 0);
    for (lua_Integer k = 1; k <= n; k++) {
      lua_rawgeti(L, 2, k);
      sizes[k - 1] = mml_check_integer(L, -1, "split", "a split size");
      lua_pop(L, 1);
    }
    return push_list(L, mm_split_sizes(ctx, t, dim, (int64_t)n, sizes), (int64_t)n);
  }
  if (lua_type(L, 2) != LUA_TNUMBER)
    mml_error(L, "moonml.split: expected a split size or a table of sizes, got %s",
              mml_typename(L, 2));
  int64_t size = mml_check_integer(L, 2, "split", "the split size");
  int64_t count = 0;
  mm_tensor **pieces = mm_split(ctx, t, dim, size, &count);
  return push_list(L, pieces, count);
}

/* x:chunk(n [, dim]) */
static int m_chunk(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "chunk");
  int64_t chunks = mml_check_integer(L, 2, "chunk", "the number of chunks");
  int dim = mml_opt_dim(L, 3, "chunk", t->ndim, 0);
  int64_t count = 0;
  mm_tensor **pieces = mm_chunk(mml_ctx(L), t, dim, chunks, &count);
  return push_list(L, pieces, count);
}

/* integers from idx on, or one table of them at idx; returns how many */
static int read_counts(lua_State *L, int idx, const char *fn, const char *what, int64_t *out) {
  int n = 0;
  if (lua_istable(L, idx) && !mml_test_tensor(L, idx)) {
    lua_Integer len = luaL_len(L, idx);
    if (len > MM_MAX_DIMS)
      mml_error(L, "moonml.%s: %d %s given, at most %d supported", fn, (int)len, what, MM_MAX_DIMS);
    for (lua_Integer k = 1; k <= len; k++) {
      lua_rawgeti(L, idx, k);
      out[n++] = mml_check_integer(L, -1, fn, what);
      lua_pop(L, 1);
    }
    if (!lua_isnone(L, idx + 1))
      mml_error(L, "moonml.%s: unexpected argument %d after the table of %s", fn, idx + 1, what);
    return n;
  }
  for (; !lua_isnone(L, idx + n); n++) {
    if (n == MM_MAX_DIMS)
      mml_error(L, "moonml.%s: more than %d %s given", fn, MM_MAX_DIMS, what);
    out[n] = mml_check_integer(L, idx + n, fn, what);
  }
  return n;
}

static int repeat_like(lua_State *L, const char *fn, bool tile) {
  mm_tensor *t = mml_check_tensor(L, 1, fn);
  int64_t reps[MM_MAX_DIMS];
  int n = read_counts(L, 2, fn, "repetitions", reps);
  mm_ctx *ctx = mml_ctx(L);
  mml_push_tensor(L, tile ? mm_tile(ctx, t, n, reps) : mm_repeat(ctx, t, n, reps));
  return 1;
}

/* x:tile(r1, r2, ...) or x:tile{r1, r2, ...}: torch.tile (fewer reps than dims allowed) */
static int m_tile(lua_State *L) { return repeat_like(L, "tile", true); }
/* x["repeat"](x, r1, ...): torch.Tensor.repeat (at least one rep per dim) */
static int m_repeat(lua_State *L) { return repeat_like(L, "repeat", false); }

/* x:flip(d1, d2, ...) or x:flip{d1, d2, ...} */
static int m_flip(lua_State *L) {
  mm_tensor *t = mml_check_tensor(L, 1, "flip");
  int64_t given[MM_MAX_DIMS];
  int n = read_counts(L, 2, "flip", "dims", given);
  if (n == 0)
    mml_error(L, "moonml.flip: expected one or more dims");
  int dims[MM_MAX_DIMS];
  int nd = t->ndim > 0 ? t->ndim : 1;
  for (int k = 0; k < n; k++) {
    if (given[k] == 0 || given[k] > nd || given[k] < -nd)
      mml_error(L, "moonml.flip: dim %I out of range for a %d-D tensor", (lua_Integer)given[k],
                t->ndim);
    dims[k] = (int)(given[k] > 0 ? given[k] - 1 : given[k] + nd);
  }
  mml_push_tensor(L, mm_flip(mml_ctx(L), t, n, dims));
  return 1;
}

static const luaL_Reg functions[] = {
    {"cat", f_cat},
    {"stack", f_stack},
    {NULL, NULL},
};

static const luaL_Reg methods[] = {
    {"split", m_split},   {"chunk", m_chunk}, {"tile", m_tile},
    {"repeat", m_repeat}, {"flip", m_flip},   {NULL, NULL},
};

void mml_open_join(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->module, functions);
  mml_register(L, st, st->methods, methods);
}
