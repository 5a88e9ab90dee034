"""The talk's workflow on the reference app: code change, infrastructure change, broken release
and hotfix, drain, node failure (harness/checks/workflow.py, the checks every team gets)."""

from harness.checks.workflow import *  # noqa: F403  (the checks and their fixtures, collected here)
