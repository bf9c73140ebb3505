# moonml -- build, test and tooling. `make deps` installs what a fresh Debian 12 lacks.
LUA      ?= lua5.4
BUSTED   ?= $(LUA) /usr/bin/busted --ignore-lua
CC       ?= cc
CFLAGS   ?= -O3 -g
LIBFLAG  ?= -shared
# Build output; the rockspec builds into build/luarocks so a rock build never leaves
# objects or a module that `make test` (which loads build/moonml/core.so) would pick up.
BUILD    ?= build
PKGS     := openblas libpng libcjson

# Where the libraries are: pkg-config by default; LuaRocks (or you) may name the folders,
# e.g. `make OPENBLAS_DIR=/opt/homebrew/opt/openblas` or OPENBLAS_INCDIR=... OPENBLAS_LIBDIR=...
# Recursive (=) on purpose: `make deps all` must see packages that `deps` just installed.
dir_inc = $(or $($(1)_INCDIR),$(if $($(1)_DIR),$($(1)_DIR)/include))
dir_lib = $(or $($(1)_LIBDIR),$(if $($(1)_DIR),$($(1)_DIR)/lib))
pc_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pc_libs = $(shell pkg-config --libs $(1) 2>/dev/null || echo -l$(2))
# $(call dep_cflags,VAR,pkg) / $(call dep_libs,VAR,pkg,lib)
dep_cflags = $(if $(call dir_inc,$(1)),-I$(call dir_inc,$(1)),$(call pc_cflags,$(2)))
comma := ,
dep_libs = $(if $(call dir_lib,$(1)),-L$(call dir_lib,$(1)) -Wl$(comma)-rpath$(comma)$(call \
             dir_lib,$(1)) -l$(3),$(call pc_libs,$(2),$(3)))
# Debian keeps cblas.h in a multiarch folder, not in $(OPENBLAS_INCDIR): ask pkg-config then.
OPENBLAS_CFLAGS = $(call dep_cflags,OPENBLAS,openblas) \
  $(if $(and $(call dir_inc,OPENBLAS),$(wildcard $(call dir_inc,OPENBLAS)/cblas.h)),,\
    $(if $(call dir_inc,OPENBLAS),$(call pc_cflags,openblas)))
LUA_CFLAGS = $(if $(LUA_INCDIR),-I$(LUA_INCDIR),$(call pc_cflags,lua5.4))
DEP_CFLAGS = $(LUA_CFLAGS) $(OPENBLAS_CFLAGS) $(call dep_cflags,PNG,libpng) \
  $(call dep_cflags,CJSON,libcjson)
# Never -llua5.4: the interpreter (or a host) provides Lua.
DEP_LIBS   = $(call dep_libs,OPENBLAS,openblas,openblas) $(call dep_libs,PNG,libpng,png) \
  $(call dep_libs,CJSON,libcjson,cjson) -lz -lm -pthread
WARN     := -std=c11 -Wall -Wextra -Wno-unused-parameter
ALL_CFLAGS = $(CFLAGS) -fPIC -pthread $(WARN) $(DEP_CFLAGS)

# The core (everything but the binding) goes into libmoonml.a; the module adds src/lua.
CORE_SRCS := $(sort $(wildcard src/core/*.c src/ops/*.c src/autograd/*.c src/optim/*.c \
                                src/rec/*.c src/io/*.c))
LUA_SRCS  := $(sort $(wildcard src/lua/*.c))
CORE_OBJS := $(CORE_SRCS:src/%.c=$(BUILD)/obj/%.o)
LUA_OBJS  := $(LUA_SRCS:src/%.c=$(BUILD)/obj/%.o)
C_FILES = $(wildcard src/*.h src/*/*.c src/*/*.h bench/*.c)
LIB := $(BUILD)/libmoonml.a
SO  := $(BUILD)/moonml/core.so

# Scripts run from the checkout find lua/moonml and the module built in build/.
RUN_ENV := LUA_PATH_5_4='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH_5_4='./build/?.so;;'

# `make install` (LuaRocks passes INST_LIBDIR and INST_LUADIR).
PREFIX      ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/5.4
INST_LUADIR ?= $(PREFIX)/share/lua/5.4

DEB_PACKAGES := lua5.4 liblua5.4-dev lua-busted luarocks lua-check cppcheck clang-format \
                gcc make libopenblas-dev libpng-dev libcjson-dev zlib1g-dev pkg-config

.PHONY: all rebuild deps test test-all demo bench bench-rec bench-implicit lint format rock install clean
all: $(LIB) $(SO)

# `make deps demo` must install before it builds, even under -j.
ifneq ($(filter deps,$(MAKECMDGOALS)),)
.NOTPARALLEL:
endif

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "all Debian packages present"; exit 0; fi; \
	echo "installing:$$missing"; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	export DEBIAN_FRONTEND=noninteractive; \
	for try in 1 2 3; do \
	  $$SUDO apt-get update -qq -o DPkg::Lock::Timeout=600 && \
	  $$SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 $$missing && exit 0; \
	  echo "apt-get failed (attempt $$try of 3)"; sleep 10; \
	done; exit 1

$(BUILD)/obj/%.o: src/%.c src/moonml.h $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(CORE_OBJS)

$(SO): $(LUA_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(LUA_OBJS) $(LIB) $(DEP_LIBS)

# From scratch in $(BUILD): the rockspec builds this way, because LuaRocks may pass other
# flags or library folders than the previous build in that folder had.
rebuild:
	rm -rf $(BUILD)/obj $(LIB) $(SO)
	$(MAKE) all

# The default run leaves out specs tagged #slow; test-all runs everything.
test: all
	$(BUSTED) --exclude-tags=slow

test-all: all
	$(BUSTED)

demo: all
	$(RUN_ENV) $(LUA) examples/linear_regression.lua

# Benchmarks. bench-rec: every recommender on ML-100k (Surprise's folds) and ML-latest-small
# beside Surprise 1.1.4's recorded figures; bench-implicit: the implicit-feedback models on
# ML-100k beside implicit 0.7.3's figures, and fit time / peak memory on a 10M-interaction
# synthetic set (SCALE=small for a tenth); REC_DATA names the shared data folder.
bench: bench-rec bench-implicit

bench-rec: all
	$(RUN_ENV) $(LUA) bench/rec_ml100k.lua $(REC_DATA)

bench-implicit: all
	$(RUN_ENV) $(LUA) bench/rec_implicit.lua $(REC_DATA)

LUA_DIRS := $(wildcard lua spec examples bench)
lint:
	luacheck --no-color $(LUA_DIRS)
	luarocks --lua-version=5.4 lint rockspec/moonml-scm-1.rockspec
	cppcheck --enable=warning,performance,portability --error-exitcode=1 -q --std=c11 \
	  --suppress=missingIncludeSystem --suppress=invalidPointerCast \
	  --library=lua --library=.ci/cppcheck.cfg src
	clang-format --dry-run --Werror $(C_FILES)
# invalidPointerCast: storage is addressed as bytes and read as float/double on purpose.
# .ci/cppcheck.cfg tells cppcheck that mml_error() never returns (it raises a Lua error).

format:
	clang-format -i $(C_FILES)

# Installs the rock into build/rock and requires it from another folder, checking that
# the module came from that tree (not from build/ or a system-wide install).
ROCK_TREE := $(CURDIR)/build/rock
ROCK_CHECK := local ml = require "moonml"; \
  local so = package.searchpath("moonml.core", package.cpath); \
  local lua = package.searchpath("moonml", package.path); \
  assert(so:find("$(ROCK_TREE)/", 1, true) == 1, "moonml.core loaded from " .. so); \
  assert(lua:find("$(ROCK_TREE)/", 1, true) == 1, "moonml loaded from " .. lua); \
  assert(ml.ones(2):numel() == 2); print("rock ok", ml._VERSION, so)
rock:
	rm -rf $(ROCK_TREE) build/luarocks
	luarocks --lua-version=5.4 make --tree=$(ROCK_TREE) rockspec/moonml-scm-1.rockspec
	cd /tmp && eval "$$(luarocks --lua-version=5.4 --tree=$(ROCK_TREE) path)" && \
	  $(LUA) -e '$(ROCK_CHECK)'

# Used by the rockspec (build type "make"): INST_LIBDIR and INST_LUADIR come from LuaRocks.
install: all
	mkdir -p $(INST_LIBDIR)/moonml $(INST_LUADIR)
	cp $(SO) $(INST_LIBDIR)/moonml/
	cp -r lua/moonml $(INST_LUADIR)/

clean:
	rm -rf build
