"""The docker stage: network, database, seed and app containers, linked by hand."""

from harness.plugin import stage_fixture

stage = stage_fixture("docker")
