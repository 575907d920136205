// EnvManager: the node agent's core. GetOrCreate turns a serialized runtime
// env into a RuntimeEnvContext, creating what is missing; Delete drops a
// reference; Info lists every env.
//
// Caching. Resources (unpacked packages, virtualenvs) are cached per kind by
// UriCache (uri_cache.h) under $STRATA_HOME/runtime_resources/<kind>/ and
// survive restarts; an env holds a reference on each of its resources while
// anyone references the env, and only unreferenced resources are evicted,
// least recently used first. Each resource is built in a staging directory
// next to its cache entry and renamed into place, under an exclusive file
// lock, so concurrent requests — threads of one agent or separate `strata
// run` processes — create it exactly once and a crash leaves nothing that
// could be served.
//
// Single flight. Concurrent requests for the same env wait for one
// creation and share its result; different envs are created concurrently.
//
// Timeouts and failures. config.setup_timeout_seconds bounds the whole wait
// of a request, retries included; at the deadline installer process groups
// are killed and the error carries Ray's hint. A failure is cached for
// `failure_ttl` (10 minutes) so hot loops do not reinstall; Retry() clears it.
//
// Setup logs go to <session>/logs/runtime_env_setup-<job>.log and to each of
// config.log_files in the same directory.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/context.h"
#include "agent/plugin.h"
#include "agent/uri_cache.h"
#include "model/runtime_env_config.h"
#include "util/result.h"

namespace strata::agent {

struct EnvManagerOptions {
  int max_attempts = 3;
  std::chrono::milliseconds retry_interval{1000};
  std::chrono::seconds failure_ttl{600};
  // The node's Python: STRATA_PYTHON, else python3 on PATH.
  std::string python;
  // Plugins added after the built-in ones (third-party fields; tests). Each
  // gets a cache of its own named after its field.
  std::vector<std::shared_ptr<RuntimeEnvPlugin>> extra_plugins;
};

struct CreateRequest {
  std::string serialized_env;
  std::string job_id;
  // Defaults when absent (setup_timeout_seconds 600, ...).
  std::optional<model::RuntimeEnvConfig> config;
  // "client_server" requests take no reference, as in Ray.
  std::string source_process;
};

enum class EnvState { kCreating, kReady, kFailed, kReleased };
std::string_view EnvStateName(EnvState state);

struct EnvInfo {
  std::string id;  // first 12 hex of the SHA-256 of the serialized env
  std::string serialized_env;
  EnvState state = EnvState::kCreating;
  int ref_count = 0;
  std::int64_t created_ms = 0;
  std::int64_t last_used_ms = 0;
  std::uint64_t size_bytes = 0;
  std::vector<std::string> uris;
  std::string error;
  std::string serialized_context;
};

struct CacheCounters {
  std::uint64_t env_hits = 0;
  std::uint64_t env_creations = 0;
  std::uint64_t resource_hits = 0;
  std::uint64_t resource_creations = 0;
  std::uint64_t failures = 0;
};

class EnvManager {
 public:
  static util::Result<std::unique_ptr<EnvManager>> Open(const NodePaths& paths,
                                                        EnvManagerOptions options = {});
  ~EnvManager();

  util::Result<RuntimeEnvContext> GetOrCreate(const CreateRequest& request);
  util::Status Delete(const std::string& serialized_env, const std::string& source_process = "");
  std::vector<EnvInfo> Info(std::optional<std::size_t> limit = std::nullopt) const;
  // Forgets a cached failure (by env id or serialized env).
  util::Status Retry(const std::string& id_or_env);
  // Evicts unreferenced resources, least recently used first, until each
  // kind holds at most `max_bytes`. Returns the evicted URIs.
  std::vector<std::string> GarbageCollect(std::uint64_t max_bytes);
  std::vector<std::pair<std::string, UriCache::EntryInfo>> CacheEntries() const;
  CacheCounters Counters() const;
  const NodePaths& paths() const;

  static std::string EnvId(const std::string& serialized_env);

 private:
  struct Impl;
  explicit EnvManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::agent
