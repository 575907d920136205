#include "pyinstall/version.h"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

namespace strata::pyinstall {
namespace {

// Python's str.isspace() for ASCII, which `\s` and strip() use.
bool IsSpace(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
bool IsAlnum(char c) {
  return IsDigit(c) || (Lower(c) >= 'a' && Lower(c) <= 'z');
}
bool IsSeparator(char c) {
  return c == '-' || c == '_' || c == '.';
}

std::string_view Strip(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string LowerString(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

bool StartsWithIgnoreCase(std::string_view s, std::size_t pos, std::string_view word) {
  if (s.size() - pos < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (Lower(s[pos + i]) != word[i]) return false;
  }
  return true;
}

std::size_t SkipDigits(std::string_view s, std::size_t pos) {
  while (pos < s.size() && IsDigit(s[pos])) ++pos;
  return pos;
}

// The grammar is PEP 440's regular expression as `packaging` writes it. Each
// optional part lists the ways it can match in the order Python's regex
// engine tries them, and Match() takes the first combination that reaches
// the end, so ambiguous inputs ("1.0a-1") get the captures Python gets.
// Digit runs are always taken whole: no part may start with a digit, so a
// shorter run can never lead to a match.

// One way an optional part matches: where it ends and what it captured.
struct Piece {
  std::size_t end = 0;
  bool present = false;
  std::string_view word;    // the letters ("alpha", "post", ...)
  std::string_view number;  // digits, possibly empty
};

// `[-_\.]?`: with the separator first, then without.
std::vector<std::size_t> OptionalSeparator(std::string_view s, std::size_t pos) {
  if (pos < s.size() && IsSeparator(s[pos])) return {pos + 1, pos};
  return {pos};
}

// `sep? word sep? digits?` for each word, in alternation order.
void AddLabelled(std::string_view s, std::size_t pos, std::initializer_list<std::string_view> words,
                 std::vector<Piece>& out) {
  for (std::size_t p1 : OptionalSeparator(s, pos)) {
    for (std::string_view word : words) {
      if (!StartsWithIgnoreCase(s, p1, word)) continue;
      for (std::size_t p3 : OptionalSeparator(s, p1 + word.size())) {
        std::size_t p4 = SkipDigits(s, p3);
        out.push_back({p4, true, s.substr(p1, word.size()), s.substr(p3, p4 - p3)});
        if (p4 != p3) out.push_back({p3, true, s.substr(p1, word.size()), {}});
      }
    }
  }
}

std::vector<Piece> PreRelease(std::string_view s, std::size_t pos) {
  std::vector<Piece> out;
  AddLabelled(s, pos, {"a", "b", "c", "rc", "alpha", "beta", "pre", "preview"}, out);
  out.push_back({pos});
  return out;
}

std::vector<Piece> PostRelease(std::string_view s, std::size_t pos) {
  std::vector<Piece> out;
  if (pos < s.size() && s[pos] == '-') {
    std::size_t end = SkipDigits(s, pos + 1);
    if (end > pos + 1) out.push_back({end, true, {}, s.substr(pos + 1, end - pos - 1)});
  }
  AddLabelled(s, pos, {"post", "rev", "r"}, out);
  out.push_back({pos});
  return out;
}

std::vector<Piece> DevRelease(std::string_view s, std::size_t pos) {
  std::vector<Piece> out;
  AddLabelled(s, pos, {"dev"}, out);
  out.push_back({pos});
  return out;
}

// `\+[a-z0-9]+([-_\.][a-z0-9]+)*`, taken whole: only spaces may follow it.
std::vector<Piece> Local(std::string_view s, std::size_t pos) {
  std::vector<Piece> out;
  if (pos < s.size() && s[pos] == '+') {
    std::size_t end = pos + 1;
    while (end < s.size() && IsAlnum(s[end])) ++end;
    if (end > pos + 1) {
      while (end + 1 < s.size() && IsSeparator(s[end]) && IsAlnum(s[end + 1])) {
        end += 1;
        while (end < s.size() && IsAlnum(s[end])) ++end;
      }
      out.push_back({end, true, s.substr(pos + 1, end - pos - 1)});
    }
  }
  out.push_back({pos});
  return out;
}

// What a specifier's operator lets its version contain.
struct Grammar {
  bool local = true;
  bool wildcard = false;        // ".*" instead of dev and local
  std::size_t min_release = 1;  // `~=` needs two release numbers
};

struct Captures {
  std::string_view epoch;  // empty when absent
  std::string_view release;
  Piece pre, post, dev, local;
  bool wildcard = false;
};

bool OnlySpaceFrom(std::string_view s, std::size_t pos) {
  return Strip(s.substr(pos)).empty();
}

// `\s* v? (N!)? N(.N)* pre? post? (dev? local? | \.\*)? \s*` over all of `s`.
std::optional<Captures> Match(std::string_view s, const Grammar& grammar) {
  std::size_t pos = 0;
  while (pos < s.size() && IsSpace(s[pos])) ++pos;
  if (pos < s.size() && Lower(s[pos]) == 'v') ++pos;
  Captures c;
  std::size_t digits_end = SkipDigits(s, pos);
  if (digits_end > pos && digits_end < s.size() && s[digits_end] == '!') {
    c.epoch = s.substr(pos, digits_end - pos);
    pos = digits_end + 1;
  }
  std::size_t end = SkipDigits(s, pos);
  if (end == pos) return std::nullopt;
  std::size_t parts = 1;
  while (end + 1 < s.size() && s[end] == '.' && IsDigit(s[end + 1])) {
    end = SkipDigits(s, end + 1);
    ++parts;
  }
  if (parts < grammar.min_release) return std::nullopt;
  c.release = s.substr(pos, end - pos);

  for (const Piece& pre : PreRelease(s, end)) {
    for (const Piece& post : PostRelease(s, pre.end)) {
      for (const Piece& dev : DevRelease(s, post.end)) {
        for (const Piece& local : Local(s, dev.end)) {
          if (local.present && !grammar.local) continue;
          if (OnlySpaceFrom(s, local.end)) {
            c.pre = pre;
            c.post = post;
            c.dev = dev;
            c.local = local;
            return c;
          }
        }
      }
      if (grammar.wildcard && s.substr(post.end, 2) == ".*" && OnlySpaceFrom(s, post.end + 2)) {
        c.pre = pre;
        c.post = post;
        c.wildcard = true;
        return c;
      }
    }
  }
  return std::nullopt;
}

// Python's int() of ASCII digits; "" is the implicit 0.
std::optional<std::uint64_t> ToNumber(std::string_view digits) {
  std::uint64_t value = 0;
  for (char c : digits) {
    auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

util::Error InvalidVersion(std::string_view text) {
  return util::ValueError("Invalid version: '" + std::string(text) + "'");
}

util::Error InvalidSpecifier(std::string_view text) {
  return util::ValueError("Invalid specifier: '" + std::string(text) + "'");
}

std::vector<std::uint64_t> StripTrailingZeros(std::vector<std::uint64_t> release) {
  while (!release.empty() && release.back() == 0) release.pop_back();
  return release;
}

template <class T>
std::strong_ordering CompareSequences(const std::vector<T>& a, const std::vector<T>& b) {
  return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
}

// `packaging`'s keys: absent parts sort as -infinity or +infinity, so they
// become a rank in front of the value.
std::pair<int, std::pair<char, std::uint64_t>> PreKey(
    const std::optional<std::pair<char, std::uint64_t>>& pre, bool post, bool dev) {
  if (!pre && !post && dev) return {0, {}};  // 1.0.dev1 sorts before 1.0a1
  if (!pre) return {2, {}};
  return {1, *pre};
}

}  // namespace

util::Result<Version> Version::Parse(std::string_view text) {
  std::optional<Captures> c = Match(text, Grammar{});
  if (!c) return InvalidVersion(text);
  Version v;
  auto number = [&](std::string_view digits, std::uint64_t& out) {
    std::optional<std::uint64_t> n = ToNumber(digits);
    if (n) out = *n;
    return n.has_value();
  };
  if (!number(c->epoch, v.epoch_)) return InvalidVersion(text);
  std::string_view release = c->release;
  while (true) {
    std::size_t dot = release.find('.');
    std::uint64_t n = 0;
    if (!number(release.substr(0, dot), n)) return InvalidVersion(text);
    v.release_.push_back(n);
    if (dot == std::string_view::npos) break;
    release.remove_prefix(dot + 1);
  }
  if (c->pre.present) {
    std::string word = LowerString(c->pre.word);
    char kind = word == "a" || word == "alpha" ? 'a' : word == "b" || word == "beta" ? 'b' : 'c';
    Pre pre{kind, 0};
    if (!number(c->pre.number, pre.number)) return InvalidVersion(text);
    v.pre_ = pre;
  }
  if (c->post.present) {
    std::uint64_t n = 0;
    if (!number(c->post.number, n)) return InvalidVersion(text);
    v.post_ = n;
  }
  if (c->dev.present) {
    std::uint64_t n = 0;
    if (!number(c->dev.number, n)) return InvalidVersion(text);
    v.dev_ = n;
  }
  if (c->local.present) {
    std::string_view local = c->local.word;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= local.size(); ++i) {
      if (i < local.size() && !IsSeparator(local[i])) continue;
      std::string_view part = local.substr(start, i - start);
      LocalPart lp{false, 0, {}};
      if (std::all_of(part.begin(), part.end(), IsDigit)) {
        lp.is_number = true;
        if (!number(part, lp.number)) return InvalidVersion(text);
      } else {
        lp.text = LowerString(part);
      }
      v.local_.push_back(std::move(lp));
      start = i + 1;
    }
  }
  return v;
}

std::string Version::BaseVersion() const {
  std::string out;
  if (epoch_ != 0) out += std::to_string(epoch_) + "!";
  for (std::size_t i = 0; i < release_.size(); ++i) {
    if (i > 0) out += '.';
    out += std::to_string(release_[i]);
  }
  return out;
}

std::string Version::Public() const {
  std::string out = BaseVersion();
  if (pre_)
    out += (pre_->kind == 'c' ? "rc" : std::string(1, pre_->kind)) + std::to_string(pre_->number);
  if (post_) out += ".post" + std::to_string(*post_);
  if (dev_) out += ".dev" + std::to_string(*dev_);
  return out;
}

std::string Version::ToString() const {
  std::string out = Public();
  for (std::size_t i = 0; i < local_.size(); ++i) {
    out += i == 0 ? '+' : '.';
    out += local_[i].is_number ? std::to_string(local_[i].number) : local_[i].text;
  }
  return out;
}

Version Version::WithoutLocal() const {
  Version v = *this;
  v.local_.clear();
  return v;
}

Version Version::BaseOnly() const {
  Version v;
  v.epoch_ = epoch_;
  v.release_ = release_;
  return v;
}

std::vector<std::string> Version::PrefixSegments() const {
  std::vector<std::string> out{std::to_string(epoch_)};
  for (std::uint64_t n : release_) out.push_back(std::to_string(n));
  if (pre_) {
    out.push_back((pre_->kind == 'c' ? "rc" : std::string(1, pre_->kind)) +
                  std::to_string(pre_->number));
  }
  if (post_) out.push_back("post" + std::to_string(*post_));
  if (dev_) out.push_back("dev" + std::to_string(*dev_));
  return out;
}

std::strong_ordering operator<=>(const Version& a, const Version& b) {
  if (auto c = a.epoch_ <=> b.epoch_; c != 0) return c;
  if (auto c = CompareSequences(StripTrailingZeros(a.release_), StripTrailingZeros(b.release_));
      c != 0) {
    return c;
  }
  auto pre = [](const Version& v) {
    std::optional<std::pair<char, std::uint64_t>> p;
    if (v.pre_) p = std::pair(v.pre_->kind, v.pre_->number);
    return PreKey(p, v.post_.has_value(), v.dev_.has_value());
  };
  if (auto c = pre(a) <=> pre(b); c != 0) return c;
  // Absent post sorts first, absent dev last.
  auto post = [](const Version& v) { return std::pair(v.post_.has_value(), v.post_.value_or(0)); };
  if (auto c = post(a) <=> post(b); c != 0) return c;
  auto dev = [](const Version& v) { return std::pair(!v.dev_.has_value(), v.dev_.value_or(0)); };
  if (auto c = dev(a) <=> dev(b); c != 0) return c;
  // No local sorts first; within one, numbers sort above strings.
  if (a.local_.empty() || b.local_.empty()) return !a.local_.empty() <=> !b.local_.empty();
  std::size_t n = std::min(a.local_.size(), b.local_.size());
  for (std::size_t i = 0; i < n; ++i) {
    const Version::LocalPart& x = a.local_[i];
    const Version::LocalPart& y = b.local_[i];
    if (auto c = x.is_number <=> y.is_number; c != 0) return c;
    if (auto c = x.is_number ? x.number <=> y.number : x.text <=> y.text; c != 0) return c;
  }
  return a.local_.size() <=> b.local_.size();
}

util::Result<SpecifierSet::Clause> SpecifierSet::ParseClause(std::string_view text) {
  // `packaging`'s regex tries "==" before "===", but no version can start
  // with '=', so the longer operator wins whenever it is there.
  static constexpr std::array<std::string_view, 8> kOperators = {
      "===", "~=", "==", "!=", "<=", ">=", "<", ">"};
  std::string_view body = Strip(text);
  Clause clause;
  for (std::string_view op : kOperators) {
    if (body.substr(0, op.size()) == op) {
      clause.op = std::string(op);
      break;
    }
  }
  if (clause.op.empty()) return InvalidSpecifier(text);
  std::string_view rest = body.substr(clause.op.size());
  clause.version = std::string(Strip(rest));
  if (clause.op == "===") {
    // Any text without spaces; compared as a string.
    if (std::any_of(clause.version.begin(), clause.version.end(), IsSpace)) {
      return InvalidSpecifier(text);
    }
    if (auto v = Version::Parse(clause.version)) clause.parsed = *v;
    return clause;
  }
  Grammar grammar;
  grammar.local = clause.op == "==" || clause.op == "!=";
  grammar.wildcard = grammar.local;
  grammar.min_release = clause.op == "~=" ? 2 : 1;
  std::optional<Captures> c = Match(rest, grammar);
  if (!c) return InvalidSpecifier(text);
  clause.wildcard = c->wildcard;
  std::string_view version = clause.version;
  if (clause.wildcard) version.remove_suffix(2);
  util::Result<Version> parsed = Version::Parse(version);
  if (!parsed) return InvalidSpecifier(text);  // a number beyond 64 bits
  clause.parsed = *std::move(parsed);
  return clause;
}

util::Result<SpecifierSet> SpecifierSet::Parse(std::string_view text) {
  SpecifierSet set;
  // `packaging` keeps a set of clauses: equal ones (same operator, versions
  // equal up to trailing zeros, except for `~=`) appear once, the first kept.
  std::vector<std::pair<std::string, std::string>> seen;
  while (true) {
    std::size_t comma = text.find(',');
    std::string_view item = Strip(text.substr(0, comma));
    if (!item.empty()) {
      util::Result<Clause> clause = ParseClause(item);
      if (!clause) return clause.error();
      std::string canonical = clause->version;
      if (clause->op != "===" && !clause->wildcard) {
        Version v = *clause->parsed;
        if (clause->op != "~=") {
          v.release_ = StripTrailingZeros(v.release_);
          if (v.release_.empty()) v.release_.push_back(0);
        }
        canonical = v.ToString();
      }
      std::pair key(clause->op, canonical);
      if (std::find(seen.begin(), seen.end(), key) == seen.end()) {
        seen.push_back(std::move(key));
        set.clauses_.push_back(*std::move(clause));
      }
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return set;
}

namespace {

// `packaging`'s prefix match: `prospective` cut to the length of `spec`,
// its release padded with zeros when shorter.
bool PrefixMatches(std::vector<std::string> prospective, const std::vector<std::string>& spec,
                   std::size_t prospective_release, std::size_t spec_release) {
  if (prospective_release < spec_release) {
    prospective.insert(prospective.begin() + static_cast<std::ptrdiff_t>(prospective_release),
                       spec_release - prospective_release, "0");
  }
  if (prospective.size() > spec.size()) prospective.resize(spec.size());
  return prospective == spec;
}

}  // namespace

bool SpecifierSet::ClauseContains(const Clause& clause, const Version& version) const {
  const std::string& op = clause.op;
  if (op == "===") return LowerString(version.ToString()) == LowerString(clause.version);
  const Version& spec = *clause.parsed;
  Version public_version = version.WithoutLocal();
  // Release lengths count the epoch, the first segment.
  auto prefix_match = [&](const std::vector<std::string>& segments, std::size_t release) {
    return PrefixMatches(public_version.PrefixSegments(), segments,
                         public_version.release_.size() + 1, release);
  };
  if (op == "==" || op == "!=") {
    bool equal;
    if (clause.wildcard) {
      equal = prefix_match(spec.PrefixSegments(), spec.release_.size() + 1);
    } else {
      equal = spec.has_local() ? version == spec : public_version == spec;
    }
    return op == "==" ? equal : !equal;
  }
  if (op == "~=") {
    std::vector<std::string> prefix = spec.BaseOnly().PrefixSegments();
    prefix.pop_back();
    return public_version >= spec && prefix_match(prefix, prefix.size());
  }
  if (op == "<=") return public_version <= spec;
  if (op == ">=") return public_version >= spec;
  bool same_base = version.BaseOnly() == spec.BaseOnly();
  if (op == "<") {
    // `<1.7` excludes 1.7's pre-releases unless it names one.
    return version < spec && !(!spec.is_prerelease() && version.is_prerelease() && same_base);
  }
  // ">": `>1.7` excludes 1.7's post-releases unless it names one, and 1.7+local.
  if (!(version > spec)) return false;
  if (!spec.is_postrelease() && version.is_postrelease() && same_base) return false;
  return !(version.has_local() && same_base);
}

bool SpecifierSet::NamesPrerelease() const {
  return std::any_of(clauses_.begin(), clauses_.end(), [](const Clause& c) {
    bool inclusive = c.op == "==" || c.op == ">=" || c.op == "<=" || c.op == "~=" || c.op == "===";
    return inclusive && c.parsed && c.parsed->is_prerelease();
  });
}

bool SpecifierSet::Contains(const Version& version, std::optional<bool> prereleases) const {
  bool allow = prereleases.value_or(!clauses_.empty() && NamesPrerelease());
  if (!allow && version.is_prerelease()) return false;
  return std::all_of(clauses_.begin(), clauses_.end(),
                     [&](const Clause& c) { return ClauseContains(c, version); });
}

std::vector<Version> SpecifierSet::Filter(const std::vector<Version>& versions,
                                          std::optional<bool> prereleases) const {
  std::vector<Version> out;
  if (!clauses_.empty()) {
    for (const Version& v : versions) {
      if (Contains(v, prereleases)) out.push_back(v);
    }
    return out;
  }
  std::vector<Version> held_back;
  for (const Version& v : versions) {
    if (v.is_prerelease() && !prereleases.value_or(false)) {
      held_back.push_back(v);
    } else {
      out.push_back(v);
    }
  }
  if (out.empty() && !prereleases.has_value()) return held_back;
  return out;
}

std::string SpecifierSet::ToString() const {
  std::vector<std::string> parts;
  for (const Clause& c : clauses_) parts.push_back(c.op + c.version);
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const std::string& part : parts) {
    if (!out.empty()) out += ',';
    out += part;
  }
  return out;
}

}  // namespace strata::pyinstall
