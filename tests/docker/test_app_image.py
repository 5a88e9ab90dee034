"""The app image is one release artifact: labelled with its release, non-root, health-checked,
and running on a read-only root filesystem in the docker stage."""

from __future__ import annotations

from harness.run import run
from harness.stage import Deployment
from harness.stages.docker import DockerStage
from harness.wait import NotYet, wait_until


def _inspect(ref: str, template: str) -> str:
    return run(["docker", "inspect", "--format", template, ref]).stdout.strip()


def test_app_image_carries_release_user_and_healthcheck(stage: DockerStage, deployment: Deployment) -> None:
    image = _inspect(stage.app_container(), "{{.Config.Image}}")
    assert _inspect(image, '{{index .Config.Labels "org.opencontainers.image.revision"}}') == deployment.release
    assert _inspect(image, "{{.Config.User}}") not in {"", "0", "root"}
    assert "/healthz" in _inspect(image, "{{json .Config.Healthcheck.Test}}")

    def healthy() -> None:
        if _inspect(stage.app_container(), "{{.State.Health.Status}}") != "healthy":
            raise NotYet("the image's HEALTHCHECK has not passed yet")

    wait_until(healthy, what="the app container's HEALTHCHECK to report healthy", timeout=30)


def test_app_runs_on_a_read_only_root_filesystem(stage: DockerStage) -> None:
    container = stage.app_container()
    assert _inspect(container, "{{.HostConfig.ReadonlyRootfs}}") == "true"
    probe = run(["docker", "exec", container, "touch", "/srv/app/written"], check=False)
    assert probe.returncode != 0 and "Read-only file system" in probe.stderr
