// HeadDb: the head's durable state in one SQLite database
// ($STRATA_HOME/head/head.db): jobs, their status history, and the pins
// that keep packages from garbage collection.
//
// Schema (created on Open; WAL journal; every change is one transaction,
// so a crash leaves either the old row or the new one, never half of it):
//
//   jobs(submission_id TEXT PRIMARY KEY, seq INTEGER UNIQUE  -- submission order
//        entrypoint TEXT, status TEXT, message TEXT, error_type TEXT,
//        start_time_ms INTEGER, end_time_ms INTEGER NULL,
//        metadata TEXT, runtime_env TEXT,          -- JSON text
//        entrypoint_num_cpus REAL, entrypoint_num_gpus REAL,
//        entrypoint_memory INTEGER, entrypoint_resources TEXT,  -- JSON text
//        driver_exit_code INTEGER NULL, driver_pid INTEGER NULL,
//        driver_node_id TEXT)
//   job_events(submission_id TEXT, time_ms INTEGER, status TEXT, message TEXT)
//                                     -- one row per status change, in order
//   package_pins(uri TEXT, holder TEXT, expires_ms INTEGER,
//                PRIMARY KEY (uri, holder))
//                                     -- holder "job:<id>" (kNever) or "pin" (temporary)
//
// Thread-safety: all methods may be called concurrently (one connection,
// serialized by an internal mutex). One process should own the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "util/pyjson.h"
#include "util/result.h"

namespace strata::head {

enum class JobStatus { kPending, kRunning, kStopped, kSucceeded, kFailed };

// "PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED" (Ray's values).
std::string_view JobStatusName(JobStatus status);
std::optional<JobStatus> ParseJobStatus(std::string_view name);
// STOPPED, SUCCEEDED and FAILED.
bool IsTerminal(JobStatus status);

// Ray's error_type values that Strata produces.
inline constexpr std::string_view kRuntimeEnvSetupFailure = "RUNTIME_ENV_SETUP_FAILURE";
inline constexpr std::string_view kEntrypointCommandError = "JOB_ENTRYPOINT_COMMAND_ERROR";
inline constexpr std::string_view kEntrypointStartError = "JOB_ENTRYPOINT_COMMAND_START_ERROR";
inline constexpr std::string_view kSupervisorDied = "JOB_SUPERVISOR_ACTOR_DIED";

struct JobRecord {
  std::string submission_id;
  std::string entrypoint;
  JobStatus status = JobStatus::kPending;
  std::string message;
  std::string error_type;  // "" when none
  std::int64_t start_time_ms = 0;
  std::optional<std::int64_t> end_time_ms;
  util::Json metadata = util::Json::object();  // string → string
  util::Json runtime_env;                      // object, or null when none
  double entrypoint_num_cpus = 0;
  double entrypoint_num_gpus = 0;
  std::int64_t entrypoint_memory = 0;
  util::Json entrypoint_resources;  // object string → number, or null
  std::optional<int> driver_exit_code;
  std::optional<int> driver_pid;
  std::string driver_node_id;

  // Ray's JobDetails: type "SUBMISSION", job_id null, submission_id,
  // driver_info null, status, entrypoint, message, error_type (null when
  // empty), start_time, end_time, metadata, runtime_env,
  // driver_agent_http_address null, driver_node_id, driver_exit_code.
  // The entrypoint_* fields are not part of it, as in Ray.
  util::Json ToDetailsJson() const;
};

struct JobEvent {
  std::int64_t time_ms = 0;
  JobStatus status = JobStatus::kPending;
  std::string message;
};

inline constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

class HeadDb {
 public:
  // Opens or creates the database (and its parent directory).
  static util::Result<std::unique_ptr<HeadDb>> Open(const std::filesystem::path& file);
  ~HeadDb();

  // Adds a job and its first event. ValueError "Job with submission_id <id>
  // already exists. Please use a different submission_id." on a duplicate.
  util::Status InsertJob(const JobRecord& job);
  // NotFound "Job <id> does not exist".
  util::Result<JobRecord> GetJob(std::string_view submission_id) const;
  // All jobs in submission order.
  std::vector<JobRecord> ListJobs() const;
  // Replaces every column of the job's row; appends an event when the
  // status or message changed. NotFound when absent.
  util::Status UpdateJob(const JobRecord& job);
  // Removes the job and its events. NotFound when absent.
  util::Status DeleteJob(std::string_view submission_id);
  std::vector<JobEvent> JobHistory(std::string_view submission_id) const;

  // Adds (or extends) a pin of `uri` by `holder` until `expires_ms`.
  util::Status Pin(std::string_view uri, std::string_view holder, std::int64_t expires_ms);
  // Drops every pin of `holder`.
  util::Status Unpin(std::string_view holder);
  // URIs with at least one pin expiring after `now_ms`.
  std::set<std::string> PinnedUris(std::int64_t now_ms) const;
  // Deletes pins that expired at or before `now_ms`; returns how many.
  util::Result<std::size_t> DropExpiredPins(std::int64_t now_ms);

 private:
  struct Impl;
  explicit HeadDb(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::head
