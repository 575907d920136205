// PackageEntry: one file or directory of a package, as found by the tree walk
// and consumed by the manifest, the archive writer and the upload logic.
//
// Thread-safety: a plain value type.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace strata::packaging {

enum class EntryType { kFile, kDirectory };

struct PackageEntry {
  // Relative POSIX path inside the package: no leading "./" or "/", no
  // trailing "/", components separated by "/".
  std::string path;
  EntryType type = EntryType::kFile;
  // Where a file's bytes are read from (symbolic links already resolved).
  // Empty for directories.
  std::filesystem::path source;
  std::uint64_t size = 0;
  bool executable = false;
  // CRC-32 of a file's bytes when already known (BuildManifest computes it in
  // the same pass as the SHA-256), so the archive writer need not recompute it.
  std::optional<std::uint32_t> crc32;
};

}  // namespace strata::packaging
