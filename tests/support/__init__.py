"""The project's self-tests' helpers (leak audit, cluster snapshot): not shipped in the wheel."""
