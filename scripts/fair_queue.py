"""The fair comparison's queue (issue 22): every model tuned alike, run two at a time, resumable.

The plan lives in ``results/wikitext2/fair/plan.json``: the models (an architecture and its overrides), the
rates already measured by earlier runs (their folders), and the rates each sweep starts from. What is run
next is derived, each time, from the plan and the results on disk, so a stopped machine resumes by running
this script again:

    python scripts/fair_queue.py status             # the queue: done, running, next, with core-hours
    python scripts/fair_queue.py run --slots 2      # run the queue (one thread per run), commit each result

The decision rule (stated before the results, in the plan's README):

* every run is cpu-small (2000 steps), peak rate ``lr`` with cosine decay to ``min_lr = lr / 10``;
* a run *fails* when it ends without a summary, its best validation perplexity is not finite, or it is
  more than ``fail_factor`` (2x) the best that model reached at any rate; a rate at which any seed fails
  is a failure of that model at that rate (it is reported, never replaced by another model's rate);
* a model's best rate is the non-failed rate with the lowest mean best validation perplexity over its
  seeds; while the best is the highest (lowest) rate tried, the sweep adds twice (half) that rate;
* when the best is inside the tried range, seed 1 runs there; when seed 1 fails, that rate fails and the
  rule starts again from the next best.

Runs execute in a clean git worktree (``--worktree``, created at the current HEAD if missing) so that each
summary records a commit without ``-dirty``; their folders are written outside any repository
(``--scratch``), and a finished run's files (not its checkpoints) are copied into this repository under
``results/wikitext2/fair/`` and committed on their own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
FAIR = ROOT / "results" / "wikitext2" / "fair"
PLAN = FAIR / "plan.json"


def _model_defaults() -> Dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from dataclasses import fields

    from gflow_lite.model import LMConfig

    return {f.name: f.default for f in fields(LMConfig)}


MODEL_DEFAULTS = _model_defaults()


def rate_name(lr: float) -> str:
    """2e-3 -> '2e-3' (the folder names of the earlier sweep)."""
    mant, exp = f"{lr:.0e}".split("e")
    return f"{mant}e{int(exp)}"


def load_plan() -> dict:
    return json.loads(PLAN.read_text())


# ----------------------------------------------------------------------------------------------- results
def run_result(folder: Path, arch: str, seed: int) -> Optional[dict]:
    """A finished run's summary, a recorded failure, or None (not run yet)."""
    run = folder / f"{arch}_seed{seed}"
    if (run / "summary.json").is_file():
        return json.loads((run / "summary.json").read_text())
    if (run / "failed.json").is_file():
        return json.loads((run / "failed.json").read_text())
    return None


def sweep_dir(model: str, lr: float, seed: int) -> Path:
    return FAIR / "sweep" / f"{model}-lr{rate_name(lr)}-s{seed}"


def check_config(summary: dict, spec: dict, lr: float, where: Path) -> None:
    """An earlier run counts only if it was trained with exactly this model's settings and rate."""
    cfg = summary.get("config")
    if cfg is None:  # a recorded failure carries the command instead
        return
    want = {"lr": lr, "min_lr": lr / 10, "preset": "cpu-small", "max_steps": 2000}
    for k, v in want.items():
        if not (cfg.get(k) == v or (isinstance(v, float) and math.isclose(cfg.get(k, math.nan), v))):
            raise SystemExit(f"{where}: {k}={cfg.get(k)!r}, the plan expects {v!r}")
    for k, v in spec["overrides"].items():
        got = cfg["model"].get(k, MODEL_DEFAULTS[k])  # older runs predate some fields: they had the default
        if isinstance(got, list):
            got = ",".join(map(str, got))
        if str(got).lower() != str(v).lower():
            raise SystemExit(f"{where}: model.{k}={got!r}, the plan expects {v!r}")
    if summary.get("model") != spec["arch"]:
        raise SystemExit(f"{where}: architecture {summary.get('model')!r}, the plan expects {spec['arch']!r}")


def collect(plan: dict) -> Dict[str, Dict[float, Dict[int, dict]]]:
    """model -> rate -> seed -> summary (or failure record), from the earlier folders and the sweep's."""
    out: Dict[str, Dict[float, Dict[int, dict]]] = {}
    for name, spec in plan["models"].items():
        mine = out.setdefault(name, {})
        for rate, sources in spec.get("earlier", {}).items():
            lr = float(rate)
            for seed, rel in enumerate(sources):
                if isinstance(rel, dict):  # a run stopped by hand after it failed to train: its note says why
                    mine.setdefault(lr, {})[seed] = {"status": "failed", **rel}
                    continue
                folder = ROOT / rel
                res = run_result(folder, spec["arch"], seed)
                if res is None:
                    raise SystemExit(f"{folder}: no {spec['arch']}_seed{seed} result, as the plan says")
                check_config(res, spec, lr, folder)
                mine.setdefault(lr, {})[seed] = res
        for d in sorted((FAIR / "sweep").glob(f"{name}-lr*-s*")):
            lr = float(d.name[len(name) + 3:].rsplit("-s", 1)[0])
            seed = int(d.name.rsplit("-s", 1)[1])
            res = run_result(d, spec["arch"], seed)
            if res is not None:
                check_config(res, spec, lr, d)
                mine.setdefault(lr, {})[seed] = res
    return out


def ppl(res: dict) -> float:
    v = res.get("best_val_ppl")
    return float(v) if isinstance(v, (int, float)) else math.inf


def verdicts(runs: Dict[float, Dict[int, dict]], fail_factor: float) -> Tuple[Dict[float, str], Optional[float]]:
    """Each tried rate -> 'ok' | 'failed'; and the best rate (None if every rate failed)."""
    finite = [ppl(r) for seeds in runs.values() for r in seeds.values() if math.isfinite(ppl(r))]
    floor = min(finite) if finite else math.inf
    status = {}
    for lr, seeds in runs.items():
        bad = any(not math.isfinite(ppl(r)) or ppl(r) > fail_factor * floor for r in seeds.values())
        status[lr] = "failed" if bad else "ok"
    ok = {lr: sum(ppl(r) for r in s.values()) / len(s) for lr, s in runs.items() if status[lr] == "ok"}
    return status, (min(ok, key=ok.get) if ok else None)


# ------------------------------------------------------------------------------------------------- queue
def next_runs(plan: dict, results, running: List[Tuple[str, float, int]]) -> List[Tuple[str, float, int]]:
    """The runs that can start now, most decisive first (the plan's model order)."""
    busy = {m for m, _, _ in running}
    todo: List[Tuple[str, float, int]] = []
    for name, spec in plan["models"].items():
        runs = results[name]
        start = [float(x) for x in spec.get("start", [])]
        missing = [(name, lr, 0) for lr in start if 0 not in runs.get(lr, {})]
        missing = [m for m in missing if m not in running]
        if missing or name in busy:
            todo += missing  # the start rates run first; the adaptive part waits for them
            continue
        status, best = verdicts(runs, plan["fail_factor"])
        if best is None:
            continue
        tried = sorted(runs)
        if best == tried[-1]:
            todo.append((name, best * 2, 0))
        elif best == tried[0]:
            todo.append((name, best / 2, 0))
        elif 1 not in runs[best]:
            todo.append((name, best, 1))
    return todo  # in the plan's order; `run_queue` gives the second slot to another model where it can


def command(plan: dict, name: str, lr: float, seed: int, out: Path) -> List[str]:
    spec = plan["models"][name]
    sets = [f"{k}={v}" for k, v in spec["overrides"].items()]
    cmd = [sys.executable, "-m", "gflow_lite", "compare", "--preset", "cpu-small", "--seeds", "1",
           "--seed-base", str(seed), "--jobs", "1", "--models", spec["arch"],
           "--label", f"fair sweep: {name}, lr {rate_name(lr)}, seed {seed}",
           "--set", "num_threads=1", f"lr={lr:g}", f"min_lr={lr / 10:g}"]
    if sets:
        cmd += [f"--set-{spec['arch']}", *sets]
    return cmd + ["--out", str(out)]


def status(plan: dict) -> str:
    results = collect(plan)
    lines = ["| model | rate | seed 0 | seed 1 | verdict |", "|---|---|---|---|---|"]
    for name in plan["models"]:
        st, best = verdicts(results[name], plan["fail_factor"])
        for lr in sorted(results[name]):
            seeds = results[name][lr]
            cells = [f"{ppl(seeds[s]):.2f}" if s in seeds else "" for s in (0, 1)]
            tag = st[lr] + (" (best)" if lr == best else "")
            lines.append(f"| {name} | {rate_name(lr)} | {cells[0]} | {cells[1]} | {tag} |")
    todo = next_runs(plan, results, [])
    lines.append("")
    lines.append(f"next ({len(todo)} now runnable, about {plan['core_hours_per_run']:.2f} core-hours each): "
                 + ", ".join(f"{m} {rate_name(lr)} s{s}" for m, lr, s in todo))
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
    """Copy a finished run's files (not its checkpoints) into the repository and commit only them."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in scratch_dir.rglob("*"):
        if f.is_file() and f.suffix != ".pt" and ".lock" not in f.name:
            target = dest / f.relative_to(scratch_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    rel = str(dest.relative_to(ROOT))
    for attempt in range(20):  # another git command may hold the index lock for a moment
        add = subprocess.run(["git", "-C", str(ROOT), "add", "--", rel], capture_output=True, text=True)
        done = add.returncode == 0 and subprocess.run(
            ["git", "-C", str(ROOT), "commit", "-q", "-m", message, "--only", "--", rel],
            capture_output=True, text=True).returncode == 0
        if done:
            return
        time.sleep(3 + attempt)
    print(f"[queue] could not commit {rel}; commit it by hand", flush=True)


class Job:
    """A run in progress: a process this runner started, or one a stopped runner left going (adopted by
    its ``queue.pid``, so that a restarted runner waits for it instead of starting it twice)."""

    def __init__(self, out: Path, run: Path, proc: Optional[subprocess.Popen] = None, pid: int = 0,
                 args=None, t0: Optional[float] = None) -> None:
        self.out, self.run, self.proc, self.pid = out, run, proc, proc.pid if proc else pid
        self.args, self.t0 = (proc.args if proc else args), (t0 or time.time())

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


def adopt(plan: dict, scratch: Path) -> Dict[Tuple[str, float, int], Job]:
    jobs = {}
    for pid_file in (scratch / FAIR.relative_to(ROOT) / "sweep").glob("*/queue.pid"):
        pid, t0 = pid_file.read_text().split()
        if not alive(int(pid)):
            continue
        out = pid_file.parent
        stem, seed = out.name.rsplit("-s", 1)
        name = next(n for n in plan["models"] if stem.startswith(n + "-lr") and stem[len(n) + 3:]
                    .replace("e-", "").replace("e", "").isdigit())
        lr = float(stem[len(name) + 3:])
        arch = plan["models"][name]["arch"]
        jobs[(name, lr, int(seed))] = Job(out, out / f"{arch}_seed{seed}", pid=int(pid), t0=float(t0),
                                          args=f"(adopted pid {pid})")
        print(f"[queue] adopted {out.name} (pid {pid}, still running)", flush=True)
    return jobs


def run_queue(plan: dict, slots: int, wt: Path, scratch: Path, pause: Path) -> None:
    head = ensure_worktree(wt)
    env = dict(os.environ, PYTHONPATH=str(wt), GFLOW_DATA_DIR=str(wt / "data"), TQDM_DISABLE="1",
               OMP_NUM_THREADS="1")
    running = adopt(plan, scratch)
    print(f"[queue] runs from {head[:7]} in {wt}, {slots} at a time (new runs wait while {pause} exists)",
          flush=True)
    while True:
        for key, job in list(running.items()):
            code = job.poll()
            if code is None:
                continue
            del running[key]
            name, lr, seed = key
            log = (job.out / "queue.log").read_text(errors="replace").strip().splitlines()[-8:]
            if not (job.run / "summary.json").is_file() and not (job.run / "metrics.jsonl").is_file():
                # it never trained: a fault of the machine or the setup, not of the model at this rate
                raise SystemExit(f"[queue] {name} lr {rate_name(lr)} seed {seed} did not start training "
                                 f"(exit {code}):\n" + "\n".join(log))
            if code != 0 or not (job.run / "summary.json").is_file():
                (job.run / "failed.json").write_text(json.dumps(
                    {"status": "failed", "returncode": code, "git_commit": head, "command": job.args,
                     "wall_time_s": time.time() - job.t0, "output_tail": log}, indent=2))
            (job.out / "queue.pid").unlink(missing_ok=True)
            what = f"{name}, lr {rate_name(lr)}, seed {seed}"
            publish(job.out, sweep_dir(name, lr, seed),
                    f"Results (issue 22): fair sweep, {what} (cpu-small, run at {head[:7]})")
            print(f"[queue] finished {what} (exit {code}) in {time.time() - job.t0:.0f} s", flush=True)
        results = collect(plan)
        todo = [t for t in next_runs(plan, results, list(running)) if t not in running]
        while todo and len(running) < slots and not pause.exists():
            key = todo.pop(0)
            if any(k[0] == key[0] for k in running) and any(t[0] != key[0] for t in todo):
                todo.append(key)  # prefer another model for the second slot
                key = next(t for t in todo if t[0] not in {k[0] for k in running})
                todo.remove(key)
            name, lr, seed = key
            out = scratch / sweep_dir(name, lr, seed).relative_to(ROOT)
            out.mkdir(parents=True, exist_ok=True)
            cmd = command(plan, name, lr, seed, out)
            log = open(out / "queue.log", "a")
            print(f"[queue] start {name} lr {rate_name(lr)} seed {seed}: {' '.join(cmd[1:])}", flush=True)
            proc = subprocess.Popen(cmd, cwd=wt, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    preexec_fn=lambda: os.nice(19))  # the machine's other work comes first
            (out / "queue.pid").write_text(f"{proc.pid} {time.time()}")
            running[key] = Job(out, out / f"{plan['models'][name]['arch']}_seed{seed}", proc=proc)
        if not running and not pause.exists():
            print("[queue] nothing left to run in the sweep", flush=True)
            return
        time.sleep(20)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="print the table and what runs next")
    r = sub.add_parser("run", help="run the queue")
    r.add_argument("--slots", type=int, default=2)
    r.add_argument("--worktree", type=Path, default=ROOT.parent / "fair-worktree")
    r.add_argument("--scratch", type=Path, default=ROOT.parent / "fair-scratch")
    r.add_argument("--pause-file", type=Path, default=None,
                   help="while this file exists no new run starts (default: SCRATCH/PAUSE)")
    a = ap.parse_args(argv)
    plan = load_plan()
    if a.cmd == "status":
        print(status(plan))
    else:
        scratch = a.scratch.resolve()
        run_queue(plan, a.slots, a.worktree.resolve(), scratch, (a.pause_file or scratch / "PAUSE").resolve())


if __name__ == "__main__":
    main()
