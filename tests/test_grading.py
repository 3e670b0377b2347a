"""Assessment: the student release (no solution in it, hints without code, links to the student repository,
its site builds with every chapter run on the stubs) and the grader (hidden tests outside the student's
process): reference solutions and independent honest ones get full marks, stubs and every cheating route
get zero, subtly wrong answers get partial or no credit with a message; bad input gets one-line errors.

One grading run over a folder of many students is shared by the asserts (module-scoped fixture); each
student and chapter costs one sandboxed process (a few seconds for the torch import).
"""

from __future__ import annotations

import ast
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from book_support import BOOK, ROOT, SOLUTIONS, jupyter_book_build, notebook_env

sys.path.insert(0, str(BOOK))
from grading import extract, hidden, plain  # noqa: E402
from grading import grader as grading  # noqa: E402
from grading import release as student_release  # noqa: E402

CASES = Path(__file__).resolve().parent / "grading_cases"
ALL = hidden.chapters()
PY = sys.executable


# ------------------------------------------------------------------------------------ submissions
def _functions(text: str):
    """Imports, helpers and @exercise functions of a source text, keyed by name, with their source."""
    tree = ast.parse(text)
    return {n.name: ast.get_source_segment(text, n, padded=False) for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def _notebook_with(chapter: str, code: str, out: Path) -> None:
    """The chapter's notebook as a student saves it, each stub cell replaced by the submitted function of the
    same name, and the submission's other code (imports, helpers, tables) in a cell of its own."""
    nb = nbformat.read(BOOK / f"{chapter}.ipynb", as_version=4)
    funcs = {}
    rest = []
    lines = code.splitlines()
    tree = ast.parse("\n".join(ln if not ln.startswith("%") else "pass" for ln in lines))
    for node in tree.body:
        segment = "\n".join(lines[node.lineno - 1 - len(getattr(node, "decorator_list", [])):node.end_lineno])
        if isinstance(node, ast.FunctionDef) and any(isinstance(d, ast.Name) and d.id == "exercise"
                                                     for d in node.decorator_list):
            funcs[node.name] = segment
        else:
            rest.append(segment)
    for cell in nb.cells:
        m = re.match(r"@exercise\s*\ndef (\w+)\(", cell.source) if cell.cell_type == "code" else None
        if m and m.group(1) in funcs:
            cell.source = funcs.pop(m.group(1))
    assert not funcs, f"{chapter}: no stub for {sorted(funcs)}"
    nb.cells.insert(2, nbformat.v4.new_code_cell("\n\n".join(rest)))
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)


def _sections(path: Path, key: str):
    """``{header: code}`` for the ``# student X chapter Y`` / ``# chapter Y`` sections of a cases file."""
    text = path.read_text().replace("{ROOT}", str(ROOT))
    parts = re.split(rf"(?m)^# ({key}.*)$", text)
    return {parts[k].strip(): parts[k + 1] for k in range(1, len(parts), 2)}


def _reference_code(chapter: str) -> str:
    text = (SOLUTIONS / f"{chapter}.py").read_text()
    return re.sub(r"(?m)^def ", "@exercise\ndef ", text)


def cheat_routes():
    """(student, chapter, exercise, route) for every route in tests/grading_cases/cheats.py."""
    routes = []
    for header, code in _sections(CASES / "cheats.py", "student").items():
        student, chapter = re.match(r"student (\w+) chapter (\w+)", header).groups()
        for m in re.finditer(r"(?m)^# route: (.*)\n(?:.*\n)*?@exercise\ndef (\w+)\(", code):
            routes.append((student, chapter, m.group(2), m.group(1)))
    return routes


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    subs = tmp_path_factory.mktemp("submissions")
    for chapter in ALL:  # the reference solutions, in every chapter
        _notebook_with(chapter, _reference_code(chapter), subs / "reference" / f"{chapter}.ipynb")
    for chapter in ("01_geometry", "02_layer", "03_model"):  # the chapters as handed out: stubs
        (subs / "stubs").mkdir(exist_ok=True)
        (subs / "stubs" / f"{chapter}.ipynb").write_text((BOOK / f"{chapter}.ipynb").read_text())
    for header, code in _sections(CASES / "honest.py", "chapter").items():
        _notebook_with(header.split()[1], code, subs / "honest" / f"{header.split()[1]}.ipynb")
    for header, code in _sections(CASES / "wrong.py", "chapter").items():
        _notebook_with(header.split()[1], code, subs / "wrong" / f"{header.split()[1]}.ipynb")
    for header, code in _sections(CASES / "cheats.py", "student").items():
        student, chapter = re.match(r"student (\w+) chapter (\w+)", header).groups()
        _notebook_with(chapter, code, subs / student / f"{chapter}.ipynb")
    (subs / "broken").mkdir()
    (subs / "broken" / "02_layer.ipynb").write_text("{ not a notebook")
    (subs / "broken" / "notes.txt").write_text("hello")
    out = tmp_path_factory.mktemp("grades") / "grades.csv"
    proc = subprocess.run([PY, "-m", "grading", "--submissions", str(subs), "--out", str(out), "--timeout", "40",
                           "--chapters", ",".join(ALL)], cwd=BOOK, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = list(csv.DictReader(out.open()))
    return {"rows": rows, "log": proc.stdout + proc.stderr, "out": out, "subs": subs}


def _rows(graded, student, chapter=None):
    return [r for r in graded["rows"] if r["student"] == student and (chapter is None or r["chapter"] == chapter)]


def _by_exercise(graded, student):
    return {r["exercise"]: r for r in _rows(graded, student)}


@pytest.mark.slow
def test_csv_columns_and_one_row_per_student_chapter_exercise(graded):
    assert list(graded["rows"][0]) == ["student", "chapter", "exercise", "points", "max", "status", "message"]
    students = {r["student"] for r in graded["rows"]}
    for s in students:
        assert len(_rows(graded, s)) == len(hidden.EXERCISES)
    assert "isolation: namespace" in graded["log"] or "isolation: process" in graded["log"]


@pytest.mark.slow
def test_reference_solutions_get_full_marks(graded):
    for r in _rows(graded, "reference"):
        assert r["status"] == "pass" and float(r["points"]) == float(r["max"]), r
    assert sum(float(r["max"]) for r in _rows(graded, "reference")) == sum(hidden.POINTS.values())


@pytest.mark.slow
def test_independent_honest_solutions_get_full_marks(graded):
    honest = [r for r in _rows(graded, "honest") if r["chapter"] in ("01_geometry", "02_layer", "03_model")]
    assert len(honest) == 12
    for r in honest:
        assert r["status"] == "pass" and float(r["points"]) == float(r["max"]), r


@pytest.mark.slow
def test_stubs_get_zero(graded):
    for r in _rows(graded, "stubs"):
        assert float(r["points"]) == 0, r
        if r["chapter"] in ("01_geometry", "02_layer", "03_model"):
            assert r["status"] == "not done", r


def test_every_cheat_route_is_listed():
    routes = cheat_routes()
    assert len(routes) >= 24
    names = {r[3] for r in routes}
    for word in ("solutions switch", "tensor subclass", "patched", "recorded", "helper", "numpy", "row chunks",
                 "library", "book helper", "profile hook", "object that claims"):
        assert any(word in n for n in names), word


@pytest.mark.slow
def test_every_cheating_route_gets_zero(graded, capsys):
    table = []
    for student, chapter, exercise, route in cheat_routes():
        row = next(r for r in _rows(graded, student, chapter) if r["exercise"] == exercise)
        table.append((route, exercise, row["points"], row["status"], row["message"][:90]))
        assert float(row["points"]) == 0, (route, row)
        assert row["status"] != "pass" and row["message"], (route, row)
    with capsys.disabled():
        print("\ncheating routes (route | exercise | points | status | message):")
        for line in table:
            print(" | ".join(map(str, line)))


@pytest.mark.slow
def test_subtly_wrong_answers_get_partial_or_no_credit_with_a_message(graded):
    wrong = [r for r in _rows(graded, "wrong") if r["chapter"] in ("01_geometry", "02_layer", "03_model")]
    assert len(wrong) == 12
    for r in wrong:
        assert float(r["points"]) < float(r["max"]) and r["status"] in ("partial", "fail"), r
        assert "hidden test" in r["message"], r
    assert any(r["status"] == "partial" for r in wrong) and any(r["status"] == "fail" for r in wrong)


@pytest.mark.slow
def test_feedback_files_and_bad_notebooks(graded):
    feedback = graded["out"].with_name("grades_feedback")
    for student in {r["student"] for r in graded["rows"]}:
        text = (feedback / f"{student}.md").read_text()
        assert text.startswith(f"# Feedback for {student}") and "Total:" in text
    broken = _rows(graded, "broken", "02_layer")
    assert all(r["status"] == "error" and "not a readable Jupyter notebook" in r["message"] for r in broken)
    assert all(r["status"] == "missing" for r in _rows(graded, "broken", "01_geometry"))
    assert "broken/notes.txt: not a chapter notebook" in graded["log"]
    assert "Traceback" not in graded["log"]


@pytest.mark.slow
def test_grades_do_not_depend_on_a_fixed_input_table(graded, tmp_path):
    """Two runs draw different inputs (a fresh seed each), so recorded answers cannot match both."""
    seeds = re.findall(r"seed (\d+)", graded["log"])
    assert seeds
    d1 = hidden.Draw(1, "plucker_coordinates")
    d2 = hidden.Draw(2, "plucker_coordinates")
    assert not all(a.args[0].shape == b.args[0].shape and (a.args[0] == b.args[0]).all()
                   for a, b in zip(hidden._pairs(d1), hidden._pairs(d2)))


def test_bad_input_gets_a_one_line_error(tmp_path):
    def run(*args):
        return subprocess.run([PY, "-m", "grading", *args], cwd=BOOK, capture_output=True, text=True, timeout=120)

    missing = run("--submissions", str(tmp_path / "nope"), "--out", str(tmp_path / "g.csv"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    mine = tmp_path / "mine.csv"
    mine.write_text("my own notes\n")
    refused = run("--submissions", str(tmp_path / "subs"), "--out", str(mine))
    assert refused.returncode == 2 and "not a grades CSV" in refused.stderr and mine.read_text() == "my own notes\n"
    unknown = run("--submissions", str(tmp_path / "subs"), "--out", str(tmp_path / "g.csv"), "--chapters", "99_x")
    assert unknown.returncode == 2 and "unknown chapter" in unknown.stderr and "Traceback" not in unknown.stderr


def test_extraction_keeps_only_exercise_code_and_finds_helpers(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (
        "%matplotlib inline\nimport torch\nimport os\nfrom gflow_lite.geometry import plucker",
        "SCALE = 2.0\nresult = torch.randn(3)  # notebook state: not taken",
        "def helper(x):\n    return [x * SCALE for _ in range(2)][0]",
        "@exercise\ndef f(x):\n    y = helper(x)\n    return y",
        "@exercise\ndef g(x):\n    return plucker(x, x)",
        "def f(x):\n    return helper(x) + 1  # the later definition wins")]
    path = tmp_path / "01_geometry.ipynb"
    nbformat.write(nb, path)
    ex = extract.extract(path)
    assert ex.reach("f") == ["f", "helper", "SCALE"]
    assert "result" not in ex.definitions and "+ 1" in ex.code(ex.reach("f"))
    assert extract.loop_violations(ex, "f", ex.reach("f")) == "a comprehension at line 2 of the helper `helper` it calls"
    assert extract.rule_violations(ex, ex.reach("g")) == ["imports from gflow_lite.geometry"]
    assert extract.rule_violations(ex, ex.reach("f")) == []


# ---------------------------------------------------------------------------------------- the release
@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "student"
    proc = subprocess.run([PY, "-m", "grading.release", "--out", str(out), "--repo",
                           "https://github.com/example-course/gflow-student", "--branch", "fall"], cwd=BOOK,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def _normalised_bodies(tree: ast.AST):
    """Every function body in ``tree`` (docstring dropped), as a normalised AST dump."""
    bodies = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            if body:
                bodies[ast.dump(ast.Module(body=body, type_ignores=[]))] = node.name
    return bodies


def _solution_statements():
    """Each reference solution's body, and its statements of some length (unparsed, whitespace-free)."""
    out = []
    for path in sorted(SOLUTIONS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in tree.body:
            if isinstance(fn, ast.FunctionDef):
                body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
                stmts = [re.sub(r"\s+", "", ast.unparse(s)) for s in ast.walk(ast.Module(body=body, type_ignores=[]))
                         if isinstance(s, ast.stmt) and not isinstance(s, (ast.If, ast.For, ast.FunctionDef, ast.Raise))]
                out.append((f"{path.stem}.{fn.name}", ast.dump(ast.Module(body=body, type_ignores=[])),
                            [s for s in stmts if len(s) >= 40]))
    return out


def test_release_holds_no_solution(released):
    files = [p for p in released.rglob("*") if p.is_file()]
    names = {str(p.relative_to(released)) for p in files}
    for gone in ("book/solutions", "book/grading", "book/instructors.md", "book/gflow_book/solution_switch.py",
                 "tests"):
        assert not any(n == gone or n.startswith(gone + "/") for n in names), gone
    bodies, texts, hints = {}, [], []
    for p in files:
        if p.suffix == ".py":
            text = p.read_text()
            bodies.update(_normalised_bodies(ast.parse(text)))
            if "gflow_book/checks/" in str(p):  # the hints' text (the checks' reference code and the chapters'
                hints += [re.sub(r"\s+", "", n.value) for n in ast.walk(ast.parse(text))  # teaching code may
                          if isinstance(n, ast.Constant) and isinstance(n.value, str)]  # share a line with one)
            texts.append(re.sub(r"\s+", "", text))
        elif p.suffix == ".ipynb":
            nb = nbformat.read(p, as_version=4)
            for cell in nb.cells:
                texts.append(re.sub(r"\s+", "", cell.source))
                if cell.cell_type == "code":
                    try:
                        bodies.update(_normalised_bodies(ast.parse(
                            "\n".join("pass" if ln.startswith(("%", "!")) else ln for ln in cell.source.splitlines()))))
                    except SyntaxError:
                        pass
        elif p.suffix in (".md", ".yml", ".txt", ".toml", ".cfg"):
            texts.append(re.sub(r"\s+", "", p.read_text(errors="replace")))
    everything = "\n".join(texts)
    for name, body, statements in _solution_statements():
        assert body not in bodies, f"the body of {name} is in the release (as {bodies.get(body)})"
        for s in statements:
            assert s not in "\n".join(hints), f"a statement of {name} is in a hint of the release: {s}"
    assert "GFLOW_SOLUTIONS" not in everything
    assert "instructors.md" not in everything


def test_release_points_at_the_student_repository_and_hides_the_last_hint(released):
    cfg = (released / "book" / "_config.yml").read_text()
    assert "url: https://github.com/example-course/gflow-student" in cfg and "branch: fall" in cfg
    assert "student_release" not in cfg
    import yaml

    ours, theirs = yaml.safe_load((BOOK / "_config.yml").read_text()), yaml.safe_load(cfg)
    assert set(theirs) == set(ours) - {"student_release"}  # every other section kept (the cell timeout, ...)
    assert theirs["execute"] == ours["execute"] and theirs.get("sphinx") == ours.get("sphinx")
    for nb_path in sorted((released / "book").glob("[0-9][0-9]_*.ipynb")):
        text = nb_path.read_text()
        assert f"github/example-course/gflow-student/blob/fall/book/{nb_path.name}" in text
        assert "gflow-lite/gflow_lite" not in text
    toc = (released / "book" / "_toc.yml").read_text()
    assert "instructors" not in toc
    core = (released / "book" / "gflow_book" / "checks" / "geometry.py").read_text()
    assert "clamp_min(0).sqrt()" not in core and "torch.triu_indices(r, r, offset=1); p =" not in core
    assert json.loads((released / student_release.MARKER).read_text())["branch"] == "fall"


def test_release_refuses_a_folder_it_did_not_write(tmp_path, released):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    proc = subprocess.run([PY, "-m", "grading.release", "--out", str(tmp_path / "mine")], cwd=BOOK,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not a student release" in proc.stderr
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    again = subprocess.run([PY, "-m", "grading.release", "--out", str(released), "--repo",
                            "https://github.com/example-course/gflow-student", "--branch", "fall"], cwd=BOOK,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr  # a previous release of ours is replaced


@pytest.mark.slow
def test_release_site_builds_and_every_chapter_runs_on_the_stubs(released, tmp_path):
    env = notebook_env(solutions=False)
    env.pop("MPLBACKEND", None)
    proc = jupyter_book_build(released / "book", tmp_path / "site", env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    html = tmp_path / "site" / "_build" / "html"
    for nb_path in sorted((released / "book").glob("[0-9][0-9]_*.ipynb")):
        page = (html / f"{nb_path.stem}.html").read_text()
        m = re.search(r"exercises in \w+: (\d+) \| passed 0 \| failed 0 \| not done yet (\d+) \| not checked 0", page)
        assert m and m.group(1) == m.group(2), nb_path.stem
        assert "Traceback" not in page
    assert not (html / "instructors.html").exists()


def _case_functions(path: Path):
    """``{(chapter, name): function}`` for the @exercise functions of a cases file, defined in this process
    (our own cases, so no sandbox is needed)."""
    found = {}
    for header, code in _sections(path, "chapter").items():
        chapter = header.split()[1]
        namespace = {"exercise": lambda f: f}
        exec(compile(code, f"{path.name}:{chapter}", "exec"), namespace)
        for ex in hidden.of_chapter(chapter):
            if ex.name in namespace:
                found[chapter, ex.name] = namespace[ex.name]
    return found


def _passes_every_test(ex, fn, seed) -> bool:
    for test in ex.tests(hidden.Draw(seed, ex.name)):
        args = [plain.decode(plain.encode(a)) for a in test.args]
        try:
            out = fn(*args)
            if test.reduce:
                out = plain.reduce_answer(out, test.reduce, args)
            got = json.loads(json.dumps(plain.answer(out)))
        except Exception:  # noqa: BLE001 - a crash is a failed test, as in the sandbox
            return False
        if hidden.compare(ex, test, got, hidden.expected_value(ex, test)) is not None:
            return False
    return True


@pytest.mark.parametrize("case", ["wrong", "honest"])
def test_hidden_tests_tell_wrong_from_honest_on_every_draw(case):
    """Each grading run draws fresh inputs, so the verdict must not depend on the draw: over 150 seeds every
    subtly wrong answer fails at least one test and every honest one passes all. (A single parallel pair once
    let the unclamped Lagrange norm through on about one draw in six.)"""
    functions = _case_functions(CASES / f"{case}.py")
    assert len(functions) == 12
    by_name = {(ex.chapter, ex.name): ex for ex in hidden.EXERCISES}
    for key, fn in functions.items():
        ex = by_name[key]
        verdicts = [_passes_every_test(ex, fn, 1_000 + 7_919 * k) for k in range(150)]
        if case == "wrong":
            assert not any(verdicts), f"{key}: the wrong answer passed on {sum(verdicts)} of 150 draws"
        else:
            assert all(verdicts), f"{key}: the honest answer failed on {150 - sum(verdicts)} of 150 draws"
