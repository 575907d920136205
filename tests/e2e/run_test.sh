#!/usr/bin/env bash
# `strata run` and `strata agent`: environments created from locally built
# wheels served by a local PEP 503 index, isolation, cache reuse, working_dir,
# env_vars, failures and timeouts, with and without the daemon.
source "$(dirname "$0")/lib.sh"
S=$STRATA_BIN
cd "$WORK"

export STRATA_HOME=$WORK/home STRATA_SESSION_DIR=$WORK/session
# A clean pip that sees only our index.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_CERT
python3 "$HERE/../../scripts/make_index.py" index
port=$(free_port)
(cd index && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
index_server=$!
# An index that accepts connections and never answers, for the timeout case.
hang_port=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' "$hang_port" &
hang_server=$!
trap 'kill $index_server $hang_server $agent 2>/dev/null; rm -rf "$WORK"' EXIT
wait_http "http://127.0.0.1:$port/simple/" || fail "index server" "did not start"
export PIP_INDEX_URL=http://127.0.0.1:$port/simple/

py_version='import demo; print(demo.VERSION)'

run $S run --runtime-env-json '{"pip": ["demo==1.0"]}' -- python -c "$py_version"
expect_ok "pip env with demo 1.0" "1.0"

run $S run --runtime-env-json '{"pip": ["demo==2.0"]}' -- python -c "import demo, dep; print(demo.VERSION)"
expect_ok "a second env with demo 2.0 and its dependency" "2.0"

run $S run --runtime-env-json '{"pip": ["demo==1.0"]}' -- python -c "$py_version"
expect_ok "the first env is unchanged" "1.0"

creations=$(grep -c "Creating pip resource" "$STRATA_SESSION_DIR"/logs/runtime_env_setup-local.log)
[ "$creations" -eq 2 ] && pass "second request for an env is a cache hit" || fail "cache hit" "$creations pip creations"

run $S run --runtime-env-json '{"pip": ["demo==1.0"]}' -- python -c "import yaml"
[ "$RC" -ne 0 ] && [[ "$ERR" == *"No module named 'yaml'"* ]] && pass "base interpreter packages are not visible" \
  || fail "isolation from the base interpreter" "exit $RC $ERR"

run $S run --runtime-env-json '{"pip": ["nosuchpkg==3.1"]}' -- python -c pass
[ "$RC" -eq 1 ] && [[ "$ERR" == RuntimeEnvSetupError:* ]] && [[ "$ERR" == *"nosuchpkg"* ]] && [[ "$ERR" == *"exit code"* ]] \
  && pass "a failed install reports pip's last lines" || fail "failed install" "exit $RC $ERR"

start=$(date +%s)
run env PIP_INDEX_URL="http://127.0.0.1:$hang_port/simple/" PIP_DEFAULT_TIMEOUT=100 \
  $S run --runtime-env-json '{"pip": ["demo==1.0", "dep"], "config": {"setup_timeout_seconds": 2}}' -- python -c pass
elapsed=$(( $(date +%s) - start ))
[ "$RC" -eq 1 ] && [[ "$ERR" == *"Failed to install runtime_env within the timeout of 2 seconds"* ]] && [ "$elapsed" -lt 10 ] \
  && pass "setup timeout kills pip and reports ($elapsed s)" || fail "setup timeout" "exit $RC after $elapsed s: $ERR"
pgrep -f "pip.*demo==1.0" >/dev/null && fail "no pip left behind" "pip still running" || pass "no pip left behind"

mkdir -p proj/pkgdir
echo 'import helper; print(helper.MESSAGE)' > proj/main.py
echo 'MESSAGE = "from working_dir"' > proj/helper.py
run $S run --working-dir proj -- python main.py
expect_ok "working_dir is packaged, unpacked and is the cwd" "from working_dir"

run $S run --runtime-env-json '{"env_vars": {"A": "x", "B": "${A}y", "C": "${UNDEFINED_UPPER}z"}}' -- sh -c 'echo "$B $C"'
expect_ok "env_vars expansion" "xy z"

run $S run -- sh -c 'exit 7'
[ "$RC" -eq 7 ] && pass "exit code is propagated" || fail "exit code" "$RC"

run $S run --runtime-env-json '{"conda": "base"}' -- true
[ "$RC" -eq 1 ] && [[ "$ERR" == *"runtime_env field 'conda' is not supported yet"* ]] && pass "conda not supported yet" || fail "conda" "$ERR"

run $S run --runtime-env-json '{"pip": 5}' -- true
expect_error "invalid env is a TypeError" 2 "TypeError: runtime_env['pip'] must be of type str or List[str], got <class 'int'>"

# The daemon: the same commands go through it, and it lists what it serves.
agent_port=$(free_port)
$S agent --port "$agent_port" > agent.out 2>&1 &
agent=$!
wait_http "http://127.0.0.1:$agent_port/healthz" || fail "agent start" "$(cat agent.out)"
run $S run --runtime-env-json '{"pip": ["demo==2.0"]}' -- python -c "$py_version"
expect_ok "strata run through the daemon" "2.0"
run $S env list
[[ "$OUT" == *'demo==2.0'* ]] && [[ "$OUT" == *pip://* ]] && pass "strata env list shows the daemon's envs and caches" || fail "env list" "$OUT"
run curl -s -X POST "http://127.0.0.1:$agent_port/get_runtime_envs_info" -d '{}'
[[ "$OUT" == *'"runtime_env_states"'* ]] && pass "agent HTTP API answers" || fail "agent HTTP" "$OUT"
run $S agent --port 0
[ "$RC" -eq 1 ] && [[ "$ERR" == *"already serves"* ]] && pass "a second agent reports the running one" || fail "second agent" "$RC $ERR"
kill $agent; wait $agent 2>/dev/null
[ ! -e "$STRATA_HOME/agent/agent.json" ] && pass "the agent removes its record on exit" || fail "agent record" "left behind"

run $S env gc --max-size 0
[[ "$OUT" == *"evicted pip://"* ]] && pass "env gc evicts unused resources" || fail "env gc" "$OUT $ERR"

# One write per rank: the two ranks share stdout, and print() may split a line.
run $S run --runtime-env-json '{"mpi": {"args": ["-n", "2", "--allow-run-as-root", "--oversubscribe"]}}' \
  -- python -c "import os; os.write(1, ('rank ' + os.environ['OMPI_COMM_WORLD_RANK'] + '\\n').encode())"
[ "$RC" -eq 0 ] && [ "$(sort <<<"$OUT")" == "$(printf 'rank 0\nrank 1')" ] && pass "mpi runs the command under mpirun (Open MPI)" \
  || fail "mpi" "exit $RC [$OUT] $ERR"

# Eviction: least recently used first, and never what a running command uses.
uri_of() {
  python3 -c 'import hashlib,json,sys; print("pip://" + hashlib.sha1(json.dumps({"packages": [sys.argv[1]], "pip_check": False}, sort_keys=True).encode()).hexdigest())' "$1"
}
uri1=$(uri_of demo==1.0); uri2=$(uri_of demo==2.0)
$S run --runtime-env-json '{"pip": ["demo==2.0"]}' -- true
sleep 1.1
$S run --runtime-env-json '{"pip": ["demo==1.0"]}' -- true
size1=$($S env inspect "$uri1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["size_bytes"])')
run $S env gc --max-size "$size1"
[[ "$OUT" == *"evicted $uri2"* ]] && [[ "$OUT" != *"$uri1"* ]] && pass "gc evicts the least recently used env first" \
  || fail "LRU eviction" "$OUT $ERR"
$S run --runtime-env-json '{"pip": ["demo==1.0"]}' -- sh -c 'touch started; sleep 5' &
holder=$!
for _ in $(seq 100); do [ -e started ] && break; sleep 0.1; done
run $S env gc --max-size 0
[[ "$OUT" != *"$uri1"* ]] && pass "an env in use by another process is never evicted" || fail "in-use eviction" "$OUT"
wait $holder
run $S env gc --max-size 0
[[ "$OUT" == *"evicted $uri1"* ]] && pass "it is evicted once the command has exited" || fail "eviction after use" "$OUT $ERR"

mkdir -p mods/mymod && echo 'X = 5' > mods/mymod/__init__.py
run $S run --runtime-env-json '{"py_modules": ["mods/mymod", "index/files/dep-1.0-py3-none-any.whl"], "config": {"log_files": ["extra.log"]}}' \
  -- python -c "import mymod, dep; print(mymod.X, dep.VERSION)"
expect_ok "py_modules: a local directory and a local wheel" "5 1.0"
grep -q "py_modules" "$STRATA_SESSION_DIR/logs/extra.log" 2>/dev/null && pass "config.log_files receive the setup log" \
  || fail "log_files" "$(ls "$STRATA_SESSION_DIR/logs")"
