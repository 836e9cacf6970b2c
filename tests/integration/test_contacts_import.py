"""Several contacts per customer: one row per contact in the customers file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from encours.imports.load import ImportRejected
from encours.services.imports import import_file
from encours.store.db import unit_of_work
from encours.store.schema import Contact, Customer

HEADER = "customer_id,name,siren,contact_name,contact_role,contact_email\n"


def _contacts(db_url: str, code: str) -> list[tuple[str, str | None, str | None]]:
    with unit_of_work(db_url) as conn:
        rows = conn.execute(
            select(Contact.name, Contact.role, Contact.email)
            .join(Customer, Customer.id == Contact.customer_id)
            .where(Customer.code == code)
            .order_by(Contact.name)
        ).all()
    return [tuple(r) for r in rows]


def test_rows_of_one_customer_add_each_contact(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        HEADER + "C1,Alpha SAS,732829320,Anne Martin,comptable,anne@alpha.fr\n"
        "C1,Alpha SAS,732829320,Paul Durand,DAF,paul@alpha.fr\n"
        "C2,Beta SARL,,Zoé Petit,,zoe@beta.fr\n",
        encoding="utf-8",
    )
    report = import_file(path, "customers", db_url=db_url)
    assert report.inserted == 2 and report.errors == []
    assert _contacts(db_url, "C1") == [
        ("Anne Martin", "comptable", "anne@alpha.fr"),
        ("Paul Durand", "DAF", "paul@alpha.fr"),
    ]
    again = import_file(path, "customers", db_url=db_url)
    assert (again.inserted, again.updated) == (0, 0)
    assert len(_contacts(db_url, "C1")) == 2


def test_rows_of_one_customer_with_different_master_data_are_rejected(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        HEADER + "C1,Alpha SAS,732829320,Anne Martin,comptable,anne@alpha.fr\n"
        "C1,Alpha Industries,732829320,Paul Durand,DAF,paul@alpha.fr\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as exc:
        import_file(path, "customers", db_url=db_url)
    [error] = exc.value.errors
    assert (error.line, error.column) == (3, "name")
