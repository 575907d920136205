#!/usr/bin/env python3
"""End-to-end packaging benchmark: `strata package create` against the Ray-style
Python baseline (bench/ray_package_baseline.py), on the same generated tree of
about 100 MiB in 5,000 files, in the same run. Prints medians (wall time, and
user+sys CPU time) and the ratio.

usage: bench/packaging_e2e.py STRATA_BINARY [--runs N] [--files N] [--mib N] [--workdir DIR]

The tree and the archives live in --workdir, by default /dev/shm (tmpfs) so
that the figures measure hashing and archiving rather than this machine's
disk; pass --workdir /tmp to include the disk.
"""
import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def make_tree(root: str, files: int, total_mib: int) -> None:
    rng = random.Random(42)
    per_file = total_mib * 1024 * 1024 // files
    for i in range(files):
        d = os.path.join(root, f"pkg{i % 50:02d}", f"sub{i % 7}")
        os.makedirs(d, exist_ok=True)
        # Sizes vary around the mean; content is incompressible.
        size = max(1, int(per_file * rng.uniform(0.5, 1.5)))
        with open(os.path.join(d, f"file{i:05d}.bin"), "wb") as f:
            f.write(rng.randbytes(size))


def timed(cmd) -> tuple:
    """(wall seconds, user+sys CPU seconds) of one run of `cmd`."""
    # The benchmark tree sits right at the default 100 MiB package limit.
    env = dict(os.environ, STRATA_MAX_PACKAGE_SIZE=str(1 << 30))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("strata")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--workdir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="strata-bench-", dir=args.workdir)
    try:
        tree = os.path.join(work, "tree")
        make_tree(tree, args.files, args.mib)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tree) for f in fs)
        commands = {
            "ray-baseline (python)": [sys.executable, os.path.join(HERE, "ray_package_baseline.py"),
                                      tree, os.path.join(work, "ray.zip")],
            "strata package create": [args.strata, "package", "create", tree,
                                      "-o", os.path.join(work, "strata.zip")],
            # What an incremental upload computes before sending only missing files.
            "strata package uri": [args.strata, "package", "uri", tree],
        }
        for cmd in commands.values():  # warm the page cache
            timed(cmd)
        results = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so noise hits both alike
            for name, cmd in commands.items():
                results[name].append(timed(cmd))
        print(f"tree: {args.files} files, {size / 2**20:.1f} MiB in {args.workdir or tempfile.gettempdir()};"
              f" {args.runs} runs each (median)")
        base = statistics.median(wall for wall, _ in results["ray-baseline (python)"])
        for name, runs in results.items():
            med = statistics.median(wall for wall, _ in runs)
            # CPU time is less sensitive than wall time to other load on the machine.
            cpu = statistics.median(cpu for _, cpu in runs)
            print(f"  {name:24s} {med * 1000:8.1f} ms  {size / 2**20 / med:8.1f} MiB/s"
                  f"  {base / med:5.2f}x vs baseline  (user+sys {cpu * 1000:6.1f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
