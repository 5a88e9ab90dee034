"""The shared contract suite, imported verbatim: nothing here is specific to the local stages."""

from harness.contract.suite import test_contract_case  # noqa: F401
