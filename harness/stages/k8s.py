"""The Kubernetes stage: the same images on a kind cluster (or a cluster the user names).

up(): build/find the images, create or reuse the cluster, `kind load` the images, apply the
kustomize overlay, then wait (watch, not sleep) for the database, the seed Job and the web
rollout, and hand the contract the NodePort that kind publishes on 127.0.0.1. Every failure
carries pods, events, logs and `kubectl describe`. down() deletes only what this run created.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from harness.config import K8sStage, Settings
from harness.errors import ConfigError, StageproofError
from harness.k8s import cluster, diagnostics, manifests, pods, rollout, status
from harness.k8s.api import Api, connect
from harness.k8s.watch import watch_until
from harness.stage import Deployment, Stage, register
from harness.wait import wait_for_http

log = logging.getLogger("stageproof.k8s")
OURS = {"app.kubernetes.io/part-of": "stageproof"}
APP_IMAGE_ENV = "STAGEPROOF_K8S_APP_IMAGE"
DB_IMAGE_ENV = "STAGEPROOF_K8S_DB_IMAGE"


@register("k8s")
class KubernetesStage(Stage):
    tests_folder = "k8s"
    # Also offered, beyond the shared Stage protocol: kill_database, rerun_seed, pod_get (tests/k8s).
    capabilities = frozenset({"kill_instance", "scale", "roll_out", "roll_back", "restart_app", "app_identity"})

    def __init__(self, settings: Settings, *, run_id: str, release: str) -> None:
        super().__init__(settings, run_id=run_id, release=release)
        if settings.stages.k8s is None:
            raise ConfigError("stageproof.toml has no [stages.k8s] section")
        self.spec: K8sStage = settings.stages.k8s
        self.namespace = self.spec.namespace
        self.timings: dict[str, float] = {}
        self.images: dict[str, str] = {}
        self.releases: list[str] = []
        self.killed: list[str] = []
        self._target: cluster.Target | None = None
        self._api: Api | None = None

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        spec = settings.stages.k8s
        if spec is None:
            return "stageproof.toml has no [stages.k8s] section"
        needed = ("docker",) if cluster.user_context(spec) else ("docker", "kind")
        missing = [tool for tool in needed if shutil.which(tool) is None]
        return f"not on PATH: {', '.join(missing)} (run scripts/setup-machine.sh)" if missing else None

    @classmethod
    def reap(cls, settings: Settings) -> list[str]:
        """`stageproof down`: the kind cluster a `--keep` or killed run left (only one stageproof made)."""
        spec = settings.stages.k8s
        if spec is None or cluster.user_context(spec) or shutil.which("kind") is None:
            return []
        return [f"kind cluster {spec.cluster}"] if cluster.delete_leftover(spec) else []

    # -- the Stage protocol ---------------------------------------------------------------------
    def up(self) -> Deployment:
        if self.deployment is not None:
            return self.deployment
        try:
            self.deployment = self._up()
        except BaseException as err:
            if self._api is not None:
                err.add_note(self.logs())
            raise
        return self.deployment

    def down(self) -> None:
        target, api, self._target, self._api, self.deployment = self._target, self._api, None, None, None
        if target is None:
            return
        if target.created:
            target.delete()
        elif api is not None:
            log.info("cluster %s is not ours: deleting only namespace %s", target.name, self.namespace)
            self._delete_namespace(api, wait=False)

    def logs(self) -> str:
        if self._api is None or self._target is None:
            return "(no cluster)"
        kubectl = self._target.kubectl
        describe = lambda: kubectl("describe", "pods,deployments,statefulsets,jobs", "-n", self.namespace,  # noqa: E731
                                   check=False)
        return diagnostics.collect(self._api, self.namespace, describe)

    def app_identity(self) -> str:
        return " ".join(f"{pod.metadata.name}:{pod.metadata.uid[:8]}:restarts={status.restarts(pod)}"
                        for pod in self.web_pods(ready_only=False))

    # -- bringing it up ---------------------------------------------------------------------------
    def _up(self) -> Deployment:
        from harness.images.build import ensure_images  # heavy: only when the stage really runs

        given = self._given_images()
        if len(given) < 2:
            with self._timed("images (build or cache)"):
                self.images = ensure_images(self.settings, release=self.release)
        self.images.update(given)
        self._target = self._make_target()
        self._api = connect(self._target.kubectl.kubeconfig, self._target.kubectl.context)
        self._target.load_images(list(self.images.values()))
        for phase, seconds in self._target.timings.items():
            self._record(phase, seconds)
        self._fresh_namespace()
        with self._timed("apply to Ready"):
            manifests.apply(self._target.kubectl, self.settings, images=self.images, release=self.release)
            self._wait_ready(timeout=self.spec.up_timeout)
            url = self._target.base_url + self.settings.app.ready_path
            wait_for_http(url, what=f"the app to answer through the NodePort at {url}", timeout=60)
        self.releases = [self.release]
        return Deployment(self.name, self._target.base_url, self.release, self.settings.app.token)

    def _given_images(self) -> dict[str, str]:
        """Image refs the user chose instead of the built ones (config, or environment)."""
        given = {"app": os.environ.get(APP_IMAGE_ENV) or self.spec.app_image,
                 "db": os.environ.get(DB_IMAGE_ENV) or self.spec.db_image}
        return {role: ref for role, ref in given.items() if ref}

    def _make_target(self) -> cluster.Target:
        if cluster.user_context(self.spec):
            return cluster.existing_cluster(self.spec)
        return cluster.kind_cluster(self.spec, node_image=self._node_image())

    def _node_image(self) -> str:
        """Ours, built from source, when no registry answers; with one, kind's default ("")."""
        from harness.images.build import use_airgap
        from harness.images.kind_node import ensure_kind_node_image

        if self.settings.images is not None and not use_airgap(self.settings.images):
            return ""
        with self._timed("kind node image (build or cache)"):
            return ensure_kind_node_image()

    def _fresh_namespace(self) -> None:
        """A reused cluster keeps an old run's data: start from an empty namespace."""
        api = self.api
        found = api.core.list_namespace(field_selector=f"metadata.name={self.namespace}").items
        if found:
            if (found[0].metadata.labels or {}).get("app.kubernetes.io/part-of") != "stageproof":
                raise StageproofError(f"namespace {self.namespace!r} exists and is not stageproof's: "
                                      "set stages.k8s.namespace to another name")
            with self._timed("delete the previous run's namespace"):
                self._delete_namespace(api, wait=True)
        api.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.namespace, labels=OURS)))

    def _delete_namespace(self, api: Api, *, wait: bool) -> None:
        """Pods go first without their grace period: nobody is served by a namespace being removed."""
        api.core.delete_collection_namespaced_pod(self.namespace, grace_period_seconds=0)
        api.core.delete_namespace(self.namespace)
        if wait:
            watch_until(api.core.list_namespace, status.gone(self.namespace),
                        what=f"namespace {self.namespace} to be deleted", timeout=self.spec.up_timeout,
                        field_selector=f"metadata.name={self.namespace}")

    def _wait_ready(self, *, timeout: float) -> None:
        """Database Ready, seed Job complete, web rolled out with every pod Ready."""
        self.wait_settled(self.spec.database, self.db_selector(), 1, timeout=timeout, kind="statefulset")
        print(f"[stageproof] k8s: seed job: {self._wait_seed(self.spec.seed_job, timeout).strip()}", flush=True)
        self.wait_rolled_out(timeout=timeout)

    def _wait_seed(self, job: str, timeout: float) -> str:
        return pods.run_job(self.api, self.namespace, job, timeout=timeout)

    # -- what checks do to the stage --------------------------------------------------------------
    @property
    def api(self) -> Api:
        if self._api is None:
            raise StageproofError("the k8s stage is not up")
        return self._api

    def web_selector(self) -> str:
        deployment = self.api.apps.read_namespaced_deployment(self.spec.deployment, self.namespace)
        return ",".join(f"{key}={value}" for key, value in deployment.spec.selector.match_labels.items())

    def db_selector(self) -> str:
        sts = self.api.apps.read_namespaced_stateful_set(self.spec.database, self.namespace)
        return ",".join(f"{key}={value}" for key, value in sts.spec.selector.match_labels.items())

    def web_pods(self, *, ready_only: bool = True) -> list[Any]:
        found = self.api.core.list_namespaced_pod(self.namespace, label_selector=self.web_selector()).items
        return sorted((pod for pod in found if status.is_ready(pod) or not ready_only),
                      key=lambda pod: pod.metadata.name)

    def pod_get(self, pod: str, path: str) -> pods.PodAnswer:
        """GET `path` on one pod (read-only checks only: identical /users, /version per replica)."""
        return pods.pod_get(self.api, self.namespace, pod, self.settings.app.port, path)

    def wait_settled(self, name: str, selector: str, count: int, *, timeout: float,
                     kind: str = "deployment") -> list[Any]:
        """Exactly `count` Ready pods behind `selector`, none terminating (drained)."""
        return watch_until(self.api.core.list_namespaced_pod, status.pods_settled(count, f"{kind} {name}"),
                           what=f"{count} Ready pod(s) of {kind} {name}, none terminating", timeout=timeout,
                           diagnostics=self.logs, namespace=self.namespace, label_selector=selector)

    def wait_rolled_out(self, *, timeout: float | None = None) -> list[Any]:
        """`rollout status`, then every old pod gone: a rollout is over once its drain is."""
        timeout = timeout or self.spec.check_timeout
        name = self.spec.deployment
        deployment = watch_until(self.api.apps.list_namespaced_deployment, status.rolled_out(name),
                                 what=f"deployment {name} to roll out", timeout=timeout, diagnostics=self.logs,
                                 namespace=self.namespace, field_selector=f"metadata.name={name}")
        return self.wait_settled(name, self.web_selector(), deployment.spec.replicas, timeout=timeout)

    def kill_instance(self) -> None:
        """Delete one Ready web pod (graceful: preStop, then SIGTERM); its name joins `killed`."""
        victim = self.web_pods()[0].metadata.name
        self.api.core.delete_namespaced_pod(victim, self.namespace)
        self.killed.append(victim)

    def scale(self, replicas: int) -> None:
        rollout.scale(self.api, self.namespace, self.spec.deployment, replicas)
        self.wait_rolled_out()

    def roll_out(self, release: str) -> None:
        """A new release, declaratively: the same apply with another RELEASE_ID."""
        assert self._target is not None
        manifests.apply(self._target.kubectl, self.settings, images=self.images, release=release)
        self.wait_rolled_out()
        self.releases.append(release)
        self._now_serving(release)

    def roll_back(self) -> None:
        """`rollout undo` (client equivalent): the previous revision's template comes back."""
        rollout.undo(self.api, self.namespace, self.spec.deployment)
        self.wait_rolled_out()
        if len(self.releases) > 1:
            self.releases.pop()
        self._now_serving(self.releases[-1])

    def restart_app(self) -> None:
        rollout.restart(self.api, self.namespace, self.spec.deployment)
        self.wait_rolled_out()

    def kill_database(self) -> tuple[str, str]:
        """Delete the database pod; the StatefulSet re-creates it on the same PVC. (name, old uid)."""
        name = f"{self.spec.database}-0"
        uid = self.api.core.read_namespaced_pod(name, self.namespace).metadata.uid
        self.api.core.delete_namespaced_pod(name, self.namespace)
        return name, uid

    def wait_database_back(self, name: str, old_uid: str) -> Any:
        return watch_until(self.api.core.list_namespaced_pod, status.replaced(name, old_uid),
                           what=f"database pod {name} to be re-created and Ready", timeout=self.spec.check_timeout,
                           diagnostics=self.logs, namespace=self.namespace, field_selector=f"metadata.name={name}")

    def rerun_seed(self) -> str:
        """Run the seed Job's pod template once more as a new Job; returns its log."""
        job = pods.copy_job(self.api, self.namespace, self.spec.seed_job, suffix=f"rerun-{self.run_id}")
        return self._wait_seed(job, self.spec.check_timeout)

    def db_reachable_from(self, labels: dict[str, str]) -> tuple[bool, str]:
        """Can a pod labelled `labels` open the database port? (the NetworkPolicy check)"""
        script = (f"import socket; socket.create_connection(('{self.spec.database}', {manifests.DB_PORT}), 5); "
                  "print('connected')")
        return pods.run_probe_pod(self.api, self.namespace, image=self.images["app"], labels=labels, script=script,
                                  timeout=self.spec.check_timeout)

    # -- pieces -----------------------------------------------------------------------------------
    def _now_serving(self, release: str) -> None:
        self.release = release
        if self.deployment is not None:
            self.deployment = dataclasses.replace(self.deployment, release=release)

    @contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self._record(phase, time.monotonic() - started)

    def _record(self, phase: str, seconds: float) -> None:
        self.timings[phase] = seconds
        print(f"[stageproof] k8s: {phase}: {seconds:.1f}s", flush=True)

