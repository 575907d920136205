"""Exceptions raised by the Strata runtime (Ray's names without the prefix)."""

__all__ = [
    "StrataError",
    "RuntimeEnvSetupError",
    "TaskError",
    "WorkerCrashedError",
    "ActorDiedError",
    "GetTimeoutError",
    "ClusterEnvBuildError",
]


class StrataError(Exception):
    """Base class of the runtime's errors."""


class RuntimeEnvSetupError(StrataError):
    """The runtime environment of a task, an actor or the job could not be built.

    `error_message` is the node agent's message (the failing package or
    command and the installer's last lines).
    """

    def __init__(self, error_message=None):
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self):
        lines = ["Failed to set up runtime environment."]
        if self.error_message:
            lines.append(str(self.error_message))
        return "\n".join(lines)


class ClusterEnvBuildError(StrataError):
    """A cluster environment build FAILED.

    `error_message` is the head's (the failing step and its last output
    lines); `build` the finished build (a strata.cluster_env.ClusterEnvBuild),
    when known.
    """

    def __init__(self, error_message=None, build=None):
        super().__init__(error_message)
        self.error_message = error_message
        self.build = build

    def __str__(self):
        ref = getattr(self.build, "ref", None)
        head = f"Cluster environment build {ref}" if ref else "A cluster environment build"
        head += " failed."
        return head + (f"\n{self.error_message}" if self.error_message else "")


class WorkerCrashedError(StrataError):
    """The worker process died while running a task."""


class ActorDiedError(StrataError):
    """The actor's process is gone (killed, crashed, or its constructor failed)."""


class GetTimeoutError(StrataError, TimeoutError):
    """strata.get() did not finish within its timeout."""


_task_error_classes = {}


def _rebuild_task_error(function_name, traceback_str, cause, pid, worker_id, node_id):
    return TaskError(function_name, traceback_str, cause, pid, worker_id, node_id).as_instanceof_cause()


class TaskError(StrataError):
    """A task or actor method raised: re-raised by strata.get() with the remote traceback.

    When the original exception's class allows it, the raised object is an
    instance of a dynamic subclass of both TaskError and that class, so
    `except ValueError:` still catches a remote ValueError. The original
    exception, when it could be transferred, is `cause`.
    """

    def __init__(self, function_name, traceback_str, cause=None, pid=None, worker_id=None,
                 node_id=None):
        super().__init__(function_name, traceback_str)
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.pid = pid
        self.worker_id = worker_id
        self.node_id = node_id

    def __str__(self):
        where = []
        if self.pid is not None:
            where.append(f"pid={self.pid}")
        if self.worker_id:
            where.append(f"worker_id={self.worker_id}")
        if self.node_id:
            where.append(f"node_id={self.node_id}")
        head = f"strata::{self.function_name}()"
        if where:
            head += " (" + ", ".join(where) + ")"
        return head + "\n" + self.traceback_str.rstrip("\n")

    def __reduce__(self):
        return (_rebuild_task_error, (self.function_name, self.traceback_str, self.cause, self.pid,
                                      self.worker_id, self.node_id))

    def as_instanceof_cause(self):
        """This error as an instance of TaskError and of the cause's class, when possible."""
        cause = self.cause
        # A nested task's error: use the innermost cause's class.
        while isinstance(cause, TaskError) and cause.cause is not None:
            cause = cause.cause
        if cause is None or isinstance(cause, TaskError) or not isinstance(cause, BaseException):
            return self
        cause_cls = type(cause)
        if not issubclass(cause_cls, Exception):
            return self
        cls = _task_error_classes.get(cause_cls)
        if cls is None:
            try:
                cls = _make_task_error_class(cause_cls)
            except Exception:  # noqa: BLE001 - layout conflicts, final classes, odd metaclasses
                cls = False
            _task_error_classes[cause_cls] = cls
        if cls is False:
            return self
        try:
            return cls(self)
        except Exception:  # noqa: BLE001 - a cause class whose __new__ wants other arguments
            return self


def _make_task_error_class(cause_cls):
    class _DynamicTaskError(TaskError, cause_cls):
        def __init__(self, task_error):
            # Skip both bases' __init__: the cause's may need arguments we lack.
            self.__dict__.update(task_error.__dict__)
            self.args = (task_error.function_name, task_error.traceback_str)

        def __getattr__(self, name):
            cause = self.__dict__.get("cause")
            if cause is None or name.startswith("__"):
                raise AttributeError(name)
            return getattr(cause, name)

        def __str__(self):
            return TaskError.__str__(self)

        def __repr__(self):
            return f"{type(self).__name__}({self.function_name!r})"

    name = f"TaskError({cause_cls.__name__})"
    _DynamicTaskError.__name__ = name
    _DynamicTaskError.__qualname__ = name
    _DynamicTaskError.__module__ = __name__
    return _DynamicTaskError
