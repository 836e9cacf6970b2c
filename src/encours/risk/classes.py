"""Risk class A-E per customer, with its reasons in words and its review date.

A class combines three components, each graded 0 (A) .. 4 (E):

- Altman Z'' zone of the latest financial statements: safe A, grey C, distress D;
- Conan-Holder zone: sound A, warning C, danger D;
- the payment behaviour scorecard (`risk.behaviour`): A >= 80 points, B >= 65, C >= 50,
  D >= 35, else E.

class = max(mean of the available grades rounded half-up, worst grade - 1): one weak
component cannot be averaged away by two good ones. No component at all (no statements
and no invoice yet): the onboarding class is kept (from the customer's latest onboarding
assessment, else recomputed from its onboarding profile), so that a customer onboarded as
D is not upgraded to C the next day; a customer never onboarded gets C. Once statements
or a payment history exist, the normal combination applies. A customer in insolvency
proceedings is E. Statements older than
`statements_max_age_months` (from their period end) are not used.

Review dates: a new class (or a first assessment) is reviewed `review_months[class]`
after the as-of day; while the class does not change the previous review date is kept, so
a due review stays due until a credit manager records it (`record_review`).

Reasons are stored as codes with parameters (`{"code": ..., "params": {...}}`) and
rendered in the reader's language by `reason_text`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl
from sqlalchemy import Connection, delete, select, update

from encours.analytics.kpis import month_back
from encours.i18n import _
from encours.risk import behaviour
from encours.risk.statements import evaluate, latest_statements
from encours.store import bulk
from encours.store.frames import query_frame
from encours.store.risk_schema import CustomerProfile, RiskAssessment
from encours.store.schema import AuditEntry, Customer

CLASSES = ("A", "B", "C", "D", "E")
TABLE = RiskAssessment.__table__
ALTMAN_GRADES = {"safe": 0, "grey": 2, "distress": 3}
CONAN_HOLDER_GRADES = {"sound": 0, "warning": 2, "danger": 3}


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


def _by_class(*values: int | Decimal) -> dict[str, int | Decimal]:
    return dict(zip(CLASSES, values, strict=True))


@dataclass(frozen=True)
class RiskPolicy:
    """The credit policy: review intervals, limit rules, order-check thresholds."""

    review_months: dict = field(default_factory=lambda: _by_class(12, 12, 6, 3, 1))
    statements_max_age_months: int = 24
    # limits: capacity = min(equity x share, revenue x share); need = predicted exposure
    equity_share: dict = field(
        default_factory=lambda: _by_class(
            Decimal("0.10"), Decimal("0.075"), Decimal("0.05"), Decimal("0.025"), Decimal(0)
        )
    )
    revenue_share: dict = field(
        default_factory=lambda: _by_class(
            Decimal("0.05"), Decimal("0.04"), Decimal("0.03"), Decimal("0.015"), Decimal(0)
        )
    )
    exposure_factor: dict = field(
        default_factory=lambda: _by_class(
            Decimal("1.5"), Decimal("1.25"), Decimal("1.0"), Decimal("0.75"), Decimal(0)
        )
    )
    initial_limit: dict = field(
        default_factory=lambda: _by_class(
            Decimal(50000), Decimal(30000), Decimal(15000), Decimal(5000), Decimal(0)
        )
    )
    limit_cap: Decimal = Decimal(500000)  # in the customer's currency
    limit_rounding: Decimal = Decimal(100)  # limits are rounded down to this step
    min_days_to_pay: int = 30
    # order check
    warn_usage: Decimal = Decimal("0.9")  # warn when exposure + order > 90 % of the limit
    warn_overdue_days: int = 30
    hold_overdue_days: int = 60
    # onboarding
    young_company_years: int = 3
    high_risk_sectors: tuple[str, ...] = ("F", "I", "construction", "hospitality")
    low_risk_countries: tuple[str, ...] = (
        "FR",
        "DE",
        "BE",
        "NL",
        "LU",
        "IT",
        "ES",
        "PT",
        "AT",
        "IE",
        "FI",
        "SE",
        "DK",
        "CH",
        "GB",
        "NO",
    )
    required_checklist: tuple[str, ...] = ("contract", "payment_terms", "penalty_clause")
    four_eyes: bool = True  # a limit request is approved by someone else than its author

    def review_date(self, risk_class: str, as_of: dt.date) -> dt.date:
        return month_back(as_of, -int(self.review_months[risk_class]))


DEFAULT_POLICY = RiskPolicy()


# --- reasons ------------------------------------------------------------------------------


def reason(code: str, **params: object) -> dict:
    return {"code": code, "params": params}


def _zone_text(zone: str) -> str:
    texts = {
        "safe": _("safe"), "grey": _("grey"), "distress": _("distress"),
        "sound": _("sound"), "warning": _("warning"), "danger": _("danger"),
    }  # fmt: skip
    return texts.get(zone, zone)


def reason_text(item: dict) -> str:
    """One reason in the current language."""
    code, params = item["code"], dict(item.get("params") or {})
    if "zone" in params:
        params["zone"] = _zone_text(str(params["zone"]))
    templates = {
        "altman": _("Altman Z'' {score} ({zone}), financial year {year}"),
        "altman_partial": _("Altman Z'' not computed, missing: {missing}"),
        "conan_holder": _("Conan-Holder {score} ({zone}), financial year {year}"),
        "conan_holder_partial": _("Conan-Holder not computed, missing: {missing}"),
        "no_statements": _("No financial statements"),
        "statements_outdated": _(
            "Financial statements {year} older than {months} months: not used"
        ),
        "behaviour": _("Payment behaviour {points}/{max} points"),
        "no_history": _("No payment history yet"),
        "late_share": _("{value} % of the invoices of the last 12 months paid late"),
        "avg_days_late": _("Paid {value} days late on average"),
        "days_late_trend": _("Days late up by {value} in 3 months"),
        "max_days_overdue": _("Oldest overdue invoice {value} days past due"),
        "open_disputes": _("{value} open disputed invoice(s)"),
        "broken_promises": _("{value} broken promise(s) to pay in 12 months"),
        "exposure_growth": _("Receivables up {value} % in 90 days"),
        "days_since_payment": _("No payment for {value} days"),
        "promises_unavailable": _("Broken promises not counted: no promises recorded yet"),
        "insolvency": _("Customer in insolvency proceedings"),
        "no_data": _("No statements and no payment history: default class C"),
        "onboarding_kept": _(
            "No statements and no payment history yet: onboarding class {risk_class} of {day} kept"
        ),
        "weakest": _("Class held down by the weakest component ({component})"),
        "class_changed": _("Class changed from {before} to {after}"),
        "young_company": _("Company created less than {years} years ago"),
        "high_risk_sector": _("Sector {sector} is high-risk in the policy"),
        "foreign_country": _("Country {country} outside the low-risk countries"),
        "checklist_missing": _("Onboarding checklist incomplete: {items}"),
        "prepayment": _("High risk: prepayment or deposit required"),
        "consumer": _("Consumer customer"),
    }
    template = templates.get(code)
    if template is None:
        return code
    return template.format(**params)


def reasons_text(items: list[dict] | None) -> list[str]:
    return [reason_text(i) for i in items or []]


# --- combination --------------------------------------------------------------------------


def combine(grades: dict[str, int | None]) -> tuple[int | None, str | None]:
    """(class index, component that held it down) from component grades (None: absent)."""
    known = {k: g for k, g in grades.items() if g is not None}
    if not known:
        return None, None
    mean = Decimal(sum(known.values())) / len(known)
    averaged = int(mean.to_integral_value(rounding="ROUND_HALF_UP"))
    worst_name, worst = max(known.items(), key=lambda kv: kv[1])
    if worst - 1 > averaged:
        return worst - 1, worst_name
    return averaged, None


def _statement_components(
    statements: pl.DataFrame, as_of: dt.date, policy: RiskPolicy
) -> pl.DataFrame:
    """Per customer with statements: altman/conan-holder scores, zones, grades, reasons."""
    oldest = month_back(as_of, policy.statements_max_age_months)
    rows = []
    # one statement per customer: the pure Decimal scores of domain.scores, once each
    for row in statements.iter_rows(named=True):
        year = row["fiscal_year"]
        if row["available"] < oldest:
            rows.append({"customer_id": row["customer_id"], "altman_z": None,
                         "altman_zone": None, "conan_holder_z": None,
                         "conan_holder_zone": None, "fin_reasons": json.dumps([reason(
                             "statements_outdated", year=year,
                             months=policy.statements_max_age_months)])})  # fmt: skip
            continue
        ev = evaluate(row)
        reasons = []
        for code, result in (("altman", ev.altman), ("conan_holder", ev.conan_holder)):
            if result.complete:
                reasons.append(reason(code, score=str(result.rounded()), zone=result.zone,
                                      year=year))  # fmt: skip
            else:
                reasons.append(reason(f"{code}_partial", missing=", ".join(result.missing)))
        rows.append({
            "customer_id": row["customer_id"],
            "altman_z": _float(ev.altman.rounded()),
            "altman_zone": ev.altman.zone,
            "conan_holder_z": _float(ev.conan_holder.rounded()),
            "conan_holder_zone": ev.conan_holder.zone,
            "fin_reasons": json.dumps(reasons),
        })  # fmt: skip
    schema = {"customer_id": pl.Int64, "altman_z": pl.Float64, "altman_zone": pl.String,
              "conan_holder_z": pl.Float64, "conan_holder_zone": pl.String,
              "fin_reasons": pl.String}  # fmt: skip
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame(rows, schema=schema, orient="row")


def _previous(conn: Connection, as_of: dt.date) -> pl.DataFrame:
    """Each customer's latest assessment strictly before the day."""
    # (customer_id, as_of) is unique and indexed: the latest day is found through the index
    # for each customer (joining a GROUP BY subquery made SQLite scan it per row).
    sql = """
        SELECT r.customer_id, r.risk_class AS previous_class, r.review_date AS previous_review
        FROM risk_assessments r
        WHERE r.as_of = (SELECT MAX(a.as_of) FROM risk_assessments a
                         WHERE a.customer_id = r.customer_id AND a.as_of < :as_of)
    """
    return query_frame(conn, sql, {"customer_id": pl.Int64, "previous_class": pl.String,
                                   "previous_review": pl.Date}, {"as_of": as_of})  # fmt: skip


def _onboarding_classes(conn: Connection, as_of: dt.date, policy: RiskPolicy) -> pl.DataFrame:
    """Each onboarded customer's onboarding class as of the day: the latest assessment of
    source `onboarding` on or before it, else (that row was replaced by an assessment of the
    same day) the class recomputed from the onboarding profile."""
    sql = """
        SELECT r.customer_id, r.risk_class AS onboarding_class, r.as_of AS onboarding_day
        FROM risk_assessments r
        WHERE r.source = 'onboarding'
          AND r.as_of = (SELECT MAX(a.as_of) FROM risk_assessments a
                         WHERE a.customer_id = r.customer_id AND a.source = 'onboarding'
                           AND a.as_of <= :as_of)
    """
    schema = {"customer_id": pl.Int64, "onboarding_class": pl.String,
              "onboarding_day": pl.Date}  # fmt: skip
    stored = query_frame(conn, sql, schema, {"as_of": as_of})
    profiles = CustomerProfile.__table__
    done = set(stored["customer_id"].to_list())
    found = conn.execute(
        select(profiles.c.customer_id, profiles.c.created_on, profiles.c.sector,
               profiles.c.checklist, profiles.c.onboarded_on, Customer.country)
        .join(Customer, Customer.id == profiles.c.customer_id)
        .where(profiles.c.onboarded_on.is_not(None) & (profiles.c.onboarded_on <= as_of))
    ).all()  # fmt: skip
    missing = [r for r in found if r.customer_id not in done]
    if not missing:
        return stored
    from encours.risk.onboarding import initial_class  # onboarding imports this module

    rows = []
    for row in missing:  # onboarded customers whose onboarding row was replaced
        risk_class, _reasons = initial_class(
            created=row.created_on, sector=row.sector, country=row.country,
            checklist={k for k, v in (row.checklist or {}).items() if v},
            as_of=row.onboarded_on, policy=policy,
        )  # fmt: skip
        rows.append((row.customer_id, risk_class, row.onboarded_on))
    recomputed = pl.DataFrame(rows, schema=schema, orient="row")
    return pl.concat([stored, recomputed])


def compute_assessments(
    conn: Connection,
    as_of: dt.date,
    policy: RiskPolicy = DEFAULT_POLICY,
    scorecard: behaviour.Scorecard = behaviour.DEFAULT_SCORECARD,
) -> pl.DataFrame:
    """Every customer's class as of the day (nothing written). Set-based over the ledger:
    behaviour features for all customers at once, one statement row per customer."""
    scored = behaviour.score_features(behaviour.behaviour_features(conn, as_of), scorecard)
    financial = _statement_components(latest_statements(conn, as_of), as_of, policy)
    customers = query_frame(
        conn, "SELECT id AS customer_id, in_insolvency, is_consumer FROM customers",
        {"customer_id": pl.Int64, "in_insolvency": pl.Boolean, "is_consumer": pl.Boolean},
    )  # fmt: skip
    frame = (
        customers.join(scored, on="customer_id", how="left")
        .join(financial, on="customer_id", how="left")
        .join(_previous(conn, as_of), on="customer_id", how="left")
        .join(_onboarding_classes(conn, as_of, policy), on="customer_id", how="left")
    )
    promises = behaviour.promises_available(conn)
    max_points = scorecard.max_points
    # the same few values for every customer: computed once (the loop below is per customer)
    review_of = {c: policy.review_date(c, as_of) for c in CLASSES}
    combined: dict[tuple, tuple[int | None, str | None]] = {}
    out = []
    for row in frame.iter_rows(named=True):  # per customer: words, not arithmetic on invoices
        reasons = json.loads(row["fin_reasons"] or "[]") or [reason("no_statements")]
        grades: dict[str, int | None] = {
            "Altman Z''": ALTMAN_GRADES.get(row["altman_zone"]),
            "Conan-Holder": CONAN_HOLDER_GRADES.get(row["conan_holder_zone"]),
            "behaviour": row["behaviour_grade"],
        }
        if row["behaviour_points"] is None:
            reasons.append(reason("no_history"))
        else:
            reasons.append(reason("behaviour", points=row["behaviour_points"], max=max_points))
            for feature in scorecard.features:
                if row[f"{feature.name}_points"] < feature.max_points and \
                        row[feature.name] is not None:  # fmt: skip
                    value = round(float(row[feature.name]), 1)
                    reasons.append(
                        reason(feature.name, value=int(value) if value.is_integer() else value)
                    )
            if not promises:
                reasons.append(reason("promises_unavailable"))
        key = tuple(grades.values())
        if key not in combined:
            combined[key] = combine(grades)
        index, weakest = combined[key]
        if index is None and row["onboarding_class"] is not None:
            index = CLASSES.index(row["onboarding_class"])
            reasons.append(reason("onboarding_kept", risk_class=row["onboarding_class"],
                                  day=row["onboarding_day"].isoformat()))  # fmt: skip
        elif index is None:
            index = 2
            reasons.append(reason("no_data"))
        elif weakest is not None:
            reasons.append(reason("weakest", component=weakest))
        if row["in_insolvency"]:
            index = 4
            reasons.insert(0, reason("insolvency"))
        risk_class = CLASSES[index]
        previous = row["previous_class"]
        if previous is not None and previous != risk_class:
            reasons.insert(0, reason("class_changed", before=previous, after=risk_class))
        if previous == risk_class and row["previous_review"] is not None:
            review = row["previous_review"]
        else:
            review = review_of[risk_class]
        out.append({
            "customer_id": row["customer_id"], "risk_class": risk_class,
            "previous_class": previous, "altman_z": row["altman_z"],
            "altman_zone": row["altman_zone"], "conan_holder_z": row["conan_holder_z"],
            "conan_holder_zone": row["conan_holder_zone"],
            "behaviour_points": row["behaviour_points"], "reasons": json.dumps(reasons),
            "review_date": review,
        })  # fmt: skip
    schema = {
        "customer_id": pl.Int64, "risk_class": pl.String, "previous_class": pl.String,
        "altman_z": pl.Float64, "altman_zone": pl.String, "conan_holder_z": pl.Float64,
        "conan_holder_zone": pl.String, "behaviour_points": pl.Int64, "reasons": pl.String,
        "review_date": pl.Date,
    }  # fmt: skip
    return pl.DataFrame(out, schema=schema, orient="row")


def assess(
    conn: Connection,
    as_of: dt.date,
    *,
    customer_id: int | None = None,
    policy: RiskPolicy = DEFAULT_POLICY,
    actor: str = "system",
) -> pl.DataFrame:
    """Compute and store the assessments of the day (replacing that day's), in the
    caller's transaction. History is kept: one row per customer and as-of day. One audit
    entry per run (action `assess`, entity `risk_assessments`, key the day) with the counts
    per class and the number of class changes, not one per customer."""
    frame = compute_assessments(conn, as_of, policy)
    if customer_id is not None:
        frame = frame.filter(pl.col("customer_id") == customer_id)
    condition = TABLE.c.as_of == as_of
    if customer_id is not None:
        condition = condition & (TABLE.c.customer_id == customer_id)
    conn.execute(delete(TABLE).where(condition))
    first = bulk.reserve_ids(conn, TABLE, frame.height)
    rows = frame.with_columns(
        id=pl.int_range(first, first + frame.height, dtype=pl.Int64),
        as_of=pl.lit(as_of, dtype=pl.Date),
        source=pl.lit("assess"),
        created_at=pl.lit(dt.datetime.now(dt.UTC).replace(tzinfo=None)),
    )
    bulk.insert_frame(conn, TABLE, rows)
    counts = {str(c): int(n) for c, n in
              frame.group_by("risk_class").len().sort("risk_class").iter_rows()}  # fmt: skip
    changed = frame.filter(
        pl.col("previous_class").is_not_null() & (pl.col("previous_class") != pl.col("risk_class"))
    ).height
    after: dict[str, object] = {"customers": frame.height, "classes": counts, "changed": changed}
    if customer_id is not None:
        after["customer_id"] = customer_id
    conn.execute(AuditEntry.__table__.insert().values(
        at=dt.datetime.now(dt.UTC).replace(tzinfo=None), actor=actor, action="assess",
        entity="risk_assessments", entity_key=as_of.isoformat(), before=None,
        after=after))  # fmt: skip
    return frame


def store_assessment(
    conn: Connection, customer_id: int, as_of: dt.date, risk_class: str, reasons: list[dict],
    *, source: str, policy: RiskPolicy = DEFAULT_POLICY,
) -> dt.date:  # fmt: skip
    """One assessment written directly (onboarding). Returns its review date."""
    conn.execute(delete(TABLE).where((TABLE.c.customer_id == customer_id)
                                     & (TABLE.c.as_of == as_of)))  # fmt: skip
    review = policy.review_date(risk_class, as_of)
    conn.execute(TABLE.insert().values(
        customer_id=customer_id, as_of=as_of, risk_class=risk_class, reasons=reasons,
        review_date=review, source=source))  # fmt: skip
    return review


def latest_assessment(conn: Connection, customer_id: int, as_of: dt.date) -> dict | None:
    """The customer's latest assessment on or before the day (index on customer, as_of)."""
    row = conn.execute(
        select(TABLE).where((TABLE.c.customer_id == customer_id) & (TABLE.c.as_of <= as_of))
        .order_by(TABLE.c.as_of.desc()).limit(1)
    ).mappings().first()  # fmt: skip
    return None if row is None else dict(row)


def history(conn: Connection, customer_id: int) -> list[dict]:
    rows = (
        conn.execute(
            select(TABLE).where(TABLE.c.customer_id == customer_id).order_by(TABLE.c.as_of)
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def reviews_due(conn: Connection, as_of: dt.date) -> pl.DataFrame:
    """Customers whose regular review is due on the day: the latest assessment's review
    date is on or before it, or the customer was never assessed (review_date null)."""
    sql = """
        SELECT c.id AS customer_id, c.code, c.name, r.risk_class, r.as_of AS assessed_on,
               r.review_date
        FROM customers c
        LEFT JOIN risk_assessments r
          ON r.customer_id = c.id
         AND r.as_of = (SELECT MAX(a.as_of) FROM risk_assessments a
                        WHERE a.customer_id = c.id AND a.as_of <= :as_of)
        WHERE r.review_date IS NULL OR r.review_date <= :as_of
        ORDER BY r.review_date, c.code
    """
    schema = {"customer_id": pl.Int64, "code": pl.String, "name": pl.String,
              "risk_class": pl.String, "assessed_on": pl.Date, "review_date": pl.Date}  # fmt: skip
    frame = query_frame(conn, sql, schema, {"as_of": as_of})
    return frame.with_columns(
        days_overdue=(pl.lit(as_of) - pl.col("review_date")).dt.total_days()
    ).sort(["review_date", "code"], nulls_last=True)


def record_review(
    conn: Connection, customer_id: int, as_of: dt.date, actor: str,
    policy: RiskPolicy = DEFAULT_POLICY,
) -> dt.date:  # fmt: skip
    """A credit manager reviewed the customer: the next review is scheduled from the day
    by the class of the latest assessment (audited). Returns the new review date."""
    latest = latest_assessment(conn, customer_id, as_of)
    if latest is None:
        raise LookupError("no assessment to review: run `encours risk assess` first")
    review = policy.review_date(latest["risk_class"], as_of)
    conn.execute(update(TABLE).where(TABLE.c.id == latest["id"]).values(review_date=review))
    code = conn.execute(select(Customer.code).where(Customer.id == customer_id)).scalar_one()
    conn.execute(AuditEntry.__table__.insert().values(
        at=dt.datetime.now(dt.UTC).replace(tzinfo=None), actor=actor, action="review",
        entity="customer", entity_key=code,
        before={"review_date": latest["review_date"].isoformat()},
        after={"review_date": review.isoformat(), "risk_class": latest["risk_class"]}))  # fmt: skip
    return review
