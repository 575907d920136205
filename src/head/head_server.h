// The head: one process serving Ray's Job Submission API, the package store
// and cluster views over HTTP/1.1, with jobs run by JobManager and durable
// state in HeadDb. `strata start --head` runs it as a daemon.
//
// Routes (JSON bodies unless said otherwise; errors are an HTTP status and a
// text/plain message):
//
//   GET    /api/version                  {"version": "4", "ray_version", "strata_version",
//                                         "ray_commit", "session_name"}
//   GET    /api/packages/gcs/{name}      200 empty (pins it) | 404 "Package gcs://name does not
//   exist" PUT    /api/packages/gcs/{name}      body: the archive bytes → 200 empty | 413 too large
//   POST   /api/packages/manifest        {"manifest": <manifest.h JSON>}
//                                        → {"uri", "missing": [sha256...]}
//   PUT    /api/blobs/{sha256}           body: file bytes → 200 | 400 digest mismatch
//   POST   /api/packages/commit          {"manifest": ...} → {"uri"} | 404 missing blobs
//   POST   /api/jobs/                    JobSubmitRequest → {"job_id", "submission_id"}
//   GET    /api/jobs/                    [JobDetails...] in submission order
//   GET    /api/jobs/{id}                JobDetails
//   POST   /api/jobs/{id}/stop           {"stopped": bool}
//   DELETE /api/jobs/{id}                {"deleted": true} | 400 when not finished
//   GET    /api/jobs/{id}/logs           {"logs": "..."}
//   GET    /api/jobs/{id}/logs/tail      text/plain, chunked: the log as it grows;
//                                        the response ends when the job has finished
//   GET    /api/cluster_environments     {"cluster_environments": [ClusterEnvRecord JSON...]}
//                                        (?include_archived=1 for archived names too)
//   POST   /api/cluster_environments/{name}/builds
//                                        {"spec": object | YAML text} → the new build
//                                        (ClusterEnvBuildRecord JSON, PENDING); 400 bad spec
//   GET    /api/cluster_environments/{name}          the env and "builds": [...]
//   GET    /api/cluster_environments/{name}/builds   {"builds": [...]}
//   GET    /api/cluster_environments/{name}/builds/{version}            one build
//   GET    /api/cluster_environments/{name}/builds/{version}/logs       {"logs": "..."}
//   GET    /api/cluster_environments/{name}/builds/{version}/logs/tail  text/plain, chunked,
//                                        until the build has finished
//   POST   /api/cluster_environments/{name}/archive  {"archived": true}
//   (POST /api/jobs/ also takes "cluster_env": "NAME:VERSION", Strata's extension.)
//   GET    /api/nodes                    {"nodes": [{"node_id", "node_ip_address", "hostname",
//                                         "is_head_node", "state", "agent_port",
//                                         "start_time_ms", "runtime_env_cache": {...}}]}
//   GET    /api/runtime_envs             Ray's state-API envelope: {"result": true, "msg": "",
//   GET    /api/v0/runtime_envs           "data": {"result": {"result": [{"runtime_env", "success",
//                                         "creation_time_ms", "node_id", "ref_cnt", "error"}],
//                                         "total", "num_after_truncation", "num_filtered"}}}
//   GET    /metrics                      Prometheus text format
//   GET    /api/healthz                  "success" (no auth)
//
// Routes without the trailing slash (/api/jobs) answer the same as Ray's.
// Auth: with a token, every route but /api/healthz needs
// `Authorization: Bearer <token>` (401 otherwise). Cross-site browser
// requests (Sec-Fetch-Site: cross-site, or an Origin whose host differs
// from Host) that change state (POST/PUT/DELETE) get 403.
//
// The running head records itself in <session>/head.json ({"url", "pid",
// "port", "host"}), written atomically and removed on shutdown.
//
// Thread-safety: Run blocks; Stop may be called from any thread, and from a
// signal handler (it only flags the server and shuts its socket down).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agent/plugin.h"
#include "util/result.h"

namespace strata::head {

struct HeadOptions {
  agent::NodePaths paths;
  std::string host = "127.0.0.1";
  int port = 8265;  // 0: any free port
  std::string auth_token;
  // How often unreferenced packages are collected
  // (STRATA_PACKAGE_GC_INTERVAL_S, default 60).
  std::chrono::seconds gc_interval{60};
  // SIGTERM → SIGKILL grace when stopping a job (STRATA_JOB_STOP_GRACE_S, default 3).
  std::chrono::milliseconds stop_grace{3000};
};

class Head {
 public:
  // Opens the database and the store; marks jobs left running by a previous
  // head as FAILED.
  static util::Result<std::unique_ptr<Head>> Open(HeadOptions options);
  ~Head();

  // Binds host:port; returns the bound port.
  util::Result<int> Bind();
  // Serves until Stop(); records and removes head.json around it. Running
  // jobs are stopped (and marked FAILED) when it returns.
  util::Status Run();
  void Stop();

 private:
  struct Impl;
  explicit Head(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The url of the head recorded in `paths`' session (head.json) when its
// process is alive, else "".
std::string RecordedHeadUrl(const agent::NodePaths& paths);

}  // namespace strata::head
