// Python pathlib semantics that user-visible behaviour depends on: Ray prints
// paths as str(pathlib.Path(x)) in its messages and picks file kinds by
// Path.suffix, so Strata reproduces both to keep messages identical.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace strata::util {

// str(pathlib.PurePosixPath(path)): repeated slashes collapsed (a leading "//"
// is kept), "." components and trailing slashes dropped, "" becomes ".".
std::string PyNormalizePath(std::string_view path);

// PurePosixPath(path).suffix: the last ".ext" of the final component, "" for
// names that start with their only dot (".bashrc") or end with a dot.
std::string PyPathSuffix(std::string_view path);

// PurePosixPath(path).is_absolute().
inline bool PyPathIsAbsolute(std::string_view path) {
  return !path.empty() && path[0] == '/';
}

}  // namespace strata::util
