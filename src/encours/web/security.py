"""Sessions, CSRF, cookie flags, upload size limit and security headers.

- Sessions are signed cookies (itsdangerous, key from ENCOURS_SECRET_KEY; a random key per
  process when unset, with a warning: sessions then end when the server restarts). The
  cookie holds the user id, a CSRF token and a fingerprint of the password hash, so that a
  password change or a deactivation ends every session of that user at the next request.
  Cookies are HttpOnly and SameSite=Lax; `Secure` is set when the request came over https
  (uvicorn reads X-Forwarded-Proto from a trusted proxy) or when ENCOURS_COOKIE_SECURE=1.
  On plain http://127.0.0.1 (the demo) the flag is left off, otherwise no browser would
  send the cookie back; set ENCOURS_COOKIE_SECURE=1 behind a TLS proxy that does not pass
  the scheme.
- CSRF: every form posts a `csrf_token` field (HTMX requests send the X-CSRF-Token header)
  equal to the session's token (before login: a signed token in its own cookie). Compared
  in constant time; a missing or wrong token answers 403.
- Request bodies are limited (MAX_UPLOAD_BYTES, 50 MB by default, ENCOURS_MAX_UPLOAD_MB):
  a larger Content-Length, or a body that grows beyond it, answers 413 before it is read.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("encours.web")

SESSION_COOKIE = "encours_session"
CSRF_COOKIE = "encours_csrf"
LANG_COOKIE = "encours_lang"
SESSION_MAX_AGE = 12 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_UPLOAD_BYTES = int(float(os.environ.get("ENCOURS_MAX_UPLOAD_MB", "50")) * 1024 * 1024)

_process_key: str | None = None


def secret_key() -> str:
    global _process_key
    key = os.environ.get("ENCOURS_SECRET_KEY")
    if key:
        return key
    if _process_key is None:
        _process_key = secrets.token_urlsafe(48)
        log.warning(
            "ENCOURS_SECRET_KEY is not set: using a random key for this process "
            "(sessions end when the server restarts)"
        )
    return _process_key


class Signer:
    def __init__(self, key: str) -> None:
        self.session = URLSafeTimedSerializer(key, salt="encours.session")
        self.csrf = URLSafeTimedSerializer(key, salt="encours.csrf")

    def dump_session(self, user_id: int, version: str, csrf: str) -> str:
        return self.session.dumps({"u": user_id, "v": version, "c": csrf})

    def load_session(self, value: str | None) -> dict[str, Any] | None:
        if not value:
            return None
        try:
            data = self.session.loads(value, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and {"u", "v", "c"} <= set(data) else None

    def load_prelogin_csrf(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            token = self.csrf.loads(value, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None


def cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https" or os.environ.get("ENCOURS_COOKIE_SECURE") == "1"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=True, samesite="lax",
        secure=cookie_secure(request), path="/",
    )  # fmt: skip


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


class BodyTooLarge(StarletteHTTPException):
    """Raised while reading a body that grows past the limit (an HTTPException, so that
    FastAPI's body parsing passes it on as a 413 instead of a 400)."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="the request body is too large")


class LimitsAndHeadersMiddleware:
    """Body size limit, security headers and a Server-Timing header (pure ASGI)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_UPLOAD_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.max_body
            except ValueError:
                too_large = True
            if too_large:
                await _send_413(send, self.max_body)
                return
        started = time.perf_counter()
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge()
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"content-security-policy", _CSP),
                    (b"server-timing",
                     f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()),
                ]  # fmt: skip
                names = {k.lower() for k, _v in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra if k not in names
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            if not response_started:
                await _send_413(send, self.max_body)


# The docs page (/docs) loads swagger-ui from our own static files: no CDN anywhere.
_CSP = (
    b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({
        "type": "about:blank", "title": "Request Entity Too Large", "status": 413,
        "detail": f"the request body exceeds {limit // (1024 * 1024)} MB",
    }).encode()  # fmt: skip
    await send({
        "type": "http.response.start", "status": 413,
        "headers": [(b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
