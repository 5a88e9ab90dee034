"""The Kubernetes stage: the same images on a kind cluster (or a cluster the user names).

up(): build/find the images, create or reuse the cluster (kind: 1 control plane + workers), `kind
load` the images and the add-ons' (harness/k8s/addons.py: NetworkPolicy engine, Traefik), install
the add-ons, render the team's manifests and apply them under the run's overlay
(harness/k8s/manifests.py, plus an Ingress on kind), then wait (watch, not sleep) for the database,
the seed Job if there is one and the web rollout, and hand the contract the NodePort that kind
publishes on 127.0.0.1. Every failure carries pods, events,
logs and `kubectl describe`. down() deletes only what this run created, then lets go of the
cluster (a run owns it by a lock: harness/k8s/cluster.py); with --keep it is marked kept instead.

The stage knows the app only through `[stages.k8s]`: which Deployment serves it, which
Deployment or StatefulSet is its database, which Job (if any) seeds it.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.config import K8sSettings, Settings
from harness.core.run import run
from harness.core.wait import app_ready, wait_until
from harness.errors import CapabilityMissing, ConfigError, StageproofError
from harness.k8s import addons, cluster, diagnostics, kind, manifests, namespace, nodes, pods, rollout, status
from harness.k8s.api import Api, connect
from harness.k8s.watch import watch_until
from harness.stage import Deployment, Stage, register

log = logging.getLogger("stageproof.k8s")


def registry_mode(settings: Settings) -> str | None:
    """`[images] registry` unless air-gapped mode is forced: with a registry, nothing is built or loaded."""
    images = settings.images
    return images.registry if images is not None and images.registry and images.airgap != "always" else None


def registry_mirror(settings: Settings) -> kind.RegistryMirror | None:
    """What the nodes of a kind cluster stageproof creates pull through `[images] registry`."""
    images = settings.images
    if images is None or images.registry is None or registry_mode(settings) is None:
        return None
    host = images.registry.split("/")[0]
    return kind.RegistryMirror(images.registry_endpoint or f"https://{host}", own=images.registry_endpoint is not None,
                               mirror_for=tuple(images.mirror_for), credentials=settings.registry_credentials)


#: what the node checks do to a node (harness/k8s/nodes.py): only where the config allows it
NODE_CHAOS = ("drain_node", "stop_node")


@register("k8s")
class KubernetesStage(Stage):
    tests_folder = "k8s"
    # Also offered, beyond the shared Stage protocol: kill_database, rerun_seed, pod_get (harness/checks/k8s.py).
    # ingress_url: only a kind cluster stageproof made has an ingress controller (elsewhere it raises).
    capabilities = frozenset({"kill_instance", "scale", "roll_out", "roll_back", "restart_app", "app_identity",
                              "kill_database", "rerun_seed", "ingress_url", "roll_out_image", *NODE_CHAOS})

    def __init__(self, settings: Settings, *, run_id: str, release: str) -> None:
        super().__init__(settings, run_id=run_id, release=release)
        if settings.stages.k8s is None:
            raise ConfigError("stageproof.toml has no [stages.k8s] section")
        self.spec: K8sSettings = settings.stages.k8s
        self.namespace = self.spec.namespace
        self.timings: dict[str, float] = {}
        #: what the bring-up note says besides timings: the nodes, and each loaded image's size
        self.cluster_summary = ""
        self.image_sizes: dict[str, int] = {}
        #: the app image ref the run deploys (None: the manifests' own)
        self.app_image: str | None = None
        #: the app image the bring-up deployed, and new builds -> the ref the nodes run them by
        self._deployed_image: str | None = None
        self._delivered: dict[str, str] = {}
        self.releases: list[str] = []
        self.killed: list[str] = []
        self._target: cluster.Target | None = None
        self._api: Api | None = None
        self._theirs: manifests.Rendered | None = None

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        spec = settings.stages.k8s
        if spec is None:
            return "stageproof.toml has no [stages.k8s] section"
        needed = ("docker",) if cluster.user_context(spec) else ("docker", "kind")
        missing = [tool for tool in needed if shutil.which(tool) is None]
        return f"not on PATH: {', '.join(missing)} (run scripts/setup-machine.sh)" if missing else None

    @classmethod
    def withheld(cls, settings: Settings) -> dict[str, str]:
        """On a cluster stageproof did not create: no ingress controller of ours, and node chaos
        only when `stages.k8s.node_chaos` says so (`node_chaos = false` withholds it anywhere)."""
        spec = settings.stages.k8s
        if spec is None:
            return {}
        found = cluster.user_context(spec)
        held = {"ingress_url": f"cluster {found[0]!r} is a kubeconfig context stageproof did not create: it "
                               "installs no ingress controller there"} if found else {}
        images = settings.images
        if found and (images is None or images.registry is None):
            held["roll_out_image"] = (f"cluster {found[0]!r} is a kubeconfig context stageproof did not create: "
                                      "it pulls new builds from a registry: set [images] registry")
        if spec.node_chaos is False:
            held |= dict.fromkeys(NODE_CHAOS, "[stages.k8s] node_chaos = false")
        elif found and spec.node_chaos is None:
            held |= dict.fromkeys(NODE_CHAOS, f"cluster {found[0]!r} is a kubeconfig context stageproof did not "
                                  "create: set [stages.k8s] node_chaos = true to let it drain and stop that "
                                  "cluster's nodes")
        return held

    @classmethod
    def reap(cls, settings: Settings, *, kept: bool = False) -> list[str]:
        """`stageproof down`: the kind cluster a killed run left (or, with `kept`, a `--keep` run),
        only one stageproof made; on a cluster it did not make, only its own namespace (labelled
        ours), never the cluster. Never while the owner lives."""
        spec = settings.stages.k8s
        if spec is None:
            return []
        if cluster.user_context(spec) is not None:
            removed = cluster.delete_leftover_namespace(spec)
        elif shutil.which("kind") is None:
            return []
        else:
            removed = cluster.delete_leftover(spec, kept=kept)
        return [removed] if removed else []

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
        try:
            if target.created:
                target.delete()
            elif api is not None:
                log.info("cluster %s is not ours: deleting only namespace %s", target.name, self.namespace)
                namespace.delete(api, self.namespace, wait=False, timeout=self.spec.up_timeout)
        finally:
            target.release()

    def keep(self) -> None:
        """Left up (`--keep`, `up --detach`): the next run reuses the cluster instead of reaping it."""
        target, self._target = self._target, None
        if target is not None:
            target.keep()

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
        refs = self._images()
        self._target = self._make_target()
        self._api = connect(self._target.kubectl.kubeconfig, self._target.kubectl.context)
        self._record_target_timings()
        self._say_cluster()
        with self._timed("render the manifests"):
            self._theirs = manifests.render_theirs(self._target.kubectl, self.settings)
        self._say_unloaded(refs)
        ours = self._target.kind_cluster is not None  # only there: add-ons, loaded images, an Ingress
        if ours:
            refs = self._run_by_the_manifests(refs)
            with self._timed("add-on images (build or cache)"):
                refs += addons.images()
        self._target.load_images(refs)  # one `kind load` for all
        self._record_target_timings()
        if ours:
            self._say_sizes(refs)
            with self._timed("add-ons ready"):
                addons.install(self._target.kubectl, self.api, ingress_node_port=self.spec.ingress_node_port,
                               timeout=self.spec.up_timeout, diagnostics=lambda: addons.diagnostics(self.kubectl))
        self._fresh_namespace()
        with self._timed("apply to Ready"):
            self._apply(self.release)
            self._wait_ready(timeout=self.spec.up_timeout)
            self._wait_answering()
        self.releases = [self.release]
        self._deployed_image = self.app_image
        return Deployment(self.name, self._target.base_url, self.release, self.settings.app.token)

    def _run_by_the_manifests(self, refs: list[str]) -> list[str]:
        """The images of `refs` a pod will run (the app's, the manifests' own): every node gets a
        copy of each loaded image, so a build-only one (a base image's stand-in) stays out."""
        assert self._theirs is not None
        run_by_them = self._theirs.images()
        needed = [ref for ref in refs if ref == self.app_image or ref in run_by_them]
        if skipped := [ref for ref in refs if ref not in needed]:
            print(f"[stageproof] k8s: not loaded (no pod runs them): {', '.join(skipped)}", flush=True)
        return needed

    def _wait_answering(self) -> None:
        """The app answers on 127.0.0.1 through its NodePort, and through the Ingress if there is one."""
        assert self._target is not None
        for way, url in (("the NodePort", self._target.base_url), ("the Ingress", self._target.ingress_url)):
            if url is not None:
                what, probe = app_ready(self.settings, url)
                wait_until(probe, what=f"the app to answer through {way}: {what}", timeout=60)

    def _images(self) -> list[str]:
        """The images the cluster must hold: built (app, database, substitutes) unless the user
        names the app image (stages.k8s.app_image, $STAGEPROOF_K8S_APP_IMAGE): then that one, if local."""
        given = self.spec.app_image
        if given:
            self.app_image = given
            return [given] if run(["docker", "image", "inspect", given], check=False).returncode == 0 else []
        if self.settings.images is None:
            return []
        if (registry := registry_mode(self.settings)) is not None:
            from harness.images.build import release_tag

            prefix = self.settings.images.pull_prefix or registry
            self.app_image = f"{prefix}/{self.settings.images.app.tag}:{release_tag(self.release)}"
            print(f"[stageproof] k8s: registry mode: nothing built or loaded; the nodes pull {self.app_image} "
                  f"and the manifests' images through {registry}", flush=True)
            return []
        from harness.images.build import ensure_images  # heavy: only when the stage really runs

        with self._timed("images (build or cache)"):
            built = ensure_images(self.settings, release=self.release)
        self.app_image = built.app
        self.substitutes = dict(built.substitutes)
        return built.refs()

    def _say_unloaded(self, loaded: list[str]) -> None:
        """Images the manifests run that the run did not load: the cluster must pull them."""
        assert self._theirs is not None and self._target is not None
        ours = self.settings.images.app.ref_name if self.settings.images is not None and self.app_image else None
        missing = sorted(ref for ref in self._theirs.images()
                         if ref not in loaded and manifests.image_name(ref) != ours)
        if missing and self._target.kind_cluster is not None:
            print(f"[stageproof] k8s: not loaded into kind (its nodes must pull them): {', '.join(missing)}",
                  flush=True)

    def _say_cluster(self) -> None:
        """How many nodes, of which roles: printed, and kept for the bring-up note."""
        assert self._target is not None
        self.cluster_summary = addons.node_summary(self.api, self._target.name)
        print(f"[stageproof] k8s: {self.cluster_summary}", flush=True)

    def _say_sizes(self, loaded: list[str]) -> None:
        self.image_sizes = cluster.image_sizes(loaded)
        if self.image_sizes:
            print("[stageproof] k8s: images loaded: " + ", ".join(
                f"{ref} {size / 1e6:.0f} MB" for ref, size in self.image_sizes.items()), flush=True)

    def _make_target(self) -> cluster.Target:
        if cluster.user_context(self.spec):
            return cluster.existing_cluster(self.spec, run_id=self.run_id)
        return cluster.kind_cluster(self.spec, node_image=self._node_image(), run_id=self.run_id,
                                    mirror=registry_mirror(self.settings))

    def _node_image(self) -> str:
        """Ours, built from source, when no registry answers; pulled from `[images] registry` in
        registry mode (our node image pushed there as a stand-in for kindest/node); else kind's default ("")."""
        from harness.images.build import use_airgap
        from harness.images.kind_node import ensure_kind_node_image

        if (registry := registry_mode(self.settings)) is not None:
            from harness.images.kind_node_recipe import load_versions
            from harness.images.push import kind_node_name

            return f"{registry}/{kind_node_name(load_versions().kubernetes)}"  # Docker on this machine pulls it
        if self.settings.images is not None and not use_airgap(self.settings.images):
            return ""
        with self._timed("kind node image (build or cache)"):
            return ensure_kind_node_image()

    def _fresh_namespace(self) -> None:
        """A reused cluster keeps an old run's data: start from an empty namespace."""
        started = time.monotonic()
        if namespace.create_fresh(self.api, self.namespace, labels={manifests.RUN_LABEL: self.run_id},
                                  timeout=self.spec.up_timeout):
            self._record("delete the previous run's namespace", time.monotonic() - started)
        images = self.settings.images
        if images is not None and images.registry and self.settings.registry_credentials:
            namespace.add_pull_secret(self.api, self.namespace, (images.pull_prefix or images.registry).split("/")[0],
                                      self.settings.registry_credentials, timeout=self.spec.up_timeout)

    def _apply(self, release: str, *, broken_deadline: int | None = None) -> None:
        assert self._target is not None and self._theirs is not None
        ingress_class = addons.INGRESS_CLASS if self._target.ingress_url is not None else None
        manifests.apply(self._target.kubectl, self.settings, self._theirs, app_image=self.app_image,
                        release=release, run_id=self.run_id, ingress_class=ingress_class,
                        broken_deadline=broken_deadline, later=bool(self.releases))

    def _wait_ready(self, *, timeout: float) -> None:
        """Database Ready, seed Job (if any) complete, web rolled out with every pod Ready."""
        database = self._database()
        self.wait_settled(self.spec.database, self.db_selector(), database.spec.replicas or 1, timeout=timeout,
                          kind=database.kind.lower())
        if self.spec.seed_job:
            log_text = pods.run_job(self.api, self.namespace, self.spec.seed_job, timeout=timeout)
            print(f"[stageproof] k8s: job {self.spec.seed_job}: {log_text.strip()[-300:]}", flush=True)
        self.wait_rolled_out(timeout=timeout)

    # -- what checks do to the stage --------------------------------------------------------------
    @property
    def api(self) -> Api:
        if self._api is None:
            raise StageproofError("the k8s stage is not up")
        return self._api

    @property
    def kubectl(self) -> manifests.Kubectl:
        if self._target is None:
            raise StageproofError("the k8s stage is not up")
        return self._target.kubectl

    def ingress_url(self) -> str:
        """Where the Ingress answers on 127.0.0.1: only a kind cluster stageproof made has one."""
        if self._target is None:
            raise StageproofError("the k8s stage is not up")
        if self._target.ingress_url is None:
            raise CapabilityMissing(f"cluster {self._target.name} is not one stageproof made: it installs no "
                                    "ingress controller there (ingress checks not applicable)")
        return self._target.ingress_url

    def _database(self) -> Any:
        """The live database workload (a StatefulSet or a Deployment, as the manifests say), with its kind."""
        assert self._theirs is not None
        kind = manifests.database_kind(self._theirs, self.spec)
        read = (self.api.apps.read_namespaced_stateful_set if kind == "StatefulSet"
                else self.api.apps.read_namespaced_deployment)
        workload = read(self.spec.database, self.namespace)
        workload.kind = kind
        return workload

    def web_selector(self) -> str:
        deployment = self.api.apps.read_namespaced_deployment(self.spec.deployment, self.namespace)
        return status.label_selector(deployment.spec.selector)

    def db_selector(self) -> str:
        return status.label_selector(self._database().spec.selector)

    def web_pods(self, *, ready_only: bool = True) -> list[Any]:
        return self._pods(self.web_selector(), ready_only=ready_only)

    def db_pods(self, *, ready_only: bool = True) -> list[Any]:
        return self._pods(self.db_selector(), ready_only=ready_only)

    def _pods(self, selector: str, *, ready_only: bool) -> list[Any]:
        found = self.api.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return sorted((pod for pod in found if status.is_ready(pod) or not ready_only),
                      key=lambda pod: pod.metadata.name)

    def pod_get(self, pod: str, path: str) -> pods.PodAnswer:
        """GET `path` on one pod through the API server (read-only checks: identical bodies per replica)."""
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
        """A new release, declaratively: the same apply with another release id."""
        self._apply(release)
        self.wait_rolled_out()
        self.releases.append(release)
        self._now_serving(release)

    def load_image(self, image: str) -> str:
        """Get a new local build to the nodes; returns the ref they run it by. On a kind cluster
        stageproof made: `kind load`; elsewhere it is pushed to `[images] registry` (a cluster
        stageproof did not make pulls it from there). Each image goes once."""
        assert self._target is not None
        if image == self._deployed_image or image in self._delivered.values():
            return image  # already where the nodes get it: the bring-up's own ref, or a pushed one
        if image not in self._delivered:
            self._delivered[image] = self._deliver(image)
        return self._delivered[image]

    def _deliver(self, image: str) -> str:
        assert self._target is not None
        images = self.settings.images
        if self._target.kind_cluster is not None and registry_mode(self.settings) is None:
            self._target.load_images([image])
            return image
        if images is None or images.registry is None:
            raise CapabilityMissing(f"{image} cannot reach cluster {self._target.name}: it pulls new builds from "
                                    "a registry (set [images] registry)")
        from harness.images.push import push_all

        push_all(self.settings, {image: image}, stand_ins={})
        return f"{images.pull_prefix or images.registry}/{image}"

    def roll_out_image(self, image: str, release: str, *, broken_deadline: int | None = None) -> None:
        """Another build of the app (a new tag): delivered to the nodes (`load_image`), then
        applied and rolled out; or, with `broken_deadline`, applied as a broken release and not
        waited for."""
        self.app_image = self.load_image(image)
        self._apply(release, broken_deadline=broken_deadline)
        if broken_deadline is None:
            self.wait_rolled_out()
            self.releases.append(release)
            self._now_serving(release)

    def drain_node(self, node: str) -> str:
        return nodes.drain(self.kubectl, node, timeout=self.spec.check_timeout)

    def uncordon_node(self, node: str) -> None:
        nodes.uncordon(self.kubectl, node)

    def stop_node(self, node: str) -> None:
        nodes.stop(node)

    def start_node(self, node: str) -> None:
        """Start the stopped node again and wait until its kubelet reports Ready."""
        nodes.start(node)
        nodes.wait_ready(self.api, node, timeout=self.spec.check_timeout)

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

    def kill_database(self) -> str:
        """Delete one Ready database pod; its controller re-creates it on the same volume. Its uid."""
        victim = self.db_pods()[0]
        self.api.core.delete_namespaced_pod(victim.metadata.name, self.namespace)
        return str(victim.metadata.uid)

    def wait_database_back(self, old_uid: str) -> list[Any]:
        """The killed database pod replaced and every database pod Ready again."""
        name = self.spec.database
        count = self._database().spec.replicas or 1
        return watch_until(self.api.core.list_namespaced_pod, status.pods_replaced(old_uid, count, f"database {name}"),
                           what=f"the database pod of {name} to be re-created and Ready",
                           timeout=self.spec.check_timeout, diagnostics=self.logs, namespace=self.namespace,
                           label_selector=self.db_selector())

    def rerun_seed(self) -> tuple[str, str]:
        """Run the seed Job's pod template once more as a new Job: (its name, its log)."""
        if not self.spec.seed_job:
            raise ConfigError("stages.k8s.seed_job is not set: there is no seed Job to run again")
        job = pods.copy_job(self.api, self.namespace, self.spec.seed_job, suffix=f"rerun-{self.run_id}")
        return job, pods.run_job(self.api, self.namespace, job, timeout=self.spec.check_timeout)

    def delete_job(self, name: str) -> None:
        pods.delete_job(self.api, self.namespace, name)

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

    def _record_target_timings(self) -> None:
        """What the cluster measured (cluster create, image load), each once, as it happens."""
        assert self._target is not None
        for phase, seconds in self._target.timings.items():
            if phase not in self.timings:
                self._record(phase, seconds)

    def _record(self, phase: str, seconds: float) -> None:
        self.timings[phase] = seconds
        print(f"[stageproof] k8s: {phase}: {seconds:.1f}s", flush=True)
