// Uploading the local paths of a runtime env: every local working_dir or
// py_modules path is packaged, stored in a package store, and replaced by
// its gcs:// URI, so that what reaches a node agent names only URIs.
//
//   local directory (working_dir)  → gcs://_strata_pkg_<hex>.zip (contents at the root)
//   local directory (py_modules)   → gcs://_strata_pkg_<hex>.zip (the directory as top folder)
//   local .zip/.tar.gz/... archive → gcs://_strata_pkg_<sha256 of the file>.<ext>, stored as is
//   local .whl (py_modules)        → gcs://<wheel file name>, stored as is
//
// Uploads are content-addressed per file (blob_store.h): only files the
// sink lacks are sent. `on_progress`, when set, is called after every file
// sent or skipped with the running totals.
//
// Thread-safety: free functions; the store is safe for concurrent use.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "model/runtime_env.h"
#include "packaging/package.h"
#include "packaging/package_sink.h"
#include "util/result.h"

namespace strata::packaging {

struct UploadStats {
  std::size_t packages = 0;
  std::size_t files_sent = 0;
  std::size_t files_skipped = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_skipped = 0;
};

using UploadProgress = std::function<void(const UploadStats&)>;

// Packages one local path and stores it; returns its URI.
util::Result<std::string> UploadLocalPath(const std::filesystem::path& path, TopLevel top_level,
                                          const PackageOptions& options, PackageSink& sink,
                                          UploadStats* stats = nullptr,
                                          const UploadProgress& on_progress = {});

// Replaces every local path of `env` (working_dir, py_modules) by the URI of
// its uploaded package. `excludes` of the env apply to directories.
util::Status UploadLocalPaths(model::RuntimeEnv& env, PackageSink& sink,
                              UploadStats* stats = nullptr, const UploadProgress& on_progress = {});

}  // namespace strata::packaging
