// Ignore rules with exactly git's gitignore semantics (see `man gitignore` and git's wildmatch).
//
// An IgnoreRules object is one source of patterns -- one `.gitignore` or `.rayignore` file, or
// the runtime env's `excludes` list plus the default excludes -- together with the directory the
// patterns are relative to (its `base`, a package-relative POSIX path, "" for the package root).
// Paths given to the matcher are package-relative POSIX paths ("a/b/c.txt", no leading "./" or
// "/", no trailing "/"); whether the path is a directory is passed separately.
//
// Supported, as git does it:
//   * blank lines; `#` comments and `\#`; trailing spaces dropped unless escaped (`\ `); a CR
//     before the LF and a leading UTF-8 BOM are dropped when parsing a file;
//   * `!` negation and `\!`; the last matching pattern of a source decides;
//   * a pattern without `/` (a trailing one aside) matches the basename at any depth below the
//     base; a `/` at the start or in the middle anchors it to the base; a trailing `/` restricts
//     it to directories;
//   * `*` and `?` (never matching `/`), bracket expressions `[a-z]`, `[!..]`, `[^..]`, `[]..]`,
//     POSIX classes `[[:alpha:]]` etc. (ASCII only; `[:space:]` is git's " \t\n\r"), backslash
//     escapes, `**` as a leading `**/`, a trailing `/**` and a middle `/**/` (other runs of `*`
//     act as one `*`). A malformed bracket expression, an unknown class or a trailing backslash
//     makes the pattern match nothing, as in git;
//   * git's quirk that a `**` directly after the pattern's literal prefix counts as "at the
//     start" (git compares that prefix separately), e.g. `foo**/bar` matches `foobar` and
//     `foo/x/bar`;
//   * "it is not possible to re-include a file if a parent directory of that file is excluded":
//     IgnoreRules::IsExcluded checks the parent directories below the base first. The tree walk
//     gets the same effect by not descending into excluded directories.
//
// Precedence between sources (IgnoreStack) follows git's order: layers pushed later take
// precedence, and the first layer (from the top) that has any matching pattern decides. The tree
// walk pushes, from lowest to highest: the default excludes, the runtime env's `excludes` (both
// relative to the package root, like git's info/exclude), then for each directory from the root
// down its `.gitignore` followed by its `.rayignore` (so a deeper file overrides a shallower
// one, and `.rayignore` overrides the `.gitignore` of the same directory). Unlike Ray, where a
// path is skipped when any source matches, a `!pattern` in a `.gitignore` can therefore bring
// back a path that `excludes` or the defaults exclude (`*` + `!*/` re-includes `.git/` dirs).
//
// Not reproduced: core.ignoreCase (matching is always case-sensitive, as git on Linux); git's
// own info/exclude and core.excludesFile are not read.
//
// Thread-safety: IgnoreRules and IgnoreStack are value types; const member functions may be
// called from several threads at once, mutation needs exclusive access.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::packaging {

// What the patterns say about one path.
enum class IgnoreVerdict {
  kNoMatch,   // no pattern matches: the decision is left to lower layers
  kExcluded,  // the last matching pattern is a positive one
  kIncluded,  // the last matching pattern is a negation (`!pattern`)
};

class IgnoreRules {
 public:
  IgnoreRules() = default;
  // `base`: the directory the patterns are relative to, package-relative, "" for the root.
  explicit IgnoreRules(std::string base);

  // The content of an ignore file: lines split at '\n', a CR before '\n' and a UTF-8 BOM at
  // the start are dropped, then every line goes through AddLine.
  static IgnoreRules FromFileContent(std::string_view content, std::string base = "");
  // Every element is one line (e.g. the runtime env's `excludes`).
  static IgnoreRules FromLines(const std::vector<std::string>& lines, std::string base = "");

  // Adds one gitignore line: blank lines and `#` comments are skipped, a trailing CR and
  // unescaped trailing spaces are dropped.
  void AddLine(std::string_view line);

  // The verdict of the last pattern matching `path` itself (parent directories are not looked
  // at). kNoMatch when `path` is not below `base`.
  IgnoreVerdict Match(std::string_view path, bool is_dir) const;

  // git's full rule for one source: true if a parent directory of `path` below `base` is
  // excluded, or else if Match says kExcluded.
  bool IsExcluded(std::string_view path, bool is_dir) const;

  const std::string& base() const { return base_; }
  // Number of patterns (comments, blank lines and patterns that can never match not counted).
  std::size_t size() const { return patterns_.size(); }
  bool empty() const { return patterns_.empty(); }

 private:
  // One step of a compiled pattern; the compiled pattern is a small NFA whose states are the
  // token indexes (state tokens.size() accepts). Epsilon moves only go forward.
  struct Token {
    enum class Kind : std::uint8_t {
      kLiteral,   // one byte equal to `byte`
      kAnyChar,   // `?`: one byte other than '/'
      kClass,     // `[...]`: one byte other than '/' in classes[arg]
      kStar,      // `*`: any run of bytes other than '/'
      kGlobStar,  // `**` bounded by '/' or the pattern's ends: any run of bytes
      kSkip,      // epsilon move to the next token and to token `arg` (for `**/`)
    };
    Kind kind = Kind::kLiteral;
    unsigned char byte = 0;
    std::uint32_t arg = 0;
  };

  struct Pattern {
    // Most patterns are a plain name or "*.ext"; those skip the NFA.
    enum class Shape : std::uint8_t {
      kLiteral,     // `literal` is the whole pattern
      kStarSuffix,  // `*` then `literal`
      kGeneral,     // `literal` is the literal start, `tokens[first_token..]` the rest
    };

    std::vector<Token> tokens;
    std::vector<std::bitset<256>> classes;
    std::string literal;
    std::size_t first_token = 0;
    Shape shape = Shape::kGeneral;
    bool negative = false;
    bool directory_only = false;
    bool basename_only = false;  // no '/' in the pattern: match the basename at any depth

    bool MatchText(std::string_view text) const;
  };

  // Compiles `text` (negation, trailing '/' and leading '/' already removed). Returns false if
  // the pattern can never match.
  static bool Compile(std::string_view text, bool pathname_mode, Pattern& pattern);

  std::string base_;
  std::vector<Pattern> patterns_;
};

// Layers of IgnoreRules with git's precedence: the most recently pushed layer that has a
// matching pattern decides. The parent-directory rule is not applied here (the tree walk does
// not descend into excluded directories). Pushed layers are immutable and shared by copies, so
// that each directory of a tree walk can hold its own stack cheaply.
class IgnoreStack {
 public:
  void Push(IgnoreRules rules) {
    layers_.push_back(std::make_shared<const IgnoreRules>(std::move(rules)));
  }
  void Pop() { layers_.pop_back(); }
  std::size_t depth() const { return layers_.size(); }

  IgnoreVerdict Match(std::string_view path, bool is_dir) const;
  bool Excludes(std::string_view path, bool is_dir) const {
    return Match(path, is_dir) == IgnoreVerdict::kExcluded;
  }

 private:
  std::vector<std::shared_ptr<const IgnoreRules>> layers_;
};

}  // namespace strata::packaging
