// Local packages: turning a working_dir or py_modules directory into the
// entries, manifest and archive that identify and carry it.
//
//   PrepareLocalPackage(dir)  walk (ignore rules) → size check → manifest
//   WritePackageArchive(pkg)  the deterministic zip for that manifest
//
// The size limit (STRATA_MAX_PACKAGE_SIZE bytes, default 100 MiB) is checked
// on the walked files before anything is hashed or uploaded; the error names
// the largest files and directories. Files of 10 MiB and more come back as
// warnings for the caller to show.
//
// Thread-safety: free functions, reentrant.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "packaging/entry.h"
#include "packaging/manifest.h"
#include "packaging/tree_walk.h"
#include "util/result.h"

namespace strata::packaging {

inline constexpr std::uint64_t kDefaultMaxPackageBytes = 100ull * 1024 * 1024;
inline constexpr std::uint64_t kLargeFileWarningBytes = 10ull * 1024 * 1024;

// Whether the directory itself becomes the archive's top-level folder
// (py_modules) or its contents sit at the root (working_dir).
enum class TopLevel { kContentsAtRoot, kDirectoryName };

struct PackageOptions {
  std::vector<std::string> excludes;
  WalkOptions walk = WalkOptionsFromEnvironment();
  std::uint64_t max_bytes = kDefaultMaxPackageBytes;
  TopLevel top_level = TopLevel::kContentsAtRoot;
};

// max_bytes from STRATA_MAX_PACKAGE_SIZE, or the default; a malformed value
// is a ValueError naming the variable.
util::Result<std::uint64_t> MaxPackageBytesFromEnvironment();

struct LocalPackage {
  std::filesystem::path root;
  std::string top_level_dir;  // "" unless TopLevel::kDirectoryName
  std::vector<PackageEntry> entries;
  Manifest manifest;
  std::vector<std::string> warnings;  // one per file of 10 MiB or more
};

// ValueError "Package size (X MiB) exceeds the maximum size of Y MiB. ..."
// listing the largest files and directories when the files add up to more
// than max_bytes.
util::Status CheckPackageSize(const std::vector<PackageEntry>& entries, std::uint64_t max_bytes);

util::Result<LocalPackage> PrepareLocalPackage(const std::filesystem::path& dir,
                                               const PackageOptions& options);

util::Status WritePackageArchive(const LocalPackage& package, const std::filesystem::path& out);

// PrepareLocalPackage + WritePackageArchive in one read of each file: the
// archive writer's threads hash what they archive. On failure `out` is left
// as it was, except that it is removed if the manifest cannot be built.
util::Result<LocalPackage> CreatePackageArchive(const std::filesystem::path& dir,
                                                const PackageOptions& options,
                                                const std::filesystem::path& out);

// "12.34MiB", as Ray prints sizes.
std::string MibString(std::uint64_t bytes);

}  // namespace strata::packaging
