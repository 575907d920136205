#include "pyinstall/hashes.h"

#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <utility>
#include <vector>

#include "util/digest.h"

namespace strata::pyinstall {
namespace {

constexpr std::array<std::string_view, 3> kStrongHashes = {"sha256", "sha384", "sha512"};
constexpr std::array<std::string_view, 6> kLinkHashes = {"sha512", "sha384", "sha256",
                                                         "sha224", "sha1",   "md5"};

const EVP_MD* Algorithm(std::string_view name) {
  if (name == "sha256") return EVP_sha256();
  if (name == "sha384") return EVP_sha384();
  if (name == "sha512") return EVP_sha512();
  if (name == "sha224") return EVP_sha224();
  if (name == "sha1") return EVP_sha1();
  if (name == "md5") return EVP_md5();
  return nullptr;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsHex(std::string_view text) {
  for (char c : text) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

}  // namespace

util::Status AllowedHashes::AddOption(std::string_view value) {
  std::size_t colon = value.find(':');
  if (colon == std::string_view::npos) {
    return util::ValueError(
        "Arguments to --hash must be a hash name followed by a value, like "
        "--hash=sha256:abcde...");
  }
  std::string_view algorithm = value.substr(0, colon);
  std::string_view digest = value.substr(colon + 1);
  bool strong = false;
  for (std::string_view name : kStrongHashes) strong = strong || name == algorithm;
  if (!strong) {
    return util::ValueError("Allowed hash algorithms for --hash are sha256, sha384, sha512.");
  }
  auto expected_length = static_cast<std::size_t>(EVP_MD_size(Algorithm(algorithm))) * 2;
  if (digest.size() != expected_length || !IsHex(digest)) {
    return util::ValueError("Invalid --hash value '" + std::string(value) + "': expected " +
                            std::to_string(expected_length) + " hex digits of " +
                            std::string(algorithm));
  }
  allowed_[std::string(algorithm)].insert(Lower(digest));
  return util::Status::Ok();
}

void AllowedHashes::AddLinkHashes(const std::map<std::string, std::string>& hashes) {
  for (const auto& [name, hex] : hashes) {
    for (std::string_view supported : kLinkHashes) {
      if (name == supported) allowed_[name].insert(Lower(hex));
    }
  }
}

AllowedHashes AllowedHashes::Intersect(const AllowedHashes& other) const {
  if (other.empty()) return *this;
  if (empty()) return other;
  AllowedHashes out;
  for (const auto& [name, digests] : other.allowed_) {
    auto mine = allowed_.find(name);
    if (mine == allowed_.end()) continue;
    // pip keeps the algorithm even when no digest survives, so nothing passes.
    std::set<std::string>& kept = out.allowed_[name];
    for (const std::string& digest : digests) {
      if (mine->second.contains(digest)) kept.insert(digest);
    }
  }
  return out;
}

bool AllowedHashes::Allows(std::string_view algorithm, std::string_view hex) const {
  auto it = allowed_.find(std::string(algorithm));
  return it != allowed_.end() && it->second.contains(Lower(hex));
}

struct HashVerifier::State {
  std::vector<std::pair<std::string, EVP_MD_CTX*>> contexts;
  ~State() {
    for (auto& [name, context] : contexts) EVP_MD_CTX_free(context);
  }
};

HashVerifier::HashVerifier(AllowedHashes allowed)
    : allowed_(std::move(allowed)), state_(std::make_unique<State>()) {
  for (const auto& [name, digests] : allowed_.allowed()) {
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    EVP_DigestInit_ex(context, Algorithm(name), nullptr);
    state_->contexts.emplace_back(name, context);
  }
}

HashVerifier::~HashVerifier() = default;
HashVerifier::HashVerifier(HashVerifier&&) noexcept = default;
HashVerifier& HashVerifier::operator=(HashVerifier&&) noexcept = default;

void HashVerifier::Update(std::string_view bytes) {
  for (auto& [name, context] : state_->contexts) {
    EVP_DigestUpdate(context, bytes.data(), bytes.size());
  }
}

util::Status HashVerifier::Finish(std::string_view filename) {
  bool matched = allowed_.empty();
  for (auto& [name, context] : state_->contexts) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context, out, &length);
    digests_[name] = util::ToHex(out, length);
    matched = matched || allowed_.Allows(name, digests_[name]);
  }
  if (matched) return util::Status::Ok();
  std::string message =
      "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated "
      "the package versions, please update the hashes. Otherwise, examine the package contents "
      "carefully; someone may have tampered with them.\n    " +
      std::string(filename) + ":";
  for (const auto& [name, expected] : allowed_.allowed()) {
    bool first = true;
    for (const std::string& digest : expected) {
      // pip's own spelling of an alternative: "Expected     or <hex>".
      message += "\n        Expected " + (first ? name : std::string("    or")) + " " + digest;
      first = false;
    }
    message += "\n             Got        " + digests_[name];
  }
  return util::Error{util::ErrorKind::kCorruption, std::move(message)};
}

util::Status VerifyFile(const std::filesystem::path& path, const AllowedHashes& allowed) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::IOError("cannot read " + path.string());
  HashVerifier verifier(allowed);
  std::vector<char> buffer(1 << 16);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    verifier.Update(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) return util::IOError("error reading " + path.string());
  return verifier.Finish(path.filename().string());
}

}  // namespace strata::pyinstall
