"""RCN's 16-view test-time augmentation: distances of the 16 crops and flips, summed."""
from __future__ import annotations

import numpy as np

from reidviewer.data.registry import open_dataset
from reidviewer.data.transforms import tta_params
from reidviewer.engine.evaluate import EvalSettings, compute_results, extract
from reidviewer.model.checkpoint import load_checkpoint


def test_tta_ranks_by_the_sum_of_the_sixteen_views_distances(synth_root, random_checkpoint, workspace):
    ds = open_dataset(synth_root, workspace=workspace)
    plain = compute_results(ds, 0, random_checkpoint, workspace, device="cpu")
    tta = compute_results(ds, 0, random_checkpoint, workspace, EvalSettings(tta=True), device="cpu")
    sp = ds.split(0)
    model, _, _ = load_checkpoint(random_checkpoint)
    model.eval()
    needed = np.unique(np.concatenate([sp.query, sp.gallery]))
    row = {int(t): i for i, t in enumerate(needed)}
    expected = 0.0
    for crop in tta_params():
        f, _ = extract(ds, needed, model, workspace, crop=crop)
        q, g = f[[row[int(i)] for i in sp.query]], f[[row[int(i)] for i in sp.gallery]]
        expected = expected + np.linalg.norm(q[:, None, :] - g[None, :, :], axis=-1)
    assert len(tta_params()) == 16
    np.testing.assert_allclose(tta.distmat, expected, rtol=1e-4, atol=1e-3)
    assert not np.allclose(tta.distmat, plain.distmat)  # a different ranking input, not the centre crop
    # A separate results file (the settings are part of its key), the centre view's attention.
    assert tta.settings["tta"] is True and plain.settings["tta"] is False
    q0 = int(sp.query[0])
    np.testing.assert_allclose(tta.attention(q0), plain.attention(q0), rtol=1e-5, atol=1e-6)
