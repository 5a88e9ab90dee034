"""What every stage check asks of the config, written once: the load request, the persistence
case (write before a disruption, read back after), and the probes of readiness.

Checks never spell a path or a field of the app: they ask the settings. A check that needs a
setting the app does not have is marked `needs("app.ready_path")`, and the plugin reports it
"not applicable" with that reason instead of running it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from harness.config import Settings
from harness.contract.cases import Case
from harness.contract.runner import CaseResult, ContractClient
from harness.core.wait import NotYet
from harness.load import DisruptionResult, measure_disruption
from harness.load.body import ABSENT, BodyCheck, Contains, JsonField
from harness.stage import CONTROLS, Deployment

Report = Callable[[str], None]
#: what the `report` fixture is: `report(text, figures=None)`
Reporter = Callable[..., None]


def requires(*controls: type) -> pytest.MarkDecorator:
    """Mark a check as needing these stage controls, by type (harness.stage: AppControl, Workload, ...):
    a typo is a NameError at import; where a control is absent the check is "not applicable"."""
    unknown = [kind for kind in controls if kind not in CONTROLS]
    if unknown or not controls:
        names = ", ".join(kind.__name__ for kind in CONTROLS)
        raise TypeError(f"requires() takes control types of harness.stage ({names}), not {unknown or 'nothing'}")
    return pytest.mark.requires.with_args(*controls)  # one class alone would be taken as the decorated object


def needs(*keys: str) -> pytest.MarkDecorator:
    """Mark a check as needing these dotted settings (`app.ready_path`, `checks.persistence`); a key
    the settings model does not have is an error at import, never a silent "not applicable"."""
    for key in keys:
        model: Any = Settings
        for part in key.split("."):
            fields = getattr(model, "model_fields", {})
            if part not in fields:
                raise TypeError(f"needs({key!r}): the config has no key {key!r}")
            model = _model_of(fields[part].annotation)
    return pytest.mark.needs(*keys)


def _model_of(annotation: Any) -> Any:
    """The pydantic model inside `X | None` (or X itself), for walking dotted keys."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if hasattr(candidate, "model_fields"):
            return candidate
    return None


def missing_settings(settings: Settings, keys: tuple[str, ...]) -> list[str]:
    """The dotted keys of `keys` that are unset (None or empty) in `settings`."""
    missing = []
    for key in keys:
        value: Any = settings
        for part in key.split("."):
            value = getattr(value, part, None)
        if not value:
            missing.append(key)
    return missing


def load_url(settings: Settings, deployment: Deployment) -> str:
    return deployment.base_url + settings.checks.load.path


def under_load(settings: Settings, deployment: Deployment, what: str, disrupt: Callable[[], object],
               recovered: Callable[[], object] | None = None, *, max_seconds: float | None = None) -> DisruptionResult:
    """`disrupt()` under the configured load (`[checks] load`, `rate`, `max_seconds` unless a check
    that waits longer by design gives its own), counting every failure."""
    checks = settings.checks
    return measure_disruption(load_url(settings, deployment), what, disrupt, recovered=recovered, rate=checks.rate,
                              max_seconds=max_seconds or checks.max_seconds, method=checks.load.method,
                              expect_status=checks.load.status, body=load_body(settings),
                              timeout=checks.request_timeout, connect_timeout=checks.connect_timeout,
                              max_in_flight=checks.max_in_flight)


def load_body(settings: Settings) -> BodyCheck | None:
    """The body check of `[checks] load` (contains, or json_field [+ equals]), if any."""
    load = settings.checks.load
    if load.contains is not None:
        return Contains(load.contains)
    if load.json_field is not None:
        return JsonField(load.json_field, ABSENT if load.equals is None else load.equals)
    return None


def persistence_case(settings: Settings, cases: list[Case]) -> Case:
    """The contract case named by `checks.persistence` (validated when the config was read)."""
    name = settings.checks.persistence
    found = [case for case in cases if case.name == name]
    assert found, f"checks.persistence names {name!r}, which is not a contract case"
    return found[0]


def write(client: ContractClient, case: Case) -> CaseResult:
    """Run the whole persistence case (write, read back) before a disruption; it must pass."""
    result = client.run_case(case)
    assert result.passed, f"before the disruption, {case.name!r} failed:\n  " + "\n  ".join(result.problems)
    return result


def read_back(client: ContractClient, case: Case, written: CaseResult) -> list[str]:
    """The case's steps after the first (the reads), again, with the values the write saved."""
    result = client.run_case(case, first_step=2, variables=written.variables)
    return [f"{case.name} after the disruption: {problem}" for problem in result.problems]


def answers(url: str, status: int, *, method: str = "GET") -> Callable[[], requests.Response]:
    """A probe: `url` answers `status` (any other answer, or none, is "not yet")."""

    def probe() -> requests.Response:
        response = requests.request(method, url, timeout=3)
        if response.status_code != status:
            raise NotYet(f"{method} {url} answered {response.status_code}")
        return response

    return probe


def load_fails(settings: Settings, deployment: Deployment) -> Callable[[], object]:
    """A probe: the load request no longer succeeds (the outage is visible to users)."""
    load = settings.checks.load

    def probe() -> object:
        try:
            response = requests.request(load.method, load_url(settings, deployment), timeout=3)
        except requests.RequestException as err:
            return err
        if response.status_code == load.status:
            raise NotYet(f"{load.method} {load.path} still answers {response.status_code}")
        return response

    return probe
