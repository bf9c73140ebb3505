/* The recurrent kernels for one element type: rnn.c includes this file once with RNN_T float
 * and RNN_SUF f32, once with double and f64, after defining rnn_dims, the buffer offsets and
 * the per-type helpers sel_, sigm_, tanh_ and the BLAS calls. No include guard on purpose.
 *
 * Forward, per layer and direction: one GEMM projects the inputs of every time step; then
 * each step is a GEMM of the previous hidden state with W_hh and one fused pass over the
 * gates. Backward through time mirrors it: a fused pass per step gives the gate gradients
 * (kept for every step) and a GEMM carries the hidden-state gradient back; the weight,
 * bias and input gradients are then one GEMM (or column sum) each over all steps. */

#define RNN_CAT_(a, b) a##_##b
#define RNN_CAT(a, b) RNN_CAT_(a, b)
#define FN(name) RNN_CAT(name, RNN_SUF)
/* plain names for this type's functions (gemm is gemm_f32 or gemm_f64, ...) */
#define gemm FN(gemm)
#define colsum FN(colsum)
#define lstm_fwd_row FN(lstm_fwd_row)
#define lstm_fwd FN(lstm_fwd)
#define lstm_bwd_row FN(lstm_bwd_row)
#define lstm_bwd FN(lstm_bwd)
#define gru_fwd_row FN(gru_fwd_row)
#define gru_fwd FN(gru_fwd)
#define gru_bwd_row FN(gru_bwd_row)
#define gru_bwd FN(gru_bwd)
#define rnn_fwd_row FN(rnn_fwd_row)
#define rnn_fwd FN(rnn_fwd)
#define rnn_bwd_row FN(rnn_bwd_row)
#define rnn_bwd FN(rnn_bwd)
#define forward FN(forward)
#define backward FN(backward)

/* C (m x n, ldc) = A (m x k) B (k x n) + beta C, A and B read transposed when ta / tb. */
static void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const RNN_T *a, int64_t lda,
                 const RNN_T *b, int64_t ldb, RNN_T beta, RNN_T *c, int64_t ldc) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) { /* an empty product: BLAS may not touch C, but beta still applies */
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++)
        c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
    return;
  }
  FN(blas_gemm)
  (CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
   (int)k, 1, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* out[j] = sum over rows i of a[i * lda + j] */
static void colsum(int64_t m, int64_t n, const RNN_T *a, int64_t lda, RNN_T *out) {
  for (int64_t j = 0; j < n; j++)
    out[j] = 0;
  for (int64_t i = 0; i < m; i++) {
    const RNN_T *row = a + i * lda;
    for (int64_t j = 0; j < n; j++)
      out[j] += row[j];
  }
}

/* ------------------------------------------------------------------ fused steps */

/* Each step works row by row (one batch element), through a function whose restrict
 * parameters let the compiler vectorise the loop without run-time alias checks. */

/* LSTM. g (4H) holds W_ih x + W_hh h_prev and is overwritten with the gates i, f, g, o; b (4H)
 * is b_ih + b_hh. Writes c and h. */
static inline void lstm_fwd_row(int64_t H, RNN_T *restrict g, const RNN_T *restrict b,
                                const RNN_T *restrict cp, RNN_T *restrict c, RNN_T *restrict h) {
  for (int64_t j = 0; j < H; j++) {
    RNN_T i = FN(sigm)(g[j] + b[j]), f = FN(sigm)(g[H + j] + b[H + j]);
    RNN_T gv = FN(tanh)(g[2 * H + j] + b[2 * H + j]), o = FN(sigm)(g[3 * H + j] + b[3 * H + j]);
    RNN_T cv = f * cp[j] + i * gv;
    c[j] = cv;
    h[j] = o * FN(tanh)(cv);
    g[j] = i;
    g[H + j] = f;
    g[2 * H + j] = gv;
    g[3 * H + j] = o;
  }
}

RNN_CLONES static void lstm_fwd(int64_t N, int64_t H, RNN_T *g, const RNN_T *b, const RNN_T *cp,
                                RNN_T *c, RNN_T *h) {
  for (int64_t n = 0; n < N; n++)
    lstm_fwd_row(H, g + n * 4 * H, b, cp + n * H, c + n * H, h + n * H);
}

/* LSTM backward. dout is the output's gradient at this step, dhr and dcr the gradients
 * flowing back from the next step; dcr is replaced by the gradient for c_prev (dhr is left
 * for the caller's GEMM). Writes the gates' pre-activation gradients dg (4H). */
static inline void lstm_bwd_row(int64_t H, const RNN_T *restrict g, const RNN_T *restrict cp,
                                const RNN_T *restrict c, const RNN_T *restrict dout,
                                const RNN_T *restrict dhr, RNN_T *restrict dcr,
                                RNN_T *restrict dg) {
  for (int64_t j = 0; j < H; j++) {
    RNN_T i = g[j], f = g[H + j], gv = g[2 * H + j], o = g[3 * H + j];
    RNN_T dh = dout[j] + dhr[j], tc = FN(tanh)(c[j]);
    RNN_T dc = dcr[j] + dh * o * (1 - tc * tc);
    dg[j] = dc * gv * i * (1 - i);
    dg[H + j] = dc * cp[j] * f * (1 - f);
    dg[2 * H + j] = dc * i * (1 - gv * gv);
    dg[3 * H + j] = dh * tc * o * (1 - o);
    dcr[j] = dc * f;
  }
}

/* dout's rows are ldo apart (a direction's half of a wider output, or batch-first rows) */
RNN_CLONES static void lstm_bwd(int64_t N, int64_t H, const RNN_T *g, const RNN_T *cp,
                                const RNN_T *c, const RNN_T *dout, int64_t ldo, const RNN_T *dhr,
                                RNN_T *dcr, RNN_T *dg) {
  for (int64_t n = 0; n < N; n++)
    lstm_bwd_row(H, g + n * 4 * H, cp + n * H, c + n * H, dout + n * ldo, dhr + n * H, dcr + n * H,
                 dg + n * 4 * H);
}

/* GRU. g (4H) holds W_ih x in its first 3H columns and is overwritten with r, z, n and
 * W_hn h_prev + b_hn; gh (3H) is W_hh h_prev; b (4H) is b_ir + b_hr, b_iz + b_hz, b_in,
 * b_hn. h = (1 - z) n + z h_prev. */
static inline void gru_fwd_row(int64_t H, RNN_T *restrict g, const RNN_T *restrict gh,
                               const RNN_T *restrict b, const RNN_T *restrict hp,
                               RNN_T *restrict h) {
  for (int64_t j = 0; j < H; j++) {
    RNN_T r = FN(sigm)(g[j] + gh[j] + b[j]);
    RNN_T z = FN(sigm)(g[H + j] + gh[H + j] + b[H + j]);
    RNN_T hn = gh[2 * H + j] + b[3 * H + j];
    RNN_T nv = FN(tanh)(g[2 * H + j] + b[2 * H + j] + r * hn);
    h[j] = nv + z * (hp[j] - nv);
    g[j] = r;
    g[H + j] = z;
    g[2 * H + j] = nv;
    g[3 * H + j] = hn;
  }
}

RNN_CLONES static void gru_fwd(int64_t N, int64_t H, RNN_T *g, const RNN_T *gh, const RNN_T *b,
                               const RNN_T *hp, RNN_T *h) {
  for (int64_t n = 0; n < N; n++)
    gru_fwd_row(H, g + n * 4 * H, gh + n * 3 * H, b, hp + n * H, h + n * H);
}

/* GRU backward. dg (4H) gets the gradients of the pre-activations: r, z, the hidden part
 * of n (times r) and the input part of n, so that its first 3H columns are the gradient of
 * W_hh h_prev + b_hh and columns 0..2H, 3H..4H that of W_ih x + b_ih. dhr is replaced by
 * the direct part z * dh of the gradient for h_prev. */
static inline void gru_bwd_row(int64_t H, const RNN_T *restrict g, const RNN_T *restrict hp,
                               const RNN_T *restrict dout, RNN_T *restrict dhr,
                               RNN_T *restrict dg) {
  for (int64_t j = 0; j < H; j++) {
    RNN_T r = g[j], z = g[H + j], nv = g[2 * H + j];
    RNN_T dh = dout[j] + dhr[j];
    RNN_T dnp = dh * (1 - z) * (1 - nv * nv);
    dg[j] = dnp * g[3 * H + j] * r * (1 - r);
    dg[H + j] = dh * (hp[j] - nv) * z * (1 - z);
    dg[2 * H + j] = dnp * r;
    dg[3 * H + j] = dnp;
    dhr[j] = dh * z;
  }
}

RNN_CLONES static void gru_bwd(int64_t N, int64_t H, const RNN_T *g, const RNN_T *hp,
                               const RNN_T *dout, int64_t ldo, RNN_T *dhr, RNN_T *dg) {
  for (int64_t n = 0; n < N; n++)
    gru_bwd_row(H, g + n * 4 * H, hp + n * H, dout + n * ldo, dhr + n * H, dg + n * 4 * H);
}

/* Elman: g (H) holds W_ih x + W_hh h_prev (left as it is); h = act(g + b). */
static inline void rnn_fwd_row(int64_t H, const RNN_T *restrict g, const RNN_T *restrict b,
                               bool relu, RNN_T *restrict h) {
  if (relu) {
    for (int64_t j = 0; j < H; j++) {
      RNN_T v = g[j] + b[j];
      h[j] = FN(sel)(v < 0, 0, v); /* NaN stays NaN, as torch.relu */
    }
  } else {
    for (int64_t j = 0; j < H; j++)
      h[j] = FN(tanh)(g[j] + b[j]);
  }
}

RNN_CLONES static void rnn_fwd(int64_t N, int64_t H, const RNN_T *g, const RNN_T *b, bool relu,
                               RNN_T *h) {
  for (int64_t n = 0; n < N; n++)
    rnn_fwd_row(H, g + n * H, b, relu, h + n * H);
}

static inline void rnn_bwd_row(int64_t H, const RNN_T *restrict h, const RNN_T *restrict dout,
                               const RNN_T *restrict dhr, bool relu, RNN_T *restrict dg) {
  if (relu) {
    for (int64_t j = 0; j < H; j++)
      dg[j] = FN(sel)(h[j] > 0, dout[j] + dhr[j], 0);
  } else {
    for (int64_t j = 0; j < H; j++)
      dg[j] = (dout[j] + dhr[j]) * (1 - h[j] * h[j]);
  }
}

RNN_CLONES static void rnn_bwd(int64_t N, int64_t H, const RNN_T *h, const RNN_T *dout, int64_t ldo,
                               const RNN_T *dhr, bool relu, RNN_T *dg) {
  for (int64_t n = 0; n < N; n++)
    rnn_bwd_row(H, h + n * H, dout + n * ldo, dhr + n * H, relu, dg + n * H);
}

/* ------------------------------------------------------------------ whole sequence */

/* x: (T, N, I) contiguous; h0, c0: (L*D, N, H) contiguous or NULL; w: the packed weights.
 * Fills ws (saved for backward) and y (out, h_n, c_n). bvec (4H) and gh (N x 3H): scratch. */
static void forward(mm_ctx *ctx, const rnn_dims *d, const RNN_T *x, const RNN_T *h0,
                    const RNN_T *c0, const RNN_T *w, RNN_T *ws, RNN_T *y, RNN_T *bvec, RNN_T *gh) {
  int64_t T = d->T, N = d->N, H = d->H, D = d->D, NH = N * H, DH = D * H;
  int64_t GH = d->G * H, GS = d->GS;
  bool lstm = d->mode == MM_RNN_LSTM, gru = d->mode == MM_RNN_GRU;
  RNN_T *yh = y + y_hn(d), *yc = y + y_cn(d);
  for (int64_t l = 0; l < d->L; l++) {
    int64_t in = layer_in(d, l);
    const RNN_T *X = l == 0 ? x : ws + ws_xn(d, l - 1);
    for (int64_t dir = 0; dir < D; dir++) {
      const RNN_T *wih = w + w_off(d, l, dir), *whh = wih + GH * in;
      const RNN_T *bih = d->bias ? whh + GH * H : NULL, *bhh = d->bias ? bih + GH : NULL;
      RNN_T *hs = ws + ws_hs(d, l, dir), *cs = ws + ws_cs(d, l, dir), *g = ws + ws_g(d, l, dir);
      int64_t k = l * D + dir;
      bool fwd = dir == 0;
      if (gru) {
        for (int64_t j = 0; j < 2 * H; j++)
          bvec[j] = bih ? bih[j] + bhh[j] : 0;
        for (int64_t j = 0; j < H; j++) {
          bvec[2 * H + j] = bih ? bih[2 * H + j] : 0;
          bvec[3 * H + j] = bhh ? bhh[2 * H + j] : 0;
        }
      } else {
        for (int64_t j = 0; j < GH; j++)
          bvec[j] = bih ? bih[j] + bhh[j] : 0;
      }
      /* the input projection of every step at once */
      gemm(false, true, T * N, GH, in, X, in, wih, in, 0, g, GS);
      int64_t s0 = fwd ? 0 : T; /* slot of the initial state */
      for (int64_t i = 0; i < NH; i++)
        hs[s0 * NH + i] = h0 ? h0[k * NH + i] : 0;
      if (lstm)
        for (int64_t i = 0; i < NH; i++)
          cs[s0 * NH + i] = c0 ? c0[k * NH + i] : 0;
      for (int64_t s = 0; s < T; s++) {
        int64_t t = fwd ? s : T - 1 - s, sp = fwd ? t : t + 1, so = fwd ? t + 1 : t;
        const RNN_T *hp = hs + sp * NH;
        RNN_T *ho = hs + so * NH, *gt = g + t * N * GS;
        if (lstm) {
          gemm(false, true, N, GH, H, hp, H, whh, H, 1, gt, GS);
          lstm_fwd(N, H, gt, bvec, cs + sp * NH, cs + so * NH, ho);
        } else if (gru) {
          gemm(false, true, N, GH, H, hp, H, whh, H, 0, gh, GH);
          gru_fwd(N, H, gt, gh, bvec, hp, ho);
        } else {
          gemm(false, true, N, GH, H, hp, H, whh, H, 1, gt, GS);
          rnn_fwd(N, H, gt, bvec, d->mode == MM_RNN_RELU, ho);
        }
      }
      int64_t last = fwd ? T : 0;
      memcpy(yh + k * NH, hs + last * NH, (size_t)NH * sizeof(RNN_T));
      if (lstm)
        memcpy(yc + k * NH, cs + last * NH, (size_t)NH * sizeof(RNN_T));
      /* this direction's half of the layer's output: the next layer's input, or out */
      RNN_T *dst;
      int64_t ldt, ldn;
      if (l == d->L - 1) {
        dst = y + dir * H;
        ldt = d->batch_first ? DH : N * DH;
        ldn = d->batch_first ? d->T * DH : DH;
      } else {
        dst = ws + ws_xn(d, l) + dir * H;
        ldt = N * DH;
        ldn = DH;
      }
      for (int64_t t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++)
          memcpy(dst + t * ldt + n * ldn, hs + (fwd ? t + 1 : t) * NH + n * H,
                 (size_t)H * sizeof(RNN_T));
    }
    if (l < d->L - 1 && d->drop) {
      RNN_T *mask = ws + ws_mask(d, l), *xn = ws + ws_xn(d, l);
      RNN_T scale = d->p < 1 ? (RNN_T)(1 / (1 - d->p)) : 0;
      for (int64_t i = 0; i < T * N * DH; i++) {
        mask[i] = mm_random_uniform(ctx) < d->p ? 0 : scale;
        xn[i] *= mask[i];
      }
    }
  }
}

/* gy: the gradient of y (out, h_n, c_n), contiguous. Writes dx ((T, N, I), may be NULL),
 * dh0 and dc0 (may be NULL) and dw (the packed weights' gradient, may be NULL). Scratch: dg
 * (T*N*GS), dhr and dcr (N*H), buf[0..1] (T*N*D*H each, when there are several layers). */
static void backward(const rnn_dims *d, const RNN_T *x, const RNN_T *w, const RNN_T *ws,
                     const RNN_T *gy, RNN_T *dx, RNN_T *dh0, RNN_T *dc0, RNN_T *dw, RNN_T *dg,
                     RNN_T *dhr, RNN_T *dcr, RNN_T *const *buf) {
  int64_t T = d->T, N = d->N, H = d->H, D = d->D, NH = N * H, DH = D * H, TN = T * N;
  int64_t GH = d->G * H, GS = d->GS;
  bool lstm = d->mode == MM_RNN_LSTM, gru = d->mode == MM_RNN_GRU;
  bool relu = d->mode == MM_RNN_RELU, bf = d->batch_first;
  const RNN_T *dout = NULL; /* gradient of the current layer's output, below the top */
  for (int64_t l = d->L - 1; l >= 0; l--) {
    int64_t in = layer_in(d, l);
    const RNN_T *X = l == 0 ? x : ws + ws_xn(d, l - 1);
    RNN_T *dX = l == 0 ? dx : buf[l % 2];
    bool top = l == d->L - 1;
    for (int64_t dir = 0; dir < D; dir++) {
      const RNN_T *wih = w + w_off(d, l, dir), *whh = wih + GH * in;
      const RNN_T *hs = ws + ws_hs(d, l, dir), *cs = ws + ws_cs(d, l, dir);
      const RNN_T *g = ws + ws_g(d, l, dir);
      int64_t k = l * D + dir;
      bool fwd = dir == 0;
      memcpy(dhr, gy + y_hn(d) + k * NH, (size_t)NH * sizeof(RNN_T));
      if (lstm)
        memcpy(dcr, gy + y_cn(d) + k * NH, (size_t)NH * sizeof(RNN_T));
      for (int64_t s = T - 1; s >= 0; s--) {
        int64_t t = fwd ? s : T - 1 - s, sp = fwd ? t : t + 1, so = fwd ? t + 1 : t;
        const RNN_T *dot;
        int64_t ldo;
        if (top) {
          dot = gy + dir * H + t * (bf ? DH : N * DH);
          ldo = bf ? T * DH : DH;
        } else {
          dot = dout + t * N * DH + dir * H;
          ldo = DH;
        }
        const RNN_T *gt = g + t * N * GS;
        RNN_T *dgt = dg + t * N * GS;
        if (lstm) {
          lstm_bwd(N, H, gt, cs + sp * NH, cs + so * NH, dot, ldo, dhr, dcr, dgt);
          gemm(false, false, N, H, GH, dgt, GS, whh, H, 0, dhr, H);
        } else if (gru) {
          gru_bwd(N, H, gt, hs + sp * NH, dot, ldo, dhr, dgt);
          gemm(false, false, N, H, GH, dgt, GS, whh, H, 1, dhr, H);
        } else {
          rnn_bwd(N, H, hs + so * NH, dot, ldo, dhr, relu, dgt);
          gemm(false, false, N, H, GH, dgt, GS, whh, H, 0, dhr, H);
        }
      }
      if (dh0)
        memcpy(dh0 + k * NH, dhr, (size_t)NH * sizeof(RNN_T));
      if (dc0 && lstm)
        memcpy(dc0 + k * NH, dcr, (size_t)NH * sizeof(RNN_T));
      if (dw) {
        RNN_T *dwih = dw + w_off(d, l, dir), *dwhh = dwih + GH * in;
        /* the hidden states each step started from, in time order */
        const RNN_T *hprev = hs + (fwd ? 0 : NH);
        gemm(true, false, GH, H, TN, dg, GS, hprev, H, 0, dwhh, H);
        if (gru) { /* the input part of the gate gradients: columns 0..2H and 3H..4H */
          gemm(true, false, 2 * H, in, TN, dg, GS, X, in, 0, dwih, in);
          gemm(true, false, H, in, TN, dg + 3 * H, GS, X, in, 0, dwih + 2 * H * in, in);
        } else {
          gemm(true, false, GH, in, TN, dg, GS, X, in, 0, dwih, in);
        }
        if (d->bias) {
          RNN_T *dbih = dwhh + GH * H, *dbhh = dbih + GH;
          if (gru) {
            colsum(TN, 2 * H, dg, GS, dbih);
            memcpy(dbhh, dbih, (size_t)(2 * H) * sizeof(RNN_T));
            colsum(TN, H, dg + 2 * H, GS, dbhh + 2 * H);
            colsum(TN, H, dg + 3 * H, GS, dbih + 2 * H);
          } else {
            colsum(TN, GH, dg, GS, dbih);
            memcpy(dbhh, dbih, (size_t)GH * sizeof(RNN_T));
          }
        }
      }
      if (dX) { /* the two directions add up in the input's gradient */
        RNN_T beta = dir == 0 ? 0 : 1;
        if (gru) {
          gemm(false, false, TN, in, 2 * H, dg, GS, wih, in, beta, dX, in);
          gemm(false, false, TN, in, H, dg + 3 * H, GS, wih + 2 * H * in, in, 1, dX, in);
        } else {
          gemm(false, false, TN, in, GH, dg, GS, wih, in, beta, dX, in);
        }
      }
    }
    if (l > 0) {
      if (d->drop) {
        const RNN_T *mask = ws + ws_mask(d, l - 1);
        for (int64_t i = 0; i < TN * DH; i++)
          dX[i] *= mask[i];
      }
      dout = dX;
    }
  }
}

#undef gemm
#undef colsum
#undef lstm_fwd_row
#undef lstm_fwd
#undef lstm_bwd_row
#undef lstm_bwd
#undef gru_fwd_row
#undef gru_fwd
#undef gru_bwd_row
#undef gru_bwd
#undef rnn_fwd_row
#undef rnn_fwd
#undef rnn_bwd_row
#undef rnn_bwd
#undef forward
#undef backward
#undef FN
#undef RNN_CAT
#undef RNN_CAT_
