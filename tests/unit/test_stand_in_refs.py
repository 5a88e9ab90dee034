"""Which stand-in serves which upstream ref, and a stand-in's refusal found in a build's output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.core.run import run
from harness.errors import CommandFailed, ConfigError
from harness.images.stand_in_refs import debian_suite, kind_for, parse_ref, ref_lines, version_note
from harness.images.stand_in_refusal import MARKER, raise_if_refused, refusal_in
from harness.images.substitutes import RECIPES

APK = RECIPES / "alpine-compat" / "bin" / "apk"

LEGACY = """\
Sending build context to Docker daemon  3.072kB
Step 1/9 : FROM golang:1.22-alpine AS build
 ---> 1a2b3c4d5e6f
Step 2/9 : RUN apk add --no-cache git
 ---> Running in 0f9e8d7c6b5a
stageproof: 'apk add --no-cache git': already provided by the Debian-based stand-in
Step 6/9 : FROM alpine:3.20
 ---> 6f5e4d3c2b1a
Step 7/9 : RUN apk add --no-cache ca-certificates curl
 ---> Running in 9a8b7c6d5e4f
stageproof: 'apk add --no-cache ca-certificates curl' cannot run in the Debian-based stand-in for an Alpine \
image (no registry here, Alpine packages unavailable: not provided: curl): use only what the stand-in has
The command '/bin/sh -c apk add --no-cache ca-certificates curl' returned a non-zero code: 1
"""

BUILDKIT = """\
#5 [build 1/6] FROM docker.io/library/golang:1.22-alpine@sha256:0123
#5 DONE 0.0s
#6 [stage-1 1/3] FROM docker.io/library/alpine:3.20
#6 DONE 0.0s
#7 [build 2/6] RUN apk add --no-cache gcc g++
#8 [stage-1 2/3] RUN echo hello
#8 0.301 hello
#7 0.412 stageproof: 'apk add --no-cache gcc g++' cannot run in the Debian-based stand-in for an Alpine image \
(no registry here, Alpine packages unavailable: not provided: g++): docker load the real image
#7 ERROR: process "/bin/sh -c apk add --no-cache gcc g++" did not complete successfully: exit code: 1
"""

#: what `docker compose build` printed here (compose 2.26, BuildKit in dockerd 26), middle lines cut
COMPOSE = """\
#2 [app internal] load metadata for docker.io/library/node:20-alpine
#4 [app 1/3] FROM docker.io/library/node:20-alpine
#4 DONE 0.2s
#5 [app 2/3] RUN apk add --no-cache tzdata
#5 0.696 stageproof: 'apk add --no-cache tzdata': already provided by the Debian-based stand-in
#6 [app 3/3] RUN apk add --no-cache python3 make g++
#6 0.601 stageproof: 'apk add --no-cache python3 make g++' cannot run in the Debian-based stand-in for an Alpine \
image (no registry here, Alpine packages unavailable: not provided: python3 make g++): use only what the stand-in has
#6 ERROR: process "/bin/sh -c apk add --no-cache python3 make g++" did not complete successfully: exit code: 1
------
 > [app 3/3] RUN apk add --no-cache python3 make g++:
------
failed to solve: process "/bin/sh -c apk add --no-cache python3 make g++" did not complete successfully: exit code: 1
"""


@pytest.mark.parametrize(("ref", "kind"), [
    ("node:20-alpine", "node"), ("node:20", "node"), ("docker.io/library/node:20-bookworm-slim", "node"),
    ("golang:1.22-alpine", "golang"), ("golang:1.23-bookworm", "golang"), ("golang", "golang"),
    ("alpine:3.20", "alpine"), ("alpine", "alpine"),
    ("debian:bookworm-slim", "debian"), ("debian:12", "debian"), ("debian:trixie", "debian"),
    ("gcr.io/distroless/static:nonroot", "distroless"), ("gcr.io/distroless/static-debian12", "distroless"),
    ("gcr.io/distroless/static-debian12:nonroot", "distroless"),
    ("gcr.io/distroless/static:debug", None), ("gcr.io/distroless/base-debian12", None),
    ("debian:buster-slim", None), ("node@sha256:" + "0" * 64, None), ("localhost:5000/node:20", None),
    ("python:3.11-slim", None), ("mysql:8.4", None),
])
def test_kind_for_maps_every_tag_of_an_image_to_its_stand_in(ref: str, kind: str | None) -> None:
    assert kind_for(ref) == kind


def test_parse_ref_drops_docker_hub_prefixes_and_defaults_the_tag() -> None:
    assert parse_ref("docker.io/library/alpine") == parse_ref("alpine:latest")
    assert parse_ref("gcr.io/distroless/static:nonroot") is not None
    assert parse_ref("alpine@sha256:" + "0" * 64) is None


@pytest.mark.parametrize(("ref", "suite"), [
    ("debian:bookworm-slim", "bookworm"), ("debian:12.5-slim", "bookworm"), ("debian:13", "trixie"),
    ("debian:bullseye-20240612-slim", "bullseye"), ("debian:sid", None), ("node:20", None),
])
def test_debian_suite(ref: str, suite: str | None) -> None:
    assert debian_suite(ref) == suite


def test_ref_lines_add_the_alpine_flavour_and_the_nonroot_user_only_where_the_tag_asks() -> None:
    assert ref_lines("node:20") == ()
    assert ref_lines("node:20-alpine3.20")[0].startswith("ENV PATH=/opt/stageproof/alpine/bin:")
    assert "ENV CGO_ENABLED=0" in ref_lines("golang:1.22-alpine")
    assert "ENV CGO_ENABLED=0" not in ref_lines("golang:1.22-bookworm")
    assert ref_lines("gcr.io/distroless/static:nonroot") == ("USER 65532", "WORKDIR /home/nonroot")
    assert ref_lines("gcr.io/distroless/static-debian12") == ()
    assert ref_lines("alpine:3.20") == ()


def test_version_note_says_when_the_stand_in_differs_from_the_tag() -> None:
    assert version_note("node:20-alpine") is None and version_note("golang:1.24") is None
    assert "Node.js 20" in (version_note("node:22-slim") or "")
    assert "Go module proxy" in (version_note("golang:1.25-alpine") or "")
    assert "newer Go" in (version_note("golang:1.22") or "")
    assert version_note("alpine:3.20") is None


def test_refusal_in_the_legacy_builders_output_names_the_step_and_its_stage_base() -> None:
    refusal = refusal_in(LEGACY)
    assert refusal is not None
    assert refusal.step == "RUN apk add --no-cache ca-certificates curl"
    assert refusal.base == "alpine:3.20"
    assert refusal.command == "apk add --no-cache ca-certificates curl"
    assert refusal.why.endswith("not provided: curl")


def test_refusal_in_buildkit_output_follows_the_vertex_to_its_stage() -> None:
    refusal = refusal_in(BUILDKIT)
    assert refusal is not None
    assert (refusal.step, refusal.base) == ("RUN apk add --no-cache gcc g++", "golang:1.22-alpine")
    assert refusal.advice == "docker load the real image"


def test_refusal_in_what_compose_printed() -> None:
    refusal = refusal_in(COMPOSE)
    assert refusal is not None
    assert (refusal.step, refusal.base) == ("RUN apk add --no-cache python3 make g++", "node:20-alpine")


def test_an_ordinary_build_failure_is_no_refusal() -> None:
    output = "Step 2/3 : RUN false\n ---> Running in 0f9e\nThe command '/bin/sh -c false' returned a non-zero code: 1\n"
    assert refusal_in(output) is None
    raise_if_refused(CommandFailed(["docker", "build"], 1, output, "returned a non-zero code: 1"), dockerfile="D")


def test_raise_if_refused_is_one_config_error_naming_the_key_the_step_and_the_stand_in() -> None:
    with pytest.raises(ConfigError) as error:
        raise_if_refused(CommandFailed(["docker", "build"], 1, LEGACY, "returned a non-zero code: 1"),
                         dockerfile=Path("app/Dockerfile"))
    message = str(error.value)
    assert message.startswith("images.app.dockerfile: app/Dockerfile: the step `RUN apk add --no-cache ca-certificates "
                              "curl` cannot run in stageproof's stand-in for alpine:3.20 (no registry here, Alpine "
                              "packages unavailable: not provided: curl): use only what the stand-in has")


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
@pytest.mark.parametrize(("args", "code"), [
    (["add", "--no-cache", "ca-certificates", "tzdata"], 0), (["add", "--virtual", ".deps", "sh"], 0),
    (["update"], 0), (["del", ".deps"], 0), (["add", "--no-cache", "curl=8.5.0-r0", "no-such-tool-here"], 1),
    (["info"], 1), (["add"], 1),
])
def test_the_apk_shim_succeeds_only_for_what_is_there_and_prints_the_recognised_line(args: list[str],
                                                                                       code: int) -> None:
    proc = run(["sh", str(APK), *args], check=False)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, "the shim prints one line"
    assert bool(MARKER.search(lines[0])) == (code != 0)
    if code:
        assert f"'apk {' '.join(args)}'" in lines[0]
