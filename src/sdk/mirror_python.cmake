# Mirrors the Python SDK into the build tree, run by the strata_python target
# (CMakeLists.txt) on every build:
#
#   ${DST}/strata/**/*.py  symlinks to ${SRC}/strata/**/*.py (edits show up
#                          without rebuilding; links to deleted files go away)
#   ${DST}/cloudpickle     symlink to ${CLOUDPICKLE_DIR}, when set
#
# so that PYTHONPATH=${DST} imports strata (with _native, which the
# strata_native target writes next to the links) and cloudpickle.
#
# Usage: cmake -DSRC=<repo>/python -DDST=<build>/python [-DCLOUDPICKLE_DIR=<dir>] -P mirror_python.cmake
cmake_minimum_required(VERSION 3.25)

file(GLOB_RECURSE sources RELATIVE ${SRC} ${SRC}/strata/*.py)
foreach(relative IN LISTS sources)
  set(link ${DST}/${relative})
  get_filename_component(parent ${link} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  if(IS_SYMLINK ${link})
    file(READ_SYMLINK ${link} target)
    if(target STREQUAL ${SRC}/${relative})
      continue()
    endif()
  endif()
  file(REMOVE ${link})
  file(CREATE_LINK ${SRC}/${relative} ${link} SYMBOLIC)
endforeach()

# Links whose source file was deleted or renamed.
file(GLOB_RECURSE links LIST_DIRECTORIES false ${DST}/strata/*.py)
foreach(link IN LISTS links)
  if(IS_SYMLINK ${link} AND NOT EXISTS ${link})
    file(REMOVE ${link})
  endif()
endforeach()

if(CLOUDPICKLE_DIR)
  set(link ${DST}/cloudpickle)
  if(IS_SYMLINK ${link})
    file(READ_SYMLINK ${link} target)
  else()
    set(target "")
  endif()
  if(NOT target STREQUAL CLOUDPICKLE_DIR)
    file(REMOVE ${link})
    file(CREATE_LINK ${CLOUDPICKLE_DIR} ${link} SYMBOLIC)
  endif()
endif()
