"""``python -m sealagent`` runs the command line."""

from sealagent.cli import main

raise SystemExit(main())
