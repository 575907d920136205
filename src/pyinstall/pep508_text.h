// Character classes shared by the PEP 508 marker and requirement parsers,
// matching the regular expressions `packaging` uses.
//
// Thread-safety: pure functions.
#pragma once

#include <cctype>
#include <cstddef>
#include <string_view>

namespace strata::pyinstall {

// Python's \w for the ASCII range; other bytes are parts of non-ASCII
// characters, which are mostly letters.
inline bool IsWordChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return u >= 0x80 || std::isalnum(u) || c == '_';
}

// The regex \b at byte `pos`.
inline bool AtWordBoundary(std::string_view s, std::size_t pos) {
  bool before = pos > 0 && IsWordChar(s[pos - 1]);
  bool after = pos < s.size() && IsWordChar(s[pos]);
  return before != after;
}

}  // namespace strata::pyinstall
