"""nox sessions: one per stage, plus lint, unit and the image builds.

`nox` runs them all (the README's test command); `nox -s local` stays seconds; a CI matrix
runs `nox -s <stage>` per job. Extra arguments after `--` go to pytest (`nox -s k8s -- --keep`).
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "unit", "local", "docker", "compose", "k8s"]

PYTHON = "3.11"


def _install(session: nox.Session) -> None:
    session.install("-e", ".[app]")


def _pytest(session: nox.Session, *paths: str) -> None:
    """The one way sessions run pytest: a JSON summary per session, posargs last."""
    _install(session)
    session.run("pytest", *paths, f"--stageproof-report=reports/{session.name}.json", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """The harness and the app themselves: no processes, no containers."""
    _pytest(session, "tests/unit")


@nox.session(python=PYTHON)
def local(session: nox.Session) -> None:
    """local-sqlite and local-mysql: gunicorn processes on 127.0.0.1 (needs mariadb-server)."""
    _pytest(session, "tests/local")


@nox.session(python=PYTHON, tags=["slow", "containers"])
def docker(session: nox.Session) -> None:
    """The app image with a DB container and a seed container, linked by hand (the talk's step 2)."""
    _pytest(session, "tests/docker")


@nox.session(python=PYTHON, tags=["slow", "containers"])
def compose(session: nox.Session) -> None:
    """The same containers in one step with docker compose."""
    _pytest(session, "tests/compose")


@nox.session(python=PYTHON, tags=["slow", "cluster"])
def k8s(session: nox.Session) -> None:
    """A kind cluster: the node image checks, the contract, then pod kill, scaling and rollout."""
    _pytest(session, "tests/k8s")


@nox.session(python=PYTHON, tags=["images"])
def images(session: nox.Session) -> None:
    """Build (or find cached) the app and database images."""
    _install(session)
    session.run("stageproof", "images", "build", *session.posargs)


@nox.session(name="kind-node", python=PYTHON, tags=["images"])
def kind_node(session: nox.Session) -> None:
    """Build (or find cached) the air-gapped kind node image from Debian packages and Go sources."""
    _install(session)
    session.run("stageproof", "images", "kind-node", *session.posargs)
