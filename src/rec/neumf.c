/* Training pairs for neural collaborative filtering with sampled negatives (see
 * neumf.h). He et al. (2017) draw the negatives of each positive anew every epoch,
 * uniformly among the items the user has not interacted with; so does this. */
#include "neumf.h"

#include <stdlib.h>
#include <string.h>

static size_t a8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Bytes of a block for nu users, nnz pairs and ni items, laid out as pos_layout does. */
static size_t pos_bytes(size_t nu, size_t nnz, size_t ni) {
  return a8((nu + 1) * sizeof(int64_t)) + a8(nnz * sizeof(int32_t)) + a8(ni * sizeof(int32_t)) +
         a8(ni) + a8(ni * sizeof(int32_t));
}

/* Points p's arrays into mem (pos_bytes(nu, nnz, ni) long); mark all zero. */
static void pos_layout(char *m, int32_t nu, size_t nnz, int32_t n_items, mm_rec_pos *p) {
  size_t ni = (size_t)n_items;
  p->n_users = nu;
  p->n_items = n_items;
  p->ptr = (int64_t *)m;
  m += a8(((size_t)nu + 1) * sizeof(int64_t));
  p->item = (int32_t *)m;
  m += a8(nnz * sizeof(int32_t));
  p->cand = (int32_t *)m;
  m += a8(ni * sizeof(int32_t));
  p->mark = (uint8_t *)m;
  m += a8(ni);
  p->free = (int32_t *)m;
  memset(p->mark, 0, ni);
}

size_t mm_rec_pos_bytes(const mm_rec_csr *by_user, int32_t n_items) {
  return pos_bytes((size_t)by_user->n_rows, (size_t)by_user->ptr[by_user->n_rows], (size_t)n_items);
}

size_t mm_rec_pos_user_bytes(const mm_rec_pos *from, int64_t n) {
  return pos_bytes(1, (size_t)n, (size_t)from->n_items);
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* row = the n ids of src ascending without repeats; marks each; returns the length */
static int64_t sorted_row(int32_t *row, const int32_t *src, int64_t n, uint8_t *mark) {
  memcpy(row, src, (size_t)n * sizeof(int32_t));
  qsort(row, (size_t)n, sizeof(int32_t), cmp_i32);
  int64_t len = 0;
  for (int64_t k = 0; k < n; k++)
    if (len == 0 || row[k] != row[len - 1]) {
      row[len++] = row[k];
      mark[row[k]] = 1;
    }
  return len;
}

void mm_rec_pos_fill(const mm_rec_csr *by_user, int32_t n_items, void *mem, mm_rec_pos *p) {
  int32_t nu = by_user->n_rows;
  pos_layout(mem, nu, (size_t)by_user->ptr[nu], n_items, p);
  int64_t out = 0;
  p->ptr[0] = 0;
  for (int32_t u = 0; u < nu; u++) {
    int64_t lo = by_user->ptr[u], hi = by_user->ptr[u + 1];
    int64_t len = sorted_row(p->item + out, by_user->idx + lo, hi - lo, p->mark);
    out += len;
    p->ptr[u + 1] = out;
  }
  p->nnz = out;
  p->n_cand = 0;
  for (int32_t i = 0; i < n_items; i++)
    if (p->mark[i]) {
      p->cand[p->n_cand++] = i;
      p->mark[i] = 0;
    }
}

int mm_rec_pos_fill_user(const mm_rec_pos *from, const int32_t *items, int64_t n, void *mem,
                         mm_rec_pos *p) {
  pos_layout(mem, 1, (size_t)n, from->n_items, p);
  for (int64_t k = 0; k < n; k++)
    if (items[k] < 0 || items[k] >= from->n_items)
      return -1;
  int64_t len = sorted_row(p->item, items, n, p->mark);
  p->ptr[0] = 0;
  p->ptr[1] = len;
  p->nnz = len;
  /* every given item must be a candidate: the sampler counts the free ones as
   * n_cand - len */
  int64_t hits = 0;
  for (int32_t c = 0; c < from->n_cand; c++)
    hits += p->mark[from->cand[c]];
  memset(p->mark, 0, (size_t)from->n_items);
  if (hits != len)
    return -1;
  memcpy(p->cand, from->cand, (size_t)from->n_cand * sizeof(int32_t));
  p->n_cand = from->n_cand;
  return 0;
}

int64_t mm_rec_neg_rows(const mm_rec_pos *p, int32_t negatives) {
  int64_t rows = 0;
  for (int32_t u = 0; u < p->n_users; u++) {
    int64_t pos = p->ptr[u + 1] - p->ptr[u];
    rows += pos;
    if (pos < p->n_cand)
      rows += pos * negatives;
  }
  return rows;
}

/* uniform in 0 .. n-1 */
static int64_t draw(mm_ctx *rng, int64_t n) {
  int64_t j = (int64_t)(mm_random_uniform(rng) * (double)n);
  return j < n ? j : n - 1;
}

void mm_rec_neg_epoch(mm_ctx *rng, mm_rec_pos *p, int32_t negatives, int64_t id_base,
                      int64_t *users, int64_t *items, float *labels) {
  int64_t r = 0;
  for (int32_t u = 0; u < p->n_users; u++) {
    const int32_t *row = p->item + p->ptr[u];
    int64_t pos = p->ptr[u + 1] - p->ptr[u];
    for (int64_t k = 0; k < pos; k++, r++) {
      users[r] = u + id_base;
      items[r] = row[k] + id_base;
      labels[r] = 1.0f;
    }
    int64_t n_free = p->n_cand - pos, n_neg = pos * negatives;
    if (pos == 0 || n_free <= 0 || n_neg == 0)
      continue;
    for (int64_t k = 0; k < pos; k++)
      p->mark[row[k]] = 1;
    if (2 * n_free >= p->n_cand) {
      /* at least half the candidates are free: fewer than 2 tries per draw on average */
      for (int64_t k = 0; k < n_neg; k++, r++) {
        int32_t i;
        do
          i = p->cand[draw(rng, p->n_cand)];
        while (p->mark[i]);
        users[r] = u + id_base;
        items[r] = i + id_base;
        labels[r] = 0.0f;
      }
    } else {
      int64_t nf = 0;
      for (int32_t c = 0; c < p->n_cand; c++)
        if (!p->mark[p->cand[c]])
          p->free[nf++] = p->cand[c];
      for (int64_t k = 0; k < n_neg; k++, r++) {
        users[r] = u + id_base;
        items[r] = p->free[draw(rng, nf)] + id_base;
        labels[r] = 0.0f;
      }
    }
    for (int64_t k = 0; k < pos; k++)
      p->mark[row[k]] = 0;
  }
  /* Fisher-Yates over the rows */
  for (int64_t k = r - 1; k > 0; k--) {
    int64_t j = draw(rng, k + 1);
    int64_t tu = users[k], ti = items[k];
    float tl = labels[k];
    users[k] = users[j];
    items[k] = items[j];
    labels[k] = labels[j];
    users[j] = tu;
    items[j] = ti;
    labels[j] = tl;
  }
}
