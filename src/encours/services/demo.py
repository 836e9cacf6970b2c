"""Demo use case: import a generated portfolio and summarise it."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from encours.i18n import _, current_language
from encours.imports.load import ImportReport
from encours.locale_format import format_count, format_money, format_number
from encours.services.imports import import_file
from encours.services.reports import aging_report, kpi_report

# The demo's creditor: clearly fake, but valid (IBAN checksum, SIREN Luhn key), so that the
# documents of the demo render completely. A real configuration always wins.
DEMO_COMPANY = {
    "ENCOURS_COMPANY_NAME": "Démo SAS (données fictives)",
    "ENCOURS_IBAN": "FR7630006000011234567890189",
    "ENCOURS_COMPANY_SIREN": "123456782",
}


@contextmanager
def use_demo_company(env: MutableMapping[str, str] | None = None) -> Iterator[dict[str, str]]:
    """While the demo runs, the demo company is the creditor unless the company is
    configured (any of its required settings set: never mixed with demo values). Yields the
    settings it set; the environment is restored afterwards."""
    from encours.company import REQUIRED_SETTINGS, missing_settings

    target = os.environ if env is None else env
    if len(missing_settings(dict(target))) < len(REQUIRED_SETTINGS):
        yield {}
        return
    before = {name: target.get(name) for name in DEMO_COMPANY}
    target.update(DEMO_COMPANY)
    try:
        yield dict(DEMO_COMPANY)
    finally:
        for name, value in before.items():
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value


def import_demo(data_dir: Path, db_url: str | None, as_of: dt.date) -> list[ImportReport]:
    """Import the generated files (idempotent: a second run changes nothing)."""
    reports = [
        import_file(data_dir / "customers.csv", "customers", db_url=db_url, actor="demo"),
        import_file(data_dir / "invoices.csv", "invoices", db_url=db_url, actor="demo"),
        import_file(data_dir / "payments.csv", "payments", db_url=db_url, actor="demo"),
    ]
    from encours.analytics.snapshots import take_monthly_snapshots
    from encours.store.db import unit_of_work

    with unit_of_work(db_url) as conn:
        take_monthly_snapshots(conn, as_of.replace(day=1) - dt.timedelta(days=365), as_of)
    return reports


def score_and_dun(db_url: str | None, as_of: dt.date) -> dict[str, object]:
    """Risk classes, the payment model and a dunning run for the demo day."""
    from encours.collections.engine import run_dunning
    from encours.risk.classes import assess
    from encours.risk.model import train_model
    from encours.store.db import unit_of_work

    with unit_of_work(db_url) as conn:
        classes = assess(conn, as_of)
    model = train_model(db_url, as_of)
    with unit_of_work(db_url) as conn:
        run = run_dunning(conn, as_of, actor="demo")
    from encours.risk.monitor import run_monitor

    with unit_of_work(db_url) as conn:
        monitor = run_monitor(conn, as_of, actor="demo")
    alerts = {kind: counts.get("open", 0) for kind, counts in monitor.counts.items()}
    by_class = classes.group_by("risk_class").len().sort("risk_class")
    by_level: dict[str, int] = {}
    for row in run.plan:
        key = f"{row.get('level_code')} ({row.get('channel')}, {row.get('status')})"
        by_level[key] = by_level.get(key, 0) + 1
    return {
        "classes": {r["risk_class"]: r["len"] for r in by_class.iter_rows(named=True)},
        "model": model.get("metrics", {}),
        "dunning": dict(sorted(by_level.items())),
        "dunning_errors": [f"{e.customer_code}: {e.message}" for e in run.errors],
        "alerts": {k: v for k, v in sorted(alerts.items()) if v},
    }


def _fmt(minor: int, currency: str) -> str:
    """An amount in the CLI's language (Babel: `1 234,50 €`, `€1,234.50`)."""
    return format_money(int(minor), currency, current_language())


def summary(as_of: dt.date, db_url: str | None) -> dict:
    positions, totals, buckets = aging_report(as_of, db_url)
    kpis = kpi_report(as_of, db_url)
    main = totals.sort("balance_minor", descending=True).row(0, named=True)
    cur = main["currency"]
    lang = current_language()
    wanted = {"dso": _("DSO (days)"), "cei": _("CEI (%)"), "add": _("ADD (days)"),
              "overdue_share_pct": _("Overdue share (%)"),
              "late_share_count_pct": _("Invoices paid late, 12 months (%)")}  # fmt: skip
    lines = [
        (_("Outstanding"), _fmt(main["balance_minor"], cur)),
        (_("Overdue"), _fmt(main["overdue_minor"], cur)),
        (_("Unapplied cash"), _fmt(main["unapplied_cash_minor"], cur)),
        (_("Customers over their limit"), format_count(main["customers_over_limit"], lang)),
    ]
    for row in kpis.filter(kpis["currency"] == cur).iter_rows(named=True):
        if row["metric"] in wanted:
            lines.append((wanted[row["metric"]], format_number(row["value"], lang)))
    aging_cols = [_("days past due"), _("amount"), _("share (%)")]
    open_total = main["invoices_open_minor"] or 1
    aging_rows = [[_("not due"), _fmt(main["not_due_minor"], cur),
                   format_number(main["not_due_minor"] / open_total * 100, lang)]] + [
        [b.label, _fmt(main[f"{b.key}_minor"], cur),
         format_number(main[f"{b.key}_minor"] / open_total * 100, lang)]
        for b in buckets
    ]  # fmt: skip
    top = positions.filter(positions["currency"] == cur).sort("exposure_minor", descending=True)
    top_rows = [
        [r["code"], r["name"], _fmt(r["exposure_minor"], cur),
         "-" if r["credit_limit_minor"] is None else _fmt(r["credit_limit_minor"], cur),
         _fmt(r["overdue_minor"], cur)]
        for r in top.head(10).iter_rows(named=True)
    ]  # fmt: skip
    return {
        "kpis": lines,
        "aging_columns": aging_cols,
        "aging_rows": aging_rows,
        "top_columns": [_("code"), _("customer"), _("exposure"), _("limit"), _("overdue")],
        "top_rows": top_rows,
    }
