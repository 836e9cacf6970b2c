"""Dunning messages from Jinja2 templates, per level, channel and language.

Where templates are looked for, first match wins, file by file:

1. ``$ENCOURS_TEMPLATE_DIR/<lang>/<template>.<channel>.j2``, then ``<lang>/<template>.j2``
2. the same names in the shipped folder (``encours/collections/templates``)
3. the same again in French (the default language) when the language has no such file

So a user overrides one message (say ``en/reminder_1.email.j2``) by copying it into their
own folder and editing it, without touching the code; everything else still comes from the
shipped folder. Shared pieces (invoice table, payment details, signature) live in
``<lang>/_macros.j2`` (text) and ``<lang>/_macros.html.j2`` (HTML, autoescaped), which can
be overridden the same way.

A template defines three top-level variables with ``{% set subject %}``, ``{% set text %}``
and ``{% set html %}`` (the HTML inside ``{% autoescape true %}``). Rendering is strict
(StrictUndefined): a misspelt variable, a syntax error or a missing file raises
:class:`TemplateRenderError` and nothing of the message is kept.

Amounts and dates are formatted with babel for the language's locale (fr_FR, en_GB):
filters ``money(minor, currency)``, ``day(date)`` (short), ``longday(date)`` and
``amount(minor, currency)`` (a Decimal), in the language of the template's folder (a
French fallback formats the French way). Import shared macros without context
(``{% import "fr/_macros.j2" as t %}``): the module is then compiled once and cached.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    pass_context,
)
from jinja2.runtime import Context

from encours.i18n import DEFAULT_LANGUAGE
from encours.locale_format import LOCALES, format_day, format_money
from encours.money import from_minor

SHIPPED_DIR = Path(__file__).with_name("templates")
TEMPLATE_DIR_ENV = "ENCOURS_TEMPLATE_DIR"


class TemplateRenderError(Exception):
    """A message that could not be rendered: nothing of it is kept."""

    def __init__(self, template: str, message: str) -> None:
        self.template = template
        self.message = message
        super().__init__(f"template {template}: {message}")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body_text: str
    body_html: str
    template_file: str


# --- formatting -------------------------------------------------------------------------


def _lang_of(ctx: Context) -> str:
    """The language of the template being rendered: its folder (`fr/...`, `en/...`), so
    that shared macros imported without context format like the file calling them."""
    name = ctx.name or ""
    lang = name[:2] if name[2:3] == "/" else ""
    return lang if lang in LOCALES else DEFAULT_LANGUAGE


@pass_context
def _money_filter(ctx: Context, minor: int, currency: str) -> str:
    return format_money(minor, currency, _lang_of(ctx))


@pass_context
def _day_filter(ctx: Context, day: dt.date) -> str:
    return format_day(day, _lang_of(ctx), "short")


@pass_context
def _longday_filter(ctx: Context, day: dt.date) -> str:
    return format_day(day, _lang_of(ctx), "long")


# --- environment ------------------------------------------------------------------------


def _autoescape(name: str | None) -> bool:
    return bool(name and name.endswith(".html.j2"))


def template_dirs(override: Path | str | None = None) -> list[Path]:
    """The user's folder (argument, else $ENCOURS_TEMPLATE_DIR) first, then the shipped one."""
    user = override if override is not None else os.environ.get(TEMPLATE_DIR_ENV)
    dirs = [Path(user)] if user else []
    return [*dirs, SHIPPED_DIR]


class Renderer:
    """Renders dunning messages; one per run (templates are compiled once and cached)."""

    def __init__(self, override: Path | str | None = None) -> None:
        self.dirs = template_dirs(override)
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(d)) for d in self.dirs]),
            undefined=StrictUndefined,
            autoescape=_autoescape,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # one renderer per run: no stat() per message
        )
        self.env.filters.update(
            money=_money_filter, day=_day_filter, longday=_longday_filter, amount=from_minor
        )
        self._names: dict[tuple[str, str, str], str] = {}

    def template_name(self, template: str, channel: str, lang: str) -> str:
        """The file that renders (template, channel, lang), by the lookup order above."""
        key = (template, channel, lang)
        if key in self._names:
            return self._names[key]
        langs = [lang] if lang == DEFAULT_LANGUAGE else [lang, DEFAULT_LANGUAGE]
        candidates = [c for lg in langs for c in (f"{lg}/{template}.{channel}.j2",
                                                   f"{lg}/{template}.j2")]  # fmt: skip
        for name in candidates:
            try:
                self.env.get_template(name)
            except TemplateNotFound:
                continue
            except TemplateError as exc:
                raise TemplateRenderError(name, _describe(exc)) from exc
            self._names[key] = name
            return name
        raise TemplateRenderError(
            f"{lang}/{template}.{channel}.j2",
            f"no template found (looked for {', '.join(candidates)} in "
            f"{', '.join(str(d) for d in self.dirs)})",
        )

    def render(self, template: str, channel: str, lang: str, context: dict[str, Any]) -> Rendered:
        """subject, text and HTML of one message; TemplateRenderError when any part fails."""
        name = self.template_name(template, channel, lang)
        try:
            tmpl = self.env.get_template(name)
            module = tmpl.make_module(context)
            parts = {}
            for part in ("subject", "text", "html"):
                if not hasattr(module, part):
                    raise TemplateRenderError(name, f"the template sets no `{part}`")
                parts[part] = str(getattr(module, part)).strip()
        except TemplateRenderError:
            raise
        except TemplateError as exc:
            raise TemplateRenderError(name, _describe(exc)) from exc
        except (ArithmeticError, TypeError, ValueError, AttributeError, KeyError) as exc:
            raise TemplateRenderError(name, f"{type(exc).__name__}: {exc}") from exc
        subject = " ".join(parts["subject"].split())
        return Rendered(subject, parts["text"] + "\n", parts["html"] + "\n", name)


def _describe(exc: TemplateError) -> str:
    line = getattr(exc, "lineno", None)
    where = f" (line {line})" if line else ""
    return f"{type(exc).__name__}: {exc.message or exc}{where}"


__all__ = [
    "SHIPPED_DIR",
    "TEMPLATE_DIR_ENV",
    "Renderer",
    "Rendered",
    "TemplateRenderError",
    "template_dirs",
]
