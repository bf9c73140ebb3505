/* a + b on float32 through moonml's core against a plain C loop into a reused buffer.
 *
 *   make && cc -O3 -Isrc bench/elementwise_add.c build/libmoonml.a \
 *       $(pkg-config --libs openblas) -lm -pthread -o build/bench_add && build/bench_add
 *
 * Prints the median of 5 runs for 10M elements (plain loop; mm_binary, whose freed result
 * buffer the context's cache hands back on the next call; mm_binary_ in place) with 1 and
 * with the default number of threads, then the per-call time of mm_binary on 16 elements. */
#include "../src/moonml.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define RUNS 5
#define MEDIAN(times, body)                                                                        \
  do {                                                                                             \
    for (int r = 0; r < RUNS; r++) {                                                               \
      double t0 = now();                                                                           \
      body;                                                                                        \
      times[r] = now() - t0;                                                                       \
    }                                                                                              \
    qsort(times, RUNS, sizeof(double), cmp);                                                       \
  } while (0)

/* kept out of line so that the compiler cannot drop or fuse it across runs */
__attribute__((noinline)) static void plain_add(float *o, const float *a, const float *b,
                                                int64_t n) {
  for (int64_t i = 0; i < n; i++)
    o[i] = a[i] + b[i];
}

int main(void) {
  mm_ctx *ctx = mm_ctx_new();
  const int64_t n = 10 * 1000 * 1000;
  int64_t shape[1] = {n};
  mm_tensor *a = mm_rand(ctx, MM_FLOAT32, 1, shape), *b = mm_rand(ctx, MM_FLOAT32, 1, shape);
  float *out = malloc(sizeof(float) * (size_t)n);
  double t[RUNS];
  plain_add(out, mm_data(a), mm_data(b), n); /* fault the pages in once */
  MEDIAN(t, plain_add(out, mm_data(a), mm_data(b), n));
  printf("10M plain C loop, reused buffer : %7.2f ms\n", t[RUNS / 2] * 1e3);

  int threads = mm_get_num_threads();
  for (int nt = 1; nt <= threads; nt += threads > 1 ? threads - 1 : 1) {
    mm_set_num_threads(nt);
    mm_release(mm_binary(ctx, MM_OP_ADD, a, b)); /* warm the buffer cache */
    MEDIAN(t, mm_release(mm_binary(ctx, MM_OP_ADD, a, b)));
    printf("10M mm_binary add, %d thread(s)  : %7.2f ms\n", nt, t[RUNS / 2] * 1e3);
    mm_tensor *c = mm_clone(ctx, a);
    MEDIAN(t, mm_binary_(ctx, MM_OP_ADD, c, b));
    printf("10M mm_binary_ add, %d thread(s) : %7.2f ms\n", nt, t[RUNS / 2] * 1e3);
    mm_release(c);
  }

  int64_t small[1] = {16};
  mm_tensor *x = mm_rand(ctx, MM_FLOAT32, 1, small), *y = mm_rand(ctx, MM_FLOAT32, 1, small);
  const int calls = 1000000;
  MEDIAN(t, for (int i = 0; i < calls; i++) mm_release(mm_binary(ctx, MM_OP_ADD, x, y)));
  printf("16-element mm_binary add        : %7.1f ns/call\n", t[RUNS / 2] / calls * 1e9);
  MEDIAN(t, for (int i = 0; i < calls; i++) mm_binary_(ctx, MM_OP_ADD, x, y));
  printf("16-element mm_binary_ add       : %7.1f ns/call\n", t[RUNS / 2] / calls * 1e9);

  mm_release(x);
  mm_release(y);
  mm_release(a);
  mm_release(b);
  free(out);
  mm_ctx_release(ctx);
  return 0;
}
