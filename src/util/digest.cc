#include "util/digest.h"

#include <openssl/evp.h>

namespace strata::util {
namespace {

std::string Digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), out, &length, md, nullptr);
  return ToHex(out, length);
}

}  // namespace

std::string ToHex(const unsigned char* bytes, size_t length) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(length * 2, '0');
  for (size_t i = 0; i < length; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xF];
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  return Digest(EVP_sha256(), data);
}
std::string Sha1Hex(std::string_view data) {
  return Digest(EVP_sha1(), data);
}

}  // namespace strata::util
