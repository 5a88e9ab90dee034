"""Run one contract case against a deployment over HTTP and list every mismatch.

A case passes only when every step's response matches; mismatches are reported all at once,
with the response body, so a failing stage shows exactly how it differs.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import requests

from harness.contract.cases import Case, Expect, Request
from harness.deployment import Deployment

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
WRONG_TOKEN = "stageproof-wrong-token"


@dataclass
class CaseResult:
    case: str
    problems: list[str] = field(default_factory=list)
    #: the placeholders' values at the end (built-ins and what steps saved), for a later read-back
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems


class ContractClient:
    """HTTP with timeouts against one deployment; one session, no retries (failures count)."""

    def __init__(self, deployment: Deployment, *, timeout: float = 10.0, unique: str | None = None) -> None:
        """`unique` is the `${unique}` of every case this client runs (default: a fresh one)."""
        self.deployment = deployment
        self.timeout = timeout
        self.session = requests.Session()
        self.unique = unique or secrets.token_hex(4)

    def run_case(self, case: Case, *, first_step: int = 1, last_step: int | None = None,
                 variables: dict[str, Any] | None = None) -> CaseResult:
        """Run the case's steps from `first_step` to `last_step` (1-based, inclusive; default: the
        last), starting from `variables` (what an earlier run of the case saved) when given."""
        result = CaseResult(case.name)
        variables = {"release": self.deployment.release, "unique": self.unique,
                     "token": self.deployment.token or "", **(variables or {})}
        result.variables = variables
        for number, step in enumerate(case.all_steps()[first_step - 1:last_step], start=first_step):
            response = self.send(step.request, variables)
            where = f"step {number} ({step.request.method} {response.request.path_url})"
            problems = check(step.expect, response, variables)
            result.problems += [f"{where}: {problem}" for problem in problems]
            if problems:
                result.problems.append(f"{where}: body was {response.text[:500]!r}")
                break
            variables.update(_saved(step.save, response))
        return result

    def send(self, request: Request, variables: dict[str, Any]) -> requests.Response:
        headers = {}
        if request.auth == "token":
            headers["Authorization"] = f"Bearer {self.deployment.token}"
        elif request.auth == "wrong":
            headers["Authorization"] = f"Bearer {WRONG_TOKEN}"
        if request.content_type:
            headers["Content-Type"] = request.content_type
        return self.session.request(
            request.method,
            self.deployment.base_url.rstrip("/") + substitute(request.path, variables),
            json=substitute(request.json_body, variables) if request.json_body is not None else None,
            data=substitute(request.data, variables) if request.data is not None else None,
            headers=headers,
            timeout=self.timeout,
            allow_redirects=False,
        )


def check(expect: Expect, response: requests.Response, variables: dict[str, Any]) -> list[str]:
    """Every way `response` differs from `expect` (empty when it matches)."""
    problems: list[str] = []
    if response.status_code != expect.status:
        problems.append(f"status {response.status_code}, expected {expect.status}")
    content_type = response.headers.get("Content-Type", "")
    if expect.content_type and not content_type.startswith(expect.content_type):
        problems.append(f"content type {content_type!r}, expected {expect.content_type!r}")
    if expect.body is not None and response.text != substitute(expect.body, variables):
        problems.append(f"body {response.text!r} differs from the expected bytes {expect.body!r}")
    for needle in substitute(expect.text_contains or [], variables):
        if needle not in response.text:
            problems.append(f"body lacks {needle!r}")
    if _wants_json(expect):
        problems += _check_json(expect, response, variables)
    return problems


def _wants_json(expect: Expect) -> bool:
    return any(value is not None for value in
               (expect.json_body, expect.json_subset, expect.json_keys, expect.json_length))


def _check_json(expect: Expect, response: requests.Response, variables: dict[str, Any]) -> list[str]:
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        return ["body is not JSON"]
    problems = []
    if expect.json_body is not None and body != substitute(expect.json_body, variables):
        problems.append(f"JSON {body!r}, expected {substitute(expect.json_body, variables)!r}")
    for key, value in (expect.json_subset or {}).items():
        wanted = substitute(value, variables)
        if not isinstance(body, dict) or body.get(key) != wanted:
            got = body.get(key) if isinstance(body, dict) else body
            problems.append(f"JSON field {key!r} is {got!r}, expected {wanted!r}")
    missing = [key for key in expect.json_keys or [] if not isinstance(body, dict) or key not in body]
    if missing:
        problems.append(f"JSON lacks key(s) {missing}")
    if expect.json_length is not None and (not isinstance(body, list) or len(body) != expect.json_length):
        size = len(body) if isinstance(body, list) else "not a list"
        problems.append(f"JSON list length {size}, expected {expect.json_length}")
    return problems


def substitute(value: Any, variables: dict[str, Any]) -> Any:
    """Fill `${name}` placeholders; a string that is exactly one placeholder keeps the value's type."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in variables:
            return variables[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(variables.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    return value


def _saved(save: dict[str, str], response: requests.Response) -> dict[str, Any]:
    if not save:
        return {}
    body = response.json()
    return {name: body[key] for name, key in save.items()}
