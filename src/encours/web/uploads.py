"""Uploaded files for imports: type checks, a staging area, preview and confirm.

An upload is kept in a staging directory (ENCOURS_UPLOAD_DIR, default a folder in the
system's temporary directory) under a random id with its owner, kind and name, until the
person confirms it (then `services.imports.import_file` runs, in one transaction) or
uploads another. Only CSV/TXT (text, no NUL byte) and XLSX (a ZIP container) are taken.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from encours.i18n import N_, TranslatableError

KINDS = ("customers", "invoices", "payments", "fec")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
ZIP_MAGIC = b"PK\x03\x04"


class UploadError(TranslatableError):
    """A file the import page does not accept (message for the person)."""


def staging_dir() -> Path:
    path = Path(
        os.environ.get("ENCOURS_UPLOAD_DIR") or Path(tempfile.gettempdir()) / "encours-uploads"
    )
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def check_upload(filename: str, kind: str, head: bytes) -> str:
    """The file's suffix if the name, the kind and the first bytes agree; else UploadError."""
    if kind not in KINDS:
        raise UploadError(N_("unknown import kind {kind!r}"), kind=kind)
    suffix = Path(filename or "").suffix.lower()
    if suffix in XLSX_SUFFIXES:
        if kind == "fec":
            raise UploadError(N_("a FEC file is a text file (.txt or .csv)"))
        if not head.startswith(ZIP_MAGIC):
            raise UploadError(N_("the file is not an XLSX workbook"))
        return suffix
    if suffix in TEXT_SUFFIXES:
        if not head or b"\x00" in head or head.startswith(ZIP_MAGIC):
            raise UploadError(N_("the file is not a text (CSV) file"))
        return suffix
    raise UploadError(N_("accepted files: .csv, .txt, .tsv, .xlsx"))


def save(stream: BinaryIO, filename: str, kind: str, owner: str) -> tuple[str, Path]:
    """Check and stage an upload; returns (upload id, path)."""
    head = stream.read(65536)
    suffix = check_upload(filename, kind, head)
    upload_id = secrets.token_hex(16)
    folder = staging_dir() / upload_id
    folder.mkdir(mode=0o700)
    safe_name = (
        "".join(c for c in Path(filename).stem if c.isalnum() or c in "-_.")[:80] or "upload"
    )
    path = folder / f"{safe_name}{suffix}"
    with path.open("wb") as out:
        out.write(head)
        shutil.copyfileobj(stream, out, 1 << 20)
    meta = {"owner": owner, "kind": kind, "name": Path(filename).name[:200], "path": path.name}
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return upload_id, path


def load(upload_id: str, owner: str) -> tuple[dict, Path]:
    if not (len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id)):
        raise UploadError(N_("unknown upload"))
    folder = staging_dir() / upload_id
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UploadError(N_("unknown upload")) from exc
    if meta.get("owner") != owner:
        raise UploadError(N_("unknown upload"))
    return meta, folder / meta["path"]


def discard(upload_id: str) -> None:
    if len(upload_id) == 32 and all(c in "0123456789abcdef" for c in upload_id):
        shutil.rmtree(staging_dir() / upload_id, ignore_errors=True)
