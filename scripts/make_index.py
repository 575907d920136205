#!/usr/bin/env python3
"""Builds tiny wheels and a PEP 503 index, for the end-to-end suites and the demo.

usage: make_index.py DIR [tests|demo]
Creates DIR/files/*.whl and DIR/simple/<project>/index.html for the set:
  tests (default): demo 1.0, demo 2.0 (requires dep), dep 1.0;
  demo:            greeting 1.0 (a hello() function).
"""
import base64
import hashlib
import os
import sys
import zipfile


def wheel(out_dir, name, version, requires=(), body=None):
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": body or f'VERSION = "{version}"\n',
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s" % (
            name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: strata-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    path = os.path.join(out_dir, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for arc, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{arc},sha256={digest},{len(data)}")
            z.writestr(arc, data)
        record.append(f"{dist}/RECORD,,")
        z.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return os.path.basename(path)


GREETING = '''VERSION = "1.0"


def hello(name):
    return f"Hello, {name}! (greeting {VERSION}, installed from the demo's local index)"
'''

SETS = {
    "tests": [("demo", "1.0", (), None), ("demo", "2.0", ("dep",), None), ("dep", "1.0", (), None)],
    "demo": [("greeting", "1.0", (), GREETING)],
}


def main(root, which="tests"):
    files = os.path.join(root, "files")
    os.makedirs(files, exist_ok=True)
    projects = {}
    for name, version, requires, body in SETS[which]:
        projects.setdefault(name, []).append(wheel(files, name, version, requires, body))
    for name, wheels in projects.items():
        d = os.path.join(root, "simple", name)
        os.makedirs(d, exist_ok=True)
        links = "".join(f'<a href="../../files/{w}">{w}</a><br>\n' for w in wheels)
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write(f"<html><body>{links}</body></html>\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
