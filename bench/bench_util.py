"""Helpers shared by the end-to-end benchmark scripts."""
import http.client
import socket
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(port, path="/", seconds=20):
    deadline = time.monotonic() + seconds
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answers on port {port}")
            time.sleep(0.1)


def percentile(values, q):
    """The q-quantile (0 <= q <= 1) with linear interpolation; nan for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
