"""The HTTP client base shared by the SDK's head clients (job submission,
cluster environments): address and token resolution, JSON requests and
streamed log tails, standard library only.

Errors: a head that cannot be reached raises ConnectionError; an HTTP error
status raises HeadHTTPError, a RuntimeError whose text is Ray's ("Request
failed with status code <code>: <the head's message>.").

Thread-safety: a client holds no connection between requests (each opens its
own), so its methods may be called from several threads.
"""

import asyncio
import codecs
import http.client
import json
import os
import urllib.parse
from typing import Any, Dict, Optional

from strata import _native
from strata._private.core import _normalize_url, _split_address

TOKEN_VARIABLE = "STRATA_AUTH_TOKEN"
# Job submission validates the env on the head; give it time.
REQUEST_TIMEOUT_S = 300.0


class HeadHTTPError(RuntimeError):
    """The head answered with an error status; `status` and `message` (the
    head's text) are kept for callers that map them to other exceptions."""

    def __init__(self, status: int, message: str):
        super().__init__(f"Request failed with status code {status}: {message}.")
        self.status = status
        self.message = message


def _given(address: Optional[str]) -> Optional[str]:
    """``address`` unless it means "not given" (None or ``"auto"``)."""
    if address is not None and address.strip().lower() == "auto":
        return None
    return address


def resolve_address(address: Optional[str]) -> str:
    """The head URL: ``address``, else STRATA_ADDRESS (its ``?cluster_env=``
    query dropped), else http://127.0.0.1:8265. ``"auto"`` means "not given";
    ``host:port`` without a scheme means http://host:port."""
    address = _given(address)
    if address is not None and "://" not in address:
        address = "http://" + address
    return _native.resolve_head_address(address)


def address_cluster_env(address: Optional[str]) -> Optional[str]:
    """The ``?cluster_env=NAME:VERSION`` of ``address``, else of
    STRATA_ADDRESS (when ``address`` is not given); None when absent."""
    address = _given(address) or os.environ.get("STRATA_ADDRESS") or None
    if address is None:
        return None
    return _split_address(_normalize_url(address))[1]


class LogTail:
    """A log as it grows, in chunks of text, until the head ends the stream.
    Iterate with ``for`` (blocking reads) or ``async for`` (reads in a thread).
    ``close()`` (or leaving the loop and dropping it) ends the stream."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._connection = connection
        self._response = response
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._done = False

    def set_timeout(self, seconds: Optional[float]) -> None:
        """The limit of each following read (socket.timeout when it passes;
        the stream cannot be read further after that)."""
        if self._connection.sock is not None:
            self._connection.sock.settimeout(seconds)

    def _read(self) -> Optional[str]:
        """The next non-empty chunk, or None at the end."""
        while not self._done:
            data = self._response.read1(64 * 1024)
            if not data:
                self._done = True
                text = self._decoder.decode(b"", final=True)
                self.close()
                return text or None
            text = self._decoder.decode(data)
            if text:
                return text
        return None

    def __iter__(self) -> "LogTail":
        return self

    def __next__(self) -> str:
        text = self._read()
        if text is None:
            raise StopIteration
        return text

    def __aiter__(self) -> "LogTail":
        return self

    async def __anext__(self) -> str:
        text = await asyncio.to_thread(self._read)
        if text is None:
            raise StopAsyncIteration
        return text

    def close(self) -> None:
        self._done = True
        self._connection.close()

    def __enter__(self) -> "LogTail":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._connection.close()
        except Exception:
            pass


class HeadClient:
    """Requests to a Strata head. ``address`` as resolve_address takes it;
    the token of STRATA_AUTH_TOKEN, when set, is sent as ``Authorization:
    Bearer``; ``headers`` go with every request. The head is contacted once
    here (GET /api/version): ConnectionError when it cannot be reached."""

    def __init__(self, address: Optional[str] = None, headers: Optional[Dict[str, str]] = None):
        self._address = resolve_address(address)
        self._address_cluster_env = address_cluster_env(address)
        parsed = urllib.parse.urlsplit(self._address)
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._token = os.environ.get(TOKEN_VARIABLE) or None
        self._headers = dict(headers or {})
        if self._token:
            self._headers["Authorization"] = f"Bearer {self._token}"
        self._version = self._request_json("GET", "/api/version")

    @property
    def address(self) -> str:
        return self._address

    def _connect(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _send(
        self,
        method: str,
        path: str,
        body: Optional[Any] = None,
        timeout: Optional[float] = REQUEST_TIMEOUT_S,
    ):
        """(connection, response) with a 2xx status; raises otherwise."""
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection = self._connect(timeout)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
        except (ConnectionError, OSError) as e:
            connection.close()
            raise ConnectionError(
                f"Could not reach the Strata head at {self._address}: {e}. "
                "Is it running? (strata start --head)"
            ) from e
        if not 200 <= response.status < 300:
            text = response.read().decode("utf-8", "replace")
            connection.close()
            raise HeadHTTPError(response.status, text)
        return connection, response

    def _request_json(self, method: str, path: str, body: Optional[Any] = None) -> Any:
        connection, response = self._send(method, path, body)
        try:
            data = response.read()
        finally:
            connection.close()
        return json.loads(data) if data else None

    def _tail(self, path: str) -> LogTail:
        """The chunked text stream of ``path`` (no read timeout)."""
        connection, response = self._send("GET", path, timeout=None)
        return LogTail(connection, response)
