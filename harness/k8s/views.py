"""What the k8s checks see of pods, as plain values (the Kubernetes client's objects stay inside harness/k8s)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Replica:
    """One pod of the app (or of its database)."""

    name: str
    uid: str
    node: str
    ready: bool
    restarts: int
    image: str = ""
    release: str = ""
    cpu_request: str | None = None


@dataclass(frozen=True)
class Answer:
    """One pod's answer to a GET sent to it alone (through the API server)."""

    status: int
    body: str
