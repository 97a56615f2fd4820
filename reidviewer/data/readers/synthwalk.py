"""SynthWalk reader: a real dataset's layout plus ``synthwalk.json`` with per-frame occlusion truth.

The frames and splits are read by the reader of the layout the set was written in
(iLIDS-VID for the demo, the folder reader, or MARS: the same code path as the real data);
this reader only recognises the sidecar first (higher priority) and attaches the ground-truth
occlusion ratio of every frame. It does not import the generator (no OpenCV at import).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from reidviewer.data.readers._common import check_protocol, skipped_notice
from reidviewer.data.registry import get_reader, register_reader
from reidviewer.errors import DatasetError

if TYPE_CHECKING:
    from reidviewer.data.dataset import VideoDataset
    from reidviewer.workspace import Workspace

#: The sidecar the generator writes last (``reidviewer.data.synthwalk.SIDECAR``).
SIDECAR = "synthwalk.json"
#: The reader of each layout the generator writes (``reidviewer.data.synthwalk_layouts``).
LAYOUT_READERS = {"ilidsvid": "ilidsvid", "folder": "folder", "mars": "mars"}


def load_sidecar(root: Path) -> tuple[dict[str, Any], bytes]:
    """The parsed sidecar of a SynthWalk folder and its raw bytes.

    Raises:
        DatasetError: naming ``synthwalk.json`` if it is unreadable or not a SynthWalk sidecar.
    """
    path = root / SIDECAR
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise DatasetError(path, f"cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(path, f"is not valid JSON ({exc}); regenerate with 'reidviewer synth'") from None
    if not isinstance(data, dict) or data.get("format") != "synthwalk" or not isinstance(data.get("tracklets"), dict):
        raise DatasetError(path, "is not a SynthWalk sidecar (needs \"format\": \"synthwalk\" and \"tracklets\")")
    return data, raw


@register_reader
class SynthWalkReader:
    """SynthWalk: a generated iLIDS-VID-layout set with ``synthwalk.json`` (occlusion truth)."""

    name = "synthwalk"
    #: ``standard`` is the default protocol of the layout's reader; MARS-layout sets also take
    #: MARS's ``torchreid`` and ``official``.
    protocols = ("standard", "torchreid", "official")
    description = ("a SynthWalk set: a real dataset's layout plus synthwalk.json "
                   "(make one with 'reidviewer synth OUT')")
    priority = 10

    def detect(self, root: Path) -> bool:
        """True if ``root`` holds ``synthwalk.json``."""
        return (Path(root) / SIDECAR).is_file()

    def open(self, root: Path, protocol: str, workspace: Workspace | None) -> VideoDataset:
        """Open with the iLIDS-VID reader and attach ``occlusion`` (float32 ratio per frame).

        A tracklet whose frame count no longer matches the sidecar (files changed after
        generation) keeps no occlusion and is named in a notice.

        Raises:
            DatasetError: naming the file at fault.
        """
        check_protocol(self, protocol)
        root = Path(root)
        data, raw = load_sidecar(root)
        layout = data.get("layout", "ilidsvid")
        if layout not in LAYOUT_READERS:
            raise DatasetError(root / SIDECAR, f"unknown SynthWalk layout {layout!r} "
                                               f"(known: {', '.join(LAYOUT_READERS)})")
        inner = get_reader(LAYOUT_READERS[layout])
        inner_protocol = inner.protocols[0] if protocol == "standard" else protocol
        check_protocol(inner, inner_protocol)
        ds = inner.open(root, inner_protocol, workspace)
        path = root / SIDECAR
        entries = data["tracklets"]
        occlusion: dict[str, np.ndarray] = {}
        mismatched: list[str] = []
        for t in ds.tracklets:
            entry = entries.get(t.key)
            if not isinstance(entry, dict) or not isinstance(entry.get("occlusion"), list):
                mismatched.append(t.key)
                continue
            try:
                ratios = np.asarray(entry["occlusion"], dtype=np.float32)
            except (TypeError, ValueError):
                raise DatasetError(path, f"occlusion of {t.key} is not a list of numbers") from None
            if ratios.ndim != 1 or not np.all(np.isfinite(ratios)) or ratios.min(initial=0) < 0 or ratios.max(initial=0) > 1:
                raise DatasetError(path, f"occlusion of {t.key} must be numbers in [0, 1]")
            if len(ratios) != len(t.frames):
                mismatched.append(t.key)
                continue
            occlusion[t.key] = ratios
        notices = list(ds.notices)
        if mismatched:
            notices.append(skipped_notice(
                len(mismatched), "tracklet(s) whose frames do not match synthwalk.json (no occlusion truth)",
                mismatched))
        fp = hashlib.sha1(f"synthwalk\0{ds.fingerprint}\n".encode() + raw).hexdigest()[:16]
        protocols = ("standard",) if layout != "mars" else ("standard",) + inner.protocols
        return dataclasses.replace(ds, name=self.name, protocol=protocol, protocols=protocols,
                                   fingerprint=fp, notices=notices, occlusion=occlusion)
