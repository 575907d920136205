"""Cluster environments on a Strata head: numbered, immutable image builds
from a spec (Anyscale's shape), which jobs and drivers run in.

    from strata.cluster_env import ClusterEnvClient

    client = ClusterEnvClient("http://127.0.0.1:8265")
    build = client.build("ml", {"base_image": "localhost/debian-py:bookworm",
                                "python": {"pip_packages": ["requests"]}},
                         log=print)
    print(build.ref, build.digest)           # ml:1 sha256:...
    JobSubmissionClient().submit_job("python3 main.py", cluster_env=build.ref)
    strata.init(cluster_env="ml:1")          # tasks' workers run in the image

A spec is a dict, YAML (or JSON) text, or the path of a YAML or JSON file;
the head validates it (src/model/cluster_env_spec.h) and its message comes
back as ValueError. The head's HTTP API is documented in
src/head/head_server.h; ``strata cluster-env`` is the CLI over the same routes.

Errors: a head that cannot be reached raises ConnectionError; a request the
head refuses as invalid (400: a bad spec, name or version) raises ValueError
with its message; other error statuses (404 for an unknown env or build)
raise RuntimeError("Request failed with status code <code>: <message>."); a
build that FAILED raises strata.exceptions.ClusterEnvBuildError when waited
for.

Thread-safety: as strata.job_submission's client (see _private/head_client.py).
"""

import dataclasses
import os
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from strata._private.head_client import HeadClient, HeadHTTPError, LogTail
from strata.exceptions import ClusterEnvBuildError

__all__ = [
    "ClusterEnvClient",
    "ClusterEnv",
    "ClusterEnvBuild",
    "ClusterEnvBuildError",
    "build",
    "get_build",
    "parse_ref",
]

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
_TERMINAL = (SUCCEEDED, FAILED)
# How often wait() asks for the status once the log stream has ended early.
_POLL_INTERVAL_S = 0.2
_SPEC_FILE_SUFFIXES = (".yaml", ".yml", ".json")
_BASE_PATH = "/api/cluster_environments"

Spec = Union[Dict[str, Any], str, "os.PathLike[str]"]


def _from_json(cls, data: Dict[str, Any]):
    """`cls` from the head's JSON; fields this SDK does not know (from a newer
    head) are ignored."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass
class ClusterEnvBuild:
    """One build, NAME:VERSION (``ref``). ``status``: PENDING, IN_PROGRESS,
    SUCCEEDED or FAILED. ``spec``: the frozen, canonical spec. The image
    fields are empty until SUCCEEDED (``registry_ref`` and ``oci_archive``
    also when the head does not push or export). Times are milliseconds since
    the epoch, None until they happen."""

    name: str = ""
    version: int = 0
    ref: str = ""
    status: str = ""
    spec: Dict[str, Any] = dataclasses.field(default_factory=dict)
    image_ref: str = ""
    image_id: str = ""
    digest: str = ""
    registry_ref: str = ""
    oci_archive: str = ""
    created_ms: Optional[int] = None
    started_ms: Optional[int] = None
    finished_ms: Optional[int] = None
    error_message: str = ""

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "ClusterEnvBuild":
        return _from_json(cls, data)

    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    def dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ClusterEnv:
    """A cluster environment (a name and its builds). ``builds`` is filled by
    ClusterEnvClient.get only (None in lists)."""

    name: str = ""
    created_ms: Optional[int] = None
    archived: bool = False
    archived_ms: Optional[int] = None
    latest_version: int = 0
    build_count: int = 0
    latest_succeeded_version: Optional[int] = None
    builds: Optional[List[ClusterEnvBuild]] = None

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "ClusterEnv":
        env = _from_json(cls, data)
        if env.builds is not None:
            env.builds = [ClusterEnvBuild.from_json(b) for b in env.builds]
        return env

    def dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def parse_ref(ref: str) -> Tuple[str, int]:
    """("ml", 3) of "ml:3"; ValueError for anything else."""
    name, sep, version = ref.rpartition(":") if isinstance(ref, str) else ("", "", "")
    if not sep or not name or not version.isdigit() or int(version) <= 0:
        raise ValueError(
            f"cluster env reference {ref!r} must be NAME:VERSION with a positive version, "
            "e.g. 'ml:3'"
        )
    return name, int(version)


def _spec_body(spec: Spec) -> Any:
    """What goes in the request's "spec": the dict, or YAML/JSON text (read
    from the file when `spec` names one)."""
    if isinstance(spec, dict):
        return spec
    if isinstance(spec, os.PathLike) or (
        isinstance(spec, str)
        and "\n" not in spec
        and (os.path.isfile(spec) or spec.endswith(_SPEC_FILE_SUFFIXES))
    ):
        with open(spec, encoding="utf-8") as f:
            return f.read()
    if isinstance(spec, str):
        return spec
    raise TypeError(f"spec must be a dict, YAML text or a file path, got {type(spec).__name__}")


class _LineSplitter:
    """Feeds `log` whole lines (without their newline) of a text stream."""

    def __init__(self, log: Callable[[str], Any]):
        self._log = log
        self._partial = ""

    def feed(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._log(line)

    def close(self) -> None:
        if self._partial:
            self._log(self._partial)
            self._partial = ""


class ClusterEnvClient(HeadClient):
    """Builds and inspects cluster environments on a Strata head.

    ``address``: the head's URL (``http://host:port``); default
    ``STRATA_ADDRESS``, else http://127.0.0.1:8265. The token of
    ``STRATA_AUTH_TOKEN``, when set, is sent as ``Authorization: Bearer``;
    ``headers`` go with every request. The head is contacted once here:
    ConnectionError when it cannot be reached.
    """

    def _request_json(self, method: str, path: str, body: Optional[Any] = None) -> Any:
        try:
            return super()._request_json(method, path, body)
        except HeadHTTPError as error:
            if error.status == 400:
                raise ValueError(error.message) from None
            raise

    @staticmethod
    def _env_path(name: str, suffix: str = "") -> str:
        return _BASE_PATH + "/" + urllib.parse.quote(name, safe="") + suffix

    def _build_path(self, ref: str, suffix: str = "") -> str:
        name, version = parse_ref(ref)
        return self._env_path(name, f"/builds/{version}{suffix}")

    @staticmethod
    def _ref(name_or_ref: str, version: Optional[int]) -> str:
        return name_or_ref if version is None else f"{name_or_ref}:{version}"

    def build(
        self,
        name: str,
        spec: Spec,
        *,
        wait: bool = True,
        timeout: Optional[float] = None,
        log: Optional[Callable[[str], Any]] = None,
    ) -> ClusterEnvBuild:
        """Starts build NAME:<next version> of ``spec``. With ``wait`` (the
        default), follows its log (each line to ``log`` when given) and
        returns the build once it SUCCEEDED; raises ClusterEnvBuildError when
        it FAILED and TimeoutError when ``timeout`` seconds pass first (the
        build goes on). Without ``wait``, returns the PENDING build at once.
        A spec the head refuses raises ValueError naming the key."""
        started = ClusterEnvBuild.from_json(
            self._request_json("POST", self._env_path(name, "/builds"), {"spec": _spec_body(spec)})
        )
        if not wait:
            return started
        return self.wait(started.ref, timeout=timeout, log=log)

    def wait(
        self,
        ref: str,
        timeout: Optional[float] = None,
        *,
        log: Optional[Callable[[str], Any]] = None,
    ) -> ClusterEnvBuild:
        """The build ``ref`` ("NAME:VERSION") once it has finished (its log
        lines to ``log`` from the start, when given): returned when it
        SUCCEEDED, ClusterEnvBuildError when it FAILED, TimeoutError when
        ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        timed_out = f"cluster env build {ref} did not finish within {timeout} s"

        def remaining() -> Optional[float]:
            if deadline is None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(timed_out)
            return left

        lines = _LineSplitter(log) if log is not None else None
        tail = self.tail_logs(ref)
        try:
            while True:
                tail.set_timeout(remaining())
                try:
                    chunk = next(tail)
                except StopIteration:
                    break
                except TimeoutError:  # socket.timeout: the deadline passed during a silent step
                    raise TimeoutError(timed_out) from None
                if lines is not None:
                    lines.feed(chunk)
        finally:
            tail.close()
            if lines is not None:
                lines.close()
        # The stream ends when the build has; poll in case it was cut short.
        while True:
            build = self.get_build(ref)
            if build.is_terminal():
                break
            left = remaining()
            time.sleep(_POLL_INTERVAL_S if left is None else min(_POLL_INTERVAL_S, left))
        if build.status == FAILED:
            raise ClusterEnvBuildError(build.error_message, build)
        return build

    def get_build(self, name_or_ref: str, version: Optional[int] = None) -> ClusterEnvBuild:
        """Build ``"NAME:VERSION"``, or ``(name, version)``."""
        path = self._build_path(self._ref(name_or_ref, version))
        return ClusterEnvBuild.from_json(self._request_json("GET", path))

    def list(self, include_archived: bool = False) -> List[ClusterEnv]:
        """Every cluster environment by name (archived ones when asked)."""
        path = _BASE_PATH + ("?include_archived=1" if include_archived else "")
        envs = self._request_json("GET", path)["cluster_environments"]
        return [ClusterEnv.from_json(e) for e in envs]

    def get(self, name: str) -> ClusterEnv:
        """The environment ``name`` with its builds."""
        return ClusterEnv.from_json(self._request_json("GET", self._env_path(name)))

    def builds(self, name: str) -> List[ClusterEnvBuild]:
        """The builds of ``name`` in version order."""
        builds = self._request_json("GET", self._env_path(name, "/builds"))["builds"]
        return [ClusterEnvBuild.from_json(b) for b in builds]

    def logs(self, ref: str) -> str:
        """The build log of ``ref`` so far."""
        return self._request_json("GET", self._build_path(ref, "/logs"))["logs"]

    def tail_logs(self, ref: str) -> LogTail:
        """The build log of ``ref`` from its start, chunk by chunk as it is
        written, until the build has finished (``for`` or ``async for``). An
        unknown build raises here, before iterating."""
        try:
            return self._tail(self._build_path(ref, "/logs/tail"))
        except HeadHTTPError as error:
            if error.status == 400:
                raise ValueError(error.message) from None
            raise

    def archive(self, name: str) -> bool:
        """Hides ``name`` from list() (its builds stay usable); a new build
        un-archives it."""
        return bool(self._request_json("POST", self._env_path(name, "/archive"))["archived"])


def build(
    name: str, spec: Spec, *, address: Optional[str] = None, **kwargs: Any
) -> ClusterEnvBuild:
    """ClusterEnvClient(address).build(name, spec, **kwargs)."""
    return ClusterEnvClient(address).build(name, spec, **kwargs)


def get_build(
    name_or_ref: str, version: Optional[int] = None, *, address: Optional[str] = None
) -> ClusterEnvBuild:
    """ClusterEnvClient(address).get_build(name_or_ref, version)."""
    return ClusterEnvClient(address).get_build(name_or_ref, version)
