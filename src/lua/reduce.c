/* Lua binding for the reduce ops (src/ops/reduce.c). */
#include "binding.h"

void mml_open_reduce(lua_State *L, const mml_open_state *st) {
  (void)L;
  (void)st;
}
