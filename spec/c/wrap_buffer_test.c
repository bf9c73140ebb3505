/* C test of the embedding API: mm_wrap_buffer over caller memory (with and without a free
 * callback), ops on it and its views, and mm_from_bytes / mm_to_bytes. Run by `make test-c`.
 * Prints one line per failed check and exits non-zero if any failed. */
#include "moonml.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

typedef struct {
  int calls;
  void *data;
} free_log;

static void log_free(void *data, void *ud) {
  free_log *log = ud;
  log->calls++;
  log->data = data;
  free(data);
}

static double at2(const mm_tensor *t, int64_t i, int64_t j) {
  return mm_get_double(t, (int64_t[]){i, j});
}

/* a heap buffer handed over to moonml, freed by the callback when the last view goes */
static void test_owned(mm_ctx *ctx) {
  float *buf = malloc(6 * sizeof *buf);
  for (int i = 0; i < 6; i++)
    buf[i] = (float)(i + 1); /* [[1, 2, 3], [4, 5, 6]] */
  free_log log = {0, NULL};
  int64_t shape[2] = {2, 3};
  mm_tensor *t = mm_wrap_buffer(ctx, MM_FLOAT32, 2, shape, buf, 6 * sizeof *buf, log_free, &log);
  CHECK(t != NULL);
  if (!t)
    return;
  CHECK(mm_data(t) == buf); /* no copy */
  CHECK(mm_is_contiguous(t) && mm_numel(t) == 6);

  /* an op on a view of the wrapped memory */
  mm_tensor *v = mm_transpose(ctx, t, 0, 1); /* 3x2 */
  mm_tensor *s = mm_math(ctx, MM_MATH_SIN, v);
  CHECK(s && s->ndim == 2 && s->shape[0] == 3 && s->shape[1] == 2);
  for (int i = 0; s && i < 3; i++)
    for (int j = 0; j < 2; j++)
      CHECK(fabs(at2(s, i, j) - sin((double)(j * 3 + i + 1))) < 1e-6);
  mm_tensor *sum = mm_binary(ctx, MM_OP_ADD, t, t);
  CHECK(sum && at2(sum, 1, 2) == 12.0);

  /* in place writes go to the caller's memory */
  mm_bound lo = {true, NULL, {2, true}}, hi = {true, NULL, {5, true}};
  CHECK(mm_clamp_(ctx, t, lo, hi) == 0);
  CHECK(buf[0] == 2.0f && buf[1] == 2.0f && buf[4] == 5.0f && buf[5] == 5.0f);
  CHECK(at2(v, 2, 1) == 5.0); /* the view sees it */

  mm_release(s);
  mm_release(sum);
  mm_release(t);
  CHECK(log.calls == 0); /* the view v still holds the buffer */
  mm_release(v);
  CHECK(log.calls == 1 && log.data == buf);
}

/* caller memory on the stack, NULL free_fn: moonml never frees it */
static void test_borrowed(mm_ctx *ctx) {
  int64_t data[4] = {3, -1, 4, -1};
  int64_t shape[1] = {4};
  mm_tensor *t = mm_wrap_buffer(ctx, MM_INT64, 1, shape, data, sizeof data, NULL, NULL);
  CHECK(t != NULL);
  if (!t)
    return;
  mm_tensor *z = mm_zeros(ctx, MM_INT64, 1, shape);
  mm_tensor *m = mm_maximum(ctx, t, z); /* out of place: data unchanged */
  CHECK(m && mm_get_int64(m, (int64_t[]){1}) == 0 && mm_get_int64(m, (int64_t[]){2}) == 4);
  CHECK(data[1] == -1);
  CHECK(mm_maximum_(ctx, t, z) == 0);
  CHECK(data[1] == 0 && data[3] == 0 && data[2] == 4);
  size_t live = mm_ctx_live_bytes(ctx);
  mm_release(t); /* nothing freed: the array belongs to this function */
  CHECK(mm_ctx_live_bytes(ctx) == live);
  CHECK(data[0] == 3);
  mm_release(m);
  mm_release(z);
}

/* a failed wrap takes nothing: the callback is not called */
static void test_errors(mm_ctx *ctx) {
  free_log log = {0, NULL};
  double buf[4] = {0};
  int64_t shape[2] = {2, 3};
  mm_tensor *t = mm_wrap_buffer(ctx, MM_FLOAT64, 2, shape, buf, sizeof buf, log_free, &log);
  CHECK(t == NULL);
  CHECK(strstr(mm_ctx_error(ctx), "moonml.wrap_buffer:") == mm_ctx_error(ctx));
  CHECK(strstr(mm_ctx_error(ctx), "32 bytes given") && strstr(mm_ctx_error(ctx), "needs 48"));
  CHECK(log.calls == 0);
  int64_t one[1] = {1};
  t = mm_wrap_buffer(ctx, MM_FLOAT64, 1, one, (char *)buf + 4, 8, log_free, &log);
  CHECK(t == NULL && strstr(mm_ctx_error(ctx), "aligned"));
  t = mm_wrap_buffer(ctx, MM_FLOAT64, 1, one, NULL, 8, NULL, NULL);
  CHECK(t == NULL && strstr(mm_ctx_error(ctx), "NULL"));
  int64_t neg[1] = {-2};
  t = mm_wrap_buffer(ctx, MM_FLOAT64, 1, neg, buf, 8, NULL, NULL);
  CHECK(t == NULL && strstr(mm_ctx_error(ctx), "negative size"));
  CHECK(log.calls == 0);
  int64_t none[1] = {0};
  t = mm_wrap_buffer(ctx, MM_FLOAT32, 1, none, NULL, 0, NULL, NULL); /* empty: NULL is fine */
  CHECK(t != NULL && mm_numel(t) == 0);
  mm_release(t);
}

/* a wrapped buffer outlives the context handle: the last tensor frees both */
static void test_context_released_first(void) {
  mm_ctx *ctx = mm_ctx_new();
  float *buf = calloc(3, sizeof *buf);
  free_log log = {0, NULL};
  int64_t shape[1] = {3};
  mm_tensor *t = mm_wrap_buffer(ctx, MM_FLOAT32, 1, shape, buf, 3 * sizeof *buf, log_free, &log);
  CHECK(t && mm_fill_(ctx, t, 1) == 0 && buf[2] == 1.0f);
  mm_ctx_release(ctx); /* the storage keeps the context alive */
  CHECK(log.calls == 0);
  mm_release(t);
  CHECK(log.calls == 1);
}

static void test_bytes(mm_ctx *ctx) {
  /* little-endian bytes of 1.0f and -2.0f */
  const unsigned char le[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
  int64_t shape[1] = {2};
  mm_tensor *t = mm_from_bytes(ctx, MM_FLOAT32, 1, shape, le, sizeof le);
  CHECK(t && mm_get_double(t, (int64_t[]){0}) == 1.0 && mm_get_double(t, (int64_t[]){1}) == -2.0);
  unsigned char out[8];
  CHECK(t && mm_to_bytes(ctx, t, out, sizeof out) == 0 && memcmp(out, le, 8) == 0);
  CHECK(t && mm_to_bytes(ctx, t, out, 4) == -1 && strstr(mm_ctx_error(ctx), "moonml.to_bytes:"));
  mm_release(t);
  const unsigned char bad[3] = {1, 0, 7};
  int64_t three[1] = {3};
  CHECK(mm_from_bytes(ctx, MM_BOOL, 1, three, bad, 3) == NULL &&
        strstr(mm_ctx_error(ctx), "offset 2 is 7"));
  CHECK(mm_from_bytes(ctx, MM_INT64, 1, three, bad, 3) == NULL &&
        strstr(mm_ctx_error(ctx), "3 bytes given") && strstr(mm_ctx_error(ctx), "needs 24"));
}

int main(void) {
  mm_ctx *ctx = mm_ctx_new();
  test_owned(ctx);
  test_borrowed(ctx);
  test_errors(ctx);
  test_bytes(ctx);
  CHECK(mm_ctx_live_bytes(ctx) == 0);
  mm_ctx_release(ctx);
  test_context_released_first();
  if (failures) {
    fprintf(stderr, "wrap_buffer_test: %d check(s) failed\n", failures);
    return 1;
  }
  printf("wrap_buffer_test: all checks passed\n");
  return 0;
}
