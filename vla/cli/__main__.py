"""`python -m vla.cli ...` (as `accelerate launch -m vla.cli train ...` runs it): the same as `vla ...`."""

import sys

from vla.cli import main

sys.exit(main())
