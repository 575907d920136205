// Hash checking of downloaded distributions, as pip does it (pip's
// utils/hashes.Hashes and exceptions.HashMismatch).
//
// AllowedHashes holds, per algorithm, the hex digests a file may have: from
// `--hash=<alg>:<hex>` options of a requirement (AddOption, which accepts only
// the strong algorithms sha256, sha384 and sha512, as pip's --hash does), or
// from an index link (AddLinkHashes: the `#sha256=...` fragment or PEP 691
// "hashes", any of the names pip keeps: sha512, sha384, sha256, sha224, sha1,
// md5; other names are skipped, not errors). A file passes when, for any
// algorithm, its digest is among the allowed ones; an empty AllowedHashes
// checks nothing. Digests compare as lowercase hex (pip compares the text as
// given, so an uppercase digest there never matches; here it does).
//
// HashVerifier streams bytes through one digest per allowed algorithm
// (OpenSSL EVP) and, on Finish, reports a mismatch with pip's text:
//
//   THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. ...
//       demo-1.0-py3-none-any.whl:
//           Expected sha256 <hex>
//           Expected     or <hex>
//                Got        <hex>
//
// Thread-safety: AllowedHashes is a value type; a HashVerifier is used by one
// thread at a time; VerifyFile is safe to call concurrently.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "util/result.h"

namespace strata::pyinstall {

class AllowedHashes {
 public:
  // One `--hash` value, "sha256:<hex>" (the option's argument, without
  // "--hash="). ValueError, as pip words it, for a value without ':' or an
  // algorithm other than sha256/sha384/sha512; a digest that is not hex of
  // the algorithm's length is a ValueError too (pip would only fail later,
  // with a mismatch).
  util::Status AddOption(std::string_view value);
  // Hashes an index gave for a link (name -> hex); names pip does not
  // support are skipped.
  void AddLinkHashes(const std::map<std::string, std::string>& hashes);

  // pip's `Hashes & Hashes`: when both sides are non-empty, only the digests
  // present in both stay; an empty side allows whatever the other does.
  AllowedHashes Intersect(const AllowedHashes& other) const;

  bool empty() const { return allowed_.empty(); }
  bool Allows(std::string_view algorithm, std::string_view hex) const;
  // algorithm -> sorted lowercase hex digests.
  const std::map<std::string, std::set<std::string>>& allowed() const { return allowed_; }

 private:
  std::map<std::string, std::set<std::string>> allowed_;
};

class HashVerifier {
 public:
  explicit HashVerifier(AllowedHashes allowed);
  ~HashVerifier();
  HashVerifier(HashVerifier&&) noexcept;
  HashVerifier& operator=(HashVerifier&&) noexcept;

  void Update(std::string_view bytes);
  // OK when the bytes seen match (or nothing is required); Corruption with
  // pip's mismatch text naming `filename` otherwise. Call once.
  util::Status Finish(std::string_view filename);
  // Lowercase hex digests of what was seen, per allowed algorithm; valid
  // after Finish.
  const std::map<std::string, std::string>& digests() const { return digests_; }

 private:
  struct State;
  AllowedHashes allowed_;
  std::unique_ptr<State> state_;
  std::map<std::string, std::string> digests_;
};

// Reads `path` in chunks through a HashVerifier; IOError when it cannot be
// read. The mismatch message names the file's base name.
util::Status VerifyFile(const std::filesystem::path& path, const AllowedHashes& allowed);

}  // namespace strata::pyinstall
