/* libFuzzer harness for loading fitted recommenders (rec.load_model: the safetensors reader
 * and the checks of lua/moonml/rec/persist.lua and base.persist), then using what loaded.
 * The input and the property are in fuzz/rec_model_target.lua. */
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_lua_run(fuzz_lua_open("rec_model_target"), data, size);
  return 0;
}
