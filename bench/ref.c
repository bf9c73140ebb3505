/* The physical limits moonml is measured against in `make bench` (bench/run.lua): raw
 * OpenBLAS sgemm, and plain C loops over 10M floats into a reused output buffer.
 * Adapted from ../shared/reference/torch/sgemm_bench.c and triad_bench.c (the workloads
 * behind the figures quoted in the issues), cut down to what the bench compares.
 *
 *   build/bench/ref THREADS [TARGET_S RUNS [cpu]]
 *
 * prints "name seconds_per_call" lines, each the median of RUNS runs (default 5) of a
 * loop sized to last TARGET_S seconds (default 0.25) after at least 0.2 s of warm-up:
 *   sgemm1024  C = A * B, 1024 x 1024 float32, row-major, OpenBLAS with THREADS threads
 *   add_loop   o[i] = a[i] + b[i] over 10M floats, o reused, split over THREADS threads
 *   mul_add_loop  o[i] = a[i] * b[i] + c[i], same
 *   sum_loop   a float sum over 10M floats, split over THREADS threads */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */

#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_LARGE 10000000L
#define N_GEMM 1024
#define MAX_THREADS 64

/* CLOCK_MONOTONIC, or with "cpu" as the fourth argument the process's CPU time, which
 * leaves out the time other processes held the CPU (1-thread runs on a shared machine) */
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
  struct timespec ts;
  clock_gettime(clock_id, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double target_s = 0.25;
static int runs = 5;

/* Seconds per call of fn(arg): median of `runs` runs after a warm-up that sizes them. */
static double median_time(void (*fn)(void *), void *arg) {
  double t0 = now();
  long calls = 0;
  do {
    fn(arg);
    calls++;
  } while (calls < 3 || now() - t0 < 0.2);
  long inner = (long)(target_s / ((now() - t0) / (double)calls));
  if (inner < 1)
    inner = 1;
  double *t = malloc(sizeof(double) * (size_t)runs);
  if (!t)
    return -1;
  for (int r = 0; r < runs; r++) {
    double s = now();
    for (long k = 0; k < inner; k++)
      fn(arg);
    t[r] = (now() - s) / (double)inner;
  }
  qsort(t, (size_t)runs, sizeof(double), cmp_double);
  double m = t[runs / 2];
  free(t);
  return m;
}

/* ---------------------------------------------------------------- sgemm */

typedef struct {
  const float *a, *b;
  float *c;
} gemm_args;

static void gemm(void *p) {
  gemm_args *g = p;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N_GEMM, N_GEMM, N_GEMM, 1.0f, g->a, N_GEMM,
              g->b, N_GEMM, 0.0f, g->c, N_GEMM);
}

/* ---------------------------------------------------------------- loops */

typedef enum { K_ADD, K_MUL_ADD, K_SUM } kind;

typedef struct {
  kind k;
  const float *a, *b, *c;
  float *o;
  long begin, end;
  float acc;
} part;

typedef struct {
  kind k;
  int threads;
  const float *a, *b, *c;
  float *o;
  float result;
} loop_args;

static void *run_part(void *p) {
  part *q = p;
  const float *restrict a = q->a, *restrict b = q->b, *restrict c = q->c;
  float *restrict o = q->o;
  if (q->k == K_ADD) {
    for (long i = q->begin; i < q->end; i++)
      o[i] = a[i] + b[i];
  } else if (q->k == K_MUL_ADD) {
    for (long i = q->begin; i < q->end; i++)
      o[i] = a[i] * b[i] + c[i];
  } else {
    /* 16 partial sums: four vectors of independent additions, as a vectorised reduction
     * keeps (a single accumulator would wait on each addition's latency) */
    float s[16] = {0};
    long i = q->begin;
    for (; i + 16 <= q->end; i += 16)
      for (int j = 0; j < 16; j++)
        s[j] += a[i + j];
    for (; i < q->end; i++)
      s[0] += a[i];
    float acc = 0;
    for (int j = 0; j < 16; j++)
      acc += s[j];
    q->acc = acc;
  }
  return NULL;
}

/* One call: the range split over `threads` threads started for the call, as moonml's own
 * parallel loop does; thread 0 is the caller. */
static void loop(void *p) {
  loop_args *l = p;
  part parts[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  int n = l->threads;
  for (int i = 0; i < n; i++)
    parts[i] = (part){l->k, l->a, l->b, l->c, l->o, N_LARGE * i / n, N_LARGE * (i + 1) / n, 0};
  int started = 1;
  for (; started < n; started++)
    if (pthread_create(&tid[started], NULL, run_part, &parts[started]) != 0)
      break;
  run_part(&parts[0]);
  for (int i = started; i < n; i++)
    run_part(&parts[i]);
  for (int i = 1; i < started; i++)
    pthread_join(tid[i], NULL);
  float s = 0;
  for (int i = 0; i < n; i++)
    s += parts[i].acc;
  l->result = s;
}

static unsigned lcg = 12345u;
static float uniform(void) {
  lcg = lcg * 1664525u + 1013904223u;
  return (float)((lcg >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static float *filled(long n) {
  float *p = aligned_alloc(64, sizeof(float) * (size_t)n);
  if (p)
    for (long i = 0; i < n; i++)
      p[i] = uniform();
  return p;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s THREADS [TARGET_S RUNS [cpu]]\n", argv[0]);
    return 2;
  }
  int threads = atoi(argv[1]);
  if (threads < 1 || threads > MAX_THREADS) {
    fprintf(stderr, "threads must be in 1..%d\n", MAX_THREADS);
    return 2;
  }
  if (argc >= 4) {
    target_s = atof(argv[2]);
    runs = atoi(argv[3]);
    if (!(target_s > 0) || runs < 1) {
      fprintf(stderr, "bad TARGET_S or RUNS\n");
      return 2;
    }
  }
  if (argc >= 5 && strcmp(argv[4], "cpu") == 0)
    clock_id = CLOCK_PROCESS_CPUTIME_ID;
  openblas_set_num_threads(threads);

  float *ga = filled((long)N_GEMM * N_GEMM), *gb = filled((long)N_GEMM * N_GEMM);
  float *gc = filled((long)N_GEMM * N_GEMM);
  float *a = filled(N_LARGE), *b = filled(N_LARGE), *c = filled(N_LARGE), *o = filled(N_LARGE);
  if (!ga || !gb || !gc || !a || !b || !c || !o) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  printf("# openblas %s, %d thread(s)\n", openblas_get_config(), openblas_get_num_threads());
  gemm_args g = {ga, gb, gc};
  printf("sgemm1024 %.9g\n", median_time(gemm, &g));
  fflush(stdout);
  loop_args l = {K_ADD, threads, a, b, c, o, 0};
  printf("add_loop %.9g\n", median_time(loop, &l));
  l.k = K_MUL_ADD;
  printf("mul_add_loop %.9g\n", median_time(loop, &l));
  l.k = K_SUM;
  printf("sum_loop %.9g\n", median_time(loop, &l));
  printf("cpu %.6f\n", (double)clock() / CLOCKS_PER_SEC);
  /* keep the results live */
  volatile float sink = gc[7] + o[7] + l.result;
  (void)sink;
  free(ga);
  free(gb);
  free(gc);
  free(a);
  free(b);
  free(c);
  free(o);
  return 0;
}
