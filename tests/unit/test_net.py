"""A port a previous run used is free again once nothing listens there: its TIME-WAIT sockets (the
connections the app closed first) must not read as "in use", as a bind without SO_REUSEADDR says."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.core.net import LOOPBACK, port_is_free
from harness.core.wait import NotYet, wait_until

TIME_WAIT = "06"  # the state column of /proc/net/tcp


def time_wait_sockets(port: int) -> int:
    """How many TCP sockets with local port `port` are in TIME-WAIT (the kernel's own table)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if int(row.split()[1].split(":")[1], 16) == port and row.split()[3] == TIME_WAIT)


def leave_time_wait(*, reuse: bool) -> int:
    """A port of 127.0.0.1 where a server answered a connection and closed it first (as an HTTP
    server does), then stopped listening: what a finished run leaves for a minute. `reuse`: the
    server set SO_REUSEADDR, as every real one does (Werkzeug, gunicorn, mariadbd); Linux lets a
    new bind through a TIME-WAIT socket only when both the old and the new socket set it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))
        server.bind((LOOPBACK, 0))
        server.listen(1)
        port = int(server.getsockname()[1])
        with socket.create_connection((LOOPBACK, port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server's side closes first: it is the one left in TIME-WAIT
            client.recv(1)    # its FIN arrived

    def in_time_wait() -> int:
        if not time_wait_sockets(port):
            raise NotYet(f"no TIME-WAIT socket on {LOOPBACK}:{port} yet")
        return port

    return wait_until(in_time_wait, what="the closed connection to reach TIME-WAIT", timeout=10)


@pytest.fixture
def port_in_time_wait() -> int:
    return leave_time_wait(reuse=True)


def test_a_port_with_only_time_wait_sockets_is_free(port_in_time_wait: int) -> None:
    port = port_in_time_wait
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as naive, pytest.raises(OSError):
        naive.bind((LOOPBACK, port))  # the precondition is real: a bind without SO_REUSEADDR fails here
    assert time_wait_sockets(port) >= 1
    assert port_is_free(port), f"{LOOPBACK}:{port} has only TIME-WAIT sockets, nothing listens there"


def test_a_port_something_listens_on_is_not_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind((LOOPBACK, 0))
        server.listen(1)
        assert not port_is_free(int(server.getsockname()[1]))


def test_a_server_can_bind_where_port_is_free_said_so(port_in_time_wait: int) -> None:
    """What the probe promises: a server (which sets SO_REUSEADDR, as Werkzeug and gunicorn do) binds there."""
    assert port_is_free(port_in_time_wait)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((LOOPBACK, port_in_time_wait))
        server.listen(1)


def test_a_time_wait_no_server_could_bind_through_is_not_free() -> None:
    """The probe says what a server would meet: a TIME-WAIT socket of a listener without SO_REUSEADDR
    blocks even a server that sets it, so that port is not free (honestly)."""
    port = leave_time_wait(reuse=False)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server, pytest.raises(OSError):
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((LOOPBACK, port))
    assert not port_is_free(port)
