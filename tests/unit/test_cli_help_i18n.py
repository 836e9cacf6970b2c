"""The `--help` texts of the CLI follow `--lang` / ENCOURS_LANG, although Typer reads them
when the command modules are imported, before the language is known (they are `N_()`
msgids, translated in place by encours.cli.app once the language is set).

Also: report headers (tables, xlsx) are translated while csv/json keep their keys, and the
domain errors speak the current language.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from encours import i18n
from encours.cli.app import app


@pytest.fixture(autouse=True)
def _restore_language() -> Iterator[None]:
    yield
    i18n.set_language("en")


def _help(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200", **(env or {})})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # Rich wraps and pads


def test_dunning_help_in_french() -> None:
    out = _help("--lang", "fr", "dunning")
    assert "Relances : politiques" in out
    assert "Enregistrer une promesse de paiement" in out  # a subcommand's short help
    assert "Afficher ce message et quitter." in out  # Click's own --help option
    assert "Commandes" in out  # Typer's panel title
    assert "Record a promise to pay" not in out


def test_dunning_help_in_english() -> None:
    out = _help("--lang", "en", "dunning")
    assert "Dunning: policies, runs, promises" in out
    assert "Record a promise to pay" in out
    assert "Show this message and exit." in out
    assert "Relances" not in out


def test_language_switches_within_one_process() -> None:
    """The msgids stay on the Click objects: French, then English, then French again."""
    assert "Jour de la relance" in _help("--lang", "fr", "dunning", "run")
    out = _help("--lang", "en", "dunning", "run")
    assert "Day of the run (default today)." in out
    assert "Jour de la relance" not in out
    assert "Jour de la relance" in _help("--lang", "fr", "dunning", "run")


def test_options_and_arguments_in_french() -> None:
    out = _help("--lang", "fr", "penalties", "compute")
    assert "Montant de la facture TTC." in out  # --amount
    assert "Montant de la facture TTC." in out
    out = _help("--lang", "fr", "dunning", "promise")
    assert "Code client." in out  # an argument


def test_environment_chooses_the_language() -> None:
    assert "Relances : politiques" in _help("dunning", env={"ENCOURS_LANG": "fr"})
    assert "Dunning: policies" in _help("dunning", env={"ENCOURS_LANG": "en"})


def test_root_help_follows_lang() -> None:
    """`encours --lang fr --help`: the root help comes before the callback; --lang is eager."""
    out = _help("--lang", "fr")
    assert "Langue des messages : fr ou en." in out
    assert "Relances : politiques" in out
    out = _help("--lang", "en")
    assert "Language of messages: fr or en." in out


def test_report_headers_are_translated_but_not_machine_keys() -> None:
    import polars as pl

    from encours.services.reports import for_humans

    frame = pl.DataFrame(
        {"code": ["C1"], "balance": ["10.00"], "1-30": ["5.00"], "metric": ["dso"]}
    )
    i18n.set_language("fr")
    human = for_humans(frame)
    assert human.columns == ["Code", "Solde", "1-30 jours", "Indicateur"]
    assert human["Indicateur"].to_list() == ["DSO"]
    assert frame.columns == ["code", "balance", "1-30", "metric"]  # unchanged (csv, json)
    i18n.set_language("en")
    assert for_humans(frame).columns == ["Code", "Balance", "1-30 days", "Metric"]


def test_domain_errors_follow_the_language() -> None:
    from encours.domain.penalties import PenaltyError, RateTable, compute_penalties
    from encours.domain.terms import PaymentTerms, TermsError
    from encours.money import MoneyError, check_currency

    i18n.set_language("fr")
    with pytest.raises(TermsError, match="conditions de paiement inconnues"):
        PaymentTerms.parse("whenever")
    with pytest.raises(MoneyError, match="code devise invalide"):
        check_currency("EURO")
    with pytest.raises(PenaltyError, match="montant"):
        compute_penalties(Decimal(-1), dt.date(2024, 1, 31), [], RateTable(), as_of=None)
    i18n.set_language("en")
    with pytest.raises(TermsError, match="unknown payment terms 'whenever'"):
        PaymentTerms.parse("whenever")


def test_penalties_output_is_whole_sentences(tmp_path) -> None:  # noqa: ANN001
    from encours.store.db import dispose_all

    db = f"sqlite:///{tmp_path / 't.db'}"
    args = ["penalties", "compute", "--amount", "1000", "--due", "2024-01-31",
            "--as-of", "2024-03-01"]  # fmt: skip
    try:
        fr = CliRunner().invoke(app, ["--db", db, "--lang", "fr", *args])
        en = CliRunner().invoke(app, ["--db", db, "--lang", "en", *args])
    finally:
        dispose_all()
    assert fr.exit_code == 0, fr.output
    assert en.exit_code == 0, en.output
    assert "Jours de retard : 30" in fr.output
    assert "Indemnité forfaitaire : 40.00 EUR" in fr.output
    assert "Days late: 30" in en.output
    assert "Fixed indemnity: 40.00 EUR" in en.output
