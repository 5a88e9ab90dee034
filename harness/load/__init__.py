"""Chaos under load: a bounded load generator on 127.0.0.1 and the disruption measurement every
stage's checks share (pod kill, scaling, rollout, database outage)."""

from harness.load.disruption import DisruptionResult, measure_disruption
from harness.load.generator import LoadGenerator, LoadResult

__all__ = ["DisruptionResult", "LoadGenerator", "LoadResult", "measure_disruption"]
