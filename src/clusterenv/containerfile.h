// Turning a ClusterEnvSpec into a Containerfile for `podman build`.
//
// One instruction per step, always in this order, so that builds sharing
// their leading steps share podman's cached layers (a spec that changed only
// its post_build_cmds rebuilds only those):
//
//   FROM <base_image>
//   ENV "K1"="v1" "K2"="v2"                    env_vars (one layer; absent when empty)
//   RUN ["/bin/sh", "-c", "<apt-get ...>"]     debian_packages (absent when empty)
//   ARG PIP_INDEX_URL ...                      only the pip settings passed as build args
//   RUN ["/bin/sh", "-c", "<python3 -m pip install ...>"]   pip_packages (absent when empty)
//   RUN ["/bin/sh", "-c", "<conda install ...>"]            conda_packages (absent when empty)
//   RUN ["/bin/sh", "-c", "<cmd 1>"]           one per post_build_cmd
//   ...
//
// RUN uses the exec (JSON array) form, so commands may hold any character,
// newlines included. The apt step is `apt-get update && apt-get install -y
// --no-install-recommends <pkgs> && rm -rf /var/lib/apt/lists/*` with
// DEBIAN_FRONTEND=noninteractive. The pip step checks first that python3
// and `python3 -m pip` exist (else it prints "strata: pip_packages need
// python3 with pip in the base image" and fails), then runs
// `python3 -m pip install --no-cache-dir --disable-pip-version-check <pkgs>`
// with PIP_BREAK_SYSTEM_PACKAGES=1 (Debian's Python is "externally
// managed"; the image is ours to change). The conda step fails with
// "strata: conda_packages need conda in the base image; no conda on PATH"
// when there is none, else runs `conda install -y <pkgs>`. Every package is
// shell-quoted. ENV values are double-quoted with '\\', '"' and '$' escaped,
// so they are taken literally.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model/cluster_env_spec.h"

namespace strata::clusterenv {

// The pip index settings forwarded to a build (PIP_INDEX_URL,
// PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_TRUSTED_HOST), in that order,
// taken from `env` (e.g. the head's environment) when set and non-empty.
using EnvList = std::vector<std::pair<std::string, std::string>>;
EnvList PipBuildArgs(const EnvList& env);

// The Containerfile text. `build_args` are the names declared with ARG before
// the pip step (pass the names of PipBuildArgs' result); none when the spec
// has no pip_packages.
std::string RenderContainerfile(const model::ClusterEnvSpec& spec,
                                const std::vector<std::string>& build_arg_names);

}  // namespace strata::clusterenv
