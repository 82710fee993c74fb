"""`python -m gossip` runs the command line."""

import sys

from gossip.cli import main

sys.exit(main())
