# Version check for find_package(quorumkit <version>). Before 1.0 a minor
# release may break the ABI, so 0.x.y satisfies requests for 0.x.z (z <= y)
# only; from 1.0 on, any request with the same major version and a version
# not above this one. tests/c_version.rs keeps PACKAGE_VERSION equal to
# Cargo.toml's version.
set(PACKAGE_VERSION "0.1.0")

if(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  string(REPLACE "." ";" _qk_parts "${PACKAGE_VERSION}")
  list(GET _qk_parts 0 _qk_major)
  list(GET _qk_parts 1 _qk_minor)
  if(NOT PACKAGE_FIND_VERSION_MAJOR EQUAL _qk_major)
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  elseif(_qk_major EQUAL 0 AND NOT PACKAGE_FIND_VERSION_MINOR EQUAL _qk_minor)
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  else()
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
  unset(_qk_parts)
  unset(_qk_major)
  unset(_qk_minor)
endif()

if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_EXACT TRUE)
endif()
