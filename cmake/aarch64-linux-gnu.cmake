# CMake toolchain file: cross-compile yoloc for 64-bit ARM Linux (Jetson's CPU) with
# Debian's cross compiler (g++-aarch64-linux-gnu) and Debian multiarch libraries
# (libjpeg62-turbo-dev:arm64, libpng-dev:arm64, libgtest-dev:arm64 in /usr/lib/aarch64-linux-gnu).
# Tests run under qemu-user (qemu-user-static): ctest and gtest_discover_tests start every
# test binary through CMAKE_CROSSCOMPILING_EMULATOR. Used by scripts/cross-aarch64.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Multiarch: libraries live in /usr/lib/aarch64-linux-gnu, headers in /usr/include (shared with
# the host) and /usr/include/aarch64-linux-gnu; the cross toolchain's own files are in
# /usr/aarch64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)

# Programs (the build's tools) come from the host; libraries only from the target's paths
# (with CMAKE_LIBRARY_ARCHITECTURE set, <root>/usr/lib/aarch64-linux-gnu is searched and
# the host's /usr/lib/x86_64-linux-gnu is not); headers and CMake package files
# (architecture-independent ones such as nlohmann_json's in /usr/share/cmake) from both.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# Run target binaries (tests, gtest discovery) under qemu-user. The dynamic loader and libc
# must come from ONE glibc build: Debian has two arm64 copies, the cross toolchain's
# (/usr/aarch64-linux-gnu/lib, libc6-arm64-cross) and the multiarch one (libc6:arm64, pulled in
# by libjpeg62-turbo-dev:arm64 etc.), of different package revisions. With
# `-L /usr/aarch64-linux-gnu` qemu loads the cross ld.so, which then finds the multiarch
# libc.so.6 through /etc/ld.so.cache: that pair hangs in the first pthread_create (seen here:
# 2.36-8cross1 ld.so + 2.36-9+deb12u14 libc). So when the multiarch loader is installed, run
# against the multiarch libraries alone (libstdc++6:arm64 needed), as on a real arm64 Debian.
find_program(YOLOC_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(YOLOC_QEMU_AARCH64)
  if(EXISTS /lib/ld-linux-aarch64.so.1)
    if(NOT EXISTS /usr/lib/aarch64-linux-gnu/libstdc++.so.6)
      message(WARNING "multiarch libc6:arm64 without libstdc++6:arm64: tests cannot run (apt-get install libstdc++6:arm64)")
    endif()
    set(CMAKE_CROSSCOMPILING_EMULATOR ${YOLOC_QEMU_AARCH64})
  else()
    set(CMAKE_CROSSCOMPILING_EMULATOR ${YOLOC_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
  endif()
endif()
