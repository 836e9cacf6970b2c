"""Legal identifiers of companies: SIREN, SIRET and VAT numbers (validated with python-stdnum).

* SIREN: 9 digits with a Luhn key, the company's number in the INSEE register.
* SIRET: 14 digits, the SIREN followed by the 5-digit NIC of the establishment (Luhn key;
  La Poste's establishments use their own rule, handled by stdnum).
* VAT: an EU VAT number with its country prefix (FR, DE, ... EL for Greece, XI for Northern
  Ireland). A French number is FR + 2 key characters + the SIREN (Monaco: FR xx 000...).

Normalised forms are compact: digits only for SIREN/SIRET, uppercase prefix and no separators
for VAT. Spaces (including non-breaking ones), dots and dashes are accepted on input.
Integers are accepted for SIREN/SIRET (spreadsheets drop the leading zeros; they are restored).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

import polars as pl
from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret
from stdnum.fr import tva as fr_tva

IdentifierKind = Literal["siren", "siret", "vat"]

_EXPECTED = {
    "siren": "9 digits with a valid Luhn key expected",
    "siret": "14 digits (SIREN + 5-digit NIC) with a valid Luhn key expected",
    "vat": "an EU country prefix and the national number expected, e.g. FR40303265045",
}
_PROBLEMS: list[tuple[type[Exception], str]] = [
    (stdnum_errors.InvalidLength, "invalid length"),
    (stdnum_errors.InvalidFormat, "invalid format"),
    (stdnum_errors.InvalidChecksum, "invalid checksum"),
    (stdnum_errors.InvalidComponent, "unknown country prefix or invalid component"),
]


class IdentifierError(ValueError):
    """An identifier that is malformed; the message names it, quotes it and says what to expect."""

    def __init__(self, kind: IdentifierKind, value: object, problem: str) -> None:
        self.kind = kind
        self.value = value
        self.problem = problem
        super().__init__(f"{kind.upper()} {str(value)!r}: {problem} ({_EXPECTED[kind]})")

    def __reduce__(self) -> tuple[type[IdentifierError], tuple[IdentifierKind, object, str]]:
        return type(self), (self.kind, self.value, self.problem)


def _clean(value: object, kind: IdentifierKind, width: int | None = None) -> str:
    """Text without whitespace (incl. no-break spaces), dots and dashes; ints zero-padded."""
    if isinstance(value, int) and not isinstance(value, bool) and width is not None:
        if value < 0:
            raise IdentifierError(kind, value, "negative number")
        return str(value).zfill(width)
    if not isinstance(value, str):
        raise IdentifierError(kind, value, f"not text ({type(value).__name__})")
    cleaned = re.sub(r"[\s.\-]", "", value)
    if not cleaned:
        raise IdentifierError(kind, value, "empty")
    return cleaned


def _validate(
    kind: IdentifierKind, value: object, validate: Callable[[str], str], cleaned: str
) -> str:
    try:
        return validate(cleaned)
    except stdnum_errors.ValidationError as exc:
        problem = next((p for cls, p in _PROBLEMS if isinstance(exc, cls)), "invalid")
        raise IdentifierError(kind, value, problem) from exc


def normalize_siren(value: str | int) -> str:
    """The 9-digit SIREN, or IdentifierError (bad length, non-digits, bad Luhn key)."""
    return _validate("siren", value, fr_siren.validate, _clean(value, "siren", 9))


def normalize_siret(value: str | int) -> str:
    """The 14-digit SIRET, or IdentifierError (bad length, non-digits, bad key)."""
    return _validate("siret", value, fr_siret.validate, _clean(value, "siret", 14))


def normalize_vat(value: str) -> str:
    """The compact EU VAT number with its uppercase country prefix ('FR40303265045')."""
    cleaned = _clean(value, "vat").upper()
    if not re.match(r"[A-Z]{2}", cleaned):
        raise IdentifierError("vat", value, "missing country prefix")
    return _validate("vat", value, eu_vat.validate, cleaned)


def siren_from_vat(vat: str) -> str:
    """The SIREN embedded in a French VAT number (IdentifierError for other countries/Monaco)."""
    number = normalize_vat(vat)
    if not number.startswith("FR"):
        raise IdentifierError("vat", vat, "not a French VAT number, no SIREN in it")
    if number[4:7] == "000":
        raise IdentifierError("vat", vat, "Monaco VAT number, no SIREN in it")
    return fr_tva.to_siren(number)


def french_vat_from_siren(siren: str | int) -> str:
    """The French VAT number of a SIREN: 'FR' + the 2-digit key + the SIREN."""
    return "FR" + fr_siren.to_tva(normalize_siren(siren))


def check_consistency(
    siren: str | int | None = None,
    siret: str | int | None = None,
    vat: str | None = None,
) -> list[str]:
    """Problems between a customer's identifiers (empty list: consistent).

    Each given identifier must be valid; the SIRET must start with the SIREN; a French VAT
    number must embed the SIREN (or the SIRET's SIREN when no SIREN is given). Foreign VAT
    numbers are only checked on their own. None means absent.
    """
    problems: list[str] = []
    valid: dict[str, str] = {}
    normalizers: dict[str, Callable[[Any], str]] = {
        "siren": normalize_siren, "siret": normalize_siret, "vat": normalize_vat,
    }  # fmt: skip
    for kind, value in (("siren", siren), ("siret", siret), ("vat", vat)):
        if value is None:
            continue
        try:
            valid[kind] = normalizers[kind](value)
        except IdentifierError as exc:
            problems.append(str(exc))
    if "siren" in valid and "siret" in valid and valid["siret"][:9] != valid["siren"]:
        problems.append(f"SIRET {valid['siret']} does not start with the SIREN {valid['siren']}")
    company = valid.get("siren") or (valid["siret"][:9] if "siret" in valid else None)
    number = valid.get("vat")
    if company and number and number.startswith("FR"):
        if number[4:7] == "000":
            problems.append(f"VAT {number} is a Monaco number, it cannot embed SIREN {company}")
        elif number[4:] != company:
            problems.append(f"VAT {number} does not embed the SIREN {company}")
    return problems


def _is_invalid(value: object, kind: IdentifierKind) -> bool:
    if isinstance(value, str) and not value.strip():
        return False  # blank = absent
    normalize = {"siren": normalize_siren, "siret": normalize_siret, "vat": normalize_vat}[kind]
    try:
        normalize(value)  # type: ignore[arg-type]
    except IdentifierError:
        return True
    return False


# Values in these exact compact forms are decided by vectorised checks (the same rules as
# python-stdnum for these forms); every other value goes through stdnum, once per distinct
# value. French VAT: FR + a 2-digit key + the SIREN (Monaco: FR + key + 000...).
_CANONICAL = {"siren": r"^[0-9]{9}$", "siret": r"^[0-9]{14}$", "vat": r"^FR[0-9]{11}$"}
_WIDTH = {"siren": 9, "siret": 14}
_LA_POSTE = 356000000  # La Poste's SIRETs: digit sum multiple of 5 (but its head office)
_LA_POSTE_HEAD_OFFICE = 35600000000048


def _digit(number: pl.Expr, position: int) -> pl.Expr:
    """The digit of `number` at `position` from the right (0: units)."""
    return number // 10**position % 10


def _luhn_ok(number: pl.Expr, width: int) -> pl.Expr:
    """Luhn check of a non-negative Int64 of at most `width` digits."""
    total: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for position in range(width):
        digit = _digit(number, position)
        if position % 2:  # every second digit from the right is doubled (minus 9 when > 9)
            digit = digit * 2 - (digit >= 5).cast(pl.Int64) * 9
        total = total + digit
    return total % 10 == 0


def valid_expr(value: pl.Expr, kind: IdentifierKind) -> pl.Expr:
    """True where a value in the compact form of `_CANONICAL[kind]` is valid (stdnum's
    verdict for that form); meaningless for other values (check the form first)."""
    if kind == "siren":
        return _luhn_ok(value.cast(pl.Int64, strict=False), 9)
    if kind == "siret":
        number = value.cast(pl.Int64, strict=False)
        siren = number // 100_000
        digit_sum: pl.Expr = pl.lit(0, dtype=pl.Int64)
        for position in range(14):
            digit_sum = digit_sum + _digit(number, position)
        la_poste = (siren == _LA_POSTE) & (number != _LA_POSTE_HEAD_OFFICE)
        key_ok = pl.when(la_poste).then(digit_sum % 5 == 0).otherwise(_luhn_ok(number, 14))
        return key_ok & _luhn_ok(siren, 9)
    siren = value.str.slice(4, 9).cast(pl.Int64, strict=False)
    key = value.str.slice(2, 2).cast(pl.Int64, strict=False)
    monaco = value.str.slice(4, 3) == "000"
    return (key == (siren * 100 + 12) % 97) & (monaco | _luhn_ok(siren, 9))


def _invalid_text(values: pl.Series, kind: IdentifierKind) -> pl.Series:
    """invalid_mask of a String Series: vectorised for the compact forms, stdnum for the
    (few) other distinct values."""
    column = pl.col("value")
    frame = values.to_frame("value").with_columns(
        pl.when(column.str.contains(_CANONICAL[kind]))
        .then(~valid_expr(column, kind))
        .alias("invalid")
    )
    undecided = frame.filter(pl.col("invalid").is_null() & column.is_not_null())["value"]
    if undecided.len():
        distinct = undecided.unique()
        flags = pl.DataFrame(
            {"value": distinct, "slow": [_is_invalid(v, kind) for v in distinct.to_list()]},
            schema={"value": pl.String, "slow": pl.Boolean},
        )
        frame = frame.join(flags, on="value", how="left", maintain_order="left").with_columns(
            pl.coalesce("invalid", "slow").alias("invalid")
        )
    return frame["invalid"].fill_null(False)


def invalid_mask(values: pl.Series, kind: IdentifierKind) -> pl.Series:
    """Boolean Series, True where the value is not a valid `kind` identifier.

    The verdict is `normalize_<kind>`'s (python-stdnum's after removing spaces, dots and
    dashes), but computed with vectorised checks for the values already in the compact form
    (nearly all of them in an export): stdnum only sees the other values, once per distinct
    value. Null (and blank) values are valid: the identifier is simply absent. Integers are
    accepted for SIREN/SIRET (leading zeros restored), not for VAT numbers.
    """
    if kind not in _EXPECTED:
        raise ValueError(f"unknown identifier kind {kind!r}: expected siren, siret or vat")
    name = values.name
    if values.dtype == pl.Categorical or isinstance(values.dtype, pl.Enum):
        values = values.cast(pl.String)
    if values.dtype == pl.String:
        return _invalid_text(values, kind).alias(name)
    if values.dtype.is_integer() and kind in _WIDTH:
        text = values.to_frame("v").select(
            pl.when(pl.col("v") >= 0).then(pl.col("v").cast(pl.String).str.zfill(_WIDTH[kind]))
        )
        negative = (values < 0).fill_null(False)
        return (_invalid_text(text.to_series(), kind) | negative).alias(name)
    # any other type: each distinct value through normalize_<kind>
    distinct = values.drop_nulls().unique()
    flags = pl.DataFrame(
        {"value": distinct, "invalid": [_is_invalid(v, kind) for v in distinct.to_list()]},
        schema={"value": values.dtype, "invalid": pl.Boolean},
    )
    rows = values.to_frame("value").join(flags, on="value", how="left", maintain_order="left")
    return rows["invalid"].fill_null(False).alias(name)
