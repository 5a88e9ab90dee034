"""The harness's plumbing: subprocesses, processes, waits, ownership, ports, caches, signals."""
