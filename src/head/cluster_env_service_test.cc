#include "head/cluster_env_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "util/scoped_env_testing.h"
#include "util/temp_dir_testing.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using util::ErrorKind;
using util::testing::ReadFile;
using util::testing::TempDir;
using util::testing::WriteFile;

constexpr char kHeadStopped[] = "the head stopped before the build finished";

// What the fake builder saw of one request (the request's cancel flag and
// log callback do not outlive the build).
struct SeenRequest {
  model::ClusterEnvSpec spec;
  std::string image_ref;
  fs::path work_dir;
  bool work_dir_existed = false;
  std::vector<std::pair<std::string, std::string>> build_args;
  fs::path oci_archive;
  std::string registry;
  bool registry_tls_verify = true;
  bool has_deadline = false;
  bool has_cancel = false;
};

// Shared between a test and its FakeBuilder, so that it outlives the service.
struct FakeState {
  std::mutex mu;
  std::condition_variable cv;
  bool block = false;  // builds wait for Release (or cancel, or their deadline)
  std::set<std::string> released;
  std::map<std::string, std::string> fail_with;  // image ref → error message
  std::vector<std::string> lines_before;         // logged before blocking
  std::vector<std::string> lines_after;          // logged after
  std::vector<std::string> started;              // image refs in call order
  std::vector<std::string> finished;
  std::set<std::string> saw_cancel;
  std::set<std::string> saw_deadline;
  std::vector<std::string> exported;  // image refs ExportArchive wrote, in order
  std::vector<SeenRequest> requests;
  std::map<std::string, int> active;  // by env name
  std::map<std::string, int> max_active;
  int active_total = 0;
  int max_active_total = 0;

  void Release(const std::string& ref) {
    std::lock_guard lock(mu);
    released.insert(ref);
    cv.notify_all();
  }
  bool Started(const std::string& ref) {
    std::lock_guard lock(mu);
    return std::find(started.begin(), started.end(), ref) != started.end();
  }
};

// "localhost/strata/ml:3" → "ml".
std::string EnvName(const std::string& image_ref) {
  std::string rest = image_ref.substr(std::string("localhost/strata/").size());
  return rest.substr(0, rest.find(':'));
}

class FakeBuilder : public clusterenv::ImageBuilder {
 public:
  explicit FakeBuilder(std::shared_ptr<FakeState> state) : state_(std::move(state)) {}

  util::Result<clusterenv::ImageBuildResult> Build(
      const clusterenv::ImageBuildRequest& request) override {
    FakeState& s = *state_;
    const std::string& ref = request.image_ref;
    const std::string name = EnvName(ref);
    std::vector<std::string> before, after;
    {
      std::lock_guard lock(s.mu);
      s.started.push_back(ref);
      s.requests.push_back({request.spec, ref, request.work_dir, fs::is_directory(request.work_dir),
                            request.build_args, request.oci_archive, request.registry,
                            request.registry_tls_verify, request.deadline.has_value(),
                            request.cancel != nullptr});
      s.max_active[name] = std::max(s.max_active[name], ++s.active[name]);
      s.max_active_total = std::max(s.max_active_total, ++s.active_total);
      before = s.lines_before;
      after = s.lines_after;
      s.cv.notify_all();
    }
    for (const std::string& line : before) request.log(line);
    bool cancelled = false;
    bool timed_out = false;
    {
      std::unique_lock lock(s.mu);
      while (s.block && !s.released.contains(ref)) {
        if (request.cancel != nullptr && *request.cancel) {
          cancelled = true;
          s.saw_cancel.insert(ref);
          break;
        }
        if (request.deadline && std::chrono::steady_clock::now() >= *request.deadline) {
          timed_out = true;
          s.saw_deadline.insert(ref);
          break;
        }
        s.cv.wait_for(lock, 10ms);
      }
    }
    for (const std::string& line : after) request.log(line);
    std::string failure;
    {
      std::lock_guard lock(s.mu);
      --s.active[name];
      --s.active_total;
      s.finished.push_back(ref);
      if (auto it = s.fail_with.find(ref); it != s.fail_with.end()) failure = it->second;
    }
    if (cancelled) return util::Error{ErrorKind::kTimeout, "podman build was cancelled"};
    if (timed_out) return util::Error{ErrorKind::kTimeout, "podman build passed its deadline"};
    if (!failure.empty()) return util::IOError(failure);
    clusterenv::ImageBuildResult result;
    result.image_id = "id-" + ref;
    result.digest = "sha256:digest-" + ref;
    if (!request.registry.empty()) {
      result.registry_ref = request.registry + "/" + ref.substr(std::string("localhost/").size());
    }
    return result;
  }

  util::Status ExportArchive(const std::string& image_ref, const fs::path& archive,
                             const std::atomic<bool>*,
                             const std::function<void(std::string_view)>&) override {
    WriteFile(archive, "archive of " + image_ref);
    std::lock_guard lock(state_->mu);
    state_->exported.push_back(image_ref);
    return {};
  }

 private:
  std::shared_ptr<FakeState> state_;
};

model::ClusterEnvSpec MakeSpec() {
  model::ClusterEnvSpec spec;
  spec.base_image = "localhost/debian-py:bookworm";
  spec.env_vars = {{"Z", "1"}, {"A", "2"}};
  spec.pip_packages = {"requests==2.31.0"};
  return spec;
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class ClusterEnvServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = HeadDb::Open(tmp_.path() / "head" / "head.db");
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
  }

  fs::path home() const { return tmp_.path() / "home"; }

  ClusterEnvServiceOptions Options() const {
    ClusterEnvServiceOptions options;
    options.home = home();
    return options;
  }

  std::unique_ptr<ClusterEnvService> Open(ClusterEnvServiceOptions options) {
    auto service =
        ClusterEnvService::Open(*db_, std::make_unique<FakeBuilder>(fake_), std::move(options));
    EXPECT_TRUE(service) << service.error().ToString();
    return service ? std::move(*service) : nullptr;
  }
  std::unique_ptr<ClusterEnvService> Open() { return Open(Options()); }

  // The build once it has finished.
  ClusterEnvBuildRecord WaitFinished(ClusterEnvService& service, const std::string& name,
                                     int version) {
    ClusterEnvBuildRecord last;
    EXPECT_TRUE(WaitFor([&] {
      auto build = service.GetBuild(name, version);
      if (build) last = *build;
      return build && IsTerminal(build->status);
    })) << name
        << ":" << version << " did not finish";
    return last;
  }

  TempDir tmp_;
  std::unique_ptr<HeadDb> db_;
  std::shared_ptr<FakeState> fake_ = std::make_shared<FakeState>();
};

TEST_F(ClusterEnvServiceTest, OpenExportsTheArchivesAPreviousHeadDidNotWrite) {
  const fs::path archive = home() / "images" / "ml-1.oci.tar";
  {
    auto service = Open();
    ASSERT_TRUE(service->StartBuild("ml", MakeSpec()));
    ASSERT_EQ(WaitFinished(*service, "ml", 1).status, BuildStatus::kSucceeded);
    ASSERT_TRUE(WaitFor([&] { return fs::exists(archive); }));
  }
  fs::remove(archive);
  WriteFile(archive.string() + ".tmp", "half an archive");
  auto service = Open();
  EXPECT_TRUE(WaitFor([&] { return fs::exists(archive); }));
  EXPECT_FALSE(fs::exists(archive.string() + ".tmp"));
  std::lock_guard lock(fake_->mu);
  EXPECT_EQ(fake_->exported,
            (std::vector<std::string>{"localhost/strata/ml:1", "localhost/strata/ml:1"}));
}

TEST_F(ClusterEnvServiceTest, BuildRunsAndRecordsTheImage) {
  ClusterEnvServiceOptions options = Options();
  options.environment = {{"HOME", "/root"}, {"PIP_INDEX_URL", "http://127.0.0.1:9/simple"}};
  options.registry = "127.0.0.1:5000";
  options.registry_tls_verify = false;
  fake_->lines_before = {"STEP 1/2: FROM localhost/debian-py:bookworm",
                         "STEP 2/2: RUN pip install"};
  auto service = Open(options);
  ASSERT_NE(service, nullptr);

  auto started = service->StartBuild("ml", MakeSpec());
  ASSERT_TRUE(started) << started.error().ToString();
  EXPECT_EQ(started->name, "ml");
  EXPECT_EQ(started->version, 1);
  EXPECT_EQ(started->image_ref, "localhost/strata/ml:1");
  EXPECT_EQ(started->spec.dump(), MakeSpec().ToJson().dump());
  EXPECT_GT(started->created_ms, 0);

  ClusterEnvBuildRecord build = WaitFinished(*service, "ml", 1);
  EXPECT_EQ(build.status, BuildStatus::kSucceeded) << build.error_message;
  EXPECT_EQ(build.image_ref, "localhost/strata/ml:1");
  EXPECT_EQ(build.image_id, "id-localhost/strata/ml:1");
  EXPECT_EQ(build.digest, "sha256:digest-localhost/strata/ml:1");
  EXPECT_EQ(build.registry_ref, "127.0.0.1:5000/strata/ml:1");
  EXPECT_EQ(build.oci_archive, (home() / "images" / "ml-1.oci.tar").string());
  EXPECT_EQ(build.error_message, "");
  ASSERT_TRUE(build.started_ms);
  ASSERT_TRUE(build.finished_ms);
  EXPECT_LE(build.created_ms, *build.started_ms);
  EXPECT_LE(*build.started_ms, *build.finished_ms);

  ASSERT_EQ(fake_->requests.size(), 1u);
  const SeenRequest& request = fake_->requests[0];
  EXPECT_TRUE(request.spec == MakeSpec());
  EXPECT_EQ(request.image_ref, "localhost/strata/ml:1");
  EXPECT_EQ(request.work_dir, home() / "cluster_envs" / "work" / "ml-1");
  EXPECT_TRUE(request.work_dir_existed);
  EXPECT_FALSE(fs::exists(request.work_dir));  // removed when the build ended
  EXPECT_EQ(request.build_args, (std::vector<std::pair<std::string, std::string>>{
                                    {"PIP_INDEX_URL", "http://127.0.0.1:9/simple"}}));
  // The archive is written after the build, by the exporter.
  EXPECT_EQ(request.oci_archive, fs::path());
  EXPECT_TRUE(WaitFor([&] { return fs::exists(home() / "images" / "ml-1.oci.tar"); }));
  EXPECT_EQ(ReadFile(home() / "images" / "ml-1.oci.tar"), "archive of localhost/strata/ml:1");
  EXPECT_TRUE(WaitFor([&] { return service->GetBuild("ml", 1)->ToJson()["oci_archive_ready"]; }));
  EXPECT_EQ(request.registry, "127.0.0.1:5000");
  EXPECT_FALSE(request.registry_tls_verify);
  EXPECT_TRUE(request.has_deadline);
  EXPECT_TRUE(request.has_cancel);

  const std::string log =
      "STEP 1/2: FROM localhost/debian-py:bookworm\nSTEP 2/2: RUN pip install\n";
  EXPECT_EQ(ReadFile(home() / "cluster_envs" / "logs" / "ml-1.log"), log);
  EXPECT_EQ(db_->ClusterEnvBuildLog("ml", 1).value(), log);

  auto second = service->StartBuild("ml", MakeSpec());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->version, 2);
  EXPECT_EQ(second->image_ref, "localhost/strata/ml:2");
  auto other = service->StartBuild("web", MakeSpec());
  ASSERT_TRUE(other);
  EXPECT_EQ(other->version, 1);
  EXPECT_EQ(other->image_ref, "localhost/strata/web:1");
  EXPECT_EQ(WaitFinished(*service, "ml", 2).status, BuildStatus::kSucceeded);
  EXPECT_EQ(WaitFinished(*service, "web", 1).status, BuildStatus::kSucceeded);

  ClusterEnvCounters counters = service->Counters();
  EXPECT_EQ(counters.builds_started, 3u);
  EXPECT_EQ(counters.builds_succeeded, 3u);
  EXPECT_EQ(counters.builds_failed, 0u);
  EXPECT_GE(counters.build_seconds_sum, 0.0);

  auto env = service->GetEnv("ml");
  ASSERT_TRUE(env);
  EXPECT_EQ(env->latest_version, 2);
  EXPECT_EQ(env->latest_succeeded_version, 2);
  auto builds = service->ListBuilds("ml");
  ASSERT_TRUE(builds);
  EXPECT_EQ(builds->size(), 2u);
  std::vector<std::string> names;
  for (const auto& listed : service->ListEnvs(false)) names.push_back(listed.name);
  EXPECT_EQ(names, (std::vector<std::string>{"ml", "web"}));
}

TEST_F(ClusterEnvServiceTest, InvalidNameOrSpecIsRefused) {
  auto service = Open();
  ASSERT_NE(service, nullptr);
  for (const char* name : {"ML", "", "-x", "a/b"}) {
    auto started = service->StartBuild(name, MakeSpec());
    ASSERT_FALSE(started) << name;
    util::Status expected = model::ValidateClusterEnvName(name);
    ASSERT_FALSE(expected.ok());
    EXPECT_EQ(started.error().kind, expected.error().kind);
    EXPECT_EQ(started.error().message, expected.error().message);
  }
  model::ClusterEnvSpec spec = MakeSpec();
  spec.base_image = "";
  auto started = service->StartBuild("ml", spec);
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().kind, ErrorKind::kValueError);
  EXPECT_NE(started.error().message.find("base_image"), std::string::npos)
      << started.error().message;

  EXPECT_TRUE(service->ListEnvs(true).empty());
  EXPECT_EQ(service->Counters().builds_started, 0u);
}

TEST_F(ClusterEnvServiceTest, FailedBuildKeepsTheBuilderError) {
  fake_->fail_with["localhost/strata/ml:1"] = "STEP 2/3: RUN false: exit status 1";
  fake_->lines_before = {"STEP 2/3: RUN false"};
  auto service = Open();
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(service->StartBuild("ml", MakeSpec()));
  ClusterEnvBuildRecord build = WaitFinished(*service, "ml", 1);
  EXPECT_EQ(build.status, BuildStatus::kFailed);
  EXPECT_EQ(build.error_message, "STEP 2/3: RUN false: exit status 1");
  EXPECT_EQ(build.image_id, "");
  EXPECT_EQ(build.oci_archive, "");
  EXPECT_EQ(db_->ClusterEnvBuildLog("ml", 1).value(), "STEP 2/3: RUN false\n");
  ClusterEnvCounters counters = service->Counters();
  EXPECT_EQ(counters.builds_failed, 1u);
  EXPECT_EQ(counters.builds_succeeded, 0u);

  auto runnable = service->ResolveRunnable({"ml", 1});
  ASSERT_FALSE(runnable);
  EXPECT_EQ(runnable.error().kind, ErrorKind::kValueError);
  EXPECT_EQ(runnable.error().message,
            "cluster environment build ml:1 is FAILED, not SUCCEEDED; available versions: none "
            "(no build of 'ml' succeeded)");
}

TEST_F(ClusterEnvServiceTest, BuildPastTheTimeoutFails) {
  fake_->block = true;
  ClusterEnvServiceOptions options = Options();
  options.build_timeout = 1s;
  auto service = Open(options);
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(service->StartBuild("ml", MakeSpec()));
  ClusterEnvBuildRecord build = WaitFinished(*service, "ml", 1);
  EXPECT_EQ(build.status, BuildStatus::kFailed);
  EXPECT_EQ(build.error_message, "build timed out after 1 s: podman build passed its deadline");
  EXPECT_TRUE(fake_->saw_deadline.contains("localhost/strata/ml:1"));
  EXPECT_GE(service->Counters().build_seconds_sum, 1.0);
}

TEST_F(ClusterEnvServiceTest, BuildsOfOneNameRunOneAtATimeInVersionOrder) {
  fake_->block = true;
  auto service = Open();
  ASSERT_NE(service, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(service->StartBuild("a", MakeSpec()));
  ASSERT_TRUE(WaitFor([&] { return fake_->Started("localhost/strata/a:1"); }));
  ASSERT_TRUE(service->StartBuild("b", MakeSpec()));
  // b builds while a:1 is still blocked: different names run concurrently.
  ASSERT_TRUE(WaitFor([&] { return fake_->Started("localhost/strata/b:1"); }));
  {
    std::lock_guard lock(fake_->mu);
    EXPECT_EQ(fake_->started,
              (std::vector<std::string>{"localhost/strata/a:1", "localhost/strata/b:1"}));
    EXPECT_EQ(fake_->max_active_total, 2);
  }
  EXPECT_EQ(service->GetBuild("a", 1)->status, BuildStatus::kInProgress);
  EXPECT_EQ(service->GetBuild("a", 2)->status, BuildStatus::kPending);
  EXPECT_EQ(service->GetBuild("a", 3)->status, BuildStatus::kPending);
  auto in_progress = service->ResolveRunnable({"a", 1});
  ASSERT_FALSE(in_progress);
  EXPECT_EQ(in_progress.error().message,
            "cluster environment build a:1 is IN_PROGRESS, not SUCCEEDED; available versions: "
            "none (no build of 'a' succeeded)");

  fake_->Release("localhost/strata/b:1");
  fake_->Release("localhost/strata/a:1");
  ASSERT_TRUE(WaitFor([&] { return fake_->Started("localhost/strata/a:2"); }));
  EXPECT_FALSE(fake_->Started("localhost/strata/a:3"));
  fake_->Release("localhost/strata/a:3");  // released early: still waits for a:2
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(fake_->Started("localhost/strata/a:3"));
  fake_->Release("localhost/strata/a:2");
  for (int version : {1, 2, 3}) {
    EXPECT_EQ(WaitFinished(*service, "a", version).status, BuildStatus::kSucceeded);
  }
  EXPECT_EQ(WaitFinished(*service, "b", 1).status, BuildStatus::kSucceeded);

  std::lock_guard lock(fake_->mu);
  EXPECT_EQ(fake_->max_active["a"], 1);
  std::vector<std::string> a_order;
  for (const std::string& ref : fake_->started) {
    if (EnvName(ref) == "a") a_order.push_back(ref);
  }
  EXPECT_EQ(a_order, (std::vector<std::string>{"localhost/strata/a:1", "localhost/strata/a:2",
                                               "localhost/strata/a:3"}));
}

TEST_F(ClusterEnvServiceTest, ConcurrentStartsOfOneNameStayInOrder) {
  fake_->block = true;
  auto service = Open();
  ASSERT_NE(service, nullptr);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] { ASSERT_TRUE(service->StartBuild("a", MakeSpec())); });
  }
  for (auto& thread : threads) thread.join();
  for (int version = 1; version <= 6; ++version) {
    std::string ref = "localhost/strata/a:" + std::to_string(version);
    ASSERT_TRUE(WaitFor([&] { return fake_->Started(ref); })) << ref;
    EXPECT_EQ(service->GetBuild("a", version)->image_ref, ref);
    fake_->Release(ref);
    EXPECT_EQ(WaitFinished(*service, "a", version).status, BuildStatus::kSucceeded);
  }
  std::lock_guard lock(fake_->mu);
  EXPECT_EQ(fake_->max_active["a"], 1);
}

TEST_F(ClusterEnvServiceTest, OpenFailsBuildsAPreviousHeadLeftUnfinished) {
  auto insert = [&](const std::string& name, BuildStatus status) {
    ClusterEnvBuildRecord build;
    build.name = name;
    build.spec = MakeSpec().ToJson();
    build.created_ms = 1;
    build = db_->InsertClusterEnvBuild(build).value();
    build.image_ref = "localhost/strata/" + name + ":" + std::to_string(build.version);
    build.status = status;
    if (status != BuildStatus::kPending) build.started_ms = 2;
    if (IsTerminal(status)) build.finished_ms = 3;
    EXPECT_TRUE(db_->UpdateClusterEnvBuild(build, IsTerminal(status) ? "done\n" : "").ok());
  };
  insert("x", BuildStatus::kPending);
  insert("x", BuildStatus::kInProgress);
  insert("y", BuildStatus::kSucceeded);
  WriteFile(home() / "cluster_envs" / "logs" / "x-2.log", "STEP 1/3: FROM base\npartial\n");
  WriteFile(home() / "cluster_envs" / "work" / "x-2" / "Containerfile", "FROM base\n");
  WriteFile(home() / "images" / "x-2.oci.tar.tmp", "half");

  auto service = Open();
  ASSERT_NE(service, nullptr);
  for (int version : {1, 2}) {
    auto build = service->GetBuild("x", version);
    ASSERT_TRUE(build);
    EXPECT_EQ(build->status, BuildStatus::kFailed);
    EXPECT_EQ(build->error_message, kHeadStopped);
    EXPECT_TRUE(build->finished_ms);
  }
  EXPECT_EQ(db_->ClusterEnvBuildLog("x", 2).value(), "STEP 1/3: FROM base\npartial\n");
  EXPECT_EQ(db_->ClusterEnvBuildLog("x", 1).value(), "");
  EXPECT_FALSE(fs::exists(home() / "cluster_envs" / "work" / "x-2"));
  EXPECT_FALSE(fs::exists(home() / "images" / "x-2.oci.tar.tmp"));
  auto done = service->GetBuild("y", 1);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, BuildStatus::kSucceeded);
  EXPECT_EQ(done->finished_ms, 3);
  EXPECT_TRUE(fake_->started.empty());

  auto next = service->StartBuild("x", MakeSpec());
  ASSERT_TRUE(next);
  EXPECT_EQ(next->version, 3);
  EXPECT_EQ(WaitFinished(*service, "x", 3).status, BuildStatus::kSucceeded);
}

TEST_F(ClusterEnvServiceTest, ShutdownCancelsRunningAndQueuedBuilds) {
  fake_->block = true;
  fake_->lines_before = {"STEP 1/2: FROM base"};
  auto service = Open();
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(service->StartBuild("a", MakeSpec()));
  ASSERT_TRUE(service->StartBuild("a", MakeSpec()));
  ASSERT_TRUE(WaitFor([&] { return fake_->Started("localhost/strata/a:1"); }));
  service->Shutdown();

  EXPECT_TRUE(fake_->saw_cancel.contains("localhost/strata/a:1"));
  EXPECT_EQ(fake_->started, (std::vector<std::string>{"localhost/strata/a:1"}));
  for (int version : {1, 2}) {
    auto build = service->GetBuild("a", version);
    ASSERT_TRUE(build);
    EXPECT_EQ(build->status, BuildStatus::kFailed);
    EXPECT_EQ(build->error_message, kHeadStopped);
  }
  EXPECT_EQ(db_->ClusterEnvBuildLog("a", 1).value(), "STEP 1/2: FROM base\n");
  EXPECT_EQ(service->Counters().builds_failed, 2u);

  auto late = service->StartBuild("a", MakeSpec());
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().kind, ErrorKind::kUnavailable);
  service->Shutdown();  // a second call is harmless
}

TEST_F(ClusterEnvServiceTest, ReadBuildLogFollowsTheLiveFileThenTheStoredLog) {
  fake_->block = true;
  fake_->lines_before = {"one"};
  fake_->lines_after = {"two"};
  auto service = Open();
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(service->StartBuild("ml", MakeSpec()));
  ASSERT_TRUE(WaitFor([&] { return fake_->Started("localhost/strata/ml:1"); }));

  auto first = service->ReadBuildLog("ml", 1, 0, 5s);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->data, "one\n");
  EXPECT_EQ(first->next_offset, 4u);
  EXPECT_FALSE(first->finished);

  auto nothing = service->ReadBuildLog("ml", 1, 4, 100ms);
  ASSERT_TRUE(nothing);
  EXPECT_EQ(nothing->data, "");
  EXPECT_EQ(nothing->next_offset, 4u);
  EXPECT_FALSE(nothing->finished);

  // A reader waiting for output gets it when the build writes it.
  util::Result<BuildLogChunk> waited = util::Error{};
  std::thread reader([&] { waited = service->ReadBuildLog("ml", 1, 4, 10s); });
  std::this_thread::sleep_for(100ms);
  fake_->Release("localhost/strata/ml:1");
  reader.join();
  ASSERT_TRUE(waited) << waited.error().ToString();
  EXPECT_EQ(waited->data, "two\n");
  EXPECT_EQ(waited->next_offset, 8u);

  EXPECT_EQ(WaitFinished(*service, "ml", 1).status, BuildStatus::kSucceeded);
  auto end = service->ReadBuildLog("ml", 1, 8, 5s);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->data, "");
  EXPECT_EQ(end->next_offset, 8u);
  EXPECT_TRUE(end->finished);

  // Once finished the stored log answers, even without the file.
  fs::remove(home() / "cluster_envs" / "logs" / "ml-1.log");
  auto all = service->ReadBuildLog("ml", 1, 0, 0ms);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->data, "one\ntwo\n");
  EXPECT_EQ(all->next_offset, 8u);
  EXPECT_TRUE(all->finished);
  auto tail = service->ReadBuildLog("ml", 1, 4, 0ms);
  ASSERT_TRUE(tail);
  EXPECT_EQ(tail->data, "two\n");
  EXPECT_TRUE(tail->finished);

  auto missing = service->ReadBuildLog("ml", 2, 0, 0ms);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(missing.error().message,
            "cluster environment 'ml' has no build 2; its builds: 1 (SUCCEEDED)");
}

TEST_F(ClusterEnvServiceTest, MissingBuildsAndUnrunnableVersionsAreNamed) {
  fake_->fail_with["localhost/strata/ml:2"] = "boom";
  auto service = Open();
  ASSERT_NE(service, nullptr);
  for (int version : {1, 2, 3}) {
    ASSERT_TRUE(service->StartBuild("ml", MakeSpec()));
    WaitFinished(*service, "ml", version);
  }

  auto missing = service->GetBuild("ml", 5);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(missing.error().message,
            "cluster environment 'ml' has no build 5; its builds: 1 (SUCCEEDED), 2 (FAILED), 3 "
            "(SUCCEEDED)");
  auto unknown = service->GetBuild("zz", 1);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(unknown.error().message, "cluster environment 'zz' does not exist");
  auto no_builds = service->ListBuilds("zz");
  ASSERT_FALSE(no_builds);
  EXPECT_EQ(no_builds.error().kind, ErrorKind::kNotFound);
  auto no_env = service->GetEnv("zz");
  ASSERT_FALSE(no_env);
  EXPECT_EQ(no_env.error().kind, ErrorKind::kNotFound);

  auto runnable = service->ResolveRunnable({"ml", 3});
  ASSERT_TRUE(runnable) << runnable.error().ToString();
  EXPECT_EQ(runnable->image_ref, "localhost/strata/ml:3");
  auto failed = service->ResolveRunnable({"ml", 2});
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().kind, ErrorKind::kValueError);
  EXPECT_EQ(failed.error().message,
            "cluster environment build ml:2 is FAILED, not SUCCEEDED; available versions: 1, 3");
  auto absent = service->ResolveRunnable({"ml", 4});
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(absent.error().message,
            "cluster environment 'ml' has no build 4; available versions: 1, 3");
  auto nameless = service->ResolveRunnable({"zz", 1});
  ASSERT_FALSE(nameless);
  EXPECT_EQ(nameless.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(nameless.error().message, "cluster environment 'zz' does not exist");
}

TEST_F(ClusterEnvServiceTest, ArchiveHidesTheEnvUntilItsNextBuild) {
  auto service = Open();
  ASSERT_NE(service, nullptr);
  ASSERT_TRUE(service->StartBuild("ml", MakeSpec()));
  WaitFinished(*service, "ml", 1);
  ASSERT_TRUE(service->Archive("ml").ok());
  EXPECT_TRUE(service->ListEnvs(false).empty());
  auto all = service->ListEnvs(true);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].archived_ms);
  // Archived builds stay readable and runnable (jobs that name them keep working).
  EXPECT_TRUE(service->GetBuild("ml", 1));
  EXPECT_TRUE(service->ResolveRunnable({"ml", 1}));

  auto again = service->StartBuild("ml", MakeSpec());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->version, 2);
  ASSERT_EQ(service->ListEnvs(false).size(), 1u);
  EXPECT_FALSE(service->GetEnv("ml")->archived_ms);

  util::Status missing = service->Archive("zz");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST(ClusterEnvServiceOptionsTest, FromEnvironmentReadsTheVariables) {
  {
    util::testing::ScopedEnv env{{"STRATA_IMAGE_REGISTRY", "127.0.0.1:5000"},
                                 {"STRATA_IMAGE_REGISTRY_TLS_VERIFY", "false"},
                                 {"STRATA_CLUSTER_ENV_BUILD_TIMEOUT_S", "90"},
                                 {"PIP_INDEX_URL", "http://127.0.0.1:9/simple"}};
    auto options = ClusterEnvServiceOptions::FromEnvironment("/srv/strata");
    ASSERT_TRUE(options) << options.error().ToString();
    EXPECT_EQ(options->home, fs::path("/srv/strata"));
    EXPECT_EQ(options->registry, "127.0.0.1:5000");
    EXPECT_FALSE(options->registry_tls_verify);
    EXPECT_EQ(options->build_timeout, 90s);
    auto& vars = options->environment;
    EXPECT_NE(std::find(vars.begin(), vars.end(),
                        std::pair<std::string, std::string>("PIP_INDEX_URL",
                                                            "http://127.0.0.1:9/simple")),
              vars.end());
  }
  {
    util::testing::ScopedEnv env{{"STRATA_IMAGE_REGISTRY", std::nullopt},
                                 {"STRATA_IMAGE_REGISTRY_TLS_VERIFY", std::nullopt},
                                 {"STRATA_CLUSTER_ENV_BUILD_TIMEOUT_S", std::nullopt}};
    auto options = ClusterEnvServiceOptions::FromEnvironment("/srv/strata");
    ASSERT_TRUE(options);
    EXPECT_EQ(options->registry, "");
    EXPECT_TRUE(options->registry_tls_verify);
    EXPECT_EQ(options->build_timeout, 3600s);
  }
  for (const auto& [value, verify] : std::vector<std::pair<const char*, bool>>{
           {"0", false}, {"FALSE", false}, {"1", true}, {"true", true}, {"", true}}) {
    util::testing::ScopedEnv env("STRATA_IMAGE_REGISTRY_TLS_VERIFY", value);
    auto options = ClusterEnvServiceOptions::FromEnvironment("/h");
    ASSERT_TRUE(options);
    EXPECT_EQ(options->registry_tls_verify, verify) << value;
  }
  {
    util::testing::ScopedEnv env("STRATA_CLUSTER_ENV_BUILD_TIMEOUT_S", "");
    auto options = ClusterEnvServiceOptions::FromEnvironment("/h");
    ASSERT_TRUE(options);
    EXPECT_EQ(options->build_timeout, 3600s);
  }
  for (const char* bad : {"0", "-5", "abc", "10s", "1.5", " 7"}) {
    util::testing::ScopedEnv env("STRATA_CLUSTER_ENV_BUILD_TIMEOUT_S", bad);
    auto options = ClusterEnvServiceOptions::FromEnvironment("/h");
    ASSERT_FALSE(options) << bad;
    EXPECT_EQ(options.error().kind, ErrorKind::kValueError);
    EXPECT_EQ(options.error().message,
              std::string("STRATA_CLUSTER_ENV_BUILD_TIMEOUT_S must be a positive integer "
                          "(seconds), got '") +
                  bad + "'");
  }
}

}  // namespace
}  // namespace strata::head
