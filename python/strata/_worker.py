"""A Strata worker process: `python -m strata._worker --socket P --worker-id W --node-id N`.

The node agent starts it inside a runtime env (src/agent/worker_pool.h). It
listens on the Unix socket P (bound under a temporary name and renamed into
place, so the socket exists only once it accepts connections) and serves
one connection — one lease — at a time, with the protocol of
strata._private.protocol: tasks, or one actor's creation and method calls.
The setup hook of its env runs once, before the first task. Output of user
code goes to the process's stdout/stderr, which the agent sends to the
worker's log. A worker that served an actor exits when its connection ends.
"""
import os
import socket
import sys
import threading
import time
import traceback


def _parse_args(argv):
    options = {"--socket": None, "--worker-id": None, "--node-id": ""}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name not in options:
            raise SystemExit(f"strata._worker: unknown argument {arg!r}\n"
                             "usage: python -m strata._worker --socket PATH --worker-id ID --node-id NODE")
        if not eq:
            i += 1
            if i >= len(argv):
                raise SystemExit(f"strata._worker: {name} needs a value")
            value = argv[i]
        options[name] = value
        i += 1
    if not options["--socket"]:
        raise SystemExit("strata._worker: --socket is required")
    return options["--socket"], options["--worker-id"] or os.environ.get("STRATA_WORKER_ID", ""), options["--node-id"]


def _listen(path):
    """A listening socket at `path`, which appears only once it listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temp_name = f".{name}.{os.getpid()}.tmp"
    temp = os.path.join(directory, temp_name)
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass
    if len(os.fsencode(temp)) < 100:
        sock.bind(temp)
    else:  # longer than sun_path allows: bind relative to the directory (still single-threaded)
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chdir(directory)
            sock.bind(temp_name)
        finally:
            os.fchdir(cwd)
            os.close(cwd)
    sock.listen(16)
    os.rename(temp, path)
    return sock


def _watch_parent():
    """Exits when the process that started us (the agent) is gone."""
    parent = os.getppid()
    if parent <= 1:
        return

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="strata-parent-watch", daemon=True).start()


class Worker:
    def __init__(self, worker_id, node_id):
        import cloudpickle  # noqa: F401 - fail at start, not at the first task, when it is missing

        from strata import exceptions
        from strata._private import core, protocol

        self.core = core
        self.protocol = protocol
        self.exceptions = exceptions
        self.worker_id = worker_id
        self.node_id = node_id
        self.pid = os.getpid()
        self.functions = {}  # fn_id -> function
        self.hook_done = False
        self.hook_error = None  # the reply every request gets once the hook failed
        self.actor = None
        self.served_actor = False

    # ---- replies -------------------------------------------------------------

    def error_reply(self, error, tb_text, setup_failed=False):
        import cloudpickle
        import pickle

        data = None
        try:
            data = cloudpickle.dumps(error)
            pickle.loads(data)  # an exception that cannot be rebuilt travels as its traceback only
        except Exception:  # noqa: BLE001
            data = None
        cls = type(error)
        return {"ok": False, "error": data, "traceback": tb_text,
                "type": f"{cls.__module__}.{cls.__qualname__}", "pid": self.pid,
                "worker_id": self.worker_id, "node_id": self.node_id, "setup_failed": setup_failed}

    def exception_reply(self, error):
        # Leave out this module's frame: the traceback starts in user code.
        tb = error.__traceback__
        if tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(error), error, tb))
        return self.error_reply(error, text)

    # ---- setup hook ------------------------------------------------------------

    def run_setup_hook(self, msg):
        if self.hook_done:
            return self.hook_error
        self.hook_done = True
        hook = msg.get("setup_hook")
        if hook is None:
            return None
        env = msg.get("runtime_env") or {}
        key = self.core._hook_key(env.get("worker_process_setup_hook")) or repr(hook)
        try:
            if isinstance(hook, bytes):
                import pickle

                try:
                    function = pickle.loads(hook)
                except Exception:  # noqa: BLE001
                    raise self.exceptions.RuntimeEnvSetupError(
                        "Failed to deserialize the setup hook method.\n" + traceback.format_exc()) from None
            else:
                module_name, _, name = hook.rpartition(".")
                if not module_name:
                    raise ValueError(f"The setup hook {hook!r} must be 'module.function'")
                import importlib

                function = getattr(importlib.import_module(module_name), name)
            function()
        except self.exceptions.RuntimeEnvSetupError as error:
            self.hook_error = self.error_reply(error, str(error), setup_failed=True)
        except Exception as error:  # noqa: BLE001
            text = traceback.format_exc()
            message = (f"Failed to execute the setup hook method, {key} from "
                       f"``strata.init(runtime_env={{'worker_process_setup_hook': {key}}})``. "
                       f"{type(error).__name__}: {error}\n{text}")
            self.hook_error = self.error_reply(self.exceptions.RuntimeEnvSetupError(message), message,
                                               setup_failed=True)
        return self.hook_error

    # ---- requests ----------------------------------------------------------------

    def call(self, function, args, kwargs):
        try:
            value = function(*args, **kwargs)
            if hasattr(value, "__await__") and hasattr(value, "send"):  # an async def
                import asyncio

                value = asyncio.run(value)
        except Exception as error:  # noqa: BLE001
            return self.exception_reply(error)
        return {"ok": True, "value": value}

    def handle(self, raw):
        try:
            msg = self.protocol.loads(raw)
        except Exception as error:  # noqa: BLE001 - e.g. an argument whose class this env lacks
            return self.exception_reply(error)
        kind = msg.get("type")
        if kind == "call":
            if self.actor is None:
                return self.error_reply(RuntimeError("no actor in this worker"), "no actor in this worker")
            try:
                function = getattr(self.actor, msg["method"])
            except AttributeError as error:
                return self.exception_reply(error)
            return self.call(function, msg.get("args") or (), msg.get("kwargs") or {})
        if kind not in ("task", "create_actor"):
            return self.error_reply(ValueError(f"unknown request {kind!r}"), f"unknown request {kind!r}")
        self.core._worker_enter(msg, self.worker_id)
        failed = self.run_setup_hook(msg)
        if failed is not None:
            return failed
        if kind == "task":
            fn_id = msg.get("fn_id")
            function = self.functions.get(fn_id)
            if function is None:
                if msg.get("fn") is None:
                    return {"ok": False, "need_fn": True}
                try:
                    function = self.protocol.loads(msg["fn"])
                except Exception as error:  # noqa: BLE001
                    return self.exception_reply(error)
                self.functions[fn_id] = function
            return self.call(function, msg.get("args") or (), msg.get("kwargs") or {})
        # create_actor
        try:
            cls = self.protocol.loads(msg["cls"])
            self.actor = cls(*(msg.get("args") or ()), **(msg.get("kwargs") or {}))
        except Exception as error:  # noqa: BLE001
            return self.exception_reply(error)
        self.served_actor = True
        return {"ok": True, "value": None}

    def serve(self, conn):
        while True:
            try:
                raw = conn.recv_bytes()
            except (EOFError, OSError):
                return
            reply = self.handle(raw)
            try:
                data = self.protocol.dumps(reply)
            except Exception as error:  # noqa: BLE001 - e.g. a result that cannot be pickled
                text = f"Could not serialize the result: {type(error).__name__}: {error}"
                data = self.protocol.dumps(self.error_reply(TypeError(text), traceback.format_exc()))
            _flush()
            try:
                conn.send_bytes(data)
            except OSError:
                return


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass


def main(argv=None):
    socket_path, worker_id, node_id = _parse_args(sys.argv[1:] if argv is None else argv)
    if worker_id:
        os.environ.setdefault("STRATA_WORKER_ID", worker_id)
    worker = Worker(worker_id, node_id)
    listener = _listen(socket_path)
    _watch_parent()
    print(f"strata worker {worker_id} (pid {os.getpid()}) listening on {socket_path}", file=sys.stderr,
          flush=True)
    from strata._private import protocol

    try:
        while True:
            conn, _ = listener.accept()
            connection = protocol.Connection(conn)
            try:
                worker.serve(connection)
            finally:
                connection.close()
            if worker.served_actor:
                break
    finally:
        try:
            os.unlink(socket_path)
        except OSError:
            pass
        _flush()


if __name__ == "__main__":
    main()
