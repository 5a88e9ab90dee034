"""Typed API clients for one kubeconfig context, built without touching global client state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config


@dataclass(frozen=True)
class Api:
    """The API groups the stage talks to, sharing one authenticated connection pool.

    Typed `Any` on purpose: the generated client marks every field of every object Optional,
    while the harness only reads what the API server always fills (metadata.name, status, ...).
    """

    core: Any  # client.CoreV1Api
    apps: Any  # client.AppsV1Api
    batch: Any  # client.BatchV1Api
    networking: Any  # client.NetworkingV1Api


def connect(kubeconfig: Path | None, context: str | None = None) -> Api:
    """Clients for `context` of `kubeconfig` (None: the default file and its current context)."""
    api_client = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None,
                                               context=context)
    return Api(client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.BatchV1Api(api_client),
               client.NetworkingV1Api(api_client))
