"""The local stages: the app as a gunicorn process on sqlite, then on MySQL."""

from harness.pytest_plugin.fixtures import stage_fixture

stage = stage_fixture("local-sqlite", "local-mysql")
