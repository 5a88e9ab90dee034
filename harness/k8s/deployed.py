"""The app as deployed on a cluster: the team's manifests (or chart) under the run's overlay, one
release after another, and the waits that say a release is in: the database Ready, the seed Job
done, the web Deployment rolled out with every pod Ready and no old one left.

Everything here works on the live objects through the API (watches, never sleeps). The workload
view the checks use (harness/k8s/workload.py) and the bring-up (harness/k8s/bringup.py) share it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.config import K8sSettings, Settings
from harness.errors import StageproofError
from harness.k8s import diagnostics, manifests, patches, pods, status
from harness.k8s.api import Api
from harness.k8s.chart import ChartRelease
from harness.k8s.manifests import Kubectl, Rendered
from harness.k8s.views import Replica
from harness.k8s.watch import watch_until

log = logging.getLogger("stageproof.k8s")


@dataclass
class Deployed:
    """What one run deployed, and what it needs to deploy the next release the same way."""

    settings: Settings
    api: Api
    kubectl: Kubectl
    theirs: Rendered
    run_id: str
    release: str
    #: the app image the nodes run (None: the manifests' own)
    image: str | None = None
    ingress_class: str | None = None
    releases: list[str] = field(default_factory=list)
    #: the team's chart, when it ships one (then Helm installs each release)
    chart: ChartRelease | None = None

    @property
    def spec(self) -> K8sSettings:
        assert self.settings.stages.k8s is not None
        return self.settings.stages.k8s

    @property
    def namespace(self) -> str:
        return self.spec.namespace

    # -- releases -------------------------------------------------------------------------------
    def apply(self, release: str, *, broken_deadline: int | None = None) -> None:
        """Their manifests (or chart) under the run's overlay for `release` (the first, or a later one)."""
        if self.chart is not None:
            revision = self.chart.install(self.theirs, app_image=self.image, release=release, run_id=self.run_id,
                                          ingress_class=self.ingress_class, broken_deadline=broken_deadline,
                                          timeout=self.spec.up_timeout)
            log.info("helm release %s: revision %s (%s)", self.chart.name, revision.number, revision.status)
            return
        manifests.apply(self.kubectl, self.settings, self.theirs, app_image=self.image, release=release,
                        run_id=self.run_id, ingress_class=self.ingress_class, broken_deadline=broken_deadline,
                        later=bool(self.releases))

    def ship(self, release: str, *, broken_deadline: int | None = None) -> None:
        """Apply `release` and, unless it is a broken one, wait until it is all that is served."""
        self.apply(release, broken_deadline=broken_deadline)
        if broken_deadline is None:
            self.wait_rolled_out()
            self.releases.append(release)
            self.release = release

    def wait_ready(self, *, timeout: float) -> None:
        """Database Ready, seed Job (if any) complete, web rolled out with every pod Ready."""
        database = self.database()
        self.wait_settled(self.spec.database, self.db_selector(), database.spec.replicas or 1, timeout=timeout,
                          kind=database.kind.lower())
        if self.spec.seed_job:
            log_text = pods.run_job(self.api, self.namespace, self.spec.seed_job, timeout=timeout)
            print(f"[stageproof] k8s: job {self.spec.seed_job}: {log_text.strip()[-300:]}", flush=True)
        self.wait_rolled_out(timeout=timeout)

    def wait_rolled_out(self, *, timeout: float | None = None) -> list[Any]:
        """`rollout status`, then every old pod gone: a rollout is over once its drain is."""
        timeout = timeout or self.spec.check_timeout
        name = self.spec.deployment
        selector = self.web_selector()
        deployment = watch_until(self.api.apps.list_namespaced_deployment, status.rolled_out(name),
                                 what=f"deployment {name} to roll out", timeout=timeout, diagnostics=self.logs,
                                 cause=self.cause(selector), namespace=self.namespace,
                                 field_selector=f"metadata.name={name}")
        return self.wait_settled(name, selector, deployment.spec.replicas, timeout=timeout)

    def wait_settled(self, name: str, selector: str, count: int, *, timeout: float,
                     kind: str = "deployment") -> list[Any]:
        """Exactly `count` Ready pods behind `selector`, none terminating (drained); a pod that
        cannot get there (a crash loop) fails at once, led by its cause line."""
        try:
            return watch_until(self.api.core.list_namespaced_pod, status.pods_settled(count, f"{kind} {name}"),
                               what=f"{count} Ready pod(s) of {kind} {name}, none terminating", timeout=timeout,
                               diagnostics=self.logs, cause=self.cause(selector), namespace=self.namespace,
                               label_selector=selector)
        except status.ResourceFailed as err:
            first = self.cause(selector)()
            if first is None or str(err).startswith(first):
                raise
            raise status.ResourceFailed(f"{first}\n{err}") from err

    def cause(self, selector: str | None = None) -> Callable[[], str | None]:
        """The one line that says why the pods of `selector` are not Ready (harness/k8s/diagnostics.py)."""
        return lambda: diagnostics.first_cause(self.api, self.namespace, selector)

    # -- what is there ----------------------------------------------------------------------------
    def database(self) -> Any:
        """The live database workload (a StatefulSet or a Deployment, as the manifests say), with its kind."""
        kind = manifests.database_kind(self.theirs, self.spec)
        read = (self.api.apps.read_namespaced_stateful_set if kind == "StatefulSet"
                else self.api.apps.read_namespaced_deployment)
        workload = read(self.spec.database, self.namespace)
        workload.kind = kind
        return workload

    def web(self) -> Any:
        return self.api.apps.read_namespaced_deployment(self.spec.deployment, self.namespace)

    def web_selector(self) -> str:
        return status.label_selector(self.web().spec.selector)

    def db_selector(self) -> str:
        return status.label_selector(self.database().spec.selector)

    def pods(self, selector: str, *, ready_only: bool) -> list[Any]:
        found = self.api.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return sorted((pod for pod in found if status.is_ready(pod) or not ready_only),
                      key=lambda pod: pod.metadata.name)

    def replicas(self, selector: str, *, ready_only: bool) -> list[Replica]:
        return [replica_of(pod) for pod in self.pods(selector, ready_only=ready_only)]

    def logs(self) -> str:
        """Pods, events, logs and `kubectl describe` of the run's namespace, for failure reports."""
        def describe() -> str:
            return self.kubectl("describe", "pods,deployments,statefulsets,jobs", "-n", self.namespace, check=False)

        return diagnostics.collect(self.api, self.namespace, describe)


def replica_of(pod: Any) -> Replica:
    """A pod as the checks see it."""
    container = pod.spec.containers[0]
    requests = (container.resources.requests if container.resources else None) or {}
    return Replica(name=pod.metadata.name, uid=pod.metadata.uid, node=pod.spec.node_name or "",
                   ready=status.is_ready(pod), restarts=status.restarts(pod), image=container.image,
                   release=(pod.metadata.annotations or {}).get(patches.RELEASE_ANNOTATION, ""),
                   cpu_request=requests.get("cpu"))


def not_up() -> StageproofError:
    return StageproofError("the k8s stage is not up")
