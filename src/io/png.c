/* PNG files through libpng: load any PNG as a float32 C x H x W tensor in [0, 1], save a
 * float tensor as an 8- or 16-bit PNG (atomically: a temporary file, then rename).
 *
 * libpng reports errors by longjmp. Everything a failed call must give back (file, libpng
 * structs, pixel buffers, the tensor being filled) lives in a heap-allocated job whose
 * address never changes after setjmp, so the error path can free it whatever the stage. */
#define _POSIX_C_SOURCE 200809L /* fdopen, fsync, getpid */
#include "../core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct png_job {
  char msg[200]; /* libpng's error message */
  FILE *fp;
  png_structp png;
  png_infop info;
  unsigned char *pixels; /* interleaved samples, H rows of rowbytes */
  png_bytep *rows;
  mm_tensor *out;
  char *tmp_path; /* save: the temporary file, removed on failure */
} png_job;

static void on_error(png_structp png, png_const_charp msg) {
  png_job *job = png_get_error_ptr(png);
  snprintf(job->msg, sizeof job->msg, "%s", msg);
  png_longjmp(png, 1);
}

/* Warnings (an ancillary chunk with a bad CRC, an unknown sRGB profile) do not stop a load;
 * libpng would print them on stderr. */
static void on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg;
}

static void job_free(png_job *job, bool reading) {
  if (job->png) {
    if (reading)
      png_destroy_read_struct(&job->png, job->info ? &job->info : NULL, NULL);
    else
      png_destroy_write_struct(&job->png, job->info ? &job->info : NULL);
  }
  if (job->fp)
    fclose(job->fp);
  if (job->tmp_path) {
    unlink(job->tmp_path);
    free(job->tmp_path);
  }
  free(job->rows);
  free(job->pixels);
  mm_release(job->out);
  free(job);
}

/* ---------------------------------------------------------------- load */

/* Chunk types skipped on load (5 bytes each: name and NUL, as libpng wants them). */
static const png_byte ignored_chunks[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0"
                                         "pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt";

/* Runs under the caller's setjmp: any libpng error jumps back there. */
static int load_body(mm_ctx *ctx, png_job *job, const char *path) {
  png_structp png = job->png;
  png_infop info = job->info;
  struct stat st;
  uint64_t file_size =
      fstat(fileno(job->fp), &st) == 0 && st.st_size > 0 ? (uint64_t)st.st_size : 0;
  png_init_io(png, job->fp);
  png_set_sig_bytes(png, 8);
  /* A chunk cannot hold more than the file: without this cap libpng allocates whatever a
   * chunk's length field claims (2 GB for a 70-byte file) before finding the data missing. */
  png_set_chunk_malloc_max(png, file_size > 8 ? (png_alloc_size_t)file_size : 8);
  /* Ancillary chunks the loader has no use for (text, ICC profiles, colour and gamma
   * information) are skipped unread, so none of them is inflated or stored. */
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored_chunks,
                              (int)(sizeof ignored_chunks / 5));
  png_read_info(png, info);

  png_uint_32 w, h;
  int depth, ctype, interlace;
  png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
  int file_channels = png_get_channels(png, info); /* before the transforms below */
  /* palette -> RGB, gray 1/2/4 bits -> 8 bits, tRNS -> an alpha channel; 16 bits stay */
  if (ctype == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb(png);
  if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS))
    png_set_tRNS_to_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  int channels = png_get_channels(png, info);
  int bits = png_get_bit_depth(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  size_t bps = bits == 16 ? 2 : 1;
  if ((bits != 8 && bits != 16) || channels < 1 || channels > 4 ||
      rowbytes != (size_t)w * (size_t)channels * bps) {
    mm_fail(ctx, "moonml.image.load: %s: unsupported PNG layout (%d channels of %d bits)", path,
            channels, bits);
    return -1;
  }
  int64_t shape[3] = {channels, (int64_t)h, (int64_t)w};
  if ((int64_t)channels * (int64_t)h * (int64_t)w > MM_MAX_BYTES / 4) {
    mm_fail(ctx, "moonml.image.load: %s: image of %u x %u pixels is too large", path, w, h);
    return -1;
  }
  /* The pixels are deflated into the file, and deflate shrinks at most 1032:1: an image
   * whose packed samples cannot fit is refused before its buffers are allocated. */
  double packed = (double)w * h * file_channels * depth / 8;
  if (packed > 1032.0 * (double)file_size) {
    mm_fail(ctx,
            "moonml.image.load: %s: corrupt or truncated PNG file (a %u x %u image cannot fit "
            "in %llu bytes)",
            path, w, h, (unsigned long long)file_size);
    return -1;
  }
  job->out = mm_empty(ctx, MM_FLOAT32, 3, shape);
  job->pixels = malloc(rowbytes * h);
  job->rows = malloc(sizeof(png_bytep) * h);
  if (!job->out || !job->pixels || !job->rows) {
    mm_fail(ctx, "moonml.image.load: %s: out of memory for a %d x %u x %u image", path, channels, h,
            w);
    return -1;
  }
  for (png_uint_32 y = 0; y < h; y++)
    job->rows[y] = job->pixels + (size_t)y * rowbytes;
  png_read_image(png, job->rows);
  png_read_end(png, NULL); /* checks the chunks after the image (a truncated file fails) */

  float *out = mm_data(job->out);
  size_t plane = (size_t)w * h;
  for (png_uint_32 y = 0; y < h; y++) {
    const unsigned char *row = job->rows[y];
    for (int c = 0; c < channels; c++) {
      float *dst = out + (size_t)c * plane + (size_t)y * w;
      if (bps == 1)
        for (png_uint_32 x = 0; x < w; x++)
          dst[x] = (float)row[(size_t)x * channels + c] / 255.0f;
      else
        for (png_uint_32 x = 0; x < w; x++) {
          const unsigned char *p = row + ((size_t)x * channels + c) * 2;
          dst[x] = (float)((p[0] << 8) | p[1]) / 65535.0f;
        }
    }
  }
  return 0;
}

mm_tensor *mm_png_load(mm_ctx *ctx, const char *path) {
  png_job *job = calloc(1, sizeof *job);
  if (!job) {
    mm_fail(ctx, "moonml.image.load: out of memory");
    return NULL;
  }
  job->fp = fopen(path, "rb");
  if (!job->fp) {
    mm_fail(ctx, "moonml.image.load: cannot open %s: %s", path, strerror(errno));
    job_free(job, true);
    return NULL;
  }
  unsigned char sig[8];
  if (fread(sig, 1, 8, job->fp) != 8 || png_sig_cmp(sig, 0, 8) != 0) {
    mm_fail(ctx, "moonml.image.load: %s is not a PNG file (no PNG signature)", path);
    job_free(job, true);
    return NULL;
  }
  job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, on_error, on_warning);
  if (job->png)
    job->info = png_create_info_struct(job->png);
  if (!job->png || !job->info) {
    mm_fail(ctx, "moonml.image.load: out of memory creating libpng's reader");
    job_free(job, true);
    return NULL;
  }
  if (setjmp(png_jmpbuf(job->png))) {
    mm_fail(ctx, "moonml.image.load: %s: corrupt or truncated PNG file (libpng: %s)", path,
            job->msg);
    job_free(job, true);
    return NULL;
  }
  if (load_body(ctx, job, path) != 0) {
    job_free(job, true);
    return NULL;
  }
  mm_tensor *out = job->out;
  job->out = NULL;
  job_free(job, true);
  return out;
}

/* ---------------------------------------------------------------- save */

/* A new file beside path, created exclusively with mode 0666 less the umask (as fopen would
 * make path itself). Its name goes to job->tmp_path. */
static int open_temporary(mm_ctx *ctx, png_job *job, const char *path) {
  size_t n = strlen(path) + 64;
  job->tmp_path = malloc(n);
  if (!job->tmp_path)
    return mm_fail(ctx, "moonml.image.save: out of memory");
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  for (int attempt = 0; attempt < 100; attempt++) {
    snprintf(job->tmp_path, n, "%s.tmp-%ld-%ld", path, (long)getpid(),
             (long)((ts.tv_nsec + attempt * 7919L) % 1000000000L));
    int fd = open(job->tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd >= 0) {
      job->fp = fdopen(fd, "wb");
      if (!job->fp) {
        close(fd);
        return mm_fail(ctx, "moonml.image.save: cannot write %s: %s", path, strerror(errno));
      }
      return 0;
    }
    if (errno != EEXIST) {
      int err = errno;
      free(job->tmp_path); /* nothing was created */
      job->tmp_path = NULL;
      return mm_fail(ctx, "moonml.image.save: cannot create %s: %s", path, strerror(err));
    }
  }
  free(job->tmp_path);
  job->tmp_path = NULL;
  return mm_fail(ctx, "moonml.image.save: cannot create a temporary file beside %s", path);
}

static int write_body(png_job *job, png_uint_32 w, png_uint_32 h, int bits, int ctype) {
  png_init_io(job->png, job->fp);
  png_set_IHDR(job->png, job->info, w, h, bits, ctype, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(job->png, job->info);
  png_write_image(job->png, job->rows);
  png_write_end(job->png, NULL);
  return 0;
}

/* The tensor's values as interleaved 8- or 16-bit (big-endian) samples in job->pixels. */
static int quantize(mm_ctx *ctx, png_job *job, const mm_tensor *t, int channels, int64_t h,
                    int64_t w, int bits) {
  int64_t n = mm_numel(t);
  size_t es = mm_dtype_size(t->dtype);
  void *vals = malloc((size_t)n * es);
  size_t bps = bits == 16 ? 2 : 1;
  job->pixels = malloc((size_t)n * bps);
  job->rows = malloc(sizeof(png_bytep) * (size_t)h);
  if (!vals || !job->pixels || !job->rows) {
    free(vals);
    return mm_fail(ctx, "moonml.image.save: out of memory");
  }
  if (mm_to_bytes(ctx, t, vals, (size_t)n * es) != 0) { /* row-major, whatever the strides */
    free(vals);
    return -1;
  }
  double scale = bits == 16 ? 65535.0 : 255.0;
  int64_t plane = h * w;
  for (int64_t i = 0; i < n; i++) {
    double v = t->dtype == MM_FLOAT64 ? ((const double *)vals)[i] : ((const float *)vals)[i];
    int64_t c = i / plane, y = (i % plane) / w, x = i % w;
    if (isnan(v)) {
      free(vals);
      if (t->ndim == 2)
        return mm_fail(ctx, "moonml.image.save: the image holds NaN at (%lld, %lld)",
                       (long long)y + 1, (long long)x + 1);
      return mm_fail(ctx, "moonml.image.save: the image holds NaN at (%lld, %lld, %lld)",
                     (long long)c + 1, (long long)y + 1, (long long)x + 1);
    }
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    /* torchvision's save_image rounding: floor(v * 255 + 0.5) */
    unsigned q = (unsigned)floor(v * scale + 0.5);
    size_t at = (size_t)((y * w + x) * channels + c) * bps;
    if (bps == 1) {
      job->pixels[at] = (unsigned char)q;
    } else {
      job->pixels[at] = (unsigned char)(q >> 8);
      job->pixels[at + 1] = (unsigned char)(q & 0xff);
    }
  }
  free(vals);
  for (int64_t y = 0; y < h; y++)
    job->rows[y] = job->pixels + (size_t)(y * w * channels) * bps;
  return 0;
}

int mm_png_save(mm_ctx *ctx, const mm_tensor *t, const char *path, int bits) {
  if (t->dtype != MM_FLOAT32 && t->dtype != MM_FLOAT64)
    return mm_fail(ctx, "moonml.image.save: expected a float tensor with values in [0, 1], got %s",
                   mm_dtype_name(t->dtype));
  if (t->ndim != 2 && t->ndim != 3) {
    char buf[128];
    return mm_fail(ctx, "moonml.image.save: expected H x W or C x H x W, got shape %s",
                   mm_shape_str(buf, sizeof buf, t->ndim, t->shape));
  }
  int channels = t->ndim == 2 ? 1 : (int)t->shape[0];
  int64_t h = t->shape[t->ndim - 2], w = t->shape[t->ndim - 1];
  if (t->ndim == 3 && (t->shape[0] < 1 || t->shape[0] > 4))
    return mm_fail(ctx,
                   "moonml.image.save: expected 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA) "
                   "channels, got %lld",
                   (long long)t->shape[0]);
  if (h < 1 || w < 1 || h > 0x7fffffff || w > 0x7fffffff)
    return mm_fail(ctx,
                   "moonml.image.save: a PNG needs 1 to 2^31-1 rows and columns, got %lld x "
                   "%lld",
                   (long long)h, (long long)w);
  if (bits != 8 && bits != 16)
    return mm_fail(ctx, "moonml.image.save: bit_depth must be 8 or 16, got %d", bits);
  static const int ctypes[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};

  png_job *job = calloc(1, sizeof *job);
  if (!job)
    return mm_fail(ctx, "moonml.image.save: out of memory");
  /* every check on the values comes before the file is created */
  if (quantize(ctx, job, t, channels, h, w, bits) != 0 || open_temporary(ctx, job, path) != 0) {
    job_free(job, false);
    return -1;
  }
  job->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job, on_error, on_warning);
  if (job->png)
    job->info = png_create_info_struct(job->png);
  if (!job->png || !job->info) {
    mm_fail(ctx, "moonml.image.save: out of memory creating libpng's writer");
    job_free(job, false);
    return -1;
  }
  if (setjmp(png_jmpbuf(job->png))) {
    mm_fail(ctx, "moonml.image.save: cannot write %s (libpng: %s)", path, job->msg);
    job_free(job, false);
    return -1;
  }
  write_body(job, (png_uint_32)w, (png_uint_32)h, bits, ctypes[channels]);
  png_destroy_write_struct(&job->png, &job->info);
  FILE *fp = job->fp;
  job->fp = NULL;
  int failed = fflush(fp) != 0 || fsync(fileno(fp)) != 0;
  failed |= fclose(fp) != 0;
  if (failed || rename(job->tmp_path, path) != 0) {
    mm_fail(ctx, "moonml.image.save: cannot write %s: %s", path, strerror(errno));
    job_free(job, false);
    return -1;
  }
  free(job->tmp_path); /* renamed: nothing to remove */
  job->tmp_path = NULL;
  job_free(job, false);
  return 0;
}
