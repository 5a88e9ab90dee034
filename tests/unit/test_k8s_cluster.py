"""Choosing the cluster: kind by default, a user's kubeconfig context when configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import K8sStage
from harness.errors import ConfigError
from harness.k8s.cluster import user_context

SPEC = K8sStage(kustomize="stages/k8s/overlays/kind", kind_config="stages/k8s/kind.yaml")


def test_kind_is_the_default_target() -> None:
    assert user_context(SPEC, {}) is None


def test_a_named_context_needs_to_know_where_the_app_answers() -> None:
    with pytest.raises(ConfigError, match=r"needs stages\.k8s\.base_url"):
        user_context(SPEC, {"STAGEPROOF_K8S_CONTEXT": "team-cluster"})


def test_the_environment_points_at_a_team_cluster() -> None:
    env = {"STAGEPROOF_K8S_CONTEXT": "team", "STAGEPROOF_K8S_KUBECONFIG": "/etc/team.yaml",
           "STAGEPROOF_K8S_BASE_URL": "http://127.0.0.1:8080/"}
    assert user_context(SPEC, env) == ("team", Path("/etc/team.yaml"), "http://127.0.0.1:8080")


def test_the_config_file_can_name_the_context_too() -> None:
    spec = SPEC.model_copy(update={"context": "team", "base_url": "http://127.0.0.1:9000"})
    assert user_context(spec, {}) == ("team", None, "http://127.0.0.1:9000")
