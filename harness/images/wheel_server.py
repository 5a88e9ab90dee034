"""The wheel pool served to `docker build` over plain HTTP, only while an app image builds.

Baked into the python stand-in, the pool (every app's wheels on this machine) sits in every app
image built FROM it, and each new wheel in the pool makes a new stand-in, so the app's cached
layers go stale. Served instead, the app image holds only what its `pip install` installed.

pip inside a build cannot reach an index (no TLS trust there), but it reaches plain HTTP on the
build's network: `wheel_server(pool, image=...)` runs a small HTTP server container named
WHEELS_HOST on a network of its own, and `docker build --network <that network>` lets the RUN
steps of the build reach it as WHEELS_URL (the stand-in's PIP_FIND_LINKS). That URL is the same
for every build, so Docker's layer cache of a `pip install` step stays valid (a build arg with a
port in it would be part of every RUN step's cache key). The network is the build's own, so
builds of several sessions at once never meet.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.errors import StageUnavailable

WHEELS_HOST = "stageproof-wheels"
WHEELS_URL = f"http://{WHEELS_HOST}/"
#: on the server's container and network, so a killed run's leftovers can be found
LABEL = "io.stageproof.wheel-server"
SERVE_DIR = "/wheels"


@dataclass(frozen=True)
class WheelServer:
    """A running wheel server: `build_options` go on the `docker build` command line."""

    network: str
    url: str = WHEELS_URL

    @property
    def build_options(self) -> list[str]:
        return ["--network", self.network]


@contextmanager
def wheel_server(pool: Path, *, image: str, timeout: float = 30.0) -> Iterator[WheelServer]:
    """Serve the `*.whl` files of `pool` at WHEELS_URL to builds on the yielded network.

    `image` needs `python3` (the stand-in's Debian base has it); the server and its network are
    removed on exit, also when the build fails.
    """
    if not pool.is_dir():
        raise StageUnavailable(f"no wheel pool at {pool}: build the wheelhouse first (harness.images.wheels)")
    name = f"stageproof-wheels-{uuid.uuid4().hex[:8]}"
    run(["docker", "network", "create", "--label", f"{LABEL}=1", name])
    try:
        run(["docker", "run", "--detach", "--name", name, "--label", f"{LABEL}=1", "--network", name,
             "--network-alias", WHEELS_HOST, "--read-only", "--volume", f"{pool.resolve()}:{SERVE_DIR}:ro",
             "--entrypoint", "python3", image, "-m", "http.server", "80", "--directory", SERVE_DIR])
        address = _address(name)
        wait_until(lambda: _answers(f"http://{address}/"), what=f"the wheel server {name} on {address}:80",
                   timeout=timeout, interval=0.1)
        yield WheelServer(name)
    finally:
        run(["docker", "rm", "--force", name], check=False)
        run(["docker", "network", "rm", name], check=False)


def _address(container: str) -> str:
    """The server's address on its network (the host reaches a bridge network directly)."""
    networks = json.loads(run(["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}",
                               container]).stdout)
    return str(networks[container]["IPAddress"])


def _answers(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            response.read()
    except (urllib.error.URLError, OSError) as err:
        raise NotYet(f"{url}: {err}") from err
