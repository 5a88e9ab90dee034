"""A team's manifests that hard-code their cluster (tests/fixtures/two-tier/k8s: `MYSQL_HOST:
10.98.19.211`, the author's ClusterIP): `[stages.k8s] env = "app"` sets the web container's variables
from `[app.env]`, `${db.host}` being the database's Service; checked on the rendered manifests (no
cluster). And a bring-up that fails says why in its first line: the pod's state and its last log
line, then the namespace's dump, once."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest
import yaml

from harness.config import Settings, load_settings
from harness.errors import ConfigError, WaitTimeout
from harness.k8s import watch
from harness.k8s.deployed import Deployed
from harness.k8s.diagnostics import first_cause
from harness.k8s.manifests import Kubectl, Rendered, render_run, render_theirs
from harness.k8s.status import ResourceFailed
from harness.k8s.web_env import database_service, env_notes
from harness.lifecycle import describe_failure
from harness.stages.k8s import KubernetesStage
from tests.unit.test_k8s_manifests import kubectl, objects  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "two-tier"
APP_IMAGE = "firsthour/two-tier:r1"
THEIR_HOST = "10.98.19.211"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(FIXTURE / "stageproof.toml", env={})


def with_env(settings: Settings, env: str) -> Settings:
    assert settings.stages.k8s is not None
    stages = settings.stages.model_copy(update={"k8s": settings.stages.k8s.model_copy(update={"env": env})})
    return settings.model_copy(update={"stages": stages})


def web_container(kubectl: Kubectl, settings: Settings) -> dict[str, Any]:  # noqa: F811
    theirs = render_theirs(kubectl, settings)
    found = objects(render_run(kubectl, settings, theirs, app_image=APP_IMAGE, release="r1", run_id="unit0001"))
    container: dict[str, Any] = found[("Deployment", "two-tier-app")]["spec"]["template"]["spec"]["containers"][0]
    return container


def test_env_app_points_the_web_container_at_the_run_s_database_service(kubectl: Kubectl,  # noqa: F811
                                                                        settings: Settings) -> None:
    container = web_container(kubectl, settings)
    env = {entry["name"]: entry for entry in container["env"]}
    assert env["MYSQL_HOST"] == {"name": "MYSQL_HOST", "value": "mysql"}  # their Service, in the run's namespace
    assert {name: env[name]["value"] for name in ("MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DB")} == {
        "MYSQL_USER": "admin", "MYSQL_PASSWORD": "admin", "MYSQL_DB": "devops"}
    assert THEIR_HOST not in yaml.safe_dump(container)
    assert container["image"] == APP_IMAGE and container["imagePullPolicy"] == "IfNotPresent"


def test_by_default_their_environment_is_left_as_it_is(kubectl: Kubectl, settings: Settings) -> None:  # noqa: F811
    env = {entry["name"]: entry.get("value") for entry in web_container(kubectl, with_env(settings, "run"))["env"]}
    assert env["MYSQL_HOST"] == THEIR_HOST


def test_the_bring_up_notes_say_what_was_overridden(kubectl: Kubectl, settings: Settings) -> None:  # noqa: F811
    notes = env_notes(render_theirs(kubectl, settings), settings, "r1")
    assert notes == ["overrode MYSQL_HOST ('10.98.19.211' in their Deployment two-tier-app) with 'mysql' from "
                     "[app.env] (${db.host})"]  # the others are equal to theirs: nothing to say
    assert env_notes(render_theirs(kubectl, settings), with_env(settings, "run"), "r1") == []


def _rendered(*docs: dict[str, Any]) -> Rendered:
    return Rendered(FIXTURE / "k8s", "", tuple(docs))


DB = {"kind": "StatefulSet", "apiVersion": "apps/v1", "metadata": {"name": "mysql"},
      "spec": {"template": {"metadata": {"labels": {"app": "mysql", "tier": "db"}}}}}


def _service(name: str, selector: dict[str, str], *, headless: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": selector, "ports": [{"port": 3306}]}
    return {"kind": "Service", "apiVersion": "v1", "metadata": {"name": name},
            "spec": {**spec, **({"clusterIP": "None"} if headless else {})}}


def test_the_database_service_is_the_one_that_selects_its_pods(settings: Settings) -> None:
    assert settings.stages.k8s is not None
    spec = settings.stages.k8s
    theirs = _rendered(DB, _service("mysql-headless", {"app": "mysql"}, headless=True),
                       _service("web", {"app": "web"}), _service("mysql-lb", {"app": "mysql", "tier": "db"}))
    assert database_service(theirs, spec)["metadata"]["name"] == "mysql-lb"
    with pytest.raises(ConfigError, match=r'stages\.k8s\.env = "app": no Service selects the pods of StatefulSet '
                                          r"'mysql'.*\$\{db\.host\} needs one"):
        database_service(_rendered(DB, _service("web", {"app": "web"})), spec)


# -- the cause of a failed bring-up, in one line -------------------------------------------------
LOG = "Can't start: (2003, \"Can't connect to MySQL server on '10.98.19.211' (timed out)\")"
CAUSE = f"pod two-tier-app-5d9c-x2x CrashLoopBackOff: last log line: {LOG}"


def _pod() -> Any:
    waiting = NS(reason="CrashLoopBackOff", message="back-off 40s restarting failed container=two-tier-app")
    status = NS(name="two-tier-app", restart_count=4, ready=False, state=NS(waiting=waiting, terminated=None))
    return NS(metadata=NS(name="two-tier-app-5d9c-x2x", deletion_timestamp=None, uid="u1"),
              status=NS(phase="Running", conditions=[NS(type="Ready", status="False", message=None)],
                        init_container_statuses=None, container_statuses=[status]),
              spec=NS(node_name="node-1"))


class FakeApi:
    """The calls a bring-up's waits and diagnostics make, answering as a crash-looping web Deployment."""

    def __init__(self) -> None:
        deployment = NS(metadata=NS(name="two-tier-app", generation=2),
                        spec=NS(replicas=2, selector=NS(match_labels={"app": "two-tier-app"},
                                                        match_expressions=None)),
                        status=NS(observed_generation=2, conditions=[], updated_replicas=2, replicas=2,
                                  available_replicas=0))
        listing = NS(metadata=NS(resource_version="7"))
        self.apps = NS(list_namespaced_deployment=lambda **kw: NS(items=[deployment], metadata=listing.metadata),
                       read_namespaced_deployment=lambda name, namespace: deployment)
        self.core = NS(list_namespaced_pod=lambda *args, **kw: NS(items=[_pod()], metadata=listing.metadata),
                       read_namespaced_pod_log=self.log, list_namespaced_event=lambda namespace: NS(items=[]))
        self.previous: list[bool] = []

    def log(self, pod: str, namespace: str, **kwargs: Any) -> str:
        self.previous.append(kwargs.get("previous", False))
        return f" * Serving Flask app 'app'\n{LOG}\n\n"


@pytest.fixture
def deployed(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Deployed:
    monkeypatch.setattr(watch, "_events", lambda *args: iter(()))  # no stream: the view never changes
    return Deployed(settings, FakeApi(), lambda *args, **kwargs: "(describe)", _rendered(), "unit0001",  # type: ignore[arg-type]
                    "r1")


def test_first_cause_is_the_pod_state_and_its_last_log_line(deployed: Deployed) -> None:
    assert first_cause(deployed.api, "firsthour-two-tier") == CAUSE
    assert deployed.api.previous == [True]  # type: ignore[attr-defined] - the crashed instance's log


def test_a_rollout_timeout_leads_with_the_cause_line(deployed: Deployed) -> None:
    with pytest.raises(WaitTimeout) as caught:
        deployed.wait_rolled_out(timeout=0.05)
    lines = str(caught.value).splitlines()
    assert lines[0] == CAUSE
    assert lines[1].startswith("timed out after 0s waiting for deployment two-tier-app to roll out")
    assert describe_failure(caught.value).startswith(f"WaitTimeout: {CAUSE}")
    assert sum("--- pods (" in note for note in caught.value.__notes__) == 1


def test_a_crash_loop_while_settling_leads_with_the_cause_line(deployed: Deployed) -> None:
    with pytest.raises(ResourceFailed) as caught:
        deployed.wait_settled("two-tier-app", "app=two-tier-app", 2, timeout=5)
    assert str(caught.value).splitlines()[0] == CAUSE


def test_the_stage_adds_the_dump_once(deployed: Deployed, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(bringup: Any) -> None:
        bringup.deployed = deployed
        deployed.wait_rolled_out(timeout=0.05)

    monkeypatch.setattr("harness.stages.k8s.Bringup.run", failing)
    stage = KubernetesStage(settings, run_id="unit0001", release="r1")
    monkeypatch.setattr(stage._provider, "logs", lambda: "")
    with pytest.raises(WaitTimeout) as caught:
        stage.up()
    notes = "\n".join(caught.value.__notes__)
    assert notes.count("--- pods (") == 1 and notes.count("--- logs (") == 1
    assert str(caught.value).splitlines()[0] == CAUSE
