/* libFuzzer harness for the PNG reader (mm_png_load, src/io/png.c, through libpng), the
 * loader under ml.image.load. The input is the whole file. A refusal must carry a
 * "moonml.image.load:" message; an image that loads must be a contiguous float32
 * C x H x W tensor, C in 1..4, every value in [0, 1]. Allocation is bounded by the file: a
 * small file may not claim a huge image (libFuzzer's -malloc_limit_mb catches that). */
#include "fuzz_input.h"
#include "moonml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mm_ctx *ctx = fuzz_ctx();
  fuzz_file file;
  fuzz_file_open(&file, data, size);
  mm_tensor *t = mm_png_load(ctx, file.path);
  fuzz_file_close(&file);
  if (!t) {
    fuzz_check_error(mm_ctx_error(ctx), "moonml.image.load:");
    return 0;
  }
  if (t->dtype != MM_FLOAT32 || t->ndim != 3 || t->shape[0] < 1 || t->shape[0] > 4 ||
      t->shape[1] < 1 || t->shape[2] < 1 || !mm_is_contiguous(t))
    abort();
  const float *p = mm_data(t);
  for (int64_t k = 0, n = mm_numel(t); k < n; k++)
    if (!(p[k] >= 0.0f && p[k] <= 1.0f))
      abort();
  mm_release(t);
  return 0;
}
