"""`python -m vla ...` runs the `vla` command (for machines where the entry point is not installed)."""

import sys

from vla.cli import main

sys.exit(main())
