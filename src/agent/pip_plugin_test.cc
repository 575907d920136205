// Tests of the pip and uv plugins against real pip: tiny wheels built by the
// test, served as a PEP 503 index by `python3 -m http.server` on 127.0.0.1.
// Skipped (with the reason printed) only when python3 has no usable pip.
#include "agent/pip_plugin.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/container_testing.h"
#include "agent/process.h"
#include "agent/wheel_index_testing.h"
#include "model/runtime_env.h"
#include "util/pyjson.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using testing::ReadText;
using testing::RunTool;
using testing::ScopedEnv;
using testing::ToolOutput;
using testing::WheelSpec;
using testing::WriteText;
using util::Json;
using namespace std::chrono_literals;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)
#define EXPECT_NOT_CONTAINS(haystack, needle) \
  EXPECT_EQ(std::string(haystack).find(needle), std::string::npos) << (haystack)

fs::path MakeTempDir(const std::string& prefix) {
  std::string pattern = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

std::string PipVersionProblem() {
  ToolOutput out =
      RunTool({"python3", "-c",
               "import pip, sys; v = tuple(int(x) for x in pip.__version__.split('.')[:2]); "
               "sys.exit(0 if v >= (22, 3) else 3)"});
  if (out.exit_code == 0) return "";
  if (out.exit_code == 3) return "python3's pip is older than 22.3 (no --python option)";
  return "python3 on PATH has no pip: " + out.text;
}

// Shared by every test: the wheels, the index and its server, and the pip
// environment pointing at it. Built on first use, torn down at exit.
struct Index {
  fs::path root;
  std::string skip_reason;
  std::string error;
  std::unique_ptr<testing::HttpServer> server;
  std::string url;
  ScopedEnv env;

  ~Index() {
    server.reset();
    std::error_code ec;
    if (!root.empty()) fs::remove_all(root, ec);
  }

  static Index& Get() {
    static Index index;
    static bool initialised = false;
    if (!initialised) {
      initialised = true;
      index.Init();
    }
    return index;
  }

 private:
  void Init() {
    skip_reason = PipVersionProblem();
    if (!skip_reason.empty()) return;
    root = MakeTempDir("strata-pip-index-");
    std::vector<WheelSpec> wheels = {
        {"demo", "1.0", {}, "demo-cli"},
        {"demo", "2.0", {"dep"}, "demo-cli"},
        {"dep", "1.0", {}, ""},
        {"needy", "1.0", {"dep"}, ""},
        {"localpkg", "1.0", {}, "", "local"},  // not in the index
    };
    error = testing::BuildWheels(root, wheels);
    if (!error.empty()) return;
    server = testing::HttpServer::Start(root, root / "http.log", &error);
    if (!server) return;
    url = "http://127.0.0.1:" + std::to_string(server->port()) + "/simple/";
    // A clean pip that only knows the local index.
    env.Set("PIP_CONFIG_FILE", "/dev/null");
    env.Set("PIP_INDEX_URL", url);
    env.Set("UV_INDEX_URL", url);
    env.Set("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    for (const char* name :
         {"PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX", "PIP_REQUIRE_VIRTUALENV",
          "PIP_TARGET", "PIP_PREFIX", "PIP_USER", "PIP_PYTHON", "UV_EXTRA_INDEX_URL",
          "UV_FIND_LINKS", "STRATA_PYTHON_PACKAGE_DIR", "PYTHONPATH", "VIRTUAL_ENV"}) {
      env.Set(name, std::nullopt);
    }
  }
};

model::RuntimeEnv Env(const char* json_text) {
  auto json = util::ParseJson(json_text);
  EXPECT_TRUE(json.has_value()) << json_text;
  auto env = model::RuntimeEnv::Create(json ? *json : Json::object());
  EXPECT_TRUE(env.has_value()) << (env ? "" : env.error().ToString());
  return env ? *env : model::RuntimeEnv();
}

class PipPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Index& index = Index::Get();
    if (!index.skip_reason.empty()) GTEST_SKIP() << index.skip_reason;
    ASSERT_TRUE(index.error.empty()) << index.error;
    dir_ = MakeTempDir("strata-pip-test-");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // A setup context building entry `name` under dir_/pip.
  SetupContext Setup(const std::string& name) {
    SetupContext setup;
    setup.staging_dir = dir_ / "pip" / (name + ".staging");
    setup.final_dir = dir_ / "pip" / name;
    fs::create_directories(setup.staging_dir);
    setup.deadline = std::chrono::steady_clock::now() + 120s;
    setup.log = [this](std::string_view line) {
      log_ += line;
      log_ += "\n";
    };
    setup.python = "python3";
    return setup;
  }

  // Creates the env's pip entry and publishes it (rename to final_dir).
  util::Status CreateAndPublish(const RuntimeEnvPlugin& plugin, const model::RuntimeEnv& env,
                                const SetupContext& setup) {
    std::vector<std::string> uris = plugin.Uris(env);
    EXPECT_EQ(uris.size(), 1u);
    if (uris.empty()) return util::ValueError("no uri");
    auto status = plugin.Create(uris[0], env, setup);
    if (!status) return status;
    fs::rename(setup.staging_dir, setup.final_dir);
    return {};
  }

  static std::string Python(const SetupContext& setup) {
    return (setup.final_dir / "virtualenv" / "bin" / "python").string();
  }

  fs::path dir_;
  std::string log_;
};

TEST_F(PipPluginTest, TwoVersionsGiveTwoIsolatedVenvs) {
  auto plugin = MakePipPlugin();
  model::RuntimeEnv env1 = Env(R"({"pip": ["demo==1.0"]})");
  model::RuntimeEnv env2 = Env(R"({"pip": {"packages": ["demo==2.0"], "pip_check": true}})");
  SetupContext setup1 = Setup("one");
  SetupContext setup2 = Setup("two");
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(CreateAndPublish(*plugin, env1, setup1)) << log_;
  auto elapsed = std::chrono::steady_clock::now() - start;
  std::printf("[ timing ] venv + one small wheel: %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
  auto status = CreateAndPublish(*plugin, env2, setup2);
  ASSERT_TRUE(status) << status.error().ToString() << "\n" << log_;

  ToolOutput v1 = RunTool({Python(setup1), "-c", "import demo; print(demo.VERSION)"});
  EXPECT_EQ(v1.exit_code, 0) << v1.text;
  EXPECT_EQ(v1.text, "1.0\n");
  ToolOutput v2 =
      RunTool({Python(setup2), "-c", "import demo, dep; print(demo.VERSION, dep.VERSION)"});
  EXPECT_EQ(v2.exit_code, 0) << v2.text;
  EXPECT_EQ(v2.text, "2.0 1.0\n");  // the dependency was pulled in
  // demo 1.0 has no dependency.
  EXPECT_NE(RunTool({Python(setup1), "-c", "import dep"}).exit_code, 0);

  // The base interpreter has requests and yaml; the venvs must not see them.
  ToolOutput base = RunTool({"python3", "-c", "import requests, yaml"});
  if (base.exit_code == 0) {
    for (const char* module : {"requests", "yaml"}) {
      ToolOutput out = RunTool({Python(setup1), "-c", std::string("import ") + module});
      EXPECT_NE(out.exit_code, 0) << module << " is importable: " << out.text;
      EXPECT_CONTAINS(out.text, "ModuleNotFoundError");
    }
  } else {
    std::printf("note: python3 lacks requests/yaml; isolation checked through sys.path only\n");
  }
  ToolOutput base_site =
      RunTool({"python3", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"});
  ToolOutput path = RunTool({Python(setup1), "-c", "import sys; print(sys.path)"});
  ASSERT_EQ(base_site.exit_code, 0) << base_site.text;
  EXPECT_NOT_CONTAINS(path.text, "'" + base_site.text.substr(0, base_site.text.size() - 1) + "'");
  ToolOutput prefix = RunTool({Python(setup1), "-c", "import sys; print(sys.prefix)"});
  EXPECT_EQ(prefix.text, (setup1.final_dir / "virtualenv").string() + "\n");

  // The layout.
  EXPECT_EQ(ReadText(setup1.final_dir / "requirements.txt"), "demo==1.0\n");
  EXPECT_TRUE(fs::is_directory(setup1.final_dir / "exec_cwd"));
  EXPECT_CONTAINS(log_, "Skip pip check.");
}

TEST_F(PipPluginTest, ContextPointsAtTheVenv) {
  auto plugin = MakePipPlugin();
  model::RuntimeEnv env = Env(R"({"pip": ["demo==1.0"]})");
  std::string uri = plugin->Uris(env).at(0);
  fs::path entry = dir_ / "entry";
  std::map<std::string, fs::path> dirs = {{uri, entry}};
  SetupContext setup = Setup("ctx");
  RuntimeEnvContext context;
  auto missing = plugin->ModifyContext(dirs, env, setup, context);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, util::ErrorKind::kValueError);
  EXPECT_CONTAINS(missing.error().message, "runtime_env `pip` packages");

  WriteText(entry / "virtualenv" / "bin" / "python", "");
  ASSERT_TRUE(plugin->ModifyContext(dirs, env, setup, context));
  EXPECT_EQ(context.py_executable, (entry / "virtualenv" / "bin" / "python").string());
  EXPECT_EQ(context.path_prepend,
            std::vector<std::string>{(entry / "virtualenv" / "bin").string()});
  EXPECT_TRUE(context.command_prefix.empty());

  // An env without pip changes nothing.
  RuntimeEnvContext untouched;
  ASSERT_TRUE(plugin->ModifyContext({}, Env("{}"), setup, untouched));
  EXPECT_TRUE(untouched.py_executable.empty());
}

TEST_F(PipPluginTest, RelocatedVenvRunsConsoleScriptsAndSeesStrataPackage) {
  // Strata's own package directory stays importable through a .pth file.
  fs::path strata_pkg = dir_ / "strata_pkg";
  WriteText(strata_pkg / "strata_probe.py", "OK = 'probe'\n");
  ScopedEnv env_vars;
  env_vars.Set("STRATA_PYTHON_PACKAGE_DIR", strata_pkg.string());

  auto plugin = MakePipPlugin();
  model::RuntimeEnv env = Env(R"({"pip": ["demo==1.0"]})");
  SetupContext setup = Setup("moved");
  std::string staging = setup.staging_dir.string();
  auto status = CreateAndPublish(*plugin, env, setup);
  ASSERT_TRUE(status) << status.error().ToString() << "\n" << log_;
  ASSERT_FALSE(fs::exists(setup.staging_dir));

  fs::path bin = setup.final_dir / "virtualenv" / "bin";
  ToolOutput cli = RunTool({(bin / "demo-cli").string()});
  EXPECT_EQ(cli.exit_code, 0) << cli.text;
  EXPECT_EQ(cli.text, "demo 1.0\n");
  EXPECT_EQ(ReadText(bin / "demo-cli").substr(0, 2 + (bin / "python").string().size()),
            "#!" + (bin / "python").string());
  for (fs::path file : {bin / "activate", bin / "activate.csh", bin / "activate.fish",
                        setup.final_dir / "virtualenv" / "pyvenv.cfg", bin / "demo-cli"}) {
    EXPECT_NOT_CONTAINS(ReadText(file), staging) << file;
  }
  EXPECT_CONTAINS(ReadText(bin / "activate"), (setup.final_dir / "virtualenv").string());
  // bash's activate works after the move.
  ToolOutput activated =
      RunTool({"bash", "-c",
               "source " + (bin / "activate").string() + " && echo $VIRTUAL_ENV && demo-cli"});
  EXPECT_EQ(activated.text, (setup.final_dir / "virtualenv").string() + "\ndemo 1.0\n");

  ToolOutput probe = RunTool({Python(setup), "-c", "import strata_probe; print(strata_probe.OK)"});
  EXPECT_EQ(probe.text, "probe\n");
}

TEST_F(PipPluginTest, RequirementsExpandTheWorkingDirVariable) {
  fs::path working_dir = dir_ / "wd";
  fs::create_directories(working_dir);
  fs::copy_file(Index::Get().root / "local" / "localpkg-1.0-py3-none-any.whl",
                working_dir / "localpkg-1.0-py3-none-any.whl");
  auto plugin = MakePipPlugin();
  model::RuntimeEnv env = Env(
      R"({"pip": ["${STRATA_RUNTIME_ENV_CREATE_WORKING_DIR}/localpkg-1.0-py3-none-any.whl",
                  "dep"]})");
  SetupContext setup = Setup("wd");
  setup.installer_env = {{"STRATA_RUNTIME_ENV_CREATE_WORKING_DIR", working_dir.string()}};
  setup.working_dir = working_dir.string();
  auto status = CreateAndPublish(*plugin, env, setup);
  ASSERT_TRUE(status) << status.error().ToString() << "\n" << log_;
  ToolOutput out = RunTool({Python(setup), "-c", "import localpkg, dep; print(localpkg.VERSION)"});
  EXPECT_EQ(out.text, "1.0\n");
  // The requirements file keeps the reference; pip expanded it.
  EXPECT_CONTAINS(ReadText(setup.final_dir / "requirements.txt"),
                  "${STRATA_RUNTIME_ENV_CREATE_WORKING_DIR}");
}

TEST_F(PipPluginTest, PipCheckFailureFailsSetup) {
  auto plugin = MakePipPlugin();
  model::RuntimeEnv env = Env(R"({"pip": {"packages": ["needy"], "pip_check": true,
      "pip_install_options": ["--no-deps", "--disable-pip-version-check"]}})");
  SetupContext setup = Setup("check");
  auto status = plugin->Create(plugin->Uris(env).at(0), env, setup);
  ASSERT_FALSE(status) << log_;
  EXPECT_EQ(status.error().kind, util::ErrorKind::kIOError);
  EXPECT_CONTAINS(status.error().message, "runtime_env field 'pip'");
  EXPECT_CONTAINS(status.error().message, "pip check");
  EXPECT_CONTAINS(status.error().message, "needy 1.0 requires dep, which is not installed.");
  EXPECT_CONTAINS(status.error().message, "exit code 1");
  // The same without pip_check succeeds (and leaves dep out).
  model::RuntimeEnv lax = Env(R"({"pip": {"packages": ["needy"],
      "pip_install_options": ["--no-deps", "--disable-pip-version-check"]}})");
  SetupContext setup2 = Setup("nocheck");
  ASSERT_TRUE(plugin->Create(plugin->Uris(lax).at(0), lax, setup2)) << log_;
}

TEST_F(PipPluginTest, MissingPackageNamesItAndTheCommand) {
  auto plugin = MakePipPlugin();
  model::RuntimeEnv env = Env(R"({"pip": ["demo==1.0", "nosuchpkg==3.1"]})");
  SetupContext setup = Setup("missing");
  auto status = plugin->Create(plugin->Uris(env).at(0), env, setup);
  ASSERT_FALSE(status);
  const std::string& message = status.error().message;
  EXPECT_EQ(status.error().kind, util::ErrorKind::kValueError);
  EXPECT_CONTAINS(message, "runtime_env field 'pip'");
  EXPECT_CONTAINS(message, "no matching distribution found for nosuchpkg==3.1");
  EXPECT_CONTAINS(message, "No matching distribution found for nosuchpkg==3.1");
  EXPECT_CONTAINS(message, "-m pip --python " + setup.staging_dir.string());
  EXPECT_CONTAINS(message, "install --disable-pip-version-check --no-cache-dir -r");
  EXPECT_CONTAINS(message, "failed with exit code 1");
  EXPECT_CONTAINS(message, "Last output lines:");
  // Staging is left for the manager.
  EXPECT_TRUE(fs::exists(setup.staging_dir / "virtualenv" / "bin" / "python"));
}

TEST_F(PipPluginTest, DeadlineKillsTheInstaller) {
  auto plugin = MakePipPlugin();
  model::RuntimeEnv env = Env(R"({"pip": ["demo==2.0"]})");
  {
    SetupContext setup = Setup("past");
    setup.deadline = std::chrono::steady_clock::now() - 1s;
    auto start = std::chrono::steady_clock::now();
    auto status = plugin->Create(plugin->Uris(env).at(0), env, setup);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().kind, util::ErrorKind::kTimeout) << status.error().message;
    EXPECT_CONTAINS(status.error().message, "runtime_env field 'pip'");
    EXPECT_CONTAINS(status.error().message, "timed out");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  }
  {
    // Long enough for venv (~40 ms), far too short for pip (> 500 ms).
    SetupContext setup = Setup("short");
    setup.deadline = std::chrono::steady_clock::now() + 300ms;
    auto start = std::chrono::steady_clock::now();
    auto status = plugin->Create(plugin->Uris(env).at(0), env, setup);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().kind, util::ErrorKind::kTimeout) << status.error().message;
    EXPECT_CONTAINS(status.error().message, "timed out");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  }
  {
    std::atomic<bool> cancel{true};
    SetupContext setup = Setup("cancel");
    setup.cancel = &cancel;
    auto status = plugin->Create(plugin->Uris(env).at(0), env, setup);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().kind, util::ErrorKind::kUnavailable) << status.error().message;
    EXPECT_CONTAINS(status.error().message, "cancelled");
  }
}

TEST_F(PipPluginTest, PipVersionInstallsPipIntoTheVenv) {
  auto plugin = MakePipPlugin();
  // ensurepip's bundled pip satisfies the spec, so nothing is downloaded.
  model::RuntimeEnv env = Env(R"({"pip": {"packages": ["demo==1.0"], "pip_version": ">=20",
                                          "pip_check": true}})");
  SetupContext setup = Setup("pipver");
  auto status = CreateAndPublish(*plugin, env, setup);
  ASSERT_TRUE(status) << status.error().ToString() << "\n" << log_;
  EXPECT_CONTAINS(log_, "-m ensurepip");
  EXPECT_CONTAINS(log_, "'pip>=20'");
  ToolOutput out = RunTool({Python(setup), "-c", "import pip, demo; print(demo.VERSION)"});
  EXPECT_EQ(out.text, "1.0\n");
  // The venv's own pip works after the move (its script was relocated).
  ToolOutput pip =
      RunTool({(setup.final_dir / "virtualenv" / "bin" / "pip").string(), "--version"});
  EXPECT_EQ(pip.exit_code, 0) << pip.text;
  EXPECT_CONTAINS(pip.text, (setup.final_dir / "virtualenv").string());
}

TEST_F(PipPluginTest, InstallWheelToTargetWithDependencies) {
  SetupContext setup = Setup("target");
  fs::path target = dir_ / "py_modules" / "demo-2.0-py3-none-any.whl";
  auto status = InstallWheelToTarget(Index::Get().root / "files" / "demo-2.0-py3-none-any.whl",
                                     target, setup);
  ASSERT_TRUE(status) << status.error().ToString() << "\n" << log_;
  EXPECT_TRUE(fs::exists(target / "demo" / "__init__.py"));
  EXPECT_TRUE(fs::exists(target / "dep" / "__init__.py"));
  ToolOutput out = RunTool({"python3", "-c",
                            "import sys; sys.path.insert(0, '" + target.string() +
                                "'); import demo; print(demo.VERSION)"});
  EXPECT_EQ(out.text, "2.0\n");

  auto missing = InstallWheelToTarget(dir_ / "nothere-1.0-py3-none-any.whl", dir_ / "t2", setup);
  ASSERT_FALSE(missing);
  EXPECT_CONTAINS(missing.error().message, "py_modules");
  EXPECT_CONTAINS(missing.error().message, "exit code");
}

// ---------------------------------------------------------------- no pip needed

TEST(PipPluginUris, StableAndDistinct) {
  auto plugin = MakePipPlugin();
  auto a = plugin->Uris(Env(R"({"pip": ["demo==1.0"]})"));
  auto b = plugin->Uris(Env(R"({"pip": {"packages": ["demo==1.0"], "pip_check": false}})"));
  auto c = plugin->Uris(Env(R"({"pip": ["demo==2.0"]})"));
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a, plugin->Uris(Env(R"({"pip": ["demo==1.0"]})")));
  EXPECT_EQ(a, b);  // both normalise to {"packages": [...], "pip_check": false}
  EXPECT_NE(a, c);
  EXPECT_TRUE(a[0].starts_with("pip://"));
  EXPECT_EQ(a[0].size(), 6u + 40u);
  EXPECT_TRUE(plugin->Uris(Env("{}")).empty());
  EXPECT_EQ(plugin->name(), "pip");

  auto uv = MakeUvPlugin();
  auto u = uv->Uris(Env(R"({"uv": ["demo==1.0"]})"));
  ASSERT_EQ(u.size(), 1u);
  EXPECT_TRUE(u[0].starts_with("uv://"));
  EXPECT_EQ(uv->name(), "uv");
}

TEST(PipPluginUris, MatchesRaysHash) {
  // Python: hashlib.sha1(json.dumps({"packages": ["demo==1.0"], "pip_check": False},
  //                                 sort_keys=True).encode()).hexdigest()
  Json spec = {{"packages", {"demo==1.0"}}, {"pip_check", false}};
  ToolOutput out =
      RunTool({"python3", "-c",
               "import hashlib, json; print(hashlib.sha1(json.dumps({'packages': ['demo==1.0'], "
               "'pip_check': False}, sort_keys=True).encode()).hexdigest())"});
  if (out.exit_code != 0) GTEST_SKIP() << "python3 is not available: " << out.text;
  EXPECT_EQ(InstallerSpecUri("pip", spec) + "\n", "pip://" + out.text);
  EXPECT_EQ(MakePipPlugin()->Uris(Env(R"({"pip": ["demo==1.0"]})")).at(0) + "\n",
            "pip://" + out.text);
  // A bare list (an env that was not validated) hashes as {"packages": list}.
  EXPECT_EQ(InstallerSpecUri("pip", Json::array({"x"})),
            InstallerSpecUri("pip", Json{{"packages", {"x"}}}));
}

TEST(UvPlugin, ValidateFailsWithoutUvOnPath) {
  fs::path empty = MakeTempDir("strata-uv-path-");
  ScopedEnv env;
  env.Set("PATH", empty.string());
  auto plugin = MakeUvPlugin();
  auto status = plugin->Validate(Env(R"({"uv": ["demo==1.0"]})"));
  fs::remove_all(empty);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().kind, util::ErrorKind::kValueError);
  EXPECT_EQ(status.error().message,
            "runtime_env field 'uv' needs the uv executable on PATH of this node; none found "
            "(Strata's native installer will remove this need)");
  // Envs without uv do not need it.
  EXPECT_TRUE(plugin->Validate(Env(R"({"pip": ["demo==1.0"]})")));
}

TEST_F(PipPluginTest, UvCreatesAVenvWhenUvIsInstalled) {
  const char* path = std::getenv("PATH");
  if (!FindExecutable("uv", path ? std::optional<std::string>(path) : std::nullopt)) {
    GTEST_SKIP() << "uv is not installed on this machine (no `uv` on PATH)";
  }
  auto plugin = MakeUvPlugin();
  model::RuntimeEnv env = Env(R"({"uv": {"packages": ["demo==2.0"], "uv_check": true}})");
  ASSERT_TRUE(plugin->Validate(env));
  SetupContext setup = Setup("uv");
  auto status = CreateAndPublish(*plugin, env, setup);
  ASSERT_TRUE(status) << status.error().ToString() << "\n" << log_;
  ToolOutput out = RunTool({Python(setup), "-c", "import demo, dep; print(demo.VERSION)"});
  EXPECT_EQ(out.text, "2.0\n");
  ToolOutput cli = RunTool({(setup.final_dir / "virtualenv" / "bin" / "demo-cli").string()});
  EXPECT_EQ(cli.text, "demo 2.0\n");
}

TEST(RelocateVirtualenv, RewritesWholePathsAndLongShebangs) {
  fs::path dir = MakeTempDir("strata-relocate-");
  fs::path venv = dir / "old" / "virtualenv";
  std::string from = (dir / "old").string();
  WriteText(venv / "pyvenv.cfg", "home = /usr/bin\ncommand = python3 -m venv " + venv.string() +
                                     "\nother = " + from + "x/keep\n");
  WriteText(venv / "bin" / "activate", "VIRTUAL_ENV=\"" + venv.string() + "\"\n");
  WriteText(venv / "bin" / "tool", "#!" + venv.string() + "/bin/python\nprint('hi')\n");
  WriteText(venv / "bin" / "binary", "ELF " + venv.string());
  std::string long_dir(150, 'd');
  fs::path to = dir / long_dir;
  ASSERT_TRUE(RelocateVirtualenv(venv, dir / "old", to));
  fs::path new_venv = to / "virtualenv";
  EXPECT_EQ(ReadText(venv / "pyvenv.cfg"), "home = /usr/bin\ncommand = python3 -m venv " +
                                               new_venv.string() + "\nother = " + from +
                                               "x/keep\n");
  EXPECT_EQ(ReadText(venv / "bin" / "activate"), "VIRTUAL_ENV=\"" + new_venv.string() + "\"\n");
  EXPECT_EQ(ReadText(venv / "bin" / "tool"),
            "#!/bin/sh\n'''exec' \"" + new_venv.string() +
                "/bin/python\" \"$0\" \"$@\"\n' '''\nprint('hi')\n");
  EXPECT_EQ(ReadText(venv / "bin" / "binary"), "ELF " + venv.string());  // not a script
  fs::remove_all(dir);
}

}  // namespace
}  // namespace strata::agent
