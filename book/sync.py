"""Keep the book's chapters consistent: `python book/sync.py` (write) or `python book/sync.py --check`.

The chapter sources are the jupytext ``py:percent`` files ``book/NN_topic.py``. This script

1. writes, in every chapter, the Colab badge and the Colab set-up cell from ONE setting, the
   ``repository`` section of ``book/_config.yml`` (url, branch, path_to_book); the Colab cell clones that
   repository, pip-installs it and works from its book folder (the chapters' support code);
2. regenerates each paired ``book/NN_topic.ipynb`` from its ``.py``: output-free, ``execution_count``
   null, kernelspec ``python3``, and deterministic cell ids (so that regenerating an unchanged chapter
   changes no byte).

``--check`` changes nothing and exits 1 listing every chapter that is out of date (the test suite runs
the same check). Adding a chapter: write ``book/NN_topic.py`` with a badge line and a colab-setup cell
(copy the two markers from any chapter), run ``make notebooks``, add one line to ``book/_toc.yml``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import jupytext
import nbformat
import yaml

BOOK = Path(__file__).resolve().parent
CHAPTER_GLOB = "[0-9][0-9]_*.py"

BADGE_RE = re.compile(r"^# \[!\[Open In Colab\]\(.*$", re.M)
COLAB_MARKER = "# colab-setup"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def chapters() -> List[Path]:
    """The chapter sources, in order."""
    return sorted(BOOK.glob(CHAPTER_GLOB))


def repository() -> Dict[str, str]:
    """``repository`` of ``_config.yml``: url (https://github.com/OWNER/NAME), branch, path_to_book."""
    cfg = yaml.safe_load((BOOK / "_config.yml").read_text())["repository"]
    url = cfg["url"].rstrip("/")
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(\.git)?", url)
    if not m:
        raise ValueError(f"book/_config.yml repository.url={url!r} must look like https://github.com/OWNER/NAME")
    return {"url": url, "slug": f"{m.group(1)}/{m.group(2)}", "branch": cfg.get("branch", "main"),
            "path_to_book": cfg.get("path_to_book", "book").strip("/")}


def colab_url(stem: str, repo: Dict[str, str] | None = None) -> str:
    """Colab's address of the committed notebook ``<path_to_book>/<stem>.ipynb`` on the configured branch."""
    repo = repo or repository()
    return (f"https://colab.research.google.com/github/{repo['slug']}/blob/{repo['branch']}/"
            f"{repo['path_to_book']}/{stem}.ipynb")


#: The badge image: the standard one at its absolute address, so that it shows wherever the notebook is
#: opened on its own (Colab, GitHub, Jupyter; a relative path is a broken image inside Colab). The website
#: serves its local copy instead (book/_ext/colab_badge.py swaps the address for book/_static/colab-badge.svg
#: when the book is built), so the site still loads no image from the network.
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"


def badge_line(stem: str, repo: Dict[str, str] | None = None) -> str:
    return f"# [![Open In Colab]({BADGE_IMAGE})]({colab_url(stem, repo)})"


#: Where the Colab cell clones the repository (Colab's working folder is /content).
COLAB_HOME = "/content/gflow_lite"


def colab_cell(repo: Dict[str, str] | None = None) -> str:
    """The body of the first code cell: on Colab only, clone the repository, pip-install it (never touching
    Colab's torch) and work from its book folder, where the chapters' support package ``gflow_book`` lives.

    The same commands run anywhere the notebook is opened alone (tests/test_wheel.py runs them in a fresh
    virtual environment against a local clone, with ``google.colab`` simulated).
    """
    repo = repo or repository()
    return "\n".join([
        f"{COLAB_MARKER} (written by book/sync.py from book/_config.yml: edit it there)",
        "import os, subprocess, sys",
        'if "google.colab" in sys.modules:  # Colab only; Colab keeps its own torch',
        f'    GFLOW_REPO, GFLOW_BRANCH = "{repo["url"]}", "{repo["branch"]}"',
        f'    GFLOW_HOME = "{COLAB_HOME}"',
        '    if not os.path.isdir(GFLOW_HOME):',
        '        subprocess.run(["git", "clone", "--depth", "1", "--branch", GFLOW_BRANCH,',
        '                        GFLOW_REPO, GFLOW_HOME], check=True)',
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", GFLOW_HOME],',
        '                   check=True)',
        f'    GFLOW_BOOK = os.path.join(GFLOW_HOME, "{repo["path_to_book"]}")',
        '    sys.path[:0] = [GFLOW_BOOK, GFLOW_HOME]  # the book\'s support code, the package',
        '    os.chdir(GFLOW_BOOK)',
    ])


def with_colab_bits(text: str, stem: str, repo: Dict[str, str] | None = None) -> Tuple[str, List[str]]:
    """``text`` with its badge line and colab-setup cell rewritten; also the problems found (for --check)."""
    repo = repo or repository()
    problems = []
    badges = BADGE_RE.findall(text)
    if len(badges) != 1:
        problems.append(f"{stem}: needs exactly one Colab badge line starting '# [![Open In Colab](', found {len(badges)}")
    elif badges[0] != badge_line(stem, repo):
        problems.append(f"{stem}: Colab badge does not match book/_config.yml repository")
    text = BADGE_RE.sub(lambda _: badge_line(stem, repo), text)
    cells = re.split(r"(?m)^(?=# %%)", text)
    hits = [k for k, c in enumerate(cells) if c.split("\n", 1)[1:] and c.split("\n", 1)[1].startswith(COLAB_MARKER)]
    if len(hits) != 1:
        problems.append(f"{stem}: needs exactly one code cell starting with '{COLAB_MARKER}', found {len(hits)}")
    else:
        k = hits[0]
        header = cells[k].split("\n", 1)[0]
        want = f"{header}\n{colab_cell(repo)}\n\n"
        if header != '# %% tags=["remove-cell"]':
            problems.append(f"{stem}: the colab-setup cell must be tagged remove-cell")
        if cells[k] != want:
            if cells[k].rstrip() != want.rstrip():
                problems.append(f"{stem}: the colab-setup cell differs from the one book/sync.py writes")
            cells[k] = want
    return "".join(cells), problems


def _cell_id(cell: dict, seen: set) -> str:
    digest = hashlib.sha1((cell["cell_type"] + "\0" + cell["source"]).encode()).hexdigest()[:8]
    cid, n = digest, 1
    while cid in seen:
        cid, n = f"{digest}-{n}", n + 1
    seen.add(cid)
    return cid


def render_notebook(py_text: str) -> str:
    """The committed form of a chapter's notebook (JSON text) from its ``py:percent`` source."""
    nb = jupytext.reads(py_text, fmt="py:percent")
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"},
                   "jupytext": {"formats": "ipynb,py:percent"}}
    seen: set = set()
    for cell in nb.cells:
        cell["id"] = _cell_id(cell, seen)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        keep = {k: v for k, v in cell.get("metadata", {}).items() if k == "tags"}
        cell["metadata"] = keep
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def sync(check: bool) -> List[str]:
    """Rewrite (or, with ``check``, only inspect) every chapter and its notebook; return the problems."""
    repo = repository()
    problems: List[str] = []
    for py in chapters():
        text = py.read_text()
        fixed, found = with_colab_bits(text, py.stem, repo)
        notebook = render_notebook(fixed)
        ipynb = py.with_suffix(".ipynb")
        if check:
            problems += found
            if not ipynb.exists():
                problems.append(f"{py.stem}: {ipynb.name} is missing")
            elif ipynb.read_text() != notebook:
                problems.append(f"{py.stem}: {ipynb.name} is not the notebook generated from {py.name}")
            continue
        hard = [p for p in found if "needs exactly one" in p or "remove-cell" in p]
        if hard:
            problems += hard
            continue
        if fixed != text:
            py.write_text(fixed)
        if not ipynb.exists() or ipynb.read_text() != notebook:
            ipynb.write_text(notebook)
            print(f"wrote {ipynb.relative_to(BOOK.parent)}")
    return problems


def execution_times(build_dir: Path) -> List[Tuple[str, float | None, bool]]:
    """(chapter, seconds, succeeded) per executed page of a Jupyter Book 1 build, from what myst-nb
    records in the Sphinx environment (``<build>/.doctrees/environment.pickle``); [] if there is none."""
    import pickle

    env_file = Path(build_dir) / ".doctrees" / "environment.pickle"
    if not env_file.is_file():
        return []
    with open(env_file, "rb") as handle:
        env = pickle.load(handle)
    rows = []
    for docname, data in sorted(getattr(env, "nb_metadata", {}).items()):
        exec_data = data.get("exec_data")
        if exec_data:
            rows.append((docname, exec_data.get("runtime"), bool(exec_data.get("succeeded"))))
    return rows


def print_times(build_dir: Path) -> None:
    """The per-chapter execution table `make book` prints after the build."""
    rows = execution_times(build_dir)
    if not rows:
        print(f"no execution times recorded under {build_dir} (did the build run?)")
        return
    width = max(len(name) for name, _, _ in rows)
    print(f"{'chapter':<{width}}  seconds  status")
    for name, seconds, ok in rows:
        shown = f"{seconds:7.1f}" if seconds is not None else "      ?"
        print(f"{name:<{width}}  {shown}  {'ok' if ok else 'FAILED'}")
    total = sum(s for _, s, _ in rows if s is not None)
    print(f"{'total':<{width}}  {total:7.1f}")


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    parser.add_argument("--times", metavar="BUILD_DIR", type=Path,
                        help="only print each chapter's execution time in the Jupyter Book build BUILD_DIR "
                             "(e.g. book/_build) and exit")
    args = parser.parse_args(argv)
    if args.times:
        print_times(args.times)
        return 0
    problems = sync(args.check)
    for p in problems:
        print(p, file=sys.stderr)
    if problems and args.check:
        print("run `make notebooks` (python book/sync.py) to regenerate", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
