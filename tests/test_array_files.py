"""Array files read from several threads at once, as the app does (frame loader + jobs)."""
from __future__ import annotations

import ast
import io
import sys
import threading
import zipfile

import numpy as np
import pytest

from reidviewer.data.array_files import DAMAGED_FILE_ERRORS, open_npz, read_npy_header
from reidviewer.data.cache import FrameCache
from reidviewer.workspace import Workspace
from pipeline_fixtures import make_dataset, moving_rgb


class _Finalised:
    """Cyclic garbage whose Python finaliser lets a collection switch threads mid-parse."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        sum(range(50))


def _hammer(read, rounds: int, threads: int = 3) -> list[BaseException]:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(rounds):
                _Finalised()
                read()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    finally:
        sys.setswitchinterval(old)
    return errors


def test_headers_parse_in_many_threads_at_once(tmp_path):
    # On CPython 3.11, np.load here fails within a few thousand rounds with
    # "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905).
    buf = io.BytesIO()
    np.save(buf, np.zeros((12, 5, 64, 48), np.uint8))
    data = buf.getvalue()
    archive = tmp_path / "a.npz"
    np.savez(archive, x=np.arange(6.0).reshape(2, 3), meta=np.array("{}"))

    def read() -> None:
        assert read_npy_header(io.BytesIO(data))[0] == (12, 5, 64, 48)
        with open_npz(archive) as z:
            assert z["x"].shape == (2, 3)

    assert _hammer(read, rounds=3000) == []


def test_headers_parse_while_another_thread_uses_ast(tmp_path):
    # No lock of ours covers other users of ast: CPython 3.11 formats every traceback with
    # ast.parse, and pytest, inspect and linters use it. Plain headers therefore use no ast at all.
    buf = io.BytesIO()
    np.save(buf, np.zeros((12, 5, 64, 48), np.uint8))
    data = buf.getvalue()
    source = "[" + "(1, 'a'), " * 300 + "]"
    stop = threading.Event()
    failures: list[BaseException] = []

    def other_ast_user() -> None:
        while not stop.is_set():
            try:
                _Finalised()
                ast.parse(source)
            except BaseException as exc:  # noqa: BLE001 - a SystemError here is the race too
                failures.append(exc)
                return

    other = threading.Thread(target=other_ast_user)
    other.start()
    try:
        errors = _hammer(lambda: read_npy_header(io.BytesIO(data)), rounds=3000, threads=2)
    finally:
        stop.set()
        other.join()
    assert errors == [] and failures == []


@pytest.mark.parametrize("array", [
    np.zeros((12, 5, 64, 48), np.uint8), np.arange(6.0, dtype=">f8"), np.array(3.5, np.float32),
    np.zeros((0, 7), np.float32), np.array(["ab", "c"]), np.array([b"0001C1T0001F001.jpg"]),
    np.array([True, False]), np.array(["2026-12-02"], dtype="datetime64[ns]"), np.array([1 + 2j]),
    np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)), np.zeros((3,), np.float16),
], ids=lambda a: f"{a.dtype.str}{list(a.shape)}")
def test_every_plain_header_numpy_writes_parses_without_ast(monkeypatch, array):
    buf = io.BytesIO()
    np.save(buf, array)
    buf.seek(0)

    def no_ast(*_a, **_k):
        raise AssertionError("a plain header must not go through ast")

    monkeypatch.setattr(ast, "literal_eval", no_ast)
    monkeypatch.setattr(ast, "parse", no_ast)
    shape, fortran, dtype = read_npy_header(buf)
    assert shape == array.shape and dtype == array.dtype
    assert fortran == (array.flags.f_contiguous and not array.flags.c_contiguous)
    assert len(buf.getvalue()) - buf.tell() == array.nbytes  # left at the first data byte


def test_a_structured_dtype_falls_back_to_numpys_parser_and_damaged_headers_are_refused():
    rec = np.zeros(3, dtype=[("pid", "<i4"), ("cam", "<i2")])
    buf = io.BytesIO()
    np.save(buf, rec)
    buf.seek(0)
    assert read_npy_header(buf) == ((3,), False, rec.dtype)
    good = io.BytesIO()
    np.save(good, np.zeros(3, np.float32))
    whole = good.getvalue()
    for bad in (whole[:9], whole[:40], whole.replace(b"'shape'", b"'shap' "),
                whole.replace(b"'<f4'", b"[1, 2]")):
        with pytest.raises(ValueError):
            read_npy_header(io.BytesIO(bad))


def test_cache_maps_from_many_threads_at_once(tmp_path):
    ds = make_dataset(tmp_path / "data", [(f"p{i}/t", moving_rgb(3 + i)) for i in range(3)], fingerprint="thr01")
    cache = FrameCache(Workspace(tmp_path / "ws"), ds)
    cache.ensure(range(3), workers=1)
    expected = [np.array(cache.get(i)) for i in range(3)]

    def read() -> None:
        for i in range(3):
            assert cache.is_cached(i)
            np.testing.assert_array_equal(cache.get(i), expected[i])

    assert _hammer(read, rounds=400) == []


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_arrays_read_back_as_numpy_wrote_them(tmp_path, save):
    arrays = {
        "f32": np.random.default_rng(0).random((4, 3), dtype=np.float32),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4)),
        "text": np.array("{\"a\": 1}"),
        "names": np.array([b"0001C1T0001F001.jpg", b"x"]),
        "empty": np.zeros((0, 7), np.float32),
    }
    save(tmp_path / "a.npz", **arrays)
    with open_npz(tmp_path / "a.npz") as z:
        assert sorted(z.files) == sorted(arrays) and "f32" in z and "nope" not in z
        for name, want in arrays.items():
            got = z[name]
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
        got = z["f32"]
        got[0, 0] = 5  # a real, writable array, as np.load gives
        with pytest.raises(KeyError, match="nope"):
            z["nope"]


def test_object_arrays_are_refused_never_unpickled(tmp_path):
    np.savez(tmp_path / "o.npz", ids=np.array([{"a": 1}, None], dtype=object))
    with open_npz(tmp_path / "o.npz") as z, pytest.raises(ValueError, match="[Oo]bject"):
        z["ids"]


def test_damaged_archives_raise_what_caches_catch(tmp_path):
    np.savez_compressed(tmp_path / "a.npz", x=np.random.default_rng(1).random(5000))
    whole = (tmp_path / "a.npz").read_bytes()
    cases = {"empty": b"", "not zip": b"PK\x03\x04garbage", "half": whole[: len(whole) // 2],
             "flipped": whole[:200] + bytes(b ^ 0xFF for b in whole[200:400]) + whole[400:]}
    for name, content in cases.items():
        path = tmp_path / f"{name}.npz"
        path.write_bytes(content)
        with pytest.raises(DAMAGED_FILE_ERRORS):
            with open_npz(path) as z:
                z["x"]
    with pytest.raises(zipfile.BadZipFile):
        open_npz(tmp_path / "empty.npz")


def _archive(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, content in members.items():
            z.writestr(name, content)


def test_a_member_shorter_than_its_header_says_is_refused_before_allocating(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.zeros((1000, 1000), np.float64))
    _archive(tmp_path / "short.npz", {"x.npy": buf.getvalue()[:5000]})
    with open_npz(tmp_path / "short.npz") as z, pytest.raises(EOFError, match="ends early"):
        z["x"]
    # a header that claims an exabyte is refused the same way, not attempted
    huge = io.BytesIO()
    np.lib.format.write_array_header_1_0(huge, {"descr": "<f8", "fortran_order": False, "shape": (10**15, 1000)})
    _archive(tmp_path / "huge.npz", {"x.npy": huge.getvalue() + b"\0" * 64})
    with open_npz(tmp_path / "huge.npz") as z, pytest.raises(EOFError, match="ends early"):
        z["x"]


def test_other_members_are_listed_as_np_load_lists_them_and_are_no_arrays(tmp_path):
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    _archive(tmp_path / "a.npz", {"qf.npy": buf.getvalue(), "notes.txt": b"hello"})
    with open_npz(tmp_path / "a.npz") as z, np.load(tmp_path / "a.npz") as numpy_z:
        assert sorted(z.files) == sorted(numpy_z.files) == ["notes.txt", "qf"]
        with pytest.raises(ValueError, match="not an .npy array"):
            z["notes.txt"]
