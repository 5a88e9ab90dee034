"""The compose stage: db, seed and web as one `docker compose up --wait`."""

import pytest

from harness.pytest_plugin.fixtures import stage_fixture

stage = stage_fixture("compose")


@pytest.fixture(scope="session")
def container_stage_name() -> str:
    return "compose"
