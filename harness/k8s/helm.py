"""The Helm CLI, bound to one cluster and namespace: the team's chart installed as Helm installs it.

Hooks, `helm test`, subcharts and release history then behave as they do for the team; the run's
overlay goes in through `--post-renderer` (harness/k8s/postrender.py), never into the chart.
Every call goes through `harness.core.run.run` (an argv, never a shell). The namespace is never
created here (no `--create-namespace`): the stage creates and labels it itself.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.core.run import run
from harness.errors import CommandFailed, ConfigError, StageFailed
from harness.k8s import helm_chart

#: seconds `run` waits beyond Helm's own --timeout before killing it
GRACE = 60.0
#: the phase of a test hook that `helm test` did not run this time
NOT_RUN = "NotRun"


class HelmFailed(StageFailed):
    """A helm command failed; the message carries Helm's own reason (a post-renderer's too)."""


@dataclass(frozen=True)
class Revision:
    """One entry of `helm history`."""

    number: int
    status: str
    chart: str
    app_version: str
    description: str


@dataclass(frozen=True)
class HelmTestPod:
    """One `helm test` hook: its phase (Succeeded, Failed, ...) and what its pod printed."""

    name: str
    phase: str
    logs: str


@dataclass(frozen=True)
class HelmTestResult:
    release: str
    #: Helm's exit status was 0, or every test it ran succeeded (with a `hook-succeeded` delete
    #: policy the pod is gone before `--logs` asks for it, and Helm exits non-zero for that alone)
    passed: bool
    pods: tuple[HelmTestPod, ...]
    #: what Helm printed on stderr when it exited non-zero
    error: str = ""

    @property
    def failed(self) -> tuple[HelmTestPod, ...]:
        return tuple(pod for pod in self.pods if pod.phase != "Succeeded")

    def describe(self) -> str:
        if self.passed:
            return f"helm test {self.release}: {len(self.pods)} test(s) passed"
        ran = [pod for pod in self.failed if pod.phase != NOT_RUN]
        headline = f"test pod(s) {', '.join(pod.name for pod in ran)} failed" if ran else "a test did not succeed"
        lines = [f"helm test {self.release} failed: {headline}"]
        for pod in ran:
            lines += [f"--- test pod {pod.name} ({pod.phase or 'no phase'}), its logs:", pod.logs.rstrip() or "(none)"]
        lines += [f"--- test {pod.name} did not run (Helm stops at the first failing test)"
                  for pod in self.failed if pod.phase == NOT_RUN]
        return "\n".join([*lines, *([f"(helm said: {self.error})"] if self.error else [])])


def parse_history(text: str) -> list[Revision]:
    """`helm history -o json` -> revisions, oldest first."""
    entries: list[dict[str, Any]] = json.loads(text or "[]")
    return sorted((Revision(int(entry["revision"]), str(entry.get("status", "")), str(entry.get("chart", "")),
                            str(entry.get("app_version", "")), str(entry.get("description", "")))
                   for entry in entries), key=lambda revision: revision.number)


def parse_test_logs(text: str) -> dict[str, str]:
    """The `POD LOGS: <name>` sections `helm test --logs` prints after the status: name -> logs."""
    logs: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("POD LOGS: "):
            current = logs.setdefault(line.removeprefix("POD LOGS: ").strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in logs.items()}


def hook_phases(status_json: str, since: datetime | None = None) -> dict[str, str]:
    """Test hooks of `helm status -o json` -> name -> phase of their last run; `NOT_RUN` for one
    whose last run started before `since` (Helm keeps an earlier run's phase when it skipped it)."""
    phases = {}
    for hook in json.loads(status_json).get("hooks") or []:
        if not {"test", "test-success"} & set(hook.get("events") or []):
            continue
        last = hook.get("last_run") or {}
        started = datetime.fromisoformat(last["started_at"]) if last.get("started_at") else None
        ran = started is not None and (since is None or started >= since)
        phases[str(hook["name"])] = str(last.get("phase", "")) if ran else NOT_RUN
    return phases


@dataclass(frozen=True)
class Helm:
    """`helm` against one kubeconfig (and context), in one namespace. `home` keeps Helm's cache,
    config and data folders out of the user's own (HELM_CACHE_HOME etc.)."""

    binary: Path
    kubeconfig: Path
    namespace: str
    context: str | None = None
    home: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def argv(self, *args: str) -> list[str]:
        cmd = [str(self.binary), *args, "--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace]
        return [*cmd, "--kube-context", self.context] if self.context else cmd

    def environment(self) -> dict[str, str]:
        homes = {} if self.home is None else {f"HELM_{part}_HOME": str(self.home / part.lower())
                                               for part in ("CACHE", "CONFIG", "DATA")}
        return {**homes, **self.env}

    def _run(self, *args: str, timeout: float, what: str) -> str:
        try:
            return run(self.argv(*args), env=self.environment(), timeout=timeout).stdout
        except CommandFailed as err:
            raise HelmFailed(f"{what} failed: {(err.stderr or err.stdout).strip() or err}\n"
                             f"(command: {err.command})") from err

    # -- argv ------------------------------------------------------------------------------
    def template_args(self, chart: Path, release: str, values_files: Sequence[Path] = (),
                      set_values: Mapping[str, str] | None = None, *, post_renderer: Path | None = None,
                      api_versions: Sequence[str] = (), kube_version: str | None = None) -> list[str]:
        args = ["template", release, str(chart), "--include-crds", *_values(values_files, set_values)]
        args += [f"--api-versions={version}" for version in api_versions]
        args += [f"--kube-version={kube_version}"] if kube_version else []
        return args + (["--post-renderer", str(post_renderer)] if post_renderer else [])

    def upgrade_args(self, chart: Path, release: str, *, values_files: Sequence[Path] = (),
                     set_values: Mapping[str, str] | None = None, post_renderer: Path | None = None,
                     timeout: float = 300, wait: bool = True) -> list[str]:
        args = ["upgrade", release, str(chart), "--install", f"--timeout={_seconds(timeout)}",
                *_values(values_files, set_values)]
        args += ["--wait"] if wait else []
        return args + (["--post-renderer", str(post_renderer)] if post_renderer else [])

    # -- commands --------------------------------------------------------------------------
    def template(self, chart: Path, release: str, values_files: Sequence[Path] = (),
                 set_values: Mapping[str, str] | None = None, *, post_renderer: Path | None = None,
                 api_versions: Sequence[str] = (), kube_version: str | None = None) -> str:
        """`helm template` (hooks, tests and the chart's CRDs included): what an install would send.
        `api_versions`/`kube_version` stand in for the cluster's (`.Capabilities`)."""
        args = self.template_args(chart, release, values_files, set_values, post_renderer=post_renderer,
                                  api_versions=api_versions, kube_version=kube_version)
        return self._run(*args, timeout=120, what=f"helm template of {chart}")

    def upgrade_install(self, chart: Path, release: str, *, values_files: Sequence[Path] = (),
                        set_values: Mapping[str, str] | None = None, post_renderer: Path | None = None,
                        timeout: float = 300, wait: bool = True) -> Revision:
        """`helm upgrade --install`: a new revision (hooks run, `--wait` for its resources)."""
        args = self.upgrade_args(chart, release, values_files=values_files, set_values=set_values,
                                 post_renderer=post_renderer, timeout=timeout, wait=wait)
        self._run(*args, timeout=timeout + GRACE, what=f"helm upgrade --install of release {release!r}")
        return self.history(release)[-1]

    def rollback(self, release: str, revision: int | None = None, *, timeout: float = 300) -> Revision:
        """Back to `revision` (None: the previous one); Helm records it as a new revision."""
        args = ["rollback", release, *([str(revision)] if revision is not None else []), "--wait",
                f"--timeout={_seconds(timeout)}"]
        self._run(*args, timeout=timeout + GRACE, what=f"helm rollback of release {release!r}")
        return self.history(release)[-1]

    def history(self, release: str) -> list[Revision]:
        return parse_history(self._run("history", release, "-o", "json", timeout=60,
                                       what=f"helm history of release {release!r}"))

    def test(self, release: str, *, timeout: float = 300) -> HelmTestResult:
        """`helm test --logs`: this run's phase of every test hook (from `helm status`) and its
        pod's logs. A failing test is a result, not an exception: the caller reports it."""
        since = datetime.now(UTC) - timedelta(seconds=1)
        proc = run(self.argv("test", release, "--logs", f"--timeout={_seconds(timeout)}"),
                   env=self.environment(), timeout=timeout + GRACE, check=False)
        phases = hook_phases(self._run("status", release, "-o", "json", timeout=60,
                                       what=f"helm status of release {release!r}"), since)
        logs = parse_test_logs(proc.stdout)
        pods = tuple(HelmTestPod(name, phase, logs.get(name, "")) for name, phase in phases.items())
        passed = proc.returncode == 0 or (bool(pods) and all(pod.phase == "Succeeded" for pod in pods))
        error = "" if proc.returncode == 0 else (proc.stderr.strip() or f"exit {proc.returncode}")
        return HelmTestResult(release, passed, pods, error)

    def uninstall(self, release: str, *, timeout: float = 300) -> None:
        """`helm uninstall --wait`; a release that is not there is not an error."""
        self._run("uninstall", release, "--wait", "--ignore-not-found", f"--timeout={_seconds(timeout)}",
                  timeout=timeout + GRACE, what=f"helm uninstall of release {release!r}")

    def dependency_build(self, chart: Path, workdir: Path) -> Path:
        """The chart ready to install with no network: `chart` itself when `charts/` holds every
        subchart Chart.yaml declares; else a copy in `workdir` with the missing `file://`
        subcharts packaged into its `charts/`. A missing subchart from a repository is a
        ConfigError naming it (nothing is downloaded)."""
        missing = helm_chart.missing_dependencies(chart)
        remote = [dep for dep in missing if dep.local is None]
        if remote:
            names = ", ".join(f"{dep.name} {dep.version} from {dep.repository or '(no repository)'}"
                              for dep in remote)
            raise ConfigError(f"stages.k8s.chart: {chart}/Chart.yaml needs subchart(s) {names}, not vendored in "
                              f"{chart}/charts/: run `helm dependency build` where that repository is reachable "
                              "and commit charts/ (stageproof downloads nothing)")
        if not missing:
            return chart
        copy = workdir / chart.name
        shutil.copytree(chart, copy, symlinks=True)
        (copy / "charts").mkdir(exist_ok=True)
        for dep in missing:
            source = (chart / dep.local).resolve() if dep.local else chart
            if not (source / "Chart.yaml").is_file():
                raise ConfigError(f"stages.k8s.chart: subchart {dep.name} ({dep.repository}) is not a chart folder: "
                                  f"{source} has no Chart.yaml")
            self._run("package", str(source), "--destination", str(copy / "charts"), timeout=120,
                      what=f"helm package of subchart {dep.name}")
        return copy


def _values(values_files: Sequence[Path], set_values: Mapping[str, str] | None) -> list[str]:
    args = [arg for path in values_files for arg in ("--values", str(path))]
    return args + [arg for key, value in (set_values or {}).items() for arg in ("--set", f"{key}={value}")]


def _seconds(timeout: float) -> str:
    return f"{max(1, round(timeout))}s"

