"""import_file reports its progress: row counts through parsing, validating and writing."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

from encours.cli import import_cmd
from encours.generate import generate_portfolio
from encours.services.imports import STAGES, ImportRejected, import_file

Call = tuple[str, int, int]


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("portfolio")
    generate_portfolio(out, customers=40, invoices=600, seed=3, end=dt.date(2025, 6, 30))
    return out


def data_rows(path: Path) -> int:
    return pl.read_csv(path, infer_schema=False).height


def check_calls(calls: list[Call], total: int) -> None:
    """("parsing", 0, 0) first; each stage's counts grow up to `total`; writing ends it."""
    assert calls[0] == ("parsing", 0, 0)
    assert calls[-1] == ("writing", total, total)
    stages = [stage for stage, _done, _total in calls]
    assert sorted(set(stages), key=STAGES.index) == list(STAGES)
    first = [stages.index(stage) for stage in STAGES]
    assert first == sorted(first)  # parsing, then validating, then writing
    for stage in STAGES:
        counts = [(done, of) for s, done, of in calls[1:] if s == stage]
        assert all(of == total for _done, of in counts)
        dones = [done for done, _of in counts]
        assert dones == sorted(dones) and all(0 <= d <= total for d in dones)
        assert dones[-1] == total


@pytest.mark.parametrize("kind", ["customers", "invoices", "payments"])
def test_progress_counts_the_rows_of_each_kind(portfolio: Path, db_url: str, kind: str) -> None:
    for before in ("customers", "invoices", "payments")[: ("customers", "invoices",
                                                          "payments").index(kind)]:  # fmt: skip
        import_file(portfolio / f"{before}.csv", before, db_url=db_url)  # type: ignore[arg-type]
    calls: list[Call] = []
    path = portfolio / f"{kind}.csv"
    report = import_file(path, kind, db_url=db_url, progress=lambda *c: calls.append(c))  # type: ignore[arg-type]
    total = data_rows(path)
    assert report.rows == total
    check_calls(calls, total)
    assert len([c for c in calls if c[0] == "writing"]) >= 2  # it moves during the writing


def test_progress_counts_the_rejected_rows(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        "customer_id,name,siren\nC1,One,732829320\nC2,Two,732829321\nC3,Three,\n,Four,\n"
    )
    calls: list[Call] = []
    report = import_file(path, "customers", db_url=db_url, skip_invalid=True,
                         progress=lambda *c: calls.append(c))  # fmt: skip
    assert (report.inserted, report.rejected) == (2, 2)
    check_calls(calls, 4)


def test_no_writing_reported_when_the_file_is_rejected(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,name,siren\nC1,One,732829320\nC2,Two,732829321\n")
    calls: list[Call] = []
    with pytest.raises(ImportRejected):
        import_file(path, "customers", db_url=db_url, progress=lambda *c: calls.append(c))
    assert calls[:2] == [("parsing", 0, 0), ("parsing", 2, 2)]
    assert not [c for c in calls if c[0] == "writing"]


def test_the_cli_draws_no_bar_without_a_terminal(portfolio: Path, db_url: str) -> None:
    from encours.cli.app import app

    path = portfolio / "customers.csv"
    assert not import_cmd.show_progress(path, as_json=False)  # pytest's stderr: no terminal
    result = CliRunner().invoke(app, ["--db", db_url, "import", "customers", str(path)])
    assert result.exit_code == 0, result.output
    assert "40 new" in result.output
    assert "Parsing" not in result.output and "━" not in result.output


def test_the_bar_counts_rows_on_a_terminal(
    portfolio: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    monkeypatch.setattr(import_cmd, "err_console", terminal)
    path = portfolio / "invoices.csv"
    assert not import_cmd.show_progress(path, as_json=False)  # a small file: no bar
    monkeypatch.setattr(import_cmd, "PROGRESS_MIN_BYTES", 1)
    assert import_cmd.show_progress(path, as_json=False)
    assert not import_cmd.show_progress(path, as_json=True)
    import_file(portfolio / "customers.csv", "customers", db_url=db_url)
    with import_cmd.progress_bar(True) as progress:
        report = import_file(path, "invoices", db_url=db_url, progress=progress)
    shown = screen.getvalue()
    for label in ("Parsing", "Validating", "Writing"):
        assert label in shown
    assert f"{report.rows}/{report.rows}" in shown
