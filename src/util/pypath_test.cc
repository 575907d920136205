#include "util/pypath.h"

#include <gtest/gtest.h>

namespace strata::util {
namespace {

TEST(PyNormalizePath, MatchesPurePosixPathStr) {
  EXPECT_EQ(PyNormalizePath(""), ".");
  EXPECT_EQ(PyNormalizePath("."), ".");
  EXPECT_EQ(PyNormalizePath("./req.txt"), "req.txt");
  EXPECT_EQ(PyNormalizePath("a//b/./c/"), "a/b/c");
  EXPECT_EQ(PyNormalizePath("/"), "/");
  EXPECT_EQ(PyNormalizePath("//x"), "//x");
  EXPECT_EQ(PyNormalizePath("///x"), "/x");
  EXPECT_EQ(PyNormalizePath("a/../b"), "a/../b");
}

TEST(PyPathSuffix, MatchesPurePosixPathSuffix) {
  EXPECT_EQ(PyPathSuffix("env.yaml"), ".yaml");
  EXPECT_EQ(PyPathSuffix("dir/env.tar.gz"), ".gz");
  EXPECT_EQ(PyPathSuffix(".yaml"), "");
  EXPECT_EQ(PyPathSuffix("name."), "");
  EXPECT_EQ(PyPathSuffix("a.b/c"), "");
  EXPECT_EQ(PyPathSuffix("env.yml/"), ".yml");
}

}  // namespace
}  // namespace strata::util
