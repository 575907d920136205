#include "model/runtime_env.h"

#include <gtest/gtest.h>

#include "model/test_util.h"

namespace strata::model {
namespace {

using testing::J;
using testing::TempDirTest;

RuntimeEnv Make(const char* fields) {
  auto env = RuntimeEnv::Create(J(fields));
  EXPECT_TRUE(env.has_value()) << fields << ": " << (env ? "" : env.error().message);
  return env ? *env : RuntimeEnv();
}

std::string Serialized(const char* fields) {
  auto text = Make(fields).Serialize();
  EXPECT_TRUE(text.has_value());
  return text ? *text : "";
}

TEST(RuntimeEnvCreate, CanonicalSerializationMatchesPython) {
  EXPECT_EQ(
      Serialized(
          R"({"pip": ["requests"], "env_vars": {"B": "2", "A": "1"}, "config": {"setup_timeout_seconds": 30}})"),
      R"({"config": {"eager_install": true, "log_files": [], "setup_timeout_seconds": 30}, )"
      R"("env_vars": {"A": "1", "B": "2"}, "pip": {"packages": ["requests"], "pip_check": false}})");
  EXPECT_EQ(Serialized(R"({"env_vars": {"GREETING": "héllo ✓"}})"),
            R"({"env_vars": {"GREETING": "h\u00e9llo \u2713"}})");
}

TEST(RuntimeEnvCreate, InputKeyOrderDoesNotMatter) {
  EXPECT_EQ(Serialized(R"({"env_vars": {"X": "1"}, "uv": ["a"], "zzz": 1})"),
            Serialized(R"({"zzz": 1, "uv": ["a"], "env_vars": {"X": "1"}})"));
}

TEST(RuntimeEnvCreate, NormalisedFieldsFollowPluginFieldsInRayOrder) {
  RuntimeEnv env =
      Make(R"({"config": {}, "pip": ["a"], "my_plugin": 1, "working_dir": "s3://b/x.zip"})");
  EXPECT_EQ(env.Keys(), (std::vector<std::string>{"my_plugin", "working_dir", "pip", "config"}));
}

TEST(RuntimeEnvCreate, NsightIsStoredUnderUnderscoreKey) {
  RuntimeEnv env = Make(R"({"nsight": "default"})");
  EXPECT_FALSE(env.Contains("nsight"));
  EXPECT_EQ(env.Get("_nsight"), Json("default"));
}

TEST(RuntimeEnvCreate, NullNamedFieldsAreNotPassed) {
  EXPECT_EQ(Serialized(R"({"pip": null, "working_dir": null, "env_vars": {"A": "b"}})"),
            R"({"env_vars": {"A": "b"}})");
}

TEST(RuntimeEnvCreate, EmptyValuesAreDropped) {
  EXPECT_EQ(Serialized(R"({"pip": [], "env_vars": {}, "excludes": []})"), "{}");
  EXPECT_EQ(Serialized(R"({"uv": {"packages": []}, "env_vars": ""})"), "{}");
}

TEST(RuntimeEnvCreate, AllNoneValuesClearTheEnv) {
  EXPECT_EQ(Serialized(R"({"my_plugin": null})"), "{}");
  EXPECT_EQ(Serialized(R"({"my_plugin": null, "other": 1})"), R"({"my_plugin": null, "other": 1})");
}

TEST(RuntimeEnvCreate, UnknownFieldsAreKeptAsPlugins) {
  RuntimeEnv env = Make(R"({"my_plugin": {"a": 1}, "pip": ["x"], "java_jars": ["s3://b/x.jar"]})");
  auto plugins = env.Plugins();
  ASSERT_EQ(plugins.size(), 1u);
  EXPECT_EQ(plugins[0].first, "my_plugin");
  EXPECT_EQ(plugins[0].second, J(R"({"a": 1})"));
  EXPECT_TRUE(env.PluginUris().empty());
}

TEST(RuntimeEnvCreate, NoRayCommitIsAdded) {
  EXPECT_FALSE(Make(R"({"pip": ["x"]})").Contains("_ray_commit"));
}

TEST(RuntimeEnvCreate, PackageManagersAreMutuallyExclusive) {
  EXPECT_ERROR(
      RuntimeEnv::Create(J(R"({"pip": ["requests"], "conda": "myenv"})")), kValueError,
      "The 'pip' field, 'uv' field, and 'conda' field of runtime_env cannot be specified at the "
      "same time.\nspecified pip field: ['requests']\nspecified conda field: myenv\nspecified uv "
      "field: None\nTo use pip with conda, please only set the 'conda'field, and specify your pip "
      "dependencies within the conda YAML config dict: see "
      "https://conda.io/projects/conda/en/latest/user-guide/tasks/"
      "manage-environments.html#create-env-file-manually");
  // The check is on presence, not truthiness: an empty pip list still conflicts.
  auto empty_pip = RuntimeEnv::Create(J(R"({"pip": [], "uv": ["a"]})"));
  ASSERT_FALSE(empty_pip);
  EXPECT_EQ(empty_pip.error().kind, util::ErrorKind::kValueError);
}

TEST(RuntimeEnvCreate, ContainerAndImageUriOnlyWithConfigAndEnvVars) {
  EXPECT_TRUE(RuntimeEnv::Create(
      J(R"({"container": {"image": "x"}, "config": {}, "env_vars": {"A": "1"}})")));
  EXPECT_ERROR(
      RuntimeEnv::Create(
          J(R"({"container": {"image": "x"}, "working_dir": "s3://b/w.zip", "pip": ["a"]})")),
      kValueError,
      "The 'container' field currently cannot be used together with other fields of "
      "runtime_env. Specified fields: {'pip', 'working_dir'}");
  EXPECT_ERROR(RuntimeEnv::Create(J(R"({"image_uri": "localhost/img:1", "py_modules": []})")),
               kValueError,
               "The 'image_uri' field currently cannot be used together with other fields of "
               "runtime_env. Specified fields: {'py_modules'}");
  // A falsy container does not trigger the rule.
  EXPECT_TRUE(RuntimeEnv::Create(J(R"({"container": {}, "pip": ["a"]})")));
}

TEST(RuntimeEnvCreate, NotAMapping) {
  EXPECT_ERROR(RuntimeEnv::Create(J("[1]")), kTypeError,
               "RuntimeEnv() argument after ** must be a mapping, not list");
}

TEST(RuntimeEnvParse, FalsyMeansUnspecifiedAndNonDictIsTypeError) {
  for (const char* falsy : {"null", "{}", "[]", "\"\"", "0", "false"}) {
    auto env = RuntimeEnv::Parse(J(falsy));
    ASSERT_TRUE(env) << falsy;
    EXPECT_TRUE(env->Empty());
  }
  EXPECT_ERROR(RuntimeEnv::Parse(J("[1]")), kTypeError,
               "runtime_env must be dict or RuntimeEnv, but got: <class 'list'>");
}

TEST(RuntimeEnvSerialize, DeserializeDoesNotValidateButSerializeDoes) {
  auto env = RuntimeEnv::Deserialize(R"({"pip": ["a"], "conda": "x"})");
  ASSERT_TRUE(env);
  EXPECT_EQ(env->Get("pip"), J(R"(["a"])"));
  auto serialized = env->Serialize();
  ASSERT_FALSE(serialized);
  EXPECT_EQ(serialized.error().kind, util::ErrorKind::kValueError);
}

TEST(RuntimeEnvSerialize, ConflictIntroducedByAssignmentIsCaughtAtSerialize) {
  RuntimeEnv env = Make(R"({"pip": ["requests"]})");
  ASSERT_TRUE(env.Set("conda", Json("myenv")).ok());
  ASSERT_FALSE(env.Serialize());
  RuntimeEnv updated = Make(R"({"pip": ["requests"]})");
  updated.Update(J(R"({"uv": ["x"]})"));
  ASSERT_FALSE(updated.Serialize());
}

TEST(RuntimeEnvSerialize, RoundTrip) {
  RuntimeEnv env =
      Make(R"({"working_dir": "s3://b/w.zip", "env_vars": {"A": "1"}, "plugin": [1.5, null]})");
  auto text = env.Serialize();
  ASSERT_TRUE(text);
  auto back = RuntimeEnv::Deserialize(*text);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, env);
  EXPECT_EQ(*back->Serialize(), *text);
}

TEST(RuntimeEnvSerialize, DeserializeRejectsBadJson) {
  auto bad = RuntimeEnv::Deserialize("{");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, util::ErrorKind::kValueError);
  EXPECT_ERROR(RuntimeEnv::Deserialize("[]"), kTypeError,
               "RuntimeEnv() argument after ** must be a mapping, not list");
}

TEST(RuntimeEnvDict, GetSetContains) {
  RuntimeEnv env;
  EXPECT_TRUE(env.Empty());
  EXPECT_EQ(env.Get("pip"), std::nullopt);
  EXPECT_EQ(env.Get("pip", Json("default")), Json("default"));
  ASSERT_TRUE(env.Set("pip", J(R"(["a", "a"])")).ok());
  EXPECT_EQ(util::DumpsSorted(*env.Get("pip")), R"({"packages": ["a"], "pip_check": false})");
  EXPECT_TRUE(env.Contains("pip"));
  EXPECT_EQ(env.Size(), 1u);
}

TEST(RuntimeEnvDict, SetValidatesKnownFields) {
  RuntimeEnv env;
  EXPECT_ERROR(env.Set("env_vars", J(R"({"A": 1})")), kTypeError,
               "runtime_env['env_vars'] must be of type Dict[str, str], but the value 1 is of type "
               "<class 'int'>");
  EXPECT_FALSE(env.Contains("env_vars"));
  ASSERT_TRUE(env.Set("plugin", J("[1]")).ok());
}

TEST(RuntimeEnvDict, SetWithValueValidatedToNoneKeepsPreviousValue) {
  RuntimeEnv env = Make(R"({"env_vars": {"A": "1"}})");
  ASSERT_TRUE(env.Set("env_vars", J("{}")).ok());
  EXPECT_EQ(env.Get("env_vars"), J(R"({"A": "1"})"));
}

TEST(RuntimeEnvDict, PopAndPopItem) {
  RuntimeEnv env = Make(R"({"a": 1, "b": 2})");
  EXPECT_ERROR(env.Pop("missing"), kKeyError, "'missing'");
  EXPECT_EQ(env.Pop("missing", Json(7)), Json(7));
  EXPECT_EQ(*env.Pop("a"), Json(1));
  auto item = env.PopItem();
  ASSERT_TRUE(item);
  EXPECT_EQ(item->first, "b");
  EXPECT_EQ(item->second, Json(2));
  EXPECT_ERROR(env.PopItem(), kKeyError, "'popitem(): dictionary is empty'");
}

TEST(RuntimeEnvDict, SetDefaultAndUpdateDoNotValidate) {
  RuntimeEnv env;
  EXPECT_EQ(env.SetDefault("pip", Json(5)), Json(5));
  EXPECT_EQ(env.SetDefault("pip", Json(6)), Json(5));
  EXPECT_EQ(env.SetDefault("plugin"), Json(nullptr));
  env.Update(J(R"({"env_vars": 3, "pip": 4})"));
  EXPECT_EQ(env.Get("env_vars"), Json(3));
  EXPECT_EQ(env.Get("pip"), Json(4));
  EXPECT_EQ(env.Keys(), (std::vector<std::string>{"pip", "plugin", "env_vars"}));
}

TEST(RuntimeEnvDict, FromKeysValidatesEachKey) {
  auto env = RuntimeEnv::FromKeys({"a", "b"}, Json(1));
  ASSERT_TRUE(env);
  EXPECT_EQ(env->Items().size(), 2u);
  EXPECT_ERROR(RuntimeEnv::FromKeys({"pip"}, Json(1)), kTypeError,
               "runtime_env['pip'] must be of type str or List[str], got <class 'int'>");
  auto dropped = RuntimeEnv::FromKeys({"env_vars"}, Json::object());
  ASSERT_TRUE(dropped);
  EXPECT_TRUE(dropped->Empty());
}

TEST(RuntimeEnvCppApi, SetGetJsonStrRemove) {
  RuntimeEnv env;
  ASSERT_TRUE(env.Set("env_vars", std::map<std::string, std::string>{{"A", "1"}}).ok());
  auto vars = env.Get<std::map<std::string, std::string>>("env_vars");
  ASSERT_TRUE(vars);
  EXPECT_EQ(vars->at("A"), "1");
  EXPECT_ERROR(env.Get<int>("env_vars"), kTypeError,
               "runtime_env field 'env_vars' has an unexpected type: "
               "[json.exception.type_error.302] type must be number, but is object");
  EXPECT_ERROR(env.Get<int>("nope"), kKeyError, "'nope'");
  ASSERT_TRUE(env.SetJsonStr("pip", R"(["requests"])").ok());
  EXPECT_EQ(*env.GetJsonStr("pip"), R"({"packages": ["requests"], "pip_check": false})");
  EXPECT_FALSE(env.SetJsonStr("pip", "not json").ok());
  EXPECT_TRUE(env.Contains("pip"));
  EXPECT_TRUE(env.Remove("pip"));
  EXPECT_FALSE(env.Remove("pip"));
  EXPECT_FALSE(env.Empty());
}

TEST(RuntimeEnvAccessors, TypedViews) {
  RuntimeEnv env = Make(
      R"({"working_dir": "s3://b/w.zip", "py_modules": ["s3://b/m.zip"], "uv": ["a"], "config": {"setup_timeout_seconds": 5}})");
  EXPECT_EQ(env.WorkingDir(), "s3://b/w.zip");
  EXPECT_EQ(env.PyModules(), (std::vector<std::string>{"s3://b/m.zip"}));
  EXPECT_EQ(env.EnvVars(), Json::object());
  EXPECT_TRUE(env.HasUv());
  EXPECT_FALSE(env.HasPip());
  EXPECT_FALSE(env.HasConda());
  EXPECT_EQ(env.Config()->setup_timeout_seconds, 5);
  EXPECT_EQ(RuntimeEnv().Config()->setup_timeout_seconds, 600);
}

TEST_F(TempDirTest, FilesAreReadRelativeToCurrentDirectory) {
  Write("req.txt", "six\n");
  Write("env.yaml", "dependencies: [pip]\n");
  EXPECT_EQ(*Make(R"({"pip": "req.txt"})").Serialize(),
            R"({"pip": {"packages": ["six"], "pip_check": false}})");
  EXPECT_EQ(*Make(R"({"conda": "env.yaml"})").Serialize(),
            R"({"conda": {"dependencies": ["pip"]}})");
}

}  // namespace
}  // namespace strata::model
