/* Lua binding for the nn kernels (src/ops/linear.c, conv.c, pool.c, norm.c, activation.c,
 * loss.c): ml.linear, ml.conv2d, ml.conv_transpose2d, ml.max_pool2d, ml.avg_pool2d,
 * ml.adaptive_avg_pool2d, ml.batch_norm, ml.layer_norm, the losses, and the activations
 * leaky_relu, elu, gelu and softplus (also tensor methods). Options come last in a table,
 * with PyTorch's names and defaults. Class targets and returned max-pool indices count from 1. */
#include "../ops/nn.h"
#include "binding.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ arguments */

/* Is the value at idx an options table (a table that is not a tensor)? */
static bool is_opts(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TTABLE && !mml_test_tensor(L, idx);
}

/* Checks the options table at idx (absent or nil allowed) for unknown keys. Returns its
 * absolute index, or 0 when absent. */
static int check_options(lua_State *L, int idx, const char *fn, const char *const *keys) {
  if (lua_isnoneornil(L, idx))
    return 0;
  if (!is_opts(L, idx))
    mml_error(L, "moonml.%s: options must be a table, got %s", fn, mml_typename(L, idx));
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    bool known = false;
    for (int i = 0; keys[i] && !known; i++)
      known = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), keys[i]) == 0;
    if (!known) {
      lua_pushvalue(L, -2);
      mml_error(L, "moonml.%s: unknown option '%s'", fn, luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
  }
  return idx;
}

/* Pushes opts[key] (nil when opts is 0). */
static int get_opt(lua_State *L, int opts, const char *key) {
  if (!opts) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, opts, key);
}

static double opt_number(lua_State *L, int opts, const char *fn, const char *key, double def) {
  double v = def;
  if (get_opt(L, opts, key) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TNUMBER)
      mml_error(L, "moonml.%s: option %s must be a number, got %s", fn, key, mml_typename(L, -1));
    v = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

static int64_t opt_integer(lua_State *L, int opts, const char *fn, const char *key, int64_t def) {
  int64_t v = def;
  if (get_opt(L, opts, key) != LUA_TNIL)
    v = mml_check_integer(L, -1, fn, key);
  lua_pop(L, 1);
  return v;
}

static bool opt_bool(lua_State *L, int opts, const char *fn, const char *key, bool def) {
  bool v = def;
  if (get_opt(L, opts, key) != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TBOOLEAN)
      mml_error(L, "moonml.%s: option %s must be a boolean, got %s", fn, key, mml_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* A tensor option (nil when absent); the tensor stays referenced by the options table. */
static mm_tensor *opt_tensor(lua_State *L, int opts, const char *fn, const char *key) {
  mm_tensor *t = NULL;
  if (get_opt(L, opts, key) != LUA_TNIL) {
    t = mml_test_tensor(L, -1);
    if (!t)
      mml_error(L, "moonml.%s: option %s must be a tensor, got %s", fn, key, mml_typename(L, -1));
  }
  lua_pop(L, 1);
  return t;
}

/* A positional tensor that may be nil. */
static mm_tensor *arg_tensor_or_nil(lua_State *L, int idx, const char *fn) {
  if (lua_isnoneornil(L, idx))
    return NULL;
  return mml_check_tensor(L, idx, fn);
}

/* One size or a pair at the value on top of the stack (popped): 3 or {3, 2}. */
static void pair_from_top(lua_State *L, const char *fn, const char *what, int64_t out[2]) {
  if (lua_type(L, -1) == LUA_TNUMBER) {
    out[0] = out[1] = mml_check_integer(L, -1, fn, what);
  } else if (is_opts(L, -1)) {
    if (luaL_len(L, -1) != 2)
      mml_error(L, "moonml.%s: %s must be a number or a table of 2 numbers, got a table of %d", fn,
                what, (int)luaL_len(L, -1));
    for (int i = 0; i < 2; i++) {
      lua_rawgeti(L, -1, i + 1);
      out[i] = mml_check_integer(L, -1, fn, what);
      lua_pop(L, 1);
    }
  } else {
    mml_error(L, "moonml.%s: %s must be a number or a table of 2 numbers, got %s", fn, what,
              mml_typename(L, -1));
  }
  lua_pop(L, 1);
}

static void opt_pair(lua_State *L, int opts, const char *fn, const char *key, int64_t def,
                     int64_t out[2]) {
  if (get_opt(L, opts, key) == LUA_TNIL) {
    lua_pop(L, 1);
    out[0] = out[1] = def;
    return;
  }
  pair_from_top(L, fn, key, out);
}

static void arg_pair(lua_State *L, int idx, const char *fn, const char *what, int64_t out[2]) {
  lua_pushvalue(L, idx);
  pair_from_top(L, fn, what, out);
}

static mm_reduction opt_reduction(lua_State *L, int opts, const char *fn, bool batchmean_ok) {
  mm_reduction r = MM_REDUCTION_MEAN;
  if (get_opt(L, opts, "reduction") != LUA_TNIL) {
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (s && strcmp(s, "none") == 0)
      r = MM_REDUCTION_NONE;
    else if (s && strcmp(s, "mean") == 0)
      r = MM_REDUCTION_MEAN;
    else if (s && strcmp(s, "sum") == 0)
      r = MM_REDUCTION_SUM;
    else if (s && batchmean_ok && strcmp(s, "batchmean") == 0)
      r = MM_REDUCTION_BATCHMEAN;
    else
      mml_error(L, "moonml.%s: reduction must be 'none', 'mean'%s or 'sum', got %s", fn,
                batchmean_ok ? ", 'batchmean'" : "", s ? s : mml_typename(L, -1));
  }
  lua_pop(L, 1);
  return r;
}

/* Class labels from Lua (1-based; int64 tensor, float tensor of whole numbers or a flat
 * table of integers) as a new 0-based int64 tensor. A label equal to ignore_index
 * (has_ignore) becomes -1, which is then the core's ignore_index. */
static mm_tensor *class_target(lua_State *L, int idx, const char *fn, int64_t nclass,
                               bool has_ignore, int64_t ignore_index) {
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *src;
  if (is_opts(L, idx)) {
    int64_t n = (int64_t)luaL_len(L, idx);
    src = mm_empty(ctx, MM_INT64, 1, &n);
    if (!src)
      mml_core_error(L);
    int64_t *p = mm_data(src);
    for (int64_t i = 0; i < n; i++) {
      lua_rawgeti(L, idx, (lua_Integer)(i + 1));
      int isint = 0;
      lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
      lua_pop(L, 1);
      if (!isint) {
        mm_release(src);
        mml_error(L, "moonml.%s: target table must hold integer class labels (element %I)", fn,
                  (lua_Integer)(i + 1));
      }
      p[i] = (int64_t)v;
    }
  } else {
    mm_tensor *t = mml_test_tensor(L, idx);
    if (!t) {
      mml_error(L, "moonml.%s: expected target to be a tensor of class labels, got %s", fn,
                mml_typename(L, idx));
      return NULL;
    }
    if (t->dtype == MM_BOOL)
      mml_error(L, "moonml.%s: expected target to be int64 class labels, got bool", fn);
    src = t->dtype == MM_INT64 ? mm_clone(ctx, t) : mm_contiguous(ctx, t);
    if (!src)
      mml_core_error(L);
  }
  mm_tensor *out = src->dtype == MM_INT64 ? src : mm_empty(ctx, MM_INT64, src->ndim, src->shape);
  if (!out) {
    mm_release(src);
    mml_core_error(L);
  }
  int64_t n = mm_numel(src), *o = mm_data(out);
  for (int64_t i = 0; i < n; i++) {
    int64_t v;
    if (src->dtype == MM_INT64) {
      v = ((const int64_t *)mm_data(src))[i];
    } else {
      double d = src->dtype == MM_FLOAT32 ? (double)((const float *)mm_data(src))[i]
                                          : ((const double *)mm_data(src))[i];
      if (!(d == floor(d) && fabs(d) < 9e18)) {
        mm_release(src);
        mm_release(out);
        mml_error(L, "moonml.%s: target must hold whole class labels, got %f", fn, d);
      }
      v = (int64_t)d;
    }
    if (has_ignore && v == ignore_index) {
      o[i] = -1;
    } else if (v < 1 || v > nclass) {
      if (out != src)
        mm_release(out);
      mm_release(src);
      mml_error(L, "moonml.%s: target %I out of range for %I classes", fn, (lua_Integer)v,
                (lua_Integer)nclass);
    } else {
      o[i] = v - 1;
    }
  }
  if (out != src)
    mm_release(src);
  return out;
}

/* Pushes the result of a core call, releasing the temporary target first. */
static int push_result(lua_State *L, mm_tensor *r, mm_tensor *tmp) {
  if (!r) {
    mm_release(tmp);
    return mml_core_error(L);
  }
  mm_release(tmp);
  mml_push_tensor(L, r);
  return 1;
}

/* ------------------------------------------------------------------ convolution */

static const char *const conv_keys[] = {"stride", "padding", "dilation", "groups", NULL};
static const char *const convt_keys[] = {"stride",   "padding", "output_padding",
                                         "dilation", "groups",  NULL};

/* x, w [, bias] [, opts]: the bias slot may hold the options table. */
static int split_bias_opts(lua_State *L, const char *fn, mm_tensor **bias) {
  if (is_opts(L, 3)) {
    *bias = NULL;
    if (!lua_isnone(L, 4))
      mml_error(L, "moonml.%s: unexpected argument 4 after the options table", fn);
    return 3;
  }
  *bias = arg_tensor_or_nil(L, 3, fn);
  return 4;
}

/* ml.linear(x, weight [, bias] [, name]) = x W^T + b (src/ops/linear.c). name (a string)
 * is how error messages name the caller: nn.Linear passes "nn.Linear". */
static int l_linear(lua_State *L) {
  const char *fn = lua_type(L, 4) == LUA_TSTRING ? lua_tostring(L, 4) : "linear";
  mm_tensor *x = mml_check_tensor(L, 1, fn), *w = mml_check_tensor(L, 2, fn);
  mm_tensor *b = lua_isnoneornil(L, 3) ? NULL : mml_check_tensor(L, 3, fn);
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *y = mm_linear(ctx, x, w, b);
  if (!y) {
    const char *msg = mm_ctx_error(ctx);
    if (strncmp(msg, "moonml.linear:", 14) == 0)
      mml_error(L, "moonml.%s:%s", fn, msg + 14);
  }
  mml_push_tensor(L, y);
  return 1;
}

/* ml.conv2d(x, weight [, bias] [, {stride, padding, dilation, groups}]); padding may be
 * "valid" or "same" (stride 1). */
static int l_conv2d(lua_State *L) {
  const char *fn = "conv2d";
  mm_tensor *x = mml_check_tensor(L, 1, fn), *w = mml_check_tensor(L, 2, fn), *b;
  int opts = check_options(L, split_bias_opts(L, fn, &b), fn, conv_keys);
  mm_conv_opts o;
  memset(&o, 0, sizeof o);
  opt_pair(L, opts, fn, "stride", 1, o.stride);
  opt_pair(L, opts, fn, "dilation", 1, o.dilation);
  o.groups = opt_integer(L, opts, fn, "groups", 1);
  if (get_opt(L, opts, "padding") == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (strcmp(s, "valid") == 0) {
      o.padding[0] = o.padding[1] = 0;
    } else if (strcmp(s, "same") == 0) {
      if (o.stride[0] != 1 || o.stride[1] != 1)
        mml_error(L, "moonml.%s: padding='same' is not supported for strided convolutions", fn);
      for (int i = 0; i < 2; i++) {
        int64_t total = w->ndim == 4 ? o.dilation[i] * (w->shape[2 + i] - 1) : 0;
        if (total % 2 != 0)
          mml_error(L,
                    "moonml.%s: padding='same' needs an odd (dilated) kernel size here, got "
                    "kernel size %I",
                    fn, (lua_Integer)(total + 1));
        o.padding[i] = total / 2;
      }
    } else {
      mml_error(L, "moonml.%s: padding must be a number, a pair, 'valid' or 'same', got '%s'", fn,
                s);
    }
  } else {
    lua_pop(L, 1);
    opt_pair(L, opts, fn, "padding", 0, o.padding);
  }
  mml_push_tensor(L, mm_conv2d(mml_ctx(L), x, w, b, &o));
  return 1;
}

/* ml.conv_transpose2d(x, weight [, bias] [, {stride, padding, output_padding, dilation,
 * groups}]) */
static int l_conv_transpose2d(lua_State *L) {
  const char *fn = "conv_transpose2d";
  mm_tensor *x = mml_check_tensor(L, 1, fn), *w = mml_check_tensor(L, 2, fn), *b;
  int opts = check_options(L, split_bias_opts(L, fn, &b), fn, convt_keys);
  mm_conv_opts o;
  opt_pair(L, opts, fn, "stride", 1, o.stride);
  opt_pair(L, opts, fn, "padding", 0, o.padding);
  opt_pair(L, opts, fn, "output_padding", 0, o.output_padding);
  opt_pair(L, opts, fn, "dilation", 1, o.dilation);
  o.groups = opt_integer(L, opts, fn, "groups", 1);
  mml_push_tensor(L, mm_conv_transpose2d(mml_ctx(L), x, w, b, &o));
  return 1;
}

/* ------------------------------------------------------------------ pooling */

static const char *const max_pool_keys[] = {"stride",    "padding",        "dilation",
                                            "ceil_mode", "return_indices", NULL};
static const char *const avg_pool_keys[] = {
    "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override", NULL};

/* kernel at 2, options at 3; stride defaults to the kernel size */
static int pool_opts(lua_State *L, const char *fn, const char *const *keys, mm_pool_opts *o) {
  memset(o, 0, sizeof *o);
  if (lua_isnoneornil(L, 2))
    mml_error(L, "moonml.%s: expected a kernel size as argument 2, got %s", fn, mml_typename(L, 2));
  arg_pair(L, 2, fn, "kernel_size", o->kernel);
  int opts = check_options(L, 3, fn, keys);
  if (get_opt(L, opts, "stride") == LUA_TNIL) {
    lua_pop(L, 1);
    o->stride[0] = o->kernel[0];
    o->stride[1] = o->kernel[1];
  } else {
    pair_from_top(L, fn, "stride", o->stride);
  }
  opt_pair(L, opts, fn, "padding", 0, o->padding);
  o->ceil_mode = opt_bool(L, opts, fn, "ceil_mode", false);
  return opts;
}

/* ml.max_pool2d(x, kernel_size [, {stride, padding, dilation, ceil_mode, return_indices}])
 * -> values [, indices (1-based positions h * W + w + 1 within each plane)] */
static int l_max_pool2d(lua_State *L) {
  const char *fn = "max_pool2d";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  mm_pool_opts o;
  int opts = pool_opts(L, fn, max_pool_keys, &o);
  opt_pair(L, opts, fn, "dilation", 1, o.dilation);
  bool ret = opt_bool(L, opts, fn, "return_indices", false);
  mm_ctx *ctx = mml_ctx(L);
  mm_tensor *idx = NULL;
  mm_tensor *out = mm_max_pool2d(ctx, x, &o, ret ? &idx : NULL);
  if (!out)
    return mml_core_error(L);
  mml_push_tensor(L, out);
  if (!ret)
    return 1;
  /* the core's indices are saved for backward: hand Lua a 1-based copy */
  mm_tensor *lua_idx = mm_clone(ctx, idx);
  mm_release(idx);
  if (!lua_idx)
    return mml_core_error(L);
  int64_t n = mm_numel(lua_idx), *p = mm_data(lua_idx);
  for (int64_t i = 0; i < n; i++)
    p[i] += 1;
  mml_push_tensor(L, lua_idx);
  return 2;
}

/* ml.avg_pool2d(x, kernel_size [, {stride, padding, ceil_mode, count_include_pad,
 * divisor_override}]) */
static int l_avg_pool2d(lua_State *L) {
  const char *fn = "avg_pool2d";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  mm_pool_opts o;
  int opts = pool_opts(L, fn, avg_pool_keys, &o);
  o.count_include_pad = opt_bool(L, opts, fn, "count_include_pad", true);
  o.divisor_override = opt_integer(L, opts, fn, "divisor_override", 0);
  if (opts) {
    lua_getfield(L, opts, "divisor_override");
    bool given = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (given && o.divisor_override < 1)
      mml_error(L, "moonml.%s: divisor_override must be positive, got %I", fn,
                (lua_Integer)o.divisor_override);
  }
  mml_push_tensor(L, mm_avg_pool2d(mml_ctx(L), x, &o));
  return 1;
}

/* ml.adaptive_avg_pool2d(x, output_size) */
static int l_adaptive_avg_pool2d(lua_State *L) {
  const char *fn = "adaptive_avg_pool2d";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  if (lua_isnoneornil(L, 2))
    mml_error(L, "moonml.%s: expected an output size as argument 2, got %s", fn,
              mml_typename(L, 2));
  int64_t size[2];
  arg_pair(L, 2, fn, "output_size", size);
  mml_push_tensor(L, mm_adaptive_avg_pool2d(mml_ctx(L), x, size));
  return 1;
}

/* ------------------------------------------------------------------ normalisation */

static const char *const bn_keys[] = {"training", "momentum", "eps", NULL};
static const char *const ln_keys[] = {"eps", NULL};

/* Positional tensors (or nil) from first up to the options table or last. Returns the
 * options index (0 when none). */
static int tensors_then_opts(lua_State *L, const char *fn, int first, int last, mm_tensor **out,
                             const char *const *keys) {
  int top = lua_gettop(L), opts_at = 0;
  for (int i = first; i <= last; i++) {
    out[i - first] = NULL;
    if (!opts_at && is_opts(L, i))
      opts_at = i;
    else if (!opts_at)
      out[i - first] = arg_tensor_or_nil(L, i, fn);
  }
  if (!opts_at && top > last)
    opts_at = last + 1;
  if (opts_at && top > opts_at)
    mml_error(L, "moonml.%s: unexpected argument %d after the options table", fn, opts_at + 1);
  return opts_at ? check_options(L, opts_at, fn, keys) : 0;
}

/* ml.batch_norm(x, running_mean, running_var [, weight, bias] [, {training = false,
 * momentum = 0.1, eps = 1e-5}]) */
static int l_batch_norm(lua_State *L) {
  const char *fn = "batch_norm";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  mm_tensor *t[4];
  int opts = tensors_then_opts(L, fn, 2, 5, t, bn_keys);
  bool training = opt_bool(L, opts, fn, "training", false);
  double momentum = opt_number(L, opts, fn, "momentum", 0.1);
  double eps = opt_number(L, opts, fn, "eps", 1e-5);
  mml_push_tensor(L, mm_batch_norm(mml_ctx(L), x, t[0], t[1], t[2], t[3], training, momentum, eps));
  return 1;
}

/* ml.layer_norm(x, normalized_shape [, weight, bias] [, {eps = 1e-5}]) */
static int l_layer_norm(lua_State *L) {
  const char *fn = "layer_norm";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  int64_t shape[MM_MAX_DIMS];
  int nd;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    shape[0] = mml_check_integer(L, 2, fn, "normalized_shape");
    nd = 1;
  } else if (is_opts(L, 2)) {
    int next;
    nd = mml_check_shape(L, 2, fn, shape, &next);
  } else {
    return mml_error(L, "moonml.%s: normalized_shape must be a number or a table of sizes, got %s",
                     fn, mml_typename(L, 2));
  }
  mm_tensor *t[2];
  int opts = tensors_then_opts(L, fn, 3, 4, t, ln_keys);
  double eps = opt_number(L, opts, fn, "eps", 1e-5);
  mml_push_tensor(L, mm_layer_norm(mml_ctx(L), x, nd, shape, t[0], t[1], eps));
  return 1;
}

/* ------------------------------------------------------------------ activations */

/* x:leaky_relu([negative_slope | {negative_slope = 0.01}]) */
static double number_or_opt(lua_State *L, int idx, const char *fn, const char *key, double def) {
  if (lua_type(L, idx) == LUA_TNUMBER)
    return (double)lua_tonumber(L, idx);
  const char *const keys[] = {key, NULL};
  int opts = check_options(L, idx, fn, keys);
  return opt_number(L, opts, fn, key, def);
}

static int m_leaky_relu(lua_State *L) {
  mm_tensor *x = mml_check_tensor(L, 1, "leaky_relu");
  double slope = number_or_opt(L, 2, "leaky_relu", "negative_slope", 0.01);
  mml_push_tensor(L, mm_leaky_relu(mml_ctx(L), x, slope));
  return 1;
}

static int m_elu(lua_State *L) {
  mm_tensor *x = mml_check_tensor(L, 1, "elu");
  double alpha = number_or_opt(L, 2, "elu", "alpha", 1.0);
  mml_push_tensor(L, mm_elu(mml_ctx(L), x, alpha));
  return 1;
}

/* x:gelu(["none" | "tanh" | {approximate = "none"}]) */
static int m_gelu(lua_State *L) {
  const char *fn = "gelu";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  const char *approx = "none";
  if (lua_type(L, 2) == LUA_TSTRING) {
    approx = lua_tostring(L, 2);
  } else {
    static const char *const keys[] = {"approximate", NULL};
    int opts = check_options(L, 2, fn, keys);
    int ty = get_opt(L, opts, "approximate");
    if (ty != LUA_TNIL && ty != LUA_TSTRING)
      mml_error(L, "moonml.%s: approximate must be 'none' or 'tanh', got %s", fn,
                mml_typename(L, -1));
    if (ty == LUA_TSTRING)
      approx = lua_tostring(L, -1);
    lua_pop(L, 1); /* approx stays alive in the options table */
  }
  bool tanh_approx = strcmp(approx, "tanh") == 0;
  if (!tanh_approx && strcmp(approx, "none") != 0)
    mml_error(L, "moonml.%s: approximate must be 'none' or 'tanh', got '%s'", fn, approx);
  mml_push_tensor(L, mm_gelu(mml_ctx(L), x, tanh_approx));
  return 1;
}

/* x:softplus([beta [, threshold]] | {beta = 1, threshold = 20}) */
static int m_softplus(lua_State *L) {
  const char *fn = "softplus";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  double beta = 1, threshold = 20;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    beta = (double)lua_tonumber(L, 2);
    if (!lua_isnoneornil(L, 3))
      threshold = mml_check_number(L, 3, fn, "threshold");
  } else {
    static const char *const keys[] = {"beta", "threshold", NULL};
    int opts = check_options(L, 2, fn, keys);
    beta = opt_number(L, opts, fn, "beta", 1);
    threshold = opt_number(L, opts, fn, "threshold", 20);
  }
  mml_push_tensor(L, mm_softplus(mml_ctx(L), x, beta, threshold));
  return 1;
}

/* ------------------------------------------------------------------ losses */

static const char *const ce_keys[] = {"weight", "ignore_index", "label_smoothing", "reduction",
                                      NULL};
static const char *const nll_keys[] = {"weight", "ignore_index", "reduction", NULL};
static const char *const red_keys[] = {"reduction", NULL};
static const char *const bce_keys[] = {"weight", "reduction", NULL};
static const char *const bcel_keys[] = {"weight", "pos_weight", "reduction", NULL};
static const char *const kl_keys[] = {"reduction", "log_target", NULL};
static const char *const hinge_keys[] = {"margin", "reduction", NULL};
static const char *const mm_keys[] = {"p", "margin", "weight", "reduction", NULL};

/* Number of classes of a class-loss input: dim 1, or dim 0 of an unbatched input. */
static int64_t class_count(const mm_tensor *x) {
  return x->ndim == 1 ? x->shape[0] : (x->ndim >= 2 ? x->shape[1] : 0);
}

static void check_two_args(lua_State *L, const char *fn) {
  if (lua_isnoneornil(L, 2))
    mml_error(L, "moonml.%s: expected a target as argument 2, got %s", fn, mml_typename(L, 2));
}

/* ml.cross_entropy(logits, target [, {weight, ignore_index = -100, label_smoothing = 0,
 * reduction = "mean"}]): target 1-based class labels, or class probabilities of the
 * logits' shape */
static int l_cross_entropy(lua_State *L) {
  const char *fn = "cross_entropy";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  check_two_args(L, fn);
  int opts = check_options(L, 3, fn, ce_keys);
  mm_tensor *w = opt_tensor(L, opts, fn, "weight");
  int64_t ignore = opt_integer(L, opts, fn, "ignore_index", -100);
  double ls = opt_number(L, opts, fn, "label_smoothing", 0);
  mm_reduction red = opt_reduction(L, opts, fn, false);
  mm_tensor *t = mml_test_tensor(L, 2), *tmp = NULL;
  bool prob = t && mm_dtype_is_float(t->dtype) && t->ndim == x->ndim;
  if (!prob && x->ndim >= 1) {
    tmp = class_target(L, 2, fn, class_count(x), true, ignore);
    t = tmp;
    ignore = -1;
  } else if (!t) {
    mml_check_tensor(L, 2, fn);
  }
  return push_result(L, mm_cross_entropy(mml_ctx(L), x, t, w, ignore, ls, red), tmp);
}

/* ml.nll_loss(log_probs, target [, {weight, ignore_index = -100, reduction = "mean"}]) */
static int l_nll_loss(lua_State *L) {
  const char *fn = "nll_loss";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  check_two_args(L, fn);
  int opts = check_options(L, 3, fn, nll_keys);
  mm_tensor *w = opt_tensor(L, opts, fn, "weight");
  int64_t ignore = opt_integer(L, opts, fn, "ignore_index", -100);
  mm_reduction red = opt_reduction(L, opts, fn, false);
  mm_tensor *t = mml_test_tensor(L, 2), *tmp = NULL;
  if (x->ndim >= 1) {
    tmp = class_target(L, 2, fn, class_count(x), true, ignore);
    t = tmp;
    ignore = -1;
  } else if (!t) {
    mml_check_tensor(L, 2, fn);
  }
  return push_result(L, mm_nll_loss(mml_ctx(L), x, t, w, ignore, red), tmp);
}

/* ml.multi_margin_loss(x, target [, {p = 1, margin = 1, weight, reduction = "mean"}]) */
static int l_multi_margin_loss(lua_State *L) {
  const char *fn = "multi_margin_loss";
  mm_tensor *x = mml_check_tensor(L, 1, fn);
  check_two_args(L, fn);
  int opts = check_options(L, 3, fn, mm_keys);
  int64_t p = opt_integer(L, opts, fn, "p", 1);
  double margin = opt_number(L, opts, fn, "margin", 1);
  mm_tensor *w = opt_tensor(L, opts, fn, "weight");
  mm_reduction red = opt_reduction(L, opts, fn, false);
  if (p != 1 && p != 2)
    mml_error(L, "moonml.%s: p must be 1 or 2, got %I", fn, (lua_Integer)p);
  mm_tensor *t = mml_test_tensor(L, 2), *tmp = NULL;
  if (x->ndim >= 1) {
    tmp = class_target(L, 2, fn, class_count(x), false, 0);
    t = tmp;
  } else if (!t) {
    mml_check_tensor(L, 2, fn);
  }
  return push_result(L, mm_multi_margin_loss(mml_ctx(L), x, t, (int)p, margin, w, red), tmp);
}

static int l_mse_loss(lua_State *L) {
  const char *fn = "mse_loss";
  mm_tensor *x = mml_check_tensor(L, 1, fn), *t = mml_check_tensor(L, 2, fn);
  int opts = check_options(L, 3, fn, red_keys);
  mml_push_tensor(L, mm_mse_loss(mml_ctx(L), x, t, opt_reduction(L, opts, fn, false)));
  return 1;
}

static int l_l1_loss(lua_State *L) {
  const char *fn = "l1_loss";
  mm_tensor *x = mml_check_tensor(L, 1, fn), *t = mml_check_tensor(L, 2, fn);
  int opts = check_options(L, 3, fn, red_keys);
  mml_push_tensor(L, mm_l1_loss(mml_ctx(L), x, t, opt_reduction(L, opts, fn, false)));
  return 1;
}

static int l_binary_cross_entropy(lua_State *L) {
  const char *fn = "binary_cross_entropy";
  mm_tensor *x = mml_check_tensor(L, 1, fn), *t = mml_check_tensor(L, 2, fn);
  int opts = check_options(L, 3, fn, bce_keys);
  mm_tensor *w = opt_tensor(L, opts, fn, "weight");
  mm_reduction red = opt_reduction(L, opts, fn, false);
  mml_push_tensor(L, mm_binary_cross_entropy(mml_ctx(L), x, t, w, red));
  return 1;
}

static int l_binary_cross_entropy_with_logits(lua_State *L) {
  const char *fn = "binary_cross_entropy_with_logits";
  mm_tensor *x = mml_check_tensor(L, 1, fn), *t = mml_check_tensor(L, 2, fn);
  int opts = check_options(L, 3, fn, bcel_keys);
  mm_tensor *w = opt_tensor(L, opts, fn, "weight");
  mm_tensor *pw = opt_tensor(L, opts, fn, "pos_weight");
  mm_reduction red = opt_reduction(L, opts, fn, false);
  mml_push_tensor(L, mm_binary_cross_entropy_with_logits(mml_ctx(L), x, t, w, pw, red));
  return 1;
}

static int l_kl_div(lua_State *L) {
  const char *fn = "kl_div";
  mm_tensor *x = mml_check_tensor(L, 1, fn), *t = mml_check_tensor(L, 2, fn);
  int opts = check_options(L, 3, fn, kl_keys);
  mm_reduction red = opt_reduction(L, opts, fn, true);
  bool log_target = opt_bool(L, opts, fn, "log_target", false);
  mml_push_tensor(L, mm_kl_div(mml_ctx(L), x, t, red, log_target));
  return 1;
}

static int l_hinge_embedding_loss(lua_State *L) {
  const char *fn = "hinge_embedding_loss";
  mm_tensor *x = mml_check_tensor(L, 1, fn), *t = mml_check_tensor(L, 2, fn);
  int opts = check_options(L, 3, fn, hinge_keys);
  double margin = opt_number(L, opts, fn, "margin", 1);
  mm_reduction red = opt_reduction(L, opts, fn, false);
  mml_push_tensor(L, mm_hinge_embedding_loss(mml_ctx(L), x, t, margin, red));
  return 1;
}

/* ------------------------------------------------------------------ registration */

static const luaL_Reg methods[] = {
    {"leaky_relu", m_leaky_relu}, {"elu", m_elu}, {"gelu", m_gelu},
    {"softplus", m_softplus},     {NULL, NULL},
};

static const luaL_Reg functions[] = {
    {"linear", l_linear},
    {"conv2d", l_conv2d},
    {"conv_transpose2d", l_conv_transpose2d},
    {"max_pool2d", l_max_pool2d},
    {"avg_pool2d", l_avg_pool2d},
    {"adaptive_avg_pool2d", l_adaptive_avg_pool2d},
    {"batch_norm", l_batch_norm},
    {"layer_norm", l_layer_norm},
    {"cross_entropy", l_cross_entropy},
    {"nll_loss", l_nll_loss},
    {"multi_margin_loss", l_multi_margin_loss},
    {"mse_loss", l_mse_loss},
    {"l1_loss", l_l1_loss},
    {"binary_cross_entropy", l_binary_cross_entropy},
    {"binary_cross_entropy_with_logits", l_binary_cross_entropy_with_logits},
    {"kl_div", l_kl_div},
    {"hinge_embedding_loss", l_hinge_embedding_loss},
    {NULL, NULL},
};

void mml_open_nn_functional(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->methods, methods);
  mml_register(L, st, st->module, functions);
}
