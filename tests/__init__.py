"""stageproof's own tests."""
