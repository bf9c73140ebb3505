/* Tensors from and to raw bytes: wrapping caller memory without a copy (an embedding host's
 * buffers), and little-endian byte strings (the layout of safetensors and NumPy's '<'). */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool host_is_little_endian(void) {
  const uint16_t one = 1;
  uint8_t first;
  memcpy(&first, &one, 1);
  return first == 1;
}

/* Reverses the bytes of each element in place (big-endian hosts only). */
static void swap_elements(void *data, size_t count, size_t es) {
  uint8_t *p = data;
  for (size_t i = 0; i < count; i++, p += es)
    for (size_t a = 0, b = es - 1; a < b; a++, b--) {
      uint8_t t = p[a];
      p[a] = p[b];
      p[b] = t;
    }
}

static bool valid_dtype(mm_dtype dt) { return (unsigned)dt < MM_DTYPE_COUNT; }

/* The byte count the shape needs, or -1 with a message naming op and both counts. */
static int64_t needed_bytes(mm_ctx *ctx, const char *op, mm_dtype dt, int ndim,
                            const int64_t *shape, size_t nbytes) {
  if (!valid_dtype(dt))
    return mm_fail(ctx, "moonml.%s: unknown dtype %d", op, (int)dt);
  int64_t n = mm_shape_numel(ctx, op, ndim, shape, dt);
  if (n < 0)
    return -1;
  size_t need = (size_t)n * mm_dtype_size(dt);
  if (nbytes != need) {
    char buf[128];
    return mm_fail(ctx, "moonml.%s: %zu bytes given, but shape %s of %s needs %zu bytes", op,
                   nbytes, mm_shape_str(buf, sizeof buf, ndim, shape), mm_dtype_name(dt), need);
  }
  return (int64_t)need;
}

mm_tensor *mm_wrap_buffer(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape, void *data,
                          size_t nbytes, mm_free_fn free_fn, void *free_ud) {
  int64_t need = needed_bytes(ctx, "wrap_buffer", dt, ndim, shape, nbytes);
  if (need < 0)
    return NULL;
  if (!data && need > 0) {
    mm_fail(ctx, "moonml.wrap_buffer: data is NULL");
    return NULL;
  }
  /* kernels read elements through typed pointers */
  if ((uintptr_t)data % mm_dtype_size(dt) != 0) {
    mm_fail(ctx, "moonml.wrap_buffer: data is not aligned to the %zu-byte elements of %s",
            mm_dtype_size(dt), mm_dtype_name(dt));
    return NULL;
  }
  mm_storage *s = mm_storage_wrap(ctx, data, nbytes, free_fn, free_ud);
  if (!s)
    return NULL;
  mm_tensor *t = mm_tensor_wrap(s, dt, ndim, shape);
  if (!t) { /* the buffer stays the caller's: drop the storage without handing it back */
    mm_ctx_release(ctx);
    free(s);
    return NULL;
  }
  mm_storage_release(s);
  return t;
}

mm_tensor *mm_from_bytes(mm_ctx *ctx, mm_dtype dt, int ndim, const int64_t *shape, const void *data,
                         size_t nbytes) {
  int64_t need = needed_bytes(ctx, "from_bytes", dt, ndim, shape, nbytes);
  if (need < 0)
    return NULL;
  if (dt == MM_BOOL) {
    const uint8_t *p = data;
    for (int64_t i = 0; i < need; i++)
      if (p[i] > 1) {
        mm_fail(ctx, "moonml.from_bytes: bool bytes must be 0 or 1, byte at offset %lld is %u",
                (long long)i, (unsigned)p[i]);
        return NULL;
      }
  }
  mm_tensor *t = mm_empty(ctx, dt, ndim, shape);
  if (!t)
    return NULL;
  if (need > 0) {
    memcpy(mm_data(t), data, (size_t)need);
    if (!host_is_little_endian())
      swap_elements(mm_data(t), (size_t)need / mm_dtype_size(dt), mm_dtype_size(dt));
  }
  return t;
}

int mm_to_bytes(mm_ctx *ctx, const mm_tensor *t, void *out, size_t nbytes) {
  size_t need = (size_t)mm_numel(t) * mm_dtype_size(t->dtype);
  if (nbytes != need)
    return mm_fail(ctx, "moonml.to_bytes: the buffer holds %zu bytes, the tensor needs %zu", nbytes,
                   need);
  if (need == 0)
    return 0;
  mm_tensor *c = mm_contiguous(ctx, t); /* row-major order of a strided view */
  if (!c)
    return -1;
  memcpy(out, mm_data(c), need);
  mm_release(c);
  if (!host_is_little_endian())
    swap_elements(out, need / mm_dtype_size(t->dtype), mm_dtype_size(t->dtype));
  return 0;
}
