"""The package's layering, as stated once in `gflow_lite/__init__.py` and README.md, holds for every import.

Every ``import`` and ``from ... import`` in every module, at module level or inside a function, is an edge;
an edge may only point to a unit (a top-level module or a subpackage) earlier in the stated order, the
reading path imports nothing outside itself but torch and the standard library, and no module imports
itself back through others (no cycle, inside subpackages too).
"""

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gflow_lite"
READING_PATH = ("geometry", "generate", "model", "train")
ORDER_LINE = re.compile(r"^(geometry -> .*)$", re.M)


def stated_order(text: str):
    found = ORDER_LINE.findall(text)
    assert len(found) == 1, "state the import order exactly once, on one line starting 'geometry -> '"
    return [u.strip() for u in found[0].split("->")]


ORDER = stated_order((PACKAGE / "__init__.py").read_text(encoding="utf-8"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(path: Path):
    """``(imported module, line)`` for every import of a gflow_lite module in ``path``, at any depth."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import kernels` imports the module kernels
                sub = f"{target}.{alias.name}"
                yield (sub if is_module(sub) else target), node.lineno


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
EDGES = [(m, target, line) for m, p in MODULES.items() for target, line in imports(p)]


def test_order_is_stated_once_and_alike_in_readme():
    assert stated_order((ROOT / "README.md").read_text(encoding="utf-8")) == ORDER
    units = {unit(m) for m in MODULES} - {"__init__"}
    assert units == set(ORDER), f"units missing from the order: {units - set(ORDER)}; unknown: {set(ORDER) - units}"


def test_every_import_points_down_the_order():
    wrong = []
    for source, target, line in EDGES:
        if not target.startswith("gflow_lite"):
            continue
        a, b = unit(source), unit(target)
        if b == "__init__" and a != "__init__":
            wrong.append(f"{source}:{line} imports the package root (and so everything it imports)")
        elif a != b and a != "__init__" and ORDER.index(b) >= ORDER.index(a):
            wrong.append(f"{source}:{line} imports {target}: '{b}' comes after '{a}' in the stated order")
    assert not wrong, "\n".join(wrong)


def test_the_reading_path_imports_only_itself_torch_and_the_standard_library():
    allowed = {f"gflow_lite.{m}" for m in READING_PATH} | {"torch", "__future__"}
    stdlib = set(sys.stdlib_module_names)
    wrong = [f"{source}:{line} imports {target}" for source, target, line in EDGES
             if unit(source) in READING_PATH and target not in allowed
             and target.split(".")[0] not in stdlib and target.split(".")[0] != "torch"]
    assert not wrong, "\n".join(wrong)


def test_no_cycles():
    graph = {m: set() for m in MODULES}
    for source, target, _ in EDGES:
        while target and target not in MODULES:  # `gflow_lite.x.y` where y is a name, not a module
            target = target.rpartition(".")[0]
        if target in MODULES and target != source and not source.startswith(target + "."):
            graph[source].add(target)  # (a module's own package is initialised before it, not imported by it)
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_check_sees_function_level_imports(tmp_path):
    """The parser counts an import inside a function as an edge (a lazy import cannot hide one)."""
    src = tmp_path / "gflow_lite" / "geometry.py"
    src.parent.mkdir()
    src.write_text("def f():\n    from .training import trainer\n", encoding="utf-8")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert ("gflow_lite.training", 2) in list(imports(src))
    finally:
        ROOT = saved
