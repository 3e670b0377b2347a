"""Launch anywhere: the installed package away from the clone, and the Colab route.

* fast: the data-only packages of pyproject.toml match the resolver (gflow_lite/data/paths.py); in the
  clone, data and results resolve to ``<repo>/data`` and ``<repo>/results``; every "not found" message
  names its override variable and the fix for a pip install and for a clone; every Colab badge and launch
  link comes from the one configured repository URL and points at a notebook that exists;
* slow, the wheel: build it (and the sdist) from a copy of the working tree, check that they carry the
  data and the results, install the wheel into a fresh virtual environment OUTSIDE the checkout and, from
  a temporary directory, run ``train``/``eval``/``generate`` and execute chapters 0 and 1 (quick mode,
  from a copy of book/) against the installed package, never the clone's;
* slow, the Colab route: a fresh virtual environment plays Colab (``google.colab`` present, working folder
  ``content/``); the chapter's Colab set-up cell runs as committed, with the repository URL replaced by a
  ``file://`` clone of this repository's HEAD, then the chapter's first cells.

The fresh environments have no pip packages of their own: they borrow the third-party dependencies
(torch from the Makefile's pin, numpy, Jupyter, ...) from the test runner's environment through a path
entry in a ``.pth`` file. A plain path entry does not run the ``.pth`` hooks of that folder, so the
runner's editable ``gflow_lite`` stays invisible; gflow_lite comes only from the wheel (or, for Colab,
from the clone). Everything runs offline (``--no-index``, no build isolation).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Dict, List

import nbformat
import pytest
import yaml

from gflow_lite.data import paths
from gflow_lite.data.errors import DataFileMissingError

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTER_GLOB = "[0-9][0-9]_*"
RESULT_SUFFIXES = {".json", ".jsonl", ".png", ".md"}
PROBE = "GFLOW_WHERE "


def _sync():
    sys.path.insert(0, str(BOOK))
    try:
        import sync  # noqa: PLC0415 - book/sync.py, the generator of badges and Colab cells
    finally:
        sys.path.remove(str(BOOK))
    return sync


# ------------------------------------------------------------------------------------------ fast: resolver
def test_data_packages_are_the_ones_pyproject_installs():
    setuptools_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools_cfg["package-dir"] == paths.SOURCE_FOLDERS
    assert set(setuptools_cfg["package-data"]) == set(paths.SOURCE_FOLDERS) | {"gflow_lite.kernels"}  # + csrc/*.cpp


def test_clone_resolves_data_and_results_through_the_install(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(paths.RESULTS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.data_dir() == ROOT / "data"
    assert paths.results_dir() == ROOT / "results"
    monkeypatch.setenv(paths.RESULTS_DIR_ENV, str(tmp_path))
    assert paths.results_dir() == tmp_path.resolve()


def test_not_found_messages_name_the_override_and_both_fixes(monkeypatch):
    monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(paths.RESULTS_DIR_ENV, raising=False)
    monkeypatch.setattr(paths, "PACKAGE_DATA_DIR", None)
    monkeypatch.setattr(paths, "_shipped", lambda package: None)
    with pytest.raises(DataFileMissingError) as data_info:
        paths.data_dir()
    with pytest.raises(paths.ResultsNotFoundError) as results_info:
        paths.results_dir()
    for info, env in ((data_info, "GFLOW_DATA_DIR"), (results_info, "GFLOW_RESULTS_DIR")):
        message = str(info.value)
        assert env in message
        assert "pip install --force-reinstall gflow_lite" in message, "the fix for a pip install"
        assert "pip install -e ." in message, "the fix in a clone"
        assert "\n" not in message


def test_restore_hints_fit_the_installation(monkeypatch, tmp_path):
    hint = paths.restore_hint("wikitext-2/wiki.valid.tokens.gz", tmp_path)
    assert "GFLOW_DATA_DIR" in hint and "git checkout -- data/wikitext-2/wiki.valid.tokens.gz" in hint
    monkeypatch.setattr(paths, "editable_source", lambda: None)  # as in a wheel install
    hint = paths.restore_hint("SHA256SUMS", paths.PACKAGE_DATA_DIR)
    assert "pip install --force-reinstall gflow_lite" in hint and "git" not in hint


def test_no_repository_layout_guesses():
    assert "parents[" not in (ROOT / "gflow_lite" / "data" / "paths.py").read_text()
    for chapter in sorted(BOOK.glob(f"{CHAPTER_GLOB}.py")):
        text = chapter.read_text()
        assert not re.search(r"__file__\)[\w.()]*\.parents", text), (
            f"{chapter.name}: find results through gflow_lite.data.paths.results_dir(), not the file layout")


# ------------------------------------------------------------------------------ fast: launch links
LINK_RE = re.compile(r"https://(?:colab\.research\.google\.com|mybinder\.org|github\.com)/[^)\s\"'>]+")


def test_every_badge_and_launch_link_comes_from_the_configured_url():
    sync = _sync()
    repo = sync.repository()
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    prefix = f"https://colab.research.google.com/github/{repo['slug']}/blob/{repo['branch']}/"
    chapters = sorted(BOOK.glob(f"{CHAPTER_GLOB}.py"))
    assert chapters
    for source in chapters:
        for path in (source, source.with_suffix(".ipynb")):
            links = [u for u in LINK_RE.findall(path.read_text())
                     if ("colab" in u or repo["slug"] in u) and u != sync.BADGE_IMAGE]
            colab = [u for u in links if "colab.research.google.com" in u]
            assert colab == [sync.colab_url(source.stem)], f"{path.name}: its Colab links {colab}"
            for url in colab:
                assert url.startswith(prefix), f"{path.name}: {url} is not built from {repo['url']}"
                target = url[len(prefix):]
                assert (ROOT / target).is_file(), f"{path.name}: {url} points at {target}, which does not exist"
                assert target in tracked, f"{path.name}: {url} points at {target}, which git does not track"
            for url in links:
                assert repo["slug"] in url, f"{path.name}: {url} does not use the configured repository"
        assert f'"{repo["url"]}"' in sync.colab_cell()


# ------------------------------------------------------------------------------ fast: the badge image
def _badge_extension():
    sys.path.insert(0, str(BOOK / "_ext"))
    try:
        import colab_badge  # noqa: PLC0415 - book/_ext/colab_badge.py, the site's Sphinx hook
    finally:
        sys.path.remove(str(BOOK / "_ext"))
    return colab_badge


def test_notebooks_carry_the_absolute_badge_that_shows_inside_colab():
    """A relative image path is a broken image inside Colab: every chapter (.py and .ipynb) shows the
    standard badge by its absolute address, the one the site's extension swaps for the local copy."""
    sync, ext = _sync(), _badge_extension()
    assert sync.BADGE_IMAGE == ext.REMOTE_BADGE == "https://colab.research.google.com/assets/colab-badge.svg"
    for source in sorted(BOOK.glob(f"{CHAPTER_GLOB}.py")):
        nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
        images = re.findall(r"!\[Open In Colab\]\(([^)]+)\)", nb.cells[0].source)
        assert images == [ext.REMOTE_BADGE], f"{source.stem}.ipynb: badge image {images}"
        assert f"[![Open In Colab]({ext.REMOTE_BADGE})]({sync.colab_url(source.stem)})" in source.read_text()
    assert (BOOK / ext.LOCAL_BADGE).read_bytes().lstrip().startswith(b"<svg"), "the site's copy is an SVG"
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"] == {"colab_badge": "_ext"}, "the site must use the extension"


def _sphinx_build(tmp_path: Path, pages: Dict[str, str]) -> tuple[Path, str]:
    """A small Sphinx/myst-nb site with the book's badge extension, as Jupyter Book configures it."""
    import io

    from sphinx.application import Sphinx

    src, out = tmp_path / "src", tmp_path / "out"
    (src / "_static").mkdir(parents=True)
    shutil.copy(BOOK / _badge_extension().LOCAL_BADGE, src / "_static" / "colab-badge.svg")
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(BOOK / '_ext')!r})\n"
        "extensions = ['myst_nb', 'colab_badge']\nnb_execution_mode = 'off'\nhtml_static_path = ['_static']\n")
    for name, text in pages.items():
        (src / name).write_text(text)
    toc = "\n".join(Path(n).stem for n in pages)
    (src / "index.md").write_text(f"# Site\n\n```{{toctree}}\n{toc}\n```\n")
    warnings = io.StringIO()
    app = Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html", status=None,
                 warning=warnings, freshenv=True)
    app.build()
    return out, warnings.getvalue()


def test_site_serves_the_badge_from_its_own_files(tmp_path):
    """Chapter 0's badge cell, built as the site builds it: the page's image is the local copy in the
    build, not the network address; an image on the network elsewhere is a warning (an error under -W)."""
    ext = _badge_extension()
    nb = nbformat.read(BOOK / "00_welcome.ipynb", as_version=4)
    nb.cells = nb.cells[:1]
    remote = "https://example.org/figure.png"
    out, warnings = _sphinx_build(tmp_path, {"chapter.ipynb": nbformat.writes(nb),
                                             "other.md": f"# Other\n\n![a figure]({remote})\n"})
    page = (out / "chapter.html").read_text()
    srcs = re.findall(r'<img[^>]*alt="Open In Colab"[^>]*src="([^"]+)"|<img[^>]*src="([^"]+)"[^>]*alt="Open In Colab"',
                      page)
    srcs = [a or b for a, b in srcs]
    assert len(srcs) == 1, f"one badge image expected on the page, found {srcs}"
    assert "://" not in srcs[0] and ext.REMOTE_BADGE not in page, f"the page loads the badge from {srcs[0]}"
    assert (out / srcs[0]).read_bytes() == (BOOK / ext.LOCAL_BADGE).read_bytes()
    assert f'href="{_sync().colab_url("00_welcome")}"' in page, "the badge still links to Colab"
    flagged = [line for line in warnings.splitlines() if "from the network" in line]
    assert len(flagged) == 1 and "other.md" in flagged[0] and remote in flagged[0], warnings


# ------------------------------------------------------------------------------ slow: helpers
def _source_copy(dest: Path) -> Path:
    """The working tree's files (tracked and untracked, not ignored) copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _fresh_venv(where: Path) -> Path:
    """A virtual environment without packages of its own that borrows the runner's third-party ones."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "gflow_borrowed_deps.pth").write_text("".join(f"{p}\n" for p in sorted(borrowed)))
    return python


def _clean_env(venv_python: Path, home: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "MPLBACKEND", "GFLOW_SOLUTIONS"} and not k.startswith("GFLOW_")}
    env.update(PATH=f"{venv_python.parent}{os.pathsep}{env.get('PATH', '')}", GFLOW_QUICK="1",
               TQDM_DISABLE="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0", PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", GFLOW_CACHE_DIR=str(home / "cache"),
               JUPYTER_PATH=str(home / "jupyter"), JUPYTER_PLATFORM_DIRS="1")
    # the kernel of every notebook run is this environment's python, whatever else is installed
    spec = home / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(venv_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (fresh venv)", "language": "python"}))
    return env


def _run(cmd: List[str], cwd: Path, env: Dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


PROBE_CELL = (
    "import json, os, sys\nimport gflow_lite\nfrom gflow_lite.data import paths\n"
    "print('GFLOW_WHERE ' + json.dumps({'gflow_lite': gflow_lite.__file__, 'python': sys.executable,\n"
    "      'data': str(paths.data_dir()), 'cwd': os.getcwd(),\n"
    "      'results': str(paths.results_dir()) if hasattr(paths, 'results_dir') else None}))"
)

EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient
src, out, cwd, keep = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
nb = nbformat.read(src, as_version=4)
prelude = [nbformat.v4.new_code_cell(c) for c in sys.argv[5:]]
if keep:
    code = [k for k, c in enumerate(nb.cells) if c.cell_type == "code"]
    nb.cells = nb.cells[: code[keep - 1] + 1]
nb.cells = prelude + nb.cells + [nbformat.v4.new_code_cell(%r)]
NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": cwd}}).execute()
nbformat.write(nb, out)
""" % PROBE_CELL


def _execute(python: Path, notebook: Path, cwd: Path, env: Dict[str, str], keep_code_cells: int = 0,
             prelude: List[str] = ()) -> dict:
    """Run ``notebook`` in a kernel of ``python`` (working folder ``cwd``); return what the probe printed."""
    out = cwd.parent / f"{notebook.stem}.executed.ipynb"
    _run([python, "-c", EXECUTE, notebook, out, cwd, keep_code_cells, *prelude], cwd=cwd, env=env)
    probe = nbformat.read(out, as_version=4).cells[-1]
    text = "".join(o.get("text", "") for o in probe.outputs if o.output_type == "stream")
    return json.loads(text.split(PROBE, 1)[1])


# ---------------------------------------------------------------------------------- slow: the wheel
@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Dict[str, Path]:
    base = tmp_path_factory.mktemp("dist")
    src = _source_copy(base / "src")
    out = base / "out"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-q", "-w", str(out), str(src)], check=True, capture_output=True)
    sdist = subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                            "print(b.build_sdist(sys.argv[1]))", str(out)], cwd=src, check=True,
                           capture_output=True, text=True).stdout.split()[-1]
    return {"wheel": next(out.glob("gflow_lite-*.whl")), "sdist": out / sdist, "src": src}


def _expected_payload() -> Dict[str, List[str]]:
    manifest = [line.split(maxsplit=1)[1].lstrip("*").strip()
                for line in (ROOT / "data" / "SHA256SUMS").read_text().splitlines() if line.strip()]
    results = [str(p.relative_to(ROOT / "results")) for p in (ROOT / "results").rglob("*")
               if p.is_file() and p.suffix in RESULT_SUFFIXES and p.parent.name != "book"]
    return {"data": manifest + ["SHA256SUMS"], "results": results}


@pytest.mark.slow
def test_wheel_and_sdist_carry_the_data_and_the_results(dist):
    expected = _expected_payload()
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    for rel in expected["data"]:
        assert f"gflow_lite/datasets/{rel}" in names, f"the wheel lacks data/{rel}"
    for rel in expected["results"]:
        assert f"gflow_lite/results/{rel}" in names, f"the wheel lacks results/{rel}"
    assert "gflow_lite/kernels/csrc/grassmann_cpu.cpp" in names, "the wheel lacks the C++ source of impl='native'"
    stray = ("tests/", "book/", "data/", "results/", "gflow_lite/results/book/")
    assert not [n for n in names if n.startswith(stray)]
    with tarfile.open(dist["sdist"]) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    for rel in expected["data"]:
        assert f"data/{rel}" in members, f"the sdist lacks data/{rel}"
    for rel in expected["results"]:
        assert f"results/{rel}" in members, f"the sdist lacks results/{rel}"
    assert "setup.py" in members and "pyproject.toml" in members


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """A fresh venv outside the checkout with the wheel installed; a scratch folder to work in."""
    home = tmp_path_factory.mktemp("wheel-venv")
    python = _fresh_venv(home / "venv")
    env = _clean_env(python, home)
    _run([python, "-m", "pip", "install", "-q", "--no-deps", dist["wheel"]], cwd=home, env=env)
    work = home / "work"
    work.mkdir()
    return python, env, work, home


@pytest.mark.slow
def test_the_installed_package_is_the_wheel_and_finds_its_files(installed):
    python, env, work, home = installed
    probe = _run([python, "-c", PROBE_CELL + "\nimport torch; print('TORCH', torch.__version__)"], cwd=work,
                 env=env).stdout
    where = json.loads(probe.split(PROBE, 1)[1].splitlines()[0])
    venv = (home / "venv").resolve()
    for key in ("gflow_lite", "data", "results"):
        assert Path(where[key]).resolve().is_relative_to(venv), f"{key} resolves to {where[key]}, not the venv"
    assert not Path(where["gflow_lite"]).resolve().is_relative_to(ROOT)
    pin = re.search(r"torch==([\d.]+)", (ROOT / "Makefile").read_text()).group(1)
    assert probe.split("TORCH ", 1)[1].split("+")[0].strip() == pin, "torch must come from the Makefile's pin"


@pytest.mark.slow
def test_cli_trains_evaluates_and_generates_from_the_wheel(installed):
    python, env, work, _ = installed
    out = work / "X"
    _run([python, "-m", "gflow_lite", "train", "--model", "grassmann", "--preset", "tiny",
          "--set", "max_steps=5", "--out", out], cwd=work, env=env)
    checkpoints = sorted(out.rglob("last.pt")) or sorted(out.rglob("*.pt"))
    assert checkpoints, f"no checkpoint under {out}: {sorted(p.name for p in out.rglob('*'))}"
    evaluated = _run([python, "-m", "gflow_lite", "eval", "--checkpoint", checkpoints[0]], cwd=work, env=env)
    assert "ppl" in evaluated.stdout
    generated = _run([python, "-m", "gflow_lite", "generate", "--checkpoint", checkpoints[0], "--prompt",
                      "The", "--max-new-tokens", "8", "--json"], cwd=work, env=env)
    assert generated.stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("number", ["00", "01"])
def test_chapter_runs_against_the_installed_package(installed, number):
    python, env, work, home = installed
    book = home / "book"
    if not book.exists():
        shutil.copytree(BOOK, book, ignore=shutil.ignore_patterns("_build", "__pycache__", "*.executed.ipynb"))
    notebook = next(book.glob(f"{number}_*.ipynb"))
    where = _execute(python, notebook, book, env)
    venv = (home / "venv").resolve()
    assert Path(where["gflow_lite"]).resolve().is_relative_to(venv), where
    assert Path(where["data"]).resolve().is_relative_to(venv), where
    assert Path(where["python"]).parent == python.parent, where


# ------------------------------------------------------------------------------ slow: the Colab route
@pytest.mark.slow
def test_colab_route_with_a_local_clone(tmp_path):
    """What Colab runs: the committed notebook's set-up cell (URL -> a local clone), then its first cells."""
    sync = _sync()
    repo = sync.repository()
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(ROOT), str(origin)], check=True)
    subprocess.run(["git", "-C", str(origin), "update-ref", f"refs/heads/{repo['branch']}", "HEAD"], check=True)
    clone = tmp_path / "peek"
    subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
    content = tmp_path / "content"
    content.mkdir()
    home = content / "gflow_lite"
    notebook = next((clone / repo["path_to_book"]).glob("00_*.ipynb"))
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    assert cell.source.startswith("# colab-setup") and repo["url"] in cell.source
    cell.source = cell.source.replace(f'"{repo["url"]}"', f'"{origin.as_uri()}"').replace(
        '"/content/gflow_lite"', f'"{home}"')
    colab_nb = tmp_path / notebook.name
    nbformat.write(nb, colab_nb)

    python = _fresh_venv(tmp_path / "venv")
    env = _clean_env(python, tmp_path)
    env["PIP_NO_BUILD_ISOLATION"] = "0"  # pip's spelling of --no-build-isolation: build offline
    fake_colab = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')"
    where = _execute(python, colab_nb, content, env, keep_code_cells=4, prelude=[fake_colab])
    assert (home / ".git").is_dir(), "the Colab cell did not clone the repository"
    assert Path(where["gflow_lite"]).resolve().is_relative_to(home.resolve()), where
    assert Path(where["data"]).resolve() == (home / "data").resolve(), where
    if where["results"] is not None:  # (a HEAD older than the results resolver has none)
        assert Path(where["results"]).resolve() == (home / "results").resolve(), where
    if "os.chdir" in cell.source:  # the book's support code (book/gflow_book) is found from book/
        assert Path(where["cwd"]).resolve() == (home / repo["path_to_book"]).resolve(), where
    assert Path(where["python"]).parent == python.parent, where
    installed = subprocess.run([python, "-m", "pip", "show", "gflow_lite"], env=env, capture_output=True,
                               text=True).stdout
    assert "Editable project location" in installed and str(home) in installed, installed
