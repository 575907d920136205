// Message digests of in-memory bytes, as lowercase hex (OpenSSL underneath).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace strata::util {

std::string Sha256Hex(std::string_view data);
// SHA-1 only where Ray's naming needs it (pip://<sha1>): not for security.
std::string Sha1Hex(std::string_view data);
// Lowercase hex of raw bytes.
std::string ToHex(const unsigned char* bytes, size_t length);

}  // namespace strata::util
