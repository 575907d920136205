#!/usr/bin/env bash
# The head, jobs and the package store: `strata start|stop|status`,
# `strata job ...` and the head's HTTP API (src/head/head_server.h), against a
# real head on 127.0.0.1 with its own STRATA_HOME and session, and pip
# dependencies served by a local PEP 503 index.
source "$(dirname "$0")/lib.sh"
S=$STRATA_BIN
cd "$WORK"

export STRATA_HOME=$WORK/home STRATA_SESSION_DIR=$WORK/session
# A clean pip that sees only our index.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_CERT STRATA_AUTH_TOKEN \
  STRATA_PACKAGE_GC_INTERVAL_S STRATA_RUNTIME_ENV_TEMPORARY_REFERENCE_EXPIRATION_S
python3 "$HERE/../../scripts/make_index.py" index
index_port=$(free_port)
(cd index && exec python3 -m http.server --bind 127.0.0.1 "$index_port" >/dev/null 2>&1) &
index_server=$!

# Process groups of jobs a killed head may leave behind; killed on exit.
orphan_groups=()
cleanup() {
  "$S" stop >/dev/null 2>&1
  for group in "${orphan_groups[@]}"; do kill -KILL -- "-$group" 2>/dev/null; done
  kill "$index_server" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
# now_ms: milliseconds since the epoch; elapsed_since MS: seconds since MS.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
elapsed_since() { python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) / 1000, 2))" "$1" "$(now_ms)"; }
# until_ms TIMEOUT_MS CMD...: retries CMD every 0.1 s until it succeeds or the time is up.
until_ms() {
  local deadline=$(($(now_ms) + $1))
  shift
  while ! "$@"; do
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}
index_up() { curl -s -o /dev/null "http://127.0.0.1:$index_port/simple/"; }
until_ms 20000 index_up || fail "index server" "did not start"
export PIP_INDEX_URL=http://127.0.0.1:$index_port/simple/

head_port=$(free_port)
A=http://127.0.0.1:$head_port
export STRATA_ADDRESS=$A
export STRATA_JOB_STOP_GRACE_S=1

# Extra curl arguments of every request (the bearer token once the head has one).
CURL_AUTH=()
# api METHOD PATH [CURL_ARGS...]: sets CODE (HTTP status) and BODY.
api() {
  local method=$1 path=$2
  shift 2
  CODE=$(curl -s -o "$WORK/body" -w '%{http_code}' -X "$method" "${CURL_AUTH[@]}" "$@" "$A$path")
  BODY=$(cat "$WORK/body")
}
# post_json PATH JSON: POST with a JSON body.
post_json() { api POST "$1" -H 'Content-Type: application/json' --data-binary "$2" "${@:3}"; }
# jpy JSON EXPR: the Python expression EXPR over d = the parsed JSON (strings
# printed as is, anything else as JSON); nothing when it cannot be evaluated.
jpy() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
r = eval(sys.argv[2])
print(r if isinstance(r, str) else json.dumps(r, sort_keys=True))' "$1" "$2" 2>/dev/null
}
# job_field ID EXPR: EXPR over the job's JobDetails.
job_field() {
  api GET "/api/jobs/$1"
  [ "$CODE" == 200 ] && jpy "$BODY" "$2"
}
# wait_status ID STATUS [TIMEOUT_MS]: polls until the job has STATUS (default
# timeout 30 s); fails early when it reaches another terminal status.
wait_status() {
  local status deadline=$(($(now_ms) + ${3:-30000}))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    status=$(job_field "$1" 'd["status"]')
    [ "$status" == "$2" ] && return 0
    case "$status" in SUCCEEDED|FAILED|STOPPED) return 1 ;; esac
    sleep 0.1
  done
  return 1
}
# wait_file FILE: waits up to 10 s for FILE to exist and be non-empty.
wait_file() { until_ms 10000 test -s "$1"; }
# group_of PID: the process group of PID.
group_of() { ps -o pgid= -p "$1" 2>/dev/null | tr -d ' '; }
# live_in_group PGID: the processes of the group that are not zombies (a
# zombie is dead; who reaps it depends on the container's init).
live_in_group() { ps -eo pgid=,pid=,stat=,args= | awk -v g="$1" '$1 == g && $3 !~ /^Z/'; }
group_gone() { [ -n "$1" ] && [ -z "$(live_in_group "$1")" ]; }
metric() {
  api GET /metrics
  awk -v name="$1" '$1 == name { print $2 }' <<<"$BODY"
}
start_head() { run "$S" start --head --port "$head_port"; }

# --- start, status, version -------------------------------------------------
start_head
[ "$RC" -eq 0 ] && [[ "$OUT" == *"$A"* ]] && wait_http "$A/api/healthz" \
  && pass "start prints the head's URL" || fail "start" "exit $RC [$OUT] [$ERR]"
run "$S" start --head --port "$head_port"
[ "$RC" -eq 0 ] && [[ "$OUT$ERR" == *"already running"*"$A"* ]] \
  && pass "a second start for the same address reports the running head and exits 0" \
  || fail "second start" "exit $RC [$OUT] [$ERR]"
run "$S" start --head --port "$(free_port)"
[ "$RC" -ne 0 ] && [[ "$OUT$ERR" == *"$A"* ]] \
  && pass "a start for another port reports the running head and exits non-zero" \
  || fail "start for another port" "exit $RC [$OUT] [$ERR]"

api GET /api/version
[ "$CODE" == 200 ] && [ "$(jpy "$BODY" 'd["version"]')" == 4 ] \
  && [ "$(jpy "$BODY" 'sorted(k for k in ["ray_version", "strata_version", "session_name", "ray_commit"] if k in d)')" \
       == '["ray_commit", "ray_version", "session_name", "strata_version"]' ] \
  && [ -n "$(jpy "$BODY" 'd["strata_version"]')" ] \
  && pass "GET /api/version fields" || fail "GET /api/version" "$CODE $BODY"

api GET /api/nodes
node_id=$(jpy "$BODY" 'd["nodes"][0]["node_id"]')
[ "$CODE" == 200 ] && [ "$(jpy "$BODY" '[(n["state"], n["is_head_node"]) for n in d["nodes"]]')" == '[["ALIVE", true]]' ] \
  && pass "GET /api/nodes has one ALIVE head node" || fail "GET /api/nodes" "$CODE $BODY"

# --- a job with a working_dir and a pip dependency, through the CLI ---------
mkdir -p proj
echo 'text from the working dir' > proj/data.txt
cat > proj/main.py <<'EOF'
import json, os
print(open("data.txt").read().strip())
try:
    import demo
    print("demo", demo.VERSION)
except ImportError as e:
    print("import demo failed:", e)
print("MY_VAR", os.environ.get("MY_VAR"))
print("ADDRESS", os.environ.get("STRATA_ADDRESS"))
try:
    c = json.loads(os.environ["STRATA_JOB_CONFIG_JSON"])
    env = c["runtime_env"]
    print("CONFIG", "demo==1.0" in json.dumps(env.get("pip")), env.get("env_vars", {}).get("MY_VAR"),
          env.get("working_dir", "").startswith("gcs://"), c["metadata"].get("owner"))
except Exception as e:
    print("CONFIG missing:", repr(e))
EOF
run "$S" job submit --submission-id e2e-main --working-dir proj --metadata-json '{"owner": "e2e"}' \
  --runtime-env-json '{"pip": ["demo==1.0"], "env_vars": {"MY_VAR": "hello"}}' -- python main.py
main_out=$OUT
[ "$RC" -eq 0 ] && [[ "$OUT" == *"e2e-main"*"succeeded"* ]] \
  && pass "submit follows the logs and exits 0" || fail "submit with working_dir and pip" "exit $RC [$OUT] [$ERR]"
[[ "$main_out" == *"text from the working dir"* ]] && pass "the job reads a file of its working_dir (cwd)" \
  || fail "working_dir" "[$main_out]"
[[ "$main_out" == *"demo 1.0"* ]] && pass "import demo works in the job (pip env)" || fail "pip env" "[$main_out]"
[[ "$main_out" == *"MY_VAR hello"* ]] && pass "env_vars are visible in the job" || fail "env_vars" "[$main_out]"
[[ "$main_out" == *"ADDRESS $A"$'\n'* ]] && pass "STRATA_ADDRESS is the head's URL in the driver" \
  || fail "STRATA_ADDRESS" "[$main_out]"
[[ "$main_out" == *"CONFIG True hello True e2e"* ]] \
  && pass "STRATA_JOB_CONFIG_JSON holds the runtime_env and the metadata" || fail "STRATA_JOB_CONFIG_JSON" "[$main_out]"
[ "$(job_field e2e-main 'd["status"]')" == SUCCEEDED ] && pass "final status SUCCEEDED" \
  || fail "final status" "$CODE $BODY"
driver_log=$STRATA_SESSION_DIR/logs/job-driver-e2e-main.log
[ -f "$driver_log" ] && grep -q "text from the working dir" "$driver_log" && grep -q "demo 1.0" "$driver_log" \
  && pass "driver log at \$STRATA_SESSION_DIR/logs/job-driver-<id>.log" \
  || fail "driver log" "$(ls "$STRATA_SESSION_DIR/logs" 2>&1)"
run "$S" job logs e2e-main
[ "$RC" -eq 0 ] && [ "$OUT" == "$(cat "$driver_log")" ] && pass "strata job logs prints the driver log" \
  || fail "job logs" "exit $RC [$OUT] [$ERR]"
run "$S" job logs --follow e2e-main
[ "$RC" -eq 0 ] && [ "$OUT" == "$(cat "$driver_log")" ] && pass "logs --follow of a finished job prints it and exits" \
  || fail "logs --follow of a finished job" "exit $RC [$OUT] [$ERR]"

# --- failures -----------------------------------------------------------------
run "$S" job submit --submission-id e2e-fail -- sh -c 'echo about to fail; exit 3'
[ "$RC" -eq 1 ] && [[ "$OUT" == *"about to fail"* ]] && pass "a failing entrypoint makes the CLI exit 1" \
  || fail "failing entrypoint exit" "exit $RC [$OUT] [$ERR]"
api GET /api/jobs/e2e-fail
[ "$(jpy "$BODY" '[d["status"], d["error_type"], d["driver_exit_code"], "exit code 3" in d["message"]]')" \
    == '["FAILED", "JOB_ENTRYPOINT_COMMAND_ERROR", 3, true]' ] \
  && pass "exit 3: FAILED, JOB_ENTRYPOINT_COMMAND_ERROR, driver_exit_code 3, message names exit code 3" \
  || fail "failed job details" "$BODY"

run "$S" job submit --submission-id e2e-pipfail --runtime-env-json '{"pip": ["nosuchpkg==3.1"]}' -- python -c pass
api GET /api/jobs/e2e-pipfail
[ "$RC" -eq 1 ] && [ "$(jpy "$BODY" '[d["status"], d["error_type"], "nosuchpkg" in d["message"]]')" \
    == '["FAILED", "RUNTIME_ENV_SETUP_FAILURE", true]' ] \
  && pass "a pip failure: FAILED with RUNTIME_ENV_SETUP_FAILURE naming nosuchpkg" \
  || fail "pip failure" "exit $RC [$OUT] [$ERR] $BODY"

# --- raw HTTP -------------------------------------------------------------------
post_json /api/jobs/ '{"entrypoint": "echo raw", "submission_id": "e2e-raw"}'
[ "$CODE" == 200 ] && [ "$(jpy "$BODY" '[d["submission_id"], d["job_id"]]')" == '["e2e-raw", "e2e-raw"]' ] \
  && pass "POST /api/jobs/ answers the submission id" || fail "POST /api/jobs/" "$CODE $BODY"
api GET /api/jobs/e2e-raw
[ "$CODE" == 200 ] && [ "$(jpy "$BODY" '[d["submission_id"], d["entrypoint"], d["type"]]')" \
    == '["e2e-raw", "echo raw", "SUBMISSION"]' ] \
  && pass "GET /api/jobs/<id> is the job's JobDetails" || fail "GET /api/jobs/<id>" "$CODE $BODY"
api GET /api/jobs/
[ "$CODE" == 200 ] && [ "$(jpy "$BODY" 'isinstance(d, list) and "e2e-raw" in [j["submission_id"] for j in d]')" == true ] \
  && pass "GET /api/jobs/ is an array of jobs" || fail "GET /api/jobs/" "$CODE $BODY"
post_json /api/jobs '{"entrypoint": "echo no slash", "submission_id": "e2e-noslash"}'
[ "$CODE" == 200 ] && [ "$(jpy "$BODY" 'd["submission_id"]')" == e2e-noslash ] \
  && pass "POST /api/jobs without the trailing slash works" || fail "POST /api/jobs" "$CODE $BODY"

# 50 clients at once, as the benchmark does: every POST must be answered.
run python3 -c '
import collections, concurrent.futures, http.client, json, sys
def post(i):
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
        c.request("POST", "/api/jobs/", json.dumps({"entrypoint": "true", "submission_id": "e2e-many-%d" % i}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        return str(r.status)
    except Exception as e:
        return type(e).__name__
with concurrent.futures.ThreadPoolExecutor(50) as pool:
    print(dict(collections.Counter(pool.map(post, range(50)))))' "$head_port"
[ "$OUT" == "{'200': 50}" ] && pass "50 concurrent POST /api/jobs/ are all accepted" \
  || fail "50 concurrent submissions" "answers: $OUT $ERR"
post_json /api/jobs/ '{"entrypoint": "true", "runtime_env": {"pip": 1}}'
[ "$CODE" == 400 ] && [[ "$BODY" == *pip* ]] && pass "an invalid runtime_env is HTTP 400 with a message" \
  || fail "invalid runtime_env" "$CODE $BODY"
post_json /api/jobs/ '{"entrypoint": "true", "no_such_field": 1}'
[ "$CODE" == 400 ] && [[ "$BODY" == *no_such_field* ]] && pass "an unknown field is HTTP 400" \
  || fail "unknown field" "$CODE $BODY"
post_json /api/jobs/ "{\"entrypoint\": \"true\", \"runtime_env\": {\"working_dir\": \"$WORK/proj\"}}"
[ "$CODE" == 400 ] && [ -n "$BODY" ] && pass "a local working_dir path is HTTP 400" || fail "local path" "$CODE $BODY"
post_json /api/jobs/ '{"entrypoint": "echo other", "submission_id": "e2e-raw"}'
dup_code=$CODE dup_body=$BODY
wait_status e2e-raw SUCCEEDED
[ "$dup_code" == 400 ] && [ -n "$dup_body" ] && [ "$(job_field e2e-raw '[d["entrypoint"], d["status"]]')" == '["echo raw", "SUCCEEDED"]' ] \
  && [ "$(api GET /api/jobs/e2e-raw/logs; jpy "$BODY" 'd["logs"]')" == raw ] \
  && pass "a duplicate submission_id is HTTP 400 and the first job is untouched" \
  || fail "duplicate submission_id" "$dup_code $dup_body; $(job_field e2e-raw 'd')"

post_json /api/jobs/ '{"entrypoint": "true", "submission_id": "e2e-evil"}' -H 'Origin: http://evil.example'
evil_origin=$CODE
post_json /api/jobs/ '{"entrypoint": "true", "submission_id": "e2e-evil"}' -H 'Sec-Fetch-Site: cross-site'
evil_fetch=$CODE
api GET /api/jobs/e2e-evil
[ "$evil_origin" == 403 ] && [ "$evil_fetch" == 403 ] && [ "$CODE" == 404 ] \
  && pass "cross-site POSTs (Origin of another site, Sec-Fetch-Site: cross-site) are 403 and create nothing" \
  || fail "cross-site" "Origin $evil_origin, Sec-Fetch-Site $evil_fetch, GET $CODE"

# --- stop -----------------------------------------------------------------------
run "$S" job submit --no-wait --submission-id e2e-stop -- sh -c "echo \$\$ > $WORK/stop.pid; exec sleep 300"
wait_status e2e-stop RUNNING && wait_file "$WORK/stop.pid"
stop_pid=$(cat "$WORK/stop.pid" 2>/dev/null)
stop_group=$(group_of "$stop_pid")
run "$S" status
[ "$RC" -eq 0 ] && [[ "$OUT" == *"$node_id"*ALIVE* ]] && [[ "$OUT" == *"Jobs:"* ]] && [[ "$OUT" == *"e2e-stop"*RUNNING* ]] \
  && pass "strata status shows the node, the jobs and the running job" || fail "strata status" "exit $RC [$OUT] [$ERR]"
started=$(now_ms)
run "$S" job stop e2e-stop
elapsed=$(elapsed_since "$started")
[ "$RC" -eq 0 ] && [ "$(job_field e2e-stop 'd["status"]')" == STOPPED ] \
  && python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 3)" "$elapsed" \
  && pass "stopping a sleep job makes it STOPPED quickly ($elapsed s)" \
  || fail "stop" "exit $RC after $elapsed s [$OUT] [$ERR] $(job_field e2e-stop 'd')"
group_gone "$stop_group" && pass "the stopped job's processes are gone (sleep included)" \
  || fail "stopped job's processes" "pid [$stop_pid] group [$stop_group]: $(live_in_group "${stop_group:-0}")"
# What `curl -X POST URL` sends: no body and no Content-Length (RFC 9112: a
# request without either has an empty body).
rm -f "$WORK/body"
CODE=$(curl -s -o "$WORK/body" -w '%{http_code}' --max-time 3 -X POST "${CURL_AUTH[@]}" "$A/api/jobs/e2e-stop/stop")
BODY=$(cat "$WORK/body" 2>/dev/null)
[ "$CODE" == 000 ] && BODY="no answer within 3 s"
[ "$CODE" == 200 ] && [ "$(jpy "$BODY" 'd["stopped"]')" == false ] \
  && pass "POST /api/jobs/<id>/stop without a body (curl -X POST) answers {\"stopped\": false} for a stopped job" \
  || fail "bodyless POST .../stop" "HTTP $CODE [$BODY]"

# The entrypoint itself (the job's /bin/sh) ignores SIGTERM, and so does its sleep.
post_json /api/jobs/ "$(python3 -c 'import json, sys; print(json.dumps({"submission_id": "e2e-stubborn",
  "entrypoint": "trap \"\" TERM; echo $$ > %s/stubborn.pid; sleep 300" % sys.argv[1]}))' "$WORK")"
wait_status e2e-stubborn RUNNING && wait_file "$WORK/stubborn.pid"
stubborn_pid=$(cat "$WORK/stubborn.pid" 2>/dev/null)
stubborn_group=$(group_of "$stubborn_pid")
started=$(now_ms)
api POST /api/jobs/e2e-stubborn/stop -H 'Content-Length: 0'
stop_code=$CODE stop_body=$BODY
wait_status e2e-stubborn STOPPED 10000
elapsed=$(elapsed_since "$started")
[ "$stop_code" == 200 ] && [ "$(jpy "$stop_body" 'd["stopped"]')" == true ] \
  && [ "$(job_field e2e-stubborn 'd["status"]')" == STOPPED ] && group_gone "$stubborn_group" \
  && python3 -c "import sys; sys.exit(not 0.9 <= float(sys.argv[1]) < 5)" "$elapsed" \
  && pass "a job ignoring SIGTERM is killed after STRATA_JOB_STOP_GRACE_S=1 ($elapsed s)" \
  || fail "SIGTERM-ignoring job" "after $elapsed s: stop $stop_code [$stop_body] $(job_field e2e-stubborn 'd["status"]'), left: $(live_in_group "${stubborn_group:-0}")"

# A driver that handles SIGTERM (cleans up for 0.5 s) under the job's shell:
# the shell dies at once, the driver must still get the grace period.
cat > "$WORK/graceful.py" <<EOF
import signal, sys, time
def on_term(*_):
    time.sleep(0.5)
    open("$WORK/graceful.done", "w").write("cleaned up")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open("$WORK/graceful.ready", "w").write("ready")
time.sleep(300)
EOF
run "$S" job submit --no-wait --submission-id e2e-graceful -- python3 "$WORK/graceful.py"
wait_status e2e-graceful RUNNING && wait_file "$WORK/graceful.ready"
run "$S" job stop e2e-graceful
[ "$(job_field e2e-graceful 'd["status"]')" == STOPPED ] && [ -s "$WORK/graceful.done" ] \
  && pass "a driver handling SIGTERM under the job's shell gets the stop grace period to clean up" \
  || fail "SIGTERM handler of the driver" "status $(job_field e2e-graceful 'd["status"]'), cleanup done: $([ -s "$WORK/graceful.done" ] && echo yes || echo no) (killed before its 0.5 s cleanup with STRATA_JOB_STOP_GRACE_S=1)"

# --- streaming logs, delete -----------------------------------------------------
run "$S" job submit --no-wait --submission-id e2e-tail -- \
  sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i"; sleep 0.3; done'
curl -sN "${CURL_AUTH[@]}" "$A/api/jobs/e2e-tail/logs/tail" > tail.out &
tail_curl=$!
"$S" job logs --follow e2e-tail > follow.out 2>&1 &
follower=$!
first_line_status=
until_ms 5000 test -s tail.out && first_line_status=$(job_field e2e-tail 'd["status"]')
api DELETE /api/jobs/e2e-tail
delete_running_code=$CODE delete_running_body=$BODY
[ "$first_line_status" == RUNNING ] && pass "curl -N on logs/tail gets the first line while the job still runs" \
  || fail "streaming tail" "job status at the first line: [$first_line_status], [$(cat tail.out)]"
[ "$delete_running_code" == 400 ] && [ -n "$delete_running_body" ] && pass "deleting a running job is HTTP 400" \
  || fail "delete a running job" "$delete_running_code $delete_running_body"
wait_status e2e-tail SUCCEEDED 10000
expected_lines=$(printf 'line %s\n' 1 2 3 4 5 6 7 8 9 10)
exited() { ! kill -0 "$1" 2>/dev/null; }
until_ms 3000 exited "$tail_curl"
if kill -0 "$tail_curl" 2>/dev/null; then
  fail "the tail stream ends when the job finishes" "curl still reading"
  kill "$tail_curl"
else
  [ "$(cat tail.out)" == "$expected_lines" ] && pass "the tail stream has every line and ends when the job finishes" \
    || fail "tail stream content" "[$(cat tail.out)]"
fi
until_ms 3000 exited "$follower"
if kill -0 "$follower" 2>/dev/null; then
  fail "strata job logs --follow" "still running after the job finished"
  kill "$follower"
else
  wait "$follower"
  follow_rc=$?
  [ "$follow_rc" -eq 0 ] && [ "$(cat follow.out)" == "$expected_lines" ] \
    && pass "strata job logs --follow streams a running job and exits when it ends" \
    || fail "logs --follow" "exit $follow_rc [$(cat follow.out)]"
fi
api DELETE /api/jobs/e2e-tail
delete_code=$CODE delete_body=$BODY
api GET /api/jobs/e2e-tail
[ "$delete_code" == 200 ] && [ "$(jpy "$delete_body" 'd')" == '{"deleted": true}' ] && [ "$CODE" == 404 ] \
  && pass "deleting a finished job answers {\"deleted\": true}, then GET is 404" \
  || fail "delete a finished job" "$delete_code $delete_body, then GET $CODE"

# --- packages -------------------------------------------------------------------
# incremental upload: 30 files, 10 of them 300 KB; one edit → one file sent.
mkdir -p big
for i in $(seq 1 30); do
  if [ "$i" -le 10 ]; then head -c 300000 /dev/urandom > "big/blob$i.bin"; else echo "small file $i $RANDOM$RANDOM" > "big/f$i.txt"; fi
done
blobs0=$(metric strata_package_blobs_uploaded_total)
run "$S" job submit --no-wait --submission-id e2e-up1 --working-dir big -- true
blobs1=$(metric strata_package_blobs_uploaded_total)
echo "edited $RANDOM" >> big/f20.txt
run "$S" job submit --no-wait --submission-id e2e-up2 --working-dir big -- true
blobs2=$(metric strata_package_blobs_uploaded_total)
wd1=$(job_field e2e-up1 'd["runtime_env"]["working_dir"]')
wd2=$(job_field e2e-up2 'd["runtime_env"]["working_dir"]')
[ -n "$blobs0" ] && [ $((blobs1 - blobs0)) -eq 30 ] && [ $((blobs2 - blobs1)) -eq 1 ] && [ -n "$wd2" ] && [ "$wd1" != "$wd2" ] \
  && pass "an edited 30-file working_dir re-uploads exactly 1 file (first upload: $((blobs1 - blobs0)))" \
  || fail "incremental upload" "blobs_uploaded_total $blobs0 → $blobs1 → $blobs2, uris [$wd1] [$wd2], [$OUT] [$ERR]"
wait_status e2e-up2 SUCCEEDED && pass "the job of the re-uploaded working_dir succeeds" \
  || fail "re-uploaded job" "$(job_field e2e-up2 'd')"

python3 -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("hello.txt", "hello\n")' pkg.zip
api PUT /api/packages/gcs/_strata_pkg_test.zip --data-binary @pkg.zip -H 'Content-Type: application/zip'
put_code=$CODE
api GET /api/packages/gcs/_strata_pkg_test.zip
[ "$put_code" == 200 ] && [ "$CODE" == 200 ] && pass "PUT a zip to /api/packages/gcs/<name>, then GET is 200" \
  || fail "package PUT/GET" "PUT $put_code, GET $CODE $BODY"
api GET /api/packages/gcs/_strata_pkg_nosuch.zip
[ "$CODE" == 404 ] && pass "GET of an unknown package is 404" || fail "unknown package" "$CODE $BODY"

# --- cluster views --------------------------------------------------------------
wait_status e2e-up1 SUCCEEDED
api GET /api/jobs/
jobs_body=$BODY
api GET /metrics
[ "$CODE" == 200 ] \
  && python3 -c '
import collections, json, re, sys
text, jobs = sys.argv[1], json.loads(sys.argv[2])
listed = collections.Counter(j["status"] for j in jobs)
found = {s: float(m.group(1)) for s in ("PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED")
         for m in [re.search(r"^strata_jobs\{status=\"%s\"\} (\S+)$" % s, text, re.M)] if m}
sys.exit(not (len(found) == 5 and listed["SUCCEEDED"] > 0 and listed["FAILED"] > 0
              and all(found[s] == listed[s] for s in found)))' "$BODY" "$jobs_body" \
  && pass "GET /metrics has strata_jobs{status=...} for every status, matching the job list" \
  || fail "metrics" "$CODE $(grep strata_jobs <<<"$BODY")"
api GET /api/runtime_envs
[ "$CODE" == 200 ] && [ "$(jpy "$BODY" '[d["result"], isinstance(d["data"]["result"]["result"], list), len(d["data"]["result"]["result"]) > 0, all("runtime_env" in r and "success" in r for r in d["data"]["result"]["result"])]')" \
    == '[true, true, true, true]' ] \
  && pass "GET /api/runtime_envs is the state-API envelope with result rows" || fail "runtime_envs" "$CODE $BODY"

# --- restart persistence --------------------------------------------------------
run "$S" job submit --submission-id e2e-persist -- echo persisted-output
"$S" stop >/dev/null 2>&1
api GET /api/version
[ "$CODE" == 000 ] && [ ! -e "$STRATA_SESSION_DIR/head.json" ] && pass "strata stop stops the head" \
  || fail "strata stop" "head still answers: $CODE"

run env -u STRATA_AUTH_TOKEN "$S" start --head --host 0.0.0.0 --port "$head_port"
[ "$RC" -eq 2 ] && [[ "$ERR" == *STRATA_AUTH_TOKEN* ]] && [ ! -e "$STRATA_SESSION_DIR/head.json" ] \
  && pass "start --host 0.0.0.0 without a token refuses (exit 2, names STRATA_AUTH_TOKEN)" \
  || { fail "non-loopback host without a token" "exit $RC [$OUT] [$ERR]"; "$S" stop >/dev/null 2>&1; }

start_head
[ "$RC" -eq 0 ] && [ "$(job_field e2e-persist 'd["status"]')" == SUCCEEDED ] \
  && [ "$(api GET /api/jobs/e2e-persist/logs; jpy "$BODY" 'd["logs"]')" == persisted-output ] \
  && [ "$(job_field e2e-fail '[d["status"], d["driver_exit_code"]]')" == '["FAILED", 3]' ] \
  && pass "after stop and start, jobs are still listed with their status and logs" \
  || fail "restart persistence" "start exit $RC [$ERR]; $(job_field e2e-persist 'd')"

# A job running when the head is killed with SIGKILL.
run "$S" job submit --no-wait --submission-id e2e-orphan -- sh -c "echo \$\$ > $WORK/orphan.pid; exec sleep 300"
wait_status e2e-orphan RUNNING && wait_file "$WORK/orphan.pid"
orphan_pid=$(cat "$WORK/orphan.pid" 2>/dev/null)
orphan_group=$(group_of "$orphan_pid")
[ -n "$orphan_group" ] && orphan_groups+=("$orphan_group")
head_pid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$STRATA_SESSION_DIR/head.json")
kill -9 "$head_pid"
until_ms 5000 exited "$head_pid"

# --- auth: the head restarted with a token --------------------------------------
export STRATA_AUTH_TOKEN=secret
start_head
[ "$RC" -eq 0 ] || fail "start after kill -9" "exit $RC [$OUT] [$ERR]"
api GET /api/version
[ "$CODE" == 401 ] && pass "with STRATA_AUTH_TOKEN, a request without the token is 401" || fail "auth 401" "$CODE $BODY"
CURL_AUTH=(-H "Authorization: Bearer secret")
api GET /api/version
[ "$CODE" == 200 ] && pass "with 'Authorization: Bearer secret' it is 200" || fail "auth 200" "$CODE $BODY"
CURL_AUTH=(-H "Authorization: Bearer wrong")
api GET /api/version
CURL_AUTH=(-H "Authorization: Bearer secret")
[ "$CODE" == 401 ] && pass "a wrong token is 401" || fail "wrong token" "$CODE"
run "$S" job submit --submission-id e2e-auth -- echo authorized
[ "$RC" -eq 0 ] && [[ "$OUT" == *authorized* ]] && pass "the CLI sends STRATA_AUTH_TOKEN" \
  || fail "CLI with the token" "exit $RC [$OUT] [$ERR]"
run env -u STRATA_AUTH_TOKEN "$S" job list
[ "$RC" -ne 0 ] && [[ "$ERR" == *STRATA_AUTH_TOKEN* ]] && pass "the CLI without the token is refused and told why" \
  || fail "CLI without the token" "exit $RC [$OUT] [$ERR]"

api GET /api/jobs/e2e-orphan
[ "$(jpy "$BODY" 'd["status"]')" == FAILED ] && [[ "$(jpy "$BODY" 'd["message"]')" == *"head stopped"* ]] \
  && pass "a job running when the head was killed is FAILED after restart, saying the head stopped" \
  || fail "job of a killed head" "$CODE $BODY"
# Zombies count as gone: the container's init may reap them late.
orphan_state=$(awk '{print $3}' "/proc/$orphan_pid/stat" 2>/dev/null)
[ -n "$orphan_pid" ] && { [ -z "$orphan_state" ] || [ "$orphan_state" == Z ]; } \
  && pass "the restarted head kills the driver the killed head left behind" \
  || fail "orphaned driver" "pid $orphan_pid still running (state $orphan_state)"

# --- package GC -----------------------------------------------------------------
"$S" stop >/dev/null 2>&1
unset STRATA_AUTH_TOKEN
CURL_AUTH=()
STRATA_RUNTIME_ENV_TEMPORARY_REFERENCE_EXPIRATION_S=0 STRATA_PACKAGE_GC_INTERVAL_S=1 start_head
[ "$RC" -eq 0 ] || fail "start with GC settings" "exit $RC [$OUT] [$ERR]"
mkdir -p gcwd && echo 'kept while the job runs' > gcwd/keep.txt
run "$S" job submit --no-wait --submission-id e2e-gcjob --working-dir gcwd -- sh -c "echo \$\$ > $WORK/gc.pid; exec sleep 300"
wait_status e2e-gcjob RUNNING
gc_job_pkg=$(job_field e2e-gcjob 'd["runtime_env"]["working_dir"]')
gc_job_pkg=${gc_job_pkg#gcs://}
python3 -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("gc.txt", "collect me\n")' gc.zip
api PUT /api/packages/gcs/_strata_pkg_gc.zip --data-binary @gc.zip
put_code=$CODE
started=$(now_ms)
package_gone() { api GET "/api/packages/gcs/$1"; [ "$CODE" == 404 ]; }
gone=
until_ms 6000 package_gone _strata_pkg_gc.zip && gone=yes
elapsed=$(elapsed_since "$started")
[ "$put_code" == 200 ] && [ "$gone" == yes ] && pass "an unpinned uploaded package is garbage-collected ($elapsed s)" \
  || fail "package GC" "PUT $put_code, still there after $elapsed s ($CODE)"
api GET "/api/packages/gcs/$gc_job_pkg"
[ -n "$gc_job_pkg" ] && [ "$CODE" == 200 ] && [ "$(job_field e2e-gcjob 'd["status"]')" == RUNNING ] \
  && pass "the package of a RUNNING job survives GC" || fail "package of a running job" "[$gc_job_pkg] $CODE $BODY"
"$S" job stop e2e-gcjob >/dev/null 2>&1
gone=
until_ms 6000 package_gone "$gc_job_pkg" && gone=yes
[ "$gone" == yes ] && pass "once the job stopped, its package is collected" || fail "package after its job" "$CODE"
