// JobManager: runs submitted jobs on the head node, as Ray's job manager and
// supervisor do.
//
// A job's life:
//   Submit   validates the request and its runtime env (Ray's messages),
//            checks that its gcs:// packages are stored, records it PENDING
//            and pins its packages; a thread then takes over:
//   setup    the node agent (agent::NodeConnection) builds the env; a
//            failure makes the job FAILED with error_type
//            RUNTIME_ENV_SETUP_FAILURE and the agent's message;
//   run      `/bin/sh -c <entrypoint>` in a new process group inside the
//            env's context (agent/launcher.h) — for a job pinned to a
//            cluster environment (`cluster_env: "NAME:VERSION"`), inside a
//            container of that build's image, named strata-job-<id>, with the
//            runtime env layered on top (the env carries the private field
//            `_strata_base_image`, agent/container.h) —, with STRATA_ADDRESS
//            (plus `?cluster_env=NAME:VERSION` for a pinned job, so the
//            driver's workers follow it),
//            STRATA_JOB_CONFIG_JSON ({"runtime_env", "metadata"}) and
//            PYTHONUNBUFFERED=1; stdout and stderr go to
//            <session>/logs/job-driver-<submission_id>.log; RUNNING;
//   end      exit 0 → SUCCEEDED, else FAILED (JOB_ENTRYPOINT_COMMAND_ERROR,
//            exit code and the last log lines); Stop → SIGTERM to the group,
//            SIGKILL after the grace period, STOPPED. The env reference and
//            the package pins are released.
// Jobs that were PENDING or RUNNING when a previous head died are FAILED on
// Open ("... the head stopped"); Shutdown does the same for its own.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/plugin.h"
#include "head/cluster_env_service.h"
#include "head/head_db.h"
#include "head/package_service.h"
#include "util/pyjson.h"
#include "util/result.h"

namespace strata::head {

// Ray's JobSubmitRequest.
struct JobSubmitRequest {
  std::string entrypoint;
  std::optional<std::string> submission_id;
  util::Json runtime_env;  // object or null
  util::Json metadata;     // object string → string, or null
  std::optional<double> entrypoint_num_cpus;
  std::optional<double> entrypoint_num_gpus;
  std::optional<std::int64_t> entrypoint_memory;
  util::Json entrypoint_resources;  // object string → number, or null
  // Strata's extension: "NAME:VERSION" of a cluster environment to run in.
  std::optional<std::string> cluster_env;

  // Keys whose value is null are dropped first; `job_id` is the deprecated
  // alias of submission_id. TypeError for an unknown key or a wrong type,
  // worded as Ray's dataclass checks ("entrypoint must be a string, got
  // <class 'int'>").
  static util::Result<JobSubmitRequest> FromJson(const util::Json& body);
};

// "raysubmit_"-style id: "strata_" + 16 characters of [A-Za-z0-9] minus I l o O 0.
std::string NewSubmissionId();

struct JobManagerOptions {
  agent::NodePaths paths;
  std::string head_url;  // STRATA_ADDRESS given to drivers
  std::string node_id;
  std::chrono::milliseconds stop_grace{3000};
  // Resolves `cluster_env` of submissions; null: such submissions are refused.
  const ClusterEnvService* cluster_envs = nullptr;
};

struct LogChunk {
  std::string data;
  std::uint64_t next_offset = 0;
  bool finished = false;  // the job is terminal and everything was read
};

struct JobCounters {
  std::uint64_t submitted = 0;
  std::uint64_t setup_count = 0;  // env setups finished (success or failure)
  std::uint64_t setup_failures = 0;
  double setup_seconds_sum = 0;
};

class JobManager {
 public:
  static util::Result<std::unique_ptr<JobManager>> Open(HeadDb& db, PackageService& packages,
                                                        JobManagerOptions options);
  ~JobManager();

  // The submission id. ValueError/TypeError for a bad request (HTTP 400),
  // including a duplicate id.
  util::Result<std::string> Submit(const JobSubmitRequest& request);
  // True when the job was running or pending and is being stopped.
  util::Result<bool> Stop(std::string_view id);
  // ValueError "... is not in a terminal state" when not finished.
  util::Status Delete(std::string_view id);
  util::Result<JobRecord> Get(std::string_view id) const;
  std::vector<JobRecord> List() const;
  util::Result<std::string> Logs(std::string_view id) const;
  // The log from `offset`; when nothing new is there and the job is not
  // finished, waits up to `wait` for output.
  util::Result<LogChunk> ReadLog(std::string_view id, std::uint64_t offset,
                                 std::chrono::milliseconds wait) const;
  JobCounters Counters() const;

  // Stops every job still running, marks it FAILED and waits for its thread.
  void Shutdown();

 private:
  struct Impl;
  explicit JobManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::head
