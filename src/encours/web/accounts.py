"""Users, API tokens and logins: the use cases behind `encours users ...` and the admin page.

Every change (user created, role or status changed, password reset, token created or
revoked) is written to the audit log in the same transaction. Password hashes and tokens
never appear in the audit log: a password change is logged as {"password": "changed"}.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, func, insert, select, update

from encours.i18n import N_, TranslatableError
from encours.store.db import unit_of_work
from encours.store.schema import AuditEntry
from encours.store.web_schema import ApiToken, LoginAttempt, User
from encours.web.roles import COLLECTOR, ROLES, SALES, check_role

USERS = User.__table__
TOKENS = ApiToken.__table__
ATTEMPTS = LoginAttempt.__table__
AUDIT = AuditEntry.__table__

TOKEN_PREFIX = "enc_"
MIN_PASSWORD_LENGTH = 10
# Login rate limit: refused while the last window holds this many failures.
LOGIN_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_IP = 30

_hasher = PasswordHasher()
# Verified against when the user does not exist, so that timing does not reveal it.
_DUMMY_HASH = _hasher.hash("not a real password, only for constant-time failures")


class AccountError(TranslatableError):
    """Invalid input for a user or token operation (message for the person)."""


def _checked_role(role: str) -> str:
    """The role normalised (roles.check_role), or an AccountError naming the roles."""
    try:
        return check_role(role)
    except ValueError:
        raise AccountError(N_("unknown role {role!r}: expected one of {roles}"), role=role,
                           roles=", ".join(ROLES)) from None  # fmt: skip


# Roles that work on their own accounts only: without an owner name they would see or act
# on nothing, so they are never created without one.
OWNER_ROLES = frozenset({COLLECTOR, SALES})


class OwnerRequired(AccountError):
    """A collector or sales user created without an owner name."""

    def __init__(self, role: str) -> None:
        super().__init__(
            N_("the {role} role needs an owner name: the collector or account owner name "
               "as written in the ledger"),
            role=role,
        )  # fmt: skip
        self.role = role


@dataclass(frozen=True)
class Principal:
    """Who is acting: a logged-in user or an API token."""

    name: str
    role: str
    owner_name: str | None = None
    user_id: int | None = None
    kind: str = "user"  # user | token
    session_version: str = ""

    @property
    def actor(self) -> str:
        return self.name if self.kind == "user" else f"token:{self.name}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def audit(
    conn: Connection,
    actor: str,
    action: str,
    entity: str,
    key: str,
    before: dict | None,
    after: dict | None,
) -> None:
    conn.execute(
        insert(AUDIT).values(
            at=_now(), actor=actor, action=action, entity=entity, entity_key=key,
            before=before, after=after,
        )
    )  # fmt: skip


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(N_("the password must have at least {n} characters"),
                           n=MIN_PASSWORD_LENGTH)  # fmt: skip
    return _hasher.hash(password)


def session_version(password_hash: str) -> str:
    """Changes when the password changes, so that older sessions stop working."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _user_view(row: object) -> dict:
    m = row._mapping  # type: ignore[attr-defined]
    return {
        "username": m["username"], "role": m["role"], "owner_name": m["owner_name"],
        "active": bool(m["active"]),
    }  # fmt: skip


def create_user(
    conn: Connection,
    username: str,
    role: str,
    password: str,
    *,
    actor: str,
    owner_name: str | None = None,
) -> int:
    username = username.strip()
    if not username or len(username) > 100 or any(c.isspace() for c in username):
        raise AccountError(N_("a user name is 1 to 100 characters without spaces"))
    role = _checked_role(role)
    if role in OWNER_ROLES and not (owner_name or "").strip():
        raise OwnerRequired(role)
    exists = conn.execute(select(USERS.c.id).where(USERS.c.username == username)).first()
    if exists:
        raise AccountError(N_("user {name!r} already exists"), name=username)
    values = {
        "username": username, "role": role, "password_hash": hash_password(password),
        "owner_name": (owner_name or "").strip() or None, "active": True, "created_at": _now(),
    }  # fmt: skip
    user_id = conn.execute(insert(USERS).values(**values).returning(USERS.c.id)).scalar_one()
    after = {k: values[k] for k in ("username", "role", "owner_name", "active")}
    audit(conn, actor, "create", "user", username, None, after)
    return user_id


def update_user(
    conn: Connection,
    user_id: int,
    *,
    actor: str,
    role: str | None = None,
    active: bool | None = None,
    owner_name: str | None = None,
    password: str | None = None,
) -> None:
    row = conn.execute(select(USERS).where(USERS.c.id == user_id)).first()
    if row is None:
        raise AccountError(N_("no such user"))
    before = _user_view(row)
    changes: dict[str, object] = {}
    if role is not None:
        changes["role"] = _checked_role(role)
    if active is not None:
        changes["active"] = active
    if owner_name is not None:
        changes["owner_name"] = owner_name.strip() or None
    if password is not None:
        changes["password_hash"] = hash_password(password)
    if not changes:
        return
    # a collector or sales user works on the accounts of an owner: never left without one
    role_after = changes.get("role", before["role"])
    owner_after = changes["owner_name"] if "owner_name" in changes else before["owner_name"]
    if role_after in OWNER_ROLES and not owner_after:
        raise OwnerRequired(str(role_after))
    conn.execute(update(USERS).where(USERS.c.id == user_id).values(**changes))
    after = {**before, **{k: v for k, v in changes.items() if k != "password_hash"}}
    if password is not None:
        before, after = {**before, "password": "unchanged"}, {**after, "password": "changed"}
    audit(conn, actor, "update", "user", before["username"], before, after)


def list_users(conn: Connection) -> list[dict]:
    rows = conn.execute(select(USERS).order_by(USERS.c.username)).mappings().all()
    return [
        {k: r[k] for k in ("id", "username", "role", "owner_name", "active", "created_at",
                           "last_login_at")}
        for r in rows
    ]  # fmt: skip


def get_user(conn: Connection, user_id: int) -> dict | None:
    row = conn.execute(select(USERS).where(USERS.c.id == user_id)).mappings().first()
    return dict(row) if row else None


# --- login -------------------------------------------------------------------------------


def login_blocked(conn: Connection, username: str, ip: str) -> bool:
    """True while the username (or the address) has too many recent failures."""
    since = _now() - LOGIN_WINDOW
    failures = ATTEMPTS.c.success.is_(False) & (ATTEMPTS.c.at >= since)
    per_user = conn.execute(
        select(func.count()).where(failures & (ATTEMPTS.c.username == username))
    ).scalar_one()
    if per_user >= MAX_FAILURES_PER_USER:
        return True
    per_ip = conn.execute(select(func.count()).where(failures & (ATTEMPTS.c.ip == ip))).scalar_one()
    return per_ip >= MAX_FAILURES_PER_IP


def authenticate(conn: Connection, username: str, password: str, ip: str) -> Principal | None:
    """The user if the password matches an active account; every attempt is recorded."""
    username = username.strip()[:100]
    row = conn.execute(select(USERS).where(USERS.c.username == username)).mappings().first()
    try:
        ok: bool = _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and row is not None and bool(row["active"])
    conn.execute(insert(ATTEMPTS).values(username=username, ip=ip[:64], at=_now(), success=ok))
    if not ok or row is None:
        return None
    changes: dict[str, object] = {"last_login_at": _now()}
    if _hasher.check_needs_rehash(row["password_hash"]):
        changes["password_hash"] = _hasher.hash(password)
    conn.execute(update(USERS).where(USERS.c.id == row["id"]).values(**changes))
    return principal_for_user(conn, row["id"])


def principal_for_user(conn: Connection, user_id: int) -> Principal | None:
    row = conn.execute(select(USERS).where(USERS.c.id == user_id)).mappings().first()
    if row is None or not row["active"]:
        return None
    return Principal(
        name=row["username"], role=row["role"], owner_name=row["owner_name"], user_id=row["id"],
        session_version=session_version(row["password_hash"]),
    )  # fmt: skip


# --- API tokens --------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    conn: Connection, name: str, role: str, *, actor: str, owner_name: str | None = None
) -> str:
    """A new token, returned once (only its SHA-256 is stored)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError(N_("a token name is 1 to 100 characters"))
    role = _checked_role(role)
    if conn.execute(select(TOKENS.c.id).where(TOKENS.c.name == name)).first():
        raise AccountError(N_("token {name!r} already exists"), name=name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(TOKENS).values(
            name=name, role=role, owner_name=(owner_name or "").strip() or None,
            token_hash=_token_hash(token), prefix=token[:10], created_by=actor, created_at=_now(),
        )
    )  # fmt: skip
    audit(conn, actor, "create", "api_token", name, None, {"name": name, "role": role})
    return token


def revoke_token(conn: Connection, name: str, *, actor: str) -> None:
    row = conn.execute(select(TOKENS).where(TOKENS.c.name == name)).mappings().first()
    if row is None:
        raise AccountError(N_("no token named {name!r}"), name=name)
    if row["revoked_at"] is not None:
        return
    conn.execute(update(TOKENS).where(TOKENS.c.id == row["id"]).values(revoked_at=_now()))
    audit(conn, actor, "revoke", "api_token", name, {"revoked": False}, {"revoked": True})


def list_tokens(conn: Connection) -> list[dict]:
    cols = [TOKENS.c[k] for k in ("id", "name", "role", "owner_name", "prefix", "created_by",
                                  "created_at", "last_used_at", "revoked_at")]  # fmt: skip
    return [dict(r) for r in conn.execute(select(*cols).order_by(TOKENS.c.name)).mappings()]


def principal_for_token(conn: Connection, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = (
        conn.execute(select(TOKENS).where(TOKENS.c.token_hash == _token_hash(token)))
        .mappings()
        .first()
    )
    if row is None or row["revoked_at"] is not None:
        return None
    last = row["last_used_at"]
    if last is None or _now() - last > dt.timedelta(minutes=5):  # not a write per request
        conn.execute(update(TOKENS).where(TOKENS.c.id == row["id"]).values(last_used_at=_now()))
    return Principal(name=row["name"], role=row["role"], owner_name=row["owner_name"],
                     kind="token")  # fmt: skip


# --- demo --------------------------------------------------------------------------------

DEMO_USER = "demo"


def ensure_demo_user(db_url: str | None) -> tuple[str, str]:
    """An admin `demo` user with a known password: ENCOURS_DEMO_PASSWORD, else a new random
    one (the caller prints it once). Idempotent: an existing demo user gets the password
    set again (and is reactivated as admin), so the returned credentials always work."""
    password = os.environ.get("ENCOURS_DEMO_PASSWORD") or secrets.token_urlsafe(12)
    with unit_of_work(db_url) as conn:
        row = conn.execute(select(USERS).where(USERS.c.username == DEMO_USER)).mappings().first()
        if row is None:
            create_user(conn, DEMO_USER, "admin", password, actor="demo")
        else:
            try:
                same: bool = _hasher.verify(row["password_hash"], password)
            except (VerificationError, InvalidHashError):
                same = False
            update_user(conn, row["id"], actor="demo", role="admin", active=True,
                        password=None if same else password)  # fmt: skip
    return DEMO_USER, password
