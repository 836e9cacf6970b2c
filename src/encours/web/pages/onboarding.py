"""Onboarding of a new customer from the web (credit managers and admins): identifiers,
profile and checklist; the risk module decides the initial class and limit and audits it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from encours.risk.onboarding import (
    CHECKLIST_ITEMS,
    OnboardingError,
    OnboardingResult,
    onboard_customer,
)
from encours.store.db import unit_of_work
from encours.web.accounts import Principal
from encours.web.deps import DbUrl, csrf_protect, language, render, require
from encours.web.formatting import gettext_for
from encours.web.pages import alerts as _risk_permissions  # noqa: F401  (registers them)

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)

FIELDS = ("code", "name", "siren", "siret", "vat_number", "legal_form", "created", "sector",
          "country", "address_line1", "address_line2", "postal_code", "city", "currency",
          "payment_terms")  # fmt: skip


def onboard(
    db_url: str | None, principal: Principal, values: dict, checklist: list[str],
    as_of: dt.date | None, lang: str = "en",
) -> OnboardingResult:  # fmt: skip
    """Onboard in one transaction; OnboardingError lists every problem of the input
    (a missing code or an invalid date included)."""
    _ = gettext_for(lang)
    problems = []
    code = (values.get("code") or "").strip()
    if not code:
        problems.append(_("A customer code is required"))
    created = values.get("created")
    if isinstance(created, str):
        created = created.strip() or None
        if created:
            try:
                created = dt.date.fromisoformat(created)
            except ValueError:
                problems.append(_("Invalid date: {value}").format(value=created))
                created = None
    if problems:
        raise OnboardingError(problems)

    def opt(key: str) -> str | None:
        value = values.get(key)
        return value.strip() or None if isinstance(value, str) else value

    with unit_of_work(db_url) as conn:
        return onboard_customer(
            conn, code, values.get("name") or "", siren=opt("siren"), siret=opt("siret"),
            vat_number=opt("vat_number"), legal_form=opt("legal_form"), created=created,
            sector=opt("sector"), country=(opt("country") or "FR").upper(),
            address_line1=opt("address_line1"), address_line2=opt("address_line2"),
            postal_code=opt("postal_code"), city=opt("city"),
            checklist=list(dict.fromkeys(checklist)), currency=(opt("currency") or "EUR").upper(),
            payment_terms=opt("payment_terms") or "30 days net", as_of=as_of,
            actor=principal.actor,
        )  # fmt: skip


def _form(request: Request, status: int = 200, **ctx: object) -> HTMLResponse:
    ctx.setdefault("values", {"country": "FR", "currency": "EUR",
                              "payment_terms": "30 days net"})  # fmt: skip
    ctx.setdefault("checked", [])
    return render(request, "onboarding.html", {"items": CHECKLIST_ITEMS, **ctx}, status)


@router.get("/onboarding")
def onboarding_form(
    request: Request, _principal: Annotated[Principal, Depends(require("onboarding.run"))]
) -> HTMLResponse:
    return _form(request)


@router.post("/onboarding")
def onboarding_submit(
    request: Request,
    principal: Annotated[Principal, Depends(require("onboarding.run"))],
    url: DbUrl,
    code: Annotated[str, Form(max_length=64)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    siren: Annotated[str, Form(max_length=20)] = "",
    siret: Annotated[str, Form(max_length=30)] = "",
    vat_number: Annotated[str, Form(max_length=30)] = "",
    legal_form: Annotated[str, Form(max_length=40)] = "",
    created: Annotated[str, Form(max_length=10)] = "",
    sector: Annotated[str, Form(max_length=60)] = "",
    country: Annotated[str, Form(max_length=10)] = "FR",
    address_line1: Annotated[str, Form(max_length=200)] = "",
    address_line2: Annotated[str, Form(max_length=200)] = "",
    postal_code: Annotated[str, Form(max_length=20)] = "",
    city: Annotated[str, Form(max_length=100)] = "",
    currency: Annotated[str, Form(max_length=10)] = "EUR",
    payment_terms: Annotated[str, Form(max_length=60)] = "30 days net",
    checklist: Annotated[list[str] | None, Form(max_length=40)] = None,
    as_of: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    values = {"code": code, "name": name, "siren": siren, "siret": siret,
              "vat_number": vat_number, "legal_form": legal_form, "created": created,
              "sector": sector, "country": country, "address_line1": address_line1,
              "address_line2": address_line2, "postal_code": postal_code, "city": city,
              "currency": currency, "payment_terms": payment_terms}  # fmt: skip
    checked = checklist or []
    _ = gettext_for(language(request))
    try:
        day = dt.date.fromisoformat(as_of) if as_of.strip() else None
    except ValueError:
        return _form(request, 422, values=values, checked=checked,
                     problems=[_("Invalid date: {value}").format(value=as_of)])  # fmt: skip
    try:
        result = onboard(url, principal, values, checked, day, language(request))
    except OnboardingError as exc:
        return _form(request, 422, values=values, checked=checked, problems=exc.problems)
    return render(request, "onboarding.html", {"items": CHECKLIST_ITEMS, "result": result,
                                               "values": values, "checked": checked})  # fmt: skip


__all__ = ["FIELDS", "onboard", "router"]
