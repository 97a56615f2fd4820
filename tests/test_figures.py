"""Figure builders: every kind as PDF (embedded TrueType), SVG (editable text) and PNG (exact size)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from figures_fixtures import make_dataset, make_results, pdf_font_report, svg_normalised, svg_texts
from reidviewer.figures import FigureError, FigureOptions, export_figure, figure_size, parse_queries, render_png
from reidviewer.figures.frames import sample_frames
from reidviewer.workspace import Workspace

KIND_LABELS = {
    "ranking": ["Query", "Rank 1", "Rank 2"],
    "failures": ["Query", "Wrong rank-1", "True match"],
    "attention": ["α⁽⁰⁾", "α⁽³⁾", "frame 1"],
    "cmc": ["Rank", "Matching rate (%)", "ran-test (R1 66.7%)"],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("figs")
    ws = Workspace(base / "ws")
    dataset = make_dataset(base / "ilids", ws)
    return dataset, make_results(dataset), ws


@pytest.mark.parametrize("kind", list(KIND_LABELS))
def test_each_kind_writes_pdf_svg_and_png(data, tmp_path, kind):
    dataset, results, _ = data
    opts = FigureOptions(size="single", dpi=100, compare="top1")

    pdf = export_figure(kind, dataset, results, tmp_path / f"{kind}.pdf", opts)
    raw = pdf.read_bytes()
    assert raw.startswith(b"%PDF")
    fonts = pdf_font_report(raw)
    # Embedded TrueType: matplotlib writes fonttype 42 as a Type0 font whose descendant is a
    # CIDFontType2 (TrueType outlines) with the program in /FontFile2; never Type 3 bitmaps.
    assert fonts["fontfile2"] >= 1
    assert b"CIDFontType2" in fonts["subtypes"] or b"TrueType" in fonts["subtypes"]
    assert not fonts["type3"] and not fonts["fontfile3"]
    assert any(name.endswith(b"DejaVuSans") for name in fonts["basefonts"])

    svg = export_figure(kind, dataset, results, tmp_path / f"{kind}.svg", opts)
    texts = svg_texts(svg)
    for label in KIND_LABELS[kind]:
        assert label in texts, f"{label!r} not among the SVG's <text> elements: {texts[:20]}"
    assert "<path" in svg.read_text() and "glyph" not in svg.read_text()  # text stays text

    png = export_figure(kind, dataset, results, tmp_path / f"{kind}.png", opts)
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] == 330  # 3.3 in x 100 dpi


@pytest.mark.parametrize("kind", list(KIND_LABELS))
def test_png_has_the_requested_pixel_size(data, tmp_path, kind):
    dataset, results, _ = data
    path = export_figure(kind, dataset, results, tmp_path / "f.png", FigureOptions(size="4x5", dpi=120))
    assert cv2.imread(str(path)).shape[:2] == (600, 480)
    path = export_figure(kind, dataset, results, tmp_path / "g.png", FigureOptions(size="double", dpi=50))
    assert cv2.imread(str(path)).shape[1] == 345


def test_ranking_boxes_true_matches_green_solid_and_false_red_dashed(data, tmp_path):
    dataset, results, _ = data
    opts = FigureOptions(top_k=3, queries=(0, 2, 3))
    svg = export_figure("ranking", dataset, results, tmp_path / "r.svg", opts).read_text()
    lines = svg.splitlines()
    green = [s for s in lines if "stroke: #1a9641" in s]
    red = [s for s in lines if "stroke: #d7302a" in s]
    # Query 0 fails (true match at rank 2); queries 2 and 3 are right at rank 1: 3 true, 6 false.
    assert len(green) == 3 and len(red) == 6
    assert all("stroke-dasharray" not in s for s in green)
    assert all("stroke-dasharray" in s for s in red)
    texts = svg_texts(tmp_path / "r.svg")
    assert texts.count("✓") == 3 and texts.count("✗") == 6  # survives greyscale printing
    d = results.ranked(0, 1)[1][0]
    assert f"{d:.2f}" in texts


def test_ranking_adds_the_true_match_below_the_top_k(data, tmp_path):
    dataset, results, _ = data
    svg = export_figure("ranking", dataset, results, tmp_path / "r.svg", FigureOptions(top_k=1, queries=(0, 2)))
    texts = svg_texts(svg)
    assert "True match" in texts and "rank 2" in texts and "in top 1" in " ".join(texts).replace("\n", " ")
    plain = export_figure("ranking", dataset, results, tmp_path / "p.svg",
                          FigureOptions(top_k=1, queries=(0, 2), show_true_match=False, show_distances=False))
    assert "True match" not in svg_texts(plain)


def test_failures_show_wrong_rank1_and_true_match_rank(data, tmp_path):
    dataset, results, _ = data
    svg = export_figure("failures", dataset, results, tmp_path / "f.svg", FigureOptions(count=5))
    texts = svg_texts(svg)
    # Two failures exist (worst first); both true matches are at rank 2.
    assert sum(t.startswith("rank 2") for t in texts) == 2
    probes = [dataset.tracklets[int(results.query_indices[r])].person for r in results.failures()]
    assert all(any(t.startswith(p) for t in texts) for p in probes)
    with pytest.raises(FigureError, match="not a failure|none of the named"):
        export_figure("failures", dataset, results, tmp_path / "x.svg", FigureOptions(queries=(3,)))


def test_attention_strip_compares_two_tracklets(data, tmp_path):
    dataset, results, _ = data
    svg = export_figure("attention", dataset, results, tmp_path / "a.svg",
                        FigureOptions(queries=(0,), compare="match", frames=3))
    texts = svg_texts(svg)
    assert sum(t.startswith("Query ·") for t in texts) == 1
    assert any(t.startswith("Gallery · rank 2") for t in texts)
    assert texts.count("α⁽⁰⁾") == 2 and texts.count("α⁽³⁾") == 2
    assert "✓" in texts


def test_attention_needs_traces(data, tmp_path):
    dataset, _, _ = data
    bare = make_results(dataset, attention=False)
    with pytest.raises(FigureError, match="no attention"):
        export_figure("attention", dataset, bare, tmp_path / "a.pdf")


def test_cmc_overlays_several_results_with_rank1_in_legend(data, tmp_path):
    dataset, results, _ = data
    other = make_results(dataset, failures=0, seed=1)
    svg = export_figure("cmc", None, [results, other], tmp_path / "c.svg",
                        FigureOptions(labels=("RAN K=3", "mean")))
    texts = svg_texts(svg)
    assert "RAN K=3 (R1 66.7%)" in texts and "mean (R1 100.0%)" in texts


def test_bad_frame_becomes_a_grey_placeholder_with_a_note(tmp_path):
    ws = Workspace(tmp_path / "ws")
    dataset = make_dataset(tmp_path / "ilids", ws)
    results = make_results(dataset)
    probe = dataset.tracklets[int(results.query_indices[2])]
    for i in range(len(probe)):
        probe.frame_path(i).write_bytes(b"")  # every frame of the probe is now an empty file
    path = export_figure("ranking", dataset, results, tmp_path / "r.png", FigureOptions(queries=(2,), dpi=100))
    img = cv2.imread(str(path))
    assert img is not None
    texts = svg_texts(export_figure("ranking", dataset, results, tmp_path / "r.svg", FigureOptions(queries=(2,))))
    assert any("bad" in t for t in texts)


def test_results_of_another_dataset_are_refused(data, tmp_path):
    dataset, results, _ = data
    ws = Workspace(tmp_path / "ws")
    other = make_dataset(tmp_path / "other", ws, persons=4)
    with pytest.raises(FigureError, match="another dataset"):
        export_figure("ranking", other, results, tmp_path / "r.pdf")


def test_same_options_give_the_same_file(data, tmp_path):
    dataset, results, _ = data
    opts = FigureOptions(queries=(1,), compare="top1")
    a = export_figure("attention", dataset, results, tmp_path / "a.svg", opts)
    b = export_figure("attention", dataset, results, tmp_path / "b.svg", opts)
    assert a.read_bytes() == b.read_bytes()
    assert svg_normalised(a) == svg_normalised(b)
    png = render_png("attention", dataset, results, FigureOptions(queries=(1,), compare="top1", dpi=80))
    c = export_figure("attention", dataset, results, tmp_path / "c.png", FigureOptions(queries=(1,), compare="top1", dpi=80))
    assert np.array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.imread(str(c)))


def test_unsupported_format_and_bad_options(data, tmp_path):
    dataset, results, _ = data
    with pytest.raises(FigureError, match="unsupported figure format"):
        export_figure("ranking", dataset, results, tmp_path / "r.jpg")
    with pytest.raises(FigureError, match="too small"):
        export_figure("ranking", dataset, results, tmp_path / "r.png", FigureOptions(size="1x1", count=6, top_k=10))
    with pytest.raises(FigureError, match="out of range"):
        export_figure("ranking", dataset, results, tmp_path / "r.png", FigureOptions(queries=(99,)))
    with pytest.raises(FigureError, match="not one of"):
        export_figure("heatmap", dataset, results, tmp_path / "r.png")
    assert not list(tmp_path.glob("*"))  # nothing half-written


def test_sizes_and_queries_parse():
    assert figure_size("single") == (3.3, None)
    assert figure_size("double") == (6.9, None)
    assert figure_size("5x3") == (5.0, 3.0)
    assert figure_size("4.5") == (4.5, None)
    for bad in ("huge", "0x3", "50", "3x"):
        with pytest.raises(FigureError):
            figure_size(bad)
    assert sample_frames(10, 1) == [5]
    assert sample_frames(8, 4) == [1, 3, 5, 7]
    assert sample_frames(2, 4) == [0, 0, 1, 1]


def test_queries_by_row_or_person_name(data):
    dataset, results, _ = data
    person = dataset.tracklets[int(results.query_indices[3])].person
    assert parse_queries(["1,4", person], dataset, results) == (1, 4, 3)
    assert parse_queries("2 2", dataset, results) == (2,)
    with pytest.raises(FigureError, match="no query tracklet of person"):
        parse_queries(["nobody"], dataset, results)
    with pytest.raises(FigureError, match="out of range"):
        parse_queries(["6"], dataset, results)


def test_no_pyplot_no_qt_and_global_rcparams_untouched(data, tmp_path):
    dataset, results, _ = data
    code = (
        "import sys, matplotlib\n"
        "sys.path.insert(0, 'tests')\n"
        "keys = ['pdf.fonttype', 'svg.fonttype', 'font.family', 'font.size', 'svg.hashsalt', 'lines.linewidth']\n"
        "before = {k: matplotlib.rcParams[k] for k in keys}  # not 'backend': reading it imports pyplot\n"
        "from reidviewer.engine.results import Results\n"
        "from reidviewer.figures import export_figure\n"
        "r = Results.load(sys.argv[1])\n"
        "export_figure('cmc', None, r, sys.argv[2])\n"
        "bad = [m for m in sys.modules if m == 'matplotlib.pyplot' or m.startswith('PySide6')]\n"
        "changed = [k for k in keys if matplotlib.rcParams[k] != before[k]]\n"
        "print(bad, changed)\n"
    )
    saved = results.save(tmp_path / "r.npz")
    out = subprocess.run([sys.executable, "-c", code, str(saved), str(tmp_path / "c.pdf")], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[] []"
    assert (tmp_path / "c.pdf").stat().st_size > 1000


def test_attention_colour_scale_fixed_or_stretched(data, tmp_path):
    dataset, results, _ = data
    q = int(results.query_indices[2])
    fixed = svg_texts(export_figure("attention", dataset, results, tmp_path / "f.svg", FigureOptions(queries=(2,))))
    assert "attention α" in fixed and "0" in fixed and "1" in fixed
    stretched = svg_texts(export_figure("attention", dataset, results, tmp_path / "s.svg",
                                        FigureOptions(queries=(2,), attention_scale="stretch")))
    att = results.attention(q)
    assert "attention α  (stretched)" in stretched
    assert f"{att.min():.3f}" in stretched and f"{att.max():.3f}" in stretched
