"""`python -m rat` runs the command line."""

from rat.cli import main

raise SystemExit(main())
