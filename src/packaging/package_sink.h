// PackageSink: where uploads go. The same upload logic (upload.h) feeds the
// node's own package store on disk (BlobStoreSink) or a head's package
// endpoints over HTTP (head/head_client.h), so both speak the exchange of
// blob_store.h: MissingBlobs → PutBlobFromFile for each → CommitPackage, or
// a whole archive with PutPackageArchive.
//
// Thread-safety: implementations state their own; BlobStoreSink is safe for
// concurrent use.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "packaging/blob_store.h"
#include "packaging/manifest.h"
#include "util/result.h"

namespace strata::packaging {

class PackageSink {
 public:
  virtual ~PackageSink() = default;
  virtual util::Result<bool> HasPackage(std::string_view name) = 0;
  virtual util::Status PutPackageArchive(std::string_view name,
                                         const std::filesystem::path& archive) = 0;
  virtual util::Result<std::vector<std::string>> MissingBlobs(const Manifest& manifest) = 0;
  virtual util::Status PutBlobFromFile(std::string_view sha256,
                                       const std::filesystem::path& source) = 0;
  // Returns the package URI.
  virtual util::Result<std::string> CommitPackage(const Manifest& manifest) = 0;
};

// The node's own store as a sink.
class BlobStoreSink : public PackageSink {
 public:
  explicit BlobStoreSink(BlobStore& store) : store_(store) {}
  util::Result<bool> HasPackage(std::string_view name) override { return store_.HasPackage(name); }
  util::Status PutPackageArchive(std::string_view name,
                                 const std::filesystem::path& archive) override {
    return store_.PutPackageArchive(name, archive);
  }
  util::Result<std::vector<std::string>> MissingBlobs(const Manifest& manifest) override {
    return store_.MissingBlobs(manifest);
  }
  util::Status PutBlobFromFile(std::string_view sha256,
                               const std::filesystem::path& source) override {
    return store_.PutBlobFromFile(sha256, source);
  }
  util::Result<std::string> CommitPackage(const Manifest& manifest) override {
    return store_.CommitPackage(manifest);
  }

 private:
  BlobStore& store_;
};

}  // namespace strata::packaging
