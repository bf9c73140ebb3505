/* moonml's own parallel loop, and the one thread-count knob shared with OpenBLAS so
 * that the two pools never multiply: moonml never calls BLAS inside its own loops. */
#include "internal.h"

#include <cblas.h>
#include <pthread.h>

static int num_threads = 0; /* 0: not set yet, take OpenBLAS's default */

void mm_set_num_threads(int n) {
  if (n < 1)
    n = 1;
  num_threads = n;
  openblas_set_num_threads(n);
}

int mm_get_num_threads(void) {
  if (num_threads == 0) {
    num_threads = openblas_get_num_threads();
    if (num_threads < 1)
      num_threads = 1;
  }
  return num_threads;
}

typedef struct {
  mm_range_fn fn;
  void *arg;
  int64_t begin, end;
} chunk;

static void *run_chunk(void *p) {
  chunk *c = p;
  c->fn(c->begin, c->end, c->arg);
  return NULL;
}

void mm_parallel_for(int64_t n, int64_t grain, mm_range_fn fn, void *arg) {
  int threads = mm_get_num_threads();
  if (grain < 1)
    grain = 1;
  int64_t parts = n / grain;
  if (parts > threads)
    parts = threads;
  if (parts <= 1) {
    if (n > 0)
      fn(0, n, arg);
    return;
  }
  chunk chunks[64];
  pthread_t tid[64];
  bool started[64] = {false};
  if (parts > 64)
    parts = 64;
  for (int64_t i = 0; i < parts; i++) {
    chunks[i] = (chunk){fn, arg, n * i / parts, n * (i + 1) / parts};
  }
  /* chunk 0 runs on this thread; a thread that cannot start runs here too */
  for (int64_t i = 1; i < parts; i++)
    started[i] = pthread_create(&tid[i], NULL, run_chunk, &chunks[i]) == 0;
  run_chunk(&chunks[0]);
  for (int64_t i = 1; i < parts; i++) {
    if (started[i])
      pthread_join(tid[i], NULL);
    else
      run_chunk(&chunks[i]);
  }
}
