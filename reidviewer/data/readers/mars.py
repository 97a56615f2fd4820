"""MARS reader (docs/method.md §6.2): 1.19 M frames indexed from the ``info/`` metadata alone.

Layout::

    mars/bbox_train/0001/0001C1T0001F001.jpg
    mars/bbox_test/00-1/00-1C2T0081F201.jpg      # junk (pid -1), distractors are pid 0
    mars/info/train_name.txt  test_name.txt      # one frame name a line (CRLF)
    mars/info/tracks_train_info.mat              # track_train_info, N×4 [start, end, pid, cam], 1-based inclusive
    mars/info/tracks_test_info.mat               # track_test_info
    mars/info/query_IDX.mat                      # query_IDX, 1-based rows of track_test_info

Frame paths are built from the name lists without touching a single image. Names live in
one numpy ``S`` array per list (about 23 MB for both) and tracklets hold ``PackedNames``
views into them. The parsed, validated index is cached in the workspace
(``cache/index/mars-<root hash>.npz``), keyed by the info files' sizes and mtimes plus the
SHA-1 of the small ``.mat`` files, so the second open skips parsing and validation.

Protocols:
    ``torchreid`` (default): query = the ``query_IDX`` rows, gallery = every other test
        tracklet whose pid is not -1 (1,980 queries, 9,330 gallery); eval rule ``market1501``.
    ``official``: the MARS MATLAB evaluation — gallery = all 12,180 test tracklets (queries
        included, junk kept, skipped at ranking); eval rule ``mars_official``.

Every train and test tracklet is in ``tracklets`` under both protocols (train rows first, then
test rows in file order), so indices and keys do not depend on the protocol; train pids are
kept raw (``Split.train_labels`` relabels them).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from reidviewer.data.array_files import open_npz
from reidviewer.data.dataset import Split, VideoDataset
from reidviewer.data.readers._common import check_protocol, load_mat_int
from reidviewer.data.registry import register_reader
from reidviewer.data.tracklet import PackedNames, Tracklet
from reidviewer.errors import DatasetError, ReidViewerError

if TYPE_CHECKING:
    from reidviewer.workspace import Workspace

INFO = "info"
HOMES = ("bbox_train", "bbox_test")
NAME_FILES = ("train_name.txt", "test_name.txt")
TRACK_FILES = ("tracks_train_info.mat", "tracks_test_info.mat")
TRACK_VARS = ("track_train_info", "track_test_info")
QUERY_FILE = "query_IDX.mat"
QUERY_VAR = "query_IDX"
#: Bumped whenever the cached arrays change meaning, so old caches are rebuilt.
CACHE_VERSION = 1


def find_info(root: Path) -> Path | None:
    """The ``info`` folder of a MARS root, or None."""
    info = root / INFO
    if (info / TRACK_FILES[1]).is_file() or (info / NAME_FILES[1]).is_file():
        return info
    return None


# --------------------------------------------------------------------------- parsing


def read_name_list(path: Path) -> np.ndarray:
    """Read a MARS name list (one frame name a line, CRLF or LF) into a numpy ``S`` array.

    Raises:
        DatasetError: naming the file if it is missing, empty, has blank or non-ASCII lines.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(path, "file is missing (expected one frame name a line)") from None
    except OSError as exc:
        raise DatasetError(path, f"cannot be read ({exc.strerror or exc})") from None
    names = _split_fixed_width(data)
    if names is None:
        lines = data.replace(b"\r", b"").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        if not lines:
            raise DatasetError(path, "is empty (expected one frame name a line)")
        names = np.array(lines, dtype="S")
    if names.size == 0:
        raise DatasetError(path, "is empty (expected one frame name a line)")
    u8 = names.view(np.uint8).reshape(len(names), -1)
    if (u8 >= 128).any():
        line = int(np.nonzero((u8 >= 128).any(axis=1))[0][0]) + 1
        raise DatasetError(path, f"line {line} is not an ASCII file name")
    short = u8[:, 5] == 0 if u8.shape[1] >= 6 else np.ones(len(names), dtype=bool)  # S pads with NULs
    if short.any():
        line = int(np.nonzero(short)[0][0]) + 1
        raise DatasetError(
            path, f"line {line} ({names[line - 1].decode()!r}) is not a MARS frame name like 0001C1T0001F001.jpg"
        )
    return names


def _split_fixed_width(data: bytes) -> np.ndarray | None:
    """Fast path: every line has the same length (true of MARS, ``%s\\r\\n`` of 19-char names).

    Returns None when the lines are not all the same width, so the general path runs.
    """
    first = data.find(b"\n")
    if first <= 0:
        return None
    step = first + 1
    body = data if data.endswith(b"\n") else data + b"\n"
    if len(body) % step:
        return None
    u8 = np.frombuffer(body, dtype=np.uint8).reshape(-1, step)
    if not (u8[:, -1] == 10).all():
        return None
    crlf = step >= 2 and data[first - 1 : first] == b"\r"
    width = step - 2 if crlf else step - 1
    if crlf and not (u8[:, -2] == 13).all():
        return None
    if width <= 0:
        return None
    cols = np.ascontiguousarray(u8[:, :width])
    if (cols == 13).any() or (cols == 0).any():
        return None
    return cols.view(f"S{width}").reshape(-1)


def check_tracks(tracks: np.ndarray, names: np.ndarray, mat_path: Path, names_path: Path) -> None:
    """Validate a track-info matrix against its name list, as torchreid asserts.

    Rows must have ``1 <= start <= end <= len(names)`` and every name of a tracklet must share
    the pid (``name[:4]``) and the camera (``name[5]``) of its first name.

    Raises:
        DatasetError: naming the ``.mat`` file, the row, and the name-list line at fault.
    """
    start, end = tracks[:, 0], tracks[:, 1]
    n = len(names)
    bad = (start < 1) | (end < start) | (end > n)
    if bad.any():
        r = int(np.nonzero(bad)[0][0])
        raise DatasetError(
            mat_path,
            f"row {r + 1}: lines {start[r]}..{end[r]} are not a range within the {n:,} lines of {names_path.name}",
        )
    cam = tracks[:, 3]
    if ((cam < 1) | (cam > 9)).any():
        r = int(np.nonzero((cam < 1) | (cam > 9))[0][0])
        raise DatasetError(mat_path, f"row {r + 1}: camera {cam[r]} is not 1..9")
    # Pack pid (4 bytes) and camera (1 byte) of every name into one integer and compare each
    # name with the first name of its tracklet — vectorised over all 1.19 M names.
    u8 = names.view(np.uint8).reshape(n, -1)
    code = np.zeros(n, dtype=np.int64)
    for col in (0, 1, 2, 3, 5):
        code = (code << 8) | u8[:, col]
    lengths = end - start + 1
    offsets = np.repeat(start - 1 - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    pos = np.arange(int(lengths.sum()), dtype=np.int64) + offsets
    ref = np.repeat(code[start - 1], lengths)
    mismatch = code[pos] != ref
    if mismatch.any():
        k = int(np.nonzero(mismatch)[0][0])
        r = int(np.searchsorted(np.cumsum(lengths), k, side="right"))
        line = int(pos[k]) + 1
        raise DatasetError(
            mat_path,
            f"row {r + 1}: {names_path.name} line {line} ({names[line - 1].decode()!r}) does not share the pid "
            f"and camera of the tracklet's first frame, line {start[r]} ({names[start[r] - 1].decode()!r})",
        )


def _stat_key(paths: list[Path], small: list[Path]) -> str:
    """Cache key: sizes and mtimes of every info file, and the SHA-1 of the small ``.mat`` files."""
    h = hashlib.sha1(f"mars-index-v{CACHE_VERSION}\n".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    for p in small:
        h.update(hashlib.sha1(p.read_bytes()).digest())
    return h.hexdigest()


def _content_fingerprint(paths: list[Path]) -> str:
    """SHA-1 over the bytes of every info file: stable across copies of the dataset."""
    h = hashlib.sha1(b"mars\n")
    for p in paths:
        h.update(p.name.encode() + b"\n")
        h.update(hashlib.sha1(p.read_bytes()).digest())
    return h.hexdigest()


class MarsIndex:
    """The parsed, validated MARS metadata.

    Attributes:
        names: ``(train_names, test_names)``, numpy ``S`` arrays.
        tracks: ``(track_train, track_test)``, int64 N×4 [start, end, pid, cam], 1-based inclusive.
        query: 0-based query rows of ``track_test``.
        content: SHA-1 of the info files' bytes.
    """

    __slots__ = ("names", "tracks", "query", "content")
    _FIELDS = ("train_names", "test_names", "track_train", "track_test", "query")

    def __init__(self, names: tuple, tracks: tuple, query: np.ndarray, content: str) -> None:
        self.names = names
        self.tracks = tracks
        self.query = query
        self.content = content

    def save(self, path: Path) -> None:
        """Write the index atomically as an uncompressed ``.npz`` (no pickles)."""
        from reidviewer.workspace import atomic_open

        with atomic_open(path, "wb") as fh:
            np.savez(
                fh,
                train_names=self.names[0],
                test_names=self.names[1],
                track_train=self.tracks[0],
                track_test=self.tracks[1],
                query=self.query,
                content=np.array(self.content.encode("ascii")),
            )

    @classmethod
    def load(cls, path: Path) -> MarsIndex | None:
        """Read a cached index; None if it is missing, corrupt or inconsistent (then it is rebuilt)."""
        try:
            with open_npz(path) as z:
                arrays = {k: z[k] for k in (*cls._FIELDS, "content")}
        except Exception:  # any unreadable cache is simply rebuilt
            return None
        # Cheap sanity checks, so a damaged cache can never index outside the name lists.
        for names, tracks in (("train_names", "track_train"), ("test_names", "track_test")):
            n, t = arrays[names], arrays[tracks]
            if n.dtype.kind != "S" or n.ndim != 1 or t.dtype.kind != "i" or t.ndim != 2 or t.shape[1] != 4:
                return None
            if len(t) and (t[:, 0].min() < 1 or t[:, 1].max() > len(n) or (t[:, 1] < t[:, 0]).any()):
                return None
        q = arrays["query"]
        if q.ndim != 1 or q.dtype.kind != "i" or (len(q) and (q.min() < 0 or q.max() >= len(arrays["track_test"]))):
            return None
        return cls(
            (arrays["train_names"], arrays["test_names"]),
            (arrays["track_train"], arrays["track_test"]),
            arrays["query"],
            arrays["content"].item().decode("ascii"),
        )


def parse_info(info: Path) -> MarsIndex:
    """Parse and validate the five MARS info files (no caching).

    Raises:
        DatasetError: naming the info file (and row/line) at fault.
    """
    names = tuple(read_name_list(info / f) for f in NAME_FILES)
    tracks = []
    for f, var, nm, nf in zip(TRACK_FILES, TRACK_VARS, names, NAME_FILES):
        t = load_mat_int(info / f, var, columns=4)
        check_tracks(t, nm, info / f, info / nf)
        tracks.append(t)
    qpath = info / QUERY_FILE
    query = load_mat_int(qpath, QUERY_VAR, ndim=1)
    n_test = len(tracks[1])
    bad = (query < 1) | (query > n_test)
    if bad.any():
        raise DatasetError(qpath, f"query_IDX holds {query[bad][0]}, outside the {n_test:,} test tracklets (1-based)")
    if len(np.unique(query)) != len(query):
        raise DatasetError(qpath, "query_IDX lists a test tracklet twice")
    files = [info / f for f in (*NAME_FILES, *TRACK_FILES, QUERY_FILE)]
    return MarsIndex(names, tuple(tracks), query - 1, _content_fingerprint(files))


def load_index(root: Path, info: Path, workspace: Workspace | None) -> tuple[MarsIndex, bool]:
    """The MARS index, from the workspace cache when it is current.

    Returns:
        ``(index, from_cache)``.
    """
    files = [info / f for f in (*NAME_FILES, *TRACK_FILES, QUERY_FILE)]
    for f in files:
        if not f.is_file():
            raise DatasetError(f, f"file is missing; expected {MarsReader.description}")
    if workspace is None:
        return parse_info(info), False
    # The key is taken before parsing: if the files change meanwhile, the next key differs.
    key = _stat_key(files, [info / f for f in (*TRACK_FILES, QUERY_FILE)])
    where = hashlib.sha1(str(root.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    try:
        path = workspace.cache_dir / "index" / f"mars-{where}-{key[:16]}.npz"
    except OSError:  # an unwritable workspace: work without the cache
        return parse_info(info), False
    cached = MarsIndex.load(path) if path.is_file() else None
    if cached is not None:
        return cached, True
    index = parse_info(info)
    try:
        for old in path.parent.glob(f"mars-{where}-*.npz"):  # the previous key's cache is stale now
            old.unlink(missing_ok=True)
        index.save(path)
    except (OSError, ReidViewerError):
        pass  # a read-only or full workspace only costs speed next time
    return index, False


# --------------------------------------------------------------------------- dataset


def _tracklets(index: MarsIndex, root: Path) -> list[Tracklet]:
    """One Tracklet per track row: train rows, then test rows.

    This loop runs 20,478 times and dominates a cached open, so per-row work is kept to
    object construction: names are decoded by numpy, and the few distinct prefix and camera
    strings are shared.
    """
    out: list[Tracklet] = []
    cameras = {c: f"C{c}" for c in range(10)}
    for home, names, tracks in zip(HOMES, index.names, index.tracks):
        firsts = names[tracks[:, 0] - 1]
        persons = firsts.astype("S4").astype("U").tolist()  # name[:4], decoded by numpy
        prefixes = {p: f"{home}/{p}/" for p in set(persons)}  # ~1,500 shared strings
        cuts = np.char.find(firsts, b"F", 6)
        if len(cuts) and (cuts == cuts[0]).all() and cuts[0] > 0:
            stems = firsts.astype(f"S{int(cuts[0])}").astype("U").tolist()  # every MARS name: F at 11
        else:
            decoded = firsts.astype("U").tolist()
            stems = [f[:c] if c > 0 else f.rsplit(".", 1)[0] for f, c in zip(decoded, cuts.tolist())]
        keys = [prefixes[p] + s for p, s in zip(persons, stems)]
        if len(set(keys)) != len(keys):  # two rows with one tracklet number: keep keys unique
            seen: set[str] = set()
            for i, (k, start) in enumerate(zip(keys, tracks[:, 0].tolist())):
                keys[i] = f"{k}@{start}" if k in seen else k
                seen.add(k)
        base = len(out)
        out.extend(
            Tracklet(base + i, pid, cam - 1, PackedNames(names, start - 1, end, prefixes[p]), root, p, cameras[cam], k)
            for i, ((start, end, pid, cam), p, k) in enumerate(zip(tracks.tolist(), persons, keys))
        )
    return out


def open_mars(root: Path, protocol: str = "torchreid", workspace: Workspace | None = None) -> VideoDataset:
    """Index MARS under ``protocol`` (``torchreid`` or ``official``).

    Raises:
        DatasetError: naming the info file at fault.
    """
    root = Path(root)
    info = find_info(root)
    if info is None:
        raise DatasetError(root / INFO, f"MARS info folder missing or incomplete; expected {MarsReader.description}")
    index, _ = load_index(root, info, workspace)
    tracklets = _tracklets(index, root)
    n_train = len(index.tracks[0])
    test_rows = np.arange(len(index.tracks[1]), dtype=np.int64)
    query = index.query.astype(np.int64)
    if protocol == "official":
        gallery = test_rows
        eval_rule = "mars_official"
    else:
        keep = np.ones(len(test_rows), dtype=bool)
        keep[query] = False
        keep &= index.tracks[1][:, 2] != -1
        gallery = test_rows[keep]
        eval_rule = "market1501"
        if len(gallery) == 0:
            raise DatasetError(
                info / QUERY_FILE,
                "makes every test tracklet a query or leaves only distractors (pid -1), so the "
                "torchreid gallery is empty; use --protocol official or fix query_IDX",
            )
    split = Split(
        name="split 0",
        train=np.arange(n_train, dtype=np.int64),
        query=query + n_train,
        gallery=gallery + n_train,
    )
    notices = [f"{home}/ is missing: frames cannot be shown" for home in HOMES if not (root / home).is_dir()]
    return VideoDataset(
        name="mars",
        root=root,
        protocol=protocol,
        tracklets=tracklets,
        splits=[split],
        protocols=MarsReader.protocols,
        eval_rule=eval_rule,
        fingerprint=hashlib.sha1(f"{index.content}\0{protocol}".encode()).hexdigest()[:16],
        notices=notices,
    )


@register_reader
class MarsReader:
    """MARS: ``bbox_{train,test}/`` frames indexed by ``info/`` name lists and track matrices."""

    name = "mars"
    protocols = ("torchreid", "official")
    description = (
        "info/{train,test}_name.txt, info/tracks_{train,test}_info.mat, info/query_IDX.mat "
        "with frames in bbox_train/ and bbox_test/"
    )
    priority = 0

    def detect(self, root: Path) -> bool:
        """True if ``root/info`` has ``tracks_test_info.mat`` or ``test_name.txt``."""
        return find_info(Path(root)) is not None

    def open(self, root: Path, protocol: str, workspace: Workspace | None) -> VideoDataset:
        """Index MARS; the parsed index is cached in ``workspace`` when one is given."""
        check_protocol(self, protocol)
        return open_mars(Path(root), protocol, workspace)
