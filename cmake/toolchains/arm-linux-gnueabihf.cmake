# Cross-compiling for 32-bit ARM with hardware float (Raspberry Pi OS 32-bit, ARMv7 + NEON/VFPv4:
# Pi 2 and later) from a Debian x86-64 machine with Debian's multiarch :armhf packages;
# tools/cross-test.sh installs them.
#   cmake -S . -B build-armhf --toolchain cmake/toolchains/arm-linux-gnueabihf.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig")
# NEON with VFPv4 gives fused multiply-add (vfma); the hard-float ABI is Debian armhf's.
set(DNN_ARCH_FLAGS "-march=armv7-a;-mfpu=neon-vfpv4;-mfloat-abi=hard" CACHE STRING "Target CPU flags (;-separated)")
find_program(DNN_QEMU qemu-arm)
if(DNN_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${DNN_QEMU})
endif()
