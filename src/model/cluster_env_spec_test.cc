#include "model/cluster_env_spec.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "model/test_util.h"

namespace strata::model {
namespace {

using testing::J;
using util::Json;

constexpr const char* kTopKeys =
    "expected one of base_image, env_vars, debian_packages, python, post_build_cmds";

ClusterEnvSpec Parsed(std::string_view yaml) {
  auto spec = ClusterEnvSpec::FromText(yaml, "spec.yaml");
  EXPECT_TRUE(spec.has_value()) << yaml << ": " << (spec ? "" : spec.error().message);
  return spec ? *spec : ClusterEnvSpec();
}

util::Result<ClusterEnvSpec> FromYaml(std::string_view yaml) {
  return ClusterEnvSpec::FromText(yaml, "spec.yaml");
}

// A spec with a base image and one more top-level key set to `value` (JSON).
util::Result<ClusterEnvSpec> WithKey(const std::string& key, const std::string& value) {
  auto json = util::ParseJson(R"({"base_image": "img", ")" + key + R"(": )" + value + "}");
  EXPECT_TRUE(json.has_value()) << value;
  return ClusterEnvSpec::FromJson(json ? *json : Json());
}

util::Result<ClusterEnvSpec> WithPython(const std::string& key, const std::string& value) {
  return WithKey("python", R"({")" + key + R"(": )" + value + "}");
}

// ---- the Anyscale shape ------------------------------------------------------

TEST(ClusterEnvSpec, ParsesAnyscaleExample) {
  ClusterEnvSpec spec = Parsed(R"(
base_image: localhost/debian-py:bookworm
env_vars: {MY_VAR: '123', OTHER: "a b"}
debian_packages: [hello, curl]
python:
  pip_packages: [requests==2.31.0]
  conda_packages: [numpy]
post_build_cmds: ['echo done > /built']
)");
  EXPECT_EQ(spec.base_image, "localhost/debian-py:bookworm");
  using Env = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(spec.env_vars, (Env{{"MY_VAR", "123"}, {"OTHER", "a b"}}));
  EXPECT_EQ(spec.debian_packages, (std::vector<std::string>{"hello", "curl"}));
  EXPECT_EQ(spec.pip_packages, (std::vector<std::string>{"requests==2.31.0"}));
  EXPECT_EQ(spec.conda_packages, (std::vector<std::string>{"numpy"}));
  EXPECT_EQ(spec.post_build_cmds, (std::vector<std::string>{"echo done > /built"}));
}

TEST(ClusterEnvSpec, OnlyBaseImageIsRequired) {
  ClusterEnvSpec spec = Parsed("base_image: debian:bookworm\n");
  EXPECT_EQ(spec.base_image, "debian:bookworm");
  EXPECT_TRUE(spec.env_vars.empty());
  EXPECT_TRUE(spec.debian_packages.empty());
  EXPECT_TRUE(spec.pip_packages.empty());
  EXPECT_TRUE(spec.conda_packages.empty());
  EXPECT_TRUE(spec.post_build_cmds.empty());
}

TEST(ClusterEnvSpec, NullOptionalKeysMeanEmpty) {
  ClusterEnvSpec spec = Parsed(R"(
base_image: img
env_vars:
debian_packages: ~
python:
post_build_cmds: null
)");
  EXPECT_EQ(spec, Parsed("base_image: img"));
  EXPECT_EQ(Parsed("{base_image: img, python: {pip_packages: null, conda_packages: ~}}"),
            Parsed("base_image: img"));
}

TEST(ClusterEnvSpec, EmptyCollectionsAreFine) {
  EXPECT_EQ(Parsed("{base_image: img, env_vars: {}, debian_packages: [], python: {}, "
                   "post_build_cmds: []}"),
            Parsed("base_image: img"));
}

TEST(ClusterEnvSpec, JsonIsYaml) {
  EXPECT_EQ(Parsed(R"({"base_image": "img", "debian_packages": ["hello"]})").debian_packages,
            std::vector<std::string>{"hello"});
}

TEST(ClusterEnvSpec, EnvVarsKeepFileOrder) {
  ClusterEnvSpec spec = Parsed("base_image: img\nenv_vars: {Z: '1', A: '2', M: '3'}\n");
  ASSERT_EQ(spec.env_vars.size(), 3u);
  EXPECT_EQ(spec.env_vars[0].first, "Z");
  EXPECT_EQ(spec.env_vars[1].first, "A");
  EXPECT_EQ(spec.env_vars[2].first, "M");
}

// ---- the document and its keys ---------------------------------------------

TEST(ClusterEnvSpec, TopLevelMustBeAMapping) {
  EXPECT_ERROR(FromYaml("[a, 1]"), kValueError,
               "cluster env spec: expected a mapping at the top level, got list ['a', 1]");
  EXPECT_ERROR(FromYaml("hello"), kValueError,
               "cluster env spec: expected a mapping at the top level, got str 'hello'");
  EXPECT_ERROR(FromYaml(""), kValueError,
               "cluster env spec: expected a mapping at the top level, got NoneType None");
  EXPECT_ERROR(ClusterEnvSpec::FromJson(Json(3)), kValueError,
               "cluster env spec: expected a mapping at the top level, got int 3");
}

TEST(ClusterEnvSpec, BaseImageIsRequired) {
  EXPECT_ERROR(FromYaml("env_vars: {A: b}"), kValueError,
               "cluster env spec: base_image is required");
  EXPECT_ERROR(FromYaml("base_image:"), kValueError, "cluster env spec: base_image is required");
  EXPECT_ERROR(FromYaml("{}"), kValueError, "cluster env spec: base_image is required");
}

TEST(ClusterEnvSpec, UnknownTopLevelKey) {
  EXPECT_ERROR(FromYaml("base: img"), kValueError,
               std::string("cluster env spec: unknown key 'base'; ") + kTopKeys);
  // Reported even when other keys are wrong too: a typo is the likelier cause.
  EXPECT_ERROR(FromYaml("{base_image: 3, pip_packages: [x]}"), kValueError,
               std::string("cluster env spec: unknown key 'pip_packages'; ") + kTopKeys);
}

TEST(ClusterEnvSpec, UnknownPythonKey) {
  EXPECT_ERROR(FromYaml("{base_image: img, python: {pip: [x]}}"), kValueError,
               "cluster env spec: unknown key 'python.pip'; expected one of pip_packages, "
               "conda_packages");
}

TEST(ClusterEnvSpec, FromTextPrefixesYamlErrorsWithTheSource) {
  auto result = ClusterEnvSpec::FromText("base_image: img\n  bad: [", "my-env.yaml");
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, util::ErrorKind::kValueError);
  EXPECT_EQ(result.error().message.rfind("my-env.yaml: error at line ", 0), 0u)
      << result.error().message;
}

// ---- wrong types, for every key ---------------------------------------------

util::Result<ClusterEnvSpec> WithBaseImage(const std::string& value) {
  return ClusterEnvSpec::FromJson(J((R"({"base_image": )" + value + "}").c_str()));
}

TEST(ClusterEnvSpec, BaseImageWrongTypes) {
  EXPECT_ERROR(WithBaseImage("3"), kValueError,
               "cluster env spec: base_image: expected a string, got int 3");
  EXPECT_ERROR(WithBaseImage("1.5"), kValueError,
               "cluster env spec: base_image: expected a string, got float 1.5");
  EXPECT_ERROR(WithBaseImage("true"), kValueError,
               "cluster env spec: base_image: expected a string, got bool True");
  EXPECT_ERROR(WithBaseImage(R"(["img"])"), kValueError,
               "cluster env spec: base_image: expected a string, got list ['img']");
  EXPECT_ERROR(WithBaseImage(R"({"a": "b"})"), kValueError,
               "cluster env spec: base_image: expected a string, got dict {'a': 'b'}");
}

TEST(ClusterEnvSpec, EnvVarsWrongTypes) {
  EXPECT_ERROR(WithKey("env_vars", R"(["A=b"])"), kValueError,
               "cluster env spec: env_vars: expected a mapping, got list ['A=b']");
  EXPECT_ERROR(WithKey("env_vars", R"("A=b")"), kValueError,
               "cluster env spec: env_vars: expected a mapping, got str 'A=b'");
  EXPECT_ERROR(WithKey("env_vars", "1"), kValueError,
               "cluster env spec: env_vars: expected a mapping, got int 1");
  EXPECT_ERROR(WithKey("env_vars", R"({"A": 1})"), kValueError,
               "cluster env spec: env_vars.A: expected a string, got int 1");
  EXPECT_ERROR(WithKey("env_vars", R"({"A": "x", "B": null})"), kValueError,
               "cluster env spec: env_vars.B: expected a string, got NoneType None");
  EXPECT_ERROR(WithKey("env_vars", R"({"A": ["x"]})"), kValueError,
               "cluster env spec: env_vars.A: expected a string, got list ['x']");
  EXPECT_ERROR(WithKey("env_vars", R"({"A": {"x": "y"}})"), kValueError,
               "cluster env spec: env_vars.A: expected a string, got dict {'x': 'y'}");
  EXPECT_ERROR(WithKey("env_vars", R"({"A": 2.5})"), kValueError,
               "cluster env spec: env_vars.A: expected a string, got float 2.5");
}

// Every list-of-strings key: the key itself and an item of it.
TEST(ClusterEnvSpec, ListWrongTypes) {
  struct Case {
    std::string path;
    std::function<util::Result<ClusterEnvSpec>(const std::string&)> with;
  };
  std::vector<Case> cases = {
      {"debian_packages", [](const std::string& v) { return WithKey("debian_packages", v); }},
      {"post_build_cmds", [](const std::string& v) { return WithKey("post_build_cmds", v); }},
      {"python.pip_packages", [](const std::string& v) { return WithPython("pip_packages", v); }},
      {"python.conda_packages",
       [](const std::string& v) { return WithPython("conda_packages", v); }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    const std::string prefix = "cluster env spec: " + c.path;
    EXPECT_ERROR(c.with(R"("hello")"), kValueError, prefix + ": expected a list, got str 'hello'");
    EXPECT_ERROR(c.with("7"), kValueError, prefix + ": expected a list, got int 7");
    EXPECT_ERROR(c.with("false"), kValueError, prefix + ": expected a list, got bool False");
    EXPECT_ERROR(c.with(R"({"a": 1})"), kValueError,
                 prefix + ": expected a list, got dict {'a': 1}");
    EXPECT_ERROR(c.with(R"(["abc", 3])"), kValueError,
                 prefix + "[1]: expected a string, got int 3");
    EXPECT_ERROR(c.with(R"([null])"), kValueError,
                 prefix + "[0]: expected a string, got NoneType None");
    EXPECT_ERROR(c.with(R"(["abc", ["x"]])"), kValueError,
                 prefix + "[1]: expected a string, got list ['x']");
    EXPECT_ERROR(c.with(R"([{"k": "v"}])"), kValueError,
                 prefix + "[0]: expected a string, got dict {'k': 'v'}");
    EXPECT_ERROR(c.with(R"([true])"), kValueError,
                 prefix + "[0]: expected a string, got bool True");
    EXPECT_ERROR(c.with(R"([0.5])"), kValueError, prefix + "[0]: expected a string, got float 0.5");
    EXPECT_ERROR(c.with(R"(["abc", ""])"), kValueError, prefix + "[1]: must not be empty");
  }
}

TEST(ClusterEnvSpec, PythonWrongTypes) {
  EXPECT_ERROR(WithKey("python", R"(["requests"])"), kValueError,
               "cluster env spec: python: expected a mapping, got list ['requests']");
  EXPECT_ERROR(WithKey("python", R"("3.11")"), kValueError,
               "cluster env spec: python: expected a mapping, got str '3.11'");
  EXPECT_ERROR(WithKey("python", "3.11"), kValueError,
               "cluster env spec: python: expected a mapping, got float 3.11");
}

TEST(ClusterEnvSpec, ErrorsNameTheHeaderExample) {
  EXPECT_ERROR(FromYaml("{base_image: img, python: {pip_packages: [requests, 3]}}"), kValueError,
               "cluster env spec: python.pip_packages[1]: expected a string, got int 3");
}

// ---- YAML typing gotchas ----------------------------------------------------

TEST(ClusterEnvSpec, UnquotedNumberIsNotAString) {
  EXPECT_ERROR(FromYaml("base_image: img\nenv_vars: {MY_VAR: 123}\n"), kValueError,
               "cluster env spec: env_vars.MY_VAR: expected a string, got int 123");
  EXPECT_ERROR(FromYaml("base_image: img\nenv_vars: {MY_VAR: 0755}\n"), kValueError,
               "cluster env spec: env_vars.MY_VAR: expected a string, got int 493");
  EXPECT_ERROR(FromYaml("base_image: img\nenv_vars: {MY_VAR: 1.0}\n"), kValueError,
               "cluster env spec: env_vars.MY_VAR: expected a string, got float 1.0");
}

TEST(ClusterEnvSpec, YamlOneOneBooleansAreNotStrings) {
  EXPECT_ERROR(FromYaml("base_image: img\nenv_vars: {MY_VAR: yes}\n"), kValueError,
               "cluster env spec: env_vars.MY_VAR: expected a string, got bool True");
  EXPECT_ERROR(FromYaml("base_image: img\nenv_vars: {MY_VAR: off}\n"), kValueError,
               "cluster env spec: env_vars.MY_VAR: expected a string, got bool False");
  EXPECT_ERROR(FromYaml("base_image: img\ndebian_packages: [hello, no]\n"), kValueError,
               "cluster env spec: debian_packages[1]: expected a string, got bool False");
}

TEST(ClusterEnvSpec, QuotedScalarsAreStrings) {
  ClusterEnvSpec spec = Parsed("base_image: img\nenv_vars: {A: '123', B: \"yes\", C: !!str 1}\n");
  using Env = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(spec.env_vars, (Env{{"A", "123"}, {"B", "yes"}, {"C", "1"}}));
}

TEST(ClusterEnvSpec, NonStringYamlKeysBecomeNamesThatFailTheRules) {
  // PyYAML's key 1 is json.dumps' "1": not a valid variable name.
  EXPECT_ERROR(FromYaml("base_image: img\nenv_vars: {1: 'x'}\n"), kValueError,
               "cluster env spec: env_vars: '1' is not a valid variable name; expected "
               "[A-Za-z_][A-Za-z0-9_]*");
}

// ---- value rules --------------------------------------------------------------

TEST(ClusterEnvSpec, EnvVarNames) {
  for (const char* name : {"A", "_", "_x", "MY_VAR", "lower", "a1", "A_1_b"}) {
    SCOPED_TRACE(name);
    auto spec = WithKey("env_vars", std::string(R"({")") + name + R"(": "v"})");
    ASSERT_TRUE(spec.has_value()) << spec.error().message;
    EXPECT_EQ(spec->env_vars.at(0).first, name);
  }
  for (const char* name : {"", "1A", "MY-VAR", "A B", "A=B", "A.B", "$A", "\\u00e9"}) {
    SCOPED_TRACE(name);
    auto json =
        J((std::string(R"({"base_image": "img", "env_vars": {")") + name + R"(": "v"}})").c_str());
    auto spec = ClusterEnvSpec::FromJson(json);
    ASSERT_FALSE(spec.has_value());
    std::string shown = util::PyRepr(json["env_vars"].items().begin().key());
    EXPECT_EQ(spec.error().message, "cluster env spec: env_vars: " + shown +
                                        " is not a valid variable name; expected "
                                        "[A-Za-z_][A-Za-z0-9_]*");
  }
  EXPECT_ERROR(WithKey("env_vars", R"({"A\nB": "v"})"), kValueError,
               "cluster env spec: env_vars: 'A\\nB' is not a valid variable name; expected "
               "[A-Za-z_][A-Za-z0-9_]*");
}

TEST(ClusterEnvSpec, DebianPackageNames) {
  for (const char* name :
       {"hello", "libc6-dev", "g++", "python3.11", "hello=2.10-3", "hello/bookworm", "0ad",
        "hello=1:2.10~rc1+dfsg-3", "hello/bookworm-backports"}) {
    SCOPED_TRACE(name);
    auto spec = WithKey("debian_packages", std::string(R"([")") + name + R"("])");
    ASSERT_TRUE(spec.has_value()) << spec.error().message;
    EXPECT_EQ(spec->debian_packages, std::vector<std::string>{name});
  }
  for (const char* name : {"Hello", "-x", "a b", "x;rm -rf /", "h", "hello=", "hello/", "=1",
                           "hello=1 2", "hello/a/b", "hello=1=2", "héllo", "$(id)", "a*"}) {
    SCOPED_TRACE(name);
    Json json = J(R"({"base_image": "img", "debian_packages": ["ok"]})");
    json["debian_packages"].push_back(name);
    auto spec = ClusterEnvSpec::FromJson(json);
    ASSERT_FALSE(spec.has_value());
    EXPECT_EQ(spec.error().kind, util::ErrorKind::kValueError);
    EXPECT_EQ(spec.error().message,
              "cluster env spec: debian_packages[1]: " + util::PyRepr(Json(name)) +
                  " is not a valid Debian package name; expected NAME, NAME=VERSION or "
                  "NAME/RELEASE with NAME of [a-z0-9][a-z0-9+.-]+");
  }
  EXPECT_ERROR(WithKey("debian_packages", R"([""])"), kValueError,
               "cluster env spec: debian_packages[0]: must not be empty");
}

TEST(ClusterEnvSpec, EmptyEnvValuesAreKept) {
  auto spec = model::ClusterEnvSpec::FromJson(
      util::Json::parse(R"({"base_image": "x", "env_vars": {"A": ""}})"));
  ASSERT_TRUE(spec) << spec.error().message;
  ASSERT_EQ(spec->env_vars.size(), 1u);
  EXPECT_EQ(spec->env_vars[0].second, "");
}

TEST(ClusterEnvSpec, EmptyStringsAreRejected) {
  EXPECT_ERROR(WithBaseImage(R"("")"), kValueError,
               "cluster env spec: base_image: must not be empty");
  EXPECT_ERROR(WithKey("post_build_cmds", R"([""])"), kValueError,
               "cluster env spec: post_build_cmds[0]: must not be empty");
}

TEST(ClusterEnvSpec, LineBreaksOnlyInPostBuildCmds) {
  ClusterEnvSpec spec =
      Parsed("base_image: img\npost_build_cmds:\n  - |\n    set -e\n    echo \"$HOME\" > /x\n");
  EXPECT_EQ(spec.post_build_cmds, std::vector<std::string>{"set -e\necho \"$HOME\" > /x\n"});

  const std::string single = ": must not contain a line break or NUL character, got ";
  EXPECT_ERROR(WithBaseImage(R"("img\nRUN id")"), kValueError,
               "cluster env spec: base_image" + single + "'img\\nRUN id'");
  EXPECT_ERROR(WithKey("env_vars", R"({"A": "x\ny"})"), kValueError,
               "cluster env spec: env_vars.A" + single + "'x\\ny'");
  EXPECT_ERROR(WithKey("env_vars", R"({"A": "x\ry"})"), kValueError,
               "cluster env spec: env_vars.A" + single + "'x\\ry'");
  EXPECT_ERROR(WithKey("debian_packages", R"(["hello\n"])"), kValueError,
               "cluster env spec: debian_packages[0]" + single + "'hello\\n'");
  EXPECT_ERROR(WithPython("pip_packages", R"(["a", "requests\nflask"])"), kValueError,
               "cluster env spec: python.pip_packages[1]" + single + "'requests\\nflask'");
  EXPECT_ERROR(WithPython("conda_packages", R"(["numpy\r"])"), kValueError,
               "cluster env spec: python.conda_packages[0]" + single + "'numpy\\r'");
}

TEST(ClusterEnvSpec, NulIsRejectedEverywhere) {
  EXPECT_ERROR(WithKey("post_build_cmds", R"(["echo a\u0000b"])"), kValueError,
               "cluster env spec: post_build_cmds[0]: must not contain a NUL character, got "
               "'echo a\\x00b'");
  EXPECT_ERROR(WithKey("env_vars", R"({"A": "a\u0000"})"), kValueError,
               "cluster env spec: env_vars.A: must not contain a line break or NUL character, got "
               "'a\\x00'");
  EXPECT_ERROR(WithPython("pip_packages", R"(["a\u0000"])"), kValueError,
               "cluster env spec: python.pip_packages[0]: must not contain a line break or NUL "
               "character, got 'a\\x00'");
}

TEST(ClusterEnvSpec, BaseImageHoldsNoWhitespace) {
  EXPECT_ERROR(WithBaseImage(R"("--platform=linux/arm64 img")"), kValueError,
               "cluster env spec: base_image: must not contain whitespace, got "
               "'--platform=linux/arm64 img'");
  EXPECT_ERROR(WithBaseImage(R"("img\tAS x")"), kValueError,
               "cluster env spec: base_image: must not contain whitespace, got 'img\\tAS x'");
}

TEST(ClusterEnvSpec, OtherStringsMayHoldAnyPrintableText) {
  ClusterEnvSpec spec = Parsed(R"(
base_image: registry.example.com:5000/team/img@sha256:0123
env_vars: {A: 'a "b" \c $d ${e} `f` é'}
python:
  pip_packages: ["requests[socks]>=2; python_version >= '3.8'", "-e ./x"]
  conda_packages: ["numpy>=1.24"]
)");
  EXPECT_EQ(spec.env_vars.at(0).second, "a \"b\" \\c $d ${e} `f` é");
  EXPECT_EQ(spec.pip_packages.at(0), "requests[socks]>=2; python_version >= '3.8'");
}

// ---- canonical JSON ---------------------------------------------------------

ClusterEnvSpec Full() {
  ClusterEnvSpec spec;
  spec.base_image = "localhost/debian-py:bookworm";
  spec.env_vars = {{"Z", "1"}, {"A", "two words"}};
  spec.debian_packages = {"hello", "curl"};
  spec.pip_packages = {"requests==2.31.0"};
  spec.conda_packages = {"numpy"};
  spec.post_build_cmds = {"echo done > /built", "line1\nline2"};
  return spec;
}

TEST(ClusterEnvSpec, ToJsonHasEveryKeyInFixedOrder) {
  EXPECT_EQ(
      Full().ToJson().dump(),
      R"({"base_image":"localhost/debian-py:bookworm","env_vars":{"Z":"1","A":"two words"},)"
      R"("debian_packages":["hello","curl"],"python":{"pip_packages":["requests==2.31.0"],)"
      R"("conda_packages":["numpy"]},"post_build_cmds":["echo done > /built","line1\nline2"]})");
  ClusterEnvSpec minimal;
  minimal.base_image = "img";
  EXPECT_EQ(minimal.ToJson().dump(),
            R"({"base_image":"img","env_vars":{},"debian_packages":[],)"
            R"("python":{"pip_packages":[],"conda_packages":[]},"post_build_cmds":[]})");
}

TEST(ClusterEnvSpec, ToJsonRoundTrips) {
  for (const ClusterEnvSpec& spec : {Full(), Parsed("base_image: img")}) {
    auto back = ClusterEnvSpec::FromJson(spec.ToJson());
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(*back, spec);
    EXPECT_EQ(back->ToJson().dump(), spec.ToJson().dump());
    // Through text too, as a build stores it.
    auto reparsed = ClusterEnvSpec::FromText(spec.ToJson().dump(), "frozen.json");
    ASSERT_TRUE(reparsed.has_value()) << reparsed.error().message;
    EXPECT_EQ(*reparsed, spec);
  }
}

TEST(ClusterEnvSpec, SameSpecDifferentSpellingIsEqual) {
  EXPECT_EQ(Parsed("base_image: img\ndebian_packages: [hello]\npython: {}\n"),
            Parsed(R"({"debian_packages": ["hello"], "base_image": "img", "env_vars": null})"));
}

TEST(ClusterEnvSpec, EqualityLooksAtEveryField) {
  const ClusterEnvSpec base = Full();
  EXPECT_EQ(base, Full());
  std::vector<ClusterEnvSpec> changed(6, base);
  changed[0].base_image = "other";
  changed[1].env_vars = {{"A", "two words"}, {"Z", "1"}};  // order matters
  changed[2].debian_packages.pop_back();
  changed[3].pip_packages.push_back("flask");
  changed[4].conda_packages.clear();
  changed[5].post_build_cmds[1] = "line1";
  for (const ClusterEnvSpec& other : changed) {
    EXPECT_FALSE(other == base) << other.ToJson().dump();
    EXPECT_NE(other.ToJson().dump(), base.ToJson().dump());
  }
}

// ---- names and references ---------------------------------------------------

TEST(ClusterEnvName, Valid) {
  for (const std::string& name :
       std::vector<std::string>{"ml", "a", "0", "my-env_2.1", std::string(100, 'x')}) {
    EXPECT_TRUE(ValidateClusterEnvName(name).ok()) << name;
  }
}

TEST(ClusterEnvName, Invalid) {
  for (const std::string& name : std::vector<std::string>{
           "", "Ml", "-ml", ".ml", "_ml", "m l", "ml:1", "ml/x", "é", std::string(101, 'x')}) {
    util::Status status = ValidateClusterEnvName(name);
    ASSERT_FALSE(status.ok()) << name;
    EXPECT_EQ(status.error().kind, util::ErrorKind::kValueError);
    EXPECT_EQ(status.error().message, "cluster env name " + util::PyRepr(Json(name)) +
                                          " is invalid; expected 1 to 100 characters of "
                                          "[a-z0-9_.-] starting with a letter or digit");
  }
}

TEST(ClusterEnvRef, ParsesAndPrints) {
  auto ref = ParseClusterEnvRef("ml:1");
  ASSERT_TRUE(ref.has_value()) << ref.error().message;
  EXPECT_EQ(ref->name, "ml");
  EXPECT_EQ(ref->version, 1);
  EXPECT_EQ(ref->ToString(), "ml:1");
  auto big = ParseClusterEnvRef("my-env.v2:2147483647");
  ASSERT_TRUE(big.has_value()) << big.error().message;
  EXPECT_EQ(big->version, 2147483647);
  EXPECT_EQ(big->ToString(), "my-env.v2:2147483647");
  EXPECT_EQ((ClusterEnvRef{"x", 12}).ToString(), "x:12");
}

TEST(ClusterEnvRef, MissingVersion) {
  EXPECT_ERROR(ParseClusterEnvRef("ml"), kValueError,
               "cluster env reference 'ml' must look like NAME:VERSION, e.g. ml:1");
  EXPECT_ERROR(ParseClusterEnvRef("my-env"), kValueError,
               "cluster env reference 'my-env' must look like NAME:VERSION, e.g. my-env:1");
  EXPECT_ERROR(ParseClusterEnvRef(""), kValueError,
               "cluster env reference '' must look like NAME:VERSION, e.g. ml:1");
  EXPECT_ERROR(ParseClusterEnvRef("Bad Name"), kValueError,
               "cluster env reference 'Bad Name' must look like NAME:VERSION, e.g. ml:1");
}

TEST(ClusterEnvRef, BadVersion) {
  for (const char* text : {"ml:", "ml:0", "ml:-1", "ml:+1", "ml:01", "ml:1.0", "ml:x", "ml:1:2",
                           "ml: 1", "ml:2147483648", "ml:99999999999999999999"}) {
    SCOPED_TRACE(text);
    EXPECT_ERROR(ParseClusterEnvRef(text), kValueError,
                 "cluster env reference " + util::PyRepr(Json(text)) +
                     ": version must be a positive integer, e.g. ml:1");
  }
}

TEST(ClusterEnvRef, BadName) {
  EXPECT_ERROR(ParseClusterEnvRef("ML:1"), kValueError,
               "cluster env name 'ML' is invalid; expected 1 to 100 characters of [a-z0-9_.-] "
               "starting with a letter or digit");
  EXPECT_ERROR(ParseClusterEnvRef(":1"), kValueError,
               "cluster env name '' is invalid; expected 1 to 100 characters of [a-z0-9_.-] "
               "starting with a letter or digit");
}

}  // namespace
}  // namespace strata::model
