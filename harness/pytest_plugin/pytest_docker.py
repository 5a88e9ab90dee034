"""pytest-docker's fixtures, pointed at the compose project stageproof brought up.

A team that already has pytest-docker tests (`docker_services.port_for(...)`,
`wait_until_responsive`, `docker_ip`) runs them unchanged with `pytest their_tests --stage
compose`: `docker_compose_file` and `docker_compose_project_name` then name stageproof's
project (their file plus the override), and `docker_setup`/`docker_cleanup` do nothing, because
stageproof owns the project's lifecycle (labels, reaping, teardown on any signal).

Registered by the stageproof plugin only when `--stage compose` is the run's one stage, after
pytest-docker's own plugin, so these definitions take precedence over its defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from harness.errors import StageUnavailable

if TYPE_CHECKING:
    from harness.stages.compose import ComposeStage


class PytestDockerInterop:
    """The four pytest-docker fixtures a compose-stage run overrides."""

    @pytest.fixture(scope="session")
    def docker_compose_file(self, request: pytest.FixtureRequest) -> list[str]:
        return [str(path) for path in _compose_stage(request).compose_files()]

    @pytest.fixture(scope="session")
    def docker_compose_project_name(self, request: pytest.FixtureRequest) -> str:
        return _compose_stage(request).project

    @pytest.fixture(scope="session")
    def docker_setup(self) -> list[str]:
        return []  # stageproof brought the project up (with `up --wait`)

    @pytest.fixture(scope="session")
    def docker_cleanup(self) -> list[str]:
        return []  # stageproof tears it down, whatever ends the run


def _compose_stage(request: pytest.FixtureRequest) -> ComposeStage:
    from harness.stages.compose import ComposeStage

    stage = request.getfixturevalue("stage")
    if not isinstance(stage, ComposeStage):
        raise StageUnavailable("pytest-docker's fixtures follow the compose stage: run with --stage compose")
    return stage


def register_if_wanted(config: pytest.Config) -> None:
    """Only for a run whose one stage is compose, and only where pytest-docker is installed."""
    if config.getoption("stage") == ["compose"] and config.pluginmanager.hasplugin("docker"):
        config.pluginmanager.register(PytestDockerInterop(), "stageproof-pytest-docker")
