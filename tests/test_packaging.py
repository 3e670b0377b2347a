"""Packaging: environment.yml (Binder) and pyproject.toml list the same dependencies; CI entry point."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch": "torch"}
CONDA_ONLY = {"python", "pip"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            have |= {_name(r) for r in dep["pip"]}
        else:
            name = _name(dep.split("=")[0])
            have.add(CONDA_TO_PYPI.get(name, name))
    have -= CONDA_ONLY
    assert have == wanted, f"only in environment.yml: {have - wanted}; only in pyproject: {wanted - have}"
    torch_line = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("pytorch"))
    assert "cpu" in torch_line, "Binder must get the CPU-only torch build"


def test_ci_runs_make_test_and_torch_is_pinned_where_installed():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_readme_opens_with_the_two_commands():
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert "make book" in head and "make test" in head
