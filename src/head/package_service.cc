#include "head/package_service.h"

#include <atomic>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <system_error>
#include <utility>

#include "packaging/package.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kGcsPrefix = "gcs://";
constexpr std::string_view kPinHolder = "pin";
constexpr const char* kPinDurationVariable = "STRATA_RUNTIME_ENV_TEMPORARY_REFERENCE_EXPIRATION_S";

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
}

std::string JobHolder(std::string_view job_id) {
  return "job:" + std::string(job_id);
}

util::Error TooLarge(std::string_view what, std::uint64_t size, std::uint64_t limit) {
  return util::ValueError(std::string(what) + " is " + std::to_string(size) + " bytes (" +
                          packaging::MibString(size) + "), over the upload limit of " +
                          std::to_string(limit) + " bytes (" + packaging::MibString(limit) +
                          "; STRATA_MAX_PACKAGE_SIZE)");
}

}  // namespace

// Behind a shared_ptr so the service stays copyable. The lock orders garbage
// collection against pinning: a package that Exists/PutArchive/Commit just
// reported and pinned must not be deleted by a collection that read the pins
// a moment earlier.
struct PackageService::AtomicCounters {
  std::atomic<std::uint64_t> archives_uploaded{0};
  std::atomic<std::uint64_t> blobs_uploaded{0};
  std::atomic<std::uint64_t> bytes_uploaded{0};
  std::atomic<std::uint64_t> packages_committed{0};
  std::atomic<std::uint64_t> packages_deleted{0};
  std::shared_mutex gc_mutex;  // shared: use and pin; exclusive: collect
};

util::Result<PackageServiceOptions> PackageServiceOptions::FromEnvironment() {
  PackageServiceOptions options;
  if (const char* value = std::getenv(kPinDurationVariable); value != nullptr && *value != '\0') {
    std::string_view text(value);
    std::int64_t seconds = -1;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || end != text.data() + text.size() || seconds < 0) {
      return util::ValueError(std::string(kPinDurationVariable) +
                              " must be a whole number of seconds >= 0, got '" + std::string(text) +
                              "'");
    }
    options.pin_duration = std::chrono::seconds(seconds);
  }
  auto max_bytes = packaging::MaxPackageBytesFromEnvironment();
  if (!max_bytes) return std::move(max_bytes).error();
  options.max_upload_bytes = *max_bytes;
  return options;
}

PackageService::PackageService(packaging::BlobStore& store, HeadDb& db,
                               PackageServiceOptions options)
    : store_(store),
      db_(db),
      options_(std::move(options)),
      counters_(std::make_shared<AtomicCounters>()) {}

util::Result<std::string> PackageService::PackageNameOf(std::string_view uri) {
  if (uri.substr(0, kGcsPrefix.size()) != kGcsPrefix) {
    std::string message = "Invalid package URI '" + std::string(uri) + "': ";
    if (uri.find("://") != std::string_view::npos) {
      return util::ValueError(message +
                              "only gcs:// package URIs are supported (expected gcs://<name>)");
    }
    return util::ValueError(message + "expected gcs://<name>");
  }
  std::string_view name = uri.substr(kGcsPrefix.size());
  // A leading '_' is allowed: Strata's and Ray's own names start with it
  // (_strata_pkg_<hex>.zip, _ray_pkg_<hex>.zip); a leading '.' or '-' is not.
  bool valid = !name.empty() && name.front() != '.' && name.front() != '-' &&
               name.find("..") == std::string_view::npos;
  for (char c : name) valid = valid && IsNameChar(c);
  if (!valid) {
    return util::ValueError(
        "Invalid package URI '" + std::string(uri) +
        "': expected gcs://<name> where name is a file name of letters, digits, '.', '_' and "
        "'-' that does not start with '.' or '-' and has no '/' or '..'");
  }
  return std::string(name);
}

util::Status PackageService::PinForAWhile(std::string_view uri) {
  auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(options_.pin_duration);
  return db_.Pin(uri, kPinHolder, NowMs() + duration.count());
}

util::Result<bool> PackageService::Exists(std::string_view uri) {
  auto name = PackageNameOf(uri);
  if (!name) return std::move(name).error();
  std::shared_lock lock(counters_->gc_mutex);
  if (!store_.HasPackage(*name)) return false;
  if (auto ok = PinForAWhile(uri); !ok) return std::move(ok).error();
  return true;
}

util::Status PackageService::PutArchive(std::string_view uri, const fs::path& archive) {
  auto name = PackageNameOf(uri);
  if (!name) return std::move(name).error();
  std::error_code ec;
  std::uint64_t size = fs::file_size(archive, ec);
  if (ec) return util::IOError("cannot read " + archive.string() + ": " + ec.message());
  if (size > options_.max_upload_bytes) {
    return TooLarge("Package " + std::string(uri), size, options_.max_upload_bytes);
  }
  std::shared_lock lock(counters_->gc_mutex);
  if (auto ok = store_.PutPackageArchive(*name, archive); !ok) return ok;
  counters_->archives_uploaded.fetch_add(1, std::memory_order_relaxed);
  counters_->bytes_uploaded.fetch_add(size, std::memory_order_relaxed);
  return PinForAWhile(uri);
}

util::Result<std::vector<std::string>> PackageService::MissingBlobs(
    const packaging::Manifest& manifest) {
  // Refused before any blob is sent: the archive it would make is over the limit.
  if (std::uint64_t total = manifest.TotalFileBytes(); total > options_.max_upload_bytes) {
    return TooLarge("Package " + manifest.Uri(), total, options_.max_upload_bytes);
  }
  return store_.MissingBlobs(manifest);
}

util::Status PackageService::PutBlob(std::string_view sha256, std::string_view bytes) {
  if (bytes.size() > options_.max_upload_bytes) {
    return TooLarge("Blob " + std::string(sha256), bytes.size(), options_.max_upload_bytes);
  }
  if (auto ok = store_.PutBlob(sha256, bytes); !ok) return ok;
  counters_->blobs_uploaded.fetch_add(1, std::memory_order_relaxed);
  counters_->bytes_uploaded.fetch_add(bytes.size(), std::memory_order_relaxed);
  return {};
}

util::Result<std::string> PackageService::Commit(const packaging::Manifest& manifest) {
  if (std::uint64_t total = manifest.TotalFileBytes(); total > options_.max_upload_bytes) {
    return TooLarge("Package " + manifest.Uri(), total, options_.max_upload_bytes);
  }
  std::shared_lock lock(counters_->gc_mutex);
  auto uri = store_.CommitPackage(manifest);
  if (!uri) return uri;
  counters_->packages_committed.fetch_add(1, std::memory_order_relaxed);
  if (auto ok = PinForAWhile(*uri); !ok) return std::move(ok).error();
  return uri;
}

util::Status PackageService::HoldForJob(std::string_view job_id,
                                        const std::vector<std::string>& uris) {
  std::vector<std::string> held;
  for (const std::string& uri : uris) {
    if (uri.rfind(kGcsPrefix, 0) != 0) continue;  // pip://, s3://, local paths: not ours
    if (auto name = PackageNameOf(uri); !name) return std::move(name).error();
    held.push_back(uri);
  }
  std::string holder = JobHolder(job_id);
  for (const std::string& uri : held) {
    if (auto ok = db_.Pin(uri, holder, kNever); !ok) return ok;
  }
  return {};
}

util::Status PackageService::ReleaseJob(std::string_view job_id) {
  return db_.Unpin(JobHolder(job_id));
}

util::Result<GcReport> PackageService::CollectGarbage() {
  GcReport report;
  std::int64_t now_ms = NowMs();
  // Archives and blobs are judged by the file clock, pins by the wall clock.
  auto cutoff = fs::file_time_type::clock::now() - options_.pin_duration;
  {
    std::unique_lock lock(counters_->gc_mutex);
    // Expired pins go first (the header lists them last; the outcome is the
    // same): PinnedUris cannot report a database error, and an empty set read
    // from a failing database would delete every pinned package. This call
    // fails instead, before anything is deleted.
    auto pins = db_.DropExpiredPins(now_ms);
    if (!pins) return std::move(pins).error();
    report.expired_pins = *pins;
    std::set<std::string> pinned = db_.PinnedUris(now_ms);
    for (const packaging::BlobStore::PackageInfo& package : store_.ListPackages()) {
      std::string uri = std::string(kGcsPrefix) + package.name;
      if (pinned.count(uri) != 0 || package.modified >= cutoff) continue;
      if (auto ok = store_.DeletePackage(package.name); !ok) return std::move(ok).error();
      counters_->packages_deleted.fetch_add(1, std::memory_order_relaxed);
      report.deleted_packages.push_back(std::move(uri));
    }
    // Under the lock too, so no Commit is reading blobs while they go.
    auto blobs = store_.CollectBlobs(cutoff);
    if (!blobs) return std::move(blobs).error();
    report.deleted_blobs = *blobs;
  }
  return report;
}

PackageCounters PackageService::Counters() const {
  PackageCounters counters;
  counters.archives_uploaded = counters_->archives_uploaded.load(std::memory_order_relaxed);
  counters.blobs_uploaded = counters_->blobs_uploaded.load(std::memory_order_relaxed);
  counters.bytes_uploaded = counters_->bytes_uploaded.load(std::memory_order_relaxed);
  counters.packages_committed = counters_->packages_committed.load(std::memory_order_relaxed);
  counters.packages_deleted = counters_->packages_deleted.load(std::memory_order_relaxed);
  return counters;
}

}  // namespace strata::head
