"""Self-checking exercises for the book, and the small helpers its chapters share.

Each chapter ends with exercises: a stub the learner fills in (it raises ``NotImplementedError``) and a
``check_*`` function from here that compares the learner's function with the library on random and edge
inputs, prints PASS / FAIL (with a hint) / NOT DONE YET, and returns a bool. Reference solutions live in
``book/solutions/<chapter>.py`` and replace the stubs under ``GFLOW_SOLUTIONS=1`` (see `solutions`).

Also here: `playground` (a minimal training loop and toy tasks for the chapters' demonstrations) and
`counterexamples` (the leaky future-pairing layer the library must never be).
"""

from ._core import CheckResult, Status, results
from .complexity import check_crossover_length, check_grassmann_cache_bytes, check_paper_projection_flops
from .counterexamples import leaky_mixing
from .experiments import check_ratio_and_spread, check_split_perplexity, check_training_budget
from .geometry import check_lagrange_norm, check_on_grassmannian, check_plucker_coordinates
from .layer import check_dependency_matrix, check_fast_partner, check_receptive_field, mean_normalized_wedge
from .playground import TrainLog, evaluate_lm, random_token_batches, train_lm
from .snli import check_matching_features, check_pair_validity_mask, check_plucker_width
from .solutions import ChapterExercises, chapter_exercises, load_solutions, solutions_dir, solutions_enabled
from .trained import check_ablation_weights, check_pair_sine, check_plane_angles
from .welcome import check_next_token_blocks, check_uniform_loss

__all__ = [
    "CheckResult",
    "Status",
    "results",
    "ChapterExercises",
    "chapter_exercises",
    "load_solutions",
    "solutions_dir",
    "solutions_enabled",
    "check_uniform_loss",
    "check_next_token_blocks",
    "check_plucker_coordinates",
    "check_lagrange_norm",
    "check_on_grassmannian",
    "check_receptive_field",
    "check_fast_partner",
    "check_dependency_matrix",
    "check_paper_projection_flops",
    "check_crossover_length",
    "check_grassmann_cache_bytes",
    "check_pair_validity_mask",
    "check_plucker_width",
    "check_matching_features",
    "check_pair_sine",
    "check_ablation_weights",
    "check_plane_angles",
    "mean_normalized_wedge",
    "leaky_mixing",
    "TrainLog",
    "train_lm",
    "evaluate_lm",
    "random_token_batches",
]
