"""``python -m evolution``: see ``evolution.cli``."""

from evolution.cli import main

raise SystemExit(main())
