"""Stages are found by name; unknown names get an error that lists the known ones."""

from __future__ import annotations

import pytest

from harness.errors import CapabilityMissing, ConfigError
from harness.stage import Stage, get_stage, register, stage_names


def test_local_stages_are_registered() -> None:
    assert {"local-sqlite", "local-mysql"} <= set(stage_names())
    assert get_stage("local-sqlite").name == "local-sqlite"


def test_unknown_stage_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown stage .nope.; known stages: .*local-sqlite"):
        get_stage("nope")


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register("local-sqlite")(type("Impostor", (Stage,), {}))


def test_missing_capability_says_which_stage() -> None:
    stage = get_stage("local-sqlite").__new__(get_stage("local-sqlite"))
    with pytest.raises(CapabilityMissing, match="local-sqlite cannot scale"):
        stage.scale(3)
    assert not stage.supports("scale")


def test_every_driver_declares_only_capabilities_it_overrides() -> None:
    for name in stage_names():
        cls = get_stage(name)
        for capability in cls.capabilities:
            assert getattr(cls, capability) is not getattr(Stage, capability), f"{name} claims {capability}"
