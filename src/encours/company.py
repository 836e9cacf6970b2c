"""The creditor: who sends the reminders, letters and legal files, and where to pay.

Read from the environment (secrets and company data never live in the repository):
ENCOURS_COMPANY_NAME, ENCOURS_COMPANY_ADDRESS (lines separated by "|"), ENCOURS_COMPANY_SIREN,
ENCOURS_COMPANY_VAT, ENCOURS_COMPANY_EMAIL, ENCOURS_COMPANY_PHONE, ENCOURS_IBAN, ENCOURS_BIC,
ENCOURS_COMPANY_CITY (for "Fait à ..."), ENCOURS_COMPANY_LEGAL_FORM (SAS, SARL...) and
ENCOURS_COMPANY_REPRESENTATIVE (legal representative, for the injonction de payer).
The IBAN is validated with schwifty.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field


class CompanyProfileError(ValueError):
    pass


class CompanyNotConfiguredError(CompanyProfileError):
    """Documents for real customers need the creditor's identity: `missing` lists the
    environment variables to set."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(not_configured_message(missing))


# Without them, documents carry placeholders ("Votre Société SAS", a sample IBAN, no SIREN).
REQUIRED_SETTINGS: tuple[str, ...] = (
    "ENCOURS_COMPANY_NAME",
    "ENCOURS_IBAN",
    "ENCOURS_COMPANY_SIREN",
)


@dataclass(frozen=True)
class CompanyProfile:
    name: str = "Votre Société SAS"
    address: tuple[str, ...] = field(default=("1 rue de l'Exemple", "75001 Paris"))
    siren: str | None = None
    vat_number: str | None = None
    email: str | None = None
    phone: str | None = None
    iban: str | None = None
    bic: str | None = None
    city: str = "Paris"
    legal_form: str | None = None
    representative: str | None = None

    @property
    def iban_display(self) -> str | None:
        """The IBAN in groups of four, as printed on letters."""
        if not self.iban:
            return None
        from schwifty import IBAN

        return IBAN(self.iban).formatted


def validate_iban(value: str) -> str:
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        return str(IBAN(value).compact)
    except SchwiftyException as exc:
        raise CompanyProfileError(f"IBAN {value!r}: {exc} (a valid IBAN expected)") from exc


def load_company(env: dict[str, str] | None = None) -> CompanyProfile:
    """The company profile from the environment (defaults make a usable demo)."""
    env = dict(os.environ if env is None else env)
    iban = env.get("ENCOURS_IBAN") or "FR7630006000011234567890189"
    address = env.get("ENCOURS_COMPANY_ADDRESS")
    return CompanyProfile(
        name=env.get("ENCOURS_COMPANY_NAME", CompanyProfile.name),
        address=tuple(a.strip() for a in address.split("|"))
        if address
        else CompanyProfile().address,
        siren=env.get("ENCOURS_COMPANY_SIREN") or None,
        vat_number=env.get("ENCOURS_COMPANY_VAT") or None,
        email=env.get("ENCOURS_COMPANY_EMAIL") or None,
        phone=env.get("ENCOURS_COMPANY_PHONE") or None,
        iban=validate_iban(iban),
        bic=env.get("ENCOURS_BIC") or "AGRIFRPP",
        city=env.get("ENCOURS_COMPANY_CITY", "Paris"),
        legal_form=env.get("ENCOURS_COMPANY_LEGAL_FORM") or None,
        representative=env.get("ENCOURS_COMPANY_REPRESENTATIVE") or None,
    )


def missing_settings(env: dict[str, str] | None = None) -> list[str]:
    """The required company settings (REQUIRED_SETTINGS) not set in the environment."""
    env = dict(os.environ if env is None else env)
    return [name for name in REQUIRED_SETTINGS if not (env.get(name) or "").strip()]


def not_configured_message(missing: list[str]) -> str:
    from encours.i18n import _

    return _(
        "The company is not configured: documents would carry placeholder data. "
        "Set {variables} (the creditor's name, IBAN and SIREN)."
    ).format(variables=", ".join(missing))


def require_company(env: dict[str, str] | None = None, *, strict: bool = True) -> CompanyProfile:
    """The company profile, checked before producing documents for real customers.

    Strict (delivery: `dunning send`, `outbox send`, `legal file`): raises
    CompanyNotConfiguredError naming the variables to set. Not strict (drafts that may be
    previewed: `dunning run`, `notice`, `statement`, `charges`): writes a warning to stderr
    and returns the profile with its placeholders. A bad IBAN or SIREN raises
    CompanyProfileError either way."""
    env = dict(os.environ if env is None else env)
    missing = missing_settings(env)
    if missing and strict:
        raise CompanyNotConfiguredError(missing)
    siren = (env.get("ENCOURS_COMPANY_SIREN") or "").strip()
    if siren:
        from stdnum.fr import siren as stdnum_siren

        if not stdnum_siren.is_valid(siren):
            raise CompanyProfileError(
                f"ENCOURS_COMPANY_SIREN {siren!r}: not a valid SIREN (9 digits, Luhn key)"
            )
    profile = load_company(env)
    if missing:
        from encours.i18n import _

        sys.stderr.write(
            _("Warning: {message}").format(message=not_configured_message(missing)) + "\n"
        )
    return profile
