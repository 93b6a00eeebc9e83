"""``python -m devgrad`` is the ``devgrad`` command."""

import sys

from devgrad.cli import main

sys.exit(main())
