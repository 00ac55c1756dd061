"""CSV files in another encoding than UTF-8, read as UTF-8.

DuckDB reads UTF-8. A file in another encoding (`--encoding windows-1252`,
or a CRM export's file that is not valid UTF-8, as Salesforce's Latin-1
exports often are) is decoded once into an unnamed temporary file, which the
loader then reads by its descriptor like any other.

    >>> is_utf8(Path(__file__))
    True
"""

from __future__ import annotations

import codecs
import os
import tempfile
from pathlib import Path

from runner.errors import LoadError

CHUNK = 1 << 20


class Utf8Check:
    """Whether bytes fed in order, chunk by chunk, decode as UTF-8: ASCII
    chunks are checked at memory speed, and nothing is decoded once a byte
    is found that is not UTF-8."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.valid = True

    def update(self, chunk: bytes | bytearray) -> None:
        if not self.valid or (chunk.isascii() and not self._decoder.getstate()[0]):
            return  # the common case, checked at memory speed
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError:
            self.valid = False

    def finish(self) -> bool:
        """The verdict, once every byte was fed."""
        if self.valid:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.valid = False
        return self.valid


def is_utf8(path: Path) -> bool:
    """Whether every byte of the file decodes as UTF-8 (read in chunks)."""
    check = Utf8Check()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            check.update(chunk)
    return check.finish()


def is_utf8_name(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise LoadError(
            f"--encoding {encoding}: not an encoding Python knows.",
            hint="Use e.g. utf-8, windows-1252, latin-1 or utf-16.",
        ) from exc


def utf8_copy(path: Path, encoding: str) -> int:
    """An unnamed temporary file holding `path` decoded from `encoding` as
    UTF-8; returns its descriptor (the caller closes it). Bytes the encoding
    does not define become U+FFFD."""
    fd, name = tempfile.mkstemp(prefix="kpi-utf8-", suffix=".csv")
    os.unlink(name)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    try:
        with path.open("rb") as source, open(fd, "wb", closefd=False) as target:
            for chunk in iter(lambda: source.read(CHUNK), b""):
                target.write(decoder.decode(chunk).encode("utf-8"))
            target.write(decoder.decode(b"", final=True).encode("utf-8"))
    except BaseException:
        os.close(fd)
        raise
    return fd
