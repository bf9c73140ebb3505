/* libFuzzer harness for the IDX reader (mm_read_idx, src/io/idx.c). Byte 0 picks the
 * requested dtype (float32, float64, int64, bool — bool must be refused); the rest is the
 * file, plain or gzip. A tensor that comes back must have the shape its header gave and
 * every element readable; a refusal must carry a "moonml.read_idx:" message. */
#include "fuzz_input.h"
#include "moonml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mm_ctx *ctx = fuzz_ctx();
  if (size < 1)
    return 0;
  static const mm_dtype dtypes[] = {MM_FLOAT32, MM_FLOAT64, MM_INT64, MM_BOOL};
  mm_dtype dt = dtypes[data[0] % 4];
  fuzz_file f;
  fuzz_file_open(&f, data + 1, size - 1);
  mm_tensor *t = mm_read_idx(ctx, f.path, dt);
  fuzz_file_close(&f);
  if (!t) {
    fuzz_check_error(mm_ctx_error(ctx), "moonml.read_idx:");
    return 0;
  }
  if (dt == MM_BOOL || t->dtype != dt || !mm_is_contiguous(t))
    abort();
  /* a plain file holds exactly its header and elements: numel cannot exceed the bytes */
  int64_t n = mm_numel(t);
  int64_t prod = 1;
  for (int d = 0; d < t->ndim; d++)
    prod *= t->shape[d];
  if (prod != n || n < 0)
    abort();
  double acc = 0; /* reads every element: ASan catches a short buffer */
  if (dt == MM_FLOAT32)
    for (int64_t k = 0; k < n; k++)
      acc += ((const float *)mm_data(t))[k];
  else if (dt == MM_FLOAT64)
    for (int64_t k = 0; k < n; k++)
      acc += ((const double *)mm_data(t))[k];
  else
    for (int64_t k = 0; k < n; k++)
      acc += (double)(((const int64_t *)mm_data(t))[k] & 1);
  if (acc == 12345.678) /* keeps the loop from being optimised away */
    fprintf(stderr, ".");
  mm_release(t);
  return 0;
}
