#include "pyinstall/requirement.h"

#include <cctype>
#include <regex>
#include <utility>
#include <variant>

#include "pyinstall/pep508_text.h"

namespace strata::pyinstall {
namespace {

bool IsWs(char c) {
  return c == ' ' || c == '\t';
}

std::size_t CodePoints(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The version part of packaging's Specifier regex for each operator (its
// look-behinds choose the branch); matched at the start, case-insensitively.
const std::regex& VersionPattern(std::string_view op) {
  static const std::string kPre = R"((?:[-_\.]?(alpha|beta|preview|pre|a|b|c|rc)[-_\.]?[0-9]*)?)";
  static const std::string kPost = R"((?:(?:-[0-9]+)|(?:[-_\.]?(post|rev|r)[-_\.]?[0-9]*))?)";
  static const std::string kDev = R"((?:[-_\.]?dev[-_\.]?[0-9]*)?)";
  static const std::string kStart = R"(\s*v?(?:[0-9]+!)?[0-9]+)";
  constexpr auto kFlags = std::regex::ECMAScript | std::regex::icase;
  static const std::regex kArbitrary(R"(\s*[^\s;)]*)", kFlags);
  static const std::regex kEquality(kStart + R"((?:\.[0-9]+)*(?:\.\*|)" + kPre + kPost + kDev +
                                        R"((?:\+[a-z0-9]+(?:[-_\.][a-z0-9]+)*)?)?)",
                                    kFlags);
  static const std::regex kCompatible(kStart + R"((?:\.[0-9]+)+)" + kPre + kPost + kDev, kFlags);
  static const std::regex kOrdered(kStart + R"((?:\.[0-9]+)*)" + kPre + kPost + kDev, kFlags);
  if (op == "===") return kArbitrary;
  if (op == "==" || op == "!=") return kEquality;
  if (op == "~=") return kCompatible;
  return kOrdered;
}

class RequirementParser {
 public:
  explicit RequirementParser(std::string_view text) : s_(text) {}

  util::Result<Requirement> Parse() {
    Requirement req;
    if (!ParseAll(req)) {
      return util::ValueError("Invalid requirement '" + std::string(s_) + "': " + problem_.message +
                              " at position " +
                              std::to_string(CodePoints(s_.substr(0, problem_.start))));
    }
    return req;
  }

 private:
  bool ParseAll(Requirement& req) {
    SkipWs();
    std::optional<std::string> name = TakeIdentifier();
    if (!name) return Fail("Expected package name at the start of dependency specifier", pos_);
    req.name = std::move(*name);
    SkipWs();
    if (!ParseExtras(req)) return false;
    SkipWs();
    if (!ParseDetails(req)) return false;
    if (pos_ != s_.size()) return Fail("Expected end of dependency specifier", pos_);
    return true;
  }

  bool ParseExtras(Requirement& req) {
    if (!AtChar('[')) return true;
    std::size_t open = pos_++;
    SkipWs();
    if (std::optional<std::string> extra = TakeIdentifier()) {
      req.extras.insert(std::move(*extra));
      for (;;) {
        SkipWs();
        std::size_t here = pos_;
        if (TakeIdentifier()) return Fail("Expected comma between extra names", here);
        if (!AtChar(',')) break;
        ++pos_;
        SkipWs();
        extra = TakeIdentifier();
        if (!extra) return Fail("Expected extra name after comma", pos_);
        req.extras.insert(std::move(*extra));
      }
    }
    SkipWs();
    if (!AtChar(']')) {
      return Fail("Expected matching RIGHT_BRACKET for LEFT_BRACKET, after extras", open);
    }
    ++pos_;
    return true;
  }

  bool ParseDetails(Requirement& req) {
    if (AtChar('@')) {
      ++pos_;
      SkipWs();
      std::size_t url_start = pos_;
      while (pos_ < s_.size() && !IsWs(s_[pos_])) ++pos_;
      if (pos_ == url_start) return Fail("Expected URL after @", pos_);
      req.url = std::string(s_.substr(url_start, pos_ - url_start));
      if (pos_ == s_.size()) return true;
      SkipWs();
      if (pos_ == s_.size()) return true;
      return ParseMarkerPart(req, url_start, "URL and whitespace");
    }
    std::size_t spec_start = pos_;
    std::string spec;
    if (!ParseSpecifier(spec)) return false;
    util::Result<SpecifierSet> set = SpecifierSet::Parse(spec);
    if (!set) return Fail(set.error().message, spec_start);
    req.specifier = std::move(*set);
    SkipWs();
    if (pos_ == s_.size()) return true;
    return ParseMarkerPart(
        req, spec_start,
        spec.empty() ? "name and no valid version specifier" : "version specifier");
  }

  // specifier = "(" ws? version_many ws? ")" | ws? version_many ws?
  bool ParseSpecifier(std::string& spec) {
    if (AtChar('(')) {
      std::size_t open = pos_++;
      SkipWs();
      if (!ParseVersionMany(spec)) return false;
      SkipWs();
      if (!AtChar(')')) {
        return Fail(
            "Expected matching RIGHT_PARENTHESIS for LEFT_PARENTHESIS, after version "
            "specifier",
            open);
      }
      ++pos_;
      return true;
    }
    SkipWs();
    if (!ParseVersionMany(spec)) return false;
    SkipWs();
    return true;
  }

  // version_many = (SPECIFIER (ws? "," ws? SPECIFIER)*)?
  bool ParseVersionMany(std::string& spec) {
    for (;;) {
      std::size_t start = pos_;
      std::optional<std::size_t> length = MatchSpecifier();
      if (!length) return true;
      spec += s_.substr(pos_, *length);
      pos_ += *length;
      if (s_.substr(pos_, 2) == ".*") {
        return Fail(".* suffix can only be used with `==` or `!=` operators", start, pos_ + 1);
      }
      static const std::regex kLocalTrail(R"(\+[a-z0-9]+(?:[-_\.][a-z0-9]+)*)");
      if (std::regex_search(s_.begin() + pos_, s_.end(), kLocalTrail,
                            std::regex_constants::match_continuous)) {
        return Fail("Local version label can only be used with `==` or `!=` operators", start);
      }
      SkipWs();
      if (!AtChar(',')) return true;
      spec += ',';
      ++pos_;
      SkipWs();
    }
  }

  // The length of the SPECIFIER token at pos_: the first operator, in
  // packaging's order, that a matching version follows.
  std::optional<std::size_t> MatchSpecifier() const {
    for (std::string_view op : {"~=", "==", "!=", "<=", ">=", "<", ">", "==="}) {
      if (s_.substr(pos_, op.size()) != op) continue;
      std::match_results<std::string_view::const_iterator> match;
      if (std::regex_search(s_.begin() + pos_ + op.size(), s_.end(), match, VersionPattern(op),
                            std::regex_constants::match_continuous)) {
        return op.size() + static_cast<std::size_t>(match.length(0));
      }
    }
    return std::nullopt;
  }

  // requirement_marker = ";" marker ws?
  bool ParseMarkerPart(Requirement& req, std::size_t span_start, std::string_view after) {
    if (!AtChar(';')) {
      return Fail("Expected end or semicolon (after " + std::string(after) + ")", span_start);
    }
    ++pos_;
    std::variant<Marker, Marker::SyntaxProblem> marker = Marker::ParsePrefix(s_, &pos_);
    if (auto* problem = std::get_if<Marker::SyntaxProblem>(&marker)) {
      problem_ = std::move(*problem);
      return false;
    }
    req.marker = std::get<Marker>(std::move(marker));
    SkipWs();
    return true;
  }

  // IDENTIFIER: \b[a-zA-Z0-9][a-zA-Z0-9._-]*\b, backtracking to a boundary.
  std::optional<std::string> TakeIdentifier() {
    if (pos_ >= s_.size() || !std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
        !AtWordBoundary(s_, pos_)) {
      return std::nullopt;
    }
    std::size_t end = pos_ + 1;
    while (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) ||
                               s_[end] == '.' || s_[end] == '_' || s_[end] == '-')) {
      ++end;
    }
    while (end > pos_ && !AtWordBoundary(s_, end)) --end;
    if (end == pos_) return std::nullopt;
    std::string identifier(s_.substr(pos_, end - pos_));
    pos_ = end;
    return identifier;
  }

  void SkipWs() {
    while (pos_ < s_.size() && IsWs(s_[pos_])) ++pos_;
  }
  bool AtChar(char c) const { return pos_ < s_.size() && s_[pos_] == c; }

  bool Fail(std::string message, std::size_t start, std::optional<std::size_t> end = {}) {
    problem_ = {std::move(message), start, end.value_or(pos_)};
    return false;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  Marker::SyntaxProblem problem_;
};

}  // namespace

std::string NormalizeName(std::string_view name) {
  std::string out;
  for (std::size_t i = 0; i < name.size();) {
    if (name[i] == '-' || name[i] == '_' || name[i] == '.') {
      while (i < name.size() && (name[i] == '-' || name[i] == '_' || name[i] == '.')) ++i;
      out += '-';
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(name[i++])));
    }
  }
  return out;
}

util::Result<Requirement> Requirement::Parse(std::string_view text) {
  return RequirementParser(text).Parse();
}

std::string Requirement::ToString() const {
  std::string out = name;
  if (!extras.empty()) {
    out += '[';
    for (const std::string& extra : extras) {
      if (out.back() != '[') out += ',';
      out += extra;
    }
    out += ']';
  }
  out += specifier.ToString();
  if (!url.empty()) {
    out += "@ " + url;
    if (marker) out += ' ';
  }
  if (marker) out += "; " + marker->ToString();
  return out;
}

}  // namespace strata::pyinstall
