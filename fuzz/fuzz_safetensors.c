/* libFuzzer harness for the safetensors reader (mm_st_load, src/io/safetensors.c), the
 * loader under ml.load, module:load and rec.load_model. The input is the whole file. A
 * refusal must carry a "moonml.load:" message. A file that loads must be consistent: every
 * tensor contiguous with the shape it reports, its bytes within the file, names and
 * metadata readable strings; and it must survive a save and a second load unchanged (the
 * round trip goes through a file in /dev/shm, removed each time). */
#include "fuzz_input.h"
#include "moonml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t elem_size(mm_dtype dt) { return dt == MM_FLOAT32 ? 4 : dt == MM_BOOL ? 1 : 8; }

/* t and u hold the same dtype, shape and bytes (NaN payloads included). */
static int same_tensor(const mm_tensor *t, const mm_tensor *u) {
  if (t->dtype != u->dtype || t->ndim != u->ndim)
    return 0;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] != u->shape[d])
      return 0;
  size_t n = (size_t)mm_numel(t) * elem_size(t->dtype);
  return n == 0 || memcmp(mm_data(t), mm_data(u), n) == 0;
}

static void round_trip(mm_ctx *ctx, mm_st_file *f) {
  static char path[64];
  if (!path[0])
    snprintf(path, sizeof path, "/dev/shm/moonml-fuzz-%d.safetensors", (int)getpid());
  int n = mm_st_count(f), nmeta = mm_st_metadata_count(f);
  mm_st_item *items = calloc((size_t)n + 1, sizeof *items);
  const char **meta = calloc(2 * (size_t)nmeta + 1, sizeof *meta);
  if (!items || !meta)
    abort();
  for (int i = 0; i < n; i++)
    items[i] = (mm_st_item){mm_st_name(f, i), mm_st_tensor(f, i), NULL};
  for (int i = 0; i < nmeta; i++) {
    meta[2 * i] = mm_st_metadata_key(f, i);
    meta[2 * i + 1] = mm_st_metadata_value(f, i);
  }
  if (mm_st_save(ctx, path, n, items, nmeta, meta) != 0) {
    /* whatever the reader accepts, the writer must be able to write back */
    fprintf(stderr, "save of a loaded file failed: %s\n", mm_ctx_error(ctx));
    abort();
  } else {
    mm_st_file *g = mm_st_load(ctx, path);
    if (!g) {
      fprintf(stderr, "reload failed: %s\n", mm_ctx_error(ctx));
      abort();
    }
    if (mm_st_count(g) != n || mm_st_metadata_count(g) != nmeta)
      abort();
    for (int i = 0; i < n; i++) {
      int j = 0; /* the writer orders by dtype and name: find the entry by name */
      while (j < n && strcmp(mm_st_name(g, j), mm_st_name(f, i)) != 0)
        j++;
      if (j == n || !same_tensor(mm_st_tensor(f, i), mm_st_tensor(g, j)))
        abort();
    }
    mm_st_free(g);
  }
  unlink(path);
  free(items);
  free(meta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mm_ctx *ctx = fuzz_ctx();
  fuzz_file file;
  fuzz_file_open(&file, data, size);
  mm_st_file *f = mm_st_load(ctx, file.path);
  fuzz_file_close(&file);
  if (!f) {
    fuzz_check_error(mm_ctx_error(ctx), "moonml.load:");
    return 0;
  }
  uint64_t bytes = 0;
  for (int i = 0; i < mm_st_count(f); i++) {
    const mm_tensor *t = mm_st_tensor(f, i);
    if (!t || !mm_is_contiguous(t) || strlen(mm_st_name(f, i)) > size ||
        strlen(mm_st_dtype(f, i)) == 0)
      abort();
    int64_t n = mm_numel(t);
    bytes += (uint64_t)n; /* at least one file byte per element */
    const unsigned char *p = mm_data(t);
    unsigned acc = 0; /* reads every byte: ASan catches a short buffer */
    for (size_t k = 0; k < (size_t)n * elem_size(t->dtype); k++)
      acc += p[k];
    if (t->dtype == MM_BOOL)
      for (int64_t k = 0; k < n; k++)
        if (p[k] > 1)
          abort();
    if (acc == 0xdeadbeef)
      fprintf(stderr, ".");
  }
  if (bytes > size)
    abort();
  for (int i = 0; i < mm_st_metadata_count(f); i++)
    if (strlen(mm_st_metadata_key(f, i)) + strlen(mm_st_metadata_value(f, i)) > size)
      abort();
  round_trip(ctx, f);
  mm_st_free(f);
  return 0;
}
