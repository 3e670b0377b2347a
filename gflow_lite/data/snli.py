"""SNLI 1.0 pairs: the shipped dev/test (complete) and 1% train sample, or the official release by path.

Shipped files are gzipped TSV with the header ``gold_label<TAB>sentence1<TAB>sentence2``. A user with the
official ``snli_1.0.zip`` (or its ``snli_1.0_<split>.jsonl`` files) passes it as ``path``; the fields
``gold_label``, ``sentence1``, ``sentence2`` are read from each JSON line. Rows whose gold label is ``-``
(no annotator consensus) are dropped, and the number dropped is reported in `SNLISplit.dropped`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

from .checksums import file_hash, sha256_file, verified_path
from .errors import DataError, DataFileMissingError

LABELS: Tuple[str, ...] = ("entailment", "neutral", "contradiction")
LABEL_TO_ID: Dict[str, int] = {label: i for i, label in enumerate(LABELS)}
NO_CONSENSUS = "-"

#: Split name -> shipped file. ``train`` is the 1% random sample (5,502 pairs) of the 550,152.
SHIPPED: Dict[str, str] = {
    "train": "snli_1.0/snli_1.0_train_sample_1pct.tsv.gz",
    "dev": "snli_1.0/snli_1.0_dev.tsv.gz",
    "test": "snli_1.0/snli_1.0_test.tsv.gz",
}

Row = Tuple[str, str, str]


@dataclass(frozen=True)
class SNLISplit:
    """Premises, hypotheses and integer labels (`LABELS` order) of one split, plus provenance."""

    split: str
    premises: List[str]
    hypotheses: List[str]
    labels: List[int]
    dropped: int
    source: str
    sha256: str

    def __len__(self) -> int:
        return len(self.labels)

    def label_counts(self) -> Dict[str, int]:
        """Number of pairs per label name."""
        return {name: self.labels.count(i) for i, name in enumerate(LABELS)}


def _tsv_rows(handle: Iterable[str], source: str) -> Iterator[Row]:
    reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header != ["gold_label", "sentence1", "sentence2"]:
        raise DataError(f"{source}: expected header gold_label/sentence1/sentence2, found {header}")
    for row in reader:
        if len(row) != 3:
            raise DataError(f"{source}: malformed row {row!r} (expected 3 tab-separated fields)")
        yield row[0], row[1], row[2]


def _jsonl_rows(handle: Iterable[str], source: str) -> Iterator[Row]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            yield record["gold_label"], record["sentence1"], record["sentence2"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(
                f"{source} line {number}: not an SNLI record with gold_label/sentence1/sentence2 ({err})"
            ) from None


def _build(split: str, rows: Iterable[Row], source: str, sha256: str) -> SNLISplit:
    premises: List[str] = []
    hypotheses: List[str] = []
    labels: List[int] = []
    dropped = 0
    for gold, premise, hypothesis in rows:
        if gold == NO_CONSENSUS:
            dropped += 1
            continue
        if gold not in LABEL_TO_ID:
            raise DataError(f"{source}: unknown gold_label {gold!r}; expected one of {LABELS} or '-'")
        premises.append(premise)
        hypotheses.append(hypothesis)
        labels.append(LABEL_TO_ID[gold])
    return SNLISplit(split, premises, hypotheses, labels, dropped, source, sha256)


def _zip_member(archive: zipfile.ZipFile, split: str) -> str:
    wanted = f"snli_1.0_{split}.jsonl"
    for name in archive.namelist():
        if name.split("/")[-1] == wanted:
            return name
    raise DataFileMissingError(
        f"{archive.filename} has no member {wanted}; members: {archive.namelist()[:10]}"
    )


def _from_path(split: str, path: Path) -> SNLISplit:
    if not path.exists():
        raise DataFileMissingError(f"SNLI path {path} does not exist")
    if path.is_dir():
        candidates = [path / f"snli_1.0_{split}.jsonl", path / "snli_1.0" / f"snli_1.0_{split}.jsonl"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataFileMissingError(f"no snli_1.0_{split}.jsonl in {path}")
        path = found
    digest = sha256_file(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            member = _zip_member(archive, split)
            with archive.open(member) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8")
                return _build(split, _jsonl_rows(text, f"{path}:{member}"), f"{path}:{member}", digest)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        name = path.name[:-3] if path.suffix == ".gz" else path.name
        rows = _tsv_rows(handle, str(path)) if name.endswith(".tsv") else _jsonl_rows(handle, str(path))
        return _build(split, rows, str(path), digest)


def load_snli(split: str = "dev", path: Optional[Union[str, Path]] = None) -> SNLISplit:
    """Load an SNLI split (``train``, ``dev`` or ``test``).

    Without ``path`` the shipped, checksum-verified files are read (``train`` is the 1% sample). With
    ``path`` (``snli_1.0.zip``, a directory holding ``snli_1.0_<split>.jsonl``, or a ``.jsonl[.gz]`` /
    ``.tsv[.gz]`` file) that source is read instead.
    """
    split = {"validation": "dev", "valid": "dev"}.get(split, split)
    if split not in SHIPPED:
        raise ValueError(f"unknown SNLI split {split!r}; choose one of {tuple(SHIPPED)}")
    if path is not None:
        return _from_path(split, Path(path).expanduser())
    relative = SHIPPED[split]
    with gzip.open(verified_path(relative), "rt", encoding="utf-8", newline="") as handle:
        return _build(split, _tsv_rows(handle, relative), relative, file_hash(relative))
