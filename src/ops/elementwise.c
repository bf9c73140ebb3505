/* Element-wise ops: binary arithmetic and comparisons with NumPy/PyTorch broadcasting and
 * PyTorch's type promotion, unary math, their in-place forms, and allclose.
 *
 * Promotion between two tensors follows bool < int64 < float32 < float64 whatever their
 * number of dimensions. This is a deliberate simplification of PyTorch, where a 0-d tensor
 * raises the dtype only across categories: here a 0-d float64 tensor plus a float32 tensor
 * gives float64 (PyTorch: float32); every other pairing of moonml's dtypes agrees.
 * A scalar (a Lua number) follows PyTorch's wrapped-number rule: it raises only the
 * category, to that category's default (bool tensor + 2 -> int64, int64 tensor + 2.5 ->
 * float32, float32 tensor + 2 -> float32). Integer scalars are exact up to 2^53 (mm_scalar
 * holds a double).
 *
 * Each call picks one kernel for (op, compute dtype). Kernels get byte strides and run a
 * plain loop over contiguous data (or data against a broadcast scalar), which the compiler
 * vectorises. An operand whose dtype differs from the compute dtype is converted first (a
 * temporary copy); broadcast operands are header copies on the stack, never allocated. */
#include "../autograd/autograd.h"
#include "../core/internal.h"
#include "vmath.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

static const char *const binary_names[MM_BINARY_OP_COUNT] = {
    "add", "sub", "mul", "div", "pow", "eq", "ne", "lt", "le", "gt", "ge"};
static const char *const binary_names_[MM_BINARY_OP_COUNT] = {
    "add_", "sub_", "mul_", "div_", "pow_", "eq_", "ne_", "lt_", "le_", "gt_", "ge_"};
static const char *const unary_names[MM_UNARY_OP_COUNT] = {"neg",  "abs",  "exp",     "log",
                                                           "sqrt", "tanh", "sigmoid", "relu"};
static const char *const unary_names_[MM_UNARY_OP_COUNT] = {"neg_",  "abs_",  "exp_",     "log_",
                                                            "sqrt_", "tanh_", "sigmoid_", "relu_"};

const char *mm_binary_op_name(mm_binary_op op) {
  return (unsigned)op < MM_BINARY_OP_COUNT ? binary_names[op] : "?";
}

const char *mm_unary_op_name(mm_unary_op op) {
  return (unsigned)op < MM_UNARY_OP_COUNT ? unary_names[op] : "?";
}

/* ------------------------------------------------------------------ kernels */

/* Per-call constants: alpha of add-with-alpha, the exponent of pow by a scalar; backward
 * kernels may take a second float constant (f32b / f64b). */
typedef struct {
  float f32;
  double f64;
  int64_t i64;
  uint8_t b;
  float f32b;
  double f64b;
} kparam;

/* int64 arithmetic wraps around as in PyTorch; unsigned arithmetic keeps it defined. */
#define IADD(x, y) ((int64_t)((uint64_t)(x) + (uint64_t)(y)))
#define ISUB(x, y) ((int64_t)((uint64_t)(x) - (uint64_t)(y)))
#define IMUL(x, y) ((int64_t)((uint64_t)(x) * (uint64_t)(y)))

/* PyTorch's integer power: wraps on overflow; a negative exponent gives 0 except for the
 * bases 1 and -1. */
static inline int64_t ipow(int64_t base, int64_t exp) {
  if (exp < 0)
    return base == 1 ? 1 : base == -1 ? ((exp & 1) ? -1 : 1) : 0;
  uint64_t r = 1, b = (uint64_t)base;
  while (exp) {
    if (exp & 1)
      r *= b;
    b *= b;
    exp >>= 1;
  }
  return (int64_t)r;
}

/* out = EXPR(x, y) for operands of type TI into TO. Three dense shapes get their own plain
 * loop (both contiguous, scalar on the right, scalar on the left); the rest is strided. */
#define BINARY_KERNEL(name, TI, TO, EXPR)                                                          \
  static void name(char **p, const int64_t *s, int64_t n, void *arg) {                             \
    const kparam *kp = arg;                                                                        \
    (void)kp;                                                                                      \
    const int64_t so = (int64_t)sizeof(TO), si = (int64_t)sizeof(TI);                              \
    TO *o = (TO *)p[0];                                                                            \
    const TI *pa = (const TI *)p[1], *pb = (const TI *)p[2];                                       \
    if (s[0] == so && s[1] == si && s[2] == si) {                                                  \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const TI x = pa[i], y = pb[i];                                                             \
        o[i] = (TO)(EXPR);                                                                         \
      }                                                                                            \
    } else if (s[0] == so && s[1] == si && s[2] == 0) {                                            \
      const TI y = pb[0];                                                                          \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const TI x = pa[i];                                                                        \
        o[i] = (TO)(EXPR);                                                                         \
      }                                                                                            \
    } else if (s[0] == so && s[1] == 0 && s[2] == si) {                                            \
      const TI x = pa[0];                                                                          \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const TI y = pb[i];                                                                        \
        o[i] = (TO)(EXPR);                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      char *q = p[0];                                                                              \
      const char *qa = p[1], *qb = p[2];                                                           \
      for (int64_t i = 0; i < n; i++, q += s[0], qa += s[1], qb += s[2]) {                         \
        const TI x = *(const TI *)qa, y = *(const TI *)qb;                                         \
        *(TO *)q = (TO)(EXPR);                                                                     \
      }                                                                                            \
    }                                                                                              \
  }

#define UNARY_KERNEL(name, TI, TO, EXPR)                                                           \
  static void name(char **p, const int64_t *s, int64_t n, void *arg) {                             \
    const kparam *kp = arg;                                                                        \
    (void)kp;                                                                                      \
    if (s[0] == (int64_t)sizeof(TO) && s[1] == (int64_t)sizeof(TI)) {                              \
      TO *o = (TO *)p[0];                                                                          \
      const TI *pa = (const TI *)p[1];                                                             \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const TI x = pa[i];                                                                        \
        o[i] = (TO)(EXPR);                                                                         \
      }                                                                                            \
    } else {                                                                                       \
      char *q = p[0];                                                                              \
      const char *qa = p[1];                                                                       \
      for (int64_t i = 0; i < n; i++, q += s[0], qa += s[1]) {                                     \
        const TI x = *(const TI *)qa;                                                              \
        *(TO *)q = (TO)(EXPR);                                                                     \
      }                                                                                            \
    }                                                                                              \
  }

#define COMPARE_KERNELS(sfx, T)                                                                    \
  BINARY_KERNEL(k_eq_##sfx, T, uint8_t, x == y)                                                    \
  BINARY_KERNEL(k_ne_##sfx, T, uint8_t, x != y)                                                    \
  BINARY_KERNEL(k_lt_##sfx, T, uint8_t, x < y)                                                     \
  BINARY_KERNEL(k_le_##sfx, T, uint8_t, x <= y)                                                    \
  BINARY_KERNEL(k_gt_##sfx, T, uint8_t, x > y)                                                     \
  BINARY_KERNEL(k_ge_##sfx, T, uint8_t, x >= y)

BINARY_KERNEL(k_add_f32, float, float, x + y)
BINARY_KERNEL(k_sub_f32, float, float, x - y)
BINARY_KERNEL(k_mul_f32, float, float, x *y)
BINARY_KERNEL(k_div_f32, float, float, x / y)
BINARY_KERNEL(k_pow_f32, float, float, powf(x, y))
BINARY_KERNEL(k_adda_f32, float, float, x + kp->f32 * y)
COMPARE_KERNELS(f32, float)

BINARY_KERNEL(k_add_f64, double, double, x + y)
BINARY_KERNEL(k_sub_f64, double, double, x - y)
BINARY_KERNEL(k_mul_f64, double, double, x *y)
BINARY_KERNEL(k_div_f64, double, double, x / y)
BINARY_KERNEL(k_pow_f64, double, double, pow(x, y))
BINARY_KERNEL(k_adda_f64, double, double, x + kp->f64 * y)
COMPARE_KERNELS(f64, double)

BINARY_KERNEL(k_add_i64, int64_t, int64_t, IADD(x, y))
BINARY_KERNEL(k_sub_i64, int64_t, int64_t, ISUB(x, y))
BINARY_KERNEL(k_mul_i64, int64_t, int64_t, IMUL(x, y))
BINARY_KERNEL(k_pow_i64, int64_t, int64_t, ipow(x, y))
BINARY_KERNEL(k_adda_i64, int64_t, int64_t, IADD(x, IMUL(kp->i64, y)))
COMPARE_KERNELS(i64, int64_t)

/* bool arithmetic as PyTorch: + is or, * is and (0/1 bytes) */
BINARY_KERNEL(k_add_b, uint8_t, uint8_t, x | y)
BINARY_KERNEL(k_mul_b, uint8_t, uint8_t, x &y)
BINARY_KERNEL(k_adda_b, uint8_t, uint8_t, x | (kp->b & y))
COMPARE_KERNELS(b, uint8_t)

/* index of add-with-alpha (a + alpha * b) after the public ops */
#define OP_ADD_ALPHA MM_BINARY_OP_COUNT

static const mm_inner_fn binary_kernels[MM_BINARY_OP_COUNT + 1][MM_DTYPE_COUNT] = {
    [MM_OP_ADD] = {[MM_FLOAT32] = k_add_f32,
                   [MM_FLOAT64] = k_add_f64,
                   [MM_INT64] = k_add_i64,
                   [MM_BOOL] = k_add_b},
    [MM_OP_SUB] = {[MM_FLOAT32] = k_sub_f32, [MM_FLOAT64] = k_sub_f64, [MM_INT64] = k_sub_i64},
    [MM_OP_MUL] = {[MM_FLOAT32] = k_mul_f32,
                   [MM_FLOAT64] = k_mul_f64,
                   [MM_INT64] = k_mul_i64,
                   [MM_BOOL] = k_mul_b},
    [MM_OP_DIV] = {[MM_FLOAT32] = k_div_f32, [MM_FLOAT64] = k_div_f64},
    [MM_OP_POW] = {[MM_FLOAT32] = k_pow_f32, [MM_FLOAT64] = k_pow_f64, [MM_INT64] = k_pow_i64},
    [MM_OP_EQ] = {[MM_FLOAT32] = k_eq_f32,
                  [MM_FLOAT64] = k_eq_f64,
                  [MM_INT64] = k_eq_i64,
                  [MM_BOOL] = k_eq_b},
    [MM_OP_NE] = {[MM_FLOAT32] = k_ne_f32,
                  [MM_FLOAT64] = k_ne_f64,
                  [MM_INT64] = k_ne_i64,
                  [MM_BOOL] = k_ne_b},
    [MM_OP_LT] = {[MM_FLOAT32] = k_lt_f32,
                  [MM_FLOAT64] = k_lt_f64,
                  [MM_INT64] = k_lt_i64,
                  [MM_BOOL] = k_lt_b},
    [MM_OP_LE] = {[MM_FLOAT32] = k_le_f32,
                  [MM_FLOAT64] = k_le_f64,
                  [MM_INT64] = k_le_i64,
                  [MM_BOOL] = k_le_b},
    [MM_OP_GT] = {[MM_FLOAT32] = k_gt_f32,
                  [MM_FLOAT64] = k_gt_f64,
                  [MM_INT64] = k_gt_i64,
                  [MM_BOOL] = k_gt_b},
    [MM_OP_GE] = {[MM_FLOAT32] = k_ge_f32,
                  [MM_FLOAT64] = k_ge_f64,
                  [MM_INT64] = k_ge_i64,
                  [MM_BOOL] = k_ge_b},
    [OP_ADD_ALPHA] = {[MM_FLOAT32] = k_adda_f32,
                      [MM_FLOAT64] = k_adda_f64,
                      [MM_INT64] = k_adda_i64,
                      [MM_BOOL] = k_adda_b},
};

/* relu keeps NaN (NaN < 0 is false) and -0.0, as PyTorch does */
UNARY_KERNEL(k_neg_f32, float, float, -x)
UNARY_KERNEL(k_abs_f32, float, float, fabsf(x))
UNARY_KERNEL(k_exp_f32, float, float, expf(x))
UNARY_KERNEL(k_log_f32, float, float, logf(x))
UNARY_KERNEL(k_sqrt_f32, float, float, sqrtf(x))
UNARY_KERNEL(k_tanh_f32, float, float, tanh_f32(x)) /* vmath.h: vectorised, unlike tanhf */
UNARY_KERNEL(k_sigmoid_f32, float, float, sigm_f32(x))
UNARY_KERNEL(k_relu_f32, float, float, x < 0.0f ? 0.0f : x)

UNARY_KERNEL(k_neg_f64, double, double, -x)
UNARY_KERNEL(k_abs_f64, double, double, fabs(x))
UNARY_KERNEL(k_exp_f64, double, double, exp(x))
UNARY_KERNEL(k_log_f64, double, double, log(x))
UNARY_KERNEL(k_sqrt_f64, double, double, sqrt(x))
UNARY_KERNEL(k_tanh_f64, double, double, tanh(x))
UNARY_KERNEL(k_sigmoid_f64, double, double, 1.0 / (1.0 + exp(-x)))
UNARY_KERNEL(k_relu_f64, double, double, x < 0.0 ? 0.0 : x)

UNARY_KERNEL(k_neg_i64, int64_t, int64_t, ISUB(0, x))
UNARY_KERNEL(k_abs_i64, int64_t, int64_t, x < 0 ? ISUB(0, x) : x)
UNARY_KERNEL(k_relu_i64, int64_t, int64_t, x < 0 ? 0 : x)

static const mm_inner_fn unary_kernels[MM_UNARY_OP_COUNT][MM_DTYPE_COUNT] = {
    [MM_OP_NEG] = {[MM_FLOAT32] = k_neg_f32, [MM_FLOAT64] = k_neg_f64, [MM_INT64] = k_neg_i64},
    [MM_OP_ABS] = {[MM_FLOAT32] = k_abs_f32, [MM_FLOAT64] = k_abs_f64, [MM_INT64] = k_abs_i64},
    [MM_OP_EXP] = {[MM_FLOAT32] = k_exp_f32, [MM_FLOAT64] = k_exp_f64},
    [MM_OP_LOG] = {[MM_FLOAT32] = k_log_f32, [MM_FLOAT64] = k_log_f64},
    [MM_OP_SQRT] = {[MM_FLOAT32] = k_sqrt_f32, [MM_FLOAT64] = k_sqrt_f64},
    [MM_OP_TANH] = {[MM_FLOAT32] = k_tanh_f32, [MM_FLOAT64] = k_tanh_f64},
    [MM_OP_SIGMOID] = {[MM_FLOAT32] = k_sigmoid_f32, [MM_FLOAT64] = k_sigmoid_f64},
    [MM_OP_RELU] = {[MM_FLOAT32] = k_relu_f32, [MM_FLOAT64] = k_relu_f64, [MM_INT64] = k_relu_i64},
};

/* float tensor ** scalar: PyTorch replaces these exponents by cheaper exact forms (which also
 * decide corner cases such as (-inf) ** 0.5 = nan and (-0) ** -0.5 = -inf), powf otherwise. */
UNARY_KERNEL(k_pow2_f32, float, float, x *x)
UNARY_KERNEL(k_pow3_f32, float, float, x *x *x)
UNARY_KERNEL(k_powm1_f32, float, float, 1.0f / x)
UNARY_KERNEL(k_powm2_f32, float, float, 1.0f / (x * x))
UNARY_KERNEL(k_powh_f32, float, float, sqrtf(x))
UNARY_KERNEL(k_powmh_f32, float, float, 1.0f / sqrtf(x))
UNARY_KERNEL(k_pows_f32, float, float, powf(x, kp->f32))
UNARY_KERNEL(k_pow2_f64, double, double, x *x)
UNARY_KERNEL(k_pow3_f64, double, double, x *x *x)
UNARY_KERNEL(k_powm1_f64, double, double, 1.0 / x)
UNARY_KERNEL(k_powm2_f64, double, double, 1.0 / (x * x))
UNARY_KERNEL(k_powh_f64, double, double, sqrt(x))
UNARY_KERNEL(k_powmh_f64, double, double, 1.0 / sqrt(x))
UNARY_KERNEL(k_pows_f64, double, double, pow(x, kp->f64))

static mm_inner_fn pow_scalar_kernel(mm_dtype dt, double e, kparam *kp) {
  bool f = dt == MM_FLOAT32;
  kp->f32 = (float)e;
  kp->f64 = e;
  if (e == 2)
    return f ? k_pow2_f32 : k_pow2_f64;
  if (e == 3)
    return f ? k_pow3_f32 : k_pow3_f64;
  if (e == -1)
    return f ? k_powm1_f32 : k_powm1_f64;
  if (e == -2)
    return f ? k_powm2_f32 : k_powm2_f64;
  if (e == 0.5)
    return f ? k_powh_f32 : k_powh_f64;
  if (e == -0.5)
    return f ? k_powmh_f32 : k_powmh_f64;
  return f ? k_pows_f32 : k_pows_f64;
}

/* ------------------------------------------------------------------ backward kernels */

/* out = EXPR(g, x, y): the gradient g and two operands, any of them broadcast. */
#define TERNARY_KERNEL(name, T, EXPR)                                                              \
  static void name(char **p, const int64_t *s, int64_t n, void *arg) {                             \
    const kparam *kp = arg;                                                                        \
    (void)kp;                                                                                      \
    const int64_t e = (int64_t)sizeof(T);                                                          \
    if (s[0] == e && s[1] == e && s[2] == e && s[3] == e) {                                        \
      T *o = (T *)p[0];                                                                            \
      const T *pg = (const T *)p[1], *px = (const T *)p[2], *py = (const T *)p[3];                 \
      for (int64_t i = 0; i < n; i++) {                                                            \
        const T g = pg[i], x = px[i], y = py[i];                                                   \
        o[i] = (T)(EXPR);                                                                          \
      }                                                                                            \
    } else {                                                                                       \
      char *q = p[0];                                                                              \
      const char *qg = p[1], *qx = p[2], *qy = p[3];                                               \
      for (int64_t i = 0; i < n; i++, q += s[0], qg += s[1], qx += s[2], qy += s[3]) {             \
        const T g = *(const T *)qg, x = *(const T *)qx, y = *(const T *)qy;                        \
        *(T *)q = (T)(EXPR);                                                                       \
      }                                                                                            \
    }                                                                                              \
  }

/* x ** e as the forward's tensor ** scalar computes it (the exact forms PyTorch uses) */
static inline float powk_f32(float x, float e) {
  if (e == 0.0f)
    return 1.0f;
  if (e == 1.0f)
    return x;
  if (e == 2.0f)
    return x * x;
  if (e == 3.0f)
    return x * x * x;
  if (e == -1.0f)
    return 1.0f / x;
  if (e == -2.0f)
    return 1.0f / (x * x);
  if (e == 0.5f)
    return sqrtf(x);
  if (e == -0.5f)
    return 1.0f / sqrtf(x);
  return powf(x, e);
}

static inline double powk_f64(double x, double e) {
  if (e == 0.0)
    return 1.0;
  if (e == 1.0)
    return x;
  if (e == 2.0)
    return x * x;
  if (e == 3.0)
    return x * x * x;
  if (e == -1.0)
    return 1.0 / x;
  if (e == -2.0)
    return 1.0 / (x * x);
  if (e == 0.5)
    return sqrt(x);
  if (e == -0.5)
    return 1.0 / sqrt(x);
  return pow(x, e);
}

/* Unary backward: x is the incoming gradient, y the saved input (abs, log) or output (the
 * rest). PyTorch's formulas: abs passes sgn(input) (0 at 0 and NaN), relu blocks where the
 * output is <= 0 (so its gradient at 0 is 0). */
BINARY_KERNEL(k_abs_bw_f32, float, float, x *(float)((y > 0.0f) - (y < 0.0f)))
BINARY_KERNEL(k_log_bw_f32, float, float, x / y)
BINARY_KERNEL(k_exp_bw_f32, float, float, x *y)
BINARY_KERNEL(k_sqrt_bw_f32, float, float, x / (2.0f * y))
BINARY_KERNEL(k_tanh_bw_f32, float, float, x *(1.0f - y * y))
BINARY_KERNEL(k_sigmoid_bw_f32, float, float, x *(1.0f - y) * y)
BINARY_KERNEL(k_relu_bw_f32, float, float, y <= 0.0f ? 0.0f : x)
BINARY_KERNEL(k_abs_bw_f64, double, double, x *(double)((y > 0.0) - (y < 0.0)))
BINARY_KERNEL(k_log_bw_f64, double, double, x / y)
BINARY_KERNEL(k_exp_bw_f64, double, double, x *y)
BINARY_KERNEL(k_sqrt_bw_f64, double, double, x / (2.0 * y))
BINARY_KERNEL(k_tanh_bw_f64, double, double, x *(1.0 - y * y))
BINARY_KERNEL(k_sigmoid_bw_f64, double, double, x *(1.0 - y) * y)
BINARY_KERNEL(k_relu_bw_f64, double, double, y <= 0.0 ? 0.0 : x)

static const mm_inner_fn unary_bw_kernels[MM_UNARY_OP_COUNT][2] = {
    [MM_OP_ABS] = {k_abs_bw_f32, k_abs_bw_f64},
    [MM_OP_EXP] = {k_exp_bw_f32, k_exp_bw_f64},
    [MM_OP_LOG] = {k_log_bw_f32, k_log_bw_f64},
    [MM_OP_SQRT] = {k_sqrt_bw_f32, k_sqrt_bw_f64},
    [MM_OP_TANH] = {k_tanh_bw_f32, k_tanh_bw_f64},
    [MM_OP_SIGMOID] = {k_sigmoid_bw_f32, k_sigmoid_bw_f64},
    [MM_OP_RELU] = {k_relu_bw_f32, k_relu_bw_f64},
};

/* a / b: d/db = -g * ((a / b) / b) */
TERNARY_KERNEL(k_div_b_f32, float, -g *((x / y) / y))
TERNARY_KERNEL(k_div_b_f64, double, -g *((x / y) / y))
/* s / a (scalar s in kp): d/da = -g * ((s / a) / a) */
BINARY_KERNEL(k_rdiv_bw_f32, float, float, -x *((kp->f32 / y) / y))
BINARY_KERNEL(k_rdiv_bw_f64, double, double, -x *((kp->f64 / y) / y))
/* x ** y: d/dx = g * y * x ** (y - 1), 0 where y == 0; d/dy = g * x ** y * log(x), 0 where
 * x == 0 and y >= 0 (PyTorch's pow_backward_self / pow_backward_exponent) */
TERNARY_KERNEL(k_pow_x_f32, float, y == 0.0f ? 0.0f : g * (y * powf(x, y - 1.0f)))
TERNARY_KERNEL(k_pow_x_f64, double, y == 0.0 ? 0.0 : g * (y * pow(x, y - 1.0)))
TERNARY_KERNEL(k_pow_y_f32, float, (x == 0.0f && y >= 0.0f) ? 0.0f : g *(powf(x, y) * logf(x)))
TERNARY_KERNEL(k_pow_y_f64, double, (x == 0.0 && y >= 0.0) ? 0.0 : g *(pow(x, y) * log(x)))
/* a ** e (e in kp->f32 / f64, e - 1 in f32b / f64b) */
BINARY_KERNEL(k_pows_bw_f32, float, float,
              kp->f32 == 0.0f ? 0.0f : x * (kp->f32 * powk_f32(y, kp->f32b)))
BINARY_KERNEL(k_pows_bw_f64, double, double,
              kp->f64 == 0.0 ? 0.0 : x * (kp->f64 * powk_f64(y, kp->f64b)))
/* s ** a (s in kp->f32 / f64, log(s) in f32b / f64b) */
BINARY_KERNEL(k_rpow_bw_f32, float, float,
              (kp->f32 == 0.0f && y >= 0.0f) ? 0.0f : x *(powf(kp->f32, y) * kp->f32b))
BINARY_KERNEL(k_rpow_bw_f64, double, double,
              (kp->f64 == 0.0 && y >= 0.0) ? 0.0 : x *(pow(kp->f64, y) * kp->f64b))

/* ------------------------------------------------------------------ operands, dtypes */

typedef union {
  float f32;
  double f64;
  int64_t i64;
  uint8_t b;
} scalar_buf;

/* A scalar dressed as a tensor of the iteration shape with all strides 0, on the stack. */
typedef struct {
  mm_storage storage;
  mm_tensor t;
  scalar_buf buf;
} scalar_tensor;

static void scalar_tensor_init(scalar_tensor *st, mm_dtype dt, int ndim, const int64_t *shape,
                               double v) {
  memset(st, 0, sizeof *st);
  switch (dt) {
  case MM_FLOAT32:
    st->buf.f32 = (float)v;
    break;
  case MM_FLOAT64:
    st->buf.f64 = v;
    break;
  case MM_INT64:
    st->buf.i64 = mm_to_int64(v);
    break;
  default:
    st->buf.b = v != 0;
    break;
  }
  st->storage.refcount = 1;
  st->storage.data = &st->buf;
  st->storage.nbytes = sizeof st->buf;
  st->t.refcount = 1;
  st->t.dtype = dt;
  st->t.ndim = ndim;
  for (int d = 0; d < ndim; d++)
    st->t.shape[d] = shape[d];
  st->t.storage = &st->storage;
}

/* t's header broadcast to (ndim, shape) without allocating: stride 0 on broadcast dims.
 * The shape must already be known to be compatible (mm_broadcast_shape). */
static void broadcast_header(const mm_tensor *t, int ndim, const int64_t *shape, mm_tensor *h) {
  *h = *t;
  h->ndim = ndim;
  int lead = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int od = d - lead;
    h->shape[d] = shape[d];
    h->stride[d] = (od < 0 || t->shape[od] != shape[d]) ? 0 : t->stride[od];
  }
}

static bool same_shape(int ndim, const int64_t *shape, const mm_tensor *t) {
  if (t->ndim != ndim)
    return false;
  for (int d = 0; d < ndim; d++)
    if (t->shape[d] != shape[d])
      return false;
  return true;
}

/* An expanded tensor has several elements in one memory location: writing it in place
 * would apply the op several times to that location. */
static bool internal_overlap(const mm_tensor *t) {
  for (int d = 0; d < t->ndim; d++)
    if (t->stride[d] == 0 && t->shape[d] > 1)
      return true;
  return false;
}

/* [lo, hi) byte range of the storage that t's elements touch */
static void byte_extent(const mm_tensor *t, int64_t *lo, int64_t *hi) {
  int64_t es = (int64_t)mm_dtype_size(t->dtype);
  int64_t l = t->offset;
  int64_t h = l;
  for (int d = 0; d < t->ndim; d++) {
    int64_t span = (t->shape[d] - 1) * t->stride[d];
    if (span > 0)
      h += span;
    else
      l += span;
  }
  *lo = l * es;
  *hi = (h + 1) * es;
}

/* Would writing self element by element change what is still to be read from b? Not when b
 * is the very same view (each element is read before it is written). */
static bool must_copy_other(const mm_tensor *self, const mm_tensor *b) {
  if (self->storage != b->storage || mm_numel(self) == 0 || mm_numel(b) == 0)
    return false;
  mm_tensor hb;
  broadcast_header(b, self->ndim, self->shape, &hb);
  bool same = b->dtype == self->dtype && hb.offset == self->offset;
  for (int d = 0; d < self->ndim && same; d++)
    same = self->shape[d] == 1 || hb.stride[d] == self->stride[d];
  if (same)
    return false;
  int64_t lo1, hi1, lo2, hi2;
  byte_extent(self, &lo1, &hi1);
  byte_extent(b, &lo2, &hi2);
  return lo1 < hi2 && lo2 < hi1;
}

/* ------------------------------------------------------------------ autograd helpers */

/* The graph-recording paths stay out of line, so the common path keeps its inlined forward. */
#if defined(__GNUC__) || defined(__clang__)
#define MM_COLD __attribute__((noinline, cold))
#else
#define MM_COLD
#endif

/* The test every op makes before any graph work: two loads when nothing needs a gradient. */
static inline bool recording(const mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b) {
  return ctx->grad_enabled && (a->requires_grad || (b && b->requires_grad));
}

/* An in-place change joins the graph also when self is a view of a tensor in it (made while
 * grad mode was off): the base's history must then be rewritten. */
static inline bool recording_inplace(const mm_ctx *ctx, const mm_tensor *self, const mm_tensor *b) {
  return recording(ctx, self, b) || (ctx->grad_enabled && self->base && self->base->requires_grad);
}

/* A copy of t's values as they are now, out of reach of the in-place change to come. */
static mm_tensor *snapshot(mm_ctx *ctx, const mm_tensor *t) {
  bool mode = mm_set_grad_enabled(ctx, false);
  mm_tensor *c = mm_clone(ctx, t);
  mm_set_grad_enabled(ctx, mode);
  return c;
}

/* Gradients go back in each input's dtype: a float32 input of a float64 op (mixed
 * arithmetic) gets a float32 gradient, so the nodes before it see their own dtype. */
static int grads_to_input_dtype(mm_ctx *ctx, const mm_node *node, mm_tensor **gi) {
  for (int k = 0; k < node->n_inputs; k++) {
    mm_tensor *g = gi[k];
    if (!g || !node->in[k].needs_grad || g->dtype == node->in[k].dtype)
      continue;
    gi[k] = mm_to_dtype(ctx, g, node->in[k].dtype);
    mm_release(g);
    if (!gi[k])
      return -1;
  }
  return 0;
}

/* Runs a backward kernel (fns[0] float32, fns[1] float64) over in[0] (the gradient) and up
 * to two operands of broadcastable shapes, a NULL operand standing for the scalar s. The
 * result has their broadcast shape and promoted (floating) dtype. */
static mm_tensor *bw_run(mm_ctx *ctx, const mm_inner_fn *fns, int n, const mm_tensor *const *in,
                         double s, kparam *kp) {
  mm_dtype C = in[0]->dtype;
  int nd = 0;
  int64_t shape[MM_MAX_DIMS];
  for (int k = 0; k < n; k++) {
    if (!in[k])
      continue;
    int64_t joint[MM_MAX_DIMS];
    int njoint;
    if (mm_broadcast_shape(ctx, "backward", nd, shape, in[k]->ndim, in[k]->shape, &njoint, joint) !=
        0)
      return NULL;
    nd = njoint;
    memcpy(shape, joint, sizeof(int64_t) * (size_t)nd);
    C = mm_promote(C, in[k]->dtype);
  }
  if (!mm_dtype_is_float(C))
    C = MM_FLOAT32;
  mm_tensor *conv[MM_ITER_MAX] = {NULL}, *out = NULL;
  mm_tensor h[MM_ITER_MAX], *ts[MM_ITER_MAX];
  scalar_tensor st;
  for (int k = 0; k < n; k++) {
    const mm_tensor *t = in[k];
    if (!t) {
      scalar_tensor_init(&st, C, nd, shape, s);
      ts[k + 1] = &st.t;
      continue;
    }
    if (t->dtype != C && !(t = conv[k] = mm_to_dtype(ctx, t, C)))
      goto done;
    broadcast_header(t, nd, shape, &h[k]);
    ts[k + 1] = &h[k];
  }
  if (!(out = mm_new_tensor(ctx, "backward", C, nd, shape)))
    goto done;
  ts[0] = out;
  mm_run_kernel(n + 1, ts, fns[C == MM_FLOAT64], kp);
done:
  for (int k = 0; k < n; k++)
    mm_release(conv[k]);
  return out;
}

/* g * v, or g itself (a new reference) when v is 1 */
static mm_tensor *scaled(mm_ctx *ctx, const mm_tensor *g, double v) {
  if (v == 1) {
    mm_retain((mm_tensor *)g);
    return (mm_tensor *)g;
  }
  return mm_binary_scalar(ctx, MM_OP_MUL, g, (mm_scalar){v, false}, false);
}

/* ------------------------------------------------------------------ binary driver */

typedef struct {
  mm_binary_op op;
  const mm_tensor *a;
  const mm_tensor *b; /* NULL: the scalar s */
  mm_scalar s;
  bool scalar_first; /* s op a instead of a op s */
  bool has_alpha;
  mm_scalar alpha;
  mm_tensor *self; /* in place into self (== a), or NULL */
} binary_call;

/* The forward computation alone: no graph, no version bump. */
static int binary_compute(mm_ctx *ctx, const binary_call *c, mm_tensor **result) {
  mm_binary_op op = c->op;
  if ((unsigned)op >= MM_BINARY_OP_COUNT)
    return mm_fail(ctx, "moonml.binary: unknown op %d", (int)op);
  mm_tensor *self = c->self;
  const char *name = self ? binary_names_[op] : binary_names[op];
  const mm_tensor *a = c->a, *b = c->b;

  /* dtypes: P promoted, C computed in, R result */
  mm_dtype P = b ? mm_promote(a->dtype, b->dtype) : mm_scalar_promote(a->dtype, c->s);
  if (op == MM_OP_SUB && (a->dtype == MM_BOOL || (b && b->dtype == MM_BOOL)))
    return mm_fail(ctx, "moonml.%s: subtraction with a bool tensor is not supported", name);
  if (op == MM_OP_POW && P == MM_BOOL)
    return mm_fail(ctx, "moonml.%s: pow is not supported between bool tensors", name);
  if (op == MM_OP_POW && !b && !c->scalar_first && P == MM_INT64 && c->s.value < 0)
    return mm_fail(ctx, "moonml.%s: integers cannot be raised to a negative integer power", name);
  mm_dtype C = P, R = P;
  if (op == MM_OP_DIV && !mm_dtype_is_float(P))
    C = R = MM_FLOAT32; /* true division */
  if (op >= MM_OP_EQ)
    R = MM_BOOL;
  if (c->has_alpha && !mm_dtype_is_float(R) && !mm_scalar_is_int(c->alpha))
    return mm_fail(ctx, "moonml.%s: alpha must be an integer for %s %s result", name,
                   mm_dtype_article(R), mm_dtype_name(R));

  /* shapes */
  int nd;
  int64_t shape[MM_MAX_DIMS];
  if (b) {
    if (mm_broadcast_shape(ctx, name, a->ndim, a->shape, b->ndim, b->shape, &nd, shape) != 0)
      return -1;
  } else {
    nd = a->ndim;
    memcpy(shape, a->shape, sizeof(int64_t) * (size_t)nd);
  }
  if (self) {
    char s1[128], s2[128];
    if (!same_shape(nd, shape, self))
      return mm_fail(ctx, "moonml.%s: output with shape %s doesn't match the broadcast shape %s",
                     name, mm_shape_str(s1, sizeof s1, self->ndim, self->shape),
                     mm_shape_str(s2, sizeof s2, nd, shape));
    if (!mm_can_cast(R, self->dtype))
      return mm_fail(ctx, "moonml.%s: result type %s cannot be stored in place in %s %s tensor",
                     name, mm_dtype_name(R), mm_dtype_article(self->dtype),
                     mm_dtype_name(self->dtype));
    if (internal_overlap(self))
      return mm_fail(ctx,
                     "moonml.%s: cannot write in place into an expanded tensor (several "
                     "elements share memory); clone it first",
                     name);
  }

  /* write straight into self when it has the result dtype (then it also has C) */
  bool direct = self && R == self->dtype;
  mm_tensor *ta = NULL, *tb = NULL, *out = NULL;
  int rc = -1;
  if (a->dtype != C && !(a = ta = mm_to_dtype(ctx, a, C)))
    goto done;
  if (b && b->dtype != C) {
    if (!(b = tb = mm_to_dtype(ctx, b, C)))
      goto done;
  } else if (b && direct && must_copy_other(self, b)) {
    if (!(b = tb = mm_clone(ctx, b)))
      goto done;
  }
  mm_tensor *dst = self;
  if (!direct) {
    if (!(dst = out = mm_new_tensor(ctx, name, R, nd, shape)))
      goto done;
  }

  kparam kp = {0};
  mm_tensor ha, hb, *ts[3];
  scalar_tensor st;
  broadcast_header(a, nd, shape, &ha);
  ts[0] = dst;
  if (op == MM_OP_POW && !b && !c->scalar_first && mm_dtype_is_float(C)) {
    ts[1] = &ha;
    mm_run_kernel(2, ts, pow_scalar_kernel(C, c->s.value, &kp), &kp);
  } else {
    mm_inner_fn fn = binary_kernels[op][C];
    if (c->has_alpha && c->alpha.value != 1) {
      /* a + alpha * b; sub is a + (-alpha) * b */
      double al = c->alpha.value;
      int64_t ai = mm_to_int64(al);
      fn = binary_kernels[OP_ADD_ALPHA][C];
      kp.f32 = (float)(op == MM_OP_SUB ? -al : al);
      kp.f64 = op == MM_OP_SUB ? -al : al;
      kp.i64 = op == MM_OP_SUB ? ISUB(0, ai) : ai;
      kp.b = al != 0;
    }
    if (!fn) {
      mm_fail(ctx, "moonml.%s: not supported for %s tensors", name, mm_dtype_name(C));
      goto done;
    }
    mm_tensor *other;
    if (b) {
      broadcast_header(b, nd, shape, &hb);
      other = &hb;
    } else {
      scalar_tensor_init(&st, C, nd, shape, c->s.value);
      other = &st.t;
    }
    ts[1] = c->scalar_first ? other : &ha;
    ts[2] = c->scalar_first ? &ha : other;
    mm_run_kernel(3, ts, fn, &kp);
  }
  if (self && !direct && mm_copy_(ctx, self, out) != 0)
    goto done;
  if (!self) {
    *result = out;
    out = NULL;
  }
  rc = 0;
done:
  mm_release(ta);
  mm_release(tb);
  mm_release(out);
  return rc;
}

/* ------------------------------------------------------------------ binary autograd */

static const char *const binary_bw_names[MM_BINARY_OP_COUNT] = {
    "AddBackward", "SubBackward", "MulBackward", "DivBackward", "PowBackward", "EqBackward",
    "NeBackward",  "LtBackward",  "LeBackward",  "GtBackward",  "GeBackward"};

/* node->i[1]: which operands are tensors */
enum { TENSOR_TENSOR, TENSOR_SCALAR, SCALAR_TENSOR };

static int call_kind(const binary_call *c) {
  return c->b ? TENSOR_TENSOR : c->scalar_first ? SCALAR_TENSOR : TENSOR_SCALAR;
}

/* Does the backward read the tensor a (b) for the gradients asked (na, nb)? */
static bool bw_reads_a(mm_binary_op op, int kind, bool na, bool nb) {
  switch (op) {
  case MM_OP_MUL:
    return kind == TENSOR_TENSOR && nb;
  case MM_OP_DIV:
    return kind == TENSOR_TENSOR ? nb : kind == SCALAR_TENSOR;
  case MM_OP_POW:
    return na || nb;
  default:
    return false;
  }
}

static bool bw_reads_b(mm_binary_op op, int kind, bool na, bool nb) {
  if (kind != TENSOR_TENSOR)
    return false;
  switch (op) {
  case MM_OP_MUL:
    return na;
  case MM_OP_DIV:
  case MM_OP_POW:
    return na || nb;
  default:
    return false;
  }
}

/* Gradients of a op b (a + alpha * b for add / sub; either side may be the scalar s). */
static int binary_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **gi) {
  mm_binary_op op = (mm_binary_op)node->i[0];
  int kind = (int)node->i[1];
  const mm_tensor *a = node->i[2] >= 0 ? node->saved[node->i[2]] : NULL;
  const mm_tensor *b = node->i[3] >= 0 ? node->saved[node->i[3]] : NULL;
  double s = node->f[0], alpha = node->f[1];
  bool na = node->in[0].needs_grad, nb = node->n_inputs > 1 && node->in[1].needs_grad;
  kparam kp = {0};
  kp.f32 = (float)s;
  kp.f64 = s;
  switch (op) {
  case MM_OP_ADD:
  case MM_OP_SUB:
    if (na)
      gi[0] = kind == SCALAR_TENSOR && op == MM_OP_SUB ? mm_unary(ctx, MM_OP_NEG, g)
                                                       : scaled(ctx, g, 1);
    if (nb)
      gi[1] = scaled(ctx, g, op == MM_OP_SUB ? -alpha : alpha);
    break;
  case MM_OP_MUL:
    if (kind != TENSOR_TENSOR) {
      gi[0] = scaled(ctx, g, s);
      break;
    }
    if (na)
      gi[0] = mm_binary(ctx, MM_OP_MUL, g, b);
    if (nb)
      gi[1] = mm_binary(ctx, MM_OP_MUL, g, a);
    break;
  case MM_OP_DIV:
    if (kind == TENSOR_SCALAR) {
      gi[0] = mm_binary_scalar(ctx, MM_OP_DIV, g, (mm_scalar){s, false}, false);
    } else if (kind == SCALAR_TENSOR) {
      static const mm_inner_fn fns[2] = {k_rdiv_bw_f32, k_rdiv_bw_f64};
      gi[0] = bw_run(ctx, fns, 2, (const mm_tensor *[]){g, a}, 0, &kp);
    } else {
      static const mm_inner_fn fns[2] = {k_div_b_f32, k_div_b_f64};
      if (na)
        gi[0] = mm_binary(ctx, MM_OP_DIV, g, b);
      if (nb)
        gi[1] = bw_run(ctx, fns, 3, (const mm_tensor *[]){g, a, b}, 0, &kp);
    }
    break;
  case MM_OP_POW:
    if (kind == TENSOR_SCALAR) {
      static const mm_inner_fn fns[2] = {k_pows_bw_f32, k_pows_bw_f64};
      kp.f32b = (float)(s - 1);
      kp.f64b = s - 1;
      gi[0] = bw_run(ctx, fns, 2, (const mm_tensor *[]){g, a}, 0, &kp);
    } else if (kind == SCALAR_TENSOR) {
      static const mm_inner_fn fns[2] = {k_rpow_bw_f32, k_rpow_bw_f64};
      kp.f32b = (float)log(s);
      kp.f64b = log(s);
      gi[0] = bw_run(ctx, fns, 2, (const mm_tensor *[]){g, a}, 0, &kp);
    } else {
      static const mm_inner_fn fx[2] = {k_pow_x_f32, k_pow_x_f64};
      static const mm_inner_fn fy[2] = {k_pow_y_f32, k_pow_y_f64};
      if (na)
        gi[0] = bw_run(ctx, fx, 3, (const mm_tensor *[]){g, a, b}, 0, &kp);
      if (nb)
        gi[1] = bw_run(ctx, fy, 3, (const mm_tensor *[]){g, a, b}, 0, &kp);
    }
    break;
  default:
    return 0; /* comparisons: no gradient flows back */
  }
  if ((na && !gi[0]) || (nb && !gi[1]))
    return -1;
  return grads_to_input_dtype(ctx, node, gi);
}

/* Parameters and saved operands of a new binary node; a and b are what the backward is to
 * read for the two operands (the operands, or copies taken before an in-place change). */
static int binary_fill(mm_ctx *ctx, mm_node *node, const binary_call *c, const mm_tensor *a,
                       const mm_tensor *b) {
  int kind = call_kind(c);
  bool na = node->in[0].needs_grad, nb = c->b && node->in[1].needs_grad;
  node->i[0] = c->op;
  node->i[1] = kind;
  node->i[2] = node->i[3] = -1;
  node->f[0] = c->s.value;
  node->f[1] = c->has_alpha ? c->alpha.value : 1;
  if (bw_reads_a(c->op, kind, na, nb)) {
    node->i[2] = node->n_saved;
    if (mm_node_save(ctx, node, a) != 0)
      return -1;
  }
  if (bw_reads_b(c->op, kind, na, nb)) {
    node->i[3] = node->n_saved;
    if (mm_node_save(ctx, node, b) != 0)
      return -1;
  }
  return 0;
}

/* An in-place op that joins the graph: the node's first input is self's history up to now,
 * and the node becomes self's new history. The values the backward reads from the old self
 * are copied first. */
static int binary_inplace_recorded(mm_ctx *ctx, const binary_call *c) {
  mm_tensor *self = c->self;
  const mm_tensor *in[2] = {self, c->b};
  mm_node *node;
  if (mm_inplace_begin(ctx, binary_names_[c->op], binary_bw_names[c->op], binary_backward,
                       c->b ? 2 : 1, in, &node) != 0)
    return -1;
  if (!node) { /* grad mode is off after all */
    if (binary_compute(ctx, c, NULL) != 0)
      return -1;
    mm_bump_version(self);
    return 0;
  }
  int kind = call_kind(c);
  bool na = node->in[0].needs_grad, nb = c->b && node->in[1].needs_grad;
  const mm_tensor *b = c->b;
  mm_tensor *a_old = NULL, *b_copy = NULL;
  int rc = -1;
  if (bw_reads_a(c->op, kind, na, nb) && !(a_old = snapshot(ctx, self)))
    goto done;
  if (bw_reads_b(c->op, kind, na, nb) && mm_same_storage(b, self) &&
      !(b = b_copy = snapshot(ctx, b)))
    goto done;
  if (binary_fill(ctx, node, c, a_old, b) != 0)
    goto done;
  bool mode = mm_set_grad_enabled(ctx, false);
  rc = binary_compute(ctx, c, NULL);
  mm_set_grad_enabled(ctx, mode);
  if (rc != 0)
    goto done;
  mm_bump_version(self);
  rc = mm_inplace_attach(ctx, node, self); /* a view rewrites its base's history */
  node = NULL;
done:
  mm_node_release(node);
  mm_release(a_old);
  mm_release(b_copy);
  return rc;
}

/* binary_exec when an input requires grad in grad mode: out-of-place results of
 * differentiable ops get a node; in-place ops rebase self's history (a leaf may not). */
static MM_COLD int binary_exec_graph(mm_ctx *ctx, const binary_call *c, mm_tensor **result) {
  if ((unsigned)c->op >= MM_BINARY_OP_COUNT)
    return mm_fail(ctx, "moonml.binary: unknown op %d", (int)c->op);
  if (c->self)
    return binary_inplace_recorded(ctx, c);
  if (c->op >= MM_OP_EQ) /* comparisons: a bool result outside the graph */
    return binary_compute(ctx, c, result);
  bool mode = mm_set_grad_enabled(ctx, false);
  int rc = binary_compute(ctx, c, result);
  mm_set_grad_enabled(ctx, mode);
  if (rc != 0)
    return -1;
  const mm_tensor *in[2] = {c->a, c->b};
  mm_node *node;
  if (mm_node_begin(ctx, binary_bw_names[c->op], binary_backward, c->b ? 2 : 1, in, &node) != 0 ||
      binary_fill(ctx, node, c, c->a, c->b) != 0) {
    mm_node_release(node);
    mm_release(*result);
    *result = NULL;
    return -1;
  }
  mm_node_attach(node, *result);
  return 0;
}

/* The forward, its version bump when in place, and its place in the graph. The common case
 * (nothing requires grad, or grad mode off) costs one test. */
static int binary_exec(mm_ctx *ctx, const binary_call *c, mm_tensor **result) {
  if (c->self ? recording_inplace(ctx, c->self, c->b) : recording(ctx, c->a, c->b))
    return binary_exec_graph(ctx, c, result);
  if (binary_compute(ctx, c, result) != 0)
    return -1;
  if (c->self)
    mm_bump_version(c->self);
  return 0;
}

mm_tensor *mm_binary(mm_ctx *ctx, mm_binary_op op, const mm_tensor *a, const mm_tensor *b) {
  binary_call c = {.op = op, .a = a, .b = b};
  mm_tensor *r = NULL;
  return binary_exec(ctx, &c, &r) == 0 ? r : NULL;
}

mm_tensor *mm_binary_scalar(mm_ctx *ctx, mm_binary_op op, const mm_tensor *a, mm_scalar b,
                            bool scalar_first) {
  binary_call c = {.op = op, .a = a, .s = b, .scalar_first = scalar_first};
  mm_tensor *r = NULL;
  return binary_exec(ctx, &c, &r) == 0 ? r : NULL;
}

int mm_binary_(mm_ctx *ctx, mm_binary_op op, mm_tensor *a, const mm_tensor *b) {
  binary_call c = {.op = op, .a = a, .b = b, .self = a};
  return binary_exec(ctx, &c, NULL);
}

int mm_binary_scalar_(mm_ctx *ctx, mm_binary_op op, mm_tensor *a, mm_scalar b) {
  binary_call c = {.op = op, .a = a, .s = b, .self = a};
  return binary_exec(ctx, &c, NULL);
}

static int check_alpha_op(mm_ctx *ctx, mm_binary_op op, bool inplace) {
  if (op == MM_OP_ADD || op == MM_OP_SUB)
    return 0;
  return mm_fail(ctx, "moonml.%s: alpha applies to add and sub only",
                 (unsigned)op < MM_BINARY_OP_COUNT
                     ? (inplace ? binary_names_[op] : binary_names[op])
                     : "binary");
}

mm_tensor *mm_add_alpha(mm_ctx *ctx, mm_binary_op op, const mm_tensor *a, const mm_tensor *b,
                        mm_scalar bs, mm_scalar alpha) {
  if (check_alpha_op(ctx, op, false) != 0)
    return NULL;
  binary_call c = {.op = op, .a = a, .b = b, .s = bs, .has_alpha = true, .alpha = alpha};
  mm_tensor *r = NULL;
  return binary_exec(ctx, &c, &r) == 0 ? r : NULL;
}

int mm_add_alpha_(mm_ctx *ctx, mm_binary_op op, mm_tensor *a, const mm_tensor *b, mm_scalar bs,
                  mm_scalar alpha) {
  if (check_alpha_op(ctx, op, true) != 0)
    return -1;
  binary_call c = {.op = op, .a = a, .b = b, .s = bs, .has_alpha = true, .alpha = alpha, .self = a};
  return binary_exec(ctx, &c, NULL);
}

/* ------------------------------------------------------------------ unary driver */

static int unary_compute(mm_ctx *ctx, mm_unary_op op, const mm_tensor *a, mm_tensor *self,
                         mm_tensor **result) {
  if ((unsigned)op >= MM_UNARY_OP_COUNT)
    return mm_fail(ctx, "moonml.unary: unknown op %d", (int)op);
  const char *name = self ? unary_names_[op] : unary_names[op];
  if (a->dtype == MM_BOOL && op == MM_OP_NEG)
    return mm_fail(ctx, "moonml.%s: negation of a bool tensor is not supported", name);
  if (a->dtype == MM_BOOL && (op == MM_OP_ABS || op == MM_OP_RELU))
    return mm_fail(ctx, "moonml.%s: not supported for bool tensors", name);
  /* exp, log, sqrt, tanh and sigmoid of int64/bool give float32 */
  bool to_float = op != MM_OP_NEG && op != MM_OP_ABS && op != MM_OP_RELU;
  mm_dtype C = to_float && !mm_dtype_is_float(a->dtype) ? MM_FLOAT32 : a->dtype;
  if (self) {
    if (!mm_can_cast(C, self->dtype))
      return mm_fail(ctx, "moonml.%s: result type %s cannot be stored in place in %s %s tensor",
                     name, mm_dtype_name(C), mm_dtype_article(self->dtype),
                     mm_dtype_name(self->dtype));
    if (internal_overlap(self))
      return mm_fail(ctx,
                     "moonml.%s: cannot write in place into an expanded tensor (several "
                     "elements share memory); clone it first",
                     name);
  }
  mm_inner_fn fn = unary_kernels[op][C];
  if (!fn)
    return mm_fail(ctx, "moonml.%s: not supported for %s tensors", name, mm_dtype_name(C));
  mm_tensor *ta = NULL, *out = NULL;
  if (a->dtype != C && !(a = ta = mm_to_dtype(ctx, a, C)))
    return -1;
  mm_tensor *dst = self;
  if (!self && !(dst = out = mm_new_tensor(ctx, name, C, a->ndim, a->shape))) {
    mm_release(ta);
    return -1;
  }
  kparam kp = {0};
  mm_tensor ha = *a, *ts[2] = {dst, &ha};
  mm_run_kernel(2, ts, fn, &kp);
  mm_release(ta);
  if (result)
    *result = out;
  return 0;
}

/* ------------------------------------------------------------------ unary autograd */

static const char *const unary_bw_names[MM_UNARY_OP_COUNT] = {
    "NegBackward",  "AbsBackward",  "ExpBackward",     "LogBackward",
    "SqrtBackward", "TanhBackward", "SigmoidBackward", "ReluBackward"};

/* abs and log read their input; exp, sqrt, tanh, sigmoid and relu their output; neg nothing */
static bool unary_reads_input(mm_unary_op op) { return op == MM_OP_ABS || op == MM_OP_LOG; }

static int unary_backward(mm_ctx *ctx, mm_node *node, const mm_tensor *g, mm_tensor **gi) {
  mm_unary_op op = (mm_unary_op)node->i[0];
  if (op == MM_OP_NEG) {
    gi[0] = mm_unary(ctx, MM_OP_NEG, g);
  } else {
    kparam kp = {0};
    gi[0] = bw_run(ctx, unary_bw_kernels[op], 2, (const mm_tensor *[]){g, node->saved[0]}, 0, &kp);
  }
  if (!gi[0])
    return -1;
  return grads_to_input_dtype(ctx, node, gi);
}

/* unary_exec when a requires grad in grad mode: an out-of-place result gets a node; an
 * in-place op rebases self's history (a leaf may not change in place). */
static MM_COLD int unary_exec_graph(mm_ctx *ctx, mm_unary_op op, const mm_tensor *a,
                                    mm_tensor *self, mm_tensor **result) {
  if ((unsigned)op >= MM_UNARY_OP_COUNT)
    return mm_fail(ctx, "moonml.unary: unknown op %d", (int)op);
  mm_node *node;
  if ((self ? mm_inplace_begin(ctx, unary_names_[op], unary_bw_names[op], unary_backward, 1, &a,
                               &node)
            : mm_node_begin(ctx, unary_bw_names[op], unary_backward, 1, &a, &node)) != 0)
    return -1;
  if (!node) { /* grad mode is off after all */
    if (unary_compute(ctx, op, a, self, result) != 0)
      return -1;
    if (self)
      mm_bump_version(self);
    return 0;
  }
  node->i[0] = op;
  mm_tensor *a_old = NULL, *out = NULL;
  int rc = -1;
  if (self && unary_reads_input(op) && !(a_old = snapshot(ctx, self)))
    goto done;
  bool mode = mm_set_grad_enabled(ctx, false);
  int st = unary_compute(ctx, op, a, self, self ? NULL : &out);
  mm_set_grad_enabled(ctx, mode);
  if (st != 0)
    goto done;
  if (self)
    mm_bump_version(self);
  mm_tensor *res = self ? self : out;
  if (op != MM_OP_NEG &&
      mm_node_save(ctx, node, unary_reads_input(op) ? (a_old ? a_old : a) : res) != 0)
    goto done;
  if (self) {
    mm_node *n = node;
    node = NULL;
    if (mm_inplace_attach(ctx, n, self) != 0) /* a view rewrites its base's history */
      goto done;
  } else {
    mm_node_attach(node, res);
    node = NULL;
  }
  if (result)
    *result = out;
  out = NULL;
  rc = 0;
done:
  mm_node_release(node);
  mm_release(a_old);
  mm_release(out);
  return rc;
}

static int unary_exec(mm_ctx *ctx, mm_unary_op op, const mm_tensor *a, mm_tensor *self,
                      mm_tensor **result) {
  if (self ? recording_inplace(ctx, self, NULL) : recording(ctx, a, NULL))
    return unary_exec_graph(ctx, op, a, self, result);
  if (unary_compute(ctx, op, a, self, result) != 0)
    return -1;
  if (self)
    mm_bump_version(self);
  return 0;
}

mm_tensor *mm_unary(mm_ctx *ctx, mm_unary_op op, const mm_tensor *a) {
  mm_tensor *r = NULL;
  return unary_exec(ctx, op, a, NULL, &r) == 0 ? r : NULL;
}

int mm_unary_(mm_ctx *ctx, mm_unary_op op, mm_tensor *a) { return unary_exec(ctx, op, a, a, NULL); }

/* ------------------------------------------------------------------ allclose */

typedef struct {
  double rtol, atol;
  bool equal_nan;
  mm_dtype dt;
  atomic_int fail; /* set by any chunk that finds a pair too far apart */
} close_arg;

static double load_as_double(const char *p, mm_dtype dt) {
  switch (dt) {
  case MM_FLOAT32:
    return *(const float *)p;
  case MM_FLOAT64:
    return *(const double *)p;
  case MM_INT64:
    return (double)*(const int64_t *)p;
  default:
    return *(const uint8_t *)p;
  }
}

/* PyTorch's isclose: equal values (infinities included) are close; otherwise NaN is close
 * only to NaN under equal_nan, an infinity to nothing, and finite values within tolerance. */
static void close_kernel(char **p, const int64_t *s, int64_t n, void *arg) {
  close_arg *c = arg;
  if (atomic_load_explicit(&c->fail, memory_order_relaxed))
    return;
  const char *pa = p[0], *pb = p[1];
  for (int64_t i = 0; i < n; i++, pa += s[0], pb += s[1]) {
    if (c->dt == MM_INT64 && *(const int64_t *)pa == *(const int64_t *)pb)
      continue;
    double x = load_as_double(pa, c->dt), y = load_as_double(pb, c->dt);
    bool ok;
    if (x == y)
      ok = true;
    else if (isnan(x) || isnan(y))
      ok = c->equal_nan && isnan(x) && isnan(y);
    else if (isinf(x) || isinf(y))
      ok = false;
    else
      ok = fabs(x - y) <= c->atol + c->rtol * fabs(y);
    if (!ok) {
      atomic_store_explicit(&c->fail, 1, memory_order_relaxed);
      return;
    }
  }
}

int mm_allclose(mm_ctx *ctx, const mm_tensor *a, const mm_tensor *b, double rtol, double atol,
                bool equal_nan, bool *result) {
  if (a->dtype != b->dtype)
    return mm_fail(ctx, "moonml.allclose: dtypes %s and %s differ", mm_dtype_name(a->dtype),
                   mm_dtype_name(b->dtype));
  if (!(rtol >= 0) || !(atol >= 0))
    return mm_fail(ctx, "moonml.allclose: rtol and atol must be non-negative, got %g and %g", rtol,
                   atol);
  int nd;
  int64_t shape[MM_MAX_DIMS];
  if (mm_broadcast_shape(ctx, "allclose", a->ndim, a->shape, b->ndim, b->shape, &nd, shape) != 0)
    return -1;
  close_arg c = {rtol, atol, equal_nan, a->dtype, 0};
  mm_tensor ha, hb, *ts[2] = {&ha, &hb};
  broadcast_header(a, nd, shape, &ha);
  broadcast_header(b, nd, shape, &hb);
  int64_t numel = mm_numel(&ha);
  if (numel > 0) {
    mm_iter it;
    mm_iter_init(&it, 2, ts);
    mm_iter_run(&it, close_kernel, &c);
  }
  *result = !atomic_load(&c.fail);
  return 0;
}
