"""The app's pods as the k8s chaos and workflow checks see and move them: the `Workload`, `NewBuilds`,
`AppControl`, `AppCrash` and `DatabaseControl` controls of the k8s stage, over one `Deployed`.

Polite disruptions go through the API (a pod delete: preStop, SIGTERM, grace); crashes go through
the node's container runtime (SIGKILL of the container's process: the kubelet only sees it die).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.core.run import run
from harness.core.wait import NotYet, wait_until
from harness.errors import ConfigError
from harness.k8s import pods, rollout, status
from harness.k8s.deployed import Deployed
from harness.k8s.views import Answer, Replica
from harness.k8s.watch import watch_until


class K8sWorkload:
    """One deployed app; `deliver` gets a new build to the nodes (the provider's way)."""

    def __init__(self, deployed: Deployed, deliver: Callable[[list[str]], dict[str, str]]) -> None:
        self._d, self._deliver = deployed, deliver
        self._delivered: dict[str, str] = {}
        self._bringup_image = deployed.image

    # -- what is served ----------------------------------------------------------------------------
    @property
    def release(self) -> str:
        return self._d.release

    @property
    def releases(self) -> list[str]:
        return self._d.releases

    @property
    def image(self) -> str | None:
        return self._d.image

    def replicas(self, *, ready_only: bool = True) -> list[Replica]:
        return self._d.replicas(self._d.web_selector(), ready_only=ready_only)

    def database_replicas(self, *, ready_only: bool = True) -> list[Replica]:
        return self._d.replicas(self._d.db_selector(), ready_only=ready_only)

    def get(self, replica: str, path: str) -> Answer:
        """GET `path` on one pod through the API server (read-only checks: identical bodies per replica)."""
        return pods.pod_get(self._d.api, self._d.namespace, replica, self._d.settings.app.port, path)

    def template(self) -> dict[str, Any]:
        """The live web Deployment as data (what the manifests' dicts look like)."""
        data: dict[str, Any] = self._d.api.apps.api_client.sanitize_for_serialization(self._d.web())
        return data

    def identity(self) -> str:
        return " ".join(f"{r.name}:{r.uid[:8]}:restarts={r.restarts}" for r in self.replicas(ready_only=False))

    def diagnostics(self) -> str:
        return self._d.logs()

    def revision(self) -> str:
        if self._d.chart is not None and self._d.chart.revisions:
            latest = self._d.chart.revisions[-1]
            return f"helm revision {latest.number} ({latest.description or latest.status})"
        revision = (self._d.web().metadata.annotations or {}).get(rollout.REVISION, "?")
        return f"deployment revision {revision}"

    # -- moving it -----------------------------------------------------------------------------------
    def kill(self) -> str:
        """Delete one Ready web pod (graceful: preStop, then SIGTERM); its name."""
        victim = self.replicas()[0].name
        self._d.api.core.delete_namespaced_pod(victim, self._d.namespace)
        return victim

    def scale(self, replicas: int) -> None:
        rollout.scale(self._d.api, self._d.namespace, self._d.spec.deployment, replicas)
        self._d.wait_rolled_out()

    def restart(self) -> None:
        rollout.restart(self._d.api, self._d.namespace, self._d.spec.deployment)
        self._d.wait_rolled_out()

    def settled(self) -> None:
        self._d.wait_rolled_out()

    def roll_out(self, release: str) -> None:
        """A new release, declaratively: the same apply with another release id."""
        self._d.ship(release)

    def roll_back(self) -> None:
        """`helm rollback` for a chart (Helm records a new revision), else `rollout undo` (client
        equivalent): the previous revision's template comes back."""
        if self._d.chart is not None:
            self._d.chart.rollback(timeout=self._d.spec.check_timeout)
        else:
            rollout.undo(self._d.api, self._d.namespace, self._d.spec.deployment)
        self._d.wait_rolled_out()
        if len(self._d.releases) > 1:
            self._d.releases.pop()
        self._d.release = self._d.releases[-1]

    def set_resources(self, resources: dict[str, Any]) -> None:
        rollout.set_resources(self._d.api, self._d.namespace, self._d.spec.deployment, resources)
        self._d.wait_rolled_out()

    def wait_stalled(self) -> Any:
        """The web Deployment's Progressing condition once it says ProgressDeadlineExceeded."""
        name, spec = self._d.spec.deployment, self._d.spec
        return watch_until(self._d.api.apps.list_namespaced_deployment, status.progress_deadline_exceeded(name),
                           what=f"deployment {name} to exceed its progress deadline", diagnostics=self._d.logs,
                           timeout=spec.progress_deadline_seconds + spec.check_timeout, namespace=self._d.namespace,
                           field_selector=f"metadata.name={name}")

    def wait_ready_off(self, node: str, count: int, *, timeout: float) -> None:
        watch_until(self._d.api.core.list_namespaced_pod,
                    status.ready_off(node, count, f"deployment {self._d.spec.deployment}"),
                    what=f"{count} Ready web pods off node {node}", timeout=timeout, diagnostics=self._d.logs,
                    namespace=self._d.namespace, label_selector=self._d.web_selector())

    # -- new builds ------------------------------------------------------------------------------------
    def deliver(self, image: str) -> str:
        """Get a new local build to the nodes (once); the reference they run it by."""
        if image == self._bringup_image or image in self._delivered.values():
            return image
        if image not in self._delivered:
            self._delivered[image] = self._deliver([image])[image]
        return self._delivered[image]

    def roll_out_image(self, image: str, release: str, *, broken_deadline: int | None = None) -> None:
        """Another build (a new tag) delivered, applied and rolled out; with `broken_deadline`, applied
        as a broken release and not waited for."""
        self._d.image = self.deliver(image)
        self._d.ship(release, broken_deadline=broken_deadline)

    # -- the database ----------------------------------------------------------------------------------
    def kill_database(self) -> str:
        """Delete one Ready database pod; its controller re-creates it on the same volume. Its uid."""
        victim = self.database_replicas()[0]
        self._d.api.core.delete_namespaced_pod(victim.name, self._d.namespace)
        return victim.uid

    def wait_database_back(self, old_uid: str) -> None:
        """The killed database pod replaced and every database pod Ready again."""
        name, count = self._d.spec.database, self._d.database().spec.replicas or 1
        watch_until(self._d.api.core.list_namespaced_pod, status.pods_replaced(old_uid, count, f"database {name}"),
                    what=f"the database pod of {name} to be re-created and Ready", timeout=self._d.spec.check_timeout,
                    diagnostics=self._d.logs, namespace=self._d.namespace, label_selector=self._d.db_selector())

    def rerun_seed(self) -> tuple[str, str]:
        """Run the seed Job's pod template once more as a new Job: (its name, its log)."""
        if not self._d.spec.seed_job:
            raise ConfigError("stages.k8s.seed_job is not set: there is no seed Job to run again")
        job = pods.copy_job(self._d.api, self._d.namespace, self._d.spec.seed_job, suffix=f"rerun-{self._d.run_id}")
        return job, pods.run_job(self._d.api, self._d.namespace, job, timeout=self._d.spec.check_timeout)

    def delete_job(self, name: str) -> None:
        pods.delete_job(self._d.api, self._d.namespace, name)

    # -- for checks of a team's own manifests (not part of the Workload protocol) -------------------
    def probe_pod(self, labels: dict[str, str], script: str) -> tuple[bool, str]:
        """Run `script` (python) once in a pod of the app image labelled `labels`: (succeeded, its log)."""
        assert self._d.image is not None, "no app image deployed"
        return pods.run_probe_pod(self._d.api, self._d.namespace, image=self._d.image, labels=labels, script=script,
                                  timeout=self._d.spec.check_timeout)

    def network_policy_types(self, name: str) -> list[str]:
        policy = self._d.api.networking.read_namespaced_network_policy(name, self._d.namespace)
        return list(policy.spec.policy_types or [])


class K8sApp:
    """AppControl of the k8s stage: a rollout restart; identity = every pod's uid and restarts."""

    def __init__(self, workload: K8sWorkload) -> None:
        self._workload = workload

    def restart(self) -> None:
        self._workload.restart()

    def identity(self) -> str:
        return self._workload.identity()


class K8sCrash:
    """AppCrash and DatabaseControl through the nodes' container runtime (kind: a node is a Docker
    container named like it): SIGKILL of a container's main process, as a crash; the kubelet
    restarts it. The database outage (stop/start) scales its workload to 0 and back."""

    def __init__(self, deployed: Deployed) -> None:
        self._d = deployed
        self._replicas: int | None = None  # the database's, while it is scaled to 0
        self._victim: tuple[str, int] | None = None  # the crashed pod and its restarts before

    def crash(self) -> str:
        """SIGKILL the app container of one Ready web pod; its name."""
        pod = self._d.pods(self._d.web_selector(), ready_only=True)[0]
        self._victim = (str(pod.metadata.name), status.restarts(pod))
        return self._kill_first(self._d.web_selector())

    def recover(self) -> None:
        """The crashed pod's container restarted by its kubelet (restarts went up) and Ready again."""
        assert self._victim is not None, "recover() before crash()"
        name, restarts = self._victim

        def restarted() -> None:
            found = {r.name: r for r in self._d.replicas(self._d.web_selector(), ready_only=False)}
            replica = found.get(name)
            if replica is None or replica.restarts <= restarts or not replica.ready:
                raise NotYet(f"pod {name}: restarts {replica.restarts if replica else '?'} (was {restarts}), "
                             f"ready {replica.ready if replica else False}")

        wait_until(restarted, what=f"the kubelet to restart the SIGKILLed container of pod {name} and the pod to "
                   "be Ready again", timeout=self._d.spec.check_timeout, interval=0.2, max_interval=0.5,
                   diagnostics=self._d.logs)
        self._d.wait_rolled_out()

    def stop(self) -> None:
        self._scale_database(0)

    def start(self) -> None:
        self._scale_database(self._database_replicas)

    def crash_database(self) -> None:
        self._kill_first(self._d.db_selector())

    def _kill_first(self, selector: str) -> str:
        pod = self._d.pods(selector, ready_only=True)[0]
        kill_container(pod.spec.node_name, pod.metadata.name, self._d.namespace, pod.spec.containers[0].name)
        return str(pod.metadata.name)

    @property
    def _database_replicas(self) -> int:
        return self._replicas or int(self._d.database().spec.replicas or 1)

    def _scale_database(self, replicas: int) -> None:
        database = self._d.database()
        if replicas == 0:
            self._replicas = database.spec.replicas or 1
        patch = {"spec": {"replicas": replicas}}
        scale = (self._d.api.apps.patch_namespaced_stateful_set_scale if database.kind == "StatefulSet"
                 else self._d.api.apps.patch_namespaced_deployment_scale)
        scale(self._d.spec.database, self._d.namespace, patch, _content_type=rollout.MERGE_PATCH)
        self._d.wait_settled(self._d.spec.database, self._d.db_selector(), replicas,
                             timeout=self._d.spec.check_timeout, kind=database.kind.lower())


class K8sDatabase:
    """DatabaseControl of the k8s stage."""

    def __init__(self, crash: K8sCrash) -> None:
        self._crash = crash

    def stop(self) -> None:
        self._crash.stop()

    def start(self) -> None:
        self._crash.start()

    def crash(self) -> None:
        self._crash.crash_database()


def kill_container(node: str, pod: str, namespace: str, container: str) -> None:
    """SIGKILL the main process of `container` in `pod` through the runtime of `node` (a Docker
    container here, as kind's nodes are)."""
    crictl = ["docker", "exec", node, "crictl"]
    pod_id = run([*crictl, "pods", "--name", pod, "--namespace", namespace, "-q"]).stdout.split()
    if not pod_id:
        raise ConfigError(f"pod {pod} is not on node {node}'s container runtime")
    found = run([*crictl, "ps", "--pod", pod_id[0], "--name", f"^{container}$", "-q", "--state", "running"])
    if not found.stdout.split():
        raise ConfigError(f"pod {pod} has no running container {container} on node {node}")
    pid = run([*crictl, "inspect", "--output", "go-template", "--template", "{{.info.pid}}",
               found.stdout.split()[0]]).stdout.strip()
    run(["docker", "exec", node, "kill", "-KILL", pid])


class K8sChartTests:
    """ChartTests of a chart with `helm test` hooks."""

    def __init__(self, deployed: Deployed) -> None:
        self._d = deployed

    def run_tests(self) -> tuple[bool, str]:
        assert self._d.chart is not None
        result = self._d.chart.test(timeout=self._d.spec.check_timeout)
        return result.passed, result.describe()
