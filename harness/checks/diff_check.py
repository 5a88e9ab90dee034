"""Every stage answers like the run's first stage: the same requests, the same statuses, headers and
bodies (ids, release ids and the run's unique token aside).

It runs right after the contract (the plugin orders it so), when every stage's database holds the
same rows. The first stage records the reference; each later stage replays it and lists how it
differs. With `--stageproof-diff-against PATH`, every stage is also held to a saved recording.

Each recording lands beside the JSON report with its provenance (run id, release, config, session):
a session whose first stage only records the reference proves nothing on its own, so
`stageproof diff-gate` compares the recordings of every session of a CI run (harness.report.gate).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.config import Settings
from harness.contract.cases import Case, Request
from harness.contract.diff import Normaliser, Recording, build_sequence, compare, record, stage_unique
from harness.contract.runner import ContractClient
from harness.lifecycle import StageRunner
from harness.report.recordings import Provenance, recording_path, write_recording
from harness.stage import Deployment, Stage

#: the recordings of this run, by stage, in the order the stages ran: the first is the reference
RECORDINGS = pytest.StashKey[dict[str, Recording]]()


def openapi_document(client: ContractClient, settings: Settings) -> dict[str, Any] | None:
    """The document the deployment serves (None when the config names none)."""
    path = settings.app.openapi_path
    if path is None:
        return None
    response = client.session.get(client.deployment.base_url + path, timeout=client.timeout)
    try:
        response.raise_for_status()
        document = response.json()
    except (requests.HTTPError, ValueError) as err:
        pytest.fail(f"app.openapi_path: {path} did not answer a JSON document ({err})", pytrace=False)
    return document if isinstance(document, dict) else None


def sequence_for(references: list[Recording], build: Callable[[], list[Request]]) -> list[Request]:
    """What the references recorded (each request once, in order), else a new sequence."""
    if not references:
        return build()
    found: dict[str, Request] = {}
    for reference in references:
        for answer in reference.answers:
            found.setdefault(answer.request, answer.as_request())
    return list(found.values())


@pytest.mark.stage_diff
def test_stage_answers_like_the_first_stage(stage: Stage | None, deployment: Deployment,
                                            stageproof_settings: Settings, contract_cases: list[Case],
                                            stage_runner: StageRunner, report: Callable[..., Any],
                                            pytestconfig: pytest.Config) -> None:
    recordings = pytestconfig.stash.setdefault(RECORDINGS, {})
    saved = pytestconfig.getoption("stageproof_diff_against")
    references = [Recording.read(Path(saved))] if saved else []
    references += [first for first in list(recordings.values())[:1] if first.stage != deployment.stage]
    unique = stage_unique(stage_runner.run_id, deployment.stage)
    client = ContractClient(deployment, unique=unique)
    sequence = sequence_for(references, lambda: build_sequence(
        stageproof_settings, contract_cases, openapi_document(client, stageproof_settings)))
    recording = record(client, sequence, Normaliser.for_stage(stageproof_settings, unique, deployment.release))
    recordings.setdefault(deployment.stage, recording)
    target = pytestconfig.getoption("stageproof_report")
    if target:
        write_recording(recording_path(Path(target), deployment.stage), recording.to_json(),
                        Provenance(stage_runner.run_id, recording.release, stageproof_settings.app.name,
                                   Path(target).with_suffix("").name))
    if not references:
        report(f"diff: recorded {len(recording.answers)} requests as the reference (compared across sessions by "
               "`stageproof diff-gate`)", {"requests": len(recording.answers), "reference": True})
        return
    problems = [f"{reference.stage} vs {recording.stage}: {line}"
                for reference in references for line in compare(reference, recording)]
    against = " and ".join(reference.stage for reference in references)
    report(f"diff: {len(recording.answers)} requests replayed against {against}, {len(problems)} divergences",
           {"requests": len(recording.answers), "divergences": len(problems)})
    if problems:
        pytest.fail(f"{deployment.stage} answers differently from {against}:\n  " + "\n  ".join(problems),
                    pytrace=False)
