"""Waiting on the Kubernetes API with a WATCH, never a sleep loop.

`watch_until` lists the objects once, then follows the watch stream from that list's
resourceVersion, keeping a live view {name: object}. After every change it asks `check(view)`,
which returns a result when the condition holds or raises `NotYet(reason)`; any other exception
aborts at once (a failed Job is not worth waiting for). On the deadline it raises `WaitTimeout`
led by the cause in one line when `cause` finds one (the pod that is not Ready and its last log
line), then what it waited for and the last reason, with diagnostics attached for the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from harness.core.wait import NotYet, _safe
from harness.errors import WaitTimeout

log = logging.getLogger("stageproof.k8s")
T = TypeVar("T")
View = dict[str, Any]
MAX_WATCH_SECONDS = 30  # re-list at least this often: a watch can end quietly


def watch_until(list_fn: Callable[..., Any], check: Callable[[View], T], *, what: str, timeout: float,
                diagnostics: Callable[[], str] | None = None, cause: Callable[[], str | None] | None = None,
                **selectors: Any) -> T:
    """Follow `list_fn(**selectors)` (e.g. `apps.list_namespaced_deployment`, namespace=...,
    field_selector=...) until `check` returns; raise WaitTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    reason = "nothing observed yet"
    while True:
        listing = list_fn(**selectors)
        view: View = {item.metadata.name: item for item in listing.items}
        try:
            return check(view)
        except NotYet as err:
            reason = str(err)
        version = listing.metadata.resource_version
        try:
            for event in _events(list_fn, version, deadline, selectors):
                _apply(view, event)
                try:
                    return check(view)
                except NotYet as err:
                    reason = str(err)
        except ApiException as err:
            if err.status != 410:  # 410 Gone: our resourceVersion is too old; re-list below
                raise
        if time.monotonic() >= deadline:
            raise _timeout(what, timeout, reason, diagnostics, cause)


def _events(list_fn: Callable[..., Any], version: str, deadline: float, selectors: dict[str, Any]) -> Any:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return iter(())
    seconds = max(1, min(MAX_WATCH_SECONDS, int(remaining + 0.999)))
    return watch.Watch().stream(list_fn, resource_version=version, timeout_seconds=seconds,
                                _request_timeout=seconds + 10, **selectors)


def _apply(view: View, event: dict[str, Any]) -> None:
    obj = event["object"]
    if event["type"] == "DELETED":
        view.pop(obj.metadata.name, None)
    elif event["type"] in ("ADDED", "MODIFIED"):
        view[obj.metadata.name] = obj


def _timeout(what: str, timeout: float, reason: str, diagnostics: Callable[[], str] | None,
             cause: Callable[[], str | None] | None = None) -> WaitTimeout:
    first = _safe_cause(cause)
    error = WaitTimeout(f"{first + chr(10) if first else ''}timed out after {timeout:.0f}s waiting for {what} "
                        f"(last: {reason})")
    if diagnostics is not None:
        error.add_note(_safe(diagnostics))
    return error


def _safe_cause(cause: Callable[[], str | None] | None) -> str | None:
    """The cause line, if one can be found; looking for it must never hide the timeout."""
    if cause is None:
        return None
    try:
        return cause()
    except Exception as err:
        log.warning("could not find the cause of the timeout: %s", err)
        return None
