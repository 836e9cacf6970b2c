"""PDF documents: Jinja2 HTML templates (one per language) rendered by WeasyPrint.

Templates live in `collections/documents/<lang>/`, the shared print stylesheet in
`collections/documents/print.css`. Fonts are the system's (DejaVu, Debian package
`fonts-dejavu-core`): WeasyPrint never fetches anything from the network because every
document is rendered with a URL fetcher that refuses non-`file:` URLs.

Money is formatted with babel in the document's language (`1 234,56 €` in French,
`€1,234.56` in English); dates as `31/05/2024` (fr) or `31 May 2024` (en).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from encours import locale_format

DOCUMENTS_DIR = Path(__file__).with_name("documents")
LANGUAGES = ("fr", "en")


class DocumentError(ValueError):
    """A document that cannot be produced (unknown customer, missing data...)."""


def check_language(language: str | None) -> str:
    """`fr` or `en` (default French)."""
    lang = (language or "fr").lower()[:2]
    return lang if lang in LANGUAGES else "fr"


def format_money(amount: Decimal | int, currency: str, language: str = "fr") -> str:
    """An amount for print. An `int` is in minor units, a Decimal in major units."""
    if isinstance(amount, int):
        return locale_format.format_money(amount, currency, check_language(language))
    from babel.numbers import format_currency

    return format_currency(
        amount, currency, locale=locale_format.locale_of(check_language(language))
    )


def format_date(day: dt.date | None, language: str = "fr") -> str:
    if day is None:
        return ""
    if check_language(language) == "fr":
        return day.strftime("%d/%m/%Y")
    return f"{day.day} {day.strftime('%B %Y')}"


@cache
def _environment(language: str):  # noqa: ANN202
    from jinja2 import (
        ChoiceLoader,
        Environment,
        FileSystemLoader,
        StrictUndefined,
        select_autoescape,
    )

    env = Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(str(DOCUMENTS_DIR / language)), FileSystemLoader(str(DOCUMENTS_DIR))]
        ),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda amount, currency="EUR": format_money(amount, currency, language)
    env.filters["date"] = lambda day: format_date(day, language)
    env.globals["lang"] = language
    return env


def render_html(template: str, language: str, **context: Any) -> str:
    """The HTML of `template` (e.g. ``statement.html``) in `language`."""
    return _environment(check_language(language)).get_template(template).render(**context)


def _local_only_fetcher(url: str, *args: Any, **kwargs: Any) -> dict:
    """Only local files (stylesheet, fonts): a document never triggers a network access."""
    from weasyprint import default_url_fetcher

    if not url.startswith(("file:", "data:")):
        raise ValueError(f"remote resource refused in a document: {url}")
    return default_url_fetcher(url, *args, **kwargs)


def html_to_pdf(html: str, *, pdf_a: bool = False) -> bytes:
    """Render HTML to PDF bytes with WeasyPrint (PDF/A-3b with `pdf_a`, for Factur-X)."""
    from weasyprint import CSS, HTML

    stylesheet = CSS(filename=str(DOCUMENTS_DIR / "print.css"), url_fetcher=_local_only_fetcher)
    document = HTML(string=html, base_url=str(DOCUMENTS_DIR) + "/", url_fetcher=_local_only_fetcher)
    options: dict[str, Any] = {"stylesheets": [stylesheet]}
    if pdf_a:
        options["pdf_variant"] = "pdf/a-3b"
    return document.write_pdf(**options)


def render_pdf(template: str, language: str, **context: Any) -> bytes:
    """Render a document template straight to PDF bytes."""
    return html_to_pdf(render_html(template, language, **context))


def write_atomically(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file and a rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


__all__ = [
    "DOCUMENTS_DIR",
    "DocumentError",
    "check_language",
    "format_date",
    "format_money",
    "html_to_pdf",
    "render_html",
    "render_pdf",
    "write_atomically",
]
