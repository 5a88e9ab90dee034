"""The k8s stage's bring-up as an ordered list of named, timed steps (like kind's create actions):

    images -> cluster -> add-ons applied -> render -> deliver -> add-ons ready -> namespace -> apply to Ready

Each step prints its name and time as it ends; the times go into the run summary. A step that fails
carries the namespace's pods, events and logs (harness/k8s/deployed.py) once the cluster answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from harness.config import Settings
from harness.core.ownership import RUN_LABEL
from harness.core.run import run
from harness.core.shield import say
from harness.core.wait import app_ready, wait_ready
from harness.k8s import addons, manifests, namespace
from harness.k8s.api import Api, connect
from harness.k8s.chart import ChartRelease, helm_for, tag_for_hooks
from harness.k8s.deployed import Deployed
from harness.k8s.providers import ClusterAccess, ClusterProvider, registry_mode
from harness.k8s.web_env import env_notes


@dataclass
class BringupResult:
    """What the bring-up made, and what it says about itself in the run summary."""

    access: ClusterAccess
    deployed: Deployed
    timings: dict[str, float] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)


class Bringup:
    """One bring-up of the app on the provider's cluster, for one release."""

    def __init__(self, settings: Settings, provider: ClusterProvider, *, run_id: str, release: str) -> None:
        self.settings, self.provider, self.run_id, self.release = settings, provider, run_id, release
        self.spec = provider.spec
        self.timings: dict[str, float] = {}
        self.substitutes: dict[str, str] = {}
        self.api: Api | None = None
        self.deployed: Deployed | None = None

    def run(self) -> BringupResult:
        refs, app_image = self._images()
        with self._step("cluster"):
            access = self.provider.provision()
        self._record(self.provider.timings)
        self.api = connect(access.kubectl.kubeconfig, access.kubectl.context)
        summary = [addons.node_summary(self.api, access.name)]
        say(f"[stageproof] k8s: {summary[0]}")
        ours = self.provider.info().ours
        if ours:  # their images are in place already: they start while the app's images are delivered
            with self._step("add-ons applied"):
                addons.apply(access.kubectl, ingress_node_port=self.spec.ingress_node_port)
        chart = ChartRelease(self.settings, helm_for(access.kubectl, self.spec.namespace),
                             access.kubectl) if self.spec.chart is not None else None
        with self._step("render the chart" if chart else "render the manifests"):
            theirs = chart.render(self.api.core.api_client) if chart else manifests.render_theirs(access.kubectl,
                                                                                                 self.settings)
        for note in env_notes(theirs, self.settings, self.release):
            say(f"[stageproof] k8s: {note}")
            summary.append(note)
        self.deployed = Deployed(self.settings, self.api, access.kubectl, theirs, self.run_id, self.release,
                                 image=app_image, ingress_class=addons.INGRESS_CLASS if ours else None, chart=chart)
        if chart is not None and app_image in refs and (hooked := chart.hook_images(self._app_name())):
            refs += tag_for_hooks(app_image, hooked)
            summary.append(f"chart hooks run {', '.join(sorted(hooked))}: tagged as this build (Helm runs hooks "
                           "without the post-renderer)")
        delivered = self._deliver(refs, theirs, app_image, ours=ours, also=set(refs) - {app_image}
                                  if chart is not None else set())
        if ours and delivered:
            summary.append("images: " + ", ".join(f"{ref} {size / 1e6:.0f} MB"
                                                  for ref, size in image_sizes(delivered).items()))
        if ours:
            with self._step("add-ons ready"):
                addons.wait_ready(self.api, timeout=self.spec.up_timeout,
                                  diagnostics=lambda: addons.diagnostics(access.kubectl))
        with self._step("namespace"):
            self._fresh_namespace(self.api)
        with self._step("apply to Ready"):
            self.deployed.apply(self.release)
            self.deployed.wait_ready(timeout=self.spec.up_timeout)
            self._wait_answering(access)
        self.deployed.releases = [self.release]
        return BringupResult(access, self.deployed, self.timings, summary)

    # -- steps -----------------------------------------------------------------------------------
    def _images(self) -> tuple[list[str], str | None]:
        """The images the cluster must hold and the app image to deploy: built (app, database,
        substitutes), or the one the user names (stages.k8s.app_image), or in registry mode the
        ref the nodes pull (pushed by `stageproof images push`)."""
        given = self.spec.app_image
        if given:
            # loaded only into a kind cluster of ours without a registry: a cluster we did not make, or
            # registry mode, has its nodes pull it (a push leaves a local copy under the same digest,
            # and delivering that pushed it again, under the registry's name twice)
            loads = self.provider.info().ours and registry_mode(self.settings) is None
            local = loads and run(["docker", "image", "inspect", given], check=False).returncode == 0
            return ([given] if local else []), given
        images = self.settings.images
        if images is None:
            return [], None
        if (registry := registry_mode(self.settings)) is not None:
            from harness.images.build import release_tag

            ref = f"{images.pull_prefix or registry}/{images.app.tag}:{release_tag(self.release)}"
            say(f"[stageproof] k8s: registry mode: nothing built or loaded; the nodes pull {ref} and the "
                f"manifests' images through {registry}")
            return [], ref
        from harness.images.build import ensure_images  # heavy: only when the stage really runs

        with self._step("images (build or cache)"):
            built = ensure_images(self.settings, release=self.release)
        self.substitutes = dict(built.substitutes)
        return built.refs(), built.app

    def _app_name(self) -> str | None:
        return self.settings.images.app.ref_name if self.settings.images is not None else None

    def _deliver(self, refs: list[str], theirs: manifests.Rendered, app_image: str | None, *,
                 ours: bool, also: frozenset[str] | set[str] = frozenset()) -> list[str]:
        """Of `refs`, the images a pod will run (the app's, the manifests' own) and, on our cluster,
        the add-ons', to the nodes in one go: every node gets a copy, so a build-only image (a base
        image's stand-in) stays out. What the manifests run and nobody delivers must be pulled."""
        run_by_them = theirs.images() | set(also)
        needed = [ref for ref in refs if ref == app_image or ref in run_by_them]
        if skipped := [ref for ref in refs if ref not in needed]:
            say(f"[stageproof] k8s: not delivered (no pod runs them): {', '.join(skipped)}")
        app_name = self.settings.images.app.ref_name if self.settings.images is not None and app_image else None
        pulled = sorted(ref for ref in run_by_them if ref not in needed and manifests.image_name(ref) != app_name)
        if pulled and ours:
            say(f"[stageproof] k8s: not loaded (its nodes must pull them): {', '.join(pulled)}")
        with self._step("deliver images"):
            self.provider.deliver(needed)
        self._record(self.provider.timings)
        return needed

    def _fresh_namespace(self, api: Api) -> None:
        """A reused cluster keeps an old run's data: start from an empty namespace."""
        if namespace.create_fresh(api, self.spec.namespace, labels={RUN_LABEL: self.run_id},
                                  timeout=self.spec.up_timeout):
            say(f"[stageproof] k8s: deleted the previous run's namespace {self.spec.namespace}")
        images = self.settings.images
        if images is not None and images.registry and self.settings.registry_credentials:
            namespace.add_pull_secret(api, self.spec.namespace, (images.pull_prefix or images.registry).split("/")[0],
                                      self.settings.registry_credentials, timeout=self.spec.up_timeout)

    def _wait_answering(self, access: ClusterAccess) -> None:
        """The app answers on 127.0.0.1 through its NodePort, and through the Ingress if there is one."""
        ingress = access.ingress_url if self.provider.info().ours else None
        for way, url in (("the NodePort", access.base_url), ("the Ingress", ingress)):
            if url is not None:
                what, probe = app_ready(self.settings, url)
                wait_ready(probe, what=f"the app to answer through {way}: {what}", timeout=60)

    # -- timing ----------------------------------------------------------------------------------
    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self._record({name: time.monotonic() - started})

    def _record(self, timings: dict[str, float]) -> None:
        for phase, seconds in timings.items():
            if self.timings.get(phase) != seconds:
                self.timings[phase] = seconds
                say(f"[stageproof] k8s: {phase}: {seconds:.1f}s")


def image_sizes(refs: list[str]) -> dict[str, int]:
    """Bytes of each local image (what a `kind load` copies into every node)."""
    sizes: dict[str, int] = {}
    for ref in refs:
        found = run(["docker", "image", "inspect", "--format", "{{.Size}}", ref], check=False)
        if found.returncode == 0 and found.stdout.strip().isdigit():
            sizes[ref] = int(found.stdout.strip())
    return sizes

