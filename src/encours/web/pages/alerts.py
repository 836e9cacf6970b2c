"""Alerts inbox (and acknowledgement), the risk permissions of the web, and the risk tiles of
the portfolio page (risk classes, open alerts, 13-week cash-in forecast).

Who sees which alert: credit managers and admins every one; a collector the alerts assigned
to them or on the customers they collect; a sales user those assigned to them or on their
own accounts. Accountants and read-only users have no inbox. Acknowledging (with a comment)
is open to whoever sees the alert.

The tiles follow the portfolio filters and the user's own accounts: the class of each
customer (its latest assessment on the as-of day) and the scored open invoices of the
forecast are computed once per (database, as-of day, ledger version) and cached, then
filtered with polars.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import (
    Connection,
    and_,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError

from encours.store.db import unit_of_work
from encours.store.frames import query_frame
from encours.store.schema import AuditEntry, Customer
from encours.web import charts, queries
from encours.web.accounts import Principal
from encours.web.cache import BuildCache
from encours.web.deps import AsOf, DbUrl, csrf_protect, language, render, require
from encours.web.formatting import Formatter, gettext_for
from encours.web.roles import (
    COLLECTOR,
    OWN_ACCOUNTS_ONLY,
    SALES,
    allowed,
)

# --- permissions (to move into web/roles.py) ---------------------------------------------

CUSTOMERS = Customer.__table__
AUDIT = AuditEntry.__table__
ALERT_STATUSES = ("open", "acknowledged", "closed")
SEVERITIES = ("critical", "warning", "info")


def alerts_table() -> Any:
    from encours.store.alerts_schema import Alert

    return Alert.__table__


class AlertError(ValueError):
    """An alert that cannot be acknowledged (the message says why)."""


def _names(principal: Principal) -> list[str]:
    return [n for n in {principal.name, principal.owner_name} if n]


def alert_scope(principal: Principal) -> Any:
    """SQL condition (alerts `a` joined with customers) of the alerts the principal sees."""
    a = alerts_table()
    if allowed(principal.role, "alerts.all"):
        return None
    names = _names(principal) or [queries.NO_OWNER]
    own = a.c.assignee.in_(names)
    if principal.role == COLLECTOR:
        return or_(own, CUSTOMERS.c.collector.in_(names))
    if principal.role == SALES:
        return or_(own, CUSTOMERS.c.account_owner == (principal.owner_name or queries.NO_OWNER))
    return a.c.id.is_(None)  # no alert (never reached: the route refuses these roles)


def _alerts_select(principal: Principal) -> Any:
    a = alerts_table()
    stmt = select(
        a.c.id, a.c.customer_id, CUSTOMERS.c.code.label("customer_code"),
        CUSTOMERS.c.name.label("customer_name"), a.c.kind, a.c.severity, a.c.status,
        a.c.assignee, a.c.title, a.c.details, a.c.as_of, a.c.last_seen, a.c.acknowledged_by,
        a.c.acknowledged_at, a.c.comment,
    ).select_from(a.join(CUSTOMERS, CUSTOMERS.c.id == a.c.customer_id))  # fmt: skip
    scope = alert_scope(principal)
    return stmt if scope is None else stmt.where(scope)


def _table_missing(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return "alerts" in message and ("no such table" in message or "does not exist" in message)


def list_alerts(
    db_url: str | None,
    principal: Principal,
    *,
    status: str | None = "open",
    severity: str | None = None,
    kind: str | None = None,
    customer: str | None = None,
    assignee: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict], int]:
    """The alerts the principal sees, newest first, with filters; ([], 0) before the
    alerts table exists."""
    a = alerts_table()
    stmt = _alerts_select(principal)
    cond = []
    for col, value in ((a.c.status, status), (a.c.severity, severity), (a.c.kind, kind),
                       (CUSTOMERS.c.code, customer), (a.c.assignee, assignee)):  # fmt: skip
        if value:
            cond.append(col == value)
    if cond:
        stmt = stmt.where(and_(*cond))
    count = select(func.count()).select_from(stmt.subquery())
    stmt = stmt.order_by(a.c.as_of.desc(), a.c.id.desc()).limit(per_page)
    stmt = stmt.offset((page - 1) * per_page)
    try:
        with unit_of_work(db_url) as conn:
            total = conn.execute(count).scalar_one()
            rows = [_plain(dict(r)) for r in conn.execute(stmt).mappings()]
    except DBAPIError as exc:
        if _table_missing(exc):
            return [], 0
        raise
    return rows, total


def _plain(row: dict) -> dict:
    for key in ("as_of", "last_seen"):
        if isinstance(row.get(key), str):
            row[key] = dt.date.fromisoformat(row[key][:10])
    if isinstance(row.get("acknowledged_at"), str):
        row["acknowledged_at"] = dt.datetime.fromisoformat(row["acknowledged_at"])
    return row


def alert_facets(db_url: str | None, principal: Principal) -> dict[str, list[str]]:
    a = alerts_table()
    scope = alert_scope(principal)
    base = select(a.c.kind, a.c.assignee).select_from(
        a.join(CUSTOMERS, CUSTOMERS.c.id == a.c.customer_id))  # fmt: skip
    if scope is not None:
        base = base.where(scope)
    try:
        with unit_of_work(db_url) as conn:
            rows = conn.execute(base.distinct()).all()
    except DBAPIError as exc:
        if _table_missing(exc):
            return {"kinds": [], "assignees": []}
        raise
    return {"kinds": sorted({k for k, _a in rows if k}),
            "assignees": sorted({a_ for _k, a_ in rows if a_})}  # fmt: skip


def get_alert(conn: Connection, alert_id: int, principal: Principal) -> dict | None:
    a = alerts_table()
    row = conn.execute(_alerts_select(principal).where(a.c.id == alert_id)).mappings().first()
    return None if row is None else _plain(dict(row))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def acknowledge_alert(
    db_url: str | None, alert_id: int, principal: Principal, comment: str
) -> dict:
    """Acknowledge an open alert the principal sees, with a comment (audited).
    LookupError when the principal does not see it, AlertError when it cannot be."""
    comment = (comment or "").strip()
    if not comment:
        raise AlertError("a comment is required to acknowledge an alert")
    with unit_of_work(db_url) as conn:
        row = get_alert(conn, alert_id, principal)
        if row is None:
            raise LookupError(alert_id)
        if row["status"] != "open":
            raise AlertError(f"alert #{alert_id} is already {row['status']}")
        monitor_ack = _monitor_acknowledge()
        if monitor_ack is not None:
            try:
                monitor_ack(conn, alert_id, actor=principal.actor, comment=comment)
            except (LookupError, ValueError) as exc:
                raise AlertError(str(exc)) from exc
        else:
            a = alerts_table()
            after: dict[str, Any] = {"status": "acknowledged", "acknowledged_by": principal.actor,
                     "acknowledged_at": _now(), "comment": comment}  # fmt: skip
            conn.execute(update(a).where(a.c.id == alert_id).values(**after))
            conn.execute(AUDIT.insert().values(
                at=_now(), actor=principal.actor, action="alert.acknowledge", entity="alert",
                entity_key=str(alert_id), before={"status": "open"},
                after={**after, "acknowledged_at": after["acknowledged_at"].isoformat()},
            ))  # fmt: skip
        return get_alert(conn, alert_id, principal) or row


def _monitor_acknowledge() -> Callable[..., Any] | None:
    try:
        from encours.risk import monitor
    except ImportError:
        return None
    return getattr(monitor, "acknowledge", None)


# --- portfolio tiles -----------------------------------------------------------------------

_RISK_VERSION_SQL = text(
    "SELECT (SELECT MAX(id) FROM risk_assessments), (SELECT MAX(id) FROM payment_models)"
)
TILE_CACHE_SIZE = 8
_tiles = BuildCache(TILE_CACHE_SIZE)
# per role scope and filters: the class counts and the set of visible customer ids
_scoped = BuildCache(32)  # at most ~32 x 2.6 MB (50k ids) for the id sets


def _cached(kind: str | tuple, db_url: str | None, as_of: dt.date,
            build: Callable[[], Any]) -> Any:  # fmt: skip
    """`build()` once per (kind, database, as-of day, ledger + assessments + models version).
    A tuple `kind` (a name and a role scope / filters) is kept apart from the whole-portfolio
    frames, so that many scopes never push those out."""
    with unit_of_work(db_url) as conn:
        version = queries.ledger_version(conn) + tuple(conn.execute(_RISK_VERSION_SQL).one())
    cache = _scoped if isinstance(kind, tuple) else _tiles
    return cache.get_or_build((kind, db_url, as_of, version), build)


def latest_classes(db_url: str | None, as_of: dt.date) -> pl.DataFrame:
    """customer_id, risk_class: each customer's latest assessment on or before `as_of`."""

    def build() -> pl.DataFrame:
        sql = """
            SELECT r.customer_id, r.risk_class FROM risk_assessments r
            JOIN (SELECT customer_id, MAX(as_of) AS as_of FROM risk_assessments
                  WHERE as_of <= :as_of GROUP BY customer_id) l
              ON l.customer_id = r.customer_id AND l.as_of = r.as_of
        """
        with unit_of_work(db_url) as conn:
            return query_frame(conn, sql, {"customer_id": pl.Int64, "risk_class": pl.String},
                               {"as_of": as_of})  # fmt: skip

    return _cached("classes", db_url, as_of, build)


def scored_open_invoices(db_url: str | None, as_of: dt.date) -> pl.DataFrame | None:
    """The open invoices scored by the stored payment model valid on `as_of` (None when no
    model was trained on or before that day)."""

    def build() -> pl.DataFrame | None:
        from encours.risk.model import load_model, read_ledger, score_open_invoices

        with unit_of_work(db_url) as conn:
            model = load_model(conn, as_of)
        if model is None:
            return None
        return score_open_invoices(read_ledger(db_url), model, as_of)

    return _cached("forecast", db_url, as_of, build)


def class_counts(customers: pl.DataFrame, db_url: str | None, as_of: dt.date) -> dict:
    """Number of the visible customers (positions frame) per risk class (None: not
    assessed) and in all ("total")."""
    ids = customers.select(pl.col("customer_id").unique())
    classes = latest_classes(db_url, as_of)
    joined = ids.join(classes, on="customer_id", how="left")
    counts: dict = dict(joined.group_by("risk_class").len().iter_rows())
    counts["total"] = ids.height
    return counts


def class_chart(counts: dict, lang: str) -> dict:
    """The distribution of `class_counts` as a bar chart."""
    _ = gettext_for(lang)
    items = [(c, counts.get(c, 0), str(counts.get(c, 0))) for c in ("A", "B", "C", "D", "E")]
    unassessed = counts.get(None, 0)
    return {"chart": charts.aging_bars(items, _("Customers by risk class")),
            "assessed": counts["total"] - unassessed, "unassessed": unassessed}  # fmt: skip


def forecast_chart(
    customers: pl.DataFrame, currency: str, db_url: str | None, as_of: dt.date, lang: str
) -> dict | None:
    """13-week expected cash-in of the visible customers' open invoices in `currency`."""
    from encours.risk.forecast import HORIZON_WEEKS, weekly_expected

    scored = scored_open_invoices(db_url, as_of)
    if scored is None:
        return None
    fmt = Formatter(lang)
    _ = gettext_for(lang)
    codes = customers.select(pl.col("code").unique().alias("customer_id"))
    mine = scored.join(codes, on="customer_id", how="semi").filter(pl.col("currency") == currency)
    if mine.is_empty():
        weeks = [(w, 0, as_of + dt.timedelta(days=7 * w)) for w in range(1, HORIZON_WEEKS + 1)]
        later = 0
    else:
        frame = weekly_expected(mine, as_of, HORIZON_WEEKS)
        weeks = [(r["week"], int(r["expected_minor"]), r["end"])
                 for r in frame.iter_rows(named=True) if r["week"] <= HORIZON_WEEKS]  # fmt: skip
        later = int(frame.filter(pl.col("week") > HORIZON_WEEKS)["expected_minor"].sum())
    total = sum(v for _w, v, _e in weeks)
    bars = [(_("W{n}").format(n=w), v, fmt.money(v, currency, short=True),
             fmt.date(end, "short")) for w, v, end in weeks]  # fmt: skip
    return {
        "chart": week_bars(bars, _("Expected cash-in, next 13 weeks")),
        "total": fmt.money(total, currency), "later": fmt.money(later, currency),
    }  # fmt: skip


def week_bars(items: list[tuple[str, int, str, str]], title: str) -> Markup:
    """Vertical bars: (label, value, formatted value, week end) per week."""
    width, height, pad_b, pad_t = 560, 150, 20, 14
    n = max(len(items), 1)
    slot = width / n
    top = max((v for _l, v, _f, _e in items), default=0) or 1
    body = [f'<line x1="0" x2="{width}" y1="{height - pad_b}" y2="{height - pad_b}" '
            'class="axis"/>']  # fmt: skip
    for i, (label, value, shown, end) in enumerate(items):
        h = max(0.0, value / top * (height - pad_b - pad_t))
        x = i * slot + 3
        body.append(
            f'<rect x="{x:.1f}" y="{height - pad_b - h:.1f}" width="{slot - 6:.1f}" '
            f'height="{h:.1f}" class="bar b0"><title>{escape(label)} ({escape(end)}): '
            f"{escape(shown)}</title></rect>"
            f'<text x="{x + (slot - 6) / 2:.1f}" y="{height - 6}" class="tick" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    return charts._svg(width, height, title, body, css="chart weeks")  # noqa: SLF001


def open_alert_counts(
    db_url: str | None, principal: Principal, ids: set[int] | frozenset[int]
) -> dict[str, int] | None:
    """Open alerts of the visible customers by severity (None before the table exists)."""
    a = alerts_table()
    joined = a.join(CUSTOMERS, CUSTOMERS.c.id == a.c.customer_id)
    stmt = select(a.c.customer_id, a.c.severity).select_from(joined).where(a.c.status == "open")
    scope = alert_scope(principal)
    if scope is not None:
        stmt = stmt.where(scope)
    try:
        with unit_of_work(db_url) as conn:
            rows = conn.execute(stmt).all()
    except DBAPIError as exc:
        if _table_missing(exc):
            return None
        raise
    counts: dict[str, int] = {"total": 0}
    for customer_id, severity in rows:
        if customer_id in ids:
            counts["total"] += 1
            counts[severity or "?"] = counts.get(severity or "?", 0) + 1
    return counts


def risk_tiles(
    request: Request, db_url: str | None, as_of: dt.date, principal: Principal,
    filters: queries.Filters, currency: str | None,
) -> dict:  # fmt: skip
    """The context of the portfolio page's risk tiles (for pages/routes.py)."""
    lang = language(request)
    data = queries.portfolio_data(db_url, as_of)
    own = principal.role in OWN_ACCOUNTS_ONLY
    scope = (own, principal.owner_name if own else None, filters.segment, filters.owner,
             filters.country, filters.risk_class)  # fmt: skip

    def build() -> tuple[dict, frozenset[int]]:
        customers = queries.visible(data.positions, principal, filters)
        ids = frozenset(customers.get_column("customer_id").to_list())
        return class_counts(customers, db_url, as_of), ids

    # once per scope and version: going over every visible customer is most of the page
    counts, ids = _cached(("visible", *scope), db_url, as_of, build)
    tiles: dict = {"classes": class_chart(counts, lang)}
    if allowed(principal.role, "alerts.view"):
        tiles["alerts"] = open_alert_counts(db_url, principal, ids)
    tiles["forecast_url"] = None
    if currency:
        params = {"as_of": as_of.isoformat(), **{k: v for k, v in (
            ("segment", filters.segment), ("owner", filters.owner),
            ("country", filters.country), ("class", filters.risk_class)) if v}}  # fmt: skip
        from urllib.parse import urlencode

        tiles["forecast_url"] = "/portfolio/forecast?" + urlencode(params)
    return tiles


# --- pages ---------------------------------------------------------------------------------

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)
Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]


@router.get("/portfolio/forecast")
def forecast_tile(
    request: Request,
    principal: Annotated[Principal, Depends(require("portfolio.view"))],
    url: DbUrl,
    as_of: AsOf,
    segment: Text = None,
    owner: Text = None,
    country: Text = None,
    risk_class: Annotated[str | None, Query(alias="class", pattern="^[A-E]?$")] = None,
) -> HTMLResponse:
    """The cash-in forecast tile (loaded after the page: the first one per ledger version
    scores every open invoice)."""
    filters = queries.Filters(segment=segment, owner=owner, country=country,
                              risk_class=risk_class or None)  # fmt: skip
    data = queries.dashboard(url, as_of, principal, filters)
    forecast = None
    if data["currency"]:
        customers = queries.visible(queries.portfolio_data(url, as_of).positions, principal,
                                    filters)  # fmt: skip
        forecast = forecast_chart(customers, data["currency"], url, as_of, language(request))
    template = "_forecast_tile.html" if request.headers.get("hx-request") else "forecast.html"
    return render(request, template, {"forecast": forecast})


@router.get("/alerts")
def alerts_page(
    request: Request,
    principal: Annotated[Principal, Depends(require("alerts.view"))],
    url: DbUrl,
    status: Annotated[str | None, Query(pattern="^(open|acknowledged|closed|all)?$")] = "open",
    severity: Text = None,
    kind: Text = None,
    customer: Text = None,
    assignee: Text = None,
    page: PageNo = 1,
) -> HTMLResponse:
    return _alerts_page(request, principal, url, status=status, severity=severity, kind=kind,
                        customer=customer, assignee=assignee, page=page)  # fmt: skip


def _alerts_page(
    request: Request, principal: Principal, url: str | None, status_code: int = 200,
    error: str | None = None, **f: Any,
) -> HTMLResponse:  # fmt: skip
    status = f.get("status") or "open"
    rows, total = list_alerts(
        url, principal, status=None if status == "all" else status, severity=f.get("severity"),
        kind=f.get("kind"), customer=f.get("customer"), assignee=f.get("assignee"),
        page=f.get("page", 1), per_page=50,
    )  # fmt: skip
    from urllib.parse import urlencode

    params = {k: v for k, v in f.items() if k != "page" and v}
    ctx = {"rows": rows, "total": total, "page": f.get("page", 1),
           "pages": max(1, -(-total // 50)), "f": {**f, "status": status},
           "facets": alert_facets(url, principal), "statuses": ALERT_STATUSES,
           "severities": SEVERITIES, "query": urlencode(params), "error": error}  # fmt: skip
    return render(request, "alerts.html", ctx, status_code)


@router.post("/alerts/{alert_id}/acknowledge")
def alerts_acknowledge(
    request: Request,
    alert_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: Annotated[Principal, Depends(require("alerts.view"))],
    url: DbUrl,
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _ = gettext_for(language(request))
    try:
        acknowledge_alert(url, alert_id, principal, comment)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=f"no alert #{alert_id}") from exc
    except AlertError as exc:
        message = (_("A comment is required to acknowledge an alert.")
                   if not comment.strip() else str(exc))  # fmt: skip
        return _alerts_page(request, principal, url, 422, message, status="open")
    return RedirectResponse("/alerts", status_code=303)


__all__ = ["acknowledge_alert", "list_alerts", "risk_tiles", "router"]
