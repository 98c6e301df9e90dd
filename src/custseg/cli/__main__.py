"""``python -m custseg.cli``: the same command line as ``custseg``."""

import sys

from custseg.cli import main

sys.exit(main())
