#include "packaging/ignore.h"

#include <array>
#include <utility>

namespace strata::packaging {
namespace {

// The characters that end git's literal pattern prefix ("simple_length").
bool IsGlobSpecial(char c) {
  return c == '*' || c == '?' || c == '[' || c == '\\';
}

// git's trim_trailing_spaces: drop the trailing run of unescaped spaces (tabs are kept).
std::string_view TrimTrailingSpaces(std::string_view line) {
  std::size_t keep = line.size();
  bool in_space_run = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == ' ') {
      if (!in_space_run) keep = i;
      in_space_run = true;
      continue;
    }
    if (line[i] == '\\') {
      // A trailing lone backslash: git leaves the line untouched.
      if (++i == line.size()) return line;
    }
    in_space_run = false;
  }
  return line.substr(0, in_space_run ? keep : line.size());
}

// Fills `set` for a POSIX class name; false for an unknown name. ASCII only, and `space` is
// git's own " \t\n\r" (no \v, \f), as git's sane ctype tables define them.
bool AddPosixClass(std::string_view name, std::bitset<256>& set) {
  auto add_if = [&set](auto predicate) {
    for (int c = 0; c < 128; ++c) {
      if (predicate(c)) set.set(static_cast<std::size_t>(c));
    }
  };
  auto is_upper = [](int c) { return c >= 'A' && c <= 'Z'; };
  auto is_lower = [](int c) { return c >= 'a' && c <= 'z'; };
  auto is_digit = [](int c) { return c >= '0' && c <= '9'; };
  auto is_alpha = [&](int c) { return is_upper(c) || is_lower(c); };
  auto is_graph = [](int c) { return c > ' ' && c < 127; };
  if (name == "alnum") {
    add_if([&](int c) { return is_alpha(c) || is_digit(c); });
  } else if (name == "alpha") {
    add_if(is_alpha);
  } else if (name == "blank") {
    add_if([](int c) { return c == ' ' || c == '\t'; });
  } else if (name == "cntrl") {
    add_if([](int c) { return c < ' ' || c == 127; });
  } else if (name == "digit") {
    add_if(is_digit);
  } else if (name == "graph") {
    add_if(is_graph);
  } else if (name == "lower") {
    add_if(is_lower);
  } else if (name == "print") {
    add_if([&](int c) { return c == ' ' || is_graph(c); });
  } else if (name == "punct") {
    add_if([&](int c) { return is_graph(c) && !is_alpha(c) && !is_digit(c); });
  } else if (name == "space") {
    add_if([](int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
  } else if (name == "upper") {
    add_if(is_upper);
  } else if (name == "xdigit") {
    add_if([&](int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); });
  } else {
    return false;
  }
  return true;
}

// Parses the bracket expression starting at text[pos] == '['. On success stores the set and
// returns the index just past the closing ']'; returns npos when git would abort the match
// (unterminated expression, unknown class, dangling escape).
std::size_t ParseBracket(std::string_view text, std::size_t pos, std::bitset<256>& set) {
  constexpr std::size_t kFail = std::string_view::npos;
  std::size_t i = pos + 1;
  bool negated = false;
  if (i < text.size() && (text[i] == '!' || text[i] == '^')) {
    negated = true;
    ++i;
  }
  set.reset();
  int previous = -1;  // the last single byte, a possible range start; -1 after a range/class
  for (bool first = true;; first = false) {
    if (i >= text.size()) return kFail;
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == ']' && !first) {
      ++i;
      break;
    }
    if (c == '\\') {
      if (++i >= text.size()) return kFail;
      previous = static_cast<unsigned char>(text[i]);
      set.set(static_cast<std::size_t>(previous));
      ++i;
    } else if (c == '-' && previous >= 0 && i + 1 < text.size() && text[i + 1] != ']') {
      ++i;
      if (text[i] == '\\' && ++i >= text.size()) return kFail;
      const int last = static_cast<unsigned char>(text[i]);
      for (int b = previous; b <= last; ++b) set.set(static_cast<std::size_t>(b));
      previous = -1;
      ++i;
    } else if (c == '[' && i + 1 < text.size() && text[i + 1] == ':') {
      const std::size_t name_start = i + 2;
      const std::size_t close = text.find(']', name_start);
      if (close == std::string_view::npos) return kFail;
      if (close < name_start + 1 || text[close - 1] != ':') {
        // No ":]" before the first ']': the '[' is an ordinary member.
        set.set('[');
        previous = '[';
        ++i;
        continue;
      }
      if (!AddPosixClass(text.substr(name_start, close - 1 - name_start), set)) return kFail;
      previous = -1;
      i = close + 1;
    } else {
      set.set(c);
      previous = c;
      ++i;
    }
  }
  if (negated) set.flip();
  return i;
}

// A small bit set sized at run time, on the stack for the common pattern sizes.
class StateSet {
 public:
  explicit StateSet(std::size_t states) : words_((states + 63) / 64) {
    if (words_ > kInline) heap_.resize(words_);
    Clear();
  }
  void Clear() {
    for (std::size_t w = 0; w < words_; ++w) Data()[w] = 0;
  }
  void Set(std::size_t i) { Data()[i / 64] |= std::uint64_t{1} << (i % 64); }
  bool Test(std::size_t i) const { return (Data()[i / 64] >> (i % 64)) & 1U; }
  bool Empty() const {
    for (std::size_t w = 0; w < words_; ++w) {
      if (Data()[w] != 0) return false;
    }
    return true;
  }
  void Swap(StateSet& other) {
    std::swap(inline_, other.inline_);
    std::swap(heap_, other.heap_);
  }

 private:
  static constexpr std::size_t kInline = 4;
  std::uint64_t* Data() { return words_ > kInline ? heap_.data() : inline_.data(); }
  const std::uint64_t* Data() const { return words_ > kInline ? heap_.data() : inline_.data(); }

  std::size_t words_;
  std::array<std::uint64_t, kInline> inline_{};
  std::vector<std::uint64_t> heap_;
};

}  // namespace

IgnoreRules::IgnoreRules(std::string base) : base_(std::move(base)) {}

IgnoreRules IgnoreRules::FromFileContent(std::string_view content, std::string base) {
  IgnoreRules rules(std::move(base));
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  if (content.substr(0, kBom.size()) == kBom) content.remove_prefix(kBom.size());
  while (!content.empty()) {
    const std::size_t end = content.find('\n');
    // AddLine drops the CR of a CRLF line ending.
    rules.AddLine(content.substr(0, end));
    if (end == std::string_view::npos) break;
    content.remove_prefix(end + 1);
  }
  return rules;
}

IgnoreRules IgnoreRules::FromLines(const std::vector<std::string>& lines, std::string base) {
  IgnoreRules rules(std::move(base));
  for (const std::string& line : lines) rules.AddLine(line);
  return rules;
}

void IgnoreRules::AddLine(std::string_view line) {
  // git tests for blank lines and comments before dropping the CR and the spaces.
  if (line.empty() || line.front() == '#') return;
  if (line.back() == '\r') line.remove_suffix(1);
  line = TrimTrailingSpaces(line);

  Pattern pattern;
  if (!line.empty() && line.front() == '!') {
    pattern.negative = true;
    line.remove_prefix(1);
  }
  // Only one trailing slash is removed: "foo//" keeps a '/' and then never matches, as in git.
  if (!line.empty() && line.back() == '/') {
    pattern.directory_only = true;
    line.remove_suffix(1);
  }
  pattern.basename_only = line.find('/') == std::string_view::npos;
  if (!pattern.basename_only && line.front() == '/') line.remove_prefix(1);
  if (line.empty()) return;  // matches nothing

  if (!Compile(line, !pattern.basename_only, pattern)) return;
  patterns_.push_back(std::move(pattern));
}

bool IgnoreRules::Compile(std::string_view text, bool pathname_mode, Pattern& pattern) {
  std::size_t literal_prefix = 0;
  while (literal_prefix < text.size() && !IsGlobSpecial(text[literal_prefix])) ++literal_prefix;
  if (literal_prefix == text.size()) {
    pattern.shape = Pattern::Shape::kLiteral;
    pattern.literal = std::string(text);
    return true;
  }

  auto add = [&pattern](Token::Kind kind, unsigned char byte = 0, std::uint32_t arg = 0) {
    pattern.tokens.push_back(Token{kind, byte, arg});
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\\') {
      if (i + 1 == text.size()) return false;  // a trailing backslash never matches
      add(Token::Kind::kLiteral, static_cast<unsigned char>(text[i + 1]));
      i += 2;
    } else if (c == '?') {
      add(Token::Kind::kAnyChar);
      ++i;
    } else if (c == '[') {
      std::bitset<256> set;
      const std::size_t next = ParseBracket(text, i, set);
      if (next == std::string_view::npos) return false;
      add(Token::Kind::kClass, 0, static_cast<std::uint32_t>(pattern.classes.size()));
      pattern.classes.push_back(set);
      i = next;
    } else if (c == '*') {
      const std::size_t run_start = i;
      while (i < text.size() && text[i] == '*') ++i;
      // A run of two or more stars is a globstar when it touches '/' or the pattern's ends on
      // both sides. git matches the literal prefix separately and then wildmatches the rest,
      // so a run right after the prefix counts as being at the start.
      const bool start_bounded = run_start == 0 || text[run_start - 1] == '/' ||
                                 (pathname_mode && run_start == literal_prefix);
      const bool globstar = i - run_start >= 2 && start_bounded;
      if (globstar && i < text.size() && text[i] == '/') {
        // "**/": zero directories, or anything ending in '/'.
        const auto after = static_cast<std::uint32_t>(pattern.tokens.size() + 3);
        add(Token::Kind::kSkip, 0, after);
        add(Token::Kind::kGlobStar);
        add(Token::Kind::kLiteral, '/');
        ++i;
      } else if (globstar && (i == text.size() ||
                              (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == '/'))) {
        add(Token::Kind::kGlobStar);
      } else {
        add(Token::Kind::kStar);
      }
    } else {
      add(Token::Kind::kLiteral, static_cast<unsigned char>(c));
      ++i;
    }
  }

  // The literal tokens at the start (escapes included) are compared directly.
  const std::vector<Token>& tokens = pattern.tokens;
  auto literal_run = [&tokens](std::size_t from) {
    std::string run;
    for (; from < tokens.size() && tokens[from].kind == Token::Kind::kLiteral; ++from) {
      run += static_cast<char>(tokens[from].byte);
    }
    return run;
  };
  pattern.literal = literal_run(0);
  pattern.first_token = pattern.literal.size();
  if (pattern.first_token == tokens.size()) {
    pattern.shape = Pattern::Shape::kLiteral;
  } else if (tokens.front().kind == Token::Kind::kStar) {
    std::string suffix = literal_run(1);
    if (suffix.size() + 1 == tokens.size()) {
      pattern.shape = Pattern::Shape::kStarSuffix;
      pattern.literal = std::move(suffix);
    }
  }
  return true;
}

bool IgnoreRules::Pattern::MatchText(std::string_view text) const {
  switch (shape) {
    case Shape::kLiteral:
      return text == literal;
    case Shape::kStarSuffix:
      // The star must not cross a '/'.
      return text.size() >= literal.size() && text.ends_with(literal) &&
             text.substr(0, text.size() - literal.size()).find('/') == std::string_view::npos;
    case Shape::kGeneral:
      if (!text.starts_with(literal)) return false;
      text.remove_prefix(literal.size());
      break;
  }

  // NFA simulation: linear in |text| x |tokens|, so no pattern can make matching explode.
  const std::size_t accept = tokens.size();
  StateSet current(accept + 1);
  StateSet next(accept + 1);
  auto close_over_epsilon = [this, accept](StateSet& states) {
    for (std::size_t i = first_token; i < accept; ++i) {
      if (!states.Test(i)) continue;
      switch (tokens[i].kind) {
        case Token::Kind::kStar:
        case Token::Kind::kGlobStar:
          states.Set(i + 1);
          break;
        case Token::Kind::kSkip:
          states.Set(i + 1);
          states.Set(tokens[i].arg);
          break;
        default:
          break;
      }
    }
  };

  current.Set(first_token);
  close_over_epsilon(current);
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    next.Clear();
    for (std::size_t i = first_token; i < accept; ++i) {
      if (!current.Test(i)) continue;
      const Token& token = tokens[i];
      switch (token.kind) {
        case Token::Kind::kLiteral:
          if (byte == token.byte) next.Set(i + 1);
          break;
        case Token::Kind::kAnyChar:
          if (byte != '/') next.Set(i + 1);
          break;
        case Token::Kind::kClass:
          if (byte != '/' && classes[token.arg].test(byte)) next.Set(i + 1);
          break;
        case Token::Kind::kStar:
          if (byte != '/') next.Set(i);
          break;
        case Token::Kind::kGlobStar:
          next.Set(i);
          break;
        case Token::Kind::kSkip:
          break;
      }
    }
    close_over_epsilon(next);
    if (next.Empty()) return false;
    current.Swap(next);
  }
  return current.Test(accept);
}

IgnoreVerdict IgnoreRules::Match(std::string_view path, bool is_dir) const {
  std::string_view relative = path;
  if (!base_.empty()) {
    if (path.size() <= base_.size() || path[base_.size()] != '/' ||
        path.substr(0, base_.size()) != base_) {
      return IgnoreVerdict::kNoMatch;
    }
    relative.remove_prefix(base_.size() + 1);
  }
  const std::size_t slash = relative.rfind('/');
  const std::string_view basename =
      slash == std::string_view::npos ? relative : relative.substr(slash + 1);

  for (auto it = patterns_.rbegin(); it != patterns_.rend(); ++it) {
    if (it->directory_only && !is_dir) continue;
    if (it->MatchText(it->basename_only ? basename : relative)) {
      return it->negative ? IgnoreVerdict::kIncluded : IgnoreVerdict::kExcluded;
    }
  }
  return IgnoreVerdict::kNoMatch;
}

bool IgnoreRules::IsExcluded(std::string_view path, bool is_dir) const {
  const std::size_t first = base_.empty() ? 0 : base_.size() + 1;
  for (std::size_t slash = path.find('/', first); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    if (Match(path.substr(0, slash), true) == IgnoreVerdict::kExcluded) return true;
  }
  return Match(path, is_dir) == IgnoreVerdict::kExcluded;
}

IgnoreVerdict IgnoreStack::Match(std::string_view path, bool is_dir) const {
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) {
    const IgnoreVerdict verdict = (*it)->Match(path, is_dir);
    if (verdict != IgnoreVerdict::kNoMatch) return verdict;
  }
  return IgnoreVerdict::kNoMatch;
}

}  // namespace strata::packaging
