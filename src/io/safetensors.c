/* safetensors files (Hugging Face's format), read and written exactly as the reference
 * implementation lays them out. The header is JSON, built and parsed by cJSON. Loading
 * trusts nothing in the file: every size and offset is checked against the file and
 * against the others before any tensor memory is allocated. Saving is atomic. */
#define _POSIX_C_SOURCE 200809L /* open, fsync, getpid, fileno */

#include "../core/internal.h"
#include "io.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER ((uint64_t)100000000) /* the reference refuses larger headers */
#define ST_CHUNK 8192                       /* elements converted per step */

typedef enum { K_FLOAT, K_SINT, K_UINT, K_BOOL, K_UNSUPPORTED } st_kind;

typedef struct {
  const char *name;
  int size;
  int rank; /* position in the reference's Dtype enum: files put higher ranks first */
  st_kind kind;
  mm_dtype load_as;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"BOOL", 1, 0, K_BOOL, MM_BOOL},
    {"U8", 1, 1, K_UINT, MM_INT64},
    {"I8", 1, 2, K_SINT, MM_INT64},
    {"F8_E5M2", 1, 3, K_UNSUPPORTED, MM_FLOAT32},
    {"F8_E4M3", 1, 4, K_UNSUPPORTED, MM_FLOAT32},
    {"I16", 2, 5, K_SINT, MM_INT64},
    {"U16", 2, 6, K_UINT, MM_INT64},
    {"F16", 2, 7, K_FLOAT, MM_FLOAT32},
    {"BF16", 2, 8, K_FLOAT, MM_FLOAT32},
    {"I32", 4, 9, K_SINT, MM_INT64},
    {"U32", 4, 10, K_UINT, MM_INT64},
    {"F32", 4, 11, K_FLOAT, MM_FLOAT32},
    {"F64", 8, 12, K_FLOAT, MM_FLOAT64},
    {"I64", 8, 13, K_SINT, MM_INT64},
    {"U64", 8, 14, K_UINT, MM_INT64},
};
#define ST_NDTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

static const st_dtype *find_dtype(const char *name) {
  for (int i = 0; i < ST_NDTYPES; i++)
    if (strcmp(st_dtypes[i].name, name) == 0)
      return &st_dtypes[i];
  return NULL;
}

/* The file dtype a tensor is written as by default. */
static const st_dtype *natural_dtype(mm_dtype dt) {
  switch (dt) {
  case MM_FLOAT32:
    return find_dtype("F32");
  case MM_FLOAT64:
    return find_dtype("F64");
  case MM_INT64:
    return find_dtype("I64");
  default:
    return find_dtype("BOOL");
  }
}

/* ------------------------------------------------------------------ number formats */

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* IEEE half from float, rounding to nearest even; overflow gives inf. A NaN keeps its sign
 * and the top of its payload (a computed NaN gives 0x7E00 / 0xFE00, as PyTorch's), so a half
 * NaN read as float comes back with the same bits. */
static uint16_t f32_to_f16(float value) {
  uint32_t f = f32_bits(value);
  uint32_t sign = f & 0x80000000u;
  f ^= sign;
  uint16_t o;
  if (f > 0x7F800000u) { /* NaN */
    uint32_t payload = (f >> 13) & 0x3FF;
    o = (uint16_t)(0x7C00 | (payload ? payload : 0x200));
  } else if (f >= (uint32_t)(127 + 16) << 23) { /* >= 65536 or inf */
    o = 0x7C00;
  } else if (f < (uint32_t)113 << 23) { /* below 2^-14: subnormal half or zero */
    /* adding 0.5 lets the float unit round the subnormal's bits to nearest even */
    const uint32_t magic = (uint32_t)((127 - 15) + (23 - 10) + 1) << 23;
    o = (uint16_t)(f32_bits(bits_f32(f) + bits_f32(magic)) - magic);
  } else {
    uint32_t odd = (f >> 13) & 1;
    f += ((uint32_t)(15 - 127) << 23) + 0xFFF + odd;
    o = (uint16_t)(f >> 13);
  }
  return (uint16_t)(o | (sign >> 16));
}

static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  if (exp == 0) {
    if (man == 0)
      return bits_f32(sign);
    int e = -1; /* normalise the subnormal */
    do {
      e++;
      man <<= 1;
    } while (!(man & 0x400));
    return bits_f32(sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13));
  }
  if (exp == 31)
    return bits_f32(sign | 0x7F800000u | (man << 13));
  return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* bfloat16 from float, rounding to nearest even. A NaN keeps its sign and the top of its
 * payload (a computed NaN gives 0x7FC0, as PyTorch's scalar conversion), so a bfloat16 NaN
 * read as float comes back with the same bits. */
static uint16_t f32_to_bf16(float value) {
  uint32_t u = f32_bits(value);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
    uint16_t b = (uint16_t)(u >> 16);
    return (b & 0x7F) ? b : (uint16_t)(b | 0x40);
  }
  return (uint16_t)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

static float bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }

static uint64_t load_le(const unsigned char *p, int size) {
  uint64_t v = 0;
  for (int k = size - 1; k >= 0; k--)
    v = (v << 8) | p[k];
  return v;
}

static void store_le(unsigned char *p, uint64_t v, int size) {
  for (int k = 0; k < size; k++, v >>= 8)
    p[k] = (unsigned char)(v & 0xFF);
}

static bool host_little_endian(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* Does the tensor's memory already hold the file's bytes (same type, little-endian)? */
static bool same_layout(mm_dtype dt, const st_dtype *fd) {
  return host_little_endian() && natural_dtype(dt) == fd;
}

/* ------------------------------------------------------------------ saving */

typedef struct {
  const char *name;
  const mm_tensor *t;
  const st_dtype *fd;
  int64_t numel;
  uint64_t nbytes;
} save_entry;

static int save_order(const void *pa, const void *pb) {
  const save_entry *a = pa, *b = pb;
  if (a->fd->rank != b->fd->rank)
    return b->fd->rank - a->fd->rank;
  return strcmp(a->name, b->name);
}

/* qsort over pointers to strings (char **) */
static int cmp_str_ptr(const void *pa, const void *pb) {
  return strcmp(**(const char *const *const *)pa, **(const char *const *const *)pb);
}

static cJSON *raw_integer(int64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", (long long)v);
  return cJSON_CreateRaw(buf);
}

/* Adds raw integers to a JSON array; false when out of memory. */
static bool add_integers(cJSON *arr, int n, const int64_t *v) {
  for (int i = 0; i < n; i++) {
    cJSON *x = raw_integer(v[i]);
    if (!x || !cJSON_AddItemToArray(arr, x)) {
      cJSON_Delete(x);
      return false;
    }
  }
  return true;
}

static int check_text(mm_ctx *ctx, const char *what, const char *s) {
  int64_t bad = mm_utf8_invalid_at(s, strlen(s));
  if (bad >= 0)
    return mm_fail(ctx, "moonml.save: %s '%s' is not valid UTF-8 (byte %lld)", what, s,
                   (long long)bad + 1);
  return 0;
}

/* The header text: __metadata__ with sorted keys, then the entries in file order. */
static char *build_header(mm_ctx *ctx, int n, const save_entry *e, int nmeta,
                          const char *const *meta) {
  cJSON *root = cJSON_CreateObject();
  const char *const **keys = NULL;
  char *text = NULL;
  if (!root)
    goto oom;
  if (nmeta > 0) {
    /* the pairs sorted by key (pointers to each pair's key, its value follows) */
    keys = malloc(sizeof *keys * (size_t)nmeta);
    cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
    if (!keys || !m)
      goto oom;
    for (int i = 0; i < nmeta; i++)
      keys[i] = &meta[2 * i];
    qsort(keys, (size_t)nmeta, sizeof *keys, cmp_str_ptr);
    for (int i = 0; i < nmeta; i++) {
      if (i > 0 && strcmp(keys[i][0], keys[i - 1][0]) == 0) {
        mm_fail(ctx, "moonml.save: metadata key '%s' given twice", keys[i][0]);
        goto fail;
      }
      if (!cJSON_AddStringToObject(m, keys[i][0], keys[i][1]))
        goto oom;
    }
  }
  uint64_t offset = 0;
  for (int i = 0; i < n; i++) {
    cJSON *info = cJSON_AddObjectToObject(root, e[i].name);
    if (!info || !cJSON_AddStringToObject(info, "dtype", e[i].fd->name))
      goto oom;
    cJSON *shape = cJSON_AddArrayToObject(info, "shape");
    if (!shape || !add_integers(shape, e[i].t->ndim, e[i].t->shape))
      goto oom;
    cJSON *off = cJSON_AddArrayToObject(info, "data_offsets");
    int64_t range[2] = {(int64_t)offset, (int64_t)(offset + e[i].nbytes)};
    if (!off || !add_integers(off, 2, range))
      goto oom;
    offset += e[i].nbytes;
  }
  text = cJSON_PrintUnformatted(root);
  if (!text)
    goto oom;
  free(keys);
  cJSON_Delete(root);
  return text;
oom:
  mm_fail(ctx, "moonml.save: out of memory building the header");
fail:
  free(keys);
  cJSON_Delete(root);
  return NULL;
}

/* Converts count elements of src (contiguous, of dtype dt) to the file's bytes in out.
 * -1 with a message when an integer does not fit the file dtype. */
static int encode_chunk(mm_ctx *ctx, const save_entry *e, const void *src, int64_t first,
                        int64_t count, unsigned char *out) {
  const st_dtype *fd = e->fd;
  int size = fd->size;
  mm_dtype dt = e->t->dtype;
  for (int64_t k = 0; k < count; k++) {
    unsigned char *p = out + (size_t)k * (size_t)size;
    if (dt == MM_FLOAT32 || dt == MM_FLOAT64) {
      double d = dt == MM_FLOAT32 ? (double)((const float *)src)[k] : ((const double *)src)[k];
      float f = dt == MM_FLOAT32 ? ((const float *)src)[k] : (float)d;
      if (size == 8) {
        uint64_t u;
        memcpy(&u, &d, 8);
        store_le(p, u, 8);
      } else if (size == 4) {
        store_le(p, f32_bits(f), 4);
      } else {
        store_le(p, strcmp(fd->name, "F16") == 0 ? f32_to_f16(f) : f32_to_bf16(f), 2);
      }
    } else if (dt == MM_INT64) {
      int64_t v = ((const int64_t *)src)[k];
      bool fits;
      if (fd->kind == K_SINT)
        fits = size == 8 ||
               (v >= -((int64_t)1 << (8 * size - 1)) && v < ((int64_t)1 << (8 * size - 1)));
      else
        fits = v >= 0 && (size == 8 || v < ((int64_t)1 << (8 * size)));
      if (!fits)
        return mm_fail(ctx, "moonml.save: '%s' holds %lld at element %lld, which does not fit %s",
                       e->name, (long long)v, (long long)(first + k + 1), fd->name);
      store_le(p, (uint64_t)v, size);
    } else {
      p[0] = ((const unsigned char *)src)[k] ? 1 : 0;
    }
  }
  return 0;
}

static int write_entry(mm_ctx *ctx, FILE *f, const save_entry *e, const char *tmp) {
  if (e->numel == 0)
    return 0;
  mm_tensor *c = mm_contiguous(ctx, e->t); /* logical (row-major) order of any view */
  if (!c)
    return -1;
  const char *data = mm_data(c);
  size_t es = mm_dtype_size(c->dtype);
  int status = 0;
  if (same_layout(c->dtype, e->fd)) {
    if (fwrite(data, 1, (size_t)e->nbytes, f) != (size_t)e->nbytes)
      status = mm_fail(ctx, "moonml.save: %s: write failed: %s", tmp, strerror(errno));
  } else {
    unsigned char *buf = malloc((size_t)ST_CHUNK * 8);
    if (!buf)
      status = mm_fail(ctx, "moonml.save: out of memory");
    for (int64_t at = 0; status == 0 && at < e->numel; at += ST_CHUNK) {
      int64_t count = e->numel - at < ST_CHUNK ? e->numel - at : ST_CHUNK;
      size_t bytes = (size_t)count * (size_t)e->fd->size;
      status = encode_chunk(ctx, e, data + (size_t)at * es, at, count, buf);
      if (status == 0 && fwrite(buf, 1, bytes, f) != bytes)
        status = mm_fail(ctx, "moonml.save: %s: write failed: %s", tmp, strerror(errno));
    }
    free(buf);
  }
  mm_release(c);
  return status;
}

/* Creates "<path>.tmp-<pid>-<n>" exclusively (so two writers never share one); the mode is
 * the usual 0666 less the umask, as a plain fopen would give. */
static FILE *open_temp(mm_ctx *ctx, const char *path, char *tmp, size_t tmp_size) {
  static atomic_uint counter;
  for (int attempt = 0; attempt < 100; attempt++) {
    snprintf(tmp, tmp_size, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd >= 0) {
      FILE *f = fdopen(fd, "wb");
      if (f)
        return f;
      close(fd);
      remove(tmp);
      break;
    }
    if (errno != EEXIST)
      break;
  }
  mm_fail(ctx, "moonml.save: %s: cannot create the file: %s", path, strerror(errno));
  return NULL;
}

int mm_st_save(mm_ctx *ctx, const char *path, int n, const mm_st_item *items, int nmeta,
               const char *const *meta) {
  if (!path || n < 0 || nmeta < 0 || (n > 0 && !items) || (nmeta > 0 && !meta))
    return mm_fail(ctx, "moonml.save: bad arguments");
  save_entry *e = calloc((size_t)(n > 0 ? n : 1), sizeof *e);
  if (!e)
    return mm_fail(ctx, "moonml.save: out of memory");
  int status = -1;
  char *header = NULL, *tmp = NULL;
  const char ***names = NULL;
  FILE *f = NULL;
  for (int i = 0; i < n; i++) {
    const mm_st_item *it = &items[i];
    if (!it->name || !it->tensor) {
      mm_fail(ctx, "moonml.save: entry %d has no name or no tensor", i + 1);
      goto done;
    }
    if (strcmp(it->name, "__metadata__") == 0) {
      mm_fail(ctx, "moonml.save: '__metadata__' is reserved for the metadata, not a tensor name");
      goto done;
    }
    if (check_text(ctx, "tensor name", it->name) != 0)
      goto done;
    const st_dtype *fd = it->dtype ? find_dtype(it->dtype) : natural_dtype(it->tensor->dtype);
    if (!fd || fd->kind == K_UNSUPPORTED) {
      mm_fail(ctx,
              "moonml.save: '%s': unknown dtype '%s' (F32, F64, F16, BF16, I64, I32, I16, I8, U8, "
              "U16, U32, U64 or BOOL)",
              it->name, it->dtype);
      goto done;
    }
    mm_dtype dt = it->tensor->dtype;
    bool ok = mm_dtype_is_float(dt) ? fd->kind == K_FLOAT
                                    : (dt == MM_INT64 ? fd->kind == K_SINT || fd->kind == K_UINT
                                                      : fd->kind == K_BOOL);
    if (!ok) {
      mm_fail(ctx, "moonml.save: '%s': a %s tensor cannot be written as %s", it->name,
              mm_dtype_name(dt), fd->name);
      goto done;
    }
    e[i].name = it->name;
    e[i].t = it->tensor;
    e[i].fd = fd;
    e[i].numel = mm_numel(it->tensor);
    e[i].nbytes = (uint64_t)e[i].numel * (uint64_t)fd->size;
  }
  for (int i = 0; i < 2 * nmeta; i++) {
    if (!meta[i]) {
      mm_fail(ctx, "moonml.save: metadata entry %d is NULL", i / 2 + 1);
      goto done;
    }
    if (check_text(ctx, i % 2 ? "metadata value" : "metadata key", meta[i]) != 0)
      goto done;
  }
  names = malloc(sizeof *names * (size_t)(n > 0 ? n : 1));
  if (!names) {
    mm_fail(ctx, "moonml.save: out of memory");
    goto done;
  }
  for (int i = 0; i < n; i++)
    names[i] = &e[i].name;
  qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
  for (int i = 1; i < n; i++)
    if (strcmp(*names[i], *names[i - 1]) == 0) {
      mm_fail(ctx, "moonml.save: tensor name '%s' given twice", *names[i]);
      goto done;
    }
  qsort(e, (size_t)n, sizeof *e, save_order);
  header = build_header(ctx, n, e, nmeta, meta);
  if (!header)
    goto done;
  size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
  size_t tmp_size = strlen(path) + 64;
  tmp = malloc(tmp_size);
  if (!tmp) {
    mm_fail(ctx, "moonml.save: out of memory");
    goto done;
  }
  f = open_temp(ctx, path, tmp, tmp_size);
  if (!f)
    goto done;
  unsigned char len8[8];
  store_le(len8, (uint64_t)padded, 8);
  bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(header, 1, hlen, f) == hlen;
  for (size_t k = hlen; ok && k < padded; k++)
    ok = fputc(' ', f) != EOF;
  if (!ok) {
    mm_fail(ctx, "moonml.save: %s: write failed: %s", tmp, strerror(errno));
    goto done;
  }
  for (int i = 0; i < n; i++)
    if (write_entry(ctx, f, &e[i], tmp) != 0)
      goto done;
  /* flushed and on disk before the rename, so the new name never shows partial data */
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
    mm_fail(ctx, "moonml.save: %s: write failed: %s", tmp, strerror(errno));
    goto done;
  }
  int closed = fclose(f);
  f = NULL;
  if (closed != 0) {
    mm_fail(ctx, "moonml.save: %s: write failed: %s", tmp, strerror(errno));
    goto done;
  }
  if (rename(tmp, path) != 0) {
    mm_fail(ctx, "moonml.save: %s: cannot replace the file: %s", path, strerror(errno));
    goto done;
  }
  status = 0;
done:
  if (f)
    fclose(f);
  if (status != 0 && tmp && tmp[0])
    remove(tmp);
  free(tmp);
  cJSON_free(header);
  free(names);
  free(e);
  return status;
}

/* ------------------------------------------------------------------ loading */

typedef struct {
  char *name;
  const st_dtype *fd;
  int ndim;
  int64_t shape[MM_MAX_DIMS];
  uint64_t begin, end;
  mm_tensor *t;
} st_entry;

struct mm_st_file {
  int n;
  st_entry *e;
  int nmeta;
  char **meta; /* key, value, key, value, ... */
};

void mm_st_free(mm_st_file *f) {
  if (!f)
    return;
  for (int i = 0; i < f->n; i++) {
    free(f->e[i].name);
    mm_release(f->e[i].t);
  }
  for (int i = 0; i < 2 * f->nmeta; i++)
    free(f->meta[i]);
  free(f->e);
  free(f->meta);
  free(f);
}

int mm_st_count(const mm_st_file *f) { return f->n; }
const char *mm_st_name(const mm_st_file *f, int i) { return f->e[i].name; }
const char *mm_st_dtype(const mm_st_file *f, int i) { return f->e[i].fd->name; }
mm_tensor *mm_st_tensor(const mm_st_file *f, int i) { return f->e[i].t; }
int mm_st_metadata_count(const mm_st_file *f) { return f->nmeta; }
const char *mm_st_metadata_key(const mm_st_file *f, int i) { return f->meta[2 * i]; }
const char *mm_st_metadata_value(const mm_st_file *f, int i) { return f->meta[2 * i + 1]; }

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

/* A JSON number that is a whole number in [0, 2^53]; false otherwise. */
static bool json_count(const cJSON *x, uint64_t *out) {
  if (!cJSON_IsNumber(x))
    return false;
  double v = x->valuedouble;
  if (!(v >= 0 && v <= MM_JSON_MAX_EXACT) || v != (double)(uint64_t)v)
    return false;
  *out = (uint64_t)v;
  return true;
}

/* Fills e from the header entry `info` named name; -1 with a message naming both. */
static int read_entry(mm_ctx *ctx, const char *path, const cJSON *info, st_entry *e) {
  const char *name = e->name;
  if (!cJSON_IsObject(info))
    return mm_fail(ctx, "moonml.load: %s: '%s' is not an object in the header", path, name);
  const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
  for (const cJSON *c = info->child; c; c = c->next) {
    const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dtype
                         : strcmp(c->string, "shape") == 0        ? &shape
                         : strcmp(c->string, "data_offsets") == 0 ? &offsets
                                                                  : NULL;
    if (!slot)
      return mm_fail(ctx, "moonml.load: %s: '%s' has an unknown field '%s'", path, name, c->string);
    if (*slot)
      return mm_fail(ctx, "moonml.load: %s: '%s' has the field '%s' twice", path, name, c->string);
    *slot = c;
  }
  if (!dtype || !shape || !offsets)
    return mm_fail(ctx, "moonml.load: %s: '%s' lacks its %s", path, name,
                   !dtype   ? "dtype"
                   : !shape ? "shape"
                            : "data_offsets");
  if (!cJSON_IsString(dtype))
    return mm_fail(ctx, "moonml.load: %s: the dtype of '%s' is not a string", path, name);
  e->fd = find_dtype(dtype->valuestring);
  if (!e->fd)
    return mm_fail(ctx, "moonml.load: %s: '%s' has an unknown dtype '%s'", path, name,
                   dtype->valuestring);
  if (e->fd->kind == K_UNSUPPORTED)
    return mm_fail(ctx, "moonml.load: %s: '%s' has dtype %s, which moonml cannot load", path, name,
                   e->fd->name);
  if (!cJSON_IsArray(shape))
    return mm_fail(ctx, "moonml.load: %s: the shape of '%s' is not an array", path, name);
  int ndim = cJSON_GetArraySize(shape);
  if (ndim > MM_MAX_DIMS)
    return mm_fail(ctx, "moonml.load: %s: '%s' has %d dimensions, moonml supports at most %d", path,
                   name, ndim, MM_MAX_DIMS);
  e->ndim = ndim;
  /* numel * element size must stay within what a tensor may hold (checked as we go) */
  uint64_t limit = (uint64_t)MM_MAX_BYTES / (uint64_t)e->fd->size, numel = 1;
  int d = 0;
  for (const cJSON *c = shape->child; c; c = c->next, d++) {
    uint64_t v;
    if (!json_count(c, &v))
      return mm_fail(ctx, "moonml.load: %s: size %d of '%s' is not a non-negative integer", path,
                     d + 1, name);
    if (v > 0 && numel > limit / v)
      return mm_fail(ctx, "moonml.load: %s: the shape of '%s' is too large", path, name);
    e->shape[d] = (int64_t)v;
    numel *= v;
  }
  if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
      !json_count(offsets->child, &e->begin) || !json_count(offsets->child->next, &e->end))
    return mm_fail(ctx, "moonml.load: %s: the data_offsets of '%s' are not two byte offsets", path,
                   name);
  if (e->end < e->begin)
    return mm_fail(ctx, "moonml.load: %s: '%s' ends (byte %llu) before it begins (byte %llu)", path,
                   name, (unsigned long long)e->end, (unsigned long long)e->begin);
  uint64_t need = numel * (uint64_t)e->fd->size;
  if (e->end - e->begin != need) {
    char buf[160];
    return mm_fail(ctx,
                   "moonml.load: %s: '%s' of shape %s and dtype %s needs %llu bytes, its "
                   "data_offsets give %llu",
                   path, name, mm_shape_str(buf, sizeof buf, e->ndim, e->shape), e->fd->name,
                   (unsigned long long)need, (unsigned long long)(e->end - e->begin));
  }
  return 0;
}

static int read_metadata(mm_ctx *ctx, const char *path, const cJSON *m, mm_st_file *out) {
  if (!cJSON_IsObject(m))
    return mm_fail(ctx, "moonml.load: %s: __metadata__ is not an object", path);
  int n = cJSON_GetArraySize(m);
  out->meta = calloc((size_t)(2 * n + 1), sizeof(char *));
  if (!out->meta)
    return mm_fail(ctx, "moonml.load: out of memory");
  for (const cJSON *c = m->child; c; c = c->next) {
    if (!cJSON_IsString(c))
      return mm_fail(ctx, "moonml.load: %s: metadata value '%s' is not a string", path, c->string);
    for (int j = 0; j < out->nmeta; j++)
      if (strcmp(out->meta[2 * j], c->string) == 0)
        return mm_fail(ctx, "moonml.load: %s: metadata key '%s' appears twice", path, c->string);
    int k = out->nmeta++;
    out->meta[2 * k] = dup_str(c->string);
    out->meta[2 * k + 1] = dup_str(c->valuestring);
    if (!out->meta[2 * k] || !out->meta[2 * k + 1])
      return mm_fail(ctx, "moonml.load: out of memory");
  }
  return 0;
}

static int by_offset(const void *pa, const void *pb) {
  const st_entry *a = *(const st_entry *const *)pa, *b = *(const st_entry *const *)pb;
  if (a->begin != b->begin)
    return a->begin < b->begin ? -1 : 1;
  if (a->end != b->end)
    return a->end < b->end ? -1 : 1;
  return a < b ? -1 : a > b;
}

static int by_name(const void *pa, const void *pb) {
  return strcmp((*(const st_entry *const *)pa)->name, (*(const st_entry *const *)pb)->name);
}

/* The entries, sorted by offset, must tile [0, data_len) exactly. */
static int check_layout(mm_ctx *ctx, const char *path, mm_st_file *out, uint64_t data_len,
                        st_entry **order) {
  for (int i = 0; i < out->n; i++)
    order[i] = &out->e[i];
  qsort(order, (size_t)out->n, sizeof *order, by_name);
  for (int i = 1; i < out->n; i++)
    if (strcmp(order[i]->name, order[i - 1]->name) == 0)
      return mm_fail(ctx, "moonml.load: %s: tensor '%s' appears twice in the header", path,
                     order[i]->name);
  qsort(order, (size_t)out->n, sizeof *order, by_offset);
  uint64_t at = 0;
  for (int i = 0; i < out->n; i++) {
    const st_entry *e = order[i];
    if (e->end > data_len)
      return mm_fail(ctx,
                     "moonml.load: %s: '%s' ends at byte %llu, past the end of the data (%llu "
                     "bytes)",
                     path, e->name, (unsigned long long)e->end, (unsigned long long)data_len);
    if (e->begin < at)
      return mm_fail(ctx, "moonml.load: %s: '%s' (bytes %llu..%llu) overlaps '%s'", path, e->name,
                     (unsigned long long)e->begin, (unsigned long long)e->end, order[i - 1]->name);
    if (e->begin > at)
      return mm_fail(ctx, "moonml.load: %s: a gap of %llu bytes lies before '%s' (byte %llu)", path,
                     (unsigned long long)(e->begin - at), e->name, (unsigned long long)e->begin);
    at = e->end;
  }
  if (at != data_len)
    return mm_fail(ctx,
                   "moonml.load: %s: the tensors cover %llu bytes of data but the file holds %llu",
                   path, (unsigned long long)at, (unsigned long long)data_len);
  return 0;
}

/* Reads one entry's bytes (the file is positioned at them) into its tensor. */
static int read_data(mm_ctx *ctx, const char *path, FILE *f, st_entry *e) {
  int64_t numel = mm_numel(e->t);
  if (numel == 0)
    return 0;
  const st_dtype *fd = e->fd;
  char *dst = mm_data(e->t);
  if (same_layout(e->t->dtype, fd)) {
    if (fread(dst, 1, (size_t)(e->end - e->begin), f) != (size_t)(e->end - e->begin))
      return mm_fail(ctx, "moonml.load: %s: the file ended while reading '%s'", path, e->name);
    if (fd->kind == K_BOOL)
      for (int64_t k = 0; k < numel; k++)
        if ((unsigned char)dst[k] > 1)
          return mm_fail(ctx, "moonml.load: %s: BOOL '%s' holds the byte %u at element %lld", path,
                         e->name, (unsigned)(unsigned char)dst[k], (long long)k + 1);
    return 0;
  }
  unsigned char *buf = malloc((size_t)ST_CHUNK * 8);
  if (!buf)
    return mm_fail(ctx, "moonml.load: out of memory");
  int status = 0;
  for (int64_t at = 0; status == 0 && at < numel; at += ST_CHUNK) {
    int64_t count = numel - at < ST_CHUNK ? numel - at : ST_CHUNK;
    size_t bytes = (size_t)count * (size_t)fd->size;
    if (fread(buf, 1, bytes, f) != bytes) {
      status = mm_fail(ctx, "moonml.load: %s: the file ended while reading '%s'", path, e->name);
      break;
    }
    for (int64_t k = 0; k < count; k++) {
      uint64_t v = load_le(buf + (size_t)k * (size_t)fd->size, fd->size);
      if (e->t->dtype == MM_FLOAT32) {
        float x = fd->size == 4                  ? bits_f32((uint32_t)v)
                  : strcmp(fd->name, "F16") == 0 ? f16_to_f32((uint16_t)v)
                                                 : bf16_to_f32((uint16_t)v);
        ((float *)dst)[at + k] = x;
      } else if (e->t->dtype == MM_FLOAT64) {
        double x;
        memcpy(&x, &v, 8);
        ((double *)dst)[at + k] = x;
      } else if (e->t->dtype == MM_BOOL) {
        if (v > 1) {
          status = mm_fail(ctx, "moonml.load: %s: BOOL '%s' holds the byte %u at element %lld",
                           path, e->name, (unsigned)v, (long long)(at + k + 1));
          break;
        }
        ((unsigned char *)dst)[at + k] = (unsigned char)v;
      } else if (fd->kind == K_SINT) {
        uint64_t sign = (uint64_t)1 << (8 * fd->size - 1); /* sign-extend */
        ((int64_t *)dst)[at + k] = (int64_t)((v ^ sign) - sign);
      } else {
        if (v > (uint64_t)INT64_MAX) {
          status = mm_fail(ctx, "moonml.load: %s: U64 '%s' holds %llu at element %lld, past int64",
                           path, e->name, (unsigned long long)v, (long long)(at + k + 1));
          break;
        }
        ((int64_t *)dst)[at + k] = (int64_t)v;
      }
    }
  }
  free(buf);
  return status;
}

static int parse_header(mm_ctx *ctx, const char *path, char *text, size_t len, mm_st_file *out) {
  int64_t bad = mm_utf8_invalid_at(text, len);
  if (bad >= 0)
    return mm_fail(ctx, "moonml.load: %s: the header is not valid UTF-8 text (byte %lld)", path,
                   (long long)bad + 1);
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1); /* the NUL ends the text */
  if (!root) {
    size_t at = end && end >= text ? (size_t)(end - text) : 0;
    return mm_fail(ctx, "moonml.load: %s: the header is not valid JSON (error at byte %zu of %zu)",
                   path, at + 1, len);
  }
  int status = 0;
  if (!cJSON_IsObject(root)) {
    status = mm_fail(ctx, "moonml.load: %s: the header is not a JSON object", path);
    goto done;
  }
  int count = cJSON_GetArraySize(root);
  out->e = calloc((size_t)(count > 0 ? count : 1), sizeof *out->e);
  if (!out->e) {
    status = mm_fail(ctx, "moonml.load: out of memory");
    goto done;
  }
  bool seen_meta = false;
  for (const cJSON *c = root->child; c && status == 0; c = c->next) {
    if (strcmp(c->string, "__metadata__") == 0) {
      if (seen_meta)
        status = mm_fail(ctx, "moonml.load: %s: __metadata__ appears twice", path);
      else
        status = read_metadata(ctx, path, c, out);
      seen_meta = true;
      continue;
    }
    st_entry *e = &out->e[out->n++];
    e->name = dup_str(c->string);
    status = e->name ? read_entry(ctx, path, c, e) : mm_fail(ctx, "moonml.load: out of memory");
  }
done:
  cJSON_Delete(root);
  return status;
}

mm_st_file *mm_st_load(mm_ctx *ctx, const char *path) {
  mm_st_file *out = calloc(1, sizeof *out);
  st_entry **order = NULL;
  char *text = NULL;
  if (!out) {
    mm_fail(ctx, "moonml.load: out of memory");
    return NULL;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    mm_fail(ctx, "moonml.load: %s: cannot open the file: %s", path, strerror(errno));
    goto fail;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    mm_fail(ctx, "moonml.load: %s: not a regular file", path);
    goto fail;
  }
  uint64_t size = (uint64_t)st.st_size;
  unsigned char len8[8];
  if (size < 8 || fread(len8, 1, 8, f) != 8) {
    mm_fail(ctx, "moonml.load: %s: the file is too short for a safetensors header (%llu bytes)",
            path, (unsigned long long)size);
    goto fail;
  }
  uint64_t hlen = load_le(len8, 8);
  if (hlen > ST_MAX_HEADER) {
    mm_fail(ctx, "moonml.load: %s: the header length %llu is beyond the limit of %llu bytes", path,
            (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
    goto fail;
  }
  if (hlen > size - 8) {
    mm_fail(ctx,
            "moonml.load: %s: the header length %llu runs past the end of the file (%llu bytes)",
            path, (unsigned long long)hlen, (unsigned long long)size);
    goto fail;
  }
  text = malloc((size_t)hlen + 1);
  if (!text) {
    mm_fail(ctx, "moonml.load: out of memory");
    goto fail;
  }
  if (fread(text, 1, (size_t)hlen, f) != (size_t)hlen) {
    mm_fail(ctx, "moonml.load: %s: the file ended inside the header", path);
    goto fail;
  }
  text[hlen] = '\0';
  if (parse_header(ctx, path, text, (size_t)hlen, out) != 0)
    goto fail;
  free(text);
  text = NULL;
  order = malloc(sizeof *order * (size_t)(out->n > 0 ? out->n : 1));
  if (!order) {
    mm_fail(ctx, "moonml.load: out of memory");
    goto fail;
  }
  if (check_layout(ctx, path, out, size - 8 - hlen, order) != 0)
    goto fail;
  /* every check passed: only now is tensor memory allocated */
  for (int i = 0; i < out->n; i++) {
    st_entry *e = order[i];
    e->t = mm_empty(ctx, e->fd->load_as, e->ndim, e->shape);
    if (!e->t)
      goto fail;
  }
  for (int i = 0; i < out->n; i++)
    if (read_data(ctx, path, f, order[i]) != 0)
      goto fail;
  /* hand the entries out in file order */
  st_entry *sorted = malloc(sizeof *sorted * (size_t)(out->n > 0 ? out->n : 1));
  if (!sorted) {
    mm_fail(ctx, "moonml.load: out of memory");
    goto fail;
  }
  for (int i = 0; i < out->n; i++)
    sorted[i] = *order[i];
  free(out->e);
  out->e = sorted;
  free(order);
  fclose(f);
  return out;
fail:
  if (f)
    fclose(f);
  free(text);
  free(order);
  mm_st_free(out);
  return NULL;
}
