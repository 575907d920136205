#include "util/pystring.h"

#include <cstdio>

namespace strata::util {
namespace {

// Decodes the code point starting at `pos`; returns its byte length, or 0 if
// the bytes there are not valid UTF-8 (reason set to Python's wording).
size_t DecodeAt(std::string_view s, size_t pos, char32_t* out, const char** reason) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char lead = byte(pos);
  size_t length;
  char32_t cp;
  char32_t min;
  if (lead < 0x80) {
    *out = lead;
    return 1;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, cp = lead & 0x1F, min = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, cp = lead & 0x0F, min = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, cp = lead & 0x07, min = 0x10000;
  } else {
    *reason = "invalid start byte";
    return 0;
  }
  for (size_t i = 1; i < length; ++i) {
    if (pos + i >= s.size()) {
      *reason = "unexpected end of data";
      return 0;
    }
    unsigned char next = byte(pos + i);
    if ((next & 0xC0) != 0x80) {
      *reason = "invalid continuation byte";
      return 0;
    }
    cp = (cp << 6) | (next & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    *reason = "invalid continuation byte";
    return 0;
  }
  *out = cp;
  return length;
}

struct CodePoint {
  char32_t value;
  size_t begin;
  size_t end;
};

std::vector<CodePoint> Decode(std::string_view text) {
  std::vector<CodePoint> out;
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t cp = 0;
    const char* reason = nullptr;
    size_t length = DecodeAt(text, pos, &cp, &reason);
    if (length == 0) length = 1;  // callers validated; be robust anyway
    out.push_back({cp, pos, pos + length});
    pos += length;
  }
  return out;
}

}  // namespace

Status CheckUtf8(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    char32_t cp = 0;
    const char* reason = nullptr;
    size_t length = DecodeAt(bytes, pos, &cp, &reason);
    if (length == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(bytes[pos]));
      return ValueError(std::string("'utf-8' codec can't decode byte ") + hex + " in position " +
                        std::to_string(pos) + ": " + reason);
    }
    pos += length;
  }
  return {};
}

size_t Utf8Length(std::string_view text) {
  size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

bool IsPyWhitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::string PyStrip(std::string_view text) {
  std::vector<CodePoint> points = Decode(text);
  size_t first = 0;
  size_t last = points.size();
  while (first < last && IsPyWhitespace(points[first].value)) ++first;
  while (last > first && IsPyWhitespace(points[last - 1].value)) --last;
  if (first == last) return "";
  return std::string(text.substr(points[first].begin, points[last - 1].end - points[first].begin));
}

std::vector<std::string> PySplit(std::string_view text) {
  std::vector<std::string> out;
  std::string current;
  bool in_word = false;
  for (const CodePoint& cp : Decode(text)) {
    if (IsPyWhitespace(cp.value)) {
      if (in_word) out.push_back(std::move(current));
      current.clear();
      in_word = false;
    } else {
      current.append(text.substr(cp.begin, cp.end - cp.begin));
      in_word = true;
    }
  }
  if (in_word) out.push_back(std::move(current));
  return out;
}

}  // namespace strata::util
