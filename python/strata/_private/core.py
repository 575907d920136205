"""The Strata runtime: the driver's (and a worker's) view of the cluster.

A process has at most one runtime (`_runtime`). A driver creates it with
init(); a worker creates it in worker mode when it receives its first task,
so that tasks can submit tasks (nested tasks inherit the running task's env).

Tasks go to workers leased from the node agent (src/agent/worker_pool.h):
for each effective runtime env (its serialized form) the runtime keeps a
queue and up to `max_workers_per_env` runner threads, each holding one
lease (an open connection to a worker's Unix socket) and running the
queue's tasks one after the other. A runner that found no task for
`lease_idle_timeout` seconds gives its worker back to the agent
(POST /return_worker), which keeps it warm for the next lease of the same
env. A task whose worker dies fails with WorkerCrashedError and the worker
is killed; the runner leases a fresh one for the next task. A lease that
fails (the env cannot be built) fails the queued tasks of that env with
RuntimeEnvSetupError; other envs are unaffected.

An actor has a dedicated lease and its own thread, so its method calls run
in submission order on one connection; strata.kill() or dropping the last
handle gives the worker back to be killed.

Knobs (environment): STRATA_MAX_WORKERS_PER_ENV (default max(2, CPUs)),
STRATA_LEASE_IDLE_TIMEOUT_S (default 2).

There is no object store: an ObjectRef is a future in the process that
submitted the task. Top-level ObjectRef arguments are waited for and
replaced by their values before the task is queued (refs one level inside a
list, tuple or dict argument are waited for too); a ref that travels inside
arguments or results carries its value with it. Actor handles stay in the
process that created the actor.

Thread-safety: every public function may be called from any thread.
"""
import atexit
import collections
import itertools
import json
import os
import pickle
import signal
import socket
import sys
import threading
import time
import weakref

import cloudpickle

from strata import exceptions as _exc
from strata._private import protocol

_OK = "AGENT_RPC_STATUS_OK"
_HOOK_FIELD = "worker_process_setup_hook"
_HOOK_PREFIX = "strata_setup_hook::"
_DEFAULT_SESSION_DIR = "/tmp/strata/session_latest"
# The private runtime_env field that runs an env's workers on a cluster env's image.
_BASE_IMAGE_FIELD = "_strata_base_image"

# The running process's runtime and, in a worker, the env of the task or
# actor being executed (the parent of the tasks it submits).
_runtime = None
_runtime_lock = threading.RLock()
_current = threading.local()
_worker_current_env = None  # a dict: the running task's effective env (worker mode)

# Pickled setup-hook callables by the placeholder string that stands for
# them inside a runtime env (the agent sees only the placeholder).
_hooks = {}

_native_module = None
_cf = None


def _futures():
    """concurrent.futures, imported on first use (a worker that submits no task never needs it)."""
    global _cf
    if _cf is None:
        import concurrent.futures

        _cf = concurrent.futures
    return _cf


def _new_id(size=16):
    return os.urandom(size // 2).hex()


def _native():
    global _native_module
    if _native_module is None:
        from strata import _native as module

        _native_module = module
    return _native_module


def _env_float(name, default):
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None


# --------------------------------------------------------------------------
# Runtime envs
# --------------------------------------------------------------------------


def _dumps_env(env):
    return json.dumps(env, sort_keys=True)


def _prepare_env(env):
    """A plain normalised env dict ({} for none). A callable setup hook is
    pickled and replaced by a placeholder string."""
    if not isinstance(env, dict):
        if not env:  # Ray's "not specified": None, {}, [], "" ...
            return {}
        raise TypeError(f"runtime_env must be a dict or a strata.RuntimeEnv, got {type(env).__name__}")
    hook = env.get(_HOOK_FIELD)
    if hook is not None and callable(hook):
        data = cloudpickle.dumps(hook)
        name = getattr(hook, "__qualname__", None) or getattr(hook, "__name__", "hook")
        import hashlib

        placeholder = f"{_HOOK_PREFIX}{name}::{hashlib.sha1(data).hexdigest()[:16]}"
        _hooks[placeholder] = data
        env = dict(env)
        env[_HOOK_FIELD] = placeholder
    from strata.runtime_env import normalize

    normalized = normalize(env)
    return dict(normalized) if normalized else {}


def _prepare_task_env(env):
    """A task's or actor's own env: normalised, and without local paths."""
    env = _prepare_env(env)
    if env:
        _native().validate_no_local_paths(_dumps_env(env))
    return env or None


def _hook_key(placeholder):
    """What a user would recognise of a setup hook (its name)."""
    if isinstance(placeholder, str) and placeholder.startswith(_HOOK_PREFIX):
        return placeholder[len(_HOOK_PREFIX):].rsplit("::", 1)[0]
    return placeholder


class _Env:
    """One effective runtime env: its dict, canonical JSON, serialized form
    (the lease key), config and setup hook payload."""

    __slots__ = ("env", "json", "_serialized", "config", "setup_hook")

    def __init__(self, env, env_json=None):
        self.env = env
        self.json = env_json if env_json is not None else _dumps_env(env)
        self._serialized = None
        self.config = env.get("config") if env else None
        hook = env.get(_HOOK_FIELD) if env else None
        if isinstance(hook, str) and hook.startswith(_HOOK_PREFIX):
            self.setup_hook = _hooks.get(hook)
        elif isinstance(hook, str) and hook:
            self.setup_hook = hook
        else:
            self.setup_hook = None

    @property
    def serialized(self):
        if self._serialized is None:
            if not self.env:
                self._serialized = "{}"
            else:
                self._serialized = _native().runtime_env_serialize(self.json)
        return self._serialized


# --------------------------------------------------------------------------
# HTTP (head and agent)
# --------------------------------------------------------------------------


def _http_request(url, method, path, body=None, token=None, timeout=30.0):
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise _HTTPStatusError(method, url + path, response.status, text.decode(errors="replace").strip())
    return json.loads(text) if text else {}


class _HTTPStatusError(_exc.StrataError):
    """An error status from the head or the agent; `status` and `message`
    (the server's text) for callers that tell them apart."""

    def __init__(self, method, url, status, message):
        super().__init__(f"{method} {url} answered HTTP {status}: {message}")
        self.status = status
        self.message = message


# --------------------------------------------------------------------------
# Object refs
# --------------------------------------------------------------------------


_REF_PREFIX = _new_id(16)
_ref_counter = itertools.count(1)


class ObjectRef:
    """The future result of a task or actor method call; pass it to get()/wait()
    or as an argument of another task."""

    __slots__ = ("_future", "_id", "__weakref__")

    def __init__(self, future, ref_id=None):
        self._future = future
        self._id = ref_id or f"{_REF_PREFIX}{next(_ref_counter):016x}"

    def hex(self):
        return self._id

    def future(self):
        """The concurrent.futures.Future of the value."""
        return self._future

    def __await__(self):
        import asyncio

        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self):
        return f"ObjectRef({self._id})"

    def __reduce__(self):
        # A ref sent to another process carries its value (there is no shared
        # object store): the sender waits for it.
        try:
            return (_resolved_ref, (self._id, True, self._future.result()))
        except BaseException as error:  # noqa: BLE001 - the task's own error travels with it
            return (_resolved_ref, (self._id, False, error))


def _resolved_ref(ref_id, ok, value):
    future = _futures().Future()
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
    return ObjectRef(future, ref_id)


def _make_refs(future, num_returns):
    if num_returns == 1:
        return ObjectRef(future)
    if num_returns == 0:
        return None
    children = [_futures().Future() for _ in range(num_returns)]

    def split(done):
        error = done.exception()
        if error is None:
            value = done.result()
            try:
                values = list(value)
                if len(values) != num_returns:
                    raise ValueError(f"Task returned {len(values)} objects, but num_returns={num_returns}.")
            except Exception as split_error:  # noqa: BLE001
                for child in children:
                    child.set_exception(split_error)
                return
            for child, item in zip(children, values):
                child.set_result(item)
        else:
            for child in children:
                child.set_exception(error)

    future.add_done_callback(split)
    return [ObjectRef(child) for child in children]


def _check_num_returns(value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"num_returns must be an integer >= 0, got {value!r}")
    return value


# --------------------------------------------------------------------------
# Leases and tasks
# --------------------------------------------------------------------------


def _unix_connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if len(os.fsencode(path)) < 100:
            sock.connect(path)
        else:  # too long for sun_path: go through the directory's descriptor
            fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
            try:
                sock.connect(f"/proc/self/fd/{fd}/{os.path.basename(path)}")
            finally:
                os.close(fd)
    except BaseException:
        sock.close()
        raise
    return sock


class _Lease:
    __slots__ = ("worker_id", "socket_path", "pid", "node_id", "dedicated", "conn", "returned")

    def __init__(self, reply, dedicated):
        self.worker_id = reply["worker_id"]
        self.socket_path = reply["socket_path"]
        self.pid = reply.get("pid")
        self.node_id = reply.get("node_id")
        self.dedicated = dedicated
        self.conn = None
        self.returned = False

    def describe(self):
        return f"worker_id={self.worker_id}, pid={self.pid}, node_id={self.node_id}"


class _FunctionDescriptor:
    """A function or class pickled once; identified by the hash of its bytes."""

    __slots__ = ("data", "fn_id")

    def __init__(self, obj):
        self.data = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        import hashlib

        self.fn_id = hashlib.sha1(self.data).hexdigest()


class _Task:
    __slots__ = ("desc", "name", "args", "kwargs", "env", "future")

    def __init__(self, desc, name, args, kwargs, env, future):
        self.desc = desc
        self.name = name
        self.args = args
        self.kwargs = kwargs
        self.env = env
        self.future = future

    def fail(self, error):
        if not self.future.done():
            self.future.set_exception(error)


class _EnvQueue:
    __slots__ = ("env", "tasks", "waiters", "runners", "healthy")

    def __init__(self, env):
        self.env = env
        self.tasks = collections.deque()
        # Conditions of the runners waiting for a task, the most recently idle
        # last: it is woken first, so a trickle of tasks keeps one worker hot
        # and the others time out and go back to the agent.
        self.waiters = []
        self.runners = 0  # runner threads (each holds at most one lease)
        self.healthy = 0  # runners holding a lease

    def wake_one(self):
        if self.waiters:
            self.waiters.pop().notify()

    def wake_all(self):
        for cond in self.waiters:
            cond.notify()
        self.waiters.clear()


def _copy_error(error):
    """A fresh exception for each task failed by one cause (exceptions carry tracebacks)."""
    if isinstance(error, _exc.RuntimeEnvSetupError):
        return _exc.RuntimeEnvSetupError(error.error_message)
    return error


def _find_refs(args, kwargs):
    """ObjectRefs among the arguments (top level, and one level inside lists,
    tuples and dicts, which get() would wait for in the worker)."""
    refs = []

    def scan(value, depth):
        if isinstance(value, ObjectRef):
            refs.append(value)
        elif depth == 0 and isinstance(value, (list, tuple)):
            for item in value:
                scan(item, 1)
        elif depth == 0 and isinstance(value, dict):
            for item in value.values():
                scan(item, 1)

    for value in args:
        scan(value, 0)
    for value in kwargs.values():
        scan(value, 0)
    return refs


def _substitute_refs(args, kwargs):
    """Top-level ObjectRef arguments replaced by their values (raises a failed ref's error)."""
    if any(isinstance(a, ObjectRef) for a in args):
        args = tuple(a._future.result() if isinstance(a, ObjectRef) else a for a in args)
    if any(isinstance(v, ObjectRef) for v in kwargs.values()):
        kwargs = {k: (v._future.result() if isinstance(v, ObjectRef) else v) for k, v in kwargs.items()}
    return args, kwargs


def _error_from_reply(reply, name):
    """The exception a failed reply stands for."""
    cause = None
    if reply.get("error") is not None:
        try:
            cause = pickle.loads(reply["error"])
        except Exception:  # noqa: BLE001 - its class may exist only in the worker's env
            cause = None
    if reply.get("setup_failed"):
        if isinstance(cause, _exc.RuntimeEnvSetupError):
            return cause
        return _exc.RuntimeEnvSetupError(reply.get("traceback"))
    error = _exc.TaskError(name, reply.get("traceback") or reply.get("type") or "unknown error", cause,
                           pid=reply.get("pid"), worker_id=reply.get("worker_id"),
                           node_id=reply.get("node_id"))
    return error.as_instanceof_cause()


class _Runtime:
    def __init__(self, *, mode, head_url, token, agent_port, node_id, job_id, job_env=None,
                 worker_id=None, cluster_env=None, session_dir=None):
        self.mode = mode
        self.head_url = head_url
        self.token = token
        self.agent_port = agent_port
        self.agent_url = f"http://127.0.0.1:{agent_port}"
        self.node_id = node_id
        self.job_id = job_id
        self.worker_id = worker_id or ("driver_" + _new_id(16))
        self.cluster_env = cluster_env
        self.session_dir = session_dir or os.environ.get("STRATA_SESSION_DIR") or _DEFAULT_SESSION_DIR
        self.job_env = _Env(job_env or {})
        self.lock = threading.Lock()
        self.queues = {}
        self.leases = set()  # every lease not yet returned
        self.actors = set()
        self.known_fns = {}  # worker_id -> fn ids the worker has
        self.env_cache = {}
        self.shutting_down = False
        self.eager_env = None  # (serialized) taken with get_or_create at init
        self.started_head_pid = None
        self.started_agent = False
        cpus = os.cpu_count() or 1
        self.max_workers_per_env = max(1, int(_env_float("STRATA_MAX_WORKERS_PER_ENV", max(2, cpus))))
        self.lease_idle_timeout = max(0.0, _env_float("STRATA_LEASE_IDLE_TIMEOUT_S", 2.0))

    # ---- envs ------------------------------------------------------------

    def parent_env(self):
        if self.mode == "worker":
            env = _worker_current_env
            if env is None:
                return self.job_env
            cached = getattr(_current, "env", None)
            if cached is not None and cached[0] is env:
                return cached[1]
            resolved = _Env(env)
            _current.env = (env, resolved)
            return resolved
        return self.job_env

    def effective_env(self, child_env, child_json):
        """The env a task runs in: the parent's merged with the task's own (Ray's rule)."""
        parent = self.parent_env()
        if not child_env:
            return parent
        key = (parent.json, child_json)
        env = self.env_cache.get(key)
        if env is None:
            merged_json = _native().merge_task(parent.json, child_json)
            merged = json.loads(merged_json)
            env = _Env(merged)
            if len(self.env_cache) > 4096:
                self.env_cache.clear()
            self.env_cache[key] = env
        return env

    # ---- agent -------------------------------------------------------------

    def agent_post(self, path, body, timeout=None):
        try:
            return _http_request(self.agent_url, "POST", path, body, timeout=timeout)
        except OSError as error:
            raise _exc.StrataError(f"cannot reach the node agent at {self.agent_url}: {error}") from None

    def lease(self, env, dedicated):
        """A connected lease for `env`; RuntimeEnvSetupError when the agent cannot provide one."""
        body = {"job_id": self.job_id, "serialized_runtime_env": env.serialized,
                "dedicated": dedicated, "driver_pid": os.getpid()}
        if env.config is not None:
            body["runtime_env_config"] = env.config
        last_error = None
        for _ in range(3):
            reply = self.agent_post("/lease_worker", body)
            if reply.get("status") != _OK:
                raise _exc.RuntimeEnvSetupError(reply.get("error_message") or "the node agent gave no reason")
            lease = _Lease(reply, dedicated)
            with self.lock:
                self.leases.add(lease)
            try:
                lease.conn = protocol.Connection(_unix_connect(lease.socket_path))
                return lease
            except OSError as error:  # the worker died between its start and now
                last_error = error
                self.return_lease(lease, kill=True)
        raise _exc.WorkerCrashedError(f"cannot connect to a worker leased from the node agent: {last_error}")

    def return_lease(self, lease, kill, close=True):
        """Gives the worker back (killing it when `kill`). With close=False the
        connection is only shut down, which wakes a thread reading from it; that
        thread closes it."""
        with self.lock:
            first = not lease.returned
            lease.returned = True
            self.leases.discard(lease)
        if lease.conn is not None:
            if close:
                lease.conn.close()
            else:
                lease.conn.shutdown()
        if not first:
            return
        try:
            self.agent_post("/return_worker", {"worker_id": lease.worker_id, "kill": bool(kill)}, timeout=10)
        except Exception:  # noqa: BLE001 - the agent reclaims leases of exited drivers anyway
            pass

    def worker_log(self, lease):
        return os.path.join(self.session_dir, "logs", f"worker-{lease.worker_id}.log")

    def crash_error(self, lease, what, cause, cls=_exc.WorkerCrashedError):
        return cls(f"The worker running {what} died unexpectedly ({lease.describe()}): "
                   f"{type(cause).__name__}: {cause}. Its output is in {self.worker_log(lease)}.")

    # ---- exchanging messages ---------------------------------------------

    def context_fields(self, msg):
        msg["job_id"] = self.job_id
        msg["head_url"] = self.head_url
        msg["agent_port"] = self.agent_port
        msg["node_id"] = self.node_id
        return msg

    def exchange(self, lease, data):
        """Sends a request and returns the raw reply; EOFError/OSError when the worker is gone."""
        lease.conn.send_bytes(data)
        return lease.conn.recv_bytes()

    # ---- tasks ---------------------------------------------------------------

    def submit_task(self, task):
        refs = _find_refs(task.args, task.kwargs)
        pending = [ref for ref in refs if not ref._future.done()]
        if not pending:
            self._enqueue_resolved(task)
            return
        remaining = [len(pending)]
        lock = threading.Lock()

        def on_done(_):
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self._enqueue_resolved(task)

        for ref in pending:
            ref._future.add_done_callback(on_done)

    def _enqueue_resolved(self, task):
        try:
            task.args, task.kwargs = _substitute_refs(task.args, task.kwargs)
        except BaseException as error:  # noqa: BLE001 - a dependency failed: so does this task
            task.fail(error)
            return
        spawn = False
        with self.lock:
            if self.shutting_down:
                task.fail(_exc.StrataError("strata.shutdown() was called before the task ran"))
                return
            key = task.env.serialized
            queue = self.queues.get(key)
            if queue is None:
                queue = self.queues[key] = _EnvQueue(task.env)
            queue.tasks.append(task)
            idle = len(queue.waiters)
            queue.wake_one()
            if len(queue.tasks) > idle and queue.runners < self.max_workers_per_env:
                queue.runners += 1
                spawn = True
        if spawn:
            self._start_runner(queue)

    def _start_runner(self, queue):
        threading.Thread(target=self._runner, args=(queue,), name="strata-runner", daemon=True).start()

    def _next_task(self, queue, cond):
        """The queue's next task, or None once idle for lease_idle_timeout (or shutting down).
        Called with self.lock held; `cond` is the runner's own condition on it."""
        deadline = None
        while not queue.tasks:
            if self.shutting_down:
                return None
            now = time.monotonic()
            if deadline is None:
                deadline = now + self.lease_idle_timeout
            elif now >= deadline:
                return None
            queue.waiters.append(cond)
            try:
                cond.wait(deadline - now)
            finally:
                if cond in queue.waiters:  # timed out: nobody took it off the list
                    queue.waiters.remove(cond)
        return queue.tasks.popleft()

    def _runner(self, queue):
        lease = None
        cond = threading.Condition(self.lock)
        try:
            while True:
                with self.lock:
                    task = self._next_task(queue, cond)
                if task is None:
                    return
                if lease is not None and not lease.conn.alive():
                    # The worker went away between tasks (nothing of this task ran): a new one.
                    with self.lock:
                        queue.healthy -= 1
                    self.return_lease(lease, kill=True)
                    lease = None
                if lease is None:
                    try:
                        lease = self.lease(queue.env, dedicated=False)
                    except BaseException as error:  # noqa: BLE001
                        with self.lock:
                            if queue.healthy > 0:  # others hold leases for this env: let them run it
                                queue.tasks.appendleft(task)
                                failed = []
                            else:
                                failed = [task, *queue.tasks]
                                queue.tasks.clear()
                        for each in failed:
                            each.fail(_copy_error(error))
                        return
                    with self.lock:
                        queue.healthy += 1
                try:
                    usable = self._execute(lease, task)
                except BaseException as error:  # noqa: BLE001 - never leave a task unsettled
                    task.fail(error)
                    usable = False
                if not usable:
                    with self.lock:
                        queue.healthy -= 1
                    self.return_lease(lease, kill=True)
                    lease = None
        finally:
            respawn = False
            with self.lock:
                queue.runners -= 1
                if lease is not None:
                    queue.healthy -= 1
                if queue.tasks and queue.runners == 0 and not self.shutting_down:
                    queue.runners += 1
                    respawn = True
            if lease is not None:
                self.return_lease(lease, kill=False)
            if respawn:
                self._start_runner(queue)

    def _execute(self, lease, task):
        """Runs one task on the lease; False when the worker is no longer usable."""
        future = task.future
        if not future.set_running_or_notify_cancel():
            return True  # cancelled through ObjectRef.future()
        known = self.known_fns.get(lease.worker_id)
        if known is None:
            known = self.known_fns.setdefault(lease.worker_id, set())
        fn_id = task.desc.fn_id
        msg = self.context_fields({
            "type": "task", "fn_id": fn_id, "fn": None if fn_id in known else task.desc.data,
            "name": task.name, "args": task.args, "kwargs": task.kwargs,
            "runtime_env": task.env.env, "setup_hook": task.env.setup_hook})
        for _ in range(2):
            try:
                data = protocol.dumps(msg)
            except Exception as error:  # noqa: BLE001
                future.set_exception(TypeError(f"Could not serialize the arguments of {task.name}: {error!r}"))
                return True
            try:
                raw = self.exchange(lease, data)
            except (EOFError, OSError) as error:
                task.fail(self.crash_error(lease, f"task {task.name}", error))
                return False
            known.add(fn_id)
            task.args = task.kwargs = None
            try:
                reply = protocol.loads(raw)
            except Exception as error:  # noqa: BLE001
                future.set_exception(_exc.StrataError(f"Could not deserialize the result of {task.name}: {error!r}"))
                return True
            if reply.get("need_fn"):
                msg["fn"] = task.desc.data
                continue
            break
        if reply.get("ok"):
            future.set_result(reply.get("value"))
            return True
        future.set_exception(_error_from_reply(reply, task.name))
        return not reply.get("setup_failed")

    # ---- shutdown --------------------------------------------------------------

    def shutdown(self):
        with self.lock:
            if self.shutting_down:
                return
            self.shutting_down = True
            pending = []
            for queue in self.queues.values():
                pending.extend(queue.tasks)
                queue.tasks.clear()
                queue.wake_all()
            actors = list(self.actors)
        for task in pending:
            task.fail(_exc.StrataError("strata.shutdown() was called before the task ran"))
        for actor in actors:
            actor.kill("strata.shutdown() was called")
        # Idle runners give their workers back at once; busy ones after their task.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            with self.lock:
                busy = any(queue.runners for queue in self.queues.values())
            if not busy:
                break
            time.sleep(0.01)
        with self.lock:
            leftover = list(self.leases)
        for lease in leftover:  # busy: their tasks fail with WorkerCrashedError
            self.return_lease(lease, kill=True, close=False)
        if self.eager_env is not None:
            try:
                self.agent_post("/delete_runtime_env_if_possible",
                                {"serialized_runtime_env": self.eager_env, "source_process": "driver"},
                                timeout=10)
            except Exception:  # noqa: BLE001
                pass
        if self.started_head_pid:
            _stop_started_cluster(self.started_head_pid, self.started_agent)


# --------------------------------------------------------------------------
# Actors
# --------------------------------------------------------------------------


class _ActorState:
    """An actor's lease, connection and call queue (one thread, calls in order)."""

    def __init__(self, runtime, desc, name, env, args, kwargs):
        self.runtime = runtime
        self.desc = desc
        self.name = name
        self.env = env
        self.lease = None
        self.dead = None  # the error calls raise once the actor is gone
        self.killed = False
        self.lock = threading.Lock()
        self.calls = collections.deque()
        self.cond = threading.Condition(self.lock)
        self.released = False
        with runtime.lock:
            if runtime.shutting_down:
                raise _exc.StrataError("strata.shutdown() was called")
            runtime.actors.add(self)
        self.thread = threading.Thread(target=self._loop, name=f"strata-actor-{name}", daemon=True)
        self.calls.append(("create", args, kwargs, None))
        self.thread.start()

    def submit(self, method, args, kwargs, num_returns):
        future = _futures().Future()
        with self.lock:
            if self.released:
                future.set_exception(self._dead_error())
            else:
                self.calls.append((method, args, kwargs, future))
                self.cond.notify()
        return _make_refs(future, num_returns)

    def _dead_error(self):
        dead = self.dead
        if isinstance(dead, _exc.RuntimeEnvSetupError):
            return _exc.RuntimeEnvSetupError(dead.error_message)
        if dead is None:
            return _exc.ActorDiedError(f"The actor {self.name} is gone.")
        error = _exc.ActorDiedError(str(dead))
        error.__cause__ = dead.__cause__
        return error

    def _loop(self):
        while True:
            with self.lock:
                while not self.calls and not self.released:
                    self.cond.wait()
                if not self.calls:
                    break
                method, args, kwargs, future = self.calls.popleft()
            if method == "create":
                self._create(args, kwargs)
                continue
            if method == "__release__":
                self._finish(kill=True)
                continue
            if self.dead is not None:
                future.set_exception(self._dead_error())
                continue
            try:
                self._call(method, args, kwargs, future)
            except BaseException as error:  # noqa: BLE001 - never lose the actor's thread
                if not future.done():
                    future.set_exception(error)
        self._finish(kill=True)

    def _resolve(self, args, kwargs):
        for ref in _find_refs(args, kwargs):
            try:
                ref._future.result()
            except BaseException:  # noqa: BLE001 - raised below, by _substitute_refs
                pass
        return _substitute_refs(args, kwargs)

    def _create(self, args, kwargs):
        runtime = self.runtime
        try:
            args, kwargs = self._resolve(args, kwargs)
            lease = runtime.lease(self.env, dedicated=True)
        except _exc.RuntimeEnvSetupError as error:
            self.dead = error
            return
        except BaseException as error:  # noqa: BLE001
            self.dead = _exc.ActorDiedError(f"The actor {self.name} could not be created: {error}")
            self.dead.__cause__ = error
            return
        self.lease = lease
        if self.killed:
            self._finish(kill=True)
            return
        msg = runtime.context_fields({
            "type": "create_actor", "cls": self.desc.data, "name": self.name, "args": args,
            "kwargs": kwargs, "runtime_env": self.env.env, "setup_hook": self.env.setup_hook})
        try:
            data = protocol.dumps(msg)
        except Exception as error:  # noqa: BLE001
            self.dead = _exc.ActorDiedError(f"Could not serialize the arguments of {self.name}: {error!r}")
            self._finish(kill=True)
            return
        try:
            reply = protocol.loads(runtime.exchange(lease, data))
        except (EOFError, OSError) as error:
            self._died(error)
            return
        if not reply.get("ok"):
            error = _error_from_reply(reply, f"{self.name}.__init__")
            if isinstance(error, _exc.RuntimeEnvSetupError):
                self.dead = error
            else:
                self.dead = _exc.ActorDiedError(
                    f"The actor {self.name} died because its constructor raised:\n{error}")
                self.dead.__cause__ = error
            self._finish(kill=True)

    def _died(self, cause):
        if self.dead is None:
            if self.killed:
                self.dead = _exc.ActorDiedError(f"The actor {self.name} was killed.")
            else:
                self.dead = self.runtime.crash_error(self.lease, f"actor {self.name}", cause,
                                                     cls=_exc.ActorDiedError)
        self._finish(kill=True)

    def _call(self, method, args, kwargs, future):
        runtime = self.runtime
        args, kwargs = self._resolve(args, kwargs)
        msg = {"type": "call", "method": method, "args": args, "kwargs": kwargs}
        try:
            data = protocol.dumps(msg)
        except Exception as error:  # noqa: BLE001
            future.set_exception(TypeError(f"Could not serialize the arguments of {self.name}.{method}: {error!r}"))
            return
        try:
            raw = runtime.exchange(self.lease, data)
        except (EOFError, OSError) as error:
            self._died(error)
            future.set_exception(self._dead_error())
            return
        try:
            reply = protocol.loads(raw)
        except Exception as error:  # noqa: BLE001
            future.set_exception(_exc.StrataError(f"Could not deserialize the result of {self.name}.{method}: {error!r}"))
            return
        if reply.get("ok"):
            future.set_result(reply.get("value"))
        else:
            future.set_exception(_error_from_reply(reply, f"{self.name}.{method}"))

    def _finish(self, kill):
        lease, self.lease = self.lease, None
        if lease is not None:
            self.runtime.return_lease(lease, kill=kill)
        with self.lock:
            self.released = True
            pending = list(self.calls)
            self.calls.clear()
        for _method, _args, _kwargs, future in pending:
            if future is not None and not future.done():
                future.set_exception(self._dead_error())
        with self.runtime.lock:
            self.runtime.actors.discard(self)

    def kill(self, reason="strata.kill() was called"):
        self.killed = True
        if self.dead is None:
            self.dead = _exc.ActorDiedError(f"The actor {self.name} was killed: {reason}.")
        lease = self.lease
        if lease is not None:
            # Kills the process; a call in progress sees the connection end and
            # the actor's thread closes it.
            self.runtime.return_lease(lease, kill=True, close=False)
        with self.lock:
            self.released = True
            self.cond.notify_all()

    def release_when_idle(self):
        """The last handle is gone: end the actor after the calls already submitted."""
        with self.lock:
            if not self.released:
                self.calls.append(("__release__", None, None, None))
                self.cond.notify()


# --------------------------------------------------------------------------
# Remote functions and actor classes
# --------------------------------------------------------------------------

_COMMON_OPTIONS = {
    "num_cpus", "num_gpus", "resources", "memory", "object_store_memory", "accelerator_type",
    "runtime_env", "scheduling_strategy", "name", "placement_group", "placement_group_bundle_index",
    "placement_group_capture_child_tasks", "label_selector", "_metadata", "enable_task_events",
}
_TASK_OPTIONS = _COMMON_OPTIONS | {"max_retries", "retry_exceptions", "num_returns", "max_calls"}
_ACTOR_OPTIONS = _COMMON_OPTIONS | {
    "max_restarts", "max_task_retries", "max_concurrency", "lifetime", "namespace", "get_if_exists",
    "max_pending_calls", "concurrency_groups",
}
_METHOD_OPTIONS = {"num_returns", "name", "max_task_retries", "retry_exceptions", "concurrency_group",
                   "enable_task_events"}


def _check_options(options, valid, what):
    for key in options:
        if key not in valid:
            raise ValueError(f"Invalid option keyword {key} for {what}. "
                             f"Valid ones are {sorted(valid)}.")
    options = dict(options)
    if "num_returns" in options:
        _check_num_returns(options["num_returns"])
    if "runtime_env" in options:
        env = _prepare_task_env(options["runtime_env"])
        options["runtime_env"] = env
    return options


class _Spec:
    """What a decorated function or class submits: the pickled object (made
    once, at the first submission) and its own runtime env."""

    def __init__(self, obj):
        self.obj = obj
        self._desc = None

    def descriptor(self):
        desc = self._desc
        if desc is None:
            desc = self._desc = _FunctionDescriptor(self.obj)
        return desc


def _env_of(options):
    env = options.get("runtime_env")
    return (env, _dumps_env(env)) if env else (None, None)


class RemoteFunction:
    """A function decorated with @strata.remote: call it with .remote()."""

    def __init__(self, function, options, spec=None):
        self._function = function
        self._options = options
        self._spec = spec or _Spec(function)
        self._child_env, self._child_json = _env_of(options)
        self._name = options.get("name") or getattr(function, "__qualname__", None) or repr(function)
        self.__doc__ = getattr(function, "__doc__", None)
        self.__name__ = getattr(function, "__name__", "remote_function")
        self.__qualname__ = getattr(function, "__qualname__", self.__name__)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Remote functions cannot be called directly. Instead of running "
                        f"'{self.__name__}()', try '{self.__name__}.remote()'.")

    def __getstate__(self):
        return {"function": self._function, "options": self._options}

    def __setstate__(self, state):
        self.__init__(state["function"], state["options"])

    def options(self, **options):
        """A copy with other options; `runtime_env` replaces the decorator's env."""
        options = _check_options(options, _TASK_OPTIONS, "remote functions")
        merged = dict(self._options)
        if "runtime_env" in options and not options["runtime_env"]:
            options.pop("runtime_env")  # an empty env selects the decorator's, as in Ray
        merged.update(options)
        return RemoteFunction(self._function, merged, self._spec)

    def remote(self, *args, **kwargs):
        runtime = _get_or_init_runtime()
        env = runtime.effective_env(self._child_env, self._child_json)
        num_returns = self._options.get("num_returns", 1)
        future = _futures().Future()
        runtime.submit_task(_Task(self._spec.descriptor(), self._name, args, kwargs, env, future))
        return _make_refs(future, num_returns)

    def __repr__(self):
        return f"RemoteFunction({self._name})"


class ActorClass:
    """A class decorated with @strata.remote: create actors with .remote()."""

    def __init__(self, cls, options, spec=None):
        self._cls = cls
        self._options = options
        self._spec = spec or _Spec(cls)
        self._child_env, self._child_json = _env_of(options)
        self.__doc__ = getattr(cls, "__doc__", None)
        self.__name__ = cls.__name__
        self.__qualname__ = getattr(cls, "__qualname__", cls.__name__)

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actors cannot be instantiated directly. Instead of '{self.__name__}()', "
                        f"use '{self.__name__}.remote()'.")

    def __getstate__(self):
        return {"cls": self._cls, "options": self._options}

    def __setstate__(self, state):
        self.__init__(state["cls"], state["options"])

    def options(self, **options):
        options = _check_options(options, _ACTOR_OPTIONS, "actors")
        merged = dict(self._options)
        if "runtime_env" in options and not options["runtime_env"]:
            options.pop("runtime_env")  # an empty env selects the decorator's, as in Ray
        merged.update(options)
        return ActorClass(self._cls, merged, self._spec)

    def remote(self, *args, **kwargs):
        runtime = _get_or_init_runtime()
        env = runtime.effective_env(self._child_env, self._child_json)
        name = self._options.get("name") or self.__name__
        state = _ActorState(runtime, self._spec.descriptor(), name, env, args, kwargs)
        return ActorHandle(state, self._cls)

    def __repr__(self):
        return f"ActorClass({self.__name__})"


class ActorHandle:
    """A running actor: `handle.method.remote(...)` calls a method in its worker."""

    def __init__(self, state, cls):
        self._state = state
        self._cls = cls
        weakref.finalize(self, state.release_when_idle)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        attr = getattr(self._cls, name, None)
        if attr is None or not callable(attr):
            raise AttributeError(f"'{self._cls.__name__}' actor has no method '{name}'")
        return ActorMethod(self._state, name, getattr(attr, "__strata_num_returns__", 1))

    def __reduce__(self):
        raise TypeError("Actor handles cannot be passed to other tasks or actors yet "
                        "(Strata keeps one handle per actor, in the process that created it).")

    def __repr__(self):
        lease = self._state.lease
        where = f", worker_id={lease.worker_id}" if lease is not None else ""
        return f"Actor({self._state.name}{where})"


class ActorMethod:
    def __init__(self, state, name, num_returns=1):
        self._state = state
        self._name = name
        self._num_returns = num_returns

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of running "
                        f"'actor.{self._name}()', try 'actor.{self._name}.remote()'.")

    def options(self, **options):
        for key in options:
            if key not in _METHOD_OPTIONS:
                raise ValueError(f"Invalid option keyword {key} for actor methods. "
                                 f"Valid ones are {sorted(_METHOD_OPTIONS)}.")
        num_returns = _check_num_returns(options.get("num_returns", self._num_returns))
        return ActorMethod(self._state, self._name, num_returns)

    def remote(self, *args, **kwargs):
        return self._state.submit(self._name, args, kwargs, self._num_returns)


def remote(*args, **kwargs):
    """@strata.remote or @strata.remote(num_cpus=..., runtime_env=...) on a function or class."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make_remote(args[0], {})
    if args:
        raise TypeError("The @strata.remote decorator takes either no arguments or keyword arguments only, "
                        "e.g. @strata.remote(num_cpus=1, runtime_env={...}).")

    def decorator(obj):
        return _make_remote(obj, kwargs)

    return decorator


def _make_remote(obj, options):
    if isinstance(obj, type):
        return ActorClass(obj, _check_options(options, _ACTOR_OPTIONS, "actors"))
    if callable(obj):
        return RemoteFunction(obj, _check_options(options, _TASK_OPTIONS, "remote functions"))
    raise TypeError("The @strata.remote decorator must be applied to either a function or a class.")


def method(*, num_returns=1, **_ignored):
    """@strata.method(num_returns=N) on an actor method."""
    _check_num_returns(num_returns)

    def decorator(fn):
        fn.__strata_num_returns__ = num_returns
        return fn

    return decorator


# --------------------------------------------------------------------------
# get / wait / kill
# --------------------------------------------------------------------------


def get(object_refs, *, timeout=None):
    """The value(s) of an ObjectRef or a list of them; re-raises a task's error."""
    if isinstance(object_refs, ObjectRef):
        return _get_one(object_refs, None if timeout is None else time.monotonic() + timeout)
    if isinstance(object_refs, (list, tuple)):
        for ref in object_refs:
            if not isinstance(ref, ObjectRef):
                raise TypeError(f"get() expects an ObjectRef or a list of ObjectRefs, got a list holding "
                                f"{type(ref).__name__}")
        deadline = None if timeout is None else time.monotonic() + timeout
        return [_get_one(ref, deadline) for ref in object_refs]
    raise TypeError(f"get() expects an ObjectRef or a list of ObjectRefs, got {type(object_refs).__name__}")


def _get_one(ref, deadline):
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        return ref._future.result(remaining)
    except _futures().TimeoutError:
        if ref._future.done():
            raise
        raise _exc.GetTimeoutError(f"Get timed out: some object(s) not ready (timeout {remaining:.3f} s).") from None


def wait(object_refs, *, num_returns=1, timeout=None, fetch_local=True):
    """(ready, not_ready): the first `num_returns` finished refs, in input order."""
    if isinstance(object_refs, ObjectRef) or not isinstance(object_refs, (list, tuple)):
        raise TypeError("wait() expects a list of ObjectRefs")
    refs = list(object_refs)
    for ref in refs:
        if not isinstance(ref, ObjectRef):
            raise TypeError(f"wait() expects a list of ObjectRefs, got one holding {type(ref).__name__}")
    if len({id(ref) for ref in refs}) != len(refs):
        raise ValueError("Wait requires a list of unique object refs.")
    if not isinstance(num_returns, int) or isinstance(num_returns, bool) or num_returns <= 0:
        raise ValueError(f"Invalid number of objects to return {num_returns!r}.")
    if not refs:
        return [], []
    if num_returns > len(refs):
        raise ValueError("num_returns cannot be greater than the number of objects provided to strata.wait.")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done = [ref for ref in refs if ref._future.done()]
        if len(done) >= num_returns:
            break
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        futures = _futures()
        futures.wait([ref._future for ref in refs if not ref._future.done()], timeout=remaining,
                     return_when=futures.FIRST_COMPLETED)
    ready = done[:num_returns]
    chosen = {id(ref) for ref in ready}
    return ready, [ref for ref in refs if id(ref) not in chosen]


def kill(actor, *, no_restart=True):
    """Kills an actor's worker at once; its pending and later calls raise ActorDiedError."""
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"kill() expects an actor handle, got {type(actor).__name__}")
    actor._state.kill()


# --------------------------------------------------------------------------
# init / shutdown
# --------------------------------------------------------------------------


class InitContext(dict):
    """What init() returns: the head's address and this process's identities."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        shutdown()


def _strata_binary():
    explicit = os.environ.get("STRATA_BIN")
    if explicit:
        return explicit
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../python/strata
    candidate = os.path.normpath(os.path.join(package_dir, "..", "..", "strata"))
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    import shutil

    found = shutil.which("strata")
    if found:
        return found
    raise ConnectionError("cannot find the strata binary to start a local head: set STRATA_BIN, "
                          "or put strata on PATH")


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (TypeError, ValueError, OSError):
        return False
    return True


def _session_dir():
    return os.environ.get("STRATA_SESSION_DIR") or _DEFAULT_SESSION_DIR


def _recorded_head():
    """(url, pid) of the local head recorded in the session, when it runs."""
    path = os.path.join(_session_dir(), "head.json")
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    url = record.get("url")
    pid = record.get("pid")
    if not url or not _pid_alive(pid):
        return None
    return url, int(pid)


def _start_local_head():
    import subprocess

    binary = _strata_binary()
    try:
        result = subprocess.run([binary, "start", "--head", "--port", "0"], capture_output=True,
                                text=True, timeout=120, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ConnectionError(f"cannot start a local Strata head with {binary}: {error}") from None
    recorded = _recorded_head()
    if result.returncode != 0 or recorded is None:
        raise ConnectionError(f"cannot start a local Strata head ({binary} start --head exited "
                              f"{result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    agent_started = "Node agent started" in result.stdout
    print(f"Started a local Strata head at {recorded[0]} (stopped at strata.shutdown()).", file=sys.stderr)
    return recorded[0], recorded[1], agent_started


def _stop_started_cluster(head_pid, agent_started):
    """Stops the head (and agent) init() started, as Ray stops the cluster ray.init() started."""
    try:
        os.kill(head_pid, signal.SIGTERM)
    except OSError:
        pass
    if agent_started:
        home = os.environ.get("STRATA_HOME") or os.path.join(os.path.expanduser("~"), ".strata")
        try:
            with open(os.path.join(home, "agent", "agent.json")) as f:
                os.kill(int(json.load(f)["pid"]), signal.SIGTERM)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    deadline = time.monotonic() + 10
    while _pid_alive(head_pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _split_address(address):
    """(url, cluster_env) of an address that may carry ?cluster_env=name:version."""
    import urllib.parse

    parts = urllib.parse.urlsplit(address)
    query = urllib.parse.parse_qs(parts.query)
    cluster_env = query.get("cluster_env", [None])[0]
    url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return url, cluster_env


def _normalize_url(address):
    if "://" not in address:
        address = "http://" + address
    return address


def _resolve_head(address):
    """(head url, cluster_env from the address, pid of a head we started, agent started?)."""
    cluster_env = None
    if address is None:
        address = os.environ.get("STRATA_ADDRESS") or None
    if address is not None and address not in ("auto", "local"):
        url, cluster_env = _split_address(_normalize_url(address))
        return url, cluster_env, None, False
    recorded = _recorded_head()
    if recorded is not None:
        return recorded[0], None, None, False
    if address == "auto":
        raise ConnectionError(f"Could not find a running Strata head (no live head.json in {_session_dir()}, "
                              f"and STRATA_ADDRESS is not set). Start one with `strata start --head`.")
    url, pid, agent_started = _start_local_head()
    return url, None, pid, agent_started


def _head_node(head_url, token):
    try:
        nodes = _http_request(head_url, "GET", "/api/nodes", token=token, timeout=30).get("nodes") or []
    except OSError as error:
        raise ConnectionError(f"cannot reach the Strata head at {head_url}: {error}") from None
    for node in nodes:
        if node.get("is_head_node"):
            return node
    if nodes:
        return nodes[0]
    raise ConnectionError(f"the Strata head at {head_url} reports no nodes")


def init(address=None, *, runtime_env=None, cluster_env=None, eager_install=None, ignore_reinit_error=False,
         **kwargs):
    """Connects this process to a Strata cluster (starting a local one if needed).

    address: None (STRATA_ADDRESS, else the local head, started if none runs),
    "auto" (a running head), or "http://host:port". runtime_env applies to
    every task and actor of this driver; its local working_dir / py_modules
    are uploaded here. Inside a submitted job it is merged with the job's env.
    cluster_env ("NAME:VERSION", default: the address's ?cluster_env=) runs
    every task's and actor's worker in a container of that cluster
    environment build's image (ValueError naming the versions that can run
    when the build cannot).
    """
    global _runtime
    with _runtime_lock:
        if _runtime is not None:
            if _runtime.mode == "worker":
                return _context(_runtime)
            if ignore_reinit_error:
                return _context(_runtime)
            raise RuntimeError("Maybe you called strata.init twice by accident? This error can be suppressed "
                               "by passing in 'ignore_reinit_error=True' or by calling 'strata.shutdown()' "
                               "prior to 'strata.init()'.")
        _ignored_init_options(kwargs)
        token = os.environ.get("STRATA_AUTH_TOKEN") or None
        head_url, address_cluster_env, started_pid, started_agent = _resolve_head(address)
        try:
            runtime = _connect(head_url, token, runtime_env, cluster_env or address_cluster_env, eager_install)
        except BaseException:
            if started_pid:
                _stop_started_cluster(started_pid, started_agent)
            raise
        runtime.started_head_pid = started_pid
        runtime.started_agent = started_agent
        _runtime = runtime
        return _context(runtime)


_KNOWN_IGNORED_INIT_OPTIONS = {
    "num_cpus", "num_gpus", "resources", "labels", "object_store_memory", "local_mode", "namespace",
    "log_to_driver", "logging_level", "logging_format", "logging_config", "include_dashboard",
    "dashboard_host", "dashboard_port", "configure_logging", "job_config", "_temp_dir", "_system_config",
    "storage", "_node_ip_address", "enable_resource_isolation",
}


def _ignored_init_options(kwargs):
    unknown = sorted(set(kwargs) - _KNOWN_IGNORED_INIT_OPTIONS)
    if unknown:
        raise TypeError(f"init() got unexpected keyword argument(s): {', '.join(unknown)}")


def _connect(head_url, token, runtime_env, cluster_env, eager_install):
    node = _head_node(head_url, token)
    agent_port = node.get("agent_port")
    if not agent_port:
        raise ConnectionError(f"the head at {head_url} reports no node agent for node {node.get('node_id')}")
    native = _native()
    # Resolved before the upload below, so that a build that cannot run fails fast.
    build = _resolve_cluster_env(head_url, token, cluster_env) if cluster_env else None
    job_id = os.environ.get("STRATA_JOB_ID") or ("driver_" + _new_id(12))
    init_env = _prepare_env(runtime_env)
    if init_env:
        init_env = json.loads(native.upload_local_paths(_dumps_env(init_env), head_url, token))
    job_config = os.environ.get("STRATA_JOB_CONFIG_JSON")
    if job_config:
        parent = (json.loads(job_config) or {}).get("runtime_env") or {}
        override = os.environ.get("STRATA_OVERRIDE_JOB_RUNTIME_ENV") == "1"
        job_env = json.loads(native.merge_job(_dumps_env(parent), _dumps_env(init_env), override)) or {}
    else:
        job_env = init_env
    if build is not None:
        job_env = _with_base_image(job_env, cluster_env, build)
    runtime = _Runtime(mode="driver", head_url=head_url, token=token, agent_port=int(agent_port),
                       node_id=node.get("node_id"), job_id=job_id, job_env=job_env, cluster_env=cluster_env)
    env = runtime.job_env
    if eager_install is None:
        eager_install = (env.config or {}).get("eager_install", True)
    if eager_install and env.env:
        body = {"job_id": job_id, "serialized_runtime_env": env.serialized, "source_process": "driver"}
        if env.config is not None:
            body["runtime_env_config"] = env.config
        reply = runtime.agent_post("/get_or_create_runtime_env", body)
        if reply.get("status") != _OK:
            raise _exc.RuntimeEnvSetupError(reply.get("error_message") or "the node agent gave no reason")
        runtime.eager_env = env.serialized
    return runtime


def _resolve_cluster_env(head_url, token, ref):
    """The build of cluster env `ref` ("NAME:VERSION") as the head records it;
    ValueError naming the versions that can run when it cannot."""
    import urllib.parse

    from strata.cluster_env import parse_ref

    name, version = parse_ref(ref)
    base = "/api/cluster_environments/" + urllib.parse.quote(name, safe="")
    try:
        build = _http_request(head_url, "GET", f"{base}/builds/{version}", token=token)
    except _HTTPStatusError as error:
        if error.status in (400, 404):  # the head's message names the versions there are
            raise ValueError(f"cluster_env {ref!r}: {error.message}") from None
        raise
    except OSError as error:
        raise ConnectionError(f"cannot reach the Strata head at {head_url}: {error}") from None
    if build.get("status") != "SUCCEEDED":
        builds = _http_request(head_url, "GET", f"{base}/builds", token=token).get("builds") or []
        runnable = [str(b.get("version")) for b in builds if b.get("status") == "SUCCEEDED"]
        available = ", ".join(runnable) if runnable else f"none (no build of '{name}' succeeded)"
        raise ValueError(f"cluster_env {ref!r}: build {build.get('ref', ref)} is {build.get('status')}, "
                         f"not SUCCEEDED; available versions: {available}")
    return build


def _with_base_image(job_env, ref, build):
    """`job_env` with the private field that runs its workers in containers of
    the build's image (agent/container.h); every task and actor env inherits it."""
    for field in ("container", "image_uri"):
        if field in job_env:
            raise ValueError(f"cluster_env {ref!r} cannot be combined with runtime_env {field!r}: "
                             "workers run in one image")
    env = dict(job_env)
    env[_BASE_IMAGE_FIELD] = {"image_id": build.get("image_id"), "reference": build.get("image_ref")}
    return env


def _context(runtime):
    return InitContext(address=runtime.head_url, dashboard_url=runtime.head_url, node_id=runtime.node_id,
                       job_id=runtime.job_id, agent_port=runtime.agent_port, cluster_env=runtime.cluster_env)


def _get_or_init_runtime():
    runtime = _runtime
    if runtime is None:
        with _runtime_lock:
            if _runtime is None:
                init()
            runtime = _runtime
    return runtime


def is_initialized():
    return _runtime is not None


def shutdown():
    """Gives every worker back to the node agent (killing actors' workers)."""
    global _runtime
    with _runtime_lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.shutdown()


atexit.register(shutdown)


# --------------------------------------------------------------------------
# Worker mode (called by strata._worker)
# --------------------------------------------------------------------------


def _worker_enter(msg, worker_id):
    """Before a task or actor creation in a worker: the runtime for nested
    tasks, and the env they inherit."""
    global _runtime, _worker_current_env
    runtime = _runtime
    if runtime is None or runtime.job_id != msg.get("job_id"):
        with _runtime_lock:
            if _runtime is not None:
                _runtime.shutdown()
            _runtime = runtime = _Runtime(
                mode="worker", head_url=msg.get("head_url"), token=os.environ.get("STRATA_AUTH_TOKEN"),
                agent_port=msg.get("agent_port"), node_id=msg.get("node_id"), job_id=msg.get("job_id"),
                worker_id=worker_id)
    env = msg.get("runtime_env") or {}
    hook = env.get(_HOOK_FIELD)
    if isinstance(hook, str) and hook.startswith(_HOOK_PREFIX) and isinstance(msg.get("setup_hook"), bytes):
        _hooks[hook] = msg["setup_hook"]
    _worker_current_env = env


# --------------------------------------------------------------------------
# Runtime context
# --------------------------------------------------------------------------


class RuntimeContext:
    """Who and where this process is (Ray's get_runtime_context(), minimal)."""

    def _runtime(self):
        runtime = _runtime
        if runtime is None:
            raise RuntimeError("Strata is not initialized: call strata.init() first")
        return runtime

    def get_job_id(self):
        return self._runtime().job_id

    def get_node_id(self):
        return self._runtime().node_id

    def get_worker_id(self):
        return self._runtime().worker_id

    @property
    def job_id(self):
        return self.get_job_id()

    @property
    def node_id(self):
        return self.get_node_id()

    @property
    def worker_id(self):
        return self.get_worker_id()

    @property
    def runtime_env(self):
        """The env of the running task or actor (the job's env in a driver)."""
        return json.loads(self.get_runtime_env_string())

    def get_runtime_env_string(self):
        runtime = self._runtime()
        if runtime.mode == "worker":
            return _dumps_env(_worker_current_env or {})
        return runtime.job_env.json

    def get(self):
        runtime = self._runtime()
        return {"job_id": runtime.job_id, "node_id": runtime.node_id, "worker_id": runtime.worker_id,
                "runtime_env": self.runtime_env}


def get_runtime_context():
    return RuntimeContext()
