#include "util/pypath.h"

#include <vector>

namespace strata::util {

std::string PyNormalizePath(std::string_view path) {
  std::string prefix;
  if (path.starts_with("//") && !path.starts_with("///")) {
    prefix = "//";
  } else if (path.starts_with("/")) {
    prefix = "/";
  }
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view part = path.substr(pos, next - pos);
    if (!part.empty() && part != ".") parts.push_back(part);
    pos = next + 1;
  }
  std::string out = prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out.empty() ? "." : out;
}

std::string PyPathSuffix(std::string_view path) {
  std::string normalized = PyNormalizePath(path);
  std::string_view name = normalized;
  if (size_t slash = name.rfind('/'); slash != std::string_view::npos) {
    name = name.substr(slash + 1);
  }
  size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return "";
  return std::string(name.substr(dot));
}

}  // namespace strata::util
