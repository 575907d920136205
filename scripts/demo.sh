#!/usr/bin/env bash
# The README's main job, for now: validate example runtime envs with the real
# `strata` binary and show their canonical forms, a merge, and an error.
set -euo pipefail
STRATA=${1:-build/strata}
cd "$(dirname "$0")/.."

if [ -t 1 ]; then
  step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
  step() { printf '\n$ %s\n' "$*"; }
fi

step strata env validate --file examples/runtime_env.yaml
"$STRATA" env validate --file examples/runtime_env.yaml

step strata env merge --mode task --parent '{"pip": ["requests", "chess"], "env_vars": {"A": "a", "B": "b"}}' --child '{"pip": ["torch"], "env_vars": {"B": "new"}}'
"$STRATA" env merge --mode task \
  --parent '{"pip": ["requests", "chess"], "env_vars": {"A": "a", "B": "b"}}' \
  --child '{"pip": ["torch"], "env_vars": {"B": "new"}}'

step strata env validate --json '{"pip": ["requests"], "conda": "base"}'
if "$STRATA" env validate --json '{"pip": ["requests"], "conda": "base"}'; then
  echo "expected a ValueError" >&2
  exit 1
else
  echo "(exit code $?: invalid input, as documented)"
fi

step strata run --working-dir examples/hello --runtime-env-json '{"env_vars": {"GREETING": "hi from ${HOME}"}}' -- python main.py
"$STRATA" run --working-dir examples/hello \
  --runtime-env-json '{"env_vars": {"GREETING": "hi from ${HOME}"}}' -- python main.py

step strata env list
"$STRATA" env list
