"""What stageproof writes for Go tools reads back as written: a run id such as `2836e304` stays a
string. CI went red on exactly that run id: kustomize read the overlay's run label as a float
("cannot unmarshal number into Go struct field Label.labels.pairs of type string")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config import Settings, load_settings
from harness.core.goyaml import GoSafeLoader, dump, dump_all
from harness.k8s.manifests import RUN_LABEL, Rendered, write_overlay
from harness.k8s.patches import RELEASE_ANNOTATION
from harness.stages.compose_override import render_override

ROOT = Path(__file__).resolve().parents[2]
#: each read by a Go decoder as a number or a boolean when written bare
TRICKY = ["2836e304", "1e5", "12E+3", "0o17", "0b101", "0x1F", "1_000", ".5", "+.inf", ".NaN", "y", "N",
          "007", "123", "1.5", "true", "null", "~"]


def go_read(text: str) -> Any:
    """The test's stand-in for Go's decoders: plain scalars resolved as YAML 1.2 and yaml.v2 do."""
    return yaml.load(text, Loader=GoSafeLoader)


@pytest.mark.parametrize("value", TRICKY)
def test_a_string_go_would_read_as_a_number_is_quoted(value: str) -> None:
    assert go_read(dump({"v": value})) == {"v": value}
    assert list(yaml.load_all(dump_all([{"v": value}]), Loader=GoSafeLoader)) == [{"v": value}]


def test_numbers_booleans_and_plain_words_are_written_as_before() -> None:
    data = {"port": 8080, "ratio": 1.5, "on": True, "none": None, "word": "web", "hex": "4a08f0b4eacc"}
    assert dump(data, sort_keys=False) == yaml.safe_dump(data, sort_keys=False)
    assert go_read(dump(data)) == data


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(ROOT / "stageproof.toml", env={})


def test_the_run_label_and_the_release_reach_kustomize_as_strings(settings: Settings, tmp_path: Path) -> None:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
         "spec": {"selector": {"matchLabels": {"app": name}},
                  "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}}
        for kind, name in (("Deployment", "web"), ("StatefulSet", "db"))]
    docs.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "seed"},
                 "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}})
    docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                 "spec": {"ports": [{"port": 80}]}})
    theirs = Rendered(Path("/team/k8s"), dump_all(docs), tuple(docs))
    write_overlay(tmp_path, settings, theirs, app_image=None, release="123456e78901", run_id="2836e304")
    kustomization = go_read((tmp_path / "kustomization.yaml").read_text())
    assert kustomization["labels"][0]["pairs"] == {RUN_LABEL: "2836e304"}
    annotations = [go_read(patch["patch"])["spec"]["template"]["metadata"]["annotations"]
                   for patch in kustomization["patches"] if RELEASE_ANNOTATION in patch["patch"]]
    assert annotations == [{RELEASE_ANNOTATION: "123456e78901"}]


def test_compose_reads_the_run_labels_of_the_override_as_strings() -> None:
    text = render_override({"services": {"web": {"labels": {"io.stageproof.run": "2836e304"}}}})
    assert go_read(text)["services"]["web"]["labels"] == {"io.stageproof.run": "2836e304"}
