# Thin wrapper over CMake + Ninja. `make` builds build/storefs.
#   make            build (installs missing Debian packages first)
#   make demo       import a sample tree into the default store, mount, list
#   make check      build and run every test (the CI command)
#   make bench      benchmarks (bench/run --quick)
#   make format     clang-format the tree
BUILD ?= build

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

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-clang build-tsan build-fuzz

.PHONY: all deps demo check bench format clean
