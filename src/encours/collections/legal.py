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
- Unpaid charge invoices (`PEN-...`, `encours charges invoice`) are claimed as principal
  lines (their open amount, whatever their own due date: the penalties they bill were due
  without a reminder), never bearing penalties or an indemnity themselves.
- Legal file (`encours legal file`): the PDFs an injonction de payer request needs
  (Code de procédure civile, art. 1405 ff.) in one ZIP. Refused unless a formal notice was
  sent by registered letter (tracking number recorded) and its deadline has passed
  (`force` overrides, and the request says so); the request claims only the invoices
  listed in that notice that are still unpaid. The file is for a French court: always in
  French, except the formal notice, which is the letter the customer received.
- Export (`encours legal export --kind agency|insurer`): CSV + PDFs in one ZIP for a
  collection agency or a credit-insurance claim.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, delete, func, insert, select, update

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
from encours.i18n import _
from encours.money import from_minor, quantize, to_minor
from encours.store import positions
from encours.store.outbox_schema import Communication, CommunicationItem, TimelineEvent
from encours.store.rates import load_rate_table
from encours.store.schema import Allocation, AuditEntry, Document

COMMUNICATIONS = Communication.__table__
ITEMS = CommunicationItem.__table__
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
    charge: bool = False  # a charge invoice (PEN-...): principal only


def _settled(conn: Connection, customer: CustomerInfo) -> dict[str, tuple[int, int]]:
    """Per invoice number: (penalties, indemnity) minor units already invoiced or waived."""
    from encours.collections.claims import settled_claims  # claims imports this module

    return {
        number: (penalties, indemnity)
        for _code, number, penalties, indemnity in settled_claims(conn, customer.code).rows()
    }


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
    charges: list[PenaltyLine] = []
    if open_only:
        open_frame = positions.open_invoices(conn, as_of, customer_id=customer.id)
        open_frame = open_frame.filter(~pl.col("disputed"))
        open_ids = set(open_frame["document_id"].to_list())
        invoices = [i for i in invoices if i["id"] in open_ids]
        charges = _charge_lines(open_frame, as_of)
    if not invoices:
        return charges
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
    if charges:
        lines = sorted([*lines, *charges], key=lambda line: (line.due_date, line.number))
    return lines


def _charge_lines(open_frame: pl.DataFrame, as_of: dt.date) -> list[PenaltyLine]:
    """The unpaid charge invoices (PEN-...) among the open undisputed invoices: principal
    lines (their open amount), without penalties nor indemnity of their own."""
    rows = open_frame.filter(pl.col("number").str.starts_with(CHARGE_PREFIX)).to_dicts()
    return [
        PenaltyLine(
            document_id=r["document_id"],
            number=r["number"],
            issue_date=r["issue_date"],
            due_date=r["due_date"],
            amount_minor=r["amount_minor"],
            open_minor=r["open_minor"],
            currency=r["currency"],
            days_late=max((as_of - r["due_date"]).days, 0),
            penalties=quantize(Decimal(0), r["currency"]),
            indemnity=quantize(Decimal(0), "EUR"),
            charge=True,
        )  # fmt: skip
        for r in rows
    ]


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
    existing = conn.execute(select(c.id, c.status, c.document_path).where(key)).first()
    if existing is not None:
        if existing.status in ("draft", "approved"):
            conn.execute(update(COMMUNICATIONS).where(c.id == existing.id).values(**values))
            _record_items(conn, existing.id, notice)
            after = {
                "customer": notice.customer.code,
                "as_of": notice.as_of.isoformat(),
                "deadline": notice.deadline.isoformat(),
                "path": str(document_path),
            }
            _audit(conn, actor, "notice.update", "communication", str(existing.id), None, after)
        elif not _own_document(conn, existing.id, existing.document_path):
            # Already sent, but pointing at no file of its own (missing, or a print batch
            # shared with other letters): point it at this customer's notice.
            conn.execute(update(COMMUNICATIONS).where(c.id == existing.id)
                         .values(document_path=str(document_path)))  # fmt: skip
            _audit(conn, actor, "notice.document", "communication", str(existing.id),
                   {"path": existing.document_path}, {"path": str(document_path)})  # fmt: skip
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
    _record_items(conn, communication_id, notice)
    _audit(conn, actor, "notice.create", "communication", str(communication_id), None,
           {"customer": notice.customer.code, "as_of": notice.as_of.isoformat(),
            "deadline": notice.deadline.isoformat(), "path": str(document_path)})  # fmt: skip
    return communication_id


def _record_items(conn: Connection, communication_id: int, notice: Notice) -> None:
    """The invoices the notice lists (communication_items), replacing earlier ones."""
    conn.execute(delete(ITEMS).where(ITEMS.c.communication_id == communication_id))
    if notice.lines:
        conn.execute(
            insert(ITEMS),
            [{"communication_id": communication_id, "document_id": line.document_id,
              "open_minor": line.open_minor, "days_overdue": line.days_late,
              "level_code": NOTICE_LEVEL} for line in notice.lines],
        )  # fmt: skip


def _own_document(conn: Connection, communication_id: int, path: str | None) -> bool:
    """True when `path` is a file on disk that belongs to this communication alone (not a
    print batch whose path other letters share, as recorded by older versions)."""
    if not path or not Path(path).is_file():
        return False
    c = COMMUNICATIONS.c
    others = conn.execute(
        select(func.count()).where(c.document_path == path, c.id != communication_id)
    ).scalar_one()
    return others == 0


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


REGISTERED_LETTER_DAYS = 7  # presentation of a registered letter, at most (receipt unknown)
DUNNING_NOTICE_DAYS = 8  # "dans un délai de huit jours à compter de la réception"


def _latest_notice(conn: Connection, customer_id: int, as_of: dt.date | None = None,
                   *, sent_only: bool = False) -> dict | None:  # fmt: skip
    c = COMMUNICATIONS.c
    query = select(c.id, c.as_of, c.document_path, c.tracking_number, c.sent_at, c.status)
    query = query.where(c.customer_id == customer_id, c.level_code == NOTICE_LEVEL)
    if as_of is not None:
        query = query.where(c.as_of <= as_of)
    if sent_only:
        query = query.where(c.status == "sent")
    row = conn.execute(query.order_by(c.as_of.desc(), c.id.desc())).mappings().first()
    return dict(row) if row else None


def _notice_deadline(conn: Connection, recorded: dict) -> dt.date:
    """The deadline given by a formal notice: the date printed on a notice of `encours
    notice` (recorded in its audit entry); for a letter of the dunning run, which gives
    eight days from receipt, the letter's day + 8 days + the days a registered letter may
    take to be presented (the receipt date itself is not recorded)."""
    a = AUDIT.c
    after = conn.execute(
        select(a.after)
        .where(a.entity == "communication", a.entity_key == str(recorded["id"]),
               a.action.in_(("notice.create", "notice.update")))
        .order_by(a.id.desc())
    ).scalars().first()  # fmt: skip
    if after and after.get("deadline"):
        return dt.date.fromisoformat(after["deadline"])
    return recorded["as_of"] + dt.timedelta(days=DUNNING_NOTICE_DAYS + REGISTERED_LETTER_DAYS)


def _notice_items(conn: Connection, communication_id: int) -> set[int]:
    rows = conn.execute(
        select(ITEMS.c.document_id).where(ITEMS.c.communication_id == communication_id)
    ).scalars()
    return set(rows)


@dataclass(frozen=True)
class FileCheck:
    """Whether a customer's injonction de payer file may be made as of a day."""

    recorded: dict | None  # the formal notice sent (or None), with its deadline
    missing: list[tuple[str, dict]]  # (code, details): no_notice, not_sent, ...

    @property
    def problems(self) -> list[str]:
        """What is missing, as messages in the user's language (empty when ready)."""
        return [_problem_message(code, details) for code, details in self.missing]


def _problem_message(code: str, details: dict) -> str:
    if code == "no_notice":
        return _(
            "no formal notice was sent to this customer: create one (`encours notice "
            "CUSTOMER`), send it by registered letter and record it (`encours notice "
            "mark-sent ID --tracking NUMBER`)"
        )
    if code == "not_sent":
        return _(
            "formal notice {id} is {status}, not sent: send it by registered letter "
            "and record it with `encours notice mark-sent {id} --tracking NUMBER`"
        ).format(**details)
    if code == "not_registered":
        return _(
            "formal notice {id} has no registered letter number: record it with "
            "`encours notice mark-sent {id} --tracking NUMBER`"
        ).format(**details)
    return _("the deadline of formal notice {id} ({deadline}) has not passed yet").format(**details)


def check_legal_file(conn: Connection, customer_id: int, as_of: dt.date) -> FileCheck:
    """A court asks for the formal notice: one must have been sent by registered letter
    (status sent and a tracking number, `encours notice mark-sent`) and its deadline must
    have passed on `as_of`."""
    recorded = _latest_notice(conn, customer_id, as_of, sent_only=True)
    if recorded is None:
        latest = _latest_notice(conn, customer_id, as_of)
        if latest is None:
            return FileCheck(None, [("no_notice", {})])
        return FileCheck(None, [("not_sent", {"id": latest["id"], "status": latest["status"]})])
    recorded["deadline"] = _notice_deadline(conn, recorded)
    missing: list[tuple[str, dict]] = []
    if not recorded["tracking_number"]:
        missing.append(("not_registered", {"id": recorded["id"]}))
    if recorded["deadline"] >= as_of:
        missing.append(("deadline", {"id": recorded["id"], "deadline": recorded["deadline"]}))
    return FileCheck(recorded, missing)


def _notice_document(
    conn: Connection, notice: Notice, language: str, recorded: dict | None = None
) -> tuple[bytes, dict | None]:
    """The customer's own notice as sent when its PDF is still on disk, else a fresh one
    (never a print batch holding other customers' letters)."""
    recorded = recorded or _latest_notice(conn, notice.customer.id)
    if recorded and _own_document(conn, recorded["id"], recorded["document_path"]):
        return Path(recorded["document_path"]).read_bytes(), recorded
    return notice_pdf(notice, language), recorded


# The legal form of a company decides the competent court (art. L721-3 Code de commerce:
# the tribunal de commerce hears the disputes between traders and those about commercial
# companies; the tribunal judiciaire everything else: consumers and other natural persons
# who are not traders, civil companies (SCI, SCP, SCM...), associations, the liberal
# professions, including their SEL* companies, commercial by form but civil by purpose).
# The abbreviations and words below are matched on the legal form (customer profile,
# ENCOURS_COMPANY_LEGAL_FORM) or, failing that, on the company name ("Alpha SAS").
_COMMERCIAL = {"SA", "SAS", "SASU", "SARL", "EURL", "SNC", "SCS", "SCA", "SE", "ANONYME",
               "SIMPLIFIEE", "RESPONSABILITE", "COLLECTIF", "COMMANDITE"}  # fmt: skip
_LIBERAL = {"SELARL", "SELAS", "SELASU", "SELAFA", "SELCA", "SELEURL", "SPFPL", "LIBERAL",
            "LIBERALE"}  # fmt: skip
_CIVIL = {"SC", "SCI", "SCP", "SCM", "SCEA", "SCPI", "GAEC", "GFA", "EARL", "CIVILE",
          "ASSOCIATION", "FONDATION", "SYNDICAT"}  # fmt: skip
COURT_COMMERCE = "tribunal_de_commerce"
COURT_JUDICIAIRE = "tribunal_judiciaire"


def company_nature(legal_form: str | None, name: str | None = None) -> str | None:
    """commercial, civil or liberal from a legal form (else the name); None when unknown."""
    import unicodedata

    for text in (legal_form, name):
        if not text:
            continue
        plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
        words = plain.upper().replace(".", "").replace("-", " ").replace("'", " ").split()
        for nature, forms in (("liberal", _LIBERAL), ("civil", _CIVIL),
                              ("commercial", _COMMERCIAL)):  # fmt: skip
            if any(word.strip(",;()") in forms for word in words):
                return nature
    return None


def competent_court(customer: CustomerInfo, debtor_form: str | None,
                    company: CompanyProfile) -> tuple[str | None, str]:  # fmt: skip
    """(court, debtor nature): the tribunal de commerce when creditor and debtor are both
    commercial companies, the tribunal judiciaire when either is not (consumer, civil
    company, association, liberal profession); None when a legal form is unknown."""
    debtor = "consumer" if customer.is_consumer else company_nature(debtor_form, customer.name)
    creditor = company_nature(company.legal_form, company.name)
    if debtor == "consumer" or debtor in ("civil", "liberal") or creditor in ("civil", "liberal"):
        return COURT_JUDICIAIRE, debtor or ""
    if debtor == "commercial" and creditor == "commercial":
        return COURT_COMMERCE, debtor
    return None, debtor or ""


def _debtor_legal_form(conn: Connection, customer_id: int) -> str | None:
    try:
        from encours.store.risk_schema import CustomerProfile
    except ImportError:  # pragma: no cover - the risk module is optional
        return None
    table = CustomerProfile.__table__
    return conn.execute(
        select(table.c.legal_form).where(table.c.customer_id == customer_id)
    ).scalar_one_or_none()


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
    *,
    force: bool = False,
) -> Path:
    """The injonction de payer file of a customer as a ZIP of PDFs in `out_dir`: the formal
    notice, the statement of account, the list of invoices with due dates and amounts, the
    penalty computation and a summary of the request's fields (C. proc. civ. art. 1405 ff.).

    DocumentError unless a formal notice was sent by registered letter and its deadline has
    passed (`check_legal_file`); `force` makes the file anyway and the request says what
    was missing. Only the invoices listed in the notice and still unpaid are claimed. The
    file goes to a French court: every document made for it is in French; `language` only
    applies to the formal notice when its PDF must be made again.
    """
    language = check_language(language)
    check = check_legal_file(conn, customer_id, as_of)
    if check.problems and not force:
        raise DocumentError("; ".join(check.problems))
    recorded = check.recorded
    notice = build_notice(conn, customer_id, as_of, deadline_days)
    if recorded is not None:
        listed = _notice_items(conn, recorded["id"])
        if listed:
            lines = [line for line in notice.lines if line.document_id in listed]
        else:  # a notice recorded without its items: what was overdue on its day
            lines = [line for line in notice.lines if line.due_date < recorded["as_of"]]
        if not lines:
            raise DocumentError(
                _("none of the invoices of formal notice {id} is still unpaid").format(
                    id=recorded["id"])
            )  # fmt: skip
        notice = replace(notice, lines=lines)
    notice_bytes, _recorded = _notice_document(conn, notice, language, recorded)
    debtor_form = _debtor_legal_form(conn, customer_id)
    court, nature = competent_court(notice.customer, debtor_form, notice.company)
    context = {
        "n": notice, "recorded": recorded, "forced": check.missing if force else [],
        "court": court, "debtor_nature": nature,
        "debtor_form": debtor_form,
    }  # fmt: skip
    court_language = "fr"  # a French court
    members = {
        "01-mise-en-demeure.pdf": notice_bytes,
        "02-releve-de-compte.pdf": statement_of_account_pdf(
            conn, customer_id, as_of, court_language
        ),
        "03-factures.pdf": render_pdf("invoice_list.html", court_language, **context),
        "04-calcul-penalites.pdf": render_pdf(
            "penalty_computation.html", court_language, **context
        ),  # fmt: skip
        "05-requete-injonction-de-payer.pdf": render_pdf(
            "injonction_summary.html", court_language, **context
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
    "check_legal_file",
    "company_nature",
    "competent_court",
    "late_invoices",
    "legal_export",
    "legal_file",
    "mark_notice_sent",
    "notice_html",
    "notice_pdf",
    "record_notice",
]
