// PackageService: the head's package store — the node's BlobStore behind
// Ray's package endpoints and Strata's incremental upload, with pins that
// keep packages alive and a garbage collector for the rest.
//
// A package is kept while any of these holds:
//   * a job that names it (working_dir / py_modules) is not finished
//     (HoldForJob … ReleaseJob; pin holder "job:<id>");
//   * it was uploaded, committed or looked up (Exists) less than
//     `pin_duration` ago (pin holder "pin", extended on every use), as
//     Ray's temporary reference (RAY_RUNTIME_ENV_TEMPORARY_REFERENCE_EXPIRATION_S);
//   * its archive file is younger than `pin_duration` (covers packages that
//     `strata run` stored on this node without the head).
// CollectGarbage deletes every other package, then the blobs no manifest
// references any more, then expired pins.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "head/head_db.h"
#include "packaging/blob_store.h"
#include "packaging/manifest.h"
#include "util/result.h"

namespace strata::head {

struct PackageServiceOptions {
  std::chrono::seconds pin_duration{600};
  // Largest archive or blob accepted (STRATA_MAX_PACKAGE_SIZE, default 100 MiB).
  std::uint64_t max_upload_bytes = 100ull * 1024 * 1024;

  // pin_duration from STRATA_RUNTIME_ENV_TEMPORARY_REFERENCE_EXPIRATION_S
  // (seconds, >= 0) and max_upload_bytes from STRATA_MAX_PACKAGE_SIZE;
  // ValueError naming the variable when one is malformed.
  static util::Result<PackageServiceOptions> FromEnvironment();
};

struct GcReport {
  std::vector<std::string> deleted_packages;  // URIs
  std::size_t deleted_blobs = 0;
  std::size_t expired_pins = 0;
};

struct PackageCounters {
  std::uint64_t archives_uploaded = 0;
  std::uint64_t blobs_uploaded = 0;
  std::uint64_t bytes_uploaded = 0;
  std::uint64_t packages_committed = 0;
  std::uint64_t packages_deleted = 0;
};

class PackageService {
 public:
  PackageService(packaging::BlobStore& store, HeadDb& db, PackageServiceOptions options);

  // `uri` must be gcs://<name> with a plain file name; ValueError otherwise
  // (Ray accepts only the gcs protocol on its package endpoints).
  static util::Result<std::string> PackageNameOf(std::string_view uri);

  // Whether the package is stored; pins it when it is.
  util::Result<bool> Exists(std::string_view uri);
  // Stores an archive uploaded whole and pins it.
  util::Status PutArchive(std::string_view uri, const std::filesystem::path& archive);
  util::Result<std::vector<std::string>> MissingBlobs(const packaging::Manifest& manifest);
  util::Status PutBlob(std::string_view sha256, std::string_view bytes);
  // Assembles the package from blobs, pins it and returns its URI.
  util::Result<std::string> Commit(const packaging::Manifest& manifest);

  // Pins the gcs:// URIs among `uris` for the job's lifetime.
  util::Status HoldForJob(std::string_view job_id, const std::vector<std::string>& uris);
  util::Status ReleaseJob(std::string_view job_id);

  util::Result<GcReport> CollectGarbage();

  PackageCounters Counters() const;
  const PackageServiceOptions& options() const { return options_; }
  packaging::BlobStore& store() { return store_; }

 private:
  util::Status PinForAWhile(std::string_view uri);

  packaging::BlobStore& store_;
  HeadDb& db_;
  PackageServiceOptions options_;
  struct AtomicCounters;
  std::shared_ptr<AtomicCounters> counters_;
};

}  // namespace strata::head
