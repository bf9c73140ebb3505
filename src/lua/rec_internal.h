/* Shared by the recommender binding files (rec.c, rec_knn.c): the rating store userdata
 * and its cached CSR views. */
#ifndef MML_REC_INTERNAL_H
#define MML_REC_INTERNAL_H

#include "../rec/rec.h"
#include "binding.h"

/* The rating store at idx (raises "moonml.rec: expected a rating store ..."). */
mm_rec_ratings *mml_rec_check_store(lua_State *L, int idx);
/* Its CSR by user (by_item = false) or by item, built once and cached in the store. */
const mm_rec_csr *mml_rec_store_csr(lua_State *L, int idx, bool by_item);
/* A new rating store userdata (pushed) of n ratings over n_users x n_items. */
mm_rec_ratings *mml_rec_new_store(lua_State *L, int64_t n, int32_t n_users, int32_t n_items,
                                  bool has_ts);
/* Registers the neighbourhood-model functions into the table at index `table`. */
void mml_rec_register_knn(lua_State *L, const mml_open_state *st, int table);
/* Registers the implicit-feedback functions (rec_implicit.c) into the table at `table`. */
void mml_rec_register_implicit(lua_State *L, const mml_open_state *st, int table);

#endif
