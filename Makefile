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
# Calls between moonml's own exported functions go straight to them, not through the PLT
# (no host replaces mm_* functions): a few percent of a small op's per-call time.
ALL_CFLAGS = $(CFLAGS) -fPIC -fno-semantic-interposition -pthread $(WARN) $(DEP_CFLAGS)
# The same at link time (GNU ld; Mach-O binds them inside the module anyway).
SYMBOLIC := $(if $(filter Darwin,$(shell uname -s)),,-Wl,-Bsymbolic)

# The core (everything but the binding) goes into libmoonml.a; the module adds src/lua.
CORE_SRCS := $(sort $(wildcard src/core/*.c src/ops/*.c src/autograd/*.c src/optim/*.c \
                                src/rec/*.c src/io/*.c))
LUA_SRCS  := $(sort $(wildcard src/lua/*.c))
CORE_OBJS := $(CORE_SRCS:src/%.c=$(BUILD)/obj/%.o)
LUA_OBJS  := $(LUA_SRCS:src/%.c=$(BUILD)/obj/%.o)
C_FILES = $(wildcard src/*.h src/*/*.c src/*/*.h bench/*.c spec/c/*.c fuzz/*.c fuzz/*.h)
LIB := $(BUILD)/libmoonml.a
SO  := $(BUILD)/moonml/core.so

# Scripts run from the checkout find lua/moonml and the module built in build/.
RUN_ENV := LUA_PATH_5_4='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH_5_4='./build/?.so;;'

# `make install` (LuaRocks passes INST_LIBDIR and INST_LUADIR).
PREFIX      ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/5.4
INST_LUADIR ?= $(PREFIX)/share/lua/5.4

DEB_PACKAGES := lua5.4 liblua5.4-dev lua-busted luarocks lua-check cppcheck clang-format \
                gcc make libopenblas-dev libpng-dev libcjson-dev zlib1g-dev pkg-config lua-ldoc \
                lua-discount dataset-fashion-mnist

.PHONY: all rebuild deps test test-all test-c demo bench bench-ops bench-rec bench-lstm \
        bench-nn bench-implicit lint format rock install clean docs test-asan test-valgrind fuzz fuzz-build soak
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

# The optimizers' update loops take square roots; without errno (nothing reads it) they
# vectorise.
$(BUILD)/obj/optim/optim.o: ALL_CFLAGS += -fno-math-errno

$(LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $(CORE_OBJS)

$(SO): $(LUA_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(SYMBOLIC) -o $@ $(LUA_OBJS) $(LIB) $(DEP_LIBS)

# From scratch in $(BUILD): the rockspec builds this way, because LuaRocks may pass other
# flags or library folders than the previous build in that folder had.
rebuild:
	rm -rf $(BUILD)/obj $(LIB) $(SO)
	$(MAKE) all

# The default run leaves out specs tagged #slow; test-all runs everything.
test: all test-c
	$(BUSTED) --exclude-tags=slow

test-all: all test-c
	$(BUSTED)

# C programs under spec/c link the core alone (no Lua), as an embedding host would.
C_TESTS := $(patsubst spec/c/%.c,$(BUILD)/spec-c/%,$(wildcard spec/c/*.c))
$(BUILD)/spec-c/%: spec/c/%.c $(LIB) src/moonml.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -pthread $(WARN) -Isrc $< $(LIB) $(DEP_LIBS) -o $@
test-c: $(C_TESTS)
	@for t in $(C_TESTS); do $$t || exit 1; done

# Reliability (fuzz/README.md). Both sanitizer runs leave out #slow specs and those tagged
# #nosan (they measure resident size or time, or kill processes on a timer). test-asan: the
# module built into build/asan (never loaded by `make test`) with AddressSanitizer + UBSan,
# loaded into Debian's lua5.4 with gcc's runtimes preloaded; huge-size specs need
# allocator_may_return_null (malloc returns NULL, as without ASan). test-valgrind: the
# normal build under memcheck (slow; it leaves out #heavy specs too, see VALGRIND_SPECS).
SAN_FLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
             -fno-omit-frame-pointer
ASAN_BUILD := build/asan
ASAN_OPTS := detect_leaks=1:allocator_may_return_null=1:detect_stack_use_after_return=1
SAN_SPECS := --exclude-tags=slow,nosan
# memcheck also leaves out #heavy specs (seconds of training natively, most of an hour under
# valgrind); the ASan pass runs them
VALGRIND_SPECS := --exclude-tags=slow,nosan,heavy
# fuzz/no_dlclose.c keeps the module mapped at exit so that leak reports name functions.
$(ASAN_BUILD)/no_dlclose.so: fuzz/no_dlclose.c
	@mkdir -p $(dir $@)
	$(CC) -shared -fPIC -O1 -o $@ $<
test-asan: $(ASAN_BUILD)/no_dlclose.so
	$(MAKE) BUILD=$(ASAN_BUILD) CFLAGS="-O1 -g $(SAN_FLAGS)" LIBFLAG="-shared $(SAN_FLAGS)" all
	ASAN_OPTIONS=$(ASAN_OPTS) $(MAKE) BUILD=$(ASAN_BUILD) CFLAGS="-O1 -g $(SAN_FLAGS)" test-c
	ASAN_OPTIONS=$(ASAN_OPTS) UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so) \
	    $(CURDIR)/$(ASAN_BUILD)/no_dlclose.so" \
	  $(BUSTED) -o plainTerminal $(SAN_SPECS) --cpath='./$(ASAN_BUILD)/?.so'

test-valgrind: all
	@command -v valgrind >/dev/null || { echo "test-valgrind needs valgrind: apt-get install valgrind"; exit 1; }
	valgrind -q --error-exitcode=99 --leak-check=full \
	  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  $(BUSTED) -o plainTerminal $(VALGRIND_SPECS)

# libFuzzer harnesses (clang): one per fuzz/fuzz_<name>.c, linked with the core built by
# clang into build/fuzz. Seeds come from fuzz/make_corpus.py; each harness runs
# FUZZ_SECONDS seconds (make fuzz FUZZ=idx runs one).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
FUZZ_ALL     := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ         ?= $(FUZZ_ALL)
# Harnesses that include fuzz_lua.h run a Lua state with the binding linked in statically
# (libmoonml_lua.a) and Lua 5.4 itself from liblua5.4-dev.
FUZZ_LUA_LIB := $(FUZZ_BUILD)/libmoonml_lua.a
fuzz-build: all
	@command -v $(FUZZ_CC) >/dev/null || { echo "fuzzing needs clang (libFuzzer): apt-get install clang"; exit 1; }
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
	  CFLAGS="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FUZZ_BUILD)/libmoonml.a \
	  $(LUA_SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)
	rm -f $(FUZZ_LUA_LIB) && ar rcs $(FUZZ_LUA_LIB) $(LUA_SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)
	@for f in $(FUZZ); do \
	  echo "$(FUZZ_CC) fuzz/fuzz_$$f.c -> $(FUZZ_BUILD)/fuzz_$$f"; \
	  lua=""; grep -q '"fuzz_lua.h"' fuzz/fuzz_$$f.c && \
	    lua="$(FUZZ_LUA_LIB) $$(pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)"; \
	  $(FUZZ_CC) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) $(WARN) -Isrc $(LUA_CFLAGS) \
	    -DMOONML_SOURCE_DIR='"$(CURDIR)"' fuzz/fuzz_$$f.c $$lua $(FUZZ_BUILD)/libmoonml.a \
	    $(DEP_LIBS) -ldl -o $(FUZZ_BUILD)/fuzz_$$f || exit 1; \
	done
	python3 fuzz/make_corpus.py $(FUZZ_BUILD)/seeds
	rm -rf $(FUZZ_BUILD)/seeds/rec_model && mkdir -p $(FUZZ_BUILD)/seeds/rec_model
	$(RUN_ENV) $(LUA) fuzz/rec_model_target.lua $(FUZZ_BUILD)/seeds/rec_model
fuzz: fuzz-build
	@for f in $(FUZZ); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$f $(FUZZ_BUILD)/crashes/$$f; \
	  dict=""; [ -f fuzz/$$f.dict ] && dict="-dict=fuzz/$$f.dict"; \
	  echo "==> fuzz_$$f for $(FUZZ_SECONDS) s"; \
	  log=$(FUZZ_BUILD)/fuzz_$$f.log; \
	  ASAN_OPTIONS=allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(FUZZ_BUILD)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -malloc_limit_mb=1024 -timeout=10 $$dict \
	    -artifact_prefix=$(FUZZ_BUILD)/crashes/$$f/ \
	    $(FUZZ_BUILD)/corpus/$$f $(FUZZ_BUILD)/seeds/$$f >$$log 2>&1; rc=$$?; \
	  grep -E "^(stat::number_of_executed_units|stat::peak_rss|Done)" $$log; \
	  [ $$rc -eq 0 ] || { tail -40 $$log; echo "fuzz_$$f failed, see $$log"; exit 1; }; \
	done

# Long soak (bench/soak.lua): 10^6 MLP training steps and 10^6 recommender queries, each in
# a fresh process, resident size within 5% after warm-up, no collectgarbage().
SOAK_STEPS ?= 1000000
soak: all
	$(RUN_ENV) $(LUA) bench/soak.lua mlp $(SOAK_STEPS)
	$(RUN_ENV) $(LUA) bench/soak.lua rec $(SOAK_STEPS)

demo: all
	$(RUN_ENV) $(LUA) examples/linear_regression.lua

# Benchmarks (not in CI). `make bench` runs them all; each is its own target, so they
# compose. bench-ops: moonml against PyTorch (when python3-torch is installed) and plain C,
# side by side. bench-rec: every recommender on ML-100k (Surprise's folds) and
# ML-latest-small beside Surprise 1.1.4's recorded figures; REC_DATA names the shared data
# folder. bench-implicit: the implicit-feedback models on ML-100k beside implicit 0.7.3's
# figures, and fit time / peak memory on a 10M-interaction synthetic set (SCALE=small).
bench: bench-ops bench-rec bench-implicit bench-lstm bench-nn

BENCH_REF := $(BUILD)/bench/ref
$(BENCH_REF): bench/ref.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(OPENBLAS_CFLAGS) $< -o $@ \
	  $(call dep_libs,OPENBLAS,openblas,openblas) -lm -pthread
bench-ops: all $(BENCH_REF)
	$(RUN_ENV) BENCH_LUA=$(LUA) BENCH_REF=$(BENCH_REF) $(LUA) bench/run.lua

bench-rec: all
	$(RUN_ENV) $(LUA) bench/rec_ml100k.lua $(REC_DATA)

bench-implicit: all
	$(RUN_ENV) $(LUA) bench/rec_implicit.lua $(REC_DATA)

# bench-lstm: LSTM forward+backward (input 64, hidden 128, T 50, batch 32) beside PyTorch.
bench-lstm: all
	$(RUN_ENV) $(LUA) bench/lstm.lua

# bench-nn: the Fashion-MNIST MLP and CNN training loops, the 32-64-4 MLP per call and CNN
# inference beside PyTorch (bench/nn_torch.py), one thread each, OpenBLAS's pool included.
bench-nn: all
	OPENBLAS_NUM_THREADS=1 $(RUN_ENV) $(LUA) bench/nn.lua

LUA_DIRS := $(wildcard lua spec examples bench tools fuzz)
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

# The HTML API reference (LDoc, config.ld): the Lua modules and doc/*.luadoc (the C tensor
# API); build/doc/index.html. It fails on any LDoc warning and on a public Lua function
# without a doc comment (tools/check_docs.lua).
docs:
	$(LUA) tools/check_docs.lua $(sort $(shell find lua/moonml -name '*.lua'))
	rm -rf $(BUILD)/doc
	ldoc --fatalwarnings --testing -d $(BUILD)/doc .

# Installs the rock into build/rock and requires it from another folder, checking that
# the module came from that tree (not from build/ or a system-wide install).
ROCK_TREE := $(CURDIR)/build/rock
ROCK_CHECK := local ml = require "moonml"; \
  local so = package.searchpath("moonml.core", package.cpath); \
  local lua = package.searchpath("moonml", package.path); \
  assert(so:find("$(ROCK_TREE)/", 1, true) == 1, "moonml.core loaded from " .. so); \
  assert(lua:find("$(ROCK_TREE)/", 1, true) == 1, "moonml loaded from " .. lua); \
  assert(ml.ones(2):numel() == 2); local p = os.tmpname(); \
  ml.save({x = ml.ones(2)}, p, {metadata = {k = "v"}}); local t, m = ml.load(p); os.remove(p); \
  assert(t.x:sum():item() == 2 and m.k == "v" and ml.json.encode({1}) == "[1]"); \
  print("rock ok", ml._VERSION, so)
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
