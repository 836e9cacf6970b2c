"""Translations through gettext catalogues (French by default, English available).

Identifiers and msgids are English; `locale/<lang>/LC_MESSAGES/encours.po` holds the
translations. The .po files are compiled in memory on first use, so a checkout works
without a build step.
"""

from __future__ import annotations

import gettext as gnu
import io
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).with_name("locale")
SUPPORTED = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

_current: str | None = None  # None: not chosen yet, follow the environment (pick_language)


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
def translations(lang: str) -> gnu.NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "encours.po"
    if not po.exists():
        return gnu.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gnu.GNUTranslations(buf)


def set_language(lang: str | None) -> str:
    global _current
    _current = pick_language(lang)
    return _current


def current_language() -> str:
    """The language set by `set_language`; before any call, the one of the environment
    (ENCOURS_LANG, the locale), else French."""
    return _current if _current is not None else pick_language()


def _(message: str) -> str:
    return translations(current_language()).gettext(message)


def gettext(message: str) -> str:
    """`_()` for a msgid held in a variable: the msgid must be marked where it is written,
    with `N_("...")`, so that the extraction finds it (`_()` wants a literal)."""
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark a msgid for extraction without translating it now (gettext_noop).

    For texts built before the language is known, such as the `--help` texts of the CLI
    (Typer reads them at import time): the caller translates them later with `_(message)`.
    """
    return message


class TranslatableError(ValueError):
    """An error whose message is shown to a person in their language, later: `template` is
    an English msgid (marked N_), `params` its fields; `str()` is the English text, and
    `translated(gettext)` the text in the language of a page (or `translated(_)` the CLI's).
    """

    def __init__(self, template: str, **params: object) -> None:
        super().__init__(template.format(**params))
        self.template = template
        self.params = params

    def translated(self, gettext: Callable[[str], str]) -> str:
        return gettext(self.template).format(**self.params)
