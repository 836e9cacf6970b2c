"""Translations through gettext catalogues (French by default, English available).

Identifiers and msgids are English; `locale/<lang>/LC_MESSAGES/encours.po` holds the
translations. The .po files are compiled in memory on first use, so a checkout works
without a build step.
"""

from __future__ import annotations

import gettext
import io
import os
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).with_name("locale")
SUPPORTED = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

_current = DEFAULT_LANGUAGE


def pick_language(explicit: str | None = None) -> str:
    """`--lang`, else ENCOURS_LANG, else the LANGUAGE/LC_ALL/LANG locale, else French."""
    candidates = [explicit, os.environ.get("ENCOURS_LANG")]
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value and not value.startswith(("C", "POSIX")):
            candidates.append(value)
    for candidate in candidates:
        if candidate:
            code = candidate.split(":")[0].split("_")[0].split(".")[0].lower()
            if code in SUPPORTED:
                return code
    return DEFAULT_LANGUAGE


@cache
def translations(lang: str) -> gettext.NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "encours.po"
    if not po.exists():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def set_language(lang: str | None) -> str:
    global _current
    _current = pick_language(lang)
    return _current


def current_language() -> str:
    return _current


def _(message: str) -> str:
    return translations(_current).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current).ngettext(singular, plural, n)
