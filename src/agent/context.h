// RuntimeEnvContext: what creating a runtime env produces and what the worker
// launcher consumes to start a process inside it. Ray's RuntimeEnvContext
// (command_prefix, env_vars, py_executable, override_worker_entrypoint,
// java_jars) plus two fields Strata applies natively instead of through a
// shell prefix: the working directory and the PYTHONPATH entries.
//
// JSON form (the agent's "serialized_runtime_env_context"):
//   {"command_prefix": [...], "env_vars": {...}, "py_executable": "...",
//    "override_worker_entrypoint": null, "java_jars": [],
//    "cwd": "", "pythonpath": [...], "path_prepend": [...],
//    "container": null | ContainerLayer JSON (agent/container.h)}
//
// Thread-safety: a value type.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/container.h"
#include "util/pyjson.h"
#include "util/result.h"

namespace strata::agent {

struct RuntimeEnvContext {
  // Shell words run before the command, e.g. {"source", "x/activate", "1>&2", "&&"}.
  std::vector<std::string> command_prefix;
  // Variables to set, in order; values may hold ${VAR} references, expanded
  // at launch by Ray's rules (see launcher.h).
  std::vector<std::pair<std::string, std::string>> env_vars;
  // The Python command of the env; may carry arguments ("mpirun -np 2 python").
  // Empty means the node's Python.
  std::string py_executable;
  std::optional<std::string> override_worker_entrypoint;
  std::vector<std::string> java_jars;
  // Directory the process starts in ("" = the caller's).
  std::string cwd;
  // PYTHONPATH entries in import priority order (working_dir, then py_modules);
  // the launcher appends the user's env_vars PYTHONPATH and the node's.
  std::vector<std::string> pythonpath;
  // Directories put in front of PATH (a virtualenv's bin/).
  std::vector<std::string> path_prepend;
  // Run inside this container image (a cluster env, `container`, `image_uri`);
  // every path above is then a path inside the container, mounted from the
  // same host path.
  std::optional<ContainerLayer> container;

  // Sets (or replaces, keeping its position) one variable.
  void SetEnv(const std::string& name, const std::string& value);
  std::optional<std::string> GetEnv(const std::string& name) const;

  util::Json ToJson() const;
  static util::Result<RuntimeEnvContext> FromJson(const util::Json& json);
};

}  // namespace strata::agent
