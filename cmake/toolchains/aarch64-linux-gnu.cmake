# Cross-compiling for 64-bit ARM (Raspberry Pi 3/4/5 on a 64-bit OS, other Cortex-A boards) from a
# Debian x86-64 machine with Debian's multiarch :arm64 packages; tools/cross-test.sh installs them.
#   cmake -S . -B build-aarch64 --toolchain cmake/toolchains/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: the target's libraries and CMake package files live in /usr/lib/aarch64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
# NEON and FMA are part of AArch64; cortex-a72 schedules well for A53..A76 alike.
set(DNN_ARCH_FLAGS "-mcpu=cortex-a72" CACHE STRING "Target CPU flags (;-separated)")
# Test executables (and gtest's discovery at build time) run through user-mode qemu. No -L: the
# multiarch libc6:arm64 is where qemu finds the loader; mixing in the cross toolchain's copy makes
# the first pthread_create loop forever.
find_program(DNN_QEMU qemu-aarch64)
if(DNN_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${DNN_QEMU})
endif()
