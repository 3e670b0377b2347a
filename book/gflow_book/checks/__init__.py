"""The self-checks of the book's exercises, one ``check_*`` per exercise.

Each compares the learner's function with ``gflow_lite`` on random and edge-case inputs and prints
PASS, FAIL (with a hint that gets more concrete on repeated failures), ANSWERED BY CALLING THE LIBRARY
or NOT DONE YET; it returns True only on PASS and never raises (see `core`).
"""

import importlib
from typing import Any

from .core import CheckResult, Status, reset_attempts, results

#: where each check lives; imported on first use, so that a chapter loads only the checks it needs
_WHERE = {
    "check_uniform_loss": "welcome",
    "check_next_token_blocks": "welcome",
    "check_plucker_coordinates": "geometry",
    "check_lagrange_norm": "geometry",
    "check_on_grassmannian": "geometry",
    "check_causal_attention": "geometry",
    "check_plucker_features": "geometry",
    "check_fast_partner": "layer",
    "check_dependency_matrix": "layer",
    "mean_normalized_wedge": "layer",
    "check_grassmann_layer": "layer",
    "check_receptive_field": "model",
    "check_grassmann_param_count": "model",
    "check_causal_block": "model",
    "check_scheduled_adamw_step": "model",
    "check_paper_projection_flops": "complexity",
    "check_crossover_length": "complexity",
    "check_grassmann_cache_bytes": "complexity",
    "check_ratio_and_spread": "wikitext2",
    "check_split_perplexity": "wikitext2",
    "check_training_budget": "wikitext2",
    "check_pair_validity_mask": "snli",
    "check_plucker_width": "snli",
    "check_matching_features": "snli",
    "check_pair_sine": "trained",
    "check_ablation_weights": "trained",
    "check_plane_angles": "trained",
}

__all__ = ["CheckResult", "Status", "results", "reset_attempts", *_WHERE]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
