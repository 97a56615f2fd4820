"""Fixtures for the figure tests: a tiny iLIDS-VID-layout dataset and a results file made from
seeded features whose ranking is known in advance (real files, no mocks)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from fixtures_datasets import make_ilidsvid
from reidviewer.data.registry import open_dataset
from reidviewer.engine.results import Results, build_results

SVG_NS = "{http://www.w3.org/2000/svg}"


def make_dataset(root: Path, workspace, persons: int = 12, lengths: int = 6):
    """A 12-person iLIDS-VID set (6 test persons in split 0), opened with the real reader."""
    make_ilidsvid(root, persons=range(1, persons + 1), lengths=lengths)
    return open_dataset(root, "auto", None, workspace)


def make_results(dataset, failures: int = 2, attention: bool = True, seed: int = 0) -> Results:
    """Results on split 0 where the first ``failures`` queries rank a wrong person first and
    their true match second, and every other query ranks its true match first.

    Each person is a one-hot direction (plus a little seeded noise); a failing query points
    mostly at the next person. Attention traces: seeded random ``(4, T)`` in (0.1, 0.9), like
    RAN's per-frame sigmoid.
    """
    rng = np.random.default_rng(seed)
    sp = dataset.split(0)
    tr = dataset.tracklets
    pids = sorted({tr[i].pid for i in sp.query})
    dim = len(pids) + 4
    axis = {p: i for i, p in enumerate(pids)}

    def onehot(p: int) -> np.ndarray:
        v = np.zeros(dim)
        v[axis[p]] = 1.0
        return v

    qf = []
    for row, i in enumerate(sp.query):
        p = tr[i].pid
        if row < failures:
            other = pids[(axis[p] + 1) % len(pids)]
            qf.append(0.9 * onehot(other) + 0.45 * onehot(p))
        else:
            qf.append(onehot(p) + 0.05 * rng.normal(size=dim))
    gf = [onehot(tr[i].pid) + 0.05 * rng.normal(size=dim) for i in sp.gallery]
    att = None
    if attention:
        att = {}
        for i in np.concatenate([sp.query, sp.gallery]):
            att[int(i)] = 0.1 + 0.8 * rng.random((4, len(tr[i])))
    return build_results(
        np.array(qf), np.array(gf),
        [tr[i].pid for i in sp.query], [tr[i].pid for i in sp.gallery],
        [tr[i].camid for i in sp.query], [tr[i].camid for i in sp.gallery],
        query_indices=sp.query, gallery_indices=sp.gallery,
        query_keys=[tr[i].key for i in sp.query], gallery_keys=[tr[i].key for i in sp.gallery],
        attention=att, dataset_name=dataset.name, dataset_root=dataset.root,
        dataset_fingerprint=dataset.fingerprint, protocol=dataset.protocol, split=0,
        settings={"checkpoint": "/models/ran-test.safetensors"},
    )


def make_saved(base: Path, results_name: str):
    """``make_dataset`` and ``make_results`` in a workspace under ``base``, the results saved in
    its results folder as ``results_name``: ``(dataset, results, results file, workspace)``."""
    from reidviewer.workspace import Workspace

    ws = Workspace(base / "ws")
    dataset = make_dataset(base / "ilids", ws)
    results = make_results(dataset)
    return dataset, results, results.save(ws.results_dir / results_name), ws


def svg_texts(path: Path) -> list[str]:
    """The text of every ``<text>`` element of an SVG (parsed as XML: it must be valid)."""
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


def svg_normalised(path: Path) -> str:
    """An SVG's text with the volatile parts (dates, generated ids) blanked, for comparing drawings."""
    s = Path(path).read_text(encoding="utf-8")
    s = re.sub(r"<dc:date>.*?</dc:date>", "", s, flags=re.S)
    s = re.sub(r'id="[^"]*"', 'id=""', s)
    s = re.sub(r'(xlink:href|href)="#[^"]*"', r'\1="#"', s)
    s = re.sub(r"url\(#[^)]*\)", "url(#)", s)
    return s


def pdf_font_report(data: bytes) -> dict[str, object]:
    """What a PDF says about its fonts: embedded TrueType programs, font subtypes, font names."""
    return {
        "fontfile2": data.count(b"/FontFile2"),
        "subtypes": set(re.findall(rb"/Subtype\s*/(\w+)", data)),
        "type3": b"/Type3" in data,
        "fontfile3": b"/FontFile3" in data,
        "basefonts": set(re.findall(rb"/BaseFont\s*/([\w+-]+)", data)),
    }
