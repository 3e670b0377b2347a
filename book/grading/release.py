"""``python -m grading.release --out DIR``: the book as students get it (``make student-release OUT=DIR``).

What is left out: the reference solutions (``book/solutions``), this folder (the grader and its hidden
tests), the instructors' page and its answers, the ``GFLOW_SOLUTIONS`` switch
(``gflow_book/solution_switch.py``), the test suite (it runs the solutions) and the book's build notes.
What changes: every chapter's Colab badge and Colab cell, and the site's Colab/Binder launch buttons,
point at the student repository and branch (``student_release`` in ``book/_config.yml``, or
``--repo``/``--branch``); the table of contents drops the instructors' page; each check's last hint, the one
that spells out the code, is removed. A marker file recognises a folder written by this command, so a
later release may replace it; any other non-empty folder is refused, never overwritten.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import yaml

BOOK = Path(__file__).resolve().parents[1]
ROOT = BOOK.parent
MARKER = ".gflow-student-release"

#: paths (relative to the repository root) that never reach students
LEFT_OUT = ("book/solutions/", "book/grading/", "book/instructors.md", "book/gflow_book/solution_switch.py",
            "book/README.md", "tests/", ".ci/", "book/_build/")


class ReleaseError(Exception):
    """One line: what is wrong and how to fix it."""


def _load_sync():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gflow_book_sync_release", BOOK / "sync.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def source_files() -> List[str]:
    """The repository's files as git knows them (tracked, and new files not ignored)."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as err:
        raise ReleaseError(f"cannot list the repository's files with git ({err}); run from a git checkout") from None
    return sorted(f for f in out.split("\0") if f and (ROOT / f).is_file())


def strip_last_hints(source: str) -> str:
    """Remove the last element of every ``hint=[...]`` list of two or more hints (the one with the code)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))

    def pos(lineno, col):
        return offsets[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode())

    cuts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "hint" and isinstance(kw.value, ast.List) and len(kw.value.elts) >= 2:
                    prev, last = kw.value.elts[-2], kw.value.elts[-1]
                    cuts.append((pos(prev.end_lineno, prev.end_col_offset), pos(last.end_lineno, last.end_col_offset)))
    for start, end in sorted(cuts, reverse=True):
        source = source[:start] + source[end:]
    ast.parse(source)
    return source


def release(out: Path, repo_url: Optional[str] = None, branch: Optional[str] = None, log=print) -> Path:
    out = out.resolve()
    if out == ROOT or ROOT in out.parents and not str(out.relative_to(ROOT)).startswith(("build", "dist")):
        raise ReleaseError(f"OUT={out} is inside the repository; choose a folder outside it")
    if out.exists():
        if not out.is_dir():
            raise ReleaseError(f"OUT={out} is a file; choose a new or empty folder")
        if any(out.iterdir()):
            if not (out / MARKER).is_file():
                raise ReleaseError(f"OUT={out} is not empty and is not a student release written by this command; "
                                   f"choose a new or empty folder")
            for child in out.iterdir():  # a previous release of ours: replaced
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    student = dict(config.get("student_release") or {})
    url = (repo_url or student.get("url") or "").rstrip("/")
    branch = branch or student.get("branch") or "main"
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ReleaseError(f"the student repository {url!r} must look like https://github.com/OWNER/NAME "
                           f"(student_release.url in book/_config.yml, or STUDENT_REPO=...)")
    files = [f for f in source_files() if not f.startswith(LEFT_OUT)]
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, out / f)
    book = out / "book"
    # the one setting: the student repository, for the Colab cells and badges and the launch buttons
    cfg_text = (book / "_config.yml").read_text()
    cfg_text = re.sub(r"(?m)^repository:\n  url: .*\n  path_to_book: (.*)\n  branch: .*\n",
                      lambda m: f"repository:\n  url: {url}\n  path_to_book: {m.group(1)}\n  branch: {branch}\n",
                      cfg_text)
    # drop the instructor-side setting block only (comment lines, the key and its indented lines)
    cfg_text = re.sub(r"(?m)^# THE student-release setting:.*\n(?:#.*\n)*student_release:\n(?:  .*\n)+\n?", "",
                      cfg_text)
    (book / "_config.yml").write_text(cfg_text)
    check = yaml.safe_load(cfg_text)["repository"]
    if check["url"] != url or check["branch"] != branch:
        raise ReleaseError("book/_config.yml's repository section has an unexpected layout; the release cannot set it")
    toc = book / "_toc.yml"
    toc.write_text("".join(ln for ln in toc.read_text().splitlines(keepends=True) if "file: instructors" not in ln))
    index = book / "index.md"
    index.write_text(index.read_text().replace(", and a page [for instructors](instructors.md)", ""))
    sync = _load_sync()
    repo = {"url": url, "slug": url.split("github.com/")[1], "branch": branch,
            "path_to_book": check.get("path_to_book", "book")}
    for py in sorted(book.glob(sync.CHAPTER_GLOB)):
        text = py.read_text().replace("(Answers for instructors are on the instructors' page.)",
                                      "(Your instructor has the answers.)")
        text, problems = sync.with_colab_bits(text, py.stem, repo)
        if any("needs exactly one" in p for p in problems):
            raise ReleaseError(f"{py.name}: {problems[0]}")
        py.write_text(text)
        py.with_suffix(".ipynb").write_text(sync.render_notebook(text))
    for checks in sorted((book / "gflow_book" / "checks").glob("*.py")):
        checks.write_text(strip_last_hints(checks.read_text()))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    (out / MARKER).write_text(json.dumps({"repository": url, "branch": branch, "from_commit": commit}) + "\n")
    log(f"student release written to {out} ({len(files)} files; Colab and Binder point at {url} @ {branch}); "
        f"build its site with: jupyter-book build {book}")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.release", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="the folder to write (new, empty, or a previous release)")
    parser.add_argument("--repo", help="the student repository URL (default: student_release.url in book/_config.yml)")
    parser.add_argument("--branch", help="its branch (default: student_release.branch)")
    args = parser.parse_args(argv)
    try:
        release(args.out, args.repo, args.branch)
    except ReleaseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
