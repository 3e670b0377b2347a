"""Benchmark configurations are frozen dataclasses; ``--set key=value`` overrides a field by its type.

The parser is the package's one `gflow_lite.options` (shared with ``train`` and ``compare``).
"""

from __future__ import annotations

from ..options import config_dict, override, parse_assignments

__all__ = ["override", "parse_assignments", "config_dict"]
