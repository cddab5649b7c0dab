"""``python -m meddistill`` (and ``torchrun -m meddistill``) runs the CLI."""

import sys

from meddistill.cli import main

sys.exit(main())
