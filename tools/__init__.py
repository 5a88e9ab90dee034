"""stageproof's own tooling, not shipped in the wheel: the benchmark."""
