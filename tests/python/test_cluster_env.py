"""strata.cluster_env, jobs pinned to a build and strata.init(cluster_env=...)
against a real head started with `strata start --head`, building with podman
from a tiny base image made here from the host's sh, cat and echo (no apt, no
Python: specs use env_vars and post_build_cmds only). Skipped without podman.
Run by tests/python/run.sh."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

import strata
from strata._private import core
from strata.cluster_env import ClusterEnv, ClusterEnvBuild, ClusterEnvClient, parse_ref
from strata.exceptions import ClusterEnvBuildError
from strata.job_submission import JobStatus, JobSubmissionClient

from test_job_submission import Env, TestHead

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
# A Debian image with python3 that other tests may have left; used only by the
# optional check of a task running inside a cluster env.
PYTHON_BASE_IMAGE = "localhost/strata-test-base:1"


def podman(*args, check=True, timeout=300):
    result = subprocess.run(PODMAN + list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


def make_tiny_image(work: Path, reference: str) -> None:
    """`reference`: the host's sh, cat and echo with their libraries and the loader."""
    rootfs = work / "rootfs"
    for binary in ("/bin/sh", "/bin/cat", "/bin/echo"):
        real = os.path.realpath(binary)
        libraries = subprocess.run(["ldd", real], capture_output=True, text=True).stdout
        files = [binary] + [word for word in libraries.split() if word.startswith("/")]
        for file in files:
            target = rootfs / file.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(file, target)  # follows symlinks
    (rootfs / "tmp").mkdir(exist_ok=True)
    archive = work / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
    podman("import", "--change", "ENV PATH=/usr/bin:/bin", str(archive), reference)


@unittest.skipUnless(shutil.which("podman"), "podman is not installed")
class ClusterEnvs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="strata-pysdk-ce-"))
        cls.tag = f"{os.getpid()}-{os.urandom(3).hex()}"
        cls.base = f"localhost/strata-pytest/base-{cls.tag}:1"
        cls.name = f"pytest-{cls.tag}"
        cls.head = TestHead(cls.tmp)
        cls.address = cls.head.address
        try:
            make_tiny_image(cls.tmp, cls.base)
            cls.head.start()
            cls.client = ClusterEnvClient(cls.address)
            cls.jobs = JobSubmissionClient(cls.address)
            cls.log_lines = []
            cls.first = cls.client.build(cls.name, cls.spec("first"), log=cls.log_lines.append,
                                         timeout=300)
        except BaseException:
            cls.tearDownClass()  # unittest does not call it when setUpClass fails
            raise

    @classmethod
    def tearDownClass(cls):
        # Each step runs even when an earlier one fails: images and heads must not outlive the test.
        try:
            strata.shutdown()
        finally:
            try:
                cls.head.stop()
            finally:
                listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", check=False)
                for image in listed.stdout.split():
                    if cls.tag in image:
                        podman("rmi", "-f", image, check=False)
                shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def spec(cls, word, base=None):
        return {
            "base_image": base or cls.base,
            "env_vars": {"GREETING": f"hello {word}"},
            "post_build_cmds": [f"echo built {word} > /built.txt", "echo post-build step done"],
        }

    def wait_for_job(self, job_id, timeout=120.0):
        deadline = time.monotonic() + timeout
        while True:
            status = self.jobs.get_job_status(job_id)
            if status.is_terminal():
                return status
            if time.monotonic() > deadline:
                self.fail(f"job {job_id} is still {status}: {self.jobs.get_job_logs(job_id)}")
            time.sleep(0.2)

    def test_build_succeeds(self):
        build = self.first
        self.assertIsInstance(build, ClusterEnvBuild)
        self.assertEqual((build.name, build.version, build.ref), (self.name, 1, f"{self.name}:1"))
        self.assertEqual(build.status, "SUCCEEDED")
        self.assertTrue(build.digest.startswith("sha256:"), build.digest)
        self.assertEqual(build.image_ref, f"localhost/strata/{self.name}:1")
        self.assertRegex(build.image_id, r"^[0-9a-f]{64}$")
        self.assertEqual(build.error_message, "")
        self.assertEqual(build.spec["env_vars"], {"GREETING": "hello first"})
        self.assertLessEqual(build.created_ms, build.started_ms)
        self.assertLessEqual(build.started_ms, build.finished_ms)
        # The log went to `log` line by line, as the head recorded it.
        self.assertIn("post-build step done", self.log_lines)
        self.assertTrue(all("\n" not in line for line in self.log_lines))
        self.assertIn("post-build step done", self.client.logs(build.ref))
        self.assertIn("post-build step done", "".join(self.client.tail_logs(build.ref)))
        self.assertEqual(self.client.get_build(build.ref), build)
        self.assertEqual(self.client.get_build(self.name, 1), build)
        self.assertEqual(self.client.wait(build.ref, timeout=10), build)
        self.assertEqual(strata.cluster_env.get_build(build.ref, address=self.address), build)
        # The image holds what the spec asked for.
        shown = podman("run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024",
                       "--ulimit", "nproc=1024:1024", build.image_ref,
                       "/bin/sh", "-c", 'cat /built.txt; echo "$GREETING"')
        self.assertEqual(shown.stdout, "built first\nhello first\n")

    def test_versions_and_a_failed_build(self):
        second = self.client.build(self.name, self.spec("second"), timeout=300)
        self.assertEqual((second.version, second.status), (2, "SUCCEEDED"))
        self.assertNotEqual(second.image_id, self.first.image_id)
        bad = self.spec("bad")
        # The marker is computed, so it is in the message only as the command's output.
        bad["post_build_cmds"] = ['echo "about to fail: marker-$((7000 + 781))"; exit 3']
        with self.assertRaises(ClusterEnvBuildError) as raised:
            self.client.build(self.name, bad, timeout=300)
        failed = raised.exception.build
        self.assertEqual((failed.ref, failed.status), (f"{self.name}:3", "FAILED"))
        self.assertIn("about to fail: marker-7781", str(raised.exception))
        self.assertIn("marker-7781", raised.exception.error_message)
        self.assertIn(f"{self.name}:3", str(raised.exception))
        self.assertEqual(self.client.get_build(self.name, 1).status, "SUCCEEDED")
        # The builds of the env, oldest first.
        env = self.client.get(self.name)
        self.assertIsInstance(env, ClusterEnv)
        self.assertEqual([(b.version, b.status) for b in env.builds],
                         [(1, "SUCCEEDED"), (2, "SUCCEEDED"), (3, "FAILED")])
        self.assertEqual((env.latest_version, env.latest_succeeded_version, env.build_count),
                         (3, 2, 3))
        self.assertEqual(self.client.builds(self.name), env.builds)
        # A failed build cannot run: the head names those that can.
        with self.assertRaises(RuntimeError) as raised:
            self.jobs.submit_job("true", cluster_env=f"{self.name}:3")
        self.assertIn("available versions: 1, 2", str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            strata.init(self.address, cluster_env=f"{self.name}:3")
        self.assertIn("FAILED", str(raised.exception))
        self.assertIn("available versions: 1, 2", str(raised.exception))
        self.assertFalse(strata.is_initialized())

    def test_list_get_archive(self):
        name = f"{self.name}-listed"
        spec_file = self.tmp / "listed.json"
        spec_file.write_text(json.dumps(self.spec("listed")))
        started = self.client.build(name, str(spec_file), wait=False)
        self.assertEqual((started.ref, started.status), (f"{name}:1", "PENDING"))
        self.assertEqual(self.client.wait(started.ref, timeout=300).status, "SUCCEEDED")
        names = [e.name for e in self.client.list()]
        self.assertIn(name, names)
        self.assertIn(self.name, names)
        listed = next(e for e in self.client.list() if e.name == name)
        self.assertEqual((listed.archived, listed.latest_version, listed.builds), (False, 1, None))
        self.assertTrue(self.client.archive(name))
        self.assertNotIn(name, [e.name for e in self.client.list()])
        archived = next(e for e in self.client.list(include_archived=True) if e.name == name)
        self.assertTrue(archived.archived)
        self.assertIsInstance(archived.archived_ms, int)
        env = self.client.get(name)
        self.assertTrue(env.archived)
        self.assertEqual([b.ref for b in env.builds], [f"{name}:1"])
        with self.assertRaises(RuntimeError) as raised:
            self.client.get(f"{self.name}-never-built")
        self.assertIn("status code 404", str(raised.exception))

    def test_wait_timeout(self):
        name = f"{self.name}-timeout"
        with self.assertRaises(TimeoutError) as raised:
            self.client.build(name, self.spec("timeout"), timeout=0.001)
        self.assertIn(f"{name}:1 did not finish within", str(raised.exception))
        # The build went on.
        self.assertEqual(self.client.wait(f"{name}:1", timeout=300).status, "SUCCEEDED")

    def test_bad_specs_and_references(self):
        with self.assertRaises(ValueError) as raised:
            self.client.build(self.name, {"base_image": self.base, "env_vars": ["A=1"]})
        self.assertIn("env_vars", str(raised.exception))
        yaml_text = f"base_image: {self.base}\npost_build_cmds: 3\n"
        with self.assertRaises(ValueError) as raised:
            self.client.build(self.name, yaml_text)
        self.assertIn("post_build_cmds", str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            self.client.build(self.name, {"base": self.base})
        self.assertIn("unknown key 'base'", str(raised.exception))
        with self.assertRaises(ValueError):
            self.client.build("Bad Name", self.spec("x"))
        with self.assertRaises(FileNotFoundError):
            self.client.build(self.name, str(self.tmp / "missing.yaml"))
        # None of them made a build.
        self.assertNotIn(f"{self.name}-x", [e.name for e in self.client.list()])
        for ref in ("nameonly", "ml:0", "ml:x", ":1"):
            with self.assertRaises(ValueError):
                parse_ref(ref)
            with self.assertRaises(ValueError):
                self.client.get_build(ref)
        with self.assertRaises(RuntimeError) as raised:
            self.client.get_build(self.name, 99)
        self.assertIn("status code 404", str(raised.exception))

    def test_job_runs_in_the_build(self):
        job_id = self.jobs.submit_job('cat /built.txt; echo "$GREETING"',
                                      cluster_env=f"{self.name}:1")
        logs = lambda: self.jobs.get_job_logs(job_id)  # noqa: E731
        self.assertEqual(self.wait_for_job(job_id), JobStatus.SUCCEEDED, logs())
        self.assertIn("built first\nhello first", logs())
        # The address's ?cluster_env= is the default.
        pinned = JobSubmissionClient(f"{self.address}?cluster_env={self.name}:1")
        job_id = pinned.submit_job("cat /built.txt")
        self.assertEqual(self.wait_for_job(job_id), JobStatus.SUCCEEDED, logs())
        self.assertIn("built first", logs())
        with Env(STRATA_ADDRESS=f"{self.address}?cluster_env={self.name}:99"):
            from_variable = JobSubmissionClient()
        with self.assertRaises(RuntimeError) as raised:
            from_variable.submit_job("true")
        self.assertIn(f"'{self.name}' has no build 99", str(raised.exception))
        self.assertIn("available versions: 1", str(raised.exception))
        with self.assertRaises(RuntimeError) as raised:
            self.jobs.submit_job("true", cluster_env=f"{self.name}:99")
        self.assertIn("available versions: 1", str(raised.exception))

    def test_init_pins_the_job_env_to_the_image(self):
        with self.assertRaises(ValueError) as raised:
            strata.init(self.address, cluster_env=f"{self.name}:99")
        self.assertIn("has no build 99", str(raised.exception))
        self.assertIn("1 (SUCCEEDED)", str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            strata.init(self.address, cluster_env="no-such-env-pytest:1")
        self.assertIn("does not exist", str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            strata.init(self.address, cluster_env=self.name)
        self.assertIn("NAME:VERSION", str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            strata.init(self.address, cluster_env=f"{self.name}:1",
                        runtime_env={"image_uri": self.base})
        self.assertIn("image_uri", str(raised.exception))
        self.assertFalse(strata.is_initialized())

        context = strata.init(self.address, cluster_env=f"{self.name}:1",
                              runtime_env={"env_vars": {"A": "1"}}, eager_install=False)
        try:
            self.assertEqual(context.cluster_env, f"{self.name}:1")
            expected = {"image_id": self.first.image_id, "reference": self.first.image_ref}
            self.assertEqual(core._runtime.job_env.env["_strata_base_image"], expected)
            self.assertEqual(core._runtime.job_env.env["env_vars"], {"A": "1"})
            # Every task env inherits it (Ray's merge of the job's env).
            own = {"env_vars": {"B": "2"}}
            task_env = core._runtime.effective_env(own, json.dumps(own))
            self.assertEqual(task_env.env["_strata_base_image"], expected)
            self.assertIn("_strata_base_image", task_env.serialized)
        finally:
            strata.shutdown()
        # From the address's query, and inside a submitted job's driver.
        job_config = json.dumps({"runtime_env": {"env_vars": {"J": "1"}}, "metadata": {}})
        with Env(STRATA_JOB_CONFIG_JSON=job_config, STRATA_JOB_ID="pytest-job"):
            strata.init(f"{self.address}?cluster_env={self.name}:1", eager_install=False)
            try:
                env = core._runtime.job_env.env
                self.assertEqual(env["_strata_base_image"]["image_id"], self.first.image_id)
                self.assertEqual(env["env_vars"], {"J": "1"})
            finally:
                strata.shutdown()

    def test_task_runs_in_a_python_image(self):
        """Optional: a task's worker inside a cluster env built on a Debian
        image with python3, when another test left one."""
        if podman("image", "exists", PYTHON_BASE_IMAGE, check=False).returncode != 0:
            self.skipTest(f"{PYTHON_BASE_IMAGE} is not present")
        name = f"{self.name}-py"
        build = self.client.build(name, self.spec("python", base=PYTHON_BASE_IMAGE), timeout=600)
        strata.init(self.address, cluster_env=build.ref)
        try:
            @strata.remote
            def inside():
                import os

                with open("/built.txt") as f:
                    return f.read().strip(), os.environ.get("GREETING")

            self.assertEqual(strata.get(inside.remote(), timeout=300),
                             ("built python", "hello python"))
        finally:
            strata.shutdown()


if __name__ == "__main__":
    unittest.main()
