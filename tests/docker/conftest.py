"""The docker stage: network, database, seed and app containers, linked by hand."""

import pytest

from harness.pytest_plugin.fixtures import stage_fixture

stage = stage_fixture("docker")


@pytest.fixture(scope="session")
def container_stage_name() -> str:
    return "docker"
