"""Kubernetes plumbing of the k8s stage: API clients, watch-based waits, manifests, rollouts,
in-cluster probes and failure diagnostics. The stage driver (harness/stages/k8s.py) composes them."""
