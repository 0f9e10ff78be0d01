"""``python -m harness.cli``: the same as the ``nas-harness`` command."""

import sys

from harness.cli.main import main

sys.exit(main())
