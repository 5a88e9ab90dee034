"""What a stage is: eight members, typed controls that every implementation conforms to, a registry
by name, and checks that declare what they need by type, so a typo fails at import."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest

from harness.checks.common import needs, requires
from harness.errors import ConfigError
from harness.k8s.nodes import ContainerNodes
from harness.k8s.workload import K8sApp, K8sChartTests, K8sCrash, K8sDatabase, K8sWorkload
from harness.stage import (
    CONTROLS,
    AppContainer,
    AppControl,
    AppCrash,
    Capabilities,
    ChartTests,
    DatabaseControl,
    Ingress,
    NewBuilds,
    NodeChaos,
    Stage,
    Workload,
    get_stage,
    register,
    stage_names,
)
from harness.stages.containers import AppInContainer, DatabaseInContainer
from harness.stages.local import LocalApp, ServerOutage

STAGE_MEMBERS = {"name", "up", "down", "logs", "keep", "availability", "reap", "capabilities"}


def test_every_stage_of_the_migration_is_registered_in_order() -> None:
    assert stage_names()[:6] == ["local-sqlite", "local-mysql", "local-postgres", "docker", "compose", "k8s"]
    assert get_stage("local-sqlite").name == "local-sqlite"


def test_unknown_stage_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown stage .nope.; known stages: .*local-sqlite"):
        get_stage("nope")


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register("local-sqlite")(type("Impostor", (Stage,), {}))


def test_the_stage_interface_has_eight_members() -> None:
    members = {name for name, _ in inspect.getmembers(Stage) if not name.startswith("_")}
    assert members == STAGE_MEMBERS


def test_every_control_implementation_conforms_to_its_protocol() -> None:
    dummy = SimpleNamespace(image="app:1", release="r1", releases=["r1"])
    implementations: list[tuple[object, tuple[type, ...]]] = [
        (LocalApp(dummy), (AppControl,)),  # type: ignore[arg-type]
        (ServerOutage(dummy), (DatabaseControl,)),  # type: ignore[arg-type]
        (AppInContainer(str, restart=print, wait_ready=print), (AppControl, AppContainer, AppCrash)),
        (DatabaseInContainer(str), (DatabaseControl,)),
        (K8sWorkload(dummy, dict), (Workload, NewBuilds)),  # type: ignore[arg-type]
        (K8sApp(dummy), (AppControl,)),  # type: ignore[arg-type]
        (K8sCrash(dummy), (AppCrash,)),  # type: ignore[arg-type]
        (K8sDatabase(dummy), (DatabaseControl,)),  # type: ignore[arg-type]
        (ContainerNodes(dummy, dummy, timeout=1), (NodeChaos,)),  # type: ignore[arg-type]
        (K8sChartTests(dummy), (ChartTests,)),  # type: ignore[arg-type]
    ]
    for implementation, protocols in implementations:
        for protocol in protocols:
            assert isinstance(implementation, protocol), f"{type(implementation).__name__} is no {protocol.__name__}"
    covered = {protocol for _, protocols in implementations for protocol in protocols}
    assert covered == {kind for kind in CONTROLS if kind is not Ingress}  # Ingress is a value, not a protocol


def test_an_absent_control_says_why_from_what_the_stage_withheld() -> None:
    capabilities = Capabilities(withheld={"nodes": "[stages.k8s] node_chaos = false"})
    assert capabilities.missing((Workload, NodeChaos), "k8s") == (
        "k8s has no workload control (Workload); [stages.k8s] node_chaos = false")
    assert Capabilities(app=LocalApp(object())).missing((AppControl,), "x") is None  # type: ignore[arg-type]


def test_a_check_declares_controls_by_type_and_settings_by_existing_key() -> None:
    with pytest.raises(TypeError, match="control types"):
        requires(str)
    with pytest.raises(TypeError, match=r"no key 'checks\.persistance'"):
        needs("checks.persistance")
    assert requires(Workload).args == (Workload,)
    assert needs("stages.k8s.seed_job").args == ("stages.k8s.seed_job",)
