#include "packaging/manifest.h"

#include <fcntl.h>
#include <libdeflate.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "util/digest.h"

namespace strata::packaging {
namespace {

constexpr size_t kReadBufferSize = 1 << 20;

using DigestContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

DigestContext NewSha256() {
  DigestContext ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  return ctx;
}

std::string Finish(EVP_MD_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  return util::ToHex(digest, length);
}

bool IsHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string CanonicalText(const std::vector<ManifestEntry>& entries) {
  std::string text;
  for (const ManifestEntry& e : entries) {
    bool file = e.type == EntryType::kFile;
    text += file ? 'F' : 'D';
    text += ' ';
    text += file && e.executable ? 'x' : '-';
    text += ' ';
    text += file ? e.sha256 : "-";
    text += ' ';
    text += e.path;
    text += '\0';
  }
  return text;
}

}  // namespace

namespace {

struct FileDigests {
  std::string sha256;
  std::uint32_t crc32 = 0;
};

// One read of the file feeds both digests: the SHA-256 names the content and
// the CRC-32 is what the zip format stores.
util::Result<FileDigests> DigestFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return util::IOError("cannot read " + path.string() + ": " + std::strerror(errno));
  Sha256Stream sha;
  std::uint32_t crc = 0;
  // One buffer per thread: allocating (and zeroing) it per file cost more
  // than hashing the small files of a typical package.
  thread_local std::unique_ptr<char[]> buffer(new char[kReadBufferSize]);
  while (true) {
    ssize_t n = ::read(fd, buffer.get(), kReadBufferSize);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return util::IOError("cannot read " + path.string() + ": " + std::strerror(err));
    }
    if (n == 0) break;
    sha.Update({buffer.get(), static_cast<size_t>(n)});
    crc = libdeflate_crc32(crc, buffer.get(), static_cast<size_t>(n));
  }
  ::close(fd);
  return FileDigests{sha.HexDigest(), crc};
}

}  // namespace

Sha256Stream::Sha256Stream() : ctx_(NewSha256().release(), &EVP_MD_CTX_free) {}

void Sha256Stream::Update(std::string_view block) {
  EVP_DigestUpdate(ctx_.get(), block.data(), block.size());
}

std::string Sha256Stream::HexDigest() {
  return Finish(ctx_.get());
}

util::Result<std::string> Sha256File(const std::filesystem::path& path) {
  auto digests = DigestFile(path);
  if (!digests) return std::move(digests).error();
  return std::move(digests->sha256);
}

util::Result<Manifest> Manifest::FromEntries(std::vector<ManifestEntry> entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    const ManifestEntry& e = entries[i];
    if (e.path.empty() || e.path.front() == '/' || e.path.back() == '/' ||
        e.path.find('\0') != std::string::npos) {
      return util::ValueError("manifest entry has an invalid path: '" + e.path + "'");
    }
    if (e.type == EntryType::kFile && !IsHex64(e.sha256)) {
      return util::ValueError("manifest entry " + e.path + " lacks a SHA-256 hex digest");
    }
    if (i > 0 && entries[i - 1].path >= e.path) {
      return util::ValueError("manifest entries are not sorted or repeat a path: " + e.path);
    }
  }
  Manifest manifest;
  manifest.entries_ = std::move(entries);
  DigestContext ctx = NewSha256();
  std::string text = CanonicalText(manifest.entries_);
  EVP_DigestUpdate(ctx.get(), text.data(), text.size());
  manifest.digest_ = Finish(ctx.get());
  return manifest;
}

util::Result<Manifest> Manifest::FromJson(const util::Json& json) {
  if (!json.is_object() || !json.contains("entries") || !json["entries"].is_array()) {
    return util::ValueError("manifest must be an object with an \"entries\" list");
  }
  std::vector<ManifestEntry> entries;
  for (const util::Json& item : json["entries"]) {
    if (!item.is_object() || !item.contains("path") || !item["path"].is_string() ||
        !item.contains("type") || !item["type"].is_string()) {
      return util::ValueError("manifest entry needs a string \"path\" and \"type\": " +
                              util::DumpsSorted(item));
    }
    ManifestEntry entry;
    entry.path = item["path"].get<std::string>();
    std::string type = item["type"].get<std::string>();
    if (type == "directory") {
      entry.type = EntryType::kDirectory;
    } else if (type == "file") {
      if (!item.contains("sha256") || !item["sha256"].is_string() || !item.contains("size") ||
          !item["size"].is_number_unsigned()) {
        return util::ValueError("manifest file entry " + entry.path +
                                " needs \"sha256\" (hex) and \"size\" (bytes)");
      }
      entry.sha256 = item["sha256"].get<std::string>();
      entry.size = item["size"].get<std::uint64_t>();
      entry.executable = item.value("executable", false);
    } else {
      return util::ValueError("manifest entry " + entry.path + " has unknown type '" + type +
                              "' (expected file or directory)");
    }
    entries.push_back(std::move(entry));
  }
  return FromEntries(std::move(entries));
}

std::string Manifest::PackageName() const {
  return std::string(kPackagePrefix) + digest_.substr(0, 32) + ".zip";
}

std::string Manifest::Uri() const {
  return "gcs://" + PackageName();
}

std::uint64_t Manifest::TotalFileBytes() const {
  std::uint64_t total = 0;
  for (const ManifestEntry& e : entries_) total += e.size;
  return total;
}

util::Json Manifest::ToJson() const {
  util::Json list = util::Json::array();
  for (const ManifestEntry& e : entries_) {
    util::Json item = util::Json::object();
    item["path"] = e.path;
    if (e.type == EntryType::kDirectory) {
      item["type"] = "directory";
    } else {
      item["type"] = "file";
      item["executable"] = e.executable;
      item["size"] = e.size;
      item["sha256"] = e.sha256;
    }
    list.push_back(std::move(item));
  }
  return util::Json::object({{"entries", std::move(list)}});
}

util::Result<Manifest> ManifestFromDigests(const std::vector<PackageEntry>& entries,
                                           std::string_view top_level_dir,
                                           std::vector<std::string> sha256) {
  std::string prefix = top_level_dir.empty() ? "" : std::string(top_level_dir) + "/";
  std::vector<ManifestEntry> out(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const PackageEntry& in = entries[i];
    ManifestEntry& e = out[i];
    e.path = prefix + in.path;
    e.type = in.type;
    if (in.type != EntryType::kFile) continue;
    e.executable = in.executable;
    e.size = in.size;
    e.sha256 = std::move(sha256[i]);
  }
  if (!prefix.empty()) {
    // The top-level folder itself is an entry only when the package is empty.
    if (out.empty()) out.push_back({std::string(top_level_dir), EntryType::kDirectory});
  }
  auto by_path = [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; };
  // Walked entries under one prefix are in order already; checking costs less than sorting.
  if (!std::is_sorted(out.begin(), out.end(), by_path)) std::sort(out.begin(), out.end(), by_path);
  return Manifest::FromEntries(std::move(out));
}

util::Result<Manifest> BuildManifest(std::vector<PackageEntry>& entries,
                                     std::string_view top_level_dir, unsigned threads) {
  std::vector<std::string> sha256(entries.size());
  std::vector<std::optional<util::Error>> errors(entries.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < entries.size(); i = next++) {
      PackageEntry& in = entries[i];
      if (in.type != EntryType::kFile) continue;
      auto digests = DigestFile(in.source);
      if (digests) {
        sha256[i] = std::move(digests->sha256);
        in.crc32 = digests->crc32;
      } else {
        errors[i] = std::move(digests).error();
      }
    }
  };
  unsigned count = threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  count = static_cast<unsigned>(std::min<size_t>(count, std::max<size_t>(1, entries.size())));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < count; ++t) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();
  for (auto& error : errors) {
    if (error) return std::move(*error);
  }
  return ManifestFromDigests(entries, top_level_dir, std::move(sha256));
}

}  // namespace strata::packaging
