/* The per-state context: error message, random generator, storage allocation and the
 * cache that reuses large buffers instead of faulting in fresh pages for each op. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mm_ctx *mm_ctx_new(void) {
  mm_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx)
    return NULL;
  ctx->refcount = 1;
  ctx->cache_limit = (size_t)256 << 20; /* the default moonml.h documents */
  ctx->grad_enabled = true;
  mm_manual_seed(ctx, 0x6d6f6f6e6d6cULL); /* "moonml" */
  return ctx;
}

void mm_ctx_retain(mm_ctx *ctx) { ctx->refcount++; }

void mm_ctx_clear_cache(mm_ctx *ctx) {
  for (int i = 0; i < ctx->ncached; i++)
    free(ctx->cache[i].ptr);
  ctx->ncached = 0;
  ctx->cached_bytes = 0;
}

void mm_ctx_release(mm_ctx *ctx) {
  if (!ctx || --ctx->refcount > 0)
    return;
  mm_ctx_clear_cache(ctx);
  free(ctx);
}

const char *mm_ctx_error(const mm_ctx *ctx) { return ctx->err; }

int mm_fail(mm_ctx *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
  va_end(ap);
  return -1;
}

size_t mm_ctx_take_allocated(mm_ctx *ctx) {
  size_t n = ctx->allocated;
  ctx->allocated = 0;
  return n;
}

size_t mm_ctx_live_bytes(const mm_ctx *ctx) { return ctx->live; }

void mm_ctx_set_cache_limit(mm_ctx *ctx, size_t bytes) {
  ctx->cache_limit = bytes;
  while (ctx->ncached > 0 && ctx->cached_bytes > bytes) {
    ctx->ncached--;
    ctx->cached_bytes -= ctx->cache[ctx->ncached].capacity;
    free(ctx->cache[ctx->ncached].ptr);
  }
}

/* ------------------------------------------------------------------ storage */

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* Takes the smallest cached buffer that fits and wastes at most half of itself. */
static void *cache_take(mm_ctx *ctx, size_t need, size_t *capacity) {
  int best = -1;
  for (int i = 0; i < ctx->ncached; i++) {
    size_t cap = ctx->cache[i].capacity;
    if (cap >= need && cap / 2 <= need && (best < 0 || cap < ctx->cache[best].capacity))
      best = i;
  }
  if (best < 0)
    return NULL;
  void *p = ctx->cache[best].ptr;
  *capacity = ctx->cache[best].capacity;
  ctx->cached_bytes -= *capacity;
  ctx->cache[best] = ctx->cache[--ctx->ncached];
  return p;
}

static void cache_put(mm_ctx *ctx, void *p, size_t capacity) {
  if (capacity > ctx->cache_limit) {
    free(p);
    return;
  }
  /* make room: drop the oldest entries (front of the array) */
  while (ctx->ncached > 0 &&
         (ctx->ncached == MM_CACHE_SLOTS || ctx->cached_bytes + capacity > ctx->cache_limit)) {
    free(ctx->cache[0].ptr);
    ctx->cached_bytes -= ctx->cache[0].capacity;
    memmove(&ctx->cache[0], &ctx->cache[1], (size_t)(ctx->ncached - 1) * sizeof ctx->cache[0]);
    ctx->ncached--;
  }
  ctx->cache[ctx->ncached].ptr = p;
  ctx->cache[ctx->ncached].capacity = capacity;
  ctx->ncached++;
  ctx->cached_bytes += capacity;
}

mm_storage *mm_storage_new(mm_ctx *ctx, size_t nbytes, const char *op) {
  size_t header = round_up(sizeof(mm_storage), MM_ALIGN);
  mm_storage *s;
  if (nbytes < MM_CACHE_MIN_BYTES) {
    /* small: header and data in one block */
    s = aligned_alloc(MM_ALIGN, header + round_up(nbytes ? nbytes : 1, MM_ALIGN));
    if (!s) {
      mm_fail(ctx, "moonml.%s: out of memory allocating %zu bytes", op, nbytes);
      return NULL;
    }
    s->data = (char *)s + header;
    s->capacity = 0;
  } else {
    s = malloc(sizeof *s);
    if (!s) {
      mm_fail(ctx, "moonml.%s: out of memory", op);
      return NULL;
    }
    size_t cap = 0;
    s->data = cache_take(ctx, nbytes, &cap);
    if (!s->data) {
      cap = round_up(nbytes, 4096);
      s->data = aligned_alloc(4096, cap);
    }
    if (!s->data) {
      free(s);
      mm_fail(ctx, "moonml.%s: out of memory allocating %zu bytes", op, nbytes);
      return NULL;
    }
    s->capacity = cap;
  }
  s->refcount = 1;
  s->version = 0;
  s->free_fn = NULL;
  s->ctx = ctx;
  s->nbytes = nbytes;
  mm_ctx_retain(ctx);
  ctx->allocated += nbytes;
  ctx->live += nbytes;
  return s;
}

void mm_storage_release(mm_storage *s) {
  if (!s || --s->refcount > 0)
    return;
  mm_ctx *ctx = s->ctx;
  if (s->free_fn) { /* caller memory: never cached, not counted as live */
    s->free_fn(s->data, s->free_ud);
    free(s);
    mm_ctx_release(ctx);
    return;
  }
  ctx->live -= s->nbytes;
  if (s->capacity) {
    cache_put(ctx, s->data, s->capacity);
    free(s);
  } else {
    free(s);
  }
  mm_ctx_release(ctx);
}

/* The caller keeps its memory: nothing to free. */
static void keep_caller_memory(void *data, void *ud) {
  (void)data;
  (void)ud;
}

mm_storage *mm_storage_wrap(mm_ctx *ctx, void *data, size_t nbytes, mm_free_fn free_fn, void *ud) {
  mm_storage *s = malloc(sizeof *s);
  if (!s) {
    mm_fail(ctx, "moonml.wrap_buffer: out of memory");
    return NULL;
  }
  s->refcount = 1;
  s->ctx = ctx;
  s->data = data;
  s->nbytes = nbytes;
  s->capacity = 0;
  s->version = 0;
  s->free_fn = free_fn ? free_fn : keep_caller_memory;
  s->free_ud = ud;
  mm_ctx_retain(ctx);
  return s;
}

/* ------------------------------------------------------------------ random */

/* xoshiro256** (Blackman & Vigna), seeded through splitmix64. */
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void mm_manual_seed(mm_ctx *ctx, uint64_t seed) {
  uint64_t z = seed;
  for (int i = 0; i < 4; i++) {
    z += 0x9e3779b97f4a7c15ULL;
    uint64_t x = z;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    ctx->rng[i] = x ^ (x >> 31);
  }
}

uint64_t mm_random_u64(mm_ctx *ctx) {
  uint64_t *s = ctx->rng;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double mm_random_uniform(mm_ctx *ctx) { return (double)(mm_random_u64(ctx) >> 11) * 0x1.0p-53; }

double mm_random_normal(mm_ctx *ctx) {
  /* Box-Muller; one draw per call keeps the sequence a pure function of the seed */
  double u1 = 1.0 - mm_random_uniform(ctx); /* (0, 1] */
  double u2 = mm_random_uniform(ctx);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
