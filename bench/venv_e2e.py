#!/usr/bin/env python3
"""Venv creation alone: `python3 -m venv --without-pip DIR` against Strata's
native pyinstall::CreateVenv (the BM_CreateVenv case of the Google Benchmark
binary, which makes the same tree without a subprocess), for the same base
interpreter, in the same run and on the same filesystem. Prints medians
(wall time, and user+sys CPU time for venv) and the ratio.

usage: bench/venv_e2e.py STRATA_KERNELS [--python python3] [--runs N] [--workdir DIR]

STRATA_KERNELS is bench/strata_kernels of a build configured with
-DSTRATA_BUILD_BENCH=ON. Strata's figure is in-process with the base
interpreter's facts already read (they are read once per interpreter and
cached, as the agent does); that one-time read is printed separately.
The environments live in --workdir, by default /dev/shm (tmpfs) so that the
figures measure venv creation rather than this machine's disk.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd) -> tuple:
    """(wall seconds, user+sys CPU seconds) of one run of `cmd`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def strata_median_ms(kernels: str, python: str, runs: int, work: str) -> float:
    """Median over `runs` repetitions of BM_CreateVenv's time per venv, in ms."""
    env = dict(os.environ, STRATA_BENCH_PYTHON=python, TMPDIR=work)
    out = subprocess.run(
        [kernels, "--benchmark_filter=^BM_CreateVenv$", "--benchmark_format=json",
         f"--benchmark_repetitions={runs}", "--benchmark_report_aggregates_only=true"],
        check=True, capture_output=True, text=True, env=env).stdout
    for bench in json.loads(out)["benchmarks"]:
        if bench.get("error_occurred"):
            raise RuntimeError(f"BM_CreateVenv failed: {bench.get('error_message')}")
        if bench.get("aggregate_name") == "median":
            assert bench["time_unit"] == "ms"
            return bench["real_time"]
    raise RuntimeError("BM_CreateVenv reported no median")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kernels")
    parser.add_argument("--python", default="python3")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--workdir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    python = shutil.which(args.python) or args.python

    work = tempfile.mkdtemp(prefix="strata-bench-venv-", dir=args.workdir)
    try:
        def venv_once(i):
            target = os.path.join(work, f"venv-{i}")
            result = timed([python, "-m", "venv", "--without-pip", target])
            shutil.rmtree(target)
            return result

        venv_once("warm")  # the page cache, for both sides
        venv = [venv_once(i) for i in range(args.runs)]
        startup = [timed([python, "-I", "-c", "pass"])[0] for _ in range(args.runs)]
        # What Strata pays once per interpreter (BaseInterpreter::Read's query).
        facts = [timed([python, "-I", "-c", "import shlex, sysconfig, types, venv"])[0]
                 for _ in range(args.runs)]
        strata_ms = strata_median_ms(args.kernels, python, args.runs, work)

        venv_ms = statistics.median(wall for wall, _ in venv) * 1000
        venv_cpu = statistics.median(cpu for _, cpu in venv) * 1000
        print(f"base {python}; venvs in {work}; {args.runs} runs each (median)")
        print(f"  python -m venv --without-pip  {venv_ms:8.2f} ms  (user+sys {venv_cpu:6.1f} ms)")
        print(f"  strata CreateVenv             {strata_ms:8.3f} ms  "
              f"{venv_ms / strata_ms:8.0f}x faster")
        print(f"  for reference: `python -I -c pass` "
              f"{statistics.median(startup) * 1000:.1f} ms; Strata's one-time facts query "
              f"(interpreter start and imports) about {statistics.median(facts) * 1000:.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
