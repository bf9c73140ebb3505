/* libFuzzer harness for the rating-file parser (mm_rec_parse_file, src/rec/ratings.c),
 * with the options ml.rec.load passes for each format (lua/moonml/rec/data.lua). Byte 0
 * picks the format (low 3 bits) and skip_bad (bit 3); the rest is the file. A parse that
 * succeeds must hand back consistent arrays (ids in range, ratings finite and on the
 * scale, raw ids inside the pool); a failure must carry a "moonml.rec.load:" message. */
#include "fuzz_input.h"
#include "rec/rec.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  const char *sep;
  bool header;
  int min_fields, max_fields;
  bool has_scale;
  double lo, hi;
} format;

static const format formats[8] = {
    {"\t", false, 4, 4, true, 1, 5},  /* movielens-100k (u.data) */
    {"::", false, 4, 4, true, 1, 5},  /* movielens-1m (ratings.dat) */
    {",", true, 4, 4, true, 0.5, 5},  /* movielens-csv (ratings.csv) */
    {",", false, 3, 4, false, 0, 0},  /* csv */
    {";", true, 3, 4, false, 0, 0},   /* csv, sep = ";", header = true */
    {"\t", false, 3, 4, true, 1, 10}, /* csv, sep = "\t", scale = {1, 10} */
    {"||", false, 3, 4, false, 0, 0}, /* a two-byte separator that is not MovieLens' */
    {" ", false, 3, 4, false, 0, 0},  /* a separator the trimming also eats */
};

static void check(bool ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "inconsistent parse: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mm_ctx *ctx = fuzz_ctx();
  if (size < 1)
    return 0;
  const format *fm = &formats[data[0] & 7];
  mm_rec_parse_opts o = {.sep = fm->sep,
                         .header = fm->header,
                         .skip_bad = (data[0] & 8) != 0,
                         .min_fields = fm->min_fields,
                         .max_fields = fm->max_fields,
                         .has_scale = fm->has_scale,
                         .lo = fm->lo,
                         .hi = fm->hi,
                         .name = "fuzz.data",
                         .op = "moonml.rec.load"};
  fuzz_file f;
  fuzz_file_open(&f, data + 1, size - 1);
  mm_rec_parsed p;
  int rc = mm_rec_parse_file(ctx, f.path, &o, &p);
  fuzz_file_close(&f);
  if (rc != 0) {
    fuzz_check_error(mm_ctx_error(ctx), "moonml.rec.load:");
    check(p.r.user == NULL && p.pool == NULL, "arrays left after a failure");
    return 0;
  }
  const mm_rec_ratings *r = &p.r;
  check(r->n >= 0 && r->n <= (int64_t)size, "rating count");
  check(r->n_users >= 0 && r->n_items >= 0 && r->n_users <= r->n && r->n_items <= r->n,
        "id counts");
  size_t pool_len = 0; /* the pool holds user ids, then item ids, each NUL-terminated */
  for (int32_t k = 0; k < r->n_users + r->n_items; k++) {
    int64_t off = k < r->n_users ? p.user_off[k] : p.item_off[k - r->n_users];
    check(off == (int64_t)pool_len, "raw ids follow one another in the pool");
    size_t len = strlen(p.pool + off);
    check(len > 0, "empty raw id");
    pool_len += len + 1;
  }
  for (int64_t k = 0; k < r->n; k++) {
    check(r->user[k] >= 0 && r->user[k] < r->n_users, "user id in range");
    check(r->item[k] >= 0 && r->item[k] < r->n_items, "item id in range");
    check(isfinite(r->rating[k]), "finite rating");
    check(!o.has_scale || (r->rating[k] >= o.lo && r->rating[k] <= o.hi), "rating on the scale");
    check(r->rating[k] >= p.rmin && r->rating[k] <= p.rmax, "rating within [rmin, rmax]");
  }
  /* the CSR views the models build from a parsed list */
  mm_rec_csr csr;
  void *mem = malloc(mm_rec_csr_bytes(r->n_users, r->n) + 8);
  if (!mem)
    abort();
  mm_rec_csr_fill(r, false, mem, &csr);
  check(csr.ptr[0] == 0 && csr.ptr[r->n_users] == r->n, "CSR row offsets");
  for (int32_t u = 0; u < r->n_users; u++)
    check(csr.ptr[u] <= csr.ptr[u + 1], "CSR rows in order");
  free(mem);
  mm_rec_parsed_free(&p);
  return 0;
}
