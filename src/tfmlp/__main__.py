"""``python -m tfmlp`` runs the command line."""

import sys

from tfmlp._cli import main

sys.exit(main())
