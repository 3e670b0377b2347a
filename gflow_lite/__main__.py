"""``python -m gflow_lite``: see `gflow_lite.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
