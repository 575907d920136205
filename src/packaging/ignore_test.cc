// Unit tests of the gitignore matcher. The expected values were checked against git 2.39
// (`git ls-files --others --exclude-standard`); tree_walk_test.cc compares whole trees with git.
#include "packaging/ignore.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata::packaging {
namespace {

struct Case {
  std::string pattern;
  std::string path;
  bool expected;
  bool is_dir = false;
};

// Match() of a single pattern (parent directories not looked at).
bool Matches(const std::string& pattern, const std::string& path, bool is_dir = false) {
  return IgnoreRules::FromLines({pattern}).Match(path, is_dir) == IgnoreVerdict::kExcluded;
}

bool Excluded(const std::vector<std::string>& lines, const std::string& path, bool is_dir = false) {
  return IgnoreRules::FromLines(lines).IsExcluded(path, is_dir);
}

void ExpectCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    EXPECT_EQ(Matches(c.pattern, c.path, c.is_dir), c.expected)
        << "pattern '" << c.pattern << "' path '" << c.path << "' dir=" << c.is_dir;
  }
}

TEST(IgnoreRulesTest, BlankLinesAndCommentsAreSkipped) {
  const IgnoreRules rules = IgnoreRules::FromLines({"", "#foo", "# bar", "   "});
  EXPECT_TRUE(rules.empty());
  EXPECT_FALSE(rules.IsExcluded("#foo", false));
  ExpectCases({
      {"\\#foo", "#foo", true},
      {"\\#foo", "foo", false},
      {" #foo", " #foo", true},  // only a '#' in the first column starts a comment
      {"a#b", "a#b", true},
  });
}

TEST(IgnoreRulesTest, TrailingSpacesAreDroppedUnlessEscaped) {
  ExpectCases({
      {"foo  ", "foo", true},
      {"foo  ", "foo ", false},
      {"foo\\ ", "foo ", true},
      {"foo\\ ", "foo", false},
      {"foo\\  ", "foo ", true},  // the escaped space stays, the one after it goes
      {"foo\\  ", "foo  ", false},
      {"foo\t", "foo\t", true},  // tabs are not trimmed
      {"foo\t", "foo", false},
      {"a b ", "a b", true},
      {"foo \\", "foo \\", false},  // a trailing backslash: kept, and never matches
      {"foo \\", "foo ", false},
  });
}

TEST(IgnoreRulesTest, NegationReincludesAndLastMatchWins) {
  EXPECT_TRUE(Excluded({"*.log", "!keep.log"}, "a.log"));
  EXPECT_FALSE(Excluded({"*.log", "!keep.log"}, "keep.log"));
  EXPECT_FALSE(Excluded({"*.log", "!keep.log"}, "dir/keep.log"));
  EXPECT_TRUE(Excluded({"!keep.log", "*.log"}, "keep.log"));
  EXPECT_EQ(IgnoreRules::FromLines({"*.log", "!keep.log"}).Match("keep.log", false),
            IgnoreVerdict::kIncluded);
  EXPECT_EQ(IgnoreRules::FromLines({"*.log"}).Match("a.txt", false), IgnoreVerdict::kNoMatch);
  ExpectCases({
      {"\\!important!.txt", "!important!.txt", true},
      {"\\!important!.txt", "important!.txt", false},
      {"!", "!", false},  // an empty negative pattern matches nothing
  });
}

TEST(IgnoreRulesTest, StarDoesNotCrossSlashes) {
  ExpectCases({
      {"*.c", "x.c", true},
      {"*.c", "dir/sub/x.c", true},  // no slash: basename at any depth
      {"*.c", "x.cc", false},
      {"*.c", ".c", true},
      {"a/*.c", "a/x.c", true},
      {"a/*.c", "a/b/x.c", false},
      {"a/*/c", "a/b/c", true},
      {"a/*/c", "a/b/d/c", false},
      {"*", "anything", true},
      {"/*", "a/b", false},  // Match alone; IsExcluded would see the parent "a"
      {"/*", "a", true},
      {"f*o", "fo", true},
      {"f*o", "f/o", false},
  });
  EXPECT_TRUE(Excluded({"/*"}, "a/b"));
}

TEST(IgnoreRulesTest, QuestionMarkMatchesOneNonSlash) {
  ExpectCases({
      {"?.txt", "a.txt", true},
      {"?.txt", "ab.txt", false},
      {"?.txt", ".txt", false},
      {"a?b/c", "axb/c", true},
      {"a?b/c", "a/b/c", false},
  });
}

TEST(IgnoreRulesTest, BracketExpressions) {
  ExpectCases({
      {"[abc].txt", "b.txt", true},
      {"[abc].txt", "d.txt", false},
      {"[a-c]x", "bx", true},
      {"[a-c]x", "dx", false},
      {"[!a-c]x", "dx", true},
      {"[!a-c]x", "ax", false},
      {"[^a-c]x", "dx", true},
      {"[^a-c]x", "bx", false},
      {"[]]x", "]x", true},
      {"[]]x", "x", false},
      {"[!]]x", "]x", false},
      {"[!]]x", "ax", true},
      {"[a-]e", "-e", true},
      {"[a-]e", "ae", true},
      {"[a-]e", "be", false},
      {"[-a]e", "-e", true},
      {"[z-a]x", "yx", false},  // an inverted range adds nothing but its first byte
      {"[z-a]x", "ax", false},
      {"[z-a]x", "zx", true},
      {"[\\]]x", "]x", true},
      {"[a\\-c]x", "-x", true},
      {"[a\\-c]x", "bx", false},
      {"[a-c-e]x", "-x", true},  // after a range, '-' is an ordinary member
      {"[a-c-e]x", "dx", false},
      {"[[:alpha:]]1", "a1", true},
      {"[[:alpha:]]1", "_1", false},
      {"[[:digit:][:upper:]]z", "5z", true},
      {"[[:digit:][:upper:]]z", "Qz", true},
      {"[[:digit:][:upper:]]z", "qz", false},
      {"[[:space:]]s", "\ts", true},
      {"[[:space:]]s", " s", true},
      {"[[:space:]]s", "\vs", false},  // git's isspace has no \v and \f
      {"[[:space:]]s", "\fs", false},
      {"[[:blank:]]b", "\tb", true},
      {"[[:blank:]]b", "\vb", false},
      {"[[:cntrl:]]c",
       "\x7f"
       "c",
       true},
      {"[[:cntrl:]]c", " c", false},
      {"[[:punct:]]p", "~p", true},
      {"[[:punct:]]p", "ap", false},
      {"[[:print:]]r", " r", true},
      {"[[:print:]]r", "\tr", false},
      {"[[:graph:]]g", " g", false},
      {"[[:xdigit:]]x", "Fx", true},
      {"[[:xdigit:]]x", "gx", false},
      {"[[:alnum:]]", "\x80", false},  // classes are ASCII only
      {"[![:alpha:]]", "\x80", true},
      {"[[:bogus:]]x", "bx", false},  // unknown class: never matches
      {"[[:bogus:]]x", "[x", false},
      {"[[:a]x", "[x", true},  // no ":]": '[' is an ordinary member
      {"[[:a]x", ":x", true},
      {"[[:a]x", "ax", true},
      {"[[:a]x", "bx", false},
      {"[abc", "[abc", false},  // unterminated: never matches
      {"m[", "m[", false},
      {"x[/]y", "x/y", false},  // a bracket never matches '/'
      {"x[!a]y", "x/y", false},
  });
}

TEST(IgnoreRulesTest, DoubleStar) {
  ExpectCases({
      {"**/foo", "foo", true},
      {"**/foo", "a/foo", true},
      {"**/foo", "a/b/foo", true},
      {"**/foo", "a/foox", false},
      {"**/foo/bar", "foo/bar", true},
      {"**/foo/bar", "x/y/foo/bar", true},
      {"**/foo/bar", "foo/x/bar", false},
      {"abc/**", "abc", false, true},
      {"abc/**", "abc/x", true},
      {"abc/**", "abc/x/y", true},
      {"abc/**", "xabc/x", false},
      {"a/**/b", "a/b", true},
      {"a/**/b", "a/x/b", true},
      {"a/**/b", "a/x/y/b", true},
      {"a/**/b", "a/xb", false},
      {"a/**/b", "x/a/b", false},
      {"a/**/**/b", "a/b", true},
      {"a/**b", "a/xb", true},  // not bounded by '/': an ordinary '*'
      {"a/**b", "a/x/b", false},
      {"x/**a", "x/ba", true},
      {"x/**a", "x/b/a", false},
      {"a/**\\/b", "a/b", false},  // `**` before an escaped slash: no zero-directory form
      {"a/**\\/b", "a/x/b", true},
      {"***/foo", "a/b/foo", true},
      {"***/foo", "foo", true},
      {"**", "a/b/c", true},
      {"foo**bar", "fooxbar", true},
      // git compares the literal prefix separately, so a `**` right after it counts as
      // bounded at the start.
      {"foo**/bar", "foobar", true},
      {"foo**/bar", "fooz/bar", true},
      {"foo**/bar", "fooa__bar", false},
      {"x/a**", "x/a/b/c", true},
      {"x/a**b", "x/a/b", false},
  });
}

TEST(IgnoreRulesTest, BackslashEscapes) {
  ExpectCases({
      {"\\*", "*", true},
      {"\\*", "a", false},
      {"\\?", "?", true},
      {"\\?", "a", false},
      {"\\[a]", "[a]", true},
      {"\\[a]", "a", false},
      {"a\\b", "ab", true},
      {"\\\\", "\\", true},
      {"x\\", "x", false},  // trailing backslash: never matches
      {"x\\", "x\\", false},
  });
}

TEST(IgnoreRulesTest, AnchoringAndDirectoryOnlyPatterns) {
  ExpectCases({
      {"/foo", "foo", true},
      {"/foo", "a/foo", false},
      {"a/foo", "a/foo", true},
      {"a/foo", "b/a/foo", false},
      {"foo", "b/a/foo", true},
      {"foo/", "foo", true, true},
      {"foo/", "a/foo", true, true},
      {"foo/", "foo", false, false},
      {"doc/frotz/", "doc/frotz", true, true},
      {"doc/frotz/", "a/doc/frotz", false, true},
      {"/doc/frotz", "doc/frotz", true},
      {"frotz/", "a/frotz", true, true},
      {"frotz/", "frotz", false},
      {"foo//", "foo", false, true},  // only one trailing slash is removed
      {"/", "x", false, true},
      {"\\/foo", "foo", false},  // an escaped leading slash stays a literal '/'
  });
}

TEST(IgnoreRulesTest, NoReincludeBelowExcludedDirectory) {
  EXPECT_TRUE(Excluded({"build/", "!build/keep.txt"}, "build/keep.txt"));
  EXPECT_EQ(IgnoreRules::FromLines({"build/", "!build/keep.txt"}).Match("build/keep.txt", false),
            IgnoreVerdict::kIncluded);
  EXPECT_FALSE(Excluded({"build/*", "!build/keep.txt"}, "build/keep.txt"));
  EXPECT_TRUE(Excluded({"build/*", "!build/keep.txt"}, "build/other.txt"));
  EXPECT_FALSE(Excluded({"/*", "!/keep/"}, "keep/x"));
  EXPECT_TRUE(Excluded({"/*", "!/keep/"}, "other/x"));
  EXPECT_TRUE(Excluded({"data/**", "!data/**/"}, "data/a/file"));
  EXPECT_FALSE(Excluded({"data/**", "!data/**/"}, "data/a", true));
}

TEST(IgnoreRulesTest, PatternsAreRelativeToTheirBase) {
  const IgnoreRules rules = IgnoreRules::FromLines({"/x", "y", "z/w", "d/"}, "sub");
  EXPECT_EQ(rules.base(), "sub");
  EXPECT_EQ(rules.Match("sub/x", false), IgnoreVerdict::kExcluded);
  EXPECT_EQ(rules.Match("x", false), IgnoreVerdict::kNoMatch);
  EXPECT_EQ(rules.Match("sub/a/x", false), IgnoreVerdict::kNoMatch);
  EXPECT_EQ(rules.Match("sub/a/y", false), IgnoreVerdict::kExcluded);
  EXPECT_EQ(rules.Match("sub/z/w", false), IgnoreVerdict::kExcluded);
  EXPECT_EQ(rules.Match("sub/q/z/w", false), IgnoreVerdict::kNoMatch);
  EXPECT_EQ(rules.Match("other/y", false), IgnoreVerdict::kNoMatch);
  EXPECT_EQ(rules.Match("subx/y", false), IgnoreVerdict::kNoMatch);
  EXPECT_EQ(rules.Match("sub", true), IgnoreVerdict::kNoMatch);
  EXPECT_TRUE(rules.IsExcluded("sub/d/file", false));
  EXPECT_FALSE(IgnoreRules::FromLines({"sub"}, "sub").IsExcluded("sub/file", false));
}

TEST(IgnoreRulesTest, FileContentParsing) {
  const IgnoreRules rules = IgnoreRules::FromFileContent(
      "\xEF\xBB\xBF"
      "bom\r\ncrlf\r\n#comment\n\nlast",
      "");
  EXPECT_EQ(rules.size(), 3u);
  EXPECT_TRUE(rules.IsExcluded("bom", false));
  EXPECT_TRUE(rules.IsExcluded("crlf", false));
  EXPECT_TRUE(rules.IsExcluded("last", false));
  EXPECT_FALSE(rules.IsExcluded("#comment", false));
  // Only a CR right before the LF is dropped.
  EXPECT_TRUE(IgnoreRules::FromFileContent("a\rb\n").IsExcluded("a\rb", false));
  EXPECT_TRUE(IgnoreRules::FromFileContent("sp  \r\n").IsExcluded("sp", false));
  EXPECT_TRUE(IgnoreRules::FromFileContent("").empty());
}

TEST(IgnoreStackTest, DeeperLayersTakePrecedence) {
  IgnoreStack stack;
  stack.Push(IgnoreRules::FromLines({"*.txt", "tmp/"}));
  stack.Push(IgnoreRules::FromLines({"!keep.txt"}, "sub"));
  stack.Push(IgnoreRules::FromLines({"keep.txt"}, "sub/deep"));
  EXPECT_EQ(stack.depth(), 3u);
  EXPECT_TRUE(stack.Excludes("keep.txt", false));
  EXPECT_FALSE(stack.Excludes("sub/keep.txt", false));
  EXPECT_EQ(stack.Match("sub/keep.txt", false), IgnoreVerdict::kIncluded);
  EXPECT_TRUE(stack.Excludes("sub/deep/keep.txt", false));
  EXPECT_TRUE(stack.Excludes("sub/other.txt", false));
  EXPECT_TRUE(stack.Excludes("sub/tmp", true));
  EXPECT_EQ(stack.Match("sub/x.py", false), IgnoreVerdict::kNoMatch);
  stack.Pop();
  EXPECT_FALSE(stack.Excludes("sub/deep/keep.txt", false));
}

TEST(IgnoreRulesTest, PathologicalPatternsStayFast) {
  // Backtracking matchers explode on this; the NFA is linear.
  const std::string text(200, 'a');
  EXPECT_FALSE(Matches("*a*a*a*a*a*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(Matches("*a*a*a*a*a*a*a*a*a*a*a*a*", text));
  EXPECT_FALSE(Matches("**/**/**/**/**/**/**/**/b", "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/c"));
  // More states than the inline bit set holds.
  const std::string many(300, '?');
  EXPECT_TRUE(Matches(many + "*", std::string(305, 'x')));
  EXPECT_FALSE(Matches(many + "?", std::string(300, 'x')));
}

}  // namespace
}  // namespace strata::packaging
