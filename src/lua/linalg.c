/* Lua binding for the linalg ops (src/ops/linalg.c). */
#include "binding.h"

void mml_open_linalg(lua_State *L, const mml_open_state *st) {
  (void)L;
  (void)st;
}
