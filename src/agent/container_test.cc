// Tests of the container layer: podman command lines, the environment inside
// a container, the layer's JSON in contexts, the launcher's container plans,
// the container plugins' checks and the pip URI's dependence on the base
// image. ResolveImage's parsing and pull logic run against a fake podman
// script (STRATA_PODMAN); the tests at the end run real podman (skipped when
// it is not on PATH) against a tiny image they build from the host's own
// binaries.
#include "agent/container.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/builtin_plugins.h"
#include "agent/container_testing.h"
#include "agent/context.h"
#include "agent/launcher.h"
#include "agent/pip_plugin.h"
#include "agent/process.h"
#include "model/runtime_env.h"
#include "util/pyjson.h"
#include "util/scoped_env_testing.h"
#include "util/temp_dir_testing.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using util::Json;
using util::testing::ScopedEnv;
using util::testing::TempDir;
using util::testing::WriteFile;
using Env = std::vector<std::pair<std::string, std::string>>;
using Argv = std::vector<std::string>;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

const Argv kGlobals = {"podman",   "--runtime",        "runc", "--cgroup-manager",
                       "cgroupfs", "--events-backend", "file"};

const Argv kRunFlags = {
    "run",  "--rm",     "--init",           "--network", "host",           "--ipc",
    "host", "--ulimit", "nofile=1024:1024", "--ulimit",  "nproc=1024:1024"};

Argv Concat(std::initializer_list<Argv> parts) {
  Argv out;
  for (const Argv& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

std::optional<std::string> Get(const Env& env, const std::string& name) {
  for (const auto& [key, value] : env) {
    if (key == name) return value;
  }
  return std::nullopt;
}

// The podman variables at their defaults for one test.
class DefaultPodman {
 private:
  ScopedEnv env_{{"STRATA_PODMAN", std::nullopt}, {"STRATA_CONTAINER_RUNTIME", std::nullopt}};
};

model::RuntimeEnv MakeEnv(const char* json_text,
                          model::Validation validation = model::Validation::kValidate) {
  auto json = util::ParseJson(json_text);
  EXPECT_TRUE(json.has_value()) << json_text;
  auto env = model::RuntimeEnv::Create(json ? *json : Json::object(), validation);
  EXPECT_TRUE(env.has_value()) << (env ? "" : env.error().ToString());
  return env ? *env : model::RuntimeEnv();
}

ContainerLayer SampleLayer() {
  ContainerLayer layer;
  layer.image = std::string(64, 'a');
  layer.reference = "localhost/strata/ml:1";
  layer.run_options = {"--env", "Y=2"};
  layer.image_env = {{"PATH", "/opt/conda/bin:/usr/bin:/bin"}, {"LANG", "C.UTF-8"}};
  layer.mounts = {"/var/strata", "/tmp/session"};
  layer.name = "strata-job-1";
  return layer;
}

// --- PodmanCommand -------------------------------------------------------------

TEST(PodmanCommandTest, AddsTheHostsGlobalOptions) {
  DefaultPodman defaults;
  EXPECT_EQ(PodmanCommand({"images", "-q"}), Concat({kGlobals, {"images", "-q"}}));
  EXPECT_EQ(PodmanCommand({}), kGlobals);
}

TEST(PodmanCommandTest, BinaryAndRuntimeFromTheEnvironment) {
  ScopedEnv env{{"STRATA_PODMAN", "/opt/podman/bin/podman"}, {"STRATA_CONTAINER_RUNTIME", "crun"}};
  EXPECT_EQ(PodmanCommand({"ps"}),
            (Argv{"/opt/podman/bin/podman", "--runtime", "crun", "--cgroup-manager", "cgroupfs",
                  "--events-backend", "file", "ps"}));
}

TEST(PodmanCommandTest, EmptyRuntimeLeavesPodmansDefault) {
  ScopedEnv env{{"STRATA_PODMAN", std::nullopt}, {"STRATA_CONTAINER_RUNTIME", ""}};
  EXPECT_EQ(PodmanCommand({"ps"}),
            (Argv{"podman", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "ps"}));
}

// --- PassesIntoContainer and ContainerBaseEnv ------------------------------------

TEST(PassesIntoContainerTest, AdmitsOnlyStrataRayAndIndexSettings) {
  for (const char* name :
       {"STRATA_HOME", "STRATA_SESSION_DIR", "STRATA_", "RAY_ADDRESS", "PYTHONUNBUFFERED", "TERM",
        "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST"}) {
    EXPECT_TRUE(PassesIntoContainer(name)) << name;
  }
  for (const char* name :
       {"PATH", "HOME", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "LD_LIBRARY_PATH", "PIP_CERT",
        "PIP_DEFAULT_TIMEOUT", "STRATA", "strata_home", "RAY", "TERMINFO", "XSTRATA_HOME", ""}) {
    EXPECT_FALSE(PassesIntoContainer(name)) << name;
  }
}

TEST(ContainerBaseEnvTest, ImageEnvFirstThenAdmittedHostVariables) {
  ContainerLayer layer;
  layer.image = "img";
  layer.image_env = {{"PATH", "/usr/bin:/bin"}, {"TERM", "dumb"}, {"LANG", "C.UTF-8"}};
  const Env host = {{"PATH", "/host/bin"},
                    {"HOME", "/root"},
                    {"STRATA_HOME", "/var/strata"},
                    {"TERM", "xterm"},
                    {"VIRTUAL_ENV", "/host/venv"},
                    {"PIP_INDEX_URL", "http://127.0.0.1:1/simple/"},
                    {"RAY_X", "1"}};
  EXPECT_EQ(ContainerBaseEnv(layer, host), (Env{{"PATH", "/usr/bin:/bin"},
                                                {"TERM", "xterm"},
                                                {"LANG", "C.UTF-8"},
                                                {"STRATA_HOME", "/var/strata"},
                                                {"PIP_INDEX_URL", "http://127.0.0.1:1/simple/"},
                                                {"RAY_X", "1"}}));
  EXPECT_EQ(ContainerBaseEnv(layer, {}), layer.image_env);
}

// --- ContainerRunArgv ----------------------------------------------------------

TEST(ContainerRunArgvTest, FullCommandLine) {
  DefaultPodman defaults;
  TempDir tmp;
  const std::string a = (tmp.path() / "a").string();
  const std::string b = (tmp.path() / "b").string();
  const std::string missing = (tmp.path() / "missing").string();
  fs::create_directories(a);
  fs::create_directories(b);
  ContainerLayer layer;
  layer.image = "0123abcd";
  layer.name = "strata-worker-7";
  layer.mounts = {a, missing, a, ""};
  layer.run_options = {"--env", "Y=2", "--cap-add", "SYS_PTRACE"};
  const Argv argv = ContainerRunArgv(layer, {"python3", "-c", "print(1)"},
                                     {{"B", "2"}, {"A", "1=x"}}, "/work/dir", {b, a, missing});
  EXPECT_EQ(argv, Concat({kGlobals,
                          kRunFlags,
                          {"--name", "strata-worker-7"},
                          {"-v", a + ":" + a, "-v", b + ":" + b},
                          {"--env", "B=2", "--env", "A=1=x"},
                          {"-w", "/work/dir"},
                          {"--env", "Y=2", "--cap-add", "SYS_PTRACE"},
                          {"0123abcd", "python3", "-c", "print(1)"}}));
}

TEST(ContainerRunArgvTest, NoNameNoCwdNoMounts) {
  DefaultPodman defaults;
  ContainerLayer layer;
  layer.image = "img";
  EXPECT_EQ(ContainerRunArgv(layer, {"true"}, {}, "", {}),
            Concat({kGlobals, kRunFlags, {"img", "true"}}));
  EXPECT_EQ(ContainerRunArgv(layer, {}, {{"K", ""}}, "", {"/nonexistent/strata/path"}),
            Concat({kGlobals, kRunFlags, {"--env", "K=", "img"}}));
}

// --- ContainerLayer JSON -------------------------------------------------------

TEST(ContainerLayerJsonTest, RoundTrip) {
  const ContainerLayer layer = SampleLayer();
  const Json json = layer.ToJson();
  EXPECT_EQ(json["image"], layer.image);
  EXPECT_EQ(json["image_env"], Json::array({"PATH=/opt/conda/bin:/usr/bin:/bin", "LANG=C.UTF-8"}));
  auto back = ContainerLayer::FromJson(json);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->image, layer.image);
  EXPECT_EQ(back->reference, layer.reference);
  EXPECT_EQ(back->run_options, layer.run_options);
  EXPECT_EQ(back->image_env, layer.image_env);
  EXPECT_EQ(back->mounts, layer.mounts);
  EXPECT_EQ(back->name, layer.name);
  EXPECT_EQ(back->ToJson(), json);
}

TEST(ContainerLayerJsonTest, ImageEnvValuesMayHoldEquals) {
  auto layer = ContainerLayer::FromJson(
      Json::object({{"image", "i"}, {"image_env", Json::array({"A=b=c", "NOEQ", "E="})}}));
  ASSERT_TRUE(layer) << layer.error().ToString();
  EXPECT_EQ(layer->image_env, (Env{{"A", "b=c"}, {"E", ""}}));
  EXPECT_EQ(layer->reference, "");
  EXPECT_EQ(layer->name, "");
  EXPECT_TRUE(layer->mounts.empty());
  EXPECT_TRUE(layer->run_options.empty());
}

TEST(ContainerLayerJsonTest, FromJsonErrors) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {Json::array(), "JSON object"},
      {Json("img"), "JSON object"},
      {Json::object(), "'image'"},
      {Json::object({{"image", ""}}), "'image'"},
      {Json::object({{"image", 5}}), "'image'"},
      {Json::object({{"image", "i"}, {"run_options", "--rm"}}), "run_options"},
      {Json::object({{"image", "i"}, {"mounts", Json::array({"/a", 1})}}), "mounts"},
      {Json::object({{"image", "i"}, {"image_env", Json::object()}}), "image_env"},
  };
  for (const auto& [json, needle] : cases) {
    auto layer = ContainerLayer::FromJson(json);
    ASSERT_FALSE(layer) << json.dump();
    EXPECT_EQ(layer.error().kind, util::ErrorKind::kValueError) << json.dump();
    EXPECT_CONTAINS(layer.error().message, needle);
  }
}

// --- RuntimeEnvContext JSON ----------------------------------------------------

RuntimeEnvContext SampleContext() {
  RuntimeEnvContext context;
  context.command_prefix = {"source", "/x/activate", "&&"};
  context.env_vars = {{"A", "1"}, {"B", "${A}2"}};
  context.py_executable = "python3 -u";
  context.cwd = "/work/wd";
  context.pythonpath = {"/work/wd", "/work/mod"};
  context.path_prepend = {"/venv/bin"};
  return context;
}

TEST(ContextJsonTest, RoundTripWithoutContainer) {
  const RuntimeEnvContext context = SampleContext();
  const Json json = context.ToJson();
  ASSERT_TRUE(json.contains("container"));
  EXPECT_TRUE(json["container"].is_null());
  auto back = RuntimeEnvContext::FromJson(json);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_FALSE(back->container.has_value());
  EXPECT_EQ(back->ToJson(), json);
}

TEST(ContextJsonTest, RoundTripWithContainer) {
  RuntimeEnvContext context = SampleContext();
  context.container = SampleLayer();
  const Json json = context.ToJson();
  EXPECT_EQ(json["container"], SampleLayer().ToJson());
  auto back = RuntimeEnvContext::FromJson(json);
  ASSERT_TRUE(back) << back.error().ToString();
  ASSERT_TRUE(back->container.has_value());
  EXPECT_EQ(back->container->image, context.container->image);
  EXPECT_EQ(back->container->image_env, context.container->image_env);
  EXPECT_EQ(back->container->mounts, context.container->mounts);
  EXPECT_EQ(back->ToJson(), json);
}

TEST(ContextJsonTest, JsonWithoutTheContainerKeyStillParses) {
  auto json = util::ParseJson(
      R"({"command_prefix": [], "env_vars": {"A": "1"}, "py_executable": "",
          "override_worker_entrypoint": null, "java_jars": [], "cwd": "/w",
          "pythonpath": ["/w"], "path_prepend": []})");
  ASSERT_TRUE(json);
  auto context = RuntimeEnvContext::FromJson(*json);
  ASSERT_TRUE(context) << context.error().ToString();
  EXPECT_FALSE(context->container.has_value());
  EXPECT_EQ(context->cwd, "/w");
  EXPECT_EQ(context->env_vars, (Env{{"A", "1"}}));
}

TEST(ContextJsonTest, BadContainerIsAnError) {
  Json json = SampleContext().ToJson();
  json["container"] = Json::object({{"image", ""}});
  EXPECT_FALSE(RuntimeEnvContext::FromJson(json));
  json["container"] = "img";
  EXPECT_FALSE(RuntimeEnvContext::FromJson(json));
}

// --- PlanLaunch and HostPlan with a container --------------------------------------

const Env kHostEnv = {{"PATH", "/host/bin:/usr/bin"},
                      {"HOME", "/root"},
                      {"VIRTUAL_ENV", "/host/venv"},
                      {"PYTHONPATH", "/host/site"},
                      {"STRATA_HOME", "/var/strata"},
                      {"STRATA_SESSION_DIR", "/tmp/strata/s"},
                      {"PIP_INDEX_URL", "http://127.0.0.1:8000/simple/"},
                      {"LD_PRELOAD", "/host/lib.so"}};

TEST(PlanLaunchContainerTest, StartsFromTheImageEnvironment) {
  RuntimeEnvContext context;
  ContainerLayer layer;
  layer.image = "img";
  layer.image_env = {{"PATH", "/opt/py/bin:/usr/bin:/bin"}, {"LANG", "C.UTF-8"}};
  context.container = layer;
  context.env_vars = {{"WHERE", "${PATH}|$HOME|${VIRTUAL_ENV}|$STRATA_HOME|${LANG}"}};
  const LaunchPlan plan = PlanLaunch(context, {"sh", "-c", "true"}, kHostEnv);
  ASSERT_TRUE(plan.container.has_value());
  EXPECT_EQ(plan.container->image, "img");
  EXPECT_EQ(plan.argv, (Argv{"sh", "-c", "true"}));
  EXPECT_EQ(plan.cwd, "");
  EXPECT_EQ(Get(plan.env, "PATH"), "/opt/py/bin:/usr/bin:/bin");
  EXPECT_EQ(Get(plan.env, "LANG"), "C.UTF-8");
  EXPECT_EQ(Get(plan.env, "HOME"), std::nullopt);
  EXPECT_EQ(Get(plan.env, "VIRTUAL_ENV"), std::nullopt);
  EXPECT_EQ(Get(plan.env, "PYTHONPATH"), std::nullopt);
  EXPECT_EQ(Get(plan.env, "LD_PRELOAD"), std::nullopt);
  EXPECT_EQ(Get(plan.env, "STRATA_HOME"), "/var/strata");
  EXPECT_EQ(Get(plan.env, "STRATA_SESSION_DIR"), "/tmp/strata/s");
  EXPECT_EQ(Get(plan.env, "PIP_INDEX_URL"), "http://127.0.0.1:8000/simple/");
  // Expanded against the inner environment: $HOME stays literal (unknown
  // inside), ${VIRTUAL_ENV} is removed.
  EXPECT_EQ(Get(plan.env, "WHERE"), "/opt/py/bin:/usr/bin:/bin|$HOME||/var/strata|C.UTF-8");
}

TEST(PlanLaunchContainerTest, PathPrependGoesInFrontOfTheImagesPath) {
  RuntimeEnvContext context;
  ContainerLayer layer;
  layer.image = "img";
  layer.image_env = {{"PATH", "/usr/local/bin:/usr/bin"}};
  context.container = layer;
  context.path_prepend = {"/var/strata/runtime_resources/pip/e1/virtualenv/bin"};
  context.pythonpath = {"/var/strata/wd"};
  context.cwd = "/var/strata/wd";
  const LaunchPlan plan = PlanLaunch(context, {"python", "x.py"}, kHostEnv);
  EXPECT_EQ(Get(plan.env, "PATH"),
            "/var/strata/runtime_resources/pip/e1/virtualenv/bin:/usr/local/bin:/usr/bin");
  EXPECT_EQ(Get(plan.env, "VIRTUAL_ENV"), "/var/strata/runtime_resources/pip/e1/virtualenv");
  // The host's PYTHONPATH is not the base inside.
  EXPECT_EQ(Get(plan.env, "PYTHONPATH"), "/var/strata/wd");
  EXPECT_EQ(plan.cwd, "/var/strata/wd");
}

TEST(PlanLaunchContainerTest, WithoutImageEnvThereIsNoPath) {
  RuntimeEnvContext context;
  context.container.emplace();
  context.container->image = "img";
  const LaunchPlan plan = PlanLaunch(context, {"true"}, kHostEnv);
  EXPECT_EQ(Get(plan.env, "PATH"), std::nullopt);
  EXPECT_EQ(Get(plan.env, "STRATA_HOME"), "/var/strata");
}

TEST(HostPlanTest, WithoutContainerThePlanIsUnchanged) {
  RuntimeEnvContext context;
  context.env_vars = {{"A", "1"}};
  context.cwd = "/w";
  const LaunchPlan plan = PlanLaunch(context, {"echo", "hi"}, kHostEnv);
  const LaunchPlan host = HostPlan(plan, {{"OTHER", "x"}});
  EXPECT_EQ(host.argv, plan.argv);
  EXPECT_EQ(host.env, plan.env);
  EXPECT_EQ(host.cwd, plan.cwd);
  EXPECT_FALSE(host.container.has_value());
}

TEST(HostPlanTest, WithContainerRunsPodmanWithMounts) {
  DefaultPodman defaults;
  TempDir tmp;
  const std::string cwd = (tmp.path() / "wd").string();
  const std::string module = (tmp.path() / "mod").string();
  const std::string home = (tmp.path() / "home").string();
  for (const std::string& dir : {cwd, module, home}) fs::create_directories(dir);
  const std::string missing = (tmp.path() / "not-there").string();

  RuntimeEnvContext context;
  ContainerLayer layer;
  layer.image = "img";
  layer.image_env = {{"PATH", "/usr/bin"}};
  layer.mounts = {home};
  layer.run_options = {"--env", "Y=2"};
  context.container = layer;
  context.cwd = cwd;
  context.pythonpath = {cwd, module, missing};
  context.env_vars = {{"A", "1"}};
  const LaunchPlan plan = PlanLaunch(context, {"python3", "-c", "pass"}, kHostEnv);
  const Env host_env = {{"PATH", "/host/bin"}, {"HOME", "/root"}};
  const LaunchPlan host = HostPlan(plan, host_env);

  EXPECT_EQ(host.env, host_env);
  EXPECT_EQ(host.cwd, "");
  EXPECT_FALSE(host.container.has_value());
  Argv env_args;
  for (const auto& [key, value] : plan.env)
    env_args.insert(env_args.end(), {"--env", key + "=" + value});
  EXPECT_EQ(host.argv,
            Concat({kGlobals,
                    kRunFlags,
                    {"-v", home + ":" + home, "-v", cwd + ":" + cwd, "-v", module + ":" + module},
                    env_args,
                    {"-w", cwd},
                    {"--env", "Y=2"},
                    {"img", "python3", "-c", "pass"}}));
  EXPECT_EQ(Get(plan.env, "PYTHONPATH"), cwd + ":" + module + ":" + missing);
}

// --- Plugins -------------------------------------------------------------------

TEST(ContainerPipUriTest, BaseImageChangesThePipUri) {
  auto pip = MakePipPlugin();
  const auto plain = pip->Uris(MakeEnv(R"({"pip": ["demo==1.0"]})"));
  const auto on_a = pip->Uris(MakeEnv(
      R"({"pip": ["demo==1.0"], "_strata_base_image": {"image_id": "aaaa", "reference": "localhost/strata/a:1"}})"));
  const auto on_a_again = pip->Uris(MakeEnv(
      R"({"pip": ["demo==1.0"], "_strata_base_image": {"image_id": "aaaa", "reference": "localhost/strata/a:2"}})"));
  const auto on_b = pip->Uris(MakeEnv(
      R"({"pip": ["demo==1.0"], "_strata_base_image": {"image_id": "bbbb", "reference": "localhost/strata/a:1"}})"));
  ASSERT_EQ(plain.size(), 1u);
  ASSERT_EQ(on_a.size(), 1u);
  ASSERT_EQ(on_b.size(), 1u);
  EXPECT_TRUE(plain[0].starts_with("pip://")) << plain[0];
  EXPECT_TRUE(on_a[0].starts_with("pip://")) << on_a[0];
  EXPECT_NE(plain, on_a);
  EXPECT_NE(on_a, on_b);
  // The image ID is the identity; the reference is only for messages.
  EXPECT_EQ(on_a, on_a_again);
  EXPECT_TRUE(pip->Uris(MakeEnv(R"({"_strata_base_image": {"image_id": "aaaa"}})")).empty());
}

TEST(ContainerPluginTest, OnlyOneContainerFieldAtATime) {
  const auto both =
      MakeEnv(R"({"image_uri": "localhost/a:1", "_strata_base_image": {"image_id": "aaaa"}})",
              model::Validation::kTrust);
  for (const char* field : {"image_uri", "_strata_base_image"}) {
    auto status = MakeContainerPlugin(field)->Validate(both);
    ASSERT_FALSE(status) << field;
    EXPECT_EQ(status.error().kind, util::ErrorKind::kValueError);
    EXPECT_CONTAINS(status.error().message, "one container image");
  }
  const auto container_and_uri =
      MakeEnv(R"({"container": {"image": "localhost/a:1"}, "image_uri": "localhost/b:1"})",
              model::Validation::kTrust);
  auto status = MakeContainerPlugin("container")->Validate(container_and_uri);
  ASSERT_FALSE(status);
  EXPECT_CONTAINS(status.error().message, "'image_uri'");

  EXPECT_TRUE(
      MakeContainerPlugin("image_uri")->Validate(MakeEnv(R"({"image_uri": "localhost/a:1"})")));
  EXPECT_TRUE(
      MakeContainerPlugin("container")
          ->Validate(MakeEnv(R"({"container": {"image": "localhost/a:1"}, "image_uri": null})",
                             model::Validation::kTrust)));
  EXPECT_TRUE(
      MakeContainerPlugin("_strata_base_image")
          ->Validate(MakeEnv(R"({"_strata_base_image": {"image_id": "aaaa"}, "pip": ["x"]})")));
}

TEST(ContainerPluginTest, MalformedFieldsFailBeforeAnyPodmanCall) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"image_uri", R"({"image_uri": 5})"},
      {"image_uri", R"({"image_uri": ""})"},
      {"container", R"({"container": {"run_options": []}})"},
      {"container", R"({"container": {"image": "a", "run_options": "--rm"}})"},
      {"container", R"({"container": {"image": "a", "run_options": [1]}})"},
      {"_strata_base_image", R"({"_strata_base_image": {"reference": "x"}})"},
  };
  for (const auto& [field, text] : cases) {
    const auto env = MakeEnv(text.c_str(), model::Validation::kTrust);
    RuntimeEnvContext context;
    SetupContext setup;
    setup.log = [](std::string_view) {};
    auto status = MakeContainerPlugin(field)->ModifyContext({}, env, setup, context);
    EXPECT_FALSE(status) << text;
    EXPECT_FALSE(context.container.has_value()) << text;
  }
}

// --- ResolveImage against a fake podman (STRATA_PODMAN) ------------------------------

// A podman stand-in that logs its arguments and answers `image inspect` with
// `inspect_output` once `pull` has run (or at once when `present`); `pull`
// fails when `pull_fails`.
class FakePodman {
 public:
  FakePodman(bool present, bool pull_fails, const std::string& inspect_output) {
    const std::string log = (dir_.path() / "calls").string();
    const std::string pulled = (dir_.path() / "pulled").string();
    WriteFile(dir_.path() / "podman",
              "#!/bin/sh\n"
              "echo \"$*\" >> '" +
                  log +
                  "'\n"
                  "while [ $# -gt 0 ]; do case \"$1\" in\n"
                  "  --runtime|--cgroup-manager|--events-backend) shift 2;;\n"
                  "  *) break;; esac; done\n"
                  "case \"$1\" in\n"
                  "  image) if " +
                  std::string(present ? "true" : "[ -e '" + pulled + "' ]") +
                  "; then printf '%s\\n' '" + inspect_output +
                  "'; exit 0; fi\n"
                  "    echo 'Error: image not known' >&2; exit 125;;\n"
                  "  pull) " +
                  std::string(pull_fails ? "echo 'Error: no such registry' >&2; exit 125"
                                         : "touch '" + pulled + "'") +
                  ";;\n"
                  "esac\n",
              0755);
    env_.Set("STRATA_PODMAN", (dir_.path() / "podman").string());
    env_.Set("STRATA_CONTAINER_RUNTIME", "runc");
    env_.Set("STRATA_INSECURE_REGISTRIES", std::nullopt);
  }
  // Each call's arguments after the global options, one line per call.
  std::vector<std::string> Calls() const {
    std::vector<std::string> calls;
    const std::string globals = "--runtime runc --cgroup-manager cgroupfs --events-backend file ";
    std::string text = util::testing::ReadFile(dir_.path() / "calls");
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      std::string line = text.substr(start, end - start);
      if (line.starts_with(globals)) line = line.substr(globals.size());
      calls.push_back(line);
      start = end == std::string::npos ? text.size() : end + 1;
    }
    return calls;
  }
  ScopedEnv& env() { return env_; }

 private:
  TempDir dir_;
  ScopedEnv env_;
};

const std::string kFakeId(64, 'c');
const std::string kInspectCall =
    "image inspect --format {{.Id}}\t{{json .Config.Env}} localhost/x:1";

TEST(ResolveImageTest, ParsesTheIdAndTheImageEnvironment) {
  FakePodman podman(true, false, kFakeId + "\t[\"PATH=/opt/bin:/usr/bin\",\"A=b=c\",\"NOEQ\"]");
  auto layer = ResolveImage("localhost/x:1", {"--env", "Y=2"});
  ASSERT_TRUE(layer) << layer.error().ToString();
  EXPECT_EQ(layer->image, kFakeId);
  EXPECT_EQ(layer->reference, "localhost/x:1");
  EXPECT_EQ(layer->run_options, (Argv{"--env", "Y=2"}));
  EXPECT_EQ(layer->image_env, (Env{{"PATH", "/opt/bin:/usr/bin"}, {"A", "b=c"}}));
  EXPECT_TRUE(layer->mounts.empty());
  EXPECT_EQ(layer->name, "");
  EXPECT_EQ(podman.Calls(), (Argv{kInspectCall}));
}

TEST(ResolveImageTest, NullImageEnvIsEmpty) {
  FakePodman podman(true, false, kFakeId + "\tnull");
  auto layer = ResolveImage("localhost/x:1", {});
  ASSERT_TRUE(layer) << layer.error().ToString();
  EXPECT_EQ(layer->image, kFakeId);
  EXPECT_TRUE(layer->image_env.empty());
}

TEST(ResolveImageTest, PullsWhatIsNotLocal) {
  FakePodman podman(false, false, kFakeId + "\t[]");
  auto layer = ResolveImage("localhost/x:1", {});
  ASSERT_TRUE(layer) << layer.error().ToString();
  EXPECT_EQ(layer->image, kFakeId);
  EXPECT_EQ(podman.Calls(), (Argv{kInspectCall, "pull localhost/x:1", kInspectCall}));
}

TEST(ResolveImageTest, InsecureRegistriesPullWithoutTls) {
  FakePodman podman(false, false, kFakeId + "\t[]");
  podman.env().Set("STRATA_INSECURE_REGISTRIES", " reg.local:5000 , localhost");
  ASSERT_TRUE(ResolveImage("localhost/x:1", {}));
  EXPECT_EQ(podman.Calls().at(1), "pull --tls-verify=false localhost/x:1");

  FakePodman other(false, false, kFakeId + "\t[]");
  other.env().Set("STRATA_INSECURE_REGISTRIES", "localhost:5000,reg.local");
  ASSERT_TRUE(ResolveImage("localhost/x:1", {}));
  EXPECT_EQ(other.Calls().at(1), "pull localhost/x:1");
}

TEST(ResolveImageTest, FailedPullNamesTheReferenceAndQuotesPodman) {
  FakePodman podman(false, true, kFakeId + "\t[]");
  auto layer = ResolveImage("localhost/x:1", {});
  ASSERT_FALSE(layer);
  EXPECT_EQ(layer.error().kind, util::ErrorKind::kNotFound);
  EXPECT_CONTAINS(layer.error().message, "'localhost/x:1'");
  EXPECT_CONTAINS(layer.error().message, "no such registry");
}

TEST(ResolveImageTest, NoIdIsAnError) {
  FakePodman podman(true, false, "");
  auto layer = ResolveImage("localhost/x:1", {});
  ASSERT_FALSE(layer);
  EXPECT_CONTAINS(layer.error().message, "localhost/x:1");
}

TEST(ResolveImageTest, WarningsBeforeTheOutputLineAreSkipped) {
  FakePodman podman(true, false, "WARN[0000] some warning\n" + kFakeId + "\t[\"A=1\"]");
  auto layer = ResolveImage("localhost/x:1", {});
  ASSERT_TRUE(layer) << layer.error().ToString();
  EXPECT_EQ(layer->image, kFakeId);
  EXPECT_EQ(layer->image_env, (Env{{"A", "1"}}));
}

// --- Real podman -----------------------------------------------------------------

bool HavePodman() {
  const char* path = std::getenv("PATH");
  return FindExecutable("podman", path ? std::optional<std::string>(path) : std::nullopt)
      .has_value();
}

TEST(PodmanTest, ResolveImageOfAnUnknownReferenceFails) {
  if (!HavePodman()) GTEST_SKIP() << "podman is not on PATH";
  const std::string reference = "localhost/strata-test-nonexistent:1";
  const auto start = std::chrono::steady_clock::now();
  auto layer = ResolveImage(reference, {}, start + 60s);
  ASSERT_FALSE(layer);
  EXPECT_CONTAINS(layer.error().message, reference);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 60s);
}

TEST(PodmanTest, RunsACommandInAnImportedImage) {
  if (!HavePodman()) GTEST_SKIP() << "podman is not on PATH";
  // The host's sh, echo, cat and env, with an image environment.
  testing::TinyImage image("agent");
  util::Status built = image.Build({"/bin/sh", "/bin/echo", "/bin/cat", "/usr/bin/env"}, {},
                                   {"ENV PATH=/usr/bin:/bin", "ENV IMAGE_VAR=from-image"});
  ASSERT_TRUE(built) << built.error().ToString();

  auto layer = ResolveImage(image.reference(), {"--env", "RUN_OPTION_VAR=from-run-options"},
                            std::chrono::steady_clock::now() + 60s);
  ASSERT_TRUE(layer) << layer.error().ToString();
  EXPECT_EQ(layer->image.size(), 64u) << layer->image;
  EXPECT_TRUE(std::all_of(layer->image.begin(), layer->image.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c));
  })) << layer->image;
  EXPECT_EQ(layer->reference, image.reference());
  EXPECT_EQ(layer->run_options, (Argv{"--env", "RUN_OPTION_VAR=from-run-options"}));
  EXPECT_EQ(Get(layer->image_env, "PATH"), "/usr/bin:/bin");
  EXPECT_EQ(Get(layer->image_env, "IMAGE_VAR"), "from-image");

  TempDir shared;
  TempDir work;
  WriteFile(shared.path() / "mounted.txt", "host file\n");
  WriteFile(work.path() / "relative.txt", "in cwd\n");
  layer->mounts = {shared.path().string()};

  RuntimeEnvContext context;
  context.container = *layer;
  context.cwd = work.path().string();
  context.env_vars = {{"FOO", "from-context"}, {"BAR", "${IMAGE_VAR}+x"}};
  ScopedEnv host{{"VIRTUAL_ENV", "/host/venv"}, {"STRATA_TEST_PASSED", "yes"}};
  const Env host_env = CurrentEnvironment();
  const std::string script =
      "echo \"$FOO\"; echo \"$BAR\"; echo \"venv=$VIRTUAL_ENV\"; echo \"$STRATA_TEST_PASSED\"; "
      "echo \"$RUN_OPTION_VAR\"; echo \"$PATH\"; cat " +
      (shared.path() / "mounted.txt").string() + "; cat relative.txt; exit 3";
  const LaunchPlan plan =
      HostPlan(PlanLaunch(context, {"/bin/sh", "-c", script}, host_env), host_env);
  CommandSpec spec;
  spec.argv = plan.argv;
  spec.env_mode = EnvMode::kReplace;
  spec.env = plan.env;
  testing::ToolOutput out = testing::RunTool(spec);
  EXPECT_EQ(out.exit_code, 3) << out.text;
  EXPECT_EQ(out.text,
            "from-context\nfrom-image+x\nvenv=\nyes\nfrom-run-options\n/usr/bin:/bin\nhost file\n"
            "in cwd\n");
}

}  // namespace
}  // namespace strata::agent
