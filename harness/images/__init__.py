"""Building every image the stages need, with or without a registry."""
