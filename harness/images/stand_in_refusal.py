"""A stand-in's refusal in a failed build's output, turned into one error naming the Dockerfile step.

A stand-in cannot do everything its upstream image does: the Debian-based stand-ins for Alpine
images have no Alpine packages, so their `apk` prints one line
`stageproof: '<command>' cannot run in <where> (<why>): <what to do>` and exits non-zero. The
build's own error ("returned a non-zero code: 1") says nothing of that; `refusal_in` finds the
line and the step it came from in the legacy builder's output (`Step 5/9 : RUN apk add curl`) or
BuildKit's (`#7 [build 3/5] RUN apk add curl`, what compose builds print), and `raise_if_refused`
makes it a ConfigError. build.py's `ensure_images` would call it where it recognises pip misses:

    except CommandFailed as err:
        if airgap:
            raise_if_refused(err, dockerfile=images.app.dockerfile)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import CommandFailed, ConfigError

ANSI = re.compile(r"\x1b\[[0-9;]*m")
MARKER = re.compile(r"stageproof: '(?P<command>[^']*)' cannot run in (?P<where>.+?) \((?P<why>[^()]*)\):?\s*"
                    r"(?P<advice>.*)$")
LEGACY_STEP = re.compile(r"^Step \d+/\d+ : (?P<instruction>.+)$")
BUILDKIT_STEP = re.compile(r"^#(?P<id>\d+) \[(?P<stage>[^\]]*?)\s*\d+/\d+\] (?P<instruction>.+)$")
BUILDKIT_LINE = re.compile(r"^#(?P<id>\d+) [\d.]+ (?P<text>.*)$")
FROM = re.compile(r"^FROM\s+(?:--\S+\s+)*(?P<ref>\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    """A step a stand-in refused: which instruction, in which stage's base, and why."""

    step: str
    base: str | None
    command: str
    where: str
    why: str
    advice: str

    def message(self, dockerfile: Path | str, *, key: str = "images.app.dockerfile") -> str:
        """One error for people: the key, the Dockerfile and step, the stand-in, why, what to do."""
        where = f"stageproof's stand-in for {self.base}" if self.base else self.where
        advice = f": {self.advice}" if self.advice else ""
        return f"{key}: {dockerfile}: the step `{self.step}` cannot run in {where} ({self.why}){advice}"


def refusal_in(output: str) -> Refusal | None:
    """The first stand-in refusal in a build's output (legacy builder or BuildKit), or None."""
    step, base = "", None
    bases: dict[str, str] = {}  # BuildKit: stage -> its FROM ref
    steps: dict[str, tuple[str, str]] = {}  # BuildKit: vertex id -> (stage, instruction)
    for raw in ANSI.sub("", output).splitlines():
        line = raw.rstrip()
        if legacy := LEGACY_STEP.match(line):
            step = legacy["instruction"]
            if from_ := FROM.match(step):
                base = _plain(from_["ref"])
            continue
        if buildkit := BUILDKIT_STEP.match(line):
            steps[buildkit["id"]] = (buildkit["stage"], buildkit["instruction"])
            if from_ := FROM.match(buildkit["instruction"]):
                bases[buildkit["stage"]] = _plain(from_["ref"])
            continue
        text = line
        if vertex := BUILDKIT_LINE.match(line):
            text = vertex["text"]
            stage, step = steps.get(vertex["id"], ("", step))
            base = bases.get(stage, base)
        if marker := MARKER.search(text):
            return Refusal(step=step or "(unknown step)", base=base, command=marker["command"],
                           where=marker["where"], why=marker["why"], advice=marker["advice"].strip())
    return None


def raise_if_refused(err: CommandFailed, *, dockerfile: Path | str, key: str = "images.app.dockerfile") -> None:
    """Raise a ConfigError naming the step when a failed build was a stand-in's refusal."""
    refusal = refusal_in(f"{err.stdout}\n{err.stderr}")
    if refusal is not None:
        raise ConfigError(refusal.message(dockerfile, key=key)) from err


def _plain(ref: str) -> str:
    """`docker.io/library/alpine:3.20@sha256:...` -> `alpine:3.20`, as a Dockerfile names it."""
    ref = ref.split("@", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/"):
        ref = ref.removeprefix(prefix)
    return ref
