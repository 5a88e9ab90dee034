"""A local image registry for registry mode and for clusters stageproof did not create: Debian's
`docker-registry` (CNCF distribution 2.8), its storage in a temp dir that goes with it.

It answers on 127.0.0.1 (Docker pushes there over plain http: it trusts loopback registries) and,
when a Docker network is named, also on that network's gateway address: a kind node's 127.0.0.1 is
its own, so the nodes pull from the gateway (the same storage, a second process on the same port).
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import requests

from harness.core import goyaml
from harness.core.net import LOOPBACK, free_port
from harness.core.process import ManagedProcess
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.errors import StageUnavailable

log = logging.getLogger("stageproof.registry")
BINARY = "docker-registry"
#: labels the Docker networks a registry fixture creates (so a sweep could find them)
NETWORK_LABEL = "io.stageproof.registry"


def gateway(network: str) -> str:
    """The IPv4 gateway of Docker network `network`: this machine's address on it."""
    inspected = json.loads(run(["docker", "network", "inspect", network]).stdout)
    for pool in inspected[0]["IPAM"]["Config"] or []:
        address = pool.get("Gateway", "")
        if address and ":" not in address:
            return str(address)
    raise StageUnavailable(f"docker network {network} has no IPv4 gateway")


@dataclass
class LocalRegistry:
    """`start()` it (or `with`), push to `host`, let kind nodes pull from `node_endpoint`, `stop()`."""

    #: also serve on this Docker network's gateway (the kind nodes' way to this machine)
    network: str | None = None
    #: (user, password): htpasswd auth, so pulls need credentials (imagePullSecrets)
    credentials: tuple[str, str] | None = None
    port: int = 0
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="stageproof-registry-")))
    _processes: list[ManagedProcess] = field(default_factory=list, init=False)
    _node_address: str | None = field(default=None, init=False)

    @property
    def host(self) -> str:
        """Push target and pull prefix on this machine: `127.0.0.1:<port>`."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def node_endpoint(self) -> str:
        """Where the kind nodes reach it: `http://<gateway>:<port>` (else the loopback address)."""
        return f"http://{self._node_address or LOOPBACK}:{self.port}"

    def start(self) -> LocalRegistry:
        if shutil.which(BINARY) is None:
            raise StageUnavailable(f"{BINARY} is not on PATH (scripts/setup-machine.sh installs Debian's)")
        self.port = self.port or free_port()
        addresses = [LOOPBACK]
        if self.network is not None:
            self._node_address = gateway(self.network)
            addresses.append(self._node_address)
        htpasswd = self._write_htpasswd()
        for address in addresses:
            config = self.root / f"config-{address}.yml"
            config.write_text(goyaml.dump(self._config(address, htpasswd)))
            self._processes.append(ManagedProcess(f"registry {address}:{self.port}", [BINARY, "serve", str(config)],
                                                  log_path=self.root / f"registry-{address}.log").start())
            wait_until(self._answers(address), what=f"the registry on {address}:{self.port}", timeout=30,
                       diagnostics=self._processes[-1].output)
        log.info("registry on %s (nodes: %s), storage %s", self.host, self.node_endpoint, self.root)
        return self

    def stop(self) -> None:
        """Stop every process and remove the storage: always safe to call."""
        for process in self._processes:
            process.stop()
        self._processes.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalRegistry:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def logs(self) -> str:
        return "\n".join(process.output()[-3000:] for process in self._processes)

    def _config(self, address: str, htpasswd: Path | None) -> dict[str, object]:
        config: dict[str, object] = {
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}, "delete": {"enabled": True}},
            # one secret for both processes: an upload started on one may be finished on the other
            "http": {"addr": f"{address}:{self.port}", "secret": self._secret()},
        }
        if htpasswd is not None:
            config["auth"] = {"htpasswd": {"realm": "stageproof", "path": str(htpasswd)}}
        return config

    def _secret(self) -> str:
        path = self.root / "http-secret"
        if not path.exists():
            path.write_text(secrets.token_hex(16))
        return path.read_text()

    def _write_htpasswd(self) -> Path | None:
        """distribution accepts bcrypt entries only."""
        if self.credentials is None:
            return None
        import bcrypt

        user, password = self.credentials
        path = self.root / "htpasswd"
        path.write_text(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n")
        return path

    def _answers(self, address: str) -> Callable[[], None]:
        def probe() -> None:
            if any(process.exit_code() is not None for process in self._processes):
                raise StageUnavailable(f"the registry exited:\n{self.logs()}")
            answer = requests.get(f"http://{address}:{self.port}/v2/", timeout=2)
            if answer.status_code not in (200, 401):  # 401: up, with auth
                raise NotYet(f"/v2/ answered {answer.status_code}")
        return probe
