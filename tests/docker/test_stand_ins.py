"""Each stand-in on its own, with a Dockerfile of the kind teams write, built unchanged and run.

The upstream refs (`node:20-alpine`, `gcr.io/distroless/static:nonroot`, ...) must exist for the
team's FROM lines: they are tagged for the test and removed afterwards unless they were here
before (another session's stand-in stays; a real image there skips the test: it would be tested
instead of ours). Each stand-in's and each app image's size and build time are printed (`-s`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.core.run import run
from harness.core.wait import wait_until
from harness.errors import CommandFailed, ConfigError
from harness.images import stand_ins
from harness.images.docker import build_image, image_labels
from harness.images.stand_in_refusal import raise_if_refused, refusal_in
from harness.images.substitutes import Substitute, upstream_state

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stand-ins"
BUILDERS: dict[str, Callable[[], Substitute]] = {
    "node": stand_ins.build_node_substitute,
    "golang": stand_ins.build_golang_substitute,
    "alpine": stand_ins.build_alpine_substitute,
    "distroless": stand_ins.build_distroless_substitute,
    "debian": stand_ins.build_debian_substitute,
}


def _report(what: str, image: str, seconds: float) -> None:
    size = int(run(["docker", "image", "inspect", "--format", "{{.Size}}", image]).stdout)
    print(f"\n[standins] {what}: {image} {size / 1e6:.1f} MB, {seconds:.1f}s", flush=True)


@pytest.fixture(scope="module")
def built() -> dict[str, Substitute]:
    """Every stand-in, built when missing (cached by recipe hash: cold only on a first run)."""
    result: dict[str, Substitute] = {}
    for kind, builder in BUILDERS.items():
        started = time.monotonic()
        result[kind] = builder()
        _report(f"{kind} stand-in (built or found)", result[kind].image, time.monotonic() - started)
    return result


@contextmanager
def upstream(built: dict[str, Substitute], *refs: str) -> Iterator[None]:
    """Make `refs` exist as their stand-ins for the test; remove those that were absent before."""
    absent = []
    for ref in refs:
        state = upstream_state(image_labels(ref))
        if state == "real":
            pytest.skip(f"{ref} is a real image here: the test would check it, not the stand-in")
        kind = stand_ins.kind_for(ref)
        assert kind is not None, f"no stand-in kind for {ref}"
        if state == "absent":
            absent.append(ref)
        stand_ins.tag_stand_in(ref, built[kind].image)
    try:
        yield
    finally:
        if absent:
            run(["docker", "image", "rm", *absent], check=False)


@contextmanager
def app_image(case: str, dockerfile: str = "Dockerfile") -> Iterator[str]:
    """`docker build` of a fixture, unchanged, as a unique `standins-test/` tag, removed afterwards."""
    tag = f"standins-test/{case}:{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    context = FIXTURES / case
    try:
        # No layer cache: every run really resolves from the npm registry and the Go module proxy.
        build_image(tag, context=context, dockerfile=context / dockerfile, no_cache=True)
        _report(f"app image {case}/{dockerfile}", tag, time.monotonic() - started)
        yield tag
    finally:
        run(["docker", "image", "rm", "--force", tag], check=False)


@contextmanager
def serving(image: str, port: int) -> Iterator[str]:
    """Run `image` with `port` published on 127.0.0.1; yields its base URL; always removed."""
    name = f"standins-test-{uuid.uuid4().hex[:8]}"
    run(["docker", "run", "--detach", "--name", name, "--publish", f"127.0.0.1::{port}", image])
    try:
        host_port = run(["docker", "port", name, f"{port}/tcp"]).stdout.split()[0].rsplit(":", 1)[1]
        yield f"http://127.0.0.1:{host_port}/"
    finally:
        logs = run(["docker", "logs", name], check=False)
        print(f"[standins] {name} logs:\n{logs.stdout}{logs.stderr}")
        run(["docker", "rm", "--force", name], check=False)


def _get_json(url: str) -> dict[str, Any]:
    def probe() -> dict[str, Any]:
        response = requests.get(url, timeout=5)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    return wait_until(probe, what=f"GET {url} to answer", timeout=30)


def _inspect(image: str, template: str) -> str:
    return run(["docker", "image", "inspect", "--format", template, image]).stdout.strip()


def test_node_stand_in_has_what_the_official_image_has(built: dict[str, Substitute]) -> None:
    with upstream(built, "node:20"):
        probe = run(["docker", "run", "--rm", "node:20", "sh", "-c",
                     "readlink -f /usr/local/bin/node; npm --version; yarn --version; id node; echo ~node"])
    assert probe.stdout.split() == ["/usr/bin/node", "10.8.2", "1.22.22", "uid=1000(node)", "gid=1000(node)",
                                    "groups=1000(node)", "/home/node"]
    assert _inspect(built["node"].image, "{{json .Config.Cmd}}") == '["node"]'


def test_node_app_builds_from_node_20_alpine_and_serves(built: dict[str, Substitute]) -> None:
    with upstream(built, "node:20-alpine"), app_image("node-express") as image, serving(image, 3000) as url:
        body = _get_json(url)
        dev = run(["docker", "run", "--rm", image, "ls", "node_modules/nodemon"], check=False)
    assert body["ok"] is True and body["express"] == "4.21.2"
    assert body["user"] == "node" and body["uid"] == 1000
    assert body["node"].startswith("v20.")
    assert dev.returncode != 0, "npm ci --omit=dev installed a dev dependency"


def test_go_app_builds_to_distroless_static_nonroot(built: dict[str, Substitute]) -> None:
    refs = ("golang:1.22-alpine", "gcr.io/distroless/static:nonroot")
    with upstream(built, *refs), app_image("go-app", "Dockerfile.distroless") as image, serving(image, 8080) as url:
        body = _get_json(url)
        shell = run(["docker", "run", "--rm", "--entrypoint", "/bin/sh", image, "-c", "true"], check=False)
        user = _inspect(image, "{{.Config.User}}")
    assert body["ok"] is True and len(body["id"]) == 36
    assert body["uid"] == 65532 and body["go"].startswith("go1.24")
    assert user == "65532"
    assert shell.returncode != 0, "the distroless stand-in has a shell"


def test_go_app_builds_to_alpine_with_busybox_users(built: dict[str, Substitute]) -> None:
    refs = ("golang:1.22-alpine", "alpine:3.20")
    with upstream(built, *refs), app_image("go-app", "Dockerfile.alpine") as image, serving(image, 8080) as url:
        body = _get_json(url)
        user = run(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", "id; grep '^app:' /etc/passwd"])
    assert body["ok"] is True and body["uid"] == 100
    assert "uid=100(app) gid=101(app)" in user.stdout and ":/home/app:/sbin/nologin" in user.stdout


def test_go_needing_a_newer_toolchain_builds_and_runs_on_debian_slim(built: dict[str, Substitute]) -> None:
    with upstream(built, "golang:1.25-bookworm", "debian:bookworm-slim"), app_image("go-toolchain") as image:
        out = run(["docker", "run", "--rm", image]).stdout.split()
    assert out == ["go1.25.0", "true", "<nil>"]


@pytest.mark.parametrize(("dockerfile", "base"), [("Dockerfile", "node:20-alpine"),
                                                  ("Dockerfile.alpine", "alpine:3.20")])
def test_apk_add_fails_with_one_clear_error_naming_the_step(built: dict[str, Substitute], dockerfile: str,
                                                            base: str) -> None:
    with upstream(built, base), pytest.raises(CommandFailed) as failed, app_image("apk-add", dockerfile):
        pass
    refusal = refusal_in(failed.value.stdout)
    assert refusal is not None, f"no stand-in refusal in the build output:\n{failed.value}"
    assert (refusal.step, refusal.base) == ("RUN apk add --no-cache python3 make g++", base)
    with pytest.raises(ConfigError) as error:
        raise_if_refused(failed.value, dockerfile=FIXTURES / "apk-add" / dockerfile)
    print(f"[standins] the error a team sees:\n{error.value}")
    assert "RUN apk add --no-cache python3 make g++" in str(error.value) and base in str(error.value)
