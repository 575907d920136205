// RuntimeEnvPlugin: one per runtime_env field, as in Ray's agent. The
// environment manager (env_manager.h) runs the plugins of an env in order —
// working_dir first, then by ascending priority — and for each one:
//
//   Validate(env)            reject what cannot be served on this node
//   Uris(env)                the cached resources this field needs
//   Create(uri, env, setup)  build one missing resource into setup.staging_dir;
//                            the manager publishes it atomically (rename) to
//                            its cache directory and records its size
//   ModifyContext(...)       point the context at the published resources
//
// A plugin without URIs (env_vars, py_executable, mpi, ...) only modifies the
// context; nothing is cached for it.
//
// Thread-safety: plugins are stateless apart from construction-time
// configuration; every method may run concurrently for different envs.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/container.h"
#include "agent/context.h"
#include "model/runtime_env.h"
#include "util/result.h"

namespace strata::agent {

// Paths of a node, all under STRATA_HOME (default ~/.strata):
//
//   $STRATA_HOME/
//     store/                              the node's package store (packaging/blob_store.h)
//     runtime_resources/<kind>/           one cache per kind (agent/uri_cache.h):
//       working_dir/<entry>/              unpacked working_dir packages
//       py_modules/<entry>/               unpacked py_modules packages / wheel targets
//       pip/<entry>/virtualenv/           pip virtual environments
//       uv/<entry>/virtualenv/            uv virtual environments
//   /tmp/strata/session_latest/logs/      runtime_env_setup-<job>.log
struct NodePaths {
  std::filesystem::path home;
  std::filesystem::path session_dir;

  std::filesystem::path store_dir() const { return home / "store"; }
  std::filesystem::path resources_dir() const { return home / "runtime_resources"; }
  std::filesystem::path logs_dir() const { return session_dir / "logs"; }

  // STRATA_HOME (default ~/.strata) and STRATA_SESSION_DIR (default
  // /tmp/strata/session_latest).
  static NodePaths FromEnvironment();
};

// What a plugin's Create gets besides the env: where to build, how long it
// may take, where to log, and the node's facts.
struct SetupContext {
  const NodePaths* paths = nullptr;
  std::string job_id;
  // Build the resource here (an empty directory the manager created next to
  // the cache entry and renames into place on success).
  std::filesystem::path staging_dir;
  // Where the resource will live once published (some tools, like venv,
  // write their own absolute path into the files they create).
  std::filesystem::path final_dir;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  const std::atomic<bool>* cancel = nullptr;
  // Appends one line to the job's setup log.
  std::function<void(std::string_view line)> log;
  // The node's Python (STRATA_PYTHON, else python3 on PATH).
  std::string python = "python3";
  // Extra variables installers see: the env's env_vars plus
  // STRATA_RUNTIME_ENV_CREATE_WORKING_DIR when the env has a working_dir.
  std::vector<std::pair<std::string, std::string>> installer_env;
  // Directory of the env's unpacked working_dir ("" when none).
  std::string working_dir;
  // Set once the env's container plugin has resolved its image: installers
  // then run inside it (`python` is the image's python3).
  std::optional<ContainerLayer> container;
};

class RuntimeEnvPlugin {
 public:
  virtual ~RuntimeEnvPlugin() = default;

  // The runtime_env field this plugin serves ("pip", "working_dir", ...).
  virtual std::string_view name() const = 0;
  // Lower runs earlier; Ray's default is 10, mpi uses 90.
  virtual int priority() const { return 10; }

  virtual util::Status Validate(const model::RuntimeEnv& env) const {
    (void)env;
    return {};
  }
  virtual std::vector<std::string> Uris(const model::RuntimeEnv& env) const {
    (void)env;
    return {};
  }
  // Builds the resource of `uri` into setup.staging_dir. Errors name the
  // plugin's field, the failing command and the installer's last lines.
  virtual util::Status Create(const std::string& uri, const model::RuntimeEnv& env,
                              const SetupContext& setup) const {
    (void)uri, (void)env, (void)setup;
    return {};
  }
  // `dirs` maps each of Uris(env) to its published cache directory.
  virtual util::Status ModifyContext(const std::map<std::string, std::filesystem::path>& dirs,
                                     const model::RuntimeEnv& env, const SetupContext& setup,
                                     RuntimeEnvContext& context) const = 0;
};

}  // namespace strata::agent
