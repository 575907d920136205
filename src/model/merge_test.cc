#include "model/merge.h"

#include <gtest/gtest.h>

#include "model/test_util.h"

namespace strata::model {
namespace {

using testing::J;

RuntimeEnv Make(const char* fields) {
  auto env = RuntimeEnv::Create(J(fields));
  EXPECT_TRUE(env.has_value()) << fields;
  return env ? *env : RuntimeEnv();
}

TEST(MergeRuntimeEnvDicts, DisjointKeysMerge) {
  auto merged = MergeRuntimeEnvDicts(
      J(R"({"pip": ["a"], "env_vars": {"A": "1"}})"),
      J(R"({"working_dir": "s3://b/x.zip", "env_vars": {"B": "2"}})"), MergeOverride::kNo);
  ASSERT_TRUE(merged);
  EXPECT_EQ(util::DumpsSorted(*merged),
            R"({"env_vars": {"A": "1", "B": "2"}, "pip": ["a"], "working_dir": "s3://b/x.zip"})");
}

TEST(MergeRuntimeEnvDicts, SharedKeyConflictsEvenWithEqualValues) {
  EXPECT_FALSE(
      MergeRuntimeEnvDicts(J(R"({"pip": ["a"]})"), J(R"({"pip": ["a"]})"), MergeOverride::kNo));
  EXPECT_FALSE(MergeRuntimeEnvDicts(J(R"({"env_vars": {"A": "1"}})"),
                                    J(R"({"env_vars": {"A": "1"}})"), MergeOverride::kNo));
}

TEST(MergeRuntimeEnvDicts, OverrideLetsChildWin) {
  auto merged =
      MergeRuntimeEnvDicts(J(R"({"pip": ["a"], "env_vars": {"A": "1", "B": "1"}})"),
                           J(R"({"pip": ["b"], "env_vars": {"A": "2"}})"), MergeOverride::kYes);
  ASSERT_TRUE(merged);
  EXPECT_EQ(util::DumpsSorted(*merged), R"({"env_vars": {"A": "2", "B": "1"}, "pip": ["b"]})");
}

TEST(MergeRuntimeEnvDicts, NullSidesAreEmpty) {
  auto merged = MergeRuntimeEnvDicts(J("null"), J(R"({"env_vars": {}})"), MergeOverride::kNo);
  ASSERT_TRUE(merged);
  EXPECT_EQ(util::DumpsSorted(*merged), "{}");
}

TEST(MergeJobRuntimeEnv, ConflictMessage) {
  auto merged =
      MergeJobRuntimeEnv(Make(R"({"pip": ["a"]})"), Make(R"({"pip": ["b"]})"), MergeOverride::kNo);
  ASSERT_FALSE(merged);
  EXPECT_EQ(merged.error().kind, util::ErrorKind::kValueError);
  EXPECT_TRUE(merged.error().message.starts_with("Failed to merge the Job's runtime env "))
      << merged.error().message;
}

TEST(MergeJobRuntimeEnv, MergedEnvIsValidated) {
  auto merged =
      MergeJobRuntimeEnv(Make(R"({"pip": ["a"]})"), Make(R"({"conda": "x"})"), MergeOverride::kNo);
  ASSERT_FALSE(merged);
  EXPECT_TRUE(merged.error().message.starts_with("The 'pip' field, 'uv' field, and 'conda'"));
  auto ok = MergeJobRuntimeEnv(Make(R"({"pip": ["a"]})"), Make(R"({"env_vars": {"X": "1"}})"),
                               MergeOverride::kNo);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok->Serialize(),
            R"({"env_vars": {"X": "1"}, "pip": {"packages": ["a"], "pip_check": false}})");
}

TEST(InheritRuntimeEnv, DocsExample) {
  RuntimeEnv parent = Make(R"({"pip": ["requests", "chess"], "env_vars": {"A": "a", "B": "b"}})");
  RuntimeEnv child =
      Make(R"({"pip": ["torch", "ray[serve]"], "env_vars": {"B": "new", "C": "c"}})");
  EXPECT_EQ(CanonicalString(InheritRuntimeEnv(parent, child).AsJson()),
            R"({"env_vars": {"A": "a", "B": "new", "C": "c"}, )"
            R"("pip": {"packages": ["torch", "ray[serve]"], "pip_check": false}})");
}

TEST(InheritRuntimeEnv, EmptyChildInheritsEverything) {
  RuntimeEnv parent = Make(R"({"working_dir": "s3://b/x.zip", "env_vars": {"A": "a"}})");
  EXPECT_EQ(InheritRuntimeEnv(parent, RuntimeEnv()), parent);
  // Emptying a field in the child cannot remove it: the empty value is dropped.
  EXPECT_EQ(InheritRuntimeEnv(parent, Make(R"({"env_vars": {}})")), parent);
}

TEST(InheritRuntimeEnv, ListsAreReplacedNotMerged) {
  RuntimeEnv parent =
      Make(R"({"py_modules": ["s3://b/a.zip"], "config": {"setup_timeout_seconds": 5}})");
  RuntimeEnv child = Make(R"({"py_modules": ["s3://b/b.zip"]})");
  EXPECT_EQ(CanonicalString(InheritRuntimeEnv(parent, child).AsJson()),
            R"({"config": {"eager_install": true, "log_files": [], "setup_timeout_seconds": 5}, )"
            R"("py_modules": ["s3://b/b.zip"]})");
}

TEST(SelectOptionsRuntimeEnv, OptionsReplaceDecoratorWholesale) {
  RuntimeEnv decorator = Make(R"({"pip": ["a"], "env_vars": {"A": "1"}})");
  RuntimeEnv options = Make(R"({"env_vars": {"B": "2"}})");
  EXPECT_EQ(SelectOptionsRuntimeEnv(decorator, options), options);
  EXPECT_EQ(SelectOptionsRuntimeEnv(decorator, std::nullopt), decorator);
  EXPECT_EQ(SelectOptionsRuntimeEnv(decorator, RuntimeEnv()), decorator);
}

}  // namespace
}  // namespace strata::model
