"""Run the test suite under one Python/torch pair and record the outcome in results/compat/versions.json.

The supported versions that README states are the ones recorded here: each entry says which Python and
torch ran which tests, on what platform, at which commit, how long it took and pytest's summary line.

    python scripts/compat_check.py --python /path/to/venv/bin/python             # non-slow tests
    python scripts/compat_check.py --python /path/to/venv/bin/python --tests tests/test_numerics.py ...

The interpreter given must have gflow_lite installed from this checkout (``pip install -e ".[book,test,
snli,native]"``) with the torch to be tested. The tests run on the CPU (``CUDA_VISIBLE_DEVICES=""``), from
the repository root. An entry for the same Python, torch and test selection replaces the older one. The
exit status is pytest's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "compat" / "versions.json"
DEFAULT_PYTEST = ["-m", "not slow", "-q", "-rf", "-p", "no:cacheprovider", "tests"]
SUMMARY_RE = re.compile(r"^=*\s*(\d+ (passed|failed|error|errors|skipped|deselected|xfailed|xpassed)\b.*?)\s*=*$")

PROBE = r"""
import json, platform, sys, torch
print(json.dumps({"python": platform.python_version(), "torch": torch.__version__,
                  "torch_cuda": torch.version.cuda, "platform": platform.platform(),
                  "machine": platform.machine(), "implementation": platform.python_implementation()}))
"""


def probe(python: str) -> Dict[str, str]:
    """Python, torch and platform of the interpreter ``python``."""
    out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    return json.loads(out.stdout.strip().splitlines()[-1])


def git_commit() -> str:
    """HEAD when the run starts, ``+dirty`` when the code, tests or book differ from it (the tests run on the
    working tree)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "gflow_lite", "tests", "book", "pyproject.toml"],
                           cwd=ROOT).returncode != 0
    return head + ("+dirty" if dirty else "")


def summary_line(output: str) -> str:
    """pytest's closing summary (``N passed, M skipped in T s``), or the last line if there is none."""
    for line in reversed(output.strip().splitlines()):
        m = SUMMARY_RE.match(line.strip())
        if m:
            return m.group(1)
    return output.strip().splitlines()[-1] if output.strip() else "(no output)"


def record(entry: Dict, path: Path = OUT) -> List[Dict]:
    """Add ``entry`` to the file, replacing an older one for the same Python, torch and test selection."""
    runs = json.loads(path.read_text())["runs"] if path.is_file() else []
    key = (entry["python"], entry["torch"], entry["pytest_args"])
    runs = [r for r in runs if (r["python"], r["torch"], r["pytest_args"]) != key] + [entry]
    runs.sort(key=lambda r: (tuple(int(x) for x in re.findall(r"\d+", r["python"])[:2]), r["torch"], r["pytest_args"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"about": "Test runs per Python/torch pair, written by scripts/compat_check.py; "
                                         "README's supported versions are these.", "runs": runs},
                               indent=1) + "\n")
    return runs


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter to test with (default: this one)")
    parser.add_argument("--tests", nargs="+", metavar="PATH",
                        help="test files to run instead of the whole non-slow tier (-m 'not slow' still applies)")
    parser.add_argument("--note", default="", help="a remark stored with the entry (how torch was installed)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    pytest_args = DEFAULT_PYTEST[:-1] + args.tests if args.tests else DEFAULT_PYTEST
    info = probe(args.python)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "GFLOW_QUICK": "1", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg",
           "PYTHONHASHSEED": "0"}
    print(f"compat_check: Python {info['python']}, torch {info['torch']}: pytest {' '.join(pytest_args)}", flush=True)
    commit, date = git_commit(), dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    start = time.monotonic()
    proc = subprocess.run([args.python, "-m", "pytest", *pytest_args], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    wall = time.monotonic() - start
    output = proc.stdout + proc.stderr
    print(output[-4000:])
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, flags=re.M)))
    entry = {**info, "pytest_args": " ".join(pytest_args), "summary": summary_line(proc.stdout),
             "failed": failed, "exit_status": proc.returncode, "wall_s": round(wall, 1),
             "date": date, "commit": commit,
             "note": args.note}
    record(entry, args.out)
    print(f"compat_check: {entry['summary']} ({wall:.0f} s) -> {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
