"""The canonical record shapes every source is turned into before it reaches the ledger.

Each importer (mapped CSV/XLSX, FEC, later Factur-X and bank files) produces a
`CanonicalBatch`: polars DataFrames with the columns below, already typed, plus a list of
`RowError`. The loader (`encours.imports.load`) writes a batch in one transaction.

Every frame carries `_line` (Int64): the 1-based line of the source file the row came from
(the header is line 1 in a CSV), so that the loader's own errors still name the line.
Amounts are Decimal strings converted to integer minor units (`amount_minor`, Int64).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

CUSTOMER_SCHEMA: dict[str, pl.DataType] = {
    "_line": pl.Int64(),
    "customer_id": pl.String(),  # the source's code, unique
    "name": pl.String(),
    "siren": pl.String(),
    "siret": pl.String(),
    "vat_number": pl.String(),
    "address_line1": pl.String(),  # postal address (optional)
    "address_line2": pl.String(),
    "postal_code": pl.String(),  # kept as text (leading zeros)
    "city": pl.String(),
    "country": pl.String(),
    "currency": pl.String(),
    "payment_terms": pl.String(),
    "penalty_rate": pl.String(),  # decimal string, percent per year
    "deposit_required": pl.Boolean(),
    "retention_of_title": pl.Boolean(),
    "credit_limit_minor": pl.Int64(),
    "segment": pl.String(),
    "account_owner": pl.String(),
    "collector": pl.String(),
    "is_consumer": pl.Boolean(),
    "paperless_date": pl.Date(),
    "in_insolvency": pl.Boolean(),  # collective insolvency proceedings (optional)
    "insolvency_date": pl.Date(),  # day of the judgment
    "insolvency_kind": pl.String(),  # sauvegarde | redressement | liquidation
    "contact_name": pl.String(),
    "contact_role": pl.String(),
    "contact_email": pl.String(),
    "contact_phone": pl.String(),
    "contact_language": pl.String(),
}

DOCUMENT_SCHEMA: dict[str, pl.DataType] = {
    "_line": pl.Int64(),
    "invoice_number": pl.String(),
    "document_type": pl.String(),  # invoice | credit_note
    "customer_id": pl.String(),
    "customer_name": pl.String(),
    "issue_date": pl.Date(),
    "due_date": pl.Date(),  # null: computed from the customer's payment terms
    "amount_minor": pl.Int64(),  # positive, incl. VAT
    "currency": pl.String(),
    "paid_date": pl.Date(),  # settlement date recorded with the invoice (null: open)
    "disputed": pl.Boolean(),
    "applies_to": pl.String(),  # for a credit note: the invoice number it settles
    "reference": pl.String(),
    "channel": pl.String(),  # paper | electronic
    "paperless_date": pl.Date(),  # customer attribute carried by some exports (IBM)
    "country": pl.String(),  # customer attribute carried by some exports
}

PAYMENT_SCHEMA: dict[str, pl.DataType] = {
    "_line": pl.Int64(),
    "payment_id": pl.String(),
    "customer_id": pl.String(),
    "date": pl.Date(),
    "amount_minor": pl.Int64(),  # positive
    "currency": pl.String(),
    "invoice_number": pl.String(),  # null: allocated oldest-first or left unapplied
    "method": pl.String(),
}

# Explicit allocations (lettrage) carried by the source, e.g. the FEC's EcritureLet:
# exactly one of payment_id / credit_note_number is set.
ALLOCATION_SCHEMA: dict[str, pl.DataType] = {
    "_line": pl.Int64(),
    "invoice_number": pl.String(),
    "payment_id": pl.String(),
    "credit_note_number": pl.String(),
    "amount_minor": pl.Int64(),
}


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad value: where it is and what was expected."""

    file: str
    line: int
    column: str
    value: str
    expected: str

    def __str__(self) -> str:
        value = self.value if len(self.value) <= 60 else self.value[:57] + "..."
        return (
            f"{self.file}:{self.line}: column {self.column!r}: got {value!r}, "
            f"expected {self.expected}"
        )


@dataclass
class CanonicalBatch:
    source: str
    customers: pl.DataFrame | None = None
    documents: pl.DataFrame | None = None
    payments: pl.DataFrame | None = None
    allocations: pl.DataFrame | None = None
    errors: list[RowError] = field(default_factory=list)
    # The customer columns the source gives (None: all of them). An existing customer's
    # other columns are left as they are: a file without addresses does not erase them.
    customer_fields: frozenset[str] | None = None


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Add the missing optional columns as nulls and order the columns as in `schema`."""
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in schema.items()
        if name not in frame.columns
    ]
    if missing:
        frame = frame.with_columns(missing)
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
