// ClusterEnvService: the head's registry and builder of cluster environments
// (Anyscale's "cluster environments": immutable, numbered image builds).
//
// A build's life:
//   StartBuild  validates the name and the spec, records build NAME:N
//               (N = 1 + the highest version of NAME, assigned in the same
//               transaction as the insert) PENDING with a frozen copy of the
//               spec (ClusterEnvSpec::ToJson), and queues it;
//   build       builds of one name run one at a time, in version order, on a
//               thread of their own (different names build concurrently):
//               IN_PROGRESS, then ImageBuilder::Build with image
//               "localhost/strata/<name>:<N>", the head's pip index settings
//               as build args and the registry from the options, bounded by
//               build_timeout;
//   end         SUCCEEDED with image ID, digest and references, or FAILED
//               with the builder's error; the full log is stored with the
//               build. A finished build never changes again (HeadDb refuses).
//   export      a SUCCEEDED build's OCI archive (its path is recorded with
//               the build) is written afterwards by one exporter thread, so
//               a build can run as soon as its image is in the local store
//               (`oci_archive_ready` in the build's JSON says when the file
//               is there); archives a stopped head did not write are
//               exported on the next Open.
// Builds left PENDING or IN_PROGRESS by a head that died are FAILED on Open
// ("the head stopped before the build finished"); Shutdown cancels running
// builds the same way.
//
// On-disk layout (under options.home = $STRATA_HOME):
//   cluster_envs/logs/<name>-<N>.log    live build log (kept afterwards)
//   cluster_envs/work/<name>-<N>/       Containerfile + build context; removed
//                                       when the build ends
//   images/<name>-<N>.oci.tar           exported image (written as .tmp, renamed)
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clusterenv/image_builder.h"
#include "head/head_db.h"
#include "model/cluster_env_spec.h"
#include "util/result.h"

namespace strata::head {

struct ClusterEnvServiceOptions {
  std::filesystem::path home;  // $STRATA_HOME
  // STRATA_IMAGE_REGISTRY ("" = no push); STRATA_IMAGE_REGISTRY_TLS_VERIFY=0
  // for a plain-HTTP registry.
  std::string registry;
  bool registry_tls_verify = true;
  // STRATA_CLUSTER_ENV_BUILD_TIMEOUT_S (default 3600).
  std::chrono::seconds build_timeout{3600};
  // The environment the pip index settings are read from (the head's).
  std::vector<std::pair<std::string, std::string>> environment;

  // Registry, TLS flag and timeout from the variables above.
  static util::Result<ClusterEnvServiceOptions> FromEnvironment(const std::filesystem::path& home);
};

// One chunk of a build log (see ReadBuildLog).
struct BuildLogChunk {
  std::string data;
  std::uint64_t next_offset = 0;
  bool finished = false;  // the build ended and everything was read
};

// Since Open; builds a previous head left unfinished are not counted.
struct ClusterEnvCounters {
  std::uint64_t builds_started = 0;  // StartBuild calls that recorded a build
  std::uint64_t builds_succeeded = 0;
  std::uint64_t builds_failed = 0;  // including those Shutdown failed
  double build_seconds_sum = 0;     // time in ImageBuilder::Build
};

class ClusterEnvService {
 public:
  static util::Result<std::unique_ptr<ClusterEnvService>> Open(
      HeadDb& db, std::unique_ptr<clusterenv::ImageBuilder> builder,
      ClusterEnvServiceOptions options);
  ~ClusterEnvService();

  // ValueError naming the name or the spec problem; Unavailable after
  // Shutdown. A build of an archived name un-archives it.
  util::Result<ClusterEnvBuildRecord> StartBuild(std::string_view name,
                                                 const model::ClusterEnvSpec& spec);
  // NotFound "cluster environment 'x' does not exist" / "cluster environment
  // 'x' has no build 3; its builds: 1 (SUCCEEDED), 2 (FAILED)".
  util::Result<ClusterEnvBuildRecord> GetBuild(std::string_view name, int version) const;
  util::Result<std::vector<ClusterEnvBuildRecord>> ListBuilds(std::string_view name) const;
  util::Result<ClusterEnvRecord> GetEnv(std::string_view name) const;
  std::vector<ClusterEnvRecord> ListEnvs(bool include_archived) const;
  util::Status Archive(std::string_view name);

  // The build a job runs in (archived envs' builds included):
  //   NotFound   "cluster environment 'ml' does not exist",
  //              "cluster environment 'ml' has no build 4; AVAILABLE";
  //   ValueError (util has no FailedPrecondition kind) "cluster environment
  //              build ml:2 is FAILED, not SUCCEEDED; AVAILABLE";
  // AVAILABLE is "available versions: 1, 3" or "available versions: none (no
  // build of 'ml' succeeded)".
  util::Result<ClusterEnvBuildRecord> ResolveRunnable(const model::ClusterEnvRef& ref) const;

  // The log from `offset`: the live file while the build runs (waiting up to
  // `wait` for new output), the stored log once it has ended.
  util::Result<BuildLogChunk> ReadBuildLog(std::string_view name, int version, std::uint64_t offset,
                                           std::chrono::milliseconds wait) const;

  ClusterEnvCounters Counters() const;

  // Cancels queued and running builds (FAILED, "the head stopped ...") and
  // joins their threads.
  void Shutdown();

 private:
  struct Impl;
  explicit ClusterEnvService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::head
