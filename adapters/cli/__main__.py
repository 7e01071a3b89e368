"""``python -m adapters.cli``: the ``akte`` command, as before the CLI became a package."""

import sys

from adapters.cli.main import main

sys.exit(main())
