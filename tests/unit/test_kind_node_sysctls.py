"""The kind node image's sysctls that the chaos verdicts depend on (see README, "One tuning of our
own kind nodes"): without the short SYN_SENT timeout, a source port the load reuses within 120 s
follows a stale conntrack entry to a pod of a lost node, and the node-failure verdicts see late
failures that are the load's single address, not the app."""

from __future__ import annotations

from pathlib import Path

SYSCTLS = (Path(__file__).resolve().parents[2] / "harness" / "images" / "recipes" / "kind-node" / "node" / "files"
           / "etc" / "sysctl.d" / "10-kind-node.conf")
#: Linux's SYN retransmits come 1, 2, 4, 8, 16 ... s apart; the load's ports come round in ~80 s
LONGEST_GAP_KEPT, PORTS_COME_ROUND = 8, 80


def settings(path: Path) -> dict[str, str]:
    """`key = value` lines of a sysctl.d file (comments and blanks skipped)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def test_an_unanswered_connection_is_forgotten_before_the_load_reuses_its_port() -> None:
    value = int(settings(SYSCTLS)["net.netfilter.nf_conntrack_tcp_timeout_syn_sent"])
    assert LONGEST_GAP_KEPT < value < PORTS_COME_ROUND / 2, value
