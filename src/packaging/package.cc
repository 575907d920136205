#include "packaging/package.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <span>
#include <string_view>

#include "packaging/archive.h"
#include "packaging/sha256_batch.h"
#include "util/digest.h"
#include "util/log.h"

namespace strata::packaging {
namespace {

constexpr size_t kLargestShown = 5;

std::string ListLargest(std::vector<std::pair<std::string, std::uint64_t>> sizes) {
  std::sort(sizes.begin(), sizes.end(), [](const auto& a, const auto& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  });
  std::string out;
  for (size_t i = 0; i < sizes.size() && i < kLargestShown; ++i) {
    out += (i == 0 ? " " : ", ") + sizes[i].first + " (" + MibString(sizes[i].second) + ")";
  }
  return out;
}

}  // namespace

std::string MibString(std::uint64_t bytes) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.2fMiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buffer;
}

util::Result<std::uint64_t> MaxPackageBytesFromEnvironment() {
  const char* value = std::getenv("STRATA_MAX_PACKAGE_SIZE");
  if (value == nullptr || *value == '\0') return kDefaultMaxPackageBytes;
  std::string_view text(value);
  std::uint64_t bytes = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), bytes);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return util::ValueError("STRATA_MAX_PACKAGE_SIZE must be a number of bytes, got '" +
                            std::string(text) + "'");
  }
  return bytes;
}

util::Status CheckPackageSize(const std::vector<PackageEntry>& entries, std::uint64_t max_bytes) {
  std::uint64_t total = 0;
  for (const PackageEntry& e : entries) total += e.size;
  if (total <= max_bytes) return {};
  std::vector<std::pair<std::string, std::uint64_t>> files;
  std::map<std::string, std::uint64_t> dirs;
  for (const PackageEntry& e : entries) {
    if (e.type != EntryType::kFile) continue;
    files.emplace_back(e.path, e.size);
    for (size_t slash = e.path.find('/'); slash != std::string::npos;
         slash = e.path.find('/', slash + 1)) {
      dirs[e.path.substr(0, slash + 1)] += e.size;
    }
  }
  std::string message = "Package size (" + MibString(total) + ") exceeds the maximum size of " +
                        MibString(max_bytes) + ". Largest files:" + ListLargest(files);
  if (!dirs.empty()) {
    message += "; largest directories:" + ListLargest({dirs.begin(), dirs.end()});
  }
  message +=
      ". You can exclude large files using the 'excludes' option to the runtime_env, raise "
      "STRATA_MAX_PACKAGE_SIZE (bytes), or provide a remote URI of an archive (s3://, gs://, "
      "https://).";
  return util::ValueError(message);
}

namespace {

// The package minus its manifest: walked, size-checked, warnings collected.
util::Result<LocalPackage> WalkLocalPackage(const std::filesystem::path& dir,
                                            const PackageOptions& options) {
  LocalPackage package;
  package.root = dir;
  auto entries = WalkPackageTree(dir, options.excludes, options.walk);
  if (!entries) return std::move(entries).error();
  package.entries = std::move(entries).value();
  if (auto ok = CheckPackageSize(package.entries, options.max_bytes); !ok) {
    return std::move(ok).error();
  }
  for (const PackageEntry& e : package.entries) {
    if (e.type == EntryType::kFile && e.size >= kLargeFileWarningBytes) {
      package.warnings.push_back("File " + e.path + " is very large (" + MibString(e.size) +
                                 "). Consider adding this file to the 'excludes' list to skip "
                                 "uploading it: `runtime_env={'excludes': ['" +
                                 e.path + "']}`");
    }
  }
  if (options.top_level == TopLevel::kDirectoryName) {
    package.top_level_dir = std::filesystem::weakly_canonical(dir).filename().string();
  }
  return package;
}

ZipOptions ArchiveOptions(const LocalPackage& package) {
  ZipOptions options;
  options.top_level_dir = package.top_level_dir;
  return options;
}

}  // namespace

util::Result<LocalPackage> PrepareLocalPackage(const std::filesystem::path& dir,
                                               const PackageOptions& options) {
  auto package = WalkLocalPackage(dir, options);
  if (!package) return package;
  auto manifest = BuildManifest(package->entries, package->top_level_dir);
  if (!manifest) return std::move(manifest).error();
  package->manifest = std::move(manifest).value();
  return package;
}

util::Status WritePackageArchive(const LocalPackage& package, const std::filesystem::path& out) {
  return WriteZip(package.entries, out, ArchiveOptions(package));
}

namespace {

// The SHA-256 of each file, from the bytes WriteZip reads to archive it.
class ContentHasher final : public ContentObserver {
 public:
  explicit ContentHasher(std::size_t entries) : streams_(entries), sha256_(entries) {}

  void Files(std::span<const File> files) override {
    std::vector<std::string_view> contents;
    contents.reserve(files.size());
    for (const File& file : files) contents.push_back(file.content);
    std::vector<Sha256Digest> digests(files.size());
    Sha256Batch(contents, digests);
    for (std::size_t i = 0; i < files.size(); ++i) {
      sha256_[files[i].index] = util::ToHex(digests[i].data(), digests[i].size());
    }
  }
  void Update(std::size_t index, std::string_view block) override { Stream(index).Update(block); }
  void Finish(std::size_t index) override {
    sha256_[index] = Stream(index).HexDigest();
    streams_[index].reset();
  }
  std::vector<std::string> TakeDigests() { return std::move(sha256_); }

 private:
  Sha256Stream& Stream(std::size_t index) {
    if (!streams_[index]) streams_[index].emplace();
    return *streams_[index];
  }

  // One slot per entry: entries in progress on different threads never share one.
  std::vector<std::optional<Sha256Stream>> streams_;
  std::vector<std::string> sha256_;
};

}  // namespace

util::Result<LocalPackage> CreatePackageArchive(const std::filesystem::path& dir,
                                                const PackageOptions& options,
                                                const std::filesystem::path& out) {
  auto package = WalkLocalPackage(dir, options);
  if (!package) return package;
  // One read of each file feeds the archive and the manifest.
  ContentHasher hasher(package->entries.size());
  ZipOptions zip = ArchiveOptions(*package);
  zip.observer = &hasher;
  if (auto written = WriteZip(package->entries, out, zip); !written) {
    return std::move(written).error();
  }
  auto manifest =
      ManifestFromDigests(package->entries, package->top_level_dir, hasher.TakeDigests());
  if (!manifest) {
    std::error_code ec;
    std::filesystem::remove(out, ec);
    return std::move(manifest).error();
  }
  package->manifest = std::move(manifest).value();
  return package;
}

}  // namespace strata::packaging
