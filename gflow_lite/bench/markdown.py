"""Markdown tables of results files, for the README and the book: ``python -m gflow_lite.bench.markdown
results/bench``. Everything shown is read from the JSON files; nothing is typed in by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

from .registry import BENCHMARKS

__all__ = ["render", "render_file", "targets_table"]


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _pivot(
    records: List[Mapping[str, Any]], key: str, by: str, names: Sequence[str], fields: Sequence[str]
) -> str:
    index = sorted({r[key] for r in records})
    rows = []
    for k in index:
        row: List[Any] = [k]
        for name in names:
            rec = next((r for r in records if r[key] == k and r[by] == name), {})
            row += [rec.get(f) for f in fields]
        rows.append(row)
    header = [key] + [f"{n} {f}" for n in names for f in fields]
    return _table(rows, header)


def targets_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    rows = []
    for name, res in results.items():
        for key, t in res.get("summary", {}).get("targets", {}).items():
            rows.append(
                [name, key.replace("_", " "), t.get("ratio", t.get("slope")), t.get("need"), t.get("met")]
            )
    return _table(rows, ["benchmark", "target", "measured", "need", "met"])


def render_file(res: Mapping[str, Any]) -> str:
    name, recs = res["benchmark"], res["records"]
    head = (
        f"**{name}** — torch {res['torch']}, {res['device']}, {res['threads']} thread(s), "
        f"{res['hardware'].get('cpu')}, load {res.get('load_average_start')}, commit "
        f"`{str(res.get('git_commit'))[:12]}`, {res['wall_time_s']} s"
    )
    if name == "scaling":
        body = _pivot(recs, "seq_len", "model", ["grassmann", "attention"], ["ms", "peak_mb"])
        sp = res["summary"]["speedup_attention_over_grassmann"]
        body += "\n\nattention / Grassmann time: " + ", ".join(f"L={k}: {v}×" for k, v in sp.items())
    elif name == "kernel":
        body = _pivot(recs, "seq_len", "impl", ["reference", "fast"], ["ms", "peak_mb", "saved_mb"])
    elif name == "decode":
        body = _pivot(recs, "context", "model", ["grassmann", "transformer"], ["ms_per_token", "cache_mb"])
    else:
        rows = [
            [
                r["model"],
                r.get("tokens_per_s"),
                r.get("ms_per_step"),
                r.get("gflop_per_step"),
                r.get("gflop_per_s"),
                r.get("fraction_of_peak"),
            ]
            for r in recs
        ]
        body = _table(rows, ["model", "tokens/s", "ms/step", "GFLOP/step", "GFLOP/s", "share of matmul peak"])
    return head + "\n\n" + body


def render(directory: Path) -> str:
    results: Dict[str, Dict[str, Any]] = {}
    for name in BENCHMARKS:
        path = Path(directory) / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    parts = [targets_table(results)] + [render_file(r) for r in results.values()]
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    print(render(Path(sys.argv[1] if len(sys.argv) > 1 else "results/bench")))
