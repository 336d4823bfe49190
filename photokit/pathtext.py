"""File names that are not valid UTF-8: stored losslessly, shown escaped.

POSIX file names are bytes. Python decodes the bytes that are not UTF-8 to lone surrogates
(U+DC80-U+DCFF, PEP 383 "surrogateescape"), which neither SQLite's driver nor PostgreSQL's ``text`` can
hold. The database therefore keeps a reversible text form (``to_db`` / ``from_db``): a backslash is written
``\\\\`` and an undecodable byte ``\\xHH`` (two lowercase hex digits); every other character is kept, so a
path that is valid UTF-8 and has no backslash is stored exactly as it is. Output shows such a byte as
``\\xHH`` too (``shown``), which is what ``ls --quoting-style=escape`` and Python's ``backslashreplace`` print.
"""

from __future__ import annotations

import os
import re

_SURROGATE = re.compile("[\udc80-\udcff]")
_DB_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")


def to_db(path: str) -> str:
    """The stored text of a path (str with surrogate escapes, as ``os.fsdecode`` gives)."""
    if "\\" not in path and not _SURROGATE.search(path):
        return path
    out = []
    for ch in path:
        if ch == "\\":
            out.append("\\\\")
        elif "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out)


def from_db(text: str) -> str:
    """The path ``to_db`` stored, with its undecodable bytes as surrogate escapes again (opens with ``open``)."""
    if "\\" not in text:
        return text

    def unescape(m: re.Match) -> str:
        body = m.group(1)
        return "\\" if body == "\\" else chr(0xDC00 + int(body[1:], 16))

    return _DB_ESCAPE.sub(unescape, text)


def shown(text: str | os.PathLike) -> str:
    """Text fit for a terminal or JSON: every undecodable byte as ``\\xHH`` (other text unchanged)."""
    text = os.fspath(text)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
