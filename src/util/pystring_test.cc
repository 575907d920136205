#include "util/pystring.h"

#include <gtest/gtest.h>

namespace strata::util {
namespace {

TEST(CheckUtf8, AcceptsValidText) {
  EXPECT_TRUE(CheckUtf8("héllo ✓ 😀").ok());
}

TEST(CheckUtf8, ReportsLikePython) {
  Status bad = CheckUtf8("ab\xff");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kValueError);
  EXPECT_EQ(bad.error().message,
            "'utf-8' codec can't decode byte 0xff in position 2: invalid start byte");
  EXPECT_EQ(CheckUtf8("x\xc3").error().message,
            "'utf-8' codec can't decode byte 0xc3 in position 1: unexpected end of data");
  EXPECT_EQ(CheckUtf8("\xc3(").error().message,
            "'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte");
}

TEST(Utf8Length, CountsCodePoints) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("abc"), 3u);
  EXPECT_EQ(Utf8Length("é😀"), 2u);
}

TEST(PyStrip, StripsPythonWhitespace) {
  EXPECT_EQ(PyStrip("  a b \n\t"), "a b");
  EXPECT_EQ(PyStrip("\x1c\x1f x \x0b\x0c"), "x");
  EXPECT_EQ(PyStrip("\u3000\u00a0x\u2028"), "x");
  EXPECT_EQ(PyStrip(" \n "), "");
}

TEST(PySplit, SplitsOnWhitespaceRuns) {
  EXPECT_EQ(PySplit("  uv   run "), (std::vector<std::string>{"uv", "run"}));
  EXPECT_TRUE(PySplit(" \t ").empty());
  EXPECT_EQ(PySplit("a\u3000b"), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace strata::util
