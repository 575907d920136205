#include "head/head_db.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "util/temp_dir_testing.h"

namespace strata::head {
namespace {

namespace fs = std::filesystem;
using util::ErrorKind;
using util::testing::TempDir;

JobRecord MakeJob(const std::string& id) {
  JobRecord job;
  job.submission_id = id;
  job.entrypoint = "python run.py --id " + id;
  job.message = "Job is currently pending.";
  job.start_time_ms = 1'700'000'000'000;
  job.metadata = {{"owner", "alice"}, {"team", "ml"}};
  job.runtime_env = {{"working_dir", "gcs://_strata_pkg_abc.zip"}, {"env_vars", {{"A", "1"}}}};
  job.entrypoint_num_cpus = 1.5;
  job.entrypoint_memory = 1 << 20;
  job.entrypoint_resources = {{"custom", 2}};
  return job;
}

std::unique_ptr<HeadDb> OpenOrDie(const fs::path& file) {
  auto db = HeadDb::Open(file);
  EXPECT_TRUE(db) << db.error().ToString();
  return db ? std::move(*db) : nullptr;
}

ClusterEnvBuildRecord MakeBuild(const std::string& name) {
  ClusterEnvBuildRecord build;
  build.name = name;
  // Key order matters: env_vars keep their file order.
  build.spec = util::Json::object({{"base_image", "localhost/debian-py:bookworm"},
                                   {"env_vars", util::Json::object({{"Z", "1"}, {"A", "2"}})},
                                   {"debian_packages", util::Json::array({"hello"})}});
  build.image_ref = "localhost/strata/" + name + ":?";
  build.created_ms = 1'700'000'000'000;
  return build;
}

std::vector<int> Versions(const std::vector<ClusterEnvBuildRecord>& builds) {
  std::vector<int> versions;
  for (const auto& build : builds) versions.push_back(build.version);
  return versions;
}

std::vector<std::string> EnvNames(const std::vector<ClusterEnvRecord>& envs) {
  std::vector<std::string> names;
  for (const auto& env : envs) names.push_back(env.name);
  return names;
}

std::vector<std::string> Ids(const std::vector<JobRecord>& jobs) {
  std::vector<std::string> ids;
  for (const JobRecord& job : jobs) ids.push_back(job.submission_id);
  return ids;
}

class HeadDbTest : public ::testing::Test {
 protected:
  fs::path file() const { return tmp_.path() / "head" / "head.db"; }
  TempDir tmp_;
};

TEST(JobStatusTest, NamesRoundTripAndTerminal) {
  for (JobStatus status : {JobStatus::kPending, JobStatus::kRunning, JobStatus::kStopped,
                           JobStatus::kSucceeded, JobStatus::kFailed}) {
    EXPECT_EQ(ParseJobStatus(JobStatusName(status)), status);
  }
  EXPECT_EQ(JobStatusName(JobStatus::kSucceeded), "SUCCEEDED");
  EXPECT_FALSE(ParseJobStatus("pending"));
  EXPECT_FALSE(IsTerminal(JobStatus::kPending));
  EXPECT_FALSE(IsTerminal(JobStatus::kRunning));
  EXPECT_TRUE(IsTerminal(JobStatus::kStopped));
  EXPECT_TRUE(IsTerminal(JobStatus::kSucceeded));
  EXPECT_TRUE(IsTerminal(JobStatus::kFailed));
}

TEST(JobRecordTest, DetailsJsonHasRayFieldsInOrder) {
  JobRecord job = MakeJob("strata_1");
  util::Json details = job.ToDetailsJson();
  std::vector<std::string> keys;
  for (const auto& [key, value] : details.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "type", "job_id", "submission_id", "driver_info", "status", "entrypoint",
                      "message", "error_type", "start_time", "end_time", "metadata", "runtime_env",
                      "driver_agent_http_address", "driver_node_id", "driver_exit_code"}));
  EXPECT_EQ(details["type"], "SUBMISSION");
  EXPECT_TRUE(details["job_id"].is_null());
  EXPECT_EQ(details["submission_id"], "strata_1");
  EXPECT_EQ(details["status"], "PENDING");
  EXPECT_TRUE(details["error_type"].is_null());
  EXPECT_EQ(details["start_time"], 1'700'000'000'000);
  EXPECT_TRUE(details["end_time"].is_null());
  EXPECT_EQ(details["metadata"], job.metadata);
  EXPECT_EQ(details["runtime_env"], job.runtime_env);
  EXPECT_TRUE(details["driver_exit_code"].is_null());
  EXPECT_FALSE(details.contains("entrypoint_num_cpus"));

  job.status = JobStatus::kFailed;
  job.error_type = std::string(kEntrypointCommandError);
  job.end_time_ms = 1'700'000'000'500;
  job.driver_exit_code = 3;
  job.driver_node_id = "node1";
  details = job.ToDetailsJson();
  EXPECT_EQ(details["status"], "FAILED");
  EXPECT_EQ(details["error_type"], "JOB_ENTRYPOINT_COMMAND_ERROR");
  EXPECT_EQ(details["end_time"], 1'700'000'000'500);
  EXPECT_EQ(details["driver_exit_code"], 3);
  EXPECT_EQ(details["driver_node_id"], "node1");
}

TEST_F(HeadDbTest, OpenCreatesParentDirectories) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(fs::exists(file()));
}

TEST_F(HeadDbTest, InsertThenGetReturnsEveryField) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  JobRecord job = MakeJob("strata_a");
  job.driver_pid = 4242;
  job.driver_node_id = "node-1";
  job.end_time_ms = 1'700'000'001'000;
  job.driver_exit_code = 0;
  job.error_type = "X";
  job.entrypoint_num_gpus = 0.25;
  ASSERT_TRUE(db->InsertJob(job).ok());

  auto got = db->GetJob("strata_a");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->submission_id, "strata_a");
  EXPECT_EQ(got->entrypoint, job.entrypoint);
  EXPECT_EQ(got->status, JobStatus::kPending);
  EXPECT_EQ(got->message, job.message);
  EXPECT_EQ(got->error_type, "X");
  EXPECT_EQ(got->start_time_ms, job.start_time_ms);
  EXPECT_EQ(got->end_time_ms, job.end_time_ms);
  EXPECT_TRUE(util::PyEqual(got->metadata, job.metadata));
  EXPECT_TRUE(util::PyEqual(got->runtime_env, job.runtime_env));
  EXPECT_EQ(got->entrypoint_num_cpus, 1.5);
  EXPECT_EQ(got->entrypoint_num_gpus, 0.25);
  EXPECT_EQ(got->entrypoint_memory, 1 << 20);
  EXPECT_TRUE(util::PyEqual(got->entrypoint_resources, job.entrypoint_resources));
  EXPECT_EQ(got->driver_exit_code, 0);
  EXPECT_EQ(got->driver_pid, 4242);
  EXPECT_EQ(got->driver_node_id, "node-1");
}

TEST_F(HeadDbTest, NullJsonAndAbsentOptionalsRoundTrip) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  JobRecord job;
  job.submission_id = "bare";
  job.entrypoint = "true";
  ASSERT_TRUE(db->InsertJob(job).ok());
  auto got = db->GetJob("bare");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->runtime_env.is_null());
  EXPECT_TRUE(got->entrypoint_resources.is_null());
  EXPECT_EQ(got->metadata, util::Json::object());
  EXPECT_FALSE(got->end_time_ms);
  EXPECT_FALSE(got->driver_exit_code);
  EXPECT_FALSE(got->driver_pid);
}

TEST_F(HeadDbTest, ValuesAreBoundNotSpliced) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  JobRecord job = MakeJob("x'); DROP TABLE jobs; --");
  job.message = "it's \"quoted\" \xe2\x9c\x93";
  ASSERT_TRUE(db->InsertJob(job).ok());
  auto got = db->GetJob(job.submission_id);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->message, job.message);
  EXPECT_EQ(db->ListJobs().size(), 1u);
}

TEST_F(HeadDbTest, DuplicateInsertIsValueErrorWithRayMessage) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->InsertJob(MakeJob("dup")).ok());
  JobRecord other = MakeJob("dup");
  other.entrypoint = "something else";
  util::Status status = db->InsertJob(other);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::kValueError);
  EXPECT_EQ(status.error().message,
            "Job with submission_id dup already exists. Please use a different submission_id.");
  // The first job and its single event are untouched.
  EXPECT_EQ(db->GetJob("dup")->entrypoint, MakeJob("dup").entrypoint);
  EXPECT_EQ(db->JobHistory("dup").size(), 1u);
}

TEST_F(HeadDbTest, NotFoundMessages) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  auto got = db->GetJob("nope");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(got.error().message, "Job nope does not exist");

  util::Status updated = db->UpdateJob(MakeJob("nope"));
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(updated.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(updated.error().message, "Job nope does not exist");
  EXPECT_TRUE(db->ListJobs().empty());

  util::Status deleted = db->DeleteJob("nope");
  ASSERT_FALSE(deleted.ok());
  EXPECT_EQ(deleted.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(deleted.error().message, "Job nope does not exist");
  EXPECT_TRUE(db->JobHistory("nope").empty());
}

TEST_F(HeadDbTest, ListIsInSubmissionOrder) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  // Ids that sort differently from their insertion order.
  for (const char* id : {"m", "z", "a", "q"}) ASSERT_TRUE(db->InsertJob(MakeJob(id)).ok());
  EXPECT_EQ(Ids(db->ListJobs()), (std::vector<std::string>{"m", "z", "a", "q"}));
  // Updating does not move a job; deleting the newest and inserting again
  // still appends.
  JobRecord m = MakeJob("m");
  m.status = JobStatus::kRunning;
  ASSERT_TRUE(db->UpdateJob(m).ok());
  ASSERT_TRUE(db->DeleteJob("q").ok());
  ASSERT_TRUE(db->InsertJob(MakeJob("b")).ok());
  EXPECT_EQ(Ids(db->ListJobs()), (std::vector<std::string>{"m", "z", "a", "b"}));
}

TEST_F(HeadDbTest, UpdateReplacesRowAndRecordsHistory) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  JobRecord job = MakeJob("j");
  ASSERT_TRUE(db->InsertJob(job).ok());

  job.status = JobStatus::kRunning;
  job.message = "Job is currently running.";
  job.driver_pid = 77;
  ASSERT_TRUE(db->UpdateJob(job).ok());
  // Same status and message: the row changes, the history does not.
  job.driver_node_id = "node-9";
  ASSERT_TRUE(db->UpdateJob(job).ok());
  job.status = JobStatus::kFailed;
  job.message = "Job entrypoint command failed with exit code 2";
  job.error_type = std::string(kEntrypointCommandError);
  job.driver_exit_code = 2;
  job.end_time_ms = job.start_time_ms + 5000;
  job.metadata = {{"k", "v"}};
  ASSERT_TRUE(db->UpdateJob(job).ok());

  auto got = db->GetJob("j");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, JobStatus::kFailed);
  EXPECT_EQ(got->error_type, "JOB_ENTRYPOINT_COMMAND_ERROR");
  EXPECT_EQ(got->driver_exit_code, 2);
  EXPECT_EQ(got->driver_pid, 77);
  EXPECT_EQ(got->driver_node_id, "node-9");
  EXPECT_EQ(got->end_time_ms, job.start_time_ms + 5000);
  EXPECT_EQ(got->metadata, (util::Json{{"k", "v"}}));

  std::vector<JobEvent> history = db->JobHistory("j");
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].status, JobStatus::kPending);
  EXPECT_EQ(history[0].time_ms, job.start_time_ms);
  EXPECT_EQ(history[0].message, "Job is currently pending.");
  EXPECT_EQ(history[1].status, JobStatus::kRunning);
  EXPECT_EQ(history[2].status, JobStatus::kFailed);
  EXPECT_EQ(history[2].message, "Job entrypoint command failed with exit code 2");
  EXPECT_LE(history[1].time_ms, history[2].time_ms);
}

TEST_F(HeadDbTest, DeleteRemovesJobAndEvents) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->InsertJob(MakeJob("gone")).ok());
  ASSERT_TRUE(db->InsertJob(MakeJob("kept")).ok());
  ASSERT_TRUE(db->DeleteJob("gone").ok());
  EXPECT_EQ(db->GetJob("gone").error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(db->JobHistory("gone").empty());
  EXPECT_EQ(Ids(db->ListJobs()), (std::vector<std::string>{"kept"}));
  // The id may be used again, with a fresh history.
  ASSERT_TRUE(db->InsertJob(MakeJob("gone")).ok());
  EXPECT_EQ(db->JobHistory("gone").size(), 1u);
}

TEST_F(HeadDbTest, StatePersistsAcrossReopen) {
  {
    auto db = OpenOrDie(file());
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->InsertJob(MakeJob("first")).ok());
    JobRecord second = MakeJob("second");
    ASSERT_TRUE(db->InsertJob(second).ok());
    second.status = JobStatus::kSucceeded;
    second.end_time_ms = second.start_time_ms + 1;
    ASSERT_TRUE(db->UpdateJob(second).ok());
    ASSERT_TRUE(db->Pin("gcs://p.zip", "job:second", kNever).ok());
  }
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(Ids(db->ListJobs()), (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(db->GetJob("second")->status, JobStatus::kSucceeded);
  EXPECT_EQ(db->JobHistory("second").size(), 2u);
  EXPECT_EQ(db->PinnedUris(0), (std::set<std::string>{"gcs://p.zip"}));
  // Submission order continues after the stored jobs.
  ASSERT_TRUE(db->InsertJob(MakeJob("third")).ok());
  EXPECT_EQ(Ids(db->ListJobs()), (std::vector<std::string>{"first", "second", "third"}));
}

TEST_F(HeadDbTest, PinsExpireExtendAndUnpin) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Pin("gcs://a.zip", "pin", 1000).ok());
  ASSERT_TRUE(db->Pin("gcs://b.zip", "pin", 2000).ok());
  ASSERT_TRUE(db->Pin("gcs://c.zip", "job:1", kNever).ok());
  ASSERT_TRUE(db->Pin("gcs://b.zip", "job:1", kNever).ok());

  EXPECT_EQ(db->PinnedUris(999),
            (std::set<std::string>{"gcs://a.zip", "gcs://b.zip", "gcs://c.zip"}));
  // A pin expiring exactly now no longer holds.
  EXPECT_EQ(db->PinnedUris(1000), (std::set<std::string>{"gcs://b.zip", "gcs://c.zip"}));

  // Extending moves the expiry forward; an earlier expiry does not shorten it.
  ASSERT_TRUE(db->Pin("gcs://a.zip", "pin", 5000).ok());
  ASSERT_TRUE(db->Pin("gcs://a.zip", "pin", 1500).ok());
  EXPECT_TRUE(db->PinnedUris(4999).count("gcs://a.zip"));
  EXPECT_FALSE(db->PinnedUris(5000).count("gcs://a.zip"));

  // Unpinning a holder leaves other holders' pins of the same URI.
  ASSERT_TRUE(db->Unpin("job:1").ok());
  EXPECT_EQ(db->PinnedUris(1999), (std::set<std::string>{"gcs://a.zip", "gcs://b.zip"}));
  EXPECT_EQ(db->PinnedUris(2000), (std::set<std::string>{"gcs://a.zip"}));
  ASSERT_TRUE(db->Unpin("nobody").ok());
}

TEST_F(HeadDbTest, DropExpiredPinsCountsAndKeepsLiveOnes) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Pin("gcs://a.zip", "pin", 1000).ok());
  ASSERT_TRUE(db->Pin("gcs://b.zip", "pin", 2000).ok());
  ASSERT_TRUE(db->Pin("gcs://b.zip", "job:7", kNever).ok());
  ASSERT_TRUE(db->Pin("gcs://c.zip", "pin", 3000).ok());

  auto dropped = db->DropExpiredPins(2000);
  ASSERT_TRUE(dropped);
  EXPECT_EQ(*dropped, 2u);
  EXPECT_EQ(db->PinnedUris(0), (std::set<std::string>{"gcs://b.zip", "gcs://c.zip"}));
  EXPECT_EQ(*db->DropExpiredPins(2000), 0u);
  EXPECT_EQ(*db->DropExpiredPins(kNever - 1), 1u);
  EXPECT_EQ(db->PinnedUris(0), (std::set<std::string>{"gcs://b.zip"}));
}

TEST_F(HeadDbTest, ConcurrentInsertsFromManyThreads) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!db->InsertJob(MakeJob(id)).ok()) ++failures;
        // Everyone also races on the same id: exactly one may win.
        util::Status shared = db->InsertJob(MakeJob("shared-" + std::to_string(i)));
        if (!shared.ok() && shared.error().kind != ErrorKind::kValueError) ++failures;
        if (!db->Pin("gcs://p" + std::to_string(i) + ".zip", "job:" + id, kNever).ok()) {
          ++failures;
        }
        (void)db->ListJobs();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<JobRecord> jobs = db->ListJobs();
  EXPECT_EQ(jobs.size(), static_cast<size_t>(kThreads * kPerThread + kPerThread));
  // Each thread's own jobs come out in the order that thread inserted them.
  for (int t = 0; t < kThreads; ++t) {
    int next = 0;
    std::string prefix = "t" + std::to_string(t) + "-";
    for (const JobRecord& job : jobs) {
      if (job.submission_id.rfind(prefix, 0) != 0) continue;
      EXPECT_EQ(job.submission_id, prefix + std::to_string(next));
      ++next;
    }
    EXPECT_EQ(next, kPerThread);
  }
  EXPECT_EQ(db->PinnedUris(0).size(), static_cast<size_t>(kPerThread));
}

TEST_F(HeadDbTest, FileThatIsNotADatabaseIsAnIOError) {
  util::testing::WriteFile(file(), std::string(8192, 'x'));
  auto db = HeadDb::Open(file());
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().kind, ErrorKind::kIOError);
  EXPECT_NE(db.error().message.find(file().string()), std::string::npos) << db.error().message;
  EXPECT_NE(db.error().message.find("not a database"), std::string::npos) << db.error().message;
}

TEST_F(HeadDbTest, DamagedPagesGiveErrorsNotCrashes) {
  {
    auto db = OpenOrDie(file());
    ASSERT_NE(db, nullptr);
    for (int i = 0; i < 200; ++i) {
      JobRecord job = MakeJob("job-" + std::to_string(i));
      job.message = std::string(200, 'm');
      ASSERT_TRUE(db->InsertJob(job).ok());
    }
  }
  // Closing checkpointed the WAL into the file; scribble over everything
  // after the header page.
  ASSERT_FALSE(fs::exists(file().string() + "-wal") && fs::file_size(file().string() + "-wal") > 0);
  auto size = fs::file_size(file());
  ASSERT_GT(size, 8192u);
  {
    std::fstream out(file(), std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(4096);
    std::string junk(size - 4096, '\xa5');
    out.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto db = HeadDb::Open(file());
  if (!db) {
    EXPECT_EQ(db.error().kind, ErrorKind::kIOError);
    EXPECT_NE(db.error().message.find(file().string()), std::string::npos);
    return;
  }
  // Whatever still opens must report failures as values.
  auto got = (*db)->GetJob("job-5");
  EXPECT_FALSE(got);
  (void)(*db)->ListJobs();
  (void)(*db)->JobHistory("job-5");
  util::Status inserted = (*db)->InsertJob(MakeJob("new"));
  (void)inserted;
  (void)(*db)->PinnedUris(0);
}

TEST_F(HeadDbTest, UnwritableLocationIsAnIOError) {
  // The parent "directory" is a regular file.
  util::testing::WriteFile(tmp_.path() / "blocker", "x");
  auto db = HeadDb::Open(tmp_.path() / "blocker" / "head.db");
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().kind, ErrorKind::kIOError);
  EXPECT_NE(db.error().message.find("blocker"), std::string::npos) << db.error().message;

  if (::geteuid() != 0) {
    fs::create_directories(tmp_.path() / "ro");
    ::chmod((tmp_.path() / "ro").c_str(), 0555);
    auto ro = HeadDb::Open(tmp_.path() / "ro" / "head.db");
    ::chmod((tmp_.path() / "ro").c_str(), 0755);
    ASSERT_FALSE(ro);
    EXPECT_EQ(ro.error().kind, ErrorKind::kIOError);
    EXPECT_NE(ro.error().message.find((tmp_.path() / "ro" / "head.db").string()), std::string::npos)
        << ro.error().message;
  }
}

TEST(BuildStatusTest, NamesRoundTripAndTerminal) {
  for (BuildStatus status : {BuildStatus::kPending, BuildStatus::kInProgress,
                             BuildStatus::kSucceeded, BuildStatus::kFailed}) {
    EXPECT_EQ(ParseBuildStatus(BuildStatusName(status)), status);
  }
  EXPECT_EQ(BuildStatusName(BuildStatus::kInProgress), "IN_PROGRESS");
  EXPECT_FALSE(ParseBuildStatus("RUNNING"));
  EXPECT_FALSE(IsTerminal(BuildStatus::kPending));
  EXPECT_FALSE(IsTerminal(BuildStatus::kInProgress));
  EXPECT_TRUE(IsTerminal(BuildStatus::kSucceeded));
  EXPECT_TRUE(IsTerminal(BuildStatus::kFailed));
}

TEST(ClusterEnvBuildRecordTest, JsonHasEveryFieldInOrder) {
  ClusterEnvBuildRecord build = MakeBuild("ml");
  build.version = 3;
  util::Json json = build.ToJson();
  std::vector<std::string> keys;
  for (const auto& [key, value] : json.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"name", "version", "ref", "spec", "status", "image_ref",
                                            "image_id", "digest", "registry_ref", "oci_archive",
                                            "oci_archive_ready", "created_ms", "started_ms",
                                            "finished_ms", "error_message"}));
  EXPECT_EQ(json["ref"], "ml:3");
  EXPECT_EQ(json["version"], 3);
  EXPECT_EQ(json["spec"], build.spec);
  EXPECT_EQ(json["status"], "PENDING");
  EXPECT_EQ(json["image_id"], "");
  EXPECT_EQ(json["created_ms"], 1'700'000'000'000);
  EXPECT_TRUE(json["started_ms"].is_null());
  EXPECT_TRUE(json["finished_ms"].is_null());

  build.status = BuildStatus::kSucceeded;
  build.started_ms = 10;
  build.finished_ms = 20;
  json = build.ToJson();
  EXPECT_EQ(json["status"], "SUCCEEDED");
  EXPECT_EQ(json["started_ms"], 10);
  EXPECT_EQ(json["finished_ms"], 20);
}

TEST(ClusterEnvRecordTest, JsonHasEveryFieldInOrder) {
  ClusterEnvRecord env;
  env.name = "ml";
  env.created_ms = 5;
  env.latest_version = 2;
  env.build_count = 2;
  util::Json json = env.ToJson();
  std::vector<std::string> keys;
  for (const auto& [key, value] : json.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"name", "created_ms", "archived", "archived_ms",
                                            "latest_version", "build_count",
                                            "latest_succeeded_version"}));
  EXPECT_EQ(json["archived"], false);
  EXPECT_TRUE(json["archived_ms"].is_null());
  EXPECT_TRUE(json["latest_succeeded_version"].is_null());

  env.archived_ms = 7;
  env.latest_succeeded_version = 1;
  json = env.ToJson();
  EXPECT_EQ(json["archived"], true);
  EXPECT_EQ(json["archived_ms"], 7);
  EXPECT_EQ(json["latest_succeeded_version"], 1);
}

TEST_F(HeadDbTest, BuildVersionsCountPerName) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  for (int expected : {1, 2, 3}) {
    auto build = db->InsertClusterEnvBuild(MakeBuild("ml"));
    ASSERT_TRUE(build) << build.error().ToString();
    EXPECT_EQ(build->version, expected);
  }
  auto other = db->InsertClusterEnvBuild(MakeBuild("web"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->version, 1);
  auto more = db->InsertClusterEnvBuild(MakeBuild("ml"));
  ASSERT_TRUE(more);
  EXPECT_EQ(more->version, 4);

  EXPECT_EQ(Versions(db->ListClusterEnvBuilds("ml")), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(Versions(db->ListClusterEnvBuilds("web")), (std::vector<int>{1}));
  EXPECT_TRUE(db->ListClusterEnvBuilds("nope").empty());

  auto got = db->GetClusterEnvBuild("ml", 2);
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(got->name, "ml");
  EXPECT_EQ(got->status, BuildStatus::kPending);
  EXPECT_EQ(got->spec.dump(), MakeBuild("ml").spec.dump());  // key order kept
  EXPECT_EQ(got->image_ref, "localhost/strata/ml:?");
  EXPECT_EQ(got->created_ms, 1'700'000'000'000);
  EXPECT_FALSE(got->started_ms);

  auto missing = db->GetClusterEnvBuild("ml", 9);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(missing.error().message, "cluster env build ml:9 does not exist");

  auto env = db->GetClusterEnv("ml");
  ASSERT_TRUE(env);
  EXPECT_EQ(env->latest_version, 4);
  EXPECT_EQ(env->build_count, 4);
  EXPECT_FALSE(env->latest_succeeded_version);
  EXPECT_EQ(env->created_ms, 1'700'000'000'000);
  auto no_env = db->GetClusterEnv("nope");
  ASSERT_FALSE(no_env);
  EXPECT_EQ(no_env.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(no_env.error().message, "cluster environment 'nope' does not exist");
}

TEST_F(HeadDbTest, ConcurrentBuildInsertsGetDistinctConsecutiveVersions) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5;
  std::vector<std::vector<int>> versions(kThreads);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        auto build = db->InsertClusterEnvBuild(MakeBuild("ml"));
        ASSERT_TRUE(build) << build.error().ToString();
        versions[t].push_back(build->version);
      }
    });
  }
  go = true;
  for (auto& thread : threads) thread.join();
  std::set<int> all;
  for (const auto& list : versions) all.insert(list.begin(), list.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 1);
  EXPECT_EQ(*all.rbegin(), kThreads * kPerThread);
  EXPECT_EQ(db->ListClusterEnvBuilds("ml").size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST_F(HeadDbTest, BuildUpdatesUntilFinishedThenRefuses) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  auto inserted = db->InsertClusterEnvBuild(MakeBuild("ml"));
  ASSERT_TRUE(inserted);
  ClusterEnvBuildRecord build = *inserted;

  build.status = BuildStatus::kInProgress;
  build.started_ms = 100;
  ASSERT_TRUE(db->UpdateClusterEnvBuild(build).ok());
  EXPECT_EQ(db->GetClusterEnvBuild("ml", 1)->status, BuildStatus::kInProgress);
  EXPECT_EQ(db->ClusterEnvBuildLog("ml", 1).value(), "");

  build.status = BuildStatus::kSucceeded;
  build.finished_ms = 200;
  build.image_id = "abc123";
  build.digest = "sha256:def";
  build.registry_ref = "127.0.0.1:5000/strata/ml:1";
  build.oci_archive = "/home/images/ml-1.oci.tar";
  const std::string log = "STEP 1/2: FROM base\nSTEP 2/2: RUN true\n\xce\xbb done\n";
  ASSERT_TRUE(db->UpdateClusterEnvBuild(build, log).ok());

  auto got = db->GetClusterEnvBuild("ml", 1);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, BuildStatus::kSucceeded);
  EXPECT_EQ(got->started_ms, 100);
  EXPECT_EQ(got->finished_ms, 200);
  EXPECT_EQ(got->image_id, "abc123");
  EXPECT_EQ(got->digest, "sha256:def");
  EXPECT_EQ(got->registry_ref, "127.0.0.1:5000/strata/ml:1");
  EXPECT_EQ(got->oci_archive, "/home/images/ml-1.oci.tar");
  EXPECT_EQ(db->ClusterEnvBuildLog("ml", 1).value(), log);
  EXPECT_EQ(db->GetClusterEnv("ml")->latest_succeeded_version, 1);

  ClusterEnvBuildRecord changed = build;
  changed.status = BuildStatus::kFailed;
  changed.error_message = "late";
  util::Status refused = db->UpdateClusterEnvBuild(changed, "other log");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kValueError);
  EXPECT_EQ(refused.error().message, "cluster env build ml:1 is finished and cannot change");
  EXPECT_EQ(db->GetClusterEnvBuild("ml", 1)->status, BuildStatus::kSucceeded);
  EXPECT_EQ(db->ClusterEnvBuildLog("ml", 1).value(), log);

  ClusterEnvBuildRecord absent = build;
  absent.version = 7;
  util::Status missing = db->UpdateClusterEnvBuild(absent);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  auto no_log = db->ClusterEnvBuildLog("ml", 7);
  ASSERT_FALSE(no_log);
  EXPECT_EQ(no_log.error().kind, ErrorKind::kNotFound);
}

TEST_F(HeadDbTest, FailedBuildIsFinishedToo) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  ClusterEnvBuildRecord build = db->InsertClusterEnvBuild(MakeBuild("ml")).value();
  build.status = BuildStatus::kFailed;
  build.error_message = "boom";
  ASSERT_TRUE(db->UpdateClusterEnvBuild(build, "log\n").ok());
  build.status = BuildStatus::kInProgress;
  EXPECT_FALSE(db->UpdateClusterEnvBuild(build).ok());
  EXPECT_EQ(db->GetClusterEnvBuild("ml", 1)->error_message, "boom");
}

TEST_F(HeadDbTest, BuildsByStatus) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  ClusterEnvBuildRecord a1 = db->InsertClusterEnvBuild(MakeBuild("a")).value();
  ClusterEnvBuildRecord a2 = db->InsertClusterEnvBuild(MakeBuild("a")).value();
  ClusterEnvBuildRecord b1 = db->InsertClusterEnvBuild(MakeBuild("b")).value();
  a1.status = BuildStatus::kSucceeded;
  ASSERT_TRUE(db->UpdateClusterEnvBuild(a1).ok());
  b1.status = BuildStatus::kInProgress;
  ASSERT_TRUE(db->UpdateClusterEnvBuild(b1).ok());

  auto open = db->ListClusterEnvBuildsWithStatus({BuildStatus::kPending, BuildStatus::kInProgress});
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].name, "a");
  EXPECT_EQ(open[0].version, 2);
  EXPECT_EQ(open[1].name, "b");
  EXPECT_EQ(open[1].status, BuildStatus::kInProgress);
  EXPECT_EQ(db->ListClusterEnvBuildsWithStatus({BuildStatus::kSucceeded}).size(), 1u);
  EXPECT_TRUE(db->ListClusterEnvBuildsWithStatus({}).empty());
}

TEST_F(HeadDbTest, ArchiveHidesEnvUntilTheNextBuild) {
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->InsertClusterEnvBuild(MakeBuild("b")));
  ASSERT_TRUE(db->InsertClusterEnvBuild(MakeBuild("a")));
  EXPECT_EQ(EnvNames(db->ListClusterEnvs(false)), (std::vector<std::string>{"a", "b"}));

  ASSERT_TRUE(db->ArchiveClusterEnv("a", 500).ok());
  ASSERT_TRUE(db->ArchiveClusterEnv("a", 900).ok());  // keeps the first time
  EXPECT_EQ(EnvNames(db->ListClusterEnvs(false)), (std::vector<std::string>{"b"}));
  auto all = db->ListClusterEnvs(true);
  EXPECT_EQ(EnvNames(all), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(all[0].archived_ms, 500);
  EXPECT_FALSE(all[1].archived_ms);
  EXPECT_EQ(db->GetClusterEnv("a")->archived_ms, 500);
  EXPECT_TRUE(db->GetClusterEnvBuild("a", 1));
  EXPECT_EQ(db->ListClusterEnvBuilds("a").size(), 1u);

  util::Status missing = db->ArchiveClusterEnv("zz", 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);

  auto again = db->InsertClusterEnvBuild(MakeBuild("a"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->version, 2);
  EXPECT_EQ(EnvNames(db->ListClusterEnvs(false)), (std::vector<std::string>{"a", "b"}));
  auto env = db->GetClusterEnv("a");
  ASSERT_TRUE(env);
  EXPECT_FALSE(env->archived_ms);
  EXPECT_EQ(env->created_ms, 1'700'000'000'000);  // the first build's time, not replaced
}

TEST_F(HeadDbTest, ClusterEnvsSurviveReopen) {
  {
    auto db = OpenOrDie(file());
    ASSERT_NE(db, nullptr);
    ClusterEnvBuildRecord build = db->InsertClusterEnvBuild(MakeBuild("ml")).value();
    build.status = BuildStatus::kSucceeded;
    build.image_id = "id1";
    build.started_ms = 1;
    build.finished_ms = 2;
    ASSERT_TRUE(db->UpdateClusterEnvBuild(build, "line\n").ok());
    ASSERT_TRUE(db->InsertClusterEnvBuild(MakeBuild("ml")));
    ASSERT_TRUE(db->InsertClusterEnvBuild(MakeBuild("old")));
    ASSERT_TRUE(db->ArchiveClusterEnv("old", 42).ok());
  }
  auto db = OpenOrDie(file());
  ASSERT_NE(db, nullptr);
  auto first = db->GetClusterEnvBuild("ml", 1);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, BuildStatus::kSucceeded);
  EXPECT_EQ(first->image_id, "id1");
  EXPECT_EQ(first->finished_ms, 2);
  EXPECT_EQ(first->spec.dump(), MakeBuild("ml").spec.dump());
  EXPECT_EQ(db->ClusterEnvBuildLog("ml", 1).value(), "line\n");
  EXPECT_EQ(db->GetClusterEnvBuild("ml", 2)->status, BuildStatus::kPending);
  EXPECT_EQ(db->InsertClusterEnvBuild(MakeBuild("ml"))->version, 3);
  EXPECT_EQ(EnvNames(db->ListClusterEnvs(false)), (std::vector<std::string>{"ml"}));
  auto old = db->GetClusterEnv("old");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->archived_ms, 42);
  auto ml = db->GetClusterEnv("ml");
  ASSERT_TRUE(ml);
  EXPECT_EQ(ml->latest_version, 3);
  EXPECT_EQ(ml->build_count, 3);
  EXPECT_EQ(ml->latest_succeeded_version, 1);
}

}  // namespace
}  // namespace strata::head
