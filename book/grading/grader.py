"""Grade a folder of students' chapter notebooks against the hidden tests.

``SUBMISSIONS/<student>/<NN_chapter>.ipynb`` (executed or not, as saved by Colab, JupyterLab or the site)
-> a CSV with one row per student, chapter and exercise (student, chapter, exercise, points, max, status,
message) and one feedback file per student. For every student and chapter: the exercise code is taken out
of the notebook (`extract`), checked against the rules and the stated constraints, run in a sandboxed
process of its own on inputs drawn for this run (`sandbox`, `runner`), and its answers, returned as
plain data, are compared here with the reference solutions' (`hidden`).
"""

from __future__ import annotations

import csv
import json
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from . import extract, hidden, plain, sandbox

CSV_HEADER = ["student", "chapter", "exercise", "points", "max", "status", "message"]
FEEDBACK_MARKER = ".gflow-feedback"


class UsageError(Exception):
    """Bad input from the command line: one line, naming what is wrong and how to fix it."""


@dataclass
class Row:
    student: str
    chapter: str
    exercise: str
    points: float
    max: float
    status: str
    message: str

    def csv(self) -> List[str]:
        return [self.student, self.chapter, self.exercise, f"{self.points:g}", f"{self.max:g}", self.status,
                self.message]


# ------------------------------------------------------------------------------------------ one chapter
class Grader:
    def __init__(self, seed: int, mode: str, timeout_s: float, memory_mb: int) -> None:
        self.seed, self.mode, self.timeout_s, self.memory_mb = seed, mode, timeout_s, memory_mb
        self._tests: Dict[str, Tuple[List[hidden.Test], List[hidden.Test]]] = {}
        self._expected: Dict[Tuple[str, str, int], Any] = {}

    def tests(self, ex: hidden.Exercise) -> Tuple[List[hidden.Test], List[hidden.Test]]:
        """This run's tests of ``ex`` (the same for every student), and its large-size tests."""
        if ex.name not in self._tests:
            normal = ex.tests(hidden.Draw(self.seed, ex.name))
            scale = ex.scale(hidden.Draw(self.seed + 1, ex.name)) if ex.scale else []
            self._tests[ex.name] = (normal, scale)
        return self._tests[ex.name]

    def expected(self, ex: hidden.Exercise, phase: str, index: int) -> Any:
        key = (ex.name, phase, index)
        if key not in self._expected:
            normal, scale = self.tests(ex)
            self._expected[key] = hidden.expected_value(ex, (normal if phase == "tests" else scale)[index])
        return self._expected[key]

    def grade_chapter(self, student: str, chapter: str, notebook: Path) -> List[Row]:
        exercises = hidden.of_chapter(chapter)

        def row(ex, points, status, message):
            return Row(student, chapter, ex.name, round(points, 3), ex.points, status, message)

        try:
            code = extract.extract(notebook)
        except extract.NotebookError as err:
            return [row(ex, 0, "error", str(err)) for ex in exercises]
        rows: Dict[str, Row] = {}
        runnable: List[hidden.Exercise] = []
        names_to_run: List[str] = []
        for ex in exercises:
            if ex.name not in code.definitions:
                rows[ex.name] = row(ex, 0, "missing", f"no function `{ex.name}` in {notebook.name}")
                continue
            reach = code.reach(ex.name)
            problems = extract.rule_violations(code, reach)
            if problems:
                rows[ex.name] = row(ex, 0, "rejected", "not run: your code " + "; ".join(problems[:3]) +
                                    " (graded code may import only torch, numpy, math and the standard helpers "
                                    "listed on the instructors' page, and may not reach the interpreter)")
                continue
            broken = None
            if "no_loops" in ex.constraints or "closed_form" in ex.constraints:
                found = extract.loop_violations(code, ex.name, reach)
                if found:
                    what = "without Python loops" if "no_loops" in ex.constraints else "in closed form, not a search"
                    broken = f"the exercise asks for the answer {what}; found {found}"
            if "no_optim" in ex.constraints:
                found = extract.optimizer_violations(code, reach)
                if found:
                    broken = f"the exercise asks for the update written out; found {found}"
            if ex.forbidden:
                found = extract.name_violations(code, reach, set(ex.forbidden))
                if found:
                    broken = f"the exercise asks you to write this part yourself; found {found}"
            if broken:
                rows[ex.name] = row(ex, 0, "constraint", broken)
                continue
            runnable.append(ex)
            names_to_run += [n for n in reach if n not in names_to_run]
        if runnable:
            rows.update(self._run(student, chapter, code, runnable, names_to_run, row))
        return [rows[ex.name] for ex in exercises]

    def _run(self, student, chapter, code, runnable, names, row) -> Dict[str, Row]:
        tasks = []
        for ex in runnable:
            normal, scale = self.tests(ex)
            tasks.append({"exercise": ex.name,
                          "tests": [{"args": [plain.encode(a) for a in t.args], "reduce": t.reduce} for t in normal],
                          "scale": [{"args": [plain.encode(a) for a in t.args], "reduce": t.reduce} for t in scale]})
        job = {"code": code.code(names), "tasks": tasks, "threads": 1}
        outcome = sandbox.run_job(job, mode=self.mode, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        got: Dict[Tuple[str, str, int], Dict[str, Any]] = {}
        load_error = None
        for record in outcome.records:
            if "load_error" in record:
                load_error = load_error or str(record["load_error"])[:300]
                continue
            key = (record.get("exercise"), record.get("phase"), record.get("index"))
            got.setdefault(key, record)  # the first line for a test counts
        last = (outcome.stderr.strip().splitlines() or [""])[-1][:200]
        limit = (f"the time limit ({self.timeout_s:g} s for the chapter)" if outcome.timed_out
                 else f"the limits (exit code {outcome.returncode}; memory {self.memory_mb} MB"
                      + (f"; last error line: {last}" if last else "") + ")")
        rows = {}
        for ex in runnable:
            normal, scale = self.tests(ex)
            if load_error:
                rows[ex.name] = row(ex, 0, "fail", f"your exercise code did not load: {load_error}")
                continue
            passed, first_problem, not_done = 0, None, 0
            for index, test in enumerate(normal):
                problem = self._judge(ex, test, "tests", index, got.get((ex.name, "tests", index)), limit)
                if problem is None:
                    passed += 1
                elif problem == "not done":
                    not_done += 1
                elif first_problem is None:
                    first_problem = f"hidden test {index + 1} of {len(normal)} ({test.what}): {problem}"
            if not_done == len(normal):
                rows[ex.name] = row(ex, 0, "not done", "the stub still raises NotImplementedError")
                continue
            if passed and scale:  # a constraint measured by size: broken means 0, whatever the small tests
                for index, test in enumerate(scale):
                    record = got.get((ex.name, "scale", index))
                    # only an answer that did not come (time, memory, an error) breaks the constraint; a wrong
                    # value there is already counted by the small tests
                    problem = None if record is not None and "value" in record else self._judge(
                        ex, test, "scale", index, record, limit)
                    if problem is not None:
                        rows[ex.name] = row(ex, 0, "constraint", (
                            f"every small test passes, but the exercise asks for the answer {ex.scale_note}; "
                            f"on the large test ({test.what}) your function {problem}"))
                        break
                if ex.name in rows:
                    continue
            points = ex.points * passed / len(normal)
            if passed == len(normal):
                rows[ex.name] = row(ex, points, "pass", f"all {len(normal)} hidden tests pass" + (
                    f" (and the large one, {ex.scale_note})" if scale else ""))
            else:
                status = "partial" if passed else "fail"
                rows[ex.name] = row(ex, points, status, f"{passed} of {len(normal)} hidden tests pass; {first_problem}")
        return rows

    def _judge(self, ex, test, phase, index, record, limit) -> Optional[str]:
        if record is None:
            return f"did not finish within {limit}"
        if record.get("not_done"):
            return "not done"
        if "error" in record:
            return f"raised {str(record['error'])[:300]}"
        if "value" not in record:
            return "returned nothing readable"
        expected = self.expected(ex, phase, index)
        return hidden.compare(ex, test, record["value"], expected)


# ------------------------------------------------------------------------------------------ the folder
NOTEBOOK_RE = re.compile(r"^(\d\d_[A-Za-z0-9_]+)\.ipynb$")


def find_submissions(folder: Path, chapters: List[str]) -> Tuple[Dict[str, Dict[str, Path]], List[str]]:
    """``{student: {chapter: notebook}}`` and notes on files that were not recognised."""
    if not folder.exists():
        raise UsageError(f"SUBMISSIONS folder {folder} does not exist; give the folder that holds one "
                         f"sub-folder per student (SUBMISSIONS/<student>/<NN_chapter>.ipynb)")
    if not folder.is_dir():
        raise UsageError(f"SUBMISSIONS={folder} is a file; give the folder that holds one sub-folder per student")
    students: Dict[str, Dict[str, Path]] = {}
    notes: List[str] = []
    for sub in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        if not sub.is_dir():
            notes.append(f"{sub.name}: not a student folder, ignored (expected SUBMISSIONS/<student>/<NN_chapter>.ipynb)")
            continue
        found: Dict[str, Path] = {}
        for f in sorted(sub.iterdir()):
            m = NOTEBOOK_RE.match(f.name)
            if m and m.group(1) in chapters:
                found[m.group(1)] = f
            elif not f.name.startswith("."):
                notes.append(f"{sub.name}/{f.name}: not a chapter notebook of the book (expected one of "
                             f"{', '.join(c + '.ipynb' for c in chapters)}), ignored")
        students[sub.name] = found
    if not students:
        raise UsageError(f"SUBMISSIONS folder {folder} holds no student folders "
                         f"(expected SUBMISSIONS/<student>/<NN_chapter>.ipynb)")
    return students, notes


def _check_outputs(out: Path, feedback: Path) -> None:
    if out.exists() and (out.is_dir() or not out.read_text(errors="replace").startswith(",".join(CSV_HEADER))):
        raise UsageError(f"OUT={out} exists and is not a grades CSV written by this grader; choose another file")
    if not out.parent.is_dir():
        raise UsageError(f"the folder of OUT={out} does not exist; create it or choose another path")
    if feedback.exists() and (not feedback.is_dir() or (any(feedback.iterdir()) and not (feedback / FEEDBACK_MARKER).exists())):
        raise UsageError(f"feedback folder {feedback} exists and was not written by this grader; "
                         f"choose another with --feedback")


def grade(submissions: Path, out: Path, feedback: Optional[Path] = None, seed: Optional[int] = None,
          chapters: Optional[List[str]] = None, timeout_s: float = 120, memory_mb: int = 4096,
          isolation: str = "auto", log=print) -> List[Row]:
    """Grade every student folder of ``submissions``; write the CSV ``out`` and the feedback files."""
    all_chapters = hidden.chapters()
    if chapters:
        unknown = [c for c in chapters if c not in all_chapters]
        if unknown:
            raise UsageError(f"unknown chapter(s) {unknown}; the graded chapters are {all_chapters}")
    feedback = feedback or out.with_name(out.stem + "_feedback")
    _check_outputs(out, feedback)
    students, notes = find_submissions(submissions, all_chapters)
    wanted = chapters or sorted({c for found in students.values() for c in found})
    try:
        mode = sandbox.isolation(isolation)
    except RuntimeError as err:
        raise UsageError(str(err)) from None
    seed = secrets.randbits(31) if seed is None else seed
    log(f"grading {len(students)} student(s), chapters {', '.join(wanted) or '(none found)'}; seed {seed}; "
        f"isolation: {mode}")
    if mode == "process":
        log("warning: isolation 'process': the graded code runs as you, without a separate file system, and "
            "could read your files (the reference solutions included); grade as root on Linux for the "
            "namespace sandbox (see the instructors' page)")
    for n in notes:
        log(f"note: {n}")
    grader = Grader(seed, mode, timeout_s, memory_mb)
    rows: List[Row] = []
    start = time.perf_counter()
    for student, found in students.items():
        for chapter in wanted:
            if chapter not in found:
                rows += [Row(student, chapter, ex.name, 0, ex.points, "missing",
                             f"no {chapter}.ipynb in {submissions.name}/{student}/") for ex in hidden.of_chapter(chapter)]
                continue
            rows += grader.grade_chapter(student, chapter, found[chapter])
        got = sum(r.points for r in rows if r.student == student)
        total = sum(r.max for r in rows if r.student == student)
        log(f"  {student}: {got:g} / {total:g}")
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        writer.writerows(r.csv() for r in rows)
    feedback.mkdir(parents=True, exist_ok=True)
    (feedback / FEEDBACK_MARKER).write_text(json.dumps({"seed": seed, "isolation": mode}) + "\n")
    for student in students:
        write_feedback(feedback / f"{student}.md", student, [r for r in rows if r.student == student])
    log(f"wrote {out} ({len(rows)} rows) and {len(students)} feedback file(s) in {feedback} "
        f"in {time.perf_counter() - start:.0f} s")
    return rows


def write_feedback(path: Path, student: str, rows: List[Row]) -> None:
    numbers = {(e.chapter, e.name): e.number for e in hidden.EXERCISES}
    lines = [f"# Feedback for {student}", ""]
    got, total = sum(r.points for r in rows), sum(r.max for r in rows)
    lines.append(f"Total: {got:g} of {total:g} points.")
    for chapter in dict.fromkeys(r.chapter for r in rows):
        mine = [r for r in rows if r.chapter == chapter]
        lines += ["", f"## {chapter}: {sum(r.points for r in mine):g} of {sum(r.max for r in mine):g}", ""]
        for r in mine:
            lines.append(f"* {numbers[(r.chapter, r.exercise)]} `{r.exercise}`: {r.points:g} / {r.max:g}, "
                         f"{r.status}. {r.message}")
    path.write_text("\n".join(lines) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m grading", description="Grade students' chapter notebooks "
                                     "against the hidden tests (see the instructors' page).")
    parser.add_argument("--submissions", required=True, type=Path, help="SUBMISSIONS/<student>/<NN_chapter>.ipynb")
    parser.add_argument("--out", required=True, type=Path, help="the grades CSV to write")
    parser.add_argument("--feedback", type=Path, help="folder of per-student feedback (default: OUT's name + _feedback)")
    parser.add_argument("--seed", type=int, help="repeat a run's inputs (default: a fresh seed per run)")
    parser.add_argument("--chapters", help="comma-separated chapters to grade (default: every chapter submitted)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per student and chapter (default 120)")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per run (default 4096)")
    parser.add_argument("--isolation", choices=["auto", "namespace", "process"], default="auto")
    args = parser.parse_args(argv)
    try:
        grade(args.submissions.resolve(), args.out.resolve(), args.feedback and args.feedback.resolve(), args.seed,
              [c.strip() for c in args.chapters.split(",") if c.strip()] if args.chapters else None,
              args.timeout, args.memory_mb, args.isolation)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
