"""Render the tables of issue 22's closing note from the fair comparison's results files.

    python scripts/fair_tables.py            # write results/wikitext2/fair/RESULTS.md and print it
    python scripts/fair_tables.py --print    # print only

The plan and the results are read, and the tables rendered, by `gflow_lite.experiments.fair`
(`load_plan`, `collect`, `render`: a pure function of the plan and the results, holding no date or commit,
so the same files always give the same text); the decision rule is the one stated in
``results/wikitext2/fair/README.md``. This script only writes the file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gflow_lite.experiments import fair  # noqa: E402

FAIR = ROOT / "results" / "wikitext2" / "fair"
OUT_NAME = "RESULTS.md"


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--print", dest="only_print", action="store_true", help="print only; write no file")
    a = ap.parse_args(argv)
    try:
        plan = fair.load_plan(FAIR)
        text = fair.render(plan, fair.collect(plan, FAIR))
    except fair.FairPlanError as err:
        raise SystemExit(str(err)) from None
    if not a.only_print:
        (FAIR / OUT_NAME).write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
