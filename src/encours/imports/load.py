"""Write a CanonicalBatch to the ledger in one transaction: idempotent, audited, set-based.

- Nothing is half-written: the caller runs `load_batch` inside one unit of work; any error
  raises and the transaction rolls back.
- Idempotent: a record identical to the stored one is left alone; a changed one is updated
  and its before/after go to the audit log; re-importing a file changes nothing.
- A file with bad rows is rejected whole with every error (`ImportRejected`); with
  `skip_invalid` the good rows are written and the bad ones are returned as rejects.
- Payments naming an invoice pay it (the rest stays unapplied cash); payments naming none
  are allocated oldest-first (by due date) to the customer's undisputed open invoices, or
  left unapplied (`unapplied="keep"`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, overload

import numpy as np
import polars as pl
from sqlalchemy import Connection, insert, update

from encours.domain.allocation import allocate_fifo
from encours.domain.identifiers import invalid_mask
from encours.domain.terms import TermsError, due_dates
from encours.i18n import _
from encours.imports.canonical import (
    CUSTOMER_SCHEMA,
    DOCUMENT_SCHEMA,
    PAYMENT_SCHEMA,
    CanonicalBatch,
    RowError,
    conform,
)
from encours.money import from_minor
from encours.store.bulk import check_references, delete_ids, insert_frame, reserve_ids
from encours.store.frames import query_frame
from encours.store.schema import (
    Allocation,
    AuditEntry,
    Contact,
    Customer,
    Document,
    ImportBatch,
    Payment,
)

UnappliedPolicy = Literal["oldest_first", "keep"]
# progress(stage, done, total): stage "validating" or "writing", rows done of the batch's total
Progress = Callable[[str, int, int], None]
SETTLEMENT_PREFIX = "SETTLE-"

CUSTOMER_FIELDS = [
    "name", "siren", "siret", "vat_number", "address_line1", "address_line2", "postal_code",
    "city", "country", "currency", "payment_terms",
    "penalty_rate", "deposit_required", "retention_of_title", "credit_limit_minor",
    "segment", "account_owner", "collector", "is_consumer", "paperless_date",
    "in_insolvency", "insolvency_date", "insolvency_kind",
]  # fmt: skip
DOCUMENT_FIELDS = [
    "customer_id", "kind", "issue_date", "due_date", "amount_minor", "currency",
    "disputed", "reference", "channel",
]  # fmt: skip
PAYMENT_FIELDS = ["customer_id", "date", "amount_minor", "currency", "method"]
DOCUMENT_ID_SCHEMA = pl.Schema({
    "id": pl.Int64(), "number": pl.String(), "kind": pl.String(), "customer_id": pl.Int64(),
    "currency": pl.String(), "issue_date": pl.Date(), "due_date": pl.Date(),
    "disputed": pl.Boolean(), "amount_minor": pl.Int64(),
})  # fmt: skip


class ImportRejected(Exception):
    """The file was rejected whole; `errors` lists every bad row."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} invalid row(s)")
        self.errors = errors


@dataclass
class ImportReport:
    kind: str
    source: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    details: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, entity: str, inserted: int = 0, updated: int = 0, unchanged: int = 0) -> None:
        self.details[entity] = {"inserted": inserted, "updated": updated, "unchanged": unchanged}

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind, "source": self.source, "rows": self.rows,
            "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
            "rejected": self.rejected, "details": self.details,
            "errors": [str(e) for e in self.errors],
        }  # fmt: skip


def _jsonable(row: dict[str, object]) -> dict[str, object]:
    return json.loads(json.dumps(row, default=str))


def batch_rows(batch: CanonicalBatch) -> int:
    """The data rows of a parsed file: its good rows (customers, documents, payments) and
    the lines with an error (the header and whole-file errors excepted)."""
    frames = (batch.customers, batch.documents, batch.payments)
    good = sum(frame.height for frame in frames if frame is not None)
    return good + len({e.line for e in batch.errors if e.line > 1 and e.column != "(file)"})


def _no_progress(stage: str, done: int, total: int) -> None:
    """The default progress callback: nothing to show."""


class _Loader:
    def __init__(
        self,
        conn: Connection,
        batch: CanonicalBatch,
        kind: str,
        actor: str,
        skip_invalid: bool,
        unapplied: UnappliedPolicy,
        progress: Progress = _no_progress,
    ) -> None:
        self.conn = conn
        self.batch = batch
        self.kind = kind
        self.actor = actor
        self.skip_invalid = skip_invalid
        self.unapplied = unapplied
        self.errors: list[RowError] = list(batch.errors)
        self.audit_rows: list[dict[str, object]] = []
        self.now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        # What this batch reads of the ledger more than once, kept up to date by its own
        # writes (the batch runs in one transaction): the documents (document_ids) and the
        # amounts allocated per invoice / payment / credit note (allocated).
        self._documents: pl.DataFrame | None = None
        self._existing: pl.DataFrame | None = None  # read by check_amounts_covered
        self._allocated: dict[str, pl.DataFrame] = {}
        self.progress = progress
        self.total = batch_rows(batch)
        self.done = {"validating": 0, "writing": 0}

    def advance(self, stage: str, rows: int) -> None:
        """Report `rows` more rows through `stage` (never beyond the batch's total)."""
        self.done[stage] = min(self.total, self.done[stage] + rows)
        self.progress(stage, self.done[stage], self.total)

    # -- errors ---------------------------------------------------------------------------
    def _error_frame(self, frame: pl.DataFrame, mask: pl.Series, column: str, expected: str,
                     value_col: str | None = None) -> pl.DataFrame:  # fmt: skip
        """Record an error for every row where `mask` is true and return the other rows."""
        bad = frame.filter(mask)
        if bad.height:
            values = bad[value_col or column].cast(pl.String).fill_null("")
            for line, value in zip(bad["_line"].to_list(), values.to_list(), strict=True):
                self.errors.append(RowError(self.batch.source, line, column, value, expected))
        return frame.filter(~mask)

    def _check(self) -> None:
        """Reject the whole file unless bad rows may be skipped (structural errors never)."""
        if not self.errors:
            return
        structural = [e for e in self.errors if e.line <= 1 or e.column == "(file)"]
        if not self.skip_invalid or structural:
            raise ImportRejected(sorted(self.errors, key=lambda e: (e.line, e.column)))

    @overload
    def _drop_bad_lines(self, frame: pl.DataFrame) -> pl.DataFrame: ...
    @overload
    def _drop_bad_lines(self, frame: None) -> None: ...
    def _drop_bad_lines(self, frame: pl.DataFrame | None) -> pl.DataFrame | None:
        if frame is None or not self.errors:
            return frame
        bad = pl.Series("_line", sorted({e.line for e in self.errors}), dtype=pl.Int64)
        return frame.filter(~pl.col("_line").is_in(bad.implode()))

    def audit(self, action: str, entity: str, key: str, before: dict | None, after: dict | None):  # noqa: ANN201
        self.audit_rows.append({
            "at": self.now, "actor": self.actor, "action": action, "entity": entity,
            "entity_key": key, "before": _jsonable(before) if before else None,
            "after": _jsonable(after) if after else None,
        })  # fmt: skip

    # -- reference data -------------------------------------------------------------------
    def customers(self) -> pl.DataFrame:
        return query_frame(
            self.conn,
            "SELECT id, code, name, currency, payment_terms, country, paperless_date "
            "FROM customers",
            {"id": pl.Int64(), "code": pl.String(), "name": pl.String(),
             "currency": pl.String(), "payment_terms": pl.String(), "country": pl.String(),
             "paperless_date": pl.Date()},
        )  # fmt: skip

    def customer_ids(self) -> dict[str, pl.Series]:
        """The references a document, payment or contact may hold: every customer's id."""
        ids = query_frame(self.conn, "SELECT id FROM customers", {"id": pl.Int64()})
        return {"customer_id": ids.get_column("id")}

    # -- customers ------------------------------------------------------------------------
    def validate_customers(self, frame: pl.DataFrame) -> pl.DataFrame:
        messages = {
            "siren": _("a SIREN of 9 digits with a valid checksum"),
            "siret": _("a SIRET of 14 digits with a valid checksum"),
            "vat": _("an intra-EU VAT number with a valid checksum"),
        }
        for kind, column in (("siren", "siren"), ("siret", "siret"), ("vat", "vat_number")):
            expected = messages[kind]
            mask = invalid_mask(frame[column], kind)  # type: ignore[arg-type]
            frame = self._error_frame(frame, mask, column, expected)
        return frame

    def write_customers(self, frame: pl.DataFrame) -> tuple[int, int, int]:
        rows_with_contacts = frame  # several rows of a customer: one contact each
        frame = frame.with_columns(
            pl.col("currency").fill_null("EUR"),
            pl.col("payment_terms").fill_null("30 days net"),
            *[
                pl.col(c).fill_null(False)
                for c in ("deposit_required", "retention_of_title", "is_consumer", "in_insolvency")
            ],
        ).unique(subset="customer_id", keep="last", maintain_order=True)
        existing = query_frame(
            self.conn,
            f"SELECT id, code, {', '.join(CUSTOMER_FIELDS)} FROM customers",
            {"id": pl.Int64(), "code": pl.String(),
             **{f: CUSTOMER_SCHEMA[f] for f in CUSTOMER_FIELDS}},
        )  # fmt: skip
        given = self.batch.customer_fields
        fields = [f for f in CUSTOMER_FIELDS if given is None or f in given]
        incoming = frame.rename({"customer_id": "code"}).select(["code", *CUSTOMER_FIELDS])
        joined = incoming.join(existing, on="code", how="left", suffix="_db")
        new = joined.filter(pl.col("id").is_null())
        old = joined.filter(pl.col("id").is_not_null())
        changed_mask = pl.any_horizontal(
            [pl.lit(False), *[pl.col(f).ne_missing(pl.col(f"{f}_db")) for f in fields]]
        )
        changed = old.filter(changed_mask)
        if new.height:
            first = reserve_ids(self.conn, Customer.__table__, new.height)
            rows = new.select(["code", *CUSTOMER_FIELDS]).with_columns(
                id=pl.int_range(first, first + new.height, dtype=pl.Int64),
                created_at=pl.lit(self.now), updated_at=pl.lit(self.now),
            )  # fmt: skip
            insert_frame(self.conn, Customer.__table__, rows)
        table = Customer.__table__
        for row in changed.iter_rows(named=True):
            before = {f: row[f"{f}_db"] for f in fields if row[f] != row[f"{f}_db"]}
            after = {f: row[f] for f in before}
            self.conn.execute(
                update(table).where(table.c.id == row["id"]).values(**after, updated_at=self.now)
            )
            self.audit("update", "customer", row["code"], before, after)
        self.write_contacts(rows_with_contacts)
        return new.height, changed.height, old.height - changed.height

    def write_contacts(self, frame: pl.DataFrame) -> None:
        contacts = frame.filter(pl.col("contact_name").is_not_null())
        if contacts.height == 0:
            return
        ids = self.customers().select(pl.col("id").alias("customer_id"), pl.col("code"))
        fields = ["role", "email", "phone", "language"]
        incoming = (
            contacts.select(
                pl.col("customer_id").alias("code"), pl.col("contact_name").alias("name"),
                pl.col("contact_role").alias("role"), pl.col("contact_email").alias("email"),
                pl.col("contact_phone").alias("phone"),
                pl.col("contact_language").fill_null("fr").alias("language"),
            )
            .join(ids, on="code")
            .drop("code")
            .unique(subset=["customer_id", "name"], keep="last", maintain_order=True)
        )  # fmt: skip
        existing = query_frame(
            self.conn,
            "SELECT id, customer_id, name, role, email, phone, language FROM contacts",
            {"id": pl.Int64(), "customer_id": pl.Int64(), "name": pl.String(),
             "role": pl.String(), "email": pl.String(), "phone": pl.String(),
             "language": pl.String()},
        )  # fmt: skip
        joined = incoming.join(existing, on=["customer_id", "name"], how="left", suffix="_db")
        new = joined.filter(pl.col("id").is_null()).select(["customer_id", "name", *fields])
        if new.height:
            first = reserve_ids(self.conn, Contact.__table__, new.height)
            insert_frame(
                self.conn,
                Contact.__table__,
                new.with_columns(id=pl.int_range(first, first + new.height, dtype=pl.Int64)),
                {"customer_id": ids.get_column("customer_id")},
            )
        changed = joined.filter(
            pl.col("id").is_not_null()
            & pl.any_horizontal([pl.col(f).ne_missing(pl.col(f"{f}_db")) for f in fields])
        )
        table = Contact.__table__
        for row in changed.iter_rows(named=True):
            before = {f: row[f"{f}_db"] for f in fields}
            after = {f: row[f] for f in fields}
            self.conn.execute(update(table).where(table.c.id == row["id"]).values(**after))
            self.audit("update", "contact", f"{row['customer_id']}:{row['name']}", before, after)

    def ensure_customers(self, frame: pl.DataFrame) -> int:
        """Create the customers that documents name and the ledger does not know yet."""
        implied = (
            frame.sort("_line")
            .group_by("customer_id", maintain_order=True)
            .agg(
                pl.col("customer_name").drop_nulls().last().alias("name"),
                pl.col("currency").drop_nulls().last(),
                pl.col("country").drop_nulls().last(),
                pl.col("paperless_date").drop_nulls().last(),
            )
        )
        known = self.customers()
        new = implied.join(known.select("code"), left_on="customer_id", right_on="code",
                           how="anti")  # fmt: skip
        if new.height:
            first = reserve_ids(self.conn, Customer.__table__, new.height)
            rows = new.select(
                pl.int_range(first, first + new.height, dtype=pl.Int64).alias("id"),
                pl.col("customer_id").alias("code"),
                pl.col("name").fill_null(pl.col("customer_id")),
                pl.col("currency").fill_null("EUR"),
                pl.col("country"), pl.col("paperless_date"),
                pl.lit("30 days net").alias("payment_terms"),
                pl.lit(False).alias("deposit_required"),
                pl.lit(False).alias("retention_of_title"),
                pl.lit(False).alias("is_consumer"),
                pl.lit(False).alias("in_insolvency"),
                pl.lit(self.now).alias("created_at"), pl.lit(self.now).alias("updated_at"),
            )  # fmt: skip
            insert_frame(self.conn, Customer.__table__, rows)
        # Customer attributes carried by documents fill what the customer record lacks.
        fill = implied.join(known, left_on="customer_id", right_on="code", how="inner").filter(
            (pl.col("country").is_not_null() & pl.col("country_right").is_null())
            | (pl.col("paperless_date").is_not_null() & pl.col("paperless_date_right").is_null())
        )
        table = Customer.__table__
        for row in fill.iter_rows(named=True):
            values = {}
            if row["country"] is not None and row["country_right"] is None:
                values["country"] = row["country"]
            if row["paperless_date"] is not None and row["paperless_date_right"] is None:
                values["paperless_date"] = row["paperless_date"]
            self.conn.execute(update(table).where(table.c.id == row["id"]).values(**values))
            self.audit("update", "customer", row["customer_id"], None, values)
        return new.height

    # -- documents ------------------------------------------------------------------------
    def prepare_documents(self, frame: pl.DataFrame) -> pl.DataFrame:
        frame = frame.with_columns(
            kind=pl.col("document_type").fill_null("invoice"),
            disputed=pl.col("disputed").fill_null(False),
        )
        customers = self.customers().select(
            pl.col("code").alias("customer_id"), pl.col("id").alias("customer_pk"),
            pl.col("payment_terms"),
        )  # fmt: skip
        frame = frame.join(customers, on="customer_id", how="left")
        missing_due = frame.filter(pl.col("due_date").is_null())
        if missing_due.height:
            try:
                computed = due_dates(missing_due["issue_date"], missing_due["payment_terms"])
            except TermsError as exc:
                bad = frame.filter(pl.col("due_date").is_null())
                for line in bad["_line"].to_list():
                    self.errors.append(
                        RowError(
                            self.batch.source,
                            line,
                            "due_date",
                            "",
                            _("a due date (terms not understood: {error})").format(error=exc),
                        )
                    )
                return frame.filter(pl.col("due_date").is_not_null())
            fill = missing_due.select("_line").with_columns(computed.alias("_due"))
            frame = (
                frame.join(fill, on="_line", how="left")
                .with_columns(due_date=pl.coalesce("due_date", "_due"))
                .drop("_due")
            )
        return frame

    def check_amounts_covered(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Re-imported documents may not fall below what is already applied to them: an
        invoice below what payments and credit notes cover (its own settlement excepted, it
        follows the new amount), a credit note below what it already settles. Set-based:
        only the stored documents whose amount goes down are looked at (usually none), their
        allocation sums read for them alone. The stored documents read here are those
        `write_documents` compares with (read once)."""
        self._existing = existing = self.existing_documents()
        lowered = (
            frame.select("invoice_number", "amount_minor")
            .join(existing.select("number", "id", "amount_minor"), left_on="invoice_number",
                  right_on="number", suffix="_db")
            .filter(pl.col("amount_minor") < pl.col("amount_minor_db"))
        )  # fmt: skip
        if lowered.height == 0:
            return frame
        parts = []
        ids = lowered["id"].to_list()
        for start in range(0, len(ids), 5000):
            chunk = ", ".join(str(int(i)) for i in ids[start : start + 5000])
            parts.append(query_frame(
                self.conn,
                "SELECT d.number AS number, SUM(a.amount_minor) AS covered FROM documents d "
                "JOIN allocations a ON a.invoice_id = d.id LEFT JOIN payments p "
                f"ON p.id = a.payment_id WHERE d.kind = 'invoice' AND d.id IN ({chunk}) "
                f"AND (p.reference IS NULL OR p.reference NOT LIKE '{SETTLEMENT_PREFIX}%') "
                "GROUP BY d.number "
                "UNION ALL "
                "SELECT d.number AS number, SUM(a.amount_minor) AS covered FROM documents d "
                "JOIN allocations a ON a.credit_note_id = d.id "
                f"WHERE d.kind = 'credit_note' AND d.id IN ({chunk}) GROUP BY d.number",
                {"number": pl.String(), "covered": pl.Int64()},
            ))  # fmt: skip
        covered = pl.concat(parts)
        rows = frame.join(
            covered.rename({"number": "invoice_number"}), on="invoice_number", how="inner"
        )
        bad = rows.filter(pl.col("amount_minor") < pl.col("covered"))
        for row in bad.iter_rows(named=True):
            currency = row["currency"] or "EUR"
            self.errors.append(RowError(
                self.batch.source, row["_line"], "amount",
                str(from_minor(row["amount_minor"], currency)),
                _("at least the {amount} already paid or allocated").format(
                    amount=f"{from_minor(row['covered'], currency)} {currency}"),
            ))  # fmt: skip
        return frame

    def existing_documents(self) -> pl.DataFrame:
        return query_frame(
            self.conn,
            f"SELECT id, number, {', '.join(DOCUMENT_FIELDS)} FROM documents",
            {"id": pl.Int64(), "number": pl.String(), "customer_id": pl.Int64(),
             "kind": pl.String(), "issue_date": pl.Date(), "due_date": pl.Date(),
             "amount_minor": pl.Int64(), "currency": pl.String(), "disputed": pl.Boolean(),
             "reference": pl.String(), "channel": pl.String()},
        )  # fmt: skip

    def write_documents(self, frame: pl.DataFrame) -> tuple[int, int, int]:
        incoming = frame.select(
            pl.col("invoice_number").alias("number"), pl.col("customer_pk").alias("customer_id"),
            "kind", "issue_date", "due_date", "amount_minor", "currency", "disputed",
            "reference", "channel",
        )  # fmt: skip
        existing = self._existing if self._existing is not None else self.existing_documents()
        self._existing = None
        joined = incoming.join(existing, on="number", how="left", suffix="_db")
        new = joined.filter(pl.col("id").is_null())
        old = joined.filter(pl.col("id").is_not_null())
        changed = old.filter(
            pl.any_horizontal([pl.col(f).ne_missing(pl.col(f"{f}_db")) for f in DOCUMENT_FIELDS])
        )
        customer_ids = self.customer_ids() if new.height or changed.height else None
        if new.height:
            first = reserve_ids(self.conn, Document.__table__, new.height)
            rows = new.select(["number", *DOCUMENT_FIELDS]).with_columns(
                id=pl.int_range(first, first + new.height, dtype=pl.Int64),
                status=pl.lit("issued"), created_at=pl.lit(self.now),
                updated_at=pl.lit(self.now),
            )  # fmt: skip
            insert_frame(self.conn, Document.__table__, rows, customer_ids)
        table = Document.__table__
        if changed.height:
            check_references(self.conn, table, changed.select("customer_id"), customer_ids)
        for row in changed.iter_rows(named=True):
            before = {f: row[f"{f}_db"] for f in DOCUMENT_FIELDS if row[f] != row[f"{f}_db"]}
            after = {f: row[f] for f in before}
            self.conn.execute(
                update(table).where(table.c.id == row["id"]).values(**after, updated_at=self.now)
            )
            self.audit("update", row["kind"], row["number"], before, after)
        # The documents as they now are in the ledger: the existing ones (with the changed
        # ones' new values) and the new ones, in id order as the table would list them.
        columns = list(DOCUMENT_ID_SCHEMA)
        parts = [existing.join(changed.select("id"), on="id", how="anti").select(columns)]
        if changed.height:
            parts.append(changed.select(columns))
        if new.height:
            parts.append(rows.select(columns))
        self._documents = pl.concat(
            [part.cast(DOCUMENT_ID_SCHEMA) for part in parts], how="vertical"
        ).sort("id")
        return new.height, changed.height, old.height - changed.height

    def document_ids(self) -> pl.DataFrame:
        """Every document of the ledger (read once per batch, see write_documents)."""
        if self._documents is None:
            self._documents = query_frame(
                self.conn,
                f"SELECT {', '.join(DOCUMENT_ID_SCHEMA)} FROM documents",
                DOCUMENT_ID_SCHEMA,
            )
        return self._documents

    def allocated(self, column: str) -> pl.DataFrame:
        """Amount already allocated per invoice / payment / credit note (all dates).

        Read once per batch; `insert_allocations` adds what it writes, deletions of
        allocations drop the cache."""
        cached = self._allocated.get(column)
        if cached is None:
            cached = query_frame(
                self.conn,
                f"SELECT {column} AS id, SUM(amount_minor) AS allocated FROM allocations "
                f"WHERE {column} IS NOT NULL GROUP BY {column}",
                {"id": pl.Int64(), "allocated": pl.Int64()},
            )
            self._allocated[column] = cached
        return cached

    def _allocations_added(self, frame: pl.DataFrame) -> None:
        for column, cached in self._allocated.items():
            added = (
                frame.filter(pl.col(column).is_not_null())
                .group_by(column)
                .agg(pl.col("amount_minor").sum().alias("allocated"))
                .rename({column: "id"})
            )
            if added.height:
                self._allocated[column] = (
                    pl.concat([cached, added.cast(cached.schema)])
                    .group_by("id")
                    .agg(pl.col("allocated").sum())
                )

    def _allocations_deleted(self) -> None:
        self._allocated.clear()

    def open_amounts(self, docs: pl.DataFrame) -> pl.DataFrame:
        return docs.join(self.allocated("invoice_id"), on="id", how="left").with_columns(
            open_minor=pl.col("amount_minor") - pl.col("allocated").fill_null(0)
        )

    def insert_allocations(
        self, frame: pl.DataFrame, counted: int = 0, payment_ids: pl.Series | None = None
    ) -> int:
        """frame: invoice_id, payment_id | credit_note_id, amount_minor, date.

        The first `counted` rows (all > 0) are already in the `allocated` cache;
        `payment_ids`: the payments the frame may name (its references are checked)."""
        frame = frame.filter(pl.col("amount_minor") > 0)
        if frame.height == 0:
            return 0
        for col in ("payment_id", "credit_note_id"):
            if col not in frame.columns:
                frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias(col))
        first = reserve_ids(self.conn, Allocation.__table__, frame.height)
        frame = frame.select("invoice_id", "payment_id", "credit_note_id", "amount_minor",
                             "date").with_columns(
            id=pl.int_range(first, first + frame.height, dtype=pl.Int64))  # fmt: skip
        documents = self.document_ids().get_column("id")
        references = {"invoice_id": documents, "credit_note_id": documents}
        if payment_ids is not None:
            references["payment_id"] = payment_ids
        inserted = insert_frame(self.conn, Allocation.__table__, frame, references)
        self._allocations_added(frame.slice(counted))
        return inserted

    def apply_credit_notes(self, frame: pl.DataFrame) -> None:
        """Credit notes naming the invoice they settle are allocated to it."""
        notes = frame.filter((pl.col("kind") == "credit_note") & pl.col("applies_to").is_not_null())
        if notes.height == 0:
            return
        docs = self.document_ids()
        invoices = self.open_amounts(docs.filter(pl.col("kind") == "invoice"))
        cn = notes.select(pl.col("invoice_number").alias("cn_number"), "applies_to").join(
            docs.select(pl.col("number").alias("cn_number"), pl.col("id").alias("credit_note_id"),
                        pl.col("amount_minor").alias("cn_amount"),
                        pl.col("issue_date").alias("cn_date")),
            on="cn_number",
        )  # fmt: skip
        already = self.allocated("credit_note_id").rename({"id": "credit_note_id"})
        cn = cn.join(already, on="credit_note_id", how="left").filter(pl.col("allocated").is_null())
        cn = cn.join(
            invoices.select(pl.col("number").alias("applies_to"), pl.col("id").alias("invoice_id"),
                            "open_minor", "issue_date"),
            on="applies_to",
        ).sort("cn_date", "cn_number")  # fmt: skip
        cn = cn.with_columns(
            prior=pl.col("cn_amount").cum_sum().over("invoice_id") - pl.col("cn_amount")
        ).with_columns(
            amount_minor=pl.min_horizontal(
                pl.col("cn_amount"), (pl.col("open_minor") - pl.col("prior")).clip(lower_bound=0)
            ),
            date=pl.max_horizontal("cn_date", "issue_date"),
        )
        self.insert_allocations(cn.select("invoice_id", "credit_note_id", "amount_minor", "date"))

    def apply_settlements(self, frame: pl.DataFrame) -> None:
        """An invoice row with a paid date records its settlement (a payment of what is open).

        The settlement payment is named SETTLE-<invoice number>; a changed paid date replaces
        it, an emptied paid date removes it (the invoice is open again).
        """
        rows = frame.filter(pl.col("kind") == "invoice").select(
            pl.col("invoice_number").alias("number"), "paid_date"
        )
        existing = query_frame(
            self.conn,
            "SELECT p.id AS payment_id, p.reference, p.date, p.amount_minor FROM payments p "
            f"WHERE p.reference LIKE '{SETTLEMENT_PREFIX}%'",
            {"payment_id": pl.Int64(), "reference": pl.String(), "date": pl.Date(),
             "amount_minor": pl.Int64()},
        )  # fmt: skip
        if existing.height == 0 and rows["paid_date"].null_count() == rows.height:
            return  # no settlement to record and none to replace or remove
        rows = rows.with_columns(reference=pl.lit(SETTLEMENT_PREFIX) + pl.col("number"))
        docs = self.document_ids().filter(pl.col("kind") == "invoice")
        rows = rows.join(docs.select(pl.col("number"), pl.col("id").alias("invoice_id"),
                                     "customer_id", "currency", "issue_date", "amount_minor"),
                         on="number")  # fmt: skip
        # What other payments and credit notes already cover, settlement excluded.
        settle_alloc = query_frame(
            self.conn,
            "SELECT a.invoice_id AS invoice_id, SUM(a.amount_minor) AS covered FROM allocations a "
            "LEFT JOIN payments p ON p.id = a.payment_id "
            f"WHERE p.reference IS NULL OR p.reference NOT LIKE '{SETTLEMENT_PREFIX}%' "
            "GROUP BY a.invoice_id",
            {"invoice_id": pl.Int64(), "covered": pl.Int64()},
        )
        rows = rows.join(settle_alloc, on="invoice_id", how="left").with_columns(
            due=(pl.col("amount_minor") - pl.col("covered").fill_null(0)).clip(lower_bound=0)
        )
        rows = rows.join(existing.rename({"date": "old_date", "amount_minor": "old_amount"}),
                         on="reference", how="left")  # fmt: skip
        wanted = pl.col("paid_date").is_not_null() & (pl.col("due") > 0)
        keep = (
            wanted
            & (pl.col("old_date") == pl.col("paid_date"))
            & (pl.col("old_amount") == pl.col("due"))
        )
        stale = rows.filter(pl.col("payment_id").is_not_null() & ~keep.fill_null(False))
        if stale.height:
            ids = stale["payment_id"].to_list()
            delete_ids(self.conn, Allocation.__table__, ids, column="payment_id")
            self._allocations_deleted()
            delete_ids(self.conn, Payment.__table__, ids)
            for row in stale.iter_rows(named=True):
                self.audit(
                    "delete",
                    "settlement",
                    row["reference"],
                    {"date": row["old_date"], "amount_minor": row["old_amount"]},
                    None,
                )
        create = rows.filter(wanted & ~keep.fill_null(False))
        if create.height == 0:
            return
        first = reserve_ids(self.conn, Payment.__table__, create.height)
        create = create.with_columns(
            payment_id=pl.int_range(first, first + create.height, dtype=pl.Int64)
        )
        insert_frame(self.conn, Payment.__table__, create.select(
            pl.col("payment_id").alias("id"), "reference", "customer_id",
            pl.col("paid_date").alias("date"), pl.col("due").alias("amount_minor"), "currency",
            pl.lit("settlement").alias("method"), pl.lit(self.now).alias("created_at"),
        ), self.customer_ids())  # fmt: skip
        self.insert_allocations(create.select(
            "invoice_id", "payment_id", pl.col("due").alias("amount_minor"),
            pl.max_horizontal("paid_date", "issue_date").alias("date"),
        ), payment_ids=create.get_column("payment_id"))  # fmt: skip

    # -- payments -------------------------------------------------------------------------
    def validate_payments(self, frame: pl.DataFrame) -> pl.DataFrame:
        customers = self.customers().select(pl.col("code").alias("customer_id"),
                                            pl.col("id").alias("customer_pk"))  # fmt: skip
        frame = frame.join(customers, on="customer_id", how="left")
        frame = self._error_frame(
            frame,
            frame["customer_pk"].is_null(),
            "customer_id",
            _("a customer id known to the ledger (import customers first)"),
        )
        docs = self.document_ids().select(  # columns first: only those are copied
            pl.col("number").alias("invoice_number"), pl.col("id").alias("invoice_id"),
            pl.col("customer_id").alias("invoice_customer"),
            pl.col("currency").alias("invoice_currency"), pl.col("issue_date"), "kind",
        ).filter(pl.col("kind") == "invoice").drop("kind")  # fmt: skip
        frame = frame.join(docs, on="invoice_number", how="left")
        unknown = frame["invoice_number"].is_not_null() & frame["invoice_id"].is_null()
        frame = self._error_frame(frame, unknown, "invoice_number",
                                  _("an invoice number known to the ledger"))  # fmt: skip
        frame = self._error_frame(
            frame, (frame["invoice_id"].is_not_null()
                    & (frame["invoice_customer"] != frame["customer_pk"])).fill_null(False),
            "invoice_number", _("an invoice of the same customer"))  # fmt: skip
        frame = self._error_frame(
            frame, (frame["invoice_id"].is_not_null()
                    & (frame["invoice_currency"] != frame["currency"])).fill_null(False),
            "currency", _("the currency of the invoice paid"))  # fmt: skip
        return frame

    def write_payments(self, frame: pl.DataFrame) -> tuple[int, int, int]:
        incoming = frame.select(
            pl.col("payment_id").alias("reference"), pl.col("customer_pk").alias("customer_id"),
            "date", "amount_minor", "currency", "method", "invoice_id", "issue_date",
        )  # fmt: skip
        existing = query_frame(
            self.conn,
            f"SELECT id, reference, {', '.join(PAYMENT_FIELDS)} FROM payments",
            {"id": pl.Int64(), "reference": pl.String(), "customer_id": pl.Int64(),
             "date": pl.Date(), "amount_minor": pl.Int64(), "currency": pl.String(),
             "method": pl.String()},
        )  # fmt: skip
        joined = incoming.join(existing, on="reference", how="left", suffix="_db")
        new = joined.filter(pl.col("id").is_null())
        old = joined.filter(pl.col("id").is_not_null())
        changed = old.filter(
            pl.any_horizontal([pl.col(f).ne_missing(pl.col(f"{f}_db")) for f in PAYMENT_FIELDS])
        )
        customer_ids = self.customer_ids() if new.height or changed.height else None
        if new.height:
            first = reserve_ids(self.conn, Payment.__table__, new.height)
            new = new.with_columns(id=pl.int_range(first, first + new.height, dtype=pl.Int64))
            insert_frame(
                self.conn,
                Payment.__table__,
                new.select("id", "reference", *PAYMENT_FIELDS).with_columns(
                    created_at=pl.lit(self.now)
                ),
                customer_ids,
            )
        table = Payment.__table__
        if changed.height:
            check_references(self.conn, table, changed.select("customer_id"), customer_ids)
            delete_ids(self.conn, Allocation.__table__, changed["id"].to_list(), "payment_id")
            self._allocations_deleted()
        for row in changed.iter_rows(named=True):
            before = {f: row[f"{f}_db"] for f in PAYMENT_FIELDS if row[f] != row[f"{f}_db"]}
            after = {f: row[f] for f in before}
            self.conn.execute(update(table).where(table.c.id == row["id"]).values(**after))
            self.audit("update", "payment", row["reference"], before, after)
        to_allocate = pl.concat([new.select("id", "customer_id", "date", "amount_minor",
                                            "invoice_id", "issue_date"),
                                 changed.select("id", "customer_id", "date", "amount_minor",
                                                "invoice_id", "issue_date")])  # fmt: skip
        counts = new.height, changed.height, old.height - changed.height
        del incoming, existing, joined, new, old, changed  # memory: not needed any more
        self.allocate_payments(to_allocate)
        return counts

    def allocate_payments(self, pays: pl.DataFrame) -> None:
        if pays.height == 0:
            return
        pays = pays.rename({"id": "payment_id"})
        paid = pays.get_column("payment_id")  # the payments the allocations may name
        docs = (
            self.document_ids()
            .select(
                "id", "customer_id", "due_date", "issue_date", "disputed", "amount_minor", "kind"
            )  # fmt: skip
            .filter(pl.col("kind") == "invoice")
            .drop("kind")
        )
        # 1. Payments naming an invoice: pay it, the rest stays unapplied.
        named = pays.filter(pl.col("invoice_id").is_not_null())
        # Written once at the end, these first: the same rows and ids as two inserts.
        first = pl.DataFrame(
            schema={"invoice_id": pl.Int64, "payment_id": pl.Int64, "amount_minor": pl.Int64,
                    "date": pl.Date}
        )  # fmt: skip
        if named.height:
            open_ = self.open_amounts(docs.select("id", "amount_minor")).select(
                pl.col("id").alias("invoice_id"), "open_minor"
            )
            named = named.join(open_, on="invoice_id").sort("date", "payment_id")
            named = named.with_columns(
                prior=pl.col("amount_minor").cum_sum().over("invoice_id") - pl.col("amount_minor")
            ).with_columns(
                applied=pl.min_horizontal(
                    pl.col("amount_minor"),
                    (pl.col("open_minor") - pl.col("prior")).clip(lower_bound=0),
                ),
                eff=pl.max_horizontal("date", "issue_date"),
            )
            first = named.select(
                "invoice_id", "payment_id", pl.col("applied").alias("amount_minor"),
                pl.col("eff").alias("date"),
            ).filter(pl.col("amount_minor") > 0).cast(first.schema)  # fmt: skip
            del named, open_
            self._allocations_added(first)  # step 2 sees what step 1 applied
        # 2. Payments naming none: oldest due first over undisputed open invoices.
        loose = pays.filter(pl.col("invoice_id").is_null())
        if loose.height == 0 or self.unapplied == "keep":
            self.insert_allocations(first, counted=first.height, payment_ids=paid)
            return
        customers = loose["customer_id"].unique().implode()
        candidates = docs.filter(  # filtered before the join: the same rows, less copied
            ~pl.col("disputed") & pl.col("customer_id").is_in(customers)
        )
        open_ = (
            self.open_amounts(candidates)
            .filter(pl.col("open_minor") > 0)
            .sort("due_date", "issue_date", "id")
        )
        if open_.height == 0:
            self.insert_allocations(first, counted=first.height, payment_ids=paid)
            return
        loose = loose.sort("date", "payment_id")
        inv_id, pay_id, amount = allocate_fifo(
            open_["customer_id"].to_numpy(), open_["id"].to_numpy(),
            open_["open_minor"].to_numpy(), loose["customer_id"].to_numpy(),
            loose["payment_id"].to_numpy(), loose["amount_minor"].to_numpy(),
        )  # fmt: skip
        alloc = pl.DataFrame({
            "invoice_id": np.asarray(inv_id, dtype=np.int64),
            "payment_id": np.asarray(pay_id, dtype=np.int64),
            "amount_minor": np.asarray(amount, dtype=np.int64),
        })  # fmt: skip
        alloc = alloc.join(open_.select(pl.col("id").alias("invoice_id"), "issue_date"),
                           on="invoice_id").join(loose.select("payment_id", "date"),
                                                 on="payment_id")  # fmt: skip
        alloc = alloc.with_columns(date=pl.max_horizontal("date", "issue_date"))
        alloc = alloc.select("invoice_id", "payment_id", "amount_minor", "date")
        self.insert_allocations(pl.concat([first, alloc.cast(first.schema)]), counted=first.height,
                                payment_ids=paid)  # fmt: skip

    # -- explicit allocations (FEC lettrage) ----------------------------------------------
    def write_allocations(self, frame: pl.DataFrame) -> None:
        docs = self.document_ids()
        pays = query_frame(
            self.conn,
            "SELECT id, reference, date FROM payments",
            {"id": pl.Int64(), "reference": pl.String(), "date": pl.Date()},
        )
        frame = frame.join(
            docs.select(pl.col("number").alias("invoice_number"), pl.col("id").alias("invoice_id"),
                        pl.col("issue_date").alias("inv_date")), on="invoice_number", how="left"
        ).join(
            pays.select(pl.col("reference").alias("payment_id"), pl.col("id").alias("pay_pk"),
                        pl.col("date").alias("pay_date")), on="payment_id", how="left"
        ).join(
            docs.select(pl.col("number").alias("credit_note_number"),
                        pl.col("id").alias("cn_pk"), pl.col("issue_date").alias("cn_date")),
            on="credit_note_number", how="left",
        )  # fmt: skip
        frame = frame.filter(
            pl.col("invoice_id").is_not_null()
            & (pl.col("pay_pk").is_not_null() | pl.col("cn_pk").is_not_null())
        )
        existing = query_frame(
            self.conn,
            "SELECT invoice_id, payment_id AS pay_pk, credit_note_id AS cn_pk FROM allocations",
            {"invoice_id": pl.Int64(), "pay_pk": pl.Int64(), "cn_pk": pl.Int64()},
        )
        frame = frame.join(existing, on=["invoice_id", "pay_pk", "cn_pk"], how="anti",
                           nulls_equal=True)  # fmt: skip
        self.insert_allocations(payment_ids=pays.get_column("id"), frame=frame.select(
            "invoice_id", pl.col("pay_pk").alias("payment_id"),
            pl.col("cn_pk").alias("credit_note_id"), "amount_minor",
            pl.max_horizontal(pl.coalesce("pay_date", "cn_date"), "inv_date").alias("date"),
        ))  # fmt: skip

    # -- the whole batch ------------------------------------------------------------------
    def run(self, report: ImportReport) -> None:
        batch = self.batch
        customers = batch.customers
        documents = batch.documents
        payments = batch.payments
        self.advance("validating", len({e.line for e in self.errors if e.line > 1}))
        if customers is not None:
            customers = self.validate_customers(conform(customers, CUSTOMER_SCHEMA))
            self.advance("validating", customers.height)
        self._check()
        customers = self._drop_bad_lines(customers)
        documents = self._drop_bad_lines(documents)
        payments = self._drop_bad_lines(payments)

        if customers is not None and customers.height:
            ins, upd, same = self.write_customers(customers)
            report.count("customers", ins, upd, same)
            self.advance("writing", customers.height)
        if documents is not None and documents.height:
            documents = conform(documents, DOCUMENT_SCHEMA)
            created = self.ensure_customers(documents)
            documents = self.prepare_documents(documents)
            documents = self.check_amounts_covered(documents)
            self.advance("validating", documents.height)
            self._check()
            documents = self._drop_bad_lines(documents)
            ins, upd, same = self.write_documents(documents)
            report.count("documents", ins, upd, same)
            report.count("customers", created, 0, 0)
            self.advance("writing", documents.height // 2)  # then what the documents settle
            self.apply_credit_notes(documents)
            self.apply_settlements(documents)
            self.advance("writing", documents.height - documents.height // 2)
        if payments is not None and payments.height:
            payments = self.validate_payments(conform(payments, PAYMENT_SCHEMA))
            self.advance("validating", payments.height)
            self._check()
            payments = self._drop_bad_lines(payments)
            ins, upd, same = self.write_payments(payments)
            report.count("payments", ins, upd, same)
            self.advance("writing", payments.height)
        if batch.allocations is not None and batch.allocations.height:
            self.write_allocations(batch.allocations)
        if self.audit_rows:
            self.conn.execute(insert(AuditEntry.__table__), self.audit_rows)
        self.advance("validating", self.total)  # every row is through (bad rows included)
        self.advance("writing", self.total)


PRIMARY = {"customers": "customers", "invoices": "documents", "payments": "payments"}


def load_batch(
    conn: Connection,
    batch: CanonicalBatch,
    *,
    kind: str,
    sha256: str = "",
    actor: str = "cli",
    skip_invalid: bool = False,
    unapplied: UnappliedPolicy = "oldest_first",
    progress: Progress | None = None,
) -> ImportReport:
    """Write `batch` through `conn` (the caller's transaction). Raises ImportRejected.

    `progress(stage, done, total)` is called as the rows go through the stages "validating"
    then "writing" (`done` rows of `total`, the batch's rows: `batch_rows`), each ending at
    the total when the batch is loaded."""
    loader = _Loader(conn, batch, kind, actor, skip_invalid, unapplied, progress or _no_progress)
    report = ImportReport(kind=kind, source=batch.source)
    loader.run(report)
    report.errors = sorted(loader.errors, key=lambda e: (e.line, e.column))
    report.rejected = len({e.line for e in report.errors})
    primary = PRIMARY.get(kind)
    entities = [primary] if primary else list(report.details)
    for entity in entities:
        counts = report.details.get(entity, {})
        report.inserted += counts.get("inserted", 0)
        report.updated += counts.get("updated", 0)
        report.unchanged += counts.get("unchanged", 0)
    report.rows = report.inserted + report.updated + report.unchanged + report.rejected
    conn.execute(insert(ImportBatch.__table__).values(
        kind=kind, source=batch.source, sha256=sha256, rows=report.rows,
        inserted=report.inserted, updated=report.updated, unchanged=report.unchanged,
        rejected=report.rejected, actor=actor, at=loader.now,
    ))  # fmt: skip
    conn.execute(insert(AuditEntry.__table__).values(
        at=loader.now, actor=actor, action="import", entity=kind, entity_key=batch.source[-100:],
        before=None, after=_jsonable({k: v for k, v in report.as_dict().items() if k != "errors"}),
    ))  # fmt: skip
    return report
