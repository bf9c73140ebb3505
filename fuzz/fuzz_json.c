/* libFuzzer harness for the JSON reader (ml.json.decode: cJSON and the binding that turns
 * its tree into Lua values, src/lua/json.c). The input is the text; the property is in
 * fuzz/json_target.lua. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_run(fuzz_lua_open("json_target"), data, size);
  return 0;
}
