#include "packaging/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "packaging/archive.h"

namespace strata::packaging {
namespace {

namespace fs = std::filesystem;

bool IsValidDigest(std::string_view sha) {
  return sha.size() == 64 && std::all_of(sha.begin(), sha.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Package names are single path components: no traversal through them.
bool IsValidPackageName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

util::Status Publish(const fs::path& temp, const fs::path& final_path) {
  std::error_code ec;
  fs::rename(temp, final_path, ec);
  if (ec) {
    fs::remove(temp, ec);
    return util::IOError("cannot publish " + final_path.string() + ": " + ec.message());
  }
  return {};
}

}  // namespace

util::Result<BlobStore> BlobStore::Open(const fs::path& root) {
  std::error_code ec;
  for (const char* sub : {"blobs", "manifests", "packages", "tmp"}) {
    fs::create_directories(root / sub, ec);
    if (ec) return util::IOError("cannot create " + (root / sub).string() + ": " + ec.message());
  }
  // Leftovers of writes interrupted by a crash; files younger than a minute
  // may belong to a live writer in another process.
  auto now = fs::file_time_type::clock::now();
  for (const auto& entry : fs::directory_iterator(root / "tmp", ec)) {
    auto written = entry.last_write_time(ec);
    if (!ec && now - written > std::chrono::minutes(1)) fs::remove_all(entry.path(), ec);
  }
  return BlobStore(root);
}

fs::path BlobStore::BlobPath(std::string_view sha256) const {
  return root_ / "blobs" / std::string(sha256.substr(0, 2)) / std::string(sha256);
}

util::Result<fs::path> BlobStore::NewTempPath() const {
  std::string pattern = (root_ / "tmp" / "w-XXXXXX").string();
  int fd = ::mkstemp(pattern.data());
  if (fd < 0)
    return util::IOError("cannot create a file in " + (root_ / "tmp").string() + ": " +
                         std::strerror(errno));
  ::close(fd);
  return fs::path(pattern);
}

bool BlobStore::HasBlob(std::string_view sha256) const {
  std::error_code ec;
  return IsValidDigest(sha256) && fs::exists(BlobPath(sha256), ec);
}

std::vector<std::string> BlobStore::MissingBlobs(const Manifest& manifest) const {
  std::vector<std::string> missing;
  std::set<std::string_view> seen;
  auto now = fs::file_time_type::clock::now();
  for (const ManifestEntry& e : manifest.entries()) {
    if (e.type != EntryType::kFile || !seen.insert(e.sha256).second) continue;
    if (!HasBlob(e.sha256)) {
      missing.push_back(e.sha256);
    } else {
      // The upload will reuse this blob without writing it: refresh its mtime
      // so CollectBlobs treats it as young until the manifest is committed.
      std::error_code ec;
      fs::last_write_time(BlobPath(e.sha256), now, ec);
    }
  }
  return missing;
}

util::Status BlobStore::PutBlobFromFile(std::string_view sha256, const fs::path& source) {
  if (!IsValidDigest(sha256)) {
    return util::ValueError("blob digest must be 64 lowercase hex characters, got '" +
                            std::string(sha256) + "'");
  }
  if (HasBlob(sha256)) return {};
  auto temp = NewTempPath();
  if (!temp) return std::move(temp).error();
  std::error_code ec;
  fs::copy_file(source, *temp, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    fs::remove(*temp, ec);
    return util::IOError("cannot read " + source.string() + ": " + ec.message());
  }
  auto actual = Sha256File(*temp);
  if (!actual || *actual != sha256) {
    fs::remove(*temp, ec);
    if (!actual) return std::move(actual).error();
    return util::ValueError("blob content does not match its digest: expected " +
                            std::string(sha256) + ", got " + *actual);
  }
  fs::create_directories(BlobPath(sha256).parent_path(), ec);
  return Publish(*temp, BlobPath(sha256));
}

util::Status BlobStore::PutBlob(std::string_view sha256, std::string_view bytes) {
  auto temp = NewTempPath();
  if (!temp) return std::move(temp).error();
  {
    std::ofstream out(*temp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return util::IOError("cannot write " + temp->string());
  }
  util::Status status = PutBlobFromFile(sha256, *temp);
  std::error_code ec;
  fs::remove(*temp, ec);
  return status;
}

util::Result<std::string> BlobStore::CommitPackage(const Manifest& manifest) {
  std::vector<std::string> missing = MissingBlobs(manifest);
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + missing[i];
    return util::NotFoundError("cannot commit " + manifest.Uri() + ": " +
                               std::to_string(missing.size()) + " file(s) not uploaded yet (" +
                               list + (missing.size() > 10 ? ", ..." : "") + ")");
  }
  std::string name = manifest.PackageName();
  if (HasPackage(name)) return manifest.Uri();
  std::vector<PackageEntry> entries;
  for (const ManifestEntry& e : manifest.entries()) {
    PackageEntry entry{e.path, e.type, {}, e.size, e.executable};
    if (e.type == EntryType::kFile) entry.source = BlobPath(e.sha256);
    entries.push_back(std::move(entry));
  }
  if (auto ok = WriteZip(entries, root_ / "packages" / name); !ok) return std::move(ok).error();
  auto temp = NewTempPath();
  if (!temp) return std::move(temp).error();
  std::ofstream(*temp, std::ios::binary | std::ios::trunc) << util::DumpsSorted(manifest.ToJson());
  if (auto ok = Publish(*temp, root_ / "manifests" / (name + ".json")); !ok) {
    return std::move(ok).error();
  }
  return manifest.Uri();
}

util::Status BlobStore::PutPackageArchive(std::string_view name, const fs::path& archive) {
  if (!IsValidPackageName(name)) {
    return util::ValueError("invalid package name '" + std::string(name) + "'");
  }
  auto temp = NewTempPath();
  if (!temp) return std::move(temp).error();
  std::error_code ec;
  fs::copy_file(archive, *temp, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    fs::remove(*temp, ec);
    return util::IOError("cannot read " + archive.string() + ": " + ec.message());
  }
  return Publish(*temp, root_ / "packages" / std::string(name));
}

bool BlobStore::HasPackage(std::string_view name) const {
  std::error_code ec;
  return IsValidPackageName(name) && fs::exists(root_ / "packages" / std::string(name), ec);
}

util::Result<fs::path> BlobStore::PackagePath(std::string_view name) const {
  if (!HasPackage(name)) {
    return util::NotFoundError("package " + std::string(name) + " is not in the store");
  }
  return root_ / "packages" / std::string(name);
}

util::Status BlobStore::DeletePackage(std::string_view name) {
  if (!IsValidPackageName(name)) {
    return util::ValueError("invalid package name '" + std::string(name) + "'");
  }
  std::error_code ec;
  fs::remove(root_ / "packages" / std::string(name), ec);
  fs::remove(root_ / "manifests" / (std::string(name) + ".json"), ec);
  return {};
}

std::vector<BlobStore::PackageInfo> BlobStore::ListPackages() const {
  std::vector<PackageInfo> packages;
  std::error_code ec;
  for (fs::directory_iterator it(root_ / "packages", ec), end; !ec && it != end; it.increment(ec)) {
    // Not following symbolic links: the store only ever renames regular files
    // into place.
    std::error_code stat_ec;
    if (!it->is_regular_file(stat_ec) || it->is_symlink(stat_ec)) continue;
    // A package deleted while listing is simply not listed.
    std::uint64_t size = it->file_size(stat_ec);
    if (stat_ec) continue;
    auto modified = it->last_write_time(stat_ec);
    if (stat_ec) continue;
    packages.push_back({it->path().filename().string(), size, modified});
  }
  std::sort(packages.begin(), packages.end(),
            [](const PackageInfo& a, const PackageInfo& b) { return a.name < b.name; });
  return packages;
}

util::Result<std::size_t> BlobStore::CollectBlobs(fs::file_time_type cutoff) {
  // Every digest a committed manifest references. Any doubt about a manifest
  // fails the whole collection: deleting a blob a package still needs is the
  // one mistake this must not make.
  std::set<std::string> referenced;
  const fs::path manifests = root_ / "manifests";
  std::error_code ec;
  for (fs::directory_iterator it(manifests, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& path = it->path();
    if (path.extension() != ".json") continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    std::ifstream in(path, std::ios::binary);
    if (!in.is_open()) {
      // Removed by DeletePackage since it was listed: it references nothing now.
      if (!fs::exists(path, type_ec) && !type_ec) continue;
      return util::IOError("cannot read manifest " + path.string());
    }
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (in.bad()) return util::IOError("cannot read manifest " + path.string());
    auto json = util::ParseJson(text);
    if (!json) {
      return util::Error{
          util::ErrorKind::kCorruption,
          "manifest " + path.string() + " is not valid JSON: " + json.error().message};
    }
    auto manifest = Manifest::FromJson(*json);
    if (!manifest) {
      return util::Error{util::ErrorKind::kCorruption,
                         "manifest " + path.string() + " is invalid: " + manifest.error().message};
    }
    for (const ManifestEntry& e : manifest->entries()) {
      if (e.type == EntryType::kFile) referenced.insert(e.sha256);
    }
  }
  if (ec) return util::IOError("cannot list " + manifests.string() + ": " + ec.message());

  std::size_t removed = 0;
  const fs::path blobs = root_ / "blobs";
  for (fs::directory_iterator dir(blobs, ec), end; !ec && dir != end; dir.increment(ec)) {
    std::string prefix = dir->path().filename().string();
    std::error_code type_ec;
    if (prefix.size() != 2 || !dir->is_directory(type_ec) || dir->is_symlink(type_ec)) continue;
    std::error_code list_ec;
    for (fs::directory_iterator it(dir->path(), list_ec); !list_ec && it != end;
         it.increment(list_ec)) {
      std::string sha = it->path().filename().string();
      // Only files the store itself could have written are candidates.
      if (!IsValidDigest(sha) || !sha.starts_with(prefix) || referenced.contains(sha)) continue;
      std::error_code stat_ec;
      if (!it->is_regular_file(stat_ec) || it->is_symlink(stat_ec)) continue;
      auto written = it->last_write_time(stat_ec);
      if (stat_ec || written >= cutoff) continue;
      if (fs::remove(it->path(), stat_ec)) {
        ++removed;
      } else if (stat_ec) {
        return util::IOError("cannot remove " + it->path().string() + ": " + stat_ec.message());
      }
    }
    if (list_ec) {
      return util::IOError("cannot list " + dir->path().string() + ": " + list_ec.message());
    }
    // Empty blobs/<2hex>/ directories are kept: removing one could race with
    // a PutBlob that has just created it and is about to rename into it.
  }
  if (ec) return util::IOError("cannot list " + blobs.string() + ": " + ec.message());
  return removed;
}

}  // namespace strata::packaging
