"""Postal addresses of the synthetic customers (encours.generate)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from encours.generate import generate_portfolio

END = dt.date(2025, 6, 30)


def _customers(out: Path, seed: int) -> pl.DataFrame:
    generate_portfolio(out, customers=600, invoices=300, seed=seed, end=END, months=3)
    return pl.read_csv(out / "customers.csv", infer_schema=False)


def test_every_customer_has_a_realistic_address(tmp_path: Path) -> None:
    frame = _customers(tmp_path / "a", 7)
    assert frame.select("address_line1", "postal_code", "city").null_count().sum_horizontal()[
        0] == 0  # fmt: skip
    french = frame.filter(pl.col("country") == "FR")
    # "12 rue de la Gare", "7 bis avenue Victor Hugo": a number, then a street
    assert french["address_line1"].str.contains(r"^\d+( bis)? \w+ \S").all()
    assert french["postal_code"].str.contains(r"^\d{5}$").all()
    assert french["postal_code"].str.starts_with("0").any()  # leading zeros kept as text
    assert french["city"].n_unique() > 20 and french["address_line1"].n_unique() > 400
    share = frame["address_line2"].is_not_null().mean()
    assert share is not None and 0.05 < share < 0.3  # some complements (ZI, BP, building)
    assert not frame.select(pl.all().cast(pl.String).str.contains("None").any()).row(0)[0]


def test_addresses_are_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = _customers(tmp_path / "a", 7)
    b = _customers(tmp_path / "b", 7)
    c = _customers(tmp_path / "c", 8)
    assert a.equals(b)
    assert not a["address_line1"].equals(c["address_line1"])
