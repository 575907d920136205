#include "head/job_manager.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "agent/process.h"
#include "clusterenv/image_builder.h"
#include "head/cluster_env_service.h"
#include "model/cluster_env_spec.h"
#include "model/runtime_env.h"
#include "packaging/upload.h"
#include "util/temp_dir_testing.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;
using util::ErrorKind;
using util::Json;
using util::testing::TempDir;
using util::testing::WriteFile;

JobSubmitRequest Request(const std::string& entrypoint, Json runtime_env = Json(),
                         std::optional<std::string> id = std::nullopt) {
  JobSubmitRequest request;
  request.entrypoint = entrypoint;
  request.runtime_env = std::move(runtime_env);
  request.submission_id = std::move(id);
  return request;
}

// Builds "succeed" at once with a made-up image, so jobs pinned to them get
// as far as the agent, which cannot find that image.
class InstantImageBuilder : public clusterenv::ImageBuilder {
 public:
  util::Result<clusterenv::ImageBuildResult> Build(const clusterenv::ImageBuildRequest&) override {
    return clusterenv::ImageBuildResult{std::string(64, 'a'), "sha256:" + std::string(64, 'b'), ""};
  }
  util::Status ExportArchive(const std::string&, const std::filesystem::path&,
                             const std::atomic<bool>*,
                             const std::function<void(std::string_view)>&) override {
    return util::IOError("this fake keeps no images to export");
  }
};

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    paths_.home = dir_.path() / "home";
    paths_.session_dir = dir_.path() / "session";
    auto db = HeadDb::Open(paths_.home / "head" / "head.db");
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(db).value();
    auto store = packaging::BlobStore::Open(paths_.store_dir());
    ASSERT_TRUE(store) << store.error().ToString();
    store_.emplace(std::move(store).value());
    packages_ = std::make_unique<PackageService>(*store_, *db_, PackageServiceOptions());
    if (with_cluster_envs_) {
      ClusterEnvServiceOptions service_options;
      service_options.home = paths_.home;
      auto service =
          ClusterEnvService::Open(*db_, std::make_unique<InstantImageBuilder>(), service_options);
      ASSERT_TRUE(service) << service.error().ToString();
      cluster_envs_ = std::move(service).value();
    }
    JobManagerOptions options;
    options.paths = paths_;
    options.head_url = "http://127.0.0.1:1";
    options.node_id = "node";
    options.stop_grace = std::chrono::milliseconds(300);
    options.cluster_envs = cluster_envs_.get();
    auto jobs = JobManager::Open(*db_, *packages_, options);
    ASSERT_TRUE(jobs) << jobs.error().ToString();
    jobs_ = std::move(jobs).value();
  }

  void Close() {
    jobs_.reset();
    if (cluster_envs_) cluster_envs_->Shutdown();
    cluster_envs_.reset();
    packages_.reset();
    store_.reset();
    db_.reset();
  }

  JobRecord WaitTerminal(const std::string& id) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto job = jobs_->Get(id);
      EXPECT_TRUE(job);
      if (job && IsTerminal(job->status)) return *job;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return {};
  }

  void WaitStatus(const std::string& id, JobStatus status) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto job = jobs_->Get(id); job && job->status == status) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "job " << id << " never reached " << JobStatusName(status);
  }

  TempDir dir_;
  agent::NodePaths paths_;
  std::unique_ptr<HeadDb> db_;
  std::optional<packaging::BlobStore> store_;
  std::unique_ptr<PackageService> packages_;
  bool with_cluster_envs_ = false;
  std::unique_ptr<ClusterEnvService> cluster_envs_;
  std::unique_ptr<JobManager> jobs_;
};

TEST(JobSubmitRequestTest, ParsesRayFieldsAndDropsNulls) {
  auto request = JobSubmitRequest::FromJson(Json::parse(
      R"({"entrypoint": "echo hi", "job_id": "a", "runtime_env": {"env_vars": {"A": "1"}},
          "metadata": {"k": "v"}, "entrypoint_num_cpus": 1.5, "entrypoint_num_gpus": null,
          "entrypoint_memory": 1024, "entrypoint_resources": {"custom": 2}})"));
  ASSERT_TRUE(request) << request.error().ToString();
  EXPECT_EQ(request->entrypoint, "echo hi");
  EXPECT_EQ(request->submission_id, "a");
  EXPECT_EQ(request->entrypoint_num_cpus, 1.5);
  EXPECT_FALSE(request->entrypoint_num_gpus);
  EXPECT_EQ(request->entrypoint_memory, 1024);
}

TEST(JobSubmitRequestTest, RejectsWrongTypesAndUnknownKeys) {
  struct Case {
    const char* body;
    const char* message;
  } cases[] = {
      {R"({"entrypoint": 1})", "entrypoint must be a string, got <class 'int'>"},
      {R"({})", "JobSubmitRequest.__init__() missing 1 required positional argument: 'entrypoint'"},
      {R"({"entrypoint": "x", "bogus": 1})",
       "JobSubmitRequest.__init__() got an unexpected keyword argument 'bogus'"},
      {R"({"entrypoint": "x", "runtime_env": []})",
       "runtime_env must be a dict, got <class 'list'>"},
      {R"({"entrypoint": "x", "metadata": {"a": 1}})",
       "metadata values must be strings, got <class 'int'>"},
      {R"({"entrypoint": "x", "entrypoint_num_cpus": "2"})",
       "entrypoint_num_cpus must be a number, got <class 'str'>"},
      {R"({"entrypoint": "x", "entrypoint_memory": 1.5})",
       "entrypoint_memory must be a non-negative int, got <class 'float'>"},
  };
  for (const Case& c : cases) {
    auto request = JobSubmitRequest::FromJson(Json::parse(c.body));
    ASSERT_FALSE(request) << c.body;
    EXPECT_EQ(request.error().kind, ErrorKind::kTypeError) << c.body;
    EXPECT_EQ(request.error().message, c.message);
  }
}

TEST(JobSubmitRequestTest, ClusterEnvIsAStringExtension) {
  auto request =
      JobSubmitRequest::FromJson(Json::parse(R"({"entrypoint": "x", "cluster_env": "ml:1"})"));
  ASSERT_TRUE(request) << request.error().ToString();
  EXPECT_EQ(request->cluster_env, "ml:1");
  auto wrong = JobSubmitRequest::FromJson(Json::parse(R"({"entrypoint": "x", "cluster_env": 1})"));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().kind, ErrorKind::kTypeError);
  EXPECT_EQ(wrong.error().message, "cluster_env must be a string if provided, got <class 'int'>");
}

TEST(JobSubmitRequestTest, GeneratedIdsUseRaysAlphabet) {
  std::string id = NewSubmissionId();
  ASSERT_EQ(id.size(), 7u + 16u);
  EXPECT_TRUE(id.starts_with("strata_"));
  EXPECT_EQ(id.substr(7).find_first_of("IloO0"), std::string::npos);
  EXPECT_NE(NewSubmissionId(), id);
}

TEST_F(JobManagerTest, SuccessfulJobRunsInItsEnvAndLogs) {
  auto id = jobs_->Submit(
      Request("echo \"A=$A\"; echo \"ADDR=$STRATA_ADDRESS\"; echo \"$STRATA_JOB_CONFIG_JSON\"",
              Json::parse(R"({"env_vars": {"A": "from-env"}})"), "ok-1"));
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(*id, "ok-1");
  JobRecord job = WaitTerminal(*id);
  EXPECT_EQ(job.status, JobStatus::kSucceeded);
  EXPECT_EQ(job.message, "Job finished successfully.");
  EXPECT_EQ(job.driver_exit_code, 0);
  ASSERT_TRUE(job.end_time_ms);
  EXPECT_GE(*job.end_time_ms, job.start_time_ms);
  auto logs = jobs_->Logs(*id);
  ASSERT_TRUE(logs);
  EXPECT_NE(logs->find("A=from-env\n"), std::string::npos) << *logs;
  EXPECT_NE(logs->find("ADDR=http://127.0.0.1:1\n"), std::string::npos);
  EXPECT_NE(logs->find(R"("job_submission_id": "ok-1")"), std::string::npos) << *logs;
  EXPECT_TRUE(fs::exists(paths_.logs_dir() / "job-driver-ok-1.log"));
  std::vector<JobEvent> history = db_->JobHistory(*id);
  ASSERT_GE(history.size(), 3u);
  EXPECT_EQ(history.front().status, JobStatus::kPending);
  EXPECT_EQ(history.back().status, JobStatus::kSucceeded);
}

TEST_F(JobManagerTest, NonZeroExitFailsWithTheLogTail) {
  auto id = jobs_->Submit(Request("echo something broke; exit 3"));
  ASSERT_TRUE(id);
  JobRecord job = WaitTerminal(*id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error_type, kEntrypointCommandError);
  EXPECT_EQ(job.driver_exit_code, 3);
  EXPECT_TRUE(job.message.starts_with("Job entrypoint command failed with exit code 3"))
      << job.message;
  EXPECT_NE(job.message.find("something broke"), std::string::npos);
}

TEST_F(JobManagerTest, SetupFailureIsRuntimeEnvSetupFailure) {
  auto id = jobs_->Submit(Request("true", Json::parse(R"({"conda": "myenv"})")));
  ASSERT_TRUE(id) << id.error().ToString();
  JobRecord job = WaitTerminal(*id);
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error_type, kRuntimeEnvSetupFailure);
  EXPECT_NE(job.message.find("conda"), std::string::npos) << job.message;
}

TEST_F(JobManagerTest, InvalidEnvsAndMissingPackagesAreRefusedAtSubmission) {
  auto bad = jobs_->Submit(Request("true", Json::parse(R"({"pip": 1})")));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kTypeError);
  auto local = jobs_->Submit(Request("true", Json::parse(R"({"working_dir": "/tmp"})")));
  ASSERT_FALSE(local);
  EXPECT_NE(local.error().message.find("/tmp"), std::string::npos) << local.error().message;
  auto missing = jobs_->Submit(
      Request("true", Json::parse(R"({"working_dir": "gcs://_strata_pkg_0123456789abcdef.zip"})")));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kValueError);
  EXPECT_NE(missing.error().message.find("does not exist"), std::string::npos);
  EXPECT_TRUE(jobs_->List().empty());
}

TEST_F(JobManagerTest, WorkingDirPackageIsTheCwdAndPinnedWhileRunning) {
  WriteFile(dir_.path() / "wd" / "data.txt", "payload\n");
  packaging::BlobStoreSink sink(*store_);
  auto uri = packaging::UploadLocalPath(dir_.path() / "wd", packaging::TopLevel::kContentsAtRoot,
                                        {}, sink);
  ASSERT_TRUE(uri) << uri.error().ToString();
  auto id = jobs_->Submit(Request("cat data.txt; sleep 30", Json{{"working_dir", *uri}}));
  ASSERT_TRUE(id) << id.error().ToString();
  WaitStatus(*id, JobStatus::kRunning);
  EXPECT_TRUE(db_->PinnedUris(kNever - 1).contains(*uri));
  ASSERT_TRUE(jobs_->Stop(*id).value());
  JobRecord job = WaitTerminal(*id);
  EXPECT_EQ(job.status, JobStatus::kStopped);
  EXPECT_EQ(jobs_->Logs(*id).value(), "payload\n");
  // The job's hold goes with it (the upload's own temporary pin may remain).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (db_->PinnedUris(kNever - 1).contains(*uri) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(db_->PinnedUris(kNever - 1).contains(*uri));
}

TEST_F(JobManagerTest, StopKillsAProcessThatIgnoresSigterm) {
  auto id = jobs_->Submit(Request("trap '' TERM; echo ready; sleep 60"));
  ASSERT_TRUE(id);
  WaitStatus(*id, JobStatus::kRunning);
  auto ready = jobs_->ReadLog(*id, 0, std::chrono::seconds(10));
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->data, "ready\n");
  auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(jobs_->Stop(*id).value());
  JobRecord job = WaitTerminal(*id);
  EXPECT_EQ(job.status, JobStatus::kStopped);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  EXPECT_FALSE(jobs_->Stop(*id).value()) << "stopping a finished job is a no-op";
}

TEST_F(JobManagerTest, DuplicateIdsAndDeleteRules) {
  ASSERT_TRUE(jobs_->Submit(Request("sleep 30", Json(), "dup")));
  auto again = jobs_->Submit(Request("true", Json(), "dup"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::kValueError);
  EXPECT_NE(again.error().message.find("already exists"), std::string::npos);
  EXPECT_EQ(jobs_->Get("dup")->entrypoint, "sleep 30");
  auto early = jobs_->Delete("dup");
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().message.find("non-terminal state"), std::string::npos);
  ASSERT_TRUE(jobs_->Stop("dup").value());
  WaitTerminal("dup");
  EXPECT_TRUE(jobs_->Delete("dup"));
  EXPECT_EQ(jobs_->Get("dup").error().kind, ErrorKind::kNotFound);
  EXPECT_FALSE(jobs_->Submit(Request("true", Json(), "a/b")));
}

TEST_F(JobManagerTest, ReadLogStreamsUntilTheJobFinishes) {
  auto id = jobs_->Submit(Request("echo one; sleep 0.3; echo two"));
  ASSERT_TRUE(id);
  std::string seen;
  std::uint64_t offset = 0;
  for (int i = 0; i < 200; ++i) {
    auto chunk = jobs_->ReadLog(*id, offset, std::chrono::milliseconds(200));
    ASSERT_TRUE(chunk);
    seen += chunk->data;
    offset = chunk->next_offset;
    if (chunk->finished) break;
  }
  EXPECT_EQ(seen, "one\ntwo\n");
  EXPECT_EQ(jobs_->ReadLog("nope", 0, {}).error().kind, ErrorKind::kNotFound);
}

TEST_F(JobManagerTest, JobsLeftRunningByADeadHeadAreFailedOnOpen) {
  // A record as a head that died mid-job leaves it.
  JobRecord orphan;
  orphan.submission_id = "orphan";
  orphan.entrypoint = "sleep 100";
  orphan.status = JobStatus::kRunning;
  orphan.start_time_ms = 1;
  ASSERT_TRUE(db_->InsertJob(orphan));
  ASSERT_TRUE(jobs_->Submit(Request("echo done", Json(), "finished")));
  WaitTerminal("finished");
  Close();
  Open();
  auto job = jobs_->Get("orphan");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->status, JobStatus::kFailed);
  EXPECT_EQ(job->error_type, kSupervisorDied);
  EXPECT_NE(job->message.find("head stopped"), std::string::npos) << job->message;
  EXPECT_EQ(jobs_->Get("finished")->status, JobStatus::kSucceeded);
  EXPECT_EQ(jobs_->Logs("finished").value(), "done\n");
}

TEST_F(JobManagerTest, OpenKillsTheDriverOfAJobOrphanedByADeadHead) {
  // A driver left behind by a head killed with SIGKILL: its own process
  // group, STRATA_JOB_ID in its environment.
  agent::CommandSpec spec{{"sh", "-c", "echo started; exec sleep 60"}};
  spec.env = {{"STRATA_JOB_ID", "left-behind"}};
  std::atomic<int> driver{0};
  std::thread runner([&] {
    agent::RunOptions options;
    options.on_start = [&](int pid) { driver = pid; };
    (void)agent::RunCommand(spec, options);
  });
  while (driver == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  JobRecord orphan;
  orphan.submission_id = "left-behind";
  orphan.entrypoint = "sleep 60";
  orphan.status = JobStatus::kRunning;
  orphan.driver_pid = driver.load();
  ASSERT_TRUE(db_->InsertJob(orphan));
  Close();
  auto started = std::chrono::steady_clock::now();
  Open();
  runner.join();  // RunCommand returns once the driver is gone
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_EQ(jobs_->Get("left-behind")->status, JobStatus::kFailed);
}

TEST_F(JobManagerTest, ShutdownFailsRunningJobs) {
  auto id = jobs_->Submit(Request("sleep 60"));
  ASSERT_TRUE(id);
  WaitStatus(*id, JobStatus::kRunning);
  jobs_->Shutdown();
  auto job = jobs_->Get(*id);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->status, JobStatus::kFailed);
  EXPECT_EQ(job->error_type, kSupervisorDied);
  EXPECT_FALSE(jobs_->Submit(Request("true")));
}

TEST_F(JobManagerTest, ClusterEnvSubmissionsAreResolvedAgainstTheBuilds) {
  auto refused = jobs_->Submit([] {
    auto request = Request("true");
    request.cluster_env = "ml:1";
    return request;
  }());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("does not serve cluster environments"), std::string::npos)
      << refused.error().message;

  Close();
  with_cluster_envs_ = true;
  Open();
  auto build = cluster_envs_->StartBuild("ml", model::ClusterEnvSpec{.base_image = "base"});
  ASSERT_TRUE(build) << build.error().ToString();
  for (int i = 0; i < 500 && cluster_envs_->GetBuild("ml", 1)->status != BuildStatus::kSucceeded;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(cluster_envs_->GetBuild("ml", 1)->status, BuildStatus::kSucceeded);

  auto pinned = [](const char* ref, Json env = Json()) {
    auto request = Request("true", std::move(env));
    request.cluster_env = ref;
    return request;
  };
  auto unknown = jobs_->Submit(pinned("ml:2"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, ErrorKind::kValueError);
  EXPECT_NE(unknown.error().message.find("available versions: 1"), std::string::npos)
      << unknown.error().message;
  auto malformed = jobs_->Submit(pinned("ml"));
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().kind, ErrorKind::kValueError);
  auto with_image = jobs_->Submit(pinned("ml:1", Json::parse(R"({"image_uri": "x"})")));
  ASSERT_FALSE(with_image);
  EXPECT_NE(with_image.error().message.find("cannot be combined with runtime_env 'image_uri'"),
            std::string::npos)
      << with_image.error().message;

  auto id = jobs_->Submit(pinned("ml:1", Json::parse(R"({"env_vars": {"A": "1"}})")));
  ASSERT_TRUE(id) << id.error().ToString();
  JobRecord job = WaitTerminal(*id);
  EXPECT_EQ(job.cluster_env, "ml:1");
  EXPECT_EQ(job.ToDetailsJson()["cluster_env"], "ml:1");
  // The user's env is what the job shows; the private image field is not.
  EXPECT_EQ(job.runtime_env, Json::parse(R"({"env_vars": {"A": "1"}})"));
  EXPECT_EQ(job.status, JobStatus::kFailed);
  EXPECT_EQ(job.error_type, kRuntimeEnvSetupFailure);
  EXPECT_NE(job.message.find("localhost/strata/ml:1"), std::string::npos) << job.message;
}

}  // namespace
}  // namespace strata::head
