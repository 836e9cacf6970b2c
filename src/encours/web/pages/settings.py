"""Settings: dunning policies and their assignment, message templates with a preview,
reference rates, users (the existing /admin/users page).

Policies, templates and users are for admins; the reference rates for admins and credit
managers. Every change goes through the collections/store functions, which audit it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from encours.collections import policies as policy_store
from encours.collections.templates import SHIPPED_DIR, Renderer, TemplateRenderError
from encours.company import load_company
from encours.domain.dunning import (
    APPROVAL_ROLES,
    ASSIGNMENT_SCOPES,
    CHANNELS,
    Level,
    Policy,
    PolicyError,
)
from encours.domain.penalties import RATE_KINDS, RateTable
from encours.store.db import unit_of_work
from encours.store.rates import (
    RateInputError,
    list_rates,
    missing_current_rate_warning,
    missing_legal_rate_warning,
    set_rate,
)
from encours.web.accounts import Principal
from encours.web.deps import AsOf, DbUrl, csrf_protect, language, render, require
from encours.web.formatting import gettext_for
from encours.web.pages import alerts as _risk_permissions  # noqa: F401  (registers them)
from encours.web.pages.limits import parse_amount

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)
Short = Annotated[str, Form(max_length=200)]
LANGS = ("fr", "en")


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/settings")
def settings_index(
    request: Request, _principal: Annotated[Principal, Depends(require("settings.view"))]
) -> HTMLResponse:
    return render(request, "settings.html")


# --- dunning policies ------------------------------------------------------------------------


def _policies_page(
    request: Request, url: str | None, status: int = 200, **extra: object
) -> HTMLResponse:
    with unit_of_work(url) as conn:
        policies = policy_store.list_policies(conn)
        assignments = policy_store.assignments_table(conn).to_dicts()
    ctx = {"policies": policies, "assignments": assignments, "channels": CHANNELS,
           "approval_roles": APPROVAL_ROLES, "scopes": ASSIGNMENT_SCOPES, **extra}  # fmt: skip
    return render(request, "settings_policies.html", ctx, status)


@router.get("/settings/policies")
def policies_page(
    request: Request,
    _principal: Annotated[Principal, Depends(require("settings.manage"))],
    url: DbUrl,
) -> HTMLResponse:
    return _policies_page(request, url)


def policy_from_form(code: str, name: str, description: str, rows: dict[str, list[str]]) -> Policy:
    """A policy from the form's parallel lists (rows with an empty level code are dropped).
    PolicyError on a value that cannot be read; check_policy() runs when it is saved."""
    levels = []
    count = len(rows["level_code"])
    for i in range(count):

        def cell(name: str, i: int = i) -> str:
            values = rows.get(name) or []
            return values[i].strip() if i < len(values) else ""

        level_code = cell("level_code")
        if not level_code:
            continue
        try:
            days = int(cell("level_days"))
        except ValueError as exc:
            raise PolicyError(f"level {level_code}: days must be a whole number") from exc
        try:
            minimum = parse_amount(cell("level_min") or "0")
        except ValueError as exc:
            raise PolicyError(f"level {level_code}: the minimum must be an amount") from exc
        levels.append(Level(
            code=level_code, days=days, channel=cell("level_channel"),
            template=cell("level_template") or level_code,
            claim_penalties=cell("level_penalties") == "1",
            claim_indemnity=cell("level_indemnity") == "1",
            min_overdue_minor=int((minimum * 100).to_integral_value()),
            approval_role=cell("level_approval") or None,
        ))  # fmt: skip
    return Policy(code=code.strip(), name=name.strip() or code.strip(), levels=tuple(levels),
                  description=description.strip() or None)  # fmt: skip


LevelList = Annotated[list[str], Form(max_length=60)]


@router.post("/settings/policies")
def policies_save(
    request: Request,
    principal: Annotated[Principal, Depends(require("settings.manage"))],
    url: DbUrl,
    code: Annotated[str, Form(max_length=40, pattern=r"^[A-Za-z0-9_.-]*$")] = "",
    name: Short = "",
    description: Annotated[str, Form(max_length=500)] = "",
    is_default: Annotated[str, Form(max_length=1)] = "",
    level_code: LevelList = [],  # noqa: B006 (FastAPI copies defaults)
    level_days: LevelList = [],  # noqa: B006
    level_channel: LevelList = [],  # noqa: B006
    level_template: LevelList = [],  # noqa: B006
    level_min: LevelList = [],  # noqa: B006
    level_penalties: LevelList = [],  # noqa: B006
    level_indemnity: LevelList = [],  # noqa: B006
    level_approval: LevelList = [],  # noqa: B006
) -> Response:
    rows = {"level_code": level_code, "level_days": level_days, "level_channel": level_channel,
            "level_template": level_template, "level_min": level_min,
            "level_penalties": level_penalties, "level_indemnity": level_indemnity,
            "level_approval": level_approval}  # fmt: skip
    _ = gettext_for(language(request))
    if not code.strip():
        return _policies_page(request, url, 422, error=_("A policy needs a code."))
    try:
        policy = policy_from_form(code, name, description, rows)
        with unit_of_work(url) as conn:
            policy_store.save_policy(conn, policy, actor=principal.actor,
                                     default=True if is_default == "1" else None)  # fmt: skip
    except PolicyError as exc:
        return _policies_page(request, url, 422, error=str(exc))
    return _see_other("/settings/policies")


@router.post("/settings/assignments")
def assignments_save(
    request: Request,
    principal: Annotated[Principal, Depends(require("settings.manage"))],
    url: DbUrl,
    scope: Annotated[str, Form(max_length=20)] = "",
    key: Annotated[str, Form(max_length=100)] = "",
    policy: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    _ = gettext_for(language(request))
    if not key.strip():
        return _policies_page(request, url, 422, error=_("Give the segment, class or customer."))
    try:
        with unit_of_work(url) as conn:
            policy_store.assign(conn, scope, key.strip(), policy or None, principal.actor)
    except PolicyError as exc:
        return _policies_page(request, url, 422, error=str(exc))
    return _see_other("/settings/policies")


# --- templates -------------------------------------------------------------------------------


def sample_context(as_of: dt.date, with_penalties: bool = True) -> dict:
    """A made-up customer with two overdue invoices, to preview a message."""
    company = load_company()
    company_ctx = dataclasses.asdict(company)
    company_ctx["address"] = list(company.address)
    company_ctx["iban_display"] = company.iban_display
    invoices: list[dict[str, Any]] = []
    for number, days, amount in (("F-2025-0142", 38, 1_250_00), ("F-2025-0187", 12, 480_50)):
        due = as_of - dt.timedelta(days=days)
        invoices.append({
            "number": number, "issue_date": due - dt.timedelta(days=30), "due_date": due,
            "amount_minor": amount, "open_minor": amount, "days_overdue": days,
            "penalties_minor": 14_20 if with_penalties else 0,
            "indemnity_minor": 40_00 if with_penalties else 0,
        })  # fmt: skip
    listed = sum(i["open_minor"] for i in invoices)
    pen = sum(i["penalties_minor"] for i in invoices)
    ind = sum(i["indemnity_minor"] for i in invoices)
    return {
        "company": company_ctx,
        "customer": {"code": "C0042", "name": "Exemple Industrie SAS", "siren": "732829320",
                     "vat_number": "FR44732829320"},
        "contact": {"name": "Marie Martin", "email": "compta@exemple.fr",
                    "phone": "+33 1 23 45 67 89"},
        "invoices": invoices,
        "totals": {"listed_minor": listed, "unapplied_minor": 0, "net_due_minor": listed,
                   "penalties_minor": pen, "indemnities_minor": ind,
                   "claimed_minor": listed + pen + ind},
        "currency": "EUR",
        "level": {"code": "preview", "days": 30, "channel": "email",
                  "claim_penalties": with_penalties, "claim_indemnity": with_penalties},
        "kind": "overdue",
        "as_of": as_of,
        "reference": f"C0042-{as_of:%Y%m%d}",
        "collector": {"name": "Service recouvrement", "email": None, "phone": None},
    }  # fmt: skip


def template_choices(url: str | None) -> list[tuple[str, str]]:
    """(template, channel) of every level of every policy, then the shipped files."""
    with unit_of_work(url) as conn:
        levels = policy_store.levels_table(conn)
    found = {(r["template"], r["channel"]) for r in levels.iter_rows(named=True)}
    for path in (SHIPPED_DIR / "fr").glob("*.j2"):
        parts = path.name.split(".")
        if not path.name.startswith("_") and len(parts) == 3:
            found.add((parts[0], parts[1]))
    return sorted(found)


@router.get("/settings/templates")
def templates_page(
    request: Request,
    _principal: Annotated[Principal, Depends(require("settings.manage"))],
    url: DbUrl,
    as_of: AsOf,
    template: Annotated[str | None, Query(max_length=60, pattern=r"^[a-z0-9_]*$")] = None,
    channel: Annotated[str | None, Query(pattern="^(email|letter|phone)?$")] = None,
    lang: Annotated[str | None, Query(pattern="^(fr|en)?$")] = None,
    penalties: Annotated[str | None, Query(pattern="^[01]?$")] = None,
) -> HTMLResponse:
    choices = template_choices(url)
    ctx: dict = {"choices": choices, "langs": LANGS, "as_of": as_of,
                 "f": {"template": template, "channel": channel, "penalties": penalties,
                       "lang": lang or language(request)}}  # fmt: skip
    status = 200
    if template and channel:
        renderer = Renderer()
        try:
            name = renderer.template_name(template, channel, ctx["f"]["lang"])
            rendered = renderer.render(template, channel, ctx["f"]["lang"],
                                       sample_context(as_of, penalties != "0"))  # fmt: skip
            ctx["preview"] = rendered
            ctx["source"] = _source(renderer, name)
        except TemplateRenderError as exc:
            ctx["error"] = str(exc)
            status = 422
    return render(request, "settings_templates.html", ctx, status)


def _source(renderer: Renderer, name: str) -> tuple[str, str]:
    """(where the file is, its text): the user's folder overrides the shipped one."""
    for folder in renderer.dirs:
        path = folder / name
        if path.is_file():
            return str(path), path.read_text(encoding="utf-8")
    return name, ""


# --- reference rates -------------------------------------------------------------------------


def _rates_page(
    request: Request, url: str | None, status: int = 200, **extra: object
) -> HTMLResponse:
    with unit_of_work(url) as conn:
        rates = list_rates(conn)
    # The same warnings as `encours rates list`: the ECB rate of the current half-year not
    # confirmed, its legal interest rate not entered.
    table = RateTable((r.kind, r.valid_from, r.rate) for r in rates)
    translate, today = gettext_for(language(request)), dt.date.today()
    warnings = [w for w in (missing_current_rate_warning(table, today, translate),
                            missing_legal_rate_warning(table, today, translate)) if w]  # fmt: skip
    rates = sorted(rates, key=lambda r: (r.kind, r.valid_from), reverse=True)
    context = {"rates": rates, "kinds": RATE_KINDS, "warnings": warnings, **extra}
    return render(request, "settings_rates.html", context, status)


@router.get("/settings/rates")
def rates_page(
    request: Request,
    _principal: Annotated[Principal, Depends(require("rates.manage"))],
    url: DbUrl,
) -> HTMLResponse:
    return _rates_page(request, url)


@router.post("/settings/rates")
def rates_save(
    request: Request,
    principal: Annotated[Principal, Depends(require("rates.manage"))],
    url: DbUrl,
    kind: Annotated[str, Form(max_length=20)] = "",
    valid_from: Annotated[str, Form(max_length=10)] = "",
    rate: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    _ = gettext_for(language(request))
    values = {"kind": kind, "valid_from": valid_from, "rate": rate, "note": note}
    try:
        day = dt.date.fromisoformat(valid_from.strip())
    except ValueError:
        return _rates_page(request, url, 422, values=values,
                           error=_("Invalid date: {value}").format(value=valid_from))  # fmt: skip
    try:
        with unit_of_work(url) as conn:
            set_rate(conn, kind, day, rate, principal.actor, note.strip() or None)
    except RateInputError as exc:
        return _rates_page(request, url, 422, values=values, error=str(exc))
    return _see_other("/settings/rates")


__all__ = ["policy_from_form", "router", "sample_context", "template_choices"]
