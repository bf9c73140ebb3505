/* Lua binding for the elementwise ops (src/ops/elementwise.c). */
#include "binding.h"

void mml_open_elementwise(lua_State *L, const mml_open_state *st) {
  (void)L;
  (void)st;
}
