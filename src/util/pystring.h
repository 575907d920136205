// Python str semantics over UTF-8 std::string: what Ray's validators compute
// with str.strip(), str.split() and len() must come out the same here.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace strata::util {

// OK when `bytes` is valid UTF-8; otherwise a ValueError worded like
// Python's UnicodeDecodeError ("'utf-8' codec can't decode byte 0xff in
// position 3: invalid start byte").
Status CheckUtf8(std::string_view bytes);

// Number of code points (len() of the decoded str). `text` must be valid UTF-8.
size_t Utf8Length(std::string_view text);

// str.isspace() for one code point.
bool IsPyWhitespace(char32_t code_point);

// str.strip() with no argument.
std::string PyStrip(std::string_view text);

// str.split() with no argument: runs of whitespace separate, none are kept.
std::vector<std::string> PySplit(std::string_view text);

}  // namespace strata::util
