"""Loopback helpers: every port the harness publishes is on 127.0.0.1."""

from __future__ import annotations

import socket

from harness.errors import StageFailed

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """True when `port` can be bound on `host` as a server binds it: with SO_REUSEADDR (what every
    server socket sets), so a previous run's TIME-WAIT connections do not count as "in use"; a
    listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError:
            return False
    return True


def claim_port(pinned: int | None, key: str, what: str) -> int:
    """`pinned` if it is free here (else one error naming `key`), or a free port when none is pinned."""
    if pinned is None:
        return free_port()
    if not port_is_free(pinned):
        raise StageFailed(f"{key} = {pinned} pins the port of {what}, and {LOOPBACK}:{pinned} is in use here "
                          "(something listens on it): stop that, or pin another port")
    return pinned
