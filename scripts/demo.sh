#!/usr/bin/env bash
# The README's main job: start a local head if none runs, submit a job with a
# working_dir and a pip dependency, stream its logs and print its status.
# PyPI is not reachable everywhere, so the pip dependency comes from a small
# local index that this script builds and serves while the job installs it.
set -euo pipefail
STRATA=$(realpath "${1:-build/strata}")
cd "$(dirname "$0")/.."

if [ -t 1 ]; then
  step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
  step() { printf '\n$ %s\n' "$*"; }
fi

index=$(mktemp -d /tmp/strata-demo-index-XXXXXX)
python3 scripts/make_index.py "$index" demo
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$index" "$port" >/dev/null 2>&1 &
index_server=$!
trap 'kill $index_server 2>/dev/null; rm -rf "$index"' EXIT
for _ in $(seq 50); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1])" \
    "http://127.0.0.1:$port/simple/" 2>/dev/null && break
  sleep 0.1
done

step strata env validate --file examples/runtime_env.yaml
"$STRATA" env validate --file examples/runtime_env.yaml

step strata start --head
"$STRATA" start --head

env_json=$(printf '{"pip": {"packages": ["greeting==1.0"], "pip_install_options": ["--isolated", "--index-url", "http://127.0.0.1:%s/simple/"]}, "env_vars": {"GREETING_NAME": "Strata"}}' "$port")
step strata job submit --working-dir examples/hello --runtime-env-json "'$env_json'" -- python main.py
"$STRATA" job submit --working-dir examples/hello --runtime-env-json "$env_json" -- python main.py

step strata job list
"$STRATA" job list

step strata status
"$STRATA" status
printf '\nThe head keeps running for more jobs; `%s stop` stops it.\n' "$STRATA"
