"""The contract: cases from the app's contract file, run verbatim against any deployment."""
