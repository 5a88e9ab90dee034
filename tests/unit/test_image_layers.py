"""Reproducible layers, base trimming and the preloaded node image's tag (no Docker needed)."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest

from harness.images import kind_node_preload
from harness.images.layered import Entry, write_layer
from harness.images.rootfs import _trim
from harness.images.wheel_server import WHEELS_URL, WheelServer


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_layer_of_the_same_files_has_the_same_bytes_whenever_and_in_whatever_order(tmp_path: Path) -> None:
    binary = tmp_path / "hyperkube"
    binary.write_bytes(b"\x7fELF" + b"x" * 1000)
    entries = [Entry("/usr/local/bin/hyperkube", source=binary), Entry("/usr/local/bin/kubectl", link="hyperkube")]
    first = write_layer(tmp_path / "a.tar", entries, dirs=["tmp"])
    binary.touch()  # a newer mtime on the source must not change the layer
    second = write_layer(tmp_path / "b.tar", list(reversed(entries)), dirs=["tmp"])
    assert _digest(first) == _digest(second)
    with tarfile.open(first) as tar:
        members = {member.name: member for member in tar}
    assert list(members) == ["tmp", "usr", "usr/local", "usr/local/bin", "usr/local/bin/hyperkube",
                             "usr/local/bin/kubectl"]
    assert members["tmp"].mode == 0o1777 and members["usr/local/bin/kubectl"].linkname == "hyperkube"
    assert {member.uid for member in members.values()} == {0} and {member.mtime for member in members.values()} == {0}


def test_a_layer_with_other_content_has_other_bytes(tmp_path: Path) -> None:
    binary = tmp_path / "bin"
    binary.write_bytes(b"one")
    first = _digest(write_layer(tmp_path / "a.tar", [Entry("/bin/x", source=binary)]))
    binary.write_bytes(b"two")
    assert _digest(write_layer(tmp_path / "b.tar", [Entry("/bin/x", source=binary)])) != first


def test_trim_drops_docs_bytecode_iconv_and_what_the_recipe_removes(tmp_path: Path) -> None:
    keep = ["usr/lib/cni/ptp", "usr/lib/python3.11/os.py", "usr/share/zoneinfo/UTC"]
    drop = ["usr/share/locale/de/LC_MESSAGES/x.mo", "usr/share/doc/bash/README",
            "usr/lib/python3.11/__pycache__/os.cpython-311.pyc",
            "usr/lib/python3/dist-packages/pip/_internal/__pycache__/a.pyc",
            "usr/lib/x86_64-linux-gnu/gconv/IBM850.so", "usr/lib/cni/bridge"]
    for name in keep + drop:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    _trim(tmp_path, remove=["usr/lib/cni/bridge"])
    assert [name for name in keep if not (tmp_path / name).exists()] == []
    assert [name for name in drop if (tmp_path / name).exists()] == []
    assert (tmp_path / "usr/share/locale").is_dir()  # emptied, not removed


def test_the_preloaded_node_tag_names_the_version_and_changes_with_any_image(monkeypatch: pytest.MonkeyPatch) -> None:
    images = [("stageproof/traefik:v3.6.12", "sha256:aa"), ("mysql:8.4", "sha256:bb")]
    tag, recipe = kind_node_preload.preloaded_tag("sha256:node", images)
    assert tag.startswith("stageproof/kind-node:v1.34.4-") and tag.endswith(recipe)
    assert kind_node_preload.preloaded_tag("sha256:node", list(reversed(images))) == (tag, recipe)
    assert kind_node_preload.preloaded_tag("sha256:node", [images[0], ("mysql:8.4", "sha256:cc")])[0] != tag
    assert kind_node_preload.preloaded_tag("sha256:other", images)[0] != tag


def test_builds_reach_the_wheel_server_on_its_network_at_one_fixed_url() -> None:
    server = WheelServer("stageproof-wheels-1234")
    assert server.build_options == ["--network", "stageproof-wheels-1234"]
    assert server.url == WHEELS_URL == "http://stageproof-wheels/"
