#!/usr/bin/env python3
"""Benchmarks of the Python SDK's task path (issue 6).

  * round-trip latency of an empty task in a warm env (p50/p99/mean);
  * throughput of 10,000 small tasks (submitted at once, then all fetched);
  * worker start-up in a warm env (a dedicated lease: the agent starts a
    worker in the already-built env and waits for its socket; then the
    first task on it) against `python3 -c pass`;
  * an actor method call's round trip, for comparison.

usage: STRATA_BIN=build/strata PYTHONPATH=build/python python3 bench/sdk_bench.py
         [--tasks 10000] [--latency 2000] [--starts 20] [--address URL] [--json]

Without --address (or STRATA_ADDRESS) it starts a head in a temporary
STRATA_HOME and session, and stops it at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import percentile  # noqa: E402


def ms(seconds):
    return round(seconds * 1000.0, 3)


def python_pass_seconds(runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return times


def raw_round_trips(n):
    """The floor: the same framing between two Python processes over a Unix
    socket pair, without the runtime (a child echoes each message)."""
    import socket as socket_module

    from strata._private import protocol

    parent_sock, child_sock = socket_module.socketpair(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        parent_sock.close()
        conn = protocol.Connection(child_sock)
        try:
            while True:
                msg = conn.recv_msg()
                conn.send_msg({"ok": True, "value": msg.get("args")})
        except EOFError:
            os._exit(0)
    child_sock.close()
    conn = protocol.Connection(parent_sock)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        conn.send_msg({"type": "task", "args": (), "kwargs": {}})
        conn.recv_msg()
        times.append(time.perf_counter() - start)
    conn.close()
    os.waitpid(pid, 0)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--latency", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--address", default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args()

    # Workers inherit the agent's environment: let them cache bytecode, as a
    # normal installation does.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    temp = None
    binary = os.environ.get("STRATA_BIN") or shutil.which("strata")
    if args.address is None and not os.environ.get("STRATA_ADDRESS"):
        temp = tempfile.mkdtemp(prefix="strata-sdk-bench-")
        os.environ["STRATA_HOME"] = os.path.join(temp, "home")
        os.environ["STRATA_SESSION_DIR"] = os.path.join(temp, "session")
        if not binary:
            sys.exit("set STRATA_BIN to the strata binary (or pass --address)")
        subprocess.run([binary, "start", "--head", "--port", "0"], check=True, stdout=subprocess.DEVNULL)
    try:
        results = run(args)
    finally:
        if temp is not None:
            subprocess.run([binary, "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(temp, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    else:
        report(results)


def run(args):
    import strata
    from strata._private import core

    env = {"env_vars": {"STRATA_BENCH": "1"}}
    strata.init(address=args.address, runtime_env=env)

    @strata.remote
    def empty():
        return None

    @strata.remote
    def small(i):
        return i + 1

    @strata.remote
    class Echo:
        def ping(self):
            return None

    results = {"cpus": os.cpu_count(), "python": sys.version.split()[0],
               "max_workers_per_env": core._runtime.max_workers_per_env}

    # Warm up: the env is built (eager install), workers are started and know the functions.
    strata.get([empty.remote() for _ in range(200)])
    strata.get([small.remote(i) for i in range(200)])

    # 1. Round-trip latency of an empty task, one at a time.
    latencies = []
    for _ in range(args.latency):
        start = time.perf_counter()
        strata.get(empty.remote())
        latencies.append(time.perf_counter() - start)
    results["task_latency_ms"] = {"p50": ms(percentile(latencies, 0.5)), "p99": ms(percentile(latencies, 0.99)),
                                  "mean": ms(statistics.fmean(latencies)), "n": len(latencies)}

    raw = raw_round_trips(args.latency)
    results["raw_socket_round_trip_ms"] = {"p50": ms(percentile(raw, 0.5)), "p99": ms(percentile(raw, 0.99)),
                                           "n": len(raw)}

    # 2. Throughput of many small tasks.
    start = time.perf_counter()
    refs = [small.remote(i) for i in range(args.tasks)]
    submitted = time.perf_counter() - start
    values = strata.get(refs)
    elapsed = time.perf_counter() - start
    assert values == [i + 1 for i in range(args.tasks)], "wrong results"
    results["throughput"] = {"tasks": args.tasks, "seconds": round(elapsed, 3),
                             "tasks_per_s": round(args.tasks / elapsed, 1), "submit_seconds": round(submitted, 3)}

    # 3. Actor method call latency.
    actor = Echo.remote()
    strata.get(actor.ping.remote())
    calls = []
    for _ in range(args.latency):
        start = time.perf_counter()
        strata.get(actor.ping.remote())
        calls.append(time.perf_counter() - start)
    results["actor_call_latency_ms"] = {"p50": ms(percentile(calls, 0.5)), "p99": ms(percentile(calls, 0.99)),
                                        "mean": ms(statistics.fmean(calls)), "n": len(calls)}
    strata.kill(actor)

    # 4. Worker start-up in the warm env: a dedicated lease starts a new worker.
    runtime = core._runtime
    job_env = runtime.job_env
    lease_times, first_task_times = [], []
    desc = core._FunctionDescriptor(lambda: None)
    for _ in range(args.starts):
        start = time.perf_counter()
        lease = runtime.lease(job_env, dedicated=True)
        leased = time.perf_counter()
        msg = runtime.context_fields({"type": "task", "fn_id": desc.fn_id, "fn": desc.data, "name": "noop",
                                      "args": (), "kwargs": {}, "runtime_env": job_env.env,
                                      "setup_hook": job_env.setup_hook})
        reply = core.protocol.loads(runtime.exchange(lease, core.protocol.dumps(msg)))
        done = time.perf_counter()
        assert reply.get("ok"), reply
        runtime.return_lease(lease, kill=True)
        lease_times.append(leased - start)
        first_task_times.append(done - start)
    python_times = python_pass_seconds(args.starts)
    results["worker_startup_ms"] = {
        "lease_p50": ms(statistics.median(lease_times)),
        "lease_min": ms(min(lease_times)),
        "lease_plus_first_task_p50": ms(statistics.median(first_task_times)),
        "python3_c_pass_p50": ms(statistics.median(python_times)),
        "python3_c_pass_min": ms(min(python_times)),
        "n": args.starts,
    }
    results["worker_startup_ms"]["ratio_lease_to_python"] = round(
        statistics.median(lease_times) / statistics.median(python_times), 2)
    strata.shutdown()
    return results


def report(r):
    lat, thr, act, st = r["task_latency_ms"], r["throughput"], r["actor_call_latency_ms"], r["worker_startup_ms"]
    print(f"machine: {r['cpus']} CPUs, Python {r['python']}, up to {r['max_workers_per_env']} workers per env")
    print(f"empty task round trip (warm env, n={lat['n']}): p50 {lat['p50']} ms, p99 {lat['p99']} ms, "
          f"mean {lat['mean']} ms")
    raw = r["raw_socket_round_trip_ms"]
    print(f"floor: the same framed message echoed by a forked process (n={raw['n']}): p50 {raw['p50']} ms, "
          f"p99 {raw['p99']} ms")
    print(f"actor call round trip (n={act['n']}): p50 {act['p50']} ms, p99 {act['p99']} ms")
    print(f"throughput: {thr['tasks']} small tasks in {thr['seconds']} s = {thr['tasks_per_s']} tasks/s "
          f"(submitting took {thr['submit_seconds']} s)")
    print(f"worker start-up in a warm env (n={st['n']}): lease p50 {st['lease_p50']} ms (min {st['lease_min']}), "
          f"lease + first task p50 {st['lease_plus_first_task_p50']} ms; "
          f"python3 -c pass p50 {st['python3_c_pass_p50']} ms "
          f"(ratio {st['ratio_lease_to_python']}x)")


if __name__ == "__main__":
    main()
