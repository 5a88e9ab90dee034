"""The k8s stage leaves nothing behind and shares its cluster safely: a real `stageproof test
--stage k8s` cut short while kind creates the cluster, and later while the manifests are applied
and waited for, leaves 0 clusters, node containers, volumes, networks, files and processes; two
runs at once on one cluster name both pass, the second waiting for the first.

Each test uses a kind cluster of its own name (the config's, plus a suffix) with one node.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.config import K8sSettings, Settings, config_path
from harness.core.ownership import OwnerLock
from harness.core.wait import NotYet, wait_until
from tests.support.k8s_leaks import ClusterWatch
from tests.support.leak_audit import audit, log_tail, require_stage, spawn, stageproof_command, wait_group_gone

RUN_TIMEOUT = 900.0  # one contract-only k8s run: about 80 s on a warm 2-core machine
CUT_WITHIN = {"cluster create": 5.0, "apply and wait": 3.0}


def _spec(settings: Settings) -> K8sSettings:
    spec = settings.stages.k8s
    assert spec is not None, "stageproof.toml has no [stages.k8s]"
    return spec


#: each moment cut, each signal sent (a Ctrl-C, a CI runner's SIGTERM, a closed terminal), in 3 runs
#: rather than every pair in 5: each cut costs a cluster, and the CI budget is real
CUTS = [("cluster create", "SIGINT"), ("apply and wait", "SIGTERM"), ("cluster create", "SIGHUP")]


@pytest.mark.parametrize(("moment", "trigger"), CUTS, ids=[f"{moment}-{trigger}" for moment, trigger in CUTS])
def test_an_interrupted_k8s_run_leaves_nothing(moment: str, trigger: str, stageproof_settings: Settings,
                                               pytestconfig: pytest.Config, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               record_property: Callable[[str, object], None]) -> None:
    """Cut short during `kind create` (the half-made cluster) or during apply/wait, a real run
    removes its cluster, node containers, volumes, network, cache files, lock and temp folders."""
    require_stage("k8s", stageproof_settings)
    watch = ClusterWatch(f"{_spec(stageproof_settings).cluster}-leaks", tmp_path / "tmp", moment=moment)
    log = tmp_path / "run.log"
    result = audit("k8s", trigger, root=stageproof_settings.root, log=log, within=CUT_WITHIN[moment],
                   config=config_path(pytestconfig.getoption("stageproof_config")), watch=watch)
    with capsys.disabled():
        print(f"\n[stageproof] leak audit: {result.summary()}", flush=True)
    record_property("leak_audit", result.summary())
    assert result.left == (), f"{result.summary()}: {list(result.left)}\n--- its output ---\n{log_tail(log)}"


def test_a_killed_k8s_run_leaves_a_half_made_cluster_that_down_reaps(
        stageproof_settings: Settings, pytestconfig: pytest.Config, tmp_path: Path) -> None:
    """SIGKILL (no teardown can run) during `kind create`: the half-made cluster is marked ours,
    its owner is gone, so `stageproof down` removes it; nothing is left."""
    require_stage("k8s", stageproof_settings)
    watch = ClusterWatch(f"{_spec(stageproof_settings).cluster}-killed", tmp_path / "tmp", moment="cluster create")
    config, log = config_path(pytestconfig.getoption("stageproof_config")), tmp_path / "run.log"
    root = stageproof_settings.root
    proc = _start(config, root, log, dict(watch.env))
    try:
        wait_until(lambda: None if watch.begun(log) else _not_yet(proc, log), what="a node container", timeout=300)
        time.sleep(2)
        os.killpg(proc.pid, signal.SIGKILL)
        wait_group_gone(proc, timeout=60)
        left = watch.left()
        assert any(item.startswith("node container") for item in left), f"the kill left no node container: {left}"
        down = _down(config, root, dict(watch.env))
        assert f"kind cluster {watch.cluster} (half-made)" in down.stdout, down.stdout + down.stderr
        assert watch.left() == []
    finally:
        with contextlib.suppress(ProcessLookupError, AssertionError):
            os.killpg(proc.pid, signal.SIGKILL)
            wait_group_gone(proc, timeout=60)
        if watch.left():
            watch.purge()


def _not_yet(proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        raise AssertionError(f"the run ended before creating its cluster:\n{log_tail(log)}")
    raise NotYet("no node container yet")


def _down(config: Path, root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`stageproof down --stage k8s` (only the k8s stage: other stages' runs on the machine are not ours)."""
    return subprocess.run([*stageproof_command(), "--config", str(config), "down", "--stage", "k8s"],  # noqa: S603
                          cwd=root, env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False)


def _start(config: Path, root: Path, log: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    command = [*stageproof_command(), "--config", str(config), "test", "--stage", "k8s", *extra, "--", "-m", "contract"]
    return spawn(shlex.join(command), cwd=root, log=log, env=env)


def _held_by_another(lock: OwnerLock, proc: subprocess.Popen[bytes], log: Path) -> None:
    if proc.poll() is not None:
        raise AssertionError(f"the first run ended before it owned the cluster:\n{log_tail(log)}")
    if lock.try_acquire():
        lock.release()
        raise NotYet("nobody owns the cluster yet")


def _finish(proc: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return proc.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after {RUN_TIMEOUT:.0f}s:\n{log_tail(log)}") from None


def test_two_concurrent_k8s_runs_on_one_cluster_both_pass(stageproof_settings: Settings, pytestconfig: pytest.Config,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The second run says it waits for the first (who holds the cluster, since when), then
    reuses the cluster the first one kept (--keep); `stageproof down` removes it, leaving nothing."""
    require_stage("k8s", stageproof_settings)
    watch = ClusterWatch(f"{_spec(stageproof_settings).cluster}-twice", tmp_path / "tmp")
    config, root = config_path(pytestconfig.getoption("stageproof_config")), stageproof_settings.root
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    env = dict(watch.env)
    started = time.monotonic()
    first = _start(config, root, logs[0], env, "--keep")
    procs = [first]
    try:
        lock = OwnerLock(f"kind-{watch.cluster}", run_id="probe")
        wait_until(lambda: _held_by_another(lock, first, logs[0]), what="the first run to own the cluster",
                   timeout=300, interval=0.2, max_interval=0.5)
        procs.append(_start(config, root, logs[1], env))
        codes = [_finish(proc, log) for proc, log in zip(procs, logs, strict=True)]
        took = time.monotonic() - started
        texts = [log.read_text(errors="replace") for log in logs]
        for code, log in zip(codes, logs, strict=True):
            assert code == 0, f"{log.name} exited with {code}:\n{log_tail(log)}"
        assert "k8s: waiting for" in texts[1] and "held by pid" in texts[1], log_tail(logs[1])
        assert "reusing kind cluster" in texts[1], log_tail(logs[1])
        down = _down(config, root, env)
        assert down.returncode == 0 and f"kind cluster {watch.cluster} (kept)" in down.stdout, down.stdout + down.stderr
        assert watch.left() == []
        with capsys.disabled():
            print(f"\n[stageproof] two concurrent k8s runs: both passed in {took:.0f} s; the second waited:\n  "
                  + "\n  ".join(line for line in texts[1].splitlines() if "waiting for" in line or "got " in line))
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, AssertionError):
                os.killpg(proc.pid, signal.SIGKILL)
                wait_group_gone(proc, timeout=60)
        if watch.left():
            watch.purge()
