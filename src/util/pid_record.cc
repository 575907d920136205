#include "util/pid_record.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <string>

namespace strata::util {

namespace fs = std::filesystem;

Status WritePidRecord(const fs::path& file, Json record) {
  record["pid"] = static_cast<long>(::getpid());
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  fs::path temp = file.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << DumpsSorted(record);
    if (!out.flush()) return IOError("cannot write " + temp.string());
  }
  fs::rename(temp, file, ec);
  if (ec) {
    fs::remove(temp, ec);
    return IOError("cannot write " + file.string() + ": " + ec.message());
  }
  return {};
}

std::optional<Json> ReadLivePidRecord(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  auto json = ParseJson(std::string(std::istreambuf_iterator<char>(in), {}));
  if (!json || !json->is_object() || !(*json)["pid"].is_number_integer()) return std::nullopt;
  long pid = (*json)["pid"].get<long>();
  // EPERM means the process exists but belongs to someone else: still alive.
  if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM)) return std::nullopt;
  return *json;
}

}  // namespace strata::util
