// Building a cluster environment's image with podman (buildah underneath),
// and the Debian base images users without a registry start from.
//
// ImageBuilder is the interface the head's build queue uses
// (head/cluster_env_service.h), so that the queue's logic is tested without
// containers; PodmanImageBuilder is the real one:
//
//   1. writes RenderContainerfile(spec) into request.work_dir (an empty
//      directory that is also the build context);
//   2. `podman <globals> build --layers --network host --ulimit
//      nofile=1024:1024 --ulimit nproc=1024:1024 --build-arg K=V ...
//      [--tls-verify=false when the base image's registry is listed in
//      STRATA_INSECURE_REGISTRIES]
//      -t <image_ref> -f <work_dir>/Containerfile <work_dir>`;
//   3. `podman image inspect` → image ID and digest;
//   4. `podman save --format oci-archive` into <oci_archive>.tmp, renamed to
//      <oci_archive> when complete (skipped when oci_archive is empty);
//   5. with request.registry set: `podman push [--tls-verify=false]
//      <image_ref> docker://<registry>/<repository>:<tag>` (the registry
//      reference is recorded in the result).
// Every output line of every command goes to request.log. A failing step
// returns an error that names the Containerfile step that failed (podman's
// last "STEP n/m: ..." line), the command and the last output lines; a
// timeout or cancel kills podman's process group and says so.
//
// Thread-safety: PodmanImageBuilder::Build may run concurrently for
// different image references (podman's store has its own locking).
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/cluster_env_spec.h"
#include "util/result.h"

namespace strata::clusterenv {

struct ImageBuildRequest {
  model::ClusterEnvSpec spec;
  std::string image_ref;  // "localhost/strata/<name>:<version>"
  std::filesystem::path work_dir;
  std::vector<std::pair<std::string, std::string>> build_args;  // see PipBuildArgs
  std::filesystem::path oci_archive;                            // "" = no export
  std::string registry;  // "host:port[/prefix]", "" = no push
  bool registry_tls_verify = true;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(std::string_view line)> log;
};

struct ImageBuildResult {
  std::string image_id;      // sha256 hex of the image config (podman's ID)
  std::string digest;        // "sha256:..." manifest digest
  std::string registry_ref;  // "<registry>/strata/<name>:<version>" when pushed, else ""
};

class ImageBuilder {
 public:
  virtual ~ImageBuilder() = default;
  virtual util::Result<ImageBuildResult> Build(const ImageBuildRequest& request) = 0;
  // Writes `image_ref` as an OCI archive to <archive>.tmp and renames it to
  // `archive` when complete (step 4 above, on its own); nothing is left on
  // failure or cancel. Errors as Build's.
  virtual util::Status ExportArchive(const std::string& image_ref,
                                     const std::filesystem::path& archive,
                                     const std::atomic<bool>* cancel,
                                     const std::function<void(std::string_view line)>& log) = 0;
};

std::unique_ptr<ImageBuilder> MakePodmanImageBuilder();

// The registry reference an image is pushed to: "localhost/strata/ml:3" with
// registry "127.0.0.1:5000" → "127.0.0.1:5000/strata/ml:3" (the
// "localhost/" prefix dropped).
std::string RegistryReference(std::string_view registry, std::string_view image_ref);

struct BaseImageRequest {
  std::string image_ref;  // "localhost/<name>:latest"
  std::string suite = "bookworm";
  // The Debian mirror: "" = the first URIs: of
  // /etc/apt/sources.list.d/debian.sources (else deb.debian.org).
  std::string mirror;
  // Installed on top of minbase; Python from Debian with pip and venv, so
  // cluster envs can install pip_packages and runtime envs can build venvs.
  std::vector<std::string> packages = {"python3", "python3-pip", "python3-venv"};
  std::filesystem::path work_dir;  // scratch for the root file system
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::function<void(std::string_view line)> log;
};

// `debootstrap --variant=minbase --include=<packages> <suite> <rootfs>
// <mirror>`, then `tar -C rootfs -cf <work_dir>/rootfs.tar .` and `podman
// import --change 'ENV PATH=<Debian's default>' rootfs.tar <image_ref>` (a
// file rather than a pipe, so a failing tar cannot go unnoticed). The rootfs
// and the tar file are removed afterwards, also on failure. Returns the image ID. Errors name the
// failing command and quote its last lines (debootstrap's log on failure).
util::Result<std::string> BuildDebianBaseImage(const BaseImageRequest& request);

// The mirror BaseImageRequest::mirror defaults to, read from `sources_file`.
std::string DefaultDebianMirror(
    const std::filesystem::path& sources_file = "/etc/apt/sources.list.d/debian.sources");

}  // namespace strata::clusterenv
