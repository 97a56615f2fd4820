"""Comparing two models (issue 18): counts, McNemar, bootstrap, ROC, sorts, CLI JSON and the figure."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from reidviewer.engine.compare import Comparison, ComparisonError, compute_roc, mcnemar_exact
from reidviewer.engine.results import build_results

# Per query: (A right at rank 1, B right at rank 1). 7 fixed, 2 broken, 10 both right, 3 both wrong.
PATTERN = [(False, True)] * 7 + [(True, False)] * 2 + [(True, True)] * 10 + [(False, False)] * 3


def hand_made(hits: list[bool], n_gallery_extra: int = 0, **kw):
    """Query i (pid i, camera 0) against gallery item i (pid i, camera 1) and distractors:
    a hit ranks its true match first (AP 1), a miss second behind the next person's (AP 0.5)."""
    n = len(hits)
    ng = n + n_gallery_extra
    d = np.ones((n, ng), dtype=np.float32)
    for i, hit in enumerate(hits):
        if hit:
            d[i, i] = 0.1
        else:
            d[i, i] = 0.5
            d[i, (i + 1) % n] = 0.2
    gp = np.concatenate([np.arange(n), np.arange(1000, 1000 + n_gallery_extra)])
    return build_results(np.zeros((n, 0)), np.zeros((ng, 0)), np.arange(n), gp, np.zeros(n), np.ones(ng),
                         distances=d, query_keys=[f"q{i}" for i in range(n)],
                         gallery_keys=[f"g{i}" for i in range(ng)], **kw)


@pytest.fixture(scope="module")
def pair():
    a = hand_made([x for x, _ in PATTERN], settings={"checkpoint": "/m/model-a.safetensors"})
    b = hand_made([y for _, y in PATTERN], settings={"checkpoint": "/m/model-b.safetensors"})
    return Comparison(a, b)


def binom_two_sided(k: int, n: int) -> float:
    """Independent computation: twice the smaller binomial tail at p = 1/2, with exact integers."""
    k = min(k, n - k)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def test_counts_and_mcnemar_match_an_independent_computation(pair):
    assert pair.name_a == "model-a" and pair.name_b == "model-b"
    assert (pair.fixed, pair.broken, pair.both_right, pair.both_wrong) == (7, 2, 10, 3)
    assert pair.num_queries == len(PATTERN)
    assert pair.mcnemar_p == pytest.approx(binom_two_sided(2, 9), rel=1e-12)
    assert pair.mcnemar_p == pytest.approx(92 / 512)
    assert "fixed 7, broke 2" in pair.mcnemar_text()


@pytest.mark.parametrize("fixed,broken", [(0, 0), (0, 1), (5, 5), (3, 17), (491, 153), (1000, 1040)])
def test_mcnemar_exact_against_comb_and_scipy(fixed, broken):
    expected = 1.0 if fixed + broken == 0 else binom_two_sided(fixed, fixed + broken)
    assert mcnemar_exact(fixed, broken) == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert mcnemar_exact(fixed, broken) == mcnemar_exact(broken, fixed)
    stats = pytest.importorskip("scipy.stats")
    if fixed + broken:
        assert mcnemar_exact(fixed, broken) == pytest.approx(stats.binomtest(fixed, fixed + broken).pvalue, rel=1e-9)


def test_per_query_delta_and_first_ranks(pair):
    for i, (ha, hb) in enumerate(PATTERN):
        assert pair.first_rank_a[i] == (1 if ha else 2)
        assert pair.first_rank_b[i] == (1 if hb else 2)
        assert pair.delta_ap[i] == pytest.approx((1.0 if hb else 0.5) - (1.0 if ha else 0.5))
    assert list(pair.fixed_rows()) == list(range(7))
    assert list(pair.broken_rows()) == [7, 8]
    assert pair.delta_map == pytest.approx((7 * 0.5 - 2 * 0.5) / len(PATTERN))


def test_sorts(pair):
    fixed_first = pair.order("fixed")
    assert set(fixed_first[:7]) == set(range(7))
    broken_first = pair.order("broken")
    assert list(broken_first[:2]) == [7, 8]
    delta = pair.order("delta")
    mags = np.abs(pair.delta_ap[delta])
    assert np.all(np.diff(mags) <= 0)
    pos = pair.positions("broken")
    assert pos[7] == 0 and pos[8] == 1
    with pytest.raises(ValueError):
        pair.order("nonsense")


def test_swapping_exchanges_fixed_and_broken(pair):
    s = pair.swapped()
    assert (s.fixed, s.broken) == (pair.broken, pair.fixed)
    assert s.name_a == pair.name_b
    assert s.mcnemar_p == pytest.approx(pair.mcnemar_p)


def test_bootstrap_interval_is_seeded_and_covers_the_estimate(pair):
    lo, hi = pair.bootstrap_delta_map()
    assert lo <= pair.delta_map <= hi
    assert (lo, hi) == Comparison(pair.a, pair.b).bootstrap_delta_map()
    same = Comparison(pair.a, pair.a, "x", "y")
    assert same.bootstrap_delta_map() == (0.0, 0.0)
    assert "95% CI" in pair.ci_text()


def test_results_of_other_queries_are_refused_naming_both(pair):
    other = hand_made([True] * len(PATTERN), n_gallery_extra=2)
    with pytest.raises(ComparisonError, match=r"model-a.*other.*gallery|gallery"):
        Comparison(pair.a, other, "model-a", "other")
    shorter = hand_made([True] * 5)
    with pytest.raises(ComparisonError) as err:
        Comparison(pair.a, shorter, "model-a", "short")
    assert "model-a" in str(err.value) and "short" in str(err.value)


@pytest.mark.parametrize("rule", ["market1501", "mars_official"])
def test_roc_matches_brute_force(rule):
    rng = np.random.default_rng(0)
    nq, ng = 40, 300
    qp, gp = rng.integers(0, 12, nq), rng.integers(-1, 12, ng)
    qc, gc = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    r = build_results(rng.normal(size=(nq, 6)), rng.normal(size=(ng, 6)), qp, gp, qc, gc, eval_rule=rule)
    keep = gp != -1 if rule == "mars_official" else np.ones(ng, bool)
    neg = np.sort(r.distmat[(gp[None] != qp[:, None]) & keep[None]])
    pos = r.match_distances
    roc = compute_roc(r)
    assert roc.negatives == len(neg) and roc.positives == len(pos)
    for f in (1e-3, 1e-2):
        thr = neg[int(np.floor(f * len(neg)))]
        assert roc.tpr_at[f] == pytest.approx(np.mean(pos < thr))
    assert np.all(np.diff(roc.fpr) >= 0) and np.all(np.diff(roc.tpr) >= 0)


def test_summary_has_the_documented_fields(pair):
    s = pair.summary()
    for key in ("a", "b", "num_queries", "fixed", "broken", "mcnemar_p", "fixed_queries", "broken_queries"):
        assert key in s
    assert s["a"]["name"] == "model-a" and "mAP" in s["a"] and "mINP" in s["a"] and "rank1" in s["b"]
    assert s["fixed_queries"] == [f"q{i}" for i in range(7)]
    assert s["broken_queries"] == ["q7", "q8"]
    assert set(s["a"]["tpr_at_fpr"]) == {"0.001", "0.01"}
    json.dumps(s)


# ---------------------------------------------------------------------- CLI


def test_cli_compare_two_results_files_writes_json(pair, tmp_path, capsys):
    from reidviewer.cli import main

    pa, pb = pair.a.save(tmp_path / "a.npz"), pair.b.save(tmp_path / "b.npz")
    out = tmp_path / "cmp.json"
    rc = main(["compare", "--results", str(pa), "--results", str(pb), "--json", str(out),
               "--workspace", str(tmp_path / "ws")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "McNemar" in text and "fixed 7, broke 2" in text and "ΔmAP" in text
    data = json.loads(out.read_text())
    assert data["fixed"] == 7 and data["broken"] == 2 and data["num_queries"] == len(PATTERN)
    assert data["mcnemar_p"] == pytest.approx(92 / 512)
    assert data["a"]["name"] == "model-a" and data["b"]["name"] == "model-b"
    assert data["broken_queries"] == ["q7", "q8"]


def test_cli_compare_mismatch_is_one_line_exit_2(pair, tmp_path, capsys):
    from reidviewer.cli import main

    pa = pair.a.save(tmp_path / "a.npz")
    pc = hand_made([True] * 5).save(tmp_path / "c.npz")
    rc = main(["compare", "--results", str(pa), "--results", str(pc), "--workspace", str(tmp_path / "ws")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "cannot compare" in err


def test_cli_compare_two_checkpoints_on_a_dataset(synth_root, random_checkpoint, shared_workspace, tmp_path, capsys):
    import torch

    from reidviewer.cli import main
    from reidviewer.model.checkpoint import save_checkpoint
    from reidviewer.model.config import ModelConfig
    from reidviewer.model.network import build_model

    torch.manual_seed(1)
    config = ModelConfig(head="mean", num_classes=3)
    mean_ck = tmp_path / "mean-pool.safetensors"
    save_checkpoint(mean_ck, build_model(config), config, {"note": "random"})
    out = tmp_path / "c.json"
    rc = main(["compare", "--root", str(synth_root), "--checkpoint", str(random_checkpoint),
               "--checkpoint", str(mean_ck), "--workspace", str(shared_workspace.root), "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["a"]["name"] == "random-ran" and data["b"]["name"] == "mean-pool"
    assert data["fixed"] == len(data["fixed_queries"]) and data["broken"] == len(data["broken_queries"])
    assert 0.0 <= data["mcnemar_p"] <= 1.0
    # Identifiers are the query tracklets' keys.
    assert all(isinstance(k, str) for k in data["fixed_queries"] + data["broken_queries"])


# ---------------------------------------------------------------------- figure


@pytest.fixture(scope="module")
def figure_data(tmp_path_factory):
    from figures_fixtures import make_dataset, make_results

    from reidviewer.workspace import Workspace

    base = tmp_path_factory.mktemp("cmpfig")
    ws = Workspace(base / "ws")
    dataset = make_dataset(base / "ilids", ws)
    a = make_results(dataset, failures=3, seed=0)
    b = make_results(dataset, failures=1, seed=1)
    return dataset, a, b, ws


@pytest.mark.parametrize("suffix", [".pdf", ".png"])
def test_export_compare_figure(figure_data, tmp_path, suffix):
    from reidviewer.figures import FigureOptions, export_figure

    dataset, a, b, _ = figure_data
    path = export_figure("compare", dataset, [a, b], tmp_path / f"cmp{suffix}",
                         FigureOptions(size="double", dpi=100, labels=("RAN", "mean")))
    head = path.read_bytes()[:8]
    assert head.startswith(b"%PDF") if suffix == ".pdf" else head.startswith(b"\x89PNG")
    if suffix == ".png":
        import cv2

        img = cv2.imread(str(path))
        assert img.shape[1] == 690  # 6.9 in at 100 dpi


def test_export_compare_from_the_cli(figure_data, tmp_path, capsys):
    from reidviewer.cli import main
    from reidviewer.figures import FigureError
    from reidviewer.figures.export import build_figure
    from reidviewer.figures.options import FigureOptions

    dataset, a, b, ws = figure_data
    pa, pb = a.save(tmp_path / "a.npz"), b.save(tmp_path / "b.npz")
    out = tmp_path / "fig.pdf"
    rc = main(["export", "compare", "--results", str(pa), "--results", str(pb), "--root", str(dataset.root),
               "--out", str(out), "--workspace", str(ws.root)])
    assert rc == 0 and out.read_bytes().startswith(b"%PDF")
    rc = main(["export", "compare", "--results", str(pa), "--root", str(dataset.root), "--out", str(out),
               "--workspace", str(ws.root)])
    assert rc == 2 and "two models" in capsys.readouterr().err
    with pytest.raises(FigureError):
        build_figure("compare", dataset, [a], FigureOptions())
