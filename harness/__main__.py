"""`python -m harness` is the `stageproof` command."""

from harness.cli import main

raise SystemExit(main())
