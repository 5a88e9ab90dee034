"""Chaos under load: a bounded open-loop load generator on 127.0.0.1 (asyncio, in a thread of its
own), the disruption measurement every stage's checks share (pod kill, scaling, rollout, database
outage, node failure), and the verdicts that judge its samples with stated bounds."""

from harness.load.body import BodyCheck, Contains, JsonField, Mark, body_check
from harness.load.disruption import DisruptionResult, measure_disruption
from harness.load.generator import LoadGenerator
from harness.load.samples import LoadResult, Sample
from harness.load.verdicts import Verdict, WindowCounts, database_outage, node_failure, window_counts, zero_failures

__all__ = ["BodyCheck", "Contains", "DisruptionResult", "JsonField", "LoadGenerator", "LoadResult", "Mark", "Sample",
           "Verdict", "WindowCounts", "body_check", "database_outage", "measure_disruption", "node_failure",
           "window_counts", "zero_failures"]
