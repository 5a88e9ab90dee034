"""YAML that Go programs read back as we meant it: kubectl, kustomize, Helm, kind, Compose.

PyYAML resolves plain scalars by YAML 1.1, so it writes a string such as `2836e304` (a run id)
unquoted. Go's YAML 1.2 decoders (kustomize, Compose) read that as a float, and yaml.v2 (kubectl,
kind) reads a bare `y` or `n` as a boolean. Every file or patch a Go tool reads is written here, so
that such strings are quoted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

#: what YAML 1.2 (and Go's strconv with base 0, which yaml.v3 uses) reads as a number or a boolean
_GO_FLOAT = re.compile(r"^[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?$"
                       r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")
_GO_INT = re.compile(r"^[-+]?(?:0[bB][01_]+|0[oO]?[0-7_]+|0[xX][0-9a-fA-F_]+|[0-9][0-9_]*)$")
_GO_BOOL = re.compile(r"^(?:y|Y|n|N)$")


class GoSafeDumper(yaml.SafeDumper):
    """SafeDumper that quotes every string a Go YAML decoder would read as something else."""


class GoSafeLoader(yaml.SafeLoader):
    """SafeLoader that reads plain scalars as Go's decoders do (the tests' stand-in for them)."""


for _cls in (GoSafeDumper, GoSafeLoader):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _GO_FLOAT, list("-+.0123456789"))
    _cls.add_implicit_resolver("tag:yaml.org,2002:int", _GO_INT, list("-+0123456789"))
    _cls.add_implicit_resolver("tag:yaml.org,2002:bool", _GO_BOOL, list("yYnN"))


def dump(data: Any, **options: Any) -> str:
    """`yaml.safe_dump`, but read back by Go as written (`sort_keys` etc. pass through)."""
    return str(yaml.dump(data, Dumper=GoSafeDumper, **options))


def dump_all(documents: Iterable[Any], **options: Any) -> str:
    """`yaml.safe_dump_all`, but read back by Go as written."""
    return str(yaml.dump_all(documents, Dumper=GoSafeDumper, **options))
