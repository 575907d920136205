#!/usr/bin/env python3
"""Baseline for the packaging benchmark: Ray's approach to packaging a
working_dir, re-implemented here in a few lines of plain Python (walk the tree,
SHA-1 of each path and file's bytes XOR-combined into an 8-byte identity, then
a stored zip written with the zipfile module). No exclude rules: the benchmark
tree has no ignore files."""
import hashlib
import os
import sys
import zipfile


def xor_bytes(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right))


def package(root: str, out: str) -> str:
    digest = b"00000000"
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        h = hashlib.sha1(rel_dir.encode())
        digest = xor_bytes(digest, h.digest())
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            h = hashlib.sha1(rel.encode())
            with open(full, "rb") as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
            digest = xor_bytes(digest, h.digest())
            paths.append((full, rel))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, strict_timestamps=False) as z:
        for full, rel in paths:
            z.write(full, rel)
    return "gcs://_ray_pkg_" + digest.hex() + ".zip"


if __name__ == "__main__":
    print(package(sys.argv[1], sys.argv[2]))
