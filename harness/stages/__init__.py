"""One module per stage driver; they share pieces through harness/*, never each other."""
