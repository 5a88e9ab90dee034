"""The app's API against its own OpenAPI document, at every stage (property-based, schemathesis).

The document is fetched from the deployment itself, so each stage is held to what it serves.
Cases are generated with a fixed seed and derandomized: every stage of a run gets the same
requests, and a failure found on one stage reproduces on the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import Status, events, from_schema
from schemathesis.errors import LoaderError

from harness.checks.common import needs
from harness.config import Settings
from harness.stage import Deployment

#: the contract of an OpenAPI document, plus RFC 9110's 405 rules (status and `Allow` header)
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "unsupported_method", "allow_header_conformance")
#: no stateful phase: the contract already proves write-then-read, and it triples the requests
PHASES = ("examples", "coverage", "fuzzing")
ALL_PHASES = ("examples", "coverage", "fuzzing", "stateful")
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

    def figures(self) -> dict[str, int]:
        return {"cases": self.cases, "failures": len(self.failures), "errors": len(self.errors)}

    def problems(self) -> str:
        """Every failure as a curl line to paste (the first `SHOWN_FAILURES`), then the errors."""
        lines = [failure.describe() for failure in self.failures[:SHOWN_FAILURES]]
        if len(self.failures) > SHOWN_FAILURES:
            lines.append(f"... and {len(self.failures) - SHOWN_FAILURES} more failing requests")
        lines += [f"error: {error}" for error in self.errors]
        return "\n  ".join(lines)


def api_config(settings: Settings, deployment: Deployment) -> schemathesis.Config:
    """Seeded, derandomized and bounded; every request goes to the deployment (its token on each)."""
    checks = settings.checks
    headers = {"Authorization": f"Bearer {deployment.token}"} if deployment.token else {}
    return schemathesis.Config.from_dict({
        "seed": checks.api_seed,
        "base-url": deployment.base_url,
        "headers": headers,
        "request-timeout": REQUEST_TIMEOUT,
        "continue-on-failure": True,
        "generation": {"max-examples": checks.api_examples, "deterministic": True, "database": "none"},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {phase: {"enabled": phase in PHASES} for phase in ALL_PHASES},
    })


def run_api_checks(settings: Settings, deployment: Deployment) -> ApiResult:
    """Generate cases from the document the deployment serves, send them to it, collect failures."""
    assert settings.app.openapi_path is not None
    url = deployment.base_url + settings.app.openapi_path
    try:
        schema = schemathesis.openapi.from_url(url, config=api_config(settings, deployment), timeout=REQUEST_TIMEOUT)
    except LoaderError as err:
        pytest.fail(f"app.openapi_path: no OpenAPI document at {url}: {err}", pytrace=False)
    return collect(from_schema(schema).execute())


def collect(stream: Iterable[events.EngineEvent]) -> ApiResult:
    """Count the cases sent and keep each distinct failure (and engine error) of the run, server
    errors first (`CHECKS` order)."""
    cases = 0
    failures: dict[tuple[str, str, str], ApiFailure] = {}
    errors: list[str] = []
    for event in stream:
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            for failure in failed_checks(event):
                failures.setdefault((failure.check, failure.title, failure.curl), failure)
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {type(event.value).__name__}: {event.value}")
        elif isinstance(event, events.FatalError):
            errors.append(f"{type(event.exception).__name__}: {event.exception}")
    ordered = sorted(failures.values(), key=lambda failure: _rank(failure.check))
    return ApiResult(cases, tuple(ordered), tuple(errors))


def _rank(check: str) -> int:
    return CHECKS.index(check) if check in CHECKS else len(CHECKS)


def failed_checks(event: events.ScenarioFinished) -> list[ApiFailure]:
    """The failing checks of one scenario: what the response broke (the failure's title and the
    first line of its message) and the status it came with."""
    found = []
    recorder = event.recorder
    for case_id, nodes in recorder.checks.items():
        interaction = recorder.interactions.get(case_id)
        answered = f" (answered {interaction.response.status_code})" if interaction and interaction.response else ""
        for check in nodes:
            if check.status == Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                detail = (failure.message or "").strip().splitlines()[:1]
                title = f"{failure.title}: {detail[0]}" if detail and detail[0] != failure.title else failure.title
                found.append(ApiFailure(check.name, title + answered, check.failure_info.code_sample))
    return found


@needs("app.openapi_path")
def test_api_behaves_as_its_openapi_document_says(deployment: Deployment, stageproof_settings: Settings,
                                                  report: Callable[..., Any]) -> None:
    result = run_api_checks(stageproof_settings, deployment)
    report(f"api: {result.cases} cases, {len(result.failures)} failures", result.figures())
    document = stageproof_settings.app.openapi_path
    if not result.cases:
        pytest.fail(f"no API case was generated from {document}", pytrace=False)
    if result.failures or result.errors:
        filtered = " (Authorization is filtered: send the stage's token)" if deployment.token else ""
        pytest.fail(f"{len(result.failures)} requests break {document}{filtered}:\n  {result.problems()}",
                    pytrace=False)
