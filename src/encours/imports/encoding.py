"""Decoding of source files: UTF-8 (with or without BOM), else CP1252."""

from __future__ import annotations


class EncodingError(ValueError):
    pass


def decode_bytes(data: bytes, file: str) -> tuple[str, str]:
    """Return (text, encoding name). UTF-8 is tried first, then CP1252.

    A file that is neither (bytes CP1252 leaves undefined) is an error naming the line.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EncodingError(
            f"{file}:{line}: byte 0x{data[exc.start]:02x} is neither UTF-8 nor CP1252 text"
        ) from exc
