/*
 * nn.h -- the neural-network kernels of moonml's core (public C API, beside moonml.h):
 * convolution, pooling, normalisation, activations and losses, each with its backward
 * recorded for autograd.
 *
 * Conventions are moonml.h's: NULL / -1 with the message in mm_ctx_error(ctx); sizes
 * and class indices are 0-based; layouts are PyTorch's: x (N, C, H, W) (or (C, H, W)
 * unbatched), conv weight (out, in / groups, kh, kw), conv_transpose weight
 * (in, out / groups, kh, kw). float32 and float64 are supported; every tensor of one
 * call has the input's dtype (class targets are int64).
 */
#ifndef MOONML_NN_H
#define MOONML_NN_H

#include "../moonml.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mm_reduction {
  MM_REDUCTION_NONE = 0,
  MM_REDUCTION_MEAN,
  MM_REDUCTION_SUM,
  MM_REDUCTION_BATCHMEAN /* kl_div only: sum / batch size */
} mm_reduction;

/* ---------------------------------------------------------------- linear */

/* y = x W^T + b: x [..., in] (or [in]), weight [out, in], bias [out] or NULL; y [..., out].
 * float32, float64 and int64 (no gradient). One node (LinearBackward) for all three. */
MM_API mm_tensor *mm_linear(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *weight,
                            const mm_tensor *bias);

/* ---------------------------------------------------------------- convolution */

typedef struct mm_conv_opts {
  int64_t stride[2], padding[2], dilation[2];
  int64_t output_padding[2]; /* conv_transpose2d only */
  int64_t groups;
} mm_conv_opts;

/* bias may be NULL. Batches are split over mm_get_num_threads() threads with OpenBLAS
 * kept single-threaded meanwhile. */
MM_API mm_tensor *mm_conv2d(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *weight,
                            const mm_tensor *bias, const mm_conv_opts *o);
MM_API mm_tensor *mm_conv_transpose2d(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *weight,
                                      const mm_tensor *bias, const mm_conv_opts *o);

/* ---------------------------------------------------------------- pooling */

typedef struct mm_pool_opts {
  int64_t kernel[2], stride[2], padding[2], dilation[2];
  bool ceil_mode;
  bool count_include_pad;   /* avg_pool2d */
  int64_t divisor_override; /* avg_pool2d; 0: none */
} mm_pool_opts;

/* indices (if not NULL) receives int64 positions h * W + w within each input plane. */
MM_API mm_tensor *mm_max_pool2d(mm_ctx *ctx, const mm_tensor *x, const mm_pool_opts *o,
                                mm_tensor **indices);
MM_API mm_tensor *mm_avg_pool2d(mm_ctx *ctx, const mm_tensor *x, const mm_pool_opts *o);
MM_API mm_tensor *mm_adaptive_avg_pool2d(mm_ctx *ctx, const mm_tensor *x,
                                         const int64_t output_size[2]);

/* ---------------------------------------------------------------- normalisation */

/* x (N, C, *). running_mean / running_var (C) may be NULL in training; in training they
 * are updated in place (unbiased variance), as PyTorch does. weight and bias may be NULL. */
MM_API mm_tensor *mm_batch_norm(mm_ctx *ctx, const mm_tensor *x, mm_tensor *running_mean,
                                mm_tensor *running_var, const mm_tensor *weight,
                                const mm_tensor *bias, bool training, double momentum, double eps);
/* Normalises over the last nnorm dims, which must equal normalized_shape. */
MM_API mm_tensor *mm_layer_norm(mm_ctx *ctx, const mm_tensor *x, int nnorm,
                                const int64_t *normalized_shape, const mm_tensor *weight,
                                const mm_tensor *bias, double eps);

/* ---------------------------------------------------------------- activations */

MM_API mm_tensor *mm_leaky_relu(mm_ctx *ctx, const mm_tensor *x, double negative_slope);
MM_API mm_tensor *mm_elu(mm_ctx *ctx, const mm_tensor *x, double alpha);
/* tanh_approx: PyTorch's approximate='tanh'; otherwise the exact erf form */
MM_API mm_tensor *mm_gelu(mm_ctx *ctx, const mm_tensor *x, bool tanh_approx);
MM_API mm_tensor *mm_softplus(mm_ctx *ctx, const mm_tensor *x, double beta, double threshold);

/* ---------------------------------------------------------------- losses */

/* logits (N, C, d...) or (C); target int64 class indices (N, d...) (or 0-d), 0-based, or
 * class probabilities of the logits' shape. weight (C) may be NULL. */
MM_API mm_tensor *mm_cross_entropy(mm_ctx *ctx, const mm_tensor *logits, const mm_tensor *target,
                                   const mm_tensor *weight, int64_t ignore_index,
                                   double label_smoothing, mm_reduction red);
MM_API mm_tensor *mm_nll_loss(mm_ctx *ctx, const mm_tensor *logp, const mm_tensor *target,
                              const mm_tensor *weight, int64_t ignore_index, mm_reduction red);
MM_API mm_tensor *mm_mse_loss(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                              mm_reduction red);
MM_API mm_tensor *mm_l1_loss(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                             mm_reduction red);
/* weight broadcasts to x's shape; may be NULL */
MM_API mm_tensor *mm_binary_cross_entropy(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                                          const mm_tensor *weight, mm_reduction red);
/* weight and pos_weight broadcast to x's shape; either may be NULL */
MM_API mm_tensor *mm_binary_cross_entropy_with_logits(mm_ctx *ctx, const mm_tensor *x,
                                                      const mm_tensor *target,
                                                      const mm_tensor *weight,
                                                      const mm_tensor *pos_weight,
                                                      mm_reduction red);
MM_API mm_tensor *mm_kl_div(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                            mm_reduction red, bool log_target);
MM_API mm_tensor *mm_hinge_embedding_loss(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                                          double margin, mm_reduction red);
/* x (N, C) or (C); target int64 (N) or 0-d, 0-based; p is 1 or 2; weight (C) or NULL */
MM_API mm_tensor *mm_multi_margin_loss(mm_ctx *ctx, const mm_tensor *x, const mm_tensor *target,
                                       int p, double margin, const mm_tensor *weight,
                                       mm_reduction red);

#ifdef __cplusplus
}
#endif
#endif /* MOONML_NN_H */
