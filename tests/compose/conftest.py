"""The compose stage: db, seed and web as one `docker compose up --wait`."""

from harness.plugin import stage_fixture

stage = stage_fixture("compose")
