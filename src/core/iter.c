/* Strided iteration over tensors of one (broadcast) shape: size-1 dims are dropped and
 * dims that are contiguous for every operand are merged, so that kernels see long
 * inner runs. Kernels get byte strides and test for the contiguous case themselves. */
#include "internal.h"

void mm_iter_init(mm_iter *it, int n, mm_tensor *const *ts) {
  const mm_tensor *t0 = ts[0];
  it->ntensors = n;
  it->numel = mm_numel(t0);
  int nd = 0;
  for (int d = 0; d < t0->ndim; d++) {
    if (t0->shape[d] == 1)
      continue;
    it->shape[nd] = t0->shape[d];
    for (int k = 0; k < n; k++)
      it->stride[k][nd] = ts[k]->stride[d] * (int64_t)mm_dtype_size(ts[k]->dtype);
    nd++;
  }
  /* merge dim d into d+1 when, for every operand, stepping d equals a full run of d+1 */
  int out = 0;
  for (int d = 0; d < nd; d++) {
    if (out > 0) {
      bool merge = true;
      for (int k = 0; k < n && merge; k++)
        merge = it->stride[k][out - 1] == it->stride[k][d] * it->shape[d];
      if (merge) {
        it->shape[out - 1] *= it->shape[d];
        for (int k = 0; k < n; k++)
          it->stride[k][out - 1] = it->stride[k][d];
        continue;
      }
    }
    it->shape[out] = it->shape[d];
    for (int k = 0; k < n; k++)
      it->stride[k][out] = it->stride[k][d];
    out++;
  }
  if (out == 0) { /* a single element */
    it->shape[0] = 1;
    for (int k = 0; k < n; k++)
      it->stride[k][0] = 0;
    out = 1;
  }
  it->ndim = out;
  for (int k = 0; k < n; k++)
    it->base[k] = mm_data(ts[k]);
}

void mm_iter_run_range(const mm_iter *it, mm_inner_fn fn, void *arg, int64_t begin, int64_t end) {
  int nd = it->ndim, n = it->ntensors;
  int64_t inner = it->shape[nd - 1];
  int64_t inner_stride[MM_ITER_MAX];
  for (int k = 0; k < n; k++)
    inner_stride[k] = it->stride[k][nd - 1];
  int64_t pos = begin;
  while (pos < end) {
    char *ptrs[MM_ITER_MAX];
    int64_t i_inner = pos % inner, rest = pos / inner;
    for (int k = 0; k < n; k++)
      ptrs[k] = it->base[k] + i_inner * inner_stride[k];
    for (int d = nd - 2; d >= 0; d--) {
      int64_t i = rest % it->shape[d];
      rest /= it->shape[d];
      for (int k = 0; k < n; k++)
        ptrs[k] += i * it->stride[k][d];
    }
    int64_t count = inner - i_inner;
    if (count > end - pos)
      count = end - pos;
    fn(ptrs, inner_stride, count, arg);
    pos += count;
  }
}

typedef struct {
  const mm_iter *it;
  mm_inner_fn fn;
  void *arg;
} iter_job;

static void iter_chunk(int64_t begin, int64_t end, void *p) {
  iter_job *job = p;
  mm_iter_run_range(job->it, job->fn, job->arg, begin, end);
}

/* Below this many elements a thread costs more than it saves. */
#define MM_PARALLEL_GRAIN ((int64_t)1 << 18)

void mm_iter_run(const mm_iter *it, mm_inner_fn fn, void *arg) {
  if (it->numel <= 0)
    return;
  if (it->numel < 2 * MM_PARALLEL_GRAIN) {
    mm_iter_run_range(it, fn, arg, 0, it->numel);
    return;
  }
  iter_job job = {it, fn, arg};
  mm_parallel_for(it->numel, MM_PARALLEL_GRAIN, iter_chunk, &job);
}

/* Tensors up to this many elements that need no iterator skip mm_iter entirely. */
#define MM_DIRECT_MAX ((int64_t)1 << 16)

void mm_run_kernel(int n, mm_tensor *const *ts, mm_inner_fn fn, void *arg) {
  int64_t numel = mm_numel(ts[0]);
  if (numel == 0)
    return;
  if (numel <= MM_DIRECT_MAX) {
    char *ptrs[MM_ITER_MAX];
    int64_t strides[MM_ITER_MAX];
    bool direct = true;
    for (int k = 0; k < n && direct; k++) {
      const mm_tensor *t = ts[k];
      bool zero = true;
      for (int d = 0; d < t->ndim && zero; d++)
        zero = t->stride[d] == 0 || t->shape[d] == 1;
      if (zero && numel > 1)
        strides[k] = 0;
      else if (mm_is_contiguous(t))
        strides[k] = (int64_t)mm_dtype_size(t->dtype);
      else
        direct = false;
      ptrs[k] = mm_data(t);
    }
    if (direct) {
      fn(ptrs, strides, numel, arg);
      return;
    }
  }
  mm_iter it;
  mm_iter_init(&it, n, ts);
  mm_iter_run(&it, fn, arg);
}
