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
