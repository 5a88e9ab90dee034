"""The local stages: the app as a process on sqlite, then on MySQL, then on PostgreSQL."""

from harness.pytest_plugin.fixtures import stage_fixture

stage = stage_fixture("local-sqlite", "local-mysql", "local-postgres")
