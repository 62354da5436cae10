"""``python -m actors``: see :mod:`actors.cli`."""

import sys

from .cli import main

sys.exit(main())
