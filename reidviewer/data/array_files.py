"""Reading ``.npy`` and ``.npz`` files from several threads at once.

numpy parses an array file's header with ``ast.literal_eval``. On CPython 3.11 the AST builder
keeps its recursion depth in interpreter-wide state, so two threads parsing at once can fail with
``SystemError: AST constructor recursion depth mismatch`` (python/cpython#106905; a garbage
collection that runs a Python finaliser mid-parse is enough to switch threads). The app does this
all the time: its frame loader maps cache files while a job fills the cache or reads results. A
CI run met it in ``tests/test_cache.py``.

So every array file reidviewer reads goes through here. The header is parsed under one
process-wide lock (microseconds: a header is one short line), and the data is read outside it.
Object arrays are refused as ``np.load(..., allow_pickle=False)`` refuses them: nothing from a
file is ever unpickled.
"""

from __future__ import annotations

import threading
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["DAMAGED_FILE_ERRORS", "NpzArchive", "open_npz", "read_npy_header"]

# What reading a missing, truncated, damaged or foreign array file can raise: a cache that
# catches these recomputes instead of failing.
DAMAGED_FILE_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)

# Re-entrant: a finaliser run by a collection inside the parse may read an array file itself.
_HEADER_LOCK = threading.RLock()
_READ_PIECE = 1 << 18


def read_npy_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read an ``.npy`` header and leave ``fh`` at the first data byte.

    Returns:
        (shape, fortran_order, dtype).

    Raises:
        ValueError: not an ``.npy`` stream, a format version this numpy cannot read, or an array
            of Python objects (which would need unpickling).
    """
    version = np.lib.format.read_magic(fh)
    with _HEADER_LOCK:
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:  # 3.0 exists only for structured dtypes with non-Latin-1 field names
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded: they hold pickled Python objects, which are never unpickled")
    return tuple(int(n) for n in shape), bool(fortran), dtype


def _read_data(fh: IO[bytes], shape: tuple[int, ...], fortran: bool, dtype: np.dtype) -> np.ndarray:
    """The array whose header was just read, read from ``fh`` into a new writable array."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
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
        self._members = {name[:-4]: name for name in self._zip.namelist() if name.endswith(".npy")}
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
        with self._zip.open(self._members[name]) as fh:
            shape, fortran, dtype = read_npy_header(fh)
            return _read_data(fh, shape, fortran, dtype)


def open_npz(path: str | Path) -> NpzArchive:
    """Open an ``.npz`` archive for reading its arrays.

    Raises:
        OSError: the file cannot be opened.
        zipfile.BadZipFile: the file is not a zip archive, or a damaged one.
    """
    return NpzArchive(path)
