rockspec_format = "3.0"
package = "moonml"
version = "scm-1"
-- The repository has no public address yet; `luarocks make` builds the checked-out
-- tree and does not read this URL. Set it when the repository is published.
source = {
  url = "git+https://example.invalid/moonml.git",
}
description = {
  summary = "Machine learning for Lua 5.4: tensors with a C11 core",
  detailed = [[
moonml is a machine-learning library for Lua 5.4. Tensors, their arithmetic and
matrix products (OpenBLAS), autograd, nn layers, optimizers and recommenders live in a C11
core with Lua layers; weights are kept in safetensors files (cJSON), compatible with
PyTorch. `require "moonml"` returns the module.
]],
  license = "MIT",
  labels = { "machine-learning", "tensor" },
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
-- Each folder can be given on the command line, e.g.
--   luarocks make rockspec/moonml-scm-1.rockspec OPENBLAS_DIR=/opt/homebrew/opt/openblas
-- or OPENBLAS_INCDIR=... OPENBLAS_LIBDIR=... (likewise PNG_*, CJSON_*).
external_dependencies = {
  -- library only: Debian keeps cblas.h in a multiarch folder LuaRocks does not search;
  -- the Makefile then asks pkg-config for it.
  OPENBLAS = { library = "openblas" },
  PNG = { header = "png.h", library = "png" },
  CJSON = { header = "cjson/cJSON.h", library = "cjson" },
}
build = {
  type = "make",
  build_target = "rebuild", -- from scratch in build/luarocks, then `make install`
  -- Passed to both `make` and `make install`. The Makefile keeps its own flags
  -- (warnings, -std=c11, include folders) apart from CFLAGS, so these add to them.
  variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
    BUILD = "build/luarocks",
    OPENBLAS_INCDIR = "$(OPENBLAS_INCDIR)",
    OPENBLAS_LIBDIR = "$(OPENBLAS_LIBDIR)",
    PNG_INCDIR = "$(PNG_INCDIR)",
    PNG_LIBDIR = "$(PNG_LIBDIR)",
    CJSON_INCDIR = "$(CJSON_INCDIR)",
    CJSON_LIBDIR = "$(CJSON_LIBDIR)",
  },
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
}
test = {
  type = "command",
  command = "make test",
}
