# CMake package configuration for quorumkit.
#
#   find_package(quorumkit CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE quorumkit::quorumkit)
#
# quorumkit::quorumkit is an imported target for libquorumkit (the shared
# library when there is one, else the static one) carrying the include
# directories of quorumkit.h and of the C++ wrapper quorumkit.hpp.
#
# This file works from two places:
#  - an install tree: <prefix>/lib/cmake/quorumkit/ next to <prefix>/lib and
#    <prefix>/include;
#  - the source tree: bindings/cmake/ of the repository, with the library
#    built by `cargo build --release` in target/release.
# The cache variables QUORUMKIT_LIBRARY_DIR and QUORUMKIT_INCLUDE_DIR take
# precedence over both.

if(TARGET quorumkit::quorumkit)
  set(quorumkit_FOUND TRUE)
  return()
endif()

get_filename_component(_qk_here "${CMAKE_CURRENT_LIST_DIR}" REALPATH)
if(_qk_here MATCHES "/bindings/cmake$")
  # The source tree.
  get_filename_component(_qk_root "${_qk_here}/../.." ABSOLUTE)
  set(_qk_include_hints "${_qk_root}/include" "${_qk_root}/bindings/cpp")
  set(_qk_lib_hints "${_qk_root}/target/release")
elseif(EXISTS "${CMAKE_CURRENT_LIST_DIR}/quorumkitPaths.cmake")
  # Installed by `make install`, which records its LIBDIR and INCLUDEDIR.
  include("${CMAKE_CURRENT_LIST_DIR}/quorumkitPaths.cmake")
else()
  # An install tree: <prefix>/lib*/cmake/quorumkit.
  get_filename_component(_qk_root "${_qk_here}/../../.." ABSOLUTE)
  get_filename_component(_qk_libdir "${_qk_here}/../.." ABSOLUTE)
  set(_qk_include_hints "${_qk_root}/include")
  set(_qk_lib_hints "${_qk_libdir}")
endif()

set(QUORUMKIT_LIBRARY_DIR "" CACHE PATH "Directory holding libquorumkit (optional)")

find_path(QUORUMKIT_INCLUDE_DIR quorumkit.h HINTS ${_qk_include_hints} NO_DEFAULT_PATH)
find_path(QUORUMKIT_CXX_INCLUDE_DIR quorumkit.hpp
  HINTS "${QUORUMKIT_INCLUDE_DIR}" ${_qk_include_hints} NO_DEFAULT_PATH)
find_library(QUORUMKIT_LIBRARY NAMES quorumkit
  HINTS ${QUORUMKIT_LIBRARY_DIR} ${_qk_lib_hints} NO_DEFAULT_PATH)
mark_as_advanced(QUORUMKIT_INCLUDE_DIR QUORUMKIT_CXX_INCLUDE_DIR QUORUMKIT_LIBRARY)

if(NOT QUORUMKIT_LIBRARY OR NOT QUORUMKIT_INCLUDE_DIR)
  set(quorumkit_FOUND FALSE)
  set(quorumkit_NOT_FOUND_MESSAGE
    "libquorumkit or quorumkit.h not found near ${_qk_here}: build the library "
    "(cargo build --release) or set QUORUMKIT_LIBRARY_DIR and QUORUMKIT_INCLUDE_DIR.")
  unset(_qk_here)
  unset(_qk_root)
  unset(_qk_libdir)
  unset(_qk_include_hints)
  unset(_qk_lib_hints)
  return()
endif()

set(_qk_includes "${QUORUMKIT_INCLUDE_DIR}")
if(QUORUMKIT_CXX_INCLUDE_DIR AND NOT QUORUMKIT_CXX_INCLUDE_DIR STREQUAL QUORUMKIT_INCLUDE_DIR)
  list(APPEND _qk_includes "${QUORUMKIT_CXX_INCLUDE_DIR}")
endif()

if(QUORUMKIT_LIBRARY MATCHES "\\.a$")
  add_library(quorumkit::quorumkit STATIC IMPORTED)
  find_package(Threads REQUIRED)
  set_target_properties(quorumkit::quorumkit PROPERTIES
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m")
else()
  add_library(quorumkit::quorumkit SHARED IMPORTED)
  if(QUORUMKIT_LIBRARY MATCHES "\\.so$")
    # The SONAME follows the ABI version the header declares.
    file(STRINGS "${QUORUMKIT_INCLUDE_DIR}/quorumkit.h" _qk_abi REGEX "^#define QK_ABI_VERSION ")
    string(REGEX REPLACE "^#define QK_ABI_VERSION ([0-9]+).*$" "\\1" _qk_abi "${_qk_abi}")
    set_target_properties(quorumkit::quorumkit PROPERTIES IMPORTED_SONAME "libquorumkit.so.${_qk_abi}")
    unset(_qk_abi)
  endif()
endif()
set_target_properties(quorumkit::quorumkit PROPERTIES
  IMPORTED_LOCATION "${QUORUMKIT_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${_qk_includes}")

set(quorumkit_FOUND TRUE)
unset(_qk_includes)
unset(_qk_here)
unset(_qk_root)
unset(_qk_libdir)
unset(_qk_include_hints)
unset(_qk_lib_hints)
