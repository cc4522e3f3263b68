"""``python -m bench``: run every measurement and print the results table."""

import sys

from bench.run import main

# Guarded: the bulk transform's worker processes import this module again.
if __name__ == "__main__":
    sys.exit(main())
