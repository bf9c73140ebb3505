/* Rating lists: CSR views, the delimited-file parser with its raw-id hash, permutations. */
#include "rec.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ CSR */

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t mm_rec_csr_bytes(int32_t n_rows, int64_t nnz) {
  return align8(((size_t)n_rows + 1) * sizeof(int64_t)) + align8((size_t)nnz * sizeof(double)) +
         align8((size_t)nnz * sizeof(int32_t));
}

void mm_rec_csr_fill(const mm_rec_ratings *r, bool by_item, void *mem, mm_rec_csr *csr) {
  int32_t rows = by_item ? r->n_items : r->n_users;
  const int32_t *row = by_item ? r->item : r->user;
  const int32_t *col = by_item ? r->user : r->item;
  char *p = mem;
  void *vp = p; /* 8-aligned slices of mem */
  csr->n_rows = rows;
  csr->ptr = vp;
  p += align8(((size_t)rows + 1) * sizeof(int64_t));
  vp = p;
  csr->val = vp;
  p += align8((size_t)r->n * sizeof(double));
  vp = p;
  csr->idx = vp;
  memset(csr->ptr, 0, ((size_t)rows + 1) * sizeof(int64_t));
  for (int64_t k = 0; k < r->n; k++)
    csr->ptr[row[k] + 1]++;
  for (int32_t k = 0; k < rows; k++)
    csr->ptr[k + 1] += csr->ptr[k];
  /* counting sort, stable: a row keeps the order of the list */
  int64_t *next = csr->ptr; /* reuse ptr as the write cursor, then shift back */
  for (int64_t k = 0; k < r->n; k++) {
    int64_t at = next[row[k]]++;
    csr->idx[at] = col[k];
    csr->val[at] = r->rating[k];
  }
  for (int32_t k = rows; k > 0; k--)
    csr->ptr[k] = csr->ptr[k - 1];
  csr->ptr[0] = 0;
}

/* ------------------------------------------------------------------ raw-id hash */

typedef struct {
  char *pool;
  size_t pool_len, pool_cap;
  int64_t *off; /* offset of id k in pool */
  int32_t count, off_cap;
  int32_t *slots; /* -1 empty, else id index */
  uint32_t *hashes;
  uint32_t mask;
} id_table;

static uint32_t hash_bytes(const char *s, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t k = 0; k < n; k++)
    h = (h ^ (unsigned char)s[k]) * 16777619u;
  return h;
}

static int idt_init(id_table *t) {
  memset(t, 0, sizeof *t);
  t->mask = 1023;
  t->slots = malloc(sizeof(int32_t) * (t->mask + 1));
  if (!t->slots)
    return -1;
  memset(t->slots, 0xff, sizeof(int32_t) * (t->mask + 1));
  return 0;
}

static void idt_free(id_table *t) {
  free(t->pool);
  free(t->off);
  free(t->slots);
  free(t->hashes);
}

static int idt_grow(id_table *t) {
  uint32_t nmask = t->mask * 2 + 1;
  int32_t *ns = malloc(sizeof(int32_t) * (nmask + 1));
  if (!ns)
    return -1;
  memset(ns, 0xff, sizeof(int32_t) * (nmask + 1));
  for (int32_t k = 0; k < t->count; k++) {
    uint32_t s = t->hashes[k] & nmask;
    while (ns[s] >= 0)
      s = (s + 1) & nmask;
    ns[s] = k;
  }
  free(t->slots);
  t->slots = ns;
  t->mask = nmask;
  return 0;
}

/* The inner id of the n-byte id s, adding it when new; -1 when out of memory. */
static int32_t idt_get(id_table *t, const char *s, size_t n) {
  uint32_t h = hash_bytes(s, n);
  uint32_t slot = h & t->mask;
  for (;;) {
    int32_t k = t->slots[slot];
    if (k < 0)
      break;
    if (t->hashes[k] == h) {
      const char *id = t->pool + t->off[k];
      if (strncmp(id, s, n) == 0 && id[n] == '\0')
        return k;
    }
    slot = (slot + 1) & t->mask;
  }
  if (t->count == INT32_MAX)
    return -1;
  if (t->count >= t->off_cap) {
    int32_t cap = t->off_cap ? t->off_cap * 2 : 1024;
    int64_t *no = realloc(t->off, sizeof(int64_t) * (size_t)cap);
    if (!no)
      return -1;
    t->off = no;
    uint32_t *nh = realloc(t->hashes, sizeof(uint32_t) * (size_t)cap);
    if (!nh)
      return -1;
    t->hashes = nh;
    t->off_cap = cap;
  }
  if (t->pool_len + n + 1 > t->pool_cap) {
    size_t cap = t->pool_cap ? t->pool_cap * 2 : 8192;
    while (cap < t->pool_len + n + 1)
      cap *= 2;
    char *np = realloc(t->pool, cap);
    if (!np)
      return -1;
    t->pool = np;
    t->pool_cap = cap;
  }
  memcpy(t->pool + t->pool_len, s, n);
  t->pool[t->pool_len + n] = '\0';
  int32_t k = t->count++;
  t->off[k] = (int64_t)t->pool_len;
  t->hashes[k] = h;
  t->pool_len += n + 1;
  t->slots[slot] = k;
  if ((uint32_t)t->count * 2 > t->mask && idt_grow(t) != 0)
    return -1;
  return k;
}

/* ------------------------------------------------------------------ parser */

#define MAX_FIELDS 16

static char *read_whole(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n < cap) {
      if (ferror(f)) {
        free(buf);
        buf = NULL;
      }
      break;
    }
    cap *= 2;
    char *nb = realloc(buf, cap + 1);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
  }
  fclose(f);
  if (buf) {
    buf[n] = '\0';
    *len = n;
  }
  return buf;
}

static void trim(char **b, char **e) {
  while (*b < *e && (**b == ' ' || **b == '\t'))
    (*b)++;
  while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
    (*e)--;
}

typedef struct {
  int64_t n, cap;
  int32_t *user, *item;
  double *rating;
  int64_t *ts;
} rows_buf;

static int rows_push(rows_buf *b, int32_t u, int32_t i, double r, int64_t ts) {
  if (b->n == b->cap) {
    int64_t cap = b->cap ? b->cap * 2 : 4096;
    int32_t *nu = realloc(b->user, sizeof(int32_t) * (size_t)cap);
    if (nu)
      b->user = nu;
    int32_t *ni = realloc(b->item, sizeof(int32_t) * (size_t)cap);
    if (ni)
      b->item = ni;
    double *nr = realloc(b->rating, sizeof(double) * (size_t)cap);
    if (nr)
      b->rating = nr;
    int64_t *nt = realloc(b->ts, sizeof(int64_t) * (size_t)cap);
    if (nt)
      b->ts = nt;
    if (!nu || !ni || !nr || !nt)
      return -1;
    b->cap = cap;
  }
  b->user[b->n] = u;
  b->item[b->n] = i;
  b->rating[b->n] = r;
  b->ts[b->n] = ts;
  b->n++;
  return 0;
}

/* Splits [b, e) at sep into fields (trimmed, NUL-terminated in place). Returns the field
 * count, which may exceed MAX_FIELDS (only the first MAX_FIELDS are stored). */
static int split_fields(char *b, char *e, const char *sep, size_t seplen, char **fb, char **fe) {
  int nf = 0;
  char *s = b;
  for (;;) {
    char *hit = NULL;
    for (char *p = s; p + seplen <= e; p++) {
      p = memchr(p, sep[0], (size_t)(e - p));
      if (!p || p + seplen > e)
        break;
      if (memcmp(p, sep, seplen) == 0) {
        hit = p;
        break;
      }
    }
    char *fend = hit ? hit : e;
    if (nf < MAX_FIELDS) {
      char *x = s, *y = fend;
      trim(&x, &y);
      fb[nf] = x;
      fe[nf] = y;
    }
    nf++;
    if (!hit)
      break;
    s = hit + seplen;
  }
  for (int k = 0; k < nf && k < MAX_FIELDS; k++)
    *fe[k] = '\0';
  return nf;
}

int mm_rec_parse_file(mm_ctx *ctx, const char *path, const mm_rec_parse_opts *o,
                      mm_rec_parsed *out) {
  memset(out, 0, sizeof *out);
  out->rmin = out->rmax = NAN;
  size_t len = 0;
  char *buf = read_whole(path, &len);
  if (!buf)
    return mm_fail(ctx, "%s: cannot read '%s': %s", o->op, path, strerror(errno));
  id_table users, items;
  rows_buf rows = {0};
  int status = -1;
  bool users_ok = idt_init(&users) == 0, items_ok = idt_init(&items) == 0;
  if (!users_ok || !items_ok) {
    mm_fail(ctx, "%s: out of memory", o->op);
    goto done;
  }
  size_t seplen = strlen(o->sep);
  if (seplen == 0) {
    mm_fail(ctx, "%s: the separator is empty", o->op);
    goto done;
  }
  int want = o->min_fields == o->max_fields ? o->min_fields : 0; /* 0: set by line 1 */
  bool has_ts = false;
  char *p = buf, *end = buf + len;
  int64_t line = 0;
  char *fb[MAX_FIELDS], *fe[MAX_FIELDS];
  char why[160];
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *le = nl ? nl : end;
    char *next = nl ? nl + 1 : end;
    line++;
    if (le > p && le[-1] == '\r')
      le--;
    if (line == 1 && o->header) {
      p = next;
      continue;
    }
    char *tb = p, *te = le;
    trim(&tb, &te);
    if (tb == te) { /* blank line (the last one of most files) */
      p = next;
      continue;
    }
    int nf = split_fields(p, le, o->sep, seplen, fb, fe);
    why[0] = '\0';
    double r = 0;
    int64_t ts = 0;
    if (want ? nf != want : (nf < o->min_fields || nf > o->max_fields)) {
      if (want)
        snprintf(why, sizeof why, "expected %d fields, got %d", want, nf);
      else
        snprintf(why, sizeof why, "expected %d or %d fields, got %d", o->min_fields, o->max_fields,
                 nf);
    } else if (fb[0] == fe[0]) {
      snprintf(why, sizeof why, "empty user id");
    } else if (fb[1] == fe[1]) {
      snprintf(why, sizeof why, "empty item id");
    } else if (memchr(fb[0], '\0', (size_t)(fe[0] - fb[0])) ||
               memchr(fb[1], '\0', (size_t)(fe[1] - fb[1]))) {
      /* raw ids are kept as C strings: "a\0x" and "a\0y" would both read as "a" */
      snprintf(why, sizeof why, "an id holds a NUL byte");
    } else {
      char *q;
      errno = 0;
      r = strtod(fb[2], &q);
      if (fb[2] == fe[2] || q != fe[2]) {
        snprintf(why, sizeof why, "rating '%.40s' is not a number", fb[2]);
      } else if (nf >= 4) {
        errno = 0;
        long long v = strtoll(fb[3], &q, 10);
        if (fb[3] == fe[3] || q != fe[3] || errno == ERANGE)
          snprintf(why, sizeof why, "timestamp '%.40s' is not an integer", fb[3]);
        ts = (int64_t)v;
      }
    }
    if (why[0]) {
      if (!o->skip_bad) {
        mm_fail(ctx, "%s: %s:%lld: %s", o->op, o->name, (long long)line, why);
        goto done;
      }
      if (!out->n_skipped)
        out->first_skipped = line;
      out->n_skipped++;
      p = next;
      continue;
    }
    /* bad values are errors even with skip_bad: the line is well formed, the data wrong */
    if (!isfinite(r)) {
      mm_fail(ctx, "%s: %s:%lld: rating '%s' is not finite", o->op, o->name, (long long)line,
              fb[2]);
      goto done;
    }
    if (o->has_scale && (r < o->lo || r > o->hi)) {
      mm_fail(ctx, "%s: %s:%lld: rating %g is outside the scale [%g, %g]", o->op, o->name,
              (long long)line, r, o->lo, o->hi);
      goto done;
    }
    if (!want)
      want = nf;
    has_ts = nf >= 4;
    int32_t u = idt_get(&users, fb[0], (size_t)(fe[0] - fb[0]));
    int32_t i = idt_get(&items, fb[1], (size_t)(fe[1] - fb[1]));
    if (u < 0 || i < 0 || rows_push(&rows, u, i, r, ts) != 0) {
      mm_fail(ctx, "%s: out of memory reading '%s'", o->op, o->name);
      goto done;
    }
    if (!(r >= out->rmin))
      out->rmin = r;
    if (!(r <= out->rmax))
      out->rmax = r;
    p = next;
  }
  /* hand over: ids into one pool, rows as the rating list */
  out->r.n = rows.n;
  out->r.n_users = users.count;
  out->r.n_items = items.count;
  out->r.user = rows.user;
  out->r.item = rows.item;
  out->r.rating = rows.rating;
  if (has_ts) {
    out->r.ts = rows.ts;
  } else {
    free(rows.ts);
  }
  memset(&rows, 0, sizeof rows);
  out->pool = malloc(users.pool_len + items.pool_len + 1);
  out->user_off = malloc(sizeof(int64_t) * ((size_t)users.count + 1));
  out->item_off = malloc(sizeof(int64_t) * ((size_t)items.count + 1));
  if (!out->pool || !out->user_off || !out->item_off) {
    mm_rec_parsed_free(out);
    mm_fail(ctx, "%s: out of memory reading '%s'", o->op, o->name);
    goto done;
  }
  if (users.pool_len)
    memcpy(out->pool, users.pool, users.pool_len);
  if (items.pool_len)
    memcpy(out->pool + users.pool_len, items.pool, items.pool_len);
  for (int32_t k = 0; k < users.count; k++)
    out->user_off[k] = users.off[k];
  for (int32_t k = 0; k < items.count; k++)
    out->item_off[k] = items.off[k] + (int64_t)users.pool_len;
  status = 0;
done:
  free(rows.user);
  free(rows.item);
  free(rows.rating);
  free(rows.ts);
  if (users_ok)
    idt_free(&users);
  if (items_ok)
    idt_free(&items);
  free(buf);
  if (status != 0 && out->r.user) {
    mm_rec_parsed_free(out);
  }
  return status;
}

void mm_rec_parsed_free(mm_rec_parsed *p) {
  free(p->r.user);
  free(p->r.item);
  free(p->r.rating);
  free(p->r.ts);
  free(p->pool);
  free(p->user_off);
  free(p->item_off);
  memset(&p->r, 0, sizeof p->r);
  p->pool = NULL;
  p->user_off = p->item_off = NULL;
}

/* ------------------------------------------------------------------ permutation */

void mm_rec_permutation(mm_ctx *ctx, int64_t n, int64_t *perm) {
  for (int64_t k = 0; k < n; k++)
    perm[k] = k;
  for (int64_t k = n - 1; k > 0; k--) {
    int64_t j = (int64_t)(mm_random_uniform(ctx) * (double)(k + 1));
    if (j > k)
      j = k;
    int64_t t = perm[k];
    perm[k] = perm[j];
    perm[j] = t;
  }
}

/* Normal(mean, sd) by Marsaglia's polar method (two draws per accepted pair, no
 * trigonometry): initialising 100-factor tables is a visible part of a short fit. */
void mm_rec_fill_normal(mm_ctx *ctx, float *p, int64_t n, double mean, double sd) {
  int64_t k = 0;
  while (k < n) {
    double x, y, s;
    do {
      x = 2.0 * mm_random_uniform(ctx) - 1.0;
      y = 2.0 * mm_random_uniform(ctx) - 1.0;
      s = x * x + y * y;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    p[k++] = (float)(mean + sd * x * f);
    if (k < n)
      p[k++] = (float)(mean + sd * y * f);
  }
}

void mm_rec_fill_uniform(mm_ctx *ctx, float *p, int64_t n, double lo, double hi) {
  for (int64_t k = 0; k < n; k++)
    p[k] = (float)(lo + (hi - lo) * mm_random_uniform(ctx));
}
