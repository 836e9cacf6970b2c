"""Financial statements of a customer entered from the web (credit managers and admins):
GET /customers/{code}/statements lists the customer's statements with their failure scores
and shows the entry form; POST saves one financial year (replacing it, audited)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from encours.money import MoneyError
from encours.risk.statements import customer_statements, save_statement
from encours.store.db import unit_of_work
from encours.store.risk_schema import STATEMENT_FIELDS
from encours.store.schema import Customer
from encours.web.accounts import Principal
from encours.web.deps import DbUrl, csrf_protect, language, render, require
from encours.web.formatting import gettext_for

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)
PERMISSION = "statements.enter"


def _customer(url: str | None, code: str) -> dict:
    with unit_of_work(url) as conn:
        row = conn.execute(
            Customer.__table__.select().where(Customer.__table__.c.code == code)
        ).mappings().first()  # fmt: skip
        if row is None:
            raise HTTPException(status_code=404, detail="unknown customer")
        return {"row": dict(row), "statements": customer_statements(conn, row["id"])}


def _page(
    request: Request, url: str | None, code: str, status: int = 200, **ctx: object
) -> HTMLResponse:
    found = _customer(url, code)
    customer = found["row"]
    ctx.setdefault("values", {"currency": customer["currency"]})
    return render(request, "statements_form.html", {
        "customer": customer, "statements": found["statements"], "fields": STATEMENT_FIELDS,
        **ctx}, status)  # fmt: skip


def parse_form(form: dict[str, str], lang: str) -> tuple[dict, list[str]]:
    """The form's year, period end, currency and amounts (major units), and every problem."""
    _ = gettext_for(lang)
    problems: list[str] = []
    parsed: dict = {"amounts": {}}
    year_text = (form.get("fiscal_year") or "").strip()
    try:
        parsed["fiscal_year"] = int(year_text)
        if not 1900 <= parsed["fiscal_year"] <= 2999:
            raise ValueError
    except ValueError:
        problems.append(_("Financial year {value}: a year such as 2024 expected").format(
            value=year_text))  # fmt: skip
    end = (form.get("period_end") or "").strip()
    parsed["period_end"] = None
    if end:
        try:
            parsed["period_end"] = dt.date.fromisoformat(end)
        except ValueError:
            problems.append(_("Invalid date: {value}").format(value=end))
    parsed["currency"] = (form.get("currency") or "").strip().upper() or None
    for name in STATEMENT_FIELDS:
        raw = (form.get(name) or "").replace("\u00a0", "").replace(" ", "").strip()
        if not raw:
            continue
        try:
            value = Decimal(raw.replace(",", "."))
            if not value.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            problems.append(_("{field}: {value!r} is not an amount").format(
                field=name, value=raw))  # fmt: skip
            continue
        parsed["amounts"][name] = value
    if not parsed["amounts"] and not problems:
        problems.append(_("Enter at least one amount"))
    return parsed, problems


@router.get("/customers/{code}/statements")
def statements_form(
    request: Request,
    code: str,
    url: DbUrl,
    _principal: Annotated[Principal, Depends(require(PERMISSION))],
) -> HTMLResponse:
    return _page(request, url, code)


@router.post("/customers/{code}/statements")
async def statements_submit(
    request: Request,
    code: str,
    url: DbUrl,
    principal: Annotated[Principal, Depends(require(PERMISSION))],
) -> HTMLResponse:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and len(v) <= 60}
    lang = language(request)
    _ = gettext_for(lang)
    _customer(url, code)  # 404 first
    parsed, problems = parse_form(values, lang)
    if problems:
        return _page(request, url, code, 422, values=values, problems=problems)
    try:
        with unit_of_work(url) as conn:
            replaced = save_statement(
                conn, code, parsed["fiscal_year"], parsed["amounts"],
                period_end=parsed["period_end"], currency=parsed["currency"],
                source="web", actor=principal.actor,
            )  # fmt: skip
    except (MoneyError, ValueError) as exc:
        return _page(request, url, code, 422, values=values, problems=[str(exc)])
    message = _("Financial year {year} replaced") if replaced else \
        _("Financial year {year} saved")  # fmt: skip
    return _page(request, url, code, notice=message.format(year=parsed["fiscal_year"]))


__all__ = ["parse_form", "router"]
