"""/api/v1: customers, invoices, payments, status, imports, audit. Bearer token or session."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path as FsPath
from typing import Annotated, overload

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Path,
    Query,
    Request,
    UploadFile,
)
from fastapi.responses import JSONResponse

from encours.imports.load import ImportRejected
from encours.money import from_minor
from encours.services import reports
from encours.services.imports import import_file
from encours.web import queries, uploads
from encours.web.accounts import Principal
from encours.web.api import schemas as s
from encours.web.deps import (
    DAY_PATTERN,
    AsOf,
    DbUrl,
    PrincipalDep,
    as_of_param,
    csrf_protect,
    require,
)
from encours.web.problems import PROBLEM_RESPONSES, problem

router = APIRouter(
    prefix="/api/v1", tags=["api"], responses=PROBLEM_RESPONSES,
    dependencies=[Depends(csrf_protect)],
)  # fmt: skip

NoNul = Query(max_length=200, pattern=r"^[^\x00]*$")
Page = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(ge=1, le=500)]


@overload
def _m(minor: int, currency: str) -> str: ...
@overload
def _m(minor: None, currency: str) -> None: ...
def _m(minor: int | None, currency: str) -> str | None:
    return None if minor is None else str(from_minor(int(minor), currency))


def _summary(row: dict) -> s.CustomerSummary:
    cur = row["currency"]
    return s.CustomerSummary(
        code=row["code"], name=row["name"], currency=cur, country=row["country"],
        segment=row["segment"], account_owner=row["account_owner"], collector=row["collector"],
        payment_terms=row["payment_terms"], credit_limit=_m(row["credit_limit_minor"], cur),
        balance=_m(row["balance_minor"], cur) or "0", overdue=_m(row["overdue_minor"], cur) or "0",
        exposure=_m(row["exposure_minor"], cur) or "0", headroom=_m(row["headroom_minor"], cur),
        over_limit=bool(row["headroom_minor"] is not None and row["headroom_minor"] < 0),
        open_invoices=int(row["open_invoices"] or 0),
        days_oldest_overdue=row["days_oldest_overdue"],
    )  # fmt: skip


@router.get("/me", response_model=s.Me, summary="Who am I")
def me(principal: PrincipalDep) -> s.Me:
    return s.Me(name=principal.name, role=principal.role, kind=principal.kind,
                owner_name=principal.owner_name)  # fmt: skip


@router.get("/customers", response_model=s.CustomerPage, summary="Customers with their position")
def list_customers(
    principal: Annotated[Principal, Depends(require("customers.view"))],
    url: DbUrl,
    as_of: AsOf,
    q: Annotated[str | None, NoNul] = None,
    segment: Annotated[str | None, NoNul] = None,
    owner: Annotated[str | None, NoNul] = None,
    country: Annotated[str | None, NoNul] = None,
    risk_class: Annotated[
        str | None,
        Query(
            alias="class",
            pattern="^[A-E]$",
            description="Risk class (A-E) of the latest assessment on or before as_of.",
        ),
    ] = None,
    over_limit: bool | None = None,
    page: Page = 1,
    per_page: PerPage = 50,
) -> s.CustomerPage:
    filters = queries.Filters(segment=segment, owner=owner, country=country, q=q,
                              risk_class=risk_class)  # fmt: skip
    frame, total = queries.customer_list(url, as_of, principal, filters, page=page,
                                         per_page=per_page, over_limit=over_limit)  # fmt: skip
    return s.CustomerPage(items=[_summary(r) for r in frame.to_dicts()], total=total, page=page,
                          per_page=per_page)  # fmt: skip


@router.get("/customers/{code}", response_model=s.CustomerDetail, summary="One customer")
def get_customer(
    code: Annotated[str, Path(max_length=64, pattern=r"^[^\x00]*$")],
    principal: Annotated[Principal, Depends(require("customers.view"))],
    url: DbUrl,
    as_of: AsOf,
) -> s.CustomerDetail:
    detail = queries.customer_detail(url, code, as_of, principal)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"no customer {code!r}")
    c = detail["customer"]
    positions = []
    for p in detail["positions"]:
        cur = p["currency"]
        positions.append(s.Position(
            currency=cur, balance=_m(p["balance_minor"], cur),
            exposure=_m(p["exposure_minor"], cur),
            invoices_open=_m(p["invoices_open_minor"], cur), not_due=_m(p["not_due_minor"], cur),
            overdue=_m(p["overdue_minor"], cur), unapplied_cash=_m(p["unapplied_cash_minor"], cur),
            unapplied_credit=_m(p["unapplied_credit_minor"], cur),
            buckets={b.label: _m(p[f"{b.key}_minor"], cur) for b in detail["buckets"]},
            open_invoices=int(p["open_invoices"] or 0),
        ))  # fmt: skip
    return s.CustomerDetail(
        code=c["code"], name=c["name"], siren=c["siren"], siret=c["siret"],
        vat_number=c["vat_number"], country=c["country"], currency=c["currency"],
        address_line1=c["address_line1"], address_line2=c["address_line2"],
        postal_code=c["postal_code"], city=c["city"],
        payment_terms=c["payment_terms"],
        penalty_rate=None if c["penalty_rate"] is None else str(c["penalty_rate"]),
        credit_limit=_m(c["credit_limit_minor"], c["currency"]), segment=c["segment"],
        account_owner=c["account_owner"], collector=c["collector"], as_of=as_of,
        positions=positions, kpis=detail["kpis"],
        contacts=[s.Contact(**{k: ct[k] for k in ("name", "role", "email", "phone", "language")})
                  for ct in detail["contacts"]],
    )  # fmt: skip


@router.get("/invoices", response_model=s.InvoicePage, summary="Invoices and credit notes")
def list_invoices(
    principal: Annotated[Principal, Depends(require("invoices.view"))],
    url: DbUrl,
    customer: Annotated[str | None, NoNul] = None,
    open_as_of: Annotated[
        dt.date | None,
        Query(
            description="Only invoices open on that day, with open amounts",
            json_schema_extra={"pattern": DAY_PATTERN},
        ),
    ] = None,
    overdue: Annotated[
        bool, Query(description="Only open invoices past due (as of open_as_of, default today)")
    ] = False,  # fmt: skip
    page: Page = 1,
    per_page: PerPage = 50,
) -> s.InvoicePage:
    if overdue and open_as_of is None:
        open_as_of = dt.date.today()
    if open_as_of is not None:
        open_as_of = as_of_param(open_as_of)
    rows, total = queries.invoices_page(url, principal, customer=customer, open_as_of=open_as_of,
                                        overdue=overdue, page=page, per_page=per_page)  # fmt: skip
    items = [
        s.Invoice(
            number=r["number"], kind=r["kind"], customer_code=r["customer_code"],
            issue_date=r["issue_date"], due_date=r["due_date"],
            amount=_m(r["amount_minor"], r["currency"]),
            open_amount=_m(r.get("open_minor"), r["currency"]), currency=r["currency"],
            disputed=bool(r["disputed"]), status=r["status"], days_overdue=r.get("days_overdue"),
        )
        for r in rows
    ]  # fmt: skip
    return s.InvoicePage(items=items, total=total, page=page, per_page=per_page)


@router.get("/payments", response_model=s.PaymentPage, summary="Payments received")
def list_payments(
    principal: Annotated[Principal, Depends(require("payments.view"))],
    url: DbUrl,
    customer: Annotated[str | None, NoNul] = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    page: Page = 1,
    per_page: PerPage = 50,
) -> s.PaymentPage:
    rows, total = queries.payments_page(url, principal, customer=customer, date_from=date_from,
                                        date_to=date_to, page=page, per_page=per_page)  # fmt: skip
    items = [s.PaymentOut(reference=r["reference"], customer_code=r["customer_code"],
                          date=r["date"], amount=_m(r["amount_minor"], r["currency"]),
                          currency=r["currency"], method=r["method"]) for r in rows]  # fmt: skip
    return s.PaymentPage(items=items, total=total, page=page, per_page=per_page)


@router.get("/status", response_model=s.Status, summary="Same keys as `encours status --json`")
def status(
    principal: Annotated[Principal, Depends(require("status.view"))], url: DbUrl, as_of: AsOf
) -> dict:
    return reports.status(as_of, url)


@router.post(
    "/imports", response_model=s.ImportResult, summary="Import a CSV, XLSX or FEC file",
    responses={413: PROBLEM_RESPONSES[413]},
)  # fmt: skip
def post_import(
    request: Request,
    principal: Annotated[Principal, Depends(require("imports.run"))],
    url: DbUrl,
    kind: Annotated[str, Form(pattern="^(customers|invoices|payments|fec)$")],
    file: Annotated[UploadFile, File()],
) -> s.ImportResult | JSONResponse:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            head = file.file.read(65536)
            suffix = uploads.check_upload(file.filename or "", kind, head)
        except uploads.UploadError as exc:
            return problem(request, 422, str(exc))
        name = "".join(c for c in FsPath(file.filename or "").stem if c.isalnum() or c in "-_.")
        path = FsPath(tmp) / f"{name[:80] or 'upload'}{suffix}"
        with path.open("wb") as out:
            out.write(head)
            while chunk := file.file.read(1 << 20):
                out.write(chunk)
        try:
            report = import_file(path, kind, db_url=url, actor=principal.actor)  # type: ignore[arg-type]
        except ImportRejected as exc:
            errors = [{"line": e.line, "column": e.column, "value": e.value[:200],
                       "expected": e.expected} for e in exc.errors[:500]]  # fmt: skip
            return problem(request, 422, f"{len(exc.errors)} invalid row(s): nothing imported",
                           errors)  # fmt: skip
    return s.ImportResult.model_validate(
        {**report.as_dict(), "status": "ok", "source": file.filename or ""}
    )


@router.get("/audit", response_model=s.AuditPage, summary="Audit log (admin)")
def audit(
    _principal: Annotated[Principal, Depends(require("audit.view"))],
    url: DbUrl,
    entity: Annotated[str | None, NoNul] = None,
    actor: Annotated[str | None, NoNul] = None,
    action: Annotated[str | None, NoNul] = None,
    key: Annotated[str | None, NoNul] = None,
    page: Page = 1,
    per_page: PerPage = 50,
) -> s.AuditPage:
    rows, total = queries.audit_page(url, entity=entity, actor=actor, action=action, key=key,
                                     page=page, per_page=per_page)  # fmt: skip
    # stored as naive UTC; RFC 3339 date-times carry their offset
    items = [s.AuditOut(**{**r, "at": r["at"].replace(tzinfo=dt.UTC)}) for r in rows]
    return s.AuditPage(items=items, total=total, page=page,
                       per_page=per_page)  # fmt: skip


__all__ = ["router"]
