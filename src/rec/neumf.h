/* Training pairs for neural collaborative filtering (lua/moonml/rec/neumf.lua): every
 * positive (user, item) of a train set with label 1, and per positive `negatives` items
 * drawn uniformly, with replacement, among the candidate items (those with at least one
 * interaction) that the user has no interaction with, label 0; all rows shuffled. Plain C
 * over arrays, 0-based ids; knows nothing of Lua. */
#ifndef MM_REC_NEUMF_H
#define MM_REC_NEUMF_H

#include "rec.h"

/* A train set's distinct (user, item) pairs by user, items ascending, and the candidates.
 * Every array points into one block of mm_rec_pos_bytes bytes that the caller owns. */
typedef struct mm_rec_pos {
  int32_t n_users, n_items, n_cand;
  int64_t nnz;   /* distinct pairs */
  int64_t *ptr;  /* n_users + 1 offsets into item */
  int32_t *item; /* each user's items, ascending, without repeats */
  int32_t *cand; /* the candidate items, ascending */
  uint8_t *mark; /* n_items scratch, all zero between calls */
  int32_t *free; /* n_cand scratch */
} mm_rec_pos;

/* Bytes of the block for the pairs of a CSR by user (repeats included) over n_items. */
size_t mm_rec_pos_bytes(const mm_rec_csr *by_user, int32_t n_items);
/* Points p's arrays into mem (mm_rec_pos_bytes long, 8-aligned) and fills them. */
void mm_rec_pos_fill(const mm_rec_csr *by_user, int32_t n_items, void *mem, mm_rec_pos *p);

/* Bytes of the block of a one-user index with n given items over from's items. */
size_t mm_rec_pos_user_bytes(const mm_rec_pos *from, int64_t n);
/* A one-user index (user 0) for fold-in: the n given items (0-based, any order, repeats
 * counted once) as its pairs, over from's items and candidates; the block is
 * mm_rec_pos_user_bytes(from, n) long, 8-aligned. Returns -1 when an item is out of range
 * or not a candidate of from (p is then unusable), else 0. */
int mm_rec_pos_fill_user(const mm_rec_pos *from, const int32_t *items, int64_t n, void *mem,
                         mm_rec_pos *p);

/* Rows of one epoch: each positive plus `negatives` rows for each positive of a user who
 * has at least one candidate left (a user who has every candidate gets none). */
int64_t mm_rec_neg_rows(const mm_rec_pos *p, int32_t negatives);
/* Draws one epoch with the generator of rng into users / items (ids + id_base) and labels
 * (1 or 0), mm_rec_neg_rows(p, negatives) entries each, in random order. */
void mm_rec_neg_epoch(mm_ctx *rng, mm_rec_pos *p, int32_t negatives, int64_t id_base,
                      int64_t *users, int64_t *items, float *labels);

#endif
