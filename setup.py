"""The package list: every ``gflow_lite*`` package on disk, plus the data-only packages of pyproject.toml.

Everything else (metadata, dependencies, ``package-dir``, ``package-data``) lives in pyproject.toml.
``data/`` and ``results/`` stay at the root of the repository and install as ``gflow_lite.datasets`` and
``gflow_lite.results`` (``[tool.setuptools.package-dir]``); pyproject's ``packages.find`` cannot add
packages whose folders sit outside ``gflow_lite/``, hence this file. Sub-folders with importable names
(``results/wikitext2``) are declared too, as setuptools requires for folders it ships as package data.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
DATA_PACKAGES = {"gflow_lite.datasets": "data", "gflow_lite.results": "results"}


def data_packages() -> list:
    names = []
    for package, folder in DATA_PACKAGES.items():
        names.append(package)
        for sub in sorted(p for p in (ROOT / folder).rglob("*") if p.is_dir()):
            parts = sub.relative_to(ROOT / folder).parts
            if all(part.isidentifier() for part in parts):
                names.append(".".join((package, *parts)))
    return names


setup(packages=find_packages(include=["gflow_lite*"]) + data_packages())
