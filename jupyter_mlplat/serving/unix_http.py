"""HTTP/1.1 over a Unix socket, with one kept-alive connection per thread and socket.

The local model servers listen on Unix sockets in their accounts' private folders (a
loopback port would be open to every account on the machine). This is the synchronous
client of the platform's threads (readiness checks, ``predict``); the service's event loop
uses aiohttp's ``UnixConnector``.
"""

from __future__ import annotations

import http.client
import socket
import threading

_LOCAL = threading.local()
# A kept-alive connection the server closed meanwhile fails on first use: asked again once.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def fetch(
    socket_path: str, method: str, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None, timeout: float = 60.0,
) -> tuple[int, bytes]:  # fmt: skip
    """``(status, body)`` of one request; OSError when the socket cannot be reached."""
    pool = getattr(_LOCAL, "pool", None)
    if pool is None:
        pool = _LOCAL.pool = {}
    for attempt in (1, 2):
        connection = pool.get(socket_path)
        fresh = connection is None
        if fresh:
            connection = pool[socket_path] = UnixHTTPConnection(socket_path, timeout)
        connection.timeout = timeout
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            data = response.read()
        except _STALE:
            connection.close()
            pool.pop(socket_path, None)
            if fresh or attempt == 2:
                raise
            continue
        except (OSError, http.client.HTTPException):
            connection.close()
            pool.pop(socket_path, None)
            raise
        if response.will_close:
            connection.close()
            pool.pop(socket_path, None)
        return response.status, data
    raise AssertionError("unreachable")
