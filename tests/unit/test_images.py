"""Image building decisions, without Docker: which mode, what may be substituted, what is built."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.config import AppImage, ImageSettings
from harness.errors import CommandFailed, ConfigError
from harness.images import build, docker, substitutes, wheels
from harness.images.build import BuiltImages, base_images, build_app_image, release_tag, use_airgap
from harness.images.docker import RECIPE_LABEL, SUBSTITUTE_LABEL
from harness.images.substitutes import Substitute, ensure_substitutes, upstream_state

ROOT = Path(__file__).resolve().parents[2]
SUBSTITUTES = {"python:3.11-slim": "python", "mysql:8.4": "mysql"}


def image_settings(airgap: str = "auto", substitute: dict[str, str] | None = None,
                   requirements: Path | None = ROOT / "app" / "requirements.txt") -> ImageSettings:
    app = AppImage.model_construct(tag="team/app", name=None, dockerfile=ROOT / "stages/docker/Dockerfile",
                                   context=ROOT, requirements=requirements)
    return ImageSettings.model_construct(airgap=airgap, app=app,
                                         substitute=SUBSTITUTES if substitute is None else substitute)


class FakeDocker:
    """Records every command; `docker image inspect` answers from `images` ({ref: labels})."""

    def __init__(self, images: dict[str, dict[str, str]] | None = None, pull_ok: bool = False) -> None:
        self.images = images or {}
        self.pull_ok = pull_ok
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[Any], **_: Any) -> subprocess.CompletedProcess[str]:
        argv = [str(part) for part in cmd]
        self.calls.append(argv)
        if argv[1:3] == ["image", "inspect"]:
            ref = argv[-1]
            found = ref in self.images
            out = ("sha256:" + ref) if "{{.Id}}" in argv else json.dumps(self.images.get(ref))
            return subprocess.CompletedProcess(argv, 0 if found else 1, out if found else "", "")
        if argv[1] == "pull" and not self.pull_ok:
            raise CommandFailed(argv, 1, "", "Error response from daemon: no such host")
        return subprocess.CompletedProcess(argv, 0, "", "")

    def pulls(self) -> list[str]:
        return [argv[-1] for argv in self.calls if argv[1] == "pull"]


@pytest.fixture
def fake_docker(monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    fake = FakeDocker()
    monkeypatch.setattr(build, "run", fake)
    monkeypatch.setattr(docker, "run", fake)
    return fake


@pytest.mark.parametrize(("release", "tag"), [
    ("0123abcd", "0123abcd"), ("a1b2c3-dirty", "a1b2c3-dirty"), ("feature/x+y", "feature-x-y"),
    ("..hidden", "hidden"), ("", "dev"), ("x" * 200, "x" * 128)])
def test_release_ids_become_valid_image_tags(release: str, tag: str) -> None:
    assert release_tag(release) == tag


@pytest.mark.parametrize(("airgap", "expected"), [("always", True), ("never", False)])
def test_forced_modes_never_touch_docker_or_a_registry(fake_docker: FakeDocker, airgap: str, expected: bool) -> None:
    assert use_airgap(image_settings(airgap), database="mysql:8.4") is expected
    assert fake_docker.calls == []


def test_auto_mode_pulls_the_substitute_refs_and_the_database_image(fake_docker: FakeDocker) -> None:
    fake_docker.pull_ok = True
    assert use_airgap(image_settings(), database="mysql:8.0") is False
    assert fake_docker.pulls() == ["python:3.11-slim", "mysql:8.4", "mysql:8.0"]


def test_auto_mode_is_air_gapped_when_a_pull_fails(fake_docker: FakeDocker) -> None:
    fake_docker.images = {"python:3.11-slim": {"maintainer": "upstream"}}
    assert use_airgap(image_settings(), database="mysql:8.4") is True
    assert fake_docker.pulls() == ["mysql:8.4"]  # the real python image here needs no pull


def test_auto_mode_stays_air_gapped_when_an_earlier_run_left_a_substitute(fake_docker: FakeDocker) -> None:
    fake_docker.images = {"python:3.11-slim": {SUBSTITUTE_LABEL: "python:3.11-slim"}}
    assert use_airgap(image_settings(), database="mysql:8.4") is True
    assert fake_docker.pulls() == []


def test_refs_name_every_image_a_cluster_needs_once() -> None:
    images = BuiltImages(app="team/app:r1", database="mysql:8.4",
                         substitutes={"python:3.11-slim": "a substitute", "mysql:8.4": "another"})
    assert images.refs() == ["team/app:r1", "mysql:8.4", "python:3.11-slim"]
    assert BuiltImages(app="a:1", database="mysql:8.4", substitutes={}).refs() == ["a:1", "mysql:8.4"]


@pytest.mark.parametrize(("labels", "state"), [
    (None, "absent"), ({}, "real"), ({"org.opencontainers.image.title": "mysql"}, "real"),
    ({SUBSTITUTE_LABEL: ""}, "real"),  # an app image built on a substitute clears the label
    ({SUBSTITUTE_LABEL: "mysql:8.4"}, "ours")])
def test_only_images_labelled_as_ours_may_be_replaced(labels: dict[str, str] | None, state: str) -> None:
    assert upstream_state(labels) == state


class FakeBuilds:
    """Stands in for the builders of substitutes.py: records what would be built and tagged."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, images: dict[str, dict[str, str]]) -> None:
        self.built: list[str] = []
        self.tagged: list[str] = []
        monkeypatch.setattr(docker, "image_labels", lambda ref: images.get(ref))
        monkeypatch.setattr(substitutes, "ensure_rootfs_image", self._base)
        monkeypatch.setattr(substitutes, "ensure_minimal_base", lambda: self._base("minimal-base"))
        monkeypatch.setattr(substitutes, "_python", lambda base, req, force: self._built("python"))
        monkeypatch.setattr(substitutes, "_mysql", lambda base, force: self._built("mysql"))
        monkeypatch.setattr(substitutes, "stand_in", lambda ref, image: self.tagged.append(ref))

    def _base(self, tag: str, **_: Any) -> str:
        self.built.append(tag)
        return tag

    def _built(self, kind: str) -> Substitute:
        self.built.append(kind)
        return Substitute(f"stageproof/substitute-{kind}:x", f"{kind} stand-in")


def test_a_real_upstream_image_is_used_and_never_overwritten(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBuilds(monkeypatch, {"mysql:8.4": {"org.opencontainers.image.version": "8.4.3"},
                                    "mysql:8.0": {SUBSTITUTE_LABEL: "mysql:8.0"}})
    result = ensure_substitutes({"mysql:8.4": "mysql", "mysql:8.0": "mysql", "python:3.11-slim": "python"},
                                requirements=ROOT / "app" / "requirements.txt")
    assert fake.tagged == ["mysql:8.0", "python:3.11-slim"]  # our old stand-in is refreshed, the real one kept
    assert fake.built == ["minimal-base", "mysql", substitutes.BASE, "python"]  # one per kind, each on its base
    assert "real image" in result["mysql:8.4"] and result["mysql:8.0"] == "mysql stand-in"


def test_nothing_is_built_when_every_upstream_image_is_real(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBuilds(monkeypatch, {"mysql:8.4": {}, "python:3.11-slim": {}})
    ensure_substitutes(SUBSTITUTES, requirements=None)
    assert fake.built == [] and fake.tagged == []


def test_a_python_substitute_needs_the_requirements_file_before_anything_is_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBuilds(monkeypatch, {})
    with pytest.raises(ConfigError, match=r"images\.app\.requirements"):
        ensure_substitutes(SUBSTITUTES, requirements=None)
    assert fake.built == []


def test_from_lines_name_upstream_images_not_stages_or_args(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("ARG BASE=debian\nFROM --platform=$BUILDPLATFORM python:3.11-slim AS Build\n"
                          "RUN echo\nfrom build AS test\nFROM ${BASE}\nFROM scratch\nFROM nginx:1.27\n"
                          "COPY --from=build /a /a\n")
    assert base_images(dockerfile) == ["python:3.11-slim", "nginx:1.27"]
    assert base_images(ROOT / "stages/docker/Dockerfile") == ["python:3.11-slim"]


def test_without_a_registry_a_base_image_no_stand_in_serves_is_a_config_error(fake_docker: FakeDocker,
                                                                              tmp_path: Path) -> None:
    settings = image_settings(substitute={"mysql:8.4": "mysql"})
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM nginx:1.27\n")
    settings = settings.model_copy(update={"app": settings.app.model_copy(update={"dockerfile": dockerfile})})
    with pytest.raises(ConfigError, match=r'images\.substitute: images\.app\.dockerfile needs nginx:1\.27'):
        build.stand_ins_needed(settings, "mysql:8.4", engine="mysql")
    fake_docker.images = {"nginx:1.27": {}}  # docker-loaded by hand: fine
    assert build.stand_ins_needed(settings, "mysql:8.4", engine="mysql") == {"mysql:8.4": "mysql"}


def test_without_a_registry_known_bases_stand_in_without_a_config_line(fake_docker: FakeDocker,
                                                                       tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM node:20-alpine AS build\nFROM gcr.io/distroless/static:nonroot\n")
    settings = image_settings(substitute={})
    settings = settings.model_copy(update={"app": settings.app.model_copy(update={"dockerfile": dockerfile})})
    assert build.stand_ins_needed(settings, "postgres:16-alpine", engine="postgres") == {
        "node:20-alpine": "node", "gcr.io/distroless/static:nonroot": "distroless", "postgres:16-alpine": "postgres"}


def test_the_app_is_the_teams_dockerfile_and_context_built_unchanged(fake_docker: FakeDocker) -> None:
    spec = image_settings().app
    assert build_app_image(spec, release="abc/1", clear=(SUBSTITUTE_LABEL, RECIPE_LABEL)) == "team/app:abc-1"
    argv = next(argv for argv in fake_docker.calls if argv[1] == "build")
    assert argv[:4] == ["docker", "build", "--file", str(spec.dockerfile)] and argv[-1] == str(spec.context)
    pairs = {(argv[i], argv[i + 1]) for i in range(len(argv) - 1)}
    assert {("--tag", "team/app:abc-1"), ("--build-arg", "RELEASE_ID=abc/1"), ("--label", f"{SUBSTITUTE_LABEL}="),
            ("--label", "org.opencontainers.image.revision=abc/1"), ("--label", "io.stageproof.release=abc/1"),
            } <= pairs
    assert "--pull" not in argv and "--no-cache" not in argv


def test_two_apps_wheels_converge_in_one_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path / "cache"))
    for app, names in {"a": ["flask-3.1.3-py3-none-any.whl", "six-1.0-py3-none-any.whl"],
                       "b": ["docopt-0.6.2-py2.py3-none-any.whl", "six-1.0-py3-none-any.whl"]}.items():
        (tmp_path / app).mkdir()
        for name in names:
            (tmp_path / app / name).write_text(name)
    pool = wheels.add_to_pool(tmp_path / "a")
    assert wheels.add_to_pool(tmp_path / "b") == pool
    wheels.add_to_pool(tmp_path / "a")
    assert [w.name for w in wheels.pool_wheels(pool)] == [
        "docopt-0.6.2-py2.py3-none-any.whl", "flask-3.1.3-py3-none-any.whl", "six-1.0-py3-none-any.whl"]


def test_an_sdist_only_requirement_is_built_into_a_wheel_on_the_host(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEPROOF_CACHE", str(tmp_path / "cache"))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("docopt==0.6.2\n")
    calls: list[list[str]] = []

    def fake_run(cmd: Sequence[Any], **_: Any) -> subprocess.CompletedProcess[str]:
        argv = [str(part) for part in cmd]
        calls.append(argv)
        if "download" in argv:
            raise CommandFailed(argv, 1, "", "ERROR: No matching distribution found for docopt==0.6.2")
        if "wheel" in argv:
            dest = Path(argv[argv.index("--wheel-dir") + 1])
            dest.mkdir(parents=True, exist_ok=True)
            (dest / "docopt-0.6.2-py2.py3-none-any.whl").write_text("built")
            return subprocess.CompletedProcess(argv, 0, "Created wheel for docopt: filename=docopt-0.6.2", "")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(wheels, "run", fake_run)
    monkeypatch.setattr(wheels, "_wheel_builder",
                        lambda scratch, timeout: (["/usr/bin/python3.11", "-m", "pip"], "the pip of python3.11"))
    house = wheels.ensure_wheelhouse(requirements)
    assert [w.name for w in house.glob("*.whl")] == ["docopt-0.6.2-py2.py3-none-any.whl"]
    assert calls[-1][:4] == ["/usr/bin/python3.11", "-m", "pip", "wheel"]
    calls.clear()
    assert wheels.ensure_wheelhouse(requirements) == house and calls == []  # cached by the file


def test_without_pip_anywhere_the_wheelhouse_says_what_to_install(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheels, "BUILDERS", (lambda scratch, timeout: None,))
    with pytest.raises(wheels.StageUnavailable, match="python3-venv"):
        wheels._wheel_builder(tmp_path, timeout=1)


def test_a_uv_venv_python_finds_the_interpreter_it_was_made_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """A uv-made venv has no pip, but the CPython it was made from may: it is a candidate too."""
    monkeypatch.setattr(wheels.sys, "executable", "/venv/bin/python")
    monkeypatch.setattr(wheels.sys, "_base_executable", "/opt/cpython/bin/python3.11", raising=False)
    monkeypatch.setattr(wheels.shutil, "which", lambda name, **_: None)
    assert wheels._pythons_311() == ["/venv/bin/python", "/opt/cpython/bin/python3.11"]


def test_a_cached_go_build_runs_once_keeps_no_partial_and_drops_older_keys(tmp_path: Path) -> None:
    from harness.images.gobuild import cached_build

    builds: list[Path] = []

    def build(into: Path) -> None:
        builds.append(into)
        (into / "tool").write_text("binary")

    (tmp_path / "tool-oldkey").mkdir()
    out = cached_build(tmp_path / "tool-newkey", "newkey", ["tool"], build)
    again = cached_build(tmp_path / "tool-newkey", "newkey", ["tool"], build)
    assert out == again and len(builds) == 1, "the second call must be a cache hit"
    assert (out / "tool").read_text() == "binary" and (out / ".complete").read_text() == "newkey"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tool-newkey"]


def test_a_go_build_that_misses_a_binary_is_not_cached(tmp_path: Path) -> None:
    from harness.images.gobuild import cached_build

    with pytest.raises(FileNotFoundError, match="did not produce \\['tool'\\]"):
        cached_build(tmp_path / "tool-k", "k", ["tool"], lambda into: None)
    assert not (tmp_path / "tool-k" / ".complete").exists()


def test_stand_ins_are_pushed_under_the_path_a_docker_io_mirror_is_asked_for() -> None:
    from harness.images.push import upstream_path

    assert upstream_path("mysql:8.4") == "library/mysql:8.4"
    assert upstream_path("docker.io/library/python:3.11-slim") == "library/python:3.11-slim"
    assert upstream_path("kindest/node:v1.34.4") == "kindest/node:v1.34.4"


class TestUnchangedBuildsAreNotSentAgain:
    """The app image's build inputs are hashed into a label; an equal hash skips `docker build`."""

    @pytest.fixture
    def spec(self, tmp_path: Path) -> AppImage:
        (tmp_path / "app.py").write_text("print('v1')\n")
        (tmp_path / "notes.md").write_text("not sent\n")
        (tmp_path / ".dockerignore").write_text("notes.md\n")
        (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY . /app\n")
        return AppImage.model_construct(tag="team/app", name=None, dockerfile=tmp_path / "Dockerfile",
                                        context=tmp_path, requirements=None)

    @staticmethod
    def builds(fake: FakeDocker, spec: AppImage) -> int:
        """Build twice (the fake image takes the labels of the first build); how many reached Docker."""
        for _ in range(2):
            build_app_image(spec, release="abc")
            argv = next((argv for argv in reversed(fake.calls) if argv[1] == "build"), None)
            if argv is not None and "team/app:abc" not in fake.images:
                labels = dict(argv[i + 1].split("=", 1) for i in range(len(argv) - 1) if argv[i] == "--label")
                fake.images["team/app:abc"] = labels
        return sum(argv[1] == "build" for argv in fake.calls)

    def test_a_second_build_of_the_same_inputs_is_skipped(self, fake_docker: FakeDocker, spec: AppImage) -> None:
        fake_docker.images = {"python:3.11-slim": {}}
        assert self.builds(fake_docker, spec) == 1
        assert fake_docker.images["team/app:abc"][build.BUILD_DIGEST_LABEL]

    @pytest.mark.parametrize("change", ["content", "mode", "new file", "dockerfile", "base image", "forced"])
    def test_any_input_that_docker_reads_rebuilds(self, fake_docker: FakeDocker, spec: AppImage,
                                                  change: str) -> None:
        fake_docker.images = {"python:3.11-slim": {}}
        assert self.builds(fake_docker, spec) == 1
        context = spec.context
        if change == "content":
            (context / "app.py").write_text("print('v2')\n")
        elif change == "mode":
            (context / "app.py").chmod(0o755)
        elif change == "new file":
            (context / "extra.py").write_text("")
        elif change == "dockerfile":
            spec.dockerfile.write_text("FROM python:3.11-slim\nCOPY . /srv\n")
        elif change == "base image":  # the fake's image id is "sha256:" + ref: a new ref, a new id
            spec.dockerfile.write_text("FROM python:3.12-slim\nCOPY . /app\n")
            fake_docker.images["python:3.12-slim"] = {}
        before = sum(argv[1] == "build" for argv in fake_docker.calls)
        build_app_image(spec, release="abc", force=change == "forced")
        assert sum(argv[1] == "build" for argv in fake_docker.calls) == before + 1

    def test_an_ignored_file_changes_nothing(self, fake_docker: FakeDocker, spec: AppImage) -> None:
        fake_docker.images = {"python:3.11-slim": {}}
        assert self.builds(fake_docker, spec) == 1
        (spec.context / "notes.md").write_text("edited, and still not sent\n")
        build_app_image(spec, release="abc")
        assert sum(argv[1] == "build" for argv in fake_docker.calls) == 1

    @pytest.mark.parametrize("dockerfile", ["ARG BASE=python:3.11-slim\nFROM ${BASE}\n", "FROM missing:1\n"])
    def test_a_base_only_docker_can_resolve_always_builds(self, fake_docker: FakeDocker, spec: AppImage,
                                                          dockerfile: str) -> None:
        spec.dockerfile.write_text(dockerfile)
        fake_docker.images = {"python:3.11-slim": {}}
        assert self.builds(fake_docker, spec) == 2
