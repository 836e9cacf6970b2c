"""Import use case: parse a file, write it in one transaction, report."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from encours.imports.canonical import CanonicalBatch, RowError
from encours.imports.load import (
    ImportRejected,
    ImportReport,
    UnappliedPolicy,
    batch_rows,
    load_batch,
)
from encours.store.db import unit_of_work

ImportKind = Literal["customers", "invoices", "payments", "fec"]
# progress(stage, done, total): stages "parsing", "validating", "writing"; `done` rows of
# `total` (the file's data rows; 0 while the file is being parsed: not known yet)
Progress = Callable[[str, int, int], None]
STAGES = ("parsing", "validating", "writing")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_file(
    path: Path, kind: ImportKind, mapping_path: Path | None = None, currency: str = "EUR"
) -> CanonicalBatch:
    if kind == "fec":
        from encours.imports.fec import parse_fec

        return parse_fec(path, currency=currency)
    from encours.imports.mapping import load_mapping
    from encours.imports.tabular import parse_table

    mapping = load_mapping(mapping_path) if mapping_path else None
    return parse_table(path, kind, mapping, default_currency=currency)


def write_rejects(errors: list[RowError], out: Path) -> None:
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "line", "column", "value", "expected"])
        for e in errors:
            writer.writerow([e.file, e.line, e.column, e.value, e.expected])


def import_file(
    path: Path,
    kind: ImportKind,
    *,
    db_url: str | None = None,
    mapping_path: Path | None = None,
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    unapplied: UnappliedPolicy = "oldest_first",
    currency: str = "EUR",
    actor: str = "cli",
    progress: Progress | None = None,
) -> ImportReport:
    """Import one file in one transaction. Raises ImportRejected when rows are bad.

    With `skip_invalid`, good rows are written and rejects are written to `rejects_path`
    (default: FILE.rejects.csv next to the file). `progress(stage, done, total)` follows the
    rows through the STAGES: ("parsing", 0, 0) first, then counts that grow within each
    stage up to the number of data rows, ("writing", total, total) last (the transaction is
    committed when import_file returns).
    """
    step = progress or _no_progress
    step("parsing", 0, 0)
    sha = file_sha256(path)
    batch = parse_file(path, kind, mapping_path, currency)
    total = batch_rows(batch)
    step("parsing", total, total)
    # SQLite's per-row reference lookups are left out: the loader checks every id it writes
    # against the ids it holds (store.bulk.check_references); PostgreSQL checks them anyway
    with unit_of_work(db_url, enforce_foreign_keys=False) as conn:
        report = load_batch(
            conn, batch, kind=kind, sha256=sha, actor=actor,
            skip_invalid=skip_invalid, unapplied=unapplied, progress=step,
        )  # fmt: skip
    if report.errors:
        out = rejects_path or path.with_name(path.name + ".rejects.csv")
        write_rejects(report.errors, out)
    return report


def _no_progress(stage: str, done: int, total: int) -> None:
    """The default progress callback: nothing to show."""


__all__ = [
    "STAGES", "ImportRejected", "ImportReport", "Progress", "import_file", "parse_file",
    "write_rejects",
]  # fmt: skip
