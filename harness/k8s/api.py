"""Typed API clients for one kubeconfig context, built without touching global client state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config


@dataclass(frozen=True)
class Api:
    """The API groups the stage talks to, sharing one authenticated connection pool."""

    core: client.CoreV1Api
    apps: client.AppsV1Api
    batch: client.BatchV1Api
    networking: client.NetworkingV1Api


def connect(kubeconfig: Path | None, context: str | None = None) -> Api:
    """Clients for `context` of `kubeconfig` (None: the default file and its current context)."""
    api_client = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None,
                                               context=context)
    return Api(client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.BatchV1Api(api_client),
               client.NetworkingV1Api(api_client))
