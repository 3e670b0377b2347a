"""Old name of `gflow_lite.experiments.results`, kept until chapter 5 and the book checks import that."""

from .results import *  # noqa: F401,F403
from .results import __all__  # noqa: F401
