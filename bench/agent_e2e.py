#!/usr/bin/env python3
"""End-to-end node agent benchmark, all figures from one run:

1. warm GetOrCreate (cache hit) latency over HTTP, p50/p99 (the in-process
   figure is BM_GetOrCreateWarm in bench/kernels_bench.cc);
2. cold pip environments for ../shared/wheelhouse small.txt and large.txt
   served from a local PEP 503 index: `strata run` against the baseline
   `python3 -m venv` + `pip install -r` of the same list;
3. 64 concurrent identical GetOrCreate requests to the daemon: number of
   creations (must be 1) and total time.

usage: bench/agent_e2e.py STRATA_BINARY [--wheelhouse DIR] [--runs N] [--skip-large]
"""
import argparse
import concurrent.futures
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_util import free_port, wait_http  # noqa: E402
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "shared"))


def clean_pip_env(index_url, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE="/dev/null", PIP_INDEX_URL=index_url, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update(extra or {})
    return env


def timed(cmd, env):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def requirements(path):
    return [l.strip() for l in open(path) if l.strip() and not l.startswith("#")]


def post(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return json.loads(c.getresponse().read())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("strata")
    p.add_argument("--wheelhouse", default=os.path.join(SHARED, "wheelhouse"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--skip-large", action="store_true")
    args = p.parse_args()
    strata = os.path.abspath(args.strata)
    work = tempfile.mkdtemp(prefix="strata-agent-bench-")
    procs = []
    try:
        index = os.path.join(work, "index")
        subprocess.run([sys.executable, os.path.join(SHARED, "tools", "make_simple_index.py"),
                        args.wheelhouse, index], check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                       str(port)], cwd=index, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_http(port, "/simple/")
        index_url = f"http://127.0.0.1:{port}/simple/"

        # 2. cold pip environments, interleaved runs
        lists = ["small.txt"] + ([] if args.skip_large else ["large.txt"])
        for name in lists:
            reqs = requirements(os.path.join(args.wheelhouse, name))
            results = {"baseline: venv + pip install": [], "strata run (cold)": [], "strata run (warm)": []}
            for i in range(args.runs):
                venv = os.path.join(work, f"venv-{name}-{i}")
                baseline = (f"{sys.executable} -m venv {venv} && {venv}/bin/pip install -q -r "
                            f"{os.path.join(args.wheelhouse, name)}")
                results["baseline: venv + pip install"].append(
                    timed(["sh", "-c", baseline], clean_pip_env(index_url)))
                shutil.rmtree(venv, ignore_errors=True)
                home = os.path.join(work, f"home-{name}-{i}")
                env = clean_pip_env(index_url, {"STRATA_HOME": home,
                                                "STRATA_SESSION_DIR": os.path.join(work, "session")})
                cmd = [strata, "run", "--runtime-env-json", json.dumps({"pip": reqs}), "--",
                       "python", "-c", "pass"]
                results["strata run (cold)"].append(timed(cmd, env))
                results["strata run (warm)"].append(timed(cmd, env))
                shutil.rmtree(home, ignore_errors=True)
            base = statistics.median(results["baseline: venv + pip install"])
            print(f"pip environment for {name} ({len(reqs)} requirements), median of {args.runs}:")
            for label, times in results.items():
                med = statistics.median(times)
                print(f"  {label:30s} {med * 1000:9.1f} ms  {base / med:6.2f}x vs baseline")

        # 1 and 3: the daemon
        home = os.path.join(work, "home-daemon")
        env = clean_pip_env(index_url, {"STRATA_HOME": home,
                                        "STRATA_SESSION_DIR": os.path.join(work, "session-daemon")})
        agent_port = free_port()
        procs.append(subprocess.Popen([strata, "agent", "--port", str(agent_port)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(agent_port, "/healthz")
        serialized = json.dumps({"env_vars": {"A": "1"}, "pip": {"packages": requirements(
            os.path.join(args.wheelhouse, "small.txt")), "pip_check": False}}, sort_keys=True)
        body = {"serialized_runtime_env": serialized, "job_id": "bench"}
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            replies = list(pool.map(lambda _: post(agent_port, "/get_or_create_runtime_env", body), range(64)))
        total = time.perf_counter() - start
        ok = sum(r["status"] == "AGENT_RPC_STATUS_OK" for r in replies)
        log = os.path.join(work, "session-daemon", "logs", "runtime_env_setup-bench.log")
        creations = open(log).read().count("Creating pip resource")
        print(f"64 concurrent identical requests: {ok}/64 ok, {creations} creation(s), "
              f"{total * 1000:.1f} ms total")

        conn = http.client.HTTPConnection("127.0.0.1", agent_port)
        latencies = []
        for _ in range(2000):
            t = time.perf_counter()
            conn.request("POST", "/get_or_create_runtime_env", json.dumps(body),
                         {"Content-Type": "application/json"})
            conn.getresponse().read()
            latencies.append(time.perf_counter() - t)
        latencies.sort()
        print(f"warm GetOrCreate over HTTP (keep-alive, 2000 requests): "
              f"p50 {latencies[1000] * 1e6:.0f} us, p99 {latencies[1980] * 1e6:.0f} us")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
