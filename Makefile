# Thin wrapper over dev.sh (which installs Debian packages, configures CMake presets and runs ctest).
.PHONY: deps build test run fuzz clean
deps: ; ./dev.sh deps
build: ; ./dev.sh build release
test: ; ./dev.sh test
run: ; ./dev.sh run $(ARGS)
fuzz: ; ./dev.sh fuzz $(SECONDS)
clean: ; rm -rf build
