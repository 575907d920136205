#!/usr/bin/env bash
# `strata run` with the runtime_env fields image_uri and container: the command
# runs inside a podman image (a tiny one built here from the host's sh, echo,
# cat and env, so no Python checks), with env_vars, the caller's directory as
# cwd, run_options, the command's exit code, and a clear error for an image
# that does not exist. Skipped when podman is not installed.
source "$(dirname "$0")/lib.sh"
S=$STRATA_BIN
cd "$WORK"

if ! command -v podman >/dev/null; then
  echo "SKIP container_test.sh: podman is not installed"
  exit 0
fi

export STRATA_HOME=$WORK/home STRATA_SESSION_DIR=$WORK/session
podman_() { podman --runtime "${STRATA_CONTAINER_RUNTIME-runc}" --cgroup-manager cgroupfs --events-backend file "$@"; }

# The image: the host's binaries, their shared libraries and the loader.
image="localhost/strata-test/e2e-$$-$RANDOM:1"
mkdir rootfs
for bin in /bin/sh /bin/echo /bin/cat /usr/bin/env; do
  for file in "$bin" $(ldd "$(readlink -f "$bin")" | grep -o '/[^ ]*'); do
    mkdir -p "rootfs$(dirname "$file")"
    cp -L "$file" "rootfs$file"
  done
done
mkdir -p rootfs/tmp
tar -C rootfs -cf rootfs.tar .
if ! podman_ import --change 'ENV PATH=/usr/bin:/bin' rootfs.tar "$image" >import.out 2>&1; then
  fail "image fixture" "podman import failed: $(cat import.out)"
  exit 1
fi
trap 'podman_ rmi -f "$image" >/dev/null 2>&1; rm -rf "$WORK"' EXIT

run $S run --runtime-env-json "{\"image_uri\": \"$image\", \"env_vars\": {\"X\": \"1\"}}" -- /bin/sh -c 'echo $X'
expect_ok "image_uri: the command runs in the image with env_vars" "1"

run $S run --runtime-env-json "{\"image_uri\": \"$image\"}" -- /bin/sh -c 'echo out; exit 3'
[ "$RC" -eq 3 ] && [ "$OUT" == "out" ] && pass "the command's exit code is propagated" \
  || fail "exit code" "exit $RC, stdout [$OUT], stderr [$ERR]"

run env VIRTUAL_ENV=/host/venv $S run --runtime-env-json "{\"image_uri\": \"$image\"}" -- /bin/sh -c 'echo "$VIRTUAL_ENV|$PATH"'
expect_ok "the host's environment stays out, the image's PATH is used" "|/usr/bin:/bin"

mkdir -p caller/sub && echo "relative content" > caller/sub/data.txt
run bash -c "cd caller && $S run --runtime-env-json '{\"image_uri\": \"$image\"}' -- /bin/sh -c 'pwd; cat sub/data.txt'"
expect_ok "the caller's directory is the cwd inside, mounted" "$WORK/caller
relative content"

missing="localhost/strata-test-nonexistent-$$:1"
run $S run --runtime-env-json "{\"image_uri\": \"$missing\"}" -- /bin/sh -c 'echo never'
[ "$RC" -ne 0 ] && [ -z "$OUT" ] && [[ "$ERR" == *"$missing"* ]] && pass "an unknown image fails naming the image" \
  || fail "unknown image" "exit $RC, stdout [$OUT], stderr [$ERR]"

run $S run --runtime-env-json "{\"container\": {\"image\": \"$image\", \"run_options\": [\"--env\", \"Y=2\"]}}" -- /bin/sh -c 'echo $Y'
expect_ok "container: run_options reach podman run" "2"

run $S run --runtime-env-json "{\"container\": {\"image\": \"$image\"}, \"pip\": [\"demo\"]}" -- /bin/sh -c 'echo never'
expect_error_prefix "container cannot be combined with pip" 2 "ValueError: The 'container' field currently cannot be used together"
