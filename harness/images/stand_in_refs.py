"""Which stand-in serves an upstream image ref, and what each ref adds on top of it.

One stand-in image per kind serves every tag of its image (`node:20`, `node:20-alpine`, ...), so a
config need not list tags; what differs between tags (the -alpine flavour, distroless's `:nonroot`
user) is a few Dockerfile lines in the label-only image tagged as the ref (`ref_lines`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: the kinds of stand-in harness/images/stand_ins.py builds
KINDS = ("node", "golang", "alpine", "debian", "distroless")
#: what the node and golang stand-ins carry (their Dockerfiles check it at build time)
NODE_MAJOR = 20
GO_MINOR = 24
#: Debian suites a `debian:<tag>` may name (`stable`/`latest` as of 2025: trixie)
DEBIAN_SUITES = {"bullseye": "bullseye", "11": "bullseye", "bookworm": "bookworm", "12": "bookworm",
                 "trixie": "trixie", "13": "trixie", "stable": "trixie", "latest": "trixie"}
DISTROLESS_STATIC = ("gcr.io/distroless/static", "gcr.io/distroless/static-debian11",
                     "gcr.io/distroless/static-debian12", "gcr.io/distroless/static-debian13")
DISTROLESS_TAGS = ("latest", "nonroot")
#: where the node and golang stand-ins keep apk, BusyBox-style adduser/addgroup and applets
ALPINE_BIN = "/opt/stageproof/alpine/bin"
NONROOT = 65532
_DOCKER_HUB = re.compile(r"^(?:(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)/)?(?:library/)?")


@dataclass(frozen=True)
class ImageRef:
    """An upstream ref split into its repository (Docker Hub prefixes dropped) and tag."""

    name: str
    tag: str

    @property
    def alpine(self) -> bool:
        """An Alpine-based tag of a multi-flavour image (`node:20-alpine`, `golang:alpine3.20`)."""
        return self.tag.startswith("alpine") or "-alpine" in self.tag


def parse_ref(ref: str) -> ImageRef | None:
    """`node:20-alpine` -> ImageRef("node", "20-alpine"); None for a digest ref (no stand-in is
    that exact image, and Docker cannot tag one)."""
    if "@" in ref:
        return None
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    return ImageRef(_DOCKER_HUB.sub("", name.lower()), tag or "latest")


def kind_for(ref: str) -> str | None:
    """The stand-in kind for an upstream ref, or None when no stand-in serves it."""
    parsed = parse_ref(ref)
    if parsed is None:
        return None
    if parsed.name in ("node", "golang", "alpine"):
        return parsed.name
    if parsed.name == "debian":
        return "debian" if debian_suite(ref) else None
    if parsed.name in DISTROLESS_STATIC and parsed.tag in DISTROLESS_TAGS:
        return "distroless"
    return None


def debian_suite(ref: str) -> str | None:
    """The Debian suite a `debian:` ref names (`bookworm-slim`, `12`, `12.5-slim` -> bookworm)."""
    parsed = parse_ref(ref)
    if parsed is None or parsed.name != "debian":
        return None
    head = parsed.tag.removesuffix("-slim").split("-")[0]
    return DEBIAN_SUITES.get(head) or DEBIAN_SUITES.get(head.split(".")[0])


def ref_lines(ref: str) -> tuple[str, ...]:
    """Dockerfile lines the image tagged as `ref` adds on top of its kind's stand-in."""
    parsed = parse_ref(ref)
    kind = kind_for(ref)
    if parsed is None or kind is None:
        return ()
    lines: list[str] = []
    if kind in ("node", "golang") and parsed.alpine:
        lines.append(f"ENV PATH={ALPINE_BIN}:$PATH")
        if kind == "golang":
            lines.append("ENV CGO_ENABLED=0")  # the official alpine images have no C compiler
    if kind == "distroless" and parsed.tag == "nonroot":
        lines += [f"USER {NONROOT}", "WORKDIR /home/nonroot"]
    return tuple(lines)


def version_note(ref: str) -> str | None:
    """What differs between the version a ref asks for and what its stand-in has, for people."""
    parsed = parse_ref(ref)
    kind = kind_for(ref)
    if parsed is None or kind not in ("node", "golang"):
        return None
    numbers = [int(part) for part in re.findall(r"\d+", parsed.tag.split("-")[0])[:2]]
    if kind == "node" and numbers and numbers[0] != NODE_MAJOR:
        return f"{ref} asks for Node.js {numbers[0]}: its stand-in runs Node.js {NODE_MAJOR} (Debian trixie)"
    if kind == "golang" and len(numbers) == 2 and numbers[0] == 1 and numbers[1] != GO_MINOR:
        newer = numbers[1] > GO_MINOR
        how = ("fetches that toolchain from the Go module proxy when go.mod needs it (GOTOOLCHAIN=auto)" if newer
               else "builds with the newer Go (Go 1 compatibility), where the official image would use "
                    f"1.{numbers[1]}")
        return f"{ref} asks for Go 1.{numbers[1]}: its stand-in has Go 1.{GO_MINOR} (Debian trixie) and {how}"
    return None
