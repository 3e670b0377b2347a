"""Book support for the gflow_lite book: what the chapters need and the library does not.

* `sizing`: quick or full mode (``GFLOW_QUICK``) and the sizes of the book's small demonstrations;
* `demo_training`: the short training loop of the chapters' small runs (chapter 3 writes it out);
* `exercises`: the ``@exercise`` decorator of a chapter, its reference solutions (``book/solutions``,
  beside this package) and the chapter's summary line;
* `checks`: one self-check per exercise;
* `counterexamples`: what the library must never be (the leaky, future-pairing layer);
* `results` and `published_runs`: our committed results (``results/``) read and verified, and the published
  runs they are set beside (``data/published.csv``); chapter 5 and ``scripts/report_tables.py`` use them.

Chapters run with the book's folder as the current directory, so ``import gflow_book`` finds this
package; nothing in ``gflow_lite`` imports it.
"""

from .exercises import chapter_exercises, solutions_enabled
from .sizing import by_mode, describe_mode, quick_mode, sizes

__all__ = ["chapter_exercises", "solutions_enabled", "describe_mode", "quick_mode", "sizes", "by_mode"]
