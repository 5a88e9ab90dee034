"""Waiting in one place: tenacity with a deadline, and a message that says what was awaited."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import requests
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from harness.errors import WaitTimeout

if TYPE_CHECKING:
    from harness.config import Settings

log = logging.getLogger("stageproof.wait")
T = TypeVar("T")


class NotYet(Exception):
    """Raised by a probe that ran fine but whose condition does not hold yet."""


RETRIED = (NotYet, requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)


def wait_until(
    probe: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.2,
    max_interval: float = 2.0,
    retry_on: tuple[type[BaseException], ...] = RETRIED,
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """Call `probe` until it returns without raising one of `retry_on`; raise WaitTimeout after `timeout`.

    Only "not yet" errors are retried: any other exception is a real failure and propagates.
    `diagnostics` (e.g. the container's logs) is attached to the timeout for the report.
    """
    retrying = Retrying(
        retry=retry_if_exception_type(retry_on),
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=interval, max=max_interval),
        reraise=False,
    )
    try:
        return retrying(probe)
    except RetryError as err:
        last = err.last_attempt.exception()
        error = WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})")
        if diagnostics is not None:
            error.add_note(_safe(diagnostics))
        raise error from last


#: how often an app that is coming up is asked whether it is ready: steadily, since a loopback
#: request is cheap, where backing off towards 2 s left a bring-up waiting up to 1.6 s past the
#: moment the app was ready (`nox -s bench`, issue 18)
READY_POLL = 0.1


def wait_ready(probe: Callable[[], T], *, what: str, timeout: float,
               diagnostics: Callable[[], str] | None = None) -> T:
    """`wait_until` for a bring-up's readiness probe, polled every READY_POLL seconds."""
    return wait_until(probe, what=what, timeout=timeout, interval=READY_POLL, max_interval=READY_POLL,
                      diagnostics=diagnostics)


def http_ok(url: str, *, expect_status: int = 200, timeout: float = 3.0) -> Callable[[], requests.Response]:
    """A probe: GET `url` answers `expect_status`."""

    def probe() -> requests.Response:
        response = requests.get(url, timeout=timeout)
        if response.status_code != expect_status:
            raise NotYet(f"GET {url} answered {response.status_code}: {response.text[:200]}")
        return response

    return probe


def wait_for_http(url: str, *, what: str, timeout: float, expect_status: int = 200,
                  diagnostics: Callable[[], str] | None = None) -> requests.Response:
    return wait_until(http_ok(url, expect_status=expect_status), what=what, timeout=timeout,
                      diagnostics=diagnostics)


def _safe(diagnostics: Callable[[], str]) -> str:
    try:
        return diagnostics()
    except Exception as err:  # diagnostics must never hide the timeout itself
        return f"(could not collect diagnostics: {err})"


def http_answers(url: str, *, method: str = "GET", status: int = 200,
                 timeout: float = 3.0) -> Callable[[], requests.Response]:
    """A probe: `method url` answers `status`."""

    def probe() -> requests.Response:
        response = requests.request(method, url, timeout=timeout)
        if response.status_code != status:
            raise NotYet(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
        return response

    return probe


def app_ready(settings: Settings, base_url: str) -> tuple[str, Callable[[], requests.Response]]:
    """What says the app is up: its readiness (else liveness) path answering 200, else the
    configured load request answering its status. Returns (what, probe)."""
    path = settings.app.ready_probe_path
    if path:
        return f"GET {base_url}{path}", http_ok(f"{base_url}{path}")
    load = settings.checks.load
    url = f"{base_url}{load.path}"
    return f"{load.method} {url} -> {load.status}", http_answers(url, method=load.method, status=load.status)
