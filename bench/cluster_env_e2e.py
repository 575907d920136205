#!/usr/bin/env python3
"""End-to-end cluster environment build benchmark, against a real head.

usage: bench/cluster_env_e2e.py STRATA_BINARY [--runs N] [--base IMAGE]

Measures, each run with a fresh env var value so the first build starts cold
(every layer after FROM rebuilt):
  cold        `strata cluster-env build` of a spec with a Debian package, a pip
              package from a local index, an env var and a post-build command
              (includes the OCI archive export)
  unchanged   the same spec again (every layer from the cache)
  post-only   the spec with only post_build_cmds changed
and, as the named baseline, `podman build --layers=false` of the equivalent
Containerfile written by hand (what a user without Strata runs), in the same
run. Prints medians and the ratios against the baseline.

The base image defaults to localhost/strata-bench-base:latest, created with
`strata cluster-env base` when missing (~1 min, needs the Debian mirror).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_util import free_port, wait_http  # noqa: E402

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]


def spec_text(base, run_id, post):
    return (f"base_image: {base}\n"
            f"env_vars:\n  BENCH_RUN: '{run_id}'\n"
            "debian_packages:\n  - hello\n"
            "python:\n  pip_packages:\n    - demo==1.0\n"
            f"post_build_cmds:\n  - echo {post} > /built.txt\n")


def containerfile(base, run_id, index_url):
    return (f"FROM {base}\n"
            f'ENV BENCH_RUN="{run_id}"\n'
            "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
            "--no-install-recommends hello && rm -rf /var/lib/apt/lists/*\n"
            f"RUN PIP_BREAK_SYSTEM_PACKAGES=1 PIP_INDEX_URL={index_url} python3 -m pip install "
            "--no-cache-dir --disable-pip-version-check demo==1.0\n"
            "RUN echo built > /built.txt\n")


def timed(cmd, env, cwd=None):
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-3000:]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("strata")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base", default="localhost/strata-bench-base:latest")
    args = parser.parse_args()
    strata = os.path.abspath(args.strata)

    work = tempfile.mkdtemp(prefix="strata-bench-ce-")
    env = dict(os.environ, STRATA_HOME=os.path.join(work, "home"),
               STRATA_SESSION_DIR=os.path.join(work, "session"), PIP_CONFIG_FILE="/dev/null")
    env.pop("STRATA_IMAGE_REGISTRY", None)
    servers = []
    name = "bench-" + uuid.uuid4().hex[:8]
    try:
        if subprocess.run(PODMAN + ["image", "exists", args.base]).returncode != 0:
            base_name = args.base.split("/", 1)[1].split(":")[0]
            print(f"creating base image {args.base} ...", flush=True)
            timed([strata, "cluster-env", "base", "--name", base_name], env)
        subprocess.run([sys.executable, os.path.join(HERE, "..", "scripts", "make_index.py"),
                        os.path.join(work, "index")], check=True, stdout=subprocess.DEVNULL)
        index_port = free_port()
        servers.append(subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(index_port)],
            cwd=os.path.join(work, "index"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        index_url = f"http://127.0.0.1:{index_port}/simple/"
        wait_http(index_port, "/simple/")
        env["PIP_INDEX_URL"] = index_url
        head_port = free_port()
        env["STRATA_ADDRESS"] = f"http://127.0.0.1:{head_port}"
        timed([strata, "start", "--head", "--port", str(head_port)], env)

        figures = {"podman build, no cache (baseline)": [], "strata cold": [],
                   "strata unchanged rebuild": [], "strata post_build-only rebuild": []}
        for run in range(args.runs):
            run_id = uuid.uuid4().hex[:12]
            ctx = os.path.join(work, f"ctx{run}")
            os.makedirs(ctx)
            with open(os.path.join(ctx, "Containerfile"), "w") as f:
                f.write(containerfile(args.base, run_id, index_url))
            tag = f"localhost/strata-bench-baseline:{run_id}"
            figures["podman build, no cache (baseline)"].append(timed(
                PODMAN + ["build", "--layers=false", "--network", "host", "--ulimit", "nofile=1024:1024",
                          "--ulimit", "nproc=1024:1024", "-t", tag, ctx], env))
            subprocess.run(PODMAN + ["rmi", "-f", tag], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for label, post in (("strata cold", "built"), ("strata unchanged rebuild", "built"),
                                ("strata post_build-only rebuild", "rebuilt")):
                spec = os.path.join(work, f"spec-{run}-{post}.yaml")
                with open(spec, "w") as f:
                    f.write(spec_text(args.base, run_id, post))
                figures[label].append(timed([strata, "cluster-env", "build", spec, "--name", name], env))
            print(f"run {run + 1}/{args.runs} done", flush=True)

        baseline = statistics.median(figures["podman build, no cache (baseline)"])
        print(f"\n{'':38} {'median s':>9} {'min s':>7} {'vs baseline':>12}")
        for label, values in figures.items():
            median = statistics.median(values)
            print(f"{label:38} {median:9.2f} {min(values):7.2f} {median / baseline:11.2f}x")
    finally:
        subprocess.run([strata, "stop"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for server in servers:
            server.terminate()
        images = subprocess.run(PODMAN + ["images", "--format", "{{.Repository}}:{{.Tag}}"],
                                stdout=subprocess.PIPE, text=True).stdout.split()
        for image in images:
            if name in image:
                subprocess.run(PODMAN + ["rmi", "-f", image], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
