// The node agent over HTTP: `strata agent` serves an EnvManager and a
// WorkerPool on 127.0.0.1 with JSON bodies shaped like Ray's agent messages,
// and AgentClient talks to it.
//
//   POST /get_or_create_runtime_env      {"job_id", "serialized_runtime_env",
//                                         "runtime_env_config": {...}, "source_process"}
//     → {"status": "AGENT_RPC_STATUS_OK" | "AGENT_RPC_STATUS_FAILED",
//        "error_message", "serialized_runtime_env_context"}
//   POST /delete_runtime_env_if_possible {"serialized_runtime_env", "source_process"}
//     → {"status", "error_message"}
//   POST /get_runtime_envs_info          {"limit"?}
//     → {"runtime_env_states": [{"runtime_env", "ref_cnt", "success", "error",
//        "creation_time_ms", "id", "state", "last_used_ms", "size_bytes", "uris"}],
//        "total", "cached_resources": [{"kind", "uri", "dir", "size_bytes", "local_refs",
//        "in_use_elsewhere", "created_ms", "last_used_ms"}],
//        "counters": {"env_hits", "env_creations", "resource_hits",
//                     "resource_creations", "failures"}}
//   POST /retry_runtime_env              {"id"}            → {"status", "error_message"}
//   POST /gc                             {"max_bytes"}     → {"status", "evicted": [...]}
//   POST /lease_worker                   {"job_id", "serialized_runtime_env",
//                                         "runtime_env_config"?: {...}, "dedicated": bool,
//                                         "driver_pid": int}
//     → {"status", "error_message", "worker_id", "socket_path", "pid", "node_id"}
//   POST /return_worker                  {"worker_id", "kill": bool} → {"status", "error_message"}
//   POST /list_workers                   {}
//     → {"workers": [{"worker_id", "pid", "job_id", "env_id", "dedicated", "leased",
//        "started_ms", "last_used_ms", "leases"}]}
//   (the worker routes answer AGENT_RPC_STATUS_FAILED / an empty list when
//   the server has no pool)
//   GET  /healthz                                          → {"pid"}
//
// A running daemon records itself in $STRATA_HOME/agent/agent.json
// ({"port", "pid"}), written atomically and removed on shutdown; clients use
// it to find the daemon.
//
// Thread-safety: AgentServer's Run blocks; Stop may be called from any
// thread. AgentClient is safe for concurrent use.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/env_manager.h"
#include "agent/worker_pool.h"
#include "util/pyjson.h"
#include "util/result.h"

namespace strata::agent {

class AgentServer {
 public:
  // `workers` may be null (no worker routes); both must outlive the server.
  explicit AgentServer(EnvManager& manager, WorkerPool* workers = nullptr);
  ~AgentServer();
  // Binds 127.0.0.1:`port` (0 = any free port); returns the port.
  util::Result<int> Bind(int port);
  // Serves until Stop(); records and removes agent.json around it.
  util::Status Run();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class AgentClient {
 public:
  explicit AgentClient(int port);
  // The daemon of this STRATA_HOME if one runs and answers, else nullopt.
  static std::optional<AgentClient> Discover(const NodePaths& paths);

  util::Result<RuntimeEnvContext> GetOrCreate(const CreateRequest& request);
  util::Status Delete(const std::string& serialized_env, const std::string& source_process = "");
  util::Result<util::Json> Info();
  util::Status Retry(const std::string& id);
  util::Result<util::Json> GarbageCollect(std::uint64_t max_bytes);
  util::Result<WorkerLease> Lease(const LeaseRequest& request);
  // Failures come back as kNotFound (the agent's message says why).
  util::Status ReturnWorker(const std::string& worker_id, ReturnDisposition disposition);
  // The /list_workers reply.
  util::Result<util::Json> Workers();
  int port() const { return port_; }

 private:
  util::Result<util::Json> Post(const std::string& path, const util::Json& body);
  int port_;
};

// The JSON reply of /get_runtime_envs_info for `manager`.
util::Json EnvsInfoJson(const EnvManager& manager, std::optional<std::size_t> limit);

}  // namespace strata::agent
