"""PRID-2011 reader (docs/method.md §6.2): two cameras, two protocols.

Layout (the root may be ``prid2011/`` or ``prid_2011/`` itself)::

    prid2011/prid_2011/multi_shot/cam_a/person_0001/0001.png
    prid2011/prid_2011/multi_shot/cam_b/person_0001/0001.png
    prid2011/splits_prid2011.json      # optional, for the ``wang`` protocol

Protocols:
    ``ran`` (default): RCN/RAN — the first 200 persons seen by both cameras, 10 seeded random
        100/100 splits (the first half of each permutation trains, as RCN's ``randperm``).
    ``wang``: Wang et al. ECCV'14 / torchreid — of those 200, the persons whose sequences in
        both cameras have at least 27 frames (178 on the real data), with the fixed splits of
        ``splits_prid2011.json`` when present.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from reidviewer.data.dataset import VideoDataset
from reidviewer.data.readers._common import (
    EMPTY_FOLDERS,
    NUM_RANDOM_SPLITS,
    SPLIT_SEED,
    check_protocol,
    fingerprint,
    random_splits,
    skipped_notice,
)
from reidviewer.data.readers._two_camera import TwoCameraFolders, two_camera_splits
from reidviewer.data.registry import register_reader
from reidviewer.errors import DatasetError

if TYPE_CHECKING:
    from reidviewer.workspace import Workspace

CAMERAS = ("cam_a", "cam_b")
SPLITS_JSON = "splits_prid2011.json"
#: RCN's prepareDataset.lua stops at person 200 (persons 1..200 are the ones both cameras saw).
RAN_PERSONS = 200
#: The Wang et al. protocol keeps persons with at least this many frames in both cameras (→ 178).
WANG_MIN_FRAMES = 27
_PERSON = re.compile(r"^person_(\d+)$")


def find_base(root: Path) -> Path | None:
    """The ``prid_2011`` folder (the one holding ``multi_shot/``) for ``root``, or None."""
    for base in (root / "prid_2011", root):
        if (base / "multi_shot" / CAMERAS[0]).is_dir() or (base / "multi_shot" / CAMERAS[1]).is_dir():
            return base
    return None


def read_splits_json(path: Path, known: dict[str, int]) -> list[tuple[list[int], list[int]]]:
    """Read ``splits_prid2011.json`` (a list of ``{"train": [...], "test": [...]}``).

    Args:
        path: the JSON file.
        known: person folder name → pid, for the persons of the protocol.

    Returns:
        ``(train_pids, test_pids)`` per split.

    Raises:
        DatasetError: naming ``path`` for bad JSON, a bad structure or an unknown person.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(path, f"cannot be read as JSON ({exc})") from None
    if not isinstance(data, list) or not data:
        raise DatasetError(path, 'expected a non-empty list of {"train": [...], "test": [...]} objects')
    out = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), list) for k in ("train", "test")):
            raise DatasetError(path, f'split {i} is not an object with "train" and "test" lists')
        parts = []
        for part in ("train", "test"):
            pids = []
            for person in entry[part]:
                if not isinstance(person, str) or person not in known:
                    raise DatasetError(
                        path,
                        f"split {i} {part} names unknown person {person!r} (not one of the {len(known)} "
                        f"persons of this protocol)",
                    )
                pids.append(known[person])
            if len(set(pids)) != len(pids):
                raise DatasetError(path, f"split {i} {part} lists a person twice")
            parts.append(sorted(pids))
        if not parts[1]:
            raise DatasetError(path, f'split {i} has "test": [] -- no test persons, so it would give 0 queries; '
                               "list at least one person in every split's test")
        both = set(parts[0]) & set(parts[1])
        if both:
            name = next(n for n, p in known.items() if p in both)
            raise DatasetError(path, f"split {i} puts {name!r} in both train and test")
        out.append((parts[0], parts[1]))
    return out


def open_prid2011(root: Path, protocol: str = "ran") -> VideoDataset:
    """Index a PRID-2011 folder under ``protocol`` (``ran`` or ``wang``).

    Raises:
        DatasetError: naming the folder or file at fault.
    """
    root = Path(root)
    base = find_base(root)
    if base is None:
        raise DatasetError(root, f"not a PRID-2011 folder; expected {Prid2011Reader.description}")
    ms = base / "multi_shot"
    folders = TwoCameraFolders(root, ms, CAMERAS, _PERSON, "person_NNNN", "person_0001")
    notices: list[str] = []
    one_cam = len(folders.in_one())
    if one_cam:
        notices.append(f"{one_cam} person folder(s) seen by one camera only are not identities (left out)")
    both = folders.in_both()

    # A person counts as seen by both cameras once both sequences have frames; list frames
    # only until the 200 are found (cam_b alone has 749 persons).
    frames = folders.frames
    chosen: list[int] = []
    examined = 0
    for pid in both:
        if len(chosen) == RAN_PERSONS:
            break
        examined += 1
        if folders.read(pid):
            chosen.append(pid)
    if folders.empty:
        notices.append(skipped_notice(len(folders.empty), EMPTY_FOLDERS, folders.empty))
    if not chosen:
        raise DatasetError(ms, "no person has frames in both multi_shot/cam_a and multi_shot/cam_b")
    beyond = len(both) - examined
    if beyond > 0:
        notices.append(f"{beyond} person(s) seen by both cameras after the first {RAN_PERSONS} are left out")
    if len(chosen) < RAN_PERSONS:
        notices.append(f"only {len(chosen)} persons are seen by both cameras (the RAN protocol uses {RAN_PERSONS})")

    split_file: Path | None = None
    if protocol == "wang":
        short = [p for p in chosen if min(len(frames[p, 0]), len(frames[p, 1])) < WANG_MIN_FRAMES]
        if short:
            notices.append(
                f"wang protocol: {len(short)} of {len(chosen)} persons have fewer than {WANG_MIN_FRAMES} "
                f"frames in a camera and are left out"
            )
        chosen = [p for p in chosen if p not in set(short)]
        if not chosen:
            raise DatasetError(ms, f"no person has at least {WANG_MIN_FRAMES} frames in both cameras (wang protocol)")
        for folder in (root, base.parent):
            if (folder / SPLITS_JSON).is_file():
                split_file = folder / SPLITS_JSON
                break
        if split_file is not None:
            person_splits = read_splits_json(split_file, {folders.persons[0][p]: p for p in chosen})
        else:
            person_splits = random_splits(chosen, NUM_RANDOM_SPLITS, SPLIT_SEED, test_first=True)
            notices.append(
                f"no {SPLITS_JSON}; using {NUM_RANDOM_SPLITS} random 50/50 person splits (seed {SPLIT_SEED})"
            )
    else:
        person_splits = random_splits(chosen, NUM_RANDOM_SPLITS, SPLIT_SEED, test_first=False)
        notices.append(
            f"ran protocol: {NUM_RANDOM_SPLITS} random {len(chosen) - len(chosen) // 2}/{len(chosen) // 2} "
            f"person splits (seed {SPLIT_SEED}), as RCN/RAN"
        )

    tracklets, tracks_of = folders.tracklets(chosen)
    return VideoDataset(
        name="prid2011",
        root=root,
        protocol=protocol,
        tracklets=tracklets,
        splits=two_camera_splits(
            person_splits,
            tracks_of,
            source=split_file or ms,
            fix=f"the random 50/50 splits need at least 2 persons seen by both cameras, there are {len(chosen)}",
        ),
        protocols=Prid2011Reader.protocols,
        eval_rule="market1501",
        fingerprint=fingerprint(
            "prid2011", protocol, ((t.key, len(t.frames)) for t in tracklets), [split_file] if split_file else []
        ),
        notices=notices,
    )


@register_reader
class Prid2011Reader:
    """PRID-2011 multi-shot: ``prid_2011/multi_shot/cam_{a,b}/person_NNNN/NNNN.png``."""

    name = "prid2011"
    protocols = ("ran", "wang")
    description = "prid_2011/multi_shot/cam_a|cam_b/person_NNNN/NNNN.png (optionally splits_prid2011.json)"
    priority = 0

    def detect(self, root: Path) -> bool:
        """True if ``root`` (or ``root/prid_2011``) has ``multi_shot/cam_a`` or ``multi_shot/cam_b``."""
        return find_base(Path(root)) is not None

    def open(self, root: Path, protocol: str, workspace: Workspace | None) -> VideoDataset:
        """Index the dataset under ``protocol``; ``workspace`` is unused."""
        check_protocol(self, protocol)
        return open_prid2011(Path(root), protocol)
