"""Delivery of approved communications: the outbox of `encours dunning send`.

Channels:
- email: over SMTP (settings: `encours.collections.smtp`), text + HTML body and the
  statement of account (as of the communication's day) as a PDF attachment;
- letter: every approved letter goes into ONE print-ready PDF batch in `out_dir` (each
  letter on its own page, creditor's letterhead, customer's address block); each letter
  is also written alone to `out_dir/letters/<communication id>.pdf`, the path recorded on
  its communication (`document_path`; the batch's path is in the timeline and audit
  entries, `batch_path`);
- phone: the call becomes a task in the collector's worklist
  (`encours.collections.tasks.create_call_task`, when that module is installed). The
  dunning engine already turns phone levels into tasks (status sent) when it approves
  them; the outbox only handles phone rows left `approved` by other paths.

Exactly once, and how
---------------------
Each email goes through three short transactions:
1. claim: `approved -> sending`, a Message-ID (`make_msgid`) recorded, `attempts + 1`,
   committed BEFORE the SMTP transaction starts (an UPDATE guarded by `status =
   'approved'`, so two senders never claim the same row);
2. the SMTP transaction (MAIL, RCPT, DATA) outside any database transaction;
3. right after the server's 250 reply to the end of DATA: `sending -> sent` (with a
   timeline event and an audit entry) committed, before anything else is done.

A crash or a kill leaves at most the one message that was in flight in `sending`. SMTP
offers no way to ask a server whether it received a message, so the rule for a row found
in `sending` by a later run is: send it again WITH THE SAME Message-ID. Where the process
died decides what the server saw:
- before the server's 250 (during connect, MAIL, RCPT, DATA or while the server
  processes the data): the server did not accept the message (a server that loses its
  client before replying drops the message), so the resend is its first and only
  delivery. This is where a kill lands in practice: the sender spends its time waiting
  for the server;
- between the server's 250 and the commit of step 3 (one local commit, well under a
  millisecond to a few ms; RFC 1047 describes this window): the receiver gets a second
  copy with the same Message-ID, which MTAs, mailbox stores and mail clients use to
  drop duplicates. This window cannot be closed with SMTP alone; it is documented here
  instead of being hidden by an "unknown" status that would need a person to decide.
Letters and phone calls have no remote side: a letter batch is written atomically
(temporary file + rename, name derived from the letters it holds) and its rows are
marked sent in one transaction afterwards (a crash before that commit writes the same
batch again); a call task is created in the same transaction that marks the call sent.

Retries: a temporary error (4xx reply, connection refused or dropped, timeout) puts the
email back to `approved` with `next_attempt_at = now + backoff x 2^(attempts-1)` and
`last_error`; a later run sends it once that time has come. After `max_attempts`
attempts, or at once on a permanent error (5xx), it is `failed`, reported and kept
(with a timeline event and an audit entry).

Several senders at once (two `send` commands, cron and a person): the claim records who
holds the email (`claimed_by`, "host:pid") and until when (`next_attempt_at` = now + the
lease, 10 x the SMTP timeout and at least 5 minutes). Another sender leaves an email in
`sending` alone while its holder may still be sending it; it takes it over (same
Message-ID) when the lease has ended, or at once when the holder is a process of this host
that no longer runs (a killed sender) or has no name (rows claimed before this rule). The
take-over is itself a compare-and-swap on (status, claimed_by, next_attempt_at), so two
senders never both take the same email.
"""

from __future__ import annotations

import datetime as dt
import html
import importlib
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from sqlalchemy import Connection, insert, or_, select, update

from encours.collections.pdf import check_language, html_to_pdf, render_html, write_atomically
from encours.collections.smtp import DeliveryError, SmtpSender, SmtpSettings
from encours.collections.statement import load_customer, statement_of_account_pdf
from encours.company import load_company
from encours.store.db import get_engine
from encours.store.outbox_schema import Communication, TimelineEvent
from encours.store.schema import AuditEntry

COMMUNICATIONS = Communication.__table__
TIMELINE = TimelineEvent.__table__
AUDIT = AuditEntry.__table__
C = COMMUNICATIONS.c


@dataclass
class SendReport:
    as_of: dt.date
    emails_sent: int = 0
    emails_retried_later: int = 0  # temporary error, will be retried by a later run
    emails_failed: int = 0
    resent_after_interruption: int = 0  # found in 'sending': sent again, same Message-ID
    held_by_another_sender: int = 0  # in 'sending', its sender's lease still running
    letters: int = 0
    letter_batch: str | None = None
    calls: int = 0
    notes: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {id, channel, to, error}
    retrying: list[dict] = field(default_factory=list)  # {id, to, error, next_attempt_at}

    def as_dict(self) -> dict:
        payload = asdict(self)
        payload["as_of"] = self.as_of.isoformat()
        return payload


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _record(
    conn: Connection, row: dict, status: str, actor: str, day: dt.date, detail: dict
) -> None:
    """Timeline event and audit entry of a delivered or failed communication."""
    what = {"sent": "sent", "failed": "failed"}[status]
    summary = f"{row['channel']} {row['level_code']} {what}"
    if row.get("to_address"):
        summary += f" to {row['to_address']}"
    if status == "failed":
        summary += f": {detail.get('error', '')}"
    conn.execute(
        insert(TIMELINE).values(
            customer_id=row["customer_id"],
            day=day,
            kind="communication",
            actor=actor,
            summary=summary[:2000],
            ref_table="communications",
            ref_id=row["id"],
            data=detail,
        )  # fmt: skip
    )
    conn.execute(
        insert(AUDIT).values(
            actor=actor,
            action=f"communication.{what}",
            entity="communication",
            entity_key=str(row["id"]),
            before={"status": row["status"]},
            after={"status": status, **detail},
        )  # fmt: skip
    )


def _due_rows(conn: Connection, channel: str, now: dt.datetime, limit: int | None) -> list[dict]:
    """Approved rows whose retry time has come, and rows left in `sending` (interrupted)."""
    due = (C.status == "approved") & or_(C.next_attempt_at.is_(None), C.next_attempt_at <= now)
    query = (
        select(COMMUNICATIONS)
        .where(C.channel == channel, or_(due, C.status == "sending"))
        .order_by(C.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [dict(r) for r in conn.execute(query).mappings()]


# --- email ---------------------------------------------------------------------------


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip("> ") or "localhost"


def _recipients(to_address: str | None) -> list[str]:
    return [a.strip() for a in re.split(r"[,;]", to_address or "") if a.strip()]


def build_email(
    row: dict, settings: SmtpSettings, attachment: bytes, filename: str
) -> EmailMessage:
    """The MIME message of a communication: text, HTML alternative, the statement PDF."""
    message = EmailMessage()
    message["Message-ID"] = row["message_id"]
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["From"] = settings.mail_from
    message["To"] = ", ".join(_recipients(row["to_address"]))
    message["Subject"] = row["subject"] or ""
    message["X-Encours-Communication"] = str(row["id"])
    message.set_content(row["body_text"] or "")
    if row["body_html"]:
        message.add_alternative(row["body_html"], subtype="html")
    message.add_attachment(attachment, maintype="application", subtype="pdf", filename=filename)
    return message


def _statement_name(code: str, day: dt.date, language: str) -> str:
    stem = "releve-de-compte" if language == "fr" else "statement-of-account"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", code)
    return f"{stem}-{safe}-{day.isoformat()}.pdf"


LEASE_MIN_SECONDS = 300


def sender_name() -> str:
    """Who claims an email: this process, "host:pid"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_gone(holder: str | None) -> bool:
    """True when the sender that claimed an email cannot be sending it any more: none is
    recorded, or it is a process of this host that has ended, or this process itself (an
    earlier attempt of this run that ended without settling)."""
    if not holder:
        return True
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine: only its lease tells
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _takeable(row: dict, now: dt.datetime) -> bool:
    """An approved email, or one in 'sending' that its sender no longer holds."""
    if row["status"] != "sending":
        return True
    lease_end = row["next_attempt_at"]
    return lease_end is None or lease_end <= now or _holder_gone(row["claimed_by"])


def _claim(conn: Connection, row: dict, settings: SmtpSettings, now: dt.datetime) -> dict | None:
    """approved -> sending with a Message-ID, or the take-over of a 'sending' its sender no
    longer holds; None when another sender claimed it first."""
    message_id = row["message_id"] or make_msgid(
        idstring=f"encours.{row['id']}", domain=_domain(settings.mail_from)
    )
    lease_end = now + dt.timedelta(seconds=max(LEASE_MIN_SECONDS, 10 * settings.timeout))
    holder = sender_name()
    same = [C.id == row["id"], C.status == row["status"]]  # compare-and-swap on the claim
    if row["status"] == "sending":
        same += [C.claimed_by.is_(None) if row["claimed_by"] is None
                 else C.claimed_by == row["claimed_by"],
                 C.next_attempt_at.is_(None) if row["next_attempt_at"] is None
                 else C.next_attempt_at == row["next_attempt_at"]]  # fmt: skip
    result = conn.execute(
        update(COMMUNICATIONS)
        .where(*same)
        .values(
            status="sending",
            message_id=message_id,
            attempts=C.attempts + 1,
            next_attempt_at=lease_end,
            claimed_by=holder,
        )  # fmt: skip
    )
    if result.rowcount != 1:
        return None  # taken by someone else meanwhile
    return {**row, "status": "sending", "message_id": message_id, "attempts": row["attempts"] + 1,
            "claimed_by": holder, "next_attempt_at": lease_end}  # fmt: skip


def _send_emails(
    url: str | None, report: SendReport, settings: SmtpSettings, now: dt.datetime,
    limit: int | None, actor: str,
) -> None:  # fmt: skip
    engine = get_engine(url)
    with engine.connect() as conn:
        rows = _due_rows(conn, "email", now, limit)
    if not rows:
        return
    with SmtpSender(settings) as sender:
        for row in rows:
            if not _takeable(row, now):
                report.held_by_another_sender += 1
                continue
            interrupted = row["status"] == "sending"
            recipients = _recipients(row["to_address"])
            with engine.begin() as conn:  # the attachment, before the claim: a short window
                language = check_language(row["language"])
                code = load_customer(conn, row["customer_id"]).code
                pdf = statement_of_account_pdf(conn, row["customer_id"], row["as_of"], language)
            with engine.begin() as conn:
                claimed = _claim(conn, row, settings, now)
            if claimed is None:
                continue
            if not recipients:
                error = DeliveryError("no email address for this communication", temporary=False)
            else:
                message = build_email(
                    claimed, settings, pdf, _statement_name(code, row["as_of"], language)
                )
                try:
                    sender.send(message, recipients)
                    error = None
                except DeliveryError as exc:
                    error = exc
            with engine.begin() as conn:
                _settle(conn, claimed, error, settings, report, actor, now)
            if interrupted and error is None:
                report.resent_after_interruption += 1


def _settle(
    conn: Connection, row: dict, error: DeliveryError | None, settings: SmtpSettings,
    report: SendReport, actor: str, now: dt.datetime,
) -> None:  # fmt: skip
    guard = (C.id == row["id"]) & (C.status == "sending") & (C.claimed_by == row["claimed_by"])
    day = row["as_of"]
    if error is None:
        conn.execute(update(COMMUNICATIONS).where(guard).values(status="sent", sent_at=_utcnow(),
                                                                last_error=None))  # fmt: skip
        _record(conn, row, "sent", actor, day, {"message_id": row["message_id"],
                                                "attempts": row["attempts"]})  # fmt: skip
        report.emails_sent += 1
        return
    if error.temporary and row["attempts"] < settings.max_attempts:
        delay = settings.backoff_seconds * 2 ** (row["attempts"] - 1)
        retry_at = now + dt.timedelta(seconds=delay)
        conn.execute(
            update(COMMUNICATIONS).where(guard)
            .values(status="approved", next_attempt_at=retry_at, last_error=str(error),
                    claimed_by=None)
        )  # fmt: skip
        report.emails_retried_later += 1
        report.retrying.append({"id": row["id"], "to": row["to_address"], "error": str(error),
                                "next_attempt_at": retry_at.isoformat()})  # fmt: skip
        return
    reason = str(error)
    if error.temporary:
        reason = f"gave up after {row['attempts']} attempts: {reason}"
    conn.execute(update(COMMUNICATIONS).where(guard).values(status="failed", last_error=reason))
    _record(conn, row, "failed", actor, day, {"error": reason, "message_id": row["message_id"]})
    report.emails_failed += 1
    report.failed.append({"id": row["id"], "channel": "email", "to": row["to_address"],
                          "error": reason})  # fmt: skip


# --- letters -------------------------------------------------------------------------

_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)


def _letter_body(row: dict) -> str | None:
    if row["body_html"]:
        match = _BODY.search(row["body_html"])
        return match.group(1) if match else row["body_html"]
    if row["body_text"]:
        return "".join(f"<p>{html.escape(p)}</p>" for p in row["body_text"].split("\n\n"))
    return None


def _send_letters(
    url: str | None, report: SendReport, as_of: dt.date, out_dir: Path, now: dt.datetime,
    limit: int | None, actor: str,
) -> None:  # fmt: skip
    engine = get_engine(url)
    with engine.begin() as conn:
        rows = _due_rows(conn, "letter", now, limit)
        ids = [r["id"] for r in rows]
        if not ids:
            return
        conn.execute(
            update(COMMUNICATIONS)
            .where(C.id.in_(ids), C.status.in_(("approved", "sending")))
            .values(status="sending", attempts=C.attempts + 1)
        )
    company = load_company()
    pages, printed = [], []
    with engine.connect() as conn:
        for row in rows:
            body = _letter_body(row)
            if body is None:
                with engine.begin() as tx:
                    tx.execute(update(COMMUNICATIONS).where(C.id == row["id"])
                               .values(status="failed", last_error="nothing to print"))  # fmt: skip
                    _record(tx, row, "failed", actor, row["as_of"], {"error": "nothing to print"})
                report.failed.append({"id": row["id"], "channel": "letter", "to": None,
                                      "error": "nothing to print"})  # fmt: skip
                continue
            letter = {
                "customer": load_customer(conn, row["customer_id"]),
                "day": as_of,
                "reference": f"{row['level_code']}-{row['id']}",
                "subject": row["subject"],
                "body_html": body,
            }
            pages.append(render_html("letter.html", check_language(row["language"]),
                                     company=company, l=letter))  # fmt: skip
            printed.append(row)
    if not printed:
        return
    batch = render_html("batch.html", "fr", title=f"letters {as_of.isoformat()}", pages=pages)
    name = f"letters-{as_of.isoformat()}-{printed[0]['id']}-{printed[-1]['id']}.pdf"
    path = write_atomically(out_dir / name, html_to_pdf(batch))
    # Each letter also on its own: the communication points at ITS letter (a legal file or
    # an export must never carry the other customers' letters of the batch).
    own = {
        row["id"]: write_atomically(
            letter_path(out_dir, row["id"]),
            html_to_pdf(
                render_html("batch.html", "fr", title=row["subject"] or name, pages=[page])
            ),
        )  # fmt: skip
        for row, page in zip(printed, pages, strict=True)
    }
    with engine.begin() as conn:
        sent_at = _utcnow()
        for row in printed:
            own_path = str(own[row["id"]])
            conn.execute(
                update(COMMUNICATIONS).where(C.id == row["id"], C.status == "sending")
                .values(status="sent", sent_at=sent_at, document_path=own_path, last_error=None)
            )  # fmt: skip
            _record(conn, row, "sent", actor, row["as_of"],
                    {"document_path": own_path, "batch_path": str(path)})  # fmt: skip
    report.letters += len(printed)
    report.letter_batch = str(path)


def letter_path(out_dir: Path, communication_id: int) -> Path:
    """Where the PDF of one printed letter is written: `<batch dir>/letters/<id>.pdf`."""
    return Path(out_dir) / "letters" / f"{communication_id}.pdf"


# --- phone ---------------------------------------------------------------------------


def _call_task_factory():  # noqa: ANN202
    try:
        module = importlib.import_module("encours.collections.tasks")
    except ImportError:
        return None
    return getattr(module, "create_call_task", None)


def _send_calls(
    url: str | None, report: SendReport, as_of: dt.date, now: dt.datetime, limit: int | None,
    actor: str,
) -> None:  # fmt: skip
    engine = get_engine(url)
    with engine.connect() as conn:
        rows = _due_rows(conn, "phone", now, limit)
    if not rows:
        return
    factory = _call_task_factory()
    if factory is None:
        report.notes.append(
            "phone calls marked sent without a task: "
            "encours.collections.tasks.create_call_task is not available"
        )
    for row in rows:
        with engine.begin() as conn:  # the task and the status change commit together
            done = conn.execute(
                update(COMMUNICATIONS).where(C.id == row["id"], C.status == row["status"])
                .values(status="sent", sent_at=_utcnow(), attempts=C.attempts + 1)
            ).rowcount  # fmt: skip
            if done != 1:
                continue
            if factory is not None:
                factory(conn, row)  # the engine's task, in this transaction
            _record(conn, row, "sent", actor, row["as_of"], {"task": factory is not None})
        report.calls += 1


# --- entry point ---------------------------------------------------------------------


def send_pending(
    db_url: str | None,
    as_of: dt.date,
    out_dir: Path,
    smtp: SmtpSettings | None = None,
    limit: int | None = None,
    *,
    now: dt.datetime | None = None,
    actor: str = "cli",
) -> SendReport:
    """Deliver every approved communication (see the module docstring for the rules).

    `limit` caps the number of communications per channel in this run; `now` (naive UTC,
    default the clock) decides which retries are due.
    """
    settings = smtp or SmtpSettings.from_env()
    now = now or _utcnow()
    report = SendReport(as_of=as_of)
    _send_emails(db_url, report, settings, now, limit, actor)
    _send_letters(db_url, report, as_of, Path(out_dir), now, limit, actor)
    _send_calls(db_url, report, as_of, now, limit, actor)
    return report


__all__ = ["SendReport", "build_email", "letter_path", "send_pending"]
