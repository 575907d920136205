#include "packaging/upload.h"

#include <set>
#include <vector>

#include "model/uri.h"
#include "util/log.h"

namespace strata::packaging {
namespace {

namespace fs = std::filesystem;
using util::Json;

// The archive kinds a runtime env may name (wheels are handled apart).
std::string ArchiveExtension(const std::string& name) {
  for (std::string_view ext : model::kRemoteArchiveExtensions) {
    if (ext != ".whl" && name.ends_with(ext)) return std::string(ext);
  }
  return "";
}

// Counts one file sent or skipped and reports progress.
struct Tally {
  UploadStats* stats;  // never null
  const UploadProgress& on_progress;
  void File(bool sent, std::uint64_t bytes) {
    if (sent) {
      ++stats->files_sent;
      stats->bytes_sent += bytes;
    } else {
      ++stats->files_skipped;
      stats->bytes_skipped += bytes;
    }
    if (on_progress) on_progress(*stats);
  }
};

std::uint64_t FileSize(const fs::path& file) {
  std::error_code ec;
  std::uint64_t size = fs::file_size(file, ec);
  return ec ? 0 : size;
}

util::Result<std::string> StoreFileAs(const fs::path& file, const std::string& name,
                                      PackageSink& sink, Tally& tally) {
  auto exists = sink.HasPackage(name);
  if (!exists) return std::move(exists).error();
  if (!*exists) {
    if (auto ok = sink.PutPackageArchive(name, file); !ok) return std::move(ok).error();
  }
  tally.File(!*exists, FileSize(file));
  ++tally.stats->packages;
  return "gcs://" + name;
}

}  // namespace

util::Result<std::string> UploadLocalPath(const fs::path& path, TopLevel top_level,
                                          const PackageOptions& options, PackageSink& sink,
                                          UploadStats* stats, const UploadProgress& on_progress) {
  // Progress reports running totals even when the caller keeps no stats.
  UploadStats local_stats;
  if (stats == nullptr) stats = &local_stats;
  Tally tally{stats, on_progress};
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    std::string name = path.filename().string();
    if (top_level == TopLevel::kDirectoryName && name.ends_with(".whl")) {
      return StoreFileAs(path, name, sink, tally);
    }
    std::string ext = ArchiveExtension(name);
    if (ext.empty()) {
      return util::ValueError("directory " + path.string() +
                              " must be an existing directory or an archive (.zip, .tar.gz, "
                              ".tgz, .tar.xz)" +
                              (top_level == TopLevel::kDirectoryName ? " or a .whl file" : ""));
    }
    auto digest = Sha256File(path);
    if (!digest) return std::move(digest).error();
    return StoreFileAs(path, std::string(kPackagePrefix) + digest->substr(0, 32) + ext, sink,
                       tally);
  }
  if (!fs::is_directory(path, ec)) {
    return util::ValueError("directory " + path.string() + " must be an existing directory");
  }
  PackageOptions package_options = options;
  package_options.top_level = top_level;
  auto package = PrepareLocalPackage(path, package_options);
  if (!package) return std::move(package).error();
  for (const std::string& warning : package->warnings) util::LogWarning(warning);
  auto missing = sink.MissingBlobs(package->manifest);
  if (!missing) return std::move(missing).error();
  std::set<std::string> wanted(missing->begin(), missing->end());
  // Manifest files and walked files are in the same (path) order; send each
  // missing blob once, from the first file that has it.
  std::vector<const PackageEntry*> files;
  for (const PackageEntry& entry : package->entries) {
    if (entry.type == EntryType::kFile) files.push_back(&entry);
  }
  std::size_t index = 0;
  for (const ManifestEntry& e : package->manifest.entries()) {
    if (e.type != EntryType::kFile) continue;
    const PackageEntry& source = *files[index++];
    bool send = wanted.erase(e.sha256) == 1;
    if (send) {
      if (auto ok = sink.PutBlobFromFile(e.sha256, source.source); !ok)
        return std::move(ok).error();
    }
    tally.File(send, e.size);
  }
  auto uri = sink.CommitPackage(package->manifest);
  if (!uri) return std::move(uri).error();
  ++stats->packages;
  return uri;
}

util::Status UploadLocalPaths(model::RuntimeEnv& env, PackageSink& sink, UploadStats* stats,
                              const UploadProgress& on_progress) {
  // One set of totals across all packages, so progress never goes backwards.
  UploadStats local_stats;
  if (stats == nullptr) stats = &local_stats;
  PackageOptions options;
  auto max_bytes = MaxPackageBytesFromEnvironment();
  if (!max_bytes) return std::move(max_bytes).error();
  options.max_bytes = *max_bytes;
  for (const Json& pattern : env.Get("excludes", Json::array())) {
    if (pattern.is_string()) options.excludes.push_back(pattern.get<std::string>());
  }
  Json updates = Json::object();
  std::string working_dir = env.WorkingDir();
  if (!working_dir.empty() && model::IsPath(working_dir)) {
    auto uri =
        UploadLocalPath(working_dir, TopLevel::kContentsAtRoot, options, sink, stats, on_progress);
    if (!uri) return std::move(uri).error();
    updates["working_dir"] = *uri;
  }
  if (env.Contains("py_modules")) {
    Json modules = Json::array();
    for (const std::string& module : env.PyModules()) {
      if (!model::IsPath(module)) {
        modules.push_back(module);
        continue;
      }
      auto uri =
          UploadLocalPath(module, TopLevel::kDirectoryName, options, sink, stats, on_progress);
      if (!uri) return std::move(uri).error();
      modules.push_back(*uri);
    }
    updates["py_modules"] = std::move(modules);
  }
  // Only once everything is stored, so a failed upload leaves `env` as it was.
  env.Update(updates);
  return {};
}

}  // namespace strata::packaging
