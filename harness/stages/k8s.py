"""The Kubernetes stage: the same images on a cluster, from a provider (harness/k8s/providers): a kind
cluster stageproof makes (or reuses when a run kept it), or a cluster a team names by its context.

up() is the bring-up's ordered steps (harness/k8s/bringup.py): images, cluster, render, deliver,
add-ons (on stageproof's cluster only), namespace, apply to Ready. down() deletes only what this run
created and lets go of the cluster; `keep()` marks it kept instead. What the checks may do is in
`capabilities()`: the workload view (harness/k8s/workload.py), new builds, node chaos where the
provider allows it, the Ingress on stageproof's cluster. The stage knows the app only through
`[stages.k8s]`: which Deployment serves it, which Deployment or StatefulSet is its database, which Job
(if any) seeds it.
"""

from __future__ import annotations

import shutil

from harness.config import Settings
from harness.k8s.bringup import Bringup, BringupResult
from harness.k8s.chart import has_helm_tests
from harness.k8s.nodes import ContainerNodes
from harness.k8s.providers import ClusterProvider, k8s_settings, provider_class
from harness.k8s.workload import K8sApp, K8sChartTests, K8sCrash, K8sDatabase, K8sWorkload
from harness.stage import Capabilities, Deployment, Ingress, Stage, register


@register("k8s")
class KubernetesStage(Stage):
    """One run's app on one cluster; the provider decides whose cluster and what is allowed there."""

    def __init__(self, settings: Settings, *, run_id: str, release: str) -> None:
        super().__init__(settings, run_id=run_id, release=release)
        self._provider: ClusterProvider = provider_class(settings)(settings, run_id=run_id)
        self._bringup: Bringup | None = None
        self._result: BringupResult | None = None

    def up(self) -> Deployment:
        self._bringup = Bringup(self.settings, self._provider, run_id=self.run_id, release=self.release)
        try:
            self._result = self._bringup.run()
        except BaseException as err:
            if self._bringup.deployed is not None:
                err.add_note(self.logs())
            raise
        result = self._result
        notes = [f"{result.summary[0]}; bring-up: " + ", ".join(f"{phase} {seconds:.1f}s"
                                                                for phase, seconds in result.timings.items()),
                 *result.summary[1:],
                 *(f"substitute image: {ref} <- {what}" for ref, what in self._bringup.substitutes.items())]
        return Deployment(self.name, result.access.base_url, self.release, self.settings.app.token, tuple(notes))

    def down(self) -> None:
        self._result = self._bringup = None
        self._provider.release(keep=False)

    def keep(self) -> None:
        """Left up (`--keep`, `up --detach`): the next run reuses the cluster instead of reaping it."""
        self._result = self._bringup = None
        self._provider.release(keep=True)

    def logs(self) -> str:
        deployed = self._bringup.deployed if self._bringup is not None else None
        cluster = self._provider.logs()
        return (deployed.logs() if deployed is not None else "(no cluster)") + (
            f"\n--- nodes ---\n{cluster[-4000:]}" if cluster else "")

    @classmethod
    def availability(cls, settings: Settings) -> str | None:
        spec = settings.stages.k8s
        if spec is None:
            return "stageproof.toml has no [stages.k8s] section"
        needed = ("kubectl",) if spec.context else ("docker", "kind")
        missing = [tool for tool in needed if shutil.which(tool) is None]
        return f"not on PATH: {', '.join(missing)} (run scripts/setup-machine.sh)" if missing else None

    @classmethod
    def reap(cls, settings: Settings, *, kept: bool = False) -> list[str]:
        """What killed (or, with `kept`, kept) runs left: stageproof's kind cluster, or its namespace
        on a team's cluster; never while the owner lives."""
        if settings.stages.k8s is None or (not settings.stages.k8s.context and shutil.which("kind") is None):
            return []
        return provider_class(settings).reap(settings, kept=kept)

    @property
    def result(self) -> BringupResult:
        """What the bring-up made (for stageproof's own tests of its k8s machinery)."""
        assert self._result is not None, "the k8s stage is not up"
        return self._result

    def capabilities(self) -> Capabilities:
        assert self._result is not None, "capabilities() before up()"
        info, deployed, access = self._provider.info(), self._result.deployed, self._result.access
        workload = K8sWorkload(deployed, self._provider.deliver)
        crash = K8sCrash(deployed)
        withheld = {name: reason for name, reason in (("nodes", info.node_chaos_withheld),
                                                      ("crash", info.node_chaos_withheld),
                                                      ("builds", info.builds_withheld)) if reason}
        nodes = ContainerNodes(deployed.api, deployed.kubectl, timeout=k8s_settings(self.settings).check_timeout)
        if deployed.chart is None:
            withheld["chart"] = "the app ships plain manifests, not a Helm chart (stages.k8s.chart)"
        elif not has_helm_tests(deployed.chart.hooks):
            withheld["chart"] = f"the chart {deployed.chart.name!r} has no `helm test` hooks"
        if not info.ours:
            withheld["ingress"] = (f"cluster {info.name!r} is a kubeconfig context stageproof did not create: it "
                                   "installs no ingress controller there")
        return Capabilities(
            app=K8sApp(workload), workload=workload, database=K8sDatabase(crash),
            crash=None if "crash" in withheld else crash, builds=None if "builds" in withheld else workload,
            chart=None if "chart" in withheld else K8sChartTests(deployed),
            nodes=None if "nodes" in withheld else nodes,
            ingress=Ingress(access.ingress_url) if info.ours and access.ingress_url else None,
            withheld={**withheld, "container": "the k8s stage looks at pods through the workload checks"})
