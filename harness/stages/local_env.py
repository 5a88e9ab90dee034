"""The app's own environment at the local stages (its pinned libraries, never stageproof's), and its seed.

A team's app pins what it pins (an old Flask, an old requests) and must not share stageproof's
interpreter. `[app.local] environment` says how its environment is made:
- `venv`: a virtualenv from the app's requirements file (uv when it is here, else venv + pip),
- `npm`: `npm ci` of the app's package-lock.json, in a copy of the workdir (the team's tree is
  left as it was: no node_modules written into it),
- `go`: `go build` of the workdir's main package into the cache (modules from the Go module
  proxy; nothing is written into the team's tree): `{binary}` in a command is the program,
- `none`: this interpreter (the app's libraries are installed beside stageproof's).
Each environment is cached under `$STAGEPROOF_CACHE/local-env/`, keyed by its lockfile's hash, and
the progress lines say whether it was made or found.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.appenv import DatabaseEndpoint
from harness.config import LocalCommands, Settings, environment
from harness.core.cache import cache_dir, recipe_hash
from harness.core.run import run
from harness.core.shield import say
from harness.errors import StageUnavailable
from harness.services.engine import engine_for

COMPLETE = ".complete"
#: what a copy of the workdir leaves out (the environment brings its own)
NOT_COPIED = ("node_modules", ".git", "__pycache__", ".venv")


@dataclass(frozen=True)
class AppEnvironment:
    """Where and with what the app's commands run: `{python}`, the folder, variables on top."""

    python: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    binary: str = ""  # `go`: the program go build made

    def argv(self, template: list[str]) -> list[str]:
        """A command of the config with `{python}` (and `{binary}`) filled in."""
        return [part.replace("{python}", self.python).replace("{binary}", self.binary) for part in template]


def prepare(commands: LocalCommands, *, run_dir: Path, timeout: float) -> AppEnvironment:
    """The app's environment as `[app.local] environment` says (made, or found in the cache)."""
    if commands.environment == "venv":
        assert commands.requirements is not None
        venv = _venv(commands.requirements, timeout=timeout)
        return AppEnvironment(str(venv / "bin" / "python"), commands.workdir,
                              {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{environment().path}"})
    if commands.environment == "npm":
        return AppEnvironment(sys.executable, _npm_copy(commands.workdir, run_dir, timeout=timeout))
    if commands.environment == "go":
        program = _go_build(commands.workdir, timeout=timeout)
        return AppEnvironment(sys.executable, commands.workdir, binary=str(program))
    return AppEnvironment(sys.executable, commands.workdir)


def _venv(requirements: Path, *, timeout: float) -> Path:
    """A virtualenv holding exactly `requirements`, keyed by the file and this Python's version."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    key = recipe_hash("local-venv-v1", requirements, version)
    target = cache_dir("local-env") / f"venv-{key}"
    if (target / COMPLETE).exists():
        say(f"[stageproof] local: the app's venv for {requirements.name} (cached {target.name})")
        return target
    started = time.monotonic()
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    uv = shutil.which("uv")
    if uv is not None:
        run([uv, "venv", "--quiet", "--python", sys.executable, str(partial)], timeout=timeout)
        run([uv, "pip", "install", "--quiet", "--python", str(partial / "bin" / "python"), "--requirement",
             str(requirements)], timeout=timeout)
        how = "uv"
    else:
        made = run([sys.executable, "-m", "venv", str(partial)], check=False, timeout=timeout)
        if made.returncode != 0:
            raise StageUnavailable(f"app.local.environment = \"venv\": cannot make a venv here (no uv on PATH, and "
                                   f"{sys.executable} -m venv failed: {made.stderr.strip()[-200:]}): install uv, or "
                                   "python3-venv on Debian")
        run([str(partial / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--requirement", str(requirements)], timeout=timeout)
        how = "venv + pip"
    (partial / COMPLETE).write_text(str(requirements) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    say(f"[stageproof] local: made the app's venv from {requirements.name} with {how} in "
        f"{time.monotonic() - started:.1f}s ({target.name})")
    return target


def _npm_copy(workdir: Path, run_dir: Path, *, timeout: float) -> Path:
    """A copy of `workdir` (without node_modules) whose node_modules is the cached `npm ci` of its lock."""
    lock = workdir / "package-lock.json"
    key = recipe_hash("local-npm-v1", workdir / "package.json", lock)
    modules = cache_dir("local-env") / f"npm-{key}"
    if not (modules / COMPLETE).exists():
        npm = shutil.which("npm")
        if npm is None:
            raise StageUnavailable("app.local.environment = \"npm\": npm is not on PATH (Debian: apt-get install npm)")
        started = time.monotonic()
        partial = modules.with_name(modules.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(workdir / name, partial / name)
        run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=partial, timeout=timeout)
        (partial / COMPLETE).write_text(str(lock) + "\n")
        shutil.rmtree(modules, ignore_errors=True)
        partial.rename(modules)
        say(f"[stageproof] local: npm ci of {lock} in {time.monotonic() - started:.1f}s ({modules.name})")
    else:
        say(f"[stageproof] local: the app's node_modules for {lock.name} (cached {modules.name})")
    copy = run_dir / "app"
    shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    (copy / "node_modules").symlink_to(modules / "node_modules", target_is_directory=True)
    return copy


def _go_build(workdir: Path, *, timeout: float) -> Path:
    """The workdir's main package built by `go build` (CGO off, the module's versions as go.sum
    locks them), cached by go.mod, go.sum and every .go file: an unchanged tree is not rebuilt."""
    sources = sorted(path for path in workdir.rglob("*") if path.is_file() and (
        path.suffix == ".go" or path.name in ("go.mod", "go.sum")) and not set(path.relative_to(workdir).parts) &
        set(NOT_COPIED))
    inputs: list[str | Path] = ["local-go-v1"]
    for path in sources:
        inputs += [path.relative_to(workdir).as_posix(), path]
    target = cache_dir("local-env") / f"go-{recipe_hash(*inputs)}"
    program = target / "app"
    if (target / COMPLETE).exists():
        say(f"[stageproof] local: the app's go build of {workdir.name} (cached {target.name})")
        return program
    go = shutil.which("go")
    if go is None:
        raise StageUnavailable("app.local.environment = \"go\": go is not on PATH (Debian: apt-get install golang, "
                               "or the Go release in /usr/local/go/bin)")
    started = time.monotonic()
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    run([go, "build", "-trimpath", "-o", str(partial / "app"), "."], cwd=workdir, timeout=timeout,
        env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false"})
    (partial / COMPLETE).write_text(str(workdir) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    say(f"[stageproof] local: go build of {workdir.name} in {time.monotonic() - started:.1f}s ({target.name})")
    return program


def seed_database(settings: Settings, database: DatabaseEndpoint, app: AppEnvironment, *, env: dict[str, str],
                  timeout: float) -> None:
    """`[seed]`: its SQL files (through the database's engine), then its command in the app's environment."""
    for path in settings.seed.sql:
        script = path.read_text()
        if database.url.startswith("sqlite:///"):
            with sqlite3.connect(database.url.removeprefix("sqlite:///")) as conn:
                conn.executescript(script)
        else:
            engine_for(settings).run_sql(database.url, script, timeout=timeout)
    if settings.seed.command:
        run(app.argv(settings.seed.command), cwd=app.workdir, env={**app.env, **env}, timeout=timeout)
