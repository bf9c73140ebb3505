/* IDX reader (MNIST's format): a 4-byte magic (0, 0, element type, number of dims), the
 * dims as big-endian uint32, then the elements big-endian. zlib's gzread reads gzip and
 * plain files alike. */
#include "../core/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct {
  int code;
  const char *name;
  int size;
  bool integer;
} idx_type;

static const idx_type idx_types[] = {
    {0x08, "uint8", 1, true}, {0x09, "int8", 1, true},     {0x0B, "int16", 2, true},
    {0x0C, "int32", 4, true}, {0x0D, "float32", 4, false}, {0x0E, "float64", 8, false},
};

/* Reads exactly n bytes; -1 on a short read. */
static int read_all(gzFile f, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
    int got = gzread(f, p, chunk);
    if (got <= 0)
      return -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

static uint64_t be(const unsigned char *p, int size) {
  uint64_t v = 0;
  for (int i = 0; i < size; i++)
    v = v << 8 | p[i];
  return v;
}

/* One stored element (big-endian) as a double or an int64. */
static double element_double(const unsigned char *p, const idx_type *ty) {
  uint64_t bits = be(p, ty->size);
  switch (ty->code) {
  case 0x08:
    return (double)(uint8_t)bits;
  case 0x09:
    return (double)(int8_t)bits;
  case 0x0B:
    return (double)(int16_t)bits;
  case 0x0C:
    return (double)(int32_t)bits;
  case 0x0D: {
    uint32_t b32 = (uint32_t)bits;
    float f;
    memcpy(&f, &b32, 4);
    return f;
  }
  default: {
    double d;
    memcpy(&d, &bits, 8);
    return d;
  }
  }
}

/* The file's size in bytes, or -1 when it has none (a pipe). Plain C: fseek/ftell. */
static int64_t file_size(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  fclose(f);
  return size;
}

static mm_tensor *fail_null(mm_ctx *ctx, gzFile f, mm_tensor *t, unsigned char *buf) {
  if (f)
    gzclose(f);
  mm_release(t);
  free(buf);
  return NULL;
}

mm_tensor *mm_read_idx(mm_ctx *ctx, const char *path, mm_dtype dtype) {
  if (dtype == MM_BOOL) {
    mm_fail(ctx, "moonml.read_idx: dtype must be float32, float64 or int64");
    return NULL;
  }
  int64_t fsize = file_size(path);
  gzFile f = gzopen(path, "rb");
  if (!f) {
    mm_fail(ctx, "moonml.read_idx: cannot open %s", path);
    return NULL;
  }
  unsigned char head[4];
  if (read_all(f, head, 4) != 0 || head[0] != 0 || head[1] != 0) {
    mm_fail(ctx, "moonml.read_idx: %s is not an IDX file (bad magic number)", path);
    return fail_null(ctx, f, NULL, NULL);
  }
  const idx_type *ty = NULL;
  for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
    if (idx_types[i].code == head[2])
      ty = &idx_types[i];
  if (!ty) {
    mm_fail(ctx, "moonml.read_idx: %s has unknown element type 0x%02x", path, head[2]);
    return fail_null(ctx, f, NULL, NULL);
  }
  if (!ty->integer && dtype == MM_INT64) {
    mm_fail(ctx, "moonml.read_idx: %s stores %s values, which int64 cannot hold", path, ty->name);
    return fail_null(ctx, f, NULL, NULL);
  }
  int ndim = head[3];
  if (ndim < 1 || ndim > MM_MAX_DIMS) {
    mm_fail(ctx, "moonml.read_idx: %s has %d dimensions (1 to %d supported)", path, ndim,
            MM_MAX_DIMS);
    return fail_null(ctx, f, NULL, NULL);
  }
  unsigned char dims[4 * MM_MAX_DIMS];
  if (read_all(f, dims, (size_t)ndim * 4) != 0) {
    mm_fail(ctx, "moonml.read_idx: %s is truncated in its header", path);
    return fail_null(ctx, f, NULL, NULL);
  }
  int64_t shape[MM_MAX_DIMS];
  for (int d = 0; d < ndim; d++)
    shape[d] = (int64_t)be(dims + 4 * d, 4);
  /* the size check comes before any allocation, so a hostile header cannot ask for
   * terabytes: mm_shape_numel refuses sizes past moonml's limit */
  int64_t n = mm_shape_numel(ctx, "read_idx", ndim, shape, dtype);
  if (n < 0)
    return fail_null(ctx, f, NULL, NULL);
  /* nor can a few bytes claiming a huge shape make us allocate it: the data must fit in
   * the file (as it is, or inflated: deflate expands at most 1032:1) */
  if (fsize >= 0 && n > 0) {
    int64_t room = gzdirect(f) ? fsize - 4 - 4 * (int64_t)ndim
                               : (fsize > INT64_MAX / 1032 ? INT64_MAX : fsize * 1032);
    if (n > room / ty->size) {
      mm_fail(ctx, "moonml.read_idx: %s is truncated: the header promises %lld elements", path,
              (long long)n);
      return fail_null(ctx, f, NULL, NULL);
    }
  }
  mm_tensor *t = mm_empty(ctx, dtype, ndim, shape);
  if (!t)
    return fail_null(ctx, f, NULL, NULL);
  /* read in blocks, converting as we go */
  const size_t block = 1 << 16;
  unsigned char *buf = malloc(block * (size_t)ty->size);
  if (!buf) {
    mm_fail(ctx, "moonml.read_idx: out of memory");
    return fail_null(ctx, f, t, NULL);
  }
  for (int64_t done = 0; done < n;) {
    size_t count = (size_t)(n - done) < block ? (size_t)(n - done) : block;
    if (read_all(f, buf, count * (size_t)ty->size) != 0) {
      mm_fail(ctx, "moonml.read_idx: %s is truncated: the header promises %lld elements", path,
              (long long)n);
      return fail_null(ctx, f, t, buf);
    }
    for (size_t i = 0; i < count; i++) {
      const unsigned char *p = buf + i * (size_t)ty->size;
      int64_t at = done + (int64_t)i;
      if (dtype == MM_FLOAT32)
        ((float *)mm_data(t))[at] = ty->code == 0x08 ? (float)p[0] : (float)element_double(p, ty);
      else if (dtype == MM_FLOAT64)
        ((double *)mm_data(t))[at] = element_double(p, ty);
      else
        ((int64_t *)mm_data(t))[at] = (int64_t)element_double(p, ty);
    }
    done += (int64_t)count;
  }
  unsigned char extra;
  if (gzread(f, &extra, 1) > 0) {
    mm_fail(ctx, "moonml.read_idx: %s has data past the %lld elements its header gives", path,
            (long long)n);
    return fail_null(ctx, f, t, buf);
  }
  free(buf);
  gzclose(f);
  return t;
}
