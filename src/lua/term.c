/* Terminal helper for ml.progress, in core._term: is a Lua file handle a terminal. */
#define _POSIX_C_SOURCE 200809L /* fileno */
#include "binding.h"

#include <stdio.h>
#include <unistd.h>

/* isatty(fh) -> boolean; false for a closed handle or anything that is not a file */
static int l_isatty(lua_State *L) {
  luaL_Stream *s = luaL_testudata(L, 1, LUA_FILEHANDLE);
  lua_pushboolean(L, s && s->closef && s->f && isatty(fileno(s->f)));
  return 1;
}

static const luaL_Reg functions[] = {
    {"isatty", l_isatty},
    {NULL, NULL},
};

void mml_open_term(lua_State *L, const mml_open_state *st) {
  lua_newtable(L);
  mml_register(L, st, lua_gettop(L), functions);
  lua_setfield(L, st->module, "_term");
}
