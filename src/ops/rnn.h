/* Recurrent layers (src/ops/rnn.c): Elman RNN (tanh or relu), LSTM and GRU over a whole
 * sequence, several layers and both directions, with PyTorch's weight layouts and one
 * autograd node whose backward runs the whole backpropagation through time. */
#ifndef MM_RNN_H
#define MM_RNN_H

#include "../moonml.h"

typedef enum mm_rnn_mode {
  MM_RNN_TANH = 0, /* h' = tanh(W_ih x + b_ih + W_hh h + b_hh) */
  MM_RNN_RELU,     /* the same with relu */
  MM_RNN_LSTM,     /* gates i, f, g, o stacked in that order */
  MM_RNN_GRU,      /* gates r, z, n stacked in that order */
  MM_RNN_MODE_COUNT
} mm_rnn_mode;

typedef struct mm_rnn_opts {
  const char *name; /* for errors: "moonml.<name>: ..." (e.g. "nn.LSTM"); NULL gives "rnn" */
  mm_rnn_mode mode;
  int64_t hidden_size;
  int64_t num_layers;
  bool bidirectional;
  bool batch_first; /* x and out are (N, T, .) instead of (T, N, .) */
  bool bias;        /* the weights list holds b_ih and b_hh for every layer and direction */
  double dropout;   /* on the outputs of every layer but the last, when train is set */
  bool train;
} mm_rnn_opts;

/* Runs the recurrent network over x: (T, N, input) or (N, T, input) with batch_first,
 * float32 or float64, T >= 1. h0 (and c0, LSTM only): (num_layers * D, N, hidden) or NULL
 * for zeros, D being 2 when bidirectional, else 1. weights: for each layer, for each
 * direction (forward, then reverse): w_ih (G * hidden x in), w_hh (G * hidden x hidden),
 * then with bias b_ih and b_hh (G * hidden); G is 4 for LSTM, 3 for GRU, 1 for RNN; `in`
 * is the input size for layer 0, else D * hidden. All of x's dtype.
 * Results (new references): *out (T, N, D * hidden), (N, T, D * hidden) with batch_first;
 * *h_n (num_layers * D, N, hidden); *c_n likewise for LSTM, else NULL. They are views of one
 * buffer. Dropout masks are drawn from the context's generator. */
MM_API int mm_rnn(mm_ctx *ctx, const mm_rnn_opts *opts, const mm_tensor *x, const mm_tensor *h0,
                  const mm_tensor *c0, const mm_tensor *const *weights, int n_weights,
                  mm_tensor **out, mm_tensor **h_n, mm_tensor **c_n);

/* Gates per hidden unit (4, 3 or 1) and the number of weight tensors mm_rnn expects. */
MM_API int mm_rnn_gates(mm_rnn_mode mode);
MM_API int mm_rnn_num_weights(const mm_rnn_opts *opts);

#endif
