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
//        driver_node_id TEXT,
//        cluster_env TEXT)                   -- "NAME:VERSION" or ""; added to older files on Open
//   job_events(submission_id TEXT, time_ms INTEGER, status TEXT, message TEXT)
//                                     -- one row per status change, in order
//   package_pins(uri TEXT, holder TEXT, expires_ms INTEGER,
//                PRIMARY KEY (uri, holder))
//                                     -- holder "job:<id>" (kNever) or "pin" (temporary)
//   cluster_envs(name TEXT PRIMARY KEY, created_ms INTEGER, archived_ms INTEGER NULL)
//   cluster_env_builds(name TEXT, version INTEGER, spec TEXT,   -- canonical JSON
//        status TEXT, image_ref TEXT, image_id TEXT, digest TEXT,
//        registry_ref TEXT, oci_archive TEXT, created_ms INTEGER,
//        started_ms INTEGER NULL, finished_ms INTEGER NULL,
//        error_message TEXT, log TEXT,                         -- log: full text once finished
//        PRIMARY KEY (name, version))
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
  std::string cluster_env;  // "NAME:VERSION" the job runs in, "" for none

  // Ray's JobDetails: type "SUBMISSION", job_id null, submission_id,
  // driver_info null, status, entrypoint, message, error_type (null when
  // empty), start_time, end_time, metadata, runtime_env,
  // driver_agent_http_address null, driver_node_id, driver_exit_code, and
  // Strata's "cluster_env" when the job has one.
  // The entrypoint_* fields are not part of it, as in Ray.
  util::Json ToDetailsJson() const;
};

struct JobEvent {
  std::int64_t time_ms = 0;
  JobStatus status = JobStatus::kPending;
  std::string message;
};

enum class BuildStatus { kPending, kInProgress, kSucceeded, kFailed };

// "PENDING", "IN_PROGRESS", "SUCCEEDED", "FAILED".
std::string_view BuildStatusName(BuildStatus status);
std::optional<BuildStatus> ParseBuildStatus(std::string_view name);
// SUCCEEDED and FAILED.
bool IsTerminal(BuildStatus status);

struct ClusterEnvBuildRecord {
  std::string name;
  int version = 0;
  util::Json spec;  // ClusterEnvSpec::ToJson
  BuildStatus status = BuildStatus::kPending;
  std::string image_ref;     // "localhost/strata/<name>:<version>"
  std::string image_id;      // "" until SUCCEEDED
  std::string digest;        // "sha256:...", "" until SUCCEEDED
  std::string registry_ref;  // "" when not pushed
  std::string oci_archive;   // path, "" when not exported
  std::int64_t created_ms = 0;
  std::optional<std::int64_t> started_ms;
  std::optional<std::int64_t> finished_ms;
  std::string error_message;

  // {"name", "version", "ref": "NAME:VERSION", "spec", "status", "image_ref",
  //  "image_id", "digest", "registry_ref", "oci_archive", "oci_archive_ready",
  //  "created_ms", "started_ms", "finished_ms", "error_message"} (null for
  //  absent times; oci_archive_ready: whether the archive file exists now).
  util::Json ToJson() const;
};

struct ClusterEnvRecord {
  std::string name;
  std::int64_t created_ms = 0;
  std::optional<std::int64_t> archived_ms;
  int latest_version = 0;  // highest build number (any status)
  int build_count = 0;
  std::optional<int> latest_succeeded_version;

  // {"name", "created_ms", "archived": bool, "archived_ms", "latest_version",
  //  "build_count", "latest_succeeded_version"}.
  util::Json ToJson() const;
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

  // Cluster environments. Creates the env row if missing (clearing
  // archived_ms if set) and inserts build <name>:<highest + 1> with
  // build.status, spec, image_ref and created_ms as given — all in one
  // transaction. Returns the stored record (version filled in).
  util::Result<ClusterEnvBuildRecord> InsertClusterEnvBuild(ClusterEnvBuildRecord build);
  // Replaces the build's columns. ValueError (util has no FailedPrecondition
  // kind) "cluster env build NAME:N is finished and cannot change" when the
  // STORED row is terminal; NotFound "cluster env build NAME:N does not
  // exist" when absent. `log`, when given, replaces the stored log.
  util::Status UpdateClusterEnvBuild(const ClusterEnvBuildRecord& build,
                                     const std::optional<std::string>& log = std::nullopt);
  util::Result<ClusterEnvBuildRecord> GetClusterEnvBuild(std::string_view name, int version) const;
  // Builds of `name` in version order (empty when the env does not exist).
  std::vector<ClusterEnvBuildRecord> ListClusterEnvBuilds(std::string_view name) const;
  // Builds of every env with one of `statuses` (recovery on open).
  std::vector<ClusterEnvBuildRecord> ListClusterEnvBuildsWithStatus(
      const std::vector<BuildStatus>& statuses) const;
  util::Result<std::string> ClusterEnvBuildLog(std::string_view name, int version) const;
  // NotFound "cluster environment 'NAME' does not exist".
  util::Result<ClusterEnvRecord> GetClusterEnv(std::string_view name) const;
  // By name; archived ones only when asked.
  std::vector<ClusterEnvRecord> ListClusterEnvs(bool include_archived) const;
  // Sets archived_ms (keeps the first time when already archived). NotFound when absent.
  util::Status ArchiveClusterEnv(std::string_view name, std::int64_t now_ms);

 private:
  struct Impl;
  explicit HeadDb(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::head
