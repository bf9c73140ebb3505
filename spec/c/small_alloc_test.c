/* C test of the context's free lists for tensor headers and small storages (src/core/ctx.c):
 * recycled blocks never alias a live tensor, views outlive the tensor they came from, a
 * tensor may outlive mm_ctx_release of its context, and the cache limit and clear_cache
 * apply to them. Run by `make test-c`; run it under valgrind for leaks and stale reads.
 * Prints one line per failed check and exits non-zero if any failed. */
#include "moonml.h"

#include <stdio.h>
#include <stdlib.h>

static int failures = 0;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

#define COUNT 600

/* Tensors of 0 to 1,100 floats (every small size class and past the largest), each filled
 * with its own value, all alive at once: no two may share memory. */
static void test_no_alias(mm_ctx *ctx) {
  size_t live0 = mm_ctx_live_bytes(ctx);
  for (int round = 0; round < 3; round++) {
    mm_tensor *ts[COUNT];
    size_t bytes = 0;
    for (int i = 0; i < COUNT; i++) {
      int64_t n = (i * 37 + round * 11) % 1100;
      ts[i] = mm_full(ctx, MM_FLOAT32, 1, &n, (double)(i + 1));
      CHECK(ts[i] != NULL);
      bytes += (size_t)n * sizeof(float);
    }
    CHECK(mm_ctx_live_bytes(ctx) == live0 + bytes);
    for (int i = 0; i < COUNT; i++) {
      const float *p = mm_data(ts[i]);
      int64_t n = mm_numel(ts[i]);
      int ok = 1;
      for (int64_t k = 0; k < n; k++)
        ok &= p[k] == (float)(i + 1);
      CHECK(ok);
    }
    /* release every other one, then make new ones in their blocks and check again */
    for (int i = 0; i < COUNT; i += 2) {
      mm_release(ts[i]);
      int64_t n = (i * 53 + 7) % 1100;
      ts[i] = mm_full(ctx, MM_FLOAT32, 1, &n, -(double)(i + 1));
    }
    for (int i = 0; i < COUNT; i++) {
      const float *p = mm_data(ts[i]);
      float want = i % 2 == 0 ? -(float)(i + 1) : (float)(i + 1);
      int ok = 1;
      for (int64_t k = 0; k < mm_numel(ts[i]); k++)
        ok &= p[k] == want;
      CHECK(ok);
    }
    for (int i = 0; i < COUNT; i++)
      mm_release(ts[i]);
    CHECK(mm_ctx_live_bytes(ctx) == live0);
  }
}

/* A view keeps the storage after its source tensor is released, and the blocks freed
 * meanwhile (the source's header) do not disturb it. */
static void test_view_outlives(mm_ctx *ctx) {
  int64_t shape[2] = {3, 4};
  mm_tensor *a = mm_arange(ctx, MM_FLOAT32, 0, 11, 1);
  mm_tensor *m = mm_view(ctx, a, 2, shape);
  mm_tensor *row = mm_select(ctx, m, 0, 2); /* 8, 9, 10, 11 */
  CHECK(a && m && row);
  mm_release(a);
  mm_release(m);
  mm_tensor *junk[8];
  for (int i = 0; i < 8; i++)
    junk[i] = mm_full(ctx, MM_FLOAT32, 2, shape, 99);
  for (int64_t j = 0; j < 4; j++)
    CHECK(mm_get_double(row, &j) == (double)(8 + j));
  for (int i = 0; i < 8; i++)
    mm_release(junk[i]);
  mm_release(row);
}

/* A limit of 0 keeps nothing; clear_cache empties the lists; both leave tensors working. */
static void test_limits(mm_ctx *ctx) {
  int64_t n = 16;
  mm_ctx_set_cache_limit(ctx, 0);
  for (int i = 0; i < 100; i++) {
    mm_tensor *t = mm_full(ctx, MM_FLOAT32, 1, &n, i);
    CHECK(t && ((float *)mm_data(t))[15] == (float)i);
    mm_release(t);
  }
  mm_ctx_set_cache_limit(ctx, (size_t)256 << 20);
  mm_tensor *keep = mm_full(ctx, MM_FLOAT32, 1, &n, 5);
  for (int i = 0; i < 100; i++)
    mm_release(mm_full(ctx, MM_INT64, 1, &n, i));
  mm_ctx_clear_cache(ctx);
  CHECK(((float *)mm_data(keep))[0] == 5.0f);
  mm_release(keep);
}

int main(void) {
  mm_ctx *ctx = mm_ctx_new();
  CHECK(ctx != NULL);
  test_no_alias(ctx);
  test_view_outlives(ctx);
  test_limits(ctx);

  /* a tensor and its view outlive the context's last outside reference: the storage keeps
   * the context (and its free lists) until the last of them goes */
  int64_t n = 8;
  mm_tensor *t = mm_full(ctx, MM_FLOAT32, 1, &n, 3);
  mm_tensor *v = mm_narrow(ctx, t, 0, 2, 4);
  for (int i = 0; i < 10; i++)
    mm_release(mm_full(ctx, MM_FLOAT32, 1, &n, i)); /* fill the free lists */
  mm_ctx_release(ctx);
  mm_release(t);
  int64_t j = 3;
  CHECK(mm_get_double(v, &j) == 3.0);
  mm_release(v); /* frees the context, and its free lists with it */

  if (failures) {
    fprintf(stderr, "small_alloc_test: %d check(s) failed\n", failures);
    return 1;
  }
  printf("small_alloc_test: all checks passed\n");
  return 0;
}
