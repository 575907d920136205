#include "util/yaml.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/pystring.h"

namespace strata::util {
namespace {

constexpr std::string_view kTagPrefix = "tag:yaml.org,2002:";

// Conversion recursion bound. yaml-cpp stops parsing near 500 levels, but
// aliases can stack already-deep nodes on top of each other.
constexpr int kMaxDepth = 1000;

// Node budget: aliases let a small document name a huge tree ("billion
// laughs"); PyYAML shares the objects, but Json copies them. Without aliases
// a document has fewer nodes than bytes, so only alias expansion can run out.
constexpr size_t kBaseNodeBudget = 100'000;
constexpr std::string_view kTooManyValues = "document expands to too many values through aliases";

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// "error at line L, column C: msg", yaml-cpp's wording without its prefix.
std::string AtMark(const YAML::Mark& mark, std::string_view msg) {
  if (mark.is_null()) return std::string(msg);
  return "error at line " + std::to_string(mark.line + 1) + ", column " +
         std::to_string(mark.column + 1) + ": " + std::string(msg);
}

// PyYAML's Reader refuses these code points anywhere in the stream (its
// NON_PRINTABLE class); yaml-cpp would accept them. `text` is valid UTF-8.
Status CheckPrintable(std::string_view text) {
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i < text.size();) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    char32_t cp = b0;
    size_t len = 1;
    if (b0 >= 0xF0) {
      len = 4;
      cp = 0x10000;  // every astral code point is allowed; the exact one is irrelevant
    } else if (b0 >= 0xE0) {
      len = 3;
      cp = ((b0 & 0x0Fu) << 12) | ((static_cast<unsigned char>(text[i + 1]) & 0x3Fu) << 6) |
           (static_cast<unsigned char>(text[i + 2]) & 0x3Fu);
    } else if (b0 >= 0xC0) {
      len = 2;
      cp = ((b0 & 0x1Fu) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu);
    }
    const bool allowed = cp == '\t' || cp == '\n' || cp == '\r' || (cp >= 0x20 && cp <= 0x7E) ||
                         cp == 0x85 || (cp >= 0xA0 && cp != 0xFFFE && cp != 0xFFFF);
    if (!allowed) {
      static constexpr char kHex[] = "0123456789abcdef";
      std::string hex;
      for (int shift = 12; shift >= 0; shift -= 4) hex.push_back(kHex[(cp >> shift) & 0xF]);
      return ValueError("error at line " + std::to_string(line) + ", column " +
                        std::to_string(column) + ": unacceptable character #x" + hex +
                        ": special characters are not allowed");
    }
    if (cp == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += len;
  }
  return Status::Ok();
}

// yaml-cpp 0.7 writes the \N and \_ escapes of double-quoted scalars as the
// bare Latin-1 bytes 0x85 and 0xA0. Everything else in a scalar is UTF-8
// (the input was checked), so a byte 0x80-0xBF where a character should
// start is one of those and is re-encoded as U+0080-U+00BF.
std::string RepairEscapes(const std::string& text) {
  if (CheckUtf8(text).ok()) return text;
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b >= 0x80 && b < 0xC0) {
      out.push_back(static_cast<char>(0xC2));
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    const size_t len = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
    out.append(text, i, len);
    i += len;
  }
  return out;
}

// A Python int as sign and magnitude; PyYAML's ints are unbounded, ours must
// fit int64 or uint64.
struct BigInt {
  bool negative = false;
  uint64_t magnitude = 0;
};

Json IntToJson(const BigInt& v) {
  if (!v.negative || v.magnitude == 0) return Json(v.magnitude);
  if (v.magnitude == uint64_t{1} << 63) return Json(std::numeric_limits<int64_t>::min());
  return Json(-static_cast<int64_t>(v.magnitude));
}

bool FitsJson(const BigInt& v) {
  return !v.negative || v.magnitude <= uint64_t{1} << 63;
}

// magnitude * factor + addend, false on uint64 overflow.
bool MulAdd(uint64_t* magnitude, uint64_t factor, uint64_t addend) {
  uint64_t product = 0;
  if (__builtin_mul_overflow(*magnitude, factor, &product)) return false;
  return !__builtin_add_overflow(product, addend, magnitude);
}

int DigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

// Python's int(text, base) for the inputs PyYAML hands it (underscores are
// already gone): surrounding whitespace, a sign, the base's 0b/0o/0x prefix.
// `scalar` is the YAML text, for the overflow message.
Result<BigInt> PyInt(std::string_view text, int base, std::string_view scalar) {
  const std::string literal(text);
  auto invalid = [&]() -> Error {
    return ValueError("invalid literal for int() with base " + std::to_string(base) + ": " +
                      PyRepr(Json(literal)));
  };
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return invalid();
  text = text.substr(first, text.find_last_not_of(kSpace) - first + 1);
  BigInt out;
  if (text.front() == '-' || text.front() == '+') {
    out.negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.size() > 2 && text[0] == '0') {
    const char p = static_cast<char>(std::tolower(static_cast<unsigned char>(text[1])));
    if ((base == 2 && p == 'b') || (base == 8 && p == 'o') || (base == 16 && p == 'x')) {
      text.remove_prefix(2);
    }
  }
  if (text.empty()) return invalid();
  for (char c : text) {
    const int digit = DigitValue(c);
    if (digit >= base) return invalid();
    if (!MulAdd(&out.magnitude, static_cast<uint64_t>(base), static_cast<uint64_t>(digit))) {
      return ValueError("integer " + std::string(scalar) + " does not fit in 64 bits");
    }
  }
  return out;
}

std::string WithoutUnderscores(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c != '_') out.push_back(c);
  }
  return out;
}

// SafeConstructor.construct_yaml_int.
Result<BigInt> ConstructInt(std::string_view scalar) {
  std::string value = WithoutUnderscores(scalar);
  if (value.empty()) return ValueError("string index out of range");
  bool negative = false;
  if (value[0] == '-' || value[0] == '+') {
    negative = value[0] == '-';
    value.erase(0, 1);
  }
  Result<BigInt> result = BigInt{};
  if (value == "0") {
    return BigInt{};
  } else if (value.starts_with("0b")) {
    result = PyInt(std::string_view(value).substr(2), 2, scalar);
  } else if (value.starts_with("0x")) {
    result = PyInt(std::string_view(value).substr(2), 16, scalar);
  } else if (!value.empty() && value[0] == '0') {
    result = PyInt(value, 8, scalar);
  } else if (value.find(':') != std::string::npos) {
    // Base 60, most significant part first: "1:30" is 90.
    BigInt sum;
    std::string_view rest = value;
    while (true) {
      const size_t colon = rest.find(':');
      Result<BigInt> part = PyInt(rest.substr(0, colon), 10, scalar);
      if (!part) return part.error();
      if (part->negative && part->magnitude != 0) {
        return ValueError("negative base-60 digit in " + std::string(scalar));
      }
      if (!MulAdd(&sum.magnitude, 60, part->magnitude)) {
        return ValueError("integer " + std::string(scalar) + " does not fit in 64 bits");
      }
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
    result = sum;
  } else {
    result = PyInt(value, 10, scalar);
  }
  if (!result) return result;
  // sign * int(...): the inner value may carry its own sign.
  if (negative) result->negative = !result->negative;
  if (result->magnitude == 0) result->negative = false;
  if (!FitsJson(*result)) {
    return ValueError("integer " + std::string(scalar) + " does not fit in 64 bits");
  }
  return result;
}

// SafeConstructor.construct_yaml_float.
Result<double> ConstructFloat(std::string_view scalar) {
  std::string value = WithoutUnderscores(scalar);
  for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (value.empty()) return ValueError("string index out of range");
  double sign = 1;
  if (value[0] == '-' || value[0] == '+') {
    if (value[0] == '-') sign = -1;
    value.erase(0, 1);
  }
  auto py_float = [](std::string_view text) -> Result<double> {
    if (auto v = ParsePyFloat(text)) return *v;
    return ValueError("could not convert string to float: " + PyRepr(Json(std::string(text))));
  };
  if (value == ".inf") return sign * std::numeric_limits<double>::infinity();
  if (value == ".nan") return std::numeric_limits<double>::quiet_NaN();
  if (value.find(':') != std::string::npos) {
    // Same arithmetic as PyYAML, least significant part first, so that the
    // rounding matches.
    std::vector<double> parts;
    std::string_view rest = value;
    while (true) {
      const size_t colon = rest.find(':');
      Result<double> part = py_float(rest.substr(0, colon));
      if (!part) return part.error();
      parts.push_back(*part);
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
    double sum = 0;
    double base = 1;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      sum += *it * base;
      base *= 60;
    }
    return sign * sum;
  }
  Result<double> v = py_float(value);
  if (!v) return v;
  return sign * *v;
}

// SafeConstructor.construct_yaml_bool, which accepts any case when the tag
// is explicit.
std::optional<bool> ConstructBool(std::string_view scalar) {
  std::string value(scalar);
  for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (value == "yes" || value == "true" || value == "on") return true;
  if (value == "no" || value == "false" || value == "off") return false;
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// PyYAML's implicit resolvers (resolver.py), as hand-written matchers.

bool IsBoolWord(std::string_view s) {
  static constexpr std::string_view kWords[] = {"yes",  "Yes",  "YES",  "no",    "No",    "NO",
                                                "true", "True", "TRUE", "false", "False", "FALSE",
                                                "on",   "On",   "ON",   "off",   "Off",   "OFF"};
  return std::find(std::begin(kWords), std::end(kWords), s) != std::end(kWords);
}

bool IsNullWord(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

size_t SkipDigitsAndUnderscores(std::string_view s, size_t i) {
  while (i < s.size() && (IsDigit(s[i]) || s[i] == '_')) ++i;
  return i;
}

// (?:[eE][-+][0-9]+)?$ from position i.
bool MatchExponentTail(std::string_view s, size_t i) {
  if (i == s.size()) return true;
  if (s[i] != 'e' && s[i] != 'E') return false;
  if (i + 2 >= s.size() || (s[i + 1] != '-' && s[i + 1] != '+')) return false;
  for (i += 2; i < s.size(); ++i) {
    if (!IsDigit(s[i])) return false;
  }
  return true;
}

// (?::[0-5]?[0-9])+ from position i; on success *i is past the last group.
// A group is followed by ':', '.' or the end, so it is exactly one digit or
// two digits starting 0-5.
bool MatchBase60Groups(std::string_view s, size_t* i) {
  size_t pos = *i;
  if (pos >= s.size() || s[pos] != ':') return false;
  while (pos < s.size() && s[pos] == ':') {
    size_t end = pos + 1;
    while (end < s.size() && IsDigit(s[end])) ++end;
    const size_t n = end - pos - 1;
    if (n == 0 || n > 2 || (n == 2 && s[pos + 1] > '5')) return false;
    pos = end;
  }
  *i = pos;
  return true;
}

bool MatchFloat(std::string_view s) {
  std::string_view unsigned_part = s;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) unsigned_part.remove_prefix(1);
  if (unsigned_part == ".inf" || unsigned_part == ".Inf" || unsigned_part == ".INF") return true;
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return true;
  // \.[0-9][0-9_]*(?:[eE][-+][0-9]+)?  -- no sign allowed.
  if (s.size() >= 2 && s[0] == '.' && IsDigit(s[1])) {
    return MatchExponentTail(s, SkipDigitsAndUnderscores(s, 2));
  }
  // [-+]?[0-9][0-9_]* then either \.[0-9_]*(exponent)? or base-60 \.[0-9_]*
  size_t i = s.size() - unsigned_part.size();
  if (i >= s.size() || !IsDigit(s[i])) return false;
  i = SkipDigitsAndUnderscores(s, i + 1);
  if (i < s.size() && s[i] == '.') return MatchExponentTail(s, SkipDigitsAndUnderscores(s, i + 1));
  if (!MatchBase60Groups(s, &i)) return false;
  if (i >= s.size() || s[i] != '.') return false;
  return SkipDigitsAndUnderscores(s, i + 1) == s.size();
}

bool MatchInt(std::string_view s) {
  size_t i = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  const std::string_view u = s.substr(i);
  if (u.empty()) return false;
  auto all_of = [](std::string_view t, auto pred) {
    return !t.empty() && std::all_of(t.begin(), t.end(), pred);
  };
  if (u.starts_with("0b")) {
    return all_of(u.substr(2), [](char c) { return c == '0' || c == '1' || c == '_'; });
  }
  if (u.starts_with("0x")) {
    return all_of(u.substr(2), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == '_';
    });
  }
  if (u[0] == '0') {
    return u.size() == 1 ||
           all_of(u.substr(1), [](char c) { return (c >= '0' && c <= '7') || c == '_'; });
  }
  if (u[0] < '1' || u[0] > '9') return false;
  i = SkipDigitsAndUnderscores(s, i + 1);
  if (i == s.size()) return true;
  return MatchBase60Groups(s, &i) && i == s.size();
}

// ---------------------------------------------------------------------------
// Construction

// What a node's tag asks for, after yaml-cpp's "?" (plain, untagged) and
// "!" (quoted or explicitly non-specific) markers.
enum class Kind { kPlain, kStr, kInt, kFloat, kBool, kNull, kSeq, kMap, kVerbatim, kOther };

Kind KindOfTag(const std::string& tag) {
  if (tag == "?" || tag.empty()) return Kind::kPlain;
  if (tag == "!") return Kind::kStr;
  if (!std::string_view(tag).starts_with(kTagPrefix)) return Kind::kOther;
  const std::string_view name = std::string_view(tag).substr(kTagPrefix.size());
  if (name == "str") return Kind::kStr;
  if (name == "int") return Kind::kInt;
  if (name == "float") return Kind::kFloat;
  if (name == "bool") return Kind::kBool;
  if (name == "null") return Kind::kNull;
  if (name == "seq") return Kind::kSeq;
  if (name == "map") return Kind::kMap;
  // A timestamp has no JSON form; its text is the closest thing.
  if (name == "timestamp") return Kind::kVerbatim;
  return Kind::kOther;
}

std::string_view NodeId(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "sequence";
    case YAML::NodeType::Map:
      return "mapping";
    default:
      return "scalar";
  }
}

// Tags SafeConstructor knows whose values JSON cannot hold.
bool IsUnrepresentableTag(const std::string& tag) {
  return tag == "tag:yaml.org,2002:binary" || tag == "tag:yaml.org,2002:set" ||
         tag == "tag:yaml.org,2002:omap" || tag == "tag:yaml.org,2002:pairs";
}

class Converter {
 public:
  explicit Converter(size_t input_size) : budget_(kBaseNodeBudget + 16 * input_size) {}

  Result<Json> Convert(const YAML::Node& node, int depth) {
    if (depth > kMaxDepth) return Fail(node, "maximum nesting depth exceeded");
    if (budget_ == 0) return Fail(node, kTooManyValues);
    --budget_;
    const std::string& tag = node.Tag();
    const Kind kind = KindOfTag(tag);
    if (IsUnrepresentableTag(tag)) {
      return Fail(node, "cannot represent a value tagged '" + tag + "' as JSON");
    }
    if (kind == Kind::kOther) {
      return Fail(node, "could not determine a constructor for the tag '" + tag + "'");
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return Json(nullptr);
      case YAML::NodeType::Scalar:
        return ConvertScalar(node, kind, /*is_key=*/false);
      case YAML::NodeType::Sequence:
        if (kind != Kind::kPlain && kind != Kind::kSeq) return WrongNode(node, kind);
        return ConvertSequence(node, depth);
      case YAML::NodeType::Map:
        if (kind != Kind::kPlain && kind != Kind::kMap) return WrongNode(node, kind);
        return ConvertMap(node, depth);
    }
    return Json(nullptr);
  }

 private:
  using Pairs = std::vector<std::pair<YAML::Node, YAML::Node>>;

  static Error Fail(const YAML::Node& node, std::string_view msg) {
    return ValueError(AtMark(node.Mark(), msg));
  }

  static Error WrongNode(const YAML::Node& node, Kind kind) {
    const std::string_view expected = kind == Kind::kSeq   ? "a sequence"
                                      : kind == Kind::kMap ? "a mapping"
                                                           : "a scalar";
    return Fail(node, "expected " + std::string(expected) + " node, but found " +
                          std::string(NodeId(node)));
  }

  // A scalar node, typed by its tag or, when plain, by the resolvers.
  static Result<Json> ConvertScalar(const YAML::Node& node, Kind kind, bool is_key) {
    const std::string& text = node.Scalar();
    if (kind == Kind::kPlain) return ResolvePlain(node, text, is_key);
    switch (kind) {
      case Kind::kStr:
      case Kind::kVerbatim:
        return Json(RepairEscapes(text));
      case Kind::kNull:
        return Json(nullptr);
      case Kind::kBool:
        if (auto b = ConstructBool(text)) return Json(*b);
        return Fail(node, "invalid boolean " + PyRepr(Json(text)));
      case Kind::kInt: {
        Result<BigInt> v = ConstructInt(text);
        if (!v) return Fail(node, v.error().message);
        return IntToJson(*v);
      }
      case Kind::kFloat: {
        Result<double> v = ConstructFloat(text);
        if (!v) return Fail(node, v.error().message);
        return Json(*v);
      }
      default:
        return WrongNode(node, kind);
    }
  }

  // BaseResolver.resolve for a plain scalar: resolvers are tried in
  // registration order (bool, float, int, merge, null, timestamp, value).
  static Result<Json> ResolvePlain(const YAML::Node& node, const std::string& text, bool is_key) {
    if (IsBoolWord(text)) return Json(*ConstructBool(text));
    if (MatchFloat(text)) return ConvertScalar(node, Kind::kFloat, is_key);
    if (MatchInt(text)) return ConvertScalar(node, Kind::kInt, is_key);
    if (IsNullWord(text)) return Json(nullptr);
    // As a key, "=" becomes a string (flatten_mapping retags it); as a value
    // SafeConstructor has no constructor for it, nor for a "<<" outside a
    // key position.
    if (text == "=" && !is_key) {
      return Fail(node, "could not determine a constructor for the tag 'tag:yaml.org,2002:value'");
    }
    if (text == "<<") {
      return Fail(node, "could not determine a constructor for the tag 'tag:yaml.org,2002:merge'");
    }
    return Json(text);
  }

  Result<Json> ConvertSequence(const YAML::Node& node, int depth) {
    if (Status s = Enter(node); !s.ok()) return std::move(s).error();
    Json out = Json::array();
    for (const YAML::Node& item : node) {
      Result<Json> value = Convert(item, depth + 1);
      if (!value) return value;
      out.push_back(std::move(*value));
    }
    stack_.pop_back();
    return out;
  }

  // Cycle check: a recursive alias would make an infinite Json.
  Status Enter(const YAML::Node& node) {
    for (const YAML::Node& open : stack_) {
      if (open.is(node)) return Fail(node, "recursive aliases cannot be represented as JSON");
    }
    stack_.push_back(node);
    return Status::Ok();
  }

  static bool IsMergeKey(const YAML::Node& key) {
    if (!key.IsScalar()) return false;
    if (key.Tag() == "tag:yaml.org,2002:merge") return true;
    return key.Tag() == "?" && key.Scalar() == "<<";
  }

  // SafeConstructor.flatten_mapping: the pairs of `node` with "<<" entries
  // replaced by the merged mappings' pairs, placed first so that the
  // mapping's own keys win. In a list of merged mappings the first wins.
  Status Flatten(const YAML::Node& node, int depth, Pairs* out) {
    if (depth > kMaxDepth) return Fail(node, "maximum nesting depth exceeded");
    if (Status s = Enter(node); !s.ok()) return s;
    Pairs merge;
    Pairs own;
    for (const auto& item : node) {
      const YAML::Node key = item.first;
      const YAML::Node value = item.second;
      if (!IsMergeKey(key)) {
        own.emplace_back(key, value);
        continue;
      }
      if (value.IsMap()) {
        if (Status s = Flatten(value, depth + 1, &merge); !s.ok()) return s;
      } else if (value.IsSequence()) {
        std::vector<Pairs> submerge;
        for (const YAML::Node& sub : value) {
          if (!sub.IsMap()) {
            return Fail(sub,
                        "while constructing a mapping: expected a mapping for merging, "
                        "but found " +
                            std::string(NodeId(sub)));
          }
          submerge.emplace_back();
          if (Status s = Flatten(sub, depth + 1, &submerge.back()); !s.ok()) return s;
        }
        for (auto it = submerge.rbegin(); it != submerge.rend(); ++it) {
          merge.insert(merge.end(), it->begin(), it->end());
        }
      } else {
        return Fail(value,
                    "while constructing a mapping: expected a mapping or list of mappings for "
                    "merging, but found " +
                        std::string(NodeId(value)));
      }
    }
    stack_.pop_back();
    // Merging aliases of aliases multiplies pairs just like nesting them.
    const size_t added = merge.size() + own.size();
    if (added > budget_) return Fail(node, kTooManyValues);
    budget_ -= added;
    out->insert(out->end(), merge.begin(), merge.end());
    out->insert(out->end(), own.begin(), own.end());
    return Status::Ok();
  }

  // The key of a Python dict entry. `identity` says which Python keys are
  // equal (1 == 1.0 == True hash alike); `json_key` is what json.dumps would
  // write for the first of them.
  struct Key {
    std::string identity;
    std::string json_key;
    std::string repr;  // for messages
  };

  Result<Key> ConvertKey(const YAML::Node& node) {
    if (node.IsSequence() || node.IsMap()) {
      return Fail(node, "while constructing a mapping: found unhashable key");
    }
    Json k;
    if (node.IsScalar()) {
      const std::string& tag = node.Tag();
      // flatten_mapping retags "=" keys (tag:yaml.org,2002:value) as str.
      Kind kind = tag == "tag:yaml.org,2002:value" ? Kind::kStr : KindOfTag(tag);
      if (IsUnrepresentableTag(tag)) {
        return Fail(node, "cannot represent a value tagged '" + tag + "' as JSON");
      }
      if (kind == Kind::kOther) {
        return Fail(node, "could not determine a constructor for the tag '" + tag + "'");
      }
      Result<Json> converted = ConvertScalar(node, kind, /*is_key=*/true);
      if (!converted) return converted.error();
      k = std::move(*converted);
    }
    if (k.is_string()) return Key{"s" + k.get<std::string>(), k.get<std::string>(), PyRepr(k)};
    if (k.is_null()) return Key{"n", "null", "None"};
    std::string identity;
    if (k.is_number_float()) {
      const double d = k.get<double>();
      if (std::isnan(d)) {
        identity = "nan";  // PyYAML's .nan is one shared object
      } else if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 0x1p64) {
        identity = IntIdentity(d < 0, static_cast<uint64_t>(std::fabs(d)));
      } else {
        identity = "f" + DumpsSorted(k);
      }
    } else if (k.is_boolean()) {
      identity = IntIdentity(false, k.get<bool>() ? 1 : 0);
    } else if (k.is_number_unsigned()) {
      identity = IntIdentity(false, k.get<uint64_t>());
    } else {
      const int64_t i = k.get<int64_t>();
      identity = IntIdentity(
          i < 0, i < 0 ? static_cast<uint64_t>(-(i + 1)) + 1 : static_cast<uint64_t>(i));
    }
    return Key{std::move(identity), DumpsSorted(k), PyRepr(k)};
  }

  static std::string IntIdentity(bool negative, uint64_t magnitude) {
    if (magnitude == 0) return "i0";
    return (negative ? "i-" : "i") + std::to_string(magnitude);
  }

  Result<Json> ConvertMap(const YAML::Node& node, int depth) {
    Pairs pairs;
    if (Status s = Flatten(node, depth, &pairs); !s.ok()) return std::move(s).error();
    if (Status s = Enter(node); !s.ok()) return std::move(s).error();
    Json out = Json::object();
    auto& object = out.get_ref<Json::object_t&>();
    std::unordered_map<std::string, size_t> slot_of_identity;
    std::unordered_map<std::string, std::string> repr_of_json_key;
    for (const auto& [key_node, value_node] : pairs) {
      Result<Key> key = ConvertKey(key_node);
      if (!key) return key.error();
      Result<Json> value = Convert(value_node, depth + 1);
      if (!value) return value;
      const auto slot = slot_of_identity.find(key->identity);
      if (slot != slot_of_identity.end()) {
        object.begin()[slot->second].second = std::move(*value);
        continue;
      }
      const auto [it, inserted] = repr_of_json_key.emplace(key->json_key, key->repr);
      if (!inserted) {
        return Fail(key_node, "mapping keys " + it->second + " and " + key->repr +
                                  " would both be written as the JSON key " +
                                  DumpsSorted(Json(key->json_key)));
      }
      slot_of_identity.emplace(key->identity, object.size());
      object.emplace_back(std::move(key->json_key), std::move(*value));
    }
    stack_.pop_back();
    return out;
  }

  size_t budget_;
  std::vector<YAML::Node> stack_;
};

Result<Json> Load(std::string_view text) {
  const std::vector<YAML::Node> docs = YAML::LoadAll(std::string(text));
  if (docs.empty()) return Json(nullptr);
  if (docs.size() > 1) {
    return ValueError(AtMark(docs[1].Mark(),
                             "expected a single document in the stream, but found another "
                             "document"));
  }
  return Converter(text.size()).Convert(docs[0], 0);
}

}  // namespace

Result<Json> LoadYaml(std::string_view text) {
  if (Status s = CheckUtf8(text); !s.ok()) return std::move(s).error();
  if (Status s = CheckPrintable(text); !s.ok()) return std::move(s).error();
  try {
    return Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp 0.7 labels this error "bad file".
    return ValueError(AtMark(e.mark, "maximum nesting depth exceeded"));
  } catch (const YAML::Exception& e) {
    return ValueError(AtMark(e.mark, e.msg));
  } catch (const std::exception& e) {
    return ValueError(std::string("cannot load YAML: ") + e.what());
  }
}

}  // namespace strata::util
