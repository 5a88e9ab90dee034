"""The command-line front door: `stageproof up | test | down | status | stages | diff | images`, and the
proof ledger's `expected | diff-gate | report` (harness/report/commands.py).

Each command is a short function over the typed settings; `test` hands over to pytest so the
CLI and `pytest tests/<stage>` run exactly the same suite.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.config import Settings, config_path
from harness.contract.diff import Recording, compare
from harness.core import shield
from harness.core.shield import say
from harness.errors import StageproofError
from harness.lifecycle import StageRunner, in_ci
from harness.project import load_project
from harness.report.commands import add_commands
from harness.stage import get_stage, stage_names

log = logging.getLogger("stageproof")


def cmd_stages(settings: Settings, args: argparse.Namespace) -> int:
    for name in stage_names():
        print(name)
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """Which stages this machine can run, and why not."""
    for name in args.stage or stage_names():
        declared = settings.not_applicable(name)
        missing = None if declared else get_stage(name).availability(settings)
        state = f"not applicable: {declared}" if declared else "ready" if missing is None else f"unavailable: {missing}"
        if name == "k8s" and missing is None and not declared and (kept := kept_cluster(settings)):
            state += f"; {kept}"
        print(f"{name:<14} {state}")
    return 0


def kept_cluster(settings: Settings) -> str | None:
    """What `status` says of a kind cluster a run kept for reuse (so it stays visible)."""
    from harness.k8s.kind import KindCluster, exists

    spec = settings.stages.k8s
    if spec is None or spec.context:
        return None
    cluster = KindCluster(spec.cluster, image="")
    if not (cluster.kept and exists(spec.cluster)):
        return None
    return (f"kind cluster {spec.cluster} is kept: the next run reuses it (same node image and kind config), "
            "`stageproof down --stage k8s` removes it")


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Bring one stage up and keep it until Ctrl-C (or leave it, with --detach)."""
    runner = StageRunner(settings, keep=args.detach)
    _, deployment = runner.start(args.stage)
    print(f"{deployment.stage} is up at {deployment.base_url} (release {deployment.release})")
    if args.detach:
        runner.stop_all()  # --detach keeps it: marked kept, for `stageproof down` (and reuse)
        print(f"left running; remove it with: stageproof down --stage {args.stage}")
        return 0
    print("press Ctrl-C to tear it down")
    try:
        _block_forever()
    except KeyboardInterrupt:
        say("tearing down ...")
    finally:
        runner.stop_all()
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    """Remove what earlier runs left behind, killed or kept on purpose; never a live run's."""
    names = stage_names() if args.all else [args.stage]
    removed = [item for name in names for item in get_stage(name).reap(settings, kept=True)]
    print("\n".join(f"removed {item}" for item in removed) or "nothing to remove")
    return 0


def cmd_test(settings: Settings, args: argparse.Namespace) -> int:
    """Run stageproof's suite (the contract and every check that applies) against the stages, in a
    pytest process of its own. Nothing left to run (every stage declared not applicable) is a
    failure in CI: a run that proves nothing must not pass."""
    for name in args.stage:
        if settings.not_applicable(name):
            print(f"stageproof: {name} is not applicable to this app: {settings.not_applicable(name)}")
    args.stage = [name for name in args.stage if not settings.not_applicable(name)]
    if not args.stage and not args.base_url:
        if in_ci():
            say("stageproof: error: nothing to run (every stage given is declared not applicable) in CI",
                file=sys.stderr)
            return 5
        return 0
    pytest_args = ["--pyargs", "harness.checks.suite", "-p", "no:cacheprovider",
                   "--stageproof-config", str(args.config_path)]
    pytest_args += [arg for name in args.stage for arg in ("--stage", name)]
    pytest_args += ["--keep"] if args.keep else []
    pytest_args += ["--base-url", args.base_url] if args.base_url else []
    return _forwarding_signals([sys.executable, "-m", "pytest", *pytest_args, *args.pytest_args])


def _forwarding_signals(argv: list[str]) -> int:
    """Run pytest as a child; a Ctrl-C, SIGTERM or SIGHUP here reaches it as a Ctrl-C, and we
    wait for it to tear its stages down (never SIGKILL it, as `subprocess.run` would). A Ctrl-C
    in a terminal reaches both of us: pytest notes the second copy and goes on tearing down."""
    log.info("$ %s", shlex.join(argv))
    child: subprocess.Popen[bytes] | None = None
    try:
        with shield.deferred():  # a Ctrl-C right now must not leave a pytest we do not know of
            child = subprocess.Popen(argv)  # noqa: S603 - an argv list, never a shell
        return child.wait()
    except KeyboardInterrupt:  # later signals are only noted (shield.interrupt): we wait on
        if child is None:
            raise
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGINT)
        return child.wait()


def cmd_diff(settings: Settings | None, args: argparse.Namespace) -> int:
    """How recording B answers differently from recording A (saved by `--stageproof-report`)."""
    first, second = Recording.read(args.first), Recording.read(args.second)
    problems = compare(first, second)
    print("\n".join(problems) or f"{second.stage} answers like {first.stage} ({len(first.answers)} requests)")
    return 1 if problems else 0


def compare_recordings(first: Path, second: Path) -> list[str]:
    """How saved recording `second` answers differently from `first` (the diff gate's comparison)."""
    return compare(Recording.read(first), Recording.read(second))


def cmd_images(settings: Settings, args: argparse.Namespace) -> int:
    if args.what == "kind-node":
        from harness.images.kind_node import ensure_kind_node_image

        print(ensure_kind_node_image(force=args.force))
        return 0
    if args.what == "cluster":
        from harness.images.kind_node_preload import ensure_cluster_node_image
        from harness.images.tools import ensure_helm

        print(f"node image: {ensure_cluster_node_image()}")  # what a bring-up waits for first
        print(f"helm: {ensure_helm()}")
        return 0
    if args.what == "push":
        from harness.images.push import push_built

        for pushed in push_built(settings, node_image=args.with_kind_node):
            print(f"{'stand-in' if pushed.stand_in else 'app'}: {pushed.by_digest}  ({pushed.remote})")
        return 0
    from harness.images.build import ensure_images

    images = ensure_images(settings, force=args.force)
    print(f"app: {images.app}\ndatabase: {images.database}")
    for upstream, stand_in in images.substitutes.items():
        print(f"substitute: {upstream} <- {stand_in}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stageproof", description=__doc__.splitlines()[0])
    parser.add_argument("--config", dest="config_path", type=Path, default=None,
                        help="the app's config file (default: $STAGEPROOF_CONFIG or ./stageproof.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command the harness runs")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stages", help="list the stages").set_defaults(func=cmd_stages)
    status = sub.add_parser("status", help="which stages this machine can run")
    status.add_argument("--stage", action="append")
    status.set_defaults(func=cmd_status)
    up = sub.add_parser("up", help="bring one stage up and print its URL")
    up.add_argument("--stage", required=True)
    up.add_argument("--detach", action="store_true", help="leave it running and return")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="remove what earlier runs left behind")
    target = down.add_mutually_exclusive_group(required=True)
    target.add_argument("--stage")
    target.add_argument("--all", action="store_true")
    down.set_defaults(func=cmd_down)
    test = sub.add_parser("test", help="run the contract (and the stage's checks) against stages")
    test.add_argument("--stage", action="append", default=None)
    test.add_argument("--keep", action="store_true", help="leave the environment up afterwards")
    test.add_argument("--base-url", help="test an already running deployment instead")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="passed on to pytest (after --)")
    test.set_defaults(func=cmd_test)
    diff = sub.add_parser("diff", help="compare two saved recordings of the cross-stage diff")
    diff.add_argument("first", type=Path, help="the reference: <report>.recording.<stage>.json")
    diff.add_argument("second", type=Path, help="the recording held to it")
    diff.set_defaults(func=cmd_diff, needs_config=False)
    images = sub.add_parser("images", help="build the images the stages need (cached); push: to [images] registry")
    images.add_argument("what", choices=["build", "kind-node", "cluster", "push"],
                        help="cluster: the kind node image with the add-ons in it, and Helm (what k8s builds)")
    images.add_argument("--force", action="store_true", help="rebuild even when the cache is current")
    images.add_argument("--with-kind-node", action="store_true",
                        help="push: also our kind node image (a stand-in for kindest/node)")
    images.set_defaults(func=cmd_images)
    add_commands(sub, compare=compare_recordings)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    shield.interrupt(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    shield.arm(_interrupt)  # SIGTERM, SIGHUP unwind like Ctrl-C: every stage is torn down
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]
    if args.command == "test" and not args.stage:
        args.stage = ["local-sqlite"]
    try:
        args.config_path = config_path(args.config_path)
        settings = load_project(args.config_path).settings if getattr(args, "needs_config", True) else None
        return int(args.func(settings, args))
    except KeyboardInterrupt as err:
        say(f"stageproof: interrupted ({err or 'Ctrl-C'}): what this run started has been removed", file=sys.stderr)
        return 130
    except StageproofError as err:
        say("\n".join([f"stageproof: error: {err}", *getattr(err, "__notes__", [])]), file=sys.stderr)
        return 2
    finally:
        shield.mute_dead_output()  # `| tee` died with a Ctrl-C: exit quietly, not with a flush error


def _block_forever() -> None:
    import threading

    threading.Event().wait()


if __name__ == "__main__":
    raise SystemExit(main())
