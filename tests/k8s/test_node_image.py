"""A kind cluster from our air-gapped node image works (issue 4).

The session's plain cluster (tests/support/plain_cluster.py, shared with the Helm tool's checks),
created from `stageproof/kind-node:<version>` with the default kind config that `render_config`
writes: node Ready, DNS, ClusterIP, a PVC on `standard`,
port-forward, a NodePort published on 127.0.0.1, and a delete that leaves nothing behind. Test
pods run the Debian toolbox image that is already in the node (nothing can be pulled).
STAGEPROOF_KIND_WORKERS=2 adds worker nodes.
"""

from __future__ import annotations

import time
import uuid

import pytest
from kubernetes import client

from harness.core.net import LOOPBACK, free_port
from harness.core.process import ManagedProcess
from harness.core.run import run
from harness.core.wait import NotYet, wait_for_http, wait_until
from harness.images.kind_node_images import ensure_toolbox
from harness.images.kind_node_recipe import load_versions
from tests.support.plain_cluster import CHECK_NODE_PORT, PlainCluster

pytestmark = pytest.mark.slow

NAMESPACE = "nodecheck"
SERVER = """
import http.server, socket
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + socket.gethostname()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("", 8080), Hello).serve_forever()
"""


Cluster = PlainCluster


@pytest.fixture(scope="module")
def cluster(shared_plain_cluster: PlainCluster) -> PlainCluster:
    """The session's plain cluster (tests/support/plain_cluster.py), with this module's namespace."""
    shared_plain_cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    return shared_plain_cluster


@pytest.fixture(scope="module")
def web(cluster: Cluster) -> str:
    """A pod serving HTTP on 8080 behind a ClusterIP Service `web` and NodePort Service `web-nodeport`."""
    labels = {"app": "web"}
    probe = client.V1Probe(http_get=client.V1HTTPGetAction(path="/", port=8080), period_seconds=1)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="web", labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="web", image=cluster.image, image_pull_policy="Never", command=["python3", "-c", SERVER],
            ports=[client.V1ContainerPort(container_port=8080)], readiness_probe=probe)]),
    )
    cluster.core.create_namespaced_pod(NAMESPACE, pod)
    for svc_name, svc_type, node_port in (("web", "ClusterIP", None), ("web-nodeport", "NodePort", CHECK_NODE_PORT)):
        port = client.V1ServicePort(port=80, target_port=8080, node_port=node_port)
        spec = client.V1ServiceSpec(type=svc_type, selector=labels, ports=[port])
        cluster.core.create_namespaced_service(NAMESPACE, client.V1Service(
            metadata=client.V1ObjectMeta(name=svc_name), spec=spec))
    wait_until(lambda: _ready(cluster.core, "web"), what="pod web to be Ready", timeout=120,
               diagnostics=lambda: _describe(cluster.core, "web"))
    return "web"


def _ready(core: client.CoreV1Api, name: str) -> None:
    pod = core.read_namespaced_pod(name, NAMESPACE)
    if not any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
        raise NotYet(f"pod {name} is {pod.status.phase}")


def _describe(core: client.CoreV1Api, name: str) -> str:
    pod = core.read_namespaced_pod(name, NAMESPACE)
    events = core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={name}")
    return f"status: {pod.status}\nevents: " + "\n".join(e.message or "" for e in events.items)


def run_in_pod(cluster: Cluster, name: str, script: str, *, volumes: dict[str, str] | None = None,
               timeout: float = 120) -> str:
    """Run `python3 -c script` in a one-shot pod; return its output (fails if the pod fails)."""
    mounts = [client.V1VolumeMount(name=claim, mount_path=path) for claim, path in (volumes or {}).items()]
    pod_volumes = [client.V1Volume(name=claim, persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
        claim_name=claim)) for claim in (volumes or {})]
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(restart_policy="Never", volumes=pod_volumes or None, containers=[client.V1Container(
            name="main", image=cluster.image, image_pull_policy="Never", command=["python3", "-c", script],
            volume_mounts=mounts or None)]),
    )
    cluster.core.create_namespaced_pod(NAMESPACE, pod)
    try:
        phase = wait_until(lambda: _finished(cluster.core, name), what=f"pod {name} to finish", timeout=timeout,
                           diagnostics=lambda: _describe(cluster.core, name))
        output = cluster.core.read_namespaced_pod_log(name, NAMESPACE)
        assert phase == "Succeeded", f"pod {name} {phase}: {output}"
        return output.strip()
    finally:
        cluster.core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)


def _finished(core: client.CoreV1Api, name: str) -> str:
    phase = core.read_namespaced_pod(name, NAMESPACE).status.phase
    if phase not in ("Succeeded", "Failed"):
        raise NotYet(f"pod {name} is {phase}")
    return phase


def test_nodes_ready(cluster: Cluster) -> None:
    nodes = cluster.core.list_node().items
    assert nodes
    for node in nodes:
        ready = [c.status for c in node.status.conditions if c.type == "Ready"]
        assert ready == ["True"], f"{node.metadata.name} not Ready: {node.status.conditions}"
        assert node.status.node_info.kubelet_version == load_versions().kubernetes


def test_coredns_resolves_service_name(cluster: Cluster, web: str) -> None:
    cluster_ip = cluster.core.read_namespaced_service("web", NAMESPACE).spec.cluster_ip
    resolved = run_in_pod(cluster, "dns-check", "import socket; print(socket.gethostbyname('web'))")
    assert resolved == cluster_ip


def test_clusterip_service_routes_to_pod(cluster: Cluster, web: str) -> None:
    cluster_ip = cluster.core.read_namespaced_service("web", NAMESPACE).spec.cluster_ip
    script = f"import urllib.request; print(urllib.request.urlopen('http://{cluster_ip}/', timeout=10).read().decode())"
    assert run_in_pod(cluster, "clusterip-check", script) == "hello from web"


def test_pvc_binds_and_keeps_data_across_pod_delete(cluster: Cluster) -> None:
    claim = client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="data"),
        spec=client.V1PersistentVolumeClaimSpec(
            storage_class_name="standard", access_modes=["ReadWriteOnce"],
            resources=client.V1VolumeResourceRequirements(requests={"storage": "64Mi"})),
    )
    cluster.core.create_namespaced_persistent_volume_claim(NAMESPACE, claim)
    token = uuid.uuid4().hex
    run_in_pod(cluster, "pvc-writer", f"open('/data/token', 'w').write('{token}')", volumes={"data": "/data"})
    phase = cluster.core.read_namespaced_persistent_volume_claim("data", NAMESPACE).status.phase
    assert phase == "Bound"
    assert run_in_pod(cluster, "pvc-reader", "print(open('/data/token').read())", volumes={"data": "/data"}) == token


def test_kubectl_port_forward_reaches_pod(cluster: Cluster, web: str) -> None:
    port = free_port()
    log_path = cluster.kind.kubeconfig.with_name("port-forward.log")
    forward = ManagedProcess("port-forward", [
        str(cluster.kind.kubectl()), "--kubeconfig", str(cluster.kind.kubeconfig), "-n", NAMESPACE,
        "port-forward", "--address", LOOPBACK, "pod/web", f"{port}:8080"], log_path=log_path).start()
    try:
        response = wait_for_http(f"http://{LOOPBACK}:{port}/", what="kubectl port-forward to pod web", timeout=30,
                                 diagnostics=log_path.read_text)
        assert response.text == "hello from web"
    finally:
        forward.stop()


def test_nodeport_published_on_loopback_reaches_pod(cluster: Cluster, web: str) -> None:
    url = f"http://{LOOPBACK}:{cluster.ports.host_port(CHECK_NODE_PORT)}/"
    response = wait_for_http(url, what=f"NodePort {CHECK_NODE_PORT} via kind extraPortMappings", timeout=60)
    assert response.text == "hello from web"


def test_kind_load_docker_image_makes_a_local_image_runnable(cluster: Cluster) -> None:
    """What the k8s stage does with the app's images: `kind load docker-image`, then run it."""
    ref = f"stageproof/kind-load-check:{uuid.uuid4().hex[:8]}"
    # the toolbox is in the node image; on the host it may be gone (CI empties stageproof's images
    # when a recipe changed, and a current node image is not rebuilt): build it, or find it cached
    run(["docker", "tag", ensure_toolbox(load_versions()), ref])
    try:
        cluster.kind.load_images([ref])
    finally:
        run(["docker", "rmi", ref])
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="loaded-image"),
        spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
            name="main", image=ref, image_pull_policy="Never", command=["python3", "-c", "print('loaded')"])]),
    )
    cluster.core.create_namespaced_pod(NAMESPACE, pod)
    phase = wait_until(lambda: _finished(cluster.core, "loaded-image"), what="pod from a kind-loaded image",
                       timeout=120, diagnostics=lambda: _describe(cluster.core, "loaded-image"))
    assert phase == "Succeeded"


def test_kind_delete_leaves_nothing_behind(shared_plain_cluster: PlainCluster) -> None:
    """Runs last (tests/k8s/conftest.py): deletes the session's plain cluster and checks its
    containers, volumes, network are gone. It asks for the session's cluster itself: this module's
    fixture may be torn down by then."""
    cluster = shared_plain_cluster
    nodes = cluster.kind.node_containers()
    volumes = [name for node in nodes for name in run(
        ["docker", "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", node]).stdout.split()]
    started = time.monotonic()
    cluster.kind.delete()
    print(f"[kind-node] kind delete cluster: {time.monotonic() - started:.1f}s")
    assert cluster.kind.node_containers() == []
    assert cluster.kind.name not in run(["kind", "get", "clusters"]).stdout.split()
    leftover = [v for v in volumes if run(["docker", "volume", "inspect", v], check=False).returncode == 0]
    assert leftover == [], f"volumes left behind: {leftover}"
    assert run(["docker", "network", "inspect", cluster.kind.network], check=False).returncode != 0
