/* C test of the safetensors API as an embedding host calls it (no Lua): mm_st_save with
 * views and file dtypes, mm_st_load, the exact header text, and a refused file. Run by
 * `make test-c`. Prints one line per failed check and exits non-zero if any failed. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */

#include "moonml.h"

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

static long read_file(const char *path, char *buf, long cap) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  long n = (long)fread(buf, 1, (size_t)cap, f);
  fclose(f);
  return n;
}

int main(void) {
  mm_ctx *ctx = mm_ctx_new();
  char path[] = "/tmp/moonml_st_test_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  fclose(fdopen(fd, "w"));

  /* a 2x3 matrix saved through its transpose (a view), and int64 ids written as I16 */
  int64_t shape[2] = {2, 3}, n3 = 3;
  mm_tensor *m = mm_arange(ctx, MM_FLOAT32, 1, 6, 1);
  mm_tensor *m2 = mm_view(ctx, m, 2, shape);
  mm_tensor *mt = mm_transpose(ctx, m2, 0, 1);
  mm_tensor *ids = mm_from_buffer(ctx, MM_INT64, 1, &n3, (int64_t[]){-5, 0, 300}, 24);
  mm_st_item items[2] = {{"w", mt, NULL}, {"ids", ids, "I16"}};
  const char *meta[2] = {"who", "c test"};
  CHECK(mm_st_save(ctx, path, 2, items, 1, meta) == 0);

  char buf[512];
  long n = read_file(path, buf, sizeof buf);
  const char *header = "{\"__metadata__\":{\"who\":\"c test\"},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},"
                       "\"ids\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[24,30]}}";
  size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
  CHECK(n == (long)(8 + padded + 30));
  CHECK((unsigned char)buf[0] == padded && buf[1] == 0);
  CHECK(memcmp(buf + 8, header, hlen) == 0);
  CHECK(buf[8 + hlen] == ' ' && buf[8 + padded - 1] == ' ');

  mm_st_file *f = mm_st_load(ctx, path);
  CHECK(f != NULL);
  if (f) {
    CHECK(mm_st_count(f) == 2 && mm_st_metadata_count(f) == 1);
    CHECK(strcmp(mm_st_metadata_key(f, 0), "who") == 0);
    CHECK(strcmp(mm_st_metadata_value(f, 0), "c test") == 0);
    /* file order: w (F32) then ids (I16) */
    CHECK(strcmp(mm_st_name(f, 0), "w") == 0 && strcmp(mm_st_dtype(f, 1), "I16") == 0);
    mm_tensor *w = mm_st_tensor(f, 0), *back = mm_st_tensor(f, 1);
    CHECK(w->ndim == 2 && w->shape[0] == 3 && w->shape[1] == 2);
    CHECK(mm_get_double(w, (int64_t[]){0, 1}) == 4 && mm_get_double(w, (int64_t[]){2, 0}) == 3);
    CHECK(back->dtype == MM_INT64 && mm_get_int64(back, (int64_t[]){0}) == -5);
    CHECK(mm_get_int64(back, (int64_t[]){2}) == 300);
    mm_retain(w); /* kept after the file is freed */
    mm_st_free(f);
    CHECK(mm_get_double(w, (int64_t[]){1, 1}) == 5);
    mm_release(w);
  }

  /* a value that does not fit I8: an error, and the file written before is kept */
  mm_st_item bad = {"ids", ids, "I8"};
  CHECK(mm_st_save(ctx, path, 1, &bad, 0, NULL) != 0);
  CHECK(strstr(mm_ctx_error(ctx), "'ids' holds 300 at element 3, which does not fit I8") != NULL);
  CHECK(read_file(path, buf, sizeof buf) == n);

  /* a header length past the end of the file */
  FILE *out = fopen(path, "wb");
  fwrite("\xff\0\0\0\0\0\0\0{}", 1, 10, out);
  fclose(out);
  CHECK(mm_st_load(ctx, path) == NULL);
  CHECK(strstr(mm_ctx_error(ctx), "the header length 255 runs past the end of the file") != NULL);

  remove(path);
  mm_release(mt);
  mm_release(m2);
  mm_release(m);
  mm_release(ids);
  mm_ctx_release(ctx);
  if (failures)
    fprintf(stderr, "safetensors_test: %d checks failed\n", failures);
  else
    printf("safetensors_test: all checks passed\n");
  return failures ? 1 : 0;
}
