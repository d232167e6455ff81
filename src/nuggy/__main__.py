"""``python -m nuggy`` = the ``nuggy`` command."""

import sys

from nuggy.cli.main import main

sys.exit(main())
