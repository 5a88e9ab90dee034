"""The run's ledger and its pages."""
