#include "util/file_tail.h"

#include <algorithm>
#include <fstream>
#include <iterator>

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

std::string FileChunk(const std::filesystem::path& file, std::uint64_t offset, std::size_t limit) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  std::string data(limit, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
  return data;
}

std::string FileText(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace strata::util
