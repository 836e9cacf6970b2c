"""What the pages and the API read: positions, KPIs, trends, lists; cached per ledger version.

A report is a function of (ledger positions, filters, as-of day). The positions of every
customer and the per-customer KPI aggregates of a day are computed once (set-based, by
`analytics.portfolio.customer_positions` and `store.kpi_queries`) and kept in memory for
(database, as-of day, ledger version); filters (segment, owner, country, a sales user's
own accounts) are then cheap polars filters; the portfolio dashboard of a scope and filters
is computed once per cached day, and a customer's rows are found through a sorted index
(`CustomerIndex`). The ledger version is a handful of MAX(id)
and counts read through primary-key indexes: any import, allocation or audited change
gives a new version, so a cached report is never stale.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Connection, and_, func, or_, select, text

from encours.analytics import kpis as kpis_mod
from encours.analytics.payment_history import monthly_payment_behaviour
from encours.analytics.portfolio import customer_positions, portfolio_totals
from encours.analytics.snapshots import trend
from encours.domain.aging import DEFAULT_SPEC, Bucket, parse_buckets
from encours.store import kpi_queries
from encours.store import positions as positions_store
from encours.store.db import unit_of_work
from encours.store.outbox_schema import TimelineEvent
from encours.store.schema import AuditEntry, Contact, Customer, Document, Payment
from encours.web.accounts import Principal
from encours.web.cache import BuildCache
from encours.web.roles import OWN_ACCOUNTS_ONLY

CUSTOMERS = Customer.__table__
CONTACTS = Contact.__table__
DOCUMENTS = Document.__table__
PAYMENTS = Payment.__table__
AUDIT = AuditEntry.__table__
TIMELINE = TimelineEvent.__table__
BUCKETS = parse_buckets(DEFAULT_SPEC)
CACHE_SIZE = 6
DASHBOARDS_PER_DAY = 64  # dashboards kept per cached day (visibility x filters)
NO_OWNER = "\u2400 no owner"  # matches no account_owner: a sales user without a name sees nothing

_VERSION_SQL = text(
    "SELECT (SELECT MAX(id) FROM customers), (SELECT MAX(id) FROM documents), "
    "(SELECT MAX(id) FROM payments), (SELECT MAX(id) FROM allocations), "
    "(SELECT MAX(id) FROM audit_log), (SELECT MAX(id) FROM import_batches), "
    "(SELECT MAX(id) FROM contacts), (SELECT MAX(id) FROM portfolio_snapshots), "
    "(SELECT MAX(id) FROM customer_snapshots)"
)


# One customer's snapshots of the last 12 months. The snapshot days come from the small
# portfolio_snapshots table (every day with customer rows has portfolio rows: both are
# written from the same positions by `analytics.snapshots`), so that the customer's rows are
# read by (as_of, customer_id) lookups in the unique index, not by a range over the rows
# of every customer of those months (~60 ms -> < 1 ms at 50,000 customers).
_HISTORY_SQL = text(
    "SELECT s.as_of, s.balance_minor, s.overdue_minor FROM customer_snapshots s "
    "WHERE s.customer_id = :cid AND s.as_of IN (SELECT DISTINCT p.as_of FROM "
    "portfolio_snapshots p WHERE p.as_of > :start AND p.as_of <= :as_of) ORDER BY s.as_of"
)


def ledger_version(conn: Connection) -> tuple:
    return tuple(conn.execute(_VERSION_SQL).one())


RISK_CLASSES = ("A", "B", "C", "D", "E")


@dataclass
class Filters:
    segment: str | None = None
    owner: str | None = None
    country: str | None = None
    q: str | None = None
    # risk class (A-E) of the latest assessment on or before the page's day; `visible`
    # needs `class_members` (the customer ids of that class), set by `resolve_class`
    risk_class: str | None = None
    class_members: pl.Series | None = field(default=None, compare=False, repr=False)

    def active(self) -> bool:
        return any((self.segment, self.owner, self.country, self.q, self.risk_class))


_RISK_VERSION_SQL = text("SELECT MAX(id), COUNT(*) FROM risk_assessments")


def risk_version(db_url: str | None) -> tuple:
    """Changes with every new assessment (not part of the ledger version)."""
    with unit_of_work(db_url) as conn:
        return tuple(conn.execute(_RISK_VERSION_SQL).one())


def resolve_class(db_url: str | None, as_of: dt.date, filters: Filters) -> Filters:
    """Set `filters.class_members` when a risk class is asked for (the latest class of each
    customer on `as_of`, cached per ledger and assessments version)."""
    if filters.risk_class and filters.class_members is None:
        from encours.web.pages.alerts import latest_classes

        classes = latest_classes(db_url, as_of)
        filters.class_members = classes.filter(pl.col("risk_class") == filters.risk_class)[
            "customer_id"
        ]
    return filters


@dataclass
class PortfolioData:
    as_of: dt.date
    version: tuple
    positions: pl.DataFrame  # every customer (include_zero), one row per currency
    kpi_aggregates: pl.DataFrame  # per customer and currency, additive
    buckets: tuple[Bucket, ...] = BUCKETS
    open_invoices: pl.DataFrame | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # derived from the above (so valid as long as this entry): the dashboards already
    # computed, per visibility and filters, and the per-customer lookup index
    dashboards: dict[tuple, dict] = field(default_factory=dict)
    customer_index: CustomerIndex | None = None
    # `open_invoices` sorted by customer (maintaining the due date order) and their ids
    open_by_customer: tuple[pl.DataFrame, np.ndarray] | None = None
    open_build_started: bool = False
    # the customer pages' 12-month payment behaviour, per customer id (at most
    # BEHAVIOURS_KEPT: the accounts looked at during the day)
    behaviours: dict[int, list[dict]] = field(default_factory=dict)


BEHAVIOURS_KEPT = 5000


@dataclass(frozen=True)
class CustomerIndex:
    """The positions and the KPIs of every customer, sorted by customer id: one customer's
    rows are a slice found by binary search (no scan of the portfolio per customer page)."""

    positions: pl.DataFrame
    position_ids: np.ndarray
    kpis: pl.DataFrame  # `_kpis_from_aggregates` per (customer_id, currency), all at once
    kpi_ids: np.ndarray

    @classmethod
    def build(cls, data: PortfolioData) -> CustomerIndex:
        positions = data.positions.sort("customer_id", maintain_order=True)
        kpis = kpis_mod._kpis_from_aggregates(  # noqa: SLF001
            data.kpi_aggregates, data.as_of, ("customer_id", "currency")
        ).sort("customer_id", maintain_order=True)
        return cls(positions, positions["customer_id"].to_numpy(), kpis,
                   kpis["customer_id"].to_numpy())  # fmt: skip

    @staticmethod
    def _rows(frame: pl.DataFrame, ids: np.ndarray, customer_id: int) -> list[dict]:
        lo = int(np.searchsorted(ids, customer_id, side="left"))
        hi = int(np.searchsorted(ids, customer_id, side="right"))
        return frame.slice(lo, hi - lo).to_dicts() if hi > lo else []

    def positions_of(self, customer_id: int) -> list[dict]:
        return self._rows(self.positions, self.position_ids, customer_id)

    def kpis_of(self, customer_id: int) -> dict[str, dict]:
        """As `filtered_kpis(data, [customer_id])`: {currency: KPIs}."""
        result = {}
        for row in self._rows(self.kpis, self.kpi_ids, customer_id):
            del row["customer_id"]
            result[row.pop("currency")] = row
        return result


def ensure_open_invoices(db_url: str | None, data: PortfolioData) -> pl.DataFrame:
    """Every open invoice of the cached day (`store.positions.open_invoices`), read once."""
    with data.lock:
        if data.open_invoices is None:
            with unit_of_work(db_url) as conn:
                data.open_invoices = positions_store.open_invoices(conn, data.as_of)
        if data.open_by_customer is None:
            frame = data.open_invoices.sort("customer_id", maintain_order=True)
            data.open_by_customer = (frame, frame["customer_id"].to_numpy())
    return data.open_invoices


_open_build_lock = threading.Lock()  # guards PortfolioData.open_build_started


def customer_open_invoices(
    db_url: str | None, data: PortfolioData, conn: Connection, customer_id: int
) -> pl.DataFrame:
    """One customer's open invoices: a slice of the cached open invoices of every customer
    once they are read, else (first requests after a ledger change) the customer's own
    query while the whole set is read in the background."""
    indexed = data.open_by_customer
    if indexed is None:
        with _open_build_lock:  # not data.lock: the build holds it while it reads
            start = not data.open_build_started
            data.open_build_started = True
        if start:
            threading.Thread(target=_build_quietly, args=(db_url, data), daemon=True).start()
        return positions_store.open_invoices(conn, data.as_of, customer_id)
    frame, ids = indexed
    lo = int(np.searchsorted(ids, customer_id, side="left"))
    hi = int(np.searchsorted(ids, customer_id, side="right"))
    return frame.slice(lo, hi - lo)


def _build_quietly(db_url: str | None, data: PortfolioData) -> None:
    try:
        ensure_open_invoices(db_url, data)
    except Exception:  # noqa: BLE001 - pages keep using the per-customer query
        data.open_build_started = False


def customer_index(data: PortfolioData) -> CustomerIndex:
    index = data.customer_index
    if index is None:  # concurrent first builds compute the same thing: harmless
        index = data.customer_index = CustomerIndex.build(data)
    return index


_cache = BuildCache(CACHE_SIZE)


def portfolio_data(db_url: str | None, as_of: dt.date) -> PortfolioData:
    """The positions and KPI aggregates of `as_of`, from the cache when the ledger is unchanged."""
    with unit_of_work(db_url) as conn:
        version = ledger_version(conn)

    def build() -> PortfolioData:
        with unit_of_work(db_url) as conn:
            frame = customer_positions(conn, as_of, BUCKETS, include_zero=True)
            bounds = kpis_mod.period_boundaries(as_of)
            cei_start = as_of - dt.timedelta(days=kpis_mod.DEFAULT_CEI_DAYS)
            aggregates = kpi_queries.kpi_aggregates(conn, as_of, bounds, cei_start)
        return PortfolioData(as_of, version, frame, aggregates)

    data: PortfolioData = _cache.get_or_build((db_url, as_of, version), build)
    return data


def clear_cache() -> None:
    _cache.clear()


def visible(frame: pl.DataFrame, principal: Principal, filters: Filters) -> pl.DataFrame:
    """Rows of a positions frame the principal may see, narrowed by the filters."""
    if principal.role in OWN_ACCOUNTS_ONLY:
        frame = frame.filter(pl.col("account_owner") == (principal.owner_name or NO_OWNER))
    if filters.segment:
        frame = frame.filter(pl.col("segment") == filters.segment)
    if filters.owner:
        frame = frame.filter(pl.col("account_owner") == filters.owner)
    if filters.country:
        frame = frame.filter(pl.col("country") == filters.country)
    if filters.risk_class:
        if filters.class_members is None:
            raise ValueError("a risk-class filter needs resolve_class() first")
        frame = frame.filter(pl.col("customer_id").is_in(filters.class_members.implode()))
    if filters.q:
        needle = filters.q.strip().lower()
        frame = frame.filter(
            pl.col("name").str.to_lowercase().str.contains(needle, literal=True)
            | pl.col("code").str.to_lowercase().str.contains(needle, literal=True)
        )
    return frame


def filter_options(data: PortfolioData, principal: Principal) -> dict[str, list[str]]:
    frame = visible(data.positions, principal, Filters())
    return {
        col: sorted(v for v in frame[src].unique().to_list() if v)
        for col, src in (("segments", "segment"), ("owners", "account_owner"),
                         ("countries", "country"))
    }  # fmt: skip


def _owner_condition(principal: Principal):  # noqa: ANN202
    if principal.role in OWN_ACCOUNTS_ONLY:
        return CUSTOMERS.c.account_owner == (principal.owner_name or NO_OWNER)
    return None


def _filter_sql(principal: Principal, filters: Filters) -> tuple[str, dict]:
    """WHERE fragments on customers `c` for the snapshot trend (bound parameters only)."""
    parts, params = [], {}
    owner = principal.owner_name if principal.role in OWN_ACCOUNTS_ONLY else None
    if principal.role in OWN_ACCOUNTS_ONLY:
        parts.append("c.account_owner = :own")
        params["own"] = owner or NO_OWNER
    for name, col in (("segment", "segment"), ("owner", "account_owner"), ("country", "country")):
        value = getattr(filters, name)
        if value:
            parts.append(f"c.{col} = :f_{name}")
            params[f"f_{name}"] = value
    if filters.risk_class:  # the customers of that class on the page's day (:as_of)
        parts.append(
            "c.id IN (SELECT r.customer_id FROM risk_assessments r JOIN (SELECT customer_id, "
            "MAX(as_of) AS as_of FROM risk_assessments WHERE as_of <= :as_of GROUP BY "
            "customer_id) l ON l.customer_id = r.customer_id AND l.as_of = r.as_of "
            "WHERE r.risk_class = :f_class)"
        )
        params["f_class"] = filters.risk_class
    return ("AND " + " AND ".join(parts)) if parts else "", params


def filtered_kpis(data: PortfolioData, customer_ids: pl.Series) -> dict[str, dict]:
    """Portfolio KPIs of a set of customers: their aggregates summed, then the KPI formulas."""
    agg = data.kpi_aggregates.filter(pl.col("customer_id").is_in(customer_ids.implode()))
    if agg.height == 0:
        return {}
    sums = agg.drop("customer_id").group_by("currency").agg(pl.all().sum())
    frame = kpis_mod._kpis_from_aggregates(sums, data.as_of, ("currency",))  # noqa: SLF001
    return {row.pop("currency"): row for row in frame.iter_rows(named=True)}


def dashboard(db_url: str | None, as_of: dt.date, principal: Principal, filters: Filters) -> dict:
    """The portfolio page's figures. Computed once per cached day (ledger version), role
    scope and filters: every input (positions, KPI aggregates, snapshots) is part of the
    ledger version, so a repeated request is a dictionary lookup."""
    data = portfolio_data(db_url, as_of)
    own = principal.role in OWN_ACCOUNTS_ONLY
    # a class filter depends on the assessments too, which the ledger version ignores
    classes = (filters.risk_class, risk_version(db_url)) if filters.risk_class else None
    resolve_class(db_url, as_of, filters)
    key = (own, principal.owner_name if own else None, filters.segment, filters.owner,
           filters.country, classes)  # fmt: skip
    cached = data.dashboards.get(key)
    if cached is None:
        cached = _dashboard(db_url, data, principal, filters)
        if len(data.dashboards) >= DASHBOARDS_PER_DAY:
            data.dashboards.clear()
        data.dashboards[key] = cached
    return dict(cached)


def _dashboard(
    db_url: str | None, data: PortfolioData, principal: Principal, filters: Filters
) -> dict:
    as_of = data.as_of
    frame = visible(data.positions, principal, filters)
    totals = portfolio_totals(frame, data.buckets)
    result: dict = {"as_of": as_of, "buckets": data.buckets, "options": filter_options(data,
                    principal), "currencies": totals.to_dicts()}  # fmt: skip
    if totals.height == 0:
        result.update(currency=None, totals=None)
        return result
    main = max(totals.iter_rows(named=True), key=lambda r: abs(r["balance_minor"]))
    currency = main["currency"]
    in_cur = frame.filter(pl.col("currency") == currency)
    kpis = filtered_kpis(data, frame["customer_id"].unique()).get(currency, {})
    top = in_cur.filter(pl.col("exposure_minor") > 0).sort("exposure_minor", descending=True)
    over = in_cur.filter(pl.col("headroom_minor") < 0).sort("headroom_minor")
    result.update(
        currency=currency,
        totals=main,
        kpis=kpis,
        top_exposures=top.head(10).to_dicts(),
        over_limit=over.head(10).to_dicts(),
        over_limit_count=over.height,
        trends=_trends(db_url, as_of, principal, filters, currency),
    )
    return result


def _trends(
    db_url: str | None, as_of: dt.date, principal: Principal, filters: Filters, currency: str
) -> dict[str, list]:
    """12-month trends: outstanding and overdue share from the customer snapshots (so that
    they follow the filters), DSO and CEI from the portfolio snapshots (whole portfolio)."""
    start = kpis_mod.month_back(as_of, 12)
    where, params = _filter_sql(principal, filters)
    sql = text(
        "SELECT s.as_of, SUM(s.balance_minor), SUM(s.overdue_minor) FROM customer_snapshots s "
        "JOIN customers c ON c.id = s.customer_id "
        f"WHERE s.currency = :cur AND s.as_of > :start AND s.as_of <= :as_of {where} "
        "GROUP BY s.as_of ORDER BY s.as_of"
    )
    with unit_of_work(db_url) as conn:
        rows = conn.execute(sql, {"cur": currency, "start": start, "as_of": as_of, **params}).all()
        dso = trend(conn, "dso", 12, as_of, currency=currency)
        cei = trend(conn, "cei", 12, as_of, currency=currency)
    outstanding, overdue_share = [], []
    for day, balance, overdue in rows:
        day = dt.date.fromisoformat(day) if isinstance(day, str) else day
        outstanding.append((day, int(balance or 0)))
        overdue_share.append((day, (int(overdue or 0) / int(balance)) if balance else None))
    result: dict[str, Any] = {
        "outstanding": outstanding,
        "overdue_share": overdue_share,
        "dso": dso,
        "cei": cei,
        "kpis_whole_portfolio": filters.active() or principal.role in OWN_ACCOUNTS_ONLY,
    }
    return result


def customer_list(
    db_url: str | None,
    as_of: dt.date,
    principal: Principal,
    filters: Filters,
    *,
    page: int = 1,
    per_page: int = 50,
    over_limit: bool | None = None,
    sort: str = "balance",
) -> tuple[pl.DataFrame, int]:
    data = portfolio_data(db_url, as_of)
    frame = visible(data.positions, principal, resolve_class(db_url, as_of, filters))
    if over_limit is not None:
        frame = frame.filter((pl.col("headroom_minor") < 0).fill_null(False) == over_limit)
    frame = frame.sort(["balance_minor", "code"], descending=[True, False]) if sort == "balance" \
        else frame.sort(["name", "code"])  # fmt: skip
    total = frame.height
    return frame.slice((page - 1) * per_page, per_page), total


def find_customer(conn: Connection, code: str, principal: Principal) -> dict | None:
    stmt = select(CUSTOMERS).where(CUSTOMERS.c.code == code)
    owner = _owner_condition(principal)
    if owner is not None:
        stmt = stmt.where(owner)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def customer_detail(
    db_url: str | None, code: str, as_of: dt.date, principal: Principal
) -> dict | None:
    data = portfolio_data(db_url, as_of)
    with unit_of_work(db_url) as conn:
        customer = find_customer(conn, code, principal)
        if customer is None:
            return None
        cid = customer["id"]
        contacts = [dict(r) for r in conn.execute(
            select(CONTACTS).where(CONTACTS.c.customer_id == cid).order_by(CONTACTS.c.id)
        ).mappings()]  # fmt: skip
        invoices = customer_open_invoices(db_url, data, conn, cid)
        payments = [dict(r) for r in conn.execute(
            select(PAYMENTS).where(PAYMENTS.c.customer_id == cid, PAYMENTS.c.date <= as_of)
            .order_by(PAYMENTS.c.date.desc(), PAYMENTS.c.id.desc()).limit(20)
        ).mappings()]  # fmt: skip
        timeline = [dict(r) for r in conn.execute(
            select(TIMELINE).where(TIMELINE.c.customer_id == cid)
            .order_by(TIMELINE.c.at.desc(), TIMELINE.c.id.desc()).limit(100)
        ).mappings()]  # fmt: skip
        start = kpis_mod.month_back(as_of, 12)
        history = conn.execute(_HISTORY_SQL, {"cid": cid, "start": start, "as_of": as_of}).all()
        behaviour = data.behaviours.get(cid)
        if behaviour is None:  # read once per day and ledger version (this entry)
            behaviour = monthly_payment_behaviour(conn, cid, as_of).to_dicts()
            if len(data.behaviours) >= BEHAVIOURS_KEPT:
                data.behaviours.clear()
            data.behaviours[cid] = behaviour
    index = customer_index(data)
    positions = index.positions_of(cid)
    kpis = index.kpis_of(cid)
    return {
        "customer": customer, "contacts": contacts, "positions": positions,
        "kpis": kpis, "open_invoices": invoices, "payments": payments, "timeline": timeline,
        "history": [(dt.date.fromisoformat(d) if isinstance(d, str) else d, int(b), int(o))
                    for d, b, o in history],
        "buckets": data.buckets, "behaviour": behaviour,
    }  # fmt: skip


def invoices_page(
    db_url: str | None,
    principal: Principal,
    *,
    customer: str | None,
    open_as_of: dt.date | None,
    overdue: bool,
    page: int,
    per_page: int,
) -> tuple[list[dict], int]:
    """Invoices and credit notes; open ones (with open amounts) when `open_as_of` is given."""
    if open_as_of is not None:
        data = portfolio_data(db_url, open_as_of)
        frame = ensure_open_invoices(db_url, data)
        allowed = visible(data.positions, principal, Filters())["customer_id"].unique()
        frame = frame.filter(pl.col("customer_id").is_in(allowed.implode()))
        if customer:
            frame = frame.filter(pl.col("customer_code") == customer)
        if overdue:
            frame = frame.filter(pl.col("due_date") < open_as_of)
        total = frame.height
        rows = frame.slice((page - 1) * per_page, per_page).to_dicts()
        return [{**r, "kind": "invoice", "status": "issued"} for r in rows], total
    cond = []
    owner = _owner_condition(principal)
    if owner is not None:
        cond.append(owner)
    if customer:
        cond.append(CUSTOMERS.c.code == customer)
    join = DOCUMENTS.join(CUSTOMERS, CUSTOMERS.c.id == DOCUMENTS.c.customer_id)
    where = and_(*cond) if cond else None
    count = select(func.count()).select_from(join)
    stmt = select(
        DOCUMENTS.c.id.label("document_id"), DOCUMENTS.c.number, DOCUMENTS.c.kind,
        CUSTOMERS.c.code.label("customer_code"), DOCUMENTS.c.issue_date, DOCUMENTS.c.due_date,
        DOCUMENTS.c.amount_minor, DOCUMENTS.c.currency, DOCUMENTS.c.disputed, DOCUMENTS.c.status,
    ).select_from(join)  # fmt: skip
    if where is not None:
        count, stmt = count.where(where), stmt.where(where)
    stmt = stmt.order_by(DOCUMENTS.c.id).limit(per_page).offset((page - 1) * per_page)
    with unit_of_work(db_url) as conn:
        total = conn.execute(count).scalar_one()
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    return rows, total


def payments_page(
    db_url: str | None,
    principal: Principal,
    *,
    customer: str | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    page: int,
    per_page: int,
) -> tuple[list[dict], int]:
    cond = []
    owner = _owner_condition(principal)
    if owner is not None:
        cond.append(owner)
    if customer:
        cond.append(CUSTOMERS.c.code == customer)
    if date_from:
        cond.append(PAYMENTS.c.date >= date_from)
    if date_to:
        cond.append(PAYMENTS.c.date <= date_to)
    join = PAYMENTS.join(CUSTOMERS, CUSTOMERS.c.id == PAYMENTS.c.customer_id)
    count = select(func.count()).select_from(join)
    stmt = select(
        PAYMENTS.c.reference, CUSTOMERS.c.code.label("customer_code"), PAYMENTS.c.date,
        PAYMENTS.c.amount_minor, PAYMENTS.c.currency, PAYMENTS.c.method,
    ).select_from(join)  # fmt: skip
    if cond:
        count, stmt = count.where(and_(*cond)), stmt.where(and_(*cond))
    stmt = stmt.order_by(PAYMENTS.c.id).limit(per_page).offset((page - 1) * per_page)
    with unit_of_work(db_url) as conn:
        total = conn.execute(count).scalar_one()
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    return rows, total


def audit_page(
    db_url: str | None,
    *,
    entity: str | None = None,
    actor: str | None = None,
    key: str | None = None,
    action: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict], int]:
    cond = []
    if entity:
        cond.append(AUDIT.c.entity == entity)
    if actor:
        cond.append(AUDIT.c.actor == actor)
    if action:
        cond.append(AUDIT.c.action == action)
    if key:
        cond.append(or_(AUDIT.c.entity_key == key, AUDIT.c.entity_key.like(key + ":%")))
    count = select(func.count()).select_from(AUDIT)
    stmt = select(AUDIT)
    if cond:
        count, stmt = count.where(and_(*cond)), stmt.where(and_(*cond))
    stmt = stmt.order_by(AUDIT.c.id.desc()).limit(per_page).offset((page - 1) * per_page)
    with unit_of_work(db_url) as conn:
        total = conn.execute(count).scalar_one()
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    return rows, total


def audit_facets(db_url: str | None) -> dict[str, list[str]]:
    with unit_of_work(db_url) as conn:
        entities = list(conn.execute(select(AUDIT.c.entity).distinct()).scalars())
        actions = list(conn.execute(select(AUDIT.c.action).distinct()).scalars())
    return {"entities": sorted(entities), "actions": sorted(actions)}
