"""The driver ⇄ worker protocol: length-prefixed frames over a Unix stream socket.

Each frame is an 8-byte big-endian length followed by that many bytes of a
cloudpickle'd dict. A connection is one lease: the driver sends a request,
the worker answers it, and so on until the driver closes the connection.

Requests
  {"type": "task", "fn_id": str, "fn": bytes | None, "name": str,
   "args": tuple, "kwargs": dict,
   "runtime_env": dict,            # the task's effective env (nested tasks inherit it)
   "setup_hook": bytes | str | None,   # cloudpickle'd callable, "module.func", or none
   "job_id": str, "head_url": str, "agent_port": int, "node_id": str}
  {"type": "create_actor", "cls": bytes, "name": str, "args", "kwargs",
   "runtime_env", "setup_hook", "job_id", "head_url", "agent_port", "node_id"}
  {"type": "call", "method": str, "args", "kwargs"}

Replies
  {"ok": True, "value": object}
  {"ok": False, "error": bytes | None,   # the cloudpickle'd exception, when it pickles
   "traceback": str, "type": str,       # the remote traceback and the exception's type name
   "pid": int, "worker_id": str, "node_id": str,
   "setup_failed": bool}                # the setup hook failed: this worker is unusable
  {"ok": False, "need_fn": True}        # the worker does not know fn_id: send "fn"

A "fn" is sent once per worker; later requests carry only its id (the
sha1 of the pickled bytes), which the worker keeps.

`args`, `kwargs` and `value` may be several MiB. Thread-safety: a Connection
is used by one thread at a time.
"""
import pickle
import socket
import struct

import cloudpickle

_HEADER = struct.Struct("!Q")
_SMALL = 1 << 16


def dumps(obj):
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data):
    return pickle.loads(data)


class Connection:
    """A framed connection over a connected stream socket."""

    __slots__ = ("sock", "_rfile")

    def __init__(self, sock):
        self.sock = sock
        self._rfile = sock.makefile("rb", buffering=_SMALL)

    def send_bytes(self, data):
        header = _HEADER.pack(len(data))
        if len(data) < _SMALL:
            self.sock.sendall(header + data)
        else:
            self.sock.sendall(header)
            self.sock.sendall(data)

    def recv_bytes(self):
        """The next frame's payload; EOFError when the peer closed the connection."""
        header = self._rfile.read(_HEADER.size)
        if len(header) < _HEADER.size:
            raise EOFError("connection closed")
        (size,) = _HEADER.unpack(header)
        data = self._rfile.read(size)
        if len(data) < size:
            raise EOFError("connection closed in the middle of a message")
        return data

    def send_msg(self, obj):
        self.send_bytes(dumps(obj))

    def recv_msg(self):
        return loads(self.recv_bytes())

    def alive(self):
        """False when the peer has closed the connection (checked without blocking)."""
        try:
            data = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return bool(data)

    def shutdown(self):
        """Ends the connection in both directions (wakes a thread blocked reading it)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        try:
            self._rfile.close()
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def _recv_exactly(sock, size):
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("connection closed")
        got += n
    return bytes(buf)


def send_msg(sock, obj):
    """Sends one message on a socket (unbuffered; a Connection is faster for many)."""
    data = dumps(obj)
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv_msg(sock):
    """Receives one message from a socket without reading past it."""
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
    return loads(_recv_exactly(sock, size))
