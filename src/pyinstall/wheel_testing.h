// Test-only: building wheels on disk for the wheel cache and install tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "packaging/archive.h"
#include "pyinstall/wheel_install.h"
#include "util/digest.h"
#include "util/temp_dir_testing.h"

namespace strata::pyinstall::testing {

struct WheelSpec {
  std::string filename = "demo-1.0-py3-none-any.whl";
  std::string dist_info = "demo-1.0.dist-info";
  std::string wheel_metadata =
      "Wheel-Version: 1.0\nGenerator: strata-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
  std::map<std::string, std::string> files;  // path -> content, besides WHEEL and RECORD
  std::set<std::string> executable;
  bool write_record = true;
};

// Writes the wheel into `dir` (a RECORD with every file's hash and size, and
// RECORD's own row empty, as wheel builders do) and returns its path.
inline std::filesystem::path MakeWheel(const std::filesystem::path& dir, const WheelSpec& spec) {
  std::map<std::string, std::string> files = spec.files;
  files[spec.dist_info + "/WHEEL"] = spec.wheel_metadata;
  if (spec.write_record) {
    std::string record;
    for (const auto& [path, content] : files) {
      record += FormatRecordRow({path, RecordHash(content), std::to_string(content.size())});
    }
    record += FormatRecordRow({spec.dist_info + "/RECORD", "", ""});
    files[spec.dist_info + "/RECORD"] = record;
  }
  const std::filesystem::path staging = dir / (spec.filename + ".staging");
  std::vector<packaging::PackageEntry> entries;
  for (const auto& [path, content] : files) {
    const bool exec = spec.executable.count(path) > 0;
    util::testing::WriteFile(staging / path, content, exec ? 0755 : 0644);
    packaging::PackageEntry entry;
    entry.path = path;
    entry.source = staging / path;
    entry.size = content.size();
    entry.executable = exec;
    entries.push_back(entry);
  }
  const std::filesystem::path out = dir / spec.filename;
  packaging::ZipOptions options;
  options.method = packaging::ZipMethod::kDeflate;
  if (!packaging::WriteZip(entries, out, options)) std::abort();
  std::filesystem::remove_all(staging);
  return out;
}

inline std::string FileSha256(const std::filesystem::path& path) {
  return util::Sha256Hex(util::testing::ReadFile(path));
}

}  // namespace strata::pyinstall::testing
