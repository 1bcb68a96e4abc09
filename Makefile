# Thin wrapper over CMake. `make up` serves functions-examples/hello on
# 127.0.0.1:8080 (`make up PORT=8081`, `make up LISTEN=0.0.0.0:8081`, or
# TINE_LISTEN in the environment); `make test` runs every test. Both install missing Debian
# packages first (as root) or print the sudo line to do so.
BUILD ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
APP ?= functions-examples/hello
# Where `make up` serves: LISTEN (HOST:PORT), else 127.0.0.1:PORT, else
# tine up's own default (TINE_LISTEN, else 127.0.0.1:8080).
LISTEN ?= $(if $(PORT),127.0.0.1:$(PORT))

.PHONY: all deps build test test-asan fuzz up bench clean install deb
# make install: PREFIX (default /usr/local) and DESTDIR (a staging root).
PREFIX ?= /usr/local

all: build

deps:
	@scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j 2

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	$(MAKE) test BUILD=build-asan CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DTINE_SANITIZE=ON $(EXTRA_CMAKE_FLAGS)"

# Every libFuzzer driver of tests/fuzz for FUZZ_SECONDS (default 20) each.
fuzz:
	@scripts/deps.sh clang
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DTINE_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS)
	tests/fuzz/run.sh build-fuzz/bin

up: build
	$(BUILD)/bin/tine up $(if $(LISTEN),--listen $(LISTEN)) $(APP)

# tine beside nginx + Lua, workerd and a CGI baseline: prints a table and
# writes bench/results/latest.json (docs/benchmarks.md). BENCH_QUICK=1 for a
# short run.
bench: build
	bench/run

# Binaries, SDKs, schema, man pages, the systemd unit and /etc/tine/tined.conf
# (docs/install.md). The unit and the config go to /lib/systemd/system and
# /etc/tine whatever PREFIX is (under DESTDIR when given).
install: build
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# A Debian package of the tree (build-deb, installed under /usr):
# build-deb/tine_VERSION_ARCH.deb.
deb: deps
	cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr
	cmake --build build-deb -j $(JOBS)
	cd build-deb && cpack -G DEB

clean:
	rm -rf build build-asan build-fuzz build-deb
