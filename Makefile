# Thin wrapper over CMake + Ninja. `make` builds build/storefs.
#   make            build (installs missing Debian packages first)
#   make demo       import a sample tree into the default store, mount, list
#   make check      build and run every test (the CI command)
#   make bench      benchmarks (bench/run --quick)
#   make format     clang-format the tree (make check checks it: scripts/check-format)
#   make lint       clang-tidy with the curated checks of .clang-tidy
#   make install    PREFIX=/usr/local (and DESTDIR): storefs, man pages,
#                   bash completion, systemd units (scripts/install)
BUILD ?= build
PREFIX ?= /usr/local

all: deps
	@test -f $(BUILD)/build.ninja || cmake -S . -B $(BUILD) -G Ninja
	cmake --build $(BUILD)

deps:
	@scripts/install-deps

demo: all
	scripts/demo

check: all
	tests/run

bench: all
	bench/run --quick

install: all
	DESTDIR="$(DESTDIR)" scripts/install "$(PREFIX)"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# The product code (layers and CLI), as compiled in $(BUILD).
lint: all
	git ls-files 'common/*.c' 'castore/*.c' 'store/*.c' 'fs/*.c' 'fs/*/*.c' 'backends/*.c' \
		'backends/*/*.c' 'cli/*.c' 'serve/*.c' | \
		xargs -P "$$(nproc)" -n 8 clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf build build-asan build-clang build-tsan build-fuzz

.PHONY: all deps demo check bench install format lint clean
