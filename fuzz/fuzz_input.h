/* Shared by the libFuzzer harnesses: the loaders under test take a path, so each input is
 * put in an anonymous in-memory file (memfd) and handed over as /proc/self/fd/<n>. That
 * reads the bytes through the same open/read (or gzopen/gzread) calls as a real file, with
 * no disk traffic and nothing left behind. Linux only, as is libFuzzer here. */
#ifndef MM_FUZZ_INPUT_H
#define MM_FUZZ_INPUT_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "moonml.h"

typedef struct {
  int fd;
  char path[48];
} fuzz_file;

/* Writes data[0..size) to a fresh memfd; aborts if the system refuses (not a finding). */
static inline void fuzz_file_open(fuzz_file *f, const uint8_t *data, size_t size) {
  f->fd = memfd_create("moonml-fuzz", 0);
  if (f->fd < 0) {
    perror("memfd_create");
    abort();
  }
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(f->fd, data + done, size - done);
    if (n <= 0) {
      perror("write");
      abort();
    }
    done += (size_t)n;
  }
  snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

static inline void fuzz_file_close(fuzz_file *f) { close(f->fd); }

/* The context every call of a harness uses (made once; a failure is not a finding). */
static inline mm_ctx *fuzz_ctx(void) {
  static mm_ctx *ctx;
  if (!ctx && !(ctx = mm_ctx_new()))
    abort();
  return ctx;
}

/* A failed load must say which function failed, as every moonml error does. */
static inline void fuzz_check_error(const char *msg, const char *prefix) {
  if (strncmp(msg, prefix, strlen(prefix)) != 0) {
    fprintf(stderr, "error message '%s' does not start with '%s'\n", msg, prefix);
    abort();
  }
}

#endif
