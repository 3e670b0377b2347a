"""``python -m gflow_lite.nli``: see `gflow_lite.nli.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
