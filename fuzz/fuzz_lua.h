/* Shared by the harnesses whose loader lives partly in Lua (rec.load_model checks a saved
 * model's state in lua/moonml/rec; ml.json.decode builds Lua values in the binding): one
 * Lua 5.4 state per process with the moonml module linked in (built with the fuzzing
 * flags) and lua/ and fuzz/ of this checkout (MOONML_SOURCE_DIR, set by the Makefile) on
 * package.path. A target module fuzz/<name>_target.lua has run(input, scratch_path): it
 * handles every error a load may rightly give and raises only for a finding, which the
 * harness turns into a crash report. */
#ifndef MM_FUZZ_LUA_H
#define MM_FUZZ_LUA_H

#include "fuzz_input.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef MOONML_SOURCE_DIR
#define MOONML_SOURCE_DIR "."
#endif

int luaopen_moonml_core(lua_State *L);

typedef struct {
  lua_State *L;
  int run_ref; /* target.run in the registry */
  char scratch[64];
} fuzz_lua;

static void fuzz_lua_fail(lua_State *L, const char *what) {
  fprintf(stderr, "%s: %s\n", what, lua_tostring(L, -1));
  abort();
}

/* Opens the state and requires the target module (once per process). */
static fuzz_lua *fuzz_lua_open(const char *target) {
  static fuzz_lua F;
  if (F.L)
    return &F;
  lua_State *L = luaL_newstate();
  if (!L)
    abort();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, MOONML_SOURCE_DIR "/lua/?.lua;" MOONML_SOURCE_DIR
                                      "/lua/?/init.lua;" MOONML_SOURCE_DIR "/fuzz/?.lua");
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  luaL_requiref(L, "moonml.core", luaopen_moonml_core, 0);
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushstring(L, target);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    fuzz_lua_fail(L, "loading the target");
  lua_getfield(L, -1, "run");
  F.run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
  snprintf(F.scratch, sizeof F.scratch, "/dev/shm/moonml-fuzz-%d", (int)getpid());
  F.L = L;
  return &F;
}

/* target.run(input, scratch); any error it raises is a finding. A full collection after
 * each input keeps the process's allocations level, so libFuzzer's leak check stays quiet
 * unless something really leaks. */
static void fuzz_lua_run(fuzz_lua *F, const uint8_t *data, size_t size) {
  lua_State *L = F->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, F->run_ref);
  lua_pushlstring(L, (const char *)data, size);
  lua_pushstring(L, F->scratch);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK)
    fuzz_lua_fail(L, "finding");
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
}

#endif
