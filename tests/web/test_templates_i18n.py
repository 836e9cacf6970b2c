"""Every message of the web templates and modules has a French translation (the repository's
i18n test reads only .py files; templates are extracted here with Jinja2's extractor)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import encours.web

WEB = Path(encours.web.__file__).resolve().parent
PO = WEB.parent / "locale" / "fr" / "LC_MESSAGES" / "encours.po"


def test_every_web_message_has_a_french_translation() -> None:
    with PO.open("rb") as fh:
        catalog = {m.id: m.string for m in read_po(fh, locale="fr") if m.id}
    found = {
        msg if isinstance(msg, str) else msg[0]
        for _f, _l, msg, _c, _ctx in extract_from_dir(
            str(WEB), method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
            keywords={"_": None},
        )
    }  # fmt: skip
    assert len(found) > 100
    missing = sorted(m for m in found if not catalog.get(m))
    assert not missing, missing
