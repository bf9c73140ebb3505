# moonml -- build, test and tooling. `make deps` installs what a fresh Debian 12 lacks.
LUA      ?= lua5.4
BUSTED   ?= $(LUA) /usr/bin/busted --ignore-lua
CC       ?= cc
CFLAGS   ?= -O3 -g
LIBFLAG  ?= -shared
PKGS     := openblas libpng libcjson
DEP_CFLAGS := $(shell pkg-config --cflags lua5.4 $(PKGS) 2>/dev/null)
DEP_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lz -lm -pthread
WARN     := -std=c11 -Wall -Wextra -Wno-unused-parameter
ALL_CFLAGS = $(CFLAGS) -fPIC -pthread $(WARN) $(DEP_CFLAGS)

# The core (everything but the binding) goes into libmoonml.a; the module adds src/lua.
CORE_SRCS := $(sort $(wildcard src/core/*.c src/ops/*.c src/autograd/*.c src/optim/*.c \
                                src/rec/*.c src/io/*.c))
LUA_SRCS  := $(sort $(wildcard src/lua/*.c))
CORE_OBJS := $(CORE_SRCS:src/%.c=build/obj/%.o)
LUA_OBJS  := $(LUA_SRCS:src/%.c=build/obj/%.o)
LIB := build/libmoonml.a
SO  := build/moonml/core.so

DEB_PACKAGES := lua5.4 liblua5.4-dev lua-busted luarocks lua-check cppcheck gcc make \
                libopenblas-dev libpng-dev libcjson-dev zlib1g-dev pkg-config

.PHONY: all deps test test-all demo lint format rock install bench clean
all: $(LIB) $(SO)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=600 $$missing; \
	else echo "all Debian packages present"; fi

build/obj/%.o: src/%.c src/moonml.h $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(CORE_OBJS)

$(SO): $(LUA_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(LUA_OBJS) $(LIB) $(DEP_LIBS)

# The default run leaves out specs tagged #slow; test-all runs everything.
test: all
	$(BUSTED) --exclude-tags=slow

test-all: all
	$(BUSTED)

demo: all
	$(LUA) examples/linear_regression.lua

lint:
	luacheck --no-color lua spec examples bench
	cppcheck --enable=warning,performance,portability --error-exitcode=1 -q --std=c11 \
	  --suppress=missingIncludeSystem src

format:
	clang-format -i src/*.h src/*/*.c src/*/*.h

# Installs the rock into build/rock and requires it from another folder.
rock:
	rm -rf build/rock
	luarocks --lua-version=5.4 make --tree=build/rock rockspec/moonml-scm-1.rockspec
	cd /tmp && eval "$$(luarocks --lua-version=5.4 --tree=$(CURDIR)/build/rock path)" && \
	  $(LUA) -e 'local ml = require "moonml"; assert(ml.ones(2):sum():item() == 2); print("rock ok", ml._VERSION)'

# Used by the rockspec (build type "make"): INST_LIBDIR and INST_LUADIR come from LuaRocks.
install: all
	mkdir -p $(INST_LIBDIR)/moonml $(INST_LUADIR)
	cp $(SO) $(INST_LIBDIR)/moonml/
	cp -r lua/moonml $(INST_LUADIR)/

clean:
	rm -rf build
