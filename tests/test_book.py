"""The book: sources and notebooks in sync, Colab wiring, quick mode, and every chapter executed twice.

* static: each committed ``.ipynb`` is exactly what ``book/sync.py`` generates from its ``.py`` (cell by
  cell, output-free, kernelspec python3); badges and Colab cells match ``book/_config.yml``; the toc lists
  the chapters; every chapter keeps its markers;
* solutions run: nbval (lax) executes each chapter with ``GFLOW_SOLUTIONS=1``; every assert cell and the
  final ``exercise.summary()`` (which raises unless all exercises pass) must succeed, within the budget;
* stubs run: the website build executes each chapter as a learner sees it; every exercise must report
  NOT DONE YET on the page.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time

import jupytext
import nbformat
import pytest
import torch
import yaml

from book_support import (BOOK, CHAPTER_BUDGET_S, ROOT, built_book, chapter_ids, chapter_sources,
                          exercise_names, figure_count, jupyter_book_build, notebook_env, run_nbval,
                          sync_module, toc_files)

CHAPTERS = chapter_ids()


def test_there_are_chapters_and_the_toc_lists_exactly_them():
    assert len(CHAPTERS) >= 3, f"expected at least chapters 00-02, found {CHAPTERS}"
    listed = [re.sub(r"\.(ipynb|py|md)$", "", f) for f in toc_files()]
    assert [f for f in listed if re.match(r"\d\d_", f)] == CHAPTERS, (
        "book/_toc.yml must list every book/NN_*.py chapter, in order, as `- file: NN_topic`")
    for stem in CHAPTERS:
        assert (BOOK / f"{stem}.ipynb").is_file(), f"{stem}.ipynb missing: run `make notebooks`"


# ------------------------------------------------------------------------------------- source ↔ notebook
@pytest.mark.parametrize("stem", CHAPTERS)
def test_notebook_matches_its_source(stem):
    sync = sync_module()
    py = BOOK / f"{stem}.py"
    text, problems = sync.with_colab_bits(py.read_text(), stem)
    assert problems == [], problems
    expected = jupytext.reads(text, fmt="py:percent")
    committed = nbformat.read(BOOK / f"{stem}.ipynb", as_version=4)
    exp_cells = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in expected.cells]
    got_cells = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in committed.cells]
    assert len(got_cells) == len(exp_cells), f"{stem}: {len(got_cells)} cells in .ipynb, {len(exp_cells)} in .py"
    for k, (got, exp) in enumerate(zip(got_cells, exp_cells)):
        assert got == exp, f"{stem}.ipynb cell {k} differs from {stem}.py; run `make notebooks`"
    # and byte for byte what the generator writes (ids, metadata, formatting)
    assert (BOOK / f"{stem}.ipynb").read_text() == sync.render_notebook(text), "run `make notebooks`"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_committed_notebook_is_output_free_with_python3_kernel(stem):
    nb = nbformat.read(BOOK / f"{stem}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for k, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{stem}.ipynb cell {k} carries outputs: run `make notebooks`"
            assert cell.execution_count is None, f"{stem}.ipynb cell {k} has an execution count"


def test_sync_generates_identical_notebooks_twice():
    sync = sync_module()
    py = chapter_sources()[0]
    text, _ = sync.with_colab_bits(py.read_text(), py.stem)
    assert sync.render_notebook(text) == sync.render_notebook(text)


def test_sync_check_command_passes():
    proc = subprocess.run([sys.executable, str(BOOK / "sync.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------------------------------ Colab
def test_repository_setting_is_one_github_url():
    repo = yaml.safe_load((BOOK / "_config.yml").read_text())["repository"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo["url"]), repo["url"]
    assert repo["path_to_book"] == "book"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_colab_badge_and_setup_cell_come_from_the_repository_setting(stem):
    sync = sync_module()
    repo = sync.repository()
    source = (BOOK / f"{stem}.py").read_text()
    badges = re.findall(r"\(https://colab\.research\.google\.com/github/[^)]+\)", source)
    assert badges == [f"({sync.colab_url(stem)})"], f"{stem}: badge must point to its own notebook on {repo['url']}"
    assert sync.colab_url(stem).endswith(f"/{repo['slug']}/blob/{repo['branch']}/book/{stem}.ipynb")
    nb = nbformat.read(BOOK / f"{stem}.ipynb", as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == sync.colab_cell(), f"{stem}: the first code cell must be the colab-setup cell"
    assert "remove-cell" in first_code.metadata.get("tags", [])
    assert 'if "google.colab" in sys.modules' in first_code.source
    assert "torch" not in first_code.source.split("Colab keeps its own torch")[1], "never (re)install torch on Colab"
    assert f'"{repo["url"]}"' in first_code.source


def test_colab_cell_is_a_no_op_outside_colab():
    namespace: dict = {}
    exec(sync_module().colab_cell(), namespace)  # noqa: S102 - our own generated cell
    assert "GFLOW_REPO" not in namespace


# ---------------------------------------------------------------------------------------------- markers
@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_keeps_its_markers(stem):
    source = (BOOK / f"{stem}.py").read_text()
    nb = jupytext.reads(source, fmt="py:percent")
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), f"{stem}: start with a '# title' cell"
    assert "**Learning goals.**" in first.source, f"{stem}: learning goals belong in the first cell"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code[0].startswith("# colab-setup"), f"{stem}: the first code cell must be the colab-setup cell"
    assert code[1].startswith("%matplotlib inline") and "print(describe_mode())" in code[1], (
        f"{stem}: the second code cell must start with %matplotlib inline and print describe_mode()")
    names = exercise_names(source)
    assert len(names) >= 2, f"{stem}: at least two @exercise stubs"
    assert len(set(names)) == len(names)
    for name in names:
        assert re.search(rf"^check_\w+\({name}\)\s*$", source, flags=re.M), f"{stem}: {name} is never checked"
    assert code[-1].strip() == "exercise.summary();", f"{stem}: the last cell must be `exercise.summary();`"
    assert f'chapter_exercises("{stem}")' in source
    assert figure_count(source) >= 1, f"{stem}: at least one figure (ending in plt.show())"
    assert "NBVAL_IGNORE_OUTPUT" not in source and "NBVAL_SKIP" not in source, "no skipped cells"


# ------------------------------------------------------------------------------------------- quick mode
def test_quick_mode_reads_one_variable(monkeypatch):
    from gflow_book import sizing as mode

    for value, quick in (("1", True), ("true", True), (" ON ", True), ("0", False), ("no", False)):
        monkeypatch.setenv("GFLOW_QUICK", value)
        assert mode.quick_mode() is quick
        assert mode.sizes() is (mode.QUICK if quick else mode.FULL)
        assert mode.by_mode("q", "f") == ("q" if quick else "f")
        assert mode.describe_mode().startswith("quick mode" if quick else "full mode")
    monkeypatch.setenv("GFLOW_QUICK", "maybe")
    with pytest.raises(ValueError, match="GFLOW_QUICK"):
        mode.quick_mode()
    monkeypatch.delenv("GFLOW_QUICK")
    for cuda in (True, False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        assert mode.quick_mode() is (not cuda)
        assert ("a CUDA GPU is present" if cuda else "no CUDA GPU") in mode.describe_mode()


def test_sizes_are_frozen_and_quick_is_smaller():
    from dataclasses import FrozenInstanceError

    from gflow_book.sizing import FULL, QUICK

    with pytest.raises(FrozenInstanceError):
        QUICK.steps = 1
    assert QUICK.steps < FULL.steps and QUICK.d_model <= FULL.d_model and QUICK.block_size <= FULL.block_size


# ------------------------------------------------------------------------------- execution: solutions
@pytest.mark.slow
@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_runs_under_nbval_with_solutions(stem):
    """Every cell runs, every assert holds, and every exercise passes with its reference solution."""
    start = time.perf_counter()
    proc = run_nbval(BOOK / f"{stem}.ipynb", solutions=True)
    seconds = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"nbval failed on {stem} (GFLOW_SOLUTIONS=1):\n{out[-8000:]}"
    assert re.search(r"\d+ passed", out) and "failed" not in out.splitlines()[-1]
    print(f"{stem}: {seconds:.1f} s (nbval, quick mode, solutions)")
    assert seconds < CHAPTER_BUDGET_S, (
        f"{stem} took {seconds:.0f} s, over the {CHAPTER_BUDGET_S:.0f} s budget (contract: 90 s on 2 cores)")


# ------------------------------------------------------------------------------------ execution: stubs
@pytest.mark.slow
def test_book_builds_and_every_stub_reports_not_done_yet():
    html = built_book().require()
    for stem, source in ((p.stem, p.read_text()) for p in chapter_sources()):
        page = (html / f"{stem}.html").read_text()
        names = exercise_names(source)
        summary = re.search(r"exercises in (\w+): (\d+) \| passed (\d+) \| failed (\d+) \| not done yet (\d+) "
                            r"\| not checked (\d+)", page)
        assert summary, f"{stem}: the exercise summary line is missing from the built page"
        chapter, total, passed, failed, not_done, unchecked = summary.groups()
        assert chapter == stem and int(total) == len(names)
        assert (int(passed), int(failed), int(not_done), int(unchecked)) == (0, 0, len(names), 0), summary.group(0)
        for name in names:
            assert f"] {name}: NOT DONE YET" in page, f"{stem}: the check of {name} did not report NOT DONE YET"
        assert "Traceback" not in page and ": FAIL." not in page
        assert "quick mode (GFLOW_QUICK=1)" in page, f"{stem}: the page must say which mode ran"


@pytest.mark.slow
def test_the_build_fails_when_a_cell_fails(tmp_path):
    """The website build is a real execution test: a raising cell must fail it (JB1 needs -W for that)."""
    src = tmp_path / "book"
    src.mkdir()
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    config = {key: config[key] for key in ("title", "execute", "only_build_toc_files")}
    (src / "_config.yml").write_text(yaml.safe_dump(config))
    (src / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n  - file: broken\n")
    (src / "index.md").write_text("# index\n")
    nb = jupytext.reads("# %% [markdown]\n# # broken\n\n# %%\nraise RuntimeError('boom')\n", fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, src / "broken.ipynb")
    proc = jupyter_book_build(src, tmp_path / "out", notebook_env(solutions=False), timeout=600)
    assert proc.returncode != 0, "jupyter-book build succeeded although a cell raised"
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_solutions_are_not_part_of_the_website():
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert config["only_build_toc_files"] is True
    assert config["execute"]["execute_notebooks"] in ("force", "cache")
    assert config["execute"]["allow_errors"] is False
    assert not any("solutions" in f for f in toc_files())
    assert json.loads(json.dumps(config))  # plain data
    assert ROOT.joinpath("book", "README.md").is_file()
