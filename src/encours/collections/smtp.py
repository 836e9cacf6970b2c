"""SMTP delivery: settings from the environment and errors sorted into temporary/permanent.

Settings: ENCOURS_SMTP_HOST (default localhost), ENCOURS_SMTP_PORT (25), ENCOURS_SMTP_USER
and ENCOURS_SMTP_PASSWORD (login when set), ENCOURS_SMTP_STARTTLS (true/false),
ENCOURS_MAIL_FROM (the sender address; default the company's email), ENCOURS_SMTP_TIMEOUT
(seconds, 30), ENCOURS_SMTP_MAX_ATTEMPTS (5), ENCOURS_SMTP_BACKOFF (seconds, 300).

Errors (RFC 5321 reply codes): 4xx replies, refused or dropped connections and timeouts
are temporary (the message is retried later); 5xx replies are permanent (the message is
failed and kept for review). Secrets are never logged nor stored in `last_error`.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

_TRUE = {"1", "true", "yes", "on", "oui"}


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False  # implicit TLS from the first byte (SMTPS, port 465)
    cafile: str | None = None  # a CA to trust besides the system's (a private relay's)
    mail_from: str = "encours@localhost"
    timeout: float = 30.0
    max_attempts: int = 5  # after that many temporary failures the message is failed
    backoff_seconds: int = 300  # delay after the first temporary failure, doubled each time

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> SmtpSettings:
        env = dict(os.environ if env is None else env)
        mail_from = env.get("ENCOURS_MAIL_FROM") or env.get("ENCOURS_COMPANY_EMAIL")
        implicit = (env.get("ENCOURS_SMTP_SSL") or "").strip().lower() in _TRUE
        return cls(
            host=env.get("ENCOURS_SMTP_HOST") or cls.host,
            port=int(env.get("ENCOURS_SMTP_PORT") or (465 if implicit else cls.port)),
            user=env.get("ENCOURS_SMTP_USER") or None,
            password=env.get("ENCOURS_SMTP_PASSWORD") or None,
            starttls=(env.get("ENCOURS_SMTP_STARTTLS") or "").strip().lower() in _TRUE,
            ssl=implicit,
            cafile=env.get("ENCOURS_SMTP_CAFILE") or None,
            mail_from=mail_from or cls.mail_from,
            timeout=float(env.get("ENCOURS_SMTP_TIMEOUT") or cls.timeout),
            max_attempts=int(env.get("ENCOURS_SMTP_MAX_ATTEMPTS") or cls.max_attempts),
            backoff_seconds=int(env.get("ENCOURS_SMTP_BACKOFF") or cls.backoff_seconds),
        )


class DeliveryError(Exception):
    """A message not delivered; `temporary` says whether trying again later may work."""

    def __init__(self, message: str, *, temporary: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.code = code


def _reply_text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def classify(exc: Exception) -> DeliveryError:
    """The DeliveryError for an exception raised by smtplib or the socket layer."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        detail = "; ".join(
            f"{rcpt}: {code} {_reply_text(msg)}" for rcpt, (code, msg) in exc.recipients.items()
        )
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return DeliveryError(
            f"recipient refused: {detail}", temporary=not permanent, code=max(codes, default=None)
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        return DeliveryError(
            f"{code} {_reply_text(exc.smtp_error)}", temporary=not (500 <= code < 600), code=code
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError | TimeoutError):
        return DeliveryError(f"connection error: {exc}", temporary=True)
    if isinstance(exc, smtplib.SMTPException):
        return DeliveryError(f"SMTP error: {exc}", temporary=True)
    raise exc


class SmtpSender:
    """One SMTP connection reused for a batch; reconnects after an error."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context(cafile=s.cafile) if (s.ssl or s.starttls) else None
        if s.ssl:  # SMTPS: TLS from the first byte (STARTTLS would make no sense then)
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                                  context=context)  # fmt: skip
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            smtp.ehlo()
            if s.starttls and not s.ssl:
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage, recipients: list[str]) -> None:
        """Deliver `message`; raises DeliveryError when the server did not accept it."""
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            refused = self._smtp.send_message(
                message, from_addr=self.settings.mail_from, to_addrs=recipients
            )
        except Exception as exc:  # noqa: BLE001 - sorted by classify, re-raised if unknown
            self.close()
            raise classify(exc) from exc
        if refused:  # accepted for some recipients only: delivered, the rest is reported
            detail = "; ".join(f"{r}: {c} {_reply_text(m)}" for r, (c, m) in refused.items())
            raise DeliveryError(f"partly refused (delivered to the others): {detail}",
                                temporary=False)  # fmt: skip

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except Exception:  # noqa: BLE001 - the connection is being dropped anyway
                self._smtp.close()
            self._smtp = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DeliveryError", "SmtpSender", "SmtpSettings", "classify"]
