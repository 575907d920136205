#include "agent/env_manager.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "agent/process.h"
#include "packaging/upload.h"
#include "util/digest.h"
#include "util/temp_dir_testing.h"

namespace strata::agent {
namespace {

namespace fs = std::filesystem;
using util::Json;

// A field whose resource is "built" by running a shell command given in the
// env, so tests control duration, output and failure.
class ScriptPlugin : public RuntimeEnvPlugin {
 public:
  std::string_view name() const override { return "test_script"; }
  std::vector<std::string> Uris(const model::RuntimeEnv& env) const override {
    return {"test://" + util::Sha256Hex(env.Get("test_script", "").dump()).substr(0, 16)};
  }
  util::Status Create(const std::string&, const model::RuntimeEnv& env,
                      const SetupContext& setup) const override {
    CommandSpec spec;
    spec.argv = {"sh", "-c", env.Get("test_script", "").get<std::string>()};
    spec.cwd = setup.staging_dir;
    RunOptions options;
    options.deadline = setup.deadline;
    options.on_line = setup.log;
    auto result = RunCommand(spec, options);
    if (!result) return std::move(result).error();
    if (result->timed_out) return util::Error{util::ErrorKind::kTimeout, FormatFailure(*result)};
    if (result->exit_code != 0) return util::IOError(FormatFailure(*result));
    return {};
  }
  util::Status ModifyContext(const std::map<std::string, fs::path>& dirs, const model::RuntimeEnv&,
                             const SetupContext&, RuntimeEnvContext& context) const override {
    for (const auto& [uri, dir] : dirs) context.SetEnv("TEST_SCRIPT_DIR", dir.string());
    return {};
  }
};

// Alive and not a zombie: a killed grandchild may linger as a zombie until
// whoever adopted it reaps it, which counts as dead here.
bool IsAlive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t paren = line.rfind(')');
  return paren == std::string::npos || line.size() < paren + 3 || line[paren + 2] != 'Z';
}

class EnvManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    paths_.home = root_ / "home";
    paths_.session_dir = root_ / "session";
    options_.retry_interval = std::chrono::milliseconds(10);
    options_.extra_plugins.push_back(std::make_shared<ScriptPlugin>());
  }
  void TearDown() override { unsetenv("STRATA_RUNTIME_ENV_WORKING_DIR_CACHE_SIZE_GB"); }
  std::unique_ptr<EnvManager> Open() {
    auto manager = EnvManager::Open(paths_, options_);
    EXPECT_TRUE(manager) << (manager ? "" : manager.error().message);
    return manager ? std::move(manager).value() : nullptr;
  }
  // Packages a small directory into the node's store; returns its gcs:// URI.
  std::string StoreWorkingDir(const std::string& name, const std::string& content) {
    fs::path dir = root_ / name;
    fs::create_directories(dir);
    std::ofstream(dir / "main.py") << content;
    auto store = packaging::BlobStore::Open(paths_.store_dir());
    EXPECT_TRUE(store);
    packaging::BlobStoreSink sink(*store);
    auto uri = packaging::UploadLocalPath(dir, packaging::TopLevel::kContentsAtRoot, {}, sink);
    EXPECT_TRUE(uri) << (uri ? "" : uri.error().message);
    return uri ? *uri : "";
  }
  static CreateRequest Request(const Json& env) {
    CreateRequest request;
    request.serialized_env = *model::RuntimeEnv::Create(env)->Serialize();
    request.job_id = "job1";
    return request;
  }

  util::testing::TempDir temp_;
  const fs::path root_ = temp_.path();
  NodePaths paths_;
  EnvManagerOptions options_;
};

TEST_F(EnvManagerTest, WorkingDirAndEnvVarsContext) {
  auto manager = Open();
  std::string uri = StoreWorkingDir("proj", "print('hi')\n");
  auto context = manager->GetOrCreate(
      Request(Json::object({{"working_dir", uri}, {"env_vars", {{"A", "1"}, {"B", "${A}2"}}}})));
  ASSERT_TRUE(context) << context.error().message;
  EXPECT_TRUE(fs::exists(fs::path(context->cwd) / "main.py"));
  ASSERT_EQ(context->pythonpath.size(), 1u);
  EXPECT_EQ(context->pythonpath[0], context->cwd);
  EXPECT_EQ(context->GetEnv("A"), "1");
  EXPECT_EQ(context->GetEnv("B"), "${A}2");  // expanded by the launcher, not here
  EXPECT_TRUE(fs::exists(paths_.logs_dir() / "runtime_env_setup-job1.log"));
}

TEST_F(EnvManagerTest, SecondRequestIsACacheHitAndSurvivesRestart) {
  std::string uri = StoreWorkingDir("proj", "x = 1\n");
  CreateRequest request = Request(Json::object({{"working_dir", uri}}));
  std::string cwd;
  {
    auto manager = Open();
    auto first = manager->GetOrCreate(request);
    ASSERT_TRUE(first);
    auto second = manager->GetOrCreate(request);
    ASSERT_TRUE(second);
    EXPECT_EQ(manager->Counters().env_creations, 1u);
    EXPECT_EQ(manager->Counters().env_hits, 1u);
    EXPECT_EQ(manager->Counters().resource_creations, 1u);
    cwd = first->cwd;
  }
  auto restarted = Open();
  auto again = restarted->GetOrCreate(request);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->cwd, cwd);
  EXPECT_EQ(restarted->Counters().resource_creations, 0u);
  EXPECT_EQ(restarted->Counters().resource_hits, 1u);
}

TEST_F(EnvManagerTest, ConcurrentRequestsCreateOnce) {
  auto manager = Open();
  CreateRequest request = Request(Json::object({{"test_script", "sleep 0.3; echo built > out"}}));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] { ok += manager->GetOrCreate(request).has_value(); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 16);
  EXPECT_EQ(manager->Counters().resource_creations, 1u);
  EXPECT_EQ(manager->Counters().env_creations, 1u);
  EXPECT_EQ(manager->Info()[0].ref_count, 16);
}

TEST_F(EnvManagerTest, DifferentEnvsBuildConcurrently) {
  auto manager = Open();
  auto start = std::chrono::steady_clock::now();
  std::thread a([&] {
    EXPECT_TRUE(
        manager->GetOrCreate(Request(Json::object({{"test_script", "sleep 0.5; echo a"}}))));
  });
  std::thread b([&] {
    EXPECT_TRUE(
        manager->GetOrCreate(Request(Json::object({{"test_script", "sleep 0.5; echo b"}}))));
  });
  a.join();
  b.join();
  // Sequential creation would take at least a second.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(950));
}

TEST_F(EnvManagerTest, TimeoutKillsInstallerAndBoundsTheWholeRequest) {
  auto manager = Open();
  fs::path pid_file = root_ / "child.pid";
  Json env = Json::object(
      {{"test_script", "sh -c 'echo $$ > " + pid_file.string() + "; sleep 60' ; sleep 60"},
       {"config", {{"setup_timeout_seconds", 1}}}});
  auto start = std::chrono::steady_clock::now();
  auto result = manager->GetOrCreate(Request(env));
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind, util::ErrorKind::kTimeout);
  EXPECT_TRUE(result.error().message.starts_with(
      "Failed to install runtime_env within the timeout of 1 seconds."))
      << result.error().message;
  // One timeout for the whole request, not one per attempt (plus kill grace).
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  std::ifstream in(pid_file);
  pid_t pid = 0;
  in >> pid;
  ASSERT_GT(pid, 0);
  EXPECT_FALSE(IsAlive(pid)) << "the installer's child survived";
  for (const auto& entry : fs::directory_iterator(paths_.resources_dir() / "test_script")) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".tmp-")) << entry.path();
  }
}

TEST_F(EnvManagerTest, FailureIsCachedUntilRetry) {
  auto manager = Open();
  fs::path counter = root_ / "attempts";
  CreateRequest request =
      Request(Json::object({{"test_script", "echo try >> " + counter.string() +
                                                "; echo 'ERROR: no such package' >&2; exit 3"}}));
  auto first = manager->GetOrCreate(request);
  ASSERT_FALSE(first);
  EXPECT_NE(first.error().message.find("runtime_env field 'test_script'"), std::string::npos);
  EXPECT_NE(first.error().message.find("exit code 3"), std::string::npos) << first.error().message;
  EXPECT_NE(first.error().message.find("ERROR: no such package"), std::string::npos);
  auto attempts = [&] {
    std::ifstream in(counter);
    return static_cast<int>(std::count(std::istreambuf_iterator<char>(in), {}, '\n'));
  };
  EXPECT_EQ(attempts(), 3);  // Ray's three attempts
  auto cached = manager->GetOrCreate(request);
  ASSERT_FALSE(cached);
  EXPECT_EQ(cached.error().message, first.error().message);
  EXPECT_EQ(attempts(), 3);
  ASSERT_TRUE(manager->Retry(EnvManager::EnvId(request.serialized_env)).ok());
  EXPECT_FALSE(manager->GetOrCreate(request));
  EXPECT_EQ(attempts(), 6);
}

TEST_F(EnvManagerTest, ValueErrorsAreNotRetried) {
  auto manager = Open();
  auto result = manager->GetOrCreate(Request(Json::object({{"conda", "base"}})));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message,
            "runtime_env field 'conda': runtime_env field 'conda' is not supported yet by Strata's "
            "node agent");
}

TEST_F(EnvManagerTest, MissingPackageNamesTheUri) {
  auto manager = Open();
  auto result = manager->GetOrCreate(Request(
      Json::object({{"working_dir", "gcs://_strata_pkg_00000000000000000000000000000000.zip"}})));
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("gcs://_strata_pkg_00000000000000000000000000000000.zip"),
            std::string::npos);
}

TEST_F(EnvManagerTest, EvictionRespectsReferencesAndLruOrder) {
  // A cap of ~1 byte: anything unreferenced is evicted at once.
  setenv("STRATA_RUNTIME_ENV_WORKING_DIR_CACHE_SIZE_GB", "0.000000001", 1);
  auto manager = Open();
  std::string a = StoreWorkingDir("a", "a = 1\n");
  std::string b = StoreWorkingDir("b", "b = 2\n");
  CreateRequest ra = Request(Json::object({{"working_dir", a}}));
  CreateRequest rb = Request(Json::object({{"working_dir", b}}));
  auto ca = manager->GetOrCreate(ra);
  auto cb = manager->GetOrCreate(rb);
  ASSERT_TRUE(ca && cb);
  // Both referenced: both kept although over the cap.
  EXPECT_TRUE(fs::exists(ca->cwd));
  EXPECT_TRUE(fs::exists(cb->cwd));
  ASSERT_TRUE(manager->Delete(ra.serialized_env).ok());
  EXPECT_FALSE(fs::exists(ca->cwd));
  EXPECT_TRUE(fs::exists(cb->cwd));
  ASSERT_TRUE(manager->Delete(rb.serialized_env).ok());
  EXPECT_FALSE(fs::exists(cb->cwd));
  EXPECT_FALSE(manager->Delete(rb.serialized_env).ok());
  // A released env is recreated on demand.
  auto again = manager->GetOrCreate(ra);
  ASSERT_TRUE(again);
  EXPECT_TRUE(fs::exists(fs::path(again->cwd) / "main.py"));
}

TEST_F(EnvManagerTest, PyExecutableAndNsight) {
  auto manager = Open();
  auto context = manager->GetOrCreate(Request(Json::object({{"py_executable", "python3 -X dev"}})));
  ASSERT_TRUE(context);
  EXPECT_EQ(context->py_executable, "python3 -X dev");
  if (FindExecutable("nsys", std::getenv("PATH") ? std::optional<std::string>(std::getenv("PATH"))
                                                 : std::nullopt)) {
    GTEST_SKIP() << "nsys is installed here; the missing-tool message cannot be tested";
  }
  auto nsight = manager->GetOrCreate(Request(Json::object({{"nsight", "default"}})));
  ASSERT_FALSE(nsight);
  EXPECT_NE(nsight.error().message.find("nsight is not installed"), std::string::npos)
      << nsight.error().message;
  auto bad = manager->GetOrCreate(Request(Json::object({{"nsight", "fancy"}})));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("Unsupported nsight config: fancy."), std::string::npos);
}

TEST_F(EnvManagerTest, MpiWrapsThePythonCommand) {
  auto manager = Open();
  auto context = manager->GetOrCreate(Request(Json::object({{"mpi", {{"args", {"-n", "2"}}}}})));
  if (!FindExecutable("mpirun", std::getenv("PATH")
                                    ? std::optional<std::string>(std::getenv("PATH"))
                                    : std::nullopt)) {
    ASSERT_FALSE(context);
    EXPECT_NE(context.error().message.find("mpirun is not installed"), std::string::npos);
    return;
  }
  ASSERT_TRUE(context) << context.error().message;
  EXPECT_TRUE(context->py_executable.starts_with("mpirun -n 2 ")) << context->py_executable;
}

TEST_F(EnvManagerTest, UnknownFieldIsIgnored) {
  auto manager = Open();
  auto context =
      manager->GetOrCreate(Request(Json::object({{"my_plugin", 1}, {"env_vars", {{"X", "1"}}}})));
  ASSERT_TRUE(context);
  EXPECT_EQ(context->GetEnv("X"), "1");
  std::ifstream log(paths_.logs_dir() / "runtime_env_setup-job1.log");
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("runtime_env field my_plugin is not recognized and will be ignored"),
            std::string::npos);
}

}  // namespace
}  // namespace strata::agent
