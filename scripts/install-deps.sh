#!/usr/bin/env bash
# Installs what Strata needs to build and test, from Debian's packages.
# Idempotent: packages already present are not reinstalled, and apt is only
# contacted when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev libarchive-dev libssl-dev zlib1g-dev libdeflate-dev
  libsqlite3-dev libcpp-httplib-dev libspdlog-dev libfmt-dev
  clang-format python3 python3-yaml openmpi-bin curl
  pybind11-dev python3-dev python3-cloudpickle
  podman buildah runc skopeo fuse-overlayfs slirp4netns uidmap catatonit
  docker-registry debootstrap
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "Installing missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
