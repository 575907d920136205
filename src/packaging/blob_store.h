// BlobStore: the cluster's package store on disk, content-addressed per file
// so that editing one file of a large working_dir re-uploads one file.
//
// Layout under the store's root:
//
//   blobs/<first 2 hex>/<sha256>      file contents, named by their SHA-256;
//                                     immutable once renamed into place
//   manifests/<package name>.json     committed manifests (manifest.h JSON)
//   packages/<package name>           the package archive served to nodes:
//                                     a deterministic zip assembled from blobs,
//                                     or an archive uploaded whole
//   tmp/                              in-flight writes; emptied by Open()
//
// An upload is: MissingBlobs(manifest) → PutBlob for each missing digest →
// CommitPackage(manifest). Every write goes to tmp/ and is renamed into
// place, so a crash leaves nothing half-written that could be served, and
// concurrent writers of the same blob or package (threads or processes)
// produce one result.
//
// Thread-safety: all methods may be called concurrently, from several
// processes too.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "packaging/manifest.h"
#include "util/result.h"

namespace strata::packaging {

class BlobStore {
 public:
  // Creates the layout if needed and removes leftovers of interrupted writes.
  static util::Result<BlobStore> Open(const std::filesystem::path& root);

  // Digests of the manifest's files the store lacks, each once, in manifest order.
  // Blobs it already has get a fresh modification time, so that CollectBlobs
  // spares them until the upload that reuses them has committed.
  std::vector<std::string> MissingBlobs(const Manifest& manifest) const;
  bool HasBlob(std::string_view sha256) const;

  // Stores the bytes of `source` under `sha256` after checking that they hash
  // to it (ValueError otherwise). Storing a blob that exists is a no-op.
  util::Status PutBlobFromFile(std::string_view sha256, const std::filesystem::path& source);
  util::Status PutBlob(std::string_view sha256, std::string_view bytes);

  // Assembles the package archive from blobs and records the manifest.
  // NotFound naming the missing digests when blobs are absent. Returns the
  // package URI (gcs://_strata_pkg_<hex>.zip).
  util::Result<std::string> CommitPackage(const Manifest& manifest);

  // Stores an archive uploaded whole (Ray's PUT /api/packages/...) under `name`.
  util::Status PutPackageArchive(std::string_view name, const std::filesystem::path& archive);

  bool HasPackage(std::string_view name) const;
  // Path of a stored package archive; NotFound if absent.
  util::Result<std::filesystem::path> PackagePath(std::string_view name) const;
  // Removes a package's archive and manifest (blobs are kept; see CollectBlobs).
  util::Status DeletePackage(std::string_view name);

  struct PackageInfo {
    std::string name;
    std::uint64_t size = 0;                    // archive bytes
    std::filesystem::file_time_type modified;  // when it was stored
  };
  // Every stored package, sorted by name.
  std::vector<PackageInfo> ListPackages() const;
  // Removes blobs that no committed manifest references and whose files were
  // written before `cutoff` (younger ones may belong to an upload that has
  // not committed yet). Returns how many were removed.
  util::Result<std::size_t> CollectBlobs(std::filesystem::file_time_type cutoff);

  const std::filesystem::path& root() const { return root_; }

 private:
  explicit BlobStore(std::filesystem::path root) : root_(std::move(root)) {}
  std::filesystem::path BlobPath(std::string_view sha256) const;
  util::Result<std::filesystem::path> NewTempPath() const;

  std::filesystem::path root_;
};

}  // namespace strata::packaging
