"""A team's Helm chart as its manifests, unchanged: deployed with Helm itself (`helm upgrade
--install`), so its hooks, its `helm test` hooks, its subcharts and its release history behave as
they do for the team. stageproof's overlay (the same as for plain manifests: images, pull policy,
labels, the web Service as a NodePort, disruption budget, tolerations) reaches the rendered
manifests through Helm's post-renderer (harness/k8s/postrender.py), never the chart.

Helm 3 does not pass hooks through the post-renderer, so the hooks run the chart's own image
names: the app's build is also tagged under every name the hooks give it (and delivered), so a
migration Job runs the release being deployed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import K8sSettings, Settings
from harness.core import goyaml
from harness.core.cache import cache_dir
from harness.core.run import run
from harness.errors import ConfigError
from harness.k8s import manifests, patches
from harness.k8s.helm import Helm, HelmTestResult, Revision
from harness.k8s.helm_chart import documents, missing_dependencies, missing_kinds, served_kinds
from harness.k8s.manifests import Kubectl, Rendered
from harness.k8s.postrender import post_renderer

HOOK = "helm.sh/hook"


@dataclass
class ChartRelease:
    """One Helm release of the team's chart in the run's namespace."""

    settings: Settings
    helm: Helm
    kubectl: Kubectl
    #: the chart's hooks as rendered (they bypass the post-renderer): kind/name -> doc
    hooks: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)
    _chart: Path | None = None

    @property
    def spec(self) -> K8sSettings:
        assert self.settings.stages.k8s is not None
        return self.settings.stages.k8s

    @property
    def name(self) -> str:
        return self.spec.release or self.settings.app.name

    @property
    def chart(self) -> Path:
        """The chart to install: theirs, or a copy with its local (`file://`) subcharts packaged."""
        if self._chart is None:
            assert self.spec.chart is not None
            self._chart = self.helm.dependency_build(self.spec.chart, cache_dir("helm", "charts"))
        return self._chart

    def render(self, api_client: Any) -> Rendered:
        """`helm template` of the chart (with `values`): the objects the overlay is computed from
        (hooks apart); a kind the cluster does not serve is one error naming it and its template."""
        if missing := missing_dependencies(self.chart):
            raise ConfigError(f"stages.k8s.chart: subchart {missing[0].name} {missing[0].version} "
                              f"({missing[0].repository}) is not vendored in {self.chart}/charts")
        text = self.helm.template(self.chart, self.name, self.spec.values)
        if absent := missing_kinds(text, served_kinds(api_client)):
            raise ConfigError(absent[0].describe())
        docs: list[dict[str, Any]] = []
        self.hooks = []
        for _, doc in documents(text):
            (self.hooks if HOOK in (doc.get("metadata", {}).get("annotations") or {}) else docs).append(doc)
        body = "---\n".join(goyaml.dump(doc, sort_keys=False) for doc in docs)
        return Rendered(self.spec.chart or self.chart, body, tuple(docs))

    def hook_images(self, app_name: str | None) -> set[str]:
        """The image refs the hooks give the app (by its name in the team's files)."""
        refs = {container.get("image", "") for doc in self.hooks for _, _, container in patches.containers_of(doc)}
        return {ref for ref in refs if ref and app_name and manifests.image_name(ref) == app_name}

    def install(self, theirs: Rendered, *, app_image: str | None, release: str, run_id: str,
                ingress_class: str | None, broken_deadline: int | None, timeout: float) -> Revision:
        """`helm upgrade --install` through the run's overlay (a broken release is not waited for)."""
        with tempfile.TemporaryDirectory(prefix="stageproof-helm-overlay-") as tmp:
            folder = Path(tmp)
            manifests.write_overlay(folder, self.settings, theirs, app_image=app_image, release=release,
                                    run_id=run_id, ingress_class=ingress_class, broken_deadline=broken_deadline,
                                    later=False)
            renderer = post_renderer(folder, self.kubectl.argv())
            revision = self.helm.upgrade_install(self.chart, self.name, values_files=self.spec.values,
                                                 post_renderer=renderer, timeout=timeout,
                                                 wait=broken_deadline is None)
        self.revisions.append(revision)
        return revision

    def rollback(self, *, timeout: float) -> Revision:
        revision = self.helm.rollback(self.name, timeout=timeout)
        self.revisions.append(revision)
        return revision

    def test(self, *, timeout: float) -> HelmTestResult:
        return self.helm.test(self.name, timeout=timeout)


def tag_for_hooks(built: str, refs: set[str]) -> list[str]:
    """Tag the app's build as each ref the hooks run (a local tag, then delivered like the build)."""
    for ref in sorted(refs):
        run(["docker", "tag", built, ref])
    return sorted(refs)


def helm_for(kubectl: Kubectl, namespace: str) -> Helm:
    """Helm (built from the Go module proxy once, cached) against the same cluster as `kubectl`."""
    from harness.images.tools import ensure_helm

    if kubectl.kubeconfig is None:
        raise ConfigError("stages.k8s.kubeconfig: Helm needs the cluster's kubeconfig file")
    home = cache_dir("helm", "home")
    return Helm(ensure_helm(), kubectl.kubeconfig, namespace, context=kubectl.context, home=home)


def has_helm_tests(hooks: list[dict[str, Any]]) -> bool:
    return any("test" in str((doc.get("metadata", {}).get("annotations") or {}).get(HOOK, "")).split(",")
               for doc in hooks)

