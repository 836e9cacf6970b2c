"""Translations: every message of the code and of the templates has a French translation
with the same placeholders, French is the default language, and `--lang` / ENCOURS_LANG
choose it.

The msgids are extracted from src/encours the way scripts/update-catalogues.sh does:
babel's extractors (keywords `_`, `N_` and `ngettext`; Python, and Jinja for *.html and *.j2),
plus the calls they cannot see on Python < 3.12 or through a name: `_()` inside an
f-string, `_(CONSTANT)` on a module-level string, `_(key)` inside `for key in ("a", "b")`.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from typer.testing import CliRunner

from encours import i18n

SRC = Path(i18n.__file__).resolve().parent
LOCALE = SRC / "locale"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}  # babel's keyword specs
METHOD_MAP = [("**.py", "python"), ("**.html", "jinja2"), ("**.j2", "jinja2")]
N_MSGID_ARGS = {"_": 1, "N_": 1, "ngettext": 2}

Msgid = str | tuple[str, ...]


@pytest.fixture(autouse=True)
def _restore_language() -> Iterator[None]:
    """`set_language` is global state: leave it in English, as the rest of the suite expects."""
    yield
    i18n.set_language("en")


# --- extraction -------------------------------------------------------------------------


def _string_literals(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Tuple | ast.List | ast.Set) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return [e.value for e in node.elts]  # type: ignore[attr-defined]
    return None


def _ast_messages(path: Path) -> tuple[list[tuple[Msgid, int]], list[str]]:
    """(msgid, line) of the `_()`/`ngettext()` calls of a file, and the unresolvable calls."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            constants.update({t.id: value.value for t in targets if isinstance(t, ast.Name)})
    loop_values: dict[int, list[str]] = {}
    for node in ast.walk(tree):  # breadth first: inner loops override outer ones
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            values = _string_literals(node.iter)
            if values is None:
                continue
            for stmt in node.body:
                for inner in ast.walk(stmt):
                    if isinstance(inner, ast.Name) and inner.id == node.target.id:
                        loop_values[id(inner)] = values

    found: list[tuple[Msgid, int]] = []
    unresolved: list[str] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in N_MSGID_ARGS
            and node.args
        ):
            continue
        choices: list[list[str]] = []
        for arg in node.args[: N_MSGID_ARGS[node.func.id]]:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                choices.append([arg.value])
            elif isinstance(arg, ast.Name) and id(arg) in loop_values:
                choices.append(loop_values[id(arg)])
            elif isinstance(arg, ast.Name) and arg.id in constants:
                choices.append([constants[arg.id]])
            else:
                unresolved.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: "
                                  f"{ast.unparse(node)}")  # fmt: skip
                break
        else:
            if len(choices) == 1:
                found.extend((msgid, node.lineno) for msgid in choices[0])
            else:
                found.append((tuple(c[0] for c in choices), node.lineno))
    return found, unresolved


@cache
def source_messages() -> tuple[dict[Msgid, list[str]], tuple[str, ...]]:
    """{msgid: ["file:line", ...]} of the code, and the calls without a literal msgid."""
    messages: dict[Msgid, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(SRC), method_map=METHOD_MAP, keywords=KEYWORDS
    ):
        messages.setdefault(message, []).append(f"encours/{filename}:{lineno}")
    unresolved: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        found, bad = _ast_messages(path)
        unresolved.extend(bad)
        for message, lineno in found:
            messages.setdefault(message, []).append(f"{path.relative_to(SRC.parent)}:{lineno}")
    unresolved.extend(_template_dynamic_calls())
    return messages, tuple(unresolved)


def _template_dynamic_calls() -> list[str]:
    """`{{ _(variable) }}` in a template: babel skips it silently."""
    import jinja2
    from jinja2.ext import extract_from_ast

    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    found = []
    for path in sorted([*SRC.rglob("*.html"), *SRC.rglob("*.j2")]):
        tree = env.parse(path.read_text(encoding="utf-8"))
        for lineno, func, message in extract_from_ast(tree, tuple(N_MSGID_ARGS), babel_style=True):
            first = message[0] if isinstance(message, tuple) else message
            if not first:
                found.append(f"{path.relative_to(SRC.parent)}:{lineno}: {func}(...)")
    return found


@cache
def catalogue(lang: str) -> Catalog:
    with (LOCALE / lang / "LC_MESSAGES" / "encours.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def _key(msgid: Msgid) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def _placeholders(text: str) -> set[str]:
    """The `{name!conv:spec}` fields of a str.format template."""
    return {
        "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
        for _literal, name, spec, conv in string.Formatter().parse(text)
        if name is not None
    }


# --- catalogues ---------------------------------------------------------------------------


def test_extraction_finds_the_messages_of_the_cli() -> None:
    messages, _unresolved = source_messages()
    assert "Outstanding" in messages
    assert "encours status as of {day}" in messages
    assert "Days late" in messages
    assert "Dunning policies and their assignment." in messages  # N_(): a --help text
    assert "Amount due" in messages and "Due date" in messages
    assert "Due" not in messages  # ambiguous (a date or an amount): split in two msgids
    assert "credit_notes" in messages  # `for key in (...)`: `_(key)`
    assert "Log out" in messages  # Jinja template
    assert any(m.startswith("Simple interest, 365-day year") for m in messages)  # _(CONSTANT)
    assert len(messages) > 50


def test_extraction_sees_inside_f_strings(tmp_path: Path) -> None:
    """Not seen by babel on Python 3.11."""
    source = tmp_path / "example.py"
    source.write_text(
        "from encours.i18n import N_, _\n"
        "LABEL = 'Days late'\n"
        "print(f\"{_('Days late')}: 3\")\n"
        "HELP = N_('Marked help')\n"
        "print(_(LABEL))\n",
        encoding="utf-8",
    )
    found, unresolved = _ast_messages(source)
    assert sorted(msgid for msgid, _line in found) == ["Days late", "Days late", "Marked help"]
    assert not unresolved


def test_every_message_of_the_code_has_a_french_translation() -> None:
    messages, _unresolved = source_messages()
    fr = catalogue("fr")
    missing = []
    for msgid, where in sorted(messages.items(), key=lambda item: item[1][0]):
        entry = fr.get(_key(msgid))
        texts = (
            []
            if entry is None
            else (list(entry.string) if isinstance(entry.string, tuple) else [entry.string])
        )
        if entry is None or entry.fuzzy or not texts or not all(texts):
            missing.append(f"{where[0]}: {msgid!r}")
    assert not missing, (
        f"{len(missing)} message(s) without a French translation; run "
        "`bash scripts/update-catalogues.sh` and translate them in "
        "src/encours/locale/fr/LC_MESSAGES/encours.po:\n" + "\n".join(missing)
    )


def test_every_translated_call_has_a_literal_msgid() -> None:
    """`_(variable)` cannot be extracted, so its text would stay untranslated."""
    _messages, unresolved = source_messages()
    assert not unresolved, (
        "`_()`/`ngettext()` called without a literal msgid (use a string literal, a "
        "module-level string constant or a loop over a tuple of literals):\n"
        + "\n".join(unresolved)
    )


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_translations_keep_the_placeholders(lang: str) -> None:
    wrong = []
    for entry in catalogue(lang):
        if not entry.id or not entry.string:
            continue
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        texts = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        expected = set().union(*(_placeholders(i) for i in ids))
        for text in texts:
            if not text:
                continue
            try:
                got = _placeholders(text)
            except ValueError as exc:  # unbalanced braces
                wrong.append(f"{entry.id!r} -> {text!r}: {exc}")
                continue
            if got != expected:
                wrong.append(f"{entry.id!r} -> {text!r}: {sorted(got)} != {sorted(expected)}")
    assert not wrong, "placeholders differ from the msgid:\n" + "\n".join(wrong)


def test_english_falls_back_to_the_msgid() -> None:
    """An empty English msgstr means the English text is the msgid itself."""
    messages, _unresolved = source_messages()
    en, po = i18n.translations("en"), catalogue("en")
    for msgid in messages:
        if isinstance(msgid, str):
            entry = po.get(msgid)
            expected = entry.string if entry is not None and entry.string else msgid
            assert en.gettext(msgid) == expected
    assert en.gettext("a msgid in no catalogue") == "a msgid in no catalogue"


# --- language selection -----------------------------------------------------------------


def test_set_language_switches_the_messages() -> None:
    assert i18n.set_language("fr") == "fr"
    assert i18n.current_language() == "fr"
    assert i18n._("Outstanding") == "Encours"
    assert i18n._("Unapplied cash") == "Encaissements non lettrés"
    assert i18n._("{kind} rate from {day}: {rate} %").format(kind="ecb", day="2024-07-01",
                                                             rate="4.25") == (
        "Taux ecb à compter du 2024-07-01 : 4.25 %"
    )  # fmt: skip
    assert i18n.set_language("en") == "en"
    assert i18n._("Outstanding") == "Outstanding"
    assert i18n._("Unapplied cash") == "Unapplied cash"


def test_ngettext_follows_the_language() -> None:
    i18n.set_language("en")
    assert i18n.ngettext("{n} file", "{n} files", 1) == "{n} file"
    assert i18n.ngettext("{n} file", "{n} files", 2) == "{n} files"


@pytest.fixture
def no_locale(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ("ENCOURS_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("explicit", "env", "expected"),
    [
        (None, {}, "fr"),  # nothing set: French
        (None, {"LANG": "C.UTF-8"}, "fr"),
        (None, {"LANG": "POSIX"}, "fr"),
        (None, {"LANG": "de_DE.UTF-8"}, "fr"),  # unsupported: French
        (None, {"LANG": "en_GB.UTF-8"}, "en"),
        (None, {"LANGUAGE": "en_US:fr", "LANG": "fr_FR.UTF-8"}, "en"),
        (None, {"ENCOURS_LANG": "en", "LANG": "fr_FR.UTF-8"}, "en"),  # ENCOURS_LANG > LANG
        (None, {"ENCOURS_LANG": "fr", "LANG": "en_US.UTF-8"}, "fr"),
        ("en", {"ENCOURS_LANG": "fr", "LANG": "fr_FR.UTF-8"}, "en"),  # explicit > everything
        ("fr", {"ENCOURS_LANG": "en", "LANG": "en_US.UTF-8"}, "fr"),
        ("FR", {}, "fr"),
        ("xx", {"ENCOURS_LANG": "en"}, "en"),  # unsupported explicit: next candidate
    ],
)
def test_pick_language(
    no_locale: pytest.MonkeyPatch, explicit: str | None, env: dict[str, str], expected: str
) -> None:
    for var, value in env.items():
        no_locale.setenv(var, value)
    assert i18n.pick_language(explicit) == expected


def test_set_language_none_reads_the_environment(no_locale: pytest.MonkeyPatch) -> None:
    no_locale.setenv("ENCOURS_LANG", "fr")
    assert i18n.set_language(None) == "fr"
    assert i18n._("Overdue") == "Échu"


# --- command line -------------------------------------------------------------------------


def _status(tmp_path: Path, *options: str) -> str:
    from encours.cli.app import app
    from encours.store.db import dispose_all

    db = f"sqlite:///{tmp_path / 't.db'}"
    try:
        result = CliRunner().invoke(app, ["--db", db, *options, "status", "--as-of", "2024-06-30"])
    finally:
        dispose_all()
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # Rich may wrap the title


def test_cli_lang_fr(tmp_path: Path) -> None:
    out = _status(tmp_path, "--lang", "fr")
    assert "Situation de l'encours au 2024-06-30" in out
    assert "rubrique" in out and "avoirs" in out and "factures non soldées" in out
    assert "status as of" not in out


def test_cli_encours_lang_env_fr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOURS_LANG", "fr")
    out = _status(tmp_path)
    assert "Situation de l'encours au 2024-06-30" in out


def test_cli_lang_en(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCOURS_LANG", "fr")  # --lang wins over the environment
    out = _status(tmp_path, "--lang", "en")
    assert "encours status as of 2024-06-30" in out
    assert "Situation" not in out


def test_cli_french_error_message(tmp_path: Path) -> None:
    from encours.cli.app import app

    result = CliRunner().invoke(
        app, ["--db", f"sqlite:///{tmp_path / 't.db'}", "--lang", "fr", "import", "customers",
              str(tmp_path / "absent.csv")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Fichier introuvable" in " ".join(result.output.split())
