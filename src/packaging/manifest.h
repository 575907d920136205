// Manifest: the content identity of a package, and what a client and the
// package store exchange so an upload sends only the files the store lacks.
//
// A manifest lists every entry of the package as it appears in the archive
// (paths already carrying a py_modules top-level folder), sorted bytewise by
// path: type, executable bit, size and SHA-256 of the content of files.
// Its digest is the SHA-256 of the canonical text
//
//   for each entry, in order:  <F|D> <x|-> <sha256 hex or -> <path> '\0'
//
// (paths cannot contain NUL, so the text is unambiguous). Same content gives
// the same digest whatever the mtimes, traversal order or absolute location;
// a change of content, name, executable bit or set of empty directories gives
// another. The package URI is gcs://_strata_pkg_<first 32 hex of digest>.zip.
//
// JSON form (what travels between client and store):
//   {"entries": [{"path": "a.py", "type": "file", "executable": false,
//                 "size": 12, "sha256": "<64 hex>"},
//                {"path": "empty", "type": "directory"}]}
//
// Thread-safety: value types; BuildManifest may run concurrently; a Sha256Stream is used by
// one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "packaging/entry.h"
#include "util/pyjson.h"
#include "util/result.h"

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace strata::packaging {

inline constexpr std::string_view kPackagePrefix = "_strata_pkg_";

struct ManifestEntry {
  std::string path;
  EntryType type = EntryType::kFile;
  bool executable = false;
  std::uint64_t size = 0;
  std::string sha256;  // lowercase hex; empty for directories
};

class Manifest {
 public:
  Manifest() = default;
  // `entries` must be sorted by path and free of duplicates (checked).
  static util::Result<Manifest> FromEntries(std::vector<ManifestEntry> entries);
  static util::Result<Manifest> FromJson(const util::Json& json);

  const std::vector<ManifestEntry>& entries() const { return entries_; }
  const std::string& digest() const { return digest_; }
  // "_strata_pkg_<32 hex>.zip"
  std::string PackageName() const;
  // "gcs://_strata_pkg_<32 hex>.zip"
  std::string Uri() const;
  std::uint64_t TotalFileBytes() const;
  util::Json ToJson() const;

 private:
  std::vector<ManifestEntry> entries_;
  std::string digest_;
};

// The manifest of `entries` (sorted, as WalkPackageTree returns them) whose files' SHA-256 hex
// digests are already known: sha256[i] is that of entries[i] (ignored for directories). When
// `top_level_dir` is non-empty every path is placed under it, as in the archive.
util::Result<Manifest> ManifestFromDigests(const std::vector<PackageEntry>& entries,
                                           std::string_view top_level_dir,
                                           std::vector<std::string> sha256);

// Hashes every file of `entries` (sorted, as WalkPackageTree returns them),
// using up to `threads` threads (0: one per core), and records each file's
// CRC-32 in its entry for the archive writer. When `top_level_dir` is
// non-empty every path is placed under it, as in the archive. Fails with an
// IOError naming a file that cannot be read.
util::Result<Manifest> BuildManifest(std::vector<PackageEntry>& entries,
                                     std::string_view top_level_dir = "", unsigned threads = 0);

// SHA-256 of bytes fed block by block: a file's content hash, computed while something else
// reads the file (CreatePackageArchive hashes what the archive writer reads).
class Sha256Stream {
 public:
  Sha256Stream();
  void Update(std::string_view block);
  // Lowercase hex of everything fed so far; the stream is then spent.
  std::string HexDigest();

 private:
  std::unique_ptr<evp_md_ctx_st, void (*)(evp_md_ctx_st*)> ctx_;
};

// SHA-256 of a file's bytes, lowercase hex.
util::Result<std::string> Sha256File(const std::filesystem::path& path);

}  // namespace strata::packaging
