"""`nox -s bench`: a benchmark, not a timed test. It measures and prints, and never asserts.

1. The load generator's highest sustained open-loop rate against the app on this machine (the
   local-sqlite stage), and its schedule slip: how late requests went out versus when they were due;
   then the same rates against a backend that accepts and never answers (every request hangs until
   its timeout): the rate the client still keeps, with nothing left unsent (what an outage needs).
2. The harness's own cost per container stage: `stageproof up --detach` + `down` against the same
   steps written by hand, on the same files and images.
3. The size of each image a run uses (the app, the database, the kind node image), against its goal.
4. The k8s bring-up from no cluster and on a kept one, against a bare `kind create cluster --wait`
   of the same node image and nodes (tools/bench_k8s.py).
Every figure is printed, written to reports/bench.json, and kept next to the load average it was
taken under (a busy machine makes every figure worse; re-run when it is quieter).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness.appenv import app_env, with_python
from harness.config import Settings, load_settings
from harness.core.net import LOOPBACK, free_port, port_is_free
from harness.core.process import ManagedProcess
from harness.core.release import current_release
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.images.build import ensure_images
from harness.lifecycle import StageRunner
from harness.load.generator import LoadGenerator, Sample, percentile, summarize
from harness.services.engine import endpoint, engine_for
from tools.bench_images import image_line, image_report
from tools.bench_k8s import bench_k8s, k8s_line

RATES = (100.0, 200.0, 400.0, 500.0, 600.0, 800.0, 1000.0, 1500.0)
STEP_SECONDS = 5.0
WARMUP_SECONDS = 1.0
TAIL_SECONDS = 0.5  # the schedule runs on past the window: its last requests are not cut off by max_seconds
REQUEST_TIMEOUT = 5.0
LATE = 0.010  # a request that went out more than this after it was due has slipped
MAX_SHARE = 0.01  # sustained: under 1% failed and under 1% slipped
GOAL_RATE, GOAL_RATIO, GOAL_UP_SECONDS = 500.0, 1.05, 3.5
PARTS = ("load", "compose", "docker", "images", "k8s")
STAGE_FIGURES = ("up_seconds", "down_seconds", "total", "up_outside_compose_up")
HAND = "bench-hand"  # the project / name prefix of the hand-written runs
POLL = 0.2  # how often the hand-written flows retry a readiness command
EXIT_LINE = re.compile(r"\$ (?P<cmd>.+)\n.*-> exit \S+ in (?P<seconds>[\d.]+)s")
COMPOSE_VERBS = ("up", "down", "ps", "logs", "version")
Step = tuple[str, Callable[[], object]]
#: the step both flows run alike (the compose up of the same file): the rest of `up` is each flow's own cost
SHARED_STEP = {"stageproof": "docker compose up", "by hand": "compose up --wait"}
SAID_SECONDS = {"images": re.compile(r"ready in ([\d.]+)s"), "stage up": re.compile(r": up in ([\d.]+)s")}


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# -- pure helpers (tests/unit/test_bench.py) ---------------------------------------------------
def lateness(sample: Sample) -> float | None:
    """Seconds between when a request was due and when it went out (None: it never went out)."""
    return None if sample.started_at is None else sample.started_at - sample.sent_at


def slip(samples: Sequence[Sample], late: float = LATE) -> tuple[float, float]:
    """(share of requests that went out more than `late` after they were due or never went out,
    p99 lateness in ms of those that went out)."""
    delays = [delay for delay in map(lateness, samples) if delay is not None]
    slipped = len(samples) - len(delays) + sum(delay > late for delay in delays)
    return (slipped / len(samples) if samples else 0.0), percentile([d * 1000 for d in delays], 99)


@dataclass(frozen=True)
class RateStep:
    """One rate held for `seconds`: what was sent, what answered, and how late it went out."""

    rate: float
    seconds: float
    sent: int
    failed: int
    reasons: dict[str, int]
    achieved: float  # successful responses per second of the window
    p50_ms: float
    p99_ms: float
    slipped: float  # share of requests late by more than LATE (or never sent)
    p99_late_ms: float
    peak_in_flight: int = 0
    max_in_flight: int = 0  # the client's cap in this step
    never_sent: int = 0
    hanging: bool = False  # against a backend that never answers: failures expected, slip and unsent not
    client_cpu_seconds: float = 0.0  # the generator's own CPU time (this process), of 2 cores here
    load_average: float = 0.0

    @property
    def sustained(self) -> bool:
        if self.hanging:
            return self.sent > 0 and self.never_sent == 0 and self.slipped < MAX_SHARE
        return self.sent > 0 and self.failed / self.sent < MAX_SHARE and self.slipped < MAX_SHARE


def rate_step(rate: float, seconds: float, samples: Sequence[Sample], **extra: Any) -> RateStep:
    """The window's figures: requests due in the first `seconds` only (the tail is not counted)."""
    window = [sample for sample in samples if sample.sent_at < seconds]
    result = summarize("", rate, seconds, window)
    slipped, p99_late_ms = slip(window)
    return RateStep(rate, seconds, result.sent, result.failed, result.reasons, result.succeeded / seconds,
                    result.p50_ms, result.p99_ms, slipped, p99_late_ms, never_sent=result.never_sent, **extra)


def highest_sustained(steps: Sequence[RateStep]) -> float | None:
    return max((step.rate for step in steps if step.sustained), default=None)


def compare(ours: Sequence[float], hand: Sequence[float]) -> dict[str, float | None]:
    """Medians of two sets of timings and their ratio (ours / hand)."""
    mine, theirs = statistics.median(ours), statistics.median(hand)
    return {"stageproof_median": round(mine, 2), "hand_median": round(theirs, 2),
            "ratio": round(mine / theirs, 3) if theirs else None}


def phases(stdout: str, stderr: str) -> dict[str, float]:
    """Where a `stageproof -v up` spent its time: the durations it says, and its slowest commands."""
    found = {name: float(match.group(1)) for name, pattern in SAID_SECONDS.items()
             if (match := pattern.search(stdout))}
    for match in EXIT_LINE.finditer(stderr):
        words = match.group("cmd").split()
        key = " ".join(words[:2])  # `docker build`, `docker image`, `git -C`: summed per kind
        if key == "docker compose":
            key += " " + next((word for word in words if word in COMPOSE_VERBS), "?")
        found[key] = round(found.get(key, 0.0) + float(match.group("seconds")), 2)
    return found


# -- 1. the load generator's sustained rate ----------------------------------------------------
def bench_load(settings: Settings, rates: Sequence[float], seconds: float, cap: int | None) -> list[RateStep]:
    """local-sqlite up in this process, then each rate in turn against the configured load request."""
    runner = StageRunner(settings)
    try:
        _, deployment = runner.start("local-sqlite")
        url = deployment.base_url + settings.checks.load.path
        load_step(settings, url, rates[0], WARMUP_SECONDS, cap)  # not counted: first connections, caches
        steps = []
        for rate in rates:
            steps.append(load_step(settings, url, rate, seconds, cap))
            print(_step_line(steps[-1]), flush=True)
        return steps
    finally:
        runner.stop_all()


def bench_hanging(settings: Settings, rates: Sequence[float], seconds: float, cap: int | None,
                  workdir: Path) -> list[RateStep]:
    """The same rates against `hang` (a process of its own: its CPU is not the client's), which
    accepts every connection, reads it, and never answers."""
    port = free_port()
    server = ManagedProcess("bench-hang", [sys.executable, "-m", "tools.bench", "hang", str(port)],
                            log_path=workdir / "hang.log").start()
    try:
        wait_until(_listening(port), timeout=30, what=f"the hanging backend on port {port}")
        steps = []
        for rate in rates:
            steps.append(load_step(settings, f"http://{LOOPBACK}:{port}/", rate, seconds, cap, hanging=True))
            print(_step_line(steps[-1]), flush=True)
        return steps
    finally:
        server.stop()


def _listening(port: int) -> Callable[[], None]:
    def probe() -> None:
        try:
            socket.create_connection((LOOPBACK, port), timeout=1).close()
        except OSError as err:
            raise NotYet(f"nothing listens on {LOOPBACK}:{port} yet: {err}") from err

    return probe


def hang(port: int) -> None:
    """`python -m tools.bench hang PORT`: accept, read, never answer; close when the client does."""
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(65536):
                pass
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, LOOPBACK, port, backlog=4096)
        await server.serve_forever()

    asyncio.run(serve())


def load_step(settings: Settings, url: str, rate: float, seconds: float, cap: int | None = None, *,
              hanging: bool = False) -> RateStep:
    before, cpu = load_average(), time.process_time()
    load = LoadGenerator(url, rate=rate, max_seconds=seconds + TAIL_SECONDS, timeout=REQUEST_TIMEOUT,
                         method=settings.checks.load.method, expect_status=settings.checks.load.status,
                         max_in_flight=cap).start()
    load.wait_scheduled(seconds * 10 + 60)  # a busy machine makes the client late, not the step shorter
    due, deadline = math.ceil(seconds * rate), load.elapsed() + REQUEST_TIMEOUT + 1
    while not hanging and load.elapsed() < deadline and sum(s.sent_at < seconds for s in load.samples()) < due:
        time.sleep(0.25)  # the last answers of the window (a hanging backend gives none: they are abandoned)
    result = load.stop(grace=0.0 if hanging else 1.0)
    return rate_step(rate, seconds, load.samples(), peak_in_flight=result.peak_in_flight,
                     max_in_flight=result.max_in_flight, hanging=hanging,
                     load_average=max(before, load_average()), client_cpu_seconds=round(time.process_time() - cpu, 2))


def _step_line(step: RateStep) -> str:
    reasons = ", ".join(f"{n}x {why}" for why, n in sorted(step.reasons.items())) or "-"
    return (f"  {step.rate:>6g}/s{' hanging' if step.hanging else ''}  sent {step.sent:>5}  failed {step.failed:>5} "
            f"({reasons})  never sent {step.never_sent}  achieved {step.achieved:7.1f}/s  p50 {step.p50_ms:6.1f} ms  "
            f"p99 {step.p99_ms:7.1f} ms  slipped {step.slipped:6.1%}  p99 late {step.p99_late_ms:7.1f} ms  "
            f"{'sustained' if step.sustained else 'NOT sustained'}  ({step.peak_in_flight} in flight at most of "
            f"{step.max_in_flight}, client "
            f"CPU {step.client_cpu_seconds:g}s, load avg {step.load_average:g})")


# -- 2. bring-up + teardown: stageproof versus by hand -------------------------------------------
@dataclass(frozen=True)
class Cycle:
    """One bring-up (until the app answers ready) and teardown, timed."""

    flow: str
    stage: str
    up_seconds: float
    down_seconds: float
    load_average: float
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return self.up_seconds + self.down_seconds


def stageproof_cycle(stage: str) -> Cycle:
    """`stageproof -v up --stage S --detach`, then `stageproof down --stage S`, as a user types them."""
    cli = shutil.which("stageproof", path=str(Path(sys.executable).parent)) or "stageproof"
    before, started = load_average(), time.monotonic()
    up = run([cli, "-v", "up", "--stage", stage, "--detach"], timeout=900)
    up_seconds = time.monotonic() - started
    run([cli, "down", "--stage", stage], timeout=300)
    down_seconds = time.monotonic() - started - up_seconds
    found = phases(up.stdout, up.stderr)
    found["outside stage.up (start, config, reap, exit)"] = round(up_seconds - found.get("stage up", 0.0), 2)
    return Cycle("stageproof", stage, up_seconds, down_seconds, max(before, load_average()), found)


def hand_compose(settings: Settings, app_image: str, workdir: Path) -> Cycle:
    """Their compose file, unchanged, with our images and a 127.0.0.1 port (8000 when free)."""
    compose = settings.stages.compose
    assert compose is not None
    port = settings.app.port if port_is_free(settings.app.port) else free_port()
    override = workdir / "hand-override.yaml"
    override.write_text(_hand_override(compose.service, app_image, port, settings.app.port, compose.file[0]))
    theirs = [part for file in compose.file for part in ("-f", str(file))]
    base = ["docker", "compose", "-p", HAND, *theirs, "-f", str(override)]
    up = [("compose up --wait", lambda: run([*base, "up", "--wait", "--pull", "never", "--no-build"], timeout=600)),
          ("curl until ready", lambda: _curl_until_ready(settings, port))]
    return _timed("by hand", "compose", up, [("compose down -v", lambda: run([*base, "down", "-v"], timeout=300))])


def _hand_override(service: str, app_image: str, port: int, container_port: int, file: Path) -> str:
    """Every service built from the app's Dockerfile runs `app_image`; the app publishes on 127.0.0.1."""
    import yaml

    services = yaml.safe_load(file.read_text())["services"]
    lines = ["services:"]
    for name, spec in services.items():
        if "build" in spec or name == service:
            lines += [f"  {name}:", f"    image: {app_image}"]
            if name == service:
                lines += [f'    ports: !override ["{LOOPBACK}:{port}:{container_port}"]']
    return "\n".join(lines) + "\n"


def hand_docker(settings: Settings, app_image: str, release: str) -> Cycle:
    """Network, database, `mysqladmin ping`, seed, app, curl: the docker stage's steps as a script."""
    net, db, web, port, conf = f"{HAND}-net", f"{HAND}-db", f"{HAND}-web", free_port(), settings.database
    env = app_env(settings, stage="docker", release=release, db=endpoint(engine_for(settings), conf, db),
                  port=settings.app.port, host="0.0.0.0")
    app_opts = ["--network", net, *_env_options(env),
                *(["--read-only", "--tmpfs", "/tmp"] if settings.stages.docker.read_only else [])]
    db_env = {"MYSQL_ROOT_PASSWORD": conf.root_password, "MYSQL_DATABASE": conf.name, "MYSQL_USER": conf.user,
              "MYSQL_PASSWORD": conf.password}
    initdb = [p for n, path in enumerate(settings.seed.sql, 1)
              for p in ("-v", f"{path}:/docker-entrypoint-initdb.d/{n:02d}-{path.name}:ro")]
    seed = [("seed run --rm", lambda: run(["docker", "run", "--rm", *app_opts, app_image,
                                           *with_python(settings.seed.command or [], "python")], timeout=120))]
    up: list[Step] = [
        ("network create", lambda: run(["docker", "network", "create", net])),
        ("db run", lambda: run(["docker", "run", "-d", "--name", db, "--network", net, *initdb,
                                *_env_options(db_env), conf.image])),
        ("mysqladmin ping until ok", lambda: _until_ok(
            ["docker", "exec", db, "mysqladmin", "ping", "--host=127.0.0.1", f"--user={conf.user}",
             f"--password={conf.password}", "--silent"], timeout=120, interval=0.5)),
        *(seed if settings.seed.command else []),
        ("app run", lambda: run(["docker", "run", "-d", "--name", web, "-p", f"{LOOPBACK}:{port}:{settings.app.port}",
                                 *app_opts, app_image])),
        ("curl until ready", lambda: _curl_until_ready(settings, port))]
    down: list[Step] = [("rm -fv", lambda: run(["docker", "rm", "-fv", web, db], check=False)),
                        ("network rm", lambda: run(["docker", "network", "rm", net], check=False))]
    return _timed("by hand", "docker", up, down)


def _curl_until_ready(settings: Settings, port: int) -> None:
    ready = f"http://{LOOPBACK}:{port}{settings.app.ready_probe_path or settings.checks.load.path}"
    _until_ok(["curl", "-fsS", "-o", "/dev/null", "--max-time", "3", ready], timeout=120)


def _env_options(env: dict[str, str]) -> list[str]:
    return [part for name, value in env.items() for part in ("-e", f"{name}={value}")]


def _clear_hand() -> None:
    """What an interrupted earlier bench left of its hand-written runs."""
    run(["docker", "compose", "-p", HAND, "down", "-v"], check=False, timeout=300)
    run(["docker", "rm", "-fv", f"{HAND}-web", f"{HAND}-db"], check=False)
    run(["docker", "network", "rm", f"{HAND}-net"], check=False)


def _until_ok(cmd: list[str], *, timeout: float, interval: float = POLL) -> None:
    """Rerun `cmd` until it exits 0, the way a hand-written `until ...; do sleep; done` does."""
    deadline = time.monotonic() + timeout
    while run(cmd, check=False, timeout=timeout).returncode != 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{' '.join(cmd)} did not succeed within {timeout:g}s")
        time.sleep(interval)


def _timed(flow: str, stage: str, up: Sequence[Step], down: Sequence[Step]) -> Cycle:
    """Run the steps of `up`, then (also when one fails) those of `down`, timing each one."""
    found: dict[str, float] = {}
    before, started = load_average(), time.monotonic()
    try:
        _run_steps(up, found)
        up_seconds = time.monotonic() - started
    finally:
        between = time.monotonic()
        _run_steps(down, found)
    return Cycle(flow, stage, up_seconds, time.monotonic() - between, max(before, load_average()), found)


def _run_steps(steps: Sequence[Step], found: dict[str, float]) -> None:
    for name, step in steps:
        began = time.monotonic()
        step()
        found[name] = round(time.monotonic() - began, 2)


def bench_stages(settings: Settings, stages: Sequence[str], repeat: int) -> dict[str, Any]:
    """Each stage `repeat` times per flow, the flows alternating (so load swings hit both)."""
    images = ensure_images(settings)  # warm: the timed runs find every image built
    _clear_hand()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="stageproof-bench-") as tmp:
        for stage in stages:
            hand = (partial(hand_compose, settings, images.app, Path(tmp)) if stage == "compose"
                    else partial(hand_docker, settings, images.app, current_release(settings.root)))
            flows: list[Callable[[], Cycle]] = [partial(stageproof_cycle, stage), hand]
            cycles = []
            for number in range(repeat):
                for flow in flows if number % 2 == 0 else flows[::-1]:
                    cycles.append(flow())
                    print(_cycle_line(cycles[-1]), flush=True)
            results[stage] = _stage_summary(cycles)
    return results


def _stage_summary(cycles: list[Cycle]) -> dict[str, Any]:
    ours = [c for c in cycles if c.flow == "stageproof"]
    hand = [c for c in cycles if c.flow != "stageproof"]
    summary: dict[str, Any] = {"cycles": [{**asdict(c), "total": round(c.total, 2)} for c in cycles]}
    for what in STAGE_FIGURES[:3]:
        summary[what] = compare([getattr(c, what) for c in ours], [getattr(c, what) for c in hand])
    if all(SHARED_STEP[c.flow] in c.phases for c in cycles):  # compose: the one command both flows run
        summary["up_outside_compose_up"] = compare(*([c.up_seconds - c.phases[SHARED_STEP[c.flow]] for c in flow]
                                                     for flow in (ours, hand)))
    summary["goals"] = {"total_ratio_at_most": GOAL_RATIO, "ratio_met": (summary["total"]["ratio"] or 99) <= GOAL_RATIO,
                        "up_under_seconds": GOAL_UP_SECONDS,
                        "up_met": summary["up_seconds"]["stageproof_median"] < GOAL_UP_SECONDS}
    return summary


def _stage_line(stage: str, summary: dict[str, Any]) -> str:
    medians = "; ".join(f"{what} {summary[what]['stageproof_median']}s vs {summary[what]['hand_median']}s "
                        f"(x{summary[what]['ratio']})" for what in STAGE_FIGURES if what in summary)
    ratio, up = ("met" if summary["goals"][key] else "NOT met" for key in ("ratio_met", "up_met"))
    return (f"{stage} medians, stageproof vs by hand: {medians}; goals: total ratio <= {GOAL_RATIO:g} {ratio}, "
            f"up < {GOAL_UP_SECONDS:g}s {up}")


def _cycle_line(cycle: Cycle) -> str:
    slow = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(cycle.phases.items(), key=lambda kv: -kv[1])[:5])
    return (f"  {cycle.stage:<8} {cycle.flow:<10} up {cycle.up_seconds:6.2f}s  down {cycle.down_seconds:5.2f}s  "
            f"total {cycle.total:6.2f}s  (load avg {cycle.load_average:g}){f'  [{slow}]' if slow else ''}")


# -- the front door ------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=PARTS, help="measure only this (repeatable)")
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--seconds", type=float, default=STEP_SECONDS, help="how long each rate is held")
    parser.add_argument("--max-in-flight", type=int, default=None,
                        help="the load client's in-flight cap (default: as the chaos checks derive it from the "
                             "rate and the timeout)")
    parser.add_argument("--repeat", type=int, default=3, help="bring-ups per stage and flow")
    parser.add_argument("--output", type=Path, default=Path("reports/bench.json"))
    args = parser.parse_args(argv)
    parts = args.only or list(PARTS)
    settings = load_settings()
    report: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    if "load" in parts:
        report["load"] = load_report(settings, args.rates, args.seconds, args.max_in_flight)
    stages = [part for part in parts if part in ("compose", "docker")]
    if stages:
        print(f"bring-up + teardown, {args.repeat}x per flow (stageproof up --detach + down vs by hand):")
        report["stages"] = bench_stages(settings, stages, args.repeat)
        for stage, summary in report["stages"].items():
            print(_stage_line(stage, summary))
    if "images" in parts:
        print("image sizes, as built here:")
        report["images"] = image_report(settings)
        for figure in report["images"]:
            print(image_line(figure))
    if "k8s" in parts:
        print("k8s bring-up (every image built, no cluster) vs a bare kind create of the same node image and nodes:")
        report["k8s"] = bench_k8s(settings)
        print(k8s_line(report["k8s"]))
    report["bytecode_cache"] = not sys.dont_write_bytecode  # without it every `stageproof` compiles its imports
    report["load_average_at_end"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.output}")
    return 0


def load_report(settings: Settings, rates: Sequence[float], seconds: float, cap: int | None) -> dict[str, Any]:
    shown = cap or "rate x timeout x 1.25, at least 2000"
    print(f"load generator, open loop, {seconds:g}s per rate, slipped = more than {LATE * 1000:g} ms late "
          f"or never sent, in-flight cap {shown}, timeout {REQUEST_TIMEOUT:g}s:")
    steps = bench_load(settings, rates, seconds, cap)
    print("the same rates against a backend that accepts and never answers (sustained = nothing never sent, "
          "< 1% slipped):")
    with tempfile.TemporaryDirectory(prefix="stageproof-bench-") as tmp:
        hanging = bench_hanging(settings, rates, seconds, cap, Path(tmp))
    best, best_hanging = highest_sustained(steps), highest_sustained(hanging)
    met = best is not None and best >= GOAL_RATE
    print(f"highest sustained rate: {f'{best:g}/s' if best else 'none'} (goal >= {GOAL_RATE:g}/s with < 1% slipped: "
          f"{'met' if met else 'NOT met'}); with a hanging backend: "
          f"{f'{best_hanging:g}/s' if best_hanging else 'none'}")
    return {"steps": [{**asdict(step), "sustained": step.sustained} for step in steps],
            "hanging_steps": [{**asdict(step), "sustained": step.sustained} for step in hanging],
            "highest_sustained_rate": best, "highest_sustained_rate_hanging": best_hanging, "goal_rate": GOAL_RATE,
            "goal_met": met, "max_in_flight": shown, "timeout": REQUEST_TIMEOUT}


if __name__ == "__main__":
    if sys.argv[1:2] == ["hang"]:
        hang(int(sys.argv[2]))
    else:
        raise SystemExit(main())
