"""The fair comparison's queue (issue 22): every model tuned alike, run two at a time, resumable.

The plan lives in ``results/wikitext2/fair/plan.json`` (its README states it in words): the models (an
architecture and its overrides), the rates already measured by earlier runs (their folders), the rates each
sweep starts from, and the later stages. What runs next is derived, each time, from the plan and the
results on disk, so a stopped machine resumes by running this script again:

    python scripts/fair_queue.py status             # what is done, each model's best, what runs next
    python scripts/fair_queue.py run --slots 2      # run the queue (one thread per run), commit each result

The decision rule (stated before the results, in ``results/wikitext2/fair/README.md``) and what it asks
for next are library code, `gflow_lite.experiments.fair` (`verdicts`, `sweep_next`, `next_runs`), as are
reading the plan and the results (`load_plan`, `collect`); this script only runs what they ask for.

Runs execute in clean git worktrees (one per stage, created at the current HEAD when first needed) so
that each summary records a commit without ``-dirty``; their folders are written outside any repository
(``--scratch``), and a finished run's files (not its checkpoints) are copied into this repository under
``results/wikitext2/fair/<stage>/`` and committed on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gflow_lite.experiments import fair  # noqa: E402
from gflow_lite.experiments.fair import (STAGES, Key, Results, next_runs, overrides, ppl,  # noqa: E402
                                         rate_name, verdicts)

FAIR = ROOT / "results" / "wikitext2" / "fair"


def load_plan() -> dict:
    return fair.load_plan(FAIR)


def collect(plan: dict) -> Results:
    """Every result the plan knows (`gflow_lite.experiments.fair.collect`); a disagreement with the plan
    stops the script with its message."""
    try:
        return fair.collect(plan, FAIR)
    except fair.FairPlanError as err:
        raise SystemExit(str(err)) from None


def run_dir(stage: str, model: str, lr: float, seed: int) -> Path:
    return FAIR / stage / f"{model}-lr{rate_name(lr)}-s{seed}"


# ------------------------------------------------------------------------------------------------- queue
def command(plan: dict, key: Key, out: Path) -> List[str]:
    stage, name, lr, seed = key
    spec, st = plan["models"][name], plan["stages"][stage]
    sets = [f"{k}={v}" for k, v in overrides(plan, stage, name).items()]
    cmd = [sys.executable, "-m", "gflow_lite", "compare", "--preset", st["preset"], "--seeds", "1",
           "--seed-base", str(seed), "--jobs", "1", "--models", spec["arch"],
           "--label", f"fair {stage}: {name}, lr {rate_name(lr)}, seed {seed}",
           "--set", "num_threads=1", f"lr={lr:g}", f"min_lr={lr / 10:g}",
           *(f"{k}={v}" for k, v in st.get("set", {}).items())]
    if sets:
        cmd += [f"--set-{spec['arch']}", *sets]
    return cmd + ["--out", str(out)]


def status(plan: dict) -> str:
    results = collect(plan)
    lines = []
    for stage in STAGES:
        lines += [f"## {stage}", "", "| model | rate | seed 0 | seed 1 | verdict |", "|---|---|---|---|---|"]
        for name in plan["models"]:
            runs = results[stage][name]
            st, best = verdicts(runs, plan["fail_factor"]) if runs else ({}, None)
            for lr in sorted(runs):
                cells = [f"{ppl(runs[lr][s]):.2f}" if s in runs[lr] else "" for s in (0, 1)]
                lines.append(f"| {name} | {rate_name(lr)} | {cells[0]} | {cells[1]} | "
                             f"{st[lr]}{' (best)' if lr == best else ''} |")
        lines.append("")
    todo = next_runs(plan, results, [])
    hours = sum(plan["stages"][k[0]]["core_hours_per_run"] for k in todo)
    lines.append(f"runnable now: {len(todo)} runs, about {hours:.1f} core-hours: "
                 + ", ".join(f"{s} {m} {rate_name(lr)} s{seed}" for s, m, lr, seed in todo))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- run
def ensure_worktree(wt: Path) -> str:
    if not (wt / ".git").exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), "HEAD"], check=True)
    head = subprocess.run(["git", "-C", str(wt), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(wt), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=True).stdout.strip()
    if dirty:
        raise SystemExit(f"worktree {wt} has changes; the runs must start from a clean commit")
    return head


def publish(scratch_dir: Path, dest: Path, message: str) -> None:
    """Copy a finished run's files (not its checkpoints) into the repository and commit only them, with
    RESULTS.md rendered again from every result (scripts/fair_tables.py)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in scratch_dir.rglob("*"):
        if f.is_file() and f.suffix != ".pt" and ".lock" not in f.name and f.name != "queue.pid":
            target = dest / f.relative_to(scratch_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    paths = [str(dest.relative_to(ROOT))]
    tables = subprocess.run([sys.executable, str(ROOT / "scripts" / "fair_tables.py")], cwd=ROOT,
                            capture_output=True, text=True)
    if tables.returncode == 0:
        paths.append(str((FAIR / "RESULTS.md").relative_to(ROOT)))
    else:
        print(f"[queue] fair_tables.py failed; RESULTS.md not updated:\n{tables.stderr[-2000:]}", flush=True)
    for attempt in range(20):  # another git command may hold the index lock for a moment
        add = subprocess.run(["git", "-C", str(ROOT), "add", "--", *paths], capture_output=True, text=True)
        done = add.returncode == 0 and subprocess.run(
            ["git", "-C", str(ROOT), "commit", "-q", "-m", message, "--only", "--", *paths],
            capture_output=True, text=True).returncode == 0
        if done:
            return
        time.sleep(3 + attempt)
    print(f"[queue] could not commit {', '.join(paths)}; commit them by hand", flush=True)


class Job:
    """A run in progress: a process this runner started, or one a stopped runner left going (adopted by
    its ``queue.pid``, so that a restarted runner waits for it instead of starting it twice)."""

    def __init__(self, out: Path, run: Path, head: str, proc: Optional[subprocess.Popen] = None, pid: int = 0,
                 args=None, t0: Optional[float] = None) -> None:
        self.out, self.run, self.head, self.proc = out, run, head, proc
        self.pid, self.args, self.t0 = (proc.pid if proc else pid), (proc.args if proc else args), t0 or time.time()

    def poll(self) -> Optional[int]:
        if self.proc is not None:
            return self.proc.poll()
        if alive(self.pid):
            return None
        return 0 if (self.run / "summary.json").is_file() else 1


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live gflow_lite process (not a recycled pid)."""
    try:
        return b"gflow_lite" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def parse_dir(plan: dict, out: Path) -> Key:
    stem, seed = out.name.rsplit("-s", 1)
    name = max((n for n in plan["models"] if stem.startswith(n + "-lr")), key=len)
    return out.parent.name, name, float(stem[len(name) + 3:]), int(seed)


def worktree(worktrees: Path, stage: str) -> Path:
    return worktrees / ("fair-worktree" if stage == "sweep" else f"fair-worktree-{stage}")


def adopt(plan: dict, scratch: Path, worktrees: Path) -> Dict[Key, Job]:
    jobs = {}
    for pid_file in (scratch / FAIR.relative_to(ROOT)).glob("*/*/queue.pid"):
        pid, t0 = pid_file.read_text().split()[:2]
        if not alive(int(pid)):
            continue
        key = parse_dir(plan, pid_file.parent)
        arch = plan["models"][key[1]]["arch"]
        jobs[key] = Job(pid_file.parent, pid_file.parent / f"{arch}_seed{key[3]}",
                        ensure_worktree(worktree(worktrees, key[0])), pid=int(pid), t0=float(t0),
                        args=f"(adopted pid {pid})")
        print(f"[queue] adopted {key[0]}/{pid_file.parent.name} (pid {pid}, still running)", flush=True)
    return jobs


def run_queue(plan: dict, slots: int, worktrees: Path, scratch: Path, pause: Path,
              stages: Optional[List[str]] = None) -> None:
    running = adopt(plan, scratch, worktrees)
    only = f"; only stages {', '.join(stages)}" if stages else ""
    print(f"[queue] {slots} at a time; new runs wait while {pause} exists{only}", flush=True)
    while True:
        for key, job in list(running.items()):
            code = job.poll()
            if code is None:
                continue
            del running[key]
            stage, name, lr, seed = key
            log = (job.out / "queue.log").read_text(errors="replace").strip().splitlines()[-8:]
            if not (job.run / "summary.json").is_file() and not (job.run / "metrics.jsonl").is_file():
                # it never trained: a fault of the machine or the setup, not of the model at this rate
                raise SystemExit(f"[queue] {stage} {name} lr {rate_name(lr)} seed {seed} did not start "
                                 f"training (exit {code}):\n" + "\n".join(log))
            if code != 0 or not (job.run / "summary.json").is_file():
                (job.run / "failed.json").write_text(json.dumps(
                    {"status": "failed", "returncode": code, "git_commit": job.head, "command": job.args,
                     "wall_time_s": time.time() - job.t0, "output_tail": log}, indent=2))
            (job.out / "queue.pid").unlink(missing_ok=True)
            what = f"{name}, lr {rate_name(lr)}, seed {seed}"
            publish(job.out, run_dir(*key), f"Results (issue 22): fair {stage}, {what} "
                                            f"({plan['stages'][stage]['preset']}, run at {job.head[:7]})")
            print(f"[queue] finished {stage} {what} (exit {code}) in {time.time() - job.t0:.0f} s", flush=True)
        todo = [k for k in next_runs(plan, collect(plan), list(running)) if not stages or k[0] in stages]
        while todo and len(running) < slots and not pause.exists():
            key = todo.pop(0)
            busy = {k[1] for k in running}
            other = next((t for t in todo if t[0] == key[0] and t[1] not in busy), None)
            if key[1] in busy and other is not None:  # prefer another model of the same stage for this slot
                todo.remove(other)
                todo.insert(0, key)
                key = other
            stage = key[0]
            wt = worktree(worktrees, stage)
            head = ensure_worktree(wt)
            env = dict(os.environ, PYTHONPATH=str(wt), GFLOW_DATA_DIR=str(wt / "data"), TQDM_DISABLE="1",
                       OMP_NUM_THREADS="1")
            out = scratch / run_dir(*key).relative_to(ROOT)
            out.mkdir(parents=True, exist_ok=True)
            cmd = command(plan, key, out)
            log = open(out / "queue.log", "a")
            print(f"[queue] start {stage} {key[1]} lr {rate_name(key[2])} seed {key[3]} at {head[:7]}: "
                  f"{' '.join(cmd[1:])}", flush=True)
            proc = subprocess.Popen(cmd, cwd=wt, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=lambda: os.nice(19))  # the machine's other work comes first
            (out / "queue.pid").write_text(f"{proc.pid} {time.time()}")
            running[key] = Job(out, out / f"{plan['models'][key[1]]['arch']}_seed{key[3]}", head, proc=proc)
        if not running and not pause.exists() and not todo:
            print("[queue] nothing left to run", flush=True)
            return
        time.sleep(20)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="print the tables and what runs next")
    r = sub.add_parser("run", help="run the queue")
    r.add_argument("--slots", type=int, default=2)
    r.add_argument("--worktrees", type=Path, default=ROOT.parent,
                   help="where the clean worktrees live (fair-worktree, fair-worktree-plateau, ...)")
    r.add_argument("--scratch", type=Path, default=ROOT.parent / "fair-scratch")
    r.add_argument("--stages", nargs="+", choices=STAGES, default=None,
                   help="start only runs of these stages (runs in flight of other stages are adopted)")
    r.add_argument("--pause-file", type=Path, default=None,
                   help="while this file exists no new run starts (default: SCRATCH/PAUSE)")
    a = ap.parse_args(argv)
    plan = load_plan()
    if a.cmd == "status":
        print(status(plan))
    else:
        scratch = a.scratch.resolve()
        run_queue(plan, a.slots, a.worktrees.resolve(), scratch, (a.pause_file or scratch / "PAUSE").resolve(),
                  a.stages)


if __name__ == "__main__":
    main()
