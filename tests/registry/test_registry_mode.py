"""Registry mode, exercised: a local registry (Debian's docker-registry, htpasswd auth) holds what
stageproof builds, pushed under the names registry mode pulls (stand-ins for the upstream ones);
a kind cluster pulls its node image from it and its nodes' containerd pull every pod image through
it (`hosts.toml` mirror); the run with `airgap = "never"` builds nothing and loads nothing of the
app's. Also measured: pulling the app's images on every node against `kind load` of the same.
"""

from __future__ import annotations

import json
import secrets
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.config import Settings, config_path, parse_settings, with_credentials
from harness.contract.cases import load_cases
from harness.contract.runner import ContractClient
from harness.core.release import current_release
from harness.core.run import run
from harness.images.push import Pushed, docker_login, push_built, upstream_path
from harness.k8s import kind, pods
from harness.k8s.providers.kind import KindProvider
from harness.services.registry import NETWORK_LABEL, LocalRegistry
from harness.stage import Deployment
from harness.stages.k8s import KubernetesStage

pytestmark = pytest.mark.slow
USER_ENV, PASSWORD_ENV = "STAGEPROOF_TEST_REGISTRY_USER", "STAGEPROOF_TEST_REGISTRY_PASSWORD"
FIGURES = Path("reports") / "registry-figures.json"
#: crictl's default 2 s deadline is shorter than an image removal's synchronous garbage collection here
CRICTL = ("crictl", "--timeout", "120s")


@dataclass
class RegistryRun:
    settings: Settings
    registry: LocalRegistry
    release: str
    pushed: list[Pushed]
    cluster: kind.KindCluster
    figures: dict[str, float]

    def remote(self, local: str) -> Pushed:
        return next(item for item in self.pushed if item.local == local)

    def on_nodes(self, pushed: Pushed) -> str:
        """The name the nodes pull `pushed` by: the registry's, on the endpoint's host."""
        assert self.settings.images is not None and self.settings.images.pull_prefix is not None
        return pushed.remote.replace(self.registry.host, self.settings.images.pull_prefix.split("/")[0], 1)

    @property
    def app(self) -> Pushed:
        return self.pushed[0]  # push_built pushes the app first


def registry_settings(registry: LocalRegistry, password: str) -> Settings:
    """The run's own config with registry mode on: airgap never, the registry, its credentials
    by variable name (the values come from the mapping, as from the environment)."""
    path = config_path()
    raw = tomllib.loads(path.read_text())
    raw["images"] = {**raw["images"], "airgap": "never", "registry": registry.host,
                     "registry_endpoint": registry.node_endpoint, "mirror_for": ["docker.io"],
                     "username_env": USER_ENV, "password_env": PASSWORD_ENV}
    settings = parse_settings(raw, root=path.parent, source=str(path))
    return with_credentials(settings, {USER_ENV: "stageproof", PASSWORD_ENV: password})


def pod_nodes(cluster: kind.KindCluster) -> list[str]:
    """The nodes that run pods, as `load_images` picks them: the workers when there are any."""
    return cluster.worker_nodes() or cluster.node_containers()


def on_every_node(cluster: kind.KindCluster, *cmd: str) -> float:
    """Run `cmd` in every node that runs pods at once; the seconds until the last one finished."""
    nodes = pod_nodes(cluster)
    started = time.monotonic()
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(lambda node: run(["docker", "exec", node, *cmd], timeout=600), nodes))
    return time.monotonic() - started


def pull_vs_load(run_: RegistryRun, locals_: list[str]) -> dict[str, float]:
    """Each way on nodes that hold none of the images: `crictl pull` (every node that runs pods at
    once) from the registry, then `kind load docker-image` (onto those same nodes); the images are
    removed after each."""
    user, password = run_.settings.registry_credentials or ("", "")
    remotes = [run_.on_nodes(run_.remote(local)) for local in locals_]
    pulled = sum(on_every_node(run_.cluster, *CRICTL, "pull", "--creds", f"{user}:{password}", ref) for ref in remotes)
    remove_everywhere(run_.cluster, remotes)
    started = time.monotonic()
    run_.cluster.load_images(locals_)
    loaded = time.monotonic() - started
    remove_everywhere(run_.cluster, [f"docker.io/{upstream_path(ref)}" for ref in locals_])
    return {"pull seconds": round(pulled, 1), "kind load seconds": round(loaded, 1)}


def remove_everywhere(cluster: kind.KindCluster, refs: list[str]) -> None:
    """Remove the images `refs` name from every node that runs pods, by image id: every name of them
    goes (`kind load` also records an `import-<date>@sha256:...` name for each)."""
    for node in pod_nodes(cluster):
        ids = {run(["docker", "exec", node, *CRICTL, "inspecti", "-o", "go-template", "--template", "{{.status.id}}",
                    ref]).stdout.strip() for ref in refs}
        run(["docker", "exec", node, *CRICTL, "rmi", *sorted(ids)])


def repo_digests(stage: KubernetesStage, pod: Any, image: str) -> list[str]:
    """The repo digests the pod's node records for `image`: where its content was pulled from."""
    found = run(["docker", "exec", pod.spec.node_name, *CRICTL, "inspecti", "-o", "json", image]).stdout
    return list(json.loads(found)["status"]["repoDigests"])


@pytest.fixture(scope="module")
def registry_run() -> Iterator[RegistryRun]:
    """Registry, pushes, then a cluster made from the registry's node image (pulled, not found)."""
    password = secrets.token_hex(8)
    release = current_release(config_path().parent)
    spec_cluster = parse_settings(tomllib.loads(config_path().read_text()), root=config_path().parent).stages.k8s
    assert spec_cluster is not None
    network = kind.network_name(spec_cluster.cluster)
    run(["docker", "network", "create", "--label", f"{NETWORK_LABEL}=1", network])  # made ready: not reaped
    provider: KindProvider | None = None
    try:
        with LocalRegistry(network=network, credentials=("stageproof", password)) as registry:
            settings = registry_settings(registry, password)
            pushed = push_built(settings, node_image=True, release=release)
            run(["docker", "image", "rm", *[item.remote for item in pushed]])  # untag: the node image must be pulled
            spec = settings.stages.k8s
            assert spec is not None
            node_image = next(item.remote for item in pushed if "/kindest/node:" in item.remote)
            started = time.monotonic()
            with docker_login(registry.host, settings.registry_credentials) as config:
                run(["docker", "--config", str(config), "pull", "--quiet", node_image], timeout=600)
            figures = {"node image pull (s)": round(time.monotonic() - started, 1)}
            started = time.monotonic()
            provider = KindProvider(settings, run_id="registry-fixture")  # its node image: the registry's
            provider.provision()
            figures["cluster create (s)"] = round(time.monotonic() - started, 1)
            provider.release(keep=True)  # marked kept, its lock let go: the stage below reuses it
            yield RegistryRun(settings, registry, release, pushed, kind.KindCluster(spec.cluster, node_image), figures)
    finally:
        if provider is not None:
            KindProvider.reap(provider.settings, kept=True)  # the kept cluster: this fixture made it
        run(["docker", "network", "rm", network], check=False)


@pytest.fixture(scope="module")
def registry_stage(registry_run: RegistryRun) -> Iterator[KubernetesStage]:
    """The k8s stage in registry mode on that cluster (reused: the fixture made it)."""
    measured = pull_vs_load(registry_run, [registry_run.app.local, registry_run.settings.database.image])
    registry_run.figures.update(measured)
    stage = KubernetesStage(registry_run.settings, run_id=secrets.token_hex(4), release=registry_run.release)
    try:
        stage.up()
        yield stage
    finally:
        stage.down()
        FIGURES.parent.mkdir(exist_ok=True)
        FIGURES.write_text(json.dumps(registry_run.figures, indent=2))
        print(f"\n[registry] figures: {registry_run.figures}")


def image_ids(stage: KubernetesStage) -> dict[str, str]:
    """{image: imageID} of every container the namespace runs."""
    found = {}
    deployed = stage.result.deployed
    for pod in deployed.api.core.list_namespaced_pod(deployed.namespace).items:
        for container in pod.status.container_statuses or []:
            found[container.image] = container.image_id
    return found


def test_nothing_is_built_or_loaded_and_every_pod_image_is_pulled_from_the_registry(
        registry_stage: KubernetesStage, registry_run: RegistryRun) -> None:
    result = registry_stage.result
    assert "images (build or cache)" not in result.timings
    assert result.deployed.image == registry_run.on_nodes(registry_run.app)
    pulled = image_ids(registry_stage)
    app, database = registry_run.app, registry_run.remote(registry_run.settings.database.image)
    assert pulled.get(result.deployed.image, "").endswith(app.digest), f"app not pulled from the registry: {pulled}"
    db_ref = next(ref for ref in pulled if ref.endswith(registry_run.settings.database.image))
    db_pod = result.deployed.pods(result.deployed.db_selector(), ready_only=True)[0]
    digests = repo_digests(registry_stage, db_pod, db_ref)
    assert f"docker.io/{upstream_path(db_ref).rsplit(':', 1)[0]}@{database.digest}" in digests, \
        f"{db_ref} not pulled through the docker.io mirror (the registry's digest {database.digest}): {digests}"


def test_the_contract_holds_in_registry_mode(registry_stage: KubernetesStage) -> None:
    result = registry_stage.result
    client = ContractClient(Deployment("k8s", result.access.base_url, result.deployed.release,
                                       registry_stage.settings.app.token))
    failed = {case.name: result.problems for case in load_cases(registry_stage.settings.contract.cases)
              if not (result := client.run_case(case)).passed}
    assert not failed, failed


def test_an_image_named_by_digest_runs(registry_stage: KubernetesStage, registry_run: RegistryRun) -> None:
    by_digest = f"{registry_run.on_nodes(registry_run.app).rsplit(':', 1)[0]}@{registry_run.app.digest}"
    deployed = registry_stage.result.deployed
    ok, log = pods.run_probe_pod(deployed.api, deployed.namespace, image=by_digest,
                                 labels={"app.kubernetes.io/name": "digest-probe"}, script="print('by digest')",
                                 timeout=deployed.spec.check_timeout)
    assert ok and "by digest" in log, log


def test_pulls_need_the_credentials(registry_run: RegistryRun, registry_stage: KubernetesStage) -> None:
    """The registry really checks them: an anonymous pull on a node is refused."""
    node = registry_run.cluster.node_containers()[0]
    anonymous = run(["docker", "exec", node, *CRICTL, "pull", registry_run.on_nodes(registry_run.app)], check=False)
    assert anonymous.returncode != 0 and "no basic auth credentials" in anonymous.stderr, anonymous.stderr
