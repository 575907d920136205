#!/usr/bin/env bash
# The Python SDK (`import strata`): tasks and actors, each in its own runtime
# env, run by workers the node agent leases out (src/agent/worker_pool.h),
# against a real head and agent started with `strata start`, pip packages
# from a local PEP 503 index, and driver programs run with
# PYTHONPATH=<build>/python.
source "$(dirname "$0")/lib.sh"
S=$STRATA_BIN
SDK=$(cd "$(dirname "$S")" && pwd)/python
cd "$WORK"

export STRATA_HOME=$WORK/home STRATA_SESSION_DIR=$WORK/session
# A clean pip that sees only our index.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_CERT STRATA_AUTH_TOKEN STRATA_ADDRESS STRATA_JOB_ID \
  STRATA_JOB_CONFIG_JSON STRATA_OVERRIDE_JOB_RUNTIME_ENV PYTHONPATH
python3 "$HERE/../../scripts/make_index.py" index
index_port=$(free_port)
(cd index && exec python3 -m http.server --bind 127.0.0.1 "$index_port" >/dev/null 2>&1) &
index_server=$!

cleanup() {
  "$S" stop >/dev/null 2>&1
  STRATA_HOME=$WORK/home2 STRATA_SESSION_DIR=$WORK/session2 "$S" stop >/dev/null 2>&1
  kill "$index_server" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_http "http://127.0.0.1:$index_port/simple/" || fail "index server" "did not start"
# Exported before the head starts, so that the agent daemon's pip sees it.
export PIP_INDEX_URL=http://127.0.0.1:$index_port/simple/
head_port=$(free_port)
if ! "$S" start --head --port "$head_port" >"$WORK/start.out" 2>&1; then
  fail "start" "$(cat "$WORK/start.out")"
  exit 1
fi
HEAD=http://127.0.0.1:$head_port

# check NAME EXPECTED_STDOUT [ENV=VALUE...] < PROGRAM: runs PROGRAM as a driver
# (from $WORK, with the SDK on PYTHONPATH) and compares its stdout.
check() {
  local name=$1 expected=$2
  shift 2
  cat >"$WORK/$name.py"
  run env PYTHONPATH="$SDK" "$@" timeout 180 python3 "$WORK/$name.py"
  expect_ok "$name" "$expected"
}

# --- the flagship: conflicting dependencies in one program -----------------
check flagship_task_and_actor_versions "driver cannot import demo
task sees demo 1.0
actor sees demo 2.0 (dep 1.0)
driver still cannot import demo" <<'EOF'
import strata

def driver_demo():
    try:
        import demo  # noqa: F401
        return "driver imports demo " + demo.VERSION
    except ImportError:
        return "cannot import demo"

strata.init()

@strata.remote(runtime_env={"pip": ["demo==1.0"]})
def task_version():
    import demo
    print("hello from a task, demo", demo.VERSION)
    return demo.VERSION

@strata.remote(runtime_env={"pip": ["demo==2.0"]})
class Versioned:
    def version(self):
        import dep
        import demo
        return f"{demo.VERSION} (dep {dep.VERSION})"

print("driver", driver_demo())
actor = Versioned.remote()
ref = task_version.remote()
print("task sees demo", strata.get(ref))
print("actor sees demo", strata.get(actor.version.remote()))
print("driver still", driver_demo())
EOF

if grep -q "hello from a task, demo 1.0" "$WORK"/session/logs/worker-*.log 2>/dev/null; then
  pass "task_output_in_worker_log"
else
  fail "task_output_in_worker_log" "no worker log under $WORK/session/logs holds the task's print"
fi

# --- .options() replaces the decorator's env --------------------------------
check options_replace_decorator_env "decorator: who=decorator extra=1
options: who=options extra=None
decorator again: who=decorator extra=1
RuntimeEnv object: who=object extra=None" <<'EOF'
import os
import strata

@strata.remote(runtime_env={"env_vars": {"WHO": "decorator", "EXTRA": "1"}})
def who():
    return f"who={os.environ.get('WHO')} extra={os.environ.get('EXTRA')}"

strata.init()
print("decorator:", strata.get(who.remote()))
print("options:", strata.get(who.options(runtime_env={"env_vars": {"WHO": "options"}}).remote()))
print("decorator again:", strata.get(who.remote()))
print("RuntimeEnv object:", strata.get(who.options(runtime_env=strata.RuntimeEnv(env_vars={"WHO": "object"})).remote()))
EOF

# --- nested tasks inherit the running task's env ------------------------------
check nested_task_inherits_env_vars "parent: JOB=job PARENT=parent CHILD=None
child: JOB=job PARENT=parent CHILD=child
plain child env equals the parent's: True
chained: 42" <<'EOF'
import os
import strata

def show():
    return " ".join(f"{k}={os.environ.get(k)}" for k in ("JOB", "PARENT", "CHILD"))

@strata.remote
def child():
    return show()

@strata.remote
def plain_child():
    return strata.get_runtime_context().runtime_env

@strata.remote(runtime_env={"env_vars": {"PARENT": "parent"}})
def parent():
    mine = strata.get_runtime_context().runtime_env
    nested = child.options(runtime_env={"env_vars": {"CHILD": "child"}}).remote()
    return show(), strata.get(nested), strata.get(plain_child.remote()) == mine

@strata.remote
def add(a, b):
    return a + b

strata.init(runtime_env={"env_vars": {"JOB": "job"}})
mine, childs, same = strata.get(parent.remote())
print("parent:", mine)
print("child:", childs)
print("plain child env equals the parent's:", same)
print("chained:", strata.get(add.remote(add.remote(10, 20), b=add.remote(5, 7))))
EOF

# --- working_dir and py_modules uploaded at init ------------------------------
mkdir -p wd mods/mypkg
echo "data from the working dir" >wd/data.txt
echo 'GREETING = "hello from helper_mod"' >wd/helper_mod.py
echo 'VALUE = "mypkg value"' >mods/mypkg/__init__.py
check working_dir_and_py_modules "data from the working dir
hello from helper_mod
mypkg value
task-level local path: ValueError" <<'EOF'
import strata

strata.init(runtime_env={"working_dir": "wd", "py_modules": ["mods/mypkg"]})

@strata.remote
def read():
    import helper_mod
    import mypkg
    with open("data.txt") as f:
        return f.read().strip(), helper_mod.GREETING, mypkg.VALUE

for line in strata.get(read.remote()):
    print(line)
try:
    @strata.remote(runtime_env={"working_dir": "wd"})
    def bad():
        pass
    print("task-level local path: accepted")
except ValueError:
    print("task-level local path: ValueError")
EOF

# --- the setup hook runs once in each worker, before its first task ----------
cat >wd/hookmod.py <<'EOF'
import os

def setup():
    os.environ["STRING_HOOK_RUNS"] = str(int(os.environ.get("STRING_HOOK_RUNS", "0")) + 1)
EOF
check setup_hook_runs_once_per_worker "callable hook: runs per worker ['1'] 2 workers
string hook at task level: runs per worker ['1'] 2 workers
after the leases went back and were taken again: ['1'] ['1'] same workers True" STRATA_MAX_WORKERS_PER_ENV=2 <<'EOF'
import os
import time
import strata

def setup():
    os.environ["CALLABLE_HOOK_RUNS"] = str(int(os.environ.get("CALLABLE_HOOK_RUNS", "0")) + 1)

strata.init(runtime_env={"working_dir": "wd", "worker_process_setup_hook": setup})

@strata.remote
def callable_count():
    time.sleep(0.1)
    return os.getpid(), os.environ.get("CALLABLE_HOOK_RUNS")

@strata.remote(runtime_env={"worker_process_setup_hook": "hookmod.setup"})
def string_count():
    time.sleep(0.1)
    return os.getpid(), os.environ.get("STRING_HOOK_RUNS")

def runs(results):
    return sorted({runs for _, runs in results}, key=str)

a = strata.get([callable_count.remote() for _ in range(8)])
b = strata.get([string_count.remote() for _ in range(8)])
print("callable hook: runs per worker", runs(a), f"{len({pid for pid, _ in a})} workers")
print("string hook at task level: runs per worker", runs(b), f"{len({pid for pid, _ in b})} workers")
time.sleep(3)  # the driver gives idle workers back to the agent, which leases them out again
a2 = strata.get([callable_count.remote() for _ in range(4)])
b2 = strata.get([string_count.remote() for _ in range(4)])
same = {pid for pid, _ in a2 + b2} <= {pid for pid, _ in a + b}
print("after the leases went back and were taken again:", runs(a2), runs(b2), f"same workers {same}")
EOF

# --- an env that cannot be built fails its tasks, not the others -------------
check setup_failure_surfaces "RuntimeEnvSetupError naming the package: True
the other task: fine
actor call: RuntimeEnvSetupError" <<'EOF'
import strata
from strata.exceptions import RuntimeEnvSetupError

strata.init()

@strata.remote(runtime_env={"pip": ["no-such-package-strata==9.9"]})
def broken():
    return "should not run"

@strata.remote(runtime_env={"pip": ["no-such-package-strata==9.9"]})
class Broken:
    def ping(self):
        return "pong"

@strata.remote
def fine():
    return "fine"

bad = broken.remote()
good = fine.remote()
try:
    strata.get(bad)
    print("broken ran")
except RuntimeEnvSetupError as e:
    print("RuntimeEnvSetupError naming the package:", "no-such-package-strata" in str(e))
print("the other task:", strata.get(good))
try:
    strata.get(Broken.remote().ping.remote())
    print("actor call: ran")
except RuntimeEnvSetupError:
    print("actor call: RuntimeEnvSetupError")
EOF

check eager_install_fails_at_init "init: RuntimeEnvSetupError True
lazy: init ok, task RuntimeEnvSetupError" <<'EOF'
import strata
from strata.exceptions import RuntimeEnvSetupError

env = {"pip": ["no-such-package-strata==9.9"]}
try:
    strata.init(runtime_env=env)
    print("init: ok")
except RuntimeEnvSetupError as e:
    print("init: RuntimeEnvSetupError", "no-such-package-strata" in str(e))
strata.init(runtime_env=dict(env, config={"eager_install": False}))

@strata.remote
def f():
    return 1

try:
    strata.get(f.remote())
    print("lazy: task ran")
except RuntimeEnvSetupError:
    print("lazy: init ok, task RuntimeEnvSetupError")
EOF

# --- actors ---------------------------------------------------------------------
check actor_state_and_kill "1 2 3
total 3, same worker True
after kill: ActorDiedError
constructor error: ActorDiedError ValueError('bad start')" <<'EOF'
import os
import strata
from strata.exceptions import ActorDiedError

@strata.remote
class Counter:
    def __init__(self, start):
        self.n = start
        self.pids = set()

    def incr(self):
        self.n += 1
        self.pids.add(os.getpid())
        return self.n

    def total(self):
        return self.n, len(self.pids) == 1

@strata.remote
class Fails:
    def __init__(self):
        raise ValueError("bad start")

    def ping(self):
        return "pong"

strata.init()
c = Counter.remote(0)
print(*strata.get([c.incr.remote() for _ in range(3)]))
n, same = strata.get(c.total.remote())
print(f"total {n}, same worker {same}")
strata.kill(c)
try:
    strata.get(c.incr.remote())
    print("after kill: ran")
except ActorDiedError:
    print("after kill: ActorDiedError")
try:
    strata.get(Fails.remote().ping.remote())
except ActorDiedError as e:
    print("constructor error: ActorDiedError", repr(e.__cause__.cause) if e.__cause__ else str(e))
EOF

# --- a worker that dies mid-task ----------------------------------------------
check worker_crash "crash: WorkerCrashedError
next task: ok, fresh worker True
idle worker killed: next task ok True" STRATA_MAX_WORKERS_PER_ENV=1 <<'EOF'
import os
import time
import strata
from strata.exceptions import WorkerCrashedError

@strata.remote
def pid():
    return os.getpid()

@strata.remote
def die():
    os._exit(3)

strata.init()
before = strata.get(pid.remote())
try:
    strata.get(die.remote())
    print("crash: returned")
except WorkerCrashedError:
    print("crash: WorkerCrashedError")
pids = set(strata.get([pid.remote() for _ in range(4)]))
print("next task: ok, fresh worker", before not in pids)
# A worker that dies while idle (between two tasks) costs no task.
victim = strata.get(pid.remote())
os.kill(victim, 9)
time.sleep(0.3)
print("idle worker killed: next task ok", strata.get(pid.remote()) != victim)
EOF

# --- a task's exception, re-raised at get ----------------------------------------
check task_exception_reraised "caught as ValueError: True
is a TaskError: True
message and remote traceback: True True True
custom class: MyError code=7" <<'EOF'
import strata
from strata.exceptions import TaskError

class MyError(Exception):
    def __init__(self, code):
        super().__init__(f"code={code}")
        self.code = code

def inner():
    raise ValueError("boom from the task")

@strata.remote
def fails():
    inner()

@strata.remote
def custom():
    raise MyError(7)

strata.init()
try:
    strata.get(fails.remote())
except ValueError as e:
    print("caught as ValueError:", True)
    print("is a TaskError:", isinstance(e, TaskError))
    text = str(e)
    print("message and remote traceback:", "boom from the task" in text, "Traceback" in text,
          "in inner" in text)
try:
    strata.get(custom.remote())
except MyError as e:
    print("custom class:", type(e.cause).__name__, f"code={e.code}")
EOF

# --- large values -------------------------------------------------------------------
check large_result_8mib "result: 8388608 bytes, digest ok True
argument: 8388608 bytes echoed True" <<'EOF'
import hashlib
import strata

@strata.remote
def make(n):
    return bytes(range(256)) * (n // 256)

@strata.remote
def echo(data):
    return len(data), hashlib.sha256(data).hexdigest()

strata.init()
n = 8 * 1024 * 1024
data = strata.get(make.remote(n))
print(f"result: {len(data)} bytes, digest ok", data == bytes(range(256)) * (n // 256))
size, digest = strata.get(echo.remote(data))
print(f"argument: {size} bytes echoed", digest == hashlib.sha256(data).hexdigest())
EOF

# --- get timeout and wait -------------------------------------------------------------
check get_timeout_and_wait "get: GetTimeoutError after <1.5 s True
wait: ready ['fast1', 'fast2'] not ready ['slow']
wait with nothing ready: 0 ready 1 not ready" <<'EOF'
import time
import strata
from strata.exceptions import GetTimeoutError

@strata.remote
def sleepy(seconds, name):
    time.sleep(seconds)
    return name

strata.init()
strata.get(sleepy.remote(0, "warm"))
slow = sleepy.remote(4, "slow")
start = time.monotonic()
try:
    strata.get(slow, timeout=0.3)
    print("get: returned")
except GetTimeoutError:
    print("get: GetTimeoutError after <1.5 s", time.monotonic() - start < 1.5)
refs = [slow, sleepy.remote(0.05, "fast1"), sleepy.remote(0.1, "fast2")]
ready, not_ready = strata.wait(refs, num_returns=2, timeout=3.5)
print("wait: ready", strata.get(ready), "not ready", [("slow" if r is slow else "?") for r in not_ready])
ready, not_ready = strata.wait([sleepy.remote(3, "x")], timeout=0.1)
print(f"wait with nothing ready: {len(ready)} ready {len(not_ready)} not ready")
EOF

# --- runtime context ---------------------------------------------------------------------
check runtime_context "same job: True
worker id is the worker's: True
node id: True
env: {'env_vars': {'K': 'v'}}" <<'EOF'
import os
import strata

@strata.remote(runtime_env={"env_vars": {"K": "v"}})
def ctx():
    c = strata.get_runtime_context()
    return c.get_job_id(), c.get_worker_id() == os.environ["STRATA_WORKER_ID"], c.get_node_id(), c.runtime_env

strata.init()
job, worker_ok, node, env = strata.get(ctx.remote())
print("same job:", job == strata.get_runtime_context().get_job_id())
print("worker id is the worker's:", worker_ok)
print("node id:", node == strata.get_runtime_context().get_node_id() and bool(node))
print("env:", env)
EOF

# --- the forms of init()'s address ------------------------------------------------
check init_address_forms "auto: 1
url: 2
STRATA_ADDRESS with an unknown cluster_env: ValueError cluster_env 'base:7': cluster environment 'base' does not exist" <<EOF
import os
import strata

@strata.remote
def one(n):
    return n

strata.init("auto")
print("auto:", strata.get(one.remote(1)))
strata.shutdown()
strata.init("$HEAD")
print("url:", strata.get(one.remote(2)))
strata.shutdown()
os.environ["STRATA_ADDRESS"] = "$HEAD?cluster_env=base:7"
try:
    strata.init()
except ValueError as error:
    print("STRATA_ADDRESS with an unknown cluster_env: ValueError", error)
EOF

# Every lease went back to the agent: no worker is still leased, and the
# actors' dedicated workers are gone.
agent_port=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["port"])' "$STRATA_HOME/agent/agent.json")
workers=$(curl -s -X POST -d '{}' "http://127.0.0.1:$agent_port/list_workers" |
  python3 -c 'import json, sys; ws = json.load(sys.stdin)["workers"]; print(sum(w["leased"] for w in ws), sum(w["dedicated"] for w in ws), len(ws))' 2>&1)
if [[ "$workers" == "0 0 "* ]] && [ "${workers##* }" -gt 0 ]; then
  pass "workers_returned_to_the_agent"
else
  fail "workers_returned_to_the_agent" "leased, dedicated, total: $workers"
fi

# --- a driver submitted as a job: its tasks inherit the job's env -----------------------
mkdir -p jobdir
cat >jobdir/prog.py <<'EOF'
import os
import strata

try:
    strata.init(runtime_env={"env_vars": {"JOBVAR": "clash"}})
    print("conflict: accepted")
except ValueError as e:
    print("conflict: ValueError", "Failed to merge the Job's runtime env" in str(e))

strata.init(runtime_env={"env_vars": {"INITVAR": "from-init"}})

@strata.remote
def probe():
    with open("jobfile.txt") as f:
        content = f.read().strip()
    return os.environ.get("JOBVAR"), os.environ.get("INITVAR"), content, os.environ.get("STRATA_JOB_ID")

jobvar, initvar, content, job_id = strata.get(probe.remote())
print(f"task sees JOBVAR={jobvar} INITVAR={initvar} file={content}")
print("job id:", job_id == os.environ["STRATA_JOB_ID"] == strata.get_runtime_context().get_job_id())
EOF
echo "in the job's working dir" >jobdir/jobfile.txt
run "$S" job submit --address "$HEAD" --working-dir jobdir \
  --runtime-env-json "{\"env_vars\": {\"PYTHONPATH\": \"$SDK\", \"JOBVAR\": \"from-job\"}}" -- python3 prog.py
if [ "$RC" -eq 0 ] && grep -q "^conflict: ValueError True$" <<<"$OUT" &&
  grep -q "^task sees JOBVAR=from-job INITVAR=from-init file=in the job's working dir$" <<<"$OUT" &&
  grep -q "^job id: True$" <<<"$OUT"; then
  pass "job_driver_tasks_inherit_job_env"
else
  fail "job_driver_tasks_inherit_job_env" "exit $RC, stdout [$OUT], stderr [$ERR]"
fi

# --- init() with no head running starts one, and shutdown() stops it ----------------------
check init_starts_and_stops_local_head "started: True
task: 6
head.json gone after shutdown: True" STRATA_HOME="$WORK/home2" STRATA_SESSION_DIR="$WORK/session2" STRATA_BIN="$S" <<'EOF'
import os
import strata

ctx = strata.init()
print("started:", os.path.exists(os.path.join(os.environ["STRATA_SESSION_DIR"], "head.json")))

@strata.remote
def mul(a, b):
    return a * b

print("task:", strata.get(mul.remote(2, 3)))
strata.shutdown()
print("head.json gone after shutdown:", not os.path.exists(os.path.join(os.environ["STRATA_SESSION_DIR"], "head.json")))
EOF
