"""What stageproof checks in a team's Helm chart before installing it: subcharts and kinds.

Both checks turn what Helm would say late and obscurely ("found in Chart.yaml, but missing in
charts/ directory", "no matches for kind ...") into one error that names the dependency or the
template, before anything reaches the cluster. Nothing here runs Helm or needs a network.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.errors import ConfigError

SOURCE = re.compile(r"^# Source: (?P<path>\S.*?)\s*$", re.MULTILINE)
SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


@dataclass(frozen=True)
class Dependency:
    """One entry of Chart.yaml's `dependencies` (or a v1 chart's requirements.yaml)."""

    name: str
    version: str
    repository: str

    @property
    def local(self) -> Path | None:
        """The folder of a `file://` dependency (relative to the chart), None for a repository."""
        return Path(self.repository.removeprefix("file://")) if self.repository.startswith("file://") else None


def dependencies(chart: Path) -> tuple[Dependency, ...]:
    """The subcharts `chart` declares (Helm loads them from `charts/`)."""
    declared: list[Any] = []
    for name in ("Chart.yaml", "requirements.yaml"):
        path = chart / name
        if path.is_file():
            data = yaml.safe_load(path.read_text()) or {}
            declared += data.get("dependencies") or []
    return tuple(Dependency(str(dep["name"]), str(dep.get("version", "")), str(dep.get("repository", "")))
                 for dep in declared)


def vendored(chart: Path) -> set[str]:
    """Names of the charts in `chart/charts/`: folders and `.tgz` archives, by their Chart.yaml."""
    folder = chart / "charts"
    names: set[str] = set()
    if not folder.is_dir():
        return names
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and (entry / "Chart.yaml").is_file():
            names.add(str((yaml.safe_load((entry / "Chart.yaml").read_text()) or {}).get("name", entry.name)))
        elif entry.is_file() and entry.name.endswith(".tgz"):
            names.add(_archive_name(entry))
    return names


def missing_dependencies(chart: Path) -> tuple[Dependency, ...]:
    """The declared subcharts that `charts/` does not hold (Helm matches them by chart name)."""
    present = vendored(chart)
    return tuple(dep for dep in dependencies(chart) if dep.name not in present)


def _archive_name(archive: Path) -> str:
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "Chart.yaml":
                handle = tar.extractfile(member)
                if handle is not None:
                    return str((yaml.safe_load(handle.read()) or {}).get("name", parts[0]))
    raise ConfigError(f"stages.k8s.chart: {archive} is not a Helm chart archive (no <name>/Chart.yaml in it)")


# -- kinds the cluster does not serve --------------------------------------------------------
@dataclass(frozen=True)
class MissingKind:
    """An object of a rendered chart whose (apiVersion, kind) the cluster does not serve."""

    kind: str
    api_version: str
    name: str
    #: what Helm's `# Source:` comment says, e.g. `mychart/templates/vpa.yaml` ("" if none)
    source: str
    #: the apiVersions this cluster serves the same kind under in the same group (a removed version)
    served_as: tuple[str, ...] = ()

    @property
    def template(self) -> str:
        """The template relative to the chart (`templates/vpa.yaml`, `charts/sub/templates/x.yaml`)."""
        return self.source.partition("/")[2] or self.source or "(no # Source: comment)"

    def describe(self, key: str = "stages.k8s.chart", values_key: str = "stages.k8s.values") -> str:
        article = "an" if self.kind[:1].lower() in "aeiou" else "a"
        what = f"{self.template} renders {article} {self.kind} ({self.api_version})"
        if self.served_as:
            return (f"{key}: {what}, a version this cluster no longer serves (it serves {self.kind} as "
                    f"{', '.join(self.served_as)}): upgrade the chart, or disable it with a values file ({values_key})")
        return (f"{key}: {what}, which this cluster does not serve: install its CRD first, "
                f"or disable it with a values file ({values_key})")


def documents(rendered_yaml: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(source template, object) of each document of a Helm render, in order."""
    for chunk in SEPARATOR.split(rendered_yaml):
        match = SOURCE.search(chunk)
        for doc in yaml.safe_load_all(chunk):
            if isinstance(doc, dict):
                yield (match.group("path") if match else ""), doc


def missing_kinds(rendered_yaml: str, served: set[tuple[str, str]]) -> list[MissingKind]:
    """Objects of `rendered_yaml` whose (apiVersion, kind) is neither in `served` nor defined by a
    CustomResourceDefinition of the same render (a chart's `crds/`, installed before the rest)."""
    docs = list(documents(rendered_yaml))
    known = set(served) | set(_crd_kinds(doc for _, doc in docs))
    missing: list[MissingKind] = []
    for source, doc in docs:
        pair = (str(doc.get("apiVersion", "")), str(doc.get("kind", "")))
        if pair in known or not all(pair):
            continue
        group = pair[0].rpartition("/")[0]
        others = tuple(sorted(version for version, kind in known if kind == pair[1]
                              and version.rpartition("/")[0] == group))
        name = str((doc.get("metadata") or {}).get("name", ""))
        missing.append(MissingKind(pair[1], pair[0], name, source, others))
    return missing


def _crd_kinds(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for doc in docs:
        if (doc.get("apiVersion"), doc.get("kind")) != CRD:
            continue
        spec = doc.get("spec") or {}
        kind = str((spec.get("names") or {}).get("kind", ""))
        for version in spec.get("versions") or []:
            if version.get("served", True):
                yield f"{spec.get('group')}/{version.get('name')}", kind


def served_kinds(api_client: Any) -> set[tuple[str, str]]:
    """(apiVersion, kind) of every resource the cluster serves, every version of every group
    (`kubectl api-resources` lists only preferred versions). An aggregated API that does not
    answer (e.g. a metrics server still starting) is left out rather than failing the check."""
    group_versions = [str(v) for v in client.CoreApi(api_client).get_api_versions().versions]
    for group in client.ApisApi(api_client).get_api_versions().groups:
        group_versions += [str(version.group_version) for version in group.versions]
    served: set[tuple[str, str]] = set()
    for group_version in group_versions:
        path = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        try:
            listing = _get_json(api_client, path)
        except ApiException:
            continue
        served |= {(group_version, str(res["kind"])) for res in listing.get("resources") or []
                   if "/" not in str(res.get("name", ""))}
    return served


def _get_json(api_client: Any, path: str) -> Any:
    """GET `path` with the client's auth. kubernetes >= 31's generator serializes the request
    first; older clients take a resource path and a response type."""
    if hasattr(api_client, "param_serialize"):
        request = api_client.param_serialize("GET", path, header_params={"Accept": "application/json"},
                                             auth_settings=["BearerToken"])
        response = api_client.call_api(*request)
        response.read()
        if not 200 <= response.status < 300:
            raise ApiException(status=response.status, reason=response.reason)
        return json.loads(response.data)
    return api_client.call_api(path, "GET", response_type="object", auth_settings=["BearerToken"],
                               _return_http_data_only=True)
