// Helpers shared by the model's unit tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "util/pyjson.h"
#include "util/result.h"
#include "util/temp_dir_testing.h"

namespace strata::model::testing {

inline util::Json J(const char* text) {
  auto parsed = util::ParseJson(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed ? *parsed : util::Json();
}

// A fresh directory that becomes the current directory for the test, since
// files named in a runtime_env are read relative to it.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_cwd_ = std::filesystem::current_path();
    std::filesystem::current_path(dir_);
  }
  void TearDown() override { std::filesystem::current_path(old_cwd_); }
  void Write(const std::string& name, const std::string& content) {
    util::testing::WriteFile(dir_ / name, content);
  }
  util::testing::TempDir temp_;
  const std::filesystem::path dir_ = temp_.path();
  std::filesystem::path old_cwd_;
};

// Asserts a failure of the given kind with exactly the given message.
#define EXPECT_ERROR(expr, kind_, message_)                          \
  do {                                                               \
    auto&& result_ = (expr);                                         \
    ASSERT_FALSE(static_cast<bool>(result_)) << "expected an error"; \
    EXPECT_EQ(result_.error().kind, util::ErrorKind::kind_);         \
    EXPECT_EQ(result_.error().message, message_);                    \
  } while (0)

}  // namespace strata::model::testing
