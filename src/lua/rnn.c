/* Lua binding for the recurrent layers (src/ops/rnn.c). nn.RNN, nn.LSTM and nn.GRU (Lua)
 * call it:
 *
 *   out, h_n[, c_n] = ml.rnn(mode, x, h0, c0, weights, opts)
 *
 * mode: "lstm", "gru", "rnn_tanh" or "rnn_relu"; h0 and c0 may be nil (zeros; c0 for
 * "lstm" only); weights: a Lua array in PyTorch's order (per layer, per direction: w_ih,
 * w_hh[, b_ih, b_hh]); opts: hidden_size (required), num_layers (1), bidirectional (false),
 * batch_first (false), bias (true), dropout (0), train (true), name (used in errors: "rnn"). */
#include "../ops/rnn.h"
#include "binding.h"

#include <string.h>

static const char *const mode_names[] = {"rnn_tanh", "rnn_relu", "lstm", "gru", NULL};

static bool opt_bool(lua_State *L, int idx, const char *key, const char *fn, bool def) {
  lua_getfield(L, idx, key);
  bool v = def;
  if (!lua_isnil(L, -1)) {
    if (!lua_isboolean(L, -1))
      mml_error(L, "moonml.%s: option %s must be a boolean, got %s", fn, key, mml_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static void check_keys(lua_State *L, int idx, const char *fn) {
  static const char *const known[] = {"hidden_size", "num_layers", "bidirectional",
                                      "batch_first", "bias",       "dropout",
                                      "train",       "name",       NULL};
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    bool ok = false;
    for (int i = 0; known[i] && !ok; i++)
      ok = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), known[i]) == 0;
    if (!ok) {
      lua_pushvalue(L, -2);
      mml_error(L, "moonml.%s: unknown option '%s'", fn, luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
  }
}

static mm_tensor *opt_tensor(lua_State *L, int idx, const char *fn, const char *what) {
  if (lua_isnoneornil(L, idx))
    return NULL;
  mm_tensor *t = mml_test_tensor(L, idx);
  if (!t)
    mml_error(L, "moonml.%s: %s must be a tensor or nil, got %s", fn, what, mml_typename(L, idx));
  return t;
}

static int m_rnn(lua_State *L) {
  const char *fn = "rnn";
  if (!lua_istable(L, 6) || mml_test_tensor(L, 6))
    mml_error(L, "moonml.rnn: options must be a table, got %s", mml_typename(L, 6));
  check_keys(L, 6, fn);
  lua_getfield(L, 6, "name");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      mml_error(L, "moonml.rnn: option name must be a string, got %s", mml_typename(L, -1));
    fn = lua_tostring(L, -1); /* stays on the stack, so alive */
  }
  int mode = -1;
  const char *ms = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;
  for (int i = 0; ms && mode_names[i]; i++)
    if (strcmp(ms, mode_names[i]) == 0)
      mode = i;
  if (mode < 0)
    mml_error(L, "moonml.%s: mode must be \"lstm\", \"gru\", \"rnn_tanh\" or \"rnn_relu\", got %s",
              fn, ms ? ms : mml_typename(L, 1));
  mm_tensor *x = mml_check_tensor(L, 2, fn);
  mm_tensor *h0 = opt_tensor(L, 3, fn, "h0");
  mm_tensor *c0 = opt_tensor(L, 4, fn, "c0");
  if (!lua_istable(L, 5) || mml_test_tensor(L, 5))
    mml_error(L, "moonml.%s: weights must be a Lua array of tensors, got %s", fn,
              mml_typename(L, 5));

  mm_rnn_opts o = {
      .name = fn, .mode = (mm_rnn_mode)mode, .num_layers = 1, .bias = true, .train = true};
  lua_getfield(L, 6, "hidden_size");
  o.hidden_size = mml_check_integer(L, -1, fn, "hidden_size");
  lua_pop(L, 1);
  lua_getfield(L, 6, "num_layers");
  if (!lua_isnil(L, -1))
    o.num_layers = mml_check_integer(L, -1, fn, "num_layers");
  lua_pop(L, 1);
  lua_getfield(L, 6, "dropout");
  if (!lua_isnil(L, -1))
    o.dropout = mml_check_number(L, -1, fn, "dropout");
  lua_pop(L, 1);
  o.bidirectional = opt_bool(L, 6, "bidirectional", fn, false);
  o.batch_first = opt_bool(L, 6, "batch_first", fn, false);
  o.bias = opt_bool(L, 6, "bias", fn, true);
  o.train = opt_bool(L, 6, "train", fn, true);

  lua_Integer n = luaL_len(L, 5);
  if (n < 0 || n > 1 << 20)
    mml_error(L, "moonml.%s: weights must be a Lua array of tensors", fn);
  /* a userdata, so that an error below frees it */
  const mm_tensor **ws = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *ws, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 5, i);
    ws[i - 1] = mml_test_tensor(L, -1);
    if (!ws[i - 1])
      mml_error(L, "moonml.%s: weight %d must be a tensor, got %s", fn, (int)i,
                mml_typename(L, -1));
    lua_pop(L, 1); /* the array keeps it alive */
  }
  mm_tensor *out, *h_n, *c_n;
  mml_check_status(L, mm_rnn(mml_ctx(L), &o, x, h0, c0, ws, (int)n, &out, &h_n, &c_n));
  mml_push_tensor(L, out);
  mml_push_tensor(L, h_n);
  if (c_n) {
    mml_push_tensor(L, c_n);
    return 3;
  }
  return 2;
}

void mml_open_rnn(lua_State *L, const mml_open_state *st) {
  static const luaL_Reg functions[] = {{"rnn", m_rnn}, {NULL, NULL}};
  mml_register(L, st, st->module, functions);
}
