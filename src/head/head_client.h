// HeadClient: the head's HTTP API (head_server.h) as the CLI, benchmarks
// and later SDKs see it. Every request carries `Authorization: Bearer
// <token>` when a token is set, and none of the browser headers the head
// refuses on state-changing requests.
//
// Errors: a refused connection is kUnavailable "Could not reach the Strata
// head at <url>: ... Is it running? (strata start --head)"; an HTTP error
// status becomes an error whose message is the head's plain-text body,
// with kind by status: 400 → ValueError, 401/403 → ValueError naming the
// token variable, 404 → NotFound, other → IOError "<status> <reason>: body".
//
// Thread-safety: a HeadClient may be used from several threads at once
// (each call opens its own connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "packaging/package_sink.h"
#include "util/pyjson.h"
#include "util/result.h"

namespace strata::head {

inline constexpr std::string_view kDefaultHeadAddress = "http://127.0.0.1:8265";

// The head URL: `flag` when given, else STRATA_ADDRESS, else
// kDefaultHeadAddress. A query (`?cluster_env=...`) and trailing slashes are
// dropped. ValueError for anything that is not http://host[:port].
util::Result<std::string> ResolveHeadAddress(const std::optional<std::string>& flag);

// The `cluster_env` query parameter of the address ResolveHeadAddress would
// use (`http://head:8265?cluster_env=ml:1` → "ml:1"), when there is one.
std::optional<std::string> ClusterEnvFromAddress(const std::optional<std::string>& flag);

class HeadClient : public packaging::PackageSink {
 public:
  // `token` defaults to STRATA_AUTH_TOKEN ("" = none).
  explicit HeadClient(std::string url, std::optional<std::string> token = std::nullopt);

  const std::string& url() const { return url_; }

  util::Result<util::Json> Version();

  // Jobs (Ray's Job Submission API).
  // POST /api/jobs/ with `request` (JobSubmitRequest JSON); the submission id.
  util::Result<std::string> SubmitJob(const util::Json& request);
  util::Result<util::Json> GetJob(std::string_view id);  // JobDetails
  util::Result<util::Json> ListJobs();                   // array of JobDetails
  util::Result<bool> StopJob(std::string_view id);
  util::Status DeleteJob(std::string_view id);
  util::Result<std::string> GetJobLogs(std::string_view id);
  // Streams GET /api/jobs/{id}/logs/tail to `on_chunk` until the head ends
  // the stream (the job finished).
  util::Status TailJobLogs(std::string_view id,
                           const std::function<void(std::string_view chunk)>& on_chunk);

  // Cluster environments (routes in head_server.h). `spec` is the spec
  // object (ClusterEnvSpec::ToJson) or YAML text; the reply is the new build.
  util::Result<util::Json> StartClusterEnvBuild(std::string_view name, const util::Json& spec);
  util::Result<util::Json> ListClusterEnvs(bool include_archived);  // array of envs
  util::Result<util::Json> GetClusterEnv(std::string_view name);    // env with "builds"
  util::Result<util::Json> GetClusterEnvBuild(std::string_view name, int version);
  util::Result<std::string> GetClusterEnvBuildLogs(std::string_view name, int version);
  // Streams the build log until the build has finished.
  util::Status TailClusterEnvBuildLogs(std::string_view name, int version,
                                       const std::function<void(std::string_view chunk)>& on_chunk);
  util::Status ArchiveClusterEnv(std::string_view name);

  util::Result<util::Json> Nodes();        // GET /api/nodes
  util::Result<util::Json> RuntimeEnvs();  // GET /api/runtime_envs
  util::Result<std::string> Metrics();     // GET /metrics

  // PackageSink: GET/PUT /api/packages/gcs/<name>, POST /api/packages/manifest,
  // PUT /api/blobs/<sha256>, POST /api/packages/commit.
  util::Result<bool> HasPackage(std::string_view name) override;
  util::Status PutPackageArchive(std::string_view name,
                                 const std::filesystem::path& archive) override;
  util::Result<std::vector<std::string>> MissingBlobs(const packaging::Manifest& manifest) override;
  util::Status PutBlobFromFile(std::string_view sha256,
                               const std::filesystem::path& source) override;
  util::Result<std::string> CommitPackage(const packaging::Manifest& manifest) override;

 private:
  std::string url_;
  std::string host_;
  int port_ = 0;
  std::string token_;
};

}  // namespace strata::head
