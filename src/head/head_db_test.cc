#include "head/head_db.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
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

}  // namespace
}  // namespace strata::head
