import pickle
import re

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret

from encours.domain import identifiers
from encours.domain.identifiers import (
    IdentifierError,
    check_consistency,
    french_vat_from_siren,
    invalid_mask,
    normalize_siren,
    normalize_siret,
    normalize_vat,
    siren_from_vat,
)

SIREN = "732829320"
SIRET = "73282932000074"
OTHER_SIREN = "303265045"
OTHER_VAT = "FR40303265045"
MONACO_VAT = "FR" + str(int("000123456" + "12") % 97).zfill(2) + "000123456"


def with_key(digits: str) -> str:
    return digits + luhn.calc_check_digit(digits)


sirens = (
    st.text("0123456789", min_size=8, max_size=8)
    # La Poste has its own SIRET rule; FRkk000... VAT numbers are Monaco's, not SIREN-based
    .filter(lambda p: not p.startswith(("35600000", "000")))
    .map(with_key)
)


@pytest.mark.parametrize(
    "value",
    [SIREN, "732 829 320", "732.829.320", "732-829-320", "732\u00a0829\u202f320", 732829320],
)
def test_normalize_siren(value: str | int) -> None:
    assert normalize_siren(value) == SIREN


def test_normalize_siren_restores_leading_zeros_of_ints() -> None:
    siren = with_key("01234567")
    assert normalize_siren(int(siren)) == siren


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("732829321", "invalid checksum"),
        ("73282932", "invalid length"),
        ("7328293200", "invalid length"),
        ("73282932A", "invalid format"),
        ("", "empty"),
        ("   ", "empty"),
        (None, "not text"),
        (7.3e8, "not text"),
        (-732829320, "negative"),
    ],
)
def test_normalize_siren_rejects(value: object, problem: str) -> None:
    with pytest.raises(IdentifierError, match=problem) as info:
        normalize_siren(value)  # type: ignore[arg-type]
    assert info.value.kind == "siren"
    assert info.value.problem.startswith(problem)


def test_error_message_names_identifier_value_and_expectation() -> None:
    with pytest.raises(IdentifierError) as info:
        normalize_siren("732829321")
    assert str(info.value) == (
        "SIREN '732829321': invalid checksum (9 digits with a valid Luhn key expected)"
    )
    assert isinstance(info.value, ValueError)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (str(copy), copy.kind, copy.value) == (str(info.value), "siren", "732829321")


@pytest.mark.parametrize("value", [SIRET, "732 829 320 00074", 73282932000074])
def test_normalize_siret(value: str | int) -> None:
    assert normalize_siret(value) == SIRET


@pytest.mark.parametrize(
    ("value", "problem"),
    [("73282932000075", "checksum"), ("7328293200007", "length"), ("7328293200007X", "format")],
)
def test_normalize_siret_rejects(value: str, problem: str) -> None:
    with pytest.raises(IdentifierError, match=f"SIRET '{value}': invalid {problem} \\(14 digits"):
        normalize_siret(value)


def test_la_poste_siret_rule_from_stdnum() -> None:
    assert normalize_siret("35600000049837") == "35600000049837"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (OTHER_VAT, OTHER_VAT),
        ("fr 40 303 265 045", OTHER_VAT),
        ("FR40.303.265.045", OTHER_VAT),
        ("Fr-40-303-265-045", OTHER_VAT),
        ("DE 136 695 976", "DE136695976"),
        ("be0403019261", "BE0403019261"),
        ("EL094259216", "EL094259216"),
        (MONACO_VAT, MONACO_VAT),
    ],
)
def test_normalize_vat(value: str, expected: str) -> None:
    assert normalize_vat(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("FR41303265045", "invalid checksum"),
        ("FR4030326504", "invalid length"),
        ("40303265045", "missing country prefix"),
        ("XX123456789", "unknown country prefix"),
        ("US123456789", "unknown country prefix"),
        ("DE136695977", "invalid checksum"),
        ("", "empty"),
    ],
)
def test_normalize_vat_rejects(value: str, problem: str) -> None:
    with pytest.raises(IdentifierError, match=problem) as info:
        normalize_vat(value)
    assert str(info.value).startswith(f"VAT {value!r}: ")
    assert "e.g. FR40303265045" in str(info.value)


def test_vat_siren_conversions() -> None:
    assert french_vat_from_siren(OTHER_SIREN) == OTHER_VAT
    assert french_vat_from_siren("303 265 045") == OTHER_VAT
    assert siren_from_vat("fr40 303 265 045") == OTHER_SIREN
    with pytest.raises(IdentifierError, match="not a French VAT"):
        siren_from_vat("DE136695976")
    with pytest.raises(IdentifierError, match="Monaco"):
        siren_from_vat(MONACO_VAT)
    with pytest.raises(IdentifierError, match="SIREN"):
        french_vat_from_siren("123")


@given(siren=sirens)
@settings(max_examples=150)
def test_generated_sirens_round_trip(siren: str) -> None:
    assert normalize_siren(siren) == siren
    vat = french_vat_from_siren(siren)
    assert normalize_vat(vat) == vat
    assert siren_from_vat(vat) == siren
    assert check_consistency(siren, with_key(siren + "0001"), vat) == []


@given(siren=sirens, position=st.integers(0, 8), digit=st.integers(0, 9))
@settings(max_examples=150)
def test_any_single_digit_error_is_caught(siren: str, position: int, digit: int) -> None:
    assume(siren[position] != str(digit))
    typo = siren[:position] + str(digit) + siren[position + 1 :]
    with pytest.raises(IdentifierError, match="checksum"):
        normalize_siren(typo)


def test_check_consistency_ok() -> None:
    assert check_consistency(SIREN, SIRET, french_vat_from_siren(SIREN)) == []
    assert check_consistency(SIREN, None, None) == []
    assert check_consistency() == []
    assert check_consistency(SIREN, SIRET, "DE136695976") == []  # foreign VAT: no link


def test_check_consistency_siret_must_start_with_siren() -> None:
    problems = check_consistency(OTHER_SIREN, SIRET, None)
    assert problems == [f"SIRET {SIRET} does not start with the SIREN {OTHER_SIREN}"]


def test_check_consistency_vat_must_embed_siren() -> None:
    assert check_consistency(SIREN, None, OTHER_VAT) == [
        f"VAT {OTHER_VAT} does not embed the SIREN {SIREN}"
    ]
    # without a SIREN, the SIRET's SIREN is used
    assert check_consistency(None, SIRET, OTHER_VAT) == [
        f"VAT {OTHER_VAT} does not embed the SIREN {SIREN}"
    ]
    assert "Monaco" in check_consistency(SIREN, None, MONACO_VAT)[0]


def test_check_consistency_reports_invalid_identifiers() -> None:
    problems = check_consistency("732829321", SIRET, "FR00")
    assert len(problems) == 2
    assert problems[0].startswith("SIREN '732829321': invalid checksum")
    assert problems[1].startswith("VAT 'FR00'")


def test_invalid_mask() -> None:
    values = pl.Series("siren", [SIREN, None, "732829321", "", SIREN, "  ", "12", "732 829 320"])
    mask = invalid_mask(values, "siren")
    assert mask.name == "siren"
    assert mask.dtype == pl.Boolean
    assert mask.to_list() == [False, False, True, False, False, False, True, False]


def test_invalid_mask_kinds_and_dtypes() -> None:
    vats = pl.Series([OTHER_VAT, "FR41303265045", None, "de136695976"])
    assert invalid_mask(vats, "vat").to_list() == [False, True, False, False]
    sirets = pl.Series([int(SIRET), None, 73282932000075], dtype=pl.Int64)
    assert invalid_mask(sirets, "siret").to_list() == [False, False, True]
    categorical = pl.Series([SIREN, "nope", None], dtype=pl.Categorical)
    assert invalid_mask(categorical, "siren").to_list() == [False, True, False]
    assert invalid_mask(pl.Series([], dtype=pl.String), "siren").len() == 0
    assert invalid_mask(pl.Series([None, None], dtype=pl.String), "vat").to_list() == [False] * 2
    with pytest.raises(ValueError, match="kind"):
        invalid_mask(vats, "iban")  # type: ignore[arg-type]


def test_invalid_mask_calls_stdnum_only_for_undecided_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Compact values are decided by the vectorised checks; the others (separators, foreign
    VAT numbers...) go through stdnum once per distinct value."""
    seen: list[object] = []
    real = identifiers._is_invalid

    def counting(value: object, kind: identifiers.IdentifierKind) -> bool:
        seen.append(value)
        return real(value, kind)

    monkeypatch.setattr(identifiers, "_is_invalid", counting)
    values = pl.Series([SIREN, "732829321", None, "732 829 320", "732 829 321"] * 1000)
    mask = invalid_mask(values, "siren")
    assert sorted(seen) == ["732 829 320", "732 829 321"]
    assert mask.sum() == 2000
    assert mask.to_list()[:5] == [False, True, False, False, True]
    seen.clear()
    vats = pl.Series([OTHER_VAT, "FR41303265045", MONACO_VAT, "DE136695976", "DE136695976"])
    assert invalid_mask(vats, "vat").to_list() == [False, True, False, False, False]
    assert seen == ["DE136695976"]


# --- the vectorised verdict is stdnum's --------------------------------------------------

DIGITS = "0123456789"


def french_vat(siren: str) -> str:
    return "FR" + fr_siren.to_tva(siren)


def la_poste_siret(nic4: str) -> str:
    """A La Poste SIRET (356000000 + NIC) whose digit sum is a multiple of 5."""
    body = "356000000" + nic4
    return body + str(-sum(map(int, body)) % 5)


any_sirens = st.text(DIGITS, min_size=8, max_size=8).map(with_key)
valid_sirets = st.one_of(
    st.tuples(any_sirens, st.text(DIGITS, min_size=4, max_size=4)).map(
        lambda t: with_key(t[0] + t[1])
    ),
    st.text(DIGITS, min_size=4, max_size=4).map(la_poste_siret),
    st.just("35600000000048"),
)
valid_vats = st.one_of(
    any_sirens.map(french_vat),
    st.text(DIGITS, min_size=6, max_size=6).map(lambda d: french_vat("000" + d)),  # Monaco
)


def mutate(value: str, data: st.DataObject) -> str:
    """The value with one character changed, dropped, doubled, or two swapped."""
    i = data.draw(st.integers(0, len(value) - 1))
    how = data.draw(st.sampled_from(["digit", "drop", "double", "swap", "char"]))
    if how == "digit":
        return value[:i] + data.draw(st.sampled_from(DIGITS)) + value[i + 1 :]
    if how == "drop":
        return value[:i] + value[i + 1 :]
    if how == "double":
        return value[:i] + value[i] + value[i:]
    if how == "swap" and i + 1 < len(value):
        return value[:i] + value[i + 1] + value[i] + value[i + 2 :]
    return value[:i] + data.draw(st.sampled_from("AZ9 .-/\u00a0x")) + value[i + 1 :]


def stdnum_valid(kind: str, value: str) -> bool:
    """stdnum's verdict on the value without spaces, dots and dashes (normalize_<kind>)."""
    compact = re.sub(r"[\s.\-]", "", value)
    if not compact:
        return True  # blank: absent, not invalid
    if kind == "siren":
        return fr_siren.is_valid(compact)
    if kind == "siret":
        return fr_siret.is_valid(compact)
    return re.match(r"[A-Z]{2}", compact.upper()) is not None and eu_vat.is_valid(compact)


def check_against_stdnum(kind: str, values: list[str]) -> None:
    mask = invalid_mask(pl.Series(values, dtype=pl.String), kind)  # type: ignore[arg-type]
    expected = [not stdnum_valid(kind, v) for v in values]
    assert mask.to_list() == expected, [
        (v, m) for v, m, e in zip(values, mask.to_list(), expected, strict=True) if m != e
    ]


@given(data=st.data(), valid=st.lists(any_sirens, min_size=1, max_size=20))
@settings(max_examples=150, deadline=None)
def test_invalid_mask_siren_is_stdnum(data: st.DataObject, valid: list[str]) -> None:
    mutated = [mutate(v, data) for v in valid]
    noise = data.draw(st.lists(st.text(DIGITS + " A", max_size=12), max_size=5))
    check_against_stdnum("siren", valid + mutated + noise)
    assert not invalid_mask(pl.Series(valid), "siren").any()


@given(data=st.data(), valid=st.lists(valid_sirets, min_size=1, max_size=20))
@settings(max_examples=150, deadline=None)
def test_invalid_mask_siret_is_stdnum(data: st.DataObject, valid: list[str]) -> None:
    assert all(fr_siret.is_valid(v) for v in valid)
    mutated = [mutate(v, data) for v in valid]
    check_against_stdnum("siret", valid + mutated)
    assert not invalid_mask(pl.Series(valid), "siret").any()
    ints = pl.Series([int(v) for v in valid + mutated if v.isdigit() and v.isascii()])
    expected = [not fr_siret.is_valid(str(v).zfill(14)) for v in ints.to_list()]
    assert invalid_mask(ints, "siret").to_list() == expected


@given(data=st.data(), valid=st.lists(valid_vats, min_size=1, max_size=20))
@settings(max_examples=150, deadline=None)
def test_invalid_mask_vat_is_stdnum(data: st.DataObject, valid: list[str]) -> None:
    assert all(eu_vat.is_valid(v) for v in valid)
    mutated = [mutate(v, data) for v in valid]
    foreign = ["DE136695976", "BE0403019261", "de136695976", "XX123", "FRAB303265045"]
    check_against_stdnum("vat", valid + mutated + foreign)
    assert not invalid_mask(pl.Series(valid), "vat").any()


@given(siren=any_sirens, key=st.integers(0, 99))
@settings(max_examples=200, deadline=None)
def test_french_vat_key_is_checked(siren: str, key: int) -> None:
    vat = f"FR{key:02d}{siren}"
    check_against_stdnum("vat", [vat])
