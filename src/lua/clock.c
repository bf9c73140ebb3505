/* ml.clock(): a monotonic wall clock in seconds, for timing training loops and benches
 * (os.clock counts CPU time, which threads inflate; os.time has whole seconds). */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include "binding.h"

#include <time.h>

static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

static const luaL_Reg functions[] = {
    {"clock", l_clock},
    {NULL, NULL},
};

void mml_open_clock(lua_State *L, const mml_open_state *st) {
  mml_register(L, st, st->module, functions);
}
