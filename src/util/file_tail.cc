#include "util/file_tail.h"

#include <algorithm>
#include <fstream>

namespace strata::util {

std::string FileTail(const std::filesystem::path& file, std::size_t count) {
  constexpr std::streamoff kWindow = 64 * 1024;
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  if (!in) return "";
  std::streamoff size = in.tellg();
  std::streamoff start = std::max<std::streamoff>(0, size - kWindow);
  in.seekg(start);
  std::string text(static_cast<std::size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (count == 0) return "";
  std::size_t begin = text.size();
  std::size_t lines = 0;
  while (begin > 0) {
    std::size_t nl = text.rfind('\n', begin - 1);
    if (nl == std::string::npos) {
      begin = 0;
    } else if (++lines == count) {
      begin = nl + 1;
    } else {
      begin = nl;
      continue;
    }
    break;
  }
  return text.substr(begin);
}

}  // namespace strata::util
