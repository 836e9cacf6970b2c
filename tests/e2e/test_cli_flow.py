"""Whole CLI runs: generate a portfolio, import it, report on it, replay it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encours.cli.app import app

runner = CliRunner()


def run(db_url: str, *args: str) -> object:
    result = runner.invoke(app, ["--db", db_url, *args], catch_exceptions=False)
    return result


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    out = tmp_path / "portfolio"
    result = runner.invoke(
        app,
        ["generate", "--customers", "60", "--invoices", "1500", "--seed", "7",
         "--out", str(out), "--end", "2025-06-30", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_generate_import_report_and_reimport(db_url: str, portfolio: Path, tmp_path: Path) -> None:
    for kind in ("customers", "invoices", "payments"):
        result = run(db_url, "import", kind, str(portfolio / f"{kind}.csv"), "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["status"] == "ok" and report["inserted"] > 0

    status = json.loads(run(db_url, "status", "--as-of", "2025-06-30", "--json").stdout)
    assert status["customers"] == 60
    assert status["invoices"] > 1000
    assert Decimal(status["outstanding"]) > 0

    aging = json.loads(run(db_url, "report", "aging", "--as-of", "2025-06-30", "--format",
                           "json").stdout)  # fmt: skip
    total = sum(Decimal(r["balance"]) for r in aging)
    assert total == Decimal(status["outstanding"])
    for row in aging:  # buckets add up to the open invoices of each customer
        parts = [Decimal(row[k]) for k in ("not_due", "1-30", "31-60", "61-90", "91-120", "121+")]
        assert sum(parts) == Decimal(row["balance"]) + Decimal(row["unapplied_cash"]) + Decimal(
            row["unapplied_credit"]
        )

    # Re-import: nothing changes.
    for kind in ("customers", "invoices", "payments"):
        report = json.loads(run(db_url, "import", kind, str(portfolio / f"{kind}.csv"),
                                "--json").stdout)  # fmt: skip
        assert report["inserted"] == 0 and report["updated"] == 0, report
    again = json.loads(run(db_url, "status", "--as-of", "2025-06-30", "--json").stdout)
    assert again == status

    # Replaying an earlier day sees less.
    earlier = json.loads(run(db_url, "status", "--as-of", "2024-06-30", "--json").stdout)
    assert earlier["invoices"] < status["invoices"]

    xlsx = tmp_path / "customers.xlsx"
    result = run(db_url, "report", "customers", "--as-of", "2025-06-30", "--format", "xlsx",
                 "--out", str(xlsx))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert xlsx.stat().st_size > 1000
    snaps = run(db_url, "report", "snapshot", "--as-of", "2025-06-30", "--months", "3", "--json")
    assert json.loads(snaps.stdout)["snapshots"] == ["2025-04-30", "2025-05-31", "2025-06-30"]
    again = run(db_url, "report", "snapshot", "--as-of", "2025-06-30", "--months", "3", "--json")
    assert again.stdout == snaps.stdout
    kpis = json.loads(run(db_url, "report", "kpis", "--as-of", "2025-06-30", "--json").stdout)
    metrics = {r["metric"] for r in kpis}
    assert {"balance", "overdue", "dso", "cei"} <= metrics


def test_bad_file_is_rejected_with_every_error(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "invoices.csv"
    bad.write_text(
        "invoice_number,customer_id,customer_name,issue_date,due_date,amount,currency\n"
        "F1,C1,Alpha,2024-01-10,2024-02-09,100.00,EUR\n"
        "F2,C1,Alpha,2024-13-10,2024-02-09,100.00,EUR\n"
        "F3,C1,Alpha,2024-01-10,2024-02-09,-5.00,EUR\n"
        "F4,C1,Alpha,2024-01-10,2024-02-09,abc,EUR\n",
        encoding="utf-8",
    )
    result = run(db_url, "import", "invoices", str(bad))
    assert result.exit_code == 1
    for line in ("invoices.csv:3", "invoices.csv:4", "invoices.csv:5"):
        assert line in result.stderr
    status = json.loads(run(db_url, "status", "--json").stdout)
    assert status["invoices"] == 0  # nothing half-written

    result = run(db_url, "import", "invoices", str(bad), "--skip-invalid")
    assert result.exit_code == 0, result.output
    rejects = (tmp_path / "invoices.csv.rejects.csv").read_text(encoding="utf-8").splitlines()
    assert len(rejects) == 4  # header + 3 rejected lines
    assert json.loads(run(db_url, "status", "--json").stdout)["invoices"] == 1


def test_usage_errors_exit_2(db_url: str) -> None:
    assert run(db_url, "status", "--as-of", "yesterday-ish").exit_code == 2
    assert runner.invoke(app, ["import", "nonsense", "x.csv"]).exit_code == 2


def test_missing_file_exits_1(db_url: str, tmp_path: Path) -> None:
    assert run(db_url, "import", "invoices", str(tmp_path / "nope.csv")).exit_code == 1


def test_help_everywhere() -> None:
    for args in (["--help"], ["import", "--help"], ["import", "invoices", "--help"],
                 ["report", "aging", "--help"], ["status", "--help"], ["demo", "--help"],
                 ["generate", "--help"], ["db", "upgrade", "--help"]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)


def test_demo_builds_scores_and_duns_a_portfolio(db_url: str, tmp_path: Path) -> None:
    demo_dir = str(tmp_path / "demo")
    result = run(db_url, "demo", "--customers", "40", "--invoices", "900", "--seed", "3",
                 "--as-of", "2025-06-30", "--dir", demo_dir, "--no-serve")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Dunning run" in result.stdout and "Risk classes" in result.stdout
    assert "Open alerts" in result.stdout
    status = json.loads(run(db_url, "status", "--as-of", "2025-06-30", "--json").stdout)
    assert status["customers"] == 40 and Decimal(status["outstanding"]) > 0
    listed = run(db_url, "dunning", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)
