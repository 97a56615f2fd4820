"""``reidviewer audit``: attention against SynthWalk's occlusion and the store's flags, end to end."""
from __future__ import annotations

import json

from reidviewer.cli import main


def audit(root, checkpoint, workspace, out) -> dict:
    """``reidviewer audit`` on ``root`` with ``checkpoint``, succeeding; its JSON report."""
    rc = main(["audit", "--root", str(root), "--checkpoint", str(checkpoint),
               "--workspace", str(workspace.root), "--json", str(out)])
    assert rc == 0
    return json.loads(out.read_text())


def test_audit_writes_one_auroc_per_iteration(synth_root, random_checkpoint, shared_workspace, tmp_path, capsys):
    report = audit(synth_root, random_checkpoint, shared_workspace, tmp_path / "audit.json")
    assert report["source"] == "occlusion"
    assert len(report["auroc"]) == 4  # K = 3: iterations 0..3
    assert all(a is None or 0.0 <= a <= 1.0 for a in report["auroc"])
    assert 0 < report["flagged"] < report["frames"]
    assert report["tracklets"] == len(report["per_tracklet"]) > 0
    printed = capsys.readouterr().out
    assert "k=3" in printed and "overall" in printed


def test_audit_uses_frames_flagged_in_the_store(synth_root, random_checkpoint, workspace, tmp_path):
    from reidviewer.annotations import AnnotationStore, FlagFrames
    from reidviewer.data.registry import open_dataset

    dataset = open_dataset(synth_root, "synthwalk", None, workspace)
    t = dataset.tracklets[int(dataset.split(0).query[0])]  # a tracklet the evaluation traces
    with AnnotationStore.for_dataset(workspace, dataset) as store:
        store.apply(FlagFrames(t.key, (0, 1, 2), "occluded"))
        version = store.version()
    report = audit(synth_root, random_checkpoint, workspace, tmp_path / "audit.json")
    assert report["source"] == "annotations"
    assert report["annotation_version"] == version
    assert report["flagged"] == 3
    assert report["frames"] == min(len(t.frames), 128)
    assert list(report["per_tracklet"]) == [t.key]
    assert len(report["auroc"]) == 4
    assert "occlusion" in report["sources"]
