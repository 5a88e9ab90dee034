"""The app's API against its own OpenAPI document, at every stage (property-based, schemathesis).

As strict as `schemathesis run --checks all`: every check schemathesis has, on valid and on invalid
data (a request the document forbids must be refused, one it allows must not be), in every phase
(its examples, its deterministic coverage of each keyword's boundaries, fuzzing, and stateful
sequences along the document's links). The document is fetched from the deployment itself, so each
stage is held to what it serves. Cases are generated with a fixed seed and derandomized, and their
number is bounded (`checks.api_examples` per operation and phase): every stage of a run gets the
same requests, and a failure found on one stage reproduces on the others.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.engine import Status, events, from_schema
from schemathesis.errors import LoaderError

from harness.checks.common import needs
from harness.config import Settings
from harness.stage import Deployment

#: how failures are listed: server errors first, then breaches of the document, then the rest in
#: schemathesis' own order. Every check schemathesis registers runs (`all_checks`), these and any other.
FIRST_CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
                "response_schema_conformance", "response_headers_conformance", "negative_data_rejection",
                "positive_data_acceptance")
#: every phase; the stateful one bounded by `checks.api_examples` scenarios of at most STATEFUL_STEPS calls
PHASES = ("examples", "coverage", "fuzzing", "stateful")
STATEFUL_STEPS = 5
REQUEST_TIMEOUT = 10
SHOWN_FAILURES = 20


@dataclass(frozen=True)
class ApiFailure:
    """One failing request: which check, what it saw, and how to send it again."""

    check: str
    title: str
    curl: str

    def describe(self) -> str:
        return f"{self.check}: {self.title}\n    {self.curl}"


@dataclass(frozen=True)
class ApiResult:
    cases: int
    failures: tuple[ApiFailure, ...]
    errors: tuple[str, ...]
    by_phase: tuple[tuple[str, int], ...] = ()  # cases per phase, in the order they ran
    seconds: float = 0.0

    def figures(self) -> dict[str, Any]:
        return {"cases": self.cases, "failures": len(self.failures), "errors": len(self.errors),
                "seconds": round(self.seconds, 1), **{f"cases_{phase}": count for phase, count in self.by_phase}}

    def summary(self) -> str:
        """`api: 236 cases (coverage 92, fuzzing 47, stateful 97), 0 failures in 21s`."""
        phases = ", ".join(f"{phase} {count}" for phase, count in self.by_phase if count)
        return (f"api: {self.cases} cases{f' ({phases})' if phases else ''}, {len(self.failures)} failures "
                f"in {self.seconds:.0f}s")

    def problems(self) -> str:
        """Every failure as a curl line to paste (the first `SHOWN_FAILURES`), then the errors."""
        lines = [failure.describe() for failure in self.failures[:SHOWN_FAILURES]]
        if len(self.failures) > SHOWN_FAILURES:
            lines.append(f"... and {len(self.failures) - SHOWN_FAILURES} more failing requests")
        lines += [f"error: {error}" for error in self.errors]
        return "\n  ".join(lines)


def api_config(settings: Settings, deployment: Deployment, phases: tuple[str, ...] = PHASES) -> schemathesis.Config:
    """Seeded, derandomized and bounded; every request goes to the deployment (its token on each)."""
    checks = settings.checks
    headers = {"Authorization": f"Bearer {deployment.token}"} if deployment.token else {}
    return schemathesis.Config.from_dict({
        "seed": checks.api_seed,
        "base-url": deployment.base_url,
        "headers": headers,
        "request-timeout": REQUEST_TIMEOUT,
        "continue-on-failure": True,
        "generation": {"max-examples": checks.api_examples, "deterministic": True, "database": "none",
                       "mode": "all"},  # valid and invalid data
        "checks": {name: {"enabled": True} for name in all_checks()},
        "phases": {**{phase: {"enabled": phase in phases} for phase in PHASES},
                   "stateful": {"enabled": "stateful" in phases, "max-steps": STATEFUL_STEPS}},
    })


def all_checks() -> tuple[str, ...]:
    """Every check schemathesis has (its OpenAPI checks register when its OpenAPI support loads)."""
    import schemathesis.specs.openapi.checks  # noqa: F401 - registers them

    return tuple(REGISTERED_CHECKS.get_all_names())


def run_api_checks(settings: Settings, deployment: Deployment, phases: tuple[str, ...] = PHASES) -> ApiResult:
    """Generate cases from the document the deployment serves, send them to it, collect failures."""
    assert settings.app.openapi_path is not None
    url = deployment.base_url + settings.app.openapi_path
    started = time.monotonic()
    config = api_config(settings, deployment, phases)
    try:
        schema = schemathesis.openapi.from_url(url, config=config, timeout=REQUEST_TIMEOUT)
    except LoaderError as err:
        pytest.fail(f"app.openapi_path: no OpenAPI document at {url}: {err}", pytrace=False)
    result = collect(from_schema(schema).execute())
    return dataclasses.replace(result, seconds=time.monotonic() - started)


def collect(stream: Iterable[events.EngineEvent]) -> ApiResult:
    """Count the cases sent and keep each distinct failure (and engine error) of the run, server
    errors first (`FIRST_CHECKS` order)."""
    by_phase: Counter[str] = Counter()
    failures: dict[tuple[str, str, str], ApiFailure] = {}
    errors: list[str] = []
    for event in stream:
        if isinstance(event, events.ScenarioFinished):
            by_phase[event.phase.value] += len(event.recorder.cases)
            for failure in failed_checks(event):
                failures.setdefault((failure.check, failure.title, failure.curl), failure)
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {type(event.value).__name__}: {event.value}")
        elif isinstance(event, events.FatalError):
            errors.append(f"{type(event.exception).__name__}: {event.exception}")
    ordered = sorted(failures.values(), key=lambda failure: _rank(failure.check))
    return ApiResult(sum(by_phase.values()), tuple(ordered), tuple(errors), tuple(by_phase.items()))


def _rank(check: str) -> int:
    return FIRST_CHECKS.index(check) if check in FIRST_CHECKS else len(FIRST_CHECKS)


def failed_checks(event: events.ScenarioFinished) -> list[ApiFailure]:
    """The failing checks of one scenario: what the response broke (the failure's title, the first
    line of its message and, for invalid data, which part of the request was made invalid) and the
    status it came with."""
    found = []
    recorder = event.recorder
    for case_id, nodes in recorder.checks.items():
        interaction = recorder.interactions.get(case_id)
        answered = f" (answered {interaction.response.status_code})" if interaction and interaction.response else ""
        for check in nodes:
            if check.status == Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                lines = (failure.message or "").strip().splitlines()
                detail = [line.strip() for line in lines[:1] if line.strip() != failure.title]
                detail += [line.strip() for line in lines[1:] if line.strip().startswith("Invalid component")][:1]
                title = ": ".join([failure.title, *detail])
                found.append(ApiFailure(check.name, title + answered, check.failure_info.code_sample))
    return found


@needs("app.openapi_path")
def test_api_behaves_as_its_openapi_document_says(deployment: Deployment, stageproof_settings: Settings,
                                                  report: Callable[..., Any]) -> None:
    result = run_api_checks(stageproof_settings, deployment)
    report(result.summary(), result.figures())
    document = stageproof_settings.app.openapi_path
    if not result.cases:
        pytest.fail(f"no API case was generated from {document}", pytrace=False)
    if result.failures or result.errors:
        filtered = " (Authorization is filtered: send the stage's token)" if deployment.token else ""
        pytest.fail(f"{len(result.failures)} requests break {document}{filtered}:\n  {result.problems()}",
                    pytrace=False)
