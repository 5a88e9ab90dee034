"""The app image is one release artifact: built from the team's Dockerfile unchanged, labelled
with its release, non-root, health-checked, and running on a read-only root filesystem in the
docker stage. Every image a cluster needs is here, and a substitute says what it stands in for."""

from __future__ import annotations

from harness.config import Settings
from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.images.build import ensure_images
from harness.images.docker import SUBSTITUTE_LABEL, image_labels
from harness.stage import Deployment
from harness.stages.docker import DockerStage


def _inspect(ref: str, template: str) -> str:
    return run(["docker", "inspect", "--format", template, ref]).stdout.strip()


def test_app_image_carries_release_user_and_healthcheck(stage: DockerStage, deployment: Deployment) -> None:
    image = _inspect(stage.app_container_id(), "{{.Config.Image}}")
    assert _inspect(image, '{{index .Config.Labels "org.opencontainers.image.revision"}}') == deployment.release
    assert _inspect(image, "{{.Config.User}}") not in {"", "0", "root"}
    assert "/healthz" in _inspect(image, "{{json .Config.Healthcheck.Test}}")

    def healthy() -> None:
        if _inspect(stage.app_container_id(), "{{.State.Health.Status}}") != "healthy":
            raise NotYet("the image's HEALTHCHECK has not passed yet")

    wait_until(healthy, what="the app container's HEALTHCHECK to report healthy", timeout=30)


def test_app_runs_on_a_read_only_root_filesystem(stage: DockerStage) -> None:
    container = stage.app_container_id()
    assert _inspect(container, "{{.HostConfig.ReadonlyRootfs}}") == "true"
    probe = run(["docker", "exec", container, "touch", "/srv/app/written"], check=False)
    assert probe.returncode != 0 and "Read-only file system" in probe.stderr


def test_every_image_a_cluster_needs_is_here_and_substitutes_say_what_they_stand_in_for(
        stageproof_settings: Settings) -> None:
    images = ensure_images(stageproof_settings)
    assert stageproof_settings.images is not None
    assert images.app.startswith(f"{stageproof_settings.images.app.tag}:")
    assert images.database == stageproof_settings.database.image
    found = {ref: image_labels(ref) for ref in images.refs()}
    assert [ref for ref, labels in found.items() if labels is None] == [], "refs() names images that are not here"
    labels = {ref: labels or {} for ref, labels in found.items()}
    for ref in images.substitutes:
        assert labels[ref].get(SUBSTITUTE_LABEL) in (ref, None), f"{ref} is labelled as a stand-in for another image"
    assert not labels[images.app].get(SUBSTITUTE_LABEL), "the app image claims to be a substitute"


def test_app_image_runs_its_venv_python_as_a_non_root_user(stageproof_settings: Settings) -> None:
    app = ensure_images(stageproof_settings).app
    probe = run(["docker", "run", "--rm", "--read-only", app, "python", "-c",
                 "import os, sys, gunicorn; print(sys.prefix, os.getuid())"])
    prefix, uid = probe.stdout.split()
    assert prefix == "/opt/venv" and uid != "0"
