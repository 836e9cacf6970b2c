"""Documents for real customers need the creditor configured (ENCOURS_COMPANY_NAME,
ENCOURS_IBAN, ENCOURS_COMPANY_SIREN): delivery commands refuse without them, drafts warn;
a bad setting is a clear error (exit 1), never a traceback; the demo brings its own."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from encours.cli.app import app
from encours.company import (
    REQUIRED_SETTINGS,
    CompanyNotConfiguredError,
    CompanyProfileError,
    missing_settings,
    require_company,
)
from encours.imports.canonical import DOCUMENT_SCHEMA, CanonicalBatch, conform
from encours.imports.load import load_batch
from encours.services.demo import DEMO_COMPANY, use_demo_company
from encours.store.db import unit_of_work

runner = CliRunner()
CONFIGURED = {"ENCOURS_COMPANY_NAME": "Créancier SA", "ENCOURS_IBAN": "FR7630006000011234567890189",
              "ENCOURS_COMPANY_SIREN": "732829320"}  # fmt: skip


@pytest.fixture
def unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REQUIRED_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ledger(db_url: str) -> str:
    row = {"_line": 2, "invoice_number": "FA-1", "customer_id": "C1", "customer_name": "Alpha",
           "issue_date": dt.date(2024, 1, 10), "due_date": dt.date(2024, 2, 9),
           "amount_minor": 1200_00, "currency": "EUR"}  # fmt: skip
    documents = conform(pl.DataFrame([row]), DOCUMENT_SCHEMA)
    with unit_of_work(db_url) as conn:
        load_batch(conn, CanonicalBatch("i.csv", documents=documents), kind="invoices")
    return db_url


def run(url: str, *args: str):  # noqa: ANN201
    return runner.invoke(app, ["--db", url, *args], env={"COLUMNS": "300"})


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_missing_settings_and_require_company() -> None:
    assert missing_settings({}) == list(REQUIRED_SETTINGS)
    assert missing_settings({**CONFIGURED, "ENCOURS_IBAN": " "}) == ["ENCOURS_IBAN"]
    with pytest.raises(CompanyNotConfiguredError) as caught:
        require_company({"ENCOURS_COMPANY_NAME": "X"})
    assert caught.value.missing == ["ENCOURS_IBAN", "ENCOURS_COMPANY_SIREN"]
    assert "ENCOURS_IBAN, ENCOURS_COMPANY_SIREN" in str(caught.value)
    profile = require_company(CONFIGURED)
    assert (profile.name, profile.siren) == ("Créancier SA", "732829320")
    with pytest.raises(CompanyProfileError, match="SIREN"):
        require_company({**CONFIGURED, "ENCOURS_COMPANY_SIREN": "732829321"})


@pytest.mark.parametrize("command", [["dunning", "send"], ["outbox", "send"],
                                     ["legal", "file", "C1", "--as-of", "2024-08-30"]])  # fmt: skip
def test_delivery_commands_refuse_without_the_company(
    ledger: str, unconfigured: None, tmp_path: Path, command: list[str]
) -> None:
    out = ["--out-dir" if command[0] == "dunning" else "--out", str(tmp_path / "out")]
    result = run(ledger, *command, *out)
    assert result.exit_code == 1, result.output
    message = _flat(result.stderr)
    assert "company is not configured" in message
    assert "ENCOURS_COMPANY_NAME, ENCOURS_IBAN, ENCOURS_COMPANY_SIREN" in message
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_drafts_warn_but_work(ledger: str, unconfigured: None, tmp_path: Path) -> None:
    pdf = tmp_path / "statement.pdf"
    result = run(ledger, "statement", "C1", "--as-of", "2024-08-30", "--out", str(pdf))
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "Warning" in result.stderr and "ENCOURS_COMPANY_SIREN" in _flat(result.stderr)
    result = run(ledger, "dunning", "run", "--as-of", "2024-08-30", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert "company is not configured" in _flat(result.stderr)
    assert "company is not configured" not in result.stdout  # the JSON stays clean


def test_configured_company_no_warning(ledger: str, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:  # fmt: skip
    for name, value in CONFIGURED.items():
        monkeypatch.setenv(name, value)
    result = run(ledger, "statement", "C1", "--as-of", "2024-08-30", "--out",
                 str(tmp_path / "s.pdf"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr


def test_bad_iban_is_a_configuration_error(ledger: str, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("ENCOURS_IBAN", "FR00 1234")
    result = run(ledger, "statement", "C1", "--out", str(tmp_path / "s.pdf"))
    assert result.exit_code == 1
    assert "Configuration error" in result.stderr and "IBAN" in result.stderr
    assert not isinstance(result.exception, CompanyProfileError)  # handled: a clean exit
    # The installed entry point (`main`) too: a message, exit 1, no traceback.
    env = {**os.environ, "ENCOURS_IBAN": "FR00 1234", "ENCOURS_LANG": "en"}
    proc = subprocess.run(
        [sys.executable, "-c", "from encours.cli.app import main; main()", "--db", ledger,
         "dunning", "run", "--as-of", "2024-08-30", "--dry-run"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Configuration error" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_company_is_fake_valid_and_temporary() -> None:
    env: dict[str, str] = {"OTHER": "1"}
    with use_demo_company(env) as values:
        assert values == DEMO_COMPANY and "Démo" in env["ENCOURS_COMPANY_NAME"]
        assert require_company(env).siren == DEMO_COMPANY["ENCOURS_COMPANY_SIREN"]
    assert env == {"OTHER": "1"}
    configured = {"ENCOURS_COMPANY_NAME": "Réelle SAS"}  # partial but real: never mixed
    with use_demo_company(configured) as values:
        assert values == {} and configured == {"ENCOURS_COMPANY_NAME": "Réelle SAS"}
