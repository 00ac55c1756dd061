"""UTF-8 checks and decoded copies of CSV files in another encoding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner import raw_encoding


@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
def test_is_utf8_across_chunk_boundaries(tmp_path: Path, monkeypatch, chunk: int):
    """A multi-byte character split over two chunks is UTF-8; a Latin-1 byte
    after ASCII chunks is not."""
    monkeypatch.setattr(raw_encoding, "CHUNK", chunk)
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes("ab,José\n".encode())
    bad.write_bytes(b"ab,cd\nJos\xe9\n")
    assert raw_encoding.is_utf8(good)
    assert not raw_encoding.is_utf8(bad)


def test_utf8_copy_decodes_windows_1252(tmp_path: Path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"name\nJos\xe9 \x80\n")
    fd = raw_encoding.utf8_copy(path, "windows-1252")
    try:
        assert os.pread(fd, 100, 0).decode("utf-8") == "name\nJosé €\n"
    finally:
        os.close(fd)
