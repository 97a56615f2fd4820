"""The viewer's Qt-free state: which tracklet each player shows."""
from __future__ import annotations

import pytest

from reidviewer.app.state import ViewerState


class FakeSession:
    num_queries = 3
    num_gallery = 4
    num_iterations = 4

    def query_tracklet(self, row: int) -> str:
        return f"q{row}"

    def gallery_tracklet(self, row: int) -> str:
        return f"g{row}"

    def top_gallery_row(self, row: int) -> int:
        return row + 1


def test_each_player_shows_the_selected_tracklet_or_none():
    s = ViewerState()
    assert s.tracklet("probe") is None and s.tracklet("gallery") is None  # nothing open
    s.set_session(FakeSession())
    assert s.tracklet("probe") is None and s.tracklet("gallery") is None  # nothing selected
    s.select_query(2)
    assert s.tracklet("probe") == "q2" and s.tracklet("gallery") == "g3"  # its rank-1
    s.select_gallery(0)
    assert s.tracklet("gallery") == "g0"
    s.select_query(None)
    assert s.tracklet("probe") is None
    with pytest.raises(ValueError, match="player must be one of"):
        s.tracklet("compare")


@pytest.mark.parametrize("ref, name", [
    ("runs/base-ran/last.safetensors", "run base-ran"),
    ("runs/base-ran/epoch_0020.safetensors", "run base-ran (epoch_0020)"),
    ("runs/b/minute_10.safetensors", "run b (minute_10)"),
    ("ckpts/synthwalk-ran-k3.safetensors", "synthwalk-ran-k3"),
    ("model:pixels", "pixels"),
    ("model:imported:torchreid-ap3d", "torchreid-ap3d"),
    (None, "no model"),
])
def test_models_are_named_as_people_say_them(ref, name):
    from reidviewer.app.viewmodel import model_name

    assert model_name(ref) == name


def test_a_prefetched_session_is_the_one_the_window_would_load(synth_root, random_checkpoint, workspace):
    import threading

    from reidviewer.app.viewmodel import OpenRequest, Prefetch, load_session

    req = OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint)
    seen = []
    s = Prefetch(req, workspace).wait(lambda *a: seen.append(a), threading.Event())
    direct = load_session(req, workspace)
    assert s.dataset.fingerprint == direct.dataset.fingerprint
    assert s.metrics()["mAP"] == direct.metrics()["mAP"]


def test_cancelling_the_window_job_cancels_the_prefetch(synth_root, random_checkpoint, tmp_path):
    import threading

    from reidviewer.app.viewmodel import OpenRequest, Prefetch
    from reidviewer.errors import Cancelled
    from reidviewer.workspace import Workspace

    req = OpenRequest(root=synth_root, name="synthwalk", checkpoint=random_checkpoint)
    cancel = threading.Event()
    cancel.set()  # Cancel clicked before the (uncached) results were computed
    pf = Prefetch(req, Workspace(tmp_path / "fresh"))
    with pytest.raises(Cancelled):
        pf.wait(lambda *a: None, cancel)
    assert pf.cancel.is_set() and pf.done.is_set()
