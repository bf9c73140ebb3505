/* Fused optimizer updates: one pass over each parameter with its state, following
 * PyTorch 1.13's single-tensor implementations line by line (so trajectories match). */
#include "../core/internal.h"

#include <math.h>
#include <string.h>

/* Every tensor must be contiguous with param's shape and dtype (float32 or float64). */
static int check_like(mm_ctx *ctx, const char *op, const mm_tensor *param, const mm_tensor *t,
                      const char *what) {
  if (!t)
    return 0;
  bool same = t->ndim == param->ndim && t->dtype == param->dtype;
  for (int d = 0; same && d < t->ndim; d++)
    same = t->shape[d] == param->shape[d];
  if (!same) {
    char a[96], b[96];
    return mm_fail(ctx, "moonml.%s: %s has shape %s (%s), the parameter %s (%s)", op, what,
                   mm_shape_str(a, sizeof a, t->ndim, t->shape), mm_dtype_name(t->dtype),
                   mm_shape_str(b, sizeof b, param->ndim, param->shape),
                   mm_dtype_name(param->dtype));
  }
  if (!mm_is_contiguous(t))
    return mm_fail(ctx, "moonml.%s: %s must be contiguous", op, what);
  return 0;
}

static int check_param(mm_ctx *ctx, const char *op, const mm_tensor *param) {
  if (!mm_dtype_is_float(param->dtype))
    return mm_fail(ctx, "moonml.%s: parameters must be floating point, got %s", op,
                   mm_dtype_name(param->dtype));
  if (!mm_is_contiguous(param))
    return mm_fail(ctx, "moonml.%s: parameters must be contiguous", op);
  return 0;
}

int mm_optim_check(mm_ctx *ctx, const char *op, const mm_tensor *param, const mm_tensor *grad) {
  if (!grad)
    return 0;
  return check_param(ctx, op, param) || check_like(ctx, op, param, grad, "grad") ? -1 : 0;
}

/* The update loops are written once over an element type T (float or double) by these
 * small static functions, called through the dtype switch in each entry point. Options
 * that change the loop body (weight decay, momentum, amsgrad, ...) are compile-time
 * constants of separate loop copies, so that every copy vectorises; the functions are
 * cloned for AVX2 and AVX-512 where the compiler and loader can pick a clone at run
 * time. Each element's arithmetic is the same in every copy and clone (ISO C: no FMA
 * contraction), so trajectories do not depend on the CPU. The Makefile builds this file
 * with -fno-math-errno: sqrt that may set errno is a call GCC will not vectorise. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define OPTIM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define OPTIM_CLONES
#endif

#define SGD_BODY(T, WD, MOM, FIRST, NESTEROV)                                                      \
  for (int64_t i = 0; i < n; i++) {                                                                \
    T d = sign * g[i];                                                                             \
    if (WD)                                                                                        \
      d += wd * p[i];                                                                              \
    if (MOM) {                                                                                     \
      buf[i] = (FIRST) ? d : mom * buf[i] + (1 - damp) * d;                                        \
      d = (NESTEROV) ? d + mom * buf[i] : buf[i];                                                  \
    }                                                                                              \
    p[i] -= lr * d;                                                                                \
  }

#define LOOP_SGD(T)                                                                                \
  OPTIM_CLONES static void sgd_##T(T *restrict p, const T *restrict g, T *restrict buf, int64_t n, \
                                   bool first, const mm_sgd_opts *o) {                             \
    T lr = (T)o->lr, mom = (T)o->momentum, damp = (T)o->dampening, wd = (T)o->weight_decay;        \
    T sign = o->maximize ? (T)-1 : (T)1;                                                           \
    bool has_wd = wd != 0;                                                                         \
    if (mom == 0) {                                                                                \
      if (has_wd)                                                                                  \
        SGD_BODY(T, 1, 0, 0, 0)                                                                    \
      else                                                                                         \
        SGD_BODY(T, 0, 0, 0, 0)                                                                    \
    } else if (first) {                                                                            \
      if (o->nesterov)                                                                             \
        SGD_BODY(T, has_wd, 1, 1, 1)                                                               \
      else                                                                                         \
        SGD_BODY(T, has_wd, 1, 1, 0)                                                               \
    } else if (o->nesterov) {                                                                      \
      if (has_wd)                                                                                  \
        SGD_BODY(T, 1, 1, 0, 1)                                                                    \
      else                                                                                         \
        SGD_BODY(T, 0, 1, 0, 1)                                                                    \
    } else {                                                                                       \
      if (has_wd)                                                                                  \
        SGD_BODY(T, 1, 1, 0, 0)                                                                    \
      else                                                                                         \
        SGD_BODY(T, 0, 1, 0, 0)                                                                    \
    }                                                                                              \
  }
LOOP_SGD(float)
LOOP_SGD(double)

int mm_sgd_step(mm_ctx *ctx, mm_tensor *param, const mm_tensor *grad, mm_tensor *buf, bool first,
                const mm_sgd_opts *o) {
  if (!grad)
    return 0;
  if (o->momentum != 0 && !buf)
    return mm_fail(ctx, "moonml.SGD: momentum needs a buffer");
  if (check_param(ctx, "SGD", param) || check_like(ctx, "SGD", param, grad, "grad") ||
      check_like(ctx, "SGD", param, o->momentum != 0 ? buf : NULL, "momentum buffer"))
    return -1;
  int64_t n = mm_numel(param);
  if (param->dtype == MM_FLOAT32)
    sgd_float(mm_data(param), mm_data(grad), buf ? mm_data(buf) : NULL, n, first, o);
  else
    sgd_double(mm_data(param), mm_data(grad), buf ? mm_data(buf) : NULL, n, first, o);
  mm_bump_version(param);
  return 0;
}

/* DECAY: 0 none, 1 L2 (added to the gradient), 2 decoupled (AdamW) */
#define ADAM_BODY(T, SQRT, DECAY, AMS)                                                             \
  for (int64_t i = 0; i < n; i++) {                                                                \
    T gi = sign * g[i];                                                                            \
    if ((DECAY) == 2)                                                                              \
      p[i] *= decay;                                                                               \
    else if ((DECAY) == 1)                                                                         \
      gi += wd * p[i];                                                                             \
    m[i] = m[i] * b1 + one_b1 * gi;                                                                \
    v[i] = v[i] * b2 + one_b2 * gi * gi;                                                           \
    T second = v[i];                                                                               \
    if (AMS) {                                                                                     \
      vmax[i] = vmax[i] > v[i] ? vmax[i] : v[i];                                                   \
      second = vmax[i];                                                                            \
    }                                                                                              \
    T denom = SQRT(second) / bc2_sqrt + eps;                                                       \
    p[i] += -step_size * (m[i] / denom);                                                           \
  }

#define LOOP_ADAM(T, SQRT)                                                                         \
  OPTIM_CLONES static void adam_##T(T *restrict p, const T *restrict g, T *restrict m,             \
                                    T *restrict v, T *restrict vmax, int64_t n, int64_t step,      \
                                    const mm_adam_opts *o) {                                       \
    /* scalars computed in double and rounded once, as torch does with Python floats */            \
    double bc1 = 1 - pow(o->beta1, (double)step), bc2 = 1 - pow(o->beta2, (double)step);           \
    T b1 = (T)o->beta1, b2 = (T)o->beta2, one_b1 = (T)(1 - o->beta1), one_b2 = (T)(1 - o->beta2);  \
    T eps = (T)o->eps, wd = (T)o->weight_decay, sign = o->maximize ? (T)-1 : (T)1;                 \
    T decay = (T)(1 - o->lr * o->weight_decay);                                                    \
    T step_size = (T)(o->lr / bc1), bc2_sqrt = (T)sqrt(bc2);                                       \
    int kind = o->decoupled ? 2 : (wd != 0 ? 1 : 0);                                               \
    if (vmax) {                                                                                    \
      if (kind == 2)                                                                               \
        ADAM_BODY(T, SQRT, 2, 1)                                                                   \
      else if (kind == 1)                                                                          \
        ADAM_BODY(T, SQRT, 1, 1)                                                                   \
      else                                                                                         \
        ADAM_BODY(T, SQRT, 0, 1)                                                                   \
    } else {                                                                                       \
      if (kind == 2)                                                                               \
        ADAM_BODY(T, SQRT, 2, 0)                                                                   \
      else if (kind == 1)                                                                          \
        ADAM_BODY(T, SQRT, 1, 0)                                                                   \
      else                                                                                         \
        ADAM_BODY(T, SQRT, 0, 0)                                                                   \
    }                                                                                              \
  }
LOOP_ADAM(float, sqrtf)
LOOP_ADAM(double, sqrt)

int mm_adam_step(mm_ctx *ctx, mm_tensor *param, const mm_tensor *grad, mm_tensor *avg,
                 mm_tensor *avg_sq, mm_tensor *max_sq, int64_t step, const mm_adam_opts *o) {
  const char *op = o->decoupled ? "AdamW" : "Adam";
  if (!grad)
    return 0;
  if (!avg || !avg_sq || (o->amsgrad && !max_sq))
    return mm_fail(ctx, "moonml.%s: missing state tensors", op);
  if (check_param(ctx, op, param) || check_like(ctx, op, param, grad, "grad") ||
      check_like(ctx, op, param, avg, "exp_avg") ||
      check_like(ctx, op, param, avg_sq, "exp_avg_sq") ||
      check_like(ctx, op, param, o->amsgrad ? max_sq : NULL, "max_exp_avg_sq"))
    return -1;
  if (step < 1)
    return mm_fail(ctx, "moonml.%s: step must count from 1, got %lld", op, (long long)step);
  int64_t n = mm_numel(param);
  if (param->dtype == MM_FLOAT32)
    adam_float(mm_data(param), mm_data(grad), mm_data(avg), mm_data(avg_sq),
               o->amsgrad ? mm_data(max_sq) : NULL, n, step, o);
  else
    adam_double(mm_data(param), mm_data(grad), mm_data(avg), mm_data(avg_sq),
                o->amsgrad ? mm_data(max_sq) : NULL, n, step, o);
  mm_bump_version(param);
  return 0;
}

#define LOOP_RMSPROP(T, SQRT)                                                                      \
  OPTIM_CLONES static void rmsprop_##T(T *restrict p, const T *restrict g, T *restrict sq,         \
                                       T *restrict buf, T *restrict ga, int64_t n,                 \
                                       const mm_rmsprop_opts *o) {                                 \
    T lr = (T)o->lr, alpha = (T)o->alpha, eps = (T)o->eps, wd = (T)o->weight_decay;                \
    T mom = (T)o->momentum, sign = o->maximize ? (T)-1 : (T)1;                                     \
    for (int64_t i = 0; i < n; i++) {                                                              \
      T gi = sign * g[i];                                                                          \
      if (wd != 0)                                                                                 \
        gi += wd * p[i];                                                                           \
      sq[i] = sq[i] * alpha + (1 - alpha) * gi * gi;                                               \
      T avg;                                                                                       \
      if (ga) {                                                                                    \
        ga[i] += (gi - ga[i]) * (1 - alpha);                                                       \
        avg = SQRT(sq[i] - ga[i] * ga[i]) + eps;                                                   \
      } else {                                                                                     \
        avg = SQRT(sq[i]) + eps;                                                                   \
      }                                                                                            \
      if (mom > 0) {                                                                               \
        buf[i] = buf[i] * mom + gi / avg;                                                          \
        p[i] -= lr * buf[i];                                                                       \
      } else {                                                                                     \
        p[i] -= lr * (gi / avg);                                                                   \
      }                                                                                            \
    }                                                                                              \
  }
LOOP_RMSPROP(float, sqrtf)
LOOP_RMSPROP(double, sqrt)

int mm_rmsprop_step(mm_ctx *ctx, mm_tensor *param, const mm_tensor *grad, mm_tensor *square_avg,
                    mm_tensor *buf, mm_tensor *grad_avg, const mm_rmsprop_opts *o) {
  if (!grad)
    return 0;
  if (!square_avg || (o->momentum > 0 && !buf) || (o->centered && !grad_avg))
    return mm_fail(ctx, "moonml.RMSprop: missing state tensors");
  if (check_param(ctx, "RMSprop", param) || check_like(ctx, "RMSprop", param, grad, "grad") ||
      check_like(ctx, "RMSprop", param, square_avg, "square_avg") ||
      check_like(ctx, "RMSprop", param, o->momentum > 0 ? buf : NULL, "momentum_buffer") ||
      check_like(ctx, "RMSprop", param, o->centered ? grad_avg : NULL, "grad_avg"))
    return -1;
  int64_t n = mm_numel(param);
  void *b = o->momentum > 0 ? mm_data(buf) : NULL, *ga = o->centered ? mm_data(grad_avg) : NULL;
  if (param->dtype == MM_FLOAT32)
    rmsprop_float(mm_data(param), mm_data(grad), mm_data(square_avg), b, ga, n, o);
  else
    rmsprop_double(mm_data(param), mm_data(grad), mm_data(square_avg), b, ga, n, o);
  mm_bump_version(param);
  return 0;
}

#define LOOP_ADAGRAD(T, SQRT)                                                                      \
  OPTIM_CLONES static void adagrad_##T(T *restrict p, const T *restrict g, T *restrict sum,        \
                                       int64_t n, int64_t step, const mm_adagrad_opts *o) {        \
    T wd = (T)o->weight_decay, eps = (T)o->eps, sign = o->maximize ? (T)-1 : (T)1;                 \
    T clr = (T)(o->lr / (1 + (double)(step - 1) * o->lr_decay));                                   \
    for (int64_t i = 0; i < n; i++) {                                                              \
      T gi = sign * g[i];                                                                          \
      if (wd != 0)                                                                                 \
        gi += wd * p[i];                                                                           \
      sum[i] += gi * gi;                                                                           \
      p[i] -= clr * (gi / (SQRT(sum[i]) + eps));                                                   \
    }                                                                                              \
  }
LOOP_ADAGRAD(float, sqrtf)
LOOP_ADAGRAD(double, sqrt)

int mm_adagrad_step(mm_ctx *ctx, mm_tensor *param, const mm_tensor *grad, mm_tensor *state_sum,
                    int64_t step, const mm_adagrad_opts *o) {
  if (!grad)
    return 0;
  if (!state_sum)
    return mm_fail(ctx, "moonml.Adagrad: missing state tensors");
  if (check_param(ctx, "Adagrad", param) || check_like(ctx, "Adagrad", param, grad, "grad") ||
      check_like(ctx, "Adagrad", param, state_sum, "sum"))
    return -1;
  if (step < 1)
    return mm_fail(ctx, "moonml.Adagrad: step must count from 1, got %lld", (long long)step);
  int64_t n = mm_numel(param);
  if (param->dtype == MM_FLOAT32)
    adagrad_float(mm_data(param), mm_data(grad), mm_data(state_sum), n, step, o);
  else
    adagrad_double(mm_data(param), mm_data(grad), mm_data(state_sum), n, step, o);
  mm_bump_version(param);
  return 0;
}
