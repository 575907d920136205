"""strata.job_submission against a real head started with `strata start --head`
(its own STRATA_HOME and session in a temporary directory, a bearer token).
Run by tests/python/run.sh."""

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from strata import _native
from strata.job_submission import JobDetails, JobStatus, JobSubmissionClient, _resolve_address

TOKEN = "python-sdk-test-token"


def strata_bin() -> str:
    if os.environ.get("STRATA_BIN"):
        return os.environ["STRATA_BIN"]
    return str(Path(_native.__file__).resolve().parents[2] / "strata")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Env:
    """Sets environment variables for a block; restores them after."""

    def __init__(self, **values):
        self.values = values

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        for k, v in self.values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class AddressResolution(unittest.TestCase):
    def test_argument_then_variable_then_default(self):
        with Env(STRATA_ADDRESS="http://10.1.2.3:9000/?cluster_env=ml:3"):
            self.assertEqual(_resolve_address(None), "http://10.1.2.3:9000")
            self.assertEqual(_resolve_address("auto"), "http://10.1.2.3:9000")
            self.assertEqual(_resolve_address("http://h:1/"), "http://h:1")
        with Env(STRATA_ADDRESS=None):
            self.assertEqual(_resolve_address(None), "http://127.0.0.1:8265")
        self.assertEqual(_resolve_address("127.0.0.1:8266"), "http://127.0.0.1:8266")
        with self.assertRaises(ValueError):
            _resolve_address("ftp://h:1")

    def test_unreachable_head(self):
        with self.assertRaises(ConnectionError):
            JobSubmissionClient(f"http://127.0.0.1:{free_port()}")


class TestHead:
    """A head started with `strata start` in STRATA_HOME and a session under
    `tmp`, requiring the test token; while it runs, this process's
    environment points at it (STRATA_ADDRESS unset)."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update(
            STRATA_HOME=str(tmp / "home"),
            STRATA_SESSION_DIR=str(tmp / "session"),
            STRATA_AUTH_TOKEN=TOKEN,
            STRATA_JOB_STOP_GRACE_S="1",
        )
        self.env.pop("STRATA_ADDRESS", None)
        self._saved = Env(**{k: self.env.get(k) for k in
                             ("STRATA_HOME", "STRATA_SESSION_DIR", "STRATA_AUTH_TOKEN",
                              "STRATA_ADDRESS")})

    def start(self):
        self._saved.__enter__()
        started = subprocess.run(
            [strata_bin(), "start", "--head", "--port", str(self.port)],
            env=self.env, capture_output=True, text=True, timeout=60,
        )
        if started.returncode != 0:
            raise RuntimeError(f"strata start failed: {started.stdout}{started.stderr}")

    def stop(self):
        try:
            subprocess.run([strata_bin(), "stop"], env=self.env, capture_output=True, timeout=60)
        finally:
            self._saved.__exit__()


class JobSubmission(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="strata-pysdk-"))
        cls.head = TestHead(cls.tmp)
        cls.address = cls.head.address
        try:
            cls.head.start()
            cls.client = JobSubmissionClient(cls.address)
        except BaseException:
            cls.tearDownClass()  # unittest does not call it when setUpClass fails
            raise

    @classmethod
    def tearDownClass(cls):
        cls.head.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def wait_for(self, job_id, statuses, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            status = self.client.get_job_status(job_id)
            if status in statuses:
                return status
            if status.is_terminal() or time.monotonic() > deadline:
                info = self.client.get_job_info(job_id)
                logs = self.client.get_job_logs(job_id)
                self.fail(f"job {job_id} is {status}, not {statuses}: {info.message}\n{logs}")
            time.sleep(0.1)

    def submit_python(self, code, **kwargs):
        """A job running `python3 -u -c code`."""
        script = self.tmp / f"job_{time.monotonic_ns()}.py"
        script.write_text(code)
        return self.client.submit_job(f"python3 -u {script}", **kwargs)

    def test_working_dir_job_succeeds(self):
        work = self.tmp / "project"
        (work / "pkg").mkdir(parents=True)
        (work / "pkg" / "__init__.py").write_text("GREETING = 'hello from working_dir'\n")
        (work / "data.txt").write_text("payload-42\n")
        (work / "main.py").write_text(
            "import os, pkg\n"
            "print(pkg.GREETING)\n"
            "print(open('data.txt').read().strip(), os.environ['MY_VAR'])\n"
        )
        job_id = self.client.submit_job(
            entrypoint="python3 main.py",
            runtime_env={"working_dir": str(work), "env_vars": {"MY_VAR": "set"}},
            metadata={"owner": "tests"},
        )
        self.assertEqual(self.wait_for(job_id, {JobStatus.SUCCEEDED}), JobStatus.SUCCEEDED)
        logs = self.client.get_job_logs(job_id)
        self.assertIn("hello from working_dir", logs)
        self.assertIn("payload-42 set", logs)
        info = self.client.get_job_info(job_id)
        self.assertIsInstance(info, JobDetails)
        self.assertEqual(info.submission_id, job_id)
        self.assertEqual(info.entrypoint, "python3 main.py")
        self.assertEqual(info.status, JobStatus.SUCCEEDED)
        self.assertEqual(info.driver_exit_code, 0)
        self.assertEqual(info.metadata, {"owner": "tests"})
        self.assertTrue(info.runtime_env["working_dir"].startswith("gcs://_strata_pkg_"))
        self.assertEqual(info.runtime_env["env_vars"], {"MY_VAR": "set"})
        self.assertIsInstance(info.start_time, int)
        self.assertGreaterEqual(info.end_time, info.start_time)

    def test_failed_job(self):
        job_id = self.submit_python("import sys; print('bye'); sys.exit(3)")
        self.assertEqual(self.wait_for(job_id, {JobStatus.FAILED}), JobStatus.FAILED)
        info = self.client.get_job_info(job_id)
        self.assertEqual(info.driver_exit_code, 3)
        self.assertIn("bye", self.client.get_job_logs(job_id))

    def test_tail_logs_of_a_running_job(self):
        job_id = self.submit_python(
            "import time\n"
            "for i in range(4):\n"
            "    print(f'line {i}', flush=True)\n"
            "    time.sleep(0.5)\n"
        )
        chunks = []
        status_at_first_chunk = None
        for chunk in self.client.tail_job_logs(job_id):
            if not chunks:
                status_at_first_chunk = self.client.get_job_status(job_id)
            chunks.append(chunk)
        text = "".join(chunks)
        for i in range(4):
            self.assertIn(f"line {i}", text)
        # The first chunk came while the job was still running: streamed, not
        # read at the end.
        self.assertEqual(status_at_first_chunk, JobStatus.RUNNING)
        self.assertEqual(self.wait_for(job_id, {JobStatus.SUCCEEDED}), JobStatus.SUCCEEDED)

    def test_tail_logs_with_async_for(self):
        job_id = self.submit_python("print('async tail works')")

        async def collect():
            return "".join([chunk async for chunk in self.client.tail_job_logs(job_id)])

        self.assertIn("async tail works", asyncio.run(collect()))

    def test_stop_job(self):
        job_id = self.submit_python("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
        self.wait_for(job_id, {JobStatus.RUNNING})
        self.assertTrue(self.client.stop_job(job_id))
        self.assertEqual(self.wait_for(job_id, {JobStatus.STOPPED}, 30), JobStatus.STOPPED)
        self.assertFalse(self.client.stop_job(job_id))

    def test_delete_job(self):
        running = self.submit_python("import time; time.sleep(60)")
        self.wait_for(running, {JobStatus.RUNNING})
        with self.assertRaises(RuntimeError) as e:
            self.client.delete_job(running)
        self.assertIn("status code 400", str(e.exception))
        self.client.stop_job(running)
        self.wait_for(running, {JobStatus.STOPPED}, 30)
        self.assertTrue(self.client.delete_job(running))
        with self.assertRaises(RuntimeError) as e:
            self.client.get_job_info(running)
        self.assertIn("status code 404", str(e.exception))
        self.assertIn("does not exist", str(e.exception))
        self.assertNotIn(running, [j.submission_id for j in self.client.list_jobs()])

    def test_list_jobs(self):
        ids = [self.submit_python(f"print({i})", submission_id=f"listed-{i}") for i in range(2)]
        self.assertEqual(ids, ["listed-0", "listed-1"])
        for job_id in ids:
            self.wait_for(job_id, {JobStatus.SUCCEEDED})
        jobs = self.client.list_jobs()
        self.assertTrue(all(isinstance(j, JobDetails) for j in jobs))
        listed = [j.submission_id for j in jobs]
        self.assertLess(listed.index("listed-0"), listed.index("listed-1"))
        with self.assertRaises(RuntimeError) as e:
            self.submit_python("pass", submission_id="listed-0")
        self.assertIn("already exists", str(e.exception))

    def test_errors(self):
        with self.assertRaises(RuntimeError) as e:
            self.client.get_job_status("no-such-job")
        self.assertIn("Job no-such-job does not exist", str(e.exception))
        with self.assertRaises(RuntimeError):
            self.client.tail_job_logs("no-such-job")
        # Invalid envs fail here, with the model's message, before any request.
        with self.assertRaises(TypeError) as e:
            self.client.submit_job("true", runtime_env={"pip": 1})
        self.assertIn("runtime_env['pip'] must be of type str or List[str]", str(e.exception))
        with self.assertRaises(ValueError):
            self.client.submit_job("true", runtime_env={"worker_process_setup_hook": print})
        # The head refuses a bad request with Ray's message.
        with self.assertRaises(RuntimeError) as e:
            self.client.submit_job("true", metadata={"a": 1})
        self.assertIn("status code 400", str(e.exception))

    def test_token_is_required(self):
        with Env(STRATA_AUTH_TOKEN=None):
            with self.assertRaises(RuntimeError) as e:
                JobSubmissionClient(self.address)
        self.assertIn("status code 401", str(e.exception))

    def test_address_from_environment(self):
        with Env(STRATA_ADDRESS=self.address + "?cluster_env=ml:1"):
            client = JobSubmissionClient()
        self.assertEqual(client.address, self.address)
        self.assertEqual(client.get_version(), "4")  # Ray's Job API version
        # The head and the SDK come from the same release.
        self.assertEqual(client._version["strata_version"], _native.version())


if __name__ == "__main__":
    unittest.main()
