#!/usr/bin/env python3
"""End-to-end jobs benchmark against a real head (`strata start --head` on a
free port, its own STRATA_HOME and session in a temporary directory), all
figures from one run:

1. submit → RUNNING latency, raw HTTP, polling GET /api/jobs/<id> every
   few milliseconds: a job whose environment is cached (pip from a local
   PEP 503 index + a working_dir, both already built) against the same job
   with an empty runtime_env (the floor: no environment at all);
2. N concurrent submissions (threads posting raw HTTP) of a job in the cached
   environment: submissions/s and time until all are SUCCEEDED, against the
   same jobs submitted one after the other;
3. a ~50 MiB working_dir (200 files of 256 KiB of random bytes): the first
   `strata job submit --no-wait`, a re-submit after editing one file, and an
   unchanged re-submit, with the bytes the head received (the
   strata_package_upload_bytes_total counter of /metrics); against a full
   re-upload as Ray's client does it (bench/ray_package_baseline.py zips the
   tree, then one PUT /api/packages/gcs/<name>).

The head is always stopped at the end (`strata stop`).

usage: bench/jobs_e2e.py [--strata build/strata] [--runs N] [--concurrent N]
                         [--files N] [--file-kib N]
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ray_package_baseline  # noqa: E402
from bench_util import free_port, percentile, wait_http  # noqa: E402

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


class Head:
    """The head's HTTP API; one connection per request (safe from threads)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None, expect=200):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        c.request(method, path, body, headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        if expect is not None and r.status != expect:
            raise RuntimeError(f"{method} {path}: HTTP {r.status} {data[:500]!r}")
        return data

    def json(self, method, path, body=None):
        return json.loads(self.request(method, path, body))

    def submit(self, entrypoint, runtime_env=None, submission_id=None):
        body = {"entrypoint": entrypoint}
        if runtime_env:
            body["runtime_env"] = runtime_env
        if submission_id:
            body["submission_id"] = submission_id
        return self.json("POST", "/api/jobs/", body)["submission_id"]

    def job(self, job_id):
        return self.json("GET", f"/api/jobs/{job_id}")

    def wait(self, job_id, statuses, interval=0.002, timeout=600):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            status = self.job(job_id)["status"]
            if status in statuses:
                return status
            if status in TERMINAL:
                raise RuntimeError(f"job {job_id} ended {status}: {self.job(job_id)['message']}")
            time.sleep(interval)
        raise RuntimeError(f"job {job_id} did not reach {statuses} within {timeout} s")

    def stop(self, job_id):
        # http.client sends Content-Length: 0 for a POST without a body.
        self.request("POST", f"/api/jobs/{job_id}/stop")

    def metric(self, name):
        for line in self.request("GET", "/metrics").decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
        raise RuntimeError(f"/metrics has no {name}")


def mib(n):
    return f"{n / 2**20:8.2f} MiB"


def write_random(path, size, rng):
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--strata", default=os.path.join(ROOT, "build", "strata"))
    p.add_argument("--runs", type=int, default=20, help="latency samples per kind of job")
    p.add_argument("--concurrent", type=int, default=50, help="concurrent submissions")
    p.add_argument("--files", type=int, default=200, help="files of the large working_dir")
    p.add_argument("--file-kib", type=int, default=256, help="size of each of those files")
    args = p.parse_args()
    strata = os.path.abspath(args.strata)

    work = tempfile.mkdtemp(prefix="strata-jobs-bench-")
    index_server = None
    head_port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and not k.startswith("STRATA_")}
    env.update(STRATA_HOME=os.path.join(work, "home"),
               STRATA_SESSION_DIR=os.path.join(work, "session"),
               STRATA_ADDRESS=f"http://127.0.0.1:{head_port}",
               PIP_CONFIG_FILE="/dev/null", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    try:
        index = os.path.join(work, "index")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_index.py"), index],
                       check=True, stdout=subprocess.DEVNULL)
        index_port = free_port()
        index_server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                         str(index_port)], cwd=index, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_http(index_port, "/simple/")
        env["PIP_INDEX_URL"] = f"http://127.0.0.1:{index_port}/simple/"

        subprocess.run([strata, "start", "--head", "--port", str(head_port)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        head = Head(head_port)
        print(f"head: {env['STRATA_ADDRESS']} ({os.cpu_count()} CPUs), STRATA_HOME {env['STRATA_HOME']}")

        # The cached environment: built once by a first job submitted with the CLI.
        wd = os.path.join(work, "wd")
        os.makedirs(wd)
        with open(os.path.join(wd, "main.py"), "w") as f:
            f.write("import demo\nprint(demo.VERSION)\n")
        warm_id = "bench-warmup"
        subprocess.run([strata, "job", "submit", "--no-wait", "--submission-id", warm_id,
                        "--working-dir", wd, "--runtime-env-json",
                        json.dumps({"pip": ["demo==1.0"], "env_vars": {"BENCH": "1"}}),
                        "--", "python", "main.py"], env=env, check=True, stdout=subprocess.DEVNULL)
        start = time.perf_counter()
        head.wait(warm_id, {"SUCCEEDED"}, interval=0.05)
        cold = time.perf_counter() - start
        cached_env = head.job(warm_id)["runtime_env"]
        print(f"runtime_env {json.dumps(cached_env, sort_keys=True)}: "
              f"first job (env built) {cold * 1000:.0f} ms")

        # 1. submit → RUNNING, interleaved.
        latencies = {"cached env (pip + working_dir)": [], "empty env (baseline)": []}
        for i in range(args.runs):
            for label, runtime_env in [("cached env (pip + working_dir)", cached_env),
                                       ("empty env (baseline)", None)]:
                start = time.perf_counter()
                job_id = head.submit("sleep 60", runtime_env)
                head.wait(job_id, {"RUNNING"})
                latencies[label].append(time.perf_counter() - start)
                head.stop(job_id)
                head.wait(job_id, {"STOPPED"}, interval=0.01)
        base = statistics.median(latencies["empty env (baseline)"])
        print(f"\n1. submit → RUNNING (raw HTTP, polled every 2 ms), {args.runs} runs each:")
        print(f"  {'':34s} {'p50':>9s} {'p90':>9s}  p50 vs empty env")
        for label, values in latencies.items():
            p50, p90 = statistics.median(values), percentile(values, 0.9)
            print(f"  {label:34s} {p50 * 1000:7.1f}ms {p90 * 1000:7.1f}ms  {p50 / base:6.2f}x")

        # 2. concurrent submissions against sequential ones.
        n = args.concurrent
        entrypoint = "python main.py"

        def try_submit(job_id):
            # A refused POST is counted, not retried: Ray's client does not retry either.
            try:
                head.submit(entrypoint, cached_env, job_id)
                return None
            except (OSError, http.client.HTTPException, RuntimeError) as e:
                return f"{type(e).__name__}: {e}"

        def run_all(prefix, workers):
            ids = [f"{prefix}-{i}" for i in range(n)]
            start = time.perf_counter()
            errors = []
            if workers == 1:
                for job_id in ids:
                    head.submit(entrypoint, cached_env, job_id)
                    head.wait(job_id, {"SUCCEEDED"}, interval=0.005)
                submitted = done = time.perf_counter() - start
            else:
                with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                    results = list(pool.map(try_submit, ids))
                submitted = time.perf_counter() - start
                errors = [e for e in results if e]
                ids = [job_id for job_id, e in zip(ids, results) if not e]
                pending = set(ids)
                while pending:
                    statuses = {j["submission_id"]: j["status"] for j in head.json("GET", "/api/jobs/")}
                    for job_id in list(pending):
                        if statuses.get(job_id) in TERMINAL:
                            pending.discard(job_id)
                    if pending:
                        time.sleep(0.01)
                done = time.perf_counter() - start
            ok = sum(head.job(job_id)["status"] == "SUCCEEDED" for job_id in ids)
            return submitted, done, ok, errors

        seq_submitted, seq_done, seq_ok, _ = run_all("bench-seq", 1)
        con_submitted, con_done, con_ok, con_errors = run_all("bench-con", n)
        print(f"\n2. {n} jobs `{entrypoint}` in the cached env:")
        print(f"  {'':34s} {'all POSTs':>10s} {'subm/s':>8s} {'all done':>10s} {'jobs/s':>8s}  ok")
        print(f"  {'one after the other (baseline)':34s} {'':>10s} {'':>8s} "
              f"{seq_done * 1000:8.0f}ms {n / seq_done:8.1f}  {seq_ok}/{n}")
        accepted = n - len(con_errors)
        print(f"  {f'{n} concurrent threads':34s} {con_submitted * 1000:8.0f}ms "
              f"{accepted / con_submitted:8.1f} {con_done * 1000:8.0f}ms {con_ok / con_done:8.1f}  "
              f"{con_ok}/{n}")
        print(f"  concurrent vs sequential: {(con_ok / con_done) / (seq_ok / seq_done):.2f}x jobs/s")
        if con_errors:
            kinds = sorted(set(e.split(":")[0] for e in con_errors))
            print(f"  WARNING: {len(con_errors)}/{n} concurrent POSTs failed ({', '.join(kinds)}); "
                  f"the rates count the accepted ones only. First: {con_errors[0]}")

        # 3. large working_dir: first upload, one edited file, unchanged, Ray-style full re-upload.
        rng = random.Random(42)
        big = os.path.join(work, "big")
        os.makedirs(big)
        for i in range(args.files):
            write_random(os.path.join(big, f"f{i:04d}.bin"), args.file_kib * 1024, rng)
        tree_bytes = args.files * args.file_kib * 1024

        def cli_submit(job_id):
            before = head.metric("strata_package_upload_bytes_total")
            blobs = head.metric("strata_package_blobs_uploaded_total")
            start = time.perf_counter()
            subprocess.run([strata, "job", "submit", "--no-wait", "--submission-id", job_id,
                            "--working-dir", big, "--", "true"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            elapsed = time.perf_counter() - start
            return (elapsed, head.metric("strata_package_upload_bytes_total") - before,
                    head.metric("strata_package_blobs_uploaded_total") - blobs)

        rows = []
        rows.append(("strata: first submit (empty store)",) + cli_submit("bench-big-1"))
        write_random(os.path.join(big, f"f{args.files // 2:04d}.bin"), args.file_kib * 1024, rng)
        rows.append(("strata: re-submit, 1 file edited",) + cli_submit("bench-big-2"))
        rows.append(("strata: re-submit, unchanged",) + cli_submit("bench-big-3"))
        # Ray's client: zip the whole tree, then PUT it (it would do so after any edit).
        before = head.metric("strata_package_upload_bytes_total")
        archive = os.path.join(work, "ray.zip")
        start = time.perf_counter()
        uri = ray_package_baseline.package(big, archive)
        with open(archive, "rb") as f:
            head.request("PUT", "/api/packages/gcs/" + uri[len("gcs://"):], f.read(),
                         {"Content-Type": "application/zip"})
        ray_time = time.perf_counter() - start
        rows.append(("ray-style: zip + PUT whole archive", ray_time,
                     head.metric("strata_package_upload_bytes_total") - before, 0))
        print(f"\n3. working_dir of {args.files} files x {args.file_kib} KiB "
              f"({tree_bytes / 2**20:.1f} MiB of random bytes):")
        print(f"  {'':38s} {'time':>9s} {'bytes uploaded':>14s} {'files':>6s}")
        for label, elapsed, sent, files in rows:
            print(f"  {label:38s} {elapsed * 1000:7.0f}ms {mib(sent):>14s} {int(files):6d}")
        first, edited, ray = rows[0], rows[1], rows[3]
        print(f"  1-file edit vs first upload: {edited[2] / first[2] * 100:.2f}% of the bytes, "
              f"time {edited[1] / first[1]:.2f}x (speed-up {first[1] / edited[1]:.1f}x)")
        print(f"  1-file edit vs ray-style full re-upload: {edited[2] / ray[2] * 100:.2f}% of the bytes, "
              f"time {edited[1] / ray[1]:.2f}x (speed-up {ray[1] / edited[1]:.1f}x)")
        return 0
    finally:
        subprocess.run([strata, "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if index_server is not None:
            index_server.terminate()
            index_server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
