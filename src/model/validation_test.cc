#include "model/validation.h"

#include <gtest/gtest.h>

#include "model/runtime_env_config.h"
#include "model/test_util.h"

namespace strata::model {
namespace {

using testing::J;
using testing::TempDirTest;

Json Validated(FieldValidator validate, const char* input) {
  auto result = validate(J(input));
  EXPECT_TRUE(result.has_value()) << input << ": " << (result ? "" : result.error().message);
  if (!result || !result->has_value()) return Json("<dropped>");
  return **result;
}

bool Dropped(FieldValidator validate, const char* input) {
  auto result = validate(J(input));
  return result.has_value() && !result->has_value();
}

// ---- pip -------------------------------------------------------------------

TEST(ValidatePip, ListBecomesDictWithPipCheck) {
  EXPECT_EQ(util::DumpsSorted(Validated(ValidatePip, R"(["requests", "numpy==1.24"])")),
            R"({"packages": ["requests", "numpy==1.24"], "pip_check": false})");
}

TEST(ValidatePip, DeduplicatesKeepingFirstOccurrence) {
  EXPECT_EQ(Validated(ValidatePip, R"(["b", "a", "b", "a", "c"])")["packages"],
            J(R"(["b", "a", "c"])"));
}

TEST(ValidatePip, EmptyListDropsField) {
  EXPECT_TRUE(Dropped(ValidatePip, "[]"));
  EXPECT_TRUE(Dropped(ValidatePip, R"({"packages": []})"));
}

TEST(ValidatePip, DictKeepsOptionsAndDefaultsPipCheck) {
  Json out = Validated(
      ValidatePip,
      R"({"packages": ["x"], "pip_version": "==22.0.2;python_version=='3.8.11'", "pip_install_options": ["--no-deps"]})");
  EXPECT_EQ(util::DumpsSorted(out),
            R"({"packages": ["x"], "pip_check": false, "pip_install_options": ["--no-deps"], )"
            R"("pip_version": "==22.0.2;python_version=='3.8.11'"})");
  EXPECT_EQ(Validated(ValidatePip, R"({"packages": ["x"], "pip_check": true})")["pip_check"],
            Json(true));
}

TEST(ValidatePip, DictDoesNotDefaultInstallOptions) {
  EXPECT_FALSE(Validated(ValidatePip, R"({"packages": ["x"]})").contains("pip_install_options"));
}

TEST(ValidatePip, DictPackagesAreNotTypeChecked) {
  EXPECT_EQ(Validated(ValidatePip, R"({"packages": [1, 1.0, true, 2]})")["packages"], J("[1, 2]"));
}

TEST(ValidatePip, UnhashablePackageIsTypeError) {
  EXPECT_ERROR(ValidatePip(J(R"({"packages": [[1]]})")), kTypeError, "unhashable type: 'list'");
}

TEST_F(TempDirTest, PipRequirementsFileIsReadAndStripped) {
  Write("requirements.txt",
        "\n requests==2.28\r\n# comment\n\n--extra-index-url http://x\nsix \n\n");
  Json out = Validated(ValidatePip, R"("requirements.txt")");
  EXPECT_EQ(out["packages"],
            J(R"(["requests==2.28", "# comment", "", "--extra-index-url http://x", "six"])"));
  EXPECT_EQ(out["pip_check"], Json(false));
  Json dict = Validated(ValidatePip, R"({"packages": "./requirements.txt", "pip_check": true})");
  EXPECT_EQ(dict["packages"][0], Json("requests==2.28"));
  EXPECT_EQ(dict["pip_check"], Json(true));
}

TEST_F(TempDirTest, PipEmptyRequirementsFileKeepsOneEmptyLine) {
  Write("empty.txt", "  \n");
  EXPECT_EQ(Validated(ValidatePip, R"("empty.txt")")["packages"], J(R"([""])"));
}

TEST_F(TempDirTest, PipMissingRequirementsFile) {
  EXPECT_ERROR(ValidatePip(J(R"("./nope//req.txt")")), kValueError,
               "nope/req.txt is not a valid file");
  EXPECT_ERROR(ValidatePip(J(R"({"packages": "missing.txt"})")), kValueError,
               "missing.txt is not a valid file");
}

TEST_F(TempDirTest, PipRequirementsFileMustBeUtf8) {
  Write("bad.txt", "ok\n\xff\n");
  EXPECT_ERROR(ValidatePip(J(R"("bad.txt")")), kValueError,
               "'utf-8' codec can't decode byte 0xff in position 3: invalid start byte");
}

TEST(ValidatePip, Errors) {
  EXPECT_ERROR(ValidatePip(J("1")), kTypeError,
               "runtime_env['pip'] must be of type str or List[str], got <class 'int'>");
  EXPECT_ERROR(ValidatePip(J(R"(["a", 1])")), kTypeError,
               "runtime_env['pip'] must be of type str or List[str], got <class 'list'>");
  EXPECT_ERROR(ValidatePip(J(R"({"packages": ["a"], "foo": 1})")), kValueError,
               "runtime_env['pip'] can only have these fields: packages, pip_check, "
               "pip_install_options and pip_version, but got: ['packages', 'foo']");
  EXPECT_ERROR(ValidatePip(J(R"({"packages": ["a"], "pip_check": "yes"})")), kTypeError,
               "runtime_env['pip']['pip_check'] must be of type bool, got <class 'str'>");
  EXPECT_ERROR(ValidatePip(J(R"({"packages": ["a"], "pip_version": 22})")), kTypeError,
               "runtime_env['pip']['pip_version'] must be of type str, got <class 'int'>");
  EXPECT_ERROR(ValidatePip(J(R"({"packages": ["a"], "pip_install_options": "--x"})")), kTypeError,
               "runtime_env['pip']['pip_install_options'] must be of type list[str] got "
               "<class 'str'>");
  EXPECT_ERROR(ValidatePip(J(R"({"packages": ["a"], "pip_install_options": ["--x", 3]})")),
               kTypeError,
               "runtime_env['pip']['pip_install_options'] must be of type list[str] got "
               "<class 'int'> for 1-th item.");
  EXPECT_ERROR(ValidatePip(J(R"({"pip_check": false})")), kValueError,
               "runtime_env['pip'] must include field 'packages', but got {'pip_check': False}");
  EXPECT_ERROR(ValidatePip(J(R"({"packages": 5})")), kValueError,
               "runtime_env['pip']['packages'] must be of type str of list, got: <class 'int'>");
}

TEST(ValidatePip, TypeChecksComeBeforeMissingPackages) {
  EXPECT_ERROR(ValidatePip(J(R"({"pip_check": 1})")), kTypeError,
               "runtime_env['pip']['pip_check'] must be of type bool, got <class 'int'>");
}

// ---- uv --------------------------------------------------------------------

TEST(ValidateUv, ListGetsOnlyUvCheck) {
  EXPECT_EQ(util::DumpsSorted(Validated(ValidateUv, R"(["a", "a", "b"])")),
            R"({"packages": ["a", "b"], "uv_check": false})");
}

TEST(ValidateUv, DictGetsBothDefaults) {
  EXPECT_EQ(util::DumpsSorted(Validated(ValidateUv, R"({"packages": ["a"]})")),
            R"({"packages": ["a"], "uv_check": false, "uv_pip_install_options": ["--no-cache"]})");
  EXPECT_EQ(
      util::DumpsSorted(
          Validated(ValidateUv,
                    R"({"packages": ["a"], "uv_version": "==0.4", "uv_pip_install_options": []})")),
      R"({"packages": ["a"], "uv_check": false, "uv_pip_install_options": [], "uv_version": "==0.4"})");
}

TEST(ValidateUv, EmptyPackagesDropField) {
  EXPECT_TRUE(Dropped(ValidateUv, "[]"));
  EXPECT_TRUE(Dropped(ValidateUv, R"({"packages": []})"));
}

TEST_F(TempDirTest, UvRequirementsFile) {
  Write("req.txt", "a\nb\n");
  EXPECT_EQ(util::DumpsSorted(Validated(ValidateUv, R"("req.txt")")),
            R"({"packages": ["a", "b"], "uv_check": false})");
  EXPECT_ERROR(ValidateUv(J(R"("nope.txt")")), kValueError, "nope.txt is not a valid file");
}

TEST(ValidateUv, Errors) {
  EXPECT_ERROR(ValidateUv(J("3.5")), kTypeError,
               "runtime_env['uv'] must be of type List[str], or dict, got <class 'float'>");
  EXPECT_ERROR(ValidateUv(J(R"({"packages": [], "pip_check": true})")), kValueError,
               "runtime_env['uv'] can only have these fields: packages, uv_check, uv_version and "
               "uv_pip_install_options, but got: ['packages', 'pip_check']");
  // Unlike pip, a missing 'packages' is reported before type errors.
  EXPECT_ERROR(ValidateUv(J(R"({"uv_check": 1})")), kValueError,
               "runtime_env['uv'] must include field 'packages', but got {'uv_check': 1}");
  EXPECT_ERROR(ValidateUv(J(R"({"packages": [], "uv_check": 1})")), kTypeError,
               "runtime_env['uv']['uv_check'] must be of type bool, got <class 'int'>");
  EXPECT_ERROR(ValidateUv(J(R"({"packages": [], "uv_version": null})")), kTypeError,
               "runtime_env['uv']['uv_version'] must be of type str, got <class 'NoneType'>");
  EXPECT_ERROR(ValidateUv(J(R"({"packages": [], "uv_pip_install_options": {}})")), kTypeError,
               "runtime_env['uv']['uv_pip_install_options'] must be of type list[str] got "
               "<class 'dict'>");
  EXPECT_ERROR(ValidateUv(J(R"({"packages": [], "uv_pip_install_options": [null]})")), kTypeError,
               "runtime_env['uv']['uv_pip_install_options'] must be of type list[str] got "
               "<class 'NoneType'> for 0-th item.");
  EXPECT_ERROR(ValidateUv(J(R"({"packages": "req.txt"})")), kValueError,
               "runtime_env['uv']['packages'] must be of type list, got: <class 'str'>");
}

// ---- conda -----------------------------------------------------------------

TEST(ValidateConda, DictAndNamePassThrough) {
  EXPECT_EQ(Validated(ValidateConda, R"({"dependencies": ["codecov"]})"),
            J(R"({"dependencies": ["codecov"]})"));
  EXPECT_EQ(Validated(ValidateConda, R"("pytorch_p36")"), Json("pytorch_p36"));
}

TEST_F(TempDirTest, CondaYamlFileIsParsed) {
  Write("env/environment.yml",
        "name: demo\nchannels: [defaults]\ndependencies:\n  - python=3.11\n  - pip:\n    - six\n");
  EXPECT_EQ(util::DumpsSorted(Validated(ValidateConda, R"("env/environment.yml")")),
            R"({"channels": ["defaults"], "dependencies": ["python=3.11", {"pip": ["six"]}], )"
            R"("name": "demo"})");
}

TEST_F(TempDirTest, CondaYamlErrors) {
  EXPECT_ERROR(ValidateConda(J(R"("./missing.yaml")")), kValueError,
               "Can't find conda YAML file missing.yaml.");
  Write("bad.yaml", "a: [1, 2\n");
  auto bad = ValidateConda(J(R"("bad.yaml")"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, util::ErrorKind::kValueError);
  EXPECT_TRUE(bad.error().message.starts_with("Failed to read conda file bad.yaml: "))
      << bad.error().message;
}

TEST_F(TempDirTest, CondaEmptyYamlDropsField) {
  Write("empty.yaml", "");
  EXPECT_TRUE(Dropped(ValidateConda, R"("empty.yaml")"));
}

TEST_F(TempDirTest, CondaAbsoluteEnvDirectory) {
  std::string dir = (dir_ / "envs" / "myenv").string();
  std::filesystem::create_directories(dir);
  EXPECT_EQ(Validated(ValidateConda, ("\"" + dir + "//\"").c_str()), Json(dir));
  EXPECT_ERROR(ValidateConda(Json("/no/such/env")), kValueError,
               "Can't find conda env directory /no/such/env.");
}

TEST(ValidateConda, WrongType) {
  EXPECT_ERROR(ValidateConda(J("[1]")), kTypeError,
               "runtime_env['conda'] must be of type str or dict, got <class 'list'>.");
}

// ---- env_vars --------------------------------------------------------------

TEST(ValidateEnvVars, Accepted) {
  EXPECT_EQ(Validated(ValidateEnvVars, R"({"A": "1", "B": "${A}x"})"),
            J(R"({"A": "1", "B": "${A}x"})"));
}

TEST(ValidateEnvVars, EmptyValuesAreDroppedWhateverTheirType) {
  EXPECT_TRUE(Dropped(ValidateEnvVars, "{}"));
  EXPECT_TRUE(Dropped(ValidateEnvVars, "[]"));
  EXPECT_TRUE(Dropped(ValidateEnvVars, R"("")"));
}

TEST(ValidateEnvVars, Errors) {
  EXPECT_ERROR(ValidateEnvVars(J(R"({"A": 1})")), kTypeError,
               "runtime_env['env_vars'] must be of type Dict[str, str], but the value 1 is of type "
               "<class 'int'>");
  EXPECT_ERROR(ValidateEnvVars(J(R"({"A": "x", "B": null})")), kTypeError,
               "runtime_env['env_vars'] must be of type Dict[str, str], but the value None is of "
               "type <class 'NoneType'>");
  EXPECT_ERROR(ValidateEnvVars(J(R"(["A=1"])")), kTypeError,
               "runtime_env['env_vars'] must be of type Dict[str, str], got <class 'list'>");
  EXPECT_ERROR(ValidateEnvVars(J(R"("A=1")")), kTypeError,
               "runtime_env['env_vars'] must be of type Dict[str, str], got <class 'str'>");
  // Ray calls len() first, so values without a length fail there.
  EXPECT_ERROR(ValidateEnvVars(J("5")), kTypeError, "object of type 'int' has no len()");
  EXPECT_ERROR(ValidateEnvVars(J("true")), kTypeError, "object of type 'bool' has no len()");
}

// ---- excludes --------------------------------------------------------------

TEST(ValidateExcludes, AcceptedAndEmpty) {
  EXPECT_EQ(Validated(ValidateExcludes, R"(["*.log", "/build"])"), J(R"(["*.log", "/build"])"));
  EXPECT_TRUE(Dropped(ValidateExcludes, "[]"));
}

TEST(ValidateExcludes, Errors) {
  EXPECT_ERROR(ValidateExcludes(J(R"("*.log")")), kTypeError,
               "runtime_env['excludes'] must be of type List[str], got <class 'str'>");
  EXPECT_ERROR(ValidateExcludes(J(R"(["a", 2])")), kTypeError,
               "runtime_env['excludes'] must be of type List[str], got <class 'list'>");
}

// ---- working_dir and py_modules ------------------------------------------

TEST_F(TempDirTest, WorkingDirLocalPathMustExist) {
  std::filesystem::create_directory("project");
  EXPECT_EQ(Validated(ValidateWorkingDir, R"("./project")"), Json("./project"));
  EXPECT_EQ(Validated(ValidateWorkingDir, R"(".")"), Json("."));
  EXPECT_ERROR(ValidateWorkingDir(J(R"("./missing/")")), kValueError,
               "missing is not a valid path.");
}

TEST(ValidateWorkingDir, Uris) {
  for (const char* uri :
       {"gcs://_strata_pkg_0123456789abcdef0123456789abcdef.zip", "s3://bucket/pkg.zip",
        "https://example.com/a/b.tar.gz", "http://h/x.tgz", "gs://b/p.whl", "file:///tmp/x.zip",
        "s3://bucket/pkg.tar.xz", "https://example.com/x.zip?token=1"}) {
    EXPECT_EQ(Validated(ValidateWorkingDir, ("\"" + std::string(uri) + "\"").c_str()), Json(uri));
  }
  EXPECT_ERROR(ValidateWorkingDir(J(R"("s3://bucket/pkg.tar.bz2")")), kValueError,
               "Only .zip, .whl, .tar.gz, and .tgz files supported for remote URIs.");
  EXPECT_ERROR(ValidateWorkingDir(J(R"("https://example.com/dir")")), kValueError,
               "Only .zip, .whl, .tar.gz, and .tgz files supported for remote URIs.");
  EXPECT_ERROR(ValidateWorkingDir(J(R"("ftp://host/x.zip")")), kValueError,
               "ftp://host/x.zip is not a valid URI. Passing directories or modules to be "
               "dynamically uploaded is only supported at the job level (i.e., passed to "
               "`ray.init`).");
  EXPECT_ERROR(ValidateWorkingDir(J("1")), kTypeError,
               "`working_dir` must be a string, got <class 'int'>.");
}

TEST_F(TempDirTest, PyModules) {
  std::filesystem::create_directory("mod");
  Write("pkg-1.0-py3-none-any.whl", "");
  EXPECT_EQ(Validated(ValidatePyModules, R"(["mod", "pkg-1.0-py3-none-any.whl", "s3://b/m.zip"])"),
            J(R"(["mod", "pkg-1.0-py3-none-any.whl", "s3://b/m.zip"])"));
  EXPECT_EQ(Validated(ValidatePyModules, "[]"), J("[]"));
  EXPECT_ERROR(ValidatePyModules(J(R"("mod")")), kTypeError,
               "`py_modules` must be a list of strings, got <class 'str'>.");
  EXPECT_ERROR(ValidatePyModules(J(R"(["mod", 1])")), kTypeError,
               "`py_module` must be a string, got <class 'int'>.");
  EXPECT_ERROR(ValidatePyModules(J(R"(["missing"])")), kValueError, "missing is not a valid path.");
}

TEST_F(TempDirTest, NoLocalPathsAtTaskLevel) {
  std::filesystem::create_directory("project");
  EXPECT_TRUE(
      ValidateNoLocalPaths(
          J(R"({"working_dir": "s3://b/x.zip", "py_modules": ["gcs://_strata_pkg_ab.zip"]})"))
          .ok());
  EXPECT_ERROR(ValidateNoLocalPaths(J(R"({"working_dir": "project"})")), kValueError,
               "project is not a valid URI. Passing directories or modules to be dynamically "
               "uploaded is only supported at the job level (i.e., passed to `ray.init`).");
  EXPECT_ERROR(ValidateNoLocalPaths(J(R"({"py_modules": ["s3://b/x.zip", "."]})")), kValueError,
               ". is not a valid URI. Passing directories or modules to be dynamically "
               "uploaded is only supported at the job level (i.e., passed to `ray.init`).");
  EXPECT_ERROR(ValidateNoLocalPaths(J(R"({"py_modules": "x"})")), kTypeError,
               "`py_modules` must be a list of strings, got <class 'str'>.");
}

// ---- py_executable, container --------------------------------------------

TEST(ValidatePyExecutable, AcceptedAndErrors) {
  EXPECT_EQ(Validated(ValidatePyExecutable, R"("uv run --python 3.11 python")"),
            Json("uv run --python 3.11 python"));
  EXPECT_ERROR(ValidatePyExecutable(J("[]")), kTypeError,
               "runtime_env['py_executable'] must be of type str, got <class 'list'>");
  EXPECT_ERROR(ValidatePyExecutable(J(R"("  ")")), kValueError,
               "runtime_env['py_executable'] must be a non-empty string, got '  '");
  auto uv_run = ValidatePyExecutable(J(R"("/usr/bin/uv  run")"));
  ASSERT_FALSE(uv_run);
  EXPECT_EQ(uv_run.error().kind, util::ErrorKind::kValueError);
  EXPECT_TRUE(uv_run.error().message.starts_with(
      "runtime_env['py_executable']='uv run' is deprecated and no longer required since Ray "
      "2.47."));
  EXPECT_NE(uv_run.error().message.find("Got: '/usr/bin/uv  run'."), std::string::npos);
}

TEST(ValidateContainer, PassesThrough) {
  EXPECT_EQ(Validated(ValidateContainer, R"({"image": "x", "whatever": [1]})"),
            J(R"({"image": "x", "whatever": [1]})"));
}

// ---- config ------------------------------------------------------------------

TEST(ValidateConfig, DefaultsAndValues) {
  EXPECT_EQ(util::DumpsSorted(Validated(ValidateConfig, "{}")),
            R"({"eager_install": true, "log_files": [], "setup_timeout_seconds": 600})");
  EXPECT_EQ(
      util::DumpsSorted(Validated(
          ValidateConfig,
          R"({"setup_timeout_seconds": -1, "eager_install": false, "log_files": ["a.log"], "other": 1})")),
      R"({"eager_install": false, "log_files": ["a.log"], "setup_timeout_seconds": -1})");
  // bool is an int in Python, so True is a valid (1 second) timeout.
  EXPECT_EQ(
      Validated(ValidateConfig, R"({"setup_timeout_seconds": true})")["setup_timeout_seconds"],
      Json(true));
  EXPECT_EQ(Validated(ValidateConfig, R"({"log_files": null})")["log_files"], J("[]"));
}

TEST(ValidateConfig, Errors) {
  EXPECT_ERROR(ValidateConfig(J("[]")), kTypeError,
               "runtime_env['config'] must be of type dict or RuntimeEnvConfig, got: <class "
               "'list'>");
  EXPECT_ERROR(ValidateConfig(J(R"({"setup_timeout_seconds": 1.5})")), kTypeError,
               "setup_timeout_seconds must be of type int, got: <class 'float'>");
  EXPECT_ERROR(ValidateConfig(J(R"({"setup_timeout_seconds": 0})")), kValueError,
               "setup_timeout_seconds must be greater than zero or equals to -1, got: 0");
  EXPECT_ERROR(ValidateConfig(J(R"({"setup_timeout_seconds": -5})")), kValueError,
               "setup_timeout_seconds must be greater than zero or equals to -1, got: -5");
  EXPECT_ERROR(ValidateConfig(J(R"({"setup_timeout_seconds": false})")), kValueError,
               "setup_timeout_seconds must be greater than zero or equals to -1, got: False");
  EXPECT_ERROR(ValidateConfig(J(R"({"eager_install": "yes"})")), kTypeError,
               "eager_install must be a boolean. got <class 'str'>");
  EXPECT_ERROR(ValidateConfig(J(R"({"log_files": "a.log"})")), kTypeError,
               "log_files must be a list of strings or None, got a.log with type <class 'str'>.");
  EXPECT_ERROR(ValidateConfig(J(R"({"log_files": ["a", 1]})")), kTypeError,
               "Each item in log_files must be a string.");
}

TEST(RuntimeEnvConfig, TypedView) {
  auto config = RuntimeEnvConfig::FromJson(J(R"({"setup_timeout_seconds": -1})"));
  ASSERT_TRUE(config);
  EXPECT_EQ(config->Timeout(), std::nullopt);
  EXPECT_TRUE(config->eager_install);
  auto defaults = RuntimeEnvConfig::FromJson(J("{}"));
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->Timeout(), 600);
  EXPECT_EQ(util::DumpsSorted(defaults->ToJson()),
            R"({"eager_install": true, "log_files": [], "setup_timeout_seconds": 600})");
}

}  // namespace
}  // namespace strata::model
