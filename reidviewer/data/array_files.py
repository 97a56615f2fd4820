"""Reading ``.npy`` and ``.npz`` files from several threads at once.

numpy parses an array file's header with ``ast.literal_eval``. On CPython 3.11 the AST builder
keeps its recursion depth in interpreter-wide state, so two threads using ``ast`` at once can fail
with ``SystemError: AST constructor recursion depth mismatch`` (python/cpython#106905; a garbage
collection that runs a Python finaliser mid-parse is enough to switch threads). The app reads
array files in several threads at once (a training worker reads the frame cache while an open job
reads a results file; evaluation reads ahead in a thread), and 3.11 also calls ``ast.parse`` to
format any traceback. A CI run met it in ``tests/test_cache.py``.

So every array file reidviewer reads goes through here, and its header is parsed without ``ast``:
numpy writes a plain dtype's header in one fixed form (``{'descr': '<f4', 'fortran_order': False,
'shape': (3, 4), }``), which a strict pattern reads. Anything else (a structured dtype) falls back
to ``ast.literal_eval`` under one process-wide lock. Object arrays are refused as
``np.load(..., allow_pickle=False)`` refuses them: nothing from a file is ever unpickled.
"""

from __future__ import annotations

import ast
import math
import re
import threading
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["DAMAGED_FILE_ERRORS", "NpzArchive", "open_npz", "read_npy_header"]

#: What reading a missing, truncated, damaged or foreign array file can raise: a cache that
#: catches these recomputes instead of failing. (``zipfile`` raises NotImplementedError for an
#: unknown compression method and RuntimeError for a member flagged as encrypted.)
DAMAGED_FILE_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
                       NotImplementedError, RuntimeError)

# Re-entrant: a finaliser run by a collection inside the parse may read an array file itself.
_HEADER_LOCK = threading.RLock()
_READ_PIECE = 1 << 18
#: numpy's own limit on a header it will parse (``max_header_size``), kept for the fallback.
_MAX_HEADER_BYTES = 10_000
#: The header numpy writes for a dtype with a plain type string: keys sorted, one shape tuple.
_PLAIN_HEADER = re.compile(
    r"\{'descr': '(?P<descr>[<>|=]?[A-Za-z]\d*(?:\[\w+\])?)', 'fortran_order': (?P<fortran>True|False), "
    r"'shape': \((?P<shape>(?:\d+, ?)*(?:\d+)?)\), *\} *\n?$"
)


def read_npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read an ``.npy`` header and leave ``fh`` at the first data byte.

    Returns:
        (shape, fortran_order, dtype).

    Raises:
        ValueError: not an ``.npy`` stream, one that ends inside its header, a header that does
            not describe an array, a format version other than 1.0 and 2.0, or an array of
            Python objects (which would need unpickling).
    """
    version = np.lib.format.read_magic(fh)
    if version not in ((1, 0), (2, 0)):  # 3.0 exists only for non-Latin-1 structured field names
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    length_bytes = 2 if version == (1, 0) else 4
    raw = fh.read(length_bytes)
    if len(raw) != length_bytes:
        raise ValueError("the file ends inside its .npy header")
    length = int.from_bytes(raw, "little")
    text = fh.read(length)
    if len(text) != length:
        raise ValueError("the file ends inside its .npy header")
    header = text.decode("latin1")
    plain = _PLAIN_HEADER.match(header)
    if plain:
        dtype = np.dtype(plain["descr"])
        fortran = plain["fortran"] == "True"
        shape = tuple(int(n) for n in plain["shape"].replace(" ", "").split(",") if n)
    else:
        shape, fortran, dtype = _parse_other_header(header)
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded: they hold pickled Python objects, which are never unpickled")
    return shape, fortran, dtype


def _parse_other_header(header: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """A header ``_PLAIN_HEADER`` does not match, parsed as numpy does, under the lock."""
    if len(header) > _MAX_HEADER_BYTES:
        raise ValueError(f".npy header of {len(header):,} bytes is longer than {_MAX_HEADER_BYTES:,}")
    try:
        with _HEADER_LOCK:
            d = ast.literal_eval(header)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as exc:
        raise ValueError(f"cannot parse the .npy header {header[:80]!r}: {exc}") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"the .npy header is not a dict of descr, fortran_order and shape: {header[:80]!r}")
    shape, fortran = d["shape"], d["fortran_order"]
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"the .npy header's shape is not a tuple of sizes: {shape!r}")
    if not isinstance(fortran, bool):
        raise ValueError(f"the .npy header's fortran_order is not a bool: {fortran!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(d["descr"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the .npy header's descr is not a dtype: {d['descr']!r} ({exc})") from None
    return tuple(shape), fortran, dtype


def _read_data(fh: IO[bytes], shape: tuple[int, ...], fortran: bool, dtype: np.dtype) -> np.ndarray:
    """The array whose header was just read, read from ``fh`` into a new writable array."""
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes, dtype=np.uint8)
    view = memoryview(raw)
    got = 0
    while got < nbytes:
        # In pieces: a zip member's reader copies each piece into a new bytes object and checksums
        # it, which stays in the CPU cache at this size. A 97 MB results archive read in one piece
        # took 0.14-0.40 s here, against 0.035-0.04 s in pieces (np.load's own speed).
        n = fh.readinto(view[got:got + _READ_PIECE])
        if not n:
            raise EOFError(f"array data ends early ({got} of {nbytes} bytes)")
        got += n
    return raw.view(dtype).reshape(shape, order="F" if fortran else "C")


class NpzArchive:
    """The arrays of an ``.npz`` archive (as written by ``np.savez``), read one at a time.

    Used like numpy's ``NpzFile``: ``with open_npz(path) as z: z.files, z["name"]``.
    """

    def __init__(self, path: str | Path) -> None:
        self._zip = zipfile.ZipFile(path)
        # As np.load lists them: "x.npy" as "x", any other member by its own name (reading it fails).
        self._members = {name[:-4] if name.endswith(".npy") else name: name for name in self._zip.namelist()}
        self.files: list[str] = list(self._members)

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the archive."""
        self._zip.close()

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __getitem__(self, name: str) -> np.ndarray:
        """The array ``name``, read into memory.

        Raises:
            KeyError: the archive holds no array of that name.
            ValueError: the member is not an ``.npy`` array, or is an object array.
            EOFError: the member is shorter than its header says.
        """
        if name not in self._members:
            raise KeyError(f"{name} is not a file in the archive")
        member = self._zip.getinfo(self._members[name])
        if not member.filename.endswith(".npy"):
            raise ValueError(f"{member.filename} in the archive is not an .npy array")
        with self._zip.open(member) as fh:
            shape, fortran, dtype = read_npy_header(fh)
            nbytes = math.prod(shape) * dtype.itemsize
            if member.file_size < fh.tell() + nbytes:  # before allocating what a bad header claims
                raise EOFError(f"{member.filename}: array data ends early ({member.file_size - fh.tell():,} of "
                               f"{nbytes:,} bytes)")
            return _read_data(fh, shape, fortran, dtype)


def open_npz(path: str | Path) -> NpzArchive:
    """Open an ``.npz`` archive for reading its arrays.

    Raises:
        OSError: the file cannot be opened.
        zipfile.BadZipFile: the file is not a zip archive, or a damaged one.
    """
    return NpzArchive(path)
