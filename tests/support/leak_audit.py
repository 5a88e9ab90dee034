"""Nothing left behind, whatever happens: the real `stageproof test` command, cut short.

An audit runs `stageproof test --stage <stage> 2>&1 | tee <log>` in a shell of its own session,
as a user's terminal does, waits until the bring-up has really begun (a folder or a container of
the run exists, then a random delay of up to `within` seconds), and signals the whole process group,
as Ctrl-C (SIGINT), a CI cancel (SIGTERM) or a closed terminal (SIGHUP) does: tee dies with the
group, so the run's stdout is gone too. The `closed-stdout` trigger kills only tee. Then it waits
for the group to exit and counts what that run left: processes, containers, networks, volumes,
compose projects and temporary folders. A stage folder's cleanup file picks its stages:
`test_an_interrupted_run_leaves_nothing = interrupt_audit("compose", extra={"compose": ["SIGHUP"]})`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config import Settings, config_path, environment
from harness.core.ownership import RUN_LABEL
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.lifecycle import in_ci
from harness.stage import get_stage

AUDITED_ENV = "STAGEPROOF_LEAK_AUDIT"  # set inside an audited run: its own audits skip (no recursion)
RUN_ID = re.compile(r"bringing up \(run (\w+)")
START_TIMEOUT = 180.0  # until the run names its run id (pytest start-up and collection)
BEGIN_TIMEOUT = 120.0  # until its first folder or container exists
STOP_TIMEOUT = 120.0  # until its whole process group is gone (compose down of a half-up project)
CONTAINER_STAGES = frozenset({"docker", "compose"})
CLOSED_STDOUT = "closed-stdout"
#: pytest's closing line ("==== 21 passed, 21 skipped in 7.50s ===="): the run reached its end
FINISHED = re.compile(r"^=+ .* in [0-9.]+s(?: \([0-9:]+\))? =+$", re.MULTILINE)
DOCKER_LISTINGS = (("container", ["ps", "--all"], "{{.Names}}"), ("network", ["network", "ls"], "{{.Name}}"),
                   ("volume", ["volume", "ls"], "{{.Name}}"))


def stageproof_command() -> list[str]:
    """The `stageproof` script of this environment, as a user calls it."""
    script = Path(sys.executable).with_name("stageproof")
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness.cli"]


def _default_signals() -> None:
    """In the child: the signals at their default action, as in a terminal's session. A shell's
    background job inherits SIGINT ignored, and a CI job started under `nohup` SIGHUP: a cut with
    either would then stop nothing (a SIGHUP case once failed so, 'still running 120s')."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def spawn(command: str, *, cwd: Path, log: Path | None = None,
          env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`sh -c command` leading a new session and process group, its signals at their default action;
    `env` is added to this process's environment."""
    env = {**os.environ, **(env or {}), AUDITED_ENV: "1", "PYTHONUNBUFFERED": "1"}
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        return subprocess.Popen(["sh", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,  # noqa: S603
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_default_signals)


def run_id_of(proc: subprocess.Popen[bytes], log: Path, timeout: float = START_TIMEOUT) -> str:
    """The run id the run prints when its first stage starts coming up."""

    def printed() -> str:
        found = RUN_ID.search(log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if not group_members(proc.pid):
            raise AssertionError(f"the run ended before bringing a stage up:\n{log_tail(log)}")
        raise NotYet("no run id yet")

    return wait_until(printed, what="the run to start bringing its stage up", timeout=timeout)


def group_members(pgid: int) -> list[str]:
    """Live (not zombie) processes of process group `pgid`, as `pid name`."""
    members = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state, group, name = _stat(proc)
        except (OSError, ValueError, IndexError):
            continue
        if group == pgid and state != "Z":
            members.append(f"{proc.name} {name}")
    return members


def wait_group_gone(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> float:
    """Seconds until every process of the group led by `proc` has exited; AssertionError if not."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not group_members(proc.pid):
            proc.wait(timeout=10)  # reap the leader: a zombie owner still looks alive to `kill -0`
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"still running {timeout:.0f}s after the signal: {group_members(proc.pid)}")


# -- what a run leaves ------------------------------------------------------------------------
def folders(run_id: str) -> list[Path]:
    return sorted(Path(tempfile.gettempdir()).glob(f"stageproof-*{run_id}*"))


def owner_groups(run_id: str) -> list[int]:
    """The process groups the run's local stages recorded in their owner.json."""
    groups = []
    for owner in Path(tempfile.gettempdir()).glob(f"stageproof-*{run_id}*/owner.json"):
        try:
            groups += [int(group["pgid"]) for group in json.loads(owner.read_text()).get("groups", [])]
        except (OSError, ValueError):
            continue
    return groups


def processes(run_id: str, groups: Sequence[int] = ()) -> list[str]:
    """Processes that name the run (command line, environment, an open file in its folders),
    and live members of the recorded process groups."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state, group, name = _stat(proc)
            if state != "Z" and int(proc.name) != os.getpid() and (group in groups or _names(proc, run_id)):
                found.append(f"process {proc.name} ({name})")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def _stat(proc: Path) -> tuple[str, int, str]:
    """State, process group and name of the process at /proc/<pid>."""
    name, _, rest = (proc / "stat").read_text().rpartition(")")
    fields = rest.split()
    return fields[0], int(fields[2]), name.partition("(")[2]


def _names(proc: Path, run_id: str) -> bool:
    needle = run_id.encode()
    if needle in (proc / "cmdline").read_bytes() or needle in (proc / "environ").read_bytes():
        return True
    return any(run_id in str(fd.readlink()) for fd in (proc / "fd").iterdir())


def docker_objects(run_id: str) -> list[str]:
    """Containers, networks and volumes labelled with the run, and its compose project. Without a
    `docker` command nothing of Docker can exist; a `docker` that fails fails the audit (a listing
    that could not be read is not "0 leftovers")."""
    if shutil.which("docker") is None:
        return []
    label = ["--filter", f"label={RUN_LABEL}={run_id}"]
    found = [f"{kind} {name}" for kind, listing, field in DOCKER_LISTINGS
             for name in docker_query([*listing, *label, "--format", field]).split()]
    projects = json.loads(docker_query(["compose", "ls", "--all", "--format", "json"]) or "[]")
    return found + [f"compose project {p['Name']}" for p in projects if p.get("Name") == f"stageproof-{run_id}"]


def leftovers(run_id: str, groups: Sequence[int] = ()) -> list[str]:
    """Everything of run `run_id` that still exists."""
    return [*processes(run_id, groups), *docker_objects(run_id), *[f"folder {f}" for f in folders(run_id)]]


def purge(run_id: str, groups: Sequence[int] = ()) -> None:
    """Remove what a failed audit found, so one failure does not pollute the machine."""
    for item in processes(run_id, groups):
        with contextlib.suppress(OSError):
            os.kill(int(item.split()[1]), signal.SIGKILL)
    if shutil.which("docker"):
        _docker(["compose", "--project-name", f"stageproof-{run_id}", "down", "--volumes", "--timeout", "0"])
        for item in docker_objects(run_id):
            kind, _, name = item.partition(" ")
            if kind in {"container", "network", "volume"}:
                _docker([kind, "rm", *(["--force"] if kind != "network" else []), name])
    for folder in folders(run_id):
        shutil.rmtree(folder, ignore_errors=True)


def docker_query(args: list[str]) -> str:
    """stdout of a `docker` listing; CommandFailed (with docker's stderr) when it fails."""
    return run(["docker", *args], timeout=120).stdout


def _docker(args: list[str]) -> str:
    """A best-effort `docker` removal for `purge` (what is already gone fails, and that is fine)."""
    return run(["docker", *args], timeout=120, check=False).stdout


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


# -- the audit --------------------------------------------------------------------------------
class Watch:
    """What an audit watches beyond the run's labels and folders (a stage's own resources, such
    as a kind cluster): each hook is a no-op here, overridden per stage."""

    moment = ""  #: when in the bring-up the cut comes, for the summary ("" : as soon as it begun)
    begin_timeout = BEGIN_TIMEOUT  #: until the run reaches that moment
    env: Mapping[str, str] = {}

    def begun(self, log: Path) -> bool:
        """True once the bring-up has reached the moment to cut (None of ours: the default rule)."""
        return False

    def before_cut(self) -> None:
        """Note what the cut could leave that cannot be found afterwards (anonymous volumes)."""

    def left(self) -> list[str]:
        return []

    def purge(self) -> None:
        """Remove what `left` found, so one failed audit does not pollute the machine."""


@dataclass(frozen=True)
class AuditResult:
    """One cut-short run: what it was, when it was cut, how long it took to stop, what it left."""

    stage: str
    trigger: str
    run_id: str
    cut_after: float  # seconds after the bring-up had begun (or reached `moment`)
    stopped_in: float
    left: tuple[str, ...]
    moment: str = ""

    def summary(self) -> str:
        when = f"{self.moment} had begun" if self.moment else "the bring-up had begun"
        during = f" (during {self.moment})" if self.moment else ""
        return (f"{self.stage}{during} {self.trigger}: {len(self.left)} leftovers, stopped in {self.stopped_in:.1f} s "
                f"(run {self.run_id}, cut {self.cut_after:.1f} s after {when})")


def audit(stage: str, trigger: str, *, root: Path, config: Path, log: Path, within: float,
          watch: Watch | None = None) -> AuditResult:
    """Run `stageproof test --stage <stage>` through tee, cut it short with `trigger` a random
    part of `within` seconds after its bring-up began (or reached `watch`'s moment), and count
    what it left."""
    watch = watch or Watch()
    command = shlex.join([*stageproof_command(), "--config", str(config), "test", "--stage", stage])
    log.write_bytes(b"")  # a fresh log: the run id is read from it
    proc = spawn(f"{command} 2>&1 | tee {shlex.quote(str(log))}", cwd=root, env=watch.env)
    run_id, groups = "", []
    try:
        run_id = run_id_of(proc, log)
        wait_until(lambda: _begun(stage, run_id, proc, log, watch), what=f"run {run_id} to create something",
                   timeout=watch.begin_timeout, interval=0.05, max_interval=0.2)
        cut_after = random.uniform(0, within)
        time.sleep(cut_after)
        groups = owner_groups(run_id)
        watch.before_cut()
        _cut(proc, trigger)
        stopped_in = wait_group_gone(proc)
        cut_short(log, trigger)
        left = (*leftovers(run_id, groups), *watch.left())
        return AuditResult(stage, trigger, run_id, cut_after, stopped_in, tuple(left), watch.moment)
    finally:
        _kill_group(proc)
        if run_id and leftovers(run_id, groups):
            purge(run_id, groups)
        if watch.left():
            watch.purge()


def cut_short(log: Path, trigger: str) -> None:
    """AssertionError if the run went on to its end, undisturbed by `trigger`: then it had the
    signal ignored (a `nohup` CI job, a shell's background job) and its 0 leftovers prove nothing.
    A cut run's tee dies with its group, so its log has no closing line."""
    text = log.read_text(errors="replace")
    if FINISHED.search(text) and "KeyboardInterrupt" not in text:
        raise AssertionError(f"the cut ({trigger}) stopped nothing: the run finished on its own\n{log_tail(log)}")


def interrupt_audit(*stages: str, triggers: Sequence[str] = ("SIGINT", "SIGTERM"),
                    extra: Mapping[str, Sequence[str]] | None = None, within: float = 1.0) -> Callable[..., None]:
    """A test, parametrized over `stages` x `triggers` (plus `extra[stage]`), that audits each
    case: a signal name (sent to the run's process group), two joined by `+`, or `closed-stdout`."""
    cases = [(stage, trigger) for stage in stages for trigger in [*triggers, *(extra or {}).get(stage, ())]]

    @pytest.mark.parametrize(("audited_stage", "trigger"), cases, ids=[f"{s}-{t}" for s, t in cases])
    def test(audited_stage: str, trigger: str, stageproof_settings: Settings, pytestconfig: pytest.Config,
             tmp_path: Path, capsys: pytest.CaptureFixture[str],
             record_property: Callable[[str, object], None]) -> None:
        require_stage(audited_stage, stageproof_settings)
        log = tmp_path / f"{audited_stage}-{trigger}.log"
        result = audit(audited_stage, trigger, root=stageproof_settings.root, log=log, within=within,
                       config=config_path(pytestconfig.getoption("stageproof_config")))
        with capsys.disabled():
            print(f"\n[stageproof] leak audit: {result.summary()}", flush=True)
        record_property("leak_audit", result.summary())
        assert result.left == (), f"{result.summary()}: {list(result.left)}\n--- its output ---\n{log_tail(log)}"

    test.__doc__ = "Cut short at any moment of its bring-up, a real run removes everything it created."
    return test


def require_stage(stage: str, settings: Settings) -> None:
    """An audit of a stage this machine cannot run: a failure in CI, else a skip that says why."""
    if environment().audited:
        pytest.skip("inside an audited run: no audit of the audit")
    declared = settings.not_applicable(stage)
    missing = declared or get_stage(stage).availability(settings)
    if missing and not declared and in_ci():
        pytest.fail(f"stage {stage} cannot run here: {missing}", pytrace=False)
    if missing:
        pytest.skip(f"stage {stage} cannot run here: {missing}")


def _begun(stage: str, run_id: str, proc: subprocess.Popen[bytes], log: Path, watch: Watch) -> None:
    """The run has reached `watch`'s moment, or (no moment) created something: a labelled
    container (container stages), or a folder; or (a slow daemon hid the container from us) it
    says it is up already."""
    if not group_members(proc.pid):
        raise AssertionError(f"run {run_id} ended before its bring-up began:\n{log_tail(log)}")
    if watch.moment:
        if not watch.begun(log):
            raise NotYet(f"run {run_id} has not reached {watch.moment} yet")
        return
    label = ["--filter", f"label={RUN_LABEL}={run_id}"]
    created = docker_query(["ps", "--all", "--quiet", *label]).split() if stage in CONTAINER_STAGES else folders(run_id)
    if not created and f"{stage}: up in" not in log.read_text(errors="replace"):
        raise NotYet(f"nothing of run {run_id} yet")


def _cut(proc: subprocess.Popen[bytes], trigger: str) -> None:
    """Send `trigger` to the whole process group (`SIGINT+SIGTERM`: one, then the other half a
    second later, as a CI cancel after a Ctrl-C), or (`closed-stdout`) kill only its tee."""
    if trigger != CLOSED_STDOUT:
        for number, name in enumerate(trigger.split("+")):
            time.sleep(0.5 if number else 0)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, getattr(signal, name))
        return
    for member in group_members(proc.pid):
        pid, _, name = member.partition(" ")
        if name == "tee":
            os.kill(int(pid), signal.SIGKILL)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """An audit never leaves its run behind, even when it fails."""
    if group_members(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
