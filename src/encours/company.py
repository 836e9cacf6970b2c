"""The creditor: who sends the reminders, letters and legal files, and where to pay.

Read from the environment (secrets and company data never live in the repository):
ENCOURS_COMPANY_NAME, ENCOURS_COMPANY_ADDRESS (lines separated by "|"), ENCOURS_COMPANY_SIREN,
ENCOURS_COMPANY_VAT, ENCOURS_COMPANY_EMAIL, ENCOURS_COMPANY_PHONE, ENCOURS_IBAN, ENCOURS_BIC,
ENCOURS_COMPANY_CITY (for "Fait à ..."). The IBAN is validated with schwifty.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


class CompanyProfileError(ValueError):
    pass


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
    )
