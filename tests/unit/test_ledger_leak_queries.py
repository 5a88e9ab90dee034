"""A leak audit that cannot ask Docker or kind fails instead of counting 0 leftovers: a fake `docker`
(and `kind`) first on PATH that cannot reach its daemon makes every query raise; one that answers
with nothing is 0 leftovers; a volume Docker says does not exist is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import CommandFailed
from tests.support import k8s_leaks, leak_audit

DOWN = "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2; exit 1"
EMPTY = "exit 0"
ABSENT = "echo 'Error response from daemon: get v1: no such volume' >&2; exit 1"


def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, *names: str) -> None:
    """`names` on PATH before the real ones, each running the shell `body`."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name in names:
        script = bindir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")


def test_a_failing_docker_fails_the_container_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake(tmp_path, monkeypatch, DOWN, "docker")
    with pytest.raises(CommandFailed, match="Cannot connect to the Docker daemon"):
        leak_audit.docker_objects("deadbeef")
    with pytest.raises(CommandFailed):
        leak_audit.leftovers("deadbeef")


def test_a_docker_that_answers_nothing_is_no_leftover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake(tmp_path, monkeypatch, EMPTY, "docker")
    assert leak_audit.docker_objects("deadbeef") == []


def test_a_failing_docker_or_kind_fails_the_cluster_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake(tmp_path, monkeypatch, DOWN, "docker", "kind")
    watch = k8s_leaks.ClusterWatch("ledger-audit-test", tmp_path / "tmp")
    with pytest.raises(CommandFailed, match="Cannot connect"):
        watch.left()
    with pytest.raises(CommandFailed):
        k8s_leaks._exists("volume", "v1")
    fake(tmp_path, monkeypatch, ABSENT, "docker")
    assert k8s_leaks._exists("volume", "v1") is False
