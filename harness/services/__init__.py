"""Backing services a stage may start itself, one small class each."""
