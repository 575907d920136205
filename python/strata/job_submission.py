"""Ray's Job Submission SDK against a Strata head.

    from strata.job_submission import JobSubmissionClient, JobStatus

    client = JobSubmissionClient("http://127.0.0.1:8265")
    job_id = client.submit_job(entrypoint="python script.py",
                               runtime_env={"working_dir": "./", "pip": ["requests"]})
    print(client.get_job_status(job_id))
    for chunk in client.tail_job_logs(job_id):
        print(chunk, end="")

The head's HTTP API is documented in src/head/head_server.h. Only the standard
library speaks HTTP here; a local ``working_dir`` / ``py_modules`` is packaged
and uploaded by Strata's C++ packaging (``strata._native``), as
``strata job submit`` does.

Differences from Ray: ``tail_job_logs`` returns an iterator that works both
with ``for`` (blocking) and with ``async for`` (each read runs in a thread),
where Ray's is async only; ``submit_job`` also takes
``cluster_env="NAME:VERSION"`` (strata.cluster_env) to run the job in that
build's image. Errors: a head that cannot be reached raises ConnectionError;
an HTTP error status raises RuntimeError("Request failed with status code
<code>: <the head's message>."), as Ray's client does.
"""

import dataclasses
import enum
import urllib.parse
from typing import Any, Dict, List, Optional, Union

from strata._private.head_client import HeadClient, LogTail
# Its former home: callers import it from here.
from strata._private.head_client import resolve_address as _resolve_address  # noqa: F401
from strata.runtime_env import normalize, upload_local_paths

__all__ = ["JobSubmissionClient", "JobStatus", "JobDetails", "JobType"]


class JobStatus(str, enum.Enum):
    """The status of a job (Ray's ``JobStatus``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return f"{self.value}"

    def is_terminal(self) -> bool:
        return self.value in {"STOPPED", "SUCCEEDED", "FAILED"}


class JobType(str, enum.Enum):
    SUBMISSION = "SUBMISSION"
    DRIVER = "DRIVER"

    def __str__(self) -> str:
        return f"{self.value}"


@dataclasses.dataclass
class JobDetails:
    """Ray's ``JobDetails``: what ``GET /api/jobs/{id}`` answers. Times are
    milliseconds since the epoch."""

    type: Union[JobType, str] = JobType.SUBMISSION
    job_id: Optional[str] = None
    submission_id: Optional[str] = None
    driver_info: Optional[Dict[str, Any]] = None
    status: JobStatus = JobStatus.PENDING
    entrypoint: str = ""
    message: Optional[str] = None
    error_type: Optional[str] = None
    start_time: Optional[int] = None
    end_time: Optional[int] = None
    metadata: Optional[Dict[str, str]] = None
    runtime_env: Optional[Dict[str, Any]] = None
    driver_agent_http_address: Optional[str] = None
    driver_node_id: Optional[str] = None
    driver_exit_code: Optional[int] = None
    entrypoint_num_cpus: Optional[Union[int, float]] = None
    entrypoint_num_gpus: Optional[Union[int, float]] = None
    entrypoint_memory: Optional[int] = None
    entrypoint_resources: Optional[Dict[str, float]] = None

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "JobDetails":
        """Fields this SDK does not know (from a newer head) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        details = cls(**{k: v for k, v in data.items() if k in names})
        try:
            details.status = JobStatus(details.status)
        except ValueError:
            pass
        try:
            details.type = JobType(details.type)
        except ValueError:
            pass
        return details

    def dict(self) -> Dict[str, Any]:
        """The fields as a dict (pydantic's spelling, which Ray users call)."""
        return dataclasses.asdict(self)


class JobSubmissionClient(HeadClient):
    """Submits and manages jobs on a Strata head (Ray's ``JobSubmissionClient``).

    ``address``: the head's URL (``http://host:port``); default
    ``STRATA_ADDRESS``, else http://127.0.0.1:8265. A ``?cluster_env=NAME:VERSION``
    query of the address (or of ``STRATA_ADDRESS``) is the default
    ``cluster_env`` of submitted jobs. The token of ``STRATA_AUTH_TOKEN``,
    when set, is sent as ``Authorization: Bearer``. ``metadata`` is added to
    every submitted job's metadata; ``headers`` to every request. The head is
    contacted once here: ConnectionError when it cannot be reached.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        headers: Optional[Dict[str, str]] = None,
    ):
        super().__init__(address, headers)
        self._default_metadata = dict(metadata or {})

    @staticmethod
    def _job_path(job_id: str, suffix: str = "") -> str:
        return "/api/jobs/" + urllib.parse.quote(job_id, safe="") + suffix

    # --- Ray's API ----------------------------------------------------------

    def submit_job(
        self,
        entrypoint: str,
        *,
        submission_id: Optional[str] = None,
        runtime_env: Optional[Dict[str, Any]] = None,
        metadata: Optional[Dict[str, str]] = None,
        entrypoint_num_cpus: Optional[Union[int, float]] = None,
        entrypoint_num_gpus: Optional[Union[int, float]] = None,
        entrypoint_memory: Optional[int] = None,
        entrypoint_resources: Optional[Dict[str, float]] = None,
        job_id: Optional[str] = None,
        cluster_env: Optional[str] = None,
    ) -> str:
        """Submits ``entrypoint`` (a shell command run on the head node inside
        ``runtime_env``); returns the submission id. A local ``working_dir`` or
        ``py_modules`` path is packaged and uploaded first. ``job_id`` is the
        deprecated name of ``submission_id``.

        ``cluster_env`` (``"NAME:VERSION"``, Strata's extension) runs the job
        in a container of that cluster environment build's image; default:
        the address's ``?cluster_env=``. A build that cannot run raises
        RuntimeError with the head's message, which lists the versions that
        can."""
        runtime_env = dict(runtime_env or {})
        hook = runtime_env.get("worker_process_setup_hook")
        if hook and not isinstance(hook, str):
            raise ValueError(
                f"Invalid type {type(hook)} for `worker_process_setup_hook`. When a job "
                "submission API is used, `worker_process_setup_hook` only allows a string "
                "type (module name). Specify `worker_process_setup_hook` via strata.init "
                "within a driver to use a `Callable` type."
            )
        if runtime_env.get("working_dir") or runtime_env.get("py_modules"):
            env = upload_local_paths(runtime_env, self._address, self._token)
        else:
            env = normalize(runtime_env)
        all_metadata = dict(metadata or {})
        all_metadata.update(self._default_metadata)
        request = {
            "entrypoint": entrypoint,
            "submission_id": submission_id or job_id,
            "runtime_env": env or None,
            "metadata": all_metadata or None,
            "entrypoint_num_cpus": entrypoint_num_cpus,
            "entrypoint_num_gpus": entrypoint_num_gpus,
            "entrypoint_memory": entrypoint_memory,
            "entrypoint_resources": entrypoint_resources,
            "cluster_env": cluster_env or self._address_cluster_env,
        }
        request = {k: v for k, v in request.items() if v is not None}
        return self._request_json("POST", "/api/jobs/", request)["submission_id"]

    def get_job_info(self, job_id: str) -> JobDetails:
        return JobDetails.from_json(self._request_json("GET", self._job_path(job_id)))

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job_info(job_id).status

    def list_jobs(self) -> List[JobDetails]:
        """Every job of the head, in submission order."""
        return [JobDetails.from_json(d) for d in self._request_json("GET", "/api/jobs/")]

    def get_job_logs(self, job_id: str) -> str:
        """The job's output so far (stdout and stderr)."""
        return self._request_json("GET", self._job_path(job_id, "/logs"))["logs"]

    def tail_job_logs(self, job_id: str) -> LogTail:
        """The job's output from its start, chunk by chunk as it is written,
        until the job finishes. Use ``for chunk in ...`` (each step blocks
        until output arrives) or ``async for chunk in ...`` as with Ray. An
        unknown job raises RuntimeError here, before iterating."""
        return self._tail(self._job_path(job_id, "/logs/tail"))

    def stop_job(self, job_id: str) -> bool:
        """Asks the job to stop (SIGTERM, then SIGKILL after a grace period);
        True when it was running, False when it had already finished."""
        return bool(self._request_json("POST", self._job_path(job_id, "/stop"))["stopped"])

    def delete_job(self, job_id: str) -> bool:
        """Deletes a finished job and its logs; RuntimeError if it is still
        running."""
        return bool(self._request_json("DELETE", self._job_path(job_id))["deleted"])

    def get_version(self) -> str:
        return self._version.get("version", "") if isinstance(self._version, dict) else ""
