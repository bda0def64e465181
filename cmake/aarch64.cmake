# aarch64.cmake — cross-compiling for 64-bit ARM (Debian: apt-get install gcc-aarch64-linux-gnu).
#   cmake -S . -B build/aarch64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64.cmake
# The full project also needs the aarch64 builds of its pkg-config dependencies in a sysroot
# (set CMAKE_SYSROOT / PKG_CONFIG_LIBDIR); tests/integ/kern_neon.sh cross-builds just the kernels
# and their reference and runs the NEON-vs-reference check under qemu-aarch64(-static).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
find_program(CG_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(CG_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${CG_QEMU_AARCH64})
endif()
