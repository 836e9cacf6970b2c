#!/usr/bin/env bash
# Refresh the gettext catalogues of encours from the source code.
#
# Usage:  bash scripts/update-catalogues.sh
#
# Workflow (msgids are the English texts written in the code):
#   1. In the code, wrap every user-facing text in `_()` (or `ngettext(singular, plural, n)`),
#      with `{name}` placeholders filled by `.format(...)` AFTER the call:
#          _("{file}: rejected").format(file=path)       # right: the msgid has {file}
#          _(f"{path}: rejected")                         # wrong: no fixed msgid
#      Whole sentences with placeholders, never pieces glued together (`_("Days late: {n}")`,
#      not `_("Days late") + ": "`): word order differs between languages. One msgid per
#      meaning: "Due date" and "Amount due", never an ambiguous "Due".
#      A text needed before the language is known (the `--help` texts of the CLI, which Typer
#      reads at import time; tables of labels) is marked with `N_("...")`: extracted, but not
#      translated there; the code translates it later with `encours.i18n.gettext(value)`.
#      A `# TRANSLATORS: ...` comment just above the call reaches the translators.
#   2. Run this script. It
#        - extracts the msgids of src/encours with `pybabel extract -k _ -k N_ -k ngettext:1,2`,
#          from the Python code and from the Jinja templates (*.html, *.j2: `{{ _("...") }}`);
#        - adds the calls pybabel cannot see: `_()` inside an f-string (Python < 3.12),
#          `_(CONSTANT)` on a module-level string constant, and `_(key)` inside
#          `for key in ("a", "b", ...)`; other non-literal calls are reported as warnings;
#        - writes the template src/encours/locale/encours.pot;
#        - merges it into locale/fr/LC_MESSAGES/encours.po and locale/en/LC_MESSAGES/encours.po
#          (`pybabel update`, no fuzzy matching: a new msgid arrives untranslated, never with
#          a guessed translation; removed msgids stay at the end as `#~` obsolete entries,
#          which you may delete);
#        - lists the msgids that still have no French translation.
#   3. Translate them in fr/encours.po, keeping exactly the same `{placeholders}`.
#      English is the msgid itself: leave msgstr "" in en/encours.po (gettext falls back to
#      the msgid), unless an English text must differ from its msgid.
#   4. Run `pytest tests/unit/test_i18n.py`: it fails on any msgid of the code without a
#      French translation, on different placeholders, and on `_(variable)` calls. It extracts
#      the msgids itself, the same way as this script: keep the two in step.
# A new language: add it to LANGUAGES below and to encours.i18n.SUPPORTED, then run this
# script (--init-missing creates locale/<lang>/LC_MESSAGES/encours.po).
# There is no build step: encours.i18n compiles the .po files in memory at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x .venv/bin/python ]; then
  PYTHON=.venv/bin/python
  PYBABEL=.venv/bin/pybabel
else
  PYTHON=python3
  PYBABEL=pybabel
fi

SRC=src/encours
LOCALE=src/encours/locale
POT=$LOCALE/encours.pot
LANGUAGES=(fr en)
VERSION=$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"(.+)\"", open(sys.argv[1]).read())[1])' "$SRC/__init__.py")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. pybabel extraction: Python code, and the Jinja templates (web pages use `{{ _("...") }}`).
cat > "$tmp/babel.cfg" <<'CFG'
[python: **.py]
[jinja2: **.html]
[jinja2: **.j2]
CFG
"$PYBABEL" -q extract -F "$tmp/babel.cfg" \
  --no-default-keywords -k _ -k N_ -k ngettext:1,2 \
  --add-comments=TRANSLATORS: \
  --sort-by-file \
  --project=encours --version="$VERSION" \
  --copyright-holder="the encours contributors" \
  -o "$tmp/encours.pot" "$SRC"

# 2. The calls pybabel does not see (see the header), then the template.
"$PYTHON" - "$tmp/encours.pot" "$SRC" "$POT" <<'PYTHON'
import ast
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

extracted, src, pot = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
KEYWORDS = {"_": 1, "N_": 1, "ngettext": 2}  # function -> number of msgid arguments

with open(extracted, "rb") as fh:
    catalog = read_po(fh)
known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def strings(node):
    """The string literals of a tuple/list/set literal, else None."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return [e.value for e in node.elts]
    return None


added = 0
for path in sorted(src.rglob("*.py")):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) and node.value else [])
        value = getattr(node, "value", None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            constants.update({t.id: value.value for t in targets if isinstance(t, ast.Name)})
    loop_values = {}  # id(Name node used as argument) -> literal values of the loop
    for node in ast.walk(tree):  # outer loops first, so inner loops win
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            values = strings(node.iter)
            if values is not None:
                for inner in (n for stmt in node.body for n in ast.walk(stmt)):
                    if isinstance(inner, ast.Name) and inner.id == node.target.id:
                        loop_values[id(inner)] = values
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in KEYWORDS and node.args):
            continue
        args = node.args[: KEYWORDS[node.func.id]]
        ids = []
        for arg in args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                ids.append([arg.value])
            elif isinstance(arg, ast.Name) and id(arg) in loop_values:
                ids.append(loop_values[id(arg)])
            elif isinstance(arg, ast.Name) and arg.id in constants:
                ids.append([constants[arg.id]])
            else:
                ids = None
                break
        location = (str(path), node.lineno)
        if ids is None:
            print(f"warning: {path}:{node.lineno}: {ast.unparse(node)} has no literal msgid; "
                  "its text cannot be translated", file=sys.stderr)
            continue
        messages = ids[0] if len(ids) == 1 else [tuple(ids[0] + ids[1])]
        for msgid in messages:
            key = msgid if isinstance(msgid, str) else msgid[0]
            if key in known:
                existing = catalog.get(key)
                if existing is not None and location not in existing.locations:
                    existing.locations.append(location)
                continue
            catalog.add(msgid, locations=[location])
            known.add(key)
            added += 1

def content(cat):
    return [(m.id, sorted(m.locations), m.auto_comments, sorted(m.flags)) for m in cat if m.id]


if Path(pot).exists():  # same messages: keep the date, so that the files do not change
    with open(pot, "rb") as fh:
        previous = read_po(fh)
    if content(previous) == content(catalog):
        catalog.creation_date = previous.creation_date
with open(pot, "wb") as fh:
    write_po(fh, catalog, sort_by_file=True)

# Templates: pybabel silently skips `_(variable)`; say so.
import jinja2  # noqa: E402
from jinja2.ext import extract_from_ast  # noqa: E402

env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
for path in sorted([*src.rglob("*.html"), *src.rglob("*.j2")]):
    try:
        tree = env.parse(path.read_text(encoding="utf-8"))
    except jinja2.TemplateSyntaxError as exc:
        print(f"warning: {path}:{exc.lineno}: {exc.message}", file=sys.stderr)
        continue
    for lineno, func, message in extract_from_ast(tree, tuple(KEYWORDS), babel_style=True):
        first = message[0] if isinstance(message, tuple) else message
        if not first:
            print(f"warning: {path}:{lineno}: {func}() has no literal msgid; its text cannot "
                  "be translated", file=sys.stderr)
total = sum(1 for m in catalog if m.id)
print(f"{pot}: {total} msgids ({added} found by AST outside pybabel's reach)")
PYTHON

# 3. Merge the template into each language.
for lang in "${LANGUAGES[@]}"; do
  "$PYBABEL" -q update -D encours -i "$POT" -d "$LOCALE" -l "$lang" \
    --no-fuzzy-matching --init-missing
done

# 4. What is left to translate in French.
"$PYTHON" - "$LOCALE/fr/LC_MESSAGES/encours.po" <<'PYTHON'
import sys

from babel.messages.pofile import read_po

with open(sys.argv[1], "rb") as fh:
    catalog = read_po(fh, locale="fr")
todo = [m for m in catalog if m.id and (m.fuzzy or not all(
    m.string if isinstance(m.string, tuple) else [m.string]))]
if todo:
    print(f"{sys.argv[1]}: {len(todo)} msgid(s) to translate:")
    for m in todo:
        print(f"  {m.id!r}")
else:
    print(f"{sys.argv[1]}: every msgid is translated")
PYTHON
