"""``open_annotated`` and ``reidviewer evaluate`` on the corrected identities of a workspace's store."""
from __future__ import annotations

import json

from reidviewer.annotations import AnnotationStore, Merge
from reidviewer.annotations.apply import open_annotated
from reidviewer.cli import main
from reidviewer.data.registry import open_dataset


def test_no_store_or_an_empty_state_gives_the_dataset_itself(synth_root, workspace):
    dataset = open_dataset(synth_root, "synthwalk", None, workspace)
    assert open_annotated(dataset, workspace) == (dataset, None)
    with AnnotationStore.for_dataset(workspace, dataset) as store:
        pids = sorted({t.pid for t in dataset.tracklets})
        store.apply(Merge(keep=pids[0], absorb=pids[1]))
        view, version = open_annotated(dataset, workspace)
        assert version == store.version()
        assert {t.pid for t in view.tracklets} == set(pids) - {pids[1]}
        store.undo()
    assert open_annotated(dataset, workspace) == (dataset, None)  # every edit undone: nothing to apply


def test_evaluate_records_and_uses_the_annotation_version(synth_root, random_checkpoint, workspace, tmp_path):
    args = ["evaluate", "--root", str(synth_root), "--checkpoint", str(random_checkpoint),
            "--workspace", str(workspace.root), "--json"]
    assert main(args + [str(tmp_path / "a.json")]) == 0
    plain = json.loads((tmp_path / "a.json").read_text())
    assert plain["annotation_version"] is None

    dataset = open_dataset(synth_root, "synthwalk", None, workspace)
    q = dataset.tracklets[int(dataset.split(0).query[0])]
    others = sorted({dataset.tracklets[int(g)].pid for g in dataset.split(0).gallery} - {q.pid})
    with AnnotationStore.for_dataset(workspace, dataset) as store:
        # Every gallery identity becomes the first query's: its rank-1 must then be a hit.
        for pid in others:
            store.apply(Merge(keep=q.pid, absorb=pid))
        version = store.version()
    assert main(args + [str(tmp_path / "b.json")]) == 0
    merged = json.loads((tmp_path / "b.json").read_text())
    assert merged["annotation_version"] == version
    assert merged["rank1"] == 1.0 > plain["rank1"]
    assert len(list(workspace.results_dir.glob("*.npz"))) == 2  # a second results file, keyed by the version
