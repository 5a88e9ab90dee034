"""One load request on asyncio streams: a fresh connection, one HTTP/1.1 exchange, closed.

Why stdlib asyncio streams and not aiohttp or httpx: the load needs exactly one request per new
connection (kube-proxy balances each one anew), no pool, no retry, no redirect, and two timeouts
of its own (connect, whole request) whose expiry is a counted reason. That is a connection and a
write; the response head is parsed by the stdlib's own `http.client` parser (status line, headers,
Content-Length, chunked), fed from the bytes read. No dependency to declare, and the per-request
cost stays a fraction of a millisecond on this 2-core machine.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import ipaddress
import socket
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from harness.load.body import BodyCheck, Mark
from harness.load.samples import STALLED

TIMEOUT = "timeout"
CONNECT_TIMEOUT = "connect timeout"
#: a timeout noticed this much later than it was due: the client's own event loop was held (a machine
#: starved by other work, a long garbage collection), so the answer may have come in time unread
STALL = 0.5
HEAD_LIMIT = 64 * 1024  # a response head larger than this is a failure (LimitOverrunError)
BODY_KEPT = 1 << 20  # what a body check sees at most; the rest is read and dropped
CHUNK = 64 * 1024


def require_loopback(url: str) -> tuple[str, int, str]:
    """(host, port, path) of an http URL on the loopback range; anything else is refused."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        raise ValueError(f"load is only ever sent to http://127.0.0.1 (or another loopback address), not {url!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, parts.port or 80, path


@dataclass(frozen=True)
class Request:
    """The one request the load sends, again and again, and what counts as its success."""

    url: str
    method: str = "GET"
    expect_status: int = 200
    timeout: float = 5.0
    connect_timeout: float = 2.0
    body: BodyCheck | None = None
    mark: Mark | None = None


class Exchange:
    """Sends `Request`s; the address and the fixed part of the head are worked out once."""

    def __init__(self, request: Request) -> None:
        self.request = request
        host, port, self._path = require_loopback(request.url)
        self._address = ("127.0.0.1" if host == "localhost" else host), port  # no resolver thread per request
        self._start = f"{request.method} "
        self._rest = (f" HTTP/1.1\r\nHost: {f'[{host}]' if ':' in host else host}:{port}\r\n"
                      "User-Agent: stageproof-load\r\nAccept: */*\r\nConnection: close\r\n")
        self.head(0)  # a URL that is not ASCII is refused now, not once per request

    def head(self, number: int) -> bytes:
        """Request `number`'s bytes: its own marker (when asked), `Connection: close`, no body."""
        mark = self.request.mark
        if mark is None:
            return f"{self._start}{self._path}{self._rest}\r\n".encode("ascii")
        return f"{self._start}{mark.path(self._path, number)}{self._rest}{mark.header(number)}\r\n".encode("ascii")

    async def send(self, number: int) -> str | None:
        """Request `number` on a new connection: the reason it failed, or None."""
        began = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(self.request.timeout):
                return await self._exchange(number, began)
        except TimeoutError:
            return _timed_out(began, self.request.timeout, TIMEOUT)
        except asyncio.IncompleteReadError as err:
            return "RemoteDisconnected" if err.expected is None else "IncompleteRead"
        except (OSError, asyncio.LimitOverrunError, http.client.HTTPException, ValueError) as err:
            return type(err).__name__

    async def _exchange(self, number: int, began: float) -> str | None:
        try:
            async with asyncio.timeout(self.request.connect_timeout):
                reader, writer = await asyncio.open_connection(*self._address, limit=HEAD_LIMIT)
        except TimeoutError:
            return _timed_out(began, self.request.connect_timeout, CONNECT_TIMEOUT)
        try:
            writer.write(self.head(number))
            head = await reader.readuntil(b"\r\n\r\n")
            response = _parse(head, self.request.method)
            body = await _read(reader, response.length)
        finally:
            writer.close()
        if response.status != self.request.expect_status:
            return f"HTTP {response.status}"
        if self.request.body is None:
            return None
        return self.request.body.problem(_dechunked(head, body, self.request.method) if response.chunked else body)


def _timed_out(began: float, limit: float, reason: str) -> str:
    """`reason`, or `STALLED` when the timeout was noticed more than `STALL` after it was due: the
    client, not the app, is then what the count would measure (the verdicts call it inconclusive)."""
    return STALLED if asyncio.get_running_loop().time() - began - limit > STALL else reason


class _Canned:
    """Just enough of a socket for `http.client.HTTPResponse` to parse bytes already read."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def _parse(head: bytes, method: str) -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(cast(socket.socket, _Canned(head)), method=method)
    response.begin()
    return response


async def _read(reader: asyncio.StreamReader, length: int | None) -> bytes:
    """The body: `length` bytes, or (chunked or unsized) up to the end of the connection; the first
    `BODY_KEPT` bytes are kept."""
    kept, left = bytearray(), length
    while left is None or left > 0:
        chunk = await reader.read(CHUNK if left is None else min(CHUNK, left))
        if not chunk:
            if left:
                raise asyncio.IncompleteReadError(bytes(kept), length)
            break
        kept += chunk[:max(0, BODY_KEPT - len(kept))]
        if left is not None:
            left -= len(chunk)
    return bytes(kept)


def _dechunked(head: bytes, body: bytes, method: str) -> bytes:
    response = _parse(head + body, method)
    try:
        return response.read()
    except http.client.IncompleteRead as err:  # a body longer than BODY_KEPT: judge what was kept
        return err.partial
