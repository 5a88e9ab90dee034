"""Stage-only checks shared by every stage that has the capability they need."""
