"""The daily digest of open alerts: one email per assignee, in the assignee's language.

Recipients: `ENCOURS_DIGEST_RECIPIENTS="Alice Martin=alice@example.fr;Bob=bob@example.com"`
maps an assignee (the customers' `collector` / `account_owner` names) to addresses
(several separated by `,`); an assignee without an entry, and the unassigned alerts, go to
`ENCOURS_DIGEST_TO` (comma list). A digest with no address is not sent (reported).
Language: the `language` of the web user whose `owner_name` (or username) is the assignee,
else the current language (`--lang` / ENCOURS_LANG, French by default).

Sent over SMTP with the settings of `encours.collections.smtp` (ENCOURS_SMTP_HOST, ...,
ENCOURS_MAIL_FROM). Run it after `encours monitor` (see `risk.monitor` for the cron line).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import Connection, inspect, text

from encours.collections.smtp import DeliveryError, SmtpSender, SmtpSettings
from encours.i18n import _, current_language, set_language
from encours.risk.monitor import SEVERITY_RANK, alert_title, kind_label, list_alerts
from encours.store.db import unit_of_work


@dataclass
class Digest:
    assignee: str | None
    language: str
    recipients: list[str]
    subject: str
    body: str
    alert_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"assignee": self.assignee, "language": self.language,
                "recipients": self.recipients, "subject": self.subject,
                "alerts": self.alert_ids, "body": self.body}  # fmt: skip


@contextmanager
def _language(lang: str) -> Iterator[None]:
    before = current_language()
    set_language(lang)
    try:
        yield
    finally:
        set_language(before)


def _addresses(value: str) -> list[str]:
    return [a.strip() for a in re.split(r"[,\s]+", value or "") if a.strip()]


def recipients_from_env(
    env: dict[str, str] | None = None,
) -> tuple[dict[str, list[str]], list[str]]:
    """(assignee -> addresses, default addresses) from the environment."""
    env = dict(os.environ if env is None else env)
    mapping: dict[str, list[str]] = {}
    for part in (env.get("ENCOURS_DIGEST_RECIPIENTS") or "").split(";"):
        name, sep, emails = part.partition("=")
        if sep and name.strip() and _addresses(emails):
            mapping[name.strip()] = _addresses(emails)
    return mapping, _addresses(env.get("ENCOURS_DIGEST_TO") or "")


def _languages(conn: Connection) -> dict[str, str]:
    if not inspect(conn).has_table("users"):
        return {}
    rows = conn.execute(
        text("SELECT username, owner_name, language FROM users WHERE language IS NOT NULL")
    ).all()
    result: dict[str, str] = {}
    for username, _owner_name, language in rows:
        result.setdefault(username, language)
    for _username, owner_name, language in rows:  # the owner name wins over a username
        if owner_name:
            result[owner_name] = language
    return result


def _render(assignee: str | None, alerts: list[dict], as_of: dt.date) -> tuple[str, str]:
    """(subject, text body) in the current language."""
    name = assignee or _("unassigned alerts")
    count = len(alerts)
    subject = _("[encours] {n} open alert(s) for {name} on {day}").format(
        n=count, name=name, day=as_of.isoformat()
    )
    new = sum(1 for a in alerts if a["as_of"] == as_of)
    lines = [
        _("Hello {name},").format(name=assignee) if assignee else _("Hello,"),
        "",
        _("{n} open alert(s) on {day}, {new} new.").format(n=count, day=as_of.isoformat(), new=new),
    ]
    ordered = sorted(alerts, key=lambda a: (-SEVERITY_RANK.get(a["severity"], 0),
                                            a["as_of"] != as_of, a["id"]))  # fmt: skip
    current = None
    severity_titles = {
        "critical": _("Critical"),
        "warning": _("Warning"),
        "info": _("For information"),
    }
    for alert in ordered:
        if alert["severity"] != current:
            current = alert["severity"]
            lines += ["", severity_titles.get(current, current)]
        title = alert_title(alert["kind"], alert["details"] or {})
        since = (
            _("new")
            if alert["as_of"] == as_of
            else _("since {day}").format(day=alert["as_of"].isoformat())
        )
        lines.append(
            f"- #{alert['id']} {alert['customer_code']} {alert['customer_name']}: "
            f"{kind_label(alert['kind'])}. {title} ({since})"
        )
    lines += [
        "",
        _("Acknowledge an alert with: encours alerts ack ID --comment TEXT"),
        "",
        "-- ",
        "encours",
    ]
    return subject, "\n".join(lines) + "\n"


def build_digests(
    conn: Connection, as_of: dt.date, env: dict[str, str] | None = None
) -> list[Digest]:
    """One digest per assignee having open alerts (the unassigned ones together)."""
    mapping, default_to = recipients_from_env(env)
    languages = _languages(conn)
    fallback = current_language()
    by_assignee: dict[str | None, list[dict]] = {}
    for alert in list_alerts(conn, status="open"):
        by_assignee.setdefault(alert["assignee"], []).append(alert)
    digests = []
    for assignee in sorted(by_assignee, key=lambda a: (a is None, a or "")):
        alerts = by_assignee[assignee]
        lang = languages.get(assignee or "", fallback)
        with _language(lang):
            subject, body = _render(assignee, alerts, as_of)
        recipients = mapping.get(assignee or "", default_to)
        digests.append(Digest(assignee, lang, list(recipients), subject, body,
                              [a["id"] for a in alerts]))  # fmt: skip
    return digests


def build_message(digest: Digest, settings: SmtpSettings, as_of: dt.date) -> EmailMessage:
    message = EmailMessage()
    domain = settings.mail_from.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring="digest", domain=domain)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["From"] = settings.mail_from
    message["To"] = ", ".join(digest.recipients)
    message["Subject"] = digest.subject
    message["X-Encours-Digest"] = as_of.isoformat()
    message.set_content(digest.body)
    message["Content-Language"] = digest.language  # after set_content, which resets Content-*
    return message


@dataclass
class DigestReport:
    sent: list[dict] = field(default_factory=list)
    no_recipient: list[str | None] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"sent": self.sent, "no_recipient": self.no_recipient, "failed": self.failed}


def send_digests(
    db_url: str | None,
    as_of: dt.date,
    *,
    settings: SmtpSettings | None = None,
    env: dict[str, str] | None = None,
) -> DigestReport:
    """Build and send the digests of the day; the alerts themselves are not changed."""
    with unit_of_work(db_url) as conn:
        digests = build_digests(conn, as_of, env)
    settings = settings or SmtpSettings.from_env(env)
    report = DigestReport()
    with SmtpSender(settings) as sender:
        for digest in digests:
            if not digest.recipients:
                report.no_recipient.append(digest.assignee)
                continue
            message = build_message(digest, settings, as_of)
            entry = {"assignee": digest.assignee, "recipients": digest.recipients,
                     "alerts": len(digest.alert_ids)}  # fmt: skip
            try:
                sender.send(message, digest.recipients)
            except DeliveryError as exc:
                report.failed.append({**entry, "error": str(exc)})
                continue
            report.sent.append(entry)
    return report
