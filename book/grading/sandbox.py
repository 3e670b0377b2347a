"""Run the runner in a process of its own, with a time and a memory limit, where the instructor's files are
not visible.

Two modes, chosen once per grading run (`isolation`):

* ``"namespace"`` (Linux, run as root, ``unshare`` and ``chroot`` present): a new mount, PID and network
  namespace whose root is an empty tmpfs into which only the system folders (/usr, /lib, /bin, /etc),
  the Python installation, the virtual environment's site-packages and the job's own folder are bound,
  read-only except the job folder; the process then runs as the user ``nobody`` (uid/gid 65534), with
  no network. The repository, its solutions, the hidden tests, the other students' submissions and the
  instructor's home are not in that file system at all.
* ``"process"`` (anywhere else): a fresh ``python -I -S`` process in a temporary folder, with the limits,
  a clean environment and a ``sys.path`` of the standard library and site-packages only (not the
  repository, not the book). Its code runs as the instructor and could read the instructor's files, so
  the grader says so once; the grade still cannot be changed from inside (the comparison happens
  outside, on plain data), but a determined student could read the reference solutions. Grade in a Linux
  container or as root for the namespace mode.

Limits (both modes): address space ``memory_mb`` (RLIMIT_AS), CPU seconds, no core files, at most 64 open
files, a wall-clock timeout after which the whole process group is killed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
NOBODY = 65534

_NAMESPACE_SCRIPT = r"""
set -e
R=$(mktemp -d /tmp/gflow-sandbox-root.XXXXXX)
mount -t tmpfs -o mode=755,size=16m none "$R"
for d in /usr /lib /lib64 /lib32 /bin /sbin /etc "$GFLOW_PY_PREFIX" "$GFLOW_SITE" "$GFLOW_JOB"; do
  [ -e "$d" ] || continue
  mkdir -p "$R$d"
  mount --rbind "$d" "$R$d"
  [ "$d" = "$GFLOW_JOB" ] || mount -o remount,bind,ro "$R$d" 2>/dev/null || true
done
mkdir -p "$R/dev" "$R/tmp" "$R/proc"
chmod 1777 "$R/tmp"
for f in null zero urandom random; do touch "$R/dev/$f"; mount --bind "/dev/$f" "$R/dev/$f"; done
mount -t proc proc "$R/proc" 2>/dev/null || true
cd /
exec chroot --userspec=65534:65534 "$R" /bin/sh -c 'cd "$GFLOW_JOB" && exec "$GFLOW_PY" -I -S "$GFLOW_JOB/runner.py" "$GFLOW_JOB" "$GFLOW_SITE"'
"""


def _namespace_available() -> bool:
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    if not (shutil.which("unshare") and shutil.which("chroot") and shutil.which("mount")):
        return False
    try:
        probe = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork", "true"], capture_output=True,
                               timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def isolation(requested: str = "auto") -> str:
    """``"namespace"`` or ``"process"`` (see the module's docstring); ``requested`` may force either."""
    if requested == "process":
        return "process"
    available = _namespace_available()
    if requested == "namespace" and not available:
        raise RuntimeError("--isolation namespace needs Linux, root, and the unshare/chroot/mount commands")
    return "namespace" if available else "process"


def site_packages() -> str:
    """The site-packages of the Python that runs the grader (torch and numpy come from there)."""
    purelib = sysconfig.get_paths()["purelib"]
    return purelib if os.path.isdir(purelib) else site.getsitepackages()[0]


@dataclass
class Outcome:
    records: List[Dict[str, Any]]
    timed_out: bool
    returncode: int
    stderr: str


def _limits(memory_mb: int, cpu_s: int):
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    return apply


def run_job(job: Dict[str, Any], *, mode: str, timeout_s: float, memory_mb: int) -> Outcome:
    """Write ``job`` into a fresh folder with the runner, run it sandboxed, read back its result lines."""
    job_dir = Path(tempfile.mkdtemp(prefix="gflow-grade-"))
    try:
        shutil.copy(HERE / "runner.py", job_dir / "runner.py")
        shutil.copy(HERE / "plain.py", job_dir / "plain.py")
        (job_dir / "job.json").write_text(json.dumps(job))
        (job_dir / "results.jsonl").write_text("")
        py = os.path.realpath(sys.executable)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
               "LC_ALL": "C.UTF-8", "HOME": str(job_dir), "TMPDIR": str(job_dir)}
        if mode == "namespace":
            os.chmod(job_dir, 0o700)
            for p in [job_dir, *job_dir.iterdir()]:
                os.chown(p, NOBODY, NOBODY)
            env.update(GFLOW_PY=py, GFLOW_PY_PREFIX=sys.base_prefix, GFLOW_SITE=site_packages(),
                       GFLOW_JOB=str(job_dir), TMPDIR="/tmp")
            cmd = ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c",
                   _NAMESPACE_SCRIPT]
        else:
            cmd = [py, "-I", "-S", str(job_dir / "runner.py"), str(job_dir), site_packages()]
        proc = subprocess.Popen(cmd, cwd=job_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=_limits(memory_mb, int(timeout_s) + 1))
        timed_out = False
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, err = proc.communicate()
        records = []
        for line in (job_dir / "results.jsonl").read_text(errors="replace").splitlines()[:100000]:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return Outcome(records, timed_out, proc.returncode, err.decode(errors="replace")[-2000:])
    finally:
        shutil.rmtree(job_dir, ignore_errors=True)
