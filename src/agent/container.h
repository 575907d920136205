// Running processes inside container images with podman: the layer behind
// cluster environments (a job pinned to NAME:VERSION), and the runtime_env
// fields `container` and `image_uri`.
//
// Every podman call goes through PodmanCommand, which adds the global options
// this kind of host needs (see ../shared/notes/machine-facts.md): the runc
// runtime (crun refuses hybrid cgroups), the cgroupfs manager and the file
// events logger (no systemd). STRATA_PODMAN names the binary (default
// "podman"); STRATA_CONTAINER_RUNTIME the OCI runtime (default "runc"; empty
// for podman's own default).
//
// A process runs in a container as
//   podman <globals> run --rm --init --network host --ipc host
//          --ulimit nofile=1024:1024 --ulimit nproc=1024:1024
//          [--name NAME] -v P:P ... --env K=V ... [-w CWD] [run_options...]
//          IMAGE argv...
// Host networking keeps 127.0.0.1 services (the head, the agent, a package
// index) reachable; `--init` puts catatonit at PID 1 so SIGTERM from
// `podman run`'s signal proxy reaches the command; every mount keeps its host
// path, so paths in contexts (venvs, working_dir, sockets) mean the same
// inside and out.
//
// Thread-safety: value types and pure functions, except ResolveImage (runs
// podman; safe to call concurrently).
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/pyjson.h"
#include "util/result.h"

namespace strata::agent {

// The private runtime_env field the head sets to run a job on a cluster
// environment's image: {"image_id": "<podman image ID>", "reference":
// "localhost/strata/<name>:<version>"}. It is part of the serialized env, so
// the env's identity and caches (pip://, uv:// URIs) depend on the image.
inline constexpr std::string_view kBaseImageField = "_strata_base_image";

struct ContainerLayer {
  // What podman runs: an image ID (sha256 hex) once resolved, so a job keeps
  // the exact image even if a tag moves.
  std::string image;
  // The reference the user gave ("localhost/strata/ml:1"), for messages.
  std::string reference;
  // Extra `podman run` arguments (runtime_env container.run_options).
  std::vector<std::string> run_options;
  // The image's own environment (Config.Env), the base of the environment
  // inside: its PATH, and the cluster env's env_vars.
  std::vector<std::pair<std::string, std::string>> image_env;
  // Host directories mounted at the same path (STRATA_HOME, the session
  // directory); the launcher adds PYTHONPATH entries and the cwd.
  std::vector<std::string> mounts;
  // Container name (`--name`), so that a stopper can `podman rm -f` it; ""
  // for none.
  std::string name;

  util::Json ToJson() const;
  static util::Result<ContainerLayer> FromJson(const util::Json& json);
};

// {"podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
//  "--events-backend", "file"} (with STRATA_PODMAN / STRATA_CONTAINER_RUNTIME
// applied) followed by `args`.
std::vector<std::string> PodmanCommand(const std::vector<std::string>& args);

// True when `reference` ("host:port/repo:tag") names an image in one of the
// registries listed in STRATA_INSECURE_REGISTRIES (comma-separated
// "host:port"), which podman must reach with --tls-verify=false.
bool IsInsecureRegistry(const std::string& reference);

// Host variables a process in a container still sees: names starting with
// STRATA_ or RAY_, PYTHONUNBUFFERED, TERM, and pip's index settings
// (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_TRUSTED_HOST).
// Everything else of the host (its PATH, HOME, VIRTUAL_ENV, ...) stays out.
bool PassesIntoContainer(std::string_view name);

// The environment a process inside `layer` starts from: the image's own
// (layer.image_env), with the `host_env` variables PassesIntoContainer admits
// set on top.
std::vector<std::pair<std::string, std::string>> ContainerBaseEnv(
    const ContainerLayer& layer, const std::vector<std::pair<std::string, std::string>>& host_env);

// The argv that runs `argv` in `layer` with exactly `env` inside and `cwd`
// as the working directory ("" = the image's), mounting layer.mounts plus
// `extra_mounts` (each once, in order; paths that do not exist are skipped).
std::vector<std::string> ContainerRunArgv(
    const ContainerLayer& layer, const std::vector<std::string>& argv,
    const std::vector<std::pair<std::string, std::string>>& env, const std::string& cwd,
    const std::vector<std::string>& extra_mounts);

// Directories that symbolic links under `dir` (up to `max_depth` levels
// down, at most `max_entries` entries looked at) point to outside `dir`: the
// parents of file targets, and directory targets themselves, deduplicated, in
// walk order. Mounting them too keeps such links working in a container
// (the SDK's build tree links its sources and cloudpickle).
std::vector<std::string> SymlinkTargetDirs(const std::string& dir, int max_depth = 3,
                                           std::size_t max_entries = 2000);

// Looks the image up in the local store (`podman image inspect`), pulling it
// when missing (unless `reference` is an image ID, which only names a local
// image) (`podman pull`; --tls-verify=false for registries listed in
// STRATA_INSECURE_REGISTRIES, comma-separated), and returns a layer with the
// image ID and its environment. The error names the reference and quotes
// podman's last lines.
util::Result<ContainerLayer> ResolveImage(
    const std::string& reference, const std::vector<std::string>& run_options,
    std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt,
    const std::atomic<bool>* cancel = nullptr);

// `podman rm -f --time 0 NAME`, ignoring "no such container".
void RemoveContainer(const std::string& name);

}  // namespace strata::agent
