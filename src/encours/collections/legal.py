"""Formal notice (mise en demeure) and the files for legal action or a third party.

- Formal notice: the customer's overdue, undisputed open invoices with, per invoice, the
  late-payment penalties and the fixed 40 EUR indemnity owed as of the day (art. L441-10
  II and D441-5 Code de commerce, computed by `encours.domain.penalties.compute_penalties`
  with the rates of `encours.store.rates`), a deadline, and the legal mentions: art. 1344
  Code civil (the notice puts the debtor on notice to pay), art. L441-10 (penalties from
  the day after the due date without a reminder being needed; the indemnity). Consumers
  and customers in insolvency proceedings owe neither penalties nor the indemnity.
  Penalties already invoiced (`encours charges invoice`) or waived (`encours charges
  waive`) are not claimed again: both are recorded in the audit log per invoice.
  The notice is recorded as a communication (channel letter, level `formal_notice`,
  status draft: it is sent by registered letter outside the print batch) and
  `mark_notice_sent` records the registered letter's tracking number.
- Legal file (`encours legal file`): the PDFs an injonction de payer request needs
  (Code de procédure civile, art. 1405 ff.) in one ZIP.
- Export (`encours legal export --kind agency|insurer`): CSV + PDFs in one ZIP for a
  collection agency or a credit-insurance claim.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, insert, select, update

from encours.collections.pdf import (
    DocumentError,
    check_language,
    render_html,
    render_pdf,
    write_atomically,
)
from encours.collections.statement import (
    CustomerInfo,
    load_customer,
    statement_of_account_pdf,
)
from encours.company import CompanyProfile, load_company
from encours.domain.penalties import (
    MissingRateError,
    PenaltyError,
    Period,
    compute_penalties,
)
from encours.money import from_minor, quantize, to_minor
from encours.store import positions
from encours.store.outbox_schema import Communication, TimelineEvent
from encours.store.rates import load_rate_table
from encours.store.schema import Allocation, AuditEntry, Document

COMMUNICATIONS = Communication.__table__
TIMELINE = TimelineEvent.__table__
AUDIT = AuditEntry.__table__
DOCUMENTS = Document.__table__
ALLOCATIONS = Allocation.__table__

NOTICE_LEVEL = "formal_notice"
NOTICE_POLICY = "manual"
CHARGE_PREFIX = "PEN-"  # numbers of the penalty charge invoices (see charges.py)
SETTLED_ACTIONS = ("penalties.invoiced", "penalties.waived")
EXPORT_KINDS = ("agency", "insurer")


@dataclass(frozen=True)
class PenaltyLine:
    """One late invoice and what it owes as of the day (claimable: net of invoiced/waived)."""

    document_id: int
    number: str
    issue_date: dt.date
    due_date: dt.date
    amount_minor: int
    open_minor: int
    currency: str
    days_late: int
    penalties: Decimal
    indemnity: Decimal  # EUR
    periods: list[Period] = field(default_factory=list)
    reason: str | None = None


def _settled(conn: Connection, customer: CustomerInfo) -> dict[str, tuple[int, int]]:
    """Per invoice number: (penalties, indemnity) minor units already invoiced or waived."""
    rows = conn.execute(
        select(AUDIT.c.after).where(
            AUDIT.c.entity == "customer",
            AUDIT.c.entity_key == customer.code,
            AUDIT.c.action.in_(SETTLED_ACTIONS),
        )
    ).scalars()
    settled: dict[str, tuple[int, int]] = {}
    for after in rows:
        for number, amounts in ((after or {}).get("lines") or {}).items():
            pen, ind = settled.get(number, (0, 0))
            settled[number] = (pen + int(amounts["penalties"]), ind + int(amounts["indemnity"]))
    return settled


def late_invoices(
    conn: Connection, customer: CustomerInfo, as_of: dt.date, *, open_only: bool
) -> list[PenaltyLine]:
    """The customer's invoices paid late or still unpaid after their due date, with the
    penalties and indemnity still claimable as of `as_of` (0 when invoiced or waived).

    `open_only`: only the overdue, undisputed invoices still open (a formal notice);
    otherwise also the invoices paid late (a charge invoice). Charge invoices themselves
    never bear penalties. Raises DocumentError when a reference rate is missing.
    """
    docs = DOCUMENTS.c
    query = select(
        docs.id, docs.number, docs.issue_date, docs.due_date, docs.amount_minor, docs.currency,
        docs.disputed,
    ).where(
        docs.customer_id == customer.id, docs.kind == "invoice", docs.status != "cancelled",
        docs.issue_date <= as_of, docs.due_date < as_of, ~docs.number.startswith(CHARGE_PREFIX),
    ).order_by(docs.due_date, docs.number)  # fmt: skip
    invoices = conn.execute(query).mappings().all()
    if open_only:
        open_frame = positions.open_invoices(conn, as_of, customer_id=customer.id)
        open_ids = set(open_frame.filter(~pl.col("disputed"))["document_id"].to_list())
        invoices = [i for i in invoices if i["id"] in open_ids]
    if not invoices:
        return []
    ids = [i["id"] for i in invoices]
    paid: dict[int, list[tuple[dt.date, int]]] = {}
    allocations = select(ALLOCATIONS.c.invoice_id, ALLOCATIONS.c.date, ALLOCATIONS.c.amount_minor)
    allocations = allocations.where(ALLOCATIONS.c.invoice_id.in_(ids), ALLOCATIONS.c.date <= as_of)
    for invoice_id, day, amount in conn.execute(allocations):
        paid.setdefault(invoice_id, []).append((day, amount))
    rates = load_rate_table(conn)
    settled = _settled(conn, customer)
    lines = []
    for inv in invoices:
        cur = inv["currency"]
        payments = [(d, from_minor(a, cur)) for d, a in paid.get(inv["id"], [])]
        try:
            result = compute_penalties(
                from_minor(inv["amount_minor"], cur), inv["due_date"], payments, rates,
                as_of=as_of, contractual_rate=customer.penalty_rate,
                is_consumer=customer.is_consumer, in_insolvency=customer.in_insolvency,
                currency=cur,
            )  # fmt: skip
        except MissingRateError as exc:
            raise DocumentError(
                f"missing reference rate: {exc}; enter it with `encours rates set`"
            ) from exc
        except PenaltyError as exc:
            raise DocumentError(f"invoice {inv['number']}: {exc}") from exc
        if result.days_late == 0:
            continue
        done_pen, done_ind = settled.get(inv["number"], (0, 0))
        penalties = max(result.penalties - from_minor(done_pen, cur), Decimal(0))
        indemnity = max(result.indemnity - from_minor(done_ind, "EUR"), Decimal(0))
        open_minor = inv["amount_minor"] - sum(a for _, a in paid.get(inv["id"], []))
        lines.append(
            PenaltyLine(
                document_id=inv["id"],
                number=inv["number"],
                issue_date=inv["issue_date"],
                due_date=inv["due_date"],
                amount_minor=inv["amount_minor"],
                open_minor=open_minor,
                currency=cur,
                days_late=result.days_late,
                penalties=quantize(penalties, cur),
                indemnity=quantize(indemnity, "EUR"),
                periods=result.periods,
                reason=result.reason,
            )  # fmt: skip
        )
    return lines


@dataclass(frozen=True)
class Notice:
    customer: CustomerInfo
    company: CompanyProfile
    as_of: dt.date
    deadline: dt.date
    currency: str
    lines: list[PenaltyLine]
    reason: str | None = None  # consumer | insolvency: nothing but the principal is claimed
    tracking_number: str | None = None

    @property
    def principal_minor(self) -> int:
        return sum(line.open_minor for line in self.lines)

    @property
    def penalties(self) -> Decimal:
        return sum((line.penalties for line in self.lines), Decimal(0))

    @property
    def indemnities(self) -> Decimal:
        return sum((line.indemnity for line in self.lines), Decimal(0))

    @property
    def total(self) -> Decimal:
        """Principal + penalties (+ indemnities when the invoices are in euros)."""
        total = from_minor(self.principal_minor, self.currency) + self.penalties
        return total + self.indemnities if self.currency == "EUR" else total


def build_notice(
    conn: Connection, customer_id: int, as_of: dt.date, deadline_days: int = 8
) -> Notice:
    """The formal notice's content (see the module docstring). DocumentError when the
    customer has no overdue undisputed invoice."""
    if deadline_days < 1:
        raise DocumentError("the deadline must be at least one day")
    customer = load_customer(conn, customer_id)
    lines = late_invoices(conn, customer, as_of, open_only=True)
    if not lines:
        raise DocumentError(f"customer {customer.code} has no overdue undisputed invoice")
    currencies = {line.currency for line in lines}
    currency = customer.currency if customer.currency in currencies else sorted(currencies)[0]
    lines = [line for line in lines if line.currency == currency]
    return Notice(
        customer=customer,
        company=load_company(),
        as_of=as_of,
        deadline=as_of + dt.timedelta(days=deadline_days),
        currency=currency,
        lines=lines,
        reason=next((line.reason for line in lines if line.reason), None),
    )


def notice_html(notice: Notice, language: str) -> str:
    return render_html("notice.html", check_language(language), n=notice)


def notice_pdf(notice: Notice, language: str) -> bytes:
    return render_pdf("notice.html", check_language(language), n=notice)


def record_notice(
    conn: Connection, notice: Notice, document_path: Path, language: str, actor: str
) -> int:
    """Record the notice as a communication (draft letter; one per customer and day)."""
    c = COMMUNICATIONS.c
    values = {
        "channel": "letter",
        "language": check_language(language),
        "subject": "Mise en demeure" if language == "fr" else "Formal notice",
        "body_html": None,
        "total_due_minor": notice.principal_minor,
        "penalties_minor": to_minor(notice.penalties, notice.currency),
        "indemnities_minor": to_minor(notice.indemnities, "EUR"),
        "currency": notice.currency,
        "document_path": str(document_path),
    }
    key = (
        (c.customer_id == notice.customer.id)
        & (c.level_code == NOTICE_LEVEL)
        & (c.as_of == notice.as_of)
    )
    existing = conn.execute(select(c.id, c.status).where(key)).first()
    if existing is not None:
        if existing.status in ("draft", "approved"):
            conn.execute(update(COMMUNICATIONS).where(c.id == existing.id).values(**values))
        return existing.id
    communication_id = conn.execute(
        insert(COMMUNICATIONS)
        .values(
            customer_id=notice.customer.id,
            as_of=notice.as_of,
            policy_code=NOTICE_POLICY,
            level_code=NOTICE_LEVEL,
            status="draft",
            **values,
        )  # fmt: skip
        .returning(c.id)
    ).scalar_one()
    _audit(conn, actor, "notice.create", "communication", str(communication_id), None,
           {"customer": notice.customer.code, "as_of": notice.as_of.isoformat(),
            "deadline": notice.deadline.isoformat(), "path": str(document_path)})  # fmt: skip
    return communication_id


def mark_notice_sent(
    conn: Connection,
    communication_id: int,
    tracking_number: str,
    actor: str,
    sent_at: dt.datetime | None = None,
) -> dict:
    """Record that a letter (the formal notice) left by registered letter with
    acknowledgement of receipt, with its tracking number: status sent, timeline, audit."""
    tracking_number = (tracking_number or "").strip()
    if not tracking_number:
        raise DocumentError("a tracking number is required")
    c = COMMUNICATIONS.c
    row = conn.execute(
        select(c.id, c.customer_id, c.status, c.channel, c.as_of, c.tracking_number, c.sent_at)
        .where(c.id == communication_id)
    ).first()  # fmt: skip
    if row is None:
        raise DocumentError(f"unknown communication {communication_id}")
    if row.channel != "letter":
        raise DocumentError(f"communication {communication_id} is not a letter")
    if row.status in ("cancelled", "failed"):
        raise DocumentError(f"communication {communication_id} is {row.status}")
    when = sent_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    before = {"status": row.status, "tracking_number": row.tracking_number}
    after = {"status": "sent", "tracking_number": tracking_number}
    conn.execute(
        update(COMMUNICATIONS)
        .where(c.id == communication_id)
        .values(status="sent", tracking_number=tracking_number, sent_at=row.sent_at or when)
    )
    conn.execute(
        insert(TIMELINE).values(
            customer_id=row.customer_id,
            day=row.as_of,
            kind="communication",
            actor=actor,
            summary=f"registered letter sent, tracking {tracking_number}",
            ref_table="communications",
            ref_id=communication_id,
            data={"tracking_number": tracking_number},
        )  # fmt: skip
    )
    _audit(conn, actor, "communication.registered", "communication", str(communication_id),
           before, after)  # fmt: skip
    return after


def _audit(conn: Connection, actor: str, action: str, entity: str, key: str,
           before: dict | None, after: dict | None) -> None:  # fmt: skip
    conn.execute(
        insert(AUDIT).values(
            actor=actor, action=action, entity=entity, entity_key=key, before=before, after=after
        )
    )


# --- legal file and exports ----------------------------------------------------------


def _latest_notice(conn: Connection, customer_id: int) -> dict | None:
    c = COMMUNICATIONS.c
    row = (
        conn.execute(
            select(c.id, c.as_of, c.document_path, c.tracking_number, c.sent_at, c.status)
            .where(c.customer_id == customer_id, c.level_code == NOTICE_LEVEL)
            .order_by(c.as_of.desc(), c.id.desc())
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def _notice_document(conn: Connection, notice: Notice, language: str) -> tuple[bytes, dict | None]:
    """The notice actually sent when its PDF is still on disk, else a fresh one."""
    recorded = _latest_notice(conn, notice.customer.id)
    if recorded and recorded["document_path"] and Path(recorded["document_path"]).is_file():
        return Path(recorded["document_path"]).read_bytes(), recorded
    return notice_pdf(notice, language), recorded


def _lines_csv(notice: Notice) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\n")
    writer.writerow(
        ["customer_id", "customer_name", "siren", "invoice_number", "issue_date", "due_date",
         "amount", "open_amount", "currency", "days_late", "penalties", "indemnity"]
    )  # fmt: skip
    for line in notice.lines:
        writer.writerow(
            [
                notice.customer.code,
                notice.customer.name,
                notice.customer.siren or "",
                line.number,
                line.issue_date.isoformat(),
                line.due_date.isoformat(),
                from_minor(line.amount_minor, line.currency),
                from_minor(line.open_minor, line.currency),
                line.currency,
                line.days_late,
                line.penalties,
                line.indemnity,
            ]
        )
    return buf.getvalue().encode("utf-8")


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return write_atomically(path, buf.getvalue())


def legal_file(
    conn: Connection,
    customer_id: int,
    as_of: dt.date,
    out_dir: Path,
    language: str = "fr",
    deadline_days: int = 8,
) -> Path:
    """The injonction de payer file of a customer as a ZIP of PDFs in `out_dir`: the formal
    notice, the statement of account, the list of invoices with due dates and amounts, the
    penalty computation and a summary of the request's fields (C. proc. civ. art. 1405 ff.)."""
    language = check_language(language)
    notice = build_notice(conn, customer_id, as_of, deadline_days)
    notice_bytes, recorded = _notice_document(conn, notice, language)
    context = {"n": notice, "recorded": recorded}
    members = {
        "01-mise-en-demeure.pdf": notice_bytes,
        "02-releve-de-compte.pdf": statement_of_account_pdf(conn, customer_id, as_of, language),
        "03-factures.pdf": render_pdf("invoice_list.html", language, **context),
        "04-calcul-penalites.pdf": render_pdf("penalty_computation.html", language, **context),
        "05-requete-injonction-de-payer.pdf": render_pdf(
            "injonction_summary.html", language, **context
        ),
        "factures.csv": _lines_csv(notice),
    }
    name = f"injonction-de-payer-{notice.customer.code}-{as_of.isoformat()}.zip"
    return _write_zip(out_dir / name, members)


def legal_export(
    conn: Connection,
    customer_id: int,
    as_of: dt.date,
    kind: str,
    out_dir: Path,
    language: str = "fr",
) -> Path:
    """A ZIP for a collection agency or a credit insurer's claim: `debtor.csv` (who, how
    much, since when), `invoices.csv` (one line per overdue invoice with penalties and
    indemnity), the statement of account and the formal notice as PDFs."""
    if kind not in EXPORT_KINDS:
        raise DocumentError(f"unknown export kind {kind!r} (expected agency or insurer)")
    language = check_language(language)
    notice = build_notice(conn, customer_id, as_of)
    notice_bytes, recorded = _notice_document(conn, notice, language)
    debtor = io.StringIO()
    writer = csv.writer(debtor, delimiter=";", lineterminator="\n")
    header = ["kind", "as_of", "customer_id", "name", "siren", "vat_number", "address_line1",
              "address_line2", "postal_code", "city", "country",
              "contact_name", "contact_email", "currency", "principal", "penalties",
              "indemnities", "total", "oldest_due_date", "formal_notice_date",
              "formal_notice_tracking"]  # fmt: skip
    writer.writerow(header)
    c = notice.customer
    writer.writerow(
        [kind, as_of.isoformat(), c.code, c.name, c.siren or "", c.vat_number or "",
         c.address_line1 or "", c.address_line2 or "", c.postal_code or "", c.city or "",
         c.country or "", c.contact_name or "", c.contact_email or "", notice.currency,
         from_minor(notice.principal_minor, notice.currency), notice.penalties,
         notice.indemnities, notice.total, min(line.due_date for line in notice.lines).isoformat(),
         recorded["as_of"].isoformat() if recorded else "",
         (recorded or {}).get("tracking_number") or ""]
    )  # fmt: skip
    members = {
        "debtor.csv": debtor.getvalue().encode("utf-8"),
        "invoices.csv": _lines_csv(notice),
        "statement.pdf": statement_of_account_pdf(conn, customer_id, as_of, language),
        "formal-notice.pdf": notice_bytes,
    }
    return _write_zip(out_dir / f"{kind}-{c.code}-{as_of.isoformat()}.zip", members)


__all__ = [
    "EXPORT_KINDS",
    "NOTICE_LEVEL",
    "Notice",
    "PenaltyLine",
    "build_notice",
    "late_invoices",
    "legal_export",
    "legal_file",
    "mark_notice_sent",
    "notice_html",
    "notice_pdf",
    "record_notice",
]
