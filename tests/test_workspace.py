"""The workspace: atomic writes that leave ordinary files."""
from __future__ import annotations


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    import os
    import stat

    from reidviewer.workspace import atomic_write_json, atomic_write_with

    umask = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        atomic_write_with(tmp_path / "b.bin", lambda p: p.write_bytes(b"1"))
    finally:
        os.umask(umask)
    for name in ("a.json", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    import pytest

    from reidviewer.workspace import atomic_open

    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as fh:
            fh.write("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
