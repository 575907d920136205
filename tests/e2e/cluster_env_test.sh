#!/usr/bin/env bash
# Cluster environments end to end: a Debian base image made with
# `strata cluster-env base` (debootstrap), builds through a real head with
# podman (a Debian package, a pip package from a local index, an env var and
# a post-build command, each checked inside the image), the layer cache, a
# failing build, a push to a real registry on 127.0.0.1, and jobs pinned to a
# build with a pip runtime env on top. Takes a few minutes (debootstrap).
source "$(dirname "$0")/lib.sh"
S=$STRATA_BIN
cd "$WORK"

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  echo "SKIP cluster_env_test: podman or debootstrap is not installed"
  exit 0
fi

export STRATA_HOME=$WORK/home STRATA_SESSION_DIR=$WORK/session
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL STRATA_AUTH_TOKEN
# Unique names, so that runs on one machine do not see each other's images.
tag=$$-$RANDOM
base=strata-e2e-base-$tag
name=e2e-$tag

podman_() { podman --runtime runc --cgroup-manager cgroupfs --events-backend file "$@"; }
in_image() {
  podman_ run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$1" \
    /bin/sh -c "$2" 2>&1
}

python3 "$HERE/../../scripts/make_index.py" index >/dev/null
index_port=$(free_port)
(cd index && exec python3 -m http.server --bind 127.0.0.1 "$index_port" >/dev/null 2>&1) &
index_server=$!
registry_port=$(free_port)
mkdir -p registry
cat > registry/config.yml <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
http:
  addr: 127.0.0.1:$registry_port
EOF
docker-registry serve registry/config.yml >registry/log 2>&1 &
registry_server=$!

cleanup() {
  "$S" stop >/dev/null 2>&1
  kill "$index_server" "$registry_server" 2>/dev/null
  for ref in $(podman_ images --format '{{.Repository}}:{{.Tag}}' | grep -e "$name" -e "$base"); do
    podman_ rmi -f "$ref" >/dev/null 2>&1
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
wait_http "http://127.0.0.1:$index_port/simple/" || fail "index server" "did not start"
wait_http "http://127.0.0.1:$registry_port/v2/" || fail "registry" "did not start: $(cat registry/log)"
export PIP_INDEX_URL=http://127.0.0.1:$index_port/simple/
export STRATA_IMAGE_REGISTRY=127.0.0.1:$registry_port STRATA_IMAGE_REGISTRY_TLS_VERIFY=0
export STRATA_INSECURE_REGISTRIES=127.0.0.1:$registry_port

seconds() { python3 -c 'import time; print(time.time())'; }
since() { python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$1"; }

# --- base image ---------------------------------------------------------------
t0=$(seconds)
run "$S" cluster-env base --name "$base"
[ "$RC" -eq 0 ] && [ "$OUT" == "localhost/$base:latest" ] \
  && [ "$(in_image "localhost/$base:latest" 'python3 -c "import pip, venv; print(1)"')" == 1 ] \
  && pass "cluster-env base builds a Debian image with python3, pip and venv ($(since "$t0") s)" \
  || fail "cluster-env base" "exit $RC [$OUT] [$ERR]"

# --- head ---------------------------------------------------------------------
head_port=$(free_port)
export STRATA_ADDRESS=http://127.0.0.1:$head_port
run "$S" start --head --port "$head_port"
[ "$RC" -eq 0 ] || fail "start head" "exit $RC [$OUT] [$ERR]"

cat > spec.yaml <<EOF
base_image: localhost/$base:latest
env_vars:
  MY_VAR: '123'
debian_packages:
  - hello
python:
  pip_packages:
    - demo==1.0
post_build_cmds:
  - echo built > /built.txt
EOF

# --- version 1 ----------------------------------------------------------------
t0=$(seconds)
run "$S" cluster-env build spec.yaml --name "$name"
build1_s=$(since "$t0")
[ "$RC" -eq 0 ] && [ "$OUT" == "$name:1" ] && [[ "$ERR" == *"succeeded"* ]] \
  && pass "cluster-env build prints NAME:1 and follows the log to success (${build1_s} s)" \
  || fail "build 1" "exit $RC [$OUT] [$(tail -n 20 <<<"$ERR")]"
img1=localhost/strata/$name:1
[ "$(in_image "$img1" hello)" == "Hello, world!" ] \
  && pass "the Debian package is installed in the image" || fail "hello in image" "$(in_image "$img1" hello)"
[ "$(in_image "$img1" 'python3 -c "import demo; print(demo.VERSION)"')" == 1.0 ] \
  && pass "the pip package from the local index is installed in the image" \
  || fail "pip package in image" "$(in_image "$img1" 'python3 -c "import demo"')"
[ "$(in_image "$img1" 'echo $MY_VAR')" == 123 ] \
  && pass "the env var is set in the image" || fail "env var in image" "$(in_image "$img1" 'env')"
[ "$(in_image "$img1" 'cat /built.txt')" == built ] \
  && pass "the post-build command ran" || fail "post-build" "$(in_image "$img1" 'ls /')"

# The OCI archive is written after the build has succeeded.
archive_ready() {
  run "$S" cluster-env get "$1" --json
  [ "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["oci_archive_ready"])' "$OUT" 2>/dev/null)" == True ]
}
for _ in $(seq 120); do archive_ready "$name:1" && break; sleep 0.5; done
run "$S" cluster-env get "$name:1" --json
digest=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["digest"])' "$OUT" 2>/dev/null)
archive=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["oci_archive"])' "$OUT" 2>/dev/null)
[ "$RC" -eq 0 ] && [[ "$digest" == sha256:* ]] && [ -s "$archive" ] && [[ "$archive" == "$STRATA_HOME"/* ]] \
  && pass "get NAME:1 shows SUCCEEDED with a digest, and its OCI archive appears under STRATA_HOME" \
  || fail "get build 1" "exit $RC [$OUT] [$ERR]"
tags=$(curl -s "http://127.0.0.1:$registry_port/v2/strata/$name/tags/list")
[[ "$tags" == *'"1"'* ]] && pass "the build was pushed to STRATA_IMAGE_REGISTRY" \
  || fail "registry push" "$tags"

# --- version 2: same spec, from the layer cache -------------------------------
t0=$(seconds)
run "$S" cluster-env build spec.yaml --name "$name"
build2_s=$(since "$t0")
cached=$(grep -c "Using cache" <<<"$ERR")
[ "$RC" -eq 0 ] && [ "$OUT" == "$name:2" ] && [ "$cached" -ge 4 ] \
  && pass "an unchanged rebuild is version 2 and reuses every cached layer (${build2_s} s vs ${build1_s} s)" \
  || fail "build 2" "exit $RC [$OUT] cached=$cached [$(tail -n 20 <<<"$ERR")]"

# --- version 3 fails; version 1 still runs ------------------------------------
sed 's/- hello/- no-such-package-strata-e2e/' spec.yaml > bad.yaml
run "$S" cluster-env build bad.yaml --name "$name"
[ "$RC" -eq 1 ] && [ "$OUT" == "$name:3" ] && [[ "$ERR" == *"failed"* ]] \
  && pass "a build with a missing Debian package fails (exit 1)" || fail "bad build" "exit $RC [$OUT] [$ERR]"
run "$S" cluster-env logs "$name:3"
[[ "$OUT" == *"Unable to locate package no-such-package-strata-e2e"* ]] \
  && pass "the apt error is in the failed build's log" || fail "bad build log" "$(tail -n 20 <<<"$OUT")"
run "$S" cluster-env get "$name:3" --json
[ "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["status"], "apt-get" in d["error_message"])' "$OUT" 2>/dev/null)" == "FAILED True" ] \
  && pass "the failed build records FAILED and the failing command" || fail "bad build record" "[$OUT]"

# --- jobs pinned to a build ---------------------------------------------------
cat > check.py <<'EOF'
import os, sys
import demo, dep
print(demo.VERSION, dep.__name__, os.environ["MY_VAR"], open("/built.txt").read().strip(),
      sys.executable.startswith(os.environ["STRATA_HOME"]))
EOF
mkdir -p proj && cp check.py proj/
run "$S" job submit --cluster-env "$name:1" --working-dir proj \
  --runtime-env-json '{"pip": ["demo==2.0"]}' \
  -- python check.py
[ "$RC" -eq 0 ] && [[ "$OUT" == *"2.0 dep 123 built True"* ]] \
  && pass "a job pinned to NAME:1 runs in the image with a pip runtime env on top" \
  || fail "pinned job" "exit $RC [$OUT] [$ERR]"
run "$S" job submit --cluster-env "$name:1" -- hello
[ "$RC" -eq 0 ] && [[ "$OUT" == *"Hello, world!"* ]] \
  && pass "the job's entrypoint sees the image's Debian packages" || fail "hello job" "exit $RC [$OUT] [$ERR]"
run "$S" job submit --cluster-env "$name:1" --runtime-env-json '{"pip": ["dep==1.0"]}' \
  -- python -c 'import demo'
[ "$RC" -eq 1 ] && [[ "$OUT" == *"No module named 'demo'"* ]] \
  && pass "a runtime env's pip environment does not inherit the image's pip packages" \
  || fail "pip isolation" "exit $RC [$OUT] [$ERR]"
STRATA_ADDRESS="$STRATA_ADDRESS?cluster_env=$name:2" run "$S" job submit -- sh -c 'echo $MY_VAR; cat /built.txt'
[ "$RC" -eq 0 ] && [[ "$OUT" == *"123"*"built"* ]] \
  && pass "STRATA_ADDRESS=...?cluster_env=NAME:2 pins the job" || fail "address pin" "exit $RC [$OUT] [$ERR]"
run "$S" job submit --runtime-env-json '{"image_uri": "'"$img1"'"}' -- hello
[ "$RC" -eq 0 ] && [[ "$OUT" == *"Hello, world!"* ]] \
  && pass "runtime_env image_uri runs the entrypoint in that image" || fail "image_uri job" "exit $RC [$OUT] [$ERR]"
run "$S" job submit --cluster-env "$name:3" -- true
[ "$RC" -eq 2 ] && [[ "$ERR" == *"$name"* && "$ERR" == *"1, 2"* ]] \
  && pass "a FAILED build is refused with the versions that can run" || fail "refuse failed build" "exit $RC [$ERR]"
run "$S" job submit --cluster-env "$name:9" -- true
[ "$RC" -eq 2 ] && [[ "$ERR" == *"1, 2"* ]] \
  && pass "an unknown version is refused with the versions that can run" || fail "refuse unknown" "exit $RC [$ERR]"

# --- rebuild after changing only post_build_cmds -------------------------------
sed 's/echo built/echo rebuilt/' spec.yaml > post.yaml
run "$S" cluster-env build post.yaml --name "$name"
cached=$(grep -c "Using cache" <<<"$ERR")
[ "$RC" -eq 0 ] && [ "$OUT" == "$name:4" ] && [ "$cached" -ge 3 ] \
  && [ "$(in_image "localhost/strata/$name:4" 'cat /built.txt')" == rebuilt ] \
  && [ "$(in_image "$img1" 'cat /built.txt')" == built ] \
  && pass "changing only post_build_cmds reuses the earlier layers; version 1 is untouched" \
  || fail "post-build rebuild" "exit $RC [$OUT] cached=$cached"

# --- other kinds of base image: an OCI archive, a registry reference -----------
printf 'base_image: oci-archive:%s\npost_build_cmds: [echo from-archive > /from.txt]\n' "$archive" > from_archive.yaml
run "$S" cluster-env build from_archive.yaml --name "$name-oci"
[ "$RC" -eq 0 ] && [ "$(in_image "localhost/strata/$name-oci:1" 'cat /from.txt; cat /built.txt')" == "from-archive
built" ] && pass "a build FROM an OCI archive (oci-archive:PATH) of an earlier build" \
  || fail "oci-archive base" "exit $RC [$OUT] [$(tail -n 5 <<<"$ERR")]"
printf 'base_image: 127.0.0.1:%s/strata/%s:1\npost_build_cmds: [echo from-registry > /from.txt]\n' \
  "$registry_port" "$name" > from_registry.yaml
run "$S" cluster-env build from_registry.yaml --name "$name-reg"
[ "$RC" -eq 0 ] && [ "$(in_image "localhost/strata/$name-reg:1" 'cat /from.txt; hello')" == "from-registry
Hello, world!" ] && pass "a build FROM a registry reference (plain-HTTP registry in STRATA_INSECURE_REGISTRIES)" \
  || fail "registry base" "exit $RC [$OUT] [$(tail -n 5 <<<"$ERR")]"

# --- list, builds, archive, API, restart ----------------------------------------
run "$S" cluster-env builds "$name" --json
[ "$(python3 -c 'import json,sys; print([(b["version"], b["status"]) for b in json.loads(sys.argv[1])])' "$OUT" 2>/dev/null)" \
  == "[(1, 'SUCCEEDED'), (2, 'SUCCEEDED'), (3, 'FAILED'), (4, 'SUCCEEDED')]" ] \
  && pass "builds lists every version with its status" || fail "builds" "[$OUT] [$ERR]"
run "$S" cluster-env archive "$name"
run "$S" cluster-env list --json
listed=$(python3 -c 'import json,sys; print(sys.argv[2] in [e["name"] for e in json.loads(sys.argv[1])])' "$OUT" "$name")
run "$S" cluster-env list --all --json
listed_all=$(python3 -c 'import json,sys; print(sys.argv[2] in [e["name"] for e in json.loads(sys.argv[1])])' "$OUT" "$name")
run "$S" job submit --cluster-env "$name:1" -- hello
[ "$listed" == False ] && [ "$listed_all" == True ] && [ "$RC" -eq 0 ] \
  && pass "archive hides the name from lists; its builds still run" \
  || fail "archive" "listed=$listed all=$listed_all job exit $RC [$ERR]"
code=$(curl -s -o body -w '%{http_code}' "$STRATA_ADDRESS/api/cluster_environments/$name/builds/2")
[ "$code" == 200 ] && [ "$(python3 -c 'import json; print(json.load(open("body"))["ref"])')" == "$name:2" ] \
  && pass "GET /api/cluster_environments/NAME/builds/2" || fail "API get build" "$code $(cat body)"
code=$(curl -s -o body -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data '{"spec": {"base_image": "x", "debian_packages": "hello"}}' \
  "$STRATA_ADDRESS/api/cluster_environments/$name/builds")
[ "$code" == 400 ] && grep -q "debian_packages" body \
  && pass "a spec with a wrong type is refused with 400 naming the key" || fail "API bad spec" "$code $(cat body)"
"$S" stop >/dev/null 2>&1
run "$S" start --head --port "$head_port"
run "$S" cluster-env get "$name:1" --json
[ "$RC" -eq 0 ] && [[ "$OUT" == *'"SUCCEEDED"'* ]] \
  && pass "builds survive a head restart" || fail "restart" "exit $RC [$OUT] [$ERR]"
