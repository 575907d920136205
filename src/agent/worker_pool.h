// WorkerPool: the node's Python worker processes for tasks and actors, kept
// per (job, runtime env) as Ray's worker pool does (reference
// ray-interfaces.md §1.6). Drivers lease a worker, talk to it directly over
// its Unix socket (protocol: python/strata/_private/protocol.py), and give it
// back; the pool never lets two environments share a worker.
//
// Lease(request):
//   * a pooled idle worker of the same job_id and serialized env is handed
//     out again (never for a dedicated lease);
//   * otherwise the env is built through the EnvManager (its error, Ray's
//     RuntimeEnvSetupError text, is the lease's error) and a worker starts
//     inside the env's context with the launcher's rules (launcher.h):
//
//       python3 -m strata._worker --socket <session>/sockets/w-<id>.sock
//                                 --worker-id <id> --node-id <node id>
//
//     with PYTHONPATH = the context's entries, then the user's, then the
//     agent's own (PlanLaunch's rule 2), then options.sdk_path (a directory holding only the
//     `strata` package and cloudpickle, so the worker imports them without seeing the node's other
//     packages), STRATA_WORKER_ID and STRATA_JOB_ID set, stdin from
//     /dev/null, stdout+stderr appended to <session>/logs/worker-<id>.log,
//     in a process group of its own. It is ready once its socket exists (so
//     a worker should listen() before the path appears, e.g. bind another
//     name in the same directory and rename it); if it exits first or
//     start_timeout passes, the lease fails with the last lines of its log.
//     Socket paths longer than the 107 bytes Unix allows fail every lease
//     (ValueError naming the path) before any env is built.
// Return(worker_id, kIdle) puts a leased, non-dedicated worker back; kKill
// (and any return of a dedicated worker) kills its process group with
// SIGKILL and reaps the worker.
// A reaper thread kills workers idle longer than idle_timeout, drops workers
// whose process exited, and reclaims (kills) workers leased by a driver
// process that no longer exists. Every worker holds a reference on its env
// (EnvManager::Delete when it goes), so a running worker's env is never
// evicted.
//
// Thread-safety: all methods may be called concurrently; the destructor
// kills every worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/env_manager.h"
#include "model/runtime_env_config.h"
#include "util/result.h"

namespace strata::agent {

struct WorkerPoolOptions {
  // Directory put last on the workers' PYTHONPATH (STRATA_PYTHON_SDK, else
  // <directory of the strata binary>/python).
  std::filesystem::path sdk_path;
  std::string node_id;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};  // STRATA_WORKER_IDLE_TIMEOUT_S
  std::chrono::milliseconds start_timeout{std::chrono::seconds(60)};
  std::chrono::milliseconds reap_interval{std::chrono::seconds(1)};

  // sdk_path and idle_timeout from the environment as described above.
  static util::Result<WorkerPoolOptions> FromEnvironment(std::string node_id);
};

struct LeaseRequest {
  std::string job_id;
  std::string serialized_env;
  std::optional<model::RuntimeEnvConfig> config;
  // An actor's worker: always new, never pooled, killed on return.
  bool dedicated = false;
  // The leasing driver; its lease is reclaimed when this process is gone
  // (0: never reclaimed).
  int driver_pid = 0;
};

struct WorkerLease {
  std::string worker_id;  // 16 lowercase hex
  std::filesystem::path socket_path;
  int pid = 0;
  std::string node_id;
};

enum class ReturnDisposition { kIdle, kKill };

struct WorkerInfo {
  std::string worker_id;
  int pid = 0;
  std::string job_id;
  std::string env_id;  // EnvManager::EnvId of its env
  bool dedicated = false;
  bool leased = false;
  std::int64_t started_ms = 0;
  std::int64_t last_used_ms = 0;
  std::uint64_t leases = 0;  // how many times it was handed out
};

class WorkerPool {
 public:
  WorkerPool(EnvManager& envs, const NodePaths& paths, WorkerPoolOptions options);
  ~WorkerPool();

  util::Result<WorkerLease> Lease(const LeaseRequest& request);
  // NotFound for an unknown worker id (one that exited or was reclaimed
  // included); ValueError for kIdle on a worker that is not leased.
  util::Status Return(const std::string& worker_id, ReturnDisposition disposition);
  std::vector<WorkerInfo> Workers() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::agent
