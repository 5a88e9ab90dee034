"""The benchmark's arithmetic: slip, the measured window, "sustained", medians, phase parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.load.generator import OVERLOADED, Sample
from tools.bench import (
    Cycle,
    RateStep,
    _hand_override,
    _stage_summary,
    _timed,
    compare,
    highest_sustained,
    phases,
    rate_step,
    slip,
)


def sample(due: float, late: float | None = 0.0, error: str | None = None) -> Sample:
    return Sample(due, 0.002, error, None if late is None else due + late)


def step(rate: float, *, failed: int = 0, slipped: float = 0.0, sent: int = 1000) -> RateStep:
    return RateStep(rate, 5.0, sent, failed, {}, rate, 1.0, 2.0, slipped, 1.0)


def test_a_request_more_than_10ms_late_has_slipped_and_one_never_sent_too() -> None:
    samples = [sample(0.0, 0.001), sample(0.1, 0.009), sample(0.2, 0.011), sample(0.3, None, OVERLOADED)]
    share, p99_late_ms = slip(samples)
    assert share == pytest.approx(2 / 4)
    assert p99_late_ms == pytest.approx(11.0)


def test_no_samples_means_no_slip() -> None:
    assert slip([]) == (0.0, 0.0)


def test_only_requests_due_in_the_window_are_counted() -> None:
    inside = [sample(n / 100) for n in range(100)]  # 1 s at 100/s
    tail = [sample(1.0 + n / 100, None, OVERLOADED) for n in range(10)]
    result = rate_step(100.0, 1.0, inside + tail)
    assert (result.sent, result.failed, result.slipped) == (100, 0, 0.0)
    assert result.achieved == pytest.approx(100.0)
    assert result.sustained


def test_sustained_needs_under_one_percent_failed_and_under_one_percent_slipped() -> None:
    assert step(100, failed=9).sustained
    assert not step(100, failed=10).sustained
    assert not step(100, slipped=0.01).sustained
    assert not step(100, sent=0).sustained


def test_the_highest_sustained_rate_is_the_highest_that_held_even_above_a_miss() -> None:
    steps = [step(100), step(200, slipped=0.2), step(400), step(600, failed=50)]
    assert highest_sustained(steps) == 400
    assert highest_sustained([step(100, failed=500)]) is None


def test_compare_gives_medians_and_their_ratio() -> None:
    assert compare([6.0, 5.0, 9.0], [5.0, 4.0, 5.0]) == {"stageproof_median": 6.0, "hand_median": 5.0,
                                                         "ratio": 1.2}


def test_phases_reads_what_stageproof_says_and_sums_command_times_per_kind() -> None:
    stdout = ("[images] app=stageproof/users:x database=mysql:8.4 ready in 1.3s\n"
              "[stageproof] compose: up in 20.3s at http://127.0.0.1:1\n")
    stderr = ("22:36:38 stageproof.run $ docker image inspect --format x a\n"
              "22:36:38 stageproof.run   -> exit 1 in 0.1s\n"
              "22:36:38 stageproof.run $ docker image inspect --format x b\n"
              "22:36:38 stageproof.run   -> exit 0 in 0.2s\n"
              "22:36:38 stageproof.run $ docker build --file D --tag t .\n"
              "22:36:39 stageproof.run   -> exit 0 in 0.7s\n"
              "22:36:39 stageproof.run $ docker compose --project-name p --file f up --detach --wait\n"
              "22:36:58 stageproof.run   -> exit 0 in 18.9s\n")
    assert phases(stdout, stderr) == {"images": 1.3, "stage up": 20.3, "docker image": 0.3, "docker build": 0.7,
                                      "docker compose up": 18.9}


def test_the_hand_override_runs_the_built_image_and_publishes_the_app_on_loopback(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text(yaml.safe_dump({"services": {
        "db": {"image": "mysql:8.4"},
        "seed": {"image": "stageproof/users", "build": {"context": "."}},
        "web": {"image": "stageproof/users", "build": {"context": "."}, "ports": ["8000:8000"]}}}))
    text = _hand_override("web", "stageproof/users:abc", 8001, 8000, compose)
    assert '    ports: !override ["127.0.0.1:8001:8000"]' in text
    text = text.replace("!override ", "")  # a Compose tag, not YAML's
    assert yaml.safe_load(text) == {"services": {"seed": {"image": "stageproof/users:abc"},
                                                 "web": {"image": "stageproof/users:abc",
                                                         "ports": ["127.0.0.1:8001:8000"]}}}


def test_a_hand_flow_times_each_step_and_tears_down_even_when_a_step_fails() -> None:
    done: list[str] = []

    def fail() -> None:
        raise RuntimeError("db did not start")

    with pytest.raises(RuntimeError):
        _timed("by hand", "docker", [("network create", lambda: done.append("net")), ("db run", fail)],
               [("network rm", lambda: done.append("rm"))])
    assert done == ["net", "rm"]
    cycle = _timed("by hand", "docker", [("a", lambda: None)], [("b", lambda: None)])
    assert set(cycle.phases) == {"a", "b"} and cycle.up_seconds >= 0 and cycle.down_seconds >= 0


def test_the_compose_summary_sets_the_shared_compose_up_aside_to_show_each_flows_own_cost() -> None:
    cycles = [Cycle("stageproof", "compose", 6.0, 1.0, 1.0, {"docker compose up": 4.8}),
              Cycle("by hand", "compose", 5.0, 1.0, 1.0, {"compose up --wait": 4.9})]
    summary = _stage_summary(cycles)
    assert summary["up_outside_compose_up"] == {"stageproof_median": 1.2, "hand_median": 0.1, "ratio": 12.0}
    assert summary["total"]["ratio"] == pytest.approx(7 / 6, abs=0.001)
    assert summary["goals"]["ratio_met"] is False and summary["goals"]["up_met"] is False
    assert "up_outside_compose_up" not in _stage_summary([Cycle("stageproof", "docker", 4.0, 1.0, 1.0),
                                                          Cycle("by hand", "docker", 3.0, 1.0, 1.0)])


@pytest.mark.parametrize(("role", "size", "met"), [
    ("app", 150_000_000, True), ("app", 177_300_000, False), ("kind node", 1_024_600_000, False),
    ("database", None, None), ("stand-in", 5_000_000, None)])
def test_an_image_meets_its_goal_only_when_here_and_no_larger(role: str, size: int | None, met: bool | None) -> None:
    from tools.bench_images import sized

    assert sized(role, "ref", size)["met"] is met


def test_the_k8s_bench_reads_the_bring_up_steps_and_node_image_it_compares_with() -> None:
    from tools.bench_k8s import bare_config, node_image, steps

    out = "[stageproof] k8s: cluster: 39.4s\n[stageproof] k8s: deliver images: 12.6s\n[stageproof] k8s: up in 9s at x\n"
    assert steps(out) == {"cluster": 39.4, "deliver images": 12.6}
    err = "12:00 stageproof.run $ kind create cluster --name s --wait 5m --retain --image stageproof/kind-node:v1-ab\n"
    assert node_image(err) == "stageproof/kind-node:v1-ab" and node_image("no create here") is None
    nodes = [{"role": "control-plane"}, {"role": "worker"}, {"role": "worker"}]
    assert yaml.safe_load(bare_config(3))["nodes"] == nodes
