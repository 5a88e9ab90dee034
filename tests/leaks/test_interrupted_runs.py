"""Nothing left behind, whatever happens: each stage's real `stageproof test`, cut short during its
bring-up by Ctrl-C (SIGINT to the process group), SIGTERM, SIGHUP or a closed stdout, leaves 0
processes, containers, networks, volumes and folders (harness/checks/leak_audit.py)."""

from __future__ import annotations

from tests.support.leak_audit import CLOSED_STDOUT, interrupt_audit

test_an_interrupted_local_run_leaves_nothing = interrupt_audit(
    "local-sqlite", "local-mysql", within=2.0,
    extra={"local-sqlite": ["SIGHUP", CLOSED_STDOUT], "local-mysql": ["SIGINT+SIGINT"]})

test_an_interrupted_docker_run_leaves_nothing = interrupt_audit("docker", within=5.0)

test_an_interrupted_compose_run_leaves_nothing = interrupt_audit(
    "compose", extra={"compose": ["SIGHUP", "SIGINT+SIGTERM", CLOSED_STDOUT]}, within=5.0)
