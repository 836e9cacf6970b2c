"""Late-payment penalties invoiced as a separate charge invoice, or waived.

A charge invoice (`charge_invoice`) bills the penalties and fixed indemnities still
claimable on the customer's late invoices (paid late or still open) as of a day:
- a new ledger document of kind `invoice`, numbered `PEN-YYYY-NNNN` (per issue year), in
  euros, due `due_days` after issue; it never bears penalties itself;
- penalties and indemnities are not subject to VAT (art. L441-10 II Code de commerce;
  VAT category "O", outside the scope of VAT, in the Factur-X data);
- its PDF (PDF/A-3b from WeasyPrint) carries the Factur-X XML (profile BASIC WL) embedded
  with the `factur-x` library, so that accounting software imports it.
What was invoiced is recorded per source invoice in the audit log (`penalties.invoiced`),
so neither a later charge invoice nor a formal notice claims it again. `waive_penalties`
records the same way (`penalties.waived`, with the reason) what the creditor gives up.
Only penalties on euro invoices are invoiced (the indemnity is always in euros).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection, func, insert, select

from encours.collections.legal import (
    AUDIT,
    CHARGE_PREFIX,
    DOCUMENTS,
    TIMELINE,
    PenaltyLine,
    late_invoices,
)
from encours.collections.pdf import DocumentError, check_language, html_to_pdf, render_html
from encours.collections.statement import CustomerInfo, load_customer
from encours.company import CompanyProfile, load_company
from encours.money import to_minor

CURRENCY = "EUR"
FACTURX_LEVEL = "basicwl"


@dataclass(frozen=True)
class ChargeInvoice:
    number: str
    document_id: int
    customer: CustomerInfo
    issue_date: dt.date
    due_date: dt.date
    lines: list[PenaltyLine]
    penalties: Decimal
    indemnities: Decimal
    pdf: bytes

    @property
    def total(self) -> Decimal:
        return self.penalties + self.indemnities


def _claimable(conn: Connection, customer: CustomerInfo, as_of: dt.date) -> list[PenaltyLine]:
    lines = late_invoices(conn, customer, as_of, open_only=False)
    return [
        line
        for line in lines
        if line.currency == CURRENCY and (line.penalties > 0 or line.indemnity > 0)
    ]


def _lines_record(lines: list[PenaltyLine]) -> dict[str, dict[str, int]]:
    return {
        line.number: {
            "penalties": to_minor(line.penalties, CURRENCY),
            "indemnity": to_minor(line.indemnity, CURRENCY),
        }
        for line in lines
    }


def next_charge_number(conn: Connection, year: int) -> str:
    """`PEN-YYYY-NNNN`: the next number of the year (numbers are never reused)."""
    prefix = f"{CHARGE_PREFIX}{year}-"
    last = conn.execute(
        select(func.max(DOCUMENTS.c.number)).where(DOCUMENTS.c.number.startswith(prefix))
    ).scalar_one()
    sequence = int(last.removeprefix(prefix)) + 1 if last else 1
    return f"{prefix}{sequence:04d}"


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def _address(lines: tuple[str, ...] | list[str]) -> tuple[str, str, str]:
    """(street, postcode, city) from printed address lines ("75001 Paris" last)."""
    street = lines[0] if lines else ""
    match = re.match(r"^\s*(\d{4,5})\s+(.+)$", lines[-1]) if lines else None
    return (street, match.group(1), match.group(2)) if match else (street, "", "")


def facturx_xml(
    number: str,
    issue_date: dt.date,
    due_date: dt.date,
    company: CompanyProfile,
    customer: CustomerInfo,
    total: Decimal,
    note: str,
) -> bytes:
    """The CII XML of the charge invoice, Factur-X profile BASIC WL, VAT category O."""
    from lxml import etree

    ns = {
        "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
        "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
        "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    }

    def el(parent, tag: str, text: str | None = None, **attrib: str):  # noqa: ANN001, ANN202
        prefix, name = tag.split(":")
        node = etree.SubElement(parent, f"{{{ns[prefix]}}}{name}", attrib)
        if text is not None:
            node.text = text
        return node

    def date(parent, tag: str, day: dt.date) -> None:  # noqa: ANN001
        el(el(parent, tag), "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")

    root = etree.Element(f"{{{ns['rsm']}}}CrossIndustryInvoice", nsmap=ns)
    context = el(root, "rsm:ExchangedDocumentContext")
    el(el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID",
       "urn:factur-x.eu:1p0:basicwl")  # fmt: skip
    doc = el(root, "rsm:ExchangedDocument")
    el(doc, "ram:ID", number)
    el(doc, "ram:TypeCode", "380")
    date(doc, "ram:IssueDateTime", issue_date)
    el(el(doc, "ram:IncludedNote"), "ram:Content", note)
    trade = el(root, "rsm:SupplyChainTradeTransaction")
    agreement = el(trade, "ram:ApplicableHeaderTradeAgreement")
    seller = el(agreement, "ram:SellerTradeParty")
    el(seller, "ram:Name", company.name)
    if company.siren:
        el(el(seller, "ram:SpecifiedLegalOrganization"), "ram:ID", company.siren, schemeID="0002")
    street, postcode, city = _address(company.address)
    address = el(seller, "ram:PostalTradeAddress")
    if postcode:
        el(address, "ram:PostcodeCode", postcode)
    el(address, "ram:LineOne", street)
    if city:
        el(address, "ram:CityName", city)
    el(address, "ram:CountryID", "FR")
    buyer = el(agreement, "ram:BuyerTradeParty")
    el(buyer, "ram:ID", customer.code)
    el(buyer, "ram:Name", customer.name)
    if customer.siren:
        el(el(buyer, "ram:SpecifiedLegalOrganization"), "ram:ID", customer.siren, schemeID="0002")
    if customer.country and len(customer.country) == 2:
        el(el(buyer, "ram:PostalTradeAddress"), "ram:CountryID", customer.country.upper())
    el(trade, "ram:ApplicableHeaderTradeDelivery")
    settlement = el(trade, "ram:ApplicableHeaderTradeSettlement")
    el(settlement, "ram:InvoiceCurrencyCode", CURRENCY)
    if company.iban:
        means = el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        el(means, "ram:TypeCode", "58")  # SEPA credit transfer
        el(el(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", company.iban)
    tax = el(settlement, "ram:ApplicableTradeTax")
    el(tax, "ram:CalculatedAmount", "0.00")
    el(tax, "ram:TypeCode", "VAT")
    el(
        tax,
        "ram:ExemptionReason",
        "Late-payment penalties and indemnities: outside the scope of VAT",
    )
    el(tax, "ram:BasisAmount", _amount(total))
    el(tax, "ram:CategoryCode", "O")
    el(tax, "ram:ExemptionReasonCode", "VATEX-EU-O")
    date(el(settlement, "ram:SpecifiedTradePaymentTerms"), "ram:DueDateDateTime", due_date)
    sums = el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    el(sums, "ram:LineTotalAmount", _amount(total))
    el(sums, "ram:TaxBasisTotalAmount", _amount(total))
    el(sums, "ram:TaxTotalAmount", "0.00", currencyID=CURRENCY)
    el(sums, "ram:GrandTotalAmount", _amount(total))
    el(sums, "ram:DuePayableAmount", _amount(total))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def charge_invoice(
    conn: Connection,
    customer_id: int,
    as_of: dt.date,
    *,
    actor: str = "cli",
    language: str = "fr",
    due_days: int = 30,
) -> ChargeInvoice:
    """Create the charge invoice of the penalties and indemnities still claimable as of
    `as_of` (see the module docstring) and return it with its Factur-X PDF."""
    import facturx

    language = check_language(language)
    customer = load_customer(conn, customer_id)
    lines = _claimable(conn, customer, as_of)
    if not lines:
        raise DocumentError(f"customer {customer.code}: no penalty nor indemnity to invoice")
    penalties = sum((line.penalties for line in lines), Decimal(0))
    indemnities = sum((line.indemnity for line in lines), Decimal(0))
    total = penalties + indemnities
    company = load_company()
    number = next_charge_number(conn, as_of.year)
    due_date = as_of + dt.timedelta(days=due_days)
    html = render_html(
        "charge_invoice.html", language, company=company, customer=customer, number=number,
        issue_date=as_of, due_date=due_date, lines=lines, penalties=penalties,
        indemnities=indemnities, total=total, currency=CURRENCY,
    )  # fmt: skip
    note = f"Late-payment penalties and fixed indemnities as of {as_of.isoformat()}"
    xml = facturx_xml(number, as_of, due_date, company, customer, total, note)
    pdf = facturx.generate_from_binary(
        html_to_pdf(html, pdf_a=True), xml, flavor="factur-x", level=FACTURX_LEVEL,
        check_xsd=True, lang=language,
        pdf_metadata={"author": company.name, "title": f"{company.name}: {number}",
                      "subject": note, "keywords": "Factur-X"},
    )  # fmt: skip
    document_id = conn.execute(
        insert(DOCUMENTS)
        .values(
            number=number,
            kind="invoice",
            customer_id=customer.id,
            issue_date=as_of,
            due_date=due_date,
            amount_minor=to_minor(total, CURRENCY),
            currency=CURRENCY,
            reference="late-payment penalties",
            channel="electronic",
        )  # fmt: skip
        .returning(DOCUMENTS.c.id)
    ).scalar_one()
    record = {
        "invoice": number,
        "as_of": as_of.isoformat(),
        "penalties": to_minor(penalties, CURRENCY),
        "indemnities": to_minor(indemnities, CURRENCY),
        "lines": _lines_record(lines),
    }
    conn.execute(
        insert(AUDIT).values(
            actor=actor,
            action="penalties.invoiced",
            entity="customer",
            entity_key=customer.code,
            before=None,
            after=record,
        )  # fmt: skip
    )
    conn.execute(
        insert(TIMELINE).values(
            customer_id=customer.id,
            day=as_of,
            kind="penalties",
            actor=actor,
            summary=f"charge invoice {number}: {total} {CURRENCY} (penalties and indemnities)",
            ref_table="documents",
            ref_id=document_id,
            data=record,
        )  # fmt: skip
    )
    return ChargeInvoice(
        number=number, document_id=document_id, customer=customer, issue_date=as_of,
        due_date=due_date, lines=lines, penalties=penalties, indemnities=indemnities, pdf=pdf,
    )  # fmt: skip


def waive_penalties(
    conn: Connection,
    customer_id: int,
    reason: str,
    actor: str,
    as_of: dt.date | None = None,
) -> dict:
    """Give up the penalties and indemnities claimable as of `as_of` (default today), with
    a reason: recorded in the audit log (`penalties.waived`) and the customer's timeline."""
    reason = (reason or "").strip()
    if not reason:
        raise DocumentError("a reason is required to waive penalties")
    day = as_of or dt.date.today()
    customer = load_customer(conn, customer_id)
    lines = _claimable(conn, customer, day)
    record = {
        "as_of": day.isoformat(),
        "reason": reason,
        "penalties": sum(to_minor(line.penalties, CURRENCY) for line in lines),
        "indemnities": sum(to_minor(line.indemnity, CURRENCY) for line in lines),
        "lines": _lines_record(lines),
    }
    conn.execute(
        insert(AUDIT).values(
            actor=actor,
            action="penalties.waived",
            entity="customer",
            entity_key=customer.code,
            before=None,
            after=record,
        )  # fmt: skip
    )
    conn.execute(
        insert(TIMELINE).values(
            customer_id=customer.id,
            day=day,
            kind="penalties",
            actor=actor,
            summary=f"penalties waived: {reason}",
            data=record,
        )  # fmt: skip
    )
    return record


__all__ = [
    "ChargeInvoice",
    "charge_invoice",
    "facturx_xml",
    "next_charge_number",
    "waive_penalties",
]
