"""Experiments built on the training utilities: the WikiText-2 comparison and its ablations."""

from .compare import CompareSpec, aggregate, run_compare

__all__ = ["CompareSpec", "aggregate", "run_compare"]
