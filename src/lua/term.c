/* Terminal helpers for ml.progress, in core._term: is a Lua file handle a terminal, and a
 * monotonic clock in seconds (os.clock counts CPU time, which threads inflate; os.time has
 * whole seconds). */
#define _POSIX_C_SOURCE 200809L /* fileno, clock_gettime */
#include "binding.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* isatty(fh) -> boolean; false for a closed handle or anything that is not a file */
static int l_isatty(lua_State *L) {
  luaL_Stream *s = luaL_testudata(L, 1, LUA_FILEHANDLE);
  lua_pushboolean(L, s && s->closef && s->f && isatty(fileno(s->f)));
  return 1;
}

static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

static const luaL_Reg functions[] = {
    {"isatty", l_isatty},
    {"clock", l_clock},
    {NULL, NULL},
};

void mml_open_term(lua_State *L, const mml_open_state *st) {
  lua_newtable(L);
  mml_register(L, st, lua_gettop(L), functions);
  lua_setfield(L, st->module, "_term");
}
