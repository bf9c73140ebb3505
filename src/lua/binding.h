/* Shared by the binding files: how a tensor lives in Lua, argument checks that raise
 * "moonml.<name>: ..." errors, and registration. No algorithm lives in the binding. */
#ifndef MM_BINDING_H
#define MM_BINDING_H

#include "../moonml.h"

#include <lauxlib.h>
#include <lua.h>

#define MML_TENSOR_MT "moonml.Tensor"

/* Every binding function has the context box as upvalue 1. */
typedef struct {
  mm_ctx *ctx;
  size_t unreported;     /* native bytes not yet told to the collector */
  size_t collect_at;     /* live native bytes that call for a full collection */
  size_t since_full;     /* native bytes allocated since the last full collection */
  const void *tensor_mt; /* the tensor metatable (also the box's user value 1) */
} mml_ctx_box;

typedef struct {
  mm_tensor *t; /* NULL once closed */
} mml_tensor_box;

/* Stack slots used while luaopen_moonml_core runs. */
typedef struct {
  int module;  /* the table `require "moonml.core"` returns */
  int methods; /* tensor methods (init.lua also makes each a module function) */
  int ctxbox;  /* the context userdata, upvalue 1 of every function */
} mml_open_state;

mm_ctx *mml_ctx(lua_State *L);
/* Raises a Lua error; fmt must start with "moonml.<name>: ". Never returns. */
int mml_error(lua_State *L, const char *fmt, ...);
/* Raises the core's last error message. */
int mml_core_error(lua_State *L);

mm_tensor *mml_test_tensor(lua_State *L, int idx);
/* The tensor box at idx (its t is NULL once closed), or NULL for any other value. */
mml_tensor_box *mml_test_box(lua_State *L, int idx);
mm_tensor *mml_check_tensor(lua_State *L, int idx, const char *fn);
/* Pushes t as a new Lua tensor (taking the reference). NULL raises the core's error. */
mm_tensor *mml_push_tensor(lua_State *L, mm_tensor *t);
/* Raises the core's error when status != 0; otherwise nothing. */
void mml_check_status(lua_State *L, int status);

/* Lua's 1-based (or negative) dim at idx to a 0-based one for a tensor of ndim dims. */
int mml_check_dim(lua_State *L, int idx, const char *fn, int ndim);
int mml_opt_dim(lua_State *L, int idx, const char *fn, int ndim, int def);
int64_t mml_check_integer(lua_State *L, int idx, const char *fn, const char *what);
double mml_check_number(lua_State *L, int idx, const char *fn, const char *what);
/* A shape given as separate integers from idx on, or as one table at idx.
 * Returns ndim and leaves *next at the first argument after the shape. */
int mml_check_shape(lua_State *L, int idx, const char *fn, int64_t *shape, int *next);
/* A dtype name at idx (string), or nil for def. */
mm_dtype mml_check_dtype(lua_State *L, int idx, const char *fn, mm_dtype def);
/* The options table at idx (may be absent or nil): reads dtype; rejects unknown keys
 * except those listed in `extra` (NULL-terminated, may be NULL). */
mm_dtype mml_opt_dtype(lua_State *L, int idx, const char *fn, mm_dtype def,
                       const char *const *extra);
const char *mml_typename(lua_State *L, int idx); /* "tensor" for tensors */

/* Registers regs with the context upvalue into the table at index `table`. */
void mml_register(lua_State *L, const mml_open_state *st, int table, const luaL_Reg *regs);

/* Each area registers its functions (module) and methods (tensor methods). */
void mml_open_tensor(lua_State *L, const mml_open_state *st);
void mml_open_shape(lua_State *L, const mml_open_state *st);
void mml_open_elementwise(lua_State *L, const mml_open_state *st);
void mml_open_reduce(lua_State *L, const mml_open_state *st);
void mml_open_linalg(lua_State *L, const mml_open_state *st);
void mml_open_rec(lua_State *L, const mml_open_state *st);
void mml_open_rec_neumf(lua_State *L, const mml_open_state *st);
void mml_open_autograd(lua_State *L, const mml_open_state *st);
void mml_open_optim(lua_State *L, const mml_open_state *st);
void mml_open_math(lua_State *L, const mml_open_state *st);
void mml_open_random(lua_State *L, const mml_open_state *st);
void mml_open_bytes(lua_State *L, const mml_open_state *st);
void mml_open_index(lua_State *L, const mml_open_state *st);
void mml_open_join(lua_State *L, const mml_open_state *st);
void mml_open_sort(lua_State *L, const mml_open_state *st);
void mml_open_stats(lua_State *L, const mml_open_state *st);
void mml_open_io(lua_State *L, const mml_open_state *st);
void mml_open_clock(lua_State *L, const mml_open_state *st);
void mml_open_image(lua_State *L, const mml_open_state *st);
void mml_open_term(lua_State *L, const mml_open_state *st);
void mml_open_nn_functional(lua_State *L, const mml_open_state *st);
void mml_open_rnn(lua_State *L, const mml_open_state *st);
void mml_open_files(lua_State *L, const mml_open_state *st);
void mml_open_json(lua_State *L, const mml_open_state *st);

/* autograd properties of tensors (x.grad, x.requires_grad, ...): 1 if key was one */
int mml_tensor_get_property(lua_State *L, mm_tensor *t, const char *key);
int mml_tensor_set_property(lua_State *L, mm_tensor *t, const char *key, int vidx);

/* x[key] and x[key] = v with a tensor key (src/lua/index.c): key at 2, value at 3 */
int mml_index_by_tensor(lua_State *L, mm_tensor *t);
int mml_newindex_by_tensor(lua_State *L, mm_tensor *t);

#endif
