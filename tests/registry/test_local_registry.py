"""The local registry fixture itself: up on 127.0.0.1, auth enforced when credentials are given,
its storage gone after stop (a second of work: no cluster, no image)."""

from __future__ import annotations

import requests

from harness.services.registry import LocalRegistry


def test_the_registry_checks_credentials_and_leaves_nothing_behind() -> None:
    with LocalRegistry(credentials=("team", "s3cret")) as registry:
        url = f"http://{registry.host}/v2/"
        assert registry.host.startswith("127.0.0.1:")
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, auth=("team", "wrong"), timeout=5).status_code == 401
        assert requests.get(url, auth=("team", "s3cret"), timeout=5).status_code == 200
        root = registry.root
        assert root.is_dir()
    assert not root.exists()
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError(f"the registry still answers on {url} after stop")
