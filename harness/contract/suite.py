"""The contract suite, written once. Each tests/<stage>/test_contract.py imports it verbatim.

Every case of the app's contract file becomes one test, run in file order against the
`deployment` fixture (whatever stage provides it, or `--base-url`).
"""

from __future__ import annotations

import pytest

from harness.contract.cases import Case
from harness.contract.runner import ContractClient


@pytest.mark.contract  # on the function, so the mark travels with it into every stage folder
def test_contract_case(contract_case: Case, contract_client: ContractClient) -> None:
    result = contract_client.run_case(contract_case)
    assert result.passed, f"contract case {contract_case.name!r} failed:\n  " + "\n  ".join(result.problems)
