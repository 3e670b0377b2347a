"""``python -m gflow_lite.bench NAME ...``: see `gflow_lite.bench.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
