"""From a student's notebook, only the exercise code: the exercise functions, the helpers they call, the
constants they read and the imports they use; and the stated constraints checked on that code.

Nothing of the notebook is run here. Cells are parsed with `ast` (lines starting with ``%`` or ``!`` are
IPython magics and dropped); a name defined twice keeps its last definition, as running the notebook
top to bottom would. Graded code may import only the modules in `ALLOWED_MODULES`; it may not use the
names in `FORBIDDEN_NAMES` nor any attribute whose name starts with ``_`` (the routes from a function to
its interpreter: ``__class__``, ``__globals__``, ``torch._C``, ...). Code that breaks these rules is not
run for the exercise concerned, which scores 0 with a message saying why.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set

ALLOWED_MODULES = {"torch", "math", "itertools", "functools", "operator", "collections", "numpy", "statistics",
                   "typing", "dataclasses", "cmath", "fractions", "numbers", "__future__"}
FORBIDDEN_NAMES = {"exec", "eval", "compile", "__import__", "open", "globals", "locals", "vars", "getattr",
                   "setattr", "delattr", "breakpoint", "input", "exit", "quit", "help", "memoryview",
                   "__builtins__", "__loader__", "__spec__", "importlib", "sys", "os", "builtins"}
LOOP_NODES = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
LOOP_NAMES = {"map", "filter", "reduce", "starmap", "accumulate", "iter", "next", "bisect", "bisect_left",
              "bisect_right", "searchsorted"}


class NotebookError(ValueError):
    """A file that is not a readable notebook (the message names the file and what to do)."""


def notebook_cells(path: Path) -> List[str]:
    """The code cells' sources of notebook ``path``."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
        sources = []
        for cell in cells:
            if cell.get("cell_type") == "code":
                src = cell.get("source", "")
                sources.append("".join(src) if isinstance(src, list) else str(src))
        return sources
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise NotebookError(f"{path}: not a readable Jupyter notebook ({type(err).__name__}: {err}); "
                            f"ask the student for the .ipynb file as saved by Jupyter or Colab") from None


def _parse_cell(source: str) -> Optional[ast.Module]:
    lines = [(ln[: len(ln) - len(ln.lstrip())] + "pass") if ln.lstrip().startswith(("%", "!")) else ln
             for ln in source.splitlines()]  # an IPython magic becomes `pass`, at its own indentation
    text = "\n".join(lines)
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


@dataclass
class Extracted:
    """The code of one notebook that the sandbox runs, and what was found while extracting it."""

    definitions: Dict[str, ast.stmt] = field(default_factory=dict)  # top-level name -> its last binding
    imports: Dict[str, ast.stmt] = field(default_factory=dict)  # bound name -> import statement
    unparsable_cells: int = 0

    def reach(self, name: str) -> List[str]:
        """``name`` and every top-level name its code reads, transitively (in first-seen order)."""
        seen: List[str] = []
        todo = [name]
        while todo:
            n = todo.pop()
            if n in seen or (n not in self.definitions and n not in self.imports):
                continue
            seen.append(n)
            node = self.definitions.get(n) or self.imports[n]
            todo.extend(sorted(_read_names(node) - {n}))
        return seen

    def calls_itself(self, name: str) -> bool:
        """Whether ``name`` can reach itself again (recursion is a loop)."""
        start = self.definitions.get(name)
        if start is None:
            return False
        todo, seen = sorted(_read_names(start)), set()
        while todo:
            n = todo.pop()
            if n == name:
                return True
            if n in seen or n not in self.definitions:
                continue
            seen.add(n)
            todo.extend(_read_names(self.definitions[n]))
        return False

    def code(self, names: List[str]) -> str:
        """Source of the given names: imports first, then the definitions in notebook order."""
        imports = [self.imports[n] for n in names if n in self.imports]
        defs = [self.definitions[n] for n in names if n in self.definitions]
        defs.sort(key=lambda node: getattr(node, "_order", 0))
        parts, done = [], set()
        for node in imports + defs:
            if id(node) in done:
                continue
            done.add(id(node))
            parts.append(ast.unparse(_strip_exercise_decorator(node)))
        return "\n\n".join(parts) + "\n"


def _strip_exercise_decorator(node: ast.stmt) -> ast.stmt:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        node.decorator_list = [d for d in node.decorator_list
                               if not (isinstance(d, ast.Name) and d.id == "exercise")]
    return node


def _read_names(node: ast.AST) -> Set[str]:
    """The free names of a top-level definition: read in it, not bound inside it (arguments, assignments,
    nested definitions, local imports); module level reads of a class body count as free too."""
    loads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return loads
    bound: Set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            bound.add(sub.id)
        elif isinstance(sub, ast.arg):
            bound.add(sub.arg)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub is not node:
            bound.add(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in sub.names}
    return loads - bound


def extract(path: Path) -> Extracted:
    """Parse every code cell of ``path``; keep each top-level function, class, assignment and import."""
    out = Extracted()
    order = 0
    for source in notebook_cells(path):
        tree = _parse_cell(source)
        if tree is None:
            out.unparsable_cells += 1
            continue
        for node in tree.body:
            order += 1
            node._order = order  # type: ignore[attr-defined]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.definitions[node.name] = node
                out.imports.pop(node.name, None)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bound = (alias.asname or alias.name).split(".")[0]
                    if bound != "*":
                        out.imports[bound] = node
                        out.definitions.pop(bound, None)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and _simple_value(node):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        out.definitions[t.id] = node
                        out.imports.pop(t.id, None)
    return out


def _simple_value(node: ast.stmt) -> bool:
    """Module-level assignments kept for the graded code: constants and expressions without calls."""
    value = node.value
    return value is not None and not any(isinstance(n, (ast.Call, ast.Await, ast.Yield)) for n in ast.walk(value))


# ------------------------------------------------------------------------------------------ the rules
def rule_violations(ex: Extracted, names: List[str]) -> List[str]:
    """What in the code of ``names`` graded code may not do (imports outside the allowed modules, ...)."""
    problems = []
    for n in names:
        node = ex.definitions.get(n) or ex.imports.get(n)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                for alias in sub.names:
                    if alias.name.split(".")[0] not in ALLOWED_MODULES:
                        problems.append(f"imports {alias.name}")
            elif isinstance(sub, ast.ImportFrom):
                if sub.level or (sub.module or "").split(".")[0] not in ALLOWED_MODULES:
                    problems.append(f"imports from {'.' * sub.level}{sub.module or ''}")
            elif isinstance(sub, ast.Name) and sub.id in FORBIDDEN_NAMES:
                problems.append(f"uses `{sub.id}`")
            elif isinstance(sub, ast.Attribute) and sub.attr.startswith("_"):
                problems.append(f"uses the attribute `{sub.attr}`")
            elif isinstance(sub, (ast.Global, ast.Nonlocal)):
                problems.append("declares a global or nonlocal name")
    seen, unique = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def loop_violations(ex: Extracted, name: str, names: List[str]) -> Optional[str]:
    """A Python loop (for, while, comprehension, map/filter/reduce, recursion) in the exercise function or
    any helper it calls; None if there is none."""
    for n in names:
        node = ex.definitions.get(n)
        if node is None or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        where = "your function" if n == name else f"the helper `{n}` it calls"
        for sub in ast.walk(node):
            if isinstance(sub, LOOP_NODES):
                kind = {ast.For: "a for loop", ast.AsyncFor: "a for loop", ast.While: "a while loop"}.get(
                    type(sub), "a comprehension")
                return f"{kind} at line {sub.lineno} of {where}"
            if isinstance(sub, ast.Name) and sub.id in LOOP_NAMES:
                return f"`{sub.id}` in {where}"
            if isinstance(sub, ast.Attribute) and sub.attr in LOOP_NAMES:
                return f"`.{sub.attr}` in {where}"
    for n in names:
        if n in ex.definitions and isinstance(ex.definitions[n], (ast.FunctionDef, ast.AsyncFunctionDef)) \
                and ex.calls_itself(n):
            return f"recursion through `{n}`"
    return None


def optimizer_violations(ex: Extracted, names: List[str]) -> Optional[str]:
    """Use of ``torch.optim`` (the exercise asks for the update written out)."""
    for n in names:
        node = ex.definitions.get(n) or ex.imports.get(n)
        for sub in ast.walk(node):
            if (isinstance(sub, ast.Attribute) and sub.attr in {"optim", "AdamW", "Adam", "SGD"}) or (
                    isinstance(sub, ast.Name) and sub.id in {"optim", "AdamW", "Adam", "SGD"}) or (
                    isinstance(sub, ast.ImportFrom) and "optim" in (sub.module or "")):
                return f"torch.optim in {'your function' if n == names[0] else f'the helper `{n}`'}"
    return None


def name_violations(ex: Extracted, names: List[str], forbidden) -> Optional[str]:
    """A use of one of the ``forbidden`` names (as a name or an attribute) in the code of ``names``."""
    for n in names:
        node = ex.definitions.get(n) or ex.imports.get(n)
        for sub in ast.walk(node):
            hit = sub.attr if isinstance(sub, ast.Attribute) else None  # torch.nn.functional.gelu, F.gelu
            if isinstance(sub, ast.ImportFrom):  # from torch.nn.functional import gelu (a local def is fine)
                hit = next((a.name for a in sub.names if a.name in forbidden), None)
            if hit in forbidden:
                return f"`{hit}` in {'your function' if n == names[0] else f'the helper `{n}`'}"
    return None
