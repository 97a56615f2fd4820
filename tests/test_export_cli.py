"""``reidviewer export``: headless figures from a results file (or a checkpoint) via the real CLI."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import pytest

from figures_fixtures import make_results, make_saved, pdf_font_report, svg_texts
from reidviewer.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return make_saved(tmp_path_factory.mktemp("cli"), "ilids-split0.npz")


def run(*argv: str) -> int:
    return main([str(a) for a in argv])


@pytest.mark.parametrize("kind", ["ranking", "failures", "attention", "cmc"])
def test_each_kind_from_a_results_file(saved, tmp_path, capsys, kind):
    dataset, results, path, ws = saved
    out = tmp_path / f"{kind}.png"
    rc = run("export", kind, "--results", path, "--root", dataset.root, "--workspace", ws.root,
             "--out", out, "--dpi", 100, "--size", "double")
    assert rc == 0, capsys.readouterr().err
    assert f"wrote {out}" in capsys.readouterr().out
    assert cv2.imread(str(out)).shape[1] == 690


def test_queries_by_person_name_and_row(saved, tmp_path, capsys):
    dataset, results, path, ws = saved
    names = [dataset.tracklets[int(results.query_indices[r])].person for r in (3, 5)]
    out = tmp_path / "r.svg"
    rc = run("export", "ranking", "--results", path, "--workspace", ws.root, "--queries", names[0], "5",
             "--top-k", 2, "--out", out)
    assert rc == 0, capsys.readouterr().err
    texts = " ".join(svg_texts(out))
    assert names[0] in texts and names[1] in texts
    others = [dataset.tracklets[int(results.query_indices[r])].person for r in (0, 1, 2, 4)]
    assert not any(p in texts for p in others)


def test_dataset_found_from_the_results_file_and_default_output(saved, capsys):
    dataset, results, path, ws = saved
    rc = run("export", "failures", "--results", path, "--workspace", ws.root, "--count", 1, "--frames", 2)
    assert rc == 0, capsys.readouterr().err
    out = ws.figures_dir / f"failures-{dataset.name}-split0.pdf"
    assert f"wrote {out}" in capsys.readouterr().out
    fonts = pdf_font_report(out.read_bytes())
    assert fonts["fontfile2"] and not fonts["type3"]


def test_cmc_overlays_results_files_with_labels(saved, tmp_path, capsys):
    dataset, results, path, ws = saved
    other = make_results(dataset, failures=0, seed=3).save(tmp_path / "other.npz")
    out = tmp_path / "cmc.svg"
    rc = run("export", "cmc", "--results", path, "--results", other, "--label", "RAN", "--label", "oracle",
             "--out", out, "--workspace", ws.root)
    assert rc == 0, capsys.readouterr().err
    texts = svg_texts(out)
    assert "RAN (R1 66.7%)" in texts and "oracle (R1 100.0%)" in texts


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--queries", "nobody"], "no query tracklet of person 'nobody'"),
        (["--queries", "42"], "query row 42 is out of range"),
        (["--out", "fig.jpg"], "unsupported figure format"),
        (["--size", "huge"], "is not single, double"),
        (["--dpi", "5"], "out of range"),
    ],
)
def test_bad_input_is_one_clear_line(saved, tmp_path, capsys, extra, message):
    _, _, path, ws = saved
    rc = run("export", "ranking", "--results", path, "--workspace", ws.root, *extra)
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err


def test_needs_results_or_checkpoint(saved, capsys):
    _, _, path, ws = saved
    assert run("export", "ranking", "--workspace", ws.root) == 2
    assert "--checkpoint FILE" in capsys.readouterr().err
    assert run("export", "ranking", "--results", path, "--results", path, "--workspace", ws.root) == 2
    assert "only cmc overlays" in capsys.readouterr().err
    bad = Path(ws.root) / "broken.npz"
    bad.write_bytes(b"not a zip")
    assert run("export", "ranking", "--results", bad, "--workspace", ws.root) == 2
    assert "broken.npz" in capsys.readouterr().err


ENGINE_READY = all(
    importlib.util.find_spec(m) is not None
    for m in ("reidviewer.model.checkpoint", "reidviewer.model.inference", "reidviewer.data.cache")
)


@pytest.mark.skipif(not ENGINE_READY, reason="the evaluation engine (model.checkpoint, model.inference, "
                    "data.cache) that compute_results needs is not in the tree yet")
def test_from_root_and_checkpoint(synth_root, random_checkpoint, tmp_path, capsys):
    ws = tmp_path / "ws"
    out = tmp_path / "ranking.png"
    rc = run("export", "ranking", "--root", synth_root, "--checkpoint", random_checkpoint, "--workspace", ws,
             "--out", out, "--dpi", 100, "--device", "cpu")
    assert rc == 0, capsys.readouterr().err
    assert cv2.imread(str(out)).shape[1] == 330
    # The results were cached in the workspace: a second figure reuses them.
    cached = list((ws / "results").glob("*.npz"))
    assert len(cached) == 1
    rc = run("export", "attention", "--root", synth_root, "--checkpoint", random_checkpoint, "--workspace", ws,
             "--out", tmp_path / "a.svg", "--compare", "top1")
    assert rc == 0, capsys.readouterr().err
    assert list((ws / "results").glob("*.npz")) == cached
