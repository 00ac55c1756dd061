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


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_hashing_a_file_tells_whether_it_is_utf8_without_reading_it_again(
    tmp_path: Path, monkeypatch, chunk: int
):
    """With `check_utf8`, the read that hashes a CSV file gives the UTF-8
    verdict too, the same as reading the file for it."""
    import hashlib

    from runner import raw_files

    monkeypatch.setattr(raw_files, "CHUNK", chunk)
    contents = {"good.csv": "ab,José\n".encode(), "bad.csv": b"ab,cd\nJos\xe9\n"}
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
    files = [raw_files.open_export_file("t", tmp_path / n, check_utf8=True) for n in contents]
    try:
        raw_files.hash_files(files)
        monkeypatch.setattr(raw_files, "is_utf8", lambda path: pytest.fail(f"{path} read again"))
        good, bad = files
        assert good.sha256 == hashlib.sha256(contents["good.csv"]).hexdigest()
        assert bad.sha256 == hashlib.sha256(contents["bad.csv"]).hexdigest()
        assert good.is_utf8() and not bad.is_utf8()
    finally:
        raw_files.close_export_files({"t": files})
    # a file the load did not hash (its stat was recorded with its hash) is
    # read for the verdict alone
    monkeypatch.undo()
    unhashed = raw_files.open_export_file("t", tmp_path / "bad.csv", check_utf8=True)
    try:
        assert not unhashed.is_utf8() and "_hashed" not in unhashed.__dict__
    finally:
        raw_files.close_export_files({"t": [unhashed]})
