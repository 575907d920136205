#include "util/pyjson.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace strata::util {
namespace {

// ---------------------------------------------------------------------------
// UTF-8

// One step of UTF-8 decoding. On failure `reason` is set and `bad_len` is the
// length of the longest valid prefix, which is what Python's error names.
struct Utf8Step {
  char32_t cp = 0;
  size_t len = 0;
  std::string_view reason;
  size_t bad_len = 0;
};

// Decodes the character at s[i]. Strict mode follows Python's codec; lenient
// mode (used when printing) also accepts encoded surrogates, so that a lone
// surrogate smuggled in by a caller prints as Python would print it.
Utf8Step DecodeUtf8(std::string_view s, size_t i, bool allow_surrogates) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {b0, 1, {}, 0};
  size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  char32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED && !allow_surrogates) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {0, 0, "invalid start byte", 1};
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return {0, 0, "unexpected end of data", k};
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < lo || b > hi) return {0, 0, "invalid continuation byte", k};
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, need + 1, {}, 0};
}

// Decodes for printing: each byte that is not part of a valid sequence
// becomes U+FFFD (a Python str cannot hold such bytes at all).
Utf8Step DecodeForPrint(std::string_view s, size_t i) {
  Utf8Step step = DecodeUtf8(s, i, /*allow_surrogates=*/true);
  if (!step.reason.empty()) return {0xFFFD, 1, {}, 0};
  return step;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Appends `value` as `digits` lowercase hex digits (Python prints escapes in
// lowercase).
void AppendHex(uint32_t value, int digits, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) {
    out->push_back(kHex[(value >> shift) & 0xF]);
  }
}

// bytes.decode("utf-8") as a check: the error is a ValueError with the
// UnicodeDecodeError message, including its "bytes in position 3-4" form
// for a truncated sequence.
Status ValidateUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const Utf8Step step = DecodeUtf8(text, i, /*allow_surrogates=*/false);
    if (step.reason.empty()) {
      i += step.len;
      continue;
    }
    std::string msg = "'utf-8' codec can't decode ";
    if (step.bad_len == 1) {
      msg += "byte 0x";
      AppendHex(static_cast<unsigned char>(text[i]), 2, &msg);
      msg += " in position " + std::to_string(i);
    } else {
      msg += "bytes in position " + std::to_string(i) + "-" + std::to_string(i + step.bad_len - 1);
    }
    msg += ": ";
    msg += step.reason;
    return ValueError(std::move(msg));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// str.isprintable()

// Code point ranges for which Python 3.11 (Unicode 14.0.0) says
// str.isprintable() is False: categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs
// other than the ASCII space. Generated with
//   [cp for cp in range(0x110000) if not chr(cp).isprintable()]
// collapsed into inclusive ranges.
struct CodeRange {
  char32_t first;
  char32_t last;
};
constexpr CodeRange kNonPrintable[] = {
    {0x0, 0x1F},         {0x7F, 0xA0},       {0xAD, 0xAD},       {0x378, 0x379},
    {0x380, 0x383},      {0x38B, 0x38B},     {0x38D, 0x38D},     {0x3A2, 0x3A2},
    {0x530, 0x530},      {0x557, 0x558},     {0x58B, 0x58C},     {0x590, 0x590},
    {0x5C8, 0x5CF},      {0x5EB, 0x5EE},     {0x5F5, 0x605},     {0x61C, 0x61C},
    {0x6DD, 0x6DD},      {0x70E, 0x70F},     {0x74B, 0x74C},     {0x7B2, 0x7BF},
    {0x7FB, 0x7FC},      {0x82E, 0x82F},     {0x83F, 0x83F},     {0x85C, 0x85D},
    {0x85F, 0x85F},      {0x86B, 0x86F},     {0x88F, 0x897},     {0x8E2, 0x8E2},
    {0x984, 0x984},      {0x98D, 0x98E},     {0x991, 0x992},     {0x9A9, 0x9A9},
    {0x9B1, 0x9B1},      {0x9B3, 0x9B5},     {0x9BA, 0x9BB},     {0x9C5, 0x9C6},
    {0x9C9, 0x9CA},      {0x9CF, 0x9D6},     {0x9D8, 0x9DB},     {0x9DE, 0x9DE},
    {0x9E4, 0x9E5},      {0x9FF, 0xA00},     {0xA04, 0xA04},     {0xA0B, 0xA0E},
    {0xA11, 0xA12},      {0xA29, 0xA29},     {0xA31, 0xA31},     {0xA34, 0xA34},
    {0xA37, 0xA37},      {0xA3A, 0xA3B},     {0xA3D, 0xA3D},     {0xA43, 0xA46},
    {0xA49, 0xA4A},      {0xA4E, 0xA50},     {0xA52, 0xA58},     {0xA5D, 0xA5D},
    {0xA5F, 0xA65},      {0xA77, 0xA80},     {0xA84, 0xA84},     {0xA8E, 0xA8E},
    {0xA92, 0xA92},      {0xAA9, 0xAA9},     {0xAB1, 0xAB1},     {0xAB4, 0xAB4},
    {0xABA, 0xABB},      {0xAC6, 0xAC6},     {0xACA, 0xACA},     {0xACE, 0xACF},
    {0xAD1, 0xADF},      {0xAE4, 0xAE5},     {0xAF2, 0xAF8},     {0xB00, 0xB00},
    {0xB04, 0xB04},      {0xB0D, 0xB0E},     {0xB11, 0xB12},     {0xB29, 0xB29},
    {0xB31, 0xB31},      {0xB34, 0xB34},     {0xB3A, 0xB3B},     {0xB45, 0xB46},
    {0xB49, 0xB4A},      {0xB4E, 0xB54},     {0xB58, 0xB5B},     {0xB5E, 0xB5E},
    {0xB64, 0xB65},      {0xB78, 0xB81},     {0xB84, 0xB84},     {0xB8B, 0xB8D},
    {0xB91, 0xB91},      {0xB96, 0xB98},     {0xB9B, 0xB9B},     {0xB9D, 0xB9D},
    {0xBA0, 0xBA2},      {0xBA5, 0xBA7},     {0xBAB, 0xBAD},     {0xBBA, 0xBBD},
    {0xBC3, 0xBC5},      {0xBC9, 0xBC9},     {0xBCE, 0xBCF},     {0xBD1, 0xBD6},
    {0xBD8, 0xBE5},      {0xBFB, 0xBFF},     {0xC0D, 0xC0D},     {0xC11, 0xC11},
    {0xC29, 0xC29},      {0xC3A, 0xC3B},     {0xC45, 0xC45},     {0xC49, 0xC49},
    {0xC4E, 0xC54},      {0xC57, 0xC57},     {0xC5B, 0xC5C},     {0xC5E, 0xC5F},
    {0xC64, 0xC65},      {0xC70, 0xC76},     {0xC8D, 0xC8D},     {0xC91, 0xC91},
    {0xCA9, 0xCA9},      {0xCB4, 0xCB4},     {0xCBA, 0xCBB},     {0xCC5, 0xCC5},
    {0xCC9, 0xCC9},      {0xCCE, 0xCD4},     {0xCD7, 0xCDC},     {0xCDF, 0xCDF},
    {0xCE4, 0xCE5},      {0xCF0, 0xCF0},     {0xCF3, 0xCFF},     {0xD0D, 0xD0D},
    {0xD11, 0xD11},      {0xD45, 0xD45},     {0xD49, 0xD49},     {0xD50, 0xD53},
    {0xD64, 0xD65},      {0xD80, 0xD80},     {0xD84, 0xD84},     {0xD97, 0xD99},
    {0xDB2, 0xDB2},      {0xDBC, 0xDBC},     {0xDBE, 0xDBF},     {0xDC7, 0xDC9},
    {0xDCB, 0xDCE},      {0xDD5, 0xDD5},     {0xDD7, 0xDD7},     {0xDE0, 0xDE5},
    {0xDF0, 0xDF1},      {0xDF5, 0xE00},     {0xE3B, 0xE3E},     {0xE5C, 0xE80},
    {0xE83, 0xE83},      {0xE85, 0xE85},     {0xE8B, 0xE8B},     {0xEA4, 0xEA4},
    {0xEA6, 0xEA6},      {0xEBE, 0xEBF},     {0xEC5, 0xEC5},     {0xEC7, 0xEC7},
    {0xECE, 0xECF},      {0xEDA, 0xEDB},     {0xEE0, 0xEFF},     {0xF48, 0xF48},
    {0xF6D, 0xF70},      {0xF98, 0xF98},     {0xFBD, 0xFBD},     {0xFCD, 0xFCD},
    {0xFDB, 0xFFF},      {0x10C6, 0x10C6},   {0x10C8, 0x10CC},   {0x10CE, 0x10CF},
    {0x1249, 0x1249},    {0x124E, 0x124F},   {0x1257, 0x1257},   {0x1259, 0x1259},
    {0x125E, 0x125F},    {0x1289, 0x1289},   {0x128E, 0x128F},   {0x12B1, 0x12B1},
    {0x12B6, 0x12B7},    {0x12BF, 0x12BF},   {0x12C1, 0x12C1},   {0x12C6, 0x12C7},
    {0x12D7, 0x12D7},    {0x1311, 0x1311},   {0x1316, 0x1317},   {0x135B, 0x135C},
    {0x137D, 0x137F},    {0x139A, 0x139F},   {0x13F6, 0x13F7},   {0x13FE, 0x13FF},
    {0x1680, 0x1680},    {0x169D, 0x169F},   {0x16F9, 0x16FF},   {0x1716, 0x171E},
    {0x1737, 0x173F},    {0x1754, 0x175F},   {0x176D, 0x176D},   {0x1771, 0x1771},
    {0x1774, 0x177F},    {0x17DE, 0x17DF},   {0x17EA, 0x17EF},   {0x17FA, 0x17FF},
    {0x180E, 0x180E},    {0x181A, 0x181F},   {0x1879, 0x187F},   {0x18AB, 0x18AF},
    {0x18F6, 0x18FF},    {0x191F, 0x191F},   {0x192C, 0x192F},   {0x193C, 0x193F},
    {0x1941, 0x1943},    {0x196E, 0x196F},   {0x1975, 0x197F},   {0x19AC, 0x19AF},
    {0x19CA, 0x19CF},    {0x19DB, 0x19DD},   {0x1A1C, 0x1A1D},   {0x1A5F, 0x1A5F},
    {0x1A7D, 0x1A7E},    {0x1A8A, 0x1A8F},   {0x1A9A, 0x1A9F},   {0x1AAE, 0x1AAF},
    {0x1ACF, 0x1AFF},    {0x1B4D, 0x1B4F},   {0x1B7F, 0x1B7F},   {0x1BF4, 0x1BFB},
    {0x1C38, 0x1C3A},    {0x1C4A, 0x1C4C},   {0x1C89, 0x1C8F},   {0x1CBB, 0x1CBC},
    {0x1CC8, 0x1CCF},    {0x1CFB, 0x1CFF},   {0x1F16, 0x1F17},   {0x1F1E, 0x1F1F},
    {0x1F46, 0x1F47},    {0x1F4E, 0x1F4F},   {0x1F58, 0x1F58},   {0x1F5A, 0x1F5A},
    {0x1F5C, 0x1F5C},    {0x1F5E, 0x1F5E},   {0x1F7E, 0x1F7F},   {0x1FB5, 0x1FB5},
    {0x1FC5, 0x1FC5},    {0x1FD4, 0x1FD5},   {0x1FDC, 0x1FDC},   {0x1FF0, 0x1FF1},
    {0x1FF5, 0x1FF5},    {0x1FFF, 0x200F},   {0x2028, 0x202F},   {0x205F, 0x206F},
    {0x2072, 0x2073},    {0x208F, 0x208F},   {0x209D, 0x209F},   {0x20C1, 0x20CF},
    {0x20F1, 0x20FF},    {0x218C, 0x218F},   {0x2427, 0x243F},   {0x244B, 0x245F},
    {0x2B74, 0x2B75},    {0x2B96, 0x2B96},   {0x2CF4, 0x2CF8},   {0x2D26, 0x2D26},
    {0x2D28, 0x2D2C},    {0x2D2E, 0x2D2F},   {0x2D68, 0x2D6E},   {0x2D71, 0x2D7E},
    {0x2D97, 0x2D9F},    {0x2DA7, 0x2DA7},   {0x2DAF, 0x2DAF},   {0x2DB7, 0x2DB7},
    {0x2DBF, 0x2DBF},    {0x2DC7, 0x2DC7},   {0x2DCF, 0x2DCF},   {0x2DD7, 0x2DD7},
    {0x2DDF, 0x2DDF},    {0x2E5E, 0x2E7F},   {0x2E9A, 0x2E9A},   {0x2EF4, 0x2EFF},
    {0x2FD6, 0x2FEF},    {0x2FFC, 0x3000},   {0x3040, 0x3040},   {0x3097, 0x3098},
    {0x3100, 0x3104},    {0x3130, 0x3130},   {0x318F, 0x318F},   {0x31E4, 0x31EF},
    {0x321F, 0x321F},    {0xA48D, 0xA48F},   {0xA4C7, 0xA4CF},   {0xA62C, 0xA63F},
    {0xA6F8, 0xA6FF},    {0xA7CB, 0xA7CF},   {0xA7D2, 0xA7D2},   {0xA7D4, 0xA7D4},
    {0xA7DA, 0xA7F1},    {0xA82D, 0xA82F},   {0xA83A, 0xA83F},   {0xA878, 0xA87F},
    {0xA8C6, 0xA8CD},    {0xA8DA, 0xA8DF},   {0xA954, 0xA95E},   {0xA97D, 0xA97F},
    {0xA9CE, 0xA9CE},    {0xA9DA, 0xA9DD},   {0xA9FF, 0xA9FF},   {0xAA37, 0xAA3F},
    {0xAA4E, 0xAA4F},    {0xAA5A, 0xAA5B},   {0xAAC3, 0xAADA},   {0xAAF7, 0xAB00},
    {0xAB07, 0xAB08},    {0xAB0F, 0xAB10},   {0xAB17, 0xAB1F},   {0xAB27, 0xAB27},
    {0xAB2F, 0xAB2F},    {0xAB6C, 0xAB6F},   {0xABEE, 0xABEF},   {0xABFA, 0xABFF},
    {0xD7A4, 0xD7AF},    {0xD7C7, 0xD7CA},   {0xD7FC, 0xF8FF},   {0xFA6E, 0xFA6F},
    {0xFADA, 0xFAFF},    {0xFB07, 0xFB12},   {0xFB18, 0xFB1C},   {0xFB37, 0xFB37},
    {0xFB3D, 0xFB3D},    {0xFB3F, 0xFB3F},   {0xFB42, 0xFB42},   {0xFB45, 0xFB45},
    {0xFBC3, 0xFBD2},    {0xFD90, 0xFD91},   {0xFDC8, 0xFDCE},   {0xFDD0, 0xFDEF},
    {0xFE1A, 0xFE1F},    {0xFE53, 0xFE53},   {0xFE67, 0xFE67},   {0xFE6C, 0xFE6F},
    {0xFE75, 0xFE75},    {0xFEFD, 0xFF00},   {0xFFBF, 0xFFC1},   {0xFFC8, 0xFFC9},
    {0xFFD0, 0xFFD1},    {0xFFD8, 0xFFD9},   {0xFFDD, 0xFFDF},   {0xFFE7, 0xFFE7},
    {0xFFEF, 0xFFFB},    {0xFFFE, 0xFFFF},   {0x1000C, 0x1000C}, {0x10027, 0x10027},
    {0x1003B, 0x1003B},  {0x1003E, 0x1003E}, {0x1004E, 0x1004F}, {0x1005E, 0x1007F},
    {0x100FB, 0x100FF},  {0x10103, 0x10106}, {0x10134, 0x10136}, {0x1018F, 0x1018F},
    {0x1019D, 0x1019F},  {0x101A1, 0x101CF}, {0x101FE, 0x1027F}, {0x1029D, 0x1029F},
    {0x102D1, 0x102DF},  {0x102FC, 0x102FF}, {0x10324, 0x1032C}, {0x1034B, 0x1034F},
    {0x1037B, 0x1037F},  {0x1039E, 0x1039E}, {0x103C4, 0x103C7}, {0x103D6, 0x103FF},
    {0x1049E, 0x1049F},  {0x104AA, 0x104AF}, {0x104D4, 0x104D7}, {0x104FC, 0x104FF},
    {0x10528, 0x1052F},  {0x10564, 0x1056E}, {0x1057B, 0x1057B}, {0x1058B, 0x1058B},
    {0x10593, 0x10593},  {0x10596, 0x10596}, {0x105A2, 0x105A2}, {0x105B2, 0x105B2},
    {0x105BA, 0x105BA},  {0x105BD, 0x105FF}, {0x10737, 0x1073F}, {0x10756, 0x1075F},
    {0x10768, 0x1077F},  {0x10786, 0x10786}, {0x107B1, 0x107B1}, {0x107BB, 0x107FF},
    {0x10806, 0x10807},  {0x10809, 0x10809}, {0x10836, 0x10836}, {0x10839, 0x1083B},
    {0x1083D, 0x1083E},  {0x10856, 0x10856}, {0x1089F, 0x108A6}, {0x108B0, 0x108DF},
    {0x108F3, 0x108F3},  {0x108F6, 0x108FA}, {0x1091C, 0x1091E}, {0x1093A, 0x1093E},
    {0x10940, 0x1097F},  {0x109B8, 0x109BB}, {0x109D0, 0x109D1}, {0x10A04, 0x10A04},
    {0x10A07, 0x10A0B},  {0x10A14, 0x10A14}, {0x10A18, 0x10A18}, {0x10A36, 0x10A37},
    {0x10A3B, 0x10A3E},  {0x10A49, 0x10A4F}, {0x10A59, 0x10A5F}, {0x10AA0, 0x10ABF},
    {0x10AE7, 0x10AEA},  {0x10AF7, 0x10AFF}, {0x10B36, 0x10B38}, {0x10B56, 0x10B57},
    {0x10B73, 0x10B77},  {0x10B92, 0x10B98}, {0x10B9D, 0x10BA8}, {0x10BB0, 0x10BFF},
    {0x10C49, 0x10C7F},  {0x10CB3, 0x10CBF}, {0x10CF3, 0x10CF9}, {0x10D28, 0x10D2F},
    {0x10D3A, 0x10E5F},  {0x10E7F, 0x10E7F}, {0x10EAA, 0x10EAA}, {0x10EAE, 0x10EAF},
    {0x10EB2, 0x10EFF},  {0x10F28, 0x10F2F}, {0x10F5A, 0x10F6F}, {0x10F8A, 0x10FAF},
    {0x10FCC, 0x10FDF},  {0x10FF7, 0x10FFF}, {0x1104E, 0x11051}, {0x11076, 0x1107E},
    {0x110BD, 0x110BD},  {0x110C3, 0x110CF}, {0x110E9, 0x110EF}, {0x110FA, 0x110FF},
    {0x11135, 0x11135},  {0x11148, 0x1114F}, {0x11177, 0x1117F}, {0x111E0, 0x111E0},
    {0x111F5, 0x111FF},  {0x11212, 0x11212}, {0x1123F, 0x1127F}, {0x11287, 0x11287},
    {0x11289, 0x11289},  {0x1128E, 0x1128E}, {0x1129E, 0x1129E}, {0x112AA, 0x112AF},
    {0x112EB, 0x112EF},  {0x112FA, 0x112FF}, {0x11304, 0x11304}, {0x1130D, 0x1130E},
    {0x11311, 0x11312},  {0x11329, 0x11329}, {0x11331, 0x11331}, {0x11334, 0x11334},
    {0x1133A, 0x1133A},  {0x11345, 0x11346}, {0x11349, 0x1134A}, {0x1134E, 0x1134F},
    {0x11351, 0x11356},  {0x11358, 0x1135C}, {0x11364, 0x11365}, {0x1136D, 0x1136F},
    {0x11375, 0x113FF},  {0x1145C, 0x1145C}, {0x11462, 0x1147F}, {0x114C8, 0x114CF},
    {0x114DA, 0x1157F},  {0x115B6, 0x115B7}, {0x115DE, 0x115FF}, {0x11645, 0x1164F},
    {0x1165A, 0x1165F},  {0x1166D, 0x1167F}, {0x116BA, 0x116BF}, {0x116CA, 0x116FF},
    {0x1171B, 0x1171C},  {0x1172C, 0x1172F}, {0x11747, 0x117FF}, {0x1183C, 0x1189F},
    {0x118F3, 0x118FE},  {0x11907, 0x11908}, {0x1190A, 0x1190B}, {0x11914, 0x11914},
    {0x11917, 0x11917},  {0x11936, 0x11936}, {0x11939, 0x1193A}, {0x11947, 0x1194F},
    {0x1195A, 0x1199F},  {0x119A8, 0x119A9}, {0x119D8, 0x119D9}, {0x119E5, 0x119FF},
    {0x11A48, 0x11A4F},  {0x11AA3, 0x11AAF}, {0x11AF9, 0x11BFF}, {0x11C09, 0x11C09},
    {0x11C37, 0x11C37},  {0x11C46, 0x11C4F}, {0x11C6D, 0x11C6F}, {0x11C90, 0x11C91},
    {0x11CA8, 0x11CA8},  {0x11CB7, 0x11CFF}, {0x11D07, 0x11D07}, {0x11D0A, 0x11D0A},
    {0x11D37, 0x11D39},  {0x11D3B, 0x11D3B}, {0x11D3E, 0x11D3E}, {0x11D48, 0x11D4F},
    {0x11D5A, 0x11D5F},  {0x11D66, 0x11D66}, {0x11D69, 0x11D69}, {0x11D8F, 0x11D8F},
    {0x11D92, 0x11D92},  {0x11D99, 0x11D9F}, {0x11DAA, 0x11EDF}, {0x11EF9, 0x11FAF},
    {0x11FB1, 0x11FBF},  {0x11FF2, 0x11FFE}, {0x1239A, 0x123FF}, {0x1246F, 0x1246F},
    {0x12475, 0x1247F},  {0x12544, 0x12F8F}, {0x12FF3, 0x12FFF}, {0x1342F, 0x143FF},
    {0x14647, 0x167FF},  {0x16A39, 0x16A3F}, {0x16A5F, 0x16A5F}, {0x16A6A, 0x16A6D},
    {0x16ABF, 0x16ABF},  {0x16ACA, 0x16ACF}, {0x16AEE, 0x16AEF}, {0x16AF6, 0x16AFF},
    {0x16B46, 0x16B4F},  {0x16B5A, 0x16B5A}, {0x16B62, 0x16B62}, {0x16B78, 0x16B7C},
    {0x16B90, 0x16E3F},  {0x16E9B, 0x16EFF}, {0x16F4B, 0x16F4E}, {0x16F88, 0x16F8E},
    {0x16FA0, 0x16FDF},  {0x16FE5, 0x16FEF}, {0x16FF2, 0x16FFF}, {0x187F8, 0x187FF},
    {0x18CD6, 0x18CFF},  {0x18D09, 0x1AFEF}, {0x1AFF4, 0x1AFF4}, {0x1AFFC, 0x1AFFC},
    {0x1AFFF, 0x1AFFF},  {0x1B123, 0x1B14F}, {0x1B153, 0x1B163}, {0x1B168, 0x1B16F},
    {0x1B2FC, 0x1BBFF},  {0x1BC6B, 0x1BC6F}, {0x1BC7D, 0x1BC7F}, {0x1BC89, 0x1BC8F},
    {0x1BC9A, 0x1BC9B},  {0x1BCA0, 0x1CEFF}, {0x1CF2E, 0x1CF2F}, {0x1CF47, 0x1CF4F},
    {0x1CFC4, 0x1CFFF},  {0x1D0F6, 0x1D0FF}, {0x1D127, 0x1D128}, {0x1D173, 0x1D17A},
    {0x1D1EB, 0x1D1FF},  {0x1D246, 0x1D2DF}, {0x1D2F4, 0x1D2FF}, {0x1D357, 0x1D35F},
    {0x1D379, 0x1D3FF},  {0x1D455, 0x1D455}, {0x1D49D, 0x1D49D}, {0x1D4A0, 0x1D4A1},
    {0x1D4A3, 0x1D4A4},  {0x1D4A7, 0x1D4A8}, {0x1D4AD, 0x1D4AD}, {0x1D4BA, 0x1D4BA},
    {0x1D4BC, 0x1D4BC},  {0x1D4C4, 0x1D4C4}, {0x1D506, 0x1D506}, {0x1D50B, 0x1D50C},
    {0x1D515, 0x1D515},  {0x1D51D, 0x1D51D}, {0x1D53A, 0x1D53A}, {0x1D53F, 0x1D53F},
    {0x1D545, 0x1D545},  {0x1D547, 0x1D549}, {0x1D551, 0x1D551}, {0x1D6A6, 0x1D6A7},
    {0x1D7CC, 0x1D7CD},  {0x1DA8C, 0x1DA9A}, {0x1DAA0, 0x1DAA0}, {0x1DAB0, 0x1DEFF},
    {0x1DF1F, 0x1DFFF},  {0x1E007, 0x1E007}, {0x1E019, 0x1E01A}, {0x1E022, 0x1E022},
    {0x1E025, 0x1E025},  {0x1E02B, 0x1E0FF}, {0x1E12D, 0x1E12F}, {0x1E13E, 0x1E13F},
    {0x1E14A, 0x1E14D},  {0x1E150, 0x1E28F}, {0x1E2AF, 0x1E2BF}, {0x1E2FA, 0x1E2FE},
    {0x1E300, 0x1E7DF},  {0x1E7E7, 0x1E7E7}, {0x1E7EC, 0x1E7EC}, {0x1E7EF, 0x1E7EF},
    {0x1E7FF, 0x1E7FF},  {0x1E8C5, 0x1E8C6}, {0x1E8D7, 0x1E8FF}, {0x1E94C, 0x1E94F},
    {0x1E95A, 0x1E95D},  {0x1E960, 0x1EC70}, {0x1ECB5, 0x1ED00}, {0x1ED3E, 0x1EDFF},
    {0x1EE04, 0x1EE04},  {0x1EE20, 0x1EE20}, {0x1EE23, 0x1EE23}, {0x1EE25, 0x1EE26},
    {0x1EE28, 0x1EE28},  {0x1EE33, 0x1EE33}, {0x1EE38, 0x1EE38}, {0x1EE3A, 0x1EE3A},
    {0x1EE3C, 0x1EE41},  {0x1EE43, 0x1EE46}, {0x1EE48, 0x1EE48}, {0x1EE4A, 0x1EE4A},
    {0x1EE4C, 0x1EE4C},  {0x1EE50, 0x1EE50}, {0x1EE53, 0x1EE53}, {0x1EE55, 0x1EE56},
    {0x1EE58, 0x1EE58},  {0x1EE5A, 0x1EE5A}, {0x1EE5C, 0x1EE5C}, {0x1EE5E, 0x1EE5E},
    {0x1EE60, 0x1EE60},  {0x1EE63, 0x1EE63}, {0x1EE65, 0x1EE66}, {0x1EE6B, 0x1EE6B},
    {0x1EE73, 0x1EE73},  {0x1EE78, 0x1EE78}, {0x1EE7D, 0x1EE7D}, {0x1EE7F, 0x1EE7F},
    {0x1EE8A, 0x1EE8A},  {0x1EE9C, 0x1EEA0}, {0x1EEA4, 0x1EEA4}, {0x1EEAA, 0x1EEAA},
    {0x1EEBC, 0x1EEEF},  {0x1EEF2, 0x1EFFF}, {0x1F02C, 0x1F02F}, {0x1F094, 0x1F09F},
    {0x1F0AF, 0x1F0B0},  {0x1F0C0, 0x1F0C0}, {0x1F0D0, 0x1F0D0}, {0x1F0F6, 0x1F0FF},
    {0x1F1AE, 0x1F1E5},  {0x1F203, 0x1F20F}, {0x1F23C, 0x1F23F}, {0x1F249, 0x1F24F},
    {0x1F252, 0x1F25F},  {0x1F266, 0x1F2FF}, {0x1F6D8, 0x1F6DC}, {0x1F6ED, 0x1F6EF},
    {0x1F6FD, 0x1F6FF},  {0x1F774, 0x1F77F}, {0x1F7D9, 0x1F7DF}, {0x1F7EC, 0x1F7EF},
    {0x1F7F1, 0x1F7FF},  {0x1F80C, 0x1F80F}, {0x1F848, 0x1F84F}, {0x1F85A, 0x1F85F},
    {0x1F888, 0x1F88F},  {0x1F8AE, 0x1F8AF}, {0x1F8B2, 0x1F8FF}, {0x1FA54, 0x1FA5F},
    {0x1FA6E, 0x1FA6F},  {0x1FA75, 0x1FA77}, {0x1FA7D, 0x1FA7F}, {0x1FA87, 0x1FA8F},
    {0x1FAAD, 0x1FAAF},  {0x1FABB, 0x1FABF}, {0x1FAC6, 0x1FACF}, {0x1FADA, 0x1FADF},
    {0x1FAE8, 0x1FAEF},  {0x1FAF7, 0x1FAFF}, {0x1FB93, 0x1FB93}, {0x1FBCB, 0x1FBEF},
    {0x1FBFA, 0x1FFFF},  {0x2A6E0, 0x2A6FF}, {0x2B739, 0x2B73F}, {0x2B81E, 0x2B81F},
    {0x2CEA2, 0x2CEAF},  {0x2EBE1, 0x2F7FF}, {0x2FA1E, 0x2FFFF}, {0x3134B, 0xE00FF},
    {0xE01F0, 0x10FFFF},
};

bool IsPrintable(char32_t cp) {
  const auto* end = std::end(kNonPrintable);
  const auto* it = std::upper_bound(std::begin(kNonPrintable), end, cp,
                                    [](char32_t c, const CodeRange& r) { return c < r.first; });
  if (it == std::begin(kNonPrintable)) return true;
  --it;
  return cp > it->last;
}

// ---------------------------------------------------------------------------
// Numbers

// float.__repr__ of a finite double. std::to_chars gives the shortest digits
// that round-trip (the same digits as Python's dtoa mode 0); Python then
// picks fixed notation for decimal exponents -4 <= exp < 16 and writes
// exponents with a sign and at least two digits.
std::string FloatRepr(double v) {
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  std::string digits(1, sci[0]);
  if (e > 1) digits.append(sci.substr(2, e - 2));
  int exp = 0;
  std::string_view exp_text = sci.substr(e + 1);
  const bool exp_negative = exp_text.front() == '-';
  if (exp_text.front() == '-' || exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  if (exp_negative) exp = -exp;

  const int ndigits = static_cast<int>(digits.size());
  if (exp >= -4 && exp < 16) {
    // Python's decpt is exp + 1: the position of the decimal point.
    const int decpt = exp + 1;
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= ndigits) {
      out += digits;
      out.append(static_cast<size_t>(decpt - ndigits), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<size_t>(decpt));
      out.push_back('.');
      out.append(digits, static_cast<size_t>(decpt));
    }
    return out;
  }
  out.push_back(digits[0]);
  if (ndigits > 1) {
    out.push_back('.');
    out.append(digits, 1);
  }
  out.push_back('e');
  out.push_back(exp < 0 ? '-' : '+');
  const int abs_exp = exp < 0 ? -exp : exp;
  if (abs_exp < 10) out.push_back('0');
  out += std::to_string(abs_exp);
  return out;
}

// A Python int or bool as sign and magnitude, so that every int64/uint64
// pair compares exactly.
struct Integer {
  bool negative = false;
  uint64_t magnitude = 0;
  bool operator==(const Integer&) const = default;
};

Integer ToInteger(const Json& v) {
  if (v.is_boolean()) return {false, v.get<bool>() ? 1u : 0u};
  if (v.is_number_unsigned()) return {false, v.get<uint64_t>()};
  const int64_t i = v.get<int64_t>();
  if (i >= 0) return {false, static_cast<uint64_t>(i)};
  // -(i + 1) cannot overflow, even for INT64_MIN.
  return {true, static_cast<uint64_t>(-(i + 1)) + 1};
}

// The integer equal to `d`, if there is one in [-2^63, 2^64).
std::optional<Integer> IntegralDouble(double d) {
  if (!std::isfinite(d) || d != std::trunc(d)) return std::nullopt;
  constexpr double kTwo63 = 9223372036854775808.0;
  constexpr double kTwo64 = 18446744073709551616.0;
  if (d >= 0) {
    if (d >= kTwo64) return std::nullopt;
    return Integer{false, static_cast<uint64_t>(d)};
  }
  if (-d > kTwo63) return std::nullopt;
  return Integer{true, static_cast<uint64_t>(-d)};
}

bool IsIntLike(const Json& v) {
  return v.is_boolean() || v.is_number_integer();
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// float() of a checked decimal literal: [-]digits-and-dot[e[+-]digits], with
// at least one mantissa digit. Correctly rounded, overflow to +-inf and
// underflow to +-0.0 as in Python.
double DecimalToDouble(std::string_view num) {
  double value = 0;
  const auto res = std::from_chars(num.data(), num.data() + num.size(), value);
  if (res.ec != std::errc::result_out_of_range) return value;
  // from_chars leaves `value` alone when out of range; the decimal exponent
  // of the leading significant digit tells overflow from underflow.
  const bool negative = num.front() == '-';
  if (negative) num.remove_prefix(1);
  const size_t e = num.find_first_of("eE");
  const std::string_view mantissa = num.substr(0, e);
  long long exp = 0;
  if (e != std::string_view::npos) {
    std::string_view exp_text = num.substr(e + 1);
    const bool exp_negative = exp_text.front() == '-';
    if (exp_text.front() == '-' || exp_text.front() == '+') exp_text.remove_prefix(1);
    // Saturate: anything past 10^9 is far beyond double's range anyway.
    for (char c : exp_text) exp = std::min(exp * 10 + (c - '0'), 1'000'000'000LL);
    if (exp_negative) exp = -exp;
  }
  const size_t dot = std::min(mantissa.find('.'), mantissa.size());
  const size_t first = mantissa.find_first_of("123456789");
  // Out of range implies a non-zero digit exists.
  const long long leading =
      first < dot ? static_cast<long long>(dot - first) - 1 : -static_cast<long long>(first - dot);
  const double magnitude = leading + exp > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  return negative ? -magnitude : magnitude;
}

// ---------------------------------------------------------------------------
// json.dumps

void DumpString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const Utf8Step step = DecodeForPrint(s, i);
    i += step.len;
    const char32_t cp = step.cp;
    switch (cp) {
      case '"':
        *out += "\\\"";
        continue;
      case '\\':
        *out += "\\\\";
        continue;
      case '\n':
        *out += "\\n";
        continue;
      case '\r':
        *out += "\\r";
        continue;
      case '\t':
        *out += "\\t";
        continue;
      case '\b':
        *out += "\\b";
        continue;
      case '\f':
        *out += "\\f";
        continue;
      default:
        break;
    }
    if (cp >= 0x20 && cp <= 0x7E) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x10000) {
      *out += "\\u";
      AppendHex(cp, 4, out);
    } else {
      const char32_t v = cp - 0x10000;
      *out += "\\u";
      AppendHex(0xD800 | (v >> 10), 4, out);
      *out += "\\u";
      AppendHex(0xDC00 | (v & 0x3FF), 4, out);
    }
  }
  out->push_back('"');
}

void DumpFloat(double v, std::string* out) {
  if (std::isnan(v)) {
    *out += "NaN";
  } else if (std::isinf(v)) {
    *out += v > 0 ? "Infinity" : "-Infinity";
  } else {
    *out += FloatRepr(v);
  }
}

void Dump(const Json& value, std::string* out) {
  switch (value.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      *out += "null";
      return;
    case Json::value_t::boolean:
      *out += value.get<bool>() ? "true" : "false";
      return;
    case Json::value_t::number_integer:
      *out += std::to_string(value.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      *out += std::to_string(value.get<uint64_t>());
      return;
    case Json::value_t::number_float:
      DumpFloat(value.get<double>(), out);
      return;
    case Json::value_t::string:
      DumpString(value.get_ref<const std::string&>(), out);
      return;
    case Json::value_t::binary: {
      out->push_back('[');
      bool first = true;
      for (uint8_t byte : value.get_binary()) {
        if (!first) *out += ", ";
        first = false;
        *out += std::to_string(byte);
      }
      out->push_back(']');
      return;
    }
    case Json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const Json& item : value) {
        if (!first) *out += ", ";
        first = false;
        Dump(item, out);
      }
      out->push_back(']');
      return;
    }
    case Json::value_t::object: {
      // Byte order of UTF-8 is code point order, which is how Python sorts
      // str keys.
      const auto& object = value.get_ref<const Json::object_t&>();
      std::vector<const Json::object_t::value_type*> items;
      items.reserve(object.size());
      for (const auto& item : object) items.push_back(&item);
      std::stable_sort(items.begin(), items.end(),
                       [](const auto* a, const auto* b) { return a->first < b->first; });
      out->push_back('{');
      bool first = true;
      for (const auto* item : items) {
        if (!first) *out += ", ";
        first = false;
        DumpString(item->first, out);
        *out += ": ";
        Dump(item->second, out);
      }
      out->push_back('}');
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// json.loads

// Python's recursion limit stops json.loads at a nesting depth a little under
// 1000 (995 from a fresh interpreter); a fixed bound keeps our recursion safe.
constexpr int kMaxJsonDepth = 990;

// Objects bigger than this get a hash index for duplicate-key lookups, so
// that parsing stays linear (ordered_map's own lookup is a linear scan).
constexpr size_t kIndexThreshold = 16;

bool IsJsonWhitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A port of CPython's C scanner (Modules/_json.c): same acceptance, same
// error messages at the same positions. It walks UTF-8 bytes where Python
// walks code points; every decision involves ASCII characters only, so the
// two agree, and positions are converted to code points when reported.
class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  Result<Json> Parse() {
    if (text_.starts_with("\xEF\xBB\xBF")) {
      return Fail("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0);
    }
    const size_t start = SkipWhitespace(0);
    Json value;
    size_t end = 0;
    if (!ParseValue(start, 0, &end, &value)) return std::move(*error_);
    end = SkipWhitespace(end);
    if (end != text_.size()) return Fail("Extra data", end);
    return value;
  }

 private:
  // Records an error in Python's format: "<msg>: line L column C (char P)".
  Error Fail(std::string_view msg, size_t byte_pos) {
    size_t char_pos = 0;
    size_t line = 1;
    size_t line_start = 0;  // char index just after the last '\n'
    for (size_t i = 0; i < byte_pos && i < text_.size(); ++i) {
      const auto b = static_cast<unsigned char>(text_[i]);
      if ((b & 0xC0) == 0x80) continue;  // continuation byte
      ++char_pos;
      if (b == '\n') {
        ++line;
        line_start = char_pos;
      }
    }
    std::string message(msg);
    message += ": line " + std::to_string(line) + " column " +
               std::to_string(char_pos - line_start + 1) + " (char " + std::to_string(char_pos) +
               ")";
    error_ = ValueError(std::move(message));
    return *error_;
  }

  bool FailBool(std::string_view msg, size_t byte_pos) {
    Fail(msg, byte_pos);
    return false;
  }

  size_t SkipWhitespace(size_t i) const {
    while (i < text_.size() && IsJsonWhitespace(text_[i])) ++i;
    return i;
  }

  bool At(size_t i, char c) const { return i < text_.size() && text_[i] == c; }

  // scan_once_unicode: a value starting exactly at `idx`.
  bool ParseValue(size_t idx, int depth, size_t* next, Json* out) {
    if (idx >= text_.size()) return FailBool("Expecting value", idx);
    const std::string_view rest = text_.substr(idx);
    // The literals Python's scanner accepts (NaN and the infinities included).
    static const std::pair<std::string_view, Json> kLiterals[] = {
        {"null", nullptr},
        {"true", true},
        {"false", false},
        {"NaN", std::numeric_limits<double>::quiet_NaN()},
        {"Infinity", std::numeric_limits<double>::infinity()},
        {"-Infinity", -std::numeric_limits<double>::infinity()},
    };
    for (const auto& [word, value] : kLiterals) {
      if (rest.starts_with(word)) {
        *out = value;
        *next = idx + word.size();
        return true;
      }
    }
    switch (text_[idx]) {
      case '"': {
        std::string s;
        if (!ParseString(idx + 1, next, &s)) return false;
        *out = std::move(s);
        return true;
      }
      case '{':
      case '[': {
        const bool is_object = text_[idx] == '{';
        if (depth >= kMaxJsonDepth) {
          error_ =
              ValueError(std::string("maximum recursion depth exceeded while decoding a JSON ") +
                         (is_object ? "object" : "array") + " from a unicode string");
          return false;
        }
        return is_object ? ParseObject(idx + 1, depth + 1, next, out)
                         : ParseArray(idx + 1, depth + 1, next, out);
      }
      default:
        break;
    }
    return ParseNumber(idx, next, out);
  }

  // _match_number_unicode: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?
  bool ParseNumber(size_t start, size_t* next, Json* out) {
    size_t idx = start;
    const size_t len = text_.size();
    if (At(idx, '-')) ++idx;
    if (idx < len && text_[idx] >= '1' && text_[idx] <= '9') {
      while (idx < len && IsDigit(text_[idx])) ++idx;
    } else if (At(idx, '0')) {
      ++idx;
    } else {
      return FailBool("Expecting value", start);
    }
    bool is_float = false;
    if (At(idx, '.') && idx + 1 < len && IsDigit(text_[idx + 1])) {
      is_float = true;
      idx += 2;
      while (idx < len && IsDigit(text_[idx])) ++idx;
    }
    if (At(idx, 'e') || At(idx, 'E')) {
      // Only an exponent with digits belongs to the number; otherwise the
      // 'e' is left for the caller to reject as extra data.
      size_t exp = idx + 1;
      if (At(exp, '-') || At(exp, '+')) ++exp;
      const size_t digits_start = exp;
      while (exp < len && IsDigit(text_[exp])) ++exp;
      if (exp > digits_start) {
        is_float = true;
        idx = exp;
      }
    }
    *next = idx;
    const std::string_view num = text_.substr(start, idx - start);
    if (is_float) {
      *out = DecimalToDouble(num);
      return true;
    }
    const bool negative = num.front() == '-';
    const std::string_view digits = negative ? num.substr(1) : num;
    uint64_t magnitude = 0;
    const auto res = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude);
    constexpr uint64_t kMinMagnitude = uint64_t{1} << 63;
    if (res.ec != std::errc() || (negative && magnitude > kMinMagnitude)) {
      return FailBool("Integer does not fit in 64 bits", start);
    }
    if (!negative || magnitude == 0) {
      *out = magnitude;
    } else if (magnitude == kMinMagnitude) {
      *out = std::numeric_limits<int64_t>::min();
    } else {
      *out = -static_cast<int64_t>(magnitude);
    }
    return true;
  }

  // scanstring_unicode: `end` is just past the opening quote.
  bool ParseString(size_t end, size_t* next_end, std::string* out) {
    const size_t begin = end - 1;
    const size_t len = text_.size();
    while (true) {
      size_t next = end;
      char c = 0;
      for (; next < len; ++next) {
        c = text_[next];
        if (c == '"' || c == '\\') break;
        if (static_cast<unsigned char>(c) <= 0x1F) {
          return FailBool("Invalid control character at", next);
        }
      }
      if (next >= len) return FailBool("Unterminated string starting at", begin);
      out->append(text_.substr(end, next - end));
      ++next;
      if (c == '"') {
        end = next;
        break;
      }
      if (next == len) return FailBool("Unterminated string starting at", begin);
      c = text_[next];
      if (c != 'u') {
        end = next + 1;
        switch (c) {
          case '"':
          case '\\':
          case '/':
            out->push_back(c);
            break;
          case 'b':
            out->push_back('\b');
            break;
          case 'f':
            out->push_back('\f');
            break;
          case 'n':
            out->push_back('\n');
            break;
          case 'r':
            out->push_back('\r');
            break;
          case 't':
            out->push_back('\t');
            break;
          default:
            return FailBool("Invalid \\escape", end - 2);
        }
        continue;
      }
      // \uXXXX, possibly the first half of a surrogate pair.
      const size_t u_pos = next;
      ++next;
      end = next + 4;
      if (end >= len) return FailBool("Invalid \\uXXXX escape", next - 1);
      char32_t cp = 0;
      if (!ReadHex4(next, &cp)) return FailBool("Invalid \\uXXXX escape", u_pos);
      next = end;
      if (cp >= 0xD800 && cp <= 0xDBFF && end + 6 < len && text_[next] == '\\' &&
          text_[next + 1] == 'u') {
        char32_t low = 0;
        if (!ReadHex4(next + 2, &low)) return FailBool("Invalid \\uXXXX escape", next + 1);
        if (low >= 0xDC00 && low <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          end += 6;
        }
      }
      if (cp >= 0xD800 && cp <= 0xDFFF) {
        // Python keeps lone surrogates in its str; UTF-8 cannot carry them.
        std::string msg = "Unpaired surrogate \\u";
        AppendHex(cp, 4, &msg);
        msg += " cannot be represented in UTF-8";
        return FailBool(msg, u_pos - 1);
      }
      AppendUtf8(cp, out);
    }
    *next_end = end;
    return true;
  }

  bool ReadHex4(size_t pos, char32_t* out) const {
    char32_t value = 0;
    for (size_t i = pos; i < pos + 4; ++i) {
      const int digit = HexValue(text_[i]);
      if (digit < 0) return false;
      value = (value << 4) | static_cast<char32_t>(digit);
    }
    *out = value;
    return true;
  }

  // _parse_object_unicode: `idx` is just past the '{'.
  bool ParseObject(size_t idx, int depth, size_t* next, Json* out) {
    *out = Json::object();
    auto& object = out->get_ref<Json::object_t&>();
    std::unordered_map<std::string, size_t> index;
    idx = SkipWhitespace(idx);
    if (!At(idx, '}')) {
      while (true) {
        if (!At(idx, '"')) {
          return FailBool("Expecting property name enclosed in double quotes", idx);
        }
        std::string key;
        if (!ParseString(idx + 1, &idx, &key)) return false;
        idx = SkipWhitespace(idx);
        if (!At(idx, ':')) return FailBool("Expecting ':' delimiter", idx);
        idx = SkipWhitespace(idx + 1);
        Json value;
        if (!ParseValue(idx, depth, &idx, &value)) return false;
        Insert(std::move(key), std::move(value), &object, &index);
        idx = SkipWhitespace(idx);
        if (At(idx, '}')) break;
        if (!At(idx, ',')) return FailBool("Expecting ',' delimiter", idx);
        idx = SkipWhitespace(idx + 1);
      }
    }
    *next = idx + 1;
    return true;
  }

  // dict[key] = value: a repeated key keeps its slot and takes the new value.
  static void Insert(std::string key, Json value, Json::object_t* object,
                     std::unordered_map<std::string, size_t>* index) {
    if (object->size() < kIndexThreshold) {
      for (auto& item : *object) {
        if (item.first == key) {
          item.second = std::move(value);
          return;
        }
      }
      object->emplace_back(std::move(key), std::move(value));
      if (object->size() == kIndexThreshold) {
        for (size_t i = 0; i < object->size(); ++i) index->emplace(object->begin()[i].first, i);
      }
      return;
    }
    const auto [it, inserted] = index->emplace(key, object->size());
    if (inserted) {
      object->emplace_back(std::move(key), std::move(value));
    } else {
      object->begin()[it->second].second = std::move(value);
    }
  }

  // _parse_array_unicode: `idx` is just past the '['.
  bool ParseArray(size_t idx, int depth, size_t* next, Json* out) {
    *out = Json::array();
    idx = SkipWhitespace(idx);
    if (!At(idx, ']')) {
      while (true) {
        Json value;
        if (!ParseValue(idx, depth, &idx, &value)) return false;
        out->push_back(std::move(value));
        idx = SkipWhitespace(idx);
        if (At(idx, ']')) break;
        if (!At(idx, ',')) return FailBool("Expecting ',' delimiter", idx);
        idx = SkipWhitespace(idx + 1);
      }
    }
    *next = idx + 1;
    return true;
  }

  std::string_view text_;
  std::optional<Error> error_;
};

// ---------------------------------------------------------------------------
// repr()

void ReprString(std::string_view s, std::string* out) {
  // str.__repr__ prefers single quotes, switching to double quotes only when
  // that avoids escaping.
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out->push_back(quote);
  for (size_t i = 0; i < s.size();) {
    const Utf8Step step = DecodeForPrint(s, i);
    const char32_t cp = step.cp;
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      *out += "\\t";
    } else if (cp == '\n') {
      *out += "\\n";
    } else if (cp == '\r') {
      *out += "\\r";
    } else if (cp < 0x20 || cp == 0x7F) {
      *out += "\\x";
      AppendHex(cp, 2, out);
    } else if (cp < 0x7F) {
      out->push_back(static_cast<char>(cp));
    } else if (IsPrintable(cp)) {
      if (step.len == 1) {
        AppendUtf8(cp, out);  // a replacement character for a bad byte
      } else {
        out->append(s.substr(i, step.len));
      }
    } else if (cp <= 0xFF) {
      *out += "\\x";
      AppendHex(cp, 2, out);
    } else if (cp <= 0xFFFF) {
      *out += "\\u";
      AppendHex(cp, 4, out);
    } else {
      *out += "\\U";
      AppendHex(cp, 8, out);
    }
    i += step.len;
  }
  out->push_back(quote);
}

// bytes.__repr__, for binary values.
void ReprBytes(const Json::binary_t& bytes, std::string* out) {
  const bool has_single = std::find(bytes.begin(), bytes.end(), '\'') != bytes.end();
  const bool has_double = std::find(bytes.begin(), bytes.end(), '"') != bytes.end();
  const char quote = has_single && !has_double ? '"' : '\'';
  *out += 'b';
  out->push_back(quote);
  for (uint8_t b : bytes) {
    if (b == static_cast<uint8_t>(quote) || b == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(b));
    } else if (b == '\t') {
      *out += "\\t";
    } else if (b == '\n') {
      *out += "\\n";
    } else if (b == '\r') {
      *out += "\\r";
    } else if (b < 0x20 || b >= 0x7F) {
      *out += "\\x";
      AppendHex(b, 2, out);
    } else {
      out->push_back(static_cast<char>(b));
    }
  }
  out->push_back(quote);
}

void Repr(const Json& value, std::string* out) {
  switch (value.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      *out += "None";
      return;
    case Json::value_t::boolean:
      *out += value.get<bool>() ? "True" : "False";
      return;
    case Json::value_t::number_integer:
      *out += std::to_string(value.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      *out += std::to_string(value.get<uint64_t>());
      return;
    case Json::value_t::number_float: {
      const double v = value.get<double>();
      if (std::isnan(v)) {
        *out += "nan";
      } else if (std::isinf(v)) {
        *out += v > 0 ? "inf" : "-inf";
      } else {
        *out += FloatRepr(v);
      }
      return;
    }
    case Json::value_t::string:
      ReprString(value.get_ref<const std::string&>(), out);
      return;
    case Json::value_t::binary:
      ReprBytes(value.get_binary(), out);
      return;
    case Json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const Json& item : value) {
        if (!first) *out += ", ";
        first = false;
        Repr(item, out);
      }
      out->push_back(']');
      return;
    }
    case Json::value_t::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, item] : value.get_ref<const Json::object_t&>()) {
        if (!first) *out += ", ";
        first = false;
        ReprString(key, out);
        *out += ": ";
        Repr(item, out);
      }
      out->push_back('}');
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// ==

// `nested` is true for container elements, where Python's identity shortcut
// makes the loaders' shared NaN equal to itself.
bool Equal(const Json& a, const Json& b, bool nested) {
  if (a.is_number_float() && b.is_number_float()) {
    const double x = a.get<double>();
    const double y = b.get<double>();
    if (nested && std::isnan(x) && std::isnan(y)) return true;
    return x == y;
  }
  if (IsIntLike(a) && IsIntLike(b)) return ToInteger(a) == ToInteger(b);
  if (a.is_number_float() && IsIntLike(b)) {
    const auto x = IntegralDouble(a.get<double>());
    return x && *x == ToInteger(b);
  }
  if (IsIntLike(a) && b.is_number_float()) return Equal(b, a, nested);

  const bool a_none = a.is_null() || a.is_discarded();
  const bool b_none = b.is_null() || b.is_discarded();
  if (a_none || b_none) return a_none && b_none;
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::string:
      return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    case Json::value_t::binary:
      return a.get_binary() == b.get_binary();
    case Json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!Equal(a[i], b[i], /*nested=*/true)) return false;
      }
      return true;
    }
    case Json::value_t::object: {
      if (a.size() != b.size()) return false;
      const auto& bo = b.get_ref<const Json::object_t&>();
      if (bo.size() < kIndexThreshold) {
        for (const auto& [key, value] : a.get_ref<const Json::object_t&>()) {
          const auto it = bo.find(key);
          if (it == bo.end() || !Equal(value, it->second, /*nested=*/true)) return false;
        }
        return true;
      }
      std::unordered_map<std::string_view, const Json*> index;
      for (const auto& [key, value] : bo) index.emplace(key, &value);
      for (const auto& [key, value] : a.get_ref<const Json::object_t&>()) {
        const auto it = index.find(key);
        if (it == index.end() || !Equal(value, *it->second, /*nested=*/true)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

std::string DumpsSorted(const Json& value) {
  std::string out;
  Dump(value, &out);
  return out;
}

Result<Json> ParseJson(std::string_view text) {
  if (Status utf8 = ValidateUtf8(text); !utf8.ok()) return std::move(utf8).error();
  return JsonParser(text).Parse();
}

std::string PyRepr(const Json& value) {
  std::string out;
  Repr(value, &out);
  return out;
}

std::string PyStr(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  return PyRepr(value);
}

std::string_view PyTypeName(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      return "NoneType";
    case Json::value_t::boolean:
      return "bool";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "int";
    case Json::value_t::number_float:
      return "float";
    case Json::value_t::string:
      return "str";
    case Json::value_t::array:
      return "list";
    case Json::value_t::object:
      return "dict";
    case Json::value_t::binary:
      return "bytes";
  }
  return "NoneType";
}

std::string PyTypeRepr(const Json& value) {
  std::string out = "<class '";
  out += PyTypeName(value);
  out += "'>";
  return out;
}

bool PyEqual(const Json& a, const Json& b) {
  return Equal(a, b, /*nested=*/false);
}

bool PyTruthy(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      return false;
    case Json::value_t::boolean:
      return value.get<bool>();
    case Json::value_t::number_integer:
      return value.get<int64_t>() != 0;
    case Json::value_t::number_unsigned:
      return value.get<uint64_t>() != 0;
    case Json::value_t::number_float:
      return value.get<double>() != 0;  // NaN != 0, so NaN is true
    case Json::value_t::string:
      return !value.get_ref<const std::string&>().empty();
    case Json::value_t::binary:
      return !value.get_binary().empty();
    case Json::value_t::array:
    case Json::value_t::object:
      return !value.empty();
  }
  return false;
}

std::optional<double> ParsePyFloat(std::string_view text) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return std::nullopt;
  text = text.substr(first, text.find_last_not_of(kSpace) - first + 1);
  const bool negative = text.front() == '-';
  if (text.front() == '-' || text.front() == '+') text.remove_prefix(1);
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "inf" || lower == "infinity") {
    return negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  if (lower == "nan") return std::numeric_limits<double>::quiet_NaN();
  // digits[.digits][e[+-]digits] with at least one mantissa digit.
  size_t i = 0;
  size_t mantissa_digits = 0;
  const auto skip_digits = [&] {
    const size_t start = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    mantissa_digits += i - start;
  };
  skip_digits();
  if (i < text.size() && text[i] == '.') {
    ++i;
    skip_digits();
  }
  if (mantissa_digits == 0) return std::nullopt;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    const size_t exp_start = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == exp_start) return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  const double value = DecimalToDouble(text);
  return negative ? -value : value;
}

}  // namespace strata::util
